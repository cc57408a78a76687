/**
 * serve's audit log with MLflow 3.17.2's own Python clients, serve in front of a plain MLflow
 * 3.17.2 (on PostgreSQL too: MLFLOWCTL_TEST_STORE=postgres): a grant made with
 * `get_app_client("basic-auth")`, a wrong password, and a run creation refused with
 * PERMISSION_DENIED each write exactly the line expected, and nothing of the passwords.
 */
import assert from 'node:assert/strict'
import {mkdtemp, readFile} from 'node:fs/promises'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {after, before, describe, it} from 'node:test'

import {MLFLOW_VERSIONS} from '../support/mlflow-versions.js'
import {expectError, PythonClient} from '../support/python-client.js'
import {type RunningServe, startServe} from '../support/serve.js'
import {acquireServer, releaseServers, uniqueName} from '../support/servers.js'

const version = MLFLOW_VERSIONS.latest

after(releaseServers)

type Line = Record<string, unknown>

describe(`serve's audit log with MLflow ${version}'s Python clients`, () => {
  let serve: RunningServe
  let auditPath: string
  let admin: PythonClient
  let alice: PythonClient
  const aliceLogin = {password: `alice-${uniqueName('pw')}`, username: uniqueName('alice')}
  let experimentId: string

  const lines = async (): Promise<Line[]> =>
    (await readFile(auditPath, 'utf8').catch(() => ''))
      .split('\n')
      .filter(Boolean)
      .map((line) => JSON.parse(line) as Line)

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

  /** The lines written while `action` ran (once `expected` are in: lines go through a stream). */
  async function during(expected: number, action: () => Promise<unknown>): Promise<Line[]> {
    const before = await settled()
    await action()
    for (let i = 0; i < 300; i++) {
      const now = await lines()
      if (now.length >= before + expected) {
        // A moment more, so that a line too many would be seen.
        await new Promise((resolve) => setTimeout(resolve, 100))
        return (await lines()).slice(before).map(({time, ...rest}) => {
          assert.match(String(time), /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/)
          return rest
        })
      }

      await new Promise((resolve) => setTimeout(resolve, 20))
    }

    throw new Error(`fewer than ${expected} new audit lines: ${JSON.stringify((await lines()).slice(before))}`)
  }

  before(async () => {
    const dir = await mkdtemp(join(tmpdir(), 'mlflowctl-audit-interop-'))
    auditPath = join(dir, 'audit.jsonl')
    serve = await startServe({extraArgs: ['--audit-log', auditPath], upstream: (await acquireServer(version, 'plain')).url})
    admin = new PythonClient({credentials: serve.admin, trackingUri: serve.url, version})
    alice = new PythonClient({credentials: aliceLogin, trackingUri: serve.url, version})
    await admin.call('auth', 'create_user', aliceLogin.username, aliceLogin.password)
    experimentId = await admin.call('tracking', 'create_experiment', uniqueName('audited'))
  })

  after(async () => serve?.stop())

  it('a grant through get_app_client("basic-auth") writes one change line: who, the target, the level', async () => {
    const recorded = await during(1, () => admin.call('auth', 'grant_user_permission', aliceLogin.username, 'experiment', experimentId, 'READ'))
    assert.deepEqual(recorded, [
      {
        client: '127.0.0.1',
        decision: 'allow',
        event: 'change',
        method: 'POST',
        operation: 'grants/grant',
        path: '/api/3.0/mlflow/users/permissions/grant',
        status: 200,
        target: {resource_id: experimentId, resource_type: 'experiment', username: aliceLogin.username},
        user: 'admin',
        values: {permission: 'READ'},
      },
    ])
  })

  it('a wrong password writes one auth.failed line naming the user', async () => {
    const wrong = new PythonClient({credentials: {...aliceLogin, password: 'not-alices-password'}, trackingUri: serve.url, version})
    const recorded = await during(1, async () => {
      const [result] = await wrong.batch([{args: [experimentId], client: 'tracking', method: 'get_experiment'}])
      assert.equal(expectError(result).status, 401)
    })
    assert.deepEqual(recorded, [
      {
        client: '127.0.0.1',
        decision: 'deny',
        event: 'auth.failed',
        method: 'GET',
        path: '/api/2.0/mlflow/experiments/get',
        reason: 'wrong-password',
        status: 401,
        user: aliceLogin.username,
      },
    ])
  })

  it('a run creation refused with PERMISSION_DENIED writes one request.denied line with the grant that refused it', async () => {
    const recorded = await during(1, async () => {
      const [result] = await alice.batch([{args: [experimentId], client: 'tracking', method: 'create_run'}])
      assert.equal(expectError(result).error_code, 'PERMISSION_DENIED')
    })
    assert.deepEqual(recorded, [
      {
        client: '127.0.0.1',
        decision: 'deny',
        event: 'request.denied',
        level: 'READ',
        method: 'POST',
        need: 'update',
        path: '/api/2.0/mlflow/runs/create',
        resource: {id: experimentId, type: 'experiment'},
        rule: `own grant (experiment ${experimentId} READ)`,
        status: 403,
        user: aliceLogin.username,
      },
    ])
    const text = await readFile(auditPath, 'utf8')
    for (const secret of [aliceLogin.password, serve.admin.password, 'not-alices-password']) assert.ok(!text.includes(secret), 'a password in the audit log')
  })
})
