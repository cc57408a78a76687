/**
 * Listing, switching and removing stored logins through the built CLI, on credentials files
 * written here (no server is asked: switching and listing read and write only the file).
 */
import assert from 'node:assert/strict'
import {mkdir, readFile, writeFile} from 'node:fs/promises'
import {join} from 'node:path'
import {describe, it} from 'node:test'

import {ExitCode} from '../../src/core/errors.js'
import {okJson, runCli} from '../support/cli.js'
import {modeOf, tempDir} from '../support/files.js'

const TWO_LOGINS = `# kept as written
[mlflow]
mlflow_tracking_username = bob
mlflow_tracking_password = b%%pass

[mlflowctl]
current_profile = staging

[mlflowctl.profile.default]
tracking_uri = http://127.0.0.1:9/a
mlflow_tracking_username = alice
mlflow_tracking_password = a-pass

[mlflowctl.profile.staging]
tracking_uri = http://127.0.0.1:9/b
mlflow_tracking_username = bob
mlflow_tracking_password = b%%pass

[other]
key = value
`

async function homeWith(content: string): Promise<{file: string; home: string}> {
  const home = await tempDir('profiles')
  await mkdir(join(home, '.mlflow'), {mode: 0o700})
  const file = join(home, '.mlflow', 'credentials')
  await writeFile(file, content, {mode: 0o600})
  return {file, home}
}

describe('stored logins (profiles)', () => {
  it('auth profiles lists them, marks the current one, and shows no password', async () => {
    const {home} = await homeWith(TWO_LOGINS)
    const table = await runCli(['auth', 'profiles'], {home})
    assert.equal(table.code, 0, table.stderr)
    // In a pipe, as every table: tab-separated with a header.
    assert.equal(table.stdout, 'CURRENT\tPROFILE\tTRACKING URI\tUSERNAME\n\tdefault\thttp://127.0.0.1:9/a\talice\n*\tstaging\thttp://127.0.0.1:9/b\tbob\n')
    assert.doesNotMatch(table.stdout + table.stderr, /pass/)
    assert.deepEqual(okJson(await runCli(['auth', 'profiles', '--json'], {home})), {
      current: 'staging',
      file: join(home, '.mlflow', 'credentials'),
      profiles: [
        {current: false, name: 'default', tracking_uri: 'http://127.0.0.1:9/a', username: 'alice'},
        {current: true, name: 'staging', tracking_uri: 'http://127.0.0.1:9/b', username: 'bob'},
      ],
    })
  })

  it('auth switch rewrites [mlflow] and current_profile only, keeps the file 0600, and says what MLflow now uses', async () => {
    const {file, home} = await homeWith(TWO_LOGINS)
    const result = await runCli(['auth', 'switch', 'default'], {home})
    assert.equal(result.code, 0, result.stderr)
    assert.match(result.stderr, /Switched to profile "default": alice at http:\/\/127\.0\.0\.1:9\/a\. MLflow's own clients now send alice's username/)
    const expected = TWO_LOGINS.replace(
      '[mlflow]\nmlflow_tracking_username = bob\nmlflow_tracking_password = b%%pass',
      '[mlflow]\nmlflow_tracking_username = alice\nmlflow_tracking_password = a-pass',
    ).replace('current_profile = staging', 'current_profile = default')
    assert.equal(await readFile(file, 'utf8'), expected)
    assert.equal(await modeOf(file), 0o600)
    const json = okJson(await runCli(['auth', 'switch', 'staging', '--json'], {home}))
    assert.deepEqual(json, {file, previous_profile: 'default', profile: 'staging', tracking_uri: 'http://127.0.0.1:9/b', username: 'bob'})
    assert.equal(await readFile(file, 'utf8'), TWO_LOGINS)
  })

  it('auth switch to an unknown name exits 5, lists the names, and changes nothing', async () => {
    const {file, home} = await homeWith(TWO_LOGINS)
    const result = await runCli(['auth', 'switch', 'prod'], {home})
    assert.equal(result.code, ExitCode.NotFound, result.stderr)
    assert.match(result.stderr, /No stored login named "prod"[\s\S]*Stored logins: default, staging/)
    assert.equal(await readFile(file, 'utf8'), TWO_LOGINS)
  })

  it('auth switch refuses to overwrite an [mlflow] pair no profile keeps (exit 2, nothing changed)', async () => {
    const handWritten = TWO_LOGINS.replace(
      'mlflow_tracking_username = bob\nmlflow_tracking_password = b%%pass\n\n[mlflowctl]',
      'mlflow_tracking_username = carol\nmlflow_tracking_password = c-pass\n\n[mlflowctl]',
    )
    const {file, home} = await homeWith(handWritten)
    const result = await runCli(['auth', 'switch', 'default'], {home})
    assert.equal(result.code, ExitCode.Usage, result.stderr)
    assert.match(result.stderr, /holds credentials for carol that no stored login keeps/)
    assert.equal(await readFile(file, 'utf8'), handWritten)
  })

  it('logout of the current login names the ones left and how to switch; whoami then exits 3 and says the same', async () => {
    const {file, home} = await homeWith(TWO_LOGINS)
    const logout = await runCli(['logout'], {home})
    assert.equal(logout.code, 0, logout.stderr)
    assert.match(
      logout.stderr,
      /Logged out of profile "staging" .*no login is current now, so MLflow's own clients send no credentials\. Stored logins: default \(http:\/\/127\.0\.0\.1:9\/a\); make one current with `mlflowctl auth switch NAME`/,
    )
    assert.doesNotMatch(await readFile(file, 'utf8'), /bob|staging/)
    const whoami = await runCli(['whoami'], {home})
    assert.equal(whoami.code, ExitCode.Unauthenticated, whoami.stderr)
    assert.match(whoami.stderr, /Not logged in: no stored login is current/)
    assert.match(whoami.stderr, /Stored logins: default\. Make one current with `mlflowctl auth switch NAME`/)
    const json = okJson(await runCli(['logout', '--profile', 'default', '--json'], {home}))
    assert.deepEqual(json, {backend: 'mlflow', file, profile: 'default', remaining: []})
  })

  it('logout of another login leaves the current one', async () => {
    const {home} = await homeWith(TWO_LOGINS)
    const result = await runCli(['auth', 'logout', '--profile', 'default'], {home})
    assert.equal(result.code, 0, result.stderr)
    assert.match(result.stderr, /Logged out of profile "default" .*; the current login "staging" is unchanged/)
  })
})
