import assert from 'node:assert/strict'
import {describe, it} from 'node:test'

import {reflectionEndpoint, sourcePromptNames} from '../../src/server/authz/prompt-optimization.js'
import {ApiError} from '../../src/server/responses.js'

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
