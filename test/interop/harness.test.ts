/**
 * Proves the interop harness: real MLflow servers of each pinned version, driven by MLflow's
 * own Python clients, and the reason each version is pinned.
 */
import assert from 'node:assert/strict'
import {after, before, describe, it} from 'node:test'

import {type ServerInfo} from '../support/mlflow-server.js'
import {MLFLOW_VERSIONS, PINNED_VERSIONS} from '../support/mlflow-versions.js'
import {expectError, PythonClient} from '../support/python-client.js'
import {acquireServer, releaseServers, uniqueName} from '../support/servers.js'

after(releaseServers)

for (const version of PINNED_VERSIONS) {
  describe(`MLflow ${version} basic-auth server`, () => {
    let server: ServerInfo
    before(async () => {
      server = await acquireServer(version, 'basic-auth')
    })

    it('lets the admin create a user with the Python auth client, who then authenticates', async () => {
      const username = uniqueName('alice')
      const password = `pw-${uniqueName('secret')}`
      const admin = new PythonClient({credentials: server.admin, trackingUri: server.url, version})
      const created = await admin.call('auth', 'create_user', username, password)
      assert.equal(created.username, username)
      assert.equal(created.is_admin, false)

      const user = new PythonClient({credentials: {password, username}, trackingUri: server.url, version})
      const [self, experiments] = await user.batch([
        {args: [username], client: 'auth', method: 'get_user'},
        {client: 'tracking', method: 'search_experiments'},
      ])
      assert.equal(self.ok?.username, username)
      assert.ok(Array.isArray(experiments.ok), `search_experiments failed: ${JSON.stringify(experiments.error)}`)

      const impostor = new PythonClient({credentials: {password: `${password}-wrong`, username}, trackingUri: server.url, version})
      const [rejected] = await impostor.batch([{client: 'tracking', method: 'search_experiments'}])
      assert.match(expectError(rejected).message, /401|credentials/i)
    })

    it('refuses user creation to a request without credentials', async () => {
      const anonymous = new PythonClient({trackingUri: server.url, version})
      const [result] = await anonymous.batch([{args: [uniqueName('mallory'), 'long-enough-password'], client: 'auth', method: 'create_user'}])
      assert.match(expectError(result).message, /401|credentials/i)
    })

    const legacy = version === MLFLOW_VERSIONS.legacy
    it(`${legacy ? 'serves' : 'no longer serves'} the per-resource experiment permission endpoints`, async () => {
      const response = await fetch(`${server.url}/api/2.0/mlflow/experiments/permissions/get?experiment_id=0&username=${server.admin!.username}`, {
        headers: {authorization: `Basic ${Buffer.from(`${server.admin!.username}:${server.admin!.password}`).toString('base64')}`},
      })
      assert.equal(response.status, 404)
      if (legacy) {
        assert.equal(((await response.json()) as {error_code: string}).error_code, 'RESOURCE_DOES_NOT_EXIST')
      } else {
        assert.match(response.headers.get('content-type') ?? '', /text\/html/)
      }
    })
  })

  describe(`MLflow ${version} plain server`, () => {
    it('serves the tracking API to the Python client without credentials', async () => {
      const server = await acquireServer(version, 'plain')
      const name = uniqueName('harness')
      const client = new PythonClient({trackingUri: server.url, version})
      const [created, fetched] = await client.batch([
        {args: [name], client: 'tracking', method: 'create_experiment'},
        {args: [name], client: 'tracking', method: 'get_experiment_by_name'},
      ])
      assert.equal(typeof created.ok, 'string')
      assert.equal(fetched.ok?.experiment_id, created.ok)
      assert.equal(fetched.ok?.name, name)
    })
  })
}
