/**
 * `mlflowctl export` (and the policy file reader behind plan/apply) against MLflow 3.12.0's and
 * 3.17.2's own basic-auth apps and serve: state set up with the CLI's own commands is exported
 * exactly, twice byte-identical, to stdout and with -o; the exported file reads back (names
 * resolved on the real server) into the same policy; names the server lacks are refused with
 * their line.
 */
import assert from 'node:assert/strict'
import {mkdtemp, readFile, writeFile} from 'node:fs/promises'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {after, before, describe, it} from 'node:test'

import {Session} from '../../src/cli/session.js'
import {UserError} from '../../src/core/errors.js'
import {readPolicyFile} from '../../src/policy/file.js'
import {readServerState, serverResolver} from '../../src/policy/server-state.js'
import {writePolicy} from '../../src/policy/write-file.js'
import {type AuthTarget, authTarget, type AuthTargetKind, targetTitle} from '../support/auth-target.js'
import {type CliResult, okJson, runCli} from '../support/cli.js'
import {MLFLOW_VERSIONS} from '../support/mlflow-versions.js'
import {restClient} from '../support/rest.js'
import {releaseServers, uniqueName} from '../support/servers.js'

after(releaseServers)

const TARGETS: Array<{kind: AuthTargetKind; version: string}> = [
  {kind: 'basic-auth', version: MLFLOW_VERSIONS.legacy},
  {kind: 'basic-auth', version: MLFLOW_VERSIONS.latest},
  {kind: 'serve', version: MLFLOW_VERSIONS.latest},
]

for (const {kind, version} of TARGETS) {
  const legacy = version === MLFLOW_VERSIONS.legacy
  describe(`export on ${targetTitle(kind)} MLflow ${version}`, () => {
    let target: AuthTarget
    let home: string
    let cli: (args: string[], input?: string) => Promise<CliResult>
    let session: Session

    before(async () => {
      target = await authTarget(version, kind)
      home = await mkdtemp(join(tmpdir(), 'mlflowctl-export-home-'))
      cli = (args, input) => runCli(args, {home, input})
      okJson(await cli(['login', '--tracking-uri', target.url, '--user', target.admin.username, '--password-stdin', '--json'], target.admin.password))
      session = await Session.open({
        env: {MLFLOW_TRACKING_PASSWORD: target.admin.password, MLFLOW_TRACKING_URI: target.url, MLFLOW_TRACKING_USERNAME: target.admin.username},
      })
    })

    after(async () => target?.stop())

    it('writes what the CLI set up, byte-identical twice, and reads back into the same policy', async () => {
      const {ok} = restClient(() => target.url)
      const experiment = uniqueName('exp')
      const experimentId: string = (await ok(target.admin, 'POST', '/api/2.0/mlflow/experiments/create', {name: experiment})).experiment_id
      const model = uniqueName('model')
      await ok(target.admin, 'POST', '/api/2.0/mlflow/registered-models/create', {name: model})
      const user = uniqueName('user')
      const role = uniqueName('readers')
      const idle = uniqueName('idle')
      const run = async (args: string[], input?: string) => okJson(await cli([...args, '--json'], input))
      await run(['users', 'create', user, '--password-stdin'], `pw-${uniqueName('secret')}`)
      await run(['perms', 'grant', 'experiment', experiment, '--user', user, '--permission', 'EDIT'])
      await run(['perms', 'grant', 'model', model, '--user', user, '--permission', 'READ'])
      await run(['perms', 'grant', 'scorer', experimentId, 'relevance', '--user', user, '--permission', 'READ'])
      if (!legacy) {
        await run(['perms', 'grant', 'experiment', '*', '--user', user, '--permission', 'READ'])
        await run(['perms', 'grant', 'run', '*', '--user', user, '--permission', 'DENY'])
      }

      await run(['roles', 'create', role, '--description', 'Read every experiment'])
      await run(['roles', 'grant', role, 'experiment', '*', '--permission', 'READ'])
      await run(['roles', 'grant', role, 'model', model, '--permission', legacy ? 'EDIT' : 'DENY'])
      await run(['roles', 'assign', role, '--user', user])
      // A role nobody holds is still part of the state.
      await run(['roles', 'create', idle])

      const first = await cli(['export', '--user', user])
      assert.equal(first.code, 0, first.stderr)
      const expected = `version: 1
users:
  - name: ${user}
    grants:
${legacy ? '' : '      - {experiment: "*", permission: READ}\n'}      - {experiment: ${experiment}, permission: EDIT}
      - {model: ${model}, permission: READ}
      - {scorer: relevance, experiment: ${experiment}, permission: READ}
${legacy ? '' : '      - {run: "*", permission: DENY}\n'}roles:
  - name: ${role}
    description: Read every experiment
    grants:
      - {experiment: "*", permission: READ}
      - {model: ${model}, permission: ${legacy ? 'EDIT' : 'DENY'}}
    members: [${user}]
`
      assert.equal(first.stdout, expected)
      assert.equal((await cli(['export', '--user', user])).stdout, first.stdout)

      // The whole server: the idle role is there, and two exports agree byte for byte.
      const whole = await cli(['export'])
      assert.equal(whole.code, 0, whole.stderr)
      assert.match(whole.stdout, new RegExp(`\\n {2}- name: ${idle}\\n`))
      assert.match(whole.stdout, /^version: 1\nusers:\n {2}- name: admin\n {4}admin: true\n/)

      // -o writes the same bytes; --json gives the same content as data.
      const file = join(home, 'access.yaml')
      const written = await cli(['export', '--user', user, '-o', file])
      assert.equal(written.code, 0, written.stderr)
      assert.equal(written.stdout, '')
      assert.equal(await readFile(file, 'utf8'), expected)
      const json = okJson(await cli(['export', '--user', user, '--kind', 'model', '--json']))
      assert.deepEqual(json.policy.users, [{grants: [{model, permission: 'READ'}], name: user}])

      // The file reads back against the real server (names resolved to ids) into what the server holds.
      const policy = await readPolicyFile(file, serverResolver(session))
      assert.equal(policy.users.get(user)!.grants.get(`experiment\u0000${experimentId}`)!.target.label, experiment)
      assert.equal(writePolicy(policy), expected)
      const state = await readServerState(session)
      assert.equal(writePolicy(state, {user}), expected)
    })

    it('a file naming what the server lacks is refused with the lines, before any change', async () => {
      const file = join(home, 'bad.yaml')
      const user = uniqueName('user')
      await writeFile(
        file,
        `version: 1
users:
  - name: ${user}
    grants:
      - {experiment: ${uniqueName('nobody-made-this')}, permission: READ}
      - {model: ${uniqueName('no-model')}, permission: READ}
`,
      )
      await assert.rejects(readPolicyFile(file, serverResolver(session)), (error: unknown) => {
        assert.ok(error instanceof UserError)
        assert.equal(error.exit, 2)
        assert.match(error.message, /bad\.yaml:5: there is no experiment named "nobody-made-this-/)
        assert.match(error.message, /bad\.yaml:6: there is no registered model named "no-model-/)
        return true
      })
      const features = await Promise.all((['roles', 'unified', 'mcp', 'deny'] as const).map((feature) => serverResolver(session).supports(feature)))
      assert.deepEqual(features, legacy ? [true, false, false, false] : [true, true, true, true])
    })
  })
}
