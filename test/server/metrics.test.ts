/**
 * serve's per-request metrics are counted in plain tallies and handed to prom-client when read:
 * the exposition must be the one prom-client's own Counter and Histogram write for the same
 * observations, byte for byte (series order, labels, buckets, sums), across several reads.
 */
import assert from 'node:assert/strict'
import {describe, it} from 'node:test'

import {Counter, Histogram, Registry} from 'prom-client'

import {type Decision, ServeMetrics} from '../../src/server/metrics.js'

const FAMILIES = new Set([
  'mlflowctl_credential_cache_lookups_total',
  'mlflowctl_request_duration_seconds',
  'mlflowctl_requests_total',
  'mlflowctl_upstream_latency_seconds',
])

/** The blocks (HELP, TYPE, series) of the families above, in order. */
function blocks(text: string): string {
  return text
    .trimEnd()
    .split('\n\n')
    .filter((block) => FAMILIES.has(/^# HELP (\S+)/.exec(block)![1]))
    .join('\n\n')
}

/** The same metrics as prom-client's own objects, fed one observation at a time. */
function reference() {
  const registers = [new Registry()]
  const requests = new Counter({
    help: 'Requests answered, by route family (route table template), method, status and decision.',
    labelNames: ['family', 'method', 'status', 'decision'],
    name: 'mlflowctl_requests_total',
    registers,
  })
  const duration = new Histogram({
    help: 'Time from a request to the end of its answer, by decision.',
    labelNames: ['decision'],
    name: 'mlflowctl_request_duration_seconds',
    registers,
  })
  const upstream = new Histogram({
    help: "Time from sending a request to MLflow to its answer's head; outcome: answered, or failed (no answer).",
    labelNames: ['outcome'],
    name: 'mlflowctl_upstream_latency_seconds',
    registers,
  })
  const lookups = new Counter({
    help: 'Credential checks by whether they were answered from memory (hit) or needed a password derivation (miss).',
    labelNames: ['result'],
    name: 'mlflowctl_credential_cache_lookups_total',
    registers,
  })
  for (const result of ['hit', 'miss']) lookups.inc({result}, 0)
  return {duration, lookups, registry: registers[0], requests, upstream}
}

describe('serve metrics', () => {
  it("write the per-request series exactly as prom-client's Counter and Histogram would, read after read", async () => {
    const metrics = new ServeMetrics()
    const ref = reference()
    const decisions: Decision[] = ['allow', 'deny', 'unauthenticated', 'allow', 'public', 'error']
    const families = ['/api/2.0/mlflow/experiments/get', 'unknown', '/api/2.0/mlflow/runs/get']
    const methods = ['GET', 'POST', 'BREW', 'HEAD']
    // Bucket bounds exactly, between them, beyond the last, and sums that round.
    const seconds = [0.005, 0.0049, 0.1, 0.1000001, 10, 11, 0.3, 0.000_123, 2.5, 1e-9, 0.7]
    let step = 0
    for (const batch of [7, 0, 40, 3]) {
      for (let i = 0; i < batch; i++, step++) {
        const decision = decisions[step % decisions.length]
        const family = families[(step * 7) % families.length]
        const method = methods[(step * 5) % methods.length]
        const status = [200, 403, 401, 404][step % 4]
        const value = seconds[step % seconds.length]
        metrics.request({decision, family, method, seconds: value, status})
        ref.requests.inc({decision, family, method: method === 'BREW' ? 'other' : method, status: String(status)})
        ref.duration.observe({decision}, value)
        const answered = step % 3 !== 0
        metrics.upstream(value * 2, answered)
        ref.upstream.observe({outcome: answered ? 'answered' : 'failed'}, value * 2)
        const hit = step % 5 !== 0
        metrics.credentialLookup(hit)
        ref.lookups.inc({result: hit ? 'hit' : 'miss'})
      }

      const [mine, theirs] = [blocks((await metrics.exposition()).body), blocks(await ref.registry.metrics())]
      assert.ok(theirs.includes('mlflowctl_request_duration_seconds_bucket'), theirs)
      assert.equal(mine, theirs)
    }
  })
})
