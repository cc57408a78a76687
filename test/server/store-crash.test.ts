/**
 * serve killed (SIGKILL) while several clients write: every write it acknowledged is there after a
 * restart, on both stores — the JSON file (snapshot + journal) and PostgreSQL. serve runs as its own
 * process (the built CLI) in front of a stub upstream; the auth API's writes never reach it.
 */
import assert from 'node:assert/strict'
import {mkdtemp} from 'node:fs/promises'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {after, before, describe, it} from 'node:test'

import {type RunningPostgres, startPostgres} from '../support/postgres.js'
import {basicAuth} from '../support/rest.js'
import {startServe} from '../support/serve.js'
import {startStubUpstream} from '../support/stub-upstream.js'

const CLIENTS = 6
/** Kill once this many writes were acknowledged: enough that others are surely in flight. */
const ACKNOWLEDGED_BEFORE_KILL = 30

let postgres: RunningPostgres
let upstream: Awaited<ReturnType<typeof startStubUpstream>>
before(async () => {
  ;[postgres, upstream] = await Promise.all([startPostgres(), startStubUpstream()])
})
after(async () => {
  await Promise.all([postgres?.stop(), upstream?.close()])
})

const admin = {password: 'admin-password-for-the-crash-test', username: 'admin'}

async function createUser(url: string, username: string): Promise<boolean> {
  try {
    const answer = await fetch(`${url}/api/2.0/mlflow/users/create`, {
      body: JSON.stringify({password: `${username}-password`, username}),
      headers: {authorization: basicAuth(admin), 'content-type': 'application/json'},
      method: 'POST',
    })
    await answer.arrayBuffer()
    return answer.status === 200
  } catch {
    return false // the connection died with serve: not acknowledged
  }
}

async function crashWhileWriting(storePath: string): Promise<void> {
  const env = {MLFLOW_AUTH_ADMIN_PASSWORD: admin.password}
  const serve = await startServe({env, storePath, upstream: upstream.url})
  const acknowledged: string[] = []
  let attempted = 0
  let killed = false
  const client = async (n: number) => {
    for (let i = 0; !killed; i++) {
      const username = `crash-${n}-${i}`
      attempted++
      if (await createUser(serve.url, username)) acknowledged.push(username)
      if (acknowledged.length >= ACKNOWLEDGED_BEFORE_KILL && !killed) {
        killed = true
        await serve.stop('SIGKILL')
      }
    }
  }

  await Promise.all(Array.from({length: CLIENTS}, (_, n) => client(n)))
  assert.ok(attempted > acknowledged.length, 'some writes were in flight when serve was killed')

  const restarted = await startServe({env, storePath, upstream: upstream.url})
  try {
    const answer = await fetch(`${restarted.url}/api/2.0/mlflow/users/list`, {headers: {authorization: basicAuth(admin)}})
    assert.equal(answer.status, 200)
    const users = new Set(((await answer.json()) as {users: Array<{username: string}>}).users.map((user) => user.username))
    const lost = acknowledged.filter((username) => !users.has(username))
    assert.deepEqual(lost, [], `${lost.length} of ${acknowledged.length} acknowledged users lost`)
    // And the store takes writes again.
    assert.ok(await createUser(restarted.url, 'after-the-crash'))
  } finally {
    await restarted.stop()
  }
}

describe('serve killed mid-write keeps every acknowledged write', () => {
  it('JSON file store', async () => {
    await crashWhileWriting(join(await mkdtemp(join(tmpdir(), 'mlflowctl-crash-')), 'auth.json'))
  })

  it('PostgreSQL store', async () => {
    await crashWhileWriting(await postgres.database('crash_test'))
  })
})
