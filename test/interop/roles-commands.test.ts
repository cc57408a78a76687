/**
 * `mlflowctl roles …`, `users roles` and `access check|who` through the built command against MLflow's
 * own basic-auth app and against serve in front of a plain MLflow (TARGETS): every effect read back
 * through MLflow's Python auth client, and every access verdict tried for real (the user reads and
 * edits the experiment through the Python client), so what `access` says is what the server allows.
 */
import assert from 'node:assert/strict'
import {mkdtemp} from 'node:fs/promises'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {after, before, describe, it} from 'node:test'

import {ExitCode} from '../../src/core/errors.js'
import {type AuthTarget, authTarget, type AuthTargetKind, targetTitle} from '../support/auth-target.js'
import {type CliResult, okJson, runCli} from '../support/cli.js'
import {MLFLOW_VERSIONS} from '../support/mlflow-versions.js'
import {PythonClient} from '../support/python-client.js'
import {acquireServer, releaseServers, uniqueName} from '../support/servers.js'

after(releaseServers)

const TARGETS: AuthTargetKind[] = ['basic-auth', 'serve']
const LATEST = MLFLOW_VERSIONS.latest

/** A home logged in as the target's admin, and a runner for --json commands in it. */
async function adminCli(url: string, admin: {password: string; username: string}): Promise<(args: string[]) => Promise<CliResult>> {
  const home = await mkdtemp(join(tmpdir(), 'mlflowctl-roles-home-'))
  okJson(await runCli(['login', '--tracking-uri', url, '--username', admin.username, '--password-stdin', '--json'], {home, input: admin.password}))
  return (args) => runCli([...args, '--json'], {home})
}

function errorOf(result: CliResult): {code: string; exit: number; message: string} {
  return JSON.parse(result.stdout).error
}

for (const kind of TARGETS) {
  describe(`roles commands on ${targetTitle(kind)} MLflow ${LATEST}`, () => {
    let target: AuthTarget
    let admin: PythonClient
    let cli: (args: string[]) => Promise<CliResult>

    before(async () => {
      target = await authTarget(LATEST, kind)
      admin = new PythonClient({credentials: target.admin, trackingUri: target.url, version: LATEST})
      cli = await adminCli(target.url, target.admin)
    })

    after(async () => target?.stop())

    it('create, list, get, update, grant, update-grant, revoke, assign, members, users roles, unassign and delete', async () => {
      const name = uniqueName('readers')
      const experiment = uniqueName('exp')
      const experimentId: string = await admin.call('tracking', 'create_experiment', experiment)
      const model = uniqueName('model')
      await admin.call('tracking', 'create_registered_model', model)
      const alice = uniqueName('alice')
      await admin.call('auth', 'create_user', alice, `pw-${uniqueName('pw')}`)

      const created = okJson(await cli(['roles', 'create', name, '--description', 'reads things']))
      const roleId: number = created.role.id
      assert.deepEqual(await admin.call('auth', 'get_role', roleId), {description: 'reads things', id: roleId, name, permissions: [], workspace: 'default'})
      assert.equal((await cli(['roles', 'create', name])).code, ExitCode.AlreadyExists)

      // Rows: a `*` pattern, an experiment by name (stored under its id), a model, a DENY.
      okJson(await cli(['roles', 'grant', name, 'experiment', '*', '--permission', 'read']))
      const byName = okJson(await cli(['roles', 'grant', name, 'experiment', experiment, '--permission', 'EDIT']))
      assert.equal(byName.row.resource_pattern, experimentId)
      assert.equal(byName.row.experiment_name, experiment)
      okJson(await cli(['roles', 'grant', '--id', String(roleId), 'model', model, '-p', 'DENY']))
      const rows = () => admin.call('auth', 'list_role_permissions', roleId)
      const shape = (list: Array<{permission: string; resource_pattern: string; resource_type: string}>) =>
        list.map((row) => `${row.resource_type} ${row.resource_pattern} ${row.permission}`).sort()
      assert.deepEqual(shape(await rows()), [`experiment * READ`, `experiment ${experimentId} EDIT`, `registered_model ${model} DENY`].sort())

      // Refused before any request, in MLflow's words; and on a resource that does not exist.
      const wildcardOnly = await cli(['roles', 'grant', name, 'run', '5', '--permission', 'READ'])
      assert.equal(wildcardOnly.code, ExitCode.Usage)
      assert.match(errorOf(wildcardOnly).message, /This resource type supports only wildcard \('\*'\) grants/)
      assert.equal((await cli(['roles', 'grant', name, 'model', uniqueName('nope'), '--permission', 'READ'])).code, ExitCode.NotFound)
      assert.equal((await cli(['roles', 'grant', name, 'experiment', '999999', '--permission', 'READ'])).code, ExitCode.NotFound)
      assert.equal((await rows()).length, 3)

      okJson(await cli(['roles', 'update-grant', name, 'experiment', '*', '--permission', 'USE']))
      assert.ok(shape(await rows()).includes('experiment * USE'))
      const noYes = await cli(['roles', 'revoke', name, 'model', model])
      assert.equal(noYes.code, ExitCode.Aborted)
      assert.equal((await rows()).length, 3)
      okJson(await cli(['roles', 'revoke', name, 'model', model, '--yes']))
      assert.deepEqual(shape(await rows()), [`experiment * USE`, `experiment ${experimentId} EDIT`].sort())
      assert.equal((await cli(['roles', 'revoke', name, 'model', model, '--yes'])).code, ExitCode.NotFound)

      okJson(await cli(['roles', 'assign', name, '--user', alice]))
      assert.deepEqual(
        (await admin.call('auth', 'list_user_roles', alice)).map((role: {name: string}) => role.name).filter((role: string) => !role.startsWith('__user_')),
        [name],
      )
      assert.equal((await cli(['roles', 'assign', name, '-u', alice])).code, ExitCode.AlreadyExists)
      const aliceId: number = (await admin.call('auth', 'get_user', alice)).id
      const members = okJson(await cli(['roles', 'members', name]))
      assert.deepEqual(members.members, [{user_id: aliceId, username: alice}])
      assert.deepEqual(
        (await admin.call('auth', 'list_role_users', roleId)).map((a: {user_id: number}) => a.user_id),
        [aliceId],
      )
      const held = okJson(await cli(['users', 'roles', alice]))
      assert.deepEqual(
        held.roles.map((role: {name: string}) => role.name),
        [name],
      )

      okJson(await cli(['roles', 'update', name, '--rename', `${name}-v2`, '--description', 'renamed']))
      const renamed = await admin.call('auth', 'get_role', roleId)
      assert.equal(renamed.name, `${name}-v2`)
      assert.equal(renamed.description, 'renamed')
      const listed = okJson(await cli(['roles', 'list']))
      assert.ok(listed.roles.some((role: {id: number; name: string}) => role.id === roleId && role.name === `${name}-v2`))
      assert.ok(
        listed.roles.every((role: {name: string}) => !role.name.startsWith('__user_')),
        'per-user roles are hidden without --all',
      )
      assert.ok(okJson(await cli(['roles', 'list', '--all'])).roles.some((role: {name: string}) => role.name.startsWith('__user_')))

      // A user's own grants are a hidden role that only `perms` changes.
      const hidden = (await admin.call('auth', 'list_user_roles', target.admin.username)).find((role: {name: string}) => role.name.startsWith('__user_'))
      const refused = await cli(['roles', 'delete', hidden.name, '--yes'])
      assert.equal(refused.code, ExitCode.Usage)
      assert.match(errorOf(refused).message, /mlflowctl perms/)
      assert.equal((await admin.call('auth', 'get_role', hidden.id)).name, hidden.name)

      okJson(await cli(['roles', 'unassign', `${name}-v2`, '--user', alice, '--yes']))
      assert.deepEqual(await admin.call('auth', 'list_role_users', roleId), [])
      assert.equal((await cli(['roles', 'delete', `${name}-v2`])).code, ExitCode.Aborted)
      okJson(await cli(['roles', 'delete', '--id', String(roleId), '--yes']))
      const [gone] = await admin.batch([{args: [roleId], client: 'auth', method: 'get_role'}])
      assert.equal(gone.error?.error_code, 'RESOURCE_DOES_NOT_EXIST')
      assert.equal((await cli(['roles', 'get', `${name}-v2`])).code, ExitCode.NotFound)
    })
  })

  describe(`access check and who on ${targetTitle(kind)} MLflow ${LATEST} (default_permission NO_PERMISSIONS)`, () => {
    let target: AuthTarget

    before(async () => {
      target = await authTarget(LATEST, kind, {defaultPermission: 'NO_PERMISSIONS'})
    })

    after(async () => target?.stop())

    it('explains each user’s permission, and each user can do exactly that', async () => {
      const admin = new PythonClient({credentials: target.admin, trackingUri: target.url, version: LATEST})
      const cli = await adminCli(target.url, target.admin)
      const experiment = uniqueName('exp')
      const experimentId: string = await admin.call('tracking', 'create_experiment', experiment)
      const role = async (name: string, rows: Array<[string, string, string]>) => {
        const created = await admin.call('auth', 'create_role', 'default', name)
        for (const [type, pattern, level] of rows) await admin.call('auth', 'add_role_permission', created.id, type, pattern, level)
        return created.id as number
      }

      const editors = await role(uniqueName('editors'), [['experiment', '*', 'EDIT']])
      const viewers = await role(uniqueName('viewers'), [['experiment', experimentId, 'READ']])
      const blocked = await role(uniqueName('blocked'), [['experiment', experimentId, 'DENY']])
      const users: Record<string, {password: string; username: string}> = {}
      for (const label of ['granted', 'star', 'viewer', 'denied', 'nobody', 'admin', 'mixed']) {
        users[label] = {password: `pw-${uniqueName('pw')}`, username: uniqueName(label)}
        await admin.call('auth', 'create_user', users[label].username, users[label].password)
      }

      await admin.call('auth', 'grant_user_permission', users.granted.username, 'experiment', experimentId, 'MANAGE')
      await admin.call('auth', 'assign_role', users.star.username, editors)
      await admin.call('auth', 'assign_role', users.viewer.username, viewers)
      for (const id of [editors, viewers, blocked]) await admin.call('auth', 'assign_role', users.denied.username, id)
      await admin.call('auth', 'update_user_admin', users.admin.username, true)
      // A READ of their own beside a role's EDIT on `*`: the higher wins.
      await admin.call('auth', 'grant_user_permission', users.mixed.username, 'experiment', experimentId, 'READ')
      await admin.call('auth', 'assign_role', users.mixed.username, editors)

      const expected: Record<string, {permission: string; source: string}> = {
        admin: {permission: 'MANAGE', source: 'platform-admin'},
        denied: {permission: 'DENY', source: 'deny'},
        granted: {permission: 'MANAGE', source: 'user-grant'},
        mixed: {permission: 'EDIT', source: 'role'},
        nobody: {permission: 'NO_PERMISSIONS', source: 'default'},
        star: {permission: 'EDIT', source: 'role'},
        viewer: {permission: 'READ', source: 'role'},
      }

      const who = okJson(await cli(['access', 'who', 'experiment', experiment]))
      assert.equal(who.default_permission, 'NO_PERMISSIONS')
      assert.deepEqual(who.resource, {experiment_name: experiment, resource_id: experimentId, resource_type: 'experiment'})
      for (const [label, want] of Object.entries(expected)) {
        const {username} = users[label]
        const checked = okJson(await cli(['access', 'check', username, 'experiment', experimentId]))
        const listed = who.users.find((verdict: {username: string}) => verdict.username === username)
        assert.deepEqual({permission: checked.access.permission, source: checked.access.source}, want, `${label}: ${checked.access.reason}`)
        assert.deepEqual(listed, checked.access, `${label}: who and check agree`)
        if (label !== 'admin') assert.equal(checked.access.server_permission, want.permission, `${label}: the server resolves the same level`)

        // What the verdict says is what the user can do: read the experiment, and edit it.
        const client = new PythonClient({credentials: users[label], trackingUri: target.url, version: LATEST})
        const [read, edit] = await client.batch([
          {args: [experimentId], client: 'tracking', method: 'get_experiment'},
          {args: [experimentId, 'checked-by', label], client: 'tracking', method: 'set_experiment_tag'},
        ])
        const canRead = ['READ', 'USE', 'EDIT', 'MANAGE'].includes(want.permission)
        const canEdit = ['EDIT', 'MANAGE'].includes(want.permission)
        assert.equal(read.error === undefined, canRead, `${label} (${want.permission}) reading: ${JSON.stringify(read.error)}`)
        assert.equal(edit.error === undefined, canEdit, `${label} (${want.permission}) editing: ${JSON.stringify(edit.error)}`)
        if (!canRead) assert.equal(read.error?.error_code, 'PERMISSION_DENIED')
      }

      // The deciding rows are named: the DENY's role, the `*` row.
      const denied = okJson(await cli(['access', 'check', users.denied.username, 'experiment', experimentId])).access
      assert.deepEqual(
        denied.rows.map((row: {permission: string; resource_pattern: string}) => `${row.resource_pattern} ${row.permission}`),
        [`${experimentId} DENY`],
      )
      const star = okJson(await cli(['access', 'check', users.star.username, 'experiment', experimentId])).access
      assert.deepEqual(
        star.rows.map((row: {per_user: boolean; resource_pattern: string}) => [row.resource_pattern, row.per_user]),
        [['*', false]],
      )
    })
  })
}

describe('servers without the role API', () => {
  it(`MLflow ${MLFLOW_VERSIONS.legacy} has roles, but no per-user permission views: access check exits 8 naming 3.13`, async () => {
    const server = await acquireServer(MLFLOW_VERSIONS.legacy, 'basic-auth')
    const cli = await adminCli(server.url, server.admin!)
    const admin = new PythonClient({credentials: server.admin!, trackingUri: server.url, version: MLFLOW_VERSIONS.legacy})
    const name = uniqueName('legacy-role')
    const created = okJson(await cli(['roles', 'create', name]))
    assert.equal((await admin.call('auth', 'get_role', created.role.id)).name, name)
    const result = await cli(['access', 'check', server.admin!.username, 'experiment', '0'])
    assert.equal(result.code, ExitCode.Unsupported)
    assert.equal(errorOf(result).message, "This server cannot list a user's permissions: MLflow added users/permissions/list and get in 3.13")
  })

  it('a tracking server without the basic-auth app: roles commands exit 8 naming 3.12', async () => {
    const server = await acquireServer(LATEST, 'plain')
    const home = await mkdtemp(join(tmpdir(), 'mlflowctl-roles-home-'))
    const env = {MLFLOW_TRACKING_PASSWORD: 'unused', MLFLOW_TRACKING_URI: server.url, MLFLOW_TRACKING_USERNAME: 'nobody'}
    for (const args of [
      ['roles', 'list'],
      ['roles', 'create', 'readers'],
      ['users', 'roles', 'alice'],
    ]) {
      const result = await runCli([...args, '--json'], {env, home})
      assert.equal(result.code, ExitCode.Unsupported, `${args.join(' ')}: ${result.stdout}${result.stderr}`)
      assert.equal(errorOf(result).message, 'This server does not offer roles: MLflow added them to its basic-auth app in 3.12')
    }
  })
})
