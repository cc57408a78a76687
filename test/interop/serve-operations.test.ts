/**
 * serve's operations surface in front of a real MLflow 3.17, through the built command: a run the
 * Python client creates shows in the requests metric and in the access log; /-/ready turns
 * not-ready when MLflow stops and ready again when it is back (a dedicated MLflow, stopped and
 * restarted on the same port and data). MLFLOWCTL_TEST_STORE=postgres runs it on PostgreSQL.
 */
import assert from 'node:assert/strict'
import {mkdtemp, readFile, rm} from 'node:fs/promises'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {describe, it} from 'node:test'

import {seriesValue} from '../support/metrics.js'
import {freePort, type RunningServer, startMlflowServer} from '../support/mlflow-server.js'
import {MLFLOW_VERSIONS} from '../support/mlflow-versions.js'
import {PythonClient} from '../support/python-client.js'
import {basicAuth} from '../support/rest.js'
import {startServe} from '../support/serve.js'
import {uniqueName} from '../support/servers.js'

const version = MLFLOW_VERSIONS.latest

/** /-/ready's status once it is `status` (the probe reuses an answer for a second). */
async function readyStatus(base: string, status: number): Promise<Record<string, unknown>> {
  let answer = await fetch(`${base}/-/ready`)
  for (let i = 0; answer.status !== status && i < 150; i++) {
    await new Promise((resolve) => setTimeout(resolve, 200))
    answer = await fetch(`${base}/-/ready`)
  }

  assert.equal(answer.status, status)
  return (await answer.json()) as Record<string, unknown>
}

describe(`serve operations with MLflow ${version}`, () => {
  it('a run created by the Python client is counted and logged; /-/ready follows MLflow going away and coming back', async (t) => {
    const dir = await mkdtemp(join(tmpdir(), 'mlflowctl-ops-mlflow-'))
    t.after(() => rm(dir, {force: true, recursive: true}))
    let mlflow: RunningServer | undefined = await startMlflowServer({dir, kind: 'plain', version})
    t.after(() => mlflow?.stop())
    const metricsPort = await freePort()
    const accessLog = join(dir, 'access.log')
    const serve = await startServe({extraArgs: ['--metrics-address', String(metricsPort), '--access-log', accessLog], upstream: mlflow.url})
    t.after(() => serve.stop())
    const metrics = `http://127.0.0.1:${metricsPort}`

    // A user who is no admin: the run is decided (EDIT on the experiment they created), then forwarded.
    const alice = {password: 'alice-password-for-operations', username: uniqueName('alice')}
    const created = await fetch(`${serve.url}/api/2.0/mlflow/users/create`, {
      body: JSON.stringify(alice),
      headers: {authorization: basicAuth(serve.admin), 'content-type': 'application/json'},
      method: 'POST',
    })
    assert.equal(created.status, 200)
    const client = new PythonClient({credentials: alice, trackingUri: serve.url, version})
    const experimentId = await client.call<string>('tracking', 'create_experiment', uniqueName('ops'))
    const run = await client.call<{info: {run_id: string}}>('tracking', 'create_run', experimentId)

    const text = await (await fetch(`${metrics}/metrics`)).text()
    const runsCreated = {decision: 'allow', family: '/api/2.0/mlflow/runs/create', method: 'POST', status: '200'}
    assert.equal(seriesValue(text, 'mlflowctl_requests_total', runsCreated), 1, text)
    assert.doesNotMatch(text, new RegExp(`${alice.username}|${run.info.run_id}`))

    const lines = (await readFile(accessLog, 'utf8'))
      .trim()
      .split('\n')
      .map((line) => JSON.parse(line) as Record<string, unknown>)
    const logged = lines.find((line) => line.path === '/api/2.0/mlflow/runs/create')
    assert.ok(logged, 'no access log line for runs/create')
    assert.equal(logged.user, alice.username)
    assert.equal(logged.status, 200)
    assert.equal(logged.decision, 'allow')
    assert.doesNotMatch(await readFile(accessLog, 'utf8'), /alice-password|Basic /)

    // Ready; MLflow stops: not ready (serve itself still live); MLflow back on its port: ready.
    assert.deepEqual(await readyStatus(serve.url, 200), {checks: {store: 'ok', upstream: 'ok'}, status: 'ready'})
    const port = Number(new URL(mlflow.url).port)
    await mlflow.stop()
    mlflow = undefined
    assert.deepEqual(await readyStatus(serve.url, 503), {checks: {store: 'ok', upstream: 'unreachable'}, status: 'not ready'})
    assert.equal((await fetch(`${metrics}/-/ready`)).status, 503)
    assert.equal((await fetch(`${serve.url}/-/live`)).status, 200)
    mlflow = await startMlflowServer({dir, kind: 'plain', port, version})
    await readyStatus(serve.url, 200)
    assert.equal((await fetch(`${metrics}/-/ready`)).status, 200)
  })
})
