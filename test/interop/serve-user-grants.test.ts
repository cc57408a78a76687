/**
 * MLflow 3.17's per-user grant API (`users/permissions/{grant,revoke,get}`) on every resource type
 * it takes, `*` and DENY: the same bodies run against MLflow 3.17.2's basic-auth app and against
 * serve in front of a plain MLflow 3.17.2, so both must answer alike: the rows written (to the
 * user's own role), the levels resolved, who may grant on what, and MLflow's refusals word for word.
 */
import assert from 'node:assert/strict'
import {after, before, describe, it} from 'node:test'

import {type AuthTarget, type AuthTargetKind, authTarget, targetTitle} from '../support/auth-target.js'
import {type Credentials} from '../support/mlflow-server.js'
import {MLFLOW_VERSIONS} from '../support/mlflow-versions.js'
import {type Json, type RestAnswer, restClient} from '../support/rest.js'
import {releaseServers, uniqueName} from '../support/servers.js'

const version = MLFLOW_VERSIONS.latest
const PATH = '/api/3.0/mlflow/users/permissions'

after(releaseServers)

/** An answer as the tests compare it: the status, and MLflow's error without what 3.17 adds beside it. */
function outcome(answer: RestAnswer): {body: Json | string; status: number} {
  if (answer.status === 200) return {body: answer.json(), status: 200}
  if (answer.status === 403) return {body: answer.text, status: 403}
  const {error_code: code, message} = answer.json()
  return {body: {error_code: code, message}, status: answer.status}
}

const invalid = (message: string) => ({body: {error_code: 'INVALID_PARAMETER_VALUE', message}, status: 400})
const DENIED = {body: 'Permission denied', status: 403}
const OK = {body: {}, status: 200}
const NOT_RESOLVABLE = (type: string) => invalid(`resource_type '${type}' is not supported by the per-user permission convenience APIs.`)
const WORKSPACE_REFUSED = invalid(
  "resource_type 'workspace' is not supported by the per-user permission convenience APIs. Use set_workspace_permission / delete_workspace_permission for workspace-wide grants.",
)

for (const kind of ['basic-auth', 'serve'] as AuthTargetKind[]) {
  describe(`per-user grants on every type through ${targetTitle(kind)} MLflow ${version}`, () => {
    let target: AuthTarget
    const rest = restClient(() => target.url)
    const alice = {password: 'alice-password-123', username: uniqueName('alice')}
    const bob = {password: 'bob-password-12345', username: uniqueName('bob')}
    const carol = {password: 'carol-password-123', username: uniqueName('carol')}
    const u = uniqueName('g')
    // Resources need not exist (but one, below): MLflow stores and resolves rows by their pattern alone.
    const experiment = String(900_000_000 + (process.pid % 1_000_000))
    const names = {gateway: `ge-${u}`, mcp: `mcp-${u}`, model: `model-${u}`, prompt: `prompt-${u}`, scorer: `${experiment}/my%20scorer`}
    /** One resource of each type the API resolves (a prompt it does not). */
    const resolvable = [
      ['experiment', experiment],
      ['registered_model', names.model],
      ['mcp_server', names.mcp],
      ['gateway_endpoint', names.gateway],
      ['scorer', names.scorer],
    ]

    const grant = async (who: Credentials, username: string, type: string, id: string, permission: string) =>
      outcome(await rest.call(who, 'POST', `${PATH}/grant`, {permission, resource_id: id, resource_type: type, username}))
    const revoke = async (who: Credentials, username: string, type: string, id: string) =>
      outcome(await rest.call(who, 'POST', `${PATH}/revoke`, {resource_id: id, resource_type: type, username}))
    const get = async (who: Credentials, username: string, type: string, id: string) =>
      outcome(await rest.call(who, 'GET', `${PATH}/get?${new URLSearchParams({resource_id: id, resource_type: type, username})}`))
    const rowsOf = async (username: string) =>
      ((await rest.ok(target.admin, 'GET', `${PATH}/list?username=${username}`)).permissions as Json[])
        .map((row) => `${row.role_name} ${row.resource_type} ${row.resource_pattern} ${row.permission}`)
        .sort()
    const userId = async (username: string) => (await rest.ok(target.admin, 'GET', `/api/2.0/mlflow/users/get?username=${username}`)).user.id as number

    before(async () => {
      target = await authTarget(version, kind, {users: [alice, bob, carol]})
      // The one resource that exists: MLflow answers a workspace admin's question only about a
      // resource it finds (serve, which has one workspace, about any).
      await rest.ok(target.admin, 'POST', '/api/2.0/mlflow/registered-models/create', {name: names.model})
      // alice holds MANAGE on one resource of each type the API resolves, and on a prompt.
      for (const [type, id] of [...resolvable, ['prompt', names.prompt]])
        assert.deepEqual(await grant(target.admin, alice.username, type, id, 'MANAGE'), OK, `${type} ${id}`)
      // carol administers the default workspace through a role.
      const role = await rest.ok(target.admin, 'POST', '/api/3.0/mlflow/roles/create', {name: `wsadmins-${u}`, workspace: 'default'})
      await rest.ok(target.admin, 'POST', '/api/3.0/mlflow/roles/permissions/add', {
        permission: 'MANAGE',
        resource_pattern: '*',
        resource_type: 'workspace',
        role_id: role.role.id,
      })
      await rest.ok(target.admin, 'POST', '/api/3.0/mlflow/roles/assign', {role_id: role.role.id, username: carol.username})
    })

    after(async () => target?.stop())

    it("an admin grants on every container by id and by '*', the sub-resource tiers by '*', DENY included: rows of the user's own role", async () => {
      const grants: Array<[string, string, string]> = [
        ['experiment', experiment, 'DENY'],
        ['experiment', '*', 'EDIT'],
        ['registered_model', names.model, 'READ'],
        ['prompt', names.prompt, 'USE'],
        ['prompt', '*', 'DENY'],
        ['scorer', names.scorer, 'MANAGE'],
        ['gateway_secret', `gs-${u}`, 'USE'],
        ['gateway_endpoint', '*', 'READ'],
        ['gateway_model_definition', `gmd-${u}`, 'EDIT'],
        ['mcp_server', names.mcp, 'DENY'],
        ['mcp_server', '*', 'USE'],
        ['run', '*', 'READ'],
        ['trace', '*', 'DENY'],
        ['assessment', '*', 'EDIT'],
        ['logged_model', '*', 'USE'],
        ['review_queue', '*', 'READ'],
        ['registered_model_version', '*', 'DENY'],
        ['prompt_version', '*', 'READ'],
        ['scorer_version', '*', 'MANAGE'],
        ['mcp_server_version', '*', 'READ'],
      ]
      for (const [type, id, level] of grants) assert.deepEqual(await grant(target.admin, bob.username, type, id, level), OK, `${type} ${id} ${level}`)
      const own = `__user_${await userId(bob.username)}__`
      assert.deepEqual(await rowsOf(bob.username), grants.map(([type, id, level]) => `${own} ${type} ${id} ${level}`).sort())

      // The levels MLflow resolves: a DENY on the id wins over '*', '*' holds for any other id.
      const resolved = async (type: string, id: string) => ((await get(target.admin, bob.username, type, id)).body as Json).permission
      assert.equal(await resolved('experiment', experiment), 'DENY')
      assert.equal(await resolved('experiment', '12345'), 'EDIT')
      assert.equal(await resolved('mcp_server', names.mcp), 'DENY')
      assert.equal(await resolved('mcp_server', `other-${u}`), 'USE')
      assert.equal(await resolved('gateway_endpoint', `other-${u}`), 'READ')
      assert.equal(await resolved('trace', '*'), 'DENY')
      assert.equal(await resolved('scorer_version', '*'), 'MANAGE')
      assert.deepEqual(await get(target.admin, bob.username, 'scorer', names.scorer), {body: {allowed: true, permission: 'MANAGE'}, status: 200})

      for (const [type, id] of grants) assert.deepEqual(await revoke(target.admin, bob.username, type, id), OK, `${type} ${id}`)
      assert.deepEqual(await rowsOf(bob.username), [])
    })

    it('refuses in MLflow’s words: the workspace slot, an id on a wildcard-only tier, unknown types and levels, duplicates, what is not there', async () => {
      const admin = target.admin
      assert.deepEqual(await grant(admin, bob.username, 'workspace', '*', 'USE'), WORKSPACE_REFUSED)
      assert.deepEqual(await revoke(admin, bob.username, 'workspace', '*'), WORKSPACE_REFUSED)
      assert.deepEqual(await get(admin, bob.username, 'workspace', '*'), WORKSPACE_REFUSED)
      assert.deepEqual(
        await grant(admin, bob.username, 'run', '5', 'READ'),
        invalid("Invalid resource_pattern '5' for resource_type='run'. This resource type supports only wildcard ('*') grants."),
      )
      assert.deepEqual(
        await grant(admin, bob.username, 'notebook', '5', 'READ'),
        invalid(
          "Invalid resource type 'notebook'. Valid resource types are: ('assessment', 'experiment', 'gateway_endpoint', 'gateway_model_definition', 'gateway_secret', 'logged_model', 'mcp_server', 'mcp_server_version', 'prompt', 'prompt_version', 'registered_model', 'registered_model_version', 'review_queue', 'run', 'scorer', 'scorer_version', 'trace', 'workspace')",
        ),
      )
      assert.deepEqual(
        await grant(admin, bob.username, 'experiment', experiment, 'NO_PERMISSIONS'),
        invalid(
          "Invalid permission 'NO_PERMISSIONS' for resource_type='experiment'. Resource-level grants accept only: ('DENY', 'EDIT', 'MANAGE', 'READ', 'USE').",
        ),
      )
      assert.deepEqual(
        await grant(admin, bob.username, 'prompt', '*', 'ALL'),
        invalid("Invalid permission 'ALL'. Valid permissions are: ('READ', 'USE', 'EDIT', 'MANAGE', 'NO_PERMISSIONS', 'DENY')"),
      )
      assert.deepEqual(await grant(admin, bob.username, 'gateway_secret', '*', 'READ'), OK)
      assert.deepEqual(await grant(admin, bob.username, 'gateway_secret', '*', 'EDIT'), {
        body: {
          error_code: 'RESOURCE_ALREADY_EXISTS',
          message: `Permission for user=${bob.username} on resource_type=gateway_secret, resource_id=* already exists.`,
        },
        status: 400,
      })
      assert.deepEqual(await revoke(admin, bob.username, 'gateway_secret', '*'), OK)
      assert.deepEqual(await revoke(admin, bob.username, 'gateway_secret', '*'), {
        body: {error_code: 'RESOURCE_DOES_NOT_EXIST', message: `Permission for user=${bob.username} on resource_type=gateway_secret, resource_id=* not found.`},
        status: 404,
      })
      const nobody = uniqueName('nobody')
      assert.deepEqual(await grant(admin, nobody, 'experiment', experiment, 'READ'), {
        body: {error_code: 'RESOURCE_DOES_NOT_EXIST', message: `User with username=${nobody} not found`},
        status: 404,
      })
      // One prompt or one run is not something this API resolves, for an admin too.
      assert.deepEqual(await get(admin, bob.username, 'prompt', names.prompt), NOT_RESOLVABLE('prompt'))
      assert.deepEqual(await get(admin, bob.username, 'run', '5'), NOT_RESOLVABLE('run'))
      assert.deepEqual(await rowsOf(bob.username), [])
    })

    it("lets a holder of MANAGE grant and revoke on that one resource, and workspace admins grant '*'; nobody else", async () => {
      // alice: MANAGE on one resource of each resolvable type.
      for (const [type, id] of resolvable) assert.deepEqual(await grant(alice, bob.username, type, id, 'READ'), OK, `alice grants on ${type} ${id}`)
      assert.deepEqual(await grant(alice, bob.username, 'experiment', '12345', 'READ'), DENIED)
      assert.deepEqual(await grant(alice, bob.username, 'experiment', '*', 'READ'), DENIED)
      assert.deepEqual(await grant(alice, bob.username, 'run', '*', 'DENY'), DENIED)
      // Her MANAGE on the prompt does not help: this API resolves no single prompt.
      assert.deepEqual(await grant(alice, bob.username, 'prompt', names.prompt, 'READ'), NOT_RESOLVABLE('prompt'))
      assert.deepEqual(await grant(alice, bob.username, 'run', '5', 'READ'), NOT_RESOLVABLE('run'))
      // A scorer id without its experiment is a validation error, not a refusal.
      assert.deepEqual(
        await grant(alice, bob.username, 'scorer', 'my-scorer', 'READ'),
        invalid("Invalid scorer resource_id. Expected '<experiment_id>/<scorer_name>'."),
      )
      assert.deepEqual(await grant(alice, bob.username, 'workspace', '*', 'USE'), WORKSPACE_REFUSED)
      assert.deepEqual(await revoke(alice, bob.username, 'experiment', experiment), OK)
      assert.deepEqual(await revoke(alice, bob.username, 'experiment', '12345'), DENIED)

      // Asking about another user is for admins and workspace admins; about oneself, for anyone.
      assert.deepEqual(await get(alice, bob.username, 'registered_model', names.model), DENIED)
      assert.deepEqual(await get(alice, alice.username, 'experiment', experiment), {body: {allowed: true, permission: 'MANAGE'}, status: 200})
      assert.deepEqual(await get(carol, bob.username, 'registered_model', names.model), {body: {allowed: false, permission: 'READ'}, status: 200})
      assert.deepEqual(await get(carol, bob.username, 'prompt', names.prompt), DENIED)

      // carol administers the workspace: '*' rows are hers to give.
      assert.deepEqual(await grant(carol, bob.username, 'experiment', '*', 'USE'), OK)
      assert.deepEqual(await grant(carol, bob.username, 'run', '*', 'DENY'), OK)
      assert.deepEqual(await get(carol, bob.username, 'experiment', '*'), {body: {allowed: true, permission: 'USE'}, status: 200})
      const own = `__user_${await userId(bob.username)}__`
      assert.deepEqual(
        await rowsOf(bob.username),
        [
          `${own} experiment * USE`,
          `${own} gateway_endpoint ${names.gateway} READ`,
          `${own} mcp_server ${names.mcp} READ`,
          `${own} registered_model ${names.model} READ`,
          `${own} run * DENY`,
          `${own} scorer ${names.scorer} READ`,
        ].sort(),
      )
      for (const [type, id] of [
        ['experiment', '*'],
        ['run', '*'],
      ])
        assert.deepEqual(await revoke(carol, bob.username, type, id), OK)
    })

    it('resolves an admin’s own level from rows and default_permission alone, as MLflow (it does not know platform admins)', async () => {
      // The shared servers' default_permission is READ; the admin holds no row on this experiment.
      assert.deepEqual(await get(target.admin, target.admin.username, 'experiment', '987654321'), {body: {allowed: false, permission: 'READ'}, status: 200})
    })
  })
}
