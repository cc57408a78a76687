/**
 * The interactive paths, driven through a pseudo-terminal as a person would use them, against a
 * real MLflow basic-auth server.
 */
import assert from 'node:assert/strict'
import {mkdtemp} from 'node:fs/promises'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {after, before, describe, it} from 'node:test'

import {ExitCode} from '../../src/core/errors.js'
import {runCli, runCliOnTerminal} from '../support/cli.js'
import {type ServerInfo} from '../support/mlflow-server.js'
import {MLFLOW_VERSIONS} from '../support/mlflow-versions.js'
import {expectError, PythonClient} from '../support/python-client.js'
import {acquireServer, releaseServers, uniqueName} from '../support/servers.js'

after(releaseServers)

const version = MLFLOW_VERSIONS.latest

describe('prompts on a terminal', () => {
  let server: ServerInfo
  let admin: PythonClient
  let home: string

  before(async () => {
    server = await acquireServer(version, 'basic-auth')
    admin = new PythonClient({credentials: server.admin, trackingUri: server.url, version})
    home = await mkdtemp(join(tmpdir(), 'mlflowctl-pty-home-'))
  })

  it('login asks for the server, the user and a hidden password, and stores the login', async () => {
    const {password, username} = server.admin!
    const result = await runCliOnTerminal(
      ['login'],
      [
        {expect: 'MLflow tracking URI', send: `${server.url}\r`},
        {expect: 'Username', send: `${username}\r`},
        {expect: 'Password for', send: `${password}\r`},
      ],
      {home},
    )
    assert.equal(result.unmatched, null, result.output)
    assert.equal(result.code, 0, result.output)
    assert.ok(!result.output.includes(password), 'the password is never echoed')
    assert.match(result.output, /Logged in to .* as admin \(admin\)/)
    const python = new PythonClient({home, trackingUri: server.url, version})
    assert.equal((await python.call('auth', 'get_user', username)).username, username)
  })

  it('users create asks for the password twice, asks again when they differ, and creates nothing when cancelled', async () => {
    const username = uniqueName('typo')
    const result = await runCliOnTerminal(
      ['users', 'create', username],
      [
        {expect: 'Password for .*at least 12 characters', send: 'first-password-123\r'},
        {expect: 'Repeat the password', send: 'other-password-123\r'},
        {expect: 'do not match; enter them again', send: ''},
        {expect: 'Password for', send: '\u0003'},
      ],
      {home},
    )
    assert.equal(result.unmatched, null, result.output)
    assert.equal(result.code, ExitCode.Aborted, result.output)
    const [lookup] = await admin.batch([{args: [username], client: 'auth', method: 'get_user'}])
    assert.equal(expectError(lookup).error_code, 'RESOURCE_DOES_NOT_EXIST')
  })

  it('users delete asks first; no keeps the user, yes deletes it', async () => {
    const username = uniqueName('doomed')
    await admin.call('auth', 'create_user', username, 'doomed-password-123')
    const declined = await runCliOnTerminal(['users', 'delete', username], [{expect: `Delete user ${username}`, send: 'n\r'}], {home})
    assert.equal(declined.code, ExitCode.Aborted, declined.output)
    assert.equal((await admin.call('auth', 'get_user', username)).username, username)

    const confirmed = await runCliOnTerminal(['users', 'delete', username], [{expect: `Delete user ${username}`, send: 'y\r'}], {home})
    assert.equal(confirmed.code, 0, confirmed.output)
    const [lookup] = await admin.batch([{args: [username], client: 'auth', method: 'get_user'}])
    assert.equal(expectError(lookup).error_code, 'RESOURCE_DOES_NOT_EXIST')
  })

  it('without a terminal, a missing secret names the flag instead of hanging', async () => {
    const result = await runCli(['users', 'create', uniqueName('nobody')], {home})
    assert.equal(result.code, ExitCode.Usage)
    assert.match(result.stderr, /--password-stdin/)
  })
})
