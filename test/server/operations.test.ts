/**
 * serve's operations surface in process, in front of a fake MLflow: the metrics each request
 * leaves (route family, status, decision; upstream latency; credential cache; store writes), the
 * liveness and readiness answers (MLflow away, the store unfit), the operations address, the
 * access log's lines, and the logger's levels and redaction.
 */
import assert from 'node:assert/strict'
import {after, before, describe, it} from 'node:test'

import {type RequestRecord} from '../../src/server/app.js'
import {accessLine} from '../../src/server/access-log.js'
import {Health} from '../../src/server/health.js'
import {createLogger, messageLog} from '../../src/server/logger.js'
import {parseListenAddress} from '../../src/server/ops-endpoint.js'
import {type Upstream} from '../../src/server/proxy.js'
import {type Store, type StoreHealth} from '../../src/server/store/store.js'
import {seriesValue} from '../support/metrics.js'
import {startPostgres} from '../support/postgres.js'
import {answerJson, basicAuth, call, type Pipeline, parseJson, startPipeline} from '../support/serve-pipeline.js'

const ALICE = {password: 'alice-password-for-operations', username: 'alice'}

let pipeline: Pipeline
/** Whether the fake MLflow's /health answers 200. */
let mlflowHealthy = true
const accessLines: string[] = []

before(async () => {
  pipeline = await startPipeline({
    handler(request, response) {
      const route = `${request.method} ${request.url.pathname}`
      if (route === 'GET /health') answerJson(response, mlflowHealthy ? 200 : 503, mlflowHealthy ? 'OK' : {error: 'down'})
      if (route === 'GET /api/2.0/mlflow/experiments/get')
        answerJson(response, 200, {experiment: {experiment_id: request.url.searchParams.get('experiment_id')}})
    },
    serve: {
      accessLog: {write: (line: string) => accessLines.push(line)},
      metricsAddress: {host: '127.0.0.1', port: 0},
      // Every readiness check asks MLflow again, so a test sees a change at once.
      readiness: {intervalMs: 0},
    },
  })
  await pipeline.createUser(ALICE, {1: 'READ', 2: 'NO_PERMISSIONS'})
})

after(async () => {
  await pipeline.close()
})

async function scrape(base = pipeline.serve.metricsUrl!): Promise<string> {
  const answer = await call(base, 'GET', '/metrics')
  assert.equal(answer.status, 200)
  assert.match(String(answer.headers['content-type']), /^text\/plain/)
  return answer.body
}

/** /-/ready's answer once it has this status (the store notices a database away, or back, within its poll). */
async function waitForStatus(base: string, status: number): Promise<Awaited<ReturnType<typeof call>>> {
  let answer = await call(base, 'GET', '/-/ready')
  for (let i = 0; answer.status !== status && i < 300; i++) {
    await new Promise((resolve) => setTimeout(resolve, 100))
    answer = await call(base, 'GET', '/-/ready')
  }

  assert.equal(answer.status, status, answer.body)
  return answer
}

const series = seriesValue

describe('serve operations: metrics', () => {
  it('counts requests by route family, status and decision, never by raw path or user', async () => {
    const family = '/api/2.0/mlflow/experiments/get'
    const allowed = {decision: 'allow', family, method: 'GET', status: '200'}
    const denied = {decision: 'deny', family, method: 'GET', status: '403'}
    const before = await scrape()
    assert.equal((await call(pipeline.url, 'GET', `${family}?experiment_id=1`, {credentials: ALICE})).status, 200)
    assert.equal((await call(pipeline.url, 'GET', `${family}?experiment_id=1`, {credentials: ALICE})).status, 200)
    assert.equal((await call(pipeline.url, 'GET', `${family}?experiment_id=2`, {credentials: ALICE})).status, 403)
    assert.equal((await call(pipeline.url, 'GET', `${family}?experiment_id=1`)).status, 401)
    assert.equal((await call(pipeline.url, 'GET', '/api/2.0/mlflow/users/current', {credentials: ALICE})).status, 200)
    assert.equal((await call(pipeline.url, 'GET', '/api/2.0/mlflow/secret-looking-path-x1', {credentials: ALICE})).status, 403)
    const text = await scrape()
    const delta = (labels: Record<string, string>) =>
      (series(text, 'mlflowctl_requests_total', labels) ?? 0) - (series(before, 'mlflowctl_requests_total', labels) ?? 0)
    assert.equal(delta(allowed), 2)
    assert.equal(delta(denied), 1)
    assert.equal(delta({decision: 'unauthenticated', family, status: '401'}), 1)
    assert.equal(delta({decision: 'local', family: '/api/2.0/mlflow/users/current', status: '200'}), 1)
    assert.equal(delta({decision: 'deny', family: 'unknown', status: '403'}), 1)
    // Bounded labels: no path the client chose, no query, no user name.
    assert.doesNotMatch(text, /secret-looking-path-x1|experiment_id|alice/)
    assert.ok(series(text, 'mlflowctl_request_duration_seconds_count', {decision: 'allow'})! >= 2)
  })

  it('measures upstream latency, the credential cache and store writes; declares lockouts and token logins', async () => {
    const before = await scrape()
    const bob = {password: 'bob-password-for-operations', username: 'bob'}
    await pipeline.createUser(bob, {1: 'READ'})
    // The first request derives bob's password (a miss), the second finds it in memory (a hit).
    await call(pipeline.url, 'GET', '/api/2.0/mlflow/experiments/get?experiment_id=1', {credentials: bob})
    await call(pipeline.url, 'GET', '/api/2.0/mlflow/experiments/get?experiment_id=1', {credentials: bob})
    const text = await scrape()
    const delta = (name: string, labels: Record<string, string> = {}) => (series(text, name, labels) ?? 0) - (series(before, name, labels) ?? 0)
    assert.ok(delta('mlflowctl_credential_cache_lookups_total', {result: 'miss'}) >= 1)
    assert.ok(delta('mlflowctl_credential_cache_lookups_total', {result: 'hit'}) >= 1)
    assert.ok(delta('mlflowctl_upstream_latency_seconds_count', {outcome: 'answered'}) >= 2)
    // bob's user and his grant: durable writes of the JSON store.
    assert.ok(delta('mlflowctl_store_write_duration_seconds_count', {outcome: 'ok'}) >= 2)
    assert.equal(series(text, 'mlflowctl_lockouts_total'), 0)
    assert.equal(series(text, 'mlflowctl_token_authentications_total', {result: 'verified'}), 0)
    pipeline.serve.metrics.lockout()
    pipeline.serve.metrics.tokenAuthentication('rejected')
    const later = await scrape()
    assert.equal(series(later, 'mlflowctl_lockouts_total'), 1)
    assert.equal(series(later, 'mlflowctl_token_authentications_total', {result: 'rejected'}), 1)
    // Node's process metrics, with serve's prefix.
    assert.ok(series(later, 'mlflowctl_process_cpu_user_seconds_total') !== undefined)
  })

  it('the operations address serves /metrics, /-/live and /-/ready, and nothing else', async () => {
    const base = pipeline.serve.metricsUrl!
    assert.equal((await call(base, 'GET', '/-/live')).status, 200)
    assert.equal((await call(base, 'GET', '/-/ready')).status, 200)
    assert.equal((await call(base, 'GET', '/api/2.0/mlflow/experiments/get?experiment_id=1', {credentials: ALICE})).status, 404)
    assert.equal((await call(base, 'POST', '/metrics')).status, 405)
    assert.equal(pipeline.upstream.seen.filter((seen) => seen.url.pathname.startsWith('/api/')).length > 0, true)
  })
})

describe('serve operations: health', () => {
  it('/-/live and /-/ready need no login, pass through the route table, and reveal nothing', async () => {
    const live = await call(pipeline.url, 'GET', '/-/live')
    assert.equal(live.status, 200)
    assert.deepEqual(parseJson(live), {status: 'live'})
    const ready = await call(pipeline.url, 'GET', '/-/ready')
    assert.equal(ready.status, 200)
    assert.deepEqual(parseJson(ready), {checks: {store: 'ok', upstream: 'ok'}, status: 'ready'})
    assert.equal(ready.headers['cache-control'], 'no-store')
    // The route table decides them: another method there is an unknown route (admins only).
    assert.equal((await call(pipeline.url, 'POST', '/-/ready')).status, 401)
  })

  it('/-/ready turns 503 while MLflow does not answer its /health, and back', async () => {
    mlflowHealthy = false
    try {
      const down = await call(pipeline.url, 'GET', '/-/ready')
      assert.equal(down.status, 503)
      assert.deepEqual(parseJson(down), {checks: {store: 'ok', upstream: 'unreachable'}, status: 'not ready'})
      assert.equal((await call(pipeline.serve.metricsUrl!, 'GET', '/-/ready')).status, 503)
      // Liveness is not readiness: serve itself still runs.
      assert.equal((await call(pipeline.url, 'GET', '/-/live')).status, 200)
    } finally {
      mlflowHealthy = true
    }

    assert.equal((await call(pipeline.url, 'GET', '/-/ready')).status, 200)
  })

  it('PostgreSQL store: /-/ready turns 503 while the database is away, and back; its writes are timed', async (t) => {
    const postgres = await startPostgres()
    t.after(() => postgres.stop())
    const other = await startPipeline({
      serve: {metricsAddress: {host: '127.0.0.1', port: 0}, readiness: {intervalMs: 0}, storePath: await postgres.database('ops_ready')},
    })
    t.after(() => other.close())
    other.upstream.handle((request, response) => request.url.pathname === '/health' && answerJson(response, 200, 'OK'))
    assert.equal((await call(other.url, 'GET', '/-/ready')).status, 200)
    await other.createUser({password: 'carol-password-for-operations', username: 'carol'})
    const written = series(await scrape(other.serve.metricsUrl!), 'mlflowctl_store_write_duration_seconds_count', {outcome: 'ok'})
    // The admin at start, then carol: each a COMMIT.
    assert.ok(written !== undefined && written >= 2)
    await postgres.pause()
    const down = await waitForStatus(other.url, 503)
    assert.deepEqual(parseJson(down), {checks: {store: 'not ready', upstream: 'ok'}, status: 'not ready'})
    await postgres.start()
    await waitForStatus(other.url, 200)
  })

  it('readiness: either part unfit is not ready, and a flood of checks sends MLflow one probe per interval', async () => {
    let probes = 0
    let upstreamUp = true
    let storeHealth: StoreHealth = {decide: true, ready: true}
    const upstream = {
      async request() {
        probes++
        await new Promise((resolve) => setTimeout(resolve, 20))
        if (!upstreamUp) throw new Error('connection refused')
        return {body: Buffer.from('OK'), headers: {}, status: 200}
      },
    } as unknown as Upstream
    const store = {health: () => storeHealth} as unknown as Store
    const health = new Health({healthPath: '/health', intervalMs: 60_000, store, upstream})
    const all = await Promise.all(Array.from({length: 50}, () => health.readiness()))
    assert.equal(probes, 1)
    assert.ok(all.every((each) => each.ready))
    // Within the interval, later checks reuse the answer.
    await health.readiness()
    await health.readiness()
    assert.equal(probes, 1)
    storeHealth = {decide: true, problem: 'its database is out of reach', ready: false}
    assert.deepEqual(await health.readiness(), {checks: {store: 'not ready', upstream: 'ok'}, ready: false})
    storeHealth = {decide: false, ready: true}
    assert.equal((await health.readiness()).ready, false)
    storeHealth = {decide: true, ready: true}
    upstreamUp = false
    const fresh = new Health({healthPath: '/health', intervalMs: 60_000, store, upstream})
    assert.deepEqual(await fresh.readiness(), {checks: {store: 'ok', upstream: 'unreachable'}, ready: false})
  })
})

describe('serve operations: access log', () => {
  it('one line per request: time, client, user, method, path without query, status, bytes, duration, decision; no credentials', async () => {
    accessLines.length = 0
    await call(pipeline.url, 'GET', '/api/2.0/mlflow/experiments/get?experiment_id=1&token=query-secret', {credentials: ALICE})
    await call(pipeline.url, 'GET', '/api/2.0/mlflow/experiments/get?experiment_id=1', {headers: {authorization: basicAuth({...ALICE, password: 'wrong'})}})
    // The line is written when the answer is over, which the client may see first.
    for (let i = 0; accessLines.length < 2 && i < 50; i++) await new Promise((resolve) => setTimeout(resolve, 20))
    assert.equal(accessLines.length, 2)
    assert.ok(accessLines.every((line) => line.endsWith('\n')))
    const [first, second] = accessLines.map((line) => JSON.parse(line) as Record<string, unknown>)
    assert.equal(typeof first.time, 'string')
    assert.ok(!Number.isNaN(Date.parse(String(first.time))))
    assert.equal(first.client, '127.0.0.1')
    assert.equal(first.user, 'alice')
    assert.equal(first.method, 'GET')
    assert.equal(first.path, '/api/2.0/mlflow/experiments/get')
    assert.equal(first.status, 200)
    assert.equal(first.decision, 'allow')
    assert.equal(first.route, '/api/2.0/mlflow/experiments/get')
    assert.ok(Number(first.bytes) > 0)
    assert.equal(typeof first.duration_ms, 'number')
    assert.equal(second.user, null)
    assert.equal(second.status, 401)
    assert.equal(second.decision, 'unauthenticated')
    const all = accessLines.join('')
    assert.doesNotMatch(all, /query-secret|Basic |authorization|alice-password|wrong/i)
  })

  it('accessLine keeps exactly its fields', () => {
    const record: RequestRecord = {
      bytes: 10,
      decision: 'deny',
      family: '/x',
      method: 'POST',
      path: '/x',
      request: {} as RequestRecord['request'],
      seconds: 0.0123456,
      status: 403,
      user: 'u',
    }
    assert.deepEqual(accessLine(record, '10.0.0.1', new Date(0)), {
      bytes: 10,
      client: '10.0.0.1',
      decision: 'deny',
      duration_ms: 12.346,
      method: 'POST',
      path: '/x',
      route: '/x',
      status: 403,
      time: '1970-01-01T00:00:00.000Z',
      user: 'u',
    })
  })
})

describe('serve operations: logs', () => {
  it('JSON lines carry the level the message prefix named, without the prefix', () => {
    const lines: string[] = []
    const log = messageLog(createLogger({format: 'json', level: 'info', sink: {write: (line: string) => lines.push(line)}}))
    log('listening')
    log('warning: default password')
    log('error: auth store: gone')
    const parsed = lines.map((line) => JSON.parse(line) as {hostname: string; level: string; msg: string; pid: number; time: string})
    assert.deepEqual(
      parsed.map(({level, msg}) => [level, msg]),
      [
        ['info', 'listening'],
        ['warn', 'default password'],
        ['error', 'auth store: gone'],
      ],
    )
    assert.ok(!Number.isNaN(Date.parse(parsed[0].time)))
    assert.equal(parsed[0].pid, process.pid)
    assert.equal(typeof parsed[0].hostname, 'string')
  })

  it('pretty lines keep the words serve always wrote; the level filters; credentials in fields are redacted', () => {
    const lines: string[] = []
    const logger = createLogger({color: false, format: 'pretty', level: 'warn', sink: {write: (line: string) => lines.push(line)}})
    const log = messageLog(logger)
    log('not shown at warn')
    log('warning: admin "admin" still uses the default password')
    logger.error({headers: {authorization: 'Basic c2VjcmV0'}, password: 'hunter2'}, 'a request failed')
    assert.equal(lines.length, 2)
    assert.match(lines[0], /^\d{4}-\d\d-\d\dT[\d:.]+Z warning: admin "admin" still uses the default password\n$/)
    assert.match(lines[1], /error: a request failed/)
    assert.doesNotMatch(lines.join(''), /c2VjcmV0|hunter2/)
    assert.match(lines[1], /\[redacted\]/)
  })

  it('--metrics-address: a bare port is loopback; a bad value is refused', () => {
    assert.deepEqual(parseListenAddress('9464'), {host: '127.0.0.1', port: 9464})
    assert.deepEqual(parseListenAddress('0.0.0.0:9464'), {host: '0.0.0.0', port: 9464})
    assert.deepEqual(parseListenAddress('[::1]:9464'), {host: '::1', port: 9464})
    for (const bad of ['', 'host:', ':9464x', '70000', 'a:b:9464']) assert.throws(() => parseListenAddress(bad), /is not an address to listen on/)
  })
})
