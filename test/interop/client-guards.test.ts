/**
 * The client's guard rails, through the built command against MLflow's own basic-auth servers
 * (and serve, for grants): --json never skips a confirmation, a grant on something that does not
 * exist stores nothing, experiments whose names are digits, names beside ids, and deleting a user
 * who still holds permissions on MLflow 3.12.
 */
import assert from 'node:assert/strict'
import {mkdtemp} from 'node:fs/promises'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {after, before, describe, it} from 'node:test'

import {ExitCode} from '../../src/core/errors.js'
import {type CliResult, okJson, runCli, runCliOnTerminal} from '../support/cli.js'
import {type Credentials} from '../support/mlflow-server.js'
import {MLFLOW_VERSIONS, PINNED_VERSIONS} from '../support/mlflow-versions.js'
import {restClient} from '../support/rest.js'
import {type RunningServe, startServe} from '../support/serve.js'
import {acquireServer, releaseServers, uniqueName} from '../support/servers.js'

after(releaseServers)

function failed(result: CliResult, exit: number): {code: string; hint?: string; message: string} {
  assert.equal(result.code, exit, `expected exit ${exit}: ${result.stderr}${result.stdout}`)
  return JSON.parse(result.stdout).error
}

/** A server with an admin, a home logged in as that admin, and REST helpers to set up and check. */
function fixture(target: () => Promise<{admin: Credentials; url: string}>) {
  const state = {} as {admin: Credentials; home: string; url: string}
  const rest = restClient(() => state.url)
  before(async () => {
    Object.assign(state, await target())
    state.home = await mkdtemp(join(tmpdir(), 'mlflowctl-guards-home-'))
    okJson(
      await runCli(['login', '--tracking-uri', state.url, '--username', state.admin.username, '--password-stdin', '--json'], {
        home: state.home,
        input: state.admin.password,
      }),
    )
  })
  return {
    async createExperiment(name: string): Promise<string> {
      return (await rest.ok(state.admin, 'POST', '/api/2.0/mlflow/experiments/create', {name})).experiment_id
    },
    async createModel(name: string): Promise<void> {
      await rest.ok(state.admin, 'POST', '/api/2.0/mlflow/registered-models/create', {name})
    },
    async createUser(): Promise<string> {
      const username = uniqueName('user')
      await rest.ok(state.admin, 'POST', '/api/2.0/mlflow/users/create', {password: `pw-${uniqueName('secret')}`, username})
      return username
    },
    /** mlflowctl as the logged-in admin; --json unless `human`. */
    run(args: string[], options: {human?: boolean; input?: string} = {}): Promise<CliResult> {
      return runCli(options.human ? args : [...args, '--json'], {home: state.home, input: options.input})
    },
    state,
    /** The user's stored grants as `<type>:<id>:<level>`, read from whichever permission API the server has. */
    async storedGrants(username: string): Promise<string[]> {
      const unified = await rest.call(state.admin, 'GET', `/api/3.0/mlflow/users/permissions/list?username=${encodeURIComponent(username)}`)
      if (unified.status === 200) {
        return ((unified.json().permissions ?? []) as Array<{permission: string; resource_pattern: string; resource_type: string}>)
          .map((row) => `${row.resource_type}:${row.resource_pattern}:${row.permission}`)
          .sort()
      }

      const {user} = await rest.ok(state.admin, 'GET', `/api/2.0/mlflow/users/get?username=${encodeURIComponent(username)}`)
      return [
        ...(user.experiment_permissions ?? []).map((row: {experiment_id: string; permission: string}) => `experiment:${row.experiment_id}:${row.permission}`),
        ...(user.registered_model_permissions ?? []).map((row: {name: string; permission: string}) => `registered_model:${row.name}:${row.permission}`),
      ].sort()
    },
    async userExists(username: string): Promise<boolean> {
      const answer = await rest.call(state.admin, 'GET', `/api/2.0/mlflow/users/get?username=${encodeURIComponent(username)}`)
      assert.ok(answer.status === 200 || answer.status === 404, answer.text)
      return answer.status === 200
    },
    async isAdmin(username: string): Promise<boolean> {
      return (await rest.ok(state.admin, 'GET', `/api/2.0/mlflow/users/get?username=${encodeURIComponent(username)}`)).user.is_admin
    },
  }
}

/** An experiment name of digits only that no experiment id on a test server reaches (and that fits MLflow's integer ids). */
function digitsName(): string {
  return String(1_000_000_000 + Math.floor(Math.random() * 8_000_000_000))
}

/** One server of each version and kind for the whole file. */
const servers = new Map<string, Promise<{admin: Credentials; url: string}>>()
function shared(version: string, kind: 'basic-auth' | 'plain'): Promise<{admin: Credentials; url: string}> {
  const key = `${kind}@${version}`
  if (!servers.has(key)) servers.set(key, acquireServer(version, kind) as Promise<{admin: Credentials; url: string}>)
  return servers.get(key)!
}

describe(`--json keeps the confirmation of destructive commands (MLflow ${MLFLOW_VERSIONS.latest} basic-auth)`, () => {
  const server = fixture(() => shared(MLFLOW_VERSIONS.latest, 'basic-auth'))

  async function setUp() {
    const user = await server.createUser()
    const other = await server.createUser()
    okJson(await server.run(['users', 'promote', other]))
    const experiment = uniqueName('guarded')
    const experimentId = await server.createExperiment(experiment)
    okJson(await server.run(['perms', 'grant', 'experiment', experimentId, '--user', user, '--permission', 'READ']))
    return {experiment, experimentId, other, user}
  }

  it('without a terminal and without --yes: exit 9 and nothing changes, with --json as without', async () => {
    const {experimentId, other, user} = await setUp()
    const grants = await server.storedGrants(user)
    for (const json of [true, false]) {
      for (const args of [
        ['users', 'delete', user],
        ['users', 'demote', other],
        ['perms', 'revoke', 'experiment', experimentId, '--user', user],
      ]) {
        const result = await server.run(args, {human: !json})
        assert.equal(result.code, ExitCode.Aborted, `${args.join(' ')}${json ? ' --json' : ''}: ${result.stdout}${result.stderr}`)
        if (json) assert.equal(JSON.parse(result.stdout).error.code, 'CONFIRMATION_REQUIRED')
        else assert.match(result.stderr, /--yes/)
      }
    }

    assert.equal(await server.userExists(user), true)
    assert.equal(await server.isAdmin(other), true)
    assert.deepEqual(await server.storedGrants(user), grants)
    assert.equal(grants.length, 1)
  })

  it('on a terminal with --json the question is asked: no changes nothing, yes goes ahead', async () => {
    const {experimentId, other, user} = await setUp()
    const home = server.state.home
    const declined = [
      {args: ['users', 'delete', user, '--json'], prompt: `Delete user ${user}\\?`},
      {args: ['users', 'demote', other, '--json'], prompt: `Remove admin rights from ${other}\\?`},
      {args: ['perms', 'revoke', 'experiment', experimentId, '--user', user, '--json'], prompt: `Revoke ${user}'s permission on experiment ${experimentId}`},
    ]
    for (const {args, prompt} of declined) {
      const result = await runCliOnTerminal(args, [{expect: prompt, send: 'n\r'}], {home})
      assert.equal(result.unmatched, null, `${args.join(' ')}: no prompt in ${result.output}`)
      assert.equal(result.code, ExitCode.Aborted, result.output)
    }

    assert.equal(await server.userExists(user), true)
    assert.equal(await server.isAdmin(other), true)
    assert.equal((await server.storedGrants(user)).length, 1)

    const confirmed = await runCliOnTerminal(['users', 'delete', user, '--json'], [{expect: `Delete user ${user}\\?`, send: 'y\r'}], {home})
    assert.equal(confirmed.code, 0, confirmed.output)
    assert.match(confirmed.output, /"deleted": true/)
    assert.equal(await server.userExists(user), false)
  })
})

type GrantTarget = 'basic-auth' | 'serve'

for (const version of PINNED_VERSIONS) {
  for (const kind of ['basic-auth', 'serve'] as GrantTarget[]) {
    // serve in front of the newest MLflow only: its perms API does not depend on the upstream's version.
    if (kind === 'serve' && version !== MLFLOW_VERSIONS.latest) continue
    grantSuite(version, kind)
  }
}

function grantSuite(version: string, kind: GrantTarget): void {
  describe(`perms: what does not exist, digit names, names beside ids (${kind === 'serve' ? `serve in front of MLflow ${version}` : `MLflow ${version} basic-auth`})`, () => {
    let serve: RunningServe | undefined
    const server = fixture(async () => {
      if (kind === 'basic-auth') return shared(version, 'basic-auth')
      serve = await startServe({upstream: (await shared(version, 'plain')).url})
      return serve
    })
    after(async () => serve?.stop())

    it("a grant on an experiment, a scorer's experiment or a model that does not exist: exit 5, nothing stored", async () => {
      const user = await server.createUser()
      const missingId = digitsName()
      const byArgument = failed(await server.run(['perms', 'grant', 'experiment', missingId, '--user', user, '--permission', 'READ']), ExitCode.NotFound)
      assert.equal(byArgument.code, 'RESOURCE_DOES_NOT_EXIST')
      assert.match(byArgument.message, new RegExp(`no experiment with id ${missingId}; nothing was granted`))
      assert.match(byArgument.hint!, new RegExp(`--name ${missingId}`))
      failed(await server.run(['perms', 'grant', 'experiment', '--id', missingId, '--user', user, '--permission', 'READ']), ExitCode.NotFound)
      failed(await server.run(['perms', 'grant', 'experiment', '--name', uniqueName('nowhere'), '--user', user, '--permission', 'READ']), ExitCode.NotFound)
      failed(await server.run(['perms', 'grant', 'scorer', missingId, 'relevance', '--user', user, '--permission', 'READ']), ExitCode.NotFound)
      const model = failed(await server.run(['perms', 'grant', 'model', uniqueName('no-model'), '--user', user, '--permission', 'READ']), ExitCode.NotFound)
      assert.match(model.message, /no registered model named .*nothing was granted/)
      const human = await server.run(['perms', 'grant', 'experiment', missingId, '--user', user, '--permission', 'READ'], {human: true})
      assert.equal(human.code, ExitCode.NotFound)
      assert.doesNotMatch(human.stderr, /Granted/)
      assert.deepEqual(await server.storedGrants(user), [])
    })

    it('an experiment named by digits is reached with --name; --id and names beside ids in grant, update, get, list and revoke', async () => {
      const user = await server.createUser()
      const name = digitsName()
      const id = await server.createExperiment(name)
      const model = uniqueName('model')
      await server.createModel(model)

      // The argument keeps meaning an id when it is all digits, and the hint says how to mean a name.
      const asId = failed(await server.run(['perms', 'grant', 'experiment', name, '--user', user, '--permission', 'READ']), ExitCode.NotFound)
      assert.match(asId.hint!, new RegExp(`--name ${name}`))
      failed(await server.run(['perms', 'grant', 'experiment', id, '--id', id, '--user', user, '--permission', 'READ']), ExitCode.Usage)

      const granted = okJson(await server.run(['perms', 'grant', 'experiment', '--name', name, '--user', user, '--permission', 'READ']))
      assert.deepEqual(granted.resource, {id, kind: 'experiment', name})
      assert.deepEqual(await server.storedGrants(user), [`experiment:${id}:READ`])
      const humanGrant = await server.run(['perms', 'grant', 'experiment', '--id', id, '--user', user, '--permission', 'EDIT'], {human: true})
      assert.equal(humanGrant.code, 0, humanGrant.stderr)
      assert.match(humanGrant.stderr, new RegExp(`Updated to EDIT for ${user} on experiment ${id} \\("${name}"\\)`))

      assert.deepEqual(okJson(await server.run(['perms', 'update', 'experiment', '--id', id, '--user', user, '--permission', 'MANAGE'])).resource, {
        id,
        kind: 'experiment',
        name,
      })
      const got = okJson(await server.run(['perms', 'get', 'experiment', id, '--user', user]))
      assert.deepEqual([got.resource, got.permission], [{id, kind: 'experiment', name}, 'MANAGE'])
      const humanGet = await server.run(['perms', 'get', 'experiment', '--name', name, '--user', user], {human: true})
      assert.equal(humanGet.stdout.trim(), `${user} has MANAGE on experiment ${id} ("${name}")`)

      okJson(await server.run(['perms', 'grant', 'model', model, '--user', user, '--permission', 'READ']))
      const listed = okJson(await server.run(['perms', 'list', '--user', user])).permissions
      assert.deepEqual(listed.map((row: {kind: string; name?: string; resource: string}) => [row.kind, row.resource, row.name]).sort(), [
        ['experiment', id, name],
        ['model', model, model],
      ])
      const humanList = await server.run(['perms', 'list', 'experiment', '--user', user], {human: true})
      // Not a terminal: tab-separated columns under a heading line.
      assert.match(humanList.stdout, /^KIND\tRESOURCE\tNAME\tPERMISSION\tVIA$/m)
      assert.match(humanList.stdout, new RegExp(`^experiment\t${id}\t${name}\tMANAGE\tdirect$`, 'm'))

      // A scorer's experiment the same way: the one argument left is the scorer.
      const scorer = okJson(await server.run(['perms', 'grant', 'scorer', '--experiment-name', name, 'relevance', '--user', user, '--permission', 'EDIT']))
      assert.deepEqual(scorer.resource, {experiment_id: id, experiment_name: name, id: `${id}/relevance`, kind: 'scorer', name: 'relevance'})
      assert.equal(okJson(await server.run(['perms', 'get', 'scorer', '--experiment-id', id, 'relevance', '--user', user])).permission, 'EDIT')
      failed(await server.run(['perms', 'get', 'scorer', id, 'relevance', '--experiment-id', id, '--user', user]), ExitCode.Usage)
      const scorerRow = okJson(await server.run(['perms', 'list', 'scorer', '--user', user])).permissions
      assert.deepEqual(
        scorerRow.map((row: {experiment_name?: string; name?: string}) => [row.name, row.experiment_name]),
        [['relevance', name]],
      )
      okJson(await server.run(['perms', 'revoke', 'scorer', id, 'relevance', '--user', user, '--yes']))

      const revoked = okJson(await server.run(['perms', 'revoke', 'experiment', '--name', name, '--user', user, '--yes']))
      assert.deepEqual([revoked.action, revoked.resource], ['revoked', {id, kind: 'experiment', name}])
      assert.deepEqual(await server.storedGrants(user), [`registered_model:${model}:READ`])
    })
  })
}

for (const version of PINNED_VERSIONS) {
  describe(`users delete of a user who holds permissions (MLflow ${version} basic-auth)`, () => {
    const server = fixture(() => shared(version, 'basic-auth'))

    async function userWithGrants(): Promise<string> {
      const user = await server.createUser()
      const id = await server.createExperiment(uniqueName('held'))
      const model = uniqueName('held-model')
      await server.createModel(model)
      okJson(await server.run(['perms', 'grant', 'experiment', id, '--user', user, '--permission', 'EDIT']))
      okJson(await server.run(['perms', 'grant', 'model', model, '--user', user, '--permission', 'READ']))
      return user
    }

    if (version === MLFLOW_VERSIONS.legacy) {
      it('is refused with what happened and what to do, never the SQL error; --revoke-permissions revokes and deletes', async () => {
        const user = await userWithGrants()
        const error = failed(await server.run(['users', 'delete', user, '--yes']), ExitCode.Usage)
        assert.equal(error.code, 'USER_HAS_PERMISSIONS')
        assert.match(error.message, new RegExp(`${user} still holds 2 permissions`))
        assert.match(error.hint!, /--revoke-permissions/)
        const human = await server.run(['users', 'delete', user, '--yes'], {human: true})
        assert.equal(human.code, ExitCode.Usage)
        for (const output of [JSON.stringify(error), human.stderr]) assert.doesNotMatch(output, /IntegrityError|sqlite|SQL|constraint/i)
        assert.equal(await server.userExists(user), true)
        assert.equal((await server.storedGrants(user)).length, 2)

        const deleted = okJson(await server.run(['users', 'delete', user, '--yes', '--revoke-permissions']))
        assert.deepEqual(deleted, {deleted: true, revoked_permissions: 2, username: user})
        assert.equal(await server.userExists(user), false)
      })

      it('on a terminal, offers to revoke the permissions first; no changes nothing', async () => {
        const user = await userWithGrants()
        const steps = (answer: string) => [
          {expect: `Delete user ${user}\\?`, send: 'y\r'},
          {expect: `Revoke every permission of ${user} and delete the user\\?`, send: answer},
        ]
        const declined = await runCliOnTerminal(['users', 'delete', user], steps('n\r'), {home: server.state.home})
        assert.equal(declined.unmatched, null, declined.output)
        assert.equal(declined.code, ExitCode.Aborted, declined.output)
        assert.equal((await server.storedGrants(user)).length, 2)
        const accepted = await runCliOnTerminal(['users', 'delete', user], steps('y\r'), {home: server.state.home})
        assert.equal(accepted.code, 0, accepted.output)
        assert.match(accepted.output, /Revoked 2 permissions/)
        assert.equal(await server.userExists(user), false)
      })
    } else {
      it('deletes the user with their permissions in one call; --revoke-permissions has nothing to do', async () => {
        const user = await userWithGrants()
        assert.deepEqual(okJson(await server.run(['users', 'delete', user, '--yes', '--revoke-permissions'])), {deleted: true, username: user})
        assert.equal(await server.userExists(user), false)
        assert.deepEqual(okJson(await server.run(['users', 'delete', await userWithGrants(), '--yes'])).deleted, true)
      })
    }
  })
}
