/**
 * MLflow 3.17's AI gateway under its basic-auth app, one test body against the real app and
 * against serve: secrets, model definitions and endpoints are each the creator's to manage, read
 * by others at the default permission, used (a definition's secret, an endpoint's definitions, an
 * invocation) with USE; listings keep what the caller may read; a DENY hides a resource, and the
 * definitions and secrets it hides inside an endpoint; deleting removes the creator's rows. Every
 * refused change is checked, as admin, not to have happened. Invocations reach a fake provider on
 * loopback, never the network.
 */
import assert from 'node:assert/strict'
import {once} from 'node:events'
import {createServer, type Server} from 'node:http'
import {type AddressInfo} from 'node:net'
import {after, before, describe, it} from 'node:test'

import {type AuthTarget, authTarget, targetTitle} from '../support/auth-target.js'
import {type Credentials} from '../support/mlflow-server.js'
import {MLFLOW_VERSIONS} from '../support/mlflow-versions.js'
import {type Json, restClient} from '../support/rest.js'
import {type RowSpec, withRole as withRoleOf} from '../support/roles.js'
import {uniqueName} from '../support/servers.js'

const GATEWAY = '/api/3.0/mlflow/gateway'

/** An OpenAI-compatible provider on loopback that answers every chat completion with "pong". */
async function fakeProvider(): Promise<{server: Server; url: string}> {
  const server = createServer((request, response) => {
    request.resume()
    request.on('end', () => {
      response.writeHead(200, {'content-type': 'application/json'})
      response.end(
        JSON.stringify({
          choices: [{finish_reason: 'stop', index: 0, message: {content: 'pong', role: 'assistant'}}],
          created: 1,
          id: 'chatcmpl-1',
          model: 'gpt-4o',
          object: 'chat.completion',
          usage: {completion_tokens: 1, prompt_tokens: 1, total_tokens: 2},
        }),
      )
    })
  })
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  return {server, url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/v1`}
}

const version = MLFLOW_VERSIONS.latest
for (const kind of ['basic-auth', 'serve'] as const) {
  describe(`AI gateway permissions on ${targetTitle(kind)} MLflow ${version}`, () => {
    let target: AuthTarget
    let provider: {server: Server; url: string}
    const owner = {password: `owner-${uniqueName('pw')}`, username: uniqueName('gw-owner')}
    const other = {password: `other-${uniqueName('pw')}`, username: uniqueName('gw-other')}
    const {call, ok} = restClient(() => target.url)
    const admin = () => target.admin

    before(async () => {
      provider = await fakeProvider()
      // MLflow lets a provider's api_base be only a public https address unless told otherwise.
      const env = {MLFLOW_GATEWAY_API_BASE_ALLOW_PRIVATE_IPS: 'true', MLFLOW_GATEWAY_API_BASE_ALLOWED_SCHEMES: 'http,https'}
      target = await authTarget(version, kind, {env, users: [owner, other]})
    })
    after(async () => {
      provider?.server.close()
      await target?.stop()
    })

    /** `body` run while `other` holds a role with these rows (resource type, pattern, level). */
    const withRole = (rows: RowSpec[], body: () => Promise<void>) =>
      withRoleOf((method, path, json) => ok(admin(), method, path, json), other.username, rows, body)

    /** The caller's own rows on one resource (their per-user role's, as `users/current/permissions` lists them). */
    const ownRows = async (who: Credentials, type: string, id: string) =>
      ((await ok(who, 'GET', '/api/3.0/mlflow/users/current/permissions')).permissions as Json[]).filter(
        (row) => row.resource_type === type && row.resource_pattern === id,
      )

    const createSecret = async (who: Credentials) =>
      (
        await ok(who, 'POST', `${GATEWAY}/secrets/create`, {
          auth_config: {api_base: provider.url},
          provider: 'openai',
          secret_name: uniqueName('secret'),
          secret_value: {api_key: 'sk-test-not-a-key'},
        })
      ).secret as Json
    const createDefinition = async (who: Credentials, secretId: string) =>
      (
        await ok(who, 'POST', `${GATEWAY}/model-definitions/create`, {
          model_name: 'gpt-4o',
          name: uniqueName('definition'),
          provider: 'openai',
          secret_id: secretId,
        })
      ).model_definition as Json
    const createEndpoint = async (who: Credentials, definitionId: string) =>
      (
        await ok(who, 'POST', `${GATEWAY}/endpoints/create`, {
          model_configs: [{linkage_type: 'PRIMARY', model_definition_id: definitionId, weight: 1}],
          name: uniqueName('endpoint'),
          usage_tracking: false,
        })
      ).endpoint as Json
    const listed = async (who: Credentials, path: string, key: string, idKey: string) =>
      ((await ok(who, 'GET', `${GATEWAY}/${path}`))[key] as Json[] | undefined)?.map((row) => row[idKey] as string) ?? []

    it('secrets: the creator manages, others read, a DENY hides, refused changes change nothing, delete takes the rows', async () => {
      const secret = await createSecret(owner)
      const id = secret.secret_id as string
      assert.equal((await ownRows(owner, 'gateway_secret', id))[0]?.permission, 'MANAGE')

      // default_permission READ: another user reads, but neither updates nor deletes.
      assert.equal((await call(other, 'GET', `${GATEWAY}/secrets/get?secret_id=${id}`)).status, 200)
      assert.ok((await listed(other, 'secrets/list', 'secrets', 'secret_id')).includes(id))
      assert.equal((await call(other, 'POST', `${GATEWAY}/secrets/update`, {secret_id: id, secret_value: {api_key: 'sk-stolen'}})).status, 403)
      assert.equal((await call(other, 'DELETE', `${GATEWAY}/secrets/delete`, {secret_id: id})).status, 403)
      const seen = (await ok(admin(), 'GET', `${GATEWAY}/secrets/get?secret_id=${id}`)).secret as Json
      assert.equal(seen.last_updated_at, secret.last_updated_at, 'a refused update changed the secret')

      // A DENY hides it, by id, by name and in the listing.
      await withRole([['gateway_secret', id, 'DENY']], async () => {
        assert.equal((await call(other, 'GET', `${GATEWAY}/secrets/get?secret_id=${id}`)).status, 403)
        // MLflow's handler reads secrets by id only: a name alone is refused, not looked up.
        assert.equal((await call(other, 'GET', `${GATEWAY}/secrets/get?secret_name=${encodeURIComponent(secret.secret_name as string)}`)).status, 400)
        assert.ok(!(await listed(other, 'secrets/list', 'secrets', 'secret_id')).includes(id))
      })
      // EDIT updates; MANAGE deletes.
      await withRole([['gateway_secret', id, 'EDIT']], async () => {
        await ok(other, 'POST', `${GATEWAY}/secrets/update`, {secret_id: id, secret_value: {api_key: 'sk-rotated'}})
        assert.equal((await call(other, 'DELETE', `${GATEWAY}/secrets/delete`, {secret_id: id})).status, 403)
      })

      // The secrets config tells non-admins only whether secrets can be stored.
      const config = await ok(other, 'GET', '/ajax-api/3.0/mlflow/gateway/secrets/config')
      assert.equal(typeof config.secrets_available, 'boolean')
      assert.ok(!('using_default_passphrase' in config))
      assert.ok('using_default_passphrase' in (await ok(admin(), 'GET', '/ajax-api/3.0/mlflow/gateway/secrets/config')))

      await ok(owner, 'DELETE', `${GATEWAY}/secrets/delete`, {secret_id: id})
      assert.deepEqual(await ownRows(owner, 'gateway_secret', id), [])
    })

    it('model definitions need USE on their secret; endpoints USE on their definitions; a DENY is withheld inside', async () => {
      const secret = await createSecret(owner)
      const secretId = secret.secret_id as string
      const definitionBody = {model_name: 'gpt-4o', name: uniqueName('definition'), provider: 'openai', secret_id: secretId}
      // READ on the secret is not USE: the definition is not made.
      assert.equal((await call(other, 'POST', `${GATEWAY}/model-definitions/create`, definitionBody)).status, 403)
      assert.ok(
        !(await listed(admin(), 'model-definitions/list', 'model_definitions', 'name')).includes(definitionBody.name),
        'a refused create made a definition',
      )
      await withRole([['gateway_secret', secretId, 'USE']], async () => {
        const made = (await ok(other, 'POST', `${GATEWAY}/model-definitions/create`, definitionBody)).model_definition as Json
        assert.equal((await ownRows(other, 'gateway_model_definition', made.model_definition_id as string))[0]?.permission, 'MANAGE')
        await ok(other, 'DELETE', `${GATEWAY}/model-definitions/delete`, {model_definition_id: made.model_definition_id})
        assert.deepEqual(await ownRows(other, 'gateway_model_definition', made.model_definition_id as string), [])
      })

      const definition = await createDefinition(owner, secretId)
      const definitionId = definition.model_definition_id as string
      const endpointBody = {
        model_configs: [{linkage_type: 'PRIMARY', model_definition_id: definitionId, weight: 1}],
        name: uniqueName('endpoint'),
        usage_tracking: false,
      }
      assert.equal((await call(other, 'POST', `${GATEWAY}/endpoints/create`, endpointBody)).status, 403)
      assert.ok(!(await listed(admin(), 'endpoints/list', 'endpoints', 'name')).includes(endpointBody.name), 'a refused create made an endpoint')
      // Updating a definition needs EDIT on it.
      assert.equal(
        (await call(other, 'POST', `${GATEWAY}/model-definitions/update`, {model_definition_id: definitionId, model_name: 'gpt-stolen'})).status,
        403,
      )
      assert.equal(
        ((await ok(admin(), 'GET', `${GATEWAY}/model-definitions/get?model_definition_id=${definitionId}`)).model_definition as Json).model_name,
        'gpt-4o',
      )

      const endpoint = await createEndpoint(owner, definitionId)
      const endpointId = endpoint.endpoint_id as string
      // A DENY on the secret: the definition is listed and read without it, the endpoint too.
      await withRole([['gateway_secret', secretId, 'DENY']], async () => {
        const read = (await ok(other, 'GET', `${GATEWAY}/model-definitions/get?model_definition_id=${definitionId}`)).model_definition as Json
        assert.equal(read.model_definition_id, definitionId)
        assert.ok(!('secret_id' in read) && !('secret_name' in read), JSON.stringify(read))
        const mapping = ((await ok(other, 'GET', `${GATEWAY}/endpoints/get?endpoint_id=${endpointId}`)).endpoint as Json).model_mappings[0] as Json
        assert.equal(mapping.model_definition_id, definitionId)
        assert.ok(!('secret_id' in mapping.model_definition), JSON.stringify(mapping))
        // Listing definitions by a denied secret is refused.
        assert.equal((await call(other, 'GET', `${GATEWAY}/model-definitions/list?secret_id=${secretId}`)).status, 403)
      })
      // A DENY on the definition: it is not listed, and the endpoint's mapping loses it.
      await withRole([['gateway_model_definition', definitionId, 'DENY']], async () => {
        assert.ok(!(await listed(other, 'model-definitions/list', 'model_definitions', 'model_definition_id')).includes(definitionId))
        assert.equal((await call(other, 'GET', `${GATEWAY}/model-definitions/get?model_definition_id=${definitionId}`)).status, 403)
        const endpoints = (await ok(other, 'GET', `${GATEWAY}/endpoints/list`)).endpoints as Json[]
        const mapping = endpoints.find((row) => row.endpoint_id === endpointId)!.model_mappings[0] as Json
        assert.ok(!('model_definition' in mapping) && !('model_definition_id' in mapping), JSON.stringify(mapping))
      })
      // USE on the definition lets another user build an endpoint on it, which they then manage.
      await withRole([['gateway_model_definition', definitionId, 'USE']], async () => {
        // Usage tracking (on unless turned off) logs to an experiment MLflow makes: a DENY on
        // every experiment vetoes it, and nothing is made.
        await withRole([['experiment', '*', 'DENY']], async () => {
          const {usage_tracking: _, ...tracked} = endpointBody
          assert.equal((await call(other, 'POST', `${GATEWAY}/endpoints/create`, tracked)).status, 403)
          assert.ok(!(await listed(admin(), 'endpoints/list', 'endpoints', 'name')).includes(endpointBody.name), 'a refused create made an endpoint')
        })
        const made = (await ok(other, 'POST', `${GATEWAY}/endpoints/create`, endpointBody)).endpoint as Json
        // Detaching and attaching its model needs EDIT on the endpoint (the creator's MANAGE) and USE on the definition.
        await ok(other, 'POST', `${GATEWAY}/endpoints/models/detach`, {endpoint_id: made.endpoint_id, model_definition_id: definitionId})
        await ok(other, 'POST', `${GATEWAY}/endpoints/models/attach`, {
          endpoint_id: made.endpoint_id,
          model_config: {linkage_type: 'PRIMARY', model_definition_id: definitionId, weight: 1},
        })
        // Not on the owner's endpoint, which the default lets them only read.
        const refused = await call(other, 'POST', `${GATEWAY}/endpoints/models/detach`, {endpoint_id: endpointId, model_definition_id: definitionId})
        assert.equal(refused.status, 403)
        assert.equal(((await ok(admin(), 'GET', `${GATEWAY}/endpoints/get?endpoint_id=${endpointId}`)).endpoint as Json).model_mappings.length, 1)
        assert.equal((await ownRows(other, 'gateway_endpoint', made.endpoint_id as string))[0]?.permission, 'MANAGE')
        await ok(other, 'POST', `${GATEWAY}/endpoints/set-tag`, {endpoint_id: made.endpoint_id, key: 'team', value: 'a'})
        await ok(other, 'DELETE', `${GATEWAY}/endpoints/delete`, {endpoint_id: made.endpoint_id})
        assert.deepEqual(await ownRows(other, 'gateway_endpoint', made.endpoint_id as string), [])
      })
    })

    it('endpoints: READ reads, USE invokes, EDIT changes, MANAGE deletes; a DENY hides', async () => {
      const definition = await createDefinition(owner, (await createSecret(owner)).secret_id as string)
      const endpoint = await createEndpoint(owner, definition.model_definition_id as string)
      const [id, name] = [endpoint.endpoint_id as string, endpoint.name as string]
      const invoke = (who: Credentials) =>
        call(who, 'POST', `/gateway/${encodeURIComponent(name)}/mlflow/invocations`, {messages: [{content: 'ping', role: 'user'}]})
      const chat = (who: Credentials) => call(who, 'POST', '/gateway/mlflow/v1/chat/completions', {messages: [{content: 'ping', role: 'user'}], model: name})
      const models = async (who: Credentials) => ((await ok(who, 'GET', '/gateway/mlflow/v1/models')).data as Json[]).map((model) => model.id as string)

      // The creator invokes; the fake provider answers.
      const answer = await invoke(owner)
      assert.equal(answer.status, 200, answer.text)
      assert.match(answer.text, /pong/)
      assert.ok((await models(owner)).includes(name))

      // READ (the default) reads and lists the endpoint but may not invoke, change or delete it.
      assert.equal((await call(other, 'GET', `${GATEWAY}/endpoints/get?endpoint_id=${id}`)).status, 200)
      assert.equal((await call(other, 'GET', `${GATEWAY}/endpoints/get?name=${encodeURIComponent(name)}`)).status, 200)
      assert.ok((await listed(other, 'endpoints/list', 'endpoints', 'endpoint_id')).includes(id))
      assert.equal((await invoke(other)).status, 403)
      assert.equal((await chat(other)).status, 403)
      assert.ok(!(await models(other)).includes(name))
      assert.equal((await call(other, 'POST', `${GATEWAY}/endpoints/set-tag`, {endpoint_id: id, key: 'stolen', value: 'yes'})).status, 403)
      assert.equal((await call(other, 'POST', `${GATEWAY}/endpoints/update`, {endpoint_id: id, name: `${name}-stolen`})).status, 403)
      assert.equal((await call(other, 'DELETE', `${GATEWAY}/endpoints/delete`, {endpoint_id: id})).status, 403)
      const seen = (await ok(admin(), 'GET', `${GATEWAY}/endpoints/get?endpoint_id=${id}`)).endpoint as Json
      assert.equal(seen.name, name)
      assert.deepEqual(seen.tags ?? [], [])

      await withRole([['gateway_endpoint', id, 'USE']], async () => {
        assert.equal((await invoke(other)).status, 200)
        const completion = await chat(other)
        assert.equal(completion.status, 200, completion.text)
        assert.ok((await models(other)).includes(name))
        assert.equal((await call(other, 'POST', `${GATEWAY}/endpoints/set-tag`, {endpoint_id: id, key: 'stolen', value: 'yes'})).status, 403)
      })
      await withRole([['gateway_endpoint', id, 'EDIT']], async () => {
        await ok(other, 'POST', `${GATEWAY}/endpoints/set-tag`, {endpoint_id: id, key: 'team', value: 'b'})
        assert.equal((await call(other, 'DELETE', `${GATEWAY}/endpoints/delete`, {endpoint_id: id})).status, 403)
      })
      await withRole([['gateway_endpoint', '*', 'DENY']], async () => {
        assert.equal((await call(other, 'GET', `${GATEWAY}/endpoints/get?endpoint_id=${id}`)).status, 403)
        assert.equal((await call(other, 'GET', `${GATEWAY}/endpoints/get?name=${encodeURIComponent(name)}`)).status, 403)
        assert.ok(!(await listed(other, 'endpoints/list', 'endpoints', 'endpoint_id')).includes(id))
        // A DENY on every endpoint also vetoes making one.
        const definitionId = definition.model_definition_id as string
        await withRole([['gateway_model_definition', definitionId, 'USE']], async () => {
          const refused = await call(other, 'POST', `${GATEWAY}/endpoints/create`, {
            model_configs: [{linkage_type: 'PRIMARY', model_definition_id: definitionId, weight: 1}],
            name: uniqueName('endpoint'),
            usage_tracking: false,
          })
          assert.equal(refused.status, 403)
        })
      })

      await withRole([['gateway_endpoint', id, 'MANAGE']], async () => {
        await ok(other, 'DELETE', `${GATEWAY}/endpoints/delete`, {endpoint_id: id})
      })
      // The creator's row went with the endpoint.
      assert.deepEqual(await ownRows(owner, 'gateway_endpoint', id), [])
    })

    it('budget policies: any user reads them, only admins write them', async () => {
      assert.equal((await call(other, 'GET', `${GATEWAY}/budgets/list`)).status, 200)
      const refused = await call(other, 'POST', `${GATEWAY}/budgets/create`, {
        budget_action: 'ALERT',
        budget_amount: 10,
        duration_unit: 'DAYS',
        duration_value: 1,
        target_scope: 'GLOBAL',
      })
      assert.equal(refused.status, 403)
      assert.deepEqual((await ok(admin(), 'GET', `${GATEWAY}/budgets/list`)).budget_policies ?? [], [])
    })
  })
}
