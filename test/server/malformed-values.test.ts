/**
 * What serve parses, serve checks: malformed ids, version numbers, page sizes, GraphQL requests
 * and body shapes are answered 400 by serve itself, and none reaches the upstream (a fake MLflow
 * here; test/interop/serve-malformed.test.ts sends the same to real MLflow servers).
 */
import assert from 'node:assert/strict'
import {after, before, describe, it} from 'node:test'

import {MALFORMED} from '../support/malformed.js'
import {call, type Pipeline, parseJson, startPipeline} from '../support/serve-pipeline.js'

const MALLORY = {password: 'mallory-password-for-malformed', username: 'mallory'}
let pipeline: Pipeline

before(async () => {
  pipeline = await startPipeline()
  await pipeline.createUser(MALLORY, {1: 'EDIT'})
})

after(async () => {
  await pipeline.close()
})

describe('serve: malformed values', () => {
  it('answers 400 to each, and forwards none', async () => {
    for (const {body, method, path} of MALFORMED) {
      const before = pipeline.upstream.started.length
      const answer = await call(pipeline.url, method, path, {body, credentials: MALLORY})
      const what = `${method} ${path} ${JSON.stringify(body) ?? ''}`
      assert.equal(answer.status, 400, `${what}: ${answer.body}`)
      assert.match(String(parseJson(answer).error_code), /^(BAD_REQUEST|INVALID_PARAMETER_VALUE)$/, what)
      assert.equal(pipeline.upstream.started.length, before, `${what} reached the upstream`)
    }
  })
})
