/**
 * serve's pipeline in process, in front of a fake MLflow: which stage answers what (canonicalise,
 * route, authenticate, serve's own answers, the gate), each route entry's body policy, and the
 * identity serve's own upstream requests carry.
 */
import assert from 'node:assert/strict'
import {after, before, describe, it} from 'node:test'

import {answerJson, call, type Pipeline, parseJson, startPipeline} from '../support/serve-pipeline.js'

const ALICE = {password: 'alice-password-for-the-pipeline', username: 'alice'}
// A name Node cannot put in a header as it is (not latin1): serve must encode it.
const LI = {password: 'li-password-for-the-pipeline', username: '李雷'}

let pipeline: Pipeline

const ASSISTANT_ACTIONS = [
  ['PUT', '/ajax-api/3.0/mlflow/assistant/config'],
  ['POST', '/ajax-api/3.0/mlflow/assistant/message'],
  ['GET', '/ajax-api/3.0/mlflow/assistant/providers/claude_code/health'],
]

before(async () => {
  pipeline = await startPipeline({
    handler(request, response) {
      const route = `${request.method} ${request.url.pathname}`
      if (route === 'GET /health') answerJson(response, 200, {status: 'OK'})
      if (route === 'POST /api/2.0/mlflow/registered-models/rename') answerJson(response, 200, {registered_model: {name: 'renamed-model'}})
      if (route === 'DELETE /api/2.0/mlflow/registered-models/delete') answerJson(response, 200, {})
      if (route === 'POST /api/2.0/mlflow/experiments/update') answerJson(response, 200, {})
      if (route === 'GET /api/2.0/mlflow/unknown-to-serve') answerJson(response, 200, {reached: true})
      if (request.url.pathname.startsWith('/ajax-api/3.0/mlflow/assistant/')) answerJson(response, 200, {providers: {}})
      if (route === 'POST /api/2.0/mlflow/experiments/search') {
        const {page_token: pageToken} = JSON.parse(request.body.toString('utf8') || '{}') as {page_token?: string}
        answerJson(
          response,
          200,
          pageToken ? {experiments: [{experiment_id: '3'}]} : {experiments: [{experiment_id: '1'}, {experiment_id: '2'}], next_page_token: 'p2'},
        )
      }
    },
  })
  await pipeline.createUser(ALICE, {1: 'EDIT', 2: 'NO_PERMISSIONS'})
  await pipeline.createUser(LI, {2: 'NO_PERMISSIONS'})
})

after(async () => {
  await pipeline.close()
})

/** How many requests reached the fake MLflow while `action` ran. */
async function forwardedDuring(action: () => Promise<unknown>): Promise<number> {
  const before = pipeline.upstream.seen.length
  await action()
  return pipeline.upstream.seen.length - before
}

describe('serve pipeline: stages', () => {
  it('canonicalise: refuses an odd path or a # before any login or decision', async () => {
    const odd = await call(pipeline.url, 'GET', '/api/2.0/mlflow//experiments/get?experiment_id=1')
    assert.equal(odd.status, 400)
    assert.equal(parseJson(odd).error_code, 'BAD_REQUEST')
    const fragment = await call(pipeline.url, 'GET', '/api/2.0/mlflow/experiments/get#x', {credentials: ALICE})
    assert.equal(fragment.status, 400)
    assert.match(String(parseJson(fragment).message), /#/)
  })

  it('route → public: forwarded without a login', async () => {
    const health = await call(pipeline.url, 'GET', '/health')
    assert.equal(health.status, 200)
    assert.deepEqual(parseJson(health), {status: 'OK'})
  })

  it("authenticate: no or wrong credentials get MLflow's 401, and nothing is forwarded", async () => {
    const forwarded = await forwardedDuring(async () => {
      const none = await call(pipeline.url, 'GET', '/api/2.0/mlflow/experiments/get?experiment_id=1')
      assert.equal(none.status, 401)
      assert.equal(none.headers['www-authenticate'], 'Basic realm="mlflow"')
      const wrong = await call(pipeline.url, 'GET', '/api/2.0/mlflow/users/current', {credentials: {...ALICE, password: 'not-her-password'}})
      assert.equal(wrong.status, 401)
    })
    assert.equal(forwarded, 0)
  })

  it('route → unknown: refused to a non-admin, forwarded for an admin with the admin as X-Forwarded-User', async () => {
    const refused = await call(pipeline.url, 'GET', '/api/2.0/mlflow/unknown-to-serve', {credentials: ALICE})
    assert.equal(refused.status, 403)
    assert.equal(refused.body, 'Permission denied')
    const passed = await call(pipeline.url, 'GET', '/api/2.0/mlflow/unknown-to-serve', {credentials: pipeline.admin})
    assert.equal(passed.status, 200)
    assert.equal(pipeline.upstream.seen.at(-1)?.headers['x-forwarded-user'], 'admin')
  })

  it("route → serve's own answer: the auth API is answered here, never forwarded", async () => {
    const forwarded = await forwardedDuring(async () => {
      const current = await call(pipeline.url, 'GET', '/api/2.0/mlflow/users/current', {credentials: ALICE})
      assert.equal(current.status, 200)
      assert.equal((parseJson(current).user as {username: string}).username, 'alice')
      // Under the ajax prefix too, as MLflow serves it.
      assert.equal((await call(pipeline.url, 'GET', '/ajax-api/2.0/mlflow/users/current', {credentials: ALICE})).status, 200)
    })
    assert.equal(forwarded, 0)
  })

  it("route → the auth API's paths as Flask routes them for admins (405 and OPTIONS with Allow, HEAD as GET with an empty body), 403 for others; never forwarded", async () => {
    const forwarded = await forwardedDuring(async () => {
      for (const [method, path, allow] of [
        ['GET', '/api/2.0/mlflow/users/create', 'POST, OPTIONS'],
        ['PUT', '/api/2.0/mlflow/users/get?username=alice', 'GET, HEAD, OPTIONS'],
        ['POST', '/api/3.0/mlflow/users/permissions/list', 'GET, HEAD, OPTIONS'],
      ]) {
        const answer = await call(pipeline.url, method, path, {credentials: pipeline.admin})
        assert.equal(answer.status, 405, `${method} ${path}`)
        assert.equal(answer.headers.allow, allow, `${method} ${path}`)
        assert.match(answer.body, /<title>405 Method Not Allowed<\/title>/)
      }

      const options = await call(pipeline.url, 'OPTIONS', '/api/2.0/mlflow/users/update-password', {credentials: pipeline.admin})
      assert.equal(options.status, 204)
      assert.equal(options.headers.allow, 'PATCH, OPTIONS')
      // MLflow reads a HEAD's parameters from its empty body: users/get misses its username (400), users/current needs none.
      assert.equal((await call(pipeline.url, 'HEAD', '/api/2.0/mlflow/users/get?username=alice', {credentials: pipeline.admin})).status, 400)
      const current = await call(pipeline.url, 'HEAD', '/api/2.0/mlflow/users/current', {credentials: pipeline.admin})
      assert.equal(current.status, 200)
      assert.equal(current.body, '')
      // A non-admin is denied any method MLflow's auth table does not list, before Flask's routing answers; logging in comes first.
      for (const method of ['OPTIONS', 'HEAD', 'PUT']) {
        assert.equal((await call(pipeline.url, method, '/api/2.0/mlflow/users/current', {credentials: ALICE})).status, 403, method)
      }

      assert.equal((await call(pipeline.url, 'OPTIONS', '/api/2.0/mlflow/users/get')).status, 401)
    })
    assert.equal(forwarded, 0)
  })

  it('route → the assistant: its config and providers for anyone logged in (every web UI page reads them), the rest for local clients', async () => {
    for (const path of ['/ajax-api/3.0/mlflow/assistant/config', '/ajax-api/3.0/mlflow/assistant/providers']) {
      const answer = await call(pipeline.url, 'GET', path, {credentials: ALICE})
      assert.equal(answer.status, 200, path)
      assert.equal(pipeline.upstream.seen.at(-1)?.headers['x-forwarded-user'], 'alice')
    }

    // This pipeline trusts no proxy: alice's client is the loopback peer, as MLflow on this host would see it.
    for (const [method, path] of ASSISTANT_ACTIONS) {
      const answer = await call(pipeline.url, method, path, {body: method === 'GET' ? undefined : '{}', credentials: ALICE})
      assert.equal(answer.status, 200, `${method} ${path}`)
      assert.equal(pipeline.upstream.seen.at(-1)?.headers['x-forwarded-for'], '127.0.0.1')
    }
  })

  it('route → the assistant from a remote client (behind a trusted proxy): config and providers only, the rest for admins', async () => {
    const proxied = await startPipeline({handler: (_request, response) => answerJson(response, 200, {}), serve: {trustedProxies: '127.0.0.1'}})
    try {
      await proxied.createUser(ALICE)
      const remote = {'x-forwarded-for': '203.0.113.9'}
      assert.equal((await call(proxied.url, 'GET', '/ajax-api/3.0/mlflow/assistant/config', {credentials: ALICE, headers: remote})).status, 200)
      for (const [method, path] of ASSISTANT_ACTIONS) {
        const body = method === 'GET' ? undefined : '{}'
        const before = proxied.upstream.seen.length
        assert.equal((await call(proxied.url, method, path, {body, credentials: ALICE, headers: remote})).status, 403, `${method} ${path}`)
        assert.equal(proxied.upstream.seen.length, before, 'nothing forwarded')
        assert.equal((await call(proxied.url, method, path, {body, credentials: proxied.admin, headers: remote})).status, 200, `admin: ${method} ${path}`)
        // A local client through the same proxy is local.
        assert.equal((await call(proxied.url, method, path, {body, credentials: ALICE, headers: {'x-forwarded-for': '127.0.0.1'}})).status, 200)
      }
    } finally {
      await proxied.close()
    }
  })

  it('route → sign-up: admins only, for the page and the form', async () => {
    assert.equal((await call(pipeline.url, 'GET', '/signup', {credentials: ALICE})).status, 403)
    assert.equal(
      (
        await call(pipeline.url, 'POST', '/api/2.0/mlflow/users/create-ui', {
          body: 'username=x&password=y',
          credentials: ALICE,
          headers: {'content-type': 'application/x-www-form-urlencoded'},
        })
      ).status,
      403,
    )
    const page = await call(pipeline.url, 'GET', '/signup', {credentials: pipeline.admin})
    assert.equal(page.status, 200)
    assert.match(page.body, /<form method="post" action="\/api\/2\.0\/mlflow\/users\/create-ui">/)
  })
})

describe('serve pipeline: body policy per route entry', () => {
  it('auth API (auth-json): at most 1 MiB; a body declared as another type is no body', async () => {
    const big = {password: 'x'.repeat(1024 * 1024), username: 'big'}
    const tooBig = await call(pipeline.url, 'POST', '/api/2.0/mlflow/users/create', {body: big, credentials: pipeline.admin})
    assert.equal(tooBig.status, 400)
    assert.match(String(parseJson(tooBig).message), /larger than 1 MiB/)
    const asText = await call(pipeline.url, 'POST', '/api/2.0/mlflow/users/create', {
      body: JSON.stringify({password: 'a-password-long-enough', username: 'texty'}),
      credentials: pipeline.admin,
      headers: {'content-type': 'text/plain'},
    })
    assert.equal(asText.status, 400)
    assert.equal(asText.body, 'Invalid content type. Must be application/json')
  })

  it('a route decided on body fields (json): read whole beyond 1 MiB, decided, and forwarded as the same bytes', async () => {
    const body = Buffer.from(JSON.stringify({experiment_id: '1', new_name: 'n'.repeat(2 * 1024 * 1024)}))
    const answer = await call(pipeline.url, 'POST', '/api/2.0/mlflow/experiments/update', {body, credentials: ALICE})
    assert.equal(answer.status, 200, answer.body)
    assert.ok(pipeline.upstream.seen.at(-1)?.body.equals(body), 'the upstream got other bytes than the client sent')
    // The same body naming an experiment she may not change is refused, and not forwarded.
    const refused = await call(pipeline.url, 'POST', '/api/2.0/mlflow/experiments/update', {body: {experiment_id: '2', new_name: 'x'}, credentials: ALICE})
    assert.equal(refused.status, 403)
  })

  it('a json route refuses a body that is not a JSON object before forwarding it', async () => {
    const forwarded = await forwardedDuring(async () => {
      const answer = await call(pipeline.url, 'POST', '/api/2.0/mlflow/experiments/update', {body: '[1, 2]', credentials: ALICE})
      assert.equal(answer.status, 400)
      assert.equal(parseJson(answer).message, 'The request body must be a JSON object.')
    })
    assert.equal(forwarded, 0)
  })

  it('sign-up form (form): a body that is not a form is not read as one; the CSRF check answers first', async () => {
    const answer = await call(pipeline.url, 'POST', '/api/2.0/mlflow/users/create-ui', {
      body: {csrf_token: 'x', password: 'p', username: 'u'},
      credentials: pipeline.admin,
    })
    assert.equal(answer.status, 400)
    assert.equal(answer.body, 'The CSRF token is missing.')
  })
})

describe("serve pipeline: serve's own upstream requests", () => {
  it('send the caller as X-Forwarded-User, encoded when Node could not send the name as it is', async () => {
    // A page with an experiment 李雷 may not read: serve refills it with a request of its own.
    const answer = await call(pipeline.url, 'POST', '/api/2.0/mlflow/experiments/search', {body: {max_results: 2}, credentials: LI})
    assert.equal(answer.status, 200, answer.body)
    assert.deepEqual(parseJson(answer), {experiments: [{experiment_id: '1'}, {experiment_id: '3'}]})
    const refill = pipeline.upstream.seen.at(-1)!
    assert.equal(JSON.parse(refill.body.toString('utf8')).page_token, 'p2')
    assert.equal(refill.headers['x-forwarded-user'], encodeURIComponent('李雷'))
  })
})

describe('serve pipeline: after-effects on role rows', () => {
  it('a registered model rename or delete moves or removes per-user rows of models and prompts, and leaves rows of roles an admin made', async () => {
    const bob = {password: 'bob-password-for-the-pipeline', username: 'bob-rows'}
    await pipeline.createUser(bob)
    const asAdmin = async (method: string, path: string, body?: unknown) => {
      const answer = await call(pipeline.url, method, path, {body, credentials: pipeline.admin})
      assert.equal(answer.status, 200, answer.body)
      return parseJson(answer)
    }

    await asAdmin('POST', '/api/3.0/mlflow/users/permissions/grant', {
      permission: 'READ',
      resource_id: 'old-model',
      resource_type: 'registered_model',
      username: bob.username,
    })
    const [own] = (await asAdmin('GET', `/api/3.0/mlflow/users/roles/list?username=${bob.username}`)).roles as {id: number}[]
    await asAdmin('POST', '/api/3.0/mlflow/roles/permissions/add', {
      permission: 'EDIT',
      resource_pattern: 'old-model',
      resource_type: 'prompt',
      role_id: own.id,
    })
    const {role: team} = (await asAdmin('POST', '/api/3.0/mlflow/roles/create', {name: 'model-team', workspace: 'default'})) as {role: {id: number}}
    await asAdmin('POST', '/api/3.0/mlflow/roles/permissions/add', {
      permission: 'READ',
      resource_pattern: 'old-model',
      resource_type: 'registered_model',
      role_id: team.id,
    })
    const bobRows = async () =>
      (
        (await asAdmin('GET', `/api/3.0/mlflow/users/permissions/list?username=${bob.username}`)).permissions as {
          resource_pattern: string
          resource_type: string
        }[]
      )
        .map((row) => `${row.resource_type} ${row.resource_pattern}`)
        .sort()
    const teamRows = async () =>
      ((await asAdmin('GET', `/api/3.0/mlflow/roles/permissions/list?role_id=${team.id}`)).role_permissions as {resource_pattern: string}[]).map(
        (row) => row.resource_pattern,
      )

    await asAdmin('POST', '/api/2.0/mlflow/registered-models/rename', {name: 'old-model', new_name: 'renamed-model'})
    assert.deepEqual(await bobRows(), ['prompt renamed-model', 'registered_model renamed-model'])
    assert.deepEqual(await teamRows(), ['old-model'])

    await asAdmin('DELETE', '/api/2.0/mlflow/registered-models/delete', {name: 'renamed-model'})
    assert.deepEqual(await bobRows(), [])
    assert.deepEqual(await teamRows(), ['old-model'])
  })
})
