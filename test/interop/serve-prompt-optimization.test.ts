/**
 * Prompt optimization jobs under MLflow 3.17's basic-auth app, one test body against the real app
 * and against serve (the servers run jobs: MLflow refuses a create otherwise): a search needs READ
 * on the experiment, a create EDIT there, and a DENY on what its configuration names (the prompt,
 * a scorer, the reflection model's gateway endpoint, `run *`) vetoes it; one job (read, cancel,
 * delete) is for admins only, as MLflow 3.17 decides in effect. serve also requires READ on the
 * dataset a create names, which MLflow does not check, and, where MLflow asks only that they not be
 * denied, EDIT on the source prompt (the job registers a new version of it) and USE on the reflection
 * model's gateway endpoint. MLflow 3.12 looks up no rule for the routes
 * on one job (anyone reads, cancels and deletes any job there), so the same body runs on 3.12
 * against serve only. serve also refuses a non-admin's optimizer configuration keys beyond its
 * allowlist (an `lm_kwargs.api_base` here). Every refused change is checked, as admin, not to have happened.
 */
import assert from 'node:assert/strict'
import {after, before, describe, it} from 'node:test'

import {type AuthTarget, type AuthTargetKind, authTarget, targetTitle} from '../support/auth-target.js'
import {type Credentials} from '../support/mlflow-server.js'
import {MLFLOW_VERSIONS} from '../support/mlflow-versions.js'
import {type Json, restClient} from '../support/rest.js'
import {giveRoles, type RowSpec} from '../support/roles.js'
import {releaseServers, uniqueName} from '../support/servers.js'

const JOBS = '/api/3.0/mlflow/prompt-optimization/jobs'
const GATEWAY = '/api/3.0/mlflow/gateway'

const targets: Array<[string, AuthTargetKind]> = [
  [MLFLOW_VERSIONS.latest, 'basic-auth'],
  [MLFLOW_VERSIONS.latest, 'serve'],
  [MLFLOW_VERSIONS.legacy, 'serve'],
]
for (const [version, kind] of targets) {
  describe(`prompt optimization job permissions on ${targetTitle(kind)} MLflow ${version}`, () => {
    let target: AuthTarget
    const user = (name: string) => ({password: `${name}-${uniqueName('pw')}`, username: uniqueName(`po-${name}`)})
    // editor: EDIT on the experiment; manager: MANAGE; reader: the default (READ); stranger: none
    // (NO_PERMISSIONS up to 3.12; 3.17's grants take DENY for it).
    const [editor, manager, reader, stranger] = [user('editor'), user('manager'), user('reader'), user('stranger')]
    const {call, ok} = restClient(() => target.url)
    const admin = () => target.admin
    let experimentId: string
    const legacy = version === MLFLOW_VERSIONS.legacy
    const serve = kind === 'serve'
    const NONE = legacy ? 'NO_PERMISSIONS' : 'DENY'
    /** The source prompt of the editor's creates: EDIT on it is hers (serve asks it, MLflow does not). */
    const sourcePrompt = uniqueName('po-prompt')

    /** Each generation's own grant API: per-experiment endpoints up to 3.12, unified grants after. */
    const grant = (who: Credentials, id: string, permission: string) =>
      legacy
        ? ok(admin(), 'POST', '/api/2.0/mlflow/experiments/permissions/create', {experiment_id: id, permission, username: who.username})
        : ok(admin(), 'POST', '/api/3.0/mlflow/users/permissions/grant', {permission, resource_id: id, resource_type: 'experiment', username: who.username})
    const give = async (who: Credentials, rows: RowSpec[]) => giveRoles((method, path, json) => ok(admin(), method, path, json), who.username, [rows])

    before(async () => {
      target = await authTarget(version, kind, {env: {MLFLOW_SERVER_ENABLE_JOB_EXECUTION: 'true'}, users: [editor, manager, reader, stranger]})
      experimentId = (await ok(admin(), 'POST', '/api/2.0/mlflow/experiments/create', {name: uniqueName('po-exp')})).experiment_id
      await grant(editor, experimentId, 'EDIT')
      await grant(manager, experimentId, 'MANAGE')
      await grant(stranger, experimentId, NONE)
      await give(editor, [['prompt', sourcePrompt, 'EDIT']])
    })
    after(async () => {
      await target?.stop()
      await releaseServers()
    })

    const jobBody = (config: Json = {}, source = `prompts:/${sourcePrompt}/1`) => ({
      config: {optimizer_type: 'OPTIMIZER_TYPE_GEPA', scorers: [], ...config},
      experiment_id: experimentId,
      source_prompt_uri: source,
    })
    const create = (who: Credentials, body: Json = jobBody()) => call(who, 'POST', JOBS, body)
    const created = async (who: Credentials, body?: Json) => {
      const answer = await create(who, body)
      assert.equal(answer.status, 200, answer.text)
      return answer.json().job.job_id as string
    }

    const jobIds = async (who: Credentials) => {
      const answer = await call(who, 'GET', `${JOBS}/search?experiment_id=${experimentId}`)
      return answer.status === 200 ? ((answer.json().jobs as Json[] | undefined) ?? []).map((job) => job.job_id as string) : answer.status
    }

    const runCount = async () => (((await ok(admin(), 'POST', '/api/2.0/mlflow/runs/search', {experiment_ids: [experimentId]})).runs as Json[]) ?? []).length
    /** Asserts that the refused creates `attempt` makes left no job and no run behind. */
    const refusedCreates = async (attempt: () => Promise<void>) => {
      const [jobsBefore, runsBefore] = [await jobIds(admin()), await runCount()]
      await attempt()
      assert.deepEqual(await jobIds(admin()), jobsBefore, 'a refused create made a job')
      assert.equal(await runCount(), runsBefore, 'a refused create made a run')
    }

    it('a create needs EDIT on the experiment, a search READ there', async () => {
      await refusedCreates(async () => {
        assert.equal((await create(reader)).status, 403)
        assert.equal((await create(stranger)).status, 403)
      })
      const id = await created(editor)
      const listed = await jobIds(reader)
      assert.ok(Array.isArray(listed) && listed.includes(id), `the reader's search: ${String(listed)}`)
      const searched = (await ok(reader, 'POST', `${JOBS}/search`, {experiment_id: experimentId})).jobs as Json[]
      assert.ok(searched.some((job) => job.job_id === id && job.experiment_id === experimentId))
      assert.equal(await jobIds(stranger), 403)
      assert.equal((await call(stranger, 'POST', `${JOBS}/search`, {experiment_id: experimentId})).status, 403)
    })

    it('one job is read, cancelled and deleted by admins only, its creator and managers included', async () => {
      // MLflow 3.17 keys its rule for one job by the route's template, which no request path
      // equals: its fail-closed default refuses every non-admin.
      const id = await created(editor)
      for (const who of [editor, manager, reader]) {
        assert.equal((await call(who, 'GET', `${JOBS}/${id}`)).status, 403)
        assert.equal((await call(who, 'POST', `${JOBS}/${id}/cancel`)).status, 403)
        assert.equal((await call(who, 'DELETE', `${JOBS}/${id}`)).status, 403)
      }

      assert.equal((await call(reader, 'GET', `${JOBS}/${uniqueName('no-such-job')}`)).status, 403)
      const job = (await ok(admin(), 'GET', `${JOBS}/${id}`)).job as Json
      assert.equal(job.experiment_id, experimentId, 'a refused delete deleted the job')
      assert.notEqual(job.state.status, 'JOB_STATUS_CANCELED', 'a refused cancel cancelled the job')
      // An admin cancels it (or, once its worker has failed it without a model to call, MLflow
      // refuses to cancel a finished job) and deletes it.
      assert.notEqual((await call(admin(), 'POST', `${JOBS}/${id}/cancel`)).status, 403)
      await ok(admin(), 'DELETE', `${JOBS}/${id}`)
      assert.equal((await call(admin(), 'GET', `${JOBS}/${id}`)).status, 404)
    })

    it('a create naming a dataset the caller cannot read: MLflow does not check it, serve refuses', async () => {
      const hidden = (await ok(admin(), 'POST', '/api/2.0/mlflow/experiments/create', {name: uniqueName('po-hidden')})).experiment_id as string
      await grant(editor, hidden, NONE)
      const dataset = async (experimentIds: string[]) =>
        ((await ok(admin(), 'POST', '/api/3.0/mlflow/datasets/create', {experiment_ids: experimentIds, name: uniqueName('po-ds')})).dataset as Json)
          .dataset_id as string
      const unreadable = await dataset([hidden])
      if (serve) await refusedCreates(async () => assert.equal((await create(editor, jobBody({dataset_id: unreadable}))).status, 403))
      else await created(editor, jobBody({dataset_id: unreadable}))
      await created(editor, jobBody({dataset_id: await dataset([experimentId])}))
      // A dataset that does not exist is denied by serve (MLflow fails on it after making the run).
      if (serve) await refusedCreates(async () => assert.equal((await create(editor, jobBody({dataset_id: `d-${'0'.repeat(32)}`}))).status, 403))
    })

    it('a create on a source prompt the caller may only read: MLflow asks only that it not be denied, serve refuses', async () => {
      const readOnly = jobBody({}, `prompts:/${uniqueName('po-read-only')}/1`)
      if (serve) await refusedCreates(async () => assert.equal((await create(editor, readOnly)).status, 403))
      else await created(editor, readOnly)
    })

    // The reflection model's call takes lm_kwargs as keyword arguments: an api_base there would send
    // the server's provider key to a host the caller picks. serve refuses it before MLflow sees it.
    if (serve)
      it("a non-admin's lm_kwargs.api_base is refused (400), and MLflow makes no run or job", async () => {
        const config = {lm_kwargs: {api_base: 'http://127.0.0.1:9/'}, reflection_model: 'openai:/gpt-4o'}
        await refusedCreates(async () => {
          const answer = await create(editor, jobBody({optimizer_config_json: JSON.stringify(config), optimizer_type: 'OPTIMIZER_TYPE_METAPROMPT'}))
          assert.equal(answer.status, 400, answer.text)
          assert.match(answer.text, /lm_kwargs\.api_base/)
        })
      })

    if (legacy) return
    it('a DENY on `run *`, the prompt, a scorer or the reflection model’s gateway endpoint vetoes a create (MLflow 3.17)', async () => {
      const prompt = uniqueName('po-denied-prompt')
      const scorer = `judge ${uniqueName('s')}`
      const secret = (
        await ok(admin(), 'POST', `${GATEWAY}/secrets/create`, {
          provider: 'openai',
          secret_name: uniqueName('po-secret'),
          secret_value: {api_key: 'sk-test-not-a-key'},
        })
      ).secret as Json
      const definition = (
        await ok(admin(), 'POST', `${GATEWAY}/model-definitions/create`, {
          model_name: 'gpt-4o',
          name: uniqueName('po-definition'),
          provider: 'openai',
          secret_id: secret.secret_id,
        })
      ).model_definition as Json
      const endpoint = (
        await ok(admin(), 'POST', `${GATEWAY}/endpoints/create`, {
          model_configs: [{linkage_type: 'PRIMARY', model_definition_id: definition.model_definition_id, weight: 1}],
          name: uniqueName('po-endpoint'),
          usage_tracking: false,
        })
      ).endpoint as Json
      const reflection = (name: string) => ({optimizer_config_json: JSON.stringify({reflection_model: `gateway:/${name}`})})

      const remove = await give(editor, [
        ['prompt', prompt, 'DENY'],
        ['scorer', `${experimentId}/${encodeURIComponent(scorer)}`, 'DENY'],
        ['gateway_endpoint', endpoint.endpoint_id as string, 'DENY'],
      ])
      try {
        await refusedCreates(async () => {
          for (const body of [
            jobBody({}, `prompts:/${prompt}/1`),
            jobBody({}, `prompts:/${prompt}@production`),
            // A bare name is loaded as `<name>@latest`; `<name>@<alias>` counts for both readings.
            jobBody({}, prompt),
            jobBody({}, `${prompt}@production`),
            jobBody({scorers: [scorer]}),
            jobBody(reflection(endpoint.name as string)),
            // A gateway endpoint that does not exist, and a prompt URI naming no prompt, are refused.
            jobBody(reflection(uniqueName('no-such-endpoint'))),
            jobBody({}, 'prompts:/'),
            jobBody({}, `prompts:/${prompt}`),
          ]) {
            const answer = await create(editor, body)
            assert.equal(answer.status, 403, `${JSON.stringify(body)}: ${answer.text}`)
          }
        })
        // What the rows do not name is not vetoed.
        await created(editor, jobBody({scorers: [`${scorer} 2`]}, `prompts:/${sourcePrompt}@production`))
      } finally {
        await remove()
      }

      // Not denied is all MLflow asks of the prompt and the endpoint; serve asks EDIT on the prompt
      // (the job registers a new version of it) and USE on the endpoint (the job calls it).
      const allowed = [jobBody({scorers: [scorer]}, `prompts:/${prompt}/1`), jobBody(reflection(endpoint.name as string))]
      if (serve)
        await refusedCreates(async () => {
          for (const body of allowed) assert.equal((await create(editor, body)).status, 403, JSON.stringify(body))
        })
      const removeGrants = await give(editor, [
        ['prompt', prompt, 'EDIT'],
        ['gateway_endpoint', endpoint.endpoint_id as string, 'USE'],
      ])
      try {
        for (const body of allowed) await created(editor, body)
      } finally {
        await removeGrants()
      }

      // A create makes a run in the experiment: a DENY on `run *` vetoes it.
      const removeRuns = await give(editor, [['run', '*', 'DENY']])
      try {
        await refusedCreates(async () => assert.equal((await create(editor)).status, 403))
      } finally {
        await removeRuns()
      }
    })
  })
}
