/**
 * Access as code against MLflow 3.12.0's and 3.17.2's own basic-auth apps and serve, the three
 * targets at once. Per target: state set up through REST on a shared server is exported (exactly,
 * twice byte-identical, stdout = -o); the file is applied to an empty server of the same kind (the
 * same experiments and models created first, by name) whose export is then the same file, byte
 * for byte; a changed file plans exactly its changes, apply leaves nothing to plan, --prune
 * removes exactly the unmanaged; an effect is tried through MLflow's Python client; bad files exit
 * 2 with their line and change nothing. On 3.12: `users import` and `users export`. On serve: a
 * server failing mid-apply and a re-run that converges, and, sampled while a few hundred changes
 * run, nobody's permission ever above the old and the new one.
 *
 * The CLI runs in process (runCommand) except where a separate process matters; setup is REST.
 */
import {runCommand} from '../support/run-command.js'

import assert from 'node:assert/strict'
import {createServer, request as httpRequest} from 'node:http'
import {mkdtemp, readFile, writeFile} from 'node:fs/promises'
import {type AddressInfo} from 'node:net'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {after, describe, it} from 'node:test'

import {ExitCode} from '../../src/core/errors.js'
import {type AuthTarget, authTarget, type AuthTargetKind, targetTitle} from '../support/auth-target.js'
import {type CliResult, okJson, runCli} from '../support/cli.js'
import {type Credentials} from '../support/mlflow-server.js'
import {MLFLOW_VERSIONS} from '../support/mlflow-versions.js'
import {PythonClient} from '../support/python-client.js'
import {type Json, restClient} from '../support/rest.js'
import {releaseServers, uniqueName} from '../support/servers.js'

after(releaseServers)

const TARGETS: Array<{kind: AuthTargetKind; version: string}> = [
  {kind: 'basic-auth', version: MLFLOW_VERSIONS.legacy},
  {kind: 'basic-auth', version: MLFLOW_VERSIONS.latest},
  {kind: 'serve', version: MLFLOW_VERSIONS.latest},
]

const ALICE_PW = `alice-${uniqueName('pw')}`

/** The CLI as `who` on `url`, in this process. */
function cliOn(url: () => string, who: () => Credentials) {
  return (args: string[], env: NodeJS.ProcessEnv = {}): Promise<CliResult> =>
    runCommand(args, {
      env: {ALICE_PW, MLFLOW_TRACKING_PASSWORD: who().password, MLFLOW_TRACKING_URI: url(), MLFLOW_TRACKING_USERNAME: who().username, ...env},
    })
}

/** What an exported file needs to be applied to a server that lacks its users: a password source for each. */
function withPasswords(exported: string, alice: string): string {
  const [users, ...roles] = exported.split(/^(?=roles:\n)/m)
  const sources = users.replaceAll(
    /^ {2}- name: (.+)\n/gm,
    (line, name: string) => `${line}    password: ${name === alice ? '{env: ALICE_PW}' : '{generate: true}'}\n`,
  )
  return [sources, ...roles].join('')
}

const brief = (change: Json) => `${change.what} ${change.action} ${change.user ?? ''} ${change.from ?? ''}→${change.to ?? ''}`

describe('access as code', {concurrency: true}, () => {
  for (const {kind, version} of TARGETS) {
    const legacy = version === MLFLOW_VERSIONS.legacy
    const title = `${targetTitle(kind)} MLflow ${version}`

    describe(title, {concurrency: false}, () => {
      let source: AuthTarget
      let empty: AuthTarget
      let dir: string
      const sourceCli = cliOn(
        () => source.url,
        () => source.admin,
      )
      const cli = cliOn(
        () => empty.url,
        () => empty.admin,
      )
      const rest = restClient(() => source.url)
      const restEmpty = restClient(() => empty.url)
      const plan = async (path: string, ...flags: string[]) => okJson(await cli(['plan', '-f', path, '--json', ...flags]))
      const file = async (name: string, text: string) => {
        const path = join(dir, name)
        await writeFile(path, text)
        return path
      }

      const alice = uniqueName('alice')
      const e1 = uniqueName('exp one')
      const e2 = uniqueName('exp two')
      const model = uniqueName('model')
      const role = uniqueName('readers')
      let exported: string
      let e1Id: string
      let e2Id: string

      after(async () => Promise.all([source?.stop(), empty?.stop()]))

      it('export: what REST set up, byte-identical twice, -o the same bytes, --kind filters', async () => {
        // The source is the run's shared server (its export filtered to one user); the other is
        // empty: a basic-auth server of its own, or serve with a fresh store.
        ;[source, empty, dir] = await Promise.all([
          authTarget(version, kind),
          kind === 'serve' ? authTarget(version, kind) : authTarget(version, kind, {env: {}}),
          mkdtemp(join(tmpdir(), 'mlflowctl-access-')),
        ])
        const {ok} = rest
        const admin = source.admin
        e1Id = (await ok(admin, 'POST', '/api/2.0/mlflow/experiments/create', {name: e1})).experiment_id
        await ok(admin, 'POST', '/api/2.0/mlflow/experiments/create', {name: e2})
        await ok(admin, 'POST', '/api/2.0/mlflow/registered-models/create', {name: model})
        await ok(admin, 'POST', '/api/2.0/mlflow/users/create', {password: `pw-${uniqueName('secret')}`, username: alice})
        const grant = (resource_type: string, resource_id: string, permission: string) =>
          ok(admin, 'POST', '/api/3.0/mlflow/users/permissions/grant', {permission, resource_id, resource_type, username: alice})
        if (legacy) {
          await ok(admin, 'POST', '/api/2.0/mlflow/experiments/permissions/create', {experiment_id: e1Id, permission: 'EDIT', username: alice})
          await ok(admin, 'POST', '/api/2.0/mlflow/registered-models/permissions/create', {name: model, permission: 'READ', username: alice})
          await ok(admin, 'POST', '/api/3.0/mlflow/scorers/permissions/create', {
            experiment_id: e1Id,
            permission: 'READ',
            scorer_name: 'relevance',
            username: alice,
          })
        } else {
          await grant('experiment', e1Id, 'EDIT')
          await grant('registered_model', model, 'READ')
          await grant('scorer', `${e1Id}/relevance`, 'READ')
          await grant('experiment', '*', 'READ')
          await grant('run', '*', 'DENY')
        }

        const {role: made} = await ok(admin, 'POST', '/api/3.0/mlflow/roles/create', {description: 'Read every experiment', name: role, workspace: 'default'})
        for (const [resource_type, resource_pattern, permission] of [
          ['experiment', '*', 'READ'],
          ['registered_model', model, legacy ? 'EDIT' : 'DENY'],
        ])
          await ok(admin, 'POST', '/api/3.0/mlflow/roles/permissions/add', {permission, resource_pattern, resource_type, role_id: made.id})
        await ok(admin, 'POST', '/api/3.0/mlflow/roles/assign', {role_id: made.id, username: alice})

        const first = await sourceCli(['export', '--user', alice])
        assert.equal(first.code, 0, first.stderr)
        exported = `version: 1
users:
  - name: ${alice}
    grants:
${legacy ? '' : '      - {experiment: "*", permission: READ}\n'}      - {experiment: ${e1}, permission: EDIT}
      - {model: ${model}, permission: READ}
      - {scorer: relevance, experiment: ${e1}, permission: READ}
${legacy ? '' : '      - {run: "*", permission: DENY}\n'}roles:
  - name: ${role}
    description: Read every experiment
    grants:
      - {experiment: "*", permission: READ}
      - {model: ${model}, permission: ${legacy ? 'EDIT' : 'DENY'}}
    members: [${alice}]
`
        assert.equal(first.stdout, exported)
        assert.equal((await sourceCli(['export', '--user', alice])).stdout, exported)
        const path = join(dir, 'written.yaml')
        const written = await sourceCli(['export', '--user', alice, '-o', path])
        assert.equal(written.code, 0, written.stderr)
        assert.equal(written.stdout, '')
        assert.equal(await readFile(path, 'utf8'), exported)
        const json = okJson(await sourceCli(['export', '--user', alice, '--kind', 'model', '--json']))
        assert.deepEqual(json.policy.users, [{grants: [{model, permission: 'READ'}], name: alice}])
      })

      it('the file applied to an empty server exports as the same bytes; plan is then empty', async () => {
        // The same experiments and model, by name (behind serve, its upstream may be the source's and have them).
        const make = async (path: string, name: string) => {
          const answer = await restEmpty.call(empty.admin, 'POST', path, {name})
          assert.ok(answer.status === 200 || answer.text.includes('RESOURCE_ALREADY_EXISTS'), answer.text)
        }

        await make('/api/2.0/mlflow/experiments/create', e1)
        await make('/api/2.0/mlflow/experiments/create', e2)
        await make('/api/2.0/mlflow/registered-models/create', model)
        const idOf = async (name: string): Promise<string> =>
          (await restEmpty.ok(empty.admin, 'GET', `/api/2.0/mlflow/experiments/get-by-name?experiment_name=${encodeURIComponent(name)}`)).experiment
            .experiment_id
        ;[e1Id, e2Id] = await Promise.all([idOf(e1), idOf(e2)])

        const v1 = await file('v1.yaml', withPasswords(exported, alice))
        const applied = okJson(await cli(['apply', '-f', v1, '--yes', '--json']))
        assert.deepEqual(applied.not_applied, [])
        assert.equal(applied.plan.summary.add, applied.applied.length)
        assert.equal((await cli(['export', '--user', alice])).stdout, exported)
        assert.equal((await cli(['plan', '-f', v1, '--detailed-exitcode'])).code, 0)
        assert.deepEqual((await plan(v1)).changes, [])

        // The effect through MLflow's own client: alice (her password from the environment) may edit
        // experiment one, and only read experiment two.
        const client = new PythonClient({credentials: {password: ALICE_PW, username: alice}, trackingUri: empty.url, version})
        const [edited, refused] = await client.batch([
          {args: [e1Id, 'k', 'v'], client: 'tracking', method: 'set_experiment_tag'},
          {args: [e2Id, 'k', 'v'], client: 'tracking', method: 'set_experiment_tag'},
        ])
        assert.equal(edited.error, undefined)
        assert.equal(refused.error?.error_code, 'PERMISSION_DENIED', `${alice} edited an experiment she may only read`)
      })

      it('a changed file plans exactly its changes; apply leaves nothing; --prune removes exactly the unmanaged', async () => {
        const bob = uniqueName('bob')
        const carol = uniqueName('carol')
        const v2 = await file(
          'v2.yaml',
          withPasswords(exported, alice)
            .replace(`{experiment: ${e1}, permission: EDIT}`, `{experiment: ${e1}, permission: READ}`)
            .replace('description: Read every experiment', 'description: reads more')
            .replace(`members: [${alice}]`, `members: [${alice}, ${bob}]`)
            .replace('roles:\n', `  - name: ${bob}\n    password: {generate: true}\nroles:\n`),
        )
        // A grant the file does not describe, made behind its back.
        const {ok} = restEmpty
        await ok(empty.admin, 'POST', '/api/2.0/mlflow/users/create', {password: `pw-${uniqueName('secret')}`, username: carol})
        if (legacy) await ok(empty.admin, 'POST', '/api/2.0/mlflow/experiments/permissions/create', {experiment_id: e1Id, permission: 'READ', username: carol})
        else
          await ok(empty.admin, 'POST', '/api/3.0/mlflow/users/permissions/grant', {
            permission: 'READ',
            resource_id: e1Id,
            resource_type: 'experiment',
            username: carol,
          })

        const planned = await plan(v2)
        assert.deepEqual(planned.changes.map(brief), [
          `grant change ${alice} EDIT→READ`,
          `user add ${bob} →`,
          'description change  Read every experiment→reads more',
          `member add ${bob} →`,
        ])
        // Unmanaged: carol's grant, and (shown as such) the MANAGE that MLflow gave the admin on what the admin created.
        const others = planned.unmanaged.filter((item: Json) => item.user !== empty.admin.username)
        assert.deepEqual(others, [
          {level: 'READ', resource: {kind: 'experiment', label: e1, pattern: e1Id, resource_type: 'experiment'}, user: carol, what: 'grant'},
        ])
        const text = await cli(['plan', '-f', v2, '--detailed-exitcode'])
        assert.equal(text.code, ExitCode.ChangesPending)
        assert.match(text.stdout, new RegExp(`Plan: 2 to add, 2 to change, 0 to remove; ${planned.unmanaged.length} unmanaged`))
        if (kind !== 'serve') assert.match(text.stdout, new RegExp(`user admin: experiment "${e1}" \\(${e1Id}\\): MANAGE \\(as MLflow gives its creator\\)`))

        okJson(await cli(['apply', '-f', v2, '--yes', '--json']))
        assert.deepEqual((await plan(v2)).changes, [])
        const pruned = await plan(v2, '--prune')
        assert.deepEqual(
          pruned.changes,
          planned.unmanaged.map(({level, ...item}: Json) => ({action: 'remove', from: level, ...item})),
        )
        okJson(await cli(['apply', '-f', v2, '--yes', '--prune', '--json']))
        assert.deepEqual(await plan(v2, '--prune'), {changes: [], summary: {add: 0, change: 0, remove: 0, unmanaged: 0}, unmanaged: []})
        const kept = await ok(empty.admin, 'GET', `/api/2.0/mlflow/users/get?username=${encodeURIComponent(carol)}`)
        assert.equal(kept.user.username, carol, 'prune removed a user')
      })

      it('bad files (schema, unknown experiment and model, duplicate user, invalid level) exit 2 with the line; nothing changes', async () => {
        const empties = await file('empty.yaml', 'version: 1\n')
        const before = await plan(empties, '--prune')
        const cases: Array<[string, string, RegExp[]]> = [
          ['schema', `version: 1\nusers:\n  - name: dora\n    password: {generate: true}\n    colour: blue\n`, [/schema\.yaml:5: unknown key "colour"/]],
          [
            'unknown',
            `version: 1\nusers:\n  - name: dora\n    password: {generate: true}\n    grants:\n      - {experiment: "no such ${e1}", permission: READ}\n      - {model: no-${model}, permission: READ}\n`,
            [/unknown\.yaml:6: there is no experiment named "no such /, /unknown\.yaml:7: there is no registered model named "no-/],
          ],
          [
            'duplicate',
            `version: 1\nusers:\n  - name: dora\n    password: {generate: true}\n  - name: dora\n    password: {generate: true}\n`,
            [/duplicate\.yaml:5: user dora is listed twice \(also on line 3\)/],
          ],
          [
            'level',
            `version: 1\nusers:\n  - name: dora\n    password: {generate: true}\n    grants:\n      - {experiment: "${e1}", permission: WRITE}\n`,
            [/level\.yaml:6: /],
          ],
        ]
        for (const [name, text, messages] of cases) {
          const result = await cli(['apply', '-f', await file(`${name}.yaml`, text), '--yes'])
          assert.equal(result.code, ExitCode.Usage, `${name}: ${result.stderr}`)
          for (const message of messages) assert.match(result.stderr, message, name)
        }

        assert.deepEqual(await plan(empties, '--prune'), before)
        assert.equal((await restEmpty.call(empty.admin, 'GET', '/api/2.0/mlflow/users/get?username=dora')).status, 404, 'a user of a bad file was created')
      })

      if (legacy) {
        it('users import creates the missing users and sets admin flags; users export reads them back', async () => {
          const [made, generated] = [uniqueName('csv-made'), uniqueName('csv-gen')]
          const csv = await file('users.csv', `username,admin,password\n${made},true,pw-${uniqueName('secret')}\n${generated},no,\n${alice},false,\n`)
          const imported = okJson(await cli(['users', 'import', csv, '--yes', '--json']))
          assert.deepEqual(imported.applied.map(brief).sort(), [`admin change ${made} false→true`, `user add ${generated} →`, `user add ${made} →`])
          assert.deepEqual(
            imported.passwords.map((entry: Json) => entry.username),
            [generated],
          )
          const login = await restEmpty.call(
            {password: imported.passwords[0].password, username: generated},
            'GET',
            '/api/2.0/mlflow/experiments/search?max_results=1',
          )
          assert.equal(login.status, 200, 'the generated password does not log in')
          const exportedCsv = await cli(['users', 'export'])
          assert.equal(exportedCsv.code, 0, exportedCsv.stderr)
          const lines = exportedCsv.stdout.split('\n')
          assert.equal(lines[0], 'username,admin')
          assert.ok(lines.includes(`${made},true`) && lines.includes(`${generated},false`) && lines.includes(`${alice},false`), exportedCsv.stdout)
        })
      }

      if (kind === 'serve') {
        it('a server failing mid-apply: the run stops, says what it did not do, exits 7; a re-run converges', async () => {
          const users = Array.from({length: 6}, (_, index) => `${uniqueName(`user${index}`)}`)
          const path = await file(
            'many.yaml',
            `version: 1\nusers:\n${users.map((user) => `  - name: ${user}\n    password: {generate: true}\n    grants:\n      - {experiment: "${e2}", permission: READ}\n`).join('')}`,
          )
          // In front of serve: the 9th change (a POST or PATCH after the reads) gets 503.
          let writes = 0
          const proxy = createServer((req, res) => {
            if (req.method !== 'GET' && ++writes === 9) {
              res.writeHead(503, {'content-type': 'application/json'}).end(JSON.stringify({error_code: 'TEMPORARILY_UNAVAILABLE', message: 'stopped'}))
              req.resume()
              return
            }

            const upstream = new URL(empty.url)
            const forward = httpRequest({headers: req.headers, host: upstream.hostname, method: req.method, path: req.url, port: upstream.port}, (answer) => {
              res.writeHead(answer.statusCode!, answer.headers)
              answer.pipe(res)
            })
            req.pipe(forward)
          })
          await new Promise<void>((resolve) => proxy.listen(0, '127.0.0.1', resolve))
          try {
            const url = `http://127.0.0.1:${(proxy.address() as AddressInfo).port}`
            const failed = await cli(['apply', '-f', path, '--yes', '--json', '--retries', '0'], {MLFLOW_TRACKING_URI: url})
            assert.equal(failed.code, ExitCode.Unavailable, failed.stderr)
            const report = JSON.parse(failed.stdout)
            assert.equal(report.error.exit, ExitCode.Unavailable)
            assert.ok(report.applied.length >= 8 && report.not_applied.length > 0, JSON.stringify(report))
            // Every user created is in the report with its password: nobody is left without one.
            const created = report.applied.filter((change: Json) => change.what === 'user').map((change: Json) => change.user)
            assert.deepEqual(report.passwords.map((entry: Json) => entry.username).sort(), created.sort())
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

  describe('while apply runs on serve', () => {
    let target: AuthTarget
    after(async () => target?.stop())

    it('no sampled permission is ever above both the old and the new one (MLflow’s order, DENY lowest)', async () => {
      target = await authTarget(MLFLOW_VERSIONS.latest, 'serve')
      const dir = await mkdtemp(join(tmpdir(), 'mlflowctl-union-'))
      const cli = (args: string[]) =>
        runCli(args, {
          env: {MLFLOW_TRACKING_PASSWORD: target.admin.password, MLFLOW_TRACKING_URI: target.url, MLFLOW_TRACKING_USERNAME: target.admin.username},
        })
      // Experiments by id (no experiment has these ids: a grant on an id is still a grant); gateway endpoints need no lookup.
      const id = (n: number) => String(9_000_000 + n)
      const [filler, b, h] = ['aa-filler', 'zz-b', 'zz-h'].map((name) => uniqueName(name))
      const policy = (before: boolean) => {
        const fillerGrants = Array.from({length: 80}, (_, n) => `      - {gateway-endpoint: ge-${100 + n}, permission: ${before ? 'EDIT' : 'READ'}}\n`)
        if (!before) fillerGrants.push(...Array.from({length: 80}, (_, n) => `      - {gateway-endpoint: ge-${300 + n}, permission: READ}\n`))
        const rows = Array.from({length: 80}, (_, n) => `      - {gateway-endpoint: ge-${500 + n}, permission: ${before ? 'READ' : 'USE'}}\n`)
        // b: MANAGE vetoed by a DENY role, then READ and no veto: MANAGE must never show.
        // h: an EDIT row vetoed by b's own DENY grant, then the row READ and no veto: EDIT must never show.
        // Between h's grant and h's role row in plan order, a role of many rows.
        return `version: 1
users:
  - name: ${filler}
    password: {generate: true}
    grants:
${fillerGrants.join('')}  - name: ${b}
    password: {generate: true}
    grants:
      - {experiment_id: "${id(1)}", permission: ${before ? 'MANAGE' : 'READ'}}
  - name: ${h}
    password: {generate: true}
${before ? `    grants:\n      - {experiment_id: "${id(2)}", permission: DENY}\n` : ''}roles:
  - name: a-deny
    grants:
      - {experiment_id: "${id(1)}", permission: DENY}
    members: [${before ? b : ''}]
  - name: m-many
    grants:
${rows.join('')}    members: [${filler}]
  - name: z-wide
    grants:
      - {experiment_id: "${id(2)}", permission: ${before ? 'EDIT' : 'READ'}}
    members: [${h}]
`
      }

      const old = join(dir, 'old.yaml')
      const next = join(dir, 'new.yaml')
      await writeFile(old, policy(true))
      await writeFile(next, policy(false))
      okJson(await cli(['apply', '-f', old, '--yes', '--prune', '--json']))

      const {ok} = restClient(() => target.url)
      const probes = [
        [b, 'experiment', id(1)],
        [h, 'experiment', id(2)],
        [filler, 'gateway_endpoint', 'ge-100'],
        [filler, 'gateway_endpoint', 'ge-300'],
      ]
      const RANK = ['DENY', 'NO_PERMISSIONS', 'READ', 'USE', 'EDIT', 'MANAGE']
      const sample = async () =>
        Promise.all(
          probes.map(
            async ([username, type, resource]) =>
              (await ok(target.admin, 'GET', `/api/3.0/mlflow/users/permissions/get?username=${username}&resource_type=${type}&resource_id=${resource}`))
                .permission as string,
          ),
        )
      const before = await sample()
      assert.deepEqual(before.slice(0, 2), ['DENY', 'DENY'])
      const samples: string[][] = []
      let running = true
      const applying = cli(['apply', '-f', next, '--yes', '--prune', '--json']).finally(() => {
        running = false
      })
      while (running) samples.push(await sample())
      okJson(await applying)
      const afterwards = await sample()
      assert.deepEqual(afterwards, ['READ', 'READ', 'READ', 'READ'])
      assert.ok(samples.length > 0)
      for (const [index, [username, type, resource]] of probes.entries()) {
        const ceiling = Math.max(RANK.indexOf(before[index]), RANK.indexOf(afterwards[index]))
        const above = samples.map((levels) => levels[index]).filter((level) => RANK.indexOf(level) > ceiling)
        assert.deepEqual(above, [], `${username} on ${type} ${resource}: above ${RANK[ceiling]} during the run (${samples.length} samples)`)
      }
    })
  })
})
