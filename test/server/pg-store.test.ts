/**
 * serve on PostgreSQL: two replicas (serve in this process, each before its own fake MLflow) on one
 * real database. A change through one is in force on the other within a second; racing creates on
 * both give each creator exactly one grant; a killed connection loses nothing; the database away
 * keeps decisions for a while, refuses changes, then fails closed.
 */
import assert from 'node:assert/strict'
import {mkdtemp, readdir, writeFile} from 'node:fs/promises'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {after, before, describe, test} from 'node:test'

import {answerJson, call, type FakeHandler, type Pipeline, startPipeline, type Who} from '../support/serve-pipeline.js'
import {queryAt, type RunningPostgres, startPostgres} from '../support/postgres.js'

let nextExperiment = 1000
/** MLflow enough for these tests: experiments exist, creates hand out new ids. */
const fakeMlflow: FakeHandler = (request, response) => {
  if (request.url.pathname.endsWith('/experiments/create')) answerJson(response, 200, {experiment_id: String(nextExperiment++)})
  else if (request.url.pathname.endsWith('/experiments/get'))
    answerJson(response, 200, {experiment: {experiment_id: request.url.searchParams.get('experiment_id')}})
}

async function config(): Promise<string> {
  const ini = join(await mkdtemp(join(tmpdir(), 'mlflowctl-pg-')), 'basic_auth.ini')
  await writeFile(ini, '[mlflow]\ndefault_permission = NO_PERMISSIONS\n')
  return ini
}

/**
 * Polls (never sleeps a fixed time) until `check` holds; resolves with when the check that saw it
 * began, which must be within `limitMs` (a check can take a key derivation's time itself).
 */
async function within(limitMs: number, what: string, check: () => Promise<boolean>): Promise<number> {
  const start = performance.now()
  for (;;) {
    const sent = performance.now() - start
    if (sent > limitMs) assert.fail(`${what}: not in force within ${limitMs} ms`)
    if (await check()) return sent
    await new Promise((resolve) => setTimeout(resolve, 5))
  }
}

const replicaUrl = (url: string, name: string) => `${url}${url.includes('?') ? '&' : '?'}application_name=${name}`

const rowsAt = async (url: string, text: string) => (await queryAt(url, text)).rows

let postgres: RunningPostgres
before(async () => {
  postgres = await startPostgres()
})
after(async () => {
  await postgres?.stop()
})

describe('two replicas on one database', () => {
  let a: Pipeline
  let b: Pipeline
  let url: string
  const alice: Who = {password: 'alice password one', username: 'alice'}
  const asAdmin = async (replica: Pipeline, method: string, path: string, body: unknown) => {
    const answer = await call(replica.url, method, path, {body, credentials: replica.admin})
    assert.equal(answer.status, 200, `${method} ${path}: ${answer.body}`)
  }

  const readStatus = async (replica: Pipeline, who: Who, experiment = '1') =>
    (await call(replica.url, 'GET', `/api/2.0/mlflow/experiments/get?experiment_id=${experiment}`, {credentials: who})).status

  before(async () => {
    url = await postgres.database('replicas')
    const configPath = await config()
    // Both start at once: the schema is created once, under the advisory lock.
    const started = await Promise.allSettled([
      startPipeline({handler: fakeMlflow, serve: {configPath, storePath: replicaUrl(url, 'replica_a')}}),
      startPipeline({handler: fakeMlflow, serve: {configPath, storePath: replicaUrl(url, 'replica_b')}}),
    ])
    for (const result of started) if (result.status === 'fulfilled') await (a ? (b = result.value) : (a = result.value)).serve.url
    for (const result of started) if (result.status === 'rejected') throw result.reason
  })
  after(async () => {
    await a?.close()
    await b?.close()
  })

  test('the schema is applied once, and the banner names the database without its password', async () => {
    const versions = await rowsAt(url, 'SELECT version, name FROM mlflowctl_schema_versions')
    // Each migration of pg-schema/, once, by its number.
    const files = (await readdir(new URL('../../pg-schema/', import.meta.url))).filter((name) => name.endsWith('.sql')).sort()
    assert.ok(files.length >= 3)
    assert.deepEqual(
      versions,
      files.map((name) => ({name, version: Number(name.slice(0, 3))})),
    )
    assert.equal(a.serve.storeLocation.includes(new URL(postgres.url).password), false)
    assert.match(a.serve.storeLocation, /^postgresql:\/\/mlflowctl@127\.0\.0\.1:\d+\/replicas/)
  })

  test('a user, a grant, a revoke, a password change and a deletion on one are in force on the other within a second', async () => {
    const delays: Record<string, number> = {}
    await asAdmin(a, 'POST', '/api/2.0/mlflow/users/create', alice)
    delays.create = await within(1000, 'user created on A, logging in at B', async () => (await readStatus(b, alice)) === 403)

    await asAdmin(a, 'POST', '/api/2.0/mlflow/experiments/permissions/create', {experiment_id: '1', permission: 'READ', username: 'alice'})
    delays.grant = await within(1000, 'grant on A, read at B', async () => (await readStatus(b, alice)) === 200)

    await asAdmin(a, 'DELETE', '/api/2.0/mlflow/experiments/permissions/delete', {experiment_id: '1', username: 'alice'})
    delays.revoke = await within(1000, 'revoke on A, refused at B', async () => (await readStatus(b, alice)) === 403)

    await asAdmin(b, 'POST', '/api/2.0/mlflow/experiments/permissions/create', {experiment_id: '1', permission: 'READ', username: 'alice'})
    await within(1000, 'grant on B, read at A', async () => (await readStatus(a, alice)) === 200)
    // B verified (and cached) alice's password before it changes.
    assert.equal(await readStatus(b, alice), 200)
    const changed = {...alice, password: 'alice password two'}
    await asAdmin(a, 'PATCH', '/api/2.0/mlflow/users/update-password', changed)
    delays.password = await within(1000, 'password changed on A, old one refused at B', async () => (await readStatus(b, alice)) === 401)
    assert.equal(await readStatus(b, changed), 200)

    await asAdmin(a, 'DELETE', '/api/2.0/mlflow/users/delete', {username: 'alice'})
    delays.deletion = await within(1000, 'user deleted on A, refused at B', async () => (await readStatus(b, changed)) === 401)
    process.stderr.write(`propagation A → B (ms): ${JSON.stringify(Object.fromEntries(Object.entries(delays).map(([k, v]) => [k, Math.round(v)])))}\n`)
  })

  test('racing creates on both replicas leave exactly one creator grant per experiment, and one per-user role', async () => {
    const bob: Who = {password: 'bob password', username: 'bob'}
    await asAdmin(a, 'POST', '/api/2.0/mlflow/users/create', bob)
    await within(1000, 'bob known at B', async () => (await readStatus(b, bob)) === 403)
    const creates = await Promise.all(
      Array.from({length: 20}, (_, i) =>
        call(i % 2 === 0 ? a.url : b.url, 'POST', '/api/2.0/mlflow/experiments/create', {body: {name: `race-${i}`}, credentials: bob}),
      ),
    )
    const ids = creates.map((answer) => {
      assert.equal(answer.status, 200, answer.body)
      return (JSON.parse(answer.body) as {experiment_id: string}).experiment_id
    })
    const rows = await rowsAt(
      url,
      `SELECT r.name, p.resource_pattern, p.permission FROM mlflowctl_role_permissions p JOIN mlflowctl_roles r ON r.id = p.role_id
       JOIN mlflowctl_assignments s ON s.role_id = r.id JOIN mlflowctl_users u ON u.id = s.user_id WHERE u.username = 'bob' ORDER BY p.resource_pattern`,
    )
    assert.deepEqual(
      rows.map((row) => row.resource_pattern),
      [...ids].sort(),
    )
    assert.ok(rows.every((row) => row.permission === 'MANAGE'))
    assert.equal(new Set(rows.map((row) => row.name)).size, 1)
    for (const id of ids) {
      assert.equal(await readStatus(a, bob, id), 200)
      assert.equal(await readStatus(b, bob, id), 200)
    }
  })

  test('a replica whose connection is killed reconnects and loses nothing made meanwhile', async () => {
    const carol: Who = {password: 'carol password', username: 'carol'}
    await asAdmin(a, 'POST', '/api/2.0/mlflow/users/create', carol)
    await within(1000, 'carol known at B', async () => (await readStatus(b, carol)) === 403)
    const killed = await rowsAt(url, "SELECT pg_terminate_backend(pid) AS done FROM pg_stat_activity WHERE application_name = 'replica_b'")
    assert.deepEqual(killed, [{done: true}])
    // Changes on A while B is away, each answered only once committed.
    for (let i = 0; i < 10; i++) {
      await asAdmin(a, 'POST', '/api/2.0/mlflow/experiments/permissions/create', {experiment_id: String(500 + i), permission: 'READ', username: 'carol'})
    }

    await within(5000, 'B back and caught up', async () => {
      for (let i = 0; i < 10; i++) if ((await readStatus(b, carol, String(500 + i))) !== 200) return false
      return true
    })
    assert.match(b.log.join('\n'), /lost the connection to the auth store's database/)
    assert.match(b.log.join('\n'), /is back; caught up to change \d+/)
    // And B writes again.
    await asAdmin(b, 'DELETE', '/api/2.0/mlflow/experiments/permissions/delete', {experiment_id: '500', username: 'carol'})
    await within(1000, 'revoke on B, refused at A', async () => (await readStatus(a, carol, '500')) === 403)
  })
})

describe('the database away', () => {
  let replica: Pipeline
  const dave: Who = {password: 'dave password', username: 'dave'}

  before(async () => {
    const url = await postgres.database('away')
    replica = await startPipeline({handler: fakeMlflow, serve: {configPath: await config(), storeMaxStaleMs: 1500, storePath: url}})
    const created = await call(replica.url, 'POST', '/api/2.0/mlflow/users/create', {body: dave, credentials: replica.admin})
    assert.equal(created.status, 200)
    const granted = await call(replica.url, 'POST', '/api/2.0/mlflow/experiments/permissions/create', {
      body: {experiment_id: '1', permission: 'READ', username: 'dave'},
      credentials: replica.admin,
    })
    assert.equal(granted.status, 200)
  })
  after(async () => {
    await replica?.close()
  })

  test('decides from the last state for a while, refuses changes, fails closed, and catches up when it is back', async () => {
    const read = async () => (await call(replica.url, 'GET', '/api/2.0/mlflow/experiments/get?experiment_id=1', {credentials: dave})).status
    const health = async () => (await call(replica.url, 'GET', '/health')).status
    assert.equal(await health(), 404) // forwarded: the fake has no /health
    await postgres.pause()
    await within(5000, 'the loss noticed', async () => (await health()) === 503)
    assert.equal(await read(), 200)
    const refused = await call(replica.url, 'POST', '/api/2.0/mlflow/users/create', {
      body: {password: 'erin password long enough', username: 'erin'},
      credentials: replica.admin,
    })
    assert.equal(refused.status, 503, refused.body)
    assert.equal((JSON.parse(refused.body) as {error_code: string}).error_code, 'TEMPORARILY_UNAVAILABLE')

    await within(5000, 'fail closed', async () => (await read()) === 503)
    assert.match(replica.log.join('\n'), /out of reach for more than 1\.5 s: serve refuses requests/)

    await postgres.start()
    await within(10_000, 'back', async () => (await read()) === 200)
    const created = await call(replica.url, 'POST', '/api/2.0/mlflow/users/create', {
      body: {password: 'erin password long enough', username: 'erin'},
      credentials: replica.admin,
    })
    assert.equal(created.status, 200, created.body)
    assert.equal(await health(), 404)
  })
})

describe('connected but not catching up', () => {
  test("a replica that cannot read the others' changes stops deciding after the same limit, and is back once it can", async () => {
    const url = await postgres.database('stuck')
    const replica = await startPipeline({handler: fakeMlflow, serve: {configPath: await config(), storeMaxStaleMs: 1500, storePath: url}})
    try {
      const frank: Who = {password: 'frank password', username: 'frank'}
      assert.equal((await call(replica.url, 'POST', '/api/2.0/mlflow/users/create', {body: frank, credentials: replica.admin})).status, 200)
      const granted = await call(replica.url, 'POST', '/api/2.0/mlflow/experiments/permissions/create', {
        body: {experiment_id: '1', permission: 'READ', username: 'frank'},
        credentials: replica.admin,
      })
      assert.equal(granted.status, 200)
      const read = async () => (await call(replica.url, 'GET', '/api/2.0/mlflow/experiments/get?experiment_id=1', {credentials: frank})).status
      // The state row out of reach (a hand edit): every sync is refused while the connection stays.
      await rowsAt(url, 'ALTER TABLE mlflowctl_state RENAME TO mlflowctl_state_away')
      await within(5000, 'fail closed', async () => (await read()) === 503)
      assert.equal((await call(replica.url, 'GET', '/health')).status, 503)
      await rowsAt(url, 'ALTER TABLE mlflowctl_state_away RENAME TO mlflowctl_state')
      await within(5000, 'back', async () => (await read()) === 200)
    } finally {
      await replica.close()
    }
  })
})
