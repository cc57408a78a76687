/**
 * Error paths and exit codes of the client commands, against a scripted local server (real HTTP
 * on loopback). Compatibility with real MLflow is proven in test/interop; this covers the answers a
 * real server is hard to make give on demand.
 *
 * Commands run in this process (runCommand); only a login that pipes its secret on stdin runs as
 * its own process (runCli), since reading a real pipe to its end is what --*-stdin does.
 */
import assert from 'node:assert/strict'
import {mkdir, mkdtemp, readdir, readFile, stat, writeFile} from 'node:fs/promises'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {after, before, beforeEach, describe, it} from 'node:test'

import {ExitCode} from '../../src/core/errors.js'
import {runCli} from '../support/cli.js'
import {type Handler, json, scriptedServer, type TestServer} from '../support/recorder.js'
import {runCommand} from '../support/run-command.js'

describe('client command errors and exit codes', () => {
  let server: TestServer
  let url: string
  let routes: Record<string, Handler>
  let seen: Array<{authorization?: string; path: string}>
  const PASSWORD = 'sekrit-%-password'

  before(async () => {
    server = await scriptedServer((request, path) => {
      seen.push({authorization: request.headers.authorization, path})
      return routes[`${request.method} ${path}`]
    })
    url = server.url
  })

  after(() => server.close())

  beforeEach(() => {
    routes = {}
    seen = []
  })

  const env = (extra: NodeJS.ProcessEnv = {}) => ({
    MLFLOW_HTTP_REQUEST_MAX_RETRIES: '0',
    MLFLOW_TRACKING_PASSWORD: PASSWORD,
    MLFLOW_TRACKING_URI: url,
    MLFLOW_TRACKING_USERNAME: 'admin',
    ...extra,
  })

  it('with nothing configured: not logged in, exit 3, a hint, and a JSON error on stdout under --json', async () => {
    const human = await runCommand(['users', 'list'])
    assert.equal(human.code, ExitCode.Unauthenticated)
    assert.match(human.stderr, /Not logged in/)
    assert.match(human.stderr, /mlflowctl login/)
    assert.equal(human.stdout, '')
    const machine = await runCommand(['users', 'list', '--json'])
    assert.equal(machine.code, ExitCode.Unauthenticated)
    assert.deepEqual(Object.keys(JSON.parse(machine.stdout).error).sort(), ['code', 'exit', 'hint', 'message'])
    assert.equal(JSON.parse(machine.stdout).error.code, 'NOT_LOGGED_IN')
  })

  it('credentials but no server: exit 2, naming what is missing', async () => {
    const result = await runCommand(['users', 'list', '--json'], {env: {MLFLOW_TRACKING_PASSWORD: PASSWORD, MLFLOW_TRACKING_USERNAME: 'admin'}})
    assert.equal(result.code, ExitCode.Usage)
    assert.equal(JSON.parse(result.stdout).error.code, 'NO_TRACKING_URI')
  })

  it('whoami after logout: not logged in, exit 3, and the hint names mlflowctl login', async () => {
    routes['GET /api/2.0/mlflow/users/current'] = (_request, response) => json(response, 200, {user: {id: 1, is_admin: true, username: 'admin'}})
    const home = await mkdtemp(join(tmpdir(), 'mlflowctl-home-'))
    // Its own process: the password is piped on stdin.
    assert.equal((await runCli(['login', '--tracking-uri', url, '--username', 'admin', '--password-stdin'], {home, input: 'admin-password'})).code, 0)
    assert.equal((await runCommand(['whoami'], {home})).code, 0)
    assert.equal((await runCommand(['logout'], {home})).code, 0)
    const human = await runCommand(['whoami'], {home})
    assert.equal(human.code, ExitCode.Unauthenticated, human.stderr)
    assert.match(human.stderr, /Not logged in/)
    assert.match(human.stderr, /mlflowctl login/)
    assert.doesNotMatch(human.stderr, /No MLflow tracking server/)
    const machine = await runCommand(['whoami', '--json'], {home})
    assert.deepEqual({code: machine.code, error: JSON.parse(machine.stdout).error.code}, {code: ExitCode.Unauthenticated, error: 'NOT_LOGGED_IN'})
  })

  it('an unreachable server: exit 7', async () => {
    const result = await runCommand(['users', 'get', 'alice'], {env: env({MLFLOW_TRACKING_URI: 'http://127.0.0.1:9'})})
    assert.equal(result.code, ExitCode.Unavailable)
    assert.match(result.stderr, /Could not reach MLflow at http:\/\/127\.0\.0\.1:9/)
  })

  it('401: exit 3, a hint to log in, and never the password', async () => {
    routes['GET /api/2.0/mlflow/users/get'] = (_request, response) => {
      response.writeHead(401, {'content-type': 'text/plain', 'www-authenticate': 'Basic realm="mlflow"'})
      response.end('You are not authenticated.')
    }

    const result = await runCommand(['users', 'get', 'alice', '--json'], {env: env()})
    assert.equal(result.code, ExitCode.Unauthenticated)
    const {error} = JSON.parse(result.stdout)
    assert.equal(error.status, 401)
    assert.match(error.hint, /MLFLOW_TRACKING_USERNAME|mlflowctl login/)
    assert.ok(!result.stdout.includes(PASSWORD) && !result.stderr.includes(PASSWORD))
    assert.ok(!result.stdout.includes(Buffer.from(`admin:${PASSWORD}`).toString('base64')))
  })

  it("403: exit 4; 404: exit 5; already exists: exit 6; 500: exit 7; MLflow's CODE: message shown", async () => {
    routes['GET /api/2.0/mlflow/users/get'] = (_request, response) => {
      response.writeHead(403, {'content-type': 'text/plain'})
      response.end('Permission denied')
    }

    routes['PATCH /api/2.0/mlflow/users/update-admin'] = (_request, response) =>
      json(response, 404, {error_code: 'RESOURCE_DOES_NOT_EXIST', message: 'User with username=ghost not found'})
    routes['POST /api/2.0/mlflow/users/create'] = (_request, response) =>
      json(response, 400, {error_code: 'RESOURCE_ALREADY_EXISTS', message: 'User (username=alice) already exists.'})
    routes['DELETE /api/2.0/mlflow/users/delete'] = (_request, response) => json(response, 500, {error_code: 'INTERNAL_ERROR', message: 'database is locked'})
    assert.equal((await runCommand(['users', 'get', 'bob'], {env: env()})).code, ExitCode.PermissionDenied)
    const missing = await runCommand(['users', 'promote', 'ghost'], {env: env()})
    assert.equal(missing.code, ExitCode.NotFound)
    assert.match(missing.stderr, /RESOURCE_DOES_NOT_EXIST: User with username=ghost not found/)
    // Its own process: the password is piped on stdin.
    assert.equal((await runCli(['users', 'create', 'alice', '--password-stdin'], {env: env(), input: 'long-enough-password'})).code, ExitCode.AlreadyExists)
    assert.equal((await runCommand(['users', 'delete', 'alice', '--yes'], {env: env()})).code, ExitCode.Unavailable)
  })

  it('an endpoint the server lacks: exit 8 with a clear message', async () => {
    const result = await runCommand(['users', 'list'], {env: env()})
    assert.equal(result.code, ExitCode.Unsupported)
    assert.match(result.stderr, /cannot list users/)
  })

  it('a permission level is checked before any request', async () => {
    const result = await runCommand(['perms', 'grant', 'model', 'm', '--user', 'a', '--permission', 'OWNER'], {env: env()})
    assert.equal(result.code, ExitCode.Usage)
    assert.deepEqual(seen, [])
  })

  it('destructive commands without a terminal or --yes: exit 9, nothing sent', async () => {
    for (const args of [
      ['users', 'delete', 'alice'],
      ['users', 'demote', 'alice'],
      ['perms', 'revoke', 'model', 'm', '--user', 'alice'],
    ]) {
      const result = await runCommand(args, {env: env()})
      assert.equal(result.code, ExitCode.Aborted, args.join(' '))
      assert.match(result.stderr, /--yes/)
    }

    assert.deepEqual(seen, [])
  })

  it('MLFLOW_TRACKING_AUTH without credentials is refused, never sent unauthenticated', async () => {
    const result = await runCommand(['users', 'get', 'alice'], {env: {MLFLOW_TRACKING_AUTH: 'my_plugin', MLFLOW_TRACKING_URI: url}})
    assert.equal(result.code, ExitCode.Usage)
    assert.match(result.stderr, /MLFLOW_TRACKING_AUTH/)
    assert.deepEqual(seen, [])
  })

  it('a broken credentials file stops the command and names the line', async () => {
    const home = await mkdtemp(join(tmpdir(), 'mlflowctl-home-'))
    await mkdir(join(home, '.mlflow'))
    const broken = '[mlflow]\nmlflow_tracking_username = a\n[mlflow]\nmlflow_tracking_password = b\n'
    await writeFile(join(home, '.mlflow', 'credentials'), broken, {mode: 0o600})
    const result = await runCommand(['users', 'get', 'alice'], {env: {MLFLOW_TRACKING_URI: url}, home})
    assert.equal(result.code, ExitCode.Usage)
    assert.match(result.stderr, /credentials.*line 3/s)
    assert.equal(await readFile(join(home, '.mlflow', 'credentials'), 'utf8'), broken)
  })

  it('login --token-stdin on the mlflow backend checks an access token, stores it for mlflowctl only, and later commands send it as Bearer', async () => {
    const TOKEN = `mlft_${'a'.repeat(43)}`
    routes['GET /api/2.0/mlflow/users/current'] = (request, response) => {
      if (request.headers.authorization === `Bearer ${TOKEN}`) json(response, 200, {user: {id: 7, is_admin: false, username: 'ci-bot'}})
      else json(response, 401, {error_code: 'UNAUTHENTICATED', message: 'no'})
    }

    const home = await mkdtemp(join(tmpdir(), 'mlflowctl-home-'))
    const credentials = join(home, '.mlflow', 'credentials')
    // A password login first: the token login must not leave its pair for MLflow's clients to send.
    await mkdir(join(home, '.mlflow'))
    await writeFile(credentials, '[mlflow]\nmlflow_tracking_username = admin\nmlflow_tracking_password = old\n', {mode: 0o600})
    const rejected = await runCli(['login', '--tracking-uri', url, '--token-stdin', '--profile', 'ci'], {home, input: 'mlft_wrong'})
    assert.equal(rejected.code, ExitCode.Unauthenticated, rejected.stderr)
    assert.match(rejected.stderr, /rejected the token/)
    assert.ok(!rejected.stderr.includes('mlft_wrong'))

    const result = await runCli(['login', '--tracking-uri', url, '--token-stdin', '--profile', 'ci'], {home, input: `${TOKEN}\n`})
    assert.equal(result.code, 0, result.stderr)
    assert.match(result.stderr, /export MLFLOW_TRACKING_TOKEN/)
    assert.ok(!result.stderr.includes(TOKEN) && !result.stdout.includes(TOKEN), 'the token is never printed')
    const text = await readFile(credentials, 'utf8')
    assert.match(
      text,
      new RegExp(
        `\\[mlflowctl\\.profile\\.ci\\]\\ntracking_uri = ${url.replaceAll('.', '\\.')}\\nmlflow_tracking_username = ci-bot\\nmlflowctl_tracking_token = ${TOKEN}\\n`,
      ),
    )
    assert.doesNotMatch(text, /mlflow_tracking_password/, 'no password anywhere, [mlflow] has no pair')

    seen = []
    const whoami = await runCommand(['whoami', '--json'], {home})
    assert.equal(whoami.code, 0, whoami.stderr)
    assert.equal(JSON.parse(whoami.stdout).user.username, 'ci-bot')
    assert.equal(JSON.parse(whoami.stdout).token_source, credentials)
    assert.ok(seen.length > 0 && seen.every((request) => request.authorization === `Bearer ${TOKEN}`))

    // Once another login is current, the token profile named with --profile still sends its token alone.
    routes['GET /api/2.0/mlflow/users/current'] = (request, response) => {
      if (request.headers.authorization === `Bearer ${TOKEN}`) json(response, 200, {user: {id: 7, is_admin: false, username: 'ci-bot'}})
      else json(response, 200, {user: {id: 1, is_admin: true, username: 'admin'}})
    }

    assert.equal(
      (await runCli(['login', '--tracking-uri', url, '--username', 'admin', '--password-stdin', '--profile', 'main'], {home, input: 'admin-password'})).code,
      0,
    )
    assert.equal((await runCli(['auth', 'switch', 'main'], {home})).code, 0)
    seen = []
    const named = await runCli(['whoami', '--json', '--profile', 'ci'], {home})
    assert.equal(named.code, 0, named.stderr)
    assert.equal(JSON.parse(named.stdout).user.username, 'ci-bot')
    assert.doesNotMatch(named.stderr, /no password/, 'no warning about a username without a password')
    assert.ok(seen.length > 0 && seen.every((request) => request.authorization === `Bearer ${TOKEN}`))
  })

  it('logout when not logged in: exit 5', async () => {
    assert.equal((await runCommand(['logout'])).code, ExitCode.NotFound)
  })

  it('whoami says when the environment overrides the stored login', async () => {
    routes['GET /api/2.0/mlflow/users/current'] = (request, response) => {
      const [user] = Buffer.from(request.headers.authorization!.split(' ')[1], 'base64').toString().split(':')
      json(response, 200, {user: {id: 1, is_admin: user === 'admin', username: user}})
    }

    const home = await mkdtemp(join(tmpdir(), 'mlflowctl-home-'))
    // Its own process: the password is piped on stdin.
    assert.equal((await runCli(['login', '--tracking-uri', url, '--username', 'admin', '--password-stdin'], {home, input: 'admin-password'})).code, 0)
    const result = await runCommand(['whoami', '--json'], {env: {MLFLOW_TRACKING_PASSWORD: 'env-password', MLFLOW_TRACKING_USERNAME: 'ci-bot'}, home})
    assert.equal(result.code, 0, result.stderr)
    const whoami = JSON.parse(result.stdout)
    assert.equal(whoami.user.username, 'ci-bot')
    assert.equal(whoami.username_source, 'MLFLOW_TRACKING_USERNAME')
    assert.deepEqual(whoami.overrides, ['MLFLOW_TRACKING_USERNAME', 'MLFLOW_TRACKING_PASSWORD'])
    const human = await runCommand(['whoami'], {env: {MLFLOW_TRACKING_USERNAME: 'ci-bot', MLFLOW_TRACKING_PASSWORD: 'x'}, home})
    assert.match(human.stderr, /MLFLOW_TRACKING_USERNAME is set and overrides the stored login/)
    assert.ok(!human.stdout.includes('\u001B['), 'no colour codes when stdout is not a terminal')
  })

  describe('databricks backend', () => {
    // Logins run as their own process: the token is piped on stdin (with and without a newline).
    const TOKEN = 'dapi-good-token'
    beforeEach(() => {
      routes['GET /api/2.0/preview/scim/v2/Me'] = (request, response) => {
        if (request.headers.authorization === `Bearer ${TOKEN}`) json(response, 200, {userName: 'alice@example.com'})
        else json(response, 401, {error_code: 'UNAUTHENTICATED', message: 'Invalid token'})
      }
    })

    it('a host that is no http(s) URL is refused with the same words as a tracking URI, exit 2, before any request or file', async () => {
      const home = await mkdtemp(join(tmpdir(), 'mlflowctl-home-'))
      const result = await runCli(['login', '--backend', 'databricks', '--host', 'adb-1.azuredatabricks.net', '--token-stdin'], {home, input: TOKEN})
      assert.equal(result.code, 2)
      assert.match(
        result.stderr,
        /Not a workspace URL: No http:\/\/ or https:\/\/ in "adb-1\.azuredatabricks\.net"; did you mean https:\/\/adb-1\.azuredatabricks\.net\?/,
      )
      assert.deepEqual(await readdir(home), [])
    })

    it('login writes the profile 0600, keeps others and a .bak; a bad token changes nothing; logout removes the token', async () => {
      const home = await mkdtemp(join(tmpdir(), 'mlflowctl-home-'))
      const config = join(home, '.databrickscfg')
      const original = '# mine\n[other]\nhost = https://other.example.com\ntoken = keep-me\n\n[DEFAULT]\nhost = https://old.example.com\ncluster_id = 0123\n'
      await writeFile(config, original, {mode: 0o600})

      const rejected = await runCli(['login', '--backend', 'databricks', '--host', url, '--token-stdin'], {home, input: 'dapi-wrong'})
      assert.equal(rejected.code, ExitCode.Unauthenticated)
      assert.equal(await readFile(config, 'utf8'), original)

      const result = await runCli(['login', '--backend', 'databricks', '--host', url, '--token-stdin', '--json'], {home, input: `${TOKEN}\n`})
      assert.equal(result.code, 0, result.stderr)
      assert.equal(JSON.parse(result.stdout).username, 'alice@example.com')
      const written = await readFile(config, 'utf8')
      assert.match(written, /# mine\n\[other\]\nhost = https:\/\/other\.example\.com\ntoken = keep-me\n/)
      assert.match(written, new RegExp(`\\[DEFAULT\\][^[]*host = ${url.replaceAll('.', '\\.')}`))
      assert.match(written, new RegExp(`token = ${TOKEN}\\n`))
      assert.match(written, /cluster_id = 0123/)
      assert.equal((await stat(config)).mode & 0o777, 0o600)
      assert.equal(await readFile(`${config}.bak`, 'utf8'), original)
      assert.equal((await stat(`${config}.bak`)).mode & 0o777, 0o600)

      assert.equal((await runCommand(['logout', '--backend', 'databricks'], {home})).code, 0)
      const after = await readFile(config, 'utf8')
      assert.ok(!after.includes(TOKEN))
      assert.match(after, /token = keep-me/)
    })

    it('the same login again writes nothing: the file stays as it is and the .bak keeps the original', async () => {
      const home = await mkdtemp(join(tmpdir(), 'mlflowctl-home-'))
      const config = join(home, '.databrickscfg')
      const original = '[DEFAULT]\nhost = https://old.example.com\ncluster_id = 0123\n'
      await writeFile(config, original, {mode: 0o600})
      const login = () => runCli(['login', '--backend', 'databricks', '--host', url, '--token-stdin'], {home, input: TOKEN})
      const first = await login()
      assert.equal(first.code, 0, first.stderr)
      assert.equal(await readFile(`${config}.bak`, 'utf8'), original)
      const written = await readFile(config, 'utf8')
      const {ino} = await stat(config)

      const again = await login()
      assert.equal(again.code, 0, again.stderr)
      assert.doesNotMatch(again.stderr, /previous file kept/)
      assert.equal(await readFile(`${config}.bak`, 'utf8'), original)
      assert.equal(await readFile(config, 'utf8'), written)
      assert.equal((await stat(config)).ino, ino, 'the file was not replaced')
    })
  })
})
