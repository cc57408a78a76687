/**
 * mlflowctl's client commands against MLflow's own basic-auth server of each pinned version, every
 * effect checked through MLflow's real Python clients.
 */
import assert from 'node:assert/strict'
import {mkdtemp, readFile, stat} from 'node:fs/promises'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {after, before, describe, it} from 'node:test'

import {ExitCode} from '../../src/core/errors.js'
import {okJson, runCli} from '../support/cli.js'
import {type ServerInfo} from '../support/mlflow-server.js'
import {MLFLOW_VERSIONS, PINNED_VERSIONS} from '../support/mlflow-versions.js'
import {expectError, PythonClient} from '../support/python-client.js'
import {type RunningServe, startServe} from '../support/serve.js'
import {acquireServer, releaseServers, uniqueName} from '../support/servers.js'

after(releaseServers)

type Target = 'basic-auth' | 'serve'

for (const version of PINNED_VERSIONS) {
  for (const target of ['basic-auth', 'serve'] as Target[]) {
    clientCommandSuite(version, target)
  }
}

function clientCommandSuite(version: string, target: Target): void {
  describe(`client commands against ${target === 'serve' ? `mlflowctl serve in front of MLflow ${version}` : `MLflow ${version} basic-auth`}`, () => {
    let server: Pick<ServerInfo, 'admin' | 'url'>
    let serve: RunningServe | undefined
    let home: string
    let admin: PythonClient
    const cli = (args: string[], input?: string) => runCli([...args, '--json'], {home, input})

    /** The permission the Python auth client reads back, on whichever API this version has. */
    async function pythonPermission(kind: 'experiment' | 'model', resource: string, username: string): Promise<string | undefined> {
      if (version === MLFLOW_VERSIONS.legacy) {
        const method = kind === 'experiment' ? 'get_experiment_permission' : 'get_registered_model_permission'
        const [result] = await admin.batch([{args: [resource, username], client: 'auth', method}])
        return result.error ? undefined : result.ok.permission
      }

      // 3.13+: the effective permission, which is the explicit grant when there is one.
      const [result] = await admin.batch([
        {args: [username, kind === 'experiment' ? 'experiment' : 'registered_model', resource], client: 'auth', method: 'get_user_permission'},
      ])
      return result.ok?.permission
    }

    async function newUser(password = `pw-${uniqueName('secret')}`): Promise<{password: string; username: string}> {
      const username = uniqueName('user')
      await admin.call('auth', 'create_user', username, password)
      return {password, username}
    }

    before(async () => {
      if (target === 'serve') {
        serve = await startServe({upstream: (await acquireServer(version, 'plain')).url})
        server = {admin: serve.admin, url: serve.url}
      } else {
        server = await acquireServer(version, 'basic-auth')
      }

      admin = new PythonClient({credentials: server.admin, trackingUri: server.url, version})
      home = await mkdtemp(join(tmpdir(), 'mlflowctl-interop-home-'))
      okJson(await cli(['login', '--tracking-uri', server.url, '--username', server.admin!.username, '--password-stdin'], server.admin!.password))
    })

    after(async () => serve?.stop())

    it('login stores credentials that the Python client uses with no environment variables', async () => {
      const file = join(home, '.mlflow', 'credentials')
      assert.equal((await stat(file)).mode & 0o777, 0o600)
      assert.equal((await stat(join(home, '.mlflow'))).mode & 0o777, 0o700)
      const python = new PythonClient({home, trackingUri: server.url, version})
      const me = await python.call('auth', 'get_user', server.admin!.username)
      assert.equal(me.is_admin, true)
      const whoami = okJson(await cli(['whoami']))
      assert.equal(whoami.user.username, server.admin!.username)
      assert.equal(whoami.user.is_admin, true)
      assert.equal(whoami.tracking_uri.value, server.url)
    })

    it('login with a wrong password saves nothing', async () => {
      const fresh = await mkdtemp(join(tmpdir(), 'mlflowctl-interop-home-'))
      const result = await runCli(['login', '--tracking-uri', server.url, '--username', server.admin!.username, '--password-stdin'], {
        home: fresh,
        input: 'not-the-password',
      })
      assert.equal(result.code, ExitCode.Unauthenticated)
      await assert.rejects(stat(join(fresh, '.mlflow', 'credentials')), {code: 'ENOENT'})
      // ...and a failed re-login leaves an existing login untouched.
      const before = await readFile(join(home, '.mlflow', 'credentials'), 'utf8')
      const again = await runCli(['login', '--tracking-uri', server.url, '--username', server.admin!.username, '--password-stdin'], {home, input: 'wrong'})
      assert.equal(again.code, ExitCode.Unauthenticated)
      assert.equal(await readFile(join(home, '.mlflow', 'credentials'), 'utf8'), before)
    })

    it('users create, get, list, promote, demote, update-password and delete', async () => {
      const username = uniqueName('bob')
      const password = `pw-${uniqueName('secret')}`
      const created = okJson(await cli(['users', 'create', username, '--password-stdin'], password))
      assert.equal(created.user.username, username)
      assert.equal((await admin.call('auth', 'get_user', username)).username, username)
      assert.equal(okJson(await cli(['users', 'get', username])).user.is_admin, false)
      const listed = okJson(await cli(['users', 'list'])).users.map((user: {username: string}) => user.username)
      assert.ok(listed.includes(username) && listed.includes(server.admin!.username))

      okJson(await cli(['users', 'promote', username]))
      assert.equal((await admin.call('auth', 'get_user', username)).is_admin, true)
      const refused = await runCli(['users', 'demote', username], {home})
      assert.equal(refused.code, ExitCode.Aborted)
      assert.match(refused.stderr, /--yes/)
      assert.equal((await admin.call('auth', 'get_user', username)).is_admin, true)
      okJson(await cli(['users', 'demote', username, '--yes']))
      assert.equal((await admin.call('auth', 'get_user', username)).is_admin, false)

      const newPassword = `pw-${uniqueName('changed')}`
      okJson(await cli(['users', 'update-password', username, '--password-stdin'], newPassword))
      const user = new PythonClient({credentials: {password: newPassword, username}, trackingUri: server.url, version})
      assert.equal((await user.call('auth', 'get_user', username)).username, username)
      const stale = new PythonClient({credentials: {password, username}, trackingUri: server.url, version})
      expectError((await stale.batch([{args: [username], client: 'auth', method: 'get_user'}]))[0])

      okJson(await cli(['users', 'delete', username, '--yes']))
      const [gone] = await admin.batch([{args: [username], client: 'auth', method: 'get_user'}])
      assert.equal(expectError(gone).error_code, 'RESOURCE_DOES_NOT_EXIST')
      const missing = await cli(['users', 'get', username])
      assert.equal(missing.code, ExitCode.NotFound)
      assert.equal(JSON.parse(missing.stdout).error.code, 'RESOURCE_DOES_NOT_EXIST')
    })

    it('users change their own password and their stored login follows', async () => {
      const user = await newUser()
      const userHome = await mkdtemp(join(tmpdir(), 'mlflowctl-interop-home-'))
      const run = (args: string[], input?: string) => runCli([...args, '--json'], {home: userHome, input})
      okJson(await run(['login', '--tracking-uri', server.url, '--username', user.username, '--password-stdin'], user.password))
      const changed = `pw-${uniqueName('mine')}`
      assert.equal(okJson(await run(['users', 'update-password', user.username, '--password-stdin'], changed)).stored_login_updated, true)
      assert.equal(okJson(await run(['whoami'])).user.username, user.username)
      const python = new PythonClient({home: userHome, trackingUri: server.url, version})
      assert.equal((await python.call('auth', 'get_user', user.username)).username, user.username)

      // logout removes what login stored: MLflow's client no longer finds credentials.
      okJson(await run(['logout']))
      const [afterLogout] = await python.batch([{args: [user.username], client: 'auth', method: 'get_user'}])
      assert.match(expectError(afterLogout).message, /401|not authenticated/i)
      assert.equal((await run(['whoami'])).code, ExitCode.Unauthenticated)
    })

    it('perms grant, update, get, list and revoke on experiments and models', async () => {
      const user = await newUser()
      const experimentName = uniqueName('exp')
      const experimentId = await admin.call<string>('tracking', 'create_experiment', experimentName)
      const model = uniqueName('model')
      await admin.call('tracking', 'create_registered_model', model)

      const granted = okJson(await cli(['perms', 'grant', 'experiment', experimentId, '--user', user.username, '--permission', 'read']))
      assert.equal(granted.action, 'created')
      assert.equal(await pythonPermission('experiment', experimentId, user.username), 'READ')
      const regranted = okJson(await cli(['perms', 'grant', 'experiment', experimentName, '--user', user.username, '--permission', 'EDIT']))
      assert.equal(regranted.action, 'updated')
      assert.equal(regranted.resource.id, experimentId)
      assert.equal(await pythonPermission('experiment', experimentId, user.username), 'EDIT')

      okJson(await cli(['perms', 'grant', 'model', model, '--user', user.username, '--permission', 'MANAGE']))
      assert.equal(await pythonPermission('model', model, user.username), 'MANAGE')
      okJson(await cli(['perms', 'update', 'model', model, '--user', user.username, '--permission', 'READ']))
      assert.equal(await pythonPermission('model', model, user.username), 'READ')
      assert.equal(okJson(await cli(['perms', 'get', 'model', model, '--user', user.username])).permission, 'READ')

      const listed = okJson(await cli(['perms', 'list', '--user', user.username])).permissions
      assert.deepEqual(
        listed.map((row: {kind: string; permission: string; resource: string}) => `${row.kind}:${row.resource}:${row.permission}`).sort(),
        [`experiment:${experimentId}:EDIT`, `model:${model}:READ`].sort(),
      )
      assert.deepEqual(
        okJson(await cli(['perms', 'list', 'model', '--user', user.username])).permissions.map((row: {resource: string}) => row.resource),
        [model],
      )

      okJson(await cli(['perms', 'revoke', 'experiment', experimentId, '--user', user.username, '--yes']))
      const afterRevoke = await cli(['perms', 'get', 'experiment', experimentId, '--user', user.username])
      assert.equal(afterRevoke.code, ExitCode.NotFound)
      if (version === MLFLOW_VERSIONS.legacy) assert.equal(await pythonPermission('experiment', experimentId, user.username), undefined)

      const updateMissing = await cli(['perms', 'update', 'experiment', experimentId, '--user', user.username, '--permission', 'READ'])
      assert.equal(updateMissing.code, ExitCode.NotFound)
    })

    it('perms on scorers, named as MLflow names them', async () => {
      const user = await newUser()
      const experimentId = await admin.call<string>('tracking', 'create_experiment', uniqueName('scored'))
      const scorer = 'relevance/v2 (draft)'
      const read = async () => {
        const [result] =
          version === MLFLOW_VERSIONS.legacy
            ? await admin.batch([{args: [experimentId, scorer, user.username], client: 'auth', method: 'get_scorer_permission'}])
            : await admin.batch([
                {
                  args: [user.username, 'scorer', `${experimentId}/${encodeURIComponent(scorer).replaceAll('(', '%28').replaceAll(')', '%29')}`],
                  client: 'auth',
                  method: 'get_user_permission',
                },
              ])
        return result.ok?.permission
      }

      assert.equal(okJson(await cli(['perms', 'grant', 'scorer', experimentId, scorer, '--user', user.username, '--permission', 'EDIT'])).action, 'created')
      assert.equal(await read(), 'EDIT')
      okJson(await cli(['perms', 'update', 'scorer', experimentId, scorer, '--user', user.username, '--permission', 'MANAGE']))
      assert.equal(await read(), 'MANAGE')
      assert.equal(okJson(await cli(['perms', 'get', 'scorer', experimentId, scorer, '--user', user.username])).permission, 'MANAGE')
      okJson(await cli(['perms', 'revoke', 'scorer', experimentId, scorer, '--user', user.username, '--yes']))
      assert.equal((await cli(['perms', 'get', 'scorer', experimentId, scorer, '--user', user.username])).code, ExitCode.NotFound)
    })

    it('rejects a bad permission level before sending anything, and names the levels', async () => {
      const result = await runCli(['perms', 'grant', 'model', 'whatever', '--user', 'nobody', '--permission', 'OWNER'], {home})
      assert.equal(result.code, ExitCode.Usage)
      assert.match(result.stderr, /READ, USE, EDIT, MANAGE, NO_PERMISSIONS/)
    })

    it('a non-admin is refused with exit 4 and a hint', async () => {
      const user = await newUser()
      const userHome = await mkdtemp(join(tmpdir(), 'mlflowctl-interop-home-'))
      const login = await runCli(['login', '--tracking-uri', server.url, '--username', user.username, '--password-stdin'], {
        home: userHome,
        input: user.password,
      })
      assert.equal(login.code, 0, `mlflowctl failed (${login.code}): ${login.stderr}${login.stdout}`)
      const result = await runCli(['users', 'create', uniqueName('eve'), '--password-stdin'], {home: userHome, input: 'long-enough-password'})
      assert.equal(result.code, ExitCode.PermissionDenied)
      assert.match(result.stderr, new RegExp(user.username))
    })
  })
}
