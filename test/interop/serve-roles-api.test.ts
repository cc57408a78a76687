/**
 * MLflow 3.14+'s roles through the REST API and MLflow's own Python auth client: the same test
 * bodies run against MLflow 3.17.2's basic-auth app and against serve in front of a plain MLflow
 * 3.17.2, so both must give the same answers (roles, their rows, assignments, who may do what,
 * MLflow's validation errors). Where serve is stricter, the body says so and why.
 */
import assert from 'node:assert/strict'
import {after, before, describe, it} from 'node:test'

import {type AuthTarget, type AuthTargetKind, authTarget, targetTitle} from '../support/auth-target.js'
import {type Credentials} from '../support/mlflow-server.js'
import {MLFLOW_VERSIONS} from '../support/mlflow-versions.js'
import {type CallResult, expectError, PythonClient, type PythonValue} from '../support/python-client.js'
import {restClient} from '../support/rest.js'
import {releaseServers, uniqueName} from '../support/servers.js'

const version = MLFLOW_VERSIONS.latest

after(releaseServers)

/** One call of MLflow's AuthServiceClient, whatever its outcome. */
async function attempt(client: PythonClient, method: string, ...args: unknown[]): Promise<CallResult> {
  const [result] = await client.batch([{args, client: 'auth', method}])
  return result
}

/** MLflow's error answer without what 3.17 adds beside it (error_class, sqlstate). */
function errorOf(answer: {json(): PythonValue; status: number}): {error_code: string; message: string; status: number} {
  const {error_code: code, message} = answer.json()
  return {error_code: code, message, status: answer.status}
}

/** The error code of a call that must fail. */
async function failure(client: PythonClient, method: string, ...args: unknown[]): Promise<{code: null | string; message: string}> {
  const error = expectError(await attempt(client, method, ...args))
  return {code: error.error_code, message: error.message}
}

for (const kind of ['basic-auth', 'serve'] as AuthTargetKind[]) {
  describe(`roles through ${targetTitle(kind)} MLflow ${version}`, () => {
    let target: AuthTarget
    let alice: Credentials
    let bob: Credentials
    let admin: PythonClient
    const rest = restClient(() => target.url)
    const as = (who: Credentials) => new PythonClient({credentials: who, trackingUri: target.url, version})
    const userId = async (who: Credentials) => (await rest.ok(target.admin, 'GET', `/api/2.0/mlflow/users/get?username=${who.username}`)).user.id as number

    before(async () => {
      alice = {password: 'alice-password-123', username: uniqueName('alice')}
      bob = {password: 'bob-password-1234', username: uniqueName('bob')}
      target = await authTarget(version, kind, {users: [alice, bob]})
      admin = as(target.admin)
    })
    after(async () => target?.stop())

    it('creates, reads, renames and deletes a role, with MLflow’s validation errors', async () => {
      const name = uniqueName('readers')
      const role = await admin.call('auth', 'create_role', 'default', name, 'may read')
      assert.deepEqual(role, {description: 'may read', id: role.id, name, permissions: [], workspace: 'default'})
      assert.equal(typeof role.id, 'number')
      assert.deepEqual(await admin.call('auth', 'get_role', role.id), role)
      assert.ok((await admin.call<PythonValue[]>('auth', 'list_roles', 'default')).some((listed) => listed.id === role.id))
      assert.ok((await admin.call<PythonValue[]>('auth', 'list_all_roles')).some((listed) => listed.id === role.id))

      assert.equal((await failure(admin, 'create_role', 'default', name)).code, 'RESOURCE_ALREADY_EXISTS')
      for (const reserved of ['__user_99999__', '__user_x']) {
        const refused = await failure(admin, 'create_role', 'default', reserved)
        assert.equal(refused.code, 'INVALID_PARAMETER_VALUE')
        assert.match(refused.message, new RegExp(`Role name '${reserved}' uses the reserved '__user_' prefix`))
      }

      assert.deepEqual(await failure(admin, 'create_role', 'default', '  '), {
        code: 'INVALID_PARAMETER_VALUE',
        message: 'INVALID_PARAMETER_VALUE: Role name cannot be empty.',
      })
      assert.deepEqual(await failure(admin, 'get_role', 987_654_321), {
        code: 'RESOURCE_DOES_NOT_EXIST',
        message: 'RESOURCE_DOES_NOT_EXIST: Role with id=987654321 not found',
      })
      assert.deepEqual(errorOf(await rest.call(target.admin, 'GET', '/api/3.0/mlflow/roles/get?role_id=abc')), {
        error_code: 'INVALID_PARAMETER_VALUE',
        message: "Parameter 'role_id' must be an integer. Got: 'abc'",
        status: 400,
      })

      const renamed = uniqueName('viewers')
      assert.deepEqual(await admin.call('auth', 'update_role', role.id, renamed), {...role, name: renamed})
      assert.deepEqual(await admin.call('auth', 'update_role', role.id, null, 'may view'), {...role, description: 'may view', name: renamed})
      assert.equal((await failure(admin, 'update_role', role.id, '__user_1__')).code, 'INVALID_PARAMETER_VALUE')
      assert.deepEqual(errorOf(await rest.call(target.admin, 'PATCH', '/api/3.0/mlflow/roles/update', {role_id: role.id})), {
        error_code: 'INVALID_PARAMETER_VALUE',
        message: "At least one of 'name' or 'description' must be provided to update a role.",
        status: 400,
      })
      // A non-admin without a role_id, row id or workspace is told what the request lacks.
      assert.deepEqual(errorOf(await rest.call(alice, 'POST', '/api/3.0/mlflow/roles/create', {name: 'x'})), {
        error_code: 'INVALID_PARAMETER_VALUE',
        message: 'Request must include one of: role_id, role_permission_id, workspace.',
        status: 400,
      })

      assert.equal((await attempt(admin, 'delete_role', role.id)).error, undefined)
      assert.equal((await failure(admin, 'get_role', role.id)).code, 'RESOURCE_DOES_NOT_EXIST')
      assert.equal((await failure(admin, 'delete_role', role.id)).code, 'RESOURCE_DOES_NOT_EXIST')
    })

    it('adds, updates and removes rows by id, name and *, as MLflow validates them', async () => {
      const role = await admin.call('auth', 'create_role', 'default', uniqueName('team'))
      const model = uniqueName('model')
      const all = await admin.call('auth', 'add_role_permission', role.id, 'experiment', '*', 'READ')
      assert.deepEqual(all, {id: all.id, permission: 'READ', resource_pattern: '*', resource_type: 'experiment', role_id: role.id})
      const denied = await admin.call('auth', 'add_role_permission', role.id, 'registered_model', model, 'DENY')
      const byId = await admin.call('auth', 'add_role_permission', role.id, 'experiment', '123456789', 'MANAGE')
      const runs = await admin.call('auth', 'add_role_permission', role.id, 'run', '*', 'USE')
      assert.equal((await failure(admin, 'add_role_permission', role.id, 'experiment', '*', 'EDIT')).code, 'RESOURCE_ALREADY_EXISTS')

      const invalid: [string, string, string, string][] = [
        ['run', 'run-1', 'READ', "Invalid resource_pattern 'run-1' for resource_type='run'. This resource type supports only wildcard ('*') grants."],
        [
          'experiment',
          '1',
          'NO_PERMISSIONS',
          "Invalid permission 'NO_PERMISSIONS' for resource_type='experiment'. Resource-level grants accept only: ('DENY', 'EDIT', 'MANAGE', 'READ', 'USE').",
        ],
        ['workspace', '*', 'READ', "Invalid permission 'READ' for resource_type='workspace'. Workspace-wide grants accept only: ('MANAGE', 'USE')."],
        ['experiment', '1', 'OWNER', "Invalid permission 'OWNER'. Valid permissions are: ('READ', 'USE', 'EDIT', 'MANAGE', 'NO_PERMISSIONS', 'DENY')"],
      ]
      for (const [type, pattern, permission, message] of invalid) {
        assert.deepEqual(await failure(admin, 'add_role_permission', role.id, type, pattern, permission), {
          code: 'INVALID_PARAMETER_VALUE',
          message: `INVALID_PARAMETER_VALUE: ${message}`,
        })
      }

      assert.match(
        (await failure(admin, 'add_role_permission', role.id, 'experiments', '1', 'READ')).message,
        /Invalid resource type 'experiments'\. Valid resource types are: \(/,
      )
      assert.equal((await failure(admin, 'add_role_permission', 987_654_321, 'experiment', '1', 'READ')).code, 'RESOURCE_DOES_NOT_EXIST')

      const edited = await admin.call('auth', 'update_role_permission', all.id, 'EDIT')
      assert.deepEqual(edited, {...all, permission: 'EDIT'})
      assert.equal((await failure(admin, 'update_role_permission', all.id, 'NO_PERMISSIONS')).code, 'INVALID_PARAMETER_VALUE')
      assert.equal((await failure(admin, 'update_role_permission', 987_654_321, 'READ')).code, 'RESOURCE_DOES_NOT_EXIST')
      const byRowId = (rows: PythonValue[]) => [...rows].sort((a, b) => a.id - b.id)
      assert.deepEqual(byRowId(await admin.call('auth', 'list_role_permissions', role.id)), byRowId([edited, denied, byId, runs]))
      assert.deepEqual(byRowId((await admin.call('auth', 'get_role', role.id)).permissions), byRowId([edited, denied, byId, runs]))

      assert.equal((await attempt(admin, 'remove_role_permission', denied.id)).error, undefined)
      assert.equal((await failure(admin, 'remove_role_permission', denied.id)).code, 'RESOURCE_DOES_NOT_EXIST')
      assert.deepEqual(byRowId(await admin.call('auth', 'list_role_permissions', role.id)), byRowId([edited, byId, runs]))

      // Deleting the role takes its rows along.
      await admin.call('auth', 'delete_role', role.id)
      assert.equal((await failure(admin, 'update_role_permission', byId.id, 'READ')).code, 'RESOURCE_DOES_NOT_EXIST')
    })

    it('assigns and unassigns roles, and lists a user’s roles and rows', async () => {
      const name = uniqueName('team')
      const role = await admin.call('auth', 'create_role', 'default', name)
      const row = await admin.call('auth', 'add_role_permission', role.id, 'experiment', '*', 'READ')
      const aliceId = await userId(alice)
      const assignment = await admin.call('auth', 'assign_role', alice.username, role.id)
      assert.deepEqual(assignment, {id: assignment.id, role_id: role.id, user_id: aliceId})
      assert.equal((await failure(admin, 'assign_role', alice.username, role.id)).code, 'RESOURCE_ALREADY_EXISTS')
      assert.equal((await failure(admin, 'assign_role', uniqueName('nobody'), role.id)).code, 'RESOURCE_DOES_NOT_EXIST')
      assert.equal((await failure(admin, 'assign_role', alice.username, 987_654_321)).code, 'RESOURCE_DOES_NOT_EXIST')

      assert.deepEqual(await admin.call('auth', 'list_role_users', role.id), [assignment])
      assert.deepEqual(await admin.call('auth', 'list_user_roles', alice.username), [
        {description: null, id: role.id, name, permissions: [row], workspace: 'default'},
      ])
      // Her own view of her rows, and the admin's, with the role each comes from.
      const rowView = {permission: 'READ', resource_pattern: '*', resource_type: 'experiment', role_id: role.id, role_name: name, workspace: 'default'}
      assert.deepEqual(await as(alice).call('auth', 'list_user_roles', alice.username), [
        {description: null, id: role.id, name, permissions: [row], workspace: 'default'},
      ])
      assert.deepEqual(await rest.ok(alice, 'GET', '/api/3.0/mlflow/users/current/permissions'), {is_admin: false, permissions: [rowView]})
      assert.deepEqual(await rest.ok(target.admin, 'GET', `/api/3.0/mlflow/users/permissions/list?username=${alice.username}`), {
        is_admin: false,
        permissions: [rowView],
      })
      // The admin's user list carries each user's roles (MLflow 3.14+).
      const listed = (await rest.ok(target.admin, 'GET', '/api/2.0/mlflow/users/list')).users.find((user: PythonValue) => user.username === alice.username)
      assert.deepEqual(listed, {
        id: aliceId,
        is_admin: false,
        roles: [{description: null, id: role.id, name, permissions: [row], workspace: 'default'}],
        username: alice.username,
      })

      assert.equal((await attempt(admin, 'unassign_role', alice.username, role.id)).error, undefined)
      assert.deepEqual(await failure(admin, 'unassign_role', alice.username, role.id), {
        code: 'RESOURCE_DOES_NOT_EXIST',
        message: `RESOURCE_DOES_NOT_EXIST: User role assignment (user_id=${aliceId}, role_id=${role.id}) not found`,
      })
      assert.deepEqual(await admin.call('auth', 'list_user_roles', alice.username), [])
      await admin.call('auth', 'delete_role', role.id)
    })

    it('keeps a user’s own grants in their __user_<id>__ role, which no one can create', async () => {
      const carol = {password: 'carol-password-12', username: uniqueName('carol')}
      await admin.call('auth', 'create_user', carol.username, carol.password)
      const carolId = await userId(carol)
      await admin.call('auth', 'grant_user_permission', carol.username, 'experiment', '123456788', 'READ')
      const [own] = await admin.call<PythonValue[]>('auth', 'list_user_roles', carol.username)
      assert.equal(own.name, `__user_${carolId}__`)
      assert.deepEqual(own.permissions, [
        {id: own.permissions[0].id, permission: 'READ', resource_pattern: '123456788', resource_type: 'experiment', role_id: own.id},
      ])
      assert.equal((await failure(admin, 'create_role', 'default', own.name)).code, 'INVALID_PARAMETER_VALUE')
      // The row can be changed in place through the roles API, as `perms update` does.
      await admin.call('auth', 'update_role_permission', own.permissions[0].id, 'EDIT')
      assert.deepEqual(await admin.call('auth', 'get_user_permission', carol.username, 'experiment', '123456788'), {allowed: true, permission: 'EDIT'})
      // A revoke removes the row and leaves the (now empty) role.
      await admin.call('auth', 'revoke_user_permission', carol.username, 'experiment', '123456788')
      assert.deepEqual(await admin.call('auth', 'list_user_roles', carol.username), [{...own, permissions: []}])
      await admin.call('auth', 'delete_user', carol.username)
      assert.equal((await failure(admin, 'get_role', own.id)).code, 'RESOURCE_DOES_NOT_EXIST', 'the per-user role goes with its user')
    })

    it('lets admins and administrators of the workspace manage roles, and members read them', async () => {
      const asAlice = as(alice)
      const asBob = as(bob)
      const denied = async (client: PythonClient, method: string, ...args: unknown[]) =>
        assert.equal((await failure(client, method, ...args)).code, 'PERMISSION_DENIED', `${method} should be refused`)
      // A user holding no role can do nothing with roles.
      await denied(asAlice, 'create_role', 'default', uniqueName('mine'))
      await denied(asAlice, 'list_all_roles')
      await denied(asAlice, 'list_roles', 'default')
      const adminsRole = await admin.call('auth', 'create_role', 'default', uniqueName('workspace-admins'))
      await denied(asAlice, 'get_role', adminsRole.id)
      // A role that does not exist is refused, not reported missing: existence does not leak.
      await denied(asAlice, 'get_role', 987_654_321)

      await admin.call('auth', 'add_role_permission', adminsRole.id, 'workspace', '*', 'MANAGE')
      await admin.call('auth', 'assign_role', alice.username, adminsRole.id)
      const team = await asAlice.call('auth', 'create_role', 'default', uniqueName('team'))
      await asAlice.call('auth', 'add_role_permission', team.id, 'experiment', '*', 'READ')
      const assignment = await asAlice.call('auth', 'assign_role', bob.username, team.id)
      assert.deepEqual(await asAlice.call('auth', 'list_role_users', team.id), [assignment])
      assert.ok((await asAlice.call<PythonValue[]>('auth', 'list_roles', 'default')).some((role) => role.id === team.id))
      await denied(asAlice, 'list_all_roles')
      assert.equal((await asAlice.call<PythonValue[]>('auth', 'list_user_roles', bob.username)).length, 1)

      // Bob holds a role in the workspace: he may read roles, not change them.
      assert.equal((await asBob.call('auth', 'get_role', team.id)).id, team.id)
      assert.equal((await asBob.call<PythonValue[]>('auth', 'list_role_permissions', team.id)).length, 1)
      await denied(asBob, 'add_role_permission', team.id, 'experiment', '1', 'MANAGE')
      await denied(asBob, 'create_role', 'default', uniqueName('his'))
      await denied(asBob, 'list_role_users', team.id)
      await denied(asBob, 'list_user_roles', alice.username)
      await denied(asBob, 'assign_role', bob.username, adminsRole.id)

      await asAlice.call('auth', 'delete_role', team.id)
      await admin.call('auth', 'delete_role', adminsRole.id)
      await denied(asAlice, 'create_role', 'default', uniqueName('mine'))
    })

    it('refuses a role outside the default workspace only where there are no workspaces to hold it', async () => {
      const result = await attempt(admin, 'create_role', 'elsewhere', uniqueName('team'))
      if (kind === 'serve') {
        // serve has no workspaces: a role elsewhere could never apply, so it is refused (stricter).
        assert.equal(expectError(result).error_code, 'INVALID_PARAMETER_VALUE')
        assert.match(expectError(result).message, /Workspace 'elsewhere' does not exist: mlflowctl serve has no workspaces/)
      } else {
        // MLflow stores it although its workspaces are off; nothing it holds ever applies.
        assert.equal(result.ok?.workspace, 'elsewhere')
        await admin.call('auth', 'delete_role', result.ok.id)
      }
    })
  })
}
