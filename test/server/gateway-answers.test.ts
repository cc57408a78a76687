/**
 * What serve withholds from a non-admin's AI gateway answers, in front of a fake MLflow: a listing
 * it cannot read row by row is refused rather than relayed (as is any answer serve must read to
 * withhold something: one status, one message), admins get the answer as it came; an
 * invocation is forwarded with USE on the endpoint it names, and one naming an endpoint that does
 * not exist is refused before it is forwarded.
 */
import assert from 'node:assert/strict'
import {after, before, describe, it} from 'node:test'

import {answerJson, call, type Pipeline, parseJson, startPipeline} from '../support/serve-pipeline.js'

const BOB = {password: 'bob-password-for-the-gateway', username: 'bob'}
const SECRETS = {secrets: [{secret_id: 's-1', secret_name: 'one'}]}

let pipeline: Pipeline

before(async () => {
  pipeline = await startPipeline({
    handler(request, response) {
      const route = `${request.method} ${request.url.pathname}`
      const unreadable = ['GET /api/2.0/mlflow-artifacts/artifacts', 'GET /api/2.0/mlflow/model-versions/search', 'POST /graphql']
      if (route === 'GET /api/3.0/mlflow/gateway/secrets/list' || unreadable.includes(route)) {
        // Not MLflow's JSON: serve cannot tell which rows the caller may see.
        response.writeHead(200, {'content-type': 'text/plain'})
        response.end(JSON.stringify(SECRETS).slice(0, -1))
      }

      if (route === 'GET /api/3.0/mlflow/gateway/endpoints/get') {
        if (request.url.searchParams.get('name') === 'known') answerJson(response, 200, {endpoint: {endpoint_id: 'e-1', name: 'known'}})
        else answerJson(response, 404, {error_code: 'RESOURCE_DOES_NOT_EXIST', message: 'no endpoint'})
      }

      if (route === 'POST /gateway/known/mlflow/invocations') answerJson(response, 200, {choices: [{message: {content: 'pong'}}]})
    },
  })
  await pipeline.createUser(BOB)
  // USE on endpoint e-1, through a role.
  const admin = {credentials: pipeline.admin}
  const role = parseJson(await call(pipeline.url, 'POST', '/api/3.0/mlflow/roles/create', {...admin, body: {name: 'invokers', workspace: 'default'}})).role as {
    id: number
  }
  const rows = {permission: 'USE', resource_pattern: 'e-1', resource_type: 'gateway_endpoint', role_id: role.id}
  assert.equal((await call(pipeline.url, 'POST', '/api/3.0/mlflow/roles/permissions/add', {...admin, body: rows})).status, 200)
  assert.equal((await call(pipeline.url, 'POST', '/api/3.0/mlflow/roles/assign', {...admin, body: {role_id: role.id, username: BOB.username}})).status, 200)
})

after(async () => {
  await pipeline.close()
})

describe('AI gateway answers through serve', () => {
  it('refuses a listing it cannot filter (502), never relays it to a non-admin; an admin gets it as it came', async () => {
    const refused = await call(pipeline.url, 'GET', '/api/3.0/mlflow/gateway/secrets/list', {credentials: BOB})
    assert.equal(refused.status, 502)
    assert.doesNotMatch(refused.body, /s-1/)
    const admin = await call(pipeline.url, 'GET', '/api/3.0/mlflow/gateway/secrets/list', {credentials: pipeline.admin})
    assert.equal(admin.status, 200)
    assert.match(admin.body, /s-1/)
  })

  it('refuses every answer it must read but cannot alike (502, one message): rewrites, filtered searches, GraphQL', async () => {
    const secrets = await call(pipeline.url, 'GET', '/api/3.0/mlflow/gateway/secrets/list', {credentials: BOB})
    const answers = [
      await call(pipeline.url, 'GET', '/api/2.0/mlflow-artifacts/artifacts?path=7', {credentials: BOB}),
      await call(pipeline.url, 'GET', '/api/2.0/mlflow/model-versions/search', {credentials: BOB}),
      await call(pipeline.url, 'POST', '/graphql', {
        body: {query: '{ mlflowGetExperiment(input: {experimentId: "7"}) { experiment { name } } }'},
        credentials: BOB,
      }),
    ]
    for (const answer of answers) {
      assert.equal(answer.status, 502, answer.body)
      assert.deepEqual(parseJson(answer), parseJson(secrets))
    }

    assert.match(String(parseJson(secrets).message), /cannot read/)
  })

  it('forwards an invocation of an endpoint the caller may use, found by its name; refuses one that does not exist without forwarding it', async () => {
    const used = await call(pipeline.url, 'POST', '/gateway/known/mlflow/invocations', {body: {messages: []}, credentials: BOB})
    assert.equal(used.status, 200, used.body)
    assert.match(used.body, /pong/)
    const before = pipeline.upstream.seen.filter((seen) => seen.url.pathname.startsWith('/gateway/')).length
    const answer = await call(pipeline.url, 'POST', '/gateway/no-such-endpoint/mlflow/invocations', {body: {messages: []}, credentials: BOB})
    assert.equal(answer.status, 403)
    assert.equal(answer.body, 'Permission denied')
    assert.equal(pipeline.upstream.seen.filter((seen) => seen.url.pathname.startsWith('/gateway/')).length, before)
  })
})
