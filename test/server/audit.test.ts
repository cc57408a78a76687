/**
 * serve's audit log, in process in front of a fake MLflow: the lines a failed login, a change
 * through the auth API and a refused request write, that no secret ever reaches the file, long
 * names cut, the file reopened after a rotation, and a start refused when the file cannot be opened.
 */
import assert from 'node:assert/strict'
import {mkdtemp, readFile, rename, stat} from 'node:fs/promises'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {after, before, describe, it} from 'node:test'

import {MAX_FIELD, serializeAuditEvent, userLabel} from '../../src/server/audit.js'
import {startServe} from '../../src/server/serve.js'
import {answerJson, basicAuth, call, type Pipeline, startPipeline} from '../support/serve-pipeline.js'

const ALICE = {password: 'alice-secret-password-1', username: 'alice'}
const WRONG = 'not-alices-password-xyz'
const NEW_PASSWORD = 'alice-new-password-2222'

type Line = Record<string, unknown>

let dir: string
let auditPath: string
let pipeline: Pipeline

async function lines(path = auditPath): Promise<Line[]> {
  const text = await readFile(path, 'utf8').catch(() => '')
  return text
    .split('\n')
    .filter(Boolean)
    .map((line) => JSON.parse(line) as Line)
}

/** Lines are written through a stream: wait until `count` are in the file. */
async function waitForLines(count: number, path = auditPath): Promise<Line[]> {
  for (let i = 0; i < 200; i++) {
    const found = await lines(path)
    if (found.length >= count) return found
    await new Promise((resolve) => setTimeout(resolve, 10))
  }

  throw new Error(`fewer than ${count} audit lines in ${path}: ${JSON.stringify(await lines(path))}`)
}

async function waitUntil(test: () => boolean): Promise<void> {
  for (let i = 0; i < 200 && !test(); i++) await new Promise((resolve) => setTimeout(resolve, 10))
}

/** The number of lines once no more are coming: a line of an earlier request may still be on its way to the file. */
async function settled(): Promise<number> {
  let count = (await lines()).length
  for (;;) {
    await new Promise((resolve) => setTimeout(resolve, 50))
    const now = (await lines()).length
    if (now === count) return count
    count = now
  }
}

/** The audit lines written while `action` ran. */
async function during(action: () => Promise<unknown>, expected: number): Promise<Line[]> {
  const before = await settled()
  await action()
  return (await waitForLines(before + expected)).slice(before)
}

const without = (line: Line) => {
  const {time, ...rest} = line
  assert.match(String(time), /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/)
  return rest
}

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'mlflowctl-audit-'))
  auditPath = join(dir, 'audit.jsonl')
  pipeline = await startPipeline({
    handler(request, response) {
      if (request.url.pathname === '/api/2.0/mlflow/experiments/get') answerJson(response, 200, {experiment: {experiment_id: '1'}})
      if (request.url.pathname === '/api/2.0/mlflow/experiments/create') answerJson(response, 200, {experiment_id: '42'})
    },
    serve: {auditLog: auditPath},
  })
  await pipeline.createUser(ALICE, {1: 'EDIT', 2: 'NO_PERMISSIONS'})
})

after(async () => {
  await pipeline.close()
})

describe('serve audit log', () => {
  it('is created 0600 and records the changes made through the auth API, without the password', async () => {
    assert.equal((await stat(auditPath)).mode & 0o777, 0o600)
    const setup = await waitForLines(2)
    assert.deepEqual(without(setup[0]), {
      client: '127.0.0.1',
      decision: 'allow',
      event: 'change',
      method: 'POST',
      operation: 'users/create',
      path: '/api/2.0/mlflow/users/create',
      status: 200,
      target: {id: 2, username: 'alice'},
      user: 'admin',
      values: {},
    })
    assert.deepEqual(without(setup[1]), {
      client: '127.0.0.1',
      decision: 'allow',
      event: 'change',
      method: 'POST',
      operation: 'permissions/experiment/create',
      path: '/api/2.0/mlflow/experiments/permissions/create',
      status: 200,
      target: {experiment_id: '1', username: 'alice'},
      user: 'admin',
      values: {permission: 'EDIT'},
    })
  })

  it('records a wrong password (the name given, never the password), an unknown user (its digest only) and a missing login; a right one writes nothing', async () => {
    const recorded = await during(async () => {
      assert.equal((await call(pipeline.url, 'GET', '/api/2.0/mlflow/experiments/get?experiment_id=1', {credentials: {...ALICE, password: WRONG}})).status, 401)
      assert.equal(
        (await call(pipeline.url, 'GET', '/api/2.0/mlflow/experiments/get?experiment_id=1', {credentials: {password: WRONG, username: 'mallory'}})).status,
        401,
      )
      assert.equal((await call(pipeline.url, 'GET', '/api/2.0/mlflow/experiments/get?experiment_id=1')).status, 401)
      assert.equal((await call(pipeline.url, 'GET', '/api/2.0/mlflow/experiments/get?experiment_id=1', {credentials: ALICE})).status, 200)
    }, 3)
    const base = {client: '127.0.0.1', decision: 'deny', event: 'auth.failed', method: 'GET', path: '/api/2.0/mlflow/experiments/get', status: 401}
    assert.deepEqual(recorded.map(without), [
      {...base, reason: 'wrong-password', user: 'alice'},
      {...base, reason: 'unknown-user', user: userLabel('mallory', false)},
      {...base, reason: 'no-credentials'},
    ])
    assert.match(userLabel('mallory', false), /^hmac-sha256:[0-9a-f]{12}$/)
    assert.doesNotMatch(await readFile(auditPath, 'utf8'), /mallory/)
  })

  it("records a refused request with the row that refused it: the user's own grant, the resource, the level and the need", async () => {
    const recorded = await during(async () => {
      assert.equal((await call(pipeline.url, 'GET', '/api/2.0/mlflow/experiments/get?experiment_id=2', {credentials: ALICE})).status, 403)
    }, 1)
    assert.deepEqual(without(recorded[0]), {
      client: '127.0.0.1',
      decision: 'deny',
      event: 'request.denied',
      level: 'NO_PERMISSIONS',
      method: 'GET',
      need: 'read',
      path: '/api/2.0/mlflow/experiments/get',
      resource: {id: '2', type: 'experiment'},
      rule: 'own grant (experiment 2 NO_PERMISSIONS)',
      status: 403,
      user: 'alice',
    })
  })

  it("names the default permission when no row decided, the auth API's rules, and a route only admins may use", async () => {
    const recorded = await during(async () => {
      assert.equal(
        (await call(pipeline.url, 'POST', '/api/2.0/mlflow/experiments/update', {body: {experiment_id: '7', new_name: 'x'}, credentials: ALICE})).status,
        403,
      )
      assert.equal(
        (await call(pipeline.url, 'PATCH', '/api/2.0/mlflow/users/update-admin', {body: {is_admin: true, username: 'alice'}, credentials: ALICE})).status,
        403,
      )
      assert.equal((await call(pipeline.url, 'GET', '/api/2.0/mlflow/users/get?username=admin', {credentials: ALICE})).status, 403)
      assert.equal((await call(pipeline.url, 'GET', '/api/2.0/mlflow/unknown-to-serve?secret=in-the-query', {credentials: ALICE})).status, 403)
    }, 4)
    assert.equal(recorded[0].rule, 'default_permission (READ)')
    assert.deepEqual(recorded[0].resource, {id: '7', type: 'experiment'})
    assert.equal(recorded[0].need, 'update')
    assert.equal(recorded[1].rule, 'auth API: admins only')
    assert.equal(recorded[1].path, '/api/2.0/mlflow/users/update-admin')
    assert.equal(recorded[2].rule, 'auth API: own account, or admins')
    assert.equal(recorded[2].path, '/api/2.0/mlflow/users/get')
    // The path without its query.
    assert.equal(recorded[3].rule, 'a route serve does not know: admins only')
    assert.equal(recorded[3].path, '/api/2.0/mlflow/unknown-to-serve')
  })

  it("records a refusal answered with MLflow's JSON error, with its message as the rule", async () => {
    const body = {artifact_location: 's3://elsewhere/x', name: 'placed-by-alice'}
    const recorded = await during(async () => {
      assert.equal((await call(pipeline.url, 'POST', '/api/2.0/mlflow/experiments/create', {body, credentials: ALICE})).status, 403)
    }, 1)
    assert.equal(recorded[0].event, 'request.denied')
    assert.equal(recorded[0].status, 403)
    assert.match(String(recorded[0].rule), /^Permission denied: only admins can choose an experiment's artifact_location/)
  })

  it("records the grant serve gives an experiment's creator, as a change", async () => {
    const recorded = await during(async () => {
      assert.equal((await call(pipeline.url, 'POST', '/api/2.0/mlflow/experiments/create', {body: {name: 'made-by-alice'}, credentials: ALICE})).status, 200)
    }, 1)
    assert.deepEqual(without(recorded[0]), {
      client: '127.0.0.1',
      decision: 'allow',
      event: 'change',
      method: 'POST',
      operation: 'creator-grant',
      path: '/api/2.0/mlflow/experiments/create',
      status: 200,
      target: {resource_id: '42', resource_type: 'experiment', username: 'alice'},
      user: 'alice',
      values: {permission: 'MANAGE'},
    })
  })

  it('never writes a password, current password or Authorization header, whatever the request', async () => {
    await during(async () => {
      const body = {current_password: ALICE.password, password: NEW_PASSWORD, username: 'alice'}
      assert.equal((await call(pipeline.url, 'PATCH', '/api/2.0/mlflow/users/update-password', {body, credentials: ALICE})).status, 200)
      // A field the audit log does not know is left out, whatever it is called.
      const extra = {password: 'another-secret-password-9', token: 'tok-secret-123456', username: 'bob'}
      assert.equal((await call(pipeline.url, 'POST', '/api/2.0/mlflow/users/create', {body: extra, credentials: pipeline.admin})).status, 200)
      assert.equal(
        (await call(pipeline.url, 'GET', '/api/2.0/mlflow/experiments/get?experiment_id=2', {credentials: {...ALICE, password: NEW_PASSWORD}})).status,
        403,
      )
    }, 3)
    const text = await readFile(auditPath, 'utf8')
    for (const secret of [
      ALICE.password,
      NEW_PASSWORD,
      WRONG,
      'another-secret-password-9',
      'tok-secret-123456',
      basicAuth(ALICE),
      basicAuth({...ALICE, password: NEW_PASSWORD}),
      basicAuth(pipeline.admin),
      pipeline.admin.password,
    ]) {
      assert.ok(!text.includes(secret), `the audit log holds ${secret}`)
      assert.ok(!text.includes(Buffer.from(secret).toString('base64').slice(0, 12)), `the audit log holds ${secret} in base64`)
    }

    assert.match(text, /"operation":"users\/update-password","target":\{"username":"alice"\},"values":\{\}/)
  })

  it('cuts a long name to 256 characters, and keeps each event on one line whatever it holds', async () => {
    const long = `${'é'.repeat(300)}\n\u2028"}`
    assert.equal(
      JSON.parse(serializeAuditEvent({client: '::1', event: 'request.denied', method: 'GET', path: '/', rule: 'r', user: long})).user,
      `${'é'.repeat(MAX_FIELD)}…`,
    )
    const recorded = await during(async () => {
      assert.equal((await call(pipeline.url, 'GET', '/health', {credentials: {password: 'x', username: long}})).status, 404)
      assert.equal(
        (await call(pipeline.url, 'GET', '/api/2.0/mlflow/experiments/get?experiment_id=1', {credentials: {password: 'wrong-password', username: long}}))
          .status,
        401,
      )
    }, 1)
    // A name that is no user's is written as its digest, whatever it holds.
    assert.equal(recorded[0].user, userLabel(long, false))
    const line = serializeAuditEvent({client: '::1', event: 'auth.failed', method: 'GET', path: '/', reason: 'unknown-user', user: 'a\u2028b\nc'})
    assert.equal(line.split(/[\n\u2028\u2029]/).length, 2)
    assert.equal(JSON.parse(line).user, 'a\u2028b\nc')
  })

  it('reopens by its path: after a rotation, later lines go to the new file, earlier ones stay in the old', async () => {
    const rotated = join(dir, 'audit.jsonl.1')
    const before = (await lines()).length
    await rename(auditPath, rotated)
    assert.equal(
      (await call(pipeline.url, 'GET', '/api/2.0/mlflow/experiments/get?experiment_id=2', {credentials: {...ALICE, password: NEW_PASSWORD}})).status,
      403,
    )
    await waitForLines(before + 1, rotated)
    assert.equal(await pipeline.serve.reopenAuditLog(), `audit log reopened: ${auditPath}`)
    assert.equal((await stat(auditPath)).mode & 0o777, 0o600)
    assert.equal((await call(pipeline.url, 'GET', '/api/2.0/mlflow/users/get?username=admin', {credentials: {...ALICE, password: NEW_PASSWORD}})).status, 403)
    const fresh = await waitForLines(1)
    assert.equal(fresh.length, 1)
    assert.equal(fresh[0].path, '/api/2.0/mlflow/users/get')
    assert.equal((await lines(rotated)).length, before + 1)
    await waitUntil(() => pipeline.serve.auditStats()?.lines === before + 2)
    assert.deepEqual(pipeline.serve.auditStats(), {dropped: 0, failed: 0, lines: before + 2})
  })

  it("records each change of a role, and names a role's row when it refuses", async () => {
    const carol = {password: 'carol-secret-password-3', username: 'carol'}
    const admin = pipeline.admin
    const post = async (path: string, body: unknown, who = admin) => {
      const answer = await call(pipeline.url, 'POST', path, {body, credentials: who})
      assert.equal(answer.status, 200, answer.body)
      return JSON.parse(answer.body) as Record<string, {id: number}>
    }

    let roleId = 0
    let rowId = 0
    let assignmentId = 0
    const recorded = await during(async () => {
      await post('/api/2.0/mlflow/users/create', carol)
      roleId = (await post('/api/3.0/mlflow/roles/create', {description: 'no experiment 5', name: 'analysts', workspace: 'default'})).role.id
      rowId = (await post('/api/3.0/mlflow/roles/permissions/add', {permission: 'DENY', resource_pattern: '5', resource_type: 'experiment', role_id: roleId}))
        .role_permission.id
      assignmentId = (await post('/api/3.0/mlflow/roles/assign', {role_id: roleId, username: 'carol'})).assignment.id
      assert.equal((await call(pipeline.url, 'GET', '/api/2.0/mlflow/experiments/get?experiment_id=5', {credentials: carol})).status, 403)
    }, 5)
    const changes = recorded.slice(1, 4).map((line) => [line.operation, line.target, line.values])
    assert.deepEqual(changes, [
      ['roles/create', {id: roleId, name: 'analysts', workspace: 'default'}, {description: 'no experiment 5'}],
      ['roles/permissions/add', {id: rowId, resource_pattern: '5', resource_type: 'experiment', role_id: roleId}, {permission: 'DENY'}],
      ['roles/assign', {id: assignmentId, role_id: roleId, username: 'carol'}, {}],
    ])
    const {rule, resource, level, need} = recorded[4]
    assert.deepEqual(
      {level, need, resource, rule},
      {level: 'DENY', need: 'read', resource: {id: '5', type: 'experiment'}, rule: 'role analysts (experiment 5 DENY)'},
    )
  })

  it('a start whose audit log cannot be opened fails and says why', async () => {
    await assert.rejects(
      startServe({
        auditLog: join(dir, 'no-such-dir', 'audit.jsonl'),
        env: {MLFLOW_AUTH_ADMIN_PASSWORD: 'admin-password-for-the-pipeline'},
        host: '127.0.0.1',
        log: () => {},
        port: 0,
        proxyTo: pipeline.upstream.url,
        storePath: join(dir, 'never.json'),
      }),
      (error: Error & {code?: string}) => error.code === 'AUDIT_LOG_UNWRITABLE' && /Cannot open the audit log .*no-such-dir.*ENOENT/.test(error.message),
    )
    await assert.rejects(stat(join(dir, 'never.json')), {code: 'ENOENT'})
  })
})

describe('serve audit log: events as lines', () => {
  it('writes a lockout (for the brute-force guard) with its fields in order, as a denial', () => {
    const line = serializeAuditEvent(
      {client: '10.0.0.9', event: 'auth.lockout', failures: 10, reason: 'too many failed logins', until: '2026-01-31T10:00:00.000Z', user: 'alice'},
      new Date('2026-01-31T09:45:00.5Z'),
    )
    assert.equal(
      line,
      '{"time":"2026-01-31T09:45:00.500Z","event":"auth.lockout","user":"alice","client":"10.0.0.9","decision":"deny","reason":"too many failed logins","failures":10,"until":"2026-01-31T10:00:00.000Z"}\n',
    )
  })
})

describe('serve audit log: the client behind a trusted proxy, and a destination that fails', () => {
  it("names the client a trusted proxy's X-Forwarded-For names, and the peer when the proxy is not trusted", async () => {
    const path = join(dir, 'proxied.jsonl')
    const behind = await startPipeline({serve: {auditLog: path, trustedProxies: '127.0.0.1'}})
    const direct = await startPipeline({serve: {auditLog: join(dir, 'direct.jsonl')}})
    try {
      const forwarded = {'x-forwarded-for': '203.0.113.9'}
      assert.equal((await call(behind.url, 'GET', '/api/2.0/mlflow/experiments/get?experiment_id=1', {headers: forwarded})).status, 401)
      assert.equal((await call(direct.url, 'GET', '/api/2.0/mlflow/experiments/get?experiment_id=1', {headers: forwarded})).status, 401)
      assert.equal((await waitForLines(1, path))[0].client, '203.0.113.9')
      assert.equal((await waitForLines(1, join(dir, 'direct.jsonl')))[0].client, '127.0.0.1')
    } finally {
      await behind.close()
      await direct.close()
    }
  })

  it('a write that fails is logged once and counted, and serve goes on answering', async () => {
    // Every write to /dev/full fails with ENOSPC, as on a full disk.
    const full = await startPipeline({serve: {auditLog: '/dev/full'}})
    try {
      // Three names, so three lines (a name's further failures would be counted, not written at once).
      for (const username of ['m1', 'm2', 'm3']) {
        const credentials = {password: WRONG, username}
        assert.equal((await call(full.url, 'GET', '/api/2.0/mlflow/experiments/get?experiment_id=1', {credentials})).status, 401)
      }

      await waitUntil(() => full.serve.auditStats()?.failed === 3)
      assert.deepEqual(full.serve.auditStats(), {dropped: 0, failed: 3, lines: 0})
      const errors = full.log.filter((line) => line.startsWith('error: audit log /dev/full'))
      assert.equal(errors.length, 1, full.log.join('\n'))
      assert.match(errors[0], /ENOSPC.*audit lines are lost until it can be written again \(SIGHUP reopens it\)/)
      assert.ok(full.log.some((line) => line.includes('warning: the audit log /dev/full can be read by other users')))
    } finally {
      await full.close()
    }
  })
})
