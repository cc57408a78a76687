/**
 * Acceptance tests for per-route authorization: MLflow's real Python client through the server, as
 * several users (a port of MLflow's own tests/server/auth/test_auth.py; docs/mlflow-auth-contract.md, "Route permissions").
 *
 * One set of test bodies runs against four targets: MLflow's own basic-auth server and
 * `mlflowctl serve` in front of a plain MLflow server, each for both pinned versions. The real
 * servers validate the tests; serve must answer like them. Everything that legitimately differs
 * between targets is in `expectationsFor` below, and nowhere else.
 */
import assert from 'node:assert/strict'
import {mkdtemp, readFile, writeFile} from 'node:fs/promises'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {after, before, describe, it} from 'node:test'

import {type AuthTarget, authTarget} from '../support/auth-target.js'
import {MLFLOW_VERSIONS, type MlflowVersion, PINNED_VERSIONS} from '../support/mlflow-versions.js'
import {type CallResult, type ClientKind, type PythonError, PythonClient, type PythonValue} from '../support/python-client.js'
import {type Json} from '../support/rest.js'
import {releaseServers, uniqueName} from '../support/servers.js'

after(releaseServers)

type TargetKind = 'real' | 'serve'
type ResourceType = 'experiment' | 'registered_model'

/**
 * What differs between the targets, found by running these tests on the real 3.12.0 and 3.17.2
 * basic-auth servers:
 * - permissionApi: the 3.12 Python auth client has only the per-resource permission methods
 *   (create_/get_experiment_permission, …); the 3.17 client has only the unified ones
 *   (grant_user_permission, get_user_permission; 3.13 dropped the per-resource endpoints). serve
 *   speaks both; each target is driven with its version's client. Explicit rows are read with
 *   get_*_permission on 3.12 and with /api/3.0/mlflow/users/permissions/list on 3.17 (rows of the
 *   user's hidden role __user_<id>__), since 3.17's get_user_permission is the effective level.
 * - hideLevel: the explicit level that hides a resource from a user when default_permission is
 *   READ. 3.12: NO_PERMISSIONS. Real 3.17 refuses NO_PERMISSIONS for resource grants
 *   (INVALID_PARAMETER_VALUE "Resource-level grants accept only: ('DENY', 'EDIT', 'MANAGE',
 *   'READ', 'USE')") and hides with DENY instead. serve answers each generation's API as that
 *   generation does: NO_PERMISSIONS on the classic endpoints, DENY on the unified grant.
 * - unknownRun: what a non-admin gets for a run id that does not exist. Real 3.12 forwards the
 *   store's 404 RESOURCE_DOES_NOT_EXIST from the auth layer; real 3.17 answers 403 (no existence
 *   oracle); serve answers 403 PERMISSION_DENIED on both versions.
 */
function expectationsFor(version: MlflowVersion, kind: TargetKind) {
  const legacy = version === MLFLOW_VERSIONS.legacy
  return {
    hideLevel: legacy ? 'NO_PERMISSIONS' : 'DENY',
    noPermissionsGrantRefused: !legacy,
    permissionApi: legacy ? ('legacy' as const) : ('unified' as const),
    unknownRun: legacy && kind === 'real' ? 'RESOURCE_DOES_NOT_EXIST' : 'PERMISSION_DENIED',
  }
}

/** A user acting through MLflow's Python clients with their own credentials. */
class Actor {
  readonly py: PythonClient
  constructor(
    readonly username: string,
    password: string,
    url: string,
    version: string,
    lane: string,
  ) {
    this.py = new PythonClient({credentials: {password, username}, lane, trackingUri: url, version})
  }

  /** One call that must succeed. */
  async call<T = PythonValue>(client: ClientKind, method: string, ...args: unknown[]): Promise<T> {
    const result = await this.attempt(client, method, ...args)
    if (result.error) assert.fail(`${this.username}: ${client}.${method}(${JSON.stringify(args)}) failed: ${JSON.stringify(result.error)}`)
    return result.ok as T
  }

  async callKw<T = PythonValue>(client: ClientKind, method: string, args: unknown[], kwargs: Record<string, unknown>): Promise<T> {
    const [result] = await this.py.batch([{args, client, kwargs, method}])
    if (result.error)
      assert.fail(`${this.username}: ${client}.${method}(${JSON.stringify(args)}, ${JSON.stringify(kwargs)}) failed: ${JSON.stringify(result.error)}`)
    return result.ok as T
  }

  /** A search that must succeed: one page and the next page's token. */
  async search(method: string, args: unknown[] = [], kwargs: Record<string, unknown> = {}): Promise<{items: Json[]; token: null | string}> {
    const [result] = await this.py.batch([{args, client: 'tracking', kwargs, method, paged: true}])
    if (result.error) assert.fail(`${this.username}: ${method}(${JSON.stringify(args)}, ${JSON.stringify(kwargs)}) failed: ${JSON.stringify(result.error)}`)
    return result.ok
  }

  async attempt(client: ClientKind, method: string, ...args: unknown[]): Promise<CallResult> {
    const [result] = await this.py.batch([{args, client, method}])
    return result
  }

  async attemptKw(client: ClientKind, method: string, args: unknown[], kwargs: Record<string, unknown>): Promise<CallResult> {
    const [result] = await this.py.batch([{args, client, kwargs, method}])
    return result
  }
}

function failure(result: CallResult, what: string): PythonError {
  if (!result.error) assert.fail(`${what}: expected the call to fail, it returned ${JSON.stringify(result.ok)}`)
  return result.error
}

/** 403 Permission denied, whichever way the client reports it (MlflowException, or requests' HTTPError for artifact uploads). */
function assertDenied(result: CallResult, what: string): void {
  const error = failure(result, what)
  const denied = error.error_code === 'PERMISSION_DENIED' || (error.error_code === null && error.status === 403)
  assert.ok(denied, `${what}: expected PERMISSION_DENIED, got ${JSON.stringify(error)}`)
  assert.match(error.message, /Permission denied/i, what)
}

function assertErrorCode(result: CallResult, code: string, what: string): void {
  const error = failure(result, what)
  assert.equal(error.error_code, code, `${what}: ${JSON.stringify(error)}`)
}

// The four targets run side by side, each with a Python worker of its own (its lane), and the
// tests run concurrently too: each has its own users and names.
describe('per-route authorization', {concurrency: true}, () => {
  for (const version of PINNED_VERSIONS) {
    for (const kind of ['real', 'serve'] as TargetKind[]) {
      authzSuite(version, kind)
    }
  }
})

function authzSuite(version: MlflowVersion, kind: TargetKind): void {
  const expected = expectationsFor(version, kind)
  const title = kind === 'serve' ? `mlflowctl serve in front of plain MLflow ${version}` : `MLflow ${version} basic-auth`
  const lane = `authz-${kind}`

  describe(`the real Python client through ${title}, as several users`, () => {
    let url: string
    let admin: Actor
    let target: AuthTarget
    let files: string

    before(async () => {
      target = await authTarget(version, kind === 'serve' ? 'serve' : 'basic-auth')
      url = target.url
      admin = new Actor(target.admin.username, target.admin.password, url, version, lane)
      files = await mkdtemp(join(tmpdir(), 'mlflowctl-authz-'))
    })

    after(async () => target?.stop())

    async function newUser(prefix = 'user'): Promise<Actor> {
      const username = uniqueName(prefix)
      const password = `pw-${uniqueName('secret')}`
      await admin.call('auth', 'create_user', username, password)
      return new Actor(username, password, url, version, lane)
    }

    /** `actor` grants `username` a level on a resource, through this version's auth client. */
    async function grantResult(actor: Actor, username: string, type: ResourceType, id: string, level: string): Promise<CallResult> {
      if (expected.permissionApi === 'unified') return actor.attempt('auth', 'grant_user_permission', username, type, id, level)
      return actor.attempt('auth', type === 'experiment' ? 'create_experiment_permission' : 'create_registered_model_permission', id, username, level)
    }

    async function grant(actor: Actor, username: string, type: ResourceType, id: string, level: string): Promise<void> {
      const result = await grantResult(actor, username, type, id, level)
      if (result.error) assert.fail(`${actor.username} granting ${username} ${level} on ${type} ${id} failed: ${JSON.stringify(result.error)}`)
    }

    const hide = (actor: Actor, username: string, type: ResourceType, id: string) => grant(actor, username, type, id, expected.hideLevel)

    /** `actor` grants `username` one level on both the world's experiment and its registered model. */
    async function grantWorld(actor: Actor, username: string, world: World, level: string): Promise<void> {
      await grant(actor, username, 'experiment', world.experimentId, level)
      await grant(actor, username, 'registered_model', world.model, level)
    }

    /** The user's own (explicit) permission row on a resource, as the admin reads it; undefined when there is none. */
    async function explicitPermission(username: string, type: ResourceType, id: string): Promise<string | undefined> {
      if (expected.permissionApi === 'legacy') {
        const result = await admin.attempt('auth', type === 'experiment' ? 'get_experiment_permission' : 'get_registered_model_permission', id, username)
        if (result.error) {
          assert.equal(result.error.error_code, 'RESOURCE_DOES_NOT_EXIST', JSON.stringify(result.error))
          return undefined
        }

        return result.ok.permission
      }

      // 3.13+: the user's rows; their own grants live in the hidden role __user_<id>__.
      const listed = await admin.callKw('auth', '_request', ['/api/3.0/mlflow/users/permissions/list', 'GET'], {params: {username}})
      const rows = (listed.permissions as Array<{permission: string; resource_pattern: string; resource_type: string; role_name?: string}>).filter(
        (row) => row.resource_type === type && row.resource_pattern === id && (!row.role_name || row.role_name.startsWith('__user_')),
      )
      assert.ok(rows.length <= 1, JSON.stringify(rows))
      return rows[0]?.permission
    }

    /** A local file for log_artifact (the Python worker runs on this machine). */
    async function localFile(name: string, content: string): Promise<string> {
      const dir = await mkdtemp(join(files, 'f-'))
      const path = join(dir, name)
      await writeFile(path, content)
      return path
    }

    interface World {
      experimentId: string
      experimentName: string
      model: string
      runId: string
    }

    /** The owner's experiment with one run (metric m=1.5, artifact hello.txt), and a registered model with version 1 from that run. */
    async function ownerWorld(owner: Actor): Promise<World> {
      const experimentName = uniqueName('authz-exp')
      const experimentId = await owner.call<string>('tracking', 'create_experiment', experimentName)
      const run = await owner.call('tracking', 'create_run', experimentId)
      const runId: string = run.info.run_id
      await owner.call('tracking', 'log_metric', runId, 'm', 1.5)
      await owner.call('tracking', 'log_artifact', runId, await localFile('hello.txt', `hello from ${owner.username}`))
      const model = uniqueName('authz-model')
      await owner.call('tracking', 'create_registered_model', model)
      const created = await owner.call('tracking', 'create_model_version', model, `runs:/${runId}/model`, runId)
      assert.equal(created.version, '1')
      return {experimentId, experimentName, model, runId}
    }

    it('the creator of an experiment and of a registered model gets MANAGE', async () => {
      const owner = await newUser('owner')
      const experimentId = await owner.call<string>('tracking', 'create_experiment', uniqueName('authz-exp'))
      const model = uniqueName('authz-model')
      await owner.call('tracking', 'create_registered_model', model)
      assert.equal(await explicitPermission(owner.username, 'experiment', experimentId), 'MANAGE')
      assert.equal(await explicitPermission(owner.username, 'registered_model', model), 'MANAGE')
      // ...and the owner can read it back themselves (MANAGE on the resource / self).
      if (expected.permissionApi === 'legacy') {
        assert.equal((await owner.call('auth', 'get_experiment_permission', experimentId, owner.username)).permission, 'MANAGE')
        assert.equal((await owner.call('auth', 'get_registered_model_permission', model, owner.username)).permission, 'MANAGE')
      } else {
        assert.deepEqual(await owner.call('auth', 'get_user_permission', owner.username, 'experiment', experimentId), {allowed: true, permission: 'MANAGE'})
        assert.deepEqual(await owner.call('auth', 'get_user_permission', owner.username, 'registered_model', model), {allowed: true, permission: 'MANAGE'})
      }

      // Another user created nothing and has no row (default READ applies).
      const other = await newUser('other')
      assert.equal(await explicitPermission(other.username, 'experiment', experimentId), undefined)
      assert.equal(await explicitPermission(other.username, 'registered_model', model), undefined)
      // Creating the same model name again fails.
      assertErrorCode(await owner.attempt('tracking', 'create_registered_model', model), 'RESOURCE_ALREADY_EXISTS', 'create the model twice')
    })

    it('READ reads experiments, runs, metrics, artifacts, models and versions, and cannot write', async () => {
      const owner = await newUser('owner')
      const reader = await newUser('reader')
      const world = await ownerWorld(owner)
      await grantWorld(owner, reader.username, world, 'READ')

      assert.equal((await reader.call('tracking', 'get_experiment', world.experimentId)).name, world.experimentName)
      const run = await reader.call('tracking', 'get_run', world.runId)
      assert.equal(run.info.run_id, world.runId)
      assert.deepEqual(
        (await reader.call<Json[]>('tracking', 'get_metric_history', world.runId, 'm')).map((metric) => metric.value),
        [1.5],
      )
      assert.deepEqual(
        (await reader.call<Json[]>('tracking', 'list_artifacts', world.runId)).map((file) => file.path),
        ['hello.txt'],
      )
      assert.equal((await reader.call('tracking', 'get_registered_model', world.model)).name, world.model)
      assert.equal((await reader.call('tracking', 'get_model_version', world.model, '1')).run_id, world.runId)

      assertDenied(await reader.attempt('tracking', 'log_metric', world.runId, 'm', 99), 'READ log_metric')
      assertDenied(await reader.attempt('tracking', 'set_tag', world.runId, 'k', 'v'), 'READ set_tag')
      assertDenied(await reader.attempt('tracking', 'create_run', world.experimentId), 'READ create_run')
      assertDenied(await reader.attempt('tracking', 'update_registered_model', world.model, 'changed by a reader'), 'READ update_registered_model')
      assertDenied(await reader.attempt('tracking', 'log_artifact', world.runId, await localFile('sneaky.txt', 'x')), 'READ log_artifact')
      assertDenied(
        await reader.attempt('tracking', 'create_model_version', world.model, `runs:/${world.runId}/model`, world.runId),
        'READ create_model_version',
      )

      // Nothing was written.
      const after = await owner.call('tracking', 'get_run', world.runId)
      assert.deepEqual(
        after.data.metrics.map((metric: {value: number}) => metric.value),
        [1.5],
      )
      assert.equal(
        (after.data.tags ?? []).some((tag: {key: string}) => tag.key === 'k'),
        false,
      )
      assert.equal((await owner.search('search_runs', [[world.experimentId]])).items.length, 1)
      assert.equal((await owner.call('tracking', 'get_registered_model', world.model)).description, undefined)
      assert.deepEqual(
        (await owner.call<Json[]>('tracking', 'list_artifacts', world.runId)).map((file) => file.path),
        ['hello.txt'],
      )
    })

    it('EDIT writes but cannot delete runs, experiments, models or versions', async () => {
      const owner = await newUser('owner')
      const editor = await newUser('editor')
      const world = await ownerWorld(owner)
      await grantWorld(owner, editor.username, world, 'EDIT')

      await editor.call('tracking', 'log_metric', world.runId, 'm', 2.5)
      await editor.call('tracking', 'set_tag', world.runId, 'edited', 'yes')
      const newRun = await editor.call('tracking', 'create_run', world.experimentId)
      await editor.call('tracking', 'update_registered_model', world.model, 'edited description')
      const version2 = await editor.call('tracking', 'create_model_version', world.model, `runs:/${world.runId}/model`, world.runId)
      assert.equal(version2.version, '2')
      // register_model needs a model at the source (a logged model or an MLmodel file); it resolves
      // runs:/ to the run's artifact URI (mlflow-artifacts:/<exp>/<run>/artifacts/model) and sends that with run_id.
      await owner.call('tracking', 'log_artifact', world.runId, await localFile('MLmodel', 'artifact_path: model\nflavors: {}\n'), 'model')
      const version3 = await editor.call('mlflow', 'register_model', `runs:/${world.runId}/model`, world.model)
      assert.equal(version3.version, '3')
      assert.match(
        (await owner.call('tracking', 'get_model_version', world.model, '3')).source,
        new RegExp(`^mlflow-artifacts:/${world.experimentId}/${world.runId}/artifacts/model$`),
      )
      const run = await owner.call('tracking', 'get_run', world.runId)
      assert.equal(run.data.tags.find((tag: {key: string}) => tag.key === 'edited')?.value, 'yes')
      assert.equal((await owner.call('tracking', 'get_registered_model', world.model)).description, 'edited description')

      assertDenied(await editor.attempt('tracking', 'delete_run', world.runId), 'EDIT delete_run')
      assertDenied(await editor.attempt('tracking', 'delete_run', newRun.info.run_id), 'EDIT delete_run of its own run')
      assertDenied(await editor.attempt('tracking', 'delete_experiment', world.experimentId), 'EDIT delete_experiment')
      assertDenied(await editor.attempt('tracking', 'delete_model_version', world.model, '1'), 'EDIT delete_model_version')
      assertDenied(await editor.attempt('tracking', 'delete_registered_model', world.model), 'EDIT delete_registered_model')
      // EDIT cannot hand out permissions either.
      const third = await newUser('third')
      assertDenied(await grantResult(editor, third.username, 'experiment', world.experimentId, 'READ'), 'EDIT grants on the experiment')
      assertDenied(await grantResult(editor, third.username, 'registered_model', world.model, 'READ'), 'EDIT grants on the model')

      // Everything is still there.
      assert.equal((await owner.call('tracking', 'get_run', world.runId)).info.lifecycle_stage, 'active')
      assert.equal((await owner.call('tracking', 'get_experiment', world.experimentId)).lifecycle_stage, 'active')
      assert.equal((await owner.call('tracking', 'get_model_version', world.model, '1')).version, '1')
      assert.equal(await explicitPermission(third.username, 'experiment', world.experimentId), undefined)
    })

    it('MANAGE grants permissions to others and deletes', async () => {
      const owner = await newUser('owner')
      const manager = await newUser('manager')
      const grantee = await newUser('grantee')
      const world = await ownerWorld(owner)
      await grantWorld(owner, manager.username, world, 'MANAGE')

      await grantWorld(manager, grantee.username, world, 'EDIT')
      assert.equal(await explicitPermission(grantee.username, 'experiment', world.experimentId), 'EDIT')
      assert.equal(await explicitPermission(grantee.username, 'registered_model', world.model), 'EDIT')
      await grantee.call('tracking', 'set_tag', world.runId, 'granted', 'by-manager')

      await manager.call('tracking', 'delete_model_version', world.model, '1')
      assertErrorCode(await owner.attempt('tracking', 'get_model_version', world.model, '1'), 'RESOURCE_DOES_NOT_EXIST', 'deleted version')
      await manager.call('tracking', 'delete_registered_model', world.model)
      assertErrorCode(await owner.attempt('tracking', 'get_registered_model', world.model), 'RESOURCE_DOES_NOT_EXIST', 'deleted model')
      await manager.call('tracking', 'delete_run', world.runId)
      assert.equal((await owner.call('tracking', 'get_run', world.runId)).info.lifecycle_stage, 'deleted')
      await manager.call('tracking', 'delete_experiment', world.experimentId)
      assert.equal((await owner.call('tracking', 'get_experiment', world.experimentId)).lifecycle_stage, 'deleted')
    })

    it(`an explicit ${expected.hideLevel} (default_permission READ) hides experiments, runs, artifacts, models and versions`, async () => {
      const owner = await newUser('owner')
      const outsider = await newUser('outsider')
      const bystander = await newUser('bystander')
      const world = await ownerWorld(owner)
      if (expected.noPermissionsGrantRefused) {
        // Real 3.17: NO_PERMISSIONS is no longer a grantable resource level; DENY is.
        assertErrorCode(
          await grantResult(owner, outsider.username, 'experiment', world.experimentId, 'NO_PERMISSIONS'),
          'INVALID_PARAMETER_VALUE',
          'grant NO_PERMISSIONS on 3.17',
        )
      }

      await hide(owner, outsider.username, 'experiment', world.experimentId)
      await hide(owner, outsider.username, 'registered_model', world.model)
      assert.equal(await explicitPermission(outsider.username, 'experiment', world.experimentId), expected.hideLevel)

      assertDenied(await outsider.attempt('tracking', 'get_experiment', world.experimentId), 'hidden get_experiment')
      assertDenied(await outsider.attempt('tracking', 'get_experiment_by_name', world.experimentName), 'hidden get_experiment_by_name')
      assertDenied(await outsider.attempt('tracking', 'get_run', world.runId), 'hidden get_run')
      assertDenied(await outsider.attempt('tracking', 'get_metric_history', world.runId, 'm'), 'hidden get_metric_history')
      assertDenied(await outsider.attempt('tracking', 'list_artifacts', world.runId), 'hidden list_artifacts')
      assertDenied(
        await outsider.attempt('tracking', 'download_artifacts', world.runId, 'hello.txt', await mkdtemp(join(files, 'dl-'))),
        'hidden download_artifacts',
      )
      assertDenied(await outsider.attempt('tracking', 'get_registered_model', world.model), 'hidden get_registered_model')
      assertDenied(await outsider.attempt('tracking', 'get_model_version', world.model, '1'), 'hidden get_model_version')
      assertDenied(await outsider.attempt('tracking', 'get_latest_versions', world.model), 'hidden get_latest_versions')
      // ...and writes, of course.
      assertDenied(await outsider.attempt('tracking', 'log_metric', world.runId, 'm', 3), 'hidden log_metric')
      const searched = await outsider.search('search_experiments', [], {filter_string: `name = '${world.experimentName}'`})
      assert.deepEqual(searched.items, [])

      // A user with no row still reads through default_permission READ.
      assert.equal((await bystander.call('tracking', 'get_experiment', world.experimentId)).name, world.experimentName)
      assert.equal((await bystander.call('tracking', 'get_run', world.runId)).info.run_id, world.runId)
      assert.equal((await bystander.call('tracking', 'get_model_version', world.model, '1')).version, '1')
    })

    it('searching experiments and registered models returns only readable ones, paged without duplicates', async () => {
      const user1 = await newUser('user1')
      const user2 = await newUser('user2')
      const prefix = uniqueName('authz-search')
      const experiments: string[] = []
      const models: string[] = []
      for (let i = 0; i < 10; i++) {
        const name = `${prefix}-${String(i).padStart(2, '0')}`
        experiments.push(await user1.call<string>('tracking', 'create_experiment', name))
        await user1.call('tracking', 'create_registered_model', name)
        models.push(name)
      }

      // READ on 6, hidden on 4, interleaved so that every page mixes both.
      const readable = new Set([0, 1, 3, 5, 6, 8])
      for (let i = 0; i < 10; i++) {
        const level = readable.has(i) ? 'READ' : expected.hideLevel
        await grant(user1, user2.username, 'experiment', experiments[i], level)
        await grant(user1, user2.username, 'registered_model', models[i], level)
      }

      const filter = `name LIKE '${prefix}%'`
      const wantExperiments = experiments.filter((_, i) => readable.has(i)).sort()
      const wantModels = models.filter((_, i) => readable.has(i)).sort()

      async function searchAll(user: Actor, method: string, maxResults: number, key: (item: Json) => string): Promise<string[]> {
        const seen: string[] = []
        let token: null | string = null
        for (let pages = 0; ; pages++) {
          assert.ok(pages < 20, `${method} keeps returning page tokens`)
          const kwargs: Record<string, unknown> = {filter_string: filter, max_results: maxResults}
          if (token) kwargs.page_token = token
          const result = await user.search(method, [], kwargs)
          assert.ok(result.items.length <= maxResults, `${method} returned ${result.items.length} > max_results ${maxResults}`)
          seen.push(...result.items.map(key))
          token = result.token
          if (!token) break
        }

        assert.equal(new Set(seen).size, seen.length, `${method} returned duplicates: ${seen}`)
        return seen.sort()
      }

      const experimentId = (item: Json) => item.experiment_id as string
      const modelName = (item: Json) => item.name as string
      assert.deepEqual(await searchAll(user2, 'search_experiments', 100, experimentId), wantExperiments)
      assert.deepEqual(await searchAll(user2, 'search_experiments', 4, experimentId), wantExperiments)
      assert.deepEqual(await searchAll(user1, 'search_experiments', 100, experimentId), [...experiments].sort())
      assert.deepEqual(await searchAll(user1, 'search_experiments', 4, experimentId), [...experiments].sort())

      assert.deepEqual(await searchAll(user2, 'search_registered_models', 100, modelName), wantModels)
      assert.deepEqual(await searchAll(user2, 'search_registered_models', 4, modelName), wantModels)
      assert.deepEqual(await searchAll(user1, 'search_registered_models', 100, modelName), [...models].sort())
      assert.deepEqual(await searchAll(user1, 'search_registered_models', 4, modelName), [...models].sort())

      // A full first page of 4 is filled from further upstream pages when the first 4 hold hidden ones.
      const first = await user2.search('search_experiments', [], {filter_string: filter, max_results: 4, order_by: ['name ASC']})
      assert.deepEqual(
        first.items.map(experimentId),
        [0, 1, 3, 5].map((i) => experiments[i]),
      )
      assert.ok(first.token, 'a next page token after the first 4 readable experiments')
    })

    it('search_runs returns only runs of readable experiments, paged without duplicates or leaks', async () => {
      const user1 = await newUser('user1')
      const user2 = await newUser('user2')
      const counts = [8, 10, 7]
      const experimentIds: string[] = []
      const runsByExperiment: string[][] = []
      for (const count of counts) {
        const experimentId = await user1.call<string>('tracking', 'create_experiment', uniqueName('authz-runs'))
        experimentIds.push(experimentId)
        const created = await user1.py.batch(Array.from({length: count}, () => ({args: [experimentId], client: 'tracking' as const, method: 'create_run'})))
        runsByExperiment.push(
          created.map((result) => {
            if (result.error) assert.fail(JSON.stringify(result.error))
            return result.ok.info.run_id as string
          }),
        )
      }

      await grant(user1, user2.username, 'experiment', experimentIds[0], 'READ')
      await grant(user1, user2.username, 'experiment', experimentIds[1], 'READ')
      await hide(user1, user2.username, 'experiment', experimentIds[2])
      const readableRuns = [...runsByExperiment[0], ...runsByExperiment[1]].sort()
      const allRuns = runsByExperiment.flat().sort()

      async function searchRuns(user: Actor, maxResults: number): Promise<string[]> {
        const seen: string[] = []
        let token: null | string = null
        for (let pages = 0; ; pages++) {
          assert.ok(pages < 30, 'search_runs keeps returning page tokens')
          const kwargs: Record<string, unknown> = {max_results: maxResults}
          if (token) kwargs.page_token = token
          const result = await user.search('search_runs', [experimentIds], kwargs)
          assert.ok(result.items.length <= maxResults)
          seen.push(...result.items.map((run: Json) => run.info.run_id as string))
          token = result.token
          if (!token) break
        }

        assert.equal(new Set(seen).size, seen.length, `search_runs returned duplicates: ${seen}`)
        return seen.sort()
      }

      assert.deepEqual(await searchRuns(user2, 1000), readableRuns)
      assert.deepEqual(await searchRuns(user2, 3), readableRuns)
      assert.deepEqual(await searchRuns(user1, 1000), allRuns)
      // Only the hidden experiment: nothing, not an error.
      assert.deepEqual((await user2.search('search_runs', [[experimentIds[2]]])).items, [])
    })

    it('search_model_versions hides versions of unreadable models', async () => {
      const owner = await newUser('owner')
      const user2 = await newUser('user2')
      const prefix = uniqueName('authz-mv')
      const experimentId = await owner.call<string>('tracking', 'create_experiment', `${prefix}-exp`)
      const runId = (await owner.call('tracking', 'create_run', experimentId)).info.run_id as string
      const visible = `${prefix}-visible`
      const hidden = `${prefix}-hidden`
      for (const name of [visible, hidden]) {
        await owner.call('tracking', 'create_registered_model', name)
        await owner.call('tracking', 'create_model_version', name, `runs:/${runId}/model`, runId)
        await owner.call('tracking', 'create_model_version', name, `runs:/${runId}/model`, runId)
      }

      await hide(owner, user2.username, 'registered_model', hidden)
      const filter = `name LIKE '${prefix}%'`
      const versions = async (user: Actor) =>
        (await user.search('search_model_versions', [], {filter_string: filter})).items.map((mv: Json) => `${mv.name}/${mv.version}`).sort()
      assert.deepEqual(await versions(user2), [`${visible}/1`, `${visible}/2`])
      assert.deepEqual(await versions(owner), [`${hidden}/1`, `${hidden}/2`, `${visible}/1`, `${visible}/2`])
      const byName = (await user2.search('search_model_versions', [], {filter_string: `name = '${hidden}'`})).items
      assert.deepEqual(byName, [])
    })

    it('renaming a registered model moves its permissions to the new name', async () => {
      const owner = await newUser('owner')
      const reader = await newUser('reader')
      const outsider = await newUser('outsider')
      const oldName = uniqueName('authz-old')
      const newName = uniqueName('authz-new')
      await owner.call('tracking', 'create_registered_model', oldName)
      await grant(owner, reader.username, 'registered_model', oldName, 'READ')
      await hide(owner, outsider.username, 'registered_model', oldName)

      await owner.call('tracking', 'rename_registered_model', oldName, newName)
      assert.equal(await explicitPermission(owner.username, 'registered_model', newName), 'MANAGE')
      assert.equal(await explicitPermission(reader.username, 'registered_model', newName), 'READ')
      assert.equal(await explicitPermission(outsider.username, 'registered_model', newName), expected.hideLevel)
      for (const user of [owner, reader, outsider]) {
        assert.equal(await explicitPermission(user.username, 'registered_model', oldName), undefined, `${user.username}'s row on the old name`)
      }

      // The moved rows decide: the owner still manages, the outsider is still shut out.
      assert.equal((await reader.call('tracking', 'get_registered_model', newName)).name, newName)
      assertDenied(await reader.attempt('tracking', 'update_registered_model', newName, 'x'), 'READ update after rename')
      assertDenied(await outsider.attempt('tracking', 'get_registered_model', newName), 'hidden get after rename')
      await owner.call('tracking', 'update_registered_model', newName, 'renamed')
      await owner.call('tracking', 'delete_registered_model', newName)
    })

    it("deleting a registered model removes every user's permissions; re-creating the name does not resurrect them", async () => {
      const owner = await newUser('owner')
      const editor = await newUser('editor')
      const outsider = await newUser('outsider')
      const name = uniqueName('authz-del')
      await owner.call('tracking', 'create_registered_model', name)
      await grant(owner, editor.username, 'registered_model', name, 'EDIT')
      await hide(owner, outsider.username, 'registered_model', name)
      assertDenied(await outsider.attempt('tracking', 'get_registered_model', name), 'hidden before delete')

      await owner.call('tracking', 'delete_registered_model', name)
      for (const user of [owner, editor, outsider]) {
        assert.equal(await explicitPermission(user.username, 'registered_model', name), undefined, `${user.username}'s row after delete`)
      }

      // Someone else re-creates the name: they own it, and no old grant comes back.
      const recreator = await newUser('recreator')
      await recreator.call('tracking', 'create_registered_model', name)
      assert.equal(await explicitPermission(recreator.username, 'registered_model', name), 'MANAGE')
      assert.equal(await explicitPermission(owner.username, 'registered_model', name), undefined)
      assertDenied(await owner.attempt('tracking', 'delete_registered_model', name), 'the old owner deletes the re-created model')
      assertDenied(await editor.attempt('tracking', 'update_registered_model', name, 'x'), 'the old editor updates the re-created model')
      assert.equal((await outsider.call('tracking', 'get_registered_model', name)).name, name)
    })

    it('admins bypass every check, even with an explicit hiding row', async () => {
      const owner = await newUser('owner')
      const admin2 = await newUser('admin2')
      await admin.call('auth', 'update_user_admin', admin2.username, true)
      const world = await ownerWorld(owner)
      await hide(owner, admin2.username, 'experiment', world.experimentId)
      await hide(owner, admin2.username, 'registered_model', world.model)
      assert.equal(await explicitPermission(admin2.username, 'experiment', world.experimentId), expected.hideLevel)

      assert.equal((await admin2.call('tracking', 'get_experiment', world.experimentId)).name, world.experimentName)
      assert.equal((await admin2.call('tracking', 'get_run', world.runId)).info.run_id, world.runId)
      assert.deepEqual(
        (await admin2.call<Json[]>('tracking', 'list_artifacts', world.runId)).map((file) => file.path),
        ['hello.txt'],
      )
      assert.equal((await admin2.call('tracking', 'get_registered_model', world.model)).name, world.model)
      const searched = await admin2.search('search_experiments', [], {filter_string: `name = '${world.experimentName}'`})
      assert.deepEqual(
        searched.items.map((experiment: Json) => experiment.experiment_id),
        [world.experimentId],
      )
      await admin2.call('tracking', 'set_tag', world.runId, 'by', 'admin2')
      await admin2.call('tracking', 'delete_model_version', world.model, '1')
      await admin2.call('tracking', 'delete_registered_model', world.model)
      await admin2.call('tracking', 'delete_experiment', world.experimentId)
    })

    it('artifacts through the proxy: others with default READ list and download, but cannot log', async () => {
      const owner = await newUser('owner')
      const other = await newUser('other')
      const experimentId = await owner.call<string>('tracking', 'create_experiment', uniqueName('authz-art'))
      const runId = (await owner.call('tracking', 'create_run', experimentId)).info.run_id as string
      await owner.call('tracking', 'log_artifact', runId, await localFile('report.txt', 'owner report'))
      await owner.call('tracking', 'log_artifact', runId, await localFile('42', 'owner digits'), 'sub')

      assert.deepEqual((await other.call<Json[]>('tracking', 'list_artifacts', runId)).map((file) => file.path).sort(), ['report.txt', 'sub'])
      assert.deepEqual(
        (await other.call<Json[]>('tracking', 'list_artifacts', runId, 'sub')).map((file) => file.path),
        ['sub/42'],
      )
      const downloaded = await other.call<string>('tracking', 'download_artifacts', runId, 'report.txt', await mkdtemp(join(files, 'dl-')))
      assert.equal(await readFile(downloaded, 'utf8'), 'owner report')

      assertDenied(await other.attempt('tracking', 'log_artifact', runId, await localFile('mine.txt', 'x')), 'log_artifact by another user')
      assertDenied(await other.attempt('tracking', 'log_artifact', runId, await localFile('1234567', 'x')), 'log_artifact of a digits-only filename')
      assertDenied(await other.attempt('tracking', 'log_artifact', runId, await localFile('7', 'x'), '12345'), 'log_artifact under a digits-only directory')
      // Nothing was written.
      assert.deepEqual((await owner.call<Json[]>('tracking', 'list_artifacts', runId)).map((file) => file.path).sort(), ['report.txt', 'sub'])
      assert.deepEqual(
        (await owner.call<Json[]>('tracking', 'list_artifacts', runId, 'sub')).map((file) => file.path),
        ['sub/42'],
      )
    })

    it(`a non-admin asking for a run that does not exist gets ${expected.unknownRun}; a missing experiment name is not found`, async () => {
      const user = await newUser('user')
      const missingRun = 'f'.repeat(32)
      assertErrorCode(await user.attempt('tracking', 'get_run', missingRun), expected.unknownRun, 'get_run of an unknown run')
      assertErrorCode(await user.attempt('tracking', 'get_metric_history', missingRun, 'm'), expected.unknownRun, 'get_metric_history of an unknown run')
      // The admin gets the store's answer.
      assertErrorCode(await admin.attempt('tracking', 'get_run', missingRun), 'RESOURCE_DOES_NOT_EXIST', 'admin get_run of an unknown run')

      // get-by-name of a missing name is a 404 (the client then returns None) on every version,
      // so mlflow.set_experiment can create it: the non-admin then owns it.
      const name = uniqueName('authz-setexp')
      assert.equal(await user.call('tracking', 'get_experiment_by_name', name), null)
      const experiment = await user.call('mlflow', 'set_experiment', name)
      assert.equal(experiment.name, name)
      assert.equal(await explicitPermission(user.username, 'experiment', experiment.experiment_id), 'MANAGE')
      assert.equal((await user.call('mlflow', 'set_experiment', name)).experiment_id, experiment.experiment_id)
    })
  })
}
