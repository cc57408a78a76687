/**
 * Access tokens through serve in front of a plain MLflow 3.17.2, used by MLflow's real Python
 * client through MLFLOW_TRACKING_TOKEN (no username, no password on the machine), and managed with
 * `mlflowctl tokens`: the user's permissions, revocation and expiry in force at once, service
 * accounts that only tokens can use, and a revocation on one replica refused at once by another
 * replica on the same PostgreSQL store. Run on the store MLFLOWCTL_TEST_STORE names (file, or
 * postgres in the second pass).
 */
import assert from 'node:assert/strict'
import {after, before, describe, it} from 'node:test'

import {type AuthTarget, authTarget} from '../support/auth-target.js'
import {okJson, runCli} from '../support/cli.js'
import {type Credentials} from '../support/mlflow-server.js'
import {MLFLOW_VERSIONS} from '../support/mlflow-versions.js'
import {startPostgres} from '../support/postgres.js'
import {expectError, PythonClient} from '../support/python-client.js'
import {restClient} from '../support/rest.js'
import {startServe} from '../support/serve.js'
import {acquireServer, releaseServers, uniqueName} from '../support/servers.js'

const version = MLFLOW_VERSIONS.latest

after(releaseServers)

/** What a Bearer request gets from serve. */
async function statusWithToken(url: string, token: string, path = '/api/2.0/mlflow/users/current'): Promise<number> {
  const response = await fetch(url + path, {headers: {authorization: `Bearer ${token}`}})
  await response.text()
  return response.status
}

describe(`access tokens through serve in front of MLflow ${version}`, () => {
  let target: AuthTarget
  const rest = restClient(() => target.url)
  const alice: Credentials = {password: 'alice-password-123', username: uniqueName('alice')}
  const bot = uniqueName('ci-bot')
  let editable: string
  let readable: string

  /** mlflowctl as `who`, against serve. */
  const cli = (who: Credentials, args: string[]) =>
    runCli(args, {env: {MLFLOW_TRACKING_PASSWORD: who.password, MLFLOW_TRACKING_URI: target.url, MLFLOW_TRACKING_USERNAME: who.username}})
  /** MLflow's Python client with nothing but the token. */
  const python = (token: string) => new PythonClient({env: {MLFLOW_TRACKING_TOKEN: token}, trackingUri: target.url, version})

  before(async () => {
    target = await authTarget(version, 'serve', {users: [alice]})
    editable = (await rest.ok(target.admin, 'POST', '/api/2.0/mlflow/experiments/create', {name: uniqueName('tokens-edit')})).experiment_id
    readable = (await rest.ok(target.admin, 'POST', '/api/2.0/mlflow/experiments/create', {name: uniqueName('tokens-read')})).experiment_id
    await rest.ok(target.admin, 'POST', '/api/2.0/mlflow/experiments/permissions/create', {
      experiment_id: editable,
      permission: 'EDIT',
      username: alice.username,
    })
  })
  after(() => target?.stop())

  it("a token works as its user through MLflow's client, is listed without its text, and is refused at once once revoked", async () => {
    const created = await cli(alice, ['tokens', 'create', '--name', 'laptop', '--json'])
    const {token, expires_at: expiresAt, username} = okJson(created)
    assert.match(token, /^mlft_[A-Za-z0-9_-]{43}$/)
    assert.equal(username, alice.username)
    // The default lifetime is 90 days.
    const days = (Date.parse(expiresAt) - Date.now()) / 86_400_000
    assert.ok(days > 89.9 && days <= 90, `expires in ${days} days`)
    // Printed on stdout once, and only there, without --json too.
    const plain = await cli(alice, ['tokens', 'create', '--name', 'plain'])
    assert.equal(plain.code, 0, plain.stderr)
    assert.match(plain.stdout, /^mlft_[A-Za-z0-9_-]{43}\n$/)
    assert.ok(!plain.stderr.includes(plain.stdout.trim()))

    const client = python(token)
    const run = await client.call('tracking', 'create_run', editable)
    assert.equal(run.info.experiment_id, editable)
    const denied = expectError((await client.batch([{args: [readable], client: 'tracking', method: 'create_run'}]))[0])
    assert.equal(denied.error_code, 'PERMISSION_DENIED', denied.message)

    const listed = await cli(alice, ['tokens', 'list', '--json'])
    const tokens = okJson(listed).tokens as Array<Record<string, unknown>>
    assert.deepEqual(tokens.map((entry) => entry.name).sort(), ['laptop', 'plain'])
    assert.ok(!listed.stdout.includes(token) && !listed.stdout.includes(token.slice(5)), 'the token is never listed')
    const table = await cli(target.admin, ['tokens', 'list', '--user', alice.username])
    assert.equal(table.code, 0, table.stderr)
    assert.match(table.stdout, /laptop/)
    assert.ok(!table.stdout.includes(token))

    const revoked = await cli(alice, ['tokens', 'revoke', 'laptop', '--yes'])
    assert.equal(revoked.code, 0, revoked.stderr)
    const refused = expectError((await client.batch([{args: [editable], client: 'tracking', method: 'create_run'}]))[0])
    assert.equal(refused.status, 401, refused.message)
  })

  it('an expired token is refused (401)', async () => {
    const answer = await rest.ok(alice, 'POST', '/api/2.0/mlflowctl/tokens/create', {expires_in_seconds: 1, name: 'short'})
    assert.equal(await statusWithToken(target.url, answer.token), 200)
    await new Promise((resolve) => setTimeout(resolve, 1100 - (Date.now() - Date.parse(answer.token_info.created_at))))
    assert.equal(await statusWithToken(target.url, answer.token), 401)
    const expired = expectError((await python(answer.token).batch([{args: [editable], client: 'tracking', method: 'get_experiment'}]))[0])
    assert.equal(expired.status, 401, expired.message)
  })

  it('a service account cannot log in with a password, and works through its token', async () => {
    const created = await cli(target.admin, ['users', 'create', bot, '--service-account', '--json'])
    assert.equal(okJson(created).user.is_service_account, true)
    // No password is ever right: not the empty one, not any other.
    for (const password of ['', 'anything-at-all-123'])
      assert.equal((await rest.call({password, username: bot}, 'GET', '/api/2.0/mlflow/users/current')).status, 401)
    await rest.ok(target.admin, 'POST', '/api/2.0/mlflow/experiments/permissions/create', {experiment_id: editable, permission: 'EDIT', username: bot})
    const {token} = okJson(await cli(target.admin, ['tokens', 'create', '--user', bot, '--name', 'nightly', '--expires', '30d', '--json']))
    const run = await python(token).call('tracking', 'create_run', editable)
    assert.equal(run.info.experiment_id, editable)
    // Not even an admin can give it a password.
    const refused = await rest.call(target.admin, 'PATCH', '/api/2.0/mlflow/users/update-password', {password: 'a-new-password-123', username: bot})
    assert.equal(refused.status, 400, refused.text)
  })

  it("a user may not manage another user's tokens", async () => {
    const answer = await rest.call(alice, 'POST', '/api/2.0/mlflowctl/tokens/create', {name: 'theirs', username: bot})
    assert.equal(answer.status, 403, answer.text)
    const listed = await rest.call(alice, 'GET', `/api/2.0/mlflowctl/tokens/list?username=${bot}`)
    assert.equal(listed.status, 403, listed.text)
    // Only their own, even without naming anyone.
    const own = (await rest.ok(alice, 'GET', '/api/2.0/mlflowctl/tokens/list')).tokens as Array<{username: string}>
    assert.ok(own.every((entry) => entry.username === alice.username))
  })
})

describe(`tokens against MLflow ${version}'s own basic-auth server`, () => {
  it('say that tokens need mlflowctl serve (exit 8)', async () => {
    const server = await acquireServer(version, 'basic-auth')
    const result = await runCli(['tokens', 'list'], {
      env: {MLFLOW_TRACKING_PASSWORD: server.admin!.password, MLFLOW_TRACKING_URI: server.url, MLFLOW_TRACKING_USERNAME: server.admin!.username},
    })
    assert.equal(result.code, 8, result.stderr)
    assert.match(result.stderr, /This server does not offer access tokens: they are a feature of mlflowctl serve/)
  })
})

describe('a revoke on one replica of a PostgreSQL store', () => {
  it('is refused at once on the other', async () => {
    const postgres = await startPostgres()
    const url = await postgres.database('tokens_replicas')
    const upstream = (await acquireServer(version, 'plain')).url
    const first = await startServe({storePath: url, upstream})
    const second = await startServe({env: {MLFLOW_AUTH_ADMIN_PASSWORD: first.admin.password}, storePath: url, upstream})
    try {
      const rest = restClient(() => first.url)
      const {token} = await rest.ok(first.admin, 'POST', '/api/2.0/mlflowctl/tokens/create', {name: 'shared'})
      // The other replica learns of the token through the change log, within its poll.
      for (let i = 0; i < 50 && (await statusWithToken(second.url, token)) !== 200; i++) await new Promise((resolve) => setTimeout(resolve, 100))
      assert.equal(await statusWithToken(second.url, token), 200)
      await rest.ok(first.admin, 'DELETE', '/api/2.0/mlflowctl/tokens/revoke', {name: 'shared'})
      assert.equal(await statusWithToken(first.url, token), 401)
      let refusedAfter = 0
      for (; refusedAfter < 50 && (await statusWithToken(second.url, token)) !== 401; refusedAfter++) await new Promise((resolve) => setTimeout(resolve, 100))
      assert.equal(await statusWithToken(second.url, token), 401)
    } finally {
      await first.stop()
      await second.stop()
      await postgres.stop()
    }
  })
})
