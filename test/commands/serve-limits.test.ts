/**
 * `mlflowctl serve`'s limits as an operator sets them (the built CLI, a fake upstream on
 * loopback): a flag and an MLFLOWCTL_* variable each reach serve, and a value out of range stops
 * it before it listens.
 */
import assert from 'node:assert/strict'
import {spawn} from 'node:child_process'
import {once} from 'node:events'
import {request as httpRequest} from 'node:http'
import {after, before, describe, it} from 'node:test'

import {ExitCode} from '../../src/core/errors.js'
import {CLI} from '../support/cli.js'
import {closeOpened, holdConnections, openConnection} from '../support/held-connections.js'
import {type RunningServe, startServe} from '../support/serve.js'
import {startStubUpstream} from '../support/stub-upstream.js'

const cleanups: Array<() => Promise<unknown>> = []
after(async () => {
  await closeOpened()
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup()
})

let upstream: string

before(async () => {
  const stub = await startStubUpstream()
  cleanups.push(stub.close)
  upstream = stub.url
})

function statusWithHeaders(url: string, count: number): Promise<number> {
  const headers = Object.fromEntries(Array.from({length: count}, (_, i) => [`x-field-${i}`, String(i)]))
  return new Promise((resolve, reject) => {
    const request = httpRequest(`${url}/health`, {agent: false, headers}, (response) => {
      response.resume()
      resolve(response.statusCode!)
    })
    request.on('error', reject)
    request.end()
  })
}

describe('mlflowctl serve: limits', {timeout: 60_000}, () => {
  let serve: RunningServe

  it('takes --max-headers and MLFLOWCTL_MAX_CONNECTIONS_PER_CLIENT', async () => {
    serve = await startServe({env: {MLFLOWCTL_MAX_CONNECTIONS_PER_CLIENT: '2'}, extraArgs: ['--max-headers', '16'], upstream})
    cleanups.push(() => serve.stop())
    // Host and Connection, and 14 more: 16 fields; one more is too many.
    assert.equal(await statusWithHeaders(serve.url, 14), 200)
    assert.equal(await statusWithHeaders(serve.url, 15), 431)

    const port = Number(new URL(serve.url).port)
    await holdConnections(port, 2)
    assert.equal((await openConnection(port)).answered, false)
    assert.match(serve.output(), /warning: 127\.0\.0\.1 has 2 connections open, serve's limit per client \(--max-connections-per-client\)/)
  })

  it('refuses a limit out of range before it listens (exit 2)', async () => {
    const child = spawn(process.execPath, [CLI, 'serve', '--proxy-to', upstream, '--port', '0', '--max-headers', '5'], {stdio: ['ignore', 'ignore', 'pipe']})
    let stderr = ''
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()))
    const [code] = await once(child, 'exit')
    assert.equal(code, ExitCode.Usage)
    assert.match(stderr, /--max-headers[^]*greater than or equal to 16/)
    assert.doesNotMatch(stderr, /listening on/)
  })
})
