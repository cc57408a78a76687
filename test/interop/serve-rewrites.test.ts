/**
 * What MLflow 3.17.2 withholds from answers a route lets through, the same test body against its
 * basic-auth app and against serve in front of a plain 3.17.2: ids of a denied tier named beside
 * what was asked for (a run's logged models, a version's run, a logged model's source run, a
 * trace's run and logged model), versions of registered models when the version tier is denied,
 * assessments when the assessment tier is, run folders of an experiment's artifact root, and
 * scorers the caller cannot read.
 */
import assert from 'node:assert/strict'
import {execFile} from 'node:child_process'
import {randomBytes} from 'node:crypto'
import {after, before, describe, it} from 'node:test'
import {promisify} from 'node:util'

import {type AuthTarget, authTarget, targetTitle} from '../support/auth-target.js'
import {requireMlflow} from '../support/mlflow-install.js'
import {type Credentials} from '../support/mlflow-server.js'
import {MLFLOW_VERSIONS} from '../support/mlflow-versions.js'
import {type Json, restClient} from '../support/rest.js'
import {releaseServers, uniqueName} from '../support/servers.js'

const version = MLFLOW_VERSIONS.latest

/** MLflow's serialization of two built-in judges, made by the installed MLflow in one start. */
async function serializedScorers(names: string[]): Promise<string[]> {
  const script = 'import json, sys\nfrom mlflow.genai.scorers import Safety\nfor n in sys.argv[1:]: print(json.dumps(Safety(name=n).model_dump()))'
  const {stdout} = await promisify(execFile)(await requireMlflow(version), ['-W', 'ignore', '-c', script, ...names])
  return stdout.trim().split('\n')
}

const user = (name: string): Credentials => ({password: `${name}-${uniqueName('pw')}`, username: uniqueName(name)})

for (const kind of ['basic-auth', 'serve'] as const) {
  describe(`answers rewritten for denied tiers on ${targetTitle(kind)} MLflow ${version}`, () => {
    let target: AuthTarget
    const noRuns = user('no-runs')
    const noModels = user('no-logged-models')
    const noVersions = user('no-versions')
    const noAssessments = user('no-assessments')
    const noScorer = user('no-scorer')
    const partial = user('partial')
    const noModelRows = user('no-registered-models')
    const {call, ok} = restClient(() => target.url)
    let admin: Credentials
    const world = {experiment: '', loggedModel: '', model: uniqueName('rewritten'), prompt: uniqueName('prompt'), run: '', scorers: [] as string[], trace: ''}

    /** A role of one row, assigned to `who` (per-user grants take no tiers). */
    const grant = async (who: Credentials, resourceType: string, resourcePattern: string, permission: string) => {
      const {role} = await ok(admin, 'POST', '/api/3.0/mlflow/roles/create', {name: uniqueName('role'), workspace: 'default'})
      await ok(admin, 'POST', '/api/3.0/mlflow/roles/permissions/add', {
        permission,
        resource_pattern: resourcePattern,
        resource_type: resourceType,
        role_id: role.id,
      })
      await ok(admin, 'POST', '/api/3.0/mlflow/roles/assign', {role_id: role.id, username: who.username})
    }

    before(async () => {
      target = await authTarget(version, kind, {users: [noRuns, noModels, noVersions, noAssessments, noScorer, partial, noModelRows]})
      admin = target.admin
      world.experiment = (await ok(admin, 'POST', '/api/2.0/mlflow/experiments/create', {name: uniqueName('rewrites')})).experiment_id
      world.run = (await ok(admin, 'POST', '/api/2.0/mlflow/runs/create', {experiment_id: world.experiment})).run.info.run_id
      world.loggedModel = (
        await ok(admin, 'POST', '/api/2.0/mlflow/logged-models', {experiment_id: world.experiment, name: 'm', source_run_id: world.run})
      ).model.info.model_id
      await ok(admin, 'POST', '/api/2.0/mlflow/runs/log-metric', {key: 'acc', model_id: world.loggedModel, run_id: world.run, step: 0, timestamp: 1, value: 1})
      await ok(admin, 'POST', '/api/2.0/mlflow/runs/log-inputs', {models: [{model_id: world.loggedModel}], run_id: world.run})
      await ok(admin, 'POST', '/api/2.0/mlflow/runs/outputs', {models: [{model_id: world.loggedModel, step: 0}], run_id: world.run})
      await ok(admin, 'POST', '/api/2.0/mlflow/registered-models/create', {name: world.model})
      await ok(admin, 'POST', '/api/2.0/mlflow/model-versions/create', {
        model_id: world.loggedModel,
        name: world.model,
        run_id: world.run,
        source: `models:/${world.loggedModel}`,
      })
      const promptTags = [{key: 'mlflow.prompt.is_prompt', value: 'true'}]
      await ok(admin, 'POST', '/api/2.0/mlflow/registered-models/create', {name: world.prompt, tags: promptTags})
      await ok(admin, 'POST', '/api/2.0/mlflow/model-versions/create', {name: world.prompt, source: 'dummy-source', tags: promptTags})
      world.trace = `tr-${randomBytes(16).toString('hex')}`
      await ok(admin, 'POST', '/api/3.0/mlflow/traces', {
        trace: {
          trace_info: {
            request_time: '2024-01-01T00:00:00Z',
            state: 'OK',
            trace_id: world.trace,
            trace_location: {mlflow_experiment: {experiment_id: world.experiment}, type: 'MLFLOW_EXPERIMENT'},
            trace_metadata: {'mlflow.modelId': world.loggedModel, 'mlflow.sourceRun': world.run},
          },
        },
      })
      await ok(admin, 'POST', `/api/3.0/mlflow/traces/${world.trace}/assessments`, {
        assessment: {assessment_name: 'ok', feedback: {value: true}, source: {source_id: 'x', source_type: 'HUMAN'}, trace_id: world.trace},
      })
      await ok(admin, 'PUT', `/api/2.0/mlflow-artifacts/artifacts/${world.experiment}/${world.run}/artifacts/a.txt`, 'hello')
      world.scorers = ['judge-a', 'judge-b']
      const serialized = await serializedScorers(world.scorers)
      for (const [index, name] of world.scorers.entries())
        await ok(admin, 'POST', '/api/3.0/mlflow/scorers/register', {experiment_id: world.experiment, name, serialized_scorer: serialized[index]})

      await grant(noRuns, 'run', '*', 'DENY')
      await grant(noModels, 'logged_model', '*', 'DENY')
      await grant(noVersions, 'registered_model_version', '*', 'DENY')
      await grant(noAssessments, 'assessment', '*', 'DENY')
      await grant(noScorer, 'scorer', `${world.experiment}/judge-b`, 'DENY')
      await grant(noModelRows, 'registered_model', '*', 'DENY')
    })
    after(async () => {
      await target?.stop()
      await releaseServers()
    })

    const getRun = (who: Credentials) => ok(who, 'GET', `/api/2.0/mlflow/runs/get?run_id=${world.run}`)
    const searchRuns = async (who: Credentials) => (await ok(who, 'POST', '/api/2.0/mlflow/runs/search', {experiment_ids: [world.experiment]})).runs[0]
    const getVersion = (who: Credentials) => ok(who, 'GET', `/api/2.0/mlflow/model-versions/get?name=${world.model}&version=1`)
    const getModel = (who: Credentials) => ok(who, 'GET', `/api/2.0/mlflow/registered-models/get?name=${world.model}`)
    const searchModels = async (who: Credentials) =>
      (
        (await ok(who, 'GET', `/api/2.0/mlflow/registered-models/search?filter=${encodeURIComponent(`name = '${world.model}'`)}`)).registered_models as Json[]
      )[0]
    const searchVersions = async (who: Credentials) =>
      ((await ok(who, 'GET', `/api/2.0/mlflow/model-versions/search?filter=${encodeURIComponent(`name = '${world.model}'`)}`)).model_versions as Json[])[0]
    const getLoggedModel = async (who: Credentials) => (await ok(who, 'GET', `/api/2.0/mlflow/logged-models/${world.loggedModel}`)).model
    const searchLoggedModels = async (who: Credentials) =>
      (await ok(who, 'POST', '/api/2.0/mlflow/logged-models/search', {experiment_ids: [world.experiment]})).models[0]
    const getTrace = async (who: Credentials) => (await ok(who, 'GET', `/api/3.0/mlflow/traces/${world.trace}`)).trace.trace_info
    const searchTraces = async (who: Credentials) =>
      (await ok(who, 'POST', '/api/3.0/mlflow/traces/search', {locations: [{mlflow_experiment: {experiment_id: world.experiment}, type: 'MLFLOW_EXPERIMENT'}]}))
        .traces[0]

    it('a run names its logged models only to who may see logged models', async () => {
      for (const who of [admin, noVersions]) assert.deepEqual((await getRun(who)).run.inputs.model_inputs, [{model_id: world.loggedModel}])
      assert.deepEqual((await getRun(noModels)).run.inputs, {})
      // A search answer carries no model inputs in 3.17.2; what it carries is rewritten the same way.
      const found = await searchRuns(noModels)
      assert.equal(found.info.run_id, world.run)
      assert.equal(Object.hasOwn(found.inputs ?? {}, 'model_inputs'), false)
    })

    it('a model version names its run only to who may see runs, also inside registered models', async () => {
      assert.equal((await getVersion(noModels)).model_version.run_id, world.run)
      assert.equal((await getModel(noModels)).registered_model.latest_versions[0].run_id, world.run)
      const withheld = [
        (await getVersion(noRuns)).model_version,
        (await getModel(noRuns)).registered_model.latest_versions[0],
        (await searchModels(noRuns)).latest_versions[0],
        await searchVersions(noRuns),
      ]
      for (const entry of withheld) {
        assert.equal(entry.version, '1')
        assert.equal(Object.hasOwn(entry, 'run_id'), false, JSON.stringify(entry))
      }
    })

    it('registered models carry no versions when the version tier is denied', async () => {
      assert.equal((await getModel(admin)).registered_model.latest_versions.length, 1)
      assert.equal(Object.hasOwn((await getModel(noVersions)).registered_model, 'latest_versions'), false)
      const found = await searchModels(noVersions)
      assert.equal(found.name, world.model)
      assert.equal(Object.hasOwn(found, 'latest_versions'), false)
      assert.equal((await call(noVersions, 'GET', `/api/2.0/mlflow/registered-models/get-latest-versions?name=${world.model}`)).status, 403)
    })

    it('a logged model names its source run only to who may see runs', async () => {
      assert.equal((await getLoggedModel(noVersions)).info.source_run_id, world.run)
      for (const model of [await getLoggedModel(noRuns), await searchLoggedModels(noRuns)]) {
        assert.equal(model.info.model_id, world.loggedModel)
        assert.equal(Object.hasOwn(model.info, 'source_run_id'), false)
        for (const metric of model.data.metrics ?? []) assert.equal(Object.hasOwn(metric, 'run_id'), false)
      }
    })

    it('a v3 trace keeps its assessments from a denied assessment tier, and its run and logged model from theirs', async () => {
      assert.equal((await getTrace(admin)).assessments.length, 1)
      for (const info of [await getTrace(noAssessments), await searchTraces(noAssessments)]) {
        assert.equal(info.trace_id, world.trace)
        assert.equal(Object.hasOwn(info, 'assessments'), false)
        assert.equal(info.trace_metadata['mlflow.sourceRun'], world.run)
      }

      const noRunInfo = await getTrace(noRuns)
      assert.equal(Object.hasOwn(noRunInfo.trace_metadata, 'mlflow.sourceRun'), false)
      assert.equal(noRunInfo.trace_metadata['mlflow.modelId'], world.loggedModel)
      const noModelInfo = await searchTraces(noModels)
      assert.equal(Object.hasOwn(noModelInfo.trace_metadata, 'mlflow.modelId'), false)
      assert.equal(noModelInfo.trace_metadata['mlflow.sourceRun'], world.run)
    })

    it('an experiment artifact root lists its run folders only to who may read runs', async () => {
      const list = (who: Credentials) => ok(who, 'GET', `/api/2.0/mlflow-artifacts/artifacts?path=${world.experiment}`)
      assert.deepEqual((await list(admin)).files, [{is_dir: true, path: world.run}])
      assert.deepEqual(await list(noRuns), {})
    })

    it('scorers/list shows only the scorers the caller may read', async () => {
      const names = async (who: Credentials) =>
        ((await ok(who, 'GET', `/api/3.0/mlflow/scorers/list?experiment_id=${world.experiment}`)).scorers as Json[]).map((s) => s.scorer_name).sort()
      assert.deepEqual(await names(noRuns), ['judge-a', 'judge-b'])
      assert.deepEqual(await names(noScorer), ['judge-a'])
    })

    it('GraphQL answers the fields the caller may not read null, the others as asked', async () => {
      const hidden = (await ok(admin, 'POST', '/api/2.0/mlflow/experiments/create', {name: uniqueName('hidden')})).experiment_id
      const hiddenRun = (await ok(admin, 'POST', '/api/2.0/mlflow/runs/create', {experiment_id: hidden})).run.info.run_id
      await ok(admin, 'POST', '/api/3.0/mlflow/users/permissions/grant', {
        permission: 'DENY',
        resource_id: hidden,
        resource_type: 'experiment',
        username: partial.username,
      })
      const query = `query Q($hidden: String, $run: String, $ids: [String]) {
        open: mlflowGetExperiment(input: {experimentId: "${world.experiment}"}) { experiment { experimentId } }
        closed: mlflowGetExperiment(input: {experimentId: $hidden}) { experiment { experimentId name } }
        ...Runs
        files: mlflowListArtifacts(input: {runId: $run}) { files { path } }
        search: mlflowSearchRuns(input: {experimentIds: $ids}) { runs { info { runId experimentId } } }
      }
      fragment Runs on Query { mine: mlflowGetRun(input: {runId: "${world.run}"}) { run { info { runId } } } theirs: mlflowGetRun(input: {runId: $run}) { run { info { runId } } } }`
      const ask = (who: Credentials) =>
        ok(who, 'POST', '/graphql', {operationName: 'Q', query, variables: {hidden, ids: [world.experiment, hidden], run: hiddenRun}})
      assert.equal((await ask(admin)).data.closed.experiment.experimentId, hidden)
      assert.deepEqual(await ask(partial), {
        data: {
          closed: null,
          files: null,
          mine: {run: {info: {runId: world.run}}},
          open: {experiment: {experimentId: world.experiment}},
          search: {runs: [{info: {experimentId: world.experiment, runId: world.run}}]},
          theirs: null,
        },
        errors: null,
      })
      // A denied run tier lists no runs at all.
      assert.deepEqual((await ask(noRuns)).data.search, null)
    })

    it('GraphQL answers blank what a denied tier names, as the REST answers withhold it; version searches judge prompts by prompt rows', async () => {
      const query = `query Q($run: String, $ids: [String]) {
        got: mlflowGetRun(input: {runId: $run}) {
          run { info { runId } inputs { modelInputs { modelId } } outputs { modelOutputs { modelId } } data { metrics { key modelId } } modelVersions { name runId } }
        }
        found: mlflowSearchRuns(input: {experimentIds: $ids}) { runs { inputs { modelInputs { modelId } } modelVersions { name runId runLink } } }
        versions: mlflowSearchModelVersions(input: {filter: "name = '${world.model}'"}) { modelVersions { name version runId runLink modelParams { name } } }
        prompts: mlflowSearchModelVersions(input: {filter: "name = '${world.prompt}' and tags.\`mlflow.prompt.is_prompt\` = 'true'"}) {
          modelVersions { name version tags { key value } }
        }
      }`
      const ask = async (who: Credentials) => ok(who, 'POST', '/graphql', {operationName: 'Q', query, variables: {ids: [world.experiment], run: world.run}})
      const promptVersion = {name: world.prompt, tags: [{key: 'mlflow.prompt.is_prompt', value: 'true'}], version: '1'}
      const version = {modelParams: [], name: world.model, runId: world.run, runLink: '', version: '1'}
      const run = (links: Json[]) => ({
        data: {metrics: [{key: 'acc', modelId: ''}]},
        info: {runId: world.run},
        inputs: {modelInputs: links},
        modelVersions: [{name: world.model, runId: world.run}],
        outputs: {modelOutputs: links},
      })
      const answer = (links: Json[], versions: Json[], prompts: Json[]) => ({
        data: {
          found: {runs: [{inputs: {modelInputs: []}, modelVersions: [{name: world.model, runId: world.run, runLink: ''}]}]},
          got: {run: run(links)},
          prompts: {modelVersions: prompts},
          versions: {modelVersions: versions},
        },
        errors: null,
      })
      assert.deepEqual(await ask(admin), answer([{modelId: world.loggedModel}], [version], [promptVersion]))
      assert.deepEqual(await ask(noModels), answer([], [version], [promptVersion]))
      // A denied run tier answers the runs null and blanks the versions' runs.
      assert.deepEqual(await ask(noRuns), {
        data: {found: null, got: null, prompts: {modelVersions: [promptVersion]}, versions: {modelVersions: [{...version, runId: ''}]}},
        errors: null,
      })
      // A denied version tier lists no versions, nested in runs or searched.
      const noVersionsAnswer = await ask(noVersions)
      assert.deepEqual(noVersionsAnswer.data.got.run.modelVersions, [])
      assert.deepEqual(noVersionsAnswer.data.found.runs[0].modelVersions, [])
      assert.deepEqual(noVersionsAnswer.data.versions.modelVersions, [])
      // No rows on registered models: a prompt's version is still listed by the prompt's (default) READ.
      assert.deepEqual((await ask(noModelRows)).data.prompts.modelVersions, [promptVersion])
      assert.deepEqual((await ask(noModelRows)).data.versions.modelVersions, [])
    })
  })
}
