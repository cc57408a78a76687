/**
 * `store import --from-mlflow` on the real thing: MLflow's own basic-auth server (3.12.0, whose
 * per-user grants live in per-resource tables, and 3.17.2, whose grants are roles) gets users, an
 * admin, per-user grants, a role and a veto through its REST API; it is stopped, its basic_auth.db
 * imported (3.17.2's into a PostgreSQL store, 3.12.0's into a file), and serve started on the
 * imported store in front of a plain MLflow of the same version on the same tracking database.
 * Once more with 3.17.2's auth database on PostgreSQL (its database_uri), imported from there. The same requests must then get the same answers: the users log in
 * with their old passwords and keep exactly their access.
 */
import assert from 'node:assert/strict'
import {mkdtemp, rm} from 'node:fs/promises'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {after, before, describe, it} from 'node:test'

import {okJson, runCli} from '../support/cli.js'
import {addPythonPackage} from '../support/mlflow-install.js'
import {type Credentials, type RunningServer, startMlflowServer} from '../support/mlflow-server.js'
import {MLFLOW_VERSIONS} from '../support/mlflow-versions.js'
import {type RunningPostgres, startPostgres} from '../support/postgres.js'
import {type Json, restClient} from '../support/rest.js'
import {type RunningServe, startServe} from '../support/serve.js'

const alice = {password: 'alice-password-123', username: 'alice'}
const bob = {password: 'bob-password-12345', username: 'bob'}
const carol = {password: 'carol-password-123', username: 'carol'}
const boss = {password: 'boss-password-1234', username: 'boss'}

/** What each request got, by name: the comparison between MLflow and serve, and the expectation. */
const EXPECTED = {
  'alice reads e1': 200,
  'alice tags e1 (EDIT, her own grant)': 200,
  'alice tags e2 (default READ)': 403,
  'alice with a wrong password': 401,
  'alice updates model m (EDIT, her own grant)': 200,
  'bob tags e2 (EDIT, role editors)': 200,
  'bob updates model m (default READ)': 403,
  'boss (promoted to admin) tags e2': 200,
  'carol reads e1 (default READ)': 200,
  'carol reads e2 (vetoed)': 403,
}

/** MLflow's auth app on PostgreSQL needs a driver that `mlflow[auth]` does not bring. */
const PSYCOPG2 = 'psycopg2-binary==2.9.13'

for (const {from, to, version, veto} of [
  {from: 'sqlite', to: 'file', version: MLFLOW_VERSIONS.legacy, veto: 'NO_PERMISSIONS'},
  {from: 'sqlite', to: 'postgresql', version: MLFLOW_VERSIONS.latest, veto: 'DENY'},
  {from: 'postgresql', to: 'file', version: MLFLOW_VERSIONS.latest, veto: 'DENY'},
] as const) {
  describe(`store import --from-mlflow of MLflow ${version}'s auth database in ${from === 'sqlite' ? 'SQLite' : 'PostgreSQL'} into a ${to === 'file' ? 'file' : 'PostgreSQL'} store`, () => {
    let dir: string
    let mlflow: RunningServer | undefined
    let serve: RunningServe | undefined
    let admin: Credentials
    let url = ''
    const rest = restClient(() => url)
    const ids: {e1?: string; e2?: string} = {}
    let before_: Record<string, number>
    let imported: Json
    let postgres: RunningPostgres | undefined
    let intoFile: Json | undefined

    const checks = async (): Promise<Record<string, number>> => {
      const tag = (who: Credentials, id: string) =>
        rest.call(who, 'POST', '/api/2.0/mlflow/experiments/set-experiment-tag', {experiment_id: id, key: 'k', value: who.username})
      const results: Record<string, number> = {}
      const record = async (name: string, answer: Promise<{status: number}>) => {
        results[name] = (await answer).status
      }

      await record('alice reads e1', rest.call(alice, 'GET', `/api/2.0/mlflow/experiments/get?experiment_id=${ids.e1}`))
      await record('alice tags e1 (EDIT, her own grant)', tag(alice, ids.e1!))
      await record('alice tags e2 (default READ)', tag(alice, ids.e2!))
      await record(
        'alice with a wrong password',
        rest.call({...alice, password: 'not-her-password'}, 'GET', `/api/2.0/mlflow/experiments/get?experiment_id=${ids.e1}`),
      )
      await record(
        'alice updates model m (EDIT, her own grant)',
        rest.call(alice, 'PATCH', '/api/2.0/mlflow/registered-models/update', {description: 'a', name: 'm'}),
      )
      await record('bob tags e2 (EDIT, role editors)', tag(bob, ids.e2!))
      await record('bob updates model m (default READ)', rest.call(bob, 'PATCH', '/api/2.0/mlflow/registered-models/update', {description: 'b', name: 'm'}))
      await record('boss (promoted to admin) tags e2', tag(boss, ids.e2!))
      await record('carol reads e1 (default READ)', rest.call(carol, 'GET', `/api/2.0/mlflow/experiments/get?experiment_id=${ids.e1}`))
      await record('carol reads e2 (vetoed)', rest.call(carol, 'GET', `/api/2.0/mlflow/experiments/get?experiment_id=${ids.e2}`))
      return results
    }

    before(async () => {
      dir = await mkdtemp(join(tmpdir(), `mlflowctl-import-${version}-`))
      let source = `sqlite:///${join(dir, 'auth.db')}`
      if (from === 'postgresql' || to === 'postgresql') postgres = await startPostgres()
      if (from === 'postgresql') {
        await addPythonPackage(version, PSYCOPG2)
        // A role of MLflow's own with a plain password: basic_auth.ini is read with interpolation.
        await postgres!.query("CREATE ROLE mlflow LOGIN PASSWORD 'mlflow-pw'")
        await postgres!.query('CREATE DATABASE mlflow_auth OWNER mlflow')
        const port = new URL(postgres!.url).port
        source = `postgresql+psycopg2://mlflow:mlflow-pw@127.0.0.1:${port}/mlflow_auth`
      }

      mlflow = await startMlflowServer({authConfig: {database_uri: source}, dir, kind: 'basic-auth', version})
      admin = mlflow.admin!
      url = mlflow.url
      for (const user of [alice, bob, carol, boss]) await rest.ok(admin, 'POST', '/api/2.0/mlflow/users/create', user)
      await rest.ok(admin, 'PATCH', '/api/2.0/mlflow/users/update-admin', {is_admin: true, username: boss.username})
      ids.e1 = (await rest.ok(admin, 'POST', '/api/2.0/mlflow/experiments/create', {name: 'e1'})).experiment_id as string
      ids.e2 = (await rest.ok(admin, 'POST', '/api/2.0/mlflow/experiments/create', {name: 'e2'})).experiment_id as string
      await rest.ok(admin, 'POST', '/api/2.0/mlflow/registered-models/create', {name: 'm'})
      if (version === MLFLOW_VERSIONS.legacy) {
        // MLflow 3.12's per-resource endpoints: rows of experiment_permissions and registered_model_permissions.
        await rest.ok(admin, 'POST', '/api/2.0/mlflow/experiments/permissions/create', {experiment_id: ids.e1, permission: 'EDIT', username: alice.username})
        await rest.ok(admin, 'POST', '/api/2.0/mlflow/registered-models/permissions/create', {name: 'm', permission: 'EDIT', username: alice.username})
        await rest.ok(admin, 'POST', '/api/2.0/mlflow/experiments/permissions/create', {experiment_id: ids.e2, permission: veto, username: carol.username})
      } else {
        const grant = (username: string, type: string, id: string, permission: string) =>
          rest.ok(admin, 'POST', '/api/3.0/mlflow/users/permissions/grant', {permission, resource_id: id, resource_type: type, username})
        await grant(alice.username, 'experiment', ids.e1, 'EDIT')
        await grant(alice.username, 'registered_model', 'm', 'EDIT')
        await grant(carol.username, 'experiment', ids.e2, veto)
      }

      const role = (await rest.ok(admin, 'POST', '/api/3.0/mlflow/roles/create', {name: 'editors', workspace: 'default'})).role as {id: number}
      await rest.ok(admin, 'POST', '/api/3.0/mlflow/roles/permissions/add', {
        permission: 'EDIT',
        resource_pattern: '*',
        resource_type: 'experiment',
        role_id: role.id,
      })
      await rest.ok(admin, 'POST', '/api/3.0/mlflow/roles/assign', {role_id: role.id, username: bob.username})
      before_ = await checks()
      await mlflow.stop()
      mlflow = undefined

      let store = join(dir, 'serve.json')
      if (to === 'postgresql') {
        // Into a database: the same import as into a file, and serve on the database store.
        store = postgres!.url
        intoFile = okJson(await runCli(['store', 'import', '--from-mlflow', source, '--to', join(dir, 'serve.json'), '--json']))
      }

      imported = okJson(await runCli(['store', 'import', '--from-mlflow', source, '--to', store, '--json']))
      mlflow = await startMlflowServer({dir, kind: 'plain', version})
      serve = await startServe({storePath: store, upstream: mlflow.url})
      url = serve.url
    })

    after(async () => {
      await serve?.stop()
      await mlflow?.stop()
      await postgres?.stop()
      await rm(dir, {force: true, recursive: true})
    })

    it("MLflow's own server answers as the test expects (the baseline)", () => {
      assert.deepEqual(before_, EXPECTED)
    })

    it('imports every user and grant, and says what it read', () => {
      assert.equal(imported.schema, version === MLFLOW_VERSIONS.legacy ? 'per-resource' : 'roles')
      assert.deepEqual(imported.skipped, [])
      // admin, alice, bob, carol, boss; editors and the per-user roles of alice, carol and the admin
      // (MLflow gives the creator of e1, e2 and m MANAGE on each). MLflow has no access tokens, and its job creators are in its tracking database.
      assert.deepEqual(imported.destination.counts, {assignments: 4, job_creators: 0, role_permissions: 7, roles: 4, tokens: 0, users: 5})
      assert.match(imported.destination.digest, /^[0-9a-f]{64}$/)
      if (from === 'postgresql') assert.doesNotMatch(String(imported.from), /mlflow-pw/)
      if (intoFile) {
        // The database holds exactly what a file import holds; the URL is printed without its password.
        assert.equal(imported.destination.digest, intoFile.destination.digest)
        assert.doesNotMatch(imported.to, new RegExp(new URL(postgres!.url).password))
      }
    })

    if (to === 'postgresql') {
      it('refuses to import again into the database now that it holds users (exit 6), leaving it as it was', async () => {
        const again = await runCli(['store', 'import', '--from-mlflow', `sqlite:///${join(dir, 'auth.db')}`, '--to', postgres!.url, '--json'])
        assert.equal(again.code, 6, again.stderr)
        const {rows} = await postgres!.query<{seq: number}>('SELECT seq FROM mlflowctl_state')
        assert.equal(rows.length, 1)
        assert.deepEqual(await checks(), before_)
        const state = await postgres!.query<{seq: number}>('SELECT seq FROM mlflowctl_state')
        assert.deepEqual(state.rows, rows)
      })
    }

    it('serve on the imported store: the same users log in with their old passwords and get the same answers', async () => {
      assert.deepEqual(await checks(), before_)
      const me = await rest.ok(admin, 'GET', `/api/2.0/mlflow/users/get?username=${boss.username}`)
      assert.equal(me.user.is_admin, true)
    })
  })
}
