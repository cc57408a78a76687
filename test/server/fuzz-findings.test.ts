/**
 * What the fuzz run (test/interop/serve-fuzz.test.ts) found, each kept as a regression test in
 * process, in front of a fake MLflow that records what reaches it.
 */
import assert from 'node:assert/strict'
import {after, before, describe, it} from 'node:test'

import {sendRaw} from '../support/raw-socket.js'
import {answerJson, call, type Pipeline, parseJson, startPipeline} from '../support/serve-pipeline.js'

const ALICE = {password: 'alice-password-for-the-findings', username: 'alice'}

let pipeline: Pipeline
let port: number

before(async () => {
  pipeline = await startPipeline({
    handler(request, response) {
      if (request.url.pathname === '/health') answerJson(response, 200, {status: 'OK'})
    },
  })
  port = Number(new URL(pipeline.url).port)
  await pipeline.createUser(ALICE)
})

after(async () => {
  await pipeline.close()
})

describe('serve: what the fuzz run found', () => {
  it("a CONNECT (a tunnel) is refused with 405 and MLflow's JSON error, not dropped unanswered", async () => {
    const started = pipeline.upstream.started.length
    for (const target of ['127.0.0.1:443', '/api/2.0/mlflow/users/create']) {
      const answer = await sendRaw(port, Buffer.from(`CONNECT ${target} HTTP/1.1\r\nHost: ${target}\r\nContent-Length: 2\r\n\r\n{}`), {hangAfterMs: 20_000})
      assert.equal(answer.status, 405, answer.raw)
      assert.equal((JSON.parse(answer.body) as {error_code: string}).error_code, 'BAD_REQUEST')
      assert.match(answer.head, /^connection: close$/im)
    }

    assert.equal(pipeline.upstream.started.length, started, 'nothing reached MLflow')
    // And serve goes on.
    assert.equal((await call(pipeline.url, 'GET', '/health')).status, 200)
  })

  it('a CONNECT followed by more bytes than a socket buffers, its client gone: serve lets the connection go and still stops', {timeout: 60_000}, async () => {
    const own = await startPipeline()
    const ownPort = Number(new URL(own.url).port)
    const {connect} = await import('node:net')
    // Far more than the kernel buffers for an unread socket: unless serve reads (or closes), the
    // client's FIN never gets through and serve's socket would stay half-closed for ever.
    const body = Buffer.alloc(8 * 1024 * 1024, 'x')
    await new Promise<void>((resolve) => {
      const socket = connect({host: '127.0.0.1', port: ownPort}, () => {
        socket.write(`CONNECT 127.0.0.1:443 HTTP/1.1\r\nHost: x\r\nContent-Length: ${body.length}\r\n\r\n`)
        socket.write(body)
        setTimeout(() => {
          socket.destroy()
          resolve()
        }, 500)
      })
      socket.on('error', () => {})
    })
    // Stopping waits for every connection: it returns only once serve let this one go.
    await own.close()
  })

  it('X-MLFLOW-WORKSPACE on a public route is refused (400) for anonymous and non-admin callers, never forwarded', async () => {
    const started = pipeline.upstream.started.length
    for (const credentials of [undefined, ALICE]) {
      for (const path of ['/health', '/static-files/favicon.ico', '/favicon.ico']) {
        const answer = await call(pipeline.url, 'GET', path, {credentials, headers: {'x-mlflow-workspace': 'other'}})
        assert.equal(answer.status, 400, `${path}: ${answer.body}`)
        assert.match(String(parseJson(answer).message), /workspaces/)
      }
    }

    assert.equal(pipeline.upstream.started.length, started, 'nothing reached MLflow')
    // Without the header the public route is forwarded as before.
    assert.equal((await call(pipeline.url, 'GET', '/health')).status, 200)
  })
})
