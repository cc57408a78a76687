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
