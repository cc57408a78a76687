/**
 * `mlflowctl plan` and `apply` (access as code) through the built command against MLflow 3.12's
 * and 3.17's own basic-auth app and against serve, each with a fresh user store: a file applied
 * to an empty server leaves nothing to plan, a changed file plans exactly its changes, --prune
 * removes exactly what the file does not describe, an effect is tried through MLflow's Python
 * client, and bad files change nothing. Against serve, a server that fails mid-apply: the run
 * stops and says what it did not do, and a re-run converges.
 */
import assert from 'node:assert/strict'
import {createServer, request as httpRequest} from 'node:http'
import {mkdtemp, readFile, writeFile} from 'node:fs/promises'
import {type AddressInfo} from 'node:net'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {after, before, describe, it} from 'node:test'

import {ExitCode} from '../../src/core/errors.js'
import {type AuthTarget, authTarget, type AuthTargetKind, targetTitle} from '../support/auth-target.js'
import {type CliResult, okJson, runCli} from '../support/cli.js'
import {MLFLOW_VERSIONS} from '../support/mlflow-versions.js'
import {PythonClient} from '../support/python-client.js'
import {releaseServers, uniqueName} from '../support/servers.js'

after(releaseServers)

const TARGETS: Array<{kind: AuthTargetKind; version: string}> = [
  {kind: 'basic-auth', version: MLFLOW_VERSIONS.legacy},
  {kind: 'basic-auth', version: MLFLOW_VERSIONS.latest},
  {kind: 'serve', version: MLFLOW_VERSIONS.latest},
]

const ALICE_PW = `alice-${uniqueName('pw')}`

for (const {kind, version} of TARGETS) {
  describe(`plan and apply on ${targetTitle(kind)} MLflow ${version}`, () => {
    let target: AuthTarget
    let admin: PythonClient
    let dir: string
    let cli: (args: string[], input?: string, url?: string) => Promise<CliResult>
    const latest = version === MLFLOW_VERSIONS.latest

    before(async () => {
      // A server of its own (basic-auth) or a fresh store (serve): --prune may remove anything the file does not name.
      target = kind === 'serve' ? await authTarget(version, kind) : await authTarget(version, kind, {env: {}})
      admin = new PythonClient({credentials: target.admin, trackingUri: target.url, version})
      dir = await mkdtemp(join(tmpdir(), 'mlflowctl-access-'))
      cli = (args, input, url = target.url) =>
        runCli(args, {
          env: {ALICE_PW, MLFLOW_TRACKING_PASSWORD: target.admin.password, MLFLOW_TRACKING_URI: url, MLFLOW_TRACKING_USERNAME: target.admin.username},
          input,
        })
    })

    after(async () => target?.stop())

    const file = async (name: string, text: string) => {
      const path = join(dir, name)
      await writeFile(path, text)
      return path
    }

    const plan = async (path: string, ...flags: string[]) => okJson(await cli(['plan', '-f', path, '--json', ...flags]))

    it('apply to an empty server, then plan is empty; a changed file plans exactly its changes; --prune removes exactly the unmanaged', async () => {
      const e1 = uniqueName('exp one')
      const e2 = uniqueName('exp two')
      const e1Id: string = await admin.call('tracking', 'create_experiment', e1)
      await admin.call('tracking', 'create_experiment', e2)
      const model = uniqueName('model')
      await admin.call('tracking', 'create_registered_model', model)
      const v1 = await file(
        'v1.yaml',
        `version: 1
users:
  - name: alice
    password: {env: ALICE_PW}
    grants:
      - {experiment: "${e1}", permission: EDIT}
  - name: bob
    password: {generate: true}
    grants:
      - {model: "${model}", permission: READ}${latest ? `\n      - {experiment: "${e2}", permission: DENY}` : ''}
roles:
  - name: readers
    description: reads
    grants:
      - {experiment: "${e2}", permission: READ}
    members: [alice]
`,
      )
      const applied = okJson(await cli(['apply', '-f', v1, '--yes', '--json']))
      assert.deepEqual(applied.not_applied, [])
      assert.equal(applied.plan.summary.add, applied.applied.length)
      assert.deepEqual(
        applied.passwords.map((entry: {username: string}) => entry.username),
        ['bob'],
      )
      const bobPw: string = applied.passwords[0].password
      assert.equal((await cli(['plan', '-f', v1, '--detailed-exitcode'])).code, 0)
      assert.deepEqual((await plan(v1)).changes, [])

      // The effect, through MLflow's own client: alice (env password) may edit experiment one, bob (generated) may not.
      const alice = new PythonClient({credentials: {password: ALICE_PW, username: 'alice'}, trackingUri: target.url, version})
      const bob = new PythonClient({credentials: {password: bobPw, username: 'bob'}, trackingUri: target.url, version})
      await alice.call('tracking', 'set_experiment_tag', e1Id, 'k', 'v')
      const [refused] = await bob.batch([{args: [e1Id, 'k', 'w'], client: 'tracking', method: 'set_experiment_tag'}])
      assert.ok(refused.error, 'bob edited an experiment he holds nothing on')

      // A grant the file does not describe, made behind its back.
      await admin.call('auth', 'create_user', 'carol', `carol-${uniqueName('pw')}`)
      okJson(await cli(['perms', 'grant', 'experiment', e1Id, '--user', 'carol', '--permission', 'READ', '--json']))

      const v2 = await file(
        'v2.yaml',
        (await readFile(v1, 'utf8'))
          .replace('permission: EDIT}', 'permission: READ}')
          .replace('description: reads', 'description: reads more')
          .replace('    members: [alice]', '    members: [alice, bob]'),
      )
      const planned = await plan(v2)
      const brief = (change: {action: string; from?: unknown; to?: unknown; user?: string; what: string}) =>
        `${change.what} ${change.action} ${change.user ?? ''} ${change.from ?? ''}→${change.to ?? ''}`
      assert.deepEqual(planned.changes.map(brief).sort(), ['description change  reads→reads more', 'grant change alice EDIT→READ', 'member add bob →'])
      // Unmanaged: carol's grant, and the MANAGE that MLflow gave the admin on what the admin created.
      assert.ok(
        planned.unmanaged.some((item: {user?: string}) => item.user === 'carol'),
        JSON.stringify(planned.unmanaged),
      )
      assert.deepEqual(
        planned.unmanaged.filter((item: {user?: string}) => item.user !== target.admin.username),
        [{level: 'READ', resource: {kind: 'experiment', label: e1, pattern: e1Id, resource_type: 'experiment'}, user: 'carol', what: 'grant'}],
      )
      const changed = await cli(['plan', '-f', v2, '--detailed-exitcode'])
      assert.equal(changed.code, ExitCode.ChangesPending)
      assert.match(changed.stdout, new RegExp(`Plan: 1 to add, 2 to change, 0 to remove; ${planned.unmanaged.length} unmanaged`))

      okJson(await cli(['apply', '-f', v2, '--yes', '--json']))
      assert.deepEqual((await plan(v2)).changes, [])
      // --prune removes exactly what was unmanaged.
      const pruned = await plan(v2, '--prune')
      assert.deepEqual(
        pruned.changes,
        planned.unmanaged.map(({level, ...item}: {level: string}) => ({action: 'remove', from: level, ...item})),
      )
      okJson(await cli(['apply', '-f', v2, '--yes', '--prune', '--json']))
      assert.deepEqual(await plan(v2, '--prune'), {changes: [], summary: {add: 0, change: 0, remove: 0, unmanaged: 0}, unmanaged: []})
      const carol = await admin.call('auth', 'get_user', 'carol')
      assert.equal(carol.username, 'carol', 'prune removed a user')
    })

    it('bad files exit 2 with the line and change nothing', async () => {
      const experiment = uniqueName('exp')
      await admin.call('tracking', 'create_experiment', experiment)
      const before = await plan(await file('empty.yaml', 'version: 1\n'), '--prune')
      const cases: Array<[string, string, RegExp]> = [
        ['schema', `version: 1\nusers:\n  - name: dora\n    password: {generate: true}\n    colour: blue\n`, /schema\.yaml:5: /],
        [
          'unknown',
          `version: 1\nusers:\n  - name: dora\n    password: {generate: true}\n    grants:\n      - {experiment: "no such ${experiment}", permission: READ}\n`,
          /unknown\.yaml:6: .*no experiment/,
        ],
        [
          'duplicate',
          `version: 1\nusers:\n  - name: dora\n    password: {generate: true}\n  - name: dora\n    password: {generate: true}\n`,
          /duplicate\.yaml:5: /,
        ],
        [
          'level',
          `version: 1\nusers:\n  - name: dora\n    password: {generate: true}\n    grants:\n      - {experiment: "${experiment}", permission: WRITE}\n`,
          /level\.yaml:6: /,
        ],
      ]
      for (const [name, text, message] of cases) {
        const path = await file(`${name}.yaml`, text)
        const result = await cli(['apply', '-f', path, '--yes'])
        assert.equal(result.code, ExitCode.Usage, `${name}: ${result.stderr}`)
        assert.match(result.stderr, message, name)
      }

      assert.deepEqual(await plan(await file('empty.yaml', 'version: 1\n'), '--prune'), before)
      assert.ok((await admin.batch([{args: ['dora'], client: 'auth', method: 'get_user'}]))[0].error, 'a user of a bad file was created')
    })

    if (kind === 'serve') {
      it('a server failing mid-apply: the run stops, says what it did not do, exits 7; a re-run converges', async () => {
        const experiment = uniqueName('exp')
        await admin.call('tracking', 'create_experiment', experiment)
        const users = Array.from({length: 6}, (_, index) => `user${index}-${uniqueName('u')}`.replaceAll(/[^\w-]/g, ''))
        const path = await file(
          'many.yaml',
          `version: 1\nusers:\n${users.map((user) => `  - name: ${user}\n    password: {generate: true}\n    grants:\n      - {experiment: "${experiment}", permission: READ}\n`).join('')}`,
        )
        // In front of serve: the 9th change (a POST or PATCH after the reads) gets 503.
        let writes = 0
        const proxy = createServer((req, res) => {
          if (req.method !== 'GET' && ++writes === 9) {
            res.writeHead(503, {'content-type': 'application/json'}).end(JSON.stringify({error_code: 'TEMPORARILY_UNAVAILABLE', message: 'stopped'}))
            req.resume()
            return
          }

          const upstream = new URL(target.url)
          const forward = httpRequest({headers: req.headers, host: upstream.hostname, method: req.method, path: req.url, port: upstream.port}, (answer) => {
            res.writeHead(answer.statusCode!, answer.headers)
            answer.pipe(res)
          })
          req.pipe(forward)
        })
        await new Promise<void>((resolve) => proxy.listen(0, '127.0.0.1', resolve))
        try {
          const url = `http://127.0.0.1:${(proxy.address() as AddressInfo).port}`
          const failed = await cli(['apply', '-f', path, '--yes', '--json', '--retries', '0'], undefined, url)
          assert.equal(failed.code, ExitCode.Unavailable, failed.stderr)
          const report = JSON.parse(failed.stdout)
          assert.equal(report.error.exit, ExitCode.Unavailable)
          assert.ok(report.applied.length >= 8 && report.not_applied.length > 0, JSON.stringify(report))
          // Every user created is in the report with its password: nobody is left without one.
          const created = report.applied.filter((change: {what: string}) => change.what === 'user').map((change: {user: string}) => change.user)
          assert.deepEqual(report.passwords.map((entry: {username: string}) => entry.username).sort(), created.sort())
        } finally {
          proxy.close()
        }

        const rerun = okJson(await cli(['apply', '-f', path, '--yes', '--json']))
        assert.deepEqual(rerun.not_applied, [])
        assert.ok(rerun.applied.length > 0)
        assert.deepEqual((await plan(path)).changes, [])
      })
    }
  })
}
