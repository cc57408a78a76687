import assert from 'node:assert/strict'
import {after, before, describe, it} from 'node:test'

import {checkOptimizerConfig, reflectionEndpoint, sourcePromptNames} from '../../src/server/authz/prompt-optimization.js'
import {ApiError} from '../../src/server/responses.js'
import {answerJson, call, type Pipeline, parseJson, startPipeline, type Who} from '../support/serve-pipeline.js'

// Expected values are what MLflow 3.17.2's own readers (`_source_prompt_names`,
// `_optimizer_gateway_endpoint` in mlflow.server.auth) answer, except where a comment says serve
// refuses more.
describe('sourcePromptNames', () => {
  it('reads a prompts:/ URI as MLflow does: the name before the version, or before the last @', () => {
    assert.deepEqual(sourcePromptNames('prompts:/p/1'), ['p'])
    assert.deepEqual(sourcePromptNames('prompts:/p@prod'), ['p'])
    assert.deepEqual(sourcePromptNames('prompts:/a@b@prod'), ['a@b'])
    assert.deepEqual(sourcePromptNames('prompts:/a@b/2'), ['a@b'])
  })

  it('finds no name where MLflow finds none (MLflow, and serve, then refuse)', () => {
    for (const uri of [
      'prompts:/p',
      'prompts:/',
      'prompts:/@prod',
      'prompts:/p@ ',
      'prompts:/p/latest',
      'prompts:/p/ ',
      'prompts:/ /1',
      'prompts:/a/b/1',
      '@prod',
    ])
      assert.deepEqual(sourcePromptNames(uri), [], uri)
    // MLflow reads a network location here, and non-ASCII digits as a version: serve finds no name.
    assert.deepEqual(sourcePromptNames('prompts://h/p/1'), [])
    assert.deepEqual(sourcePromptNames('prompts:/p/\u0661'), [])
  })

  it('reads a bare name whole, and with an @ the part before the last @ too', () => {
    assert.deepEqual(sourcePromptNames('p'), ['p'])
    assert.deepEqual(sourcePromptNames('p@prod'), ['p@prod', 'p'])
    assert.deepEqual(sourcePromptNames('a/b'), ['a/b'])
    assert.deepEqual(sourcePromptNames('PROMPTS:/p/1'), ['PROMPTS:/p/1'])
  })

  it('refuses control characters and a ? (Python drops or cuts them where the name is loaded)', () => {
    for (const uri of ['prompts:/p\t/1', 'p\n', 'prompts:/p?x@prod', 'p?x', 'p\u0085'])
      assert.throws(
        () => sourcePromptNames(uri),
        (error: unknown) => error instanceof ApiError && error.code === 'INVALID_PARAMETER_VALUE',
        JSON.stringify(uri),
      )
  })
})

describe('reflectionEndpoint', () => {
  it('names the gateway endpoint of a gateway:/ reflection model, as MLflow reads it', () => {
    assert.equal(reflectionEndpoint(JSON.stringify({reflection_model: 'gateway:/e1'})), 'e1')
    assert.equal(reflectionEndpoint(JSON.stringify({reflection_model: 'gateway:///e1'})), 'e1')
    assert.equal(reflectionEndpoint(JSON.stringify({reflection_model: 'gateway:/a:/b'})), 'a:/b')
  })

  it('names none for another provider, no model, or no configuration', () => {
    for (const config of [undefined, '', '{}', '[]', '3', JSON.stringify({reflection_model: 3})]) assert.equal(reflectionEndpoint(config), undefined, config)
    for (const model of ['gateway:/', 'openai:/gpt', 'Gateway:/e1', 'gateway/e1'])
      assert.equal(reflectionEndpoint(JSON.stringify({reflection_model: model})), undefined, model)
  })

  it('refuses a configuration that is not JSON (MLflow refuses it too, after authorizing)', () => {
    for (const config of ['not json', '{"reflection_model": NaN}'])
      assert.throws(
        () => reflectionEndpoint(config),
        (error: unknown) => error instanceof ApiError && error.code === 'INVALID_PARAMETER_VALUE',
        config,
      )
  })
})

describe('checkOptimizerConfig', () => {
  const refused = (config: unknown) => () => checkOptimizerConfig(config, 'config.optimizer_config_json')
  const invalid = (error: unknown) => error instanceof ApiError && error.code === 'INVALID_PARAMETER_VALUE'

  it('passes no configuration, and one of the keys MLflow reads with sampling parameters only', () => {
    for (const config of [
      undefined,
      null,
      {},
      {reflection_model: 'openai:/gpt-4o'},
      {guidelines: 'g', lm_kwargs: {frequency_penalty: 0, presence_penalty: 0.5, stop: 'x', temperature: 1, top_k: 40}, reflection_model: 'gateway:/e'},
      {display_progress_bar: true, gepa_kwargs: {module_selector: 'all', perfect_score: 1, skip_perfect_score: false}, max_metric_calls: 5},
      {gepa_kwargs: null, lm_kwargs: null},
      {lm_kwargs: {stop: ['\n', 'END']}, reflection_model: 'anthropic:/claude-sonnet'},
    ])
      assert.doesNotThrow(refused(config), JSON.stringify(config))
  })

  it("refuses a reflection model that runs on the server's credentials with a URL or a provider that takes one", () => {
    for (const reflection_model of [
      'huggingface:/https://attacker.example/v1',
      'ollama:/llama3',
      'openai:/https://attacker.example',
      'openai:/',
      'gpt-4o',
      'hosted_vllm:/m',
    ])
      assert.throws(refused({reflection_model}), invalid, reflection_model)
  })

  it('refuses a configuration that is not an object (the worker reads its keys)', () => {
    for (const config of [[], 3, 'x', true]) assert.throws(refused(config), invalid, JSON.stringify(config))
  })

  it('refuses keys that choose a host, headers, a provider, a path or a tracking server, at any level', () => {
    for (const config of [
      {lm_kwargs: {api_base: 'h'}},
      {lm_kwargs: {api_version: 'v'}},
      {lm_kwargs: {headers: {}}},
      {lm_kwargs: {organization: 'o'}},
      {lm_kwargs: {metadata: {}}},
      {lm_kwargs: {success_callback: ['x']}},
      {lm_kwargs: {fallbacks: ['x']}},
      {lm_kwargs: {constructor: 1}},
      {gepa_kwargs: {run_dir: '/'}},
      {gepa_kwargs: {wandb_init_kwargs: {}}},
      {gepa_kwargs: {reflection_lm: 'x'}},
      {gepa_kwargs: {logger: 'x'}},
      {base_url: 'h'},
      JSON.parse('{"__proto__": 1}') as unknown,
      JSON.parse('{"lm_kwargs": {"__proto__": {"api_base": "h"}}}') as unknown,
    ])
      assert.throws(refused(config), invalid, JSON.stringify(config))
  })

  it('refuses an allowed key of another JSON type', () => {
    for (const config of [
      {lm_kwargs: {temperature: '1'}},
      {lm_kwargs: {max_tokens: 0}},
      {lm_kwargs: {seed: 1.5}},
      {gepa_kwargs: {use_merge: 'true'}},
      {display_progress_bar: 1},
      {max_metric_calls: 1.5},
      {guidelines: ['g']},
      {reflection_model: null},
    ])
      assert.throws(refused(config), invalid, JSON.stringify(config))
  })
})

// The dedicated create, through serve in front of a fake MLflow that counts the creates it gets.
describe('a prompt optimization create through serve', () => {
  const JOBS = '/api/3.0/mlflow/prompt-optimization/jobs'
  const alice: Who = {password: 'alice-password-long-enough', username: 'alice'}
  let pipeline: Pipeline
  let creates = 0

  before(async () => {
    pipeline = await startPipeline()
    pipeline.upstream.handle((request, response) => {
      if (`${request.method} ${request.url.pathname}` === `POST ${JOBS}`) {
        creates++
        answerJson(response, 200, {job: {job_id: `job-${creates}`}})
      } else answerJson(response, 404, {error_code: 'ENDPOINT_NOT_FOUND'})
    })
    await pipeline.createUser(alice, {'1': 'EDIT'})
    // EDIT on the source prompt: the job registers a new version of it.
    const admin = {credentials: pipeline.admin}
    const roles = parseJson(await call(pipeline.url, 'GET', `/api/3.0/mlflow/users/roles/list?username=${alice.username}`, admin)).roles as {id: number}[]
    const row = {permission: 'EDIT', resource_pattern: 'p', resource_type: 'prompt', role_id: roles[0].id}
    assert.equal((await call(pipeline.url, 'POST', '/api/3.0/mlflow/roles/permissions/add', {...admin, body: row})).status, 200)
  })

  after(() => pipeline.close())

  const body = (optimizerConfig: unknown) => ({
    config: {optimizer_config_json: JSON.stringify(optimizerConfig), optimizer_type: 'OPTIMIZER_TYPE_METAPROMPT', scorers: []},
    experiment_id: '1',
    source_prompt_uri: 'prompts:/p/1',
  })
  const create = async (who: Who, optimizerConfig: unknown, status: number) => {
    const before = creates
    const answer = await call(pipeline.url, 'POST', JOBS, {body: body(optimizerConfig), credentials: who})
    assert.equal(answer.status, status, answer.body)
    assert.equal(creates, before + (status === 200 ? 1 : 0), 'creates MLflow saw')
    return answer.body
  }

  it("refuses (400) a non-admin's lm_kwargs or gepa_kwargs key outside the allowlist, naming the key, not its value", async () => {
    const value = 'http://attacker.invalid/do-not-echo'
    for (const [config, key] of [
      [{lm_kwargs: {api_base: value}, reflection_model: 'openai:/gpt-4o'}, 'lm_kwargs.api_base'],
      [{lm_kwargs: {extra_headers: {x: value}}, reflection_model: 'openai:/gpt-4o'}, 'lm_kwargs.extra_headers'],
      [{gepa_kwargs: {mlflow_tracking_uri: value}, reflection_model: 'openai:/gpt-4o'}, 'gepa_kwargs.mlflow_tracking_uri'],
      [{reflection_model: 'openai:/gpt-4o', api_key: value}, 'api_key'],
    ] as const) {
      const answer = JSON.parse(await create(alice, config, 400)) as {error_code: string; message: string}
      assert.equal(answer.error_code, 'INVALID_PARAMETER_VALUE')
      assert.ok(answer.message.includes(`"${key}"`) && answer.message.includes('config.optimizer_config_json'), answer.message)
      assert.ok(!answer.message.includes(value), answer.message)
    }
  })

  it('refuses (403) a source prompt the caller may only read: the job registers a new version of it', async () => {
    const before = creates
    for (const source_prompt_uri of ['prompts:/q/1', 'q', 'p@q']) {
      const answer = await call(pipeline.url, 'POST', JOBS, {body: {...body(null), source_prompt_uri}, credentials: alice})
      assert.equal(answer.status, 403, `${source_prompt_uri}: ${answer.body}`)
    }

    assert.equal(creates, before, 'creates MLflow saw')
  })

  it('passes sampling parameters; an admin may set any key', async () => {
    await create(alice, {lm_kwargs: {max_tokens: 100, temperature: 0.5}, reflection_model: 'openai:/gpt-4o'}, 200)
    await create(pipeline.admin, {lm_kwargs: {api_base: 'http://127.0.0.1:9/'}, reflection_model: 'openai:/gpt-4o'}, 200)
  })
})
