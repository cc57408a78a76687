/**
 * serve under slow and stalling clients (in process, in front of a fake MLflow, with short
 * timeouts so the run takes seconds): every quiet client is closed by its timeout, file
 * descriptors return to where they were, a slow but steady upload completes, and a body that
 * never arrives whole is never passed on.
 */
import assert from 'node:assert/strict'
import {readdirSync} from 'node:fs'
import {request as httpRequest} from 'node:http'
import {connect} from 'node:net'
import {after, before, describe, it} from 'node:test'

import {READ_AHEAD_BYTES} from '../../src/server/proxy.js'
import {answerJson, basicAuth, call, type Pipeline, startPipeline} from '../support/serve-pipeline.js'

const ALICE = {password: 'alice-password-for-timeouts', username: 'alice'}
const TIMEOUTS = {headerMs: 1500, idleMs: 1000, keepAliveMs: 1000}

let pipeline: Pipeline
let port: number

before(async () => {
  pipeline = await startPipeline({
    handler(request, response) {
      const route = `${request.method} ${request.url.pathname}`
      if (route === 'GET /api/2.0/mlflow/experiments/get') answerJson(response, 200, {experiment: {experiment_id: '1'}})
      if (request.method === 'PUT') answerJson(response, 200, {received: request.body.length})
    },
    // Its hundreds of quiet clients share one loopback address: the limit per client must not close them first.
    serve: {clientLimits: {maxConnectionsPerClient: 1000}, clientTimeouts: TIMEOUTS},
  })
  port = Number(new URL(pipeline.url).port)
  await pipeline.createUser(ALICE, {1: 'EDIT'})
})

after(async () => {
  await pipeline.close()
})

const openDescriptors = () => readdirSync('/proc/self/fd').length

interface RawResult {
  /** Everything serve wrote before it closed the connection. */
  received: string
}

/**
 * A raw connection that writes `initial`, then `trickle` every 300 ms (if given), and resolves
 * when serve closes it. It never closes by itself.
 */
function rawClient(initial: Buffer | string, trickle?: string): Promise<RawResult> {
  return new Promise((resolve) => {
    let received = ''
    let timer: NodeJS.Timeout | undefined
    const socket = connect(port, '127.0.0.1', () => {
      socket.write(initial)
      if (trickle) timer = setInterval(() => socket.write(trickle), 300)
    })
    socket.on('data', (chunk: Buffer) => {
      received += chunk.toString('latin1')
    })
    socket.on('error', () => {}) // a reset is a close too
    socket.on('close', () => {
      clearInterval(timer)
      resolve({received})
    })
  })
}

const auth = `Authorization: ${basicAuth(ALICE)}\r\n`

/** Headers of a request whose body is declared `declared` bytes long, then `sent` bytes of it. */
function stalledBody(method: string, path: string, declared: number, sent: number): Buffer {
  const head = `${method} ${path} HTTP/1.1\r\nHost: serve\r\n${auth}Content-Type: application/json\r\nContent-Length: ${declared}\r\n\r\n`
  return Buffer.concat([Buffer.from(head), Buffer.alloc(sent, 0x20)])
}

async function waitFor(predicate: () => boolean): Promise<void> {
  // Bounded by the test's own timeout.
  while (!predicate()) await new Promise((resolve) => setTimeout(resolve, 50))
}

describe('serve: client timeouts', {timeout: 60_000}, () => {
  it('closes 300 slow or stalled clients by their timeouts while a verified user is served, and gives back every descriptor', async () => {
    const verified = () => call(pipeline.url, 'GET', '/api/2.0/mlflow/experiments/get?experiment_id=1', {credentials: ALICE})
    assert.equal((await verified()).status, 200)
    // The pool's kept-alive upstream connection from that request is part of the baseline until it expires.
    const baseline = openDescriptors()
    const logBefore = pipeline.log.length

    const slowHeaders = Array.from({length: 120}, (_, i) =>
      rawClient(`GET /api/2.0/mlflow/experiments/get?experiment_id=${i} HTTP/1.1\r\nHost: serve\r\nX-Slow: `, 'a'),
    )
    const stalledJson = Array.from({length: 80}, (_, i) => rawClient(stalledBody('POST', `/api/2.0/mlflow/experiments/update?stalled=json-${i}`, 100, 10)))
    const stalledUploads = Array.from({length: 80}, (_, i) =>
      rawClient(stalledBody('PUT', `/api/2.0/mlflow-artifacts/artifacts/1/r/artifacts/small-${i}`, 100, 10)),
    )
    const stalledLarge = Array.from({length: 10}, (_, i) =>
      rawClient(stalledBody('PUT', `/api/2.0/mlflow-artifacts/artifacts/1/r/artifacts/large-${i}`, 2 * READ_AHEAD_BYTES, READ_AHEAD_BYTES + 1024)),
    )
    const idleKeepAlive = Array.from({length: 10}, () =>
      rawClient(`GET /api/2.0/mlflow/experiments/get?experiment_id=1 HTTP/1.1\r\nHost: serve\r\n${auth}\r\n`),
    )
    // Meanwhile the verified user is served.
    for (let i = 0; i < 5; i++) assert.equal((await verified()).status, 200)

    for (const {received} of await Promise.all(slowHeaders)) assert.match(received, /^HTTP\/1\.1 408 /)
    for (const {received} of await Promise.all([...stalledJson, ...stalledUploads])) {
      assert.match(received, /^HTTP\/1\.1 408 /)
      assert.match(received, /"error_code":"BAD_REQUEST","message":"The request body stopped arriving/)
    }

    // Streamed: the upstream had the start, and lost it when serve cut the request.
    for (const {received} of await Promise.all(stalledLarge)) assert.match(received, /^(HTTP\/1\.1 408 |)$|^HTTP\/1\.1 408 /)
    for (const {received} of await Promise.all(idleKeepAlive)) {
      assert.match(received, /^HTTP\/1\.1 200 /)
      assert.doesNotMatch(received, /408/)
    }

    assert.equal(pipeline.log.slice(logBefore).filter((line) => line.includes('no byte of the request body')).length, 170)
    // Nothing stalled reached the upstream whole; the small ones did not reach it at all.
    assert.deepEqual(
      pipeline.upstream.seen.filter((seen) => /stalled|small|large/.test(seen.url.href)),
      [],
    )
    assert.deepEqual(
      pipeline.upstream.started.filter((line) => /stalled|small/.test(line)),
      [],
    )
    await waitFor(() => openDescriptors() <= baseline)
  })

  it('completes a slow, steady upload that takes longer in total than the idle timeout', async () => {
    const chunk = 80 * 1024
    const chunks = 16 // 1.25 MiB, streamed (larger than serve reads ahead), over about 4 s
    const client = httpRequest({
      agent: false,
      headers: {authorization: basicAuth(ALICE), 'content-length': String(chunk * chunks)},
      host: '127.0.0.1',
      method: 'PUT',
      path: '/api/2.0/mlflow-artifacts/artifacts/1/r/artifacts/steady.bin',
      port,
    })
    const answer = new Promise<{status: number; text: string}>((resolve, reject) => {
      client.on('response', (response) => {
        let text = ''
        response.on('data', (data: Buffer) => (text += data.toString()))
        response.on('end', () => resolve({status: response.statusCode!, text}))
      })
      client.on('error', reject)
    })
    for (let i = 0; i < chunks; i++) {
      client.write(Buffer.alloc(chunk, i))
      await new Promise((resolve) => setTimeout(resolve, 250))
    }

    client.end()
    const {status, text} = await answer
    assert.equal(status, 200)
    assert.deepEqual(JSON.parse(text), {received: chunk * chunks})
  })

  it('answers 408 (or closes) a Content-Length larger than the body under concurrent load, and never forwards it', async () => {
    const short = Array.from({length: 60}, (_, i) =>
      rawClient(
        stalledBody(
          i % 2 ? 'PUT' : 'POST',
          i % 2 ? `/api/2.0/mlflow-artifacts/artifacts/1/r/artifacts/short-${i}` : `/api/2.0/mlflow/experiments/update?short=${i}`,
          1,
          0,
        ),
      ),
    )
    const normal = Array.from({length: 20}, () => call(pipeline.url, 'GET', '/api/2.0/mlflow/experiments/get?experiment_id=1', {credentials: ALICE}))
    for (const answer of await Promise.all(normal)) assert.equal(answer.status, 200)
    for (const {received} of await Promise.all(short)) assert.match(received, /^(HTTP\/1\.1 408 [^]*)?$/)
    assert.deepEqual(
      pipeline.upstream.started.filter((line) => line.includes('short')),
      [],
    )
  })
})
