/**
 * serve against the classes of authorization bypass seen against MLflow auth layers
 * (docs/mlflow-auth-contract.md, "Authorization bypass classes"): twin routes, routes nobody listed, the checker reading a request differently from
 * MLflow, non-canonical paths, default fallbacks, unfiltered lists, side doors, and file and URL
 * inputs. For each, a user the owner gave NO_PERMISSIONS tries it, and gets no data of the owner's
 * (a 4xx without any of the owner's names, ids, values or artifact bytes) and changes nothing (after
 * every test the owner's view of their data is the one taken at the start).
 *
 * Requests go over raw node:http so that paths are sent literally (fetch and URL normalise `..`,
 * `%2e`, `//`) and a GET may carry a body.
 */
import assert from 'node:assert/strict'
import {randomBytes} from 'node:crypto'
import {after, afterEach, before, describe, it} from 'node:test'
import {isDeepStrictEqual} from 'node:util'

import {type Credentials, randomSecret} from '../support/mlflow-server.js'
import {PINNED_VERSIONS} from '../support/mlflow-versions.js'
import {type Answer, assertNoLeak, assertNoSecrets, closeRawAgent, describeAnswer, malloryOwn, ok, q, send, type Send} from '../support/raw-http.js'
import {basicAuth as basic, type Json} from '../support/rest.js'
import {type RunningServe, startServe} from '../support/serve.js'
import {acquireServer, releaseServers, uniqueName} from '../support/servers.js'

after(releaseServers)
after(closeRawAgent)

/** The owner's data and everything about it that must never reach mallory. */
interface World {
  admin: Credentials
  /** Owner's artifact bytes, uploaded under <exp>/<run>/artifacts/secret.txt. */
  artifact: string
  experimentId: string
  experimentName: string
  loggedModelArtifact: string
  loggedModelId: string
  loggedModelName: string
  mallory: Credentials
  malloryExperimentId: string
  malloryLoggedModelId: string
  malloryModel: string
  malloryRunId: string
  metricKey: string
  metricValue: number
  model: string
  owner: Credentials
  paramValue: string
  /** An experiment of the owner's with no grant: mallory reads it through the default READ. */
  publicExperimentId: string
  publicRunId: string
  runId: string
  serve: RunningServe
  /** Strings no answer to mallory may contain (unless she sent them herself). */
  secrets: string[]
  tagValue: string
  traceArtifact: string
  traceId: string
  traceTagValue: string
  upstreamDir: string
  version: string
}

async function setUp(version: string): Promise<World> {
  const upstream = await acquireServer(version, 'plain')
  const serve = await startServe({upstream: upstream.url})
  const admin = serve.admin
  const owner = {password: `owner-${randomSecret()}`, username: uniqueName('owner')}
  const mallory = {password: `mallory-${randomSecret()}`, username: uniqueName('mallory')}
  const as = (who: Credentials) => (method: string, path: string, options?: Send) => send(serve.url, who, method, path, options)
  for (const user of [owner, mallory]) await ok(as(admin)('POST', '/api/2.0/mlflow/users/create', {body: user}), `create ${user.username}`)

  const o = as(owner)
  const m = as(mallory)
  const tag = randomBytes(6).toString('hex')
  const experimentName = `secret-experiment-${tag}`
  const experimentId = (await ok(o('POST', '/api/2.0/mlflow/experiments/create', {body: {name: experimentName}}), 'create experiment')).experiment_id as string
  const run = await ok(
    o('POST', '/api/2.0/mlflow/runs/create', {body: {experiment_id: experimentId, run_name: `secret-run-${tag}`, start_time: 1_700_000_000_000}}),
    'create run',
  )
  const runId = run.run.info.run_id as string
  const metricKey = `secret_metric_${tag}`
  const metricValue = 31_415.926_535
  const paramValue = `secret-param-${tag}`
  const tagValue = `secret-tag-${tag}`
  await ok(
    o('POST', '/api/2.0/mlflow/runs/log-metric', {body: {key: metricKey, run_id: runId, step: 0, timestamp: 1_700_000_000_000, value: metricValue}}),
    'log metric',
  )
  await ok(o('POST', '/api/2.0/mlflow/runs/log-parameter', {body: {key: 'secret_param', run_id: runId, value: paramValue}}), 'log param')
  await ok(o('POST', '/api/2.0/mlflow/runs/set-tag', {body: {key: 'secret_tag', run_id: runId, value: tagValue}}), 'set tag')
  const artifact = `TOP-SECRET-ARTIFACT-${tag}`
  await ok(
    o('PUT', `/api/2.0/mlflow-artifacts/artifacts/${experimentId}/${runId}/artifacts/secret.txt`, {body: artifact, contentType: 'application/octet-stream'}),
    'upload artifact',
  )

  const model = `secret-model-${tag}`
  await ok(o('POST', '/api/2.0/mlflow/registered-models/create', {body: {name: model}}), 'create registered model')
  await ok(
    o('POST', '/api/2.0/mlflow/model-versions/create', {body: {name: model, run_id: runId, source: `mlflow-artifacts:/${experimentId}/${runId}/artifacts`}}),
    'create model version',
  )

  const loggedModelName = `secret-logged-model-${tag}`
  const loggedModel = await ok(
    o('POST', '/api/2.0/mlflow/logged-models', {body: {experiment_id: experimentId, name: loggedModelName, source_run_id: runId}}),
    'create logged model',
  )
  const loggedModelId = loggedModel.model.info.model_id as string
  const loggedModelArtifact = `LOGGED-MODEL-SECRET-${tag}`
  await ok(
    o('PUT', `/api/2.0/mlflow-artifacts/artifacts/${experimentId}/models/${loggedModelId}/artifacts/model-secret.txt`, {
      body: loggedModelArtifact,
      contentType: 'application/octet-stream',
    }),
    'upload logged-model artifact',
  )

  const traceId = `tr-${randomBytes(16).toString('hex')}`
  const traceTagValue = `secret-trace-tag-${tag}`
  const traceInfo = {
    execution_duration: '1s',
    request_preview: `secret-request-${tag}`,
    request_time: '2024-01-01T00:00:00Z',
    state: 'OK',
    tags: {secret_trace_tag: traceTagValue},
    trace_id: traceId,
    trace_location: {mlflow_experiment: {experiment_id: experimentId}, type: 'MLFLOW_EXPERIMENT'},
  }
  await ok(o('POST', '/api/3.0/mlflow/traces', {body: {trace: {trace_info: traceInfo}}}), 'start trace')
  const traceArtifact = `secret-span-${tag}`
  const spans = {
    spans: [
      {
        attributes: {'mlflow.spanInputs': JSON.stringify(traceArtifact)},
        end_time_unix_nano: 2,
        name: traceArtifact,
        parent_span_id: null,
        span_id: 'AAAAAAAAAAE=',
        start_time_unix_nano: 1,
        status: {code: 'STATUS_CODE_OK', message: ''},
        trace_id: 'AAAAAAAAAAAAAAAAAAAAAQ==',
        trace_state: '',
      },
    ],
  }
  await ok(
    o('PUT', `/api/2.0/mlflow-artifacts/artifacts/${experimentId}/traces/${traceId}/artifacts/traces.json`, {
      body: JSON.stringify(spans),
      contentType: 'application/octet-stream',
    }),
    'upload trace data',
  )

  const publicExperimentId = (await ok(o('POST', '/api/2.0/mlflow/experiments/create', {body: {name: `public-experiment-${tag}`}}), 'create public experiment'))
    .experiment_id as string
  const publicRunId = (await ok(o('POST', '/api/2.0/mlflow/runs/create', {body: {experiment_id: publicExperimentId}}), 'create public run')).run.info
    .run_id as string
  // A version of the secret model made from the run mallory may read: reachable through the run.
  await ok(
    o('POST', '/api/2.0/mlflow/model-versions/create', {
      body: {name: model, run_id: publicRunId, source: `mlflow-artifacts:/${publicExperimentId}/${publicRunId}/artifacts`},
    }),
    'create a model version from the public run',
  )

  await ok(
    o('POST', '/api/2.0/mlflow/experiments/permissions/create', {
      body: {experiment_id: experimentId, permission: 'NO_PERMISSIONS', username: mallory.username},
    }),
    'deny mallory the experiment',
  )
  await ok(
    o('POST', '/api/2.0/mlflow/registered-models/permissions/create', {body: {name: model, permission: 'NO_PERMISSIONS', username: mallory.username}}),
    'deny mallory the model',
  )

  const mine = await malloryOwn(m)
  const malloryLoggedModelId = (
    await ok(
      m('POST', '/api/2.0/mlflow/logged-models', {body: {experiment_id: mine.malloryExperimentId, name: uniqueName('mallory-lm')}}),
      'mallory creates a logged model',
    )
  ).model.info.model_id as string

  return {
    admin,
    artifact,
    experimentId,
    experimentName,
    loggedModelArtifact,
    loggedModelId,
    loggedModelName,
    mallory,
    ...mine,
    malloryLoggedModelId,
    metricKey,
    metricValue,
    model,
    owner,
    paramValue,
    publicExperimentId,
    publicRunId,
    runId,
    secrets: [
      experimentName,
      runId,
      metricKey,
      String(metricValue),
      paramValue,
      tagValue,
      artifact,
      model,
      loggedModelId,
      loggedModelName,
      loggedModelArtifact,
      traceId,
      traceTagValue,
      traceArtifact,
      `secret-request-${tag}`,
    ],
    serve,
    tagValue,
    traceArtifact,
    traceId,
    traceTagValue,
    upstreamDir: upstream.dir,
    version,
  }
}

/** What the owner (and the admin, for grants) sees of the owner's data: compared after every test. */
async function ownerView(w: World): Promise<Json> {
  const o = (path: string) => send(w.serve.url, w.owner, 'GET', path)
  const a = (path: string) => send(w.serve.url, w.admin, 'GET', path)
  const view: Json = {}
  const parts: Array<[string, Promise<Answer>]> = [
    ['experiment', o(`/api/2.0/mlflow/experiments/get?${q({experiment_id: w.experimentId})}`)],
    ['run', o(`/api/2.0/mlflow/runs/get?${q({run_id: w.runId})}`)],
    ['metricHistory', o(`/api/2.0/mlflow/metrics/get-history?${q({metric_key: w.metricKey, run_id: w.runId})}`)],
    ['runArtifacts', o(`/api/2.0/mlflow-artifacts/artifacts?${q({path: `${w.experimentId}/${w.runId}/artifacts`})}`)],
    ['experimentArtifacts', o(`/api/2.0/mlflow-artifacts/artifacts?${q({path: w.experimentId})}`)],
    ['artifact', o(`/get-artifact?${q({path: 'secret.txt', run_id: w.runId})}`)],
    ['model', o(`/api/2.0/mlflow/registered-models/get?${q({name: w.model})}`)],
    ['versions', o(`/api/2.0/mlflow/model-versions/search?${q({filter: `name='${w.model}'`})}`)],
    ['loggedModel', o(`/api/2.0/mlflow/logged-models/${w.loggedModelId}`)],
    ['loggedModelArtifact', o(`/ajax-api/2.0/mlflow/logged-models/${w.loggedModelId}/artifacts/files?${q({artifact_file_path: 'model-secret.txt'})}`)],
    ['loggedModelArtifacts', o(`/api/2.0/mlflow-artifacts/artifacts?${q({path: `${w.experimentId}/models/${w.loggedModelId}/artifacts`})}`)],
    ['trace', o(`/api/3.0/mlflow/traces/${w.traceId}`)],
    ['traceData', o(`/ajax-api/2.0/mlflow/get-trace-artifact?${q({request_id: w.traceId})}`)],
    ['mallory', a(`/api/2.0/mlflow/users/get?${q({username: w.mallory.username})}`)],
    ['owner', a(`/api/2.0/mlflow/users/get?${q({username: w.owner.username})}`)],
  ]
  for (const [name, pending] of parts) {
    const answer = await pending
    assert.equal(answer.status, 200, `owner view ${name}: ${describeAnswer(answer)}`)
    view[name] = answer.json ?? answer.text
  }

  // Of mallory's grants, those on the owner's resources (her own creations add grants of hers).
  const grants = view.mallory.user as Json
  view.mallory = {
    experiment_permissions: (grants.experiment_permissions as Json[]).filter((grant) => [w.experimentId, w.publicExperimentId].includes(grant.experiment_id)),
    registered_model_permissions: (grants.registered_model_permissions as Json[]).filter((grant) => grant.name === w.model),
  }

  return view
}

for (const version of PINNED_VERSIONS) {
  describe(`authorization bypass classes through serve (MLflow ${version})`, () => {
    let w: World
    let baseline: Json
    const mallory = (method: string, path: string, options?: Send) => send(w.serve.url, w.mallory, method, path, options)
    const admin = (method: string, path: string, options?: Send) => send(w.serve.url, w.admin, method, path, options)
    const anonymous = (method: string, path: string, options?: Send) => send(w.serve.url, undefined, method, path, options)
    /** mallory's request must be refused with `status` and leak nothing. */
    const refused = async (status: number | number[] | undefined, method: string, path: string, options?: Send) => {
      const answer = await mallory(method, path, options)
      assertNoLeak(w, answer, status)
      return answer
    }

    before(async () => {
      w = await setUp(version)
      baseline = await ownerView(w)
      // The owner really sees what mallory must not: the secrets checks below are not vacuous.
      const seen = JSON.stringify(baseline)
      for (const secret of w.secrets) assert.ok(seen.includes(secret), `the owner's view lacks ${secret}`)
    })

    after(async () => {
      await w?.serve.stop()
    })

    afterEach(async () => {
      const now = await ownerView(w)
      const before = baseline
      // A change is blamed on the test that made it, not on every test after it.
      baseline = now
      assert.deepEqual(now, before, "the owner's data changed")
    })

    it("twin routes: every spelling of a read or write of the owner's data is denied", async () => {
      const {experimentId: exp, loggedModelId: lm, model, runId: run, traceId: trace} = w
      const prefixes = ['/api/2.0', '/ajax-api/2.0', '/api/3.0', '/ajax-api/3.0']
      for (const prefix of prefixes) {
        await refused(403, 'GET', `${prefix}/mlflow/experiments/get?${q({experiment_id: exp})}`)
        await refused(403, 'GET', `${prefix}/mlflow/experiments/get-by-name?${q({experiment_name: w.experimentName})}`)
        await refused(403, 'GET', `${prefix}/mlflow/runs/get?${q({run_id: run})}`)
        await refused(403, 'GET', `${prefix}/mlflow/metrics/get-history?${q({metric_key: w.metricKey, run_id: run})}`)
        await refused(403, 'GET', `${prefix}/mlflow/artifacts/list?${q({run_id: run})}`)
        await refused(403, 'GET', `${prefix}/mlflow/metrics/get-history-bulk-interval?${q({metric_key: w.metricKey, run_ids: run})}`)
        await refused(403, 'GET', `${prefix}/mlflow/metrics/get-history-bulk?${q({metric_key: w.metricKey, run_id: run})}`)
        await refused(403, 'GET', `${prefix}/mlflow/registered-models/get?${q({name: model})}`)
        await refused(403, 'GET', `${prefix}/mlflow/model-versions/get?${q({name: model, version: '1'})}`)
        await refused(403, 'GET', `${prefix}/mlflow/model-versions/get-download-uri?${q({name: model, version: '1'})}`)
        await refused(403, 'GET', `${prefix}/mlflow/registered-models/get-latest-versions?${q({name: model})}`)
        await refused(403, 'GET', `${prefix}/mlflow/logged-models/${lm}`)
        await refused(403, 'GET', `${prefix}/mlflow/logged-models/${lm}/artifacts/files?${q({artifact_file_path: 'model-secret.txt'})}`)
        await refused(403, 'GET', `${prefix}/mlflow/logged-models/${lm}/artifacts/directories`)
        await refused(403, 'GET', `${prefix}/mlflow/traces/${trace}`)
        await refused(403, 'GET', `${prefix}/mlflow/traces/${trace}/info`)
        await refused(403, 'GET', `${prefix}/mlflow/traces/get?${q({trace_id: trace})}`)
        await refused(403, 'GET', `${prefix}/mlflow/get-trace-artifact?${q({request_id: trace})}`)
        await refused(403, 'POST', `${prefix}/mlflow/experiments/search-datasets`, {body: {experiment_ids: [exp]}})
        await refused(403, 'GET', `${prefix}/mlflow-artifacts/artifacts/${exp}/${run}/artifacts/secret.txt`)
        await refused(403, 'GET', `${prefix}/mlflow-artifacts/artifacts?${q({path: `${exp}/${run}/artifacts`})}`)
        await refused(403, 'GET', `${prefix}/mlflow-artifacts/presigned/${exp}/${run}/artifacts/secret.txt`)
        // Writes.
        await refused(403, 'POST', `${prefix}/mlflow/experiments/update`, {body: {experiment_id: exp, new_name: uniqueName('pwned')}})
        await refused(403, 'POST', `${prefix}/mlflow/experiments/delete`, {body: {experiment_id: exp}})
        await refused(403, 'POST', `${prefix}/mlflow/experiments/set-experiment-tag`, {body: {experiment_id: exp, key: 'pwned', value: 'yes'}})
        await refused(403, 'POST', `${prefix}/mlflow/runs/log-metric`, {body: {key: w.metricKey, run_id: run, step: 1, timestamp: 1, value: 666}})
        await refused(403, 'POST', `${prefix}/mlflow/runs/log-batch`, {body: {params: [{key: 'pwned', value: 'yes'}], run_id: run}})
        await refused(403, 'POST', `${prefix}/mlflow/runs/set-tag`, {body: {key: 'secret_tag', run_id: run, value: 'pwned'}})
        await refused(403, 'POST', `${prefix}/mlflow/runs/update`, {body: {run_id: run, status: 'FAILED'}})
        await refused(403, 'POST', `${prefix}/mlflow/runs/delete`, {body: {run_id: run}})
        await refused(403, 'POST', `${prefix}/mlflow/runs/log-inputs`, {body: {datasets: [], run_id: run}})
        await refused(403, 'POST', `${prefix}/mlflow/upload-artifact?${q({path: 'pwned.txt', run_uuid: run})}`, {
          body: 'pwned',
          contentType: 'application/octet-stream',
        })
        await refused(403, 'PUT', `${prefix}/mlflow-artifacts/artifacts/${exp}/${run}/artifacts/secret.txt`, {
          body: 'pwned',
          contentType: 'application/octet-stream',
        })
        await refused(403, 'DELETE', `${prefix}/mlflow-artifacts/artifacts/${exp}/${run}/artifacts/secret.txt`)
        await refused(403, 'POST', `${prefix}/mlflow-artifacts/mpu/create/${exp}/${run}/artifacts/big.bin?${q({path: 'big.bin'})}`, {body: {}})
        await refused(403, 'POST', `${prefix}/mlflow/registered-models/set-tag`, {body: {key: 'pwned', name: model, value: 'yes'}})
        await refused(403, 'PATCH', `${prefix}/mlflow/registered-models/update`, {body: {description: 'pwned', name: model}})
        await refused(403, 'POST', `${prefix}/mlflow/registered-models/rename`, {body: {name: model, new_name: uniqueName('pwned')}})
        await refused(403, 'DELETE', `${prefix}/mlflow/registered-models/delete`, {body: {name: model}})
        await refused(403, 'POST', `${prefix}/mlflow/model-versions/transition-stage`, {body: {name: model, stage: 'Archived', version: '1'}})
        await refused(403, 'DELETE', `${prefix}/mlflow/model-versions/delete`, {body: {name: model, version: '1'}})
        await refused(403, 'PATCH', `${prefix}/mlflow/logged-models/${lm}/tags`, {body: {tags: [{key: 'pwned', value: 'yes'}]}})
        await refused(403, 'DELETE', `${prefix}/mlflow/logged-models/${lm}`)
        await refused(403, 'PATCH', `${prefix}/mlflow/traces/${trace}/tags`, {body: {key: 'pwned', value: 'yes'}})
        await refused(403, 'POST', `${prefix}/mlflow/traces/delete-traces`, {body: {experiment_id: exp, request_ids: [trace]}})
      }

      // MLflow's non-proto Flask routes, at the root.
      await refused(403, 'GET', `/get-artifact?${q({path: 'secret.txt', run_id: run})}`)
      await refused(403, 'GET', `/get-artifact?${q({path: 'secret.txt', run_uuid: run})}`)
      await refused(403, 'GET', `/model-versions/get-artifact?${q({name: model, path: 'secret.txt', version: '1'})}`)
      // The same routes under an API prefix exist nowhere in MLflow; serve denies them too.
      await refused(403, 'GET', `/ajax-api/2.0/get-artifact?${q({path: 'secret.txt', run_id: run})}`)
      await refused(403, 'GET', `/api/2.0/mlflow/model-versions/get-artifact?${q({name: model, path: 'secret.txt', version: '1'})}`)
      // MLflow registers search-datasets on /api/2.0 without the slash after the prefix.
      await refused(403, 'POST', `/api/2.0mlflow/experiments/search-datasets`, {body: {experiment_ids: [exp]}})
    })

    it('routes nobody listed: an invented route, an unknown method and OPTIONS are denied to mallory, passed for the admin', async () => {
      const invented = await refused(403, 'GET', '/api/2.0/mlflow/x')
      assert.equal(invented.text, 'Permission denied')
      assert.equal((await admin('GET', '/api/2.0/mlflow/x')).status, 404)
      const own = `/api/2.0/mlflow/experiments/get?${q({experiment_id: w.malloryExperimentId})}`
      assert.equal((await mallory('GET', own)).status, 200, 'mallory reads her own experiment')
      // An unknown method on a known path, even on her own experiment.
      await refused(403, 'PUT', own, {body: {experiment_id: w.malloryExperimentId}})
      await refused(403, 'PROPFIND', own)
      await refused(403, 'OPTIONS', own)
      await refused(403, 'OPTIONS', `/api/2.0/mlflow/runs/get?${q({run_id: w.runId})}`)
      await refused(403, 'TRACE', '/api/2.0/mlflow/experiments/search')
      const put = await admin('PUT', own, {body: {experiment_id: w.malloryExperimentId}})
      assert.equal(put.status, 405, describeAnswer(put))
      const options = await admin('OPTIONS', own)
      assert.ok([200, 204].includes(options.status), describeAnswer(options))
      assert.match(String(options.headers.allow), /\bGET\b/)
      // Whole families serve keeps for admins.
      await refused(403, 'GET', '/api/2.0/mlflow/webhooks')
      await refused(403, 'GET', '/ajax-api/2.0/mlflow/gateway-proxy')
      // Datasets are decided on their experiments: a search of the owner's is refused.
      await refused(403, 'POST', '/api/3.0/mlflow/datasets/search', {body: {experiment_ids: [w.experimentId]}})
    })

    it('reading the request differently from MLflow: bodies on GET, run_id/run_uuid, snake and camelCase, content types, HEAD, methods', async () => {
      const {experimentId: exp, malloryRunId: mine, runId: run} = w
      // A GET with a body: MLflow reads the body when the query is empty, the query otherwise.
      await refused(400, 'GET', `/api/2.0/mlflow/runs/get?${q({run_id: run})}`, {body: {run_id: mine}})
      await refused(400, 'GET', `/api/2.0/mlflow/runs/get?${q({run_id: mine})}`, {body: {run_id: run}})
      await refused(400, 'GET', '/api/2.0/mlflow/runs/get', {body: {run_id: run}})
      await refused(400, 'GET', '/api/2.0/mlflow/runs/get', {body: {run_id: run}, contentType: 'text/plain'})
      await refused(400, 'GET', `/api/2.0/mlflow/experiments/get?${q({experiment_id: w.malloryExperimentId})}`, {body: {experiment_id: exp}})
      await refused(400, 'HEAD', '/api/2.0/mlflow/runs/get', {body: {run_id: run}})
      // run_id against run_uuid, in the query and in the body.
      await refused(400, 'GET', `/api/2.0/mlflow/runs/get?${q({run_id: mine, run_uuid: run})}`)
      await refused(400, 'GET', `/api/2.0/mlflow/runs/get?${q({run_id: run, run_uuid: mine})}`)
      await refused(400, 'GET', `/get-artifact?${q({path: 'secret.txt', run_id: mine, run_uuid: run})}`)
      // An empty run_id falls back to run_uuid on both sides (MLflow: `run_id or run_uuid`).
      await refused(403, 'GET', `/get-artifact?${q({path: 'secret.txt', run_id: '', run_uuid: run})}`)
      await refused(400, 'POST', `/ajax-api/2.0/mlflow/upload-artifact?${q({path: 'pwned.txt', run_id: mine, run_uuid: run})}`, {
        body: 'pwned',
        contentType: 'application/octet-stream',
      })
      await refused(400, 'POST', '/api/2.0/mlflow/runs/log-metric', {body: {key: 'm', run_id: mine, run_uuid: run, step: 0, timestamp: 1, value: 1}})
      await refused(400, 'POST', '/api/2.0/mlflow/runs/log-metric', {body: {key: 'm', run_uuid: mine, runId: run, step: 0, timestamp: 1, value: 1}})
      await refused(400, 'GET', `/api/2.0/mlflow/runs/get?${q({run_id: [mine, run]})}`)
      // A list field: every run named must be readable.
      await refused(403, 'GET', `/ajax-api/2.0/mlflow/metrics/get-history-bulk?${q({metric_key: w.metricKey, run_id: [mine, run]})}`)
      await refused(403, 'GET', `/api/2.0/mlflow/metrics/get-history-bulk-interval?${q({metric_key: w.metricKey, run_ids: [mine, run]})}`)
      // A camelCase spelling in the query: MLflow reads query fields by their proto names only.
      const camel = await mallory('GET', `/api/2.0/mlflow/runs/get?${q({run_uuid: mine, runId: run})}`)
      assertNoSecrets(w, camel)
      if (camel.status === 200) assert.equal(camel.json?.run?.info?.run_id, mine, describeAnswer(camel))
      else assert.equal(camel.status, 400, describeAnswer(camel))
      await refused(400, 'GET', `/api/2.0/mlflow/runs/get?${q({runId: run})}`)
      // The same field in snake_case and camelCase.
      await refused(400, 'POST', '/api/2.0/mlflow/runs/log-metric', {body: {key: 'm', run_id: mine, runId: run, step: 0, timestamp: 1, value: 1}})
      await refused(400, 'POST', '/api/2.0/mlflow/runs/log-metric', {body: {key: 'm', run_id: run, runId: mine, step: 0, timestamp: 1, value: 1}})
      await refused(400, 'POST', '/api/2.0/mlflow/experiments/update', {
        body: {experiment_id: w.malloryExperimentId, experimentId: exp, new_name: uniqueName('pwned')},
      })
      await refused(400, 'POST', '/api/2.0/mlflow/runs/search', {body: {experiment_ids: [w.malloryExperimentId], experimentIds: [exp]}})
      await refused(400, 'POST', '/api/2.0/mlflow/logged-models/search', {body: {experiment_ids: [w.malloryExperimentId], experimentIds: [exp]}})
      await refused(400, 'POST', '/api/2.0/mlflow/model-versions/create', {
        body: {name: w.malloryModel, run_id: mine, runId: run, source: `runs:/${mine}/model`},
      })
      // camelCase alone is read as the field it names.
      await refused(403, 'POST', '/api/2.0/mlflow/runs/log-metric', {body: {key: 'm', runId: run, step: 0, timestamp: 1, value: 1}})
      await refused(403, 'POST', '/api/2.0/mlflow/experiments/update', {body: {experimentId: exp, newName: uniqueName('pwned')}})
      // A key given twice: JSON parsers on both sides keep the last.
      await refused(403, 'POST', '/api/2.0/mlflow/runs/set-tag', {
        body: `{"run_id": "${mine}", "run_id": "${run}", "key": "secret_tag", "value": "pwned"}`,
        contentType: 'application/json',
      })
      // MLflow decodes a JSON string holding JSON a second time ("double-encoded" old clients).
      await refused(400, 'POST', '/api/2.0/mlflow/runs/set-tag', {
        body: JSON.stringify(JSON.stringify({key: 'secret_tag', run_id: run, value: 'pwned'})),
        contentType: 'application/json',
      })
      // JSON under another content type: MLflow parses DELETE and PATCH bodies whatever their type.
      for (const contentType of ['text/plain', 'application/x-www-form-urlencoded', null]) {
        await refused(403, 'DELETE', '/api/2.0/mlflow/registered-models/delete', {body: JSON.stringify({name: w.model}), contentType})
        await refused(403, 'DELETE', '/api/2.0/mlflow/registered-models/delete-tag', {body: JSON.stringify({key: 'k', name: w.model}), contentType})
        await refused(403, 'DELETE', '/api/2.0/mlflow/model-versions/delete', {body: JSON.stringify({name: w.model, version: '1'}), contentType})
        await refused(403, 'PATCH', '/api/2.0/mlflow/registered-models/update', {body: JSON.stringify({description: 'pwned', name: w.model}), contentType})
        await refused([400, 403], 'POST', '/api/2.0/mlflow/runs/set-tag', {body: JSON.stringify({key: 'secret_tag', run_id: run, value: 'pwned'}), contentType})
      }

      // A DELETE naming the model in the query and mallory's in the body: MLflow reads the body.
      await refused(403, 'DELETE', `/api/2.0/mlflow/registered-models/delete?${q({name: w.malloryModel})}`, {body: {name: w.model}})
      // HEAD is decided as GET.
      await refused(403, 'HEAD', `/api/2.0/mlflow/runs/get?${q({run_id: run})}`)
      await refused(403, 'HEAD', `/get-artifact?${q({path: 'secret.txt', run_id: run})}`)
      await refused(403, 'HEAD', `/api/2.0/mlflow-artifacts/artifacts/${exp}/${run}/artifacts/secret.txt`)
      await refused(403, 'HEAD', `/ajax-api/2.0/mlflow/logged-models/${w.loggedModelId}/artifacts/files?${q({artifact_file_path: 'model-secret.txt'})}`)
      // A POST to a GET-only route (Flask would 405 it; serve never forwards it for mallory).
      await refused(403, 'POST', '/api/2.0/mlflow/runs/get', {body: {run_id: run}})
      await refused(403, 'POST', '/api/2.0/mlflow/experiments/get', {body: {experiment_id: exp}})
      await refused(403, 'POST', '/get-artifact', {body: {path: 'secret.txt', run_id: run}})
      await refused(403, 'POST', '/api/2.0/mlflow/registered-models/search', {body: {filter: `name='${w.model}'`}})
      await refused(403, 'POST', `/api/2.0/mlflow-artifacts/artifacts/${exp}/${run}/artifacts/secret.txt`, {
        body: 'pwned',
        contentType: 'application/octet-stream',
      })
    })

    it('reading the request differently from MLflow: a HEAD is answered as the GET serve decided on', async () => {
      // MLflow's proto handlers read a HEAD's fields from the body (only a GET reads the query), so
      // a HEAD serve decides on the query must not make MLflow answer something else: here the
      // listing of mallory's own experiment, whose size must not be that of the artifact root's.
      for (const prefix of ['/api/2.0', '/ajax-api/2.0']) {
        const listing = `${prefix}/mlflow-artifacts/artifacts?${q({path: w.malloryExperimentId})}`
        const got = await mallory('GET', listing)
        assert.equal(got.status, 200, describeAnswer(got))
        const head = await mallory('HEAD', listing)
        if (head.status === 200)
          assert.equal(
            head.headers['content-length'],
            String(got.body.length),
            `HEAD ${listing} is answered with another listing than the GET serve decided on (the artifact root's)`,
          )
        else assertNoLeak(w, head)
      }
    })

    it('non-canonical paths: decoded, or refused before anything is decided or forwarded', async () => {
      const {experimentId: exp, malloryExperimentId: mine, runId: run} = w
      // Percent-encoded letters are decided on the decoded path, as Werkzeug routes them.
      await refused(403, 'GET', `/api/2.0/mlflow/%65xperiments/get?${q({experiment_id: exp})}`)
      await refused(403, 'GET', `/%61pi/2.0/mlflow/runs/get?${q({run_id: run})}`)
      await refused(403, 'GET', `/api/2.0/mlflow/runs/%67et?${q({run_id: run})}`)
      await refused(403, 'GET', `/get%2Dartifact?${q({path: 'secret.txt', run_id: run})}`)
      const encodedOwn = await mallory('GET', `/api/2.0/mlflow/%65xperiments/get?${q({experiment_id: mine})}`)
      assert.equal(encodedOwn.status, 200, `the decoded route reaches MLflow: ${describeAnswer(encodedOwn)}`)
      assert.equal(encodedOwn.json?.experiment?.experiment_id, mine)
      await refused(403, 'GET', `/api/2.0/mlflow-artifacts/artifacts/%3${exp.at(0)}${exp.slice(1)}/${run}/artifacts/secret.txt`)
      const bad: string[] = [
        `/api/2.0/mlflow/runs%2Fget?${q({run_id: run})}`,
        `/api/2.0/mlflow/runs%2fget?${q({run_id: run})}`,
        `/api/2.0//mlflow/runs/get?${q({run_id: run})}`,
        `//api/2.0/mlflow/runs/get?${q({run_id: run})}`,
        `/api/2.0/mlflow/runs/get;jsessionid=1?${q({run_id: run})}`,
        `/api/2.0/mlflow/runs;x/get?${q({run_id: run})}`,
        `/static-files/../api/2.0/mlflow/runs/get?${q({run_id: run})}`,
        `/static-files/%2e%2e/api/2.0/mlflow/runs/get?${q({run_id: run})}`,
        `/static-files/%2E%2E/get-artifact?${q({path: 'secret.txt', run_id: run})}`,
        `/static-files/..%2Fget-artifact?${q({path: 'secret.txt', run_id: run})}`,
        `/api/2.0/mlflow/experiments/../runs/get?${q({run_id: run})}`,
        `/api/2.0/mlflow/./runs/get?${q({run_id: run})}`,
        `/api/2.0/mlflow/%2e/runs/get?${q({run_id: run})}`,
        `/api/2.0/mlflow\\runs/get?${q({run_id: run})}`,
        `/api/2.0/mlflow/runs%5Cget?${q({run_id: run})}`,
        `/api/2.0/mlflow/runs/get%00?${q({run_id: run})}`,
        `/api/2.0/mlflow/runs/get%ZZ?${q({run_id: run})}`,
        `/api/2.0/mlflow-artifacts/artifacts/${mine}/../${exp}/${run}/artifacts/secret.txt`,
        `/api/2.0/mlflow-artifacts/artifacts/${mine}/%2e%2e/${exp}/${run}/artifacts/secret.txt`,
        `/api/2.0/mlflow-artifacts/artifacts/${mine}%2F..%2F${exp}/${run}/artifacts/secret.txt`,
        `/api/2.0/mlflow-artifacts/artifacts/${mine}//${exp}/${run}/artifacts/secret.txt`,
      ]
      for (const path of bad) {
        for (const who of ['mallory', 'anonymous'] as const) {
          const answer = who === 'mallory' ? await mallory('GET', path) : await anonymous('GET', path)
          assertNoLeak(w, answer, 400)
          assert.equal(answer.json?.error_code, 'BAD_REQUEST', describeAnswer(answer))
        }
      }

      // The same tricks on writes.
      await refused(400, 'PUT', `/api/2.0/mlflow-artifacts/artifacts/${mine}/%2e%2e/${exp}/${run}/artifacts/secret.txt`, {
        body: 'pwned',
        contentType: 'application/octet-stream',
      })
      await refused(400, 'DELETE', `/api/2.0/mlflow-artifacts/artifacts/${mine}/../${exp}/${run}/artifacts/secret.txt`)
      await refused(400, 'POST', `/api/2.0//mlflow/runs/set-tag`, {body: {key: 'secret_tag', run_id: run, value: 'pwned'}})
      // A trailing slash makes another route (Flask 404s it); serve does not know it.
      await refused(403, 'GET', `/api/2.0/mlflow/runs/get/?${q({run_id: run})}`)
      await refused(403, 'GET', `/api/2.0/mlflow/experiments/get/?${q({experiment_id: exp})}`)
      await refused(403, 'POST', '/api/2.0/mlflow/runs/set-tag/', {body: {key: 'secret_tag', run_id: run, value: 'pwned'}})
      await refused(403, 'GET', `/get-artifact/?${q({path: 'secret.txt', run_id: run})}`)
      // Case is not folded.
      await refused(403, 'GET', `/API/2.0/mlflow/runs/get?${q({run_id: run})}`)
      await refused(403, 'GET', `/api/2.0/MLflow/runs/get?${q({run_id: run})}`)
      // An absolute-form target is not a path.
      const absolute = await mallory('GET', `${w.serve.url}/api/2.0/mlflow/runs/get?${q({run_id: run})}`)
      assertNoLeak(w, absolute, 400)
    })

    it('default fallbacks: an artifact path without an experiment id and an unknown id are denied', async () => {
      const {experimentId: exp, runId: run} = w
      for (const prefix of ['/api/2.0', '/ajax-api/2.0']) {
        await refused(403, 'GET', `${prefix}/mlflow-artifacts/artifacts`)
        await refused(403, 'GET', `${prefix}/mlflow-artifacts/artifacts?path=`)
        await refused(403, 'GET', `${prefix}/mlflow-artifacts/artifacts?path=.`)
        await refused(403, 'GET', `${prefix}/mlflow-artifacts/artifacts?path=./${exp}`)
        await refused(403, 'GET', `${prefix}/mlflow-artifacts/artifacts?path=abc`)
        await refused(403, 'GET', `${prefix}/mlflow-artifacts/artifacts?path=/${exp}/${run}/artifacts`)
        await refused(403, 'GET', `${prefix}/mlflow-artifacts/artifacts?${q({path: exp})}`)
        await refused(403, 'GET', `${prefix}/mlflow-artifacts/artifacts?${q({path: `${exp}/${run}/artifacts`})}`)
        await refused(400, 'GET', `${prefix}/mlflow-artifacts/artifacts?${q({path: [w.malloryExperimentId, exp]})}`)
        await refused(403, 'GET', `${prefix}/mlflow-artifacts/artifacts/`)
        await refused(403, 'DELETE', `${prefix}/mlflow-artifacts/artifacts/`)
        await refused(403, 'DELETE', `${prefix}/mlflow-artifacts/artifacts/${exp}`)
        await refused(403, 'DELETE', `${prefix}/mlflow-artifacts/artifacts/abc`)
        await refused(403, 'DELETE', `${prefix}/mlflow-artifacts/artifacts/${exp}abc/x`)
        await refused(403, 'PUT', `${prefix}/mlflow-artifacts/artifacts/abc/pwned.txt`, {body: 'pwned', contentType: 'application/octet-stream'})
        await refused(403, 'PUT', `${prefix}/mlflow-artifacts/artifacts/${exp}`, {body: 'pwned', contentType: 'application/octet-stream'})
        const own = await mallory('GET', `${prefix}/mlflow-artifacts/artifacts?${q({path: w.malloryExperimentId})}`)
        assert.equal(own.status, 200, `mallory lists her own experiment's artifacts: ${describeAnswer(own)}`)
      }

      // An unknown id answers exactly like one mallory cannot read: no existence oracle.
      const unknownRun = randomBytes(16).toString('hex')
      const pairs: Array<[string, string, Send?]> = [
        ['GET', `/api/2.0/mlflow/runs/get?${q({run_id: '%RUN%'})}`],
        ['GET', `/api/2.0/mlflow/metrics/get-history?${q({metric_key: w.metricKey, run_id: '%RUN%'})}`],
        ['GET', `/get-artifact?${q({path: 'secret.txt', run_id: '%RUN%'})}`],
        ['POST', `/ajax-api/2.0/mlflow/upload-artifact?${q({path: 'pwned.txt', run_uuid: '%RUN%'})}`, {body: 'pwned', contentType: 'application/octet-stream'}],
        ['POST', '/api/2.0/mlflow/runs/set-tag', {body: {key: 'k', run_id: '%RUN%', value: 'v'}}],
      ]
      for (const [method, path, options] of pairs) {
        const withId = (id: string): [string, string, Send | undefined] => [
          method,
          path.replace('%RUN%', id),
          options && {...options, body: typeof options.body === 'object' ? JSON.parse(JSON.stringify(options.body).replace('%RUN%', id)) : options.body},
        ]
        const unknown = await refused(403, ...withId(unknownRun))
        const unreadable = await refused(403, ...withId(run))
        assert.equal(unknown.text, unreadable.text, `${method} ${path}: an unknown run answers like an unreadable one`)
      }

      const unknownModel = await refused(403, 'GET', `/api/2.0/mlflow/logged-models/m-${randomBytes(16).toString('hex')}`)
      const unreadableModel = await refused(403, 'GET', `/api/2.0/mlflow/logged-models/${w.loggedModelId}`)
      assert.equal(unknownModel.text, unreadableModel.text)
      const unknownTrace = await refused(403, 'GET', `/api/3.0/mlflow/traces/tr-${randomBytes(16).toString('hex')}`)
      const unreadableTrace = await refused(403, 'GET', `/api/3.0/mlflow/traces/${w.traceId}`)
      assert.equal(unknownTrace.text, unreadableTrace.text)
      await refused(403, 'GET', `/ajax-api/2.0/mlflow/get-trace-artifact?${q({request_id: `tr-${randomBytes(16).toString('hex')}`})}`)
      // An unknown run in a list of runs denies the whole request.
      await refused(403, 'GET', `/ajax-api/2.0/mlflow/metrics/get-history-bulk?${q({metric_key: w.metricKey, run_id: [w.malloryRunId, unknownRun]})}`)
      // An id that is no id at all.
      await refused([400, 403], 'GET', `/api/2.0/mlflow/runs/get?${q({run_id: '../../etc/passwd'})}`)
      await refused([400, 403], 'GET', `/api/2.0/mlflow/runs/get?${q({run_id: ''})}`)
    })

    it("unfiltered lists: searches show mallory nothing of the owner's, page after page", async () => {
      const {experimentId: exp, model} = w
      const listed = async (answer: Answer, key: string, id: string) => {
        assert.equal(answer.status, 200, describeAnswer(answer))
        assertNoSecrets(w, answer)
        return ((answer.json?.[key] ?? []) as Json[]).map((item) => String(item[id]))
      }

      // Experiments, GET and POST, whole and page by page.
      for (const method of ['GET', 'POST']) {
        const whole =
          method === 'GET'
            ? await mallory('GET', `/api/2.0/mlflow/experiments/search?${q({max_results: '1000'})}`)
            : await mallory('POST', '/api/2.0/mlflow/experiments/search', {body: {max_results: 1000}})
        const ids = await listed(whole, 'experiments', 'experiment_id')
        assert.ok(!ids.includes(exp), `${method} experiments/search lists the owner's experiment`)
        assert.ok(ids.includes(w.malloryExperimentId) && ids.includes(w.publicExperimentId), `${method} experiments/search: ${ids.join(',')}`)
        for (const prefix of ['/api/2.0', '/ajax-api/2.0']) {
          const paged: string[] = []
          let token: string | undefined
          for (let page = 0; page < 500; page++) {
            const answer =
              method === 'GET'
                ? await mallory('GET', `${prefix}/mlflow/experiments/search?${q({max_results: '1', ...(token ? {page_token: token} : {})})}`)
                : await mallory('POST', `${prefix}/mlflow/experiments/search`, {body: {max_results: 1, ...(token ? {page_token: token} : {})}})
            const items = await listed(answer, 'experiments', 'experiment_id')
            assert.ok(items.length <= 1)
            paged.push(...items)
            token = answer.json?.next_page_token
            if (!token) break
          }

          assert.equal(token, undefined, 'the paging ended')
          assert.ok(!paged.includes(exp), `paged ${method} ${prefix} experiments/search lists the owner's experiment`)
          assert.ok(paged.includes(w.malloryExperimentId) && paged.includes(w.publicExperimentId))
        }
      }

      const byName = await mallory('POST', '/api/2.0/mlflow/experiments/search', {body: {filter: `name = '${w.experimentName}'`, max_results: 10}})
      assert.deepEqual(await listed(byName, 'experiments', 'experiment_id'), [])
      const byLike = await mallory(
        'GET',
        `/api/2.0/mlflow/experiments/search?${q({filter: `name LIKE '${w.experimentName.slice(0, -4)}%'`, max_results: '100'})}`,
      )
      assert.deepEqual(await listed(byLike, 'experiments', 'experiment_id'), [])

      // Registered models and model versions.
      const models = await listed(await mallory('GET', `/api/2.0/mlflow/registered-models/search?${q({max_results: '1000'})}`), 'registered_models', 'name')
      assert.ok(!models.includes(model) && models.includes(w.malloryModel), `registered-models/search: ${models.join(',')}`)
      assert.deepEqual(
        await listed(await mallory('GET', `/ajax-api/2.0/mlflow/registered-models/search?${q({filter: `name = '${model}'`})}`), 'registered_models', 'name'),
        [],
      )
      const pagedModels: string[] = []
      let token: string | undefined
      for (let page = 0; page < 500; page++) {
        const answer = await mallory('GET', `/api/2.0/mlflow/registered-models/search?${q({max_results: '1', ...(token ? {page_token: token} : {})})}`)
        pagedModels.push(...(await listed(answer, 'registered_models', 'name')))
        token = answer.json?.next_page_token
        if (!token) break
      }

      assert.ok(!pagedModels.includes(model) && pagedModels.includes(w.malloryModel))
      for (const prefix of ['/api/2.0', '/ajax-api/2.0']) {
        assert.deepEqual(
          await listed(await mallory('GET', `${prefix}/mlflow/model-versions/search?${q({filter: `name = '${model}'`})}`), 'model_versions', 'name'),
          [],
        )
        assert.ok(
          !(await listed(await mallory('GET', `${prefix}/mlflow/model-versions/search?${q({max_results: '1000'})}`), 'model_versions', 'name')).includes(model),
        )
        assert.deepEqual(
          await listed(await mallory('GET', `${prefix}/mlflow/model-versions/search?${q({filter: `run_id = '${w.runId}'`})}`), 'model_versions', 'name'),
          [],
        )
        // The owner's version made from a run mallory may read is still the owner's model.
        assert.deepEqual(
          await listed(await mallory('GET', `${prefix}/mlflow/model-versions/search?${q({filter: `run_id = '${w.publicRunId}'`})}`), 'model_versions', 'name'),
          [],
        )
      }

      // Runs: only the readable experiments named are searched.
      for (const prefix of ['/api/2.0', '/ajax-api/2.0']) {
        const both = await listed(await mallory('POST', `${prefix}/mlflow/runs/search`, {body: {experiment_ids: [exp, w.publicExperimentId]}}), 'runs', 'info')
        assert.equal(both.length, 1)
        const mixed = await mallory('POST', `${prefix}/mlflow/runs/search`, {body: {experiment_ids: [exp, w.publicExperimentId]}})
        assert.deepEqual(
          (mixed.json?.runs as Json[]).map((r) => r.info.run_id),
          [w.publicRunId],
        )
        assert.deepEqual(await listed(await mallory('POST', `${prefix}/mlflow/runs/search`, {body: {experiment_ids: [exp]}}), 'runs', 'info'), [])
        assert.deepEqual(await listed(await mallory('POST', `${prefix}/mlflow/runs/search`, {body: {experimentIds: [exp]}}), 'runs', 'info'), [])
        assert.deepEqual(await listed(await mallory('POST', `${prefix}/mlflow/runs/search`, {body: {experiment_ids: exp}}), 'runs', 'info'), [])
        assert.deepEqual(await listed(await mallory('POST', `${prefix}/mlflow/runs/search`, {body: {}}), 'runs', 'info'), [])
        assert.deepEqual(
          await listed(
            await mallory('POST', `${prefix}/mlflow/runs/search`, {body: {experiment_ids: [exp], filter: `attributes.run_id = '${w.runId}'`}}),
            'runs',
            'info',
          ),
          [],
        )
        // Logged models.
        const lms = await listed(
          await mallory('POST', `${prefix}/mlflow/logged-models/search`, {body: {experiment_ids: [exp, w.malloryExperimentId]}}),
          'models',
          'info',
        )
        assert.equal(lms.length, 1)
        const lmAnswer = await mallory('POST', `${prefix}/mlflow/logged-models/search`, {body: {experiment_ids: [exp, w.malloryExperimentId]}})
        assert.deepEqual(
          (lmAnswer.json?.models as Json[]).map((item) => item.info.model_id),
          [w.malloryLoggedModelId],
        )
        assert.deepEqual(await listed(await mallory('POST', `${prefix}/mlflow/logged-models/search`, {body: {experiment_ids: [exp]}}), 'models', 'info'), [])
      }

      // Traces: a search naming the owner's experiment is denied, alone or with a readable one.
      const location = (id: string) => ({mlflow_experiment: {experiment_id: id}, type: 'MLFLOW_EXPERIMENT'})
      for (const prefix of ['/api/3.0', '/ajax-api/3.0']) {
        await refused(403, 'POST', `${prefix}/mlflow/traces/search`, {body: {locations: [location(exp)]}})
        await refused(403, 'POST', `${prefix}/mlflow/traces/search`, {body: {locations: [location(w.malloryExperimentId), location(exp)]}})
        await refused(400, 'POST', `${prefix}/mlflow/traces/search`, {body: {}})
        await refused(403, 'POST', `${prefix}/mlflow/traces/metrics`, {body: {experiment_ids: [exp], metric_name: 'trace_count', view_type: 'TRACES'}})
        await refused(403, 'GET', `${prefix}/mlflow/traces/batchGet?${q({trace_ids: w.traceId})}`)
        await refused(403, 'POST', `${prefix}/mlflow/traces/batchGetInfos`, {body: {trace_ids: [w.traceId]}})
      }

      for (const prefix of ['/api/2.0', '/ajax-api/2.0']) {
        await refused(403, 'GET', `${prefix}/mlflow/traces?${q({experiment_ids: exp})}`)
        await refused(403, 'GET', `${prefix}/mlflow/traces?${q({experiment_ids: [w.malloryExperimentId, exp]})}`)
      }

      // GraphQL: denied, or answered with the owner's fields left empty.
      const run = w.runId
      const runFields = 'run { info { runId experimentId runName } data { metrics { key value } params { key value } tags { key value } } }'
      const queries: Json[] = [
        {query: `{ mlflowGetRun(input: {runId: "${run}"}) { ${runFields} } }`},
        {query: `{ mlflowGetRun(input: {runUuid: "${run}"}) { ${runFields} } }`},
        {
          query: `{ mlflowSearchRuns(input: {experimentIds: ["${exp}"]}) { runs { info { runId runName } data { metrics { key value } params { key value } } } } }`,
        },
        {query: `{ mlflowGetExperiment(input: {experimentId: "${exp}"}) { experiment { experimentId name } } }`},
        {query: `{ mlflowListArtifacts(input: {runId: "${run}"}) { files { path } } }`},
        {query: `{ mlflowGetMetricHistoryBulkInterval(input: {runIds: ["${run}"], metricKey: "${w.metricKey}"}) { metrics { key value } } }`},
        {query: `{ mlflowSearchModelVersions(input: {filter: "name = '${model}'"}) { modelVersions { name version source } } }`},
        // Aliases, variables, fragments and operation names carry the same ids.
        {
          query: `{ mine: mlflowGetRun(input: {runId: "${w.malloryRunId}"}) { run { info { runId } } } theirs: mlflowGetRun(input: {runId: "${run}"}) { ${runFields} } }`,
        },
        {query: 'query Q($id: String) { mlflowGetRun(input: {runId: $id}) { ' + runFields + ' } }', variables: {id: run}},
        {query: 'query Q($input: MlflowGetRunInput) { mlflowGetRun(input: $input) { ' + runFields + ' } }', variables: {input: {runId: run}}},
        {query: `query Q($id: String = "${run}") { mlflowGetRun(input: {runId: $id}) { ${runFields} } }`},
        {query: `query { ...F } fragment F on Query { mlflowGetRun(input: {runId: "${run}"}) { ${runFields} } }`},
        {
          operationName: 'B',
          query: `query A { mlflowGetRun(input: {runId: "${w.malloryRunId}"}) { run { info { runId } } } } query B { mlflowGetRun(input: {runId: "${run}"}) { ${runFields} } }`,
        },
        // A run mallory may read, and the owner's model versions nested in it.
        {query: `{ mlflowGetRun(input: {runId: "${w.publicRunId}"}) { run { info { runId } modelVersions { name version source runId } } } }`},
        {query: `{ mlflowSearchRuns(input: {experimentIds: ["${w.publicExperimentId}"]}) { runs { info { runId } modelVersions { name version source } } } }`},
      ]
      for (const body of queries) {
        for (const answer of [
          await mallory('POST', '/graphql', {body}),
          await mallory(
            'GET',
            `/graphql?${q(Object.fromEntries(Object.entries(body).map(([key, value]) => [key, typeof value === 'string' ? value : JSON.stringify(value)])))}`,
          ),
        ]) {
          assertNoSecrets(w, answer)
          if (answer.status !== 200) {
            assertNoLeak(w, answer, [400, 403])
            continue
          }

          // Answered: nothing of the owner's is in it (checked above), and it is a GraphQL answer.
          assert.ok(answer.json?.data && typeof answer.json.data === 'object', describeAnswer(answer))
        }
      }
    })

    it('side doors: signup, user creation, unauthenticated APIs, wrong passwords and forged identity headers', async () => {
      await refused(403, 'GET', '/signup')
      const newUser = uniqueName('squatter')
      await refused(403, 'POST', '/api/2.0/mlflow/users/create-ui', {
        body: q({password: 'squatter-password-1', username: newUser}),
        contentType: 'application/x-www-form-urlencoded',
      })
      await refused(403, 'POST', '/api/2.0/mlflow/users/create', {body: {password: 'squatter-password-1', username: newUser}})
      await refused(403, 'POST', '/ajax-api/2.0/mlflow/users/create', {body: {password: 'squatter-password-1', username: newUser}})
      await refused(403, 'PATCH', '/api/2.0/mlflow/users/update-admin', {body: {is_admin: true, username: w.mallory.username}})
      await refused(403, 'PATCH', '/api/2.0/mlflow/users/update-password', {body: {password: 'owner-password-stolen', username: w.owner.username}})
      await refused(403, 'DELETE', '/api/2.0/mlflow/users/delete', {body: {username: w.owner.username}})
      // Granting herself the owner's resources.
      await refused(403, 'POST', '/api/2.0/mlflow/experiments/permissions/create', {
        body: {experiment_id: w.experimentId, permission: 'MANAGE', username: w.mallory.username},
      })
      await refused(403, 'PATCH', '/api/2.0/mlflow/experiments/permissions/update', {
        body: {experiment_id: w.experimentId, permission: 'MANAGE', username: w.mallory.username},
      })
      await refused(403, 'DELETE', '/api/2.0/mlflow/experiments/permissions/delete', {body: {experiment_id: w.experimentId, username: w.mallory.username}})
      await refused(403, 'POST', '/api/2.0/mlflow/registered-models/permissions/create', {
        body: {name: w.model, permission: 'MANAGE', username: w.mallory.username},
      })
      await refused(403, 'DELETE', '/api/2.0/mlflow/registered-models/permissions/delete', {body: {name: w.model, username: w.mallory.username}})
      await refused(403, 'POST', '/api/3.0/mlflow/users/permissions/grant', {
        body: {permission: 'MANAGE', resource_id: w.experimentId, resource_type: 'experiment', username: w.mallory.username},
      })
      assert.equal((await admin('GET', `/api/2.0/mlflow/users/get?${q({username: newUser})}`)).status, 404, 'no user was created')

      // Nothing answers without credentials.
      const unauthenticated: Array<[string, string, Send?]> = [
        ['GET', '/ajax-api/3.0/jobs/search'],
        ['POST', '/ajax-api/3.0/jobs/search', {body: {}}],
        ['POST', '/ajax-api/3.0/jobs/', {body: {function_fullname: 'os.system', params: {}}}],
        ['POST', '/v1/traces', {body: Buffer.from([0x0a, 0x00]), contentType: 'application/x-protobuf', headers: {'x-mlflow-experiment-id': w.experimentId}}],
        ['POST', '/gateway/mlflow/v1/chat/completions', {body: {messages: [], model: 'x'}}],
        ['GET', '/gateway/x/mlflow/invocations'],
        ['GET', `/graphql?${q({query: '{ mlflowSearchExperiments(input: {}) { experiments { name } } }'})}`],
        ['POST', '/graphql', {body: {query: `{ mlflowGetRun(input: {runId: "${w.runId}"}) { run { info { runName } } } }`}}],
        ['GET', '/api/2.0/mlflow/experiments/search'],
        ['GET', `/get-artifact?${q({path: 'secret.txt', run_id: w.runId})}`],
        ['GET', '/api/2.0/mlflow/x'],
        ['GET', '/signup'],
        ['POST', '/api/2.0/mlflow/users/create', {body: {password: 'squatter-password-1', username: newUser}}],
      ]
      for (const [method, path, options] of unauthenticated) {
        const answer = await anonymous(method, path, options)
        assertNoLeak(w, answer, 401)
        assert.match(String(answer.headers['www-authenticate']), /^Basic realm="mlflow"$/, describeAnswer(answer))
      }

      // Wrong and malformed credentials.
      const runPath = `/api/2.0/mlflow/runs/get?${q({run_id: w.runId})}`
      const wrong = [
        basic({password: 'wrong-password', username: w.mallory.username}),
        basic({password: 'wrong-password', username: w.owner.username}),
        basic({password: 'password1234', username: 'admin'}),
        basic({password: '', username: 'admin'}),
        basic({password: w.owner.password, username: w.owner.username.toUpperCase()}),
        basic({password: `${w.owner.password} `, username: w.owner.username}),
        `Basic ${Buffer.from(w.owner.username).toString('base64')}`,
        `Bearer ${w.owner.password}`,
        `Basic ${Buffer.from(`${w.owner.username}:${w.owner.password}`).toString('base64')}!`,
      ]
      for (const authorization of wrong) {
        const answer = await send(w.serve.url, undefined, 'GET', runPath, {headers: {authorization}})
        assertNoLeak(w, answer, 401)
      }

      // Identity headers from mallory give her nothing.
      const forged = {'remote-user': 'admin', 'x-forwarded-user': 'admin', 'x-mlflow-user': 'admin', 'x-remote-user': 'admin', 'x-user': 'admin'}
      await refused(403, 'GET', runPath, {headers: forged})
      await refused(403, 'GET', '/api/2.0/mlflow/users/list', {headers: forged})
      await refused(403, 'POST', '/api/2.0/mlflow/users/create', {body: {password: 'squatter-password-1', username: newUser}, headers: forged})
      await refused(403, 'GET', '/api/2.0/mlflow/x', {headers: forged})
      await refused(403, 'GET', `/api/2.0/mlflow/runs/get?${q({run_id: w.runId})}`, {headers: {'x-forwarded-user': w.owner.username}})
      const anonymousForged = await send(w.serve.url, undefined, 'GET', runPath, {headers: forged})
      assertNoLeak(w, anonymousForged, 401)
      // And the families that authenticate-only in MLflow are admin only for her.
      await refused(403, 'GET', '/ajax-api/3.0/jobs/search')
      await refused(403, 'POST', '/v1/traces', {
        body: Buffer.from([0x0a, 0x00]),
        contentType: 'application/x-protobuf',
        headers: {'x-mlflow-experiment-id': w.experimentId},
      })
      await refused(403, 'POST', '/gateway/mlflow/v1/chat/completions', {body: {messages: [], model: 'x'}})
    })

    it("file and URL inputs: model-version sources, artifact locations and webhooks cannot reach the owner's data", async () => {
      const {experimentId: exp, loggedModelId: lm, malloryExperimentId: mineExp, malloryModel: mineModel, malloryRunId: mine, model, runId: run} = w
      const sources: Array<{model_id?: string; run_id?: string; source: string}> = [
        {run_id: run, source: `runs:/${run}/model`},
        {source: `runs:/${run}/model`},
        {run_id: mine, source: `runs:/${run}/model`},
        {run_id: mine, source: `runs:/${mine}/../../${run}/artifacts`},
        {run_id: mine, source: `runs:/${mine}/%2E%2E/%2E%2E/${run}/artifacts`},
        {run_id: mine, source: `mlflow-artifacts:/${exp}/${run}/artifacts`},
        {source: `mlflow-artifacts:/${exp}/${run}/artifacts`},
        {source: `mlflow-artifacts://127.0.0.1/${exp}/${run}/artifacts`},
        {source: `mlflow-artifacts:${exp}/${run}/artifacts`},
        {run_id: mine, source: `mlflow-artifacts:/${mineExp}/../${exp}/${run}/artifacts`},
        {run_id: mine, source: `mlflow-artifacts:/${mineExp}/%2E%2E/${exp}/${run}/artifacts`},
        {run_id: mine, source: `mlflow-artifacts:/${mineExp}/${mine}/artifacts/%2E%2E/%2E%2E/%2E%2E/${exp}/${run}/artifacts`},
        {source: `models:/${lm}`},
        {model_id: lm, source: `models:/${lm}`},
        {model_id: lm, source: `mlflow-artifacts:/${exp}/models/${lm}/artifacts`},
        {model_id: lm, source: `mlflow-artifacts:/${mineExp}/${mine}/artifacts`},
        {model_id: lm, run_id: mine, source: `mlflow-artifacts:/${mineExp}/${mine}/artifacts`},
        {model_id: lm, source: `models:/${w.malloryLoggedModelId}`},
        {source: `models:/${model}/1`},
        {source: `models:/${encodeURIComponent(model)}/1`},
        {source: `models:/${model}@champion`},
        {run_id: mine, source: `file://${w.upstreamDir}/artifacts/${exp}/${run}/artifacts`},
        {run_id: mine, source: `${w.upstreamDir}/artifacts/${exp}/${run}/artifacts`},
        {source: `file:///etc`},
        {source: 's3://owner-bucket/secret'},
        {source: 'http://127.0.0.1:1/secret'},
      ]
      for (const body of sources) {
        for (const prefix of ['/api/2.0', '/ajax-api/2.0']) {
          const answer = await refused(undefined, 'POST', `${prefix}/mlflow/model-versions/create`, {body: {name: mineModel, ...body}})
          assert.notEqual(answer.status, 404, describeAnswer(answer))
        }
      }

      const versions = await mallory('GET', `/api/2.0/mlflow/model-versions/search?${q({filter: `name = '${mineModel}'`})}`)
      assert.equal(versions.status, 200, describeAnswer(versions))
      assert.deepEqual(versions.json?.model_versions ?? [], [], "no model version was created in mallory's model")
      // A source mallory may read is accepted: the refusals above are about the source.
      const fine = await mallory('POST', '/api/2.0/mlflow/model-versions/create', {
        body: {name: mineModel, run_id: mine, source: `mlflow-artifacts:/${mineExp}/${mine}/artifacts`},
      })
      assert.equal(fine.status, 200, describeAnswer(fine))

      // Webhooks would make the server fetch URLs mallory chooses: admin only.
      for (const prefix of ['/api/2.0', '/ajax-api/2.0']) {
        await refused(403, 'POST', `${prefix}/mlflow/webhooks`, {
          body: {events: [{action: 'created', entity: 'model_version'}], name: 'pwn', url: 'http://127.0.0.1:1/hook'},
        })
        await refused(403, 'GET', `${prefix}/mlflow/webhooks`)
        await refused(403, 'POST', `${prefix}/mlflow/webhooks/x/test`, {body: {}})
      }
    })

    it("file and URL inputs: an experiment artifact_location inside the owner's artifacts lets mallory write nothing there", async () => {
      const {experimentId: exp, runId: run} = w
      const locations = [
        `mlflow-artifacts:/${exp}/${run}/artifacts`,
        `mlflow-artifacts:/${exp}`,
        `mlflow-artifacts:/${w.malloryExperimentId}/../${exp}/${run}/artifacts`,
        `file://${w.upstreamDir}/artifacts/${exp}/${run}/artifacts`,
      ]
      const problems: string[] = []
      let reference = {experimentArtifacts: baseline.experimentArtifacts, runArtifacts: baseline.runArtifacts}
      for (const location of locations) {
        const created = await mallory('POST', '/api/2.0/mlflow/experiments/create', {body: {artifact_location: location, name: uniqueName('squat')}})
        // mallory wrote the owner's ids into the location herself: they may come back in root URIs.
        const noSecrets = (answer: Answer) => assertNoSecrets(w, {...answer, sent: `${answer.sent} ${location}`})
        noSecrets(created)
        if (created.status !== 200) {
          assertNoLeak(w, created)
          continue
        }

        // Accepted: nothing mallory does in it may read or write the owner's artifacts.
        const squat = created.json!.experiment_id as string
        const squatRunId = (await ok(mallory('POST', '/api/2.0/mlflow/runs/create', {body: {experiment_id: squat}}), 'a run in the squatting experiment')).run
          .info.run_id as string
        noSecrets(await mallory('GET', `/api/2.0/mlflow/artifacts/list?${q({run_id: squatRunId})}`))
        for (const path of ['../../secret.txt', '../../../secret.txt', '%2E%2E/%2E%2E/secret.txt']) {
          noSecrets(await mallory('GET', `/get-artifact?${q({path, run_id: squatRunId})}`))
          noSecrets(await mallory('GET', `/api/2.0/mlflow/artifacts/list?${q({path, run_id: squatRunId})}`))
        }

        const upload = await mallory('POST', `/ajax-api/2.0/mlflow/upload-artifact?${q({path: 'squatter.txt', run_uuid: squatRunId})}`, {
          body: 'squatter',
          contentType: 'application/octet-stream',
        })
        noSecrets(upload)
        const view = await ownerView(w)
        const now = {experimentArtifacts: view.experimentArtifacts, runArtifacts: view.runArtifacts}
        if (!isDeepStrictEqual(now, reference)) {
          problems.push(
            `experiments/create {artifact_location: ${location}} → ${created.status}, then upload-artifact to her run ${squatRunId} → ${upload.status}: the owner's listings became ${JSON.stringify(now)}`,
          )
        }

        reference = now
      }

      assert.deepEqual(problems, [], "mallory's uploads landed in the owner's artifacts")
    })

    it("file and URL inputs: a trace's artifact location tag cannot point mallory's trace at the owner's trace data", async () => {
      const ownerLocation = `mlflow-artifacts:/${w.experimentId}/traces/${w.traceId}/artifacts`
      const mine = `tr-${randomBytes(16).toString('hex')}`
      const info = (traceId: string, tags: Record<string, string>) => ({
        execution_duration: '1s',
        request_time: '2024-01-01T00:00:00Z',
        state: 'OK',
        tags,
        trace_id: traceId,
        trace_location: {mlflow_experiment: {experiment_id: w.malloryExperimentId}, type: 'MLFLOW_EXPERIMENT'},
      })
      await ok(mallory('POST', '/api/3.0/mlflow/traces', {body: {trace: {trace_info: info(mine, {})}}}), 'mallory starts a trace in her experiment')
      // The location given at the start, and set afterwards through both tag routes.
      const started = `tr-${randomBytes(16).toString('hex')}`
      const start = await mallory('POST', '/api/3.0/mlflow/traces', {body: {trace: {trace_info: info(started, {'mlflow.artifactLocation': ownerLocation})}}})
      assertNoSecrets(w, start)
      const setV3 = await mallory('PATCH', `/api/3.0/mlflow/traces/${mine}/tags`, {body: {key: 'mlflow.artifactLocation', value: ownerLocation}})
      assertNoSecrets(w, setV3)
      const setV2 = await mallory('PATCH', `/api/2.0/mlflow/traces/${mine}/tags`, {body: {key: 'mlflow.artifactLocation', value: ownerLocation}})
      assertNoSecrets(w, setV2)
      const startV2 = await mallory('POST', '/api/2.0/mlflow/traces', {
        body: {
          experiment_id: w.malloryExperimentId,
          request_metadata: [],
          tags: [{key: 'mlflow.artifactLocation', value: ownerLocation}],
          timestamp_ms: 1_700_000_000_000,
        },
      })
      assertNoSecrets(w, startV2)
      const startedV2 = startV2.json?.trace_info?.request_id as string | undefined
      const leaks: string[] = []
      for (const traceId of [mine, started, ...(startedV2 ? [startedV2] : [])]) {
        for (const path of [
          `/ajax-api/2.0/mlflow/get-trace-artifact?${q({request_id: traceId})}`,
          `/ajax-api/3.0/mlflow/get-trace-artifact?${q({request_id: traceId})}`,
          `/api/3.0/mlflow/traces/batchGet?${q({trace_ids: traceId})}`,
          `/api/3.0/mlflow/traces/get?${q({trace_id: traceId})}`,
        ]) {
          const answer = await mallory('GET', path)
          if (answer.text.includes(w.traceArtifact)) leaks.push(describeAnswer(answer))
          else assertNoSecrets(w, {...answer, sent: `${answer.sent} ${ownerLocation}`})
        }
      }

      assert.deepEqual(
        leaks,
        [],
        `mallory reads the owner's trace data through her own traces (v3 start with the tag → ${start.status}, PATCH v3 tags → ${setV3.status}, PATCH v2 tags → ${setV2.status}, v2 start with the tag → ${startV2.status})`,
      )
    })

    it('found in review: a # in the target, a second id in the body, an existing trace id, OTLP, assessment overrides, workspaces', async () => {
      // Node's URL drops what follows a #, MLflow's server keeps it in the query: refused outright.
      await refused(
        400,
        'GET',
        `/ajax-api/2.0/mlflow/metrics/get-history-bulk?${q({metric_key: w.metricKey, run_id: w.malloryRunId})}&z=#&${q({run_id: w.runId})}`,
      )
      await refused(400, 'GET', `/api/3.0/mlflow/traces/batchGet?${q({trace_ids: 'tr-0'})}&z=#&${q({trace_ids: w.traceId})}`)
      // MLflow finalizes the logged model named in the body, whatever the path says.
      await refused(403, 'PATCH', `/api/2.0/mlflow/logged-models/${w.malloryLoggedModelId}`, {body: {model_id: w.loggedModelId, status: 'LOGGED_MODEL_FAILED'}})
      // A v3 start that reuses the owner's trace id would move the owner's trace into mallory's experiment.
      const info = (traceId: string, assessments: Json[] = []) => ({
        assessments,
        execution_duration: '1s',
        request_time: '2024-01-01T00:00:00Z',
        state: 'OK',
        trace_id: traceId,
        trace_location: {mlflow_experiment: {experiment_id: w.malloryExperimentId}, type: 'MLFLOW_EXPERIMENT'},
      })
      await refused(403, 'POST', '/api/3.0/mlflow/traces', {body: {trace: {trace_info: info(w.traceId)}}})
      const mine = `tr-${randomBytes(16).toString('hex')}`
      const foreignAssessment = {assessment_name: 'x', feedback: {value: 1}, source: {source_id: 'm', source_type: 'HUMAN'}, trace_id: w.traceId}
      await refused(403, 'POST', '/api/3.0/mlflow/traces', {body: {trace: {trace_info: info(mine, [foreignAssessment])}}})
      await ok(mallory('POST', '/api/3.0/mlflow/traces', {body: {trace: {trace_info: info(mine)}}}), 'mallory starts her own trace')
      // An override must name an assessment of the same trace.
      const assessment = (overrides?: string) => ({
        assessment: {assessment_name: 'quality', feedback: {value: 1}, overrides, source: {source_id: 'mallory', source_type: 'HUMAN'}, trace_id: mine},
      })
      const first = await ok(mallory('POST', `/api/3.0/mlflow/traces/${mine}/assessments`, {body: assessment()}), 'mallory assesses her trace')
      const firstId = (first.assessment as Json).assessment_id as string
      await ok(mallory('POST', `/api/3.0/mlflow/traces/${mine}/assessments`, {body: assessment(firstId)}), 'mallory overrides her own assessment')
      await refused(403, 'POST', `/api/3.0/mlflow/traces/${mine}/assessments`, {body: assessment('a-of-another-trace')})
      // OTLP ingest is decided as MLflow decides it, on the header's experiment and what the spans
      // name (serve-otlp.test.ts): into her own experiment an empty body reaches MLflow, which finds no spans.
      const otlp = await mallory('POST', '/v1/traces', {
        body: Buffer.alloc(0),
        contentType: 'application/x-protobuf',
        headers: {'x-mlflow-experiment-id': w.malloryExperimentId},
      })
      assert.equal(otlp.status, 400, describeAnswer(otlp))
      assert.match(otlp.text, /no spans found/)
      // serve's grants know no workspaces.
      await refused(400, 'GET', `/api/2.0/mlflow/experiments/get?${q({experiment_id: w.malloryExperimentId})}`, {headers: {'x-mlflow-workspace': 'other'}})
    })

    it("the run's after-effects: mallory's creations make her MANAGE of hers only", async () => {
      const grantsOf = async () => {
        const user = await ok(admin('GET', `/api/2.0/mlflow/users/get?${q({username: w.mallory.username})}`), 'users/get')
        return user.user as {experiment_permissions: Json[]; registered_model_permissions: Json[]}
      }

      const before = await grantsOf()
      const created = await ok(
        mallory('POST', '/api/2.0/mlflow/experiments/create', {body: {name: uniqueName('mallory-second')}}),
        'mallory creates an experiment',
      )
      const newExp = created.experiment_id as string
      const newModel = uniqueName('mallory-second-model')
      await ok(mallory('POST', '/ajax-api/2.0/mlflow/registered-models/create', {body: {name: newModel}}), 'mallory creates a model')
      // Names the owner holds: MLflow refuses, and no grant follows the refusal.
      const sameName = await mallory('POST', '/api/2.0/mlflow/experiments/create', {body: {name: w.experimentName}})
      assertNoLeak(w, sameName, 400)
      const sameModel = await mallory('POST', '/api/2.0/mlflow/registered-models/create', {body: {name: w.model}})
      assertNoLeak(w, sameModel, 400)
      const sameModelTwin = await mallory('POST', '/ajax-api/2.0/mlflow/registered-models/create', {body: {name: w.model}})
      assertNoLeak(w, sameModelTwin, 400)
      // Renaming hers onto the owner's name: MLflow refuses, and no grant moves.
      await refused(400, 'POST', '/api/2.0/mlflow/registered-models/rename', {body: {name: newModel, new_name: w.model}})

      const afterwards = await grantsOf()
      const key = (grant: Json) => JSON.stringify(grant)
      assert.deepEqual(
        afterwards.experiment_permissions.map(key).sort(),
        [
          ...before.experiment_permissions,
          {experiment_id: newExp, permission: 'MANAGE', user_id: afterwards.experiment_permissions.find((g) => g.experiment_id === newExp)?.user_id},
        ]
          .map(key)
          .sort(),
      )
      assert.deepEqual(
        afterwards.registered_model_permissions.map((g) => [g.name, g.permission]).sort(),
        [...before.registered_model_permissions.map((g) => [g.name, g.permission]), [newModel, 'MANAGE']].sort(),
      )
      assert.deepEqual(afterwards.experiment_permissions.find((g) => g.experiment_id === w.experimentId)?.permission, 'NO_PERMISSIONS')
      assert.deepEqual(afterwards.registered_model_permissions.find((g) => g.name === w.model)?.permission, 'NO_PERMISSIONS')
      assert.equal((await mallory('GET', `/api/2.0/mlflow/experiments/get?${q({experiment_id: newExp})}`)).status, 200)
      await refused(403, 'GET', `/api/2.0/mlflow/experiments/get?${q({experiment_id: w.experimentId})}`)
      await refused(403, 'GET', `/api/2.0/mlflow/registered-models/get?${q({name: w.model})}`)
    })
  })
}
