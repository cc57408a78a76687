/**
 * `mlflowctl perms` on the resource types of MLflow 3.17's per-user grants (prompts, MCP servers,
 * gateway objects, the sub-resource tiers), `*` for all of a kind, and DENY: run through the built
 * command, each effect checked as the user sees it through MLflow's Python client. Servers
 * without a feature (MLflow 3.12) get exit 8 and a sentence naming the release that added it.
 */
import assert from 'node:assert/strict'
import {mkdtemp} from 'node:fs/promises'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {after, before, describe, it} from 'node:test'

import {ExitCode} from '../../src/core/errors.js'
import {type AuthTarget, authTarget, type AuthTargetKind, targetTitle} from '../support/auth-target.js'
import {okJson, runCli} from '../support/cli.js'
import {type Credentials} from '../support/mlflow-server.js'
import {MLFLOW_VERSIONS} from '../support/mlflow-versions.js'
import {expectError, PythonClient} from '../support/python-client.js'
import {acquireServer, releaseServers, uniqueName} from '../support/servers.js'

after(releaseServers)

/** Where the 3.17 bodies run: MLflow's own app, and serve in front of a plain MLflow. */
const TARGETS: AuthTargetKind[] = ['basic-auth', 'serve']

const latest = MLFLOW_VERSIONS.latest

async function loggedIn(url: string, admin: Credentials) {
  const home = await mkdtemp(join(tmpdir(), 'mlflowctl-perms-kinds-'))
  okJson(await runCli(['login', '--tracking-uri', url, '--username', admin.username, '--password-stdin', '--json'], {home, input: admin.password}))
  return (args: string[]) => runCli([...args, '--json'], {home})
}

for (const kind of TARGETS) {
  describe(`perms on every kind, '*' and DENY against ${targetTitle(kind)} MLflow ${latest}`, () => {
    let target: AuthTarget
    let admin: PythonClient
    let cli: (args: string[]) => ReturnType<typeof runCli>
    const user = {password: `pw-${uniqueName('secret')}`, username: uniqueName('kinds')}
    let asUser: PythonClient

    before(async () => {
      // Nothing is readable without a grant, so a '*' grant shows what it opens.
      target = await authTarget(latest, kind, {defaultPermission: 'NO_PERMISSIONS', users: [user]})
      admin = new PythonClient({credentials: target.admin, trackingUri: target.url, version: latest})
      asUser = new PythonClient({credentials: user, trackingUri: target.url, version: latest})
      cli = await loggedIn(target.url, target.admin)
    })

    after(async () => target?.stop())

    const visibleExperiments = async () =>
      new Set<string>((await asUser.call('tracking', 'search_experiments')).map((experiment: {experiment_id: string}) => experiment.experiment_id))

    it("'*' READ opens every experiment, a DENY on one hides it again, and revoking '*' closes them", async () => {
      const names = [uniqueName('exp-a'), uniqueName('exp-b')]
      const ids: string[] = []
      for (const name of names) ids.push(await admin.call('tracking', 'create_experiment', name))
      for (const id of ids) assert.ok(!(await visibleExperiments()).has(id), 'hidden before any grant')

      const all = okJson(await cli(['perms', 'grant', 'experiment', '*', '--user', user.username, '--permission', 'READ']))
      assert.deepEqual(all.resource, {id: '*', kind: 'experiment'})
      assert.equal(all.action, 'created')
      let visible = await visibleExperiments()
      for (const id of ids) assert.ok(visible.has(id), `experiment ${id} readable through '*'`)

      const denied = okJson(await cli(['perms', 'grant', 'experiment', names[0], '--user', user.username, '--permission', 'deny']))
      assert.deepEqual(denied.resource, {id: ids[0], kind: 'experiment', name: names[0]})
      assert.equal(denied.permission, 'DENY')
      visible = await visibleExperiments()
      assert.ok(!visible.has(ids[0]), 'a DENY wins over the READ of the same tier')
      assert.ok(visible.has(ids[1]))
      const [get] = await asUser.batch([{args: [ids[0]], client: 'tracking', method: 'get_experiment'}])
      assert.equal(expectError(get).error_code, 'PERMISSION_DENIED')
      assert.equal(okJson(await cli(['perms', 'get', 'experiment', ids[0], '--user', user.username])).permission, 'DENY')

      okJson(await cli(['perms', 'revoke', 'experiment', '*', '--user', user.username, '--yes']))
      okJson(await cli(['perms', 'revoke', 'experiment', ids[0], '--user', user.username, '--yes']))
      visible = await visibleExperiments()
      for (const id of ids) assert.ok(!visible.has(id), `experiment ${id} hidden again`)
    })

    it('a prompt by name: READ lets the user load it, DENY takes it away; a missing prompt exits 5', async () => {
      const name = uniqueName('prompt').replaceAll('-', '_')
      await admin.call('tracking', 'register_prompt', name, 'Hello {{who}}')
      const load = async () => (await asUser.batch([{args: [name, 1], client: 'tracking', method: 'get_prompt_version'}]))[0]
      assert.equal(expectError(await load()).error_code, 'PERMISSION_DENIED')

      const granted = okJson(await cli(['perms', 'grant', 'prompt', name, '--user', user.username, '--permission', 'READ']))
      assert.deepEqual(granted.resource, {id: name, kind: 'prompt', name})
      assert.equal((await load()).error, undefined, 'READ lets the user load the prompt')

      okJson(await cli(['perms', 'update', 'prompt', name, '--user', user.username, '--permission', 'DENY']))
      assert.equal(expectError(await load()).error_code, 'PERMISSION_DENIED')
      assert.equal(okJson(await cli(['perms', 'get', 'prompt', name, '--user', user.username])).permission, 'DENY')

      const missing = await cli(['perms', 'grant', 'prompt', uniqueName('no-such-prompt'), '--user', user.username, '--permission', 'READ'])
      assert.equal(missing.code, ExitCode.NotFound, missing.stdout)
      assert.match(JSON.parse(missing.stdout).error.message, /There is no prompt named/)
    })

    it("the run tier takes only '*': a run DENY hides runs of an experiment the user may read", async () => {
      const experimentId = await admin.call('tracking', 'create_experiment', uniqueName('runs'))
      const run = await admin.call('tracking', 'create_run', experimentId)
      const runId: string = run.info.run_id
      okJson(await cli(['perms', 'grant', 'experiment', experimentId, '--user', user.username, '--permission', 'READ']))
      assert.equal((await asUser.call('tracking', 'get_run', runId)).info.run_id, runId)

      const refused = await cli(['perms', 'grant', 'run', runId, '--user', user.username, '--permission', 'DENY'])
      assert.equal(refused.code, ExitCode.Usage)
      assert.match(JSON.parse(refused.stdout).error.message, /only all at once: give '\*'/)

      const denied = okJson(await cli(['perms', 'grant', 'run', '*', '--user', user.username, '--permission', 'DENY']))
      assert.deepEqual(denied.resource, {id: '*', kind: 'run'})
      const [get] = await asUser.batch([{args: [runId], client: 'tracking', method: 'get_run'}])
      assert.equal(expectError(get).error_code, 'PERMISSION_DENIED')
      assert.ok((await visibleExperiments()).has(experimentId), 'the experiment itself stays readable')

      okJson(await cli(['perms', 'revoke', 'run', '*', '--user', user.username, '--yes']))
      assert.equal((await asUser.call('tracking', 'get_run', runId)).info.run_id, runId)
    })

    it("an MCP server by name and by '*', gateway endpoints and traces by '*', as MLflow resolves them; perms list groups and sorts by kind", async () => {
      const other = {password: `pw-${uniqueName('secret')}`, username: uniqueName('lister')}
      await admin.call('auth', 'create_user', other.username, other.password)
      const grant = async (args: string[], level: string) => okJson(await cli(['perms', 'grant', ...args, '--user', other.username, '--permission', level]))
      await grant(['mcp-server', '*'], 'USE')
      await grant(['mcp-server', 'docs-search'], 'DENY')
      await grant(['gateway-endpoint', '*'], 'READ')
      await grant(['trace', '*'], 'EDIT')
      await grant(['experiment', '*'], 'READ')
      const experimentId = await admin.call('tracking', 'create_experiment', uniqueName('listed'))
      await grant(['experiment', experimentId], 'MANAGE')

      const resolved = async (type: string, id: string) => (await admin.call('auth', 'get_user_permission', other.username, type, id)).permission
      assert.equal(await resolved('mcp_server', 'docs-search'), 'DENY')
      assert.equal(await resolved('mcp_server', 'any-other-server'), 'USE')
      assert.equal(await resolved('gateway_endpoint', '*'), 'READ')
      assert.equal(await resolved('trace', '*'), 'EDIT')

      const listed = okJson(await cli(['perms', 'list', '--user', other.username])).permissions
      assert.deepEqual(
        listed.map((row: {kind: string; resource: string}) => `${row.kind} ${row.resource}`),
        ['experiment *', `experiment ${experimentId}`, 'gateway-endpoint *', 'mcp-server *', 'mcp-server docs-search', 'trace *'],
      )
      assert.equal(listed.find((row: {resource: string}) => row.resource === 'docs-search').name, 'docs-search')
      assert.deepEqual(
        okJson(await cli(['perms', 'list', 'mcp-server', '--user', other.username])).permissions.map((row: {permission: string}) => row.permission),
        ['USE', 'DENY'],
      )

      okJson(await cli(['perms', 'revoke', 'mcp-server', 'docs-search', '--user', other.username, '--yes']))
      assert.equal(await resolved('mcp_server', 'docs-search'), 'USE')
    })
  })
}

describe(`perms on a server without the feature (MLflow ${MLFLOW_VERSIONS.legacy})`, () => {
  let cli: (args: string[]) => ReturnType<typeof runCli>
  let admin: PythonClient
  const user = {password: `pw-${uniqueName('secret')}`, username: uniqueName('old')}

  before(async () => {
    const server = await acquireServer(MLFLOW_VERSIONS.legacy, 'basic-auth')
    admin = new PythonClient({credentials: server.admin, trackingUri: server.url, version: MLFLOW_VERSIONS.legacy})
    await admin.call('auth', 'create_user', user.username, user.password)
    cli = await loggedIn(server.url, server.admin!)
  })

  it('exits 8 with one sentence naming the MLflow release, and stores nothing', async () => {
    const experimentId = await admin.call('tracking', 'create_experiment', uniqueName('old-exp'))
    const cases: Array<[string[], string, RegExp]> = [
      [['prompt', 'summarize'], 'READ', /^This server does not take permissions on prompts: MLflow added them in 3\.13\.$/],
      [['mcp-server', 'docs-search'], 'READ', /^This server does not take permissions on MCP servers: MLflow added them in 3\.15\.$/],
      [['run', '*'], 'READ', /^This server does not take permissions on runs: MLflow added them in 3\.17\.$/],
      [['experiment', '*'], 'READ', /^This server does not take '\*' for all experiments: MLflow added it in 3\.13\.$/],
      [['experiment', experimentId], 'DENY', /^This server does not take DENY: MLflow added it in 3\.17\.$/],
    ]
    for (const [target, level, message] of cases) {
      const result = await cli(['perms', 'grant', ...target, '--user', user.username, '--permission', level])
      assert.equal(result.code, ExitCode.Unsupported, `${target.join(' ')}: ${result.stdout}`)
      const {error} = JSON.parse(result.stdout)
      assert.equal(error.code, 'UNSUPPORTED')
      assert.match(error.message, message)
    }

    const stored = await admin.call('auth', 'get_user', user.username)
    assert.deepEqual([stored.experiment_permissions, stored.registered_model_permissions], [[], []])
  })
})
