/**
 * Malformed values through serve in front of real MLflow servers: each is answered 400 by serve
 * itself, never passed on for MLflow to fail on with a 500 (a relay between serve and MLflow
 * records every request line MLflow is sent); where plain MLflow itself answers 400, serve says
 * exactly what MLflow says.
 */
import assert from 'node:assert/strict'
import {connect, createServer, type Server} from 'node:net'
import {after, describe, it} from 'node:test'

import {MALFORMED} from '../support/malformed.js'
import {randomSecret} from '../support/mlflow-server.js'
import {PINNED_VERSIONS} from '../support/mlflow-versions.js'
import {closeRawAgent, send} from '../support/raw-http.js'
import {startServe} from '../support/serve.js'
import {acquireServer, releaseServers} from '../support/servers.js'

after(releaseServers)
after(closeRawAgent)

/** A TCP relay to `upstream` that records the request lines it carries. */
async function recordingRelay(upstream: string): Promise<{lines: string[]; server: Server; url: string}> {
  const target = new URL(upstream)
  const lines: string[] = []
  const server = createServer((client) => {
    const mlflow = connect(Number(target.port), target.hostname)
    client.on('data', (chunk) => lines.push(...(chunk.toString('latin1').match(/^[A-Z]+ \/\S* HTTP\/1\.1(?=\r$)/gm) ?? [])))
    client.pipe(mlflow).pipe(client)
    const end = () => (client.destroy(), mlflow.destroy())
    client.on('error', end)
    mlflow.on('error', end)
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  return {lines, server, url: `http://127.0.0.1:${(server.address() as {port: number}).port}`}
}

for (const version of PINNED_VERSIONS) {
  describe(`serve refuses malformed values itself (MLflow ${version})`, () => {
    it('answers 400 from serve for each, as MLflow words it where MLflow answers 400', async () => {
      const upstream = await acquireServer(version, 'plain')
      const relay = await recordingRelay(upstream.url)
      const serve = await startServe({upstream: relay.url})
      try {
        const mallory = {password: `mallory-${randomSecret()}`, username: `mallory-${randomSecret().slice(0, 8)}`}
        assert.equal((await send(serve.url, serve.admin, 'POST', '/api/2.0/mlflow/users/create', {body: mallory})).status, 200)
        for (const {body, method, path, sameAsMlflow} of MALFORMED) {
          const what = `${method} ${path} ${typeof body === 'string' ? body : (JSON.stringify(body) ?? '')}`
          const options = {body, contentType: 'application/json'}
          relay.lines.length = 0
          const answer = await send(serve.url, mallory, method, path, options)
          assert.equal(answer.status, 400, `${what}: ${answer.text}`)
          assert.deepEqual(relay.lines, [], `${what}: reached MLflow: ${answer.text}`)
          if (sameAsMlflow) {
            const plain = await send(upstream.url, undefined, method, path, options)
            assert.equal(plain.status, 400, `${what} (plain MLflow)`)
            assert.equal(answer.json?.message, plain.json?.message, what)
          }
        }
        // The relay does see what serve forwards: the empty records above mean something.
        relay.lines.length = 0
        assert.equal((await send(serve.url, mallory, 'GET', '/api/2.0/mlflow/experiments/get?experiment_id=0')).status, 200)
        assert.deepEqual(relay.lines, ['GET /api/2.0/mlflow/experiments/get?experiment_id=0 HTTP/1.1'])
      } finally {
        await serve.stop()
        relay.server.close()
      }
    })
  })
}
