/**
 * A submit of a server-side job by function name, decided per function (job-submit.ts), against a
 * fake MLflow that knows one run, two traces, a dataset and a gateway endpoint. Each refusal must
 * leave MLflow without a submit; each accepted submit is forwarded once and its submitter recorded.
 */
import assert from 'node:assert/strict'
import {mkdtemp, writeFile} from 'node:fs/promises'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {after, before, describe, it} from 'node:test'

import {answerJson, call, type Pipeline, parseJson, startPipeline, type Who} from '../support/serve-pipeline.js'

const JOBS = '/ajax-api/3.0/jobs'
const alice: Who = {password: 'alice-password-long-enough', username: 'alice'}
const RUN = 'a'.repeat(32)
const OTHER_RUN = 'b'.repeat(32)

let pipeline: Pipeline
let submits = 0
let invokes = 0
let traceLookups = 0
/** The next submit MLflow answers with this status (and a job id all the same); 0: accepts it. */
let refuseNextSubmit = 0
const INVOKE = '/ajax-api/3.0/mlflow/issues/invoke'

/** Experiment 1 holds RUN and trace tr-1; experiment 2 holds OTHER_RUN and tr-2. Endpoint `judge` is e-1; dataset d-1 is linked to experiment 1. */
function fakeMlflow(on: Pipeline): void {
  on.upstream.handle((request, response) => {
    const route = `${request.method} ${request.url.pathname}`
    const query = request.url.searchParams
    if (route === `POST ${INVOKE}`) {
      invokes++
      answerJson(response, 200, {job_id: `job-i${invokes}`, run_id: RUN})
    } else if (route === `POST ${JOBS}/` && refuseNextSubmit !== 0) {
      answerJson(response, refuseNextSubmit, {error_code: 'INVALID_PARAMETER_VALUE', job_id: 'job-refused', message: 'refused'})
      refuseNextSubmit = 0
    } else if (route === `POST ${JOBS}/`) {
      submits++
      answerJson(response, 200, {creator: null, job_id: `job-${submits}`, status: 'PENDING'})
    } else if (route.startsWith(`GET ${JOBS}/job-`)) {
      answerJson(response, 200, {job_id: request.url.pathname.slice(JOBS.length + 1)})
    } else if (route === 'GET /api/2.0/mlflow/runs/get') {
      const experiment = {[RUN]: '1', [OTHER_RUN]: '2'}[query.get('run_id') ?? '']
      if (experiment) answerJson(response, 200, {run: {info: {experiment_id: experiment}}})
      else answerJson(response, 404, {error_code: 'RESOURCE_DOES_NOT_EXIST'})
    } else if (route.startsWith('GET /api/3.0/mlflow/traces/tr-')) {
      traceLookups++
      const experiment = {'tr-1': '1', 'tr-2': '2'}[request.url.pathname.split('/').at(-1)!]
      if (experiment) answerJson(response, 200, {trace: {trace_info: {trace_location: {mlflow_experiment: {experiment_id: experiment}}}}})
      else answerJson(response, 404, {error_code: 'RESOURCE_DOES_NOT_EXIST'})
    } else if (route === 'GET /api/3.0/mlflow/gateway/endpoints/get') {
      if (query.get('name') === 'judge') answerJson(response, 200, {endpoint: {endpoint_id: 'e-1', name: 'judge'}})
      else answerJson(response, 404, {error_code: 'RESOURCE_DOES_NOT_EXIST'})
    } else if (route === 'GET /api/3.0/mlflow/datasets/d-1/experiment-ids') {
      answerJson(response, 200, {experiment_ids: ['1']})
    } else {
      answerJson(response, 404, {error_code: 'ENDPOINT_NOT_FOUND'})
    }
  })
}

const issueDetection = (params: Record<string, unknown> = {}) => ({
  job_name: 'invoke_issue_detection',
  params: {categories: ['correctness'], experiment_id: '1', model: 'gateway:/judge', run_id: RUN, trace_ids: ['tr-1'], ...params},
})
const optimization = (params: Record<string, unknown> = {}) => ({
  job_name: 'optimize_prompts',
  params: {
    dataset_id: 'd-1',
    experiment_id: '1',
    optimizer_config: {reflection_model: 'gateway:/judge'},
    optimizer_type: 'gepa',
    prompt_uri: 'prompts:/p/1',
    run_id: RUN,
    scorer_names: ['Correctness'],
    ...params,
  },
})

async function rowsFor(who: Who, rows: {permission: string; resource_pattern: string; resource_type: string}[], on = pipeline): Promise<void> {
  const admin = {credentials: on.admin}
  const roles = parseJson(await call(on.url, 'GET', `/api/3.0/mlflow/users/roles/list?username=${who.username}`, admin)).roles as {id: number}[]
  for (const row of rows) {
    const added = await call(on.url, 'POST', '/api/3.0/mlflow/roles/permissions/add', {...admin, body: {...row, role_id: roles[0].id}})
    assert.equal(added.status, 200, added.body)
  }
}

/** Submits as `who`; asserts the status, and that MLflow saw a submit exactly when it was accepted. */
async function submit(who: Who, body: unknown, status: number, on = pipeline): Promise<string> {
  const before = submits
  const answer = await call(on.url, 'POST', `${JOBS}/`, {body, credentials: who})
  assert.equal(answer.status, status, `${JSON.stringify(body)}: ${answer.body}`)
  assert.equal(submits, before + (status === 200 ? 1 : 0), 'submits MLflow saw')
  return answer.body
}

describe('submitting a job by function name, per function', () => {
  before(async () => {
    pipeline = await startPipeline()
    fakeMlflow(pipeline)
    // alice: EDIT on experiment 1 (its run, traces, dataset), READ on 2; USE on endpoint e-1; EDIT on prompt p.
    await pipeline.createUser(alice, {'1': 'EDIT', '2': 'READ'})
    await rowsFor(alice, [
      {permission: 'USE', resource_pattern: 'e-1', resource_type: 'gateway_endpoint'},
      {permission: 'EDIT', resource_pattern: 'p', resource_type: 'prompt'},
    ])
  })

  after(() => pipeline.close())

  it('lets a non-admin with the grants submit invoke_issue_detection and optimize_prompts, and records her as the submitter', async () => {
    for (const body of [
      issueDetection(),
      issueDetection({model: null}),
      issueDetection({model: 'openai:/gpt-4o'}),
      optimization(),
      optimization({dataset_id: '', optimizer_config: null}),
    ]) {
      const jobId = (JSON.parse(await submit(alice, body, 200)) as {job_id: string}).job_id
      const read = await call(pipeline.url, 'GET', `${JOBS}/${jobId}`, {credentials: alice})
      assert.equal(read.status, 200, `alice reads ${jobId}: the submitter was recorded`)
    }

    // Without a model: MLflow's default judge. Without the optional parameter at all, too.
    const {model: _model, ...withoutModel} = issueDetection().params
    await submit(alice, {job_name: 'invoke_issue_detection', params: withoutModel}, 200)
  })

  it('does not record the submitter of a submit MLflow refuses, whatever job id its answer carries', async () => {
    for (const status of [400, 500]) {
      refuseNextSubmit = status
      const answer = await call(pipeline.url, 'POST', `${JOBS}/`, {body: issueDetection(), credentials: alice})
      assert.equal(answer.status, status, answer.body)
      const read = await call(pipeline.url, 'GET', `${JOBS}/job-refused`, {credentials: alice})
      assert.equal(read.status, 403, `alice reads the job of a refused submit: ${read.body}`)
    }
  })

  it('refuses (403) a submit missing any permission it needs, each lacking one alone', async () => {
    // Traces in experiment 2 too: the trace binding holds, only EDIT on the experiment is missing.
    await submit(alice, issueDetection({experiment_id: '2', trace_ids: ['tr-2']}), 403) // EDIT on the experiment
    await submit(alice, issueDetection({run_id: OTHER_RUN}), 403) // EDIT on the run
    await submit(alice, issueDetection({run_id: 'c'.repeat(32)}), 403) // a run that does not exist
    await submit(alice, issueDetection({trace_ids: ['tr-1', 'tr-2']}), 403) // a trace of another experiment
    await submit(alice, issueDetection({trace_ids: ['tr-9']}), 403) // a trace that does not exist
    await submit(alice, issueDetection({model: 'gateway:/unknown'}), 403) // an endpoint that does not exist
    await submit(alice, optimization({experiment_id: '2'}), 403)
    await submit(alice, optimization({run_id: OTHER_RUN}), 403)
    await submit(alice, optimization({dataset_id: 'd-9'}), 403) // a dataset linked to nothing (or none)
    await submit(alice, optimization({prompt_uri: 'prompts:/p'}), 403) // names no prompt
  })

  it('refuses what a deny or a missing USE takes away: the trace tier, the endpoint, the prompt, a scorer, the reflection endpoint', async () => {
    const bob: Who = {password: 'bob-password-long-enough', username: 'bob'}
    await pipeline.createUser(bob, {'1': 'EDIT'})
    // No USE on e-1 (EDIT on an experiment grants none on endpoints); without a gateway model it passes.
    await submit(bob, issueDetection(), 403)
    await submit(bob, issueDetection({model: 'anthropic:/claude'}), 200)
    await rowsFor(bob, [
      {permission: 'DENY', resource_pattern: '*', resource_type: 'trace'},
      {permission: 'DENY', resource_pattern: 'p', resource_type: 'prompt'},
      {permission: 'DENY', resource_pattern: '1/Correctness', resource_type: 'scorer'},
      {permission: 'DENY', resource_pattern: 'e-1', resource_type: 'gateway_endpoint'},
    ])
    await submit(bob, issueDetection({model: null}), 403)
    await submit(bob, optimization({optimizer_config: null, scorer_names: []}), 403)
    await submit(bob, optimization({optimizer_config: null, prompt_uri: 'q'}), 403)
    await submit(bob, optimization({prompt_uri: 'q', scorer_names: []}), 403)
    await rowsFor(bob, [{permission: 'EDIT', resource_pattern: 'q', resource_type: 'prompt'}])
    await submit(bob, optimization({optimizer_config: null, prompt_uri: 'q', scorer_names: []}), 200)
  })

  it("refuses (400) a timeout other than none or a positive number of seconds up to a day; an admin's passes", async () => {
    for (const timeout of [60, 0.5, 86_400, null]) await submit(alice, {...issueDetection(), timeout}, 200)
    for (const timeout of ['5', 0, -1, 86_401, 1e300, true, [5], {seconds: 5}]) {
      const body = await submit(alice, {...issueDetection(), timeout}, 400)
      assert.match(body, /'timeout'/)
    }

    // JSON that Python reads as NaN or infinity (and JavaScript not at all, or as Infinity).
    for (const timeout of ['NaN', '1e999', '-Infinity']) {
      const raw = JSON.stringify(issueDetection()).replace(/}$/, `, "timeout": ${timeout}}`)
      await submit(alice, raw, 400)
    }

    await submit(pipeline.admin, {...issueDetection(), timeout: 604_800}, 200)
  })

  it('refuses (400) parameters missing, of the wrong type, or that serve does not know', async () => {
    const {run_id: _run, ...withoutRun} = issueDetection().params
    const {optimizer_config: _config, ...withoutConfig} = optimization().params
    for (const body of [
      {job_name: 'invoke_issue_detection', params: withoutRun},
      {job_name: 'optimize_prompts', params: withoutConfig},
      {job_name: 'invoke_issue_detection', params: null},
      {job_name: 'invoke_issue_detection', params: []},
      {job_name: ['invoke_issue_detection'], params: {}},
      issueDetection({trace_ids: 'tr-1'}),
      issueDetection({trace_ids: []}),
      issueDetection({trace_ids: ['tr-1', 7]}),
      issueDetection({experiment_id: 1}),
      issueDetection({experiment_id: '01'}),
      issueDetection({categories: null}),
      issueDetection({model: 'ollama:/llama3'}),
      issueDetection({model: 'openai:/'}),
      issueDetection({model: 7}),
      issueDetection({runId: RUN}),
      issueDetection({username: 'alice'}),
      optimization({scorer_names: 'Correctness'}),
      optimization({optimizer_config: '{"reflection_model": "gateway:/judge"}'}),
      optimization({prompt_uri: ''}),
      optimization({prompt_uri: 'p\n'}),
      optimization({extra: 1}),
    ])
      await submit(alice, body, 400)
  })

  it("refuses (400) an optimizer_config key that could send the server's provider key elsewhere, naming the key and never its value; an admin's passes", async () => {
    const value = 'http://attacker.invalid/do-not-echo'
    const refused: Array<[Record<string, unknown>, string]> = [
      [{lm_kwargs: {api_base: value}}, 'lm_kwargs.api_base'],
      [{lm_kwargs: {temperature: 0.2, base_url: value}}, 'lm_kwargs.base_url'],
      [{lm_kwargs: {api_key: value}}, 'lm_kwargs.api_key'],
      [{lm_kwargs: {extra_headers: {authorization: value}}}, 'lm_kwargs.extra_headers'],
      [{lm_kwargs: {custom_llm_provider: value}}, 'lm_kwargs.custom_llm_provider'],
      [{lm_kwargs: {model_list: [{litellm_params: {api_base: value}}]}}, 'lm_kwargs.model_list'],
      [{lm_kwargs: {model: value}}, 'lm_kwargs.model'],
      [{lm_kwargs: {timeout: 1e9}}, 'lm_kwargs.timeout'],
      [{lm_kwargs: {n: 100}}, 'lm_kwargs.n'],
      [{gepa_kwargs: {run_dir: value}}, 'gepa_kwargs.run_dir'],
      [{gepa_kwargs: {mlflow_tracking_uri: value}}, 'gepa_kwargs.mlflow_tracking_uri'],
      [{gepa_kwargs: {use_wandb: true, wandb_api_key: value}}, 'gepa_kwargs.use_wandb'],
      [{gepa_kwargs: {use_cloudpickle: true}}, 'gepa_kwargs.use_cloudpickle'],
      [{api_base: value}, 'api_base'],
      // Types: each allowed key only of its JSON type (a value never echoed either).
      [{lm_kwargs: {temperature: value}}, 'lm_kwargs.temperature'],
      [{lm_kwargs: {stop: [1]}}, 'lm_kwargs.stop'],
      [{reflection_model: 'huggingface:/https://attacker.invalid/do-not-echo'}, 'reflection_model'],
      [{lm_kwargs: value}, 'lm_kwargs'],
      [{gepa_kwargs: [value]}, 'gepa_kwargs'],
      [{max_metric_calls: -1}, 'max_metric_calls'],
      [{reflection_model: {provider: value}}, 'reflection_model'],
    ]
    for (const [config, key] of refused) {
      const body = await submit(alice, optimization({optimizer_config: {reflection_model: 'gateway:/judge', ...config}}), 400)
      const error = JSON.parse(body) as {error_code: string; message: string}
      assert.equal(error.error_code, 'INVALID_PARAMETER_VALUE')
      assert.ok(error.message.includes(`"${key}"`), `${error.message} names ${key}`)
      assert.ok(!error.message.includes(value), `${error.message} echoes the value`)
    }

    // Sampling parameters and the search's own settings pass.
    await submit(
      alice,
      optimization({
        optimizer_config: {
          guidelines: 'Be brief.',
          lm_kwargs: {max_completion_tokens: 256, max_tokens: 512, reasoning_effort: 'low', seed: 7, stop: 'END', temperature: 0.2, top_p: 0.9},
          reflection_model: 'gateway:/judge',
        },
        optimizer_type: 'metaprompt',
      }),
      200,
    )
    await submit(
      alice,
      optimization({
        optimizer_config: {
          display_progress_bar: false,
          gepa_kwargs: {candidate_selection_strategy: 'pareto', reflection_minibatch_size: 3, seed: 1, use_merge: true},
          lm_kwargs: null,
          max_metric_calls: 10,
          reflection_model: 'gateway:/judge',
        },
      }),
      200,
    )
    // An admin's configuration is MLflow's to decide: admins own the server's credentials.
    await submit(
      pipeline.admin,
      optimization({optimizer_config: {gepa_kwargs: {run_dir: '/tmp/x'}, lm_kwargs: {api_base: value}, reflection_model: 'openai:/gpt-4o'}}),
      200,
    )
  })

  it("refuses (400) a non-admin's issues/invoke naming a secret for openai or azure (its api_base would be paired with the server's key)", async () => {
    await rowsFor(alice, [{permission: 'USE', resource_pattern: 's-1', resource_type: 'gateway_secret'}])
    const invoke = async (who: Who, fields: Record<string, unknown>, status: number) => {
      const before = invokes
      const body = {categories: ['correctness'], experiment_id: '1', trace_ids: ['tr-1'], ...fields}
      const answer = await call(pipeline.url, 'POST', INVOKE, {body, credentials: who})
      assert.equal(answer.status, status, `${JSON.stringify(fields)}: ${answer.body}`)
      assert.equal(invokes, before + (status === 200 ? 1 : 0), 'invokes MLflow saw')
    }

    for (const provider of ['openai', 'OpenAI', 'azure']) await invoke(alice, {model: 'gpt-4o', provider, secret_id: 's-1'}, 400)
    await invoke(alice, {endpoint_name: 'judge', provider: 'openai', secret_id: 's-1'}, 400)
    // Another provider's secret sets no base URL; without a secret the server's settings are whole.
    await invoke(alice, {model: 'claude', provider: 'anthropic', secret_id: 's-1'}, 200)
    await invoke(alice, {model: 'gpt-4o', provider: 'openai'}, 200)
    await invoke(alice, {endpoint_name: 'judge', provider: 'openai'}, 200)
    await invoke(pipeline.admin, {model: 'gpt-4o', provider: 'openai', secret_id: 's-1'}, 200)
  })

  it('looks each trace up once however often it is named, and refuses (400) more than 1000 distinct traces without a lookup', async () => {
    const many = Array.from({length: 1001}, (_, i) => `tr-${i}`)
    const repeated = Array.from({length: 5000}, () => 'tr-1')
    for (const [path, body] of [
      [`${JOBS}/`, (ids: string[]) => issueDetection({trace_ids: ids})],
      [INVOKE, (ids: string[]) => ({categories: ['correctness'], experiment_id: '1', model: 'gpt-4o', provider: 'openai', trace_ids: ids})],
    ] as const) {
      let before = traceLookups
      assert.equal((await call(pipeline.url, 'POST', path, {body: body(repeated), credentials: alice})).status, 200, path)
      assert.equal(traceLookups - before, 1, `${path}: lookups of a trace named 5000 times`)
      before = traceLookups
      const [submitsBefore, invokesBefore] = [submits, invokes]
      const refused = await call(pipeline.url, 'POST', path, {body: body(many), credentials: alice})
      assert.equal(refused.status, 400, refused.body)
      assert.match(refused.body, /more than 1000/)
      assert.deepEqual([traceLookups - before, submits, invokes], [0, submitsBefore, invokesBefore], `${path}: nothing looked up or forwarded`)
    }
  })

  it('keeps the four scorer functions and any unknown function to admins, whatever the parameters', async () => {
    const params = {experiment_id: '1', run_id: RUN, serialized_scorer: '{}', trace_ids: ['tr-1']}
    for (const name of ['invoke_scorer', 'invoke_genai_evaluate', 'run_online_trace_scorer', 'run_online_session_scorer', 'no_such_function', 'constructor'])
      await submit(alice, {job_name: name, params}, 403)
    // An admin's submit is MLflow's to decide.
    await submit(pipeline.admin, {job_name: 'invoke_scorer', params}, 200)
  })
})

// MLflow 3.17 asks only that the prompt, the scorers and the reflection endpoint not be denied: with
// a default of NO_PERMISSIONS, a caller with no grant on them at all passes. serve asks what the job does.
describe('submitting optimize_prompts under a default of NO_PERMISSIONS', () => {
  let strict: Pipeline
  // carol and dave: EDIT on experiment 1 and prompt p, READ on prompt q and scorer Correctness; dave READ on endpoint e-1.
  const carol: Who = {password: 'carol-password-long-enough', username: 'carol'}
  const dave: Who = {password: 'dave-password-long-enough', username: 'dave'}

  before(async () => {
    strict = await startPipeline({serve: {configPath: await noPermissionsIni()}})
    fakeMlflow(strict)
    for (const who of [carol, dave]) {
      await strict.createUser(who, {'1': 'EDIT'})
      await rowsFor(
        who,
        [
          {permission: 'EDIT', resource_pattern: 'p', resource_type: 'prompt'},
          {permission: 'READ', resource_pattern: 'q', resource_type: 'prompt'},
          {permission: 'READ', resource_pattern: '1/Correctness', resource_type: 'scorer'},
        ],
        strict,
      )
    }

    await rowsFor(dave, [{permission: 'READ', resource_pattern: 'e-1', resource_type: 'gateway_endpoint'}], strict)
  })

  after(() => strict.close())

  it('needs EDIT on the prompt it registers a version of, READ on each scorer, USE on the reflection endpoint', async () => {
    // No grant on endpoint e-1, and READ there: the worker calls it.
    await submit(carol, optimization(), 403, strict)
    await submit(dave, optimization(), 403, strict)
    await rowsFor(carol, [{permission: 'USE', resource_pattern: 'e-1', resource_type: 'gateway_endpoint'}], strict)
    await submit(carol, optimization(), 200, strict)
    // No grant on prompt r, READ only on q: the job reads the prompt and registers a new version of it.
    for (const prompt_uri of ['prompts:/r/1', 'r', 'prompts:/q/1', 'prompts:/q@production', 'q']) await submit(carol, optimization({prompt_uri}), 403, strict)
    // A scorer she has no grant on: the worker would load and run the registered scorer of that name.
    await submit(carol, optimization({scorer_names: ['Correctness', 'Hidden']}), 403, strict)
  })
})

async function noPermissionsIni(): Promise<string> {
  const path = join(await mkdtemp(join(tmpdir(), 'mlflowctl-job-submit-')), 'basic_auth.ini')
  await writeFile(path, '[mlflow]\ndefault_permission = NO_PERMISSIONS\n')
  return path
}
