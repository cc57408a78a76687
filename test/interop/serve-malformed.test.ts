/**
 * Malformed values through serve in front of real MLflow servers: each is answered 400 by serve
 * itself (serve's answers carry no `sqlstate`, MLflow's do), never passed on for MLflow to fail on
 * with a 500; where plain MLflow itself answers 400, serve says exactly what MLflow says.
 */
import assert from 'node:assert/strict'
import {after, describe, it} from 'node:test'

import {MALFORMED} from '../support/malformed.js'
import {randomSecret} from '../support/mlflow-server.js'
import {PINNED_VERSIONS} from '../support/mlflow-versions.js'
import {closeRawAgent, send} from '../support/raw-http.js'
import {startServe} from '../support/serve.js'
import {acquireServer, releaseServers} from '../support/servers.js'

after(releaseServers)
after(closeRawAgent)

for (const version of PINNED_VERSIONS) {
  describe(`serve refuses malformed values itself (MLflow ${version})`, () => {
    it('answers 400 from serve for each, as MLflow words it where MLflow answers 400', async () => {
      const upstream = await acquireServer(version, 'plain')
      const serve = await startServe({upstream: upstream.url})
      try {
        const mallory = {password: `mallory-${randomSecret()}`, username: `mallory-${randomSecret().slice(0, 8)}`}
        assert.equal((await send(serve.url, serve.admin, 'POST', '/api/2.0/mlflow/users/create', {body: mallory})).status, 200)
        for (const {body, method, path, sameAsMlflow} of MALFORMED) {
          const what = `${method} ${path} ${typeof body === 'string' ? body : (JSON.stringify(body) ?? '')}`
          const options = {body, contentType: 'application/json'}
          const answer = await send(serve.url, mallory, method, path, options)
          assert.equal(answer.status, 400, `${what}: ${answer.text}`)
          assert.ok(answer.json && !('sqlstate' in answer.json), `${what}: answered by MLflow, not serve: ${answer.text}`)
          if (sameAsMlflow) {
            const plain = await send(upstream.url, undefined, method, path, options)
            assert.equal(plain.status, 400, `${what} (plain MLflow)`)
            assert.equal(answer.json.message, plain.json?.message, what)
          }
        }
      } finally {
        await serve.stop()
      }
    })
  })
}
