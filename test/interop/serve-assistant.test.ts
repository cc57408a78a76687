/**
 * MLflow 3.17's assistant behind serve, against a plain MLflow 3.17.2: MLflow lets anyone logged
 * in use it from the server's own host, and judges "own host" from the client address uvicorn
 * takes from X-Forwarded-For. serve forwards non-admins' assistant requests only when the client
 * it resolved is loopback, and passes the real client on, so MLflow's own check sees a remote
 * admin as remote.
 */
import assert from 'node:assert/strict'
import {after, before, describe, it} from 'node:test'

import {MLFLOW_VERSIONS} from '../support/mlflow-versions.js'
import {type RunningServe, startServe} from '../support/serve.js'
import {acquireServer, releaseServers, uniqueName} from '../support/servers.js'

const version = MLFLOW_VERSIONS.latest
const HEALTH = '/ajax-api/3.0/mlflow/assistant/providers/claude_code/health'
const REMOTE = {'x-forwarded-for': '203.0.113.9'}

after(releaseServers)

describe(`the assistant behind serve (MLflow ${version})`, () => {
  let serve: RunningServe
  const alice = {password: `alice-${uniqueName('pw')}`, username: uniqueName('alice')}

  const basic = ({password, username}: {password: string; username: string}) => `Basic ${Buffer.from(`${username}:${password}`).toString('base64')}`
  const get = (who: typeof alice, headers: Record<string, string> = {}) => fetch(new URL(HEALTH, serve.url), {headers: {authorization: basic(who), ...headers}})

  before(async () => {
    // serve's own loopback peer is a trusted proxy here, so a test can speak for a remote client.
    serve = await startServe({extraArgs: ['--trusted-proxies', '127.0.0.1'], upstream: (await acquireServer(version, 'plain')).url})
    const created = await fetch(new URL('/api/2.0/mlflow/users/create', serve.url), {
      body: JSON.stringify(alice),
      headers: {authorization: basic(serve.admin), 'content-type': 'application/json'},
      method: 'POST',
    })
    assert.equal(created.status, 200)
  })

  after(async () => serve?.stop())

  it('a non-admin on the host reaches MLflow, which takes the client as local', async () => {
    const answer = await get(alice)
    const body = await answer.text()
    assert.notEqual(answer.status, 403, body)
    assert.doesNotMatch(body, /same host|PERMISSION_DENIED/)
  })

  it('a remote non-admin is refused by serve; a remote admin is forwarded and MLflow itself sees a remote client', async () => {
    const refused = await get(alice, REMOTE)
    assert.equal(refused.status, 403)
    // serve's refusal, as MLflow's basic-auth app words its own: never MLflow's "same host" answer.
    assert.equal(await refused.text(), 'Permission denied')
    const admin = await get(serve.admin, REMOTE)
    assert.equal(admin.status, 403)
    assert.match(await admin.text(), /only accessible from the same host/)
  })
})
