/**
 * serve's admin side, run as a real process in front of a plain MLflow server: the admin bootstrap
 * (refused beyond loopback without a password; MLflow's old default on loopback, with warnings;
 * MLFLOW_AUTH_ADMIN_* and basic_auth.ini; restarts), the one 401 shape, /signup and its CSRF-guarded
 * form target, and SIGTERM finishing the requests in flight.
 */
import assert from 'node:assert/strict'
import {type ChildProcess, spawn} from 'node:child_process'
import {createHash} from 'node:crypto'
import {once} from 'node:events'
import {writeFile} from 'node:fs/promises'
import {Agent, type IncomingMessage, request as httpRequest} from 'node:http'
import {join} from 'node:path'
import {after, describe, it} from 'node:test'

import {ExitCode} from '../../src/core/errors.js'
import {CLI, runCli} from '../support/cli.js'
import {exists, tempDir} from '../support/files.js'
import {freePort, randomSecret} from '../support/mlflow-server.js'
import {MLFLOW_VERSIONS} from '../support/mlflow-versions.js'
import {basicAuth} from '../support/rest.js'
import {type RunningServe, startServe} from '../support/serve.js'
import {acquireServer, releaseServers, uniqueName} from '../support/servers.js'
import {readStoreFiles} from '../support/store-files.js'

const version = MLFLOW_VERSIONS.latest
const DEFAULT_PASSWORD = 'password1234'
const PER_REQUEST_WARNING = /warning: admin "admin" still uses the default password/g
const START_WARNING = /warning: admin "admin" has MLflow's old default password/

const spawned = new Set<ChildProcess>()
after(async () => {
  // Anything a failed assertion left running, by its own pid.
  for (const child of spawned) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL')
  await releaseServers()
})

async function upstreamUrl(): Promise<string> {
  return (await acquireServer(version, 'plain')).url
}

/** Polls until `predicate` holds; a condition that never comes fails with `what`. */
async function waitFor(what: string, predicate: () => boolean | Promise<boolean>): Promise<void> {
  for (let attempt = 0; attempt < 300; attempt++) {
    if (await predicate()) return
    await new Promise((resolve) => setTimeout(resolve, 50))
  }

  assert.fail(`timed out waiting for ${what}`)
}

/** The environment of an operator who has set none of MLflow's or mlflowctl's variables. */
function cleanEnv(extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  return {
    ...Object.fromEntries(Object.entries(process.env).filter(([key]) => !/^(MLFLOW_|MLFLOWCTL_|NODE_TEST|NODE_OPTIONS)/.test(key))),
    NO_COLOR: '1',
    OCLIF_COLUMNS: '400',
    ...extra,
  }
}

/** startServe with nothing of the caller's environment but `env` (undefined removes a variable). */
async function serveWith(options: {env?: NodeJS.ProcessEnv; extraArgs?: string[]; storePath?: string}): Promise<RunningServe> {
  const serve = await startServe({
    env: {MLFLOW_AUTH_ADMIN_PASSWORD: undefined, ...options.env},
    extraArgs: options.extraArgs,
    storePath: options.storePath,
    upstream: await upstreamUrl(),
  })
  spawned.add(serve.child)
  return serve
}

/** serve with a fresh admin password: the process, the password and the admin's Authorization header. */
async function serveWithAdmin(): Promise<{admin: string; password: string; serve: RunningServe}> {
  const password = `admin-${randomSecret()}`
  const serve = await serveWith({env: {MLFLOW_AUTH_ADMIN_PASSWORD: password}})
  return {admin: basicAuth({password, username: 'admin'}), password, serve}
}

/** Stops serve with SIGTERM and returns its exit code once everything it printed has been read. */
async function stopAndDrain(serve: RunningServe): Promise<null | number> {
  const stderr = serve.child.stderr!
  const drained = stderr.readableEnded || stderr.destroyed ? Promise.resolve() : once(stderr, 'close')
  const code = await serve.stop('SIGTERM')
  await drained
  return code
}

function count(text: string, pattern: RegExp): number {
  return text.match(pattern)?.length ?? 0
}

async function call(
  serve: RunningServe,
  path: string,
  options: {auth?: string; body?: unknown; method?: string} = {},
): Promise<{body: string; response: Response}> {
  const headers: Record<string, string> = {}
  if (options.auth) headers.authorization = options.auth
  if (options.body !== undefined) headers['content-type'] = 'application/json'
  const response = await fetch(`${serve.url}${path}`, {
    body: options.body === undefined ? undefined : JSON.stringify(options.body),
    headers,
    method: options.method ?? 'GET',
  })
  return {body: await response.text(), response}
}

async function currentUser(serve: RunningServe, auth: string): Promise<{id: number; is_admin: boolean; username: string} | number> {
  const {body, response} = await call(serve, '/api/2.0/mlflow/users/current', {auth})
  return response.status === 200 ? (JSON.parse(body) as {user: {id: number; is_admin: boolean; username: string}}).user : response.status
}

async function createUser(serve: RunningServe, auth: string, username: string, password: string): Promise<void> {
  const {body, response} = await call(serve, '/api/2.0/mlflow/users/create', {auth, body: {password, username}, method: 'POST'})
  assert.equal(response.status, 200, body)
}

async function userStatus(serve: RunningServe, auth: string, username: string): Promise<number> {
  const {response} = await call(serve, `/api/2.0/mlflow/users/get?username=${encodeURIComponent(username)}`, {auth})
  return response.status
}

interface StoreFile {
  users: Array<{id: number; is_admin: boolean; username: string}>
}

async function readStore(path: string): Promise<StoreFile> {
  return (await readStoreFiles(path)) as unknown as StoreFile
}

describe('serve: admin bootstrap', () => {
  it('refuses to listen beyond loopback without an admin password, with the usage exit code, and creates no store', async () => {
    const upstream = await upstreamUrl()
    // Unset, set but empty (which MLflow 3.16.1+ also counts as "not configured"), and set to the
    // old published default, which is no better.
    const cases: Array<[NodeJS.ProcessEnv, RegExp]> = [
      [{}, /No admin password is configured, and serve listens on 0\.0\.0\.0/],
      [{MLFLOW_AUTH_ADMIN_PASSWORD: ''}, /No admin password is configured, and serve listens on 0\.0\.0\.0/],
      [{MLFLOW_AUTH_ADMIN_PASSWORD: DEFAULT_PASSWORD}, /The admin password is MLflow's old published default, and serve listens on 0\.0\.0\.0/],
    ]
    for (const [extra, message] of cases) {
      const storePath = join(await tempDir('serve-admin'), 'auth.json')
      const port = await freePort()
      // --insecure-http: the point here is the admin password, not the plain-HTTP rule.
      const child = spawn(
        process.execPath,
        [CLI, 'serve', '--proxy-to', upstream, '--host', '0.0.0.0', '--insecure-http', '--port', String(port), '--store', storePath],
        {env: cleanEnv(extra), stdio: ['ignore', 'pipe', 'pipe']},
      )
      spawned.add(child)
      let output = ''
      child.stdout!.on('data', (chunk: Buffer) => (output += chunk.toString()))
      child.stderr!.on('data', (chunk: Buffer) => (output += chunk.toString()))
      const outcome = await new Promise<'exited' | 'listening'>((resolve) => {
        child.stderr!.on('data', () => output.includes('listening on') && resolve('listening'))
        child.once('close', () => resolve('exited'))
      })
      if (outcome === 'listening') {
        child.kill('SIGKILL')
        assert.fail(`serve started on 0.0.0.0 without an admin password (env ${JSON.stringify(extra)}):\n${output}`)
      }

      assert.equal(child.exitCode, ExitCode.Usage, output)
      assert.match(output, message)
      assert.match(output, /MLFLOW_AUTH_ADMIN_PASSWORD/)
      assert.doesNotMatch(output, /listening on/)
      assert.equal(await exists(storePath), false, 'the store file was created')
    }
  })

  it('on loopback without a password: admin/password1234 works with a warning per request until the password is changed', async () => {
    const serve = await serveWith({})
    const changed = `changed-${randomSecret()}`
    try {
      assert.match(serve.output(), START_WARNING)
      assert.match(serve.output(), /Set MLFLOW_AUTH_ADMIN_PASSWORD/)
      assert.equal(count(serve.output(), PER_REQUEST_WARNING), 0, 'a per-request warning before any request')
      const old = basicAuth({password: DEFAULT_PASSWORD, username: 'admin'})
      for (let i = 1; i <= 3; i++) {
        assert.deepEqual(await currentUser(serve, old), {id: 1, is_admin: true, username: 'admin'})
        await waitFor(`warning number ${i}`, () => count(serve.output(), PER_REQUEST_WARNING) >= i)
      }

      const update = await call(serve, '/api/2.0/mlflow/users/update-password', {
        auth: old,
        body: {current_password: DEFAULT_PASSWORD, password: changed, username: 'admin'},
        method: 'PATCH',
      })
      assert.equal(update.response.status, 200, update.body)
      await waitFor('the warning of the update-password request', () => count(serve.output(), PER_REQUEST_WARNING) >= 4)

      const fresh = basicAuth({password: changed, username: 'admin'})
      for (let i = 0; i < 3; i++) assert.equal(((await currentUser(serve, fresh)) as {username: string}).username, 'admin')
      assert.equal(await currentUser(serve, old), 401, 'the old default password still works')
    } finally {
      assert.equal(await stopAndDrain(serve), 0)
    }

    // Everything serve printed is in: exactly the four requests made with the default password warned.
    assert.equal(count(serve.output(), PER_REQUEST_WARNING), 4, serve.output())
    assert.ok(!serve.output().includes(changed), 'serve printed the new password')
  })

  it('creates the admin from MLFLOW_AUTH_ADMIN_USERNAME / MLFLOW_AUTH_ADMIN_PASSWORD, and no other', async () => {
    const username = uniqueName('root')
    const password = `env-${randomSecret()}`
    const serve = await serveWith({env: {MLFLOW_AUTH_ADMIN_PASSWORD: password, MLFLOW_AUTH_ADMIN_USERNAME: username}})
    try {
      const auth = basicAuth({password, username})
      assert.deepEqual(await currentUser(serve, auth), {id: 1, is_admin: true, username})
      assert.equal(await userStatus(serve, auth, 'admin'), 404, 'the default "admin" was created too')
      assert.equal(await currentUser(serve, basicAuth({password: DEFAULT_PASSWORD, username: 'admin'})), 401)
      assert.match(serve.output(), new RegExp(`Created admin user "${username}"`))
      assert.doesNotMatch(serve.output(), START_WARNING)
    } finally {
      assert.equal(await stopAndDrain(serve), 0)
    }

    assert.ok(!serve.output().includes(password), 'serve printed the admin password')
    assert.deepEqual(
      (await readStore(serve.storePath)).users.map((user) => [user.username, user.is_admin]),
      [[username, true]],
    )
  })

  /** An ini as MLflow ships it, plus the keys serve reads. */
  async function writeIni(values: {admin_password: string; admin_username: string; default_permission: string}): Promise<string> {
    const path = join(await tempDir('serve-admin'), 'basic_auth.ini')
    await writeFile(
      path,
      `[mlflow]\ndefault_permission = ${values.default_permission}\ndatabase_uri = sqlite:///basic_auth.db\nadmin_username = ${values.admin_username}\nadmin_password = ${values.admin_password}\nauthorization_function = mlflow.server.auth:authenticate_request_basic_auth\n`,
    )
    return path
  }

  async function defaultLevel(serve: RunningServe, auth: string): Promise<string> {
    const username = uniqueName('plain-user')
    await createUser(serve, auth, username, 'plain-user-password')
    const {body, response} = await call(serve, `/api/3.0/mlflow/users/permissions/get?username=${username}&resource_type=experiment&resource_id=424242`, {auth})
    assert.equal(response.status, 200, body)
    return (JSON.parse(body) as {permission: string}).permission
  }

  it('reads admin_username, admin_password and default_permission from the basic_auth.ini given by --config', async () => {
    const ini = {admin_password: `ini-${randomSecret()}`, admin_username: uniqueName('ini-admin'), default_permission: 'EDIT'}
    const serve = await serveWith({extraArgs: ['--config', await writeIni(ini)]})
    try {
      const auth = basicAuth({password: ini.admin_password, username: ini.admin_username})
      assert.deepEqual(await currentUser(serve, auth), {id: 1, is_admin: true, username: ini.admin_username})
      assert.equal(await userStatus(serve, auth, 'admin'), 404)
      // The default is READ: EDIT can only have come from the ini.
      assert.equal(await defaultLevel(serve, auth), 'EDIT')
      assert.doesNotMatch(serve.output(), START_WARNING)
    } finally {
      assert.equal(await stopAndDrain(serve), 0)
    }

    assert.ok(!serve.output().includes(ini.admin_password), 'serve printed the admin password')
  })

  it('lets MLFLOW_AUTH_ADMIN_PASSWORD and MLFLOW_AUTH_ADMIN_USERNAME win over the ini', async () => {
    const ini = {admin_password: `ini-${randomSecret()}`, admin_username: uniqueName('ini-admin'), default_permission: 'MANAGE'}
    const path = await writeIni(ini)

    // The password from the environment, the username from the ini.
    const envPassword = `env-${randomSecret()}`
    const first = await serveWith({env: {MLFLOW_AUTH_ADMIN_PASSWORD: envPassword}, extraArgs: ['--config', path]})
    try {
      assert.deepEqual(await currentUser(first, basicAuth({password: envPassword, username: ini.admin_username})), {
        id: 1,
        is_admin: true,
        username: ini.admin_username,
      })
      assert.equal(await currentUser(first, basicAuth({password: ini.admin_password, username: ini.admin_username})), 401, 'the ini password was used')
      assert.equal(await defaultLevel(first, basicAuth({password: envPassword, username: ini.admin_username})), 'MANAGE')
    } finally {
      assert.equal(await stopAndDrain(first), 0)
    }

    // Both from the environment.
    const envUsername = uniqueName('env-admin')
    const second = await serveWith({env: {MLFLOW_AUTH_ADMIN_PASSWORD: envPassword, MLFLOW_AUTH_ADMIN_USERNAME: envUsername}, extraArgs: ['--config', path]})
    try {
      const auth = basicAuth({password: envPassword, username: envUsername})
      assert.deepEqual(await currentUser(second, auth), {id: 1, is_admin: true, username: envUsername})
      assert.equal(await userStatus(second, auth, ini.admin_username), 404, 'the ini admin was created')
    } finally {
      assert.equal(await stopAndDrain(second), 0)
    }
  })

  it('a password configured later replaces the old default of an existing admin, and silences the warning', async () => {
    const first = await serveWith({})
    assert.match(first.output(), START_WARNING)
    let adminId: number
    try {
      adminId = ((await currentUser(first, basicAuth({password: DEFAULT_PASSWORD, username: 'admin'}))) as {id: number}).id
    } finally {
      assert.equal(await stopAndDrain(first), 0)
    }

    const configured = `later-${randomSecret()}`
    const second = await serveWith({env: {MLFLOW_AUTH_ADMIN_PASSWORD: configured}, storePath: first.storePath})
    try {
      assert.match(second.output(), /Replaced MLflow's old default password of "admin"/)
      assert.doesNotMatch(second.output(), /Created admin user/)
      assert.doesNotMatch(second.output(), START_WARNING)
      assert.equal(await currentUser(second, basicAuth({password: DEFAULT_PASSWORD, username: 'admin'})), 401)
      assert.deepEqual(await currentUser(second, basicAuth({password: configured, username: 'admin'})), {id: adminId, is_admin: true, username: 'admin'})
    } finally {
      assert.equal(await stopAndDrain(second), 0)
    }

    assert.ok(!second.output().includes(configured), 'serve printed the admin password')
    assert.equal((await readStore(first.storePath)).users.length, 1)
  })

  it('a second start on the same store neither recreates nor resets the admin', async () => {
    const firstPassword = `first-${randomSecret()}`
    const first = await serveWith({env: {MLFLOW_AUTH_ADMIN_PASSWORD: firstPassword}})
    const {storePath} = first
    const changed = `changed-${randomSecret()}`
    const boss = {password: 'boss-password-1', username: uniqueName('boss')}
    try {
      const admin = basicAuth({password: firstPassword, username: 'admin'})
      assert.equal(((await currentUser(first, admin)) as {is_admin: boolean}).is_admin, true)
      // Another admin takes over and demotes "admin", whose password is changed as well.
      await createUser(first, admin, boss.username, boss.password)
      const promote = await call(first, '/api/2.0/mlflow/users/update-admin', {auth: admin, body: {is_admin: true, username: boss.username}, method: 'PATCH'})
      assert.equal(promote.response.status, 200, promote.body)
      const bossAuth = basicAuth(boss)
      const update = await call(first, '/api/2.0/mlflow/users/update-password', {auth: bossAuth, body: {password: changed, username: 'admin'}, method: 'PATCH'})
      assert.equal(update.response.status, 200, update.body)
      const demote = await call(first, '/api/2.0/mlflow/users/update-admin', {auth: bossAuth, body: {is_admin: false, username: 'admin'}, method: 'PATCH'})
      assert.equal(demote.response.status, 200, demote.body)
    } finally {
      assert.equal(await stopAndDrain(first), 0)
    }

    const before = await readStore(storePath)
    const adminBefore = before.users.find((user) => user.username === 'admin')!
    assert.equal(adminBefore.is_admin, false)

    // Restarted with another configured password, then with none at all (loopback).
    for (const env of [{MLFLOW_AUTH_ADMIN_PASSWORD: `second-${randomSecret()}`}, {}] as NodeJS.ProcessEnv[]) {
      const again = await serveWith({env, storePath})
      try {
        assert.doesNotMatch(again.output(), /Created admin user/)
        assert.equal(await currentUser(again, basicAuth({password: firstPassword, username: 'admin'})), 401, 'the first bootstrap password works again')
        if (env.MLFLOW_AUTH_ADMIN_PASSWORD)
          assert.equal(
            await currentUser(again, basicAuth({password: env.MLFLOW_AUTH_ADMIN_PASSWORD, username: 'admin'})),
            401,
            'the new bootstrap password was applied',
          )
        assert.equal(await currentUser(again, basicAuth({password: DEFAULT_PASSWORD, username: 'admin'})), 401)
        assert.deepEqual(await currentUser(again, basicAuth({password: changed, username: 'admin'})), {id: adminBefore.id, is_admin: false, username: 'admin'})
        // The admin no longer has the old default password: nothing to warn about.
        assert.doesNotMatch(again.output(), START_WARNING)
      } finally {
        assert.equal(await stopAndDrain(again), 0)
      }

      const afterRestart = await readStore(storePath)
      assert.deepEqual(afterRestart.users, before.users, 'the users changed on restart')
    }
  })
})

describe('serve: the 401', () => {
  it('is the same for no credentials, an unknown user, a wrong password and a malformed header; /health needs none', async () => {
    const {admin, password, serve} = await serveWithAdmin()
    try {
      const alice = {password: 'alice-password-1', username: uniqueName('alice')}
      await createUser(serve, admin, alice.username, alice.password)
      const refused = {
        'a malformed header': 'Basic !!!not-base64',
        'a wrong password for a user': basicAuth({password: 'alice-password-2', username: alice.username}),
        'a wrong password for the admin': basicAuth({password: `${password}x`, username: 'admin'}),
        'an empty password': basicAuth({password: '', username: alice.username}),
        'an unknown user': basicAuth({password: alice.password, username: uniqueName('nobody')}),
        'another scheme': 'Bearer some-token',
        'no credentials': undefined,
      }
      for (const path of ['/api/2.0/mlflow/experiments/search?max_results=1', '/api/2.0/mlflow/users/current', '/signup', '/']) {
        const control = await call(serve, path, {auth: admin})
        assert.equal(control.response.status, 200, `${path} with the right password: ${control.body}`)
        const answers = []
        for (const [what, auth] of Object.entries(refused)) {
          const {body, response} = await call(serve, path, {auth})
          assert.equal(response.status, 401, `${path} with ${what}`)
          assert.equal(response.headers.get('www-authenticate'), 'Basic realm="mlflow"', `${path} with ${what}`)
          answers.push({body, type: response.headers.get('content-type'), what})
        }

        assert.match(
          answers[0].body,
          /^You are not authenticated\. Please see https:\/\/www\.mlflow\.org\/docs\/latest\/auth\/index\.html#authenticating-to-mlflow on how to authenticate\.$/,
        )
        for (const answer of answers)
          assert.deepEqual({body: answer.body, type: answer.type}, {body: answers[0].body, type: answers[0].type}, `${path} with ${answer.what} differs`)
      }

      const health = await call(serve, '/health')
      assert.equal(health.response.status, 200, health.body)
      assert.equal(health.response.headers.get('www-authenticate'), null)
    } finally {
      assert.equal(await stopAndDrain(serve), 0)
    }
  })
})

describe('serve: /signup and /api/2.0/mlflow/users/create-ui', () => {
  it('gives admins a CSRF-protected form that creates users, and refuses everything else without creating anything', async () => {
    const {admin, serve} = await serveWithAdmin()
    try {
      const carolName = uniqueName('carol')
      await createUser(serve, admin, carolName, 'carol-password-1')
      const carol = basicAuth({password: 'carol-password-1', username: carolName})

      const signupPage = async (auth: string) => {
        const response = await fetch(`${serve.url}/signup`, {headers: {authorization: auth}})
        const html = await response.text()
        assert.equal(response.status, 200, html)
        assert.match(response.headers.get('content-type') ?? '', /^text\/html/)
        assert.match(html, /<form [^>]*method="post"[^>]*action="\/api\/2\.0\/mlflow\/users\/create-ui"/)
        assert.match(html, /name="username"/)
        assert.match(html, /type="password" name="password"/)
        const token = /name="csrf_token" value="([^"]+)"/.exec(html)?.[1]
        assert.ok(token, 'no csrf_token in the form')
        const setCookie = response.headers.getSetCookie()
        assert.equal(setCookie.length, 1, 'one cookie for the token')
        return {cookie: setCookie[0].split(';')[0], token}
      }

      // A non-admin gets no form; nobody unauthenticated either.
      const denied = await fetch(`${serve.url}/signup`, {headers: {authorization: carol}})
      assert.equal(denied.status, 403)
      assert.equal(await denied.text(), 'Permission denied')
      assert.equal(denied.headers.get('set-cookie'), null)

      const page = await signupPage(admin)
      const otherPage = await signupPage(admin)
      assert.notEqual(otherPage.token, page.token)

      const newUser = {password: 'signed-up-password', username: uniqueName('signup')}
      const post = async (auth: string, fields: Record<string, string>, cookie?: string) => {
        const headers: Record<string, string> = {authorization: auth, 'content-type': 'application/x-www-form-urlencoded'}
        if (cookie) headers.cookie = cookie
        const response = await fetch(`${serve.url}/api/2.0/mlflow/users/create-ui`, {body: new URLSearchParams(fields).toString(), headers, method: 'POST'})
        return {body: await response.text(), status: response.status}
      }

      const tampered = `${page.token.slice(0, -1)}${page.token.endsWith('A') ? 'B' : 'A'}`
      const refusals: Array<[string, {body: string; status: number}, number, RegExp]> = [
        ['no token', await post(admin, {...newUser}, page.cookie), 400, /The CSRF token is missing/],
        ['an empty token', await post(admin, {...newUser, csrf_token: ''}, page.cookie), 400, /The CSRF token is missing/],
        ['a tampered token', await post(admin, {...newUser, csrf_token: tampered}, page.cookie), 400, /CSRF token/],
        ['a made-up token', await post(admin, {...newUser, csrf_token: 'abc.def'}, page.cookie), 400, /CSRF token/],
        ['the token without its cookie', await post(admin, {...newUser, csrf_token: page.token}), 400, /CSRF token/],
        ["another page's cookie", await post(admin, {...newUser, csrf_token: page.token}, otherPage.cookie), 400, /CSRF token/],
        ['a non-admin with a valid token', await post(carol, {...newUser, csrf_token: page.token}, page.cookie), 403, /^Permission denied$/],
        ['no credentials', await post('', {...newUser, csrf_token: page.token}, page.cookie), 401, /You are not authenticated/],
      ]
      for (const [what, answer, status, message] of refusals) {
        assert.equal(answer.status, status, `${what}: ${answer.body}`)
        assert.match(answer.body, message, what)
        assert.doesNotMatch(answer.body, /Successfully signed up/, what)
      }

      assert.equal(await userStatus(serve, admin, newUser.username), 404, 'a refused form created the user')
      assert.equal(await currentUser(serve, basicAuth(newUser)), 401)

      const created = await post(admin, {...newUser, csrf_token: page.token}, page.cookie)
      assert.equal(created.status, 200, created.body)
      assert.match(created.body, new RegExp(`Successfully signed up user: ${newUser.username}`))
      assert.deepEqual(await currentUser(serve, basicAuth(newUser)), {
        id: (await storedId(serve.storePath, newUser.username))!,
        is_admin: false,
        username: newUser.username,
      })

      // The same name again: refused, and the first password still stands.
      const taken = await post(admin, {password: 'another-password-1', username: newUser.username, csrf_token: otherPage.token}, otherPage.cookie)
      assert.equal(taken.status, 200, taken.body)
      assert.match(taken.body, new RegExp(`Username has already been taken: ${newUser.username}`))
      assert.doesNotMatch(taken.body, /Successfully/)
      assert.equal(await currentUser(serve, basicAuth({password: 'another-password-1', username: newUser.username})), 401)
      assert.equal(((await currentUser(serve, basicAuth(newUser))) as {username: string}).username, newUser.username)
      const stored = await readStore(serve.storePath)
      assert.equal(stored.users.filter((user) => user.username === newUser.username).length, 1)
    } finally {
      assert.equal(await stopAndDrain(serve), 0)
    }
  })
})

async function storedId(storePath: string, username: string): Promise<number | undefined> {
  return (await readStore(storePath)).users.find((user) => user.username === username)?.id
}

describe('serve: SIGTERM', () => {
  // A hang guard, not a measurement: serve keeps idle connections 65 s, and must not wait for them.
  it('finishes a request in flight, then exits 0 with every acknowledged write in the store', {timeout: 45_000}, async () => {
    const upstream = await upstreamUrl()
    const {admin, serve} = await serveWithAdmin()
    const agent = new Agent({keepAlive: true, maxSockets: 1})
    try {
      const lastUser = uniqueName('last')
      await createUser(serve, admin, lastUser, 'last-user-password')

      // An upload whose body the test holds back: it cannot finish before the test lets it.
      const half = Buffer.alloc(8 * 1024 * 1024)
      for (let i = 0; i < half.length; i += 4096) half.writeUInt32LE(i, i)
      const body = Buffer.concat([half, Buffer.from(half).reverse()])
      const artifact = `${uniqueName('sigterm')}/upload.bin`
      const upload = httpRequest(`${serve.url}/api/2.0/mlflow-artifacts/artifacts/${artifact}`, {
        agent,
        headers: {authorization: admin, 'content-length': String(body.length), 'content-type': 'application/octet-stream', expect: '100-continue'},
        method: 'PUT',
      })
      const answered = new Promise<{body: Buffer; response: IncomingMessage}>((resolve, reject) => {
        upload.once('error', reject)
        upload.once('response', async (response) => {
          const chunks: Buffer[] = []
          try {
            for await (const chunk of response) chunks.push(chunk as Buffer)
            resolve({body: Buffer.concat(chunks), response})
          } catch (error) {
            reject(error)
          }
        })
      })
      // 100 Continue: serve has the request and its handler is running.
      await once(upload, 'continue')
      await new Promise<void>((resolve, reject) => upload.write(body.subarray(0, half.length), (error) => (error ? reject(error) : resolve())))

      const exited = once(serve.child, 'exit') as Promise<[null | number, null | string]>
      serve.child.kill('SIGTERM')
      await waitFor('serve to say it is finishing requests', () => /SIGTERM: finishing requests in flight/.test(serve.output()))
      assert.equal(serve.child.exitCode, null, 'serve exited with a request in flight')
      // No new connections meanwhile.
      const refusedError = await new Promise<NodeJS.ErrnoException | undefined>((resolve) => {
        const probe = httpRequest(`${serve.url}/health`, {agent: false})
        probe.once('error', (error) => resolve(error))
        probe.once('response', (response) => {
          response.resume()
          resolve(undefined)
        })
        probe.end()
      })
      assert.equal(refusedError?.code, 'ECONNREFUSED', 'serve still accepted connections after SIGTERM')

      upload.end(body.subarray(half.length))
      const {body: answer, response} = await answered
      assert.equal(response.statusCode, 200, answer.toString())
      // The client keeps its connection pooled; serve must still go.
      const [code, signal] = await exited
      assert.deepEqual({code, signal}, {code: 0, signal: null}, serve.output())

      const stored = await fetch(`${upstream}/api/2.0/mlflow-artifacts/artifacts/${artifact}`)
      assert.equal(stored.status, 200)
      const bytes = Buffer.from(await stored.arrayBuffer())
      assert.equal(bytes.length, body.length)
      assert.equal(createHash('sha256').update(bytes).digest('hex'), createHash('sha256').update(body).digest('hex'))
      assert.ok(
        (await readStore(serve.storePath)).users.some((user) => user.username === lastUser),
        `${lastUser} is not in the store`,
      )
    } finally {
      agent.destroy()
      await serve.stop('SIGKILL')
    }
  })

  it('finishes a download whose answer has begun, then exits 0 although the client keeps its connection', {timeout: 45_000}, async () => {
    const upstream = await upstreamUrl()
    const {admin, serve} = await serveWithAdmin()
    const agent = new Agent({keepAlive: true, maxSockets: 1})
    try {
      // 64 MiB straight into the upstream: far more than the socket buffers between serve and the test hold.
      const content = Buffer.alloc(64 * 1024 * 1024)
      for (let i = 0; i < content.length; i += 4096) content.writeUInt32LE(i, i)
      const artifact = `${uniqueName('sigterm-down')}/download.bin`
      const put = await fetch(`${upstream}/api/2.0/mlflow-artifacts/artifacts/${artifact}`, {body: content, method: 'PUT'})
      assert.equal(put.status, 200, await put.text())

      const download = httpRequest(`${serve.url}/api/2.0/mlflow-artifacts/artifacts/${artifact}`, {agent, headers: {authorization: admin}})
      download.end()
      const [response] = (await once(download, 'response')) as [IncomingMessage]
      assert.equal(response.statusCode, 200)
      response.pause()

      const exited = once(serve.child, 'exit') as Promise<[null | number, null | string]>
      serve.child.kill('SIGTERM')
      await waitFor('serve to say it is finishing requests', () => /SIGTERM: finishing requests in flight/.test(serve.output()))
      assert.equal(serve.child.exitCode, null, 'serve exited with a download in flight')

      const hash = createHash('sha256')
      let size = 0
      for await (const chunk of response) {
        hash.update(chunk as Buffer)
        size += (chunk as Buffer).length
      }

      assert.equal(response.complete, true, 'the download was cut short')
      assert.equal(size, content.length)
      assert.equal(hash.digest('hex'), createHash('sha256').update(content).digest('hex'))
      const [code, signal] = await exited
      assert.deepEqual({code, signal}, {code: 0, signal: null}, serve.output())
    } finally {
      agent.destroy()
      await serve.stop('SIGKILL')
    }
  })
})

describe('serve without --proxy-to', () => {
  it('exits with the usage code and says what it needs', async () => {
    const storePath = join(await tempDir('serve-admin'), 'auth.json')
    const result = await runCli(['serve', '--store', storePath, '--port', String(await freePort())], {
      env: {MLFLOW_AUTH_ADMIN_PASSWORD: `admin-${randomSecret()}`, MLFLOWCTL_PROXY_TO: undefined},
    })
    assert.equal(result.code, ExitCode.Usage, result.stderr)
    assert.match(result.stderr, /serve needs the MLflow tracking server to protect/)
    assert.match(result.stderr, /--proxy-to/)
    assert.doesNotMatch(result.stderr, /listening on/)
    assert.equal(await exists(storePath), false)
  })
})
