/**
 * A second login under another profile, against a real MLflow basic-auth server: it says which
 * login became current and warns that MLflow's own clients now send the new credentials; a
 * switch back makes MLflow's Python client (reading only ~/.mlflow/credentials) authenticate as
 * the first user again.
 */
import assert from 'node:assert/strict'
import {after, before, describe, it} from 'node:test'

import {okJson, runCli} from '../support/cli.js'
import {tempDir} from '../support/files.js'
import {type ServerInfo} from '../support/mlflow-server.js'
import {MLFLOW_VERSIONS} from '../support/mlflow-versions.js'
import {expectError, PythonClient} from '../support/python-client.js'
import {acquireServer, releaseServers, uniqueName} from '../support/servers.js'

after(releaseServers)

const version = MLFLOW_VERSIONS.latest

describe('login under a second profile, and switching back', () => {
  let server: ServerInfo

  before(async () => {
    server = await acquireServer(version, 'basic-auth')
  })

  it('names the new current login, warns about the previous one, and auth switch restores what Python sends', async () => {
    const home = await tempDir('profiles-interop')
    const {password, username: admin} = server.admin!
    const bob = uniqueName('bob')
    await new PythonClient({credentials: server.admin, trackingUri: server.url, version}).call('auth', 'create_user', bob, 'bob-password-123')
    const login = (args: string[], secret: string) => runCli(['login', '--tracking-uri', server.url, '--password-stdin', ...args], {home, input: secret})
    const first = await login(['--user', admin], password)
    assert.equal(first.code, 0, first.stderr)
    assert.match(first.stderr, /Profile "default" is now current/)

    const second = await login(['--user', bob, '--profile', 'bob'], 'bob-password-123')
    assert.equal(second.code, 0, second.stderr)
    assert.match(second.stderr, /Profile "bob" is now current: mlflowctl uses it by default, and MLflow's own clients send its username and password/)
    assert.match(
      second.stderr,
      new RegExp(`Profile "default" \\(${admin} at .*\\) is kept but no longer current: MLflow's own clients now send ${bob}'s credentials`),
    )
    assert.match(second.stderr, /`mlflowctl auth switch default` makes it current again/)

    // MLflow's Python client, with no variables set, now authenticates as bob: not allowed to read the admin.
    const python = new PythonClient({home, lane: 'profiles', trackingUri: server.url, version})
    const [asBob] = await python.batch([{args: [admin], client: 'auth', method: 'get_user'}])
    assert.equal(expectError(asBob).error_code, 'PERMISSION_DENIED')

    const switched = okJson(await runCli(['auth', 'switch', 'default', '--json'], {home}))
    assert.equal((switched as {previous_profile: string}).previous_profile, 'bob')
    assert.equal((await python.call('auth', 'get_user', admin)).username, admin)
    const whoami = okJson(await runCli(['whoami', '--json'], {home})) as {profile: string; user: {username: string}}
    assert.equal(whoami.profile, 'default')
    assert.equal(whoami.user.username, admin)
  })
})
