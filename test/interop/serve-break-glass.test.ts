/**
 * Break-glass administration and its guards, through MLflow 3.17's own Python client in front of
 * serve (on the JSON file store, or on PostgreSQL with MLFLOWCTL_TEST_STORE=postgres):
 * - `store reset-password`, `store create-admin`, `store make-admin` change the store of a serve
 *   that is running, and serve applies the change without a restart: the new password works, the
 *   old one fails;
 * - the last admin can be neither demoted nor deleted, through the API nor the CLI;
 * - the password policy (--password-min-length, --refused-passwords) holds on users/create,
 *   users/update-password and the /signup form.
 */
import assert from 'node:assert/strict'
import {mkdtemp, writeFile} from 'node:fs/promises'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {after, before, describe, it} from 'node:test'

import {type CliResult, okJson, runCli} from '../support/cli.js'
import {type Credentials} from '../support/mlflow-server.js'
import {MLFLOW_VERSIONS} from '../support/mlflow-versions.js'
import {expectError, PythonClient} from '../support/python-client.js'
import {type RunningServe, startServe} from '../support/serve.js'
import {acquireServer, releaseServers, uniqueName} from '../support/servers.js'

const version = MLFLOW_VERSIONS.latest
const REFUSED = 'Correct-Horse-Battery-Staple'

describe(`break-glass and guards: serve (${process.env.MLFLOWCTL_TEST_STORE ?? 'file'} store) and MLflow ${version}'s Python client`, () => {
  let serve: RunningServe
  let admin: PythonClient
  let refusedFile: string

  before(async () => {
    const dir = await mkdtemp(join(tmpdir(), 'mlflowctl-break-glass-'))
    refusedFile = join(dir, 'refused.txt')
    await writeFile(refusedFile, `# common passwords\n${REFUSED.toLowerCase()}\n`)
    serve = await startServe({
      extraArgs: ['--password-min-length', '14', '--refused-passwords', refusedFile],
      upstream: (await acquireServer(version, 'plain')).url,
    })
    admin = new PythonClient({credentials: serve.admin, trackingUri: serve.url, version})
  })

  after(async () => {
    await serve?.stop()
    await releaseServers()
  })

  const as = (credentials: Credentials) => new PythonClient({credentials, trackingUri: serve.url, version})
  /** The Python client's get_user as `credentials`: the user, or its error. */
  const getUser = async (credentials: Credentials, username = credentials.username) =>
    (await as(credentials).batch([{args: [username], client: 'auth', method: 'get_user'}]))[0]
  /** A store command on serve's store, with serve's password policy, the password on stdin. */
  const offline = (args: string[], password?: string): Promise<CliResult> =>
    runCli(
      [
        'store',
        ...args,
        '--store',
        serve.storePath,
        '--yes',
        '--json',
        ...(password === undefined ? [] : ['--password-stdin', '--password-min-length', '14', '--refused-passwords', refusedFile]),
      ],
      {input: password},
    )
  /** serve applies another process's change in the background: poll for it (bounded), never sleep a fixed time. */
  async function eventually(what: string, check: () => Promise<boolean>): Promise<void> {
    const deadline = Date.now() + 15_000
    while (!(await check())) {
      if (Date.now() > deadline) assert.fail(`${what}: not seen through serve`)
      await new Promise((resolve) => setTimeout(resolve, 100))
    }
  }

  /** As a user of the CLI against serve, with credentials from the environment. */
  const cliAs = (credentials: Credentials, args: string[], input?: string) =>
    runCli([...args, '--json'], {
      env: {MLFLOW_TRACKING_PASSWORD: credentials.password, MLFLOW_TRACKING_URI: serve.url, MLFLOW_TRACKING_USERNAME: credentials.username},
      input,
    })

  it('the last admin can be neither demoted nor deleted: the API and the CLI refuse, nothing changes', async () => {
    const [demoted] = await admin.batch([{args: [serve.admin.username, false], client: 'auth', method: 'update_user_admin'}])
    const error = expectError(demoted)
    assert.equal(error.error_code, 'INVALID_PARAMETER_VALUE')
    assert.match(error.message, /is the last admin/)
    for (const command of [
      ['users', 'demote', serve.admin.username, '--yes'],
      ['users', 'delete', serve.admin.username, '--yes'],
    ]) {
      const result = await cliAs(serve.admin, command)
      assert.equal(result.code, 2, result.stderr)
      assert.equal(JSON.parse(result.stdout).error.code, 'LAST_ADMIN')
    }

    assert.equal((await getUser(serve.admin)).ok.is_admin, true)
  })

  it('the password policy holds on create, update and signup, naming the rule, never echoing the password', async () => {
    const alice = {password: 'alice-password-one', username: uniqueName('alice')}
    const calls = await admin.batch([
      {args: [alice.username, 'thirteen-char'], client: 'auth', method: 'create_user'},
      {args: [alice.username, REFUSED], client: 'auth', method: 'create_user'},
      {args: [alice.username, alice.username.toUpperCase()], client: 'auth', method: 'create_user'},
      {args: [alice.username, alice.password], client: 'auth', method: 'create_user'},
      {args: [alice.username, REFUSED.toUpperCase()], client: 'auth', method: 'update_user_password'},
    ])
    const messages = calls.map((call) => call.error?.message ?? 'ok')
    assert.match(messages[0], /at least 14 characters/)
    assert.match(messages[1], /list of refused passwords/)
    assert.match(messages[2], /must not be the username/)
    assert.equal(messages[3], 'ok')
    assert.match(messages[4], /list of refused passwords/)
    for (const message of messages) assert.ok(!message.toLowerCase().includes(REFUSED.toLowerCase()), message)
    // The user's own change through the CLI: the current password is sent, the policy applies.
    const refused = await cliAs(alice, ['users', 'update-password', alice.username, '--password-stdin'], REFUSED)
    assert.equal(refused.code, 2, refused.stderr)
    assert.match(JSON.parse(refused.stdout).error.message, /list of refused passwords/)
    assert.equal((await getUser(alice)).ok.username, alice.username, 'the password is unchanged')

    // The /signup form, as the web UI posts it.
    const auth = `Basic ${Buffer.from(`${serve.admin.username}:${serve.admin.password}`).toString('base64')}`
    const page = await fetch(`${serve.url}/signup`, {headers: {authorization: auth}})
    const token = /name="csrf_token" value="([^"]+)"/.exec(await page.text())![1]
    const cookie = page.headers.get('set-cookie')!.split(';')[0]
    const signup = (username: string, password: string) =>
      fetch(`${serve.url}/api/2.0/mlflow/users/create-ui`, {
        body: new URLSearchParams({csrf_token: token, password, username}),
        headers: {authorization: auth, cookie},
        method: 'POST',
      })
    const bob = uniqueName('bob')
    const answer = await signup(bob, REFUSED)
    const text = await answer.text()
    assert.equal(answer.status, 400, text)
    assert.match(text, /list of refused passwords/)
    assert.equal(expectError((await admin.batch([{args: [bob], client: 'auth', method: 'get_user'}]))[0]).error_code, 'RESOURCE_DOES_NOT_EXIST')
    assert.equal((await signup(bob, 'bob-password-is-fine')).status, 200)
    assert.equal((await getUser({password: 'bob-password-is-fine', username: bob})).ok.username, bob)
  })

  it('store reset-password while serve runs: the new password works through serve at once, the old one fails', async () => {
    const lost = serve.admin
    const renewed = {password: `renewed-${uniqueName('pw')}`, username: lost.username}
    const reset = okJson(await offline(['reset-password', lost.username], renewed.password))
    assert.deepEqual({...reset, store: undefined}, {action: 'password-reset', is_admin: true, store: undefined, username: lost.username})
    assert.ok(!JSON.stringify(reset).includes(renewed.password))
    await eventually('the new password', async () => (await getUser(renewed)).ok?.is_admin === true)
    assert.equal(expectError(await getUser(lost)).status, 401)
    // The policy applies offline too, and a refused reset changes nothing.
    const weak = await offline(['reset-password', lost.username], REFUSED)
    assert.equal(weak.code, 2, weak.stderr)
    assert.equal(JSON.parse(weak.stdout).error.code, 'INVALID_PASSWORD')
    serve.admin.password = renewed.password
    admin = new PythonClient({credentials: serve.admin, trackingUri: serve.url, version})
    assert.equal((await getUser(serve.admin)).ok.is_admin, true)
  })

  it('store create-admin and make-admin while serve runs: the new admin administers through serve', async () => {
    const rescue = {password: `rescue-${uniqueName('pw')}`, username: uniqueName('rescue')}
    assert.equal(okJson(await offline(['create-admin', rescue.username], rescue.password)).action, 'admin-created')
    await eventually('the new admin', async () => (await getUser(rescue)).ok?.is_admin === true)
    const again = await offline(['create-admin', rescue.username], rescue.password)
    assert.equal(again.code, 6, again.stderr)

    const carol = {password: 'carol-password-one', username: uniqueName('carol')}
    await as(rescue).call('auth', 'create_user', carol.username, carol.password)
    assert.equal(okJson(await offline(['make-admin', carol.username])).is_admin, true)
    await eventually('the promotion', async () => (await getUser(carol)).ok?.is_admin === true)
    // With admins to spare, one may now be demoted (through serve; offline there is no demotion).
    await as(rescue).call('auth', 'update_user_admin', carol.username, false)
    assert.equal((await getUser(carol)).ok.is_admin, false)
    const missing = await offline(['make-admin', uniqueName('nobody')])
    assert.equal(missing.code, 5, missing.stderr)
  })
})
