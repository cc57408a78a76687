/**
 * Audit lines that cannot be written are never lost silently: a line recorded after the log was
 * closed, or whose write failed, is counted (stats, and mlflowctl_log_lines_failed_total), and a
 * stop waits for the requests still being handled, so that what they record reaches the file.
 */
import assert from 'node:assert/strict'
import {mkdtemp, readFile} from 'node:fs/promises'
import {request as httpRequest} from 'node:http'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {Writable} from 'node:stream'
import {describe, it} from 'node:test'

import {AuditLog} from '../../src/server/audit.js'
import {GRANT_CHANGE} from '../support/audit-events.js'
import {seriesValue} from '../support/metrics.js'
import {basicAuth, call, type Pipeline, startPipeline} from '../support/serve-pipeline.js'

async function until(test: () => Promise<boolean> | boolean): Promise<void> {
  for (let i = 0; i < 500; i++) {
    if (await test()) return
    await new Promise((resolve) => setTimeout(resolve, 10))
  }

  throw new Error('never happened')
}

const failedMetric = async (pipeline: Pipeline) =>
  seriesValue((await pipeline.serve.metrics.exposition()).body, 'mlflowctl_log_lines_failed_total', {log: 'audit'})

describe('audit lines that cannot be written are counted', () => {
  it('an event recorded after the log was closed is counted as failed, and logged once', async () => {
    const written: string[] = []
    const log: string[] = []
    let metered = 0
    const stream = new Writable({
      write(chunk: Buffer, _encoding, done) {
        if (chunk.length > 0) written.push(chunk.toString())
        done()
      },
    })
    const audit = AuditLog.onStream(stream, (line) => log.push(line), {onFail: () => metered++})
    audit.record(GRANT_CHANGE)
    await audit.close()
    audit.record(GRANT_CHANGE)
    audit.record({client: '10.0.0.2', event: 'auth.failed', reason: 'no-credentials'})
    assert.equal(written.length, 1)
    assert.deepEqual(audit.stats(), {dropped: 0, failed: 2, lines: 1})
    assert.equal(metered, 2)
    assert.equal(log.length, 1, log.join('\n'))
    assert.match(log[0], /^error: audit log on standard output: an event \(change\) was recorded after the log was closed and is lost/)
  })

  it('lines whose write failed are exposed as mlflowctl_log_lines_failed_total{log="audit"}', async () => {
    const full = await startPipeline({serve: {auditLog: '/dev/full'}})
    try {
      assert.equal(await failedMetric(full), 0)
      for (const username of ['m1', 'm2', 'm3']) {
        const credentials = {password: 'not-the-password-1', username}
        assert.equal((await call(full.url, 'GET', '/api/2.0/mlflow/experiments/get?experiment_id=1', {credentials})).status, 401)
      }

      await until(() => full.serve.auditStats()?.failed === 3)
      assert.equal(await failedMetric(full), 3)
      // Not a line dropped for a destination that does not keep up.
      assert.equal(seriesValue((await full.serve.metrics.exposition()).body, 'mlflowctl_log_lines_dropped_total', {log: 'audit'}), 0)
    } finally {
      await full.close()
    }
  })
})

describe('a stop waits for the requests still being handled', () => {
  it('the grant of an experiment MLflow answered after its client left and the stop began is in the audit log', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'mlflowctl-audit-loss-'))
    const path = join(dir, 'audit.jsonl')
    const pipeline = await startPipeline({serve: {auditLog: path}})
    const bob = {password: 'bob-password-long-1', username: 'bob'}
    await pipeline.createUser(bob)
    // MLflow holds its answer until told.
    let answer: ((body: unknown) => void) | undefined
    pipeline.upstream.handle((request, response) => {
      if (!request.url.pathname.endsWith('/experiments/create')) return
      response.writeHead(200, {'content-type': 'application/json'})
      response.flushHeaders()
      answer = (body) => response.end(JSON.stringify(body))
    })
    const body = JSON.stringify({name: 'left-behind'})
    const client = httpRequest(`${pipeline.url}/api/2.0/mlflow/experiments/create`, {
      headers: {authorization: basicAuth(bob), 'content-length': Buffer.byteLength(body), 'content-type': 'application/json'},
      method: 'POST',
    })
    client.on('error', () => {})
    client.end(body)
    await until(() => answer !== undefined)
    // The client leaves; serve sees its connection close.
    client.destroy()
    await until(async () => (seriesValue((await pipeline.serve.metrics.exposition()).body, 'mlflowctl_requests_total', {decision: 'allow'}) ?? 0) > 0)
    const closing = pipeline.close()
    answer!({experiment_id: '7'})
    await closing
    const lines = (await readFile(path, 'utf8'))
      .split('\n')
      .filter(Boolean)
      .map((line) => JSON.parse(line) as Record<string, unknown>)
    const grants = lines.filter((line) => line.operation === 'creator-grant')
    assert.deepEqual(
      grants.map((line) => [line.user, line.target]),
      [['bob', {resource_id: '7', resource_type: 'experiment', username: 'bob'}]],
      JSON.stringify(lines),
    )
    assert.equal(pipeline.serve.auditStats()?.failed, 0)
  })
})
