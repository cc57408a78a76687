/**
 * Throughput and latency of an authenticated, authorized MLflow request through mlflowctl serve
 * (in front of a plain MLflow server) against the same request to MLflow's own basic-auth app,
 * same MLflow version, same machine, as a non-admin user. Not a test: it prints figures.
 *   npm run bench            (after the start-up figures; BENCH_SECONDS per scenario, default 5; BENCH_CONCURRENCY, default 8)
 */
import {Agent, request} from 'node:http'

import {prepareMlflow} from '../support/mlflow-install.js'
import {type Credentials, type RunningServer, startMlflowServer} from '../support/mlflow-server.js'
import {MLFLOW_VERSIONS} from '../support/mlflow-versions.js'
import {basicAuth} from '../support/rest.js'
import {startServe} from '../support/serve.js'

const seconds = Number(process.env.BENCH_SECONDS ?? 5)
const concurrency = Number(process.env.BENCH_CONCURRENCY ?? 8)
const version = MLFLOW_VERSIONS.latest

interface Target {
  url: string
  admin: Credentials
}

function call(agent: Agent, base: string, method: string, path: string, who: Credentials | undefined, body?: unknown): Promise<{status: number; text: string}> {
  const payload = body === undefined ? undefined : Buffer.from(JSON.stringify(body))
  return new Promise((resolve, reject) => {
    const headers: Record<string, string> = {}
    if (who) headers.authorization = basicAuth(who)
    if (payload) headers['content-type'] = 'application/json'
    const req = request(new URL(path, base), {agent, headers, method}, (res) => {
      const chunks: Buffer[] = []
      res.on('data', (chunk: Buffer) => chunks.push(chunk))
      res.on('end', () => resolve({status: res.statusCode!, text: Buffer.concat(chunks).toString()}))
      res.on('error', reject)
    })
    req.on('error', reject)
    req.end(payload)
  })
}

async function setUp(target: Target, user: Credentials): Promise<{experimentId: string; runId: string}> {
  const agent = new Agent({keepAlive: true})
  const created = await call(agent, target.url, 'POST', '/api/2.0/mlflow/users/create', target.admin, user)
  if (created.status !== 200) throw new Error(`users/create: ${created.status} ${created.text}`)
  const experiment = await call(agent, target.url, 'POST', '/api/2.0/mlflow/experiments/create', user, {name: `bench-${Date.now()}`})
  const experimentId = (JSON.parse(experiment.text) as {experiment_id: string}).experiment_id
  const run = await call(agent, target.url, 'POST', '/api/2.0/mlflow/runs/create', user, {experiment_id: experimentId})
  const runId = (JSON.parse(run.text) as {run: {info: {run_id: string}}}).run.info.run_id
  await call(agent, target.url, 'POST', '/api/2.0/mlflow/runs/log-metric', user, {key: 'loss', run_id: runId, step: 0, timestamp: Date.now(), value: 0.5})
  agent.destroy()
  return {experimentId, runId}
}

async function load(
  base: string,
  method: string,
  path: string,
  who: Credentials | undefined,
  body?: unknown,
): Promise<{p50: number; p99: number; rps: number}> {
  const agent = new Agent({keepAlive: true, maxSockets: concurrency})
  const latencies: number[] = []
  const deadline = Date.now() + seconds * 1000
  await Promise.all(
    Array.from({length: concurrency}, async () => {
      while (Date.now() < deadline) {
        const started = process.hrtime.bigint()
        const answer = await call(agent, base, method, path, who, body)
        if (answer.status !== 200) throw new Error(`${method} ${path}: ${answer.status} ${answer.text.slice(0, 200)}`)
        latencies.push(Number(process.hrtime.bigint() - started) / 1e6)
      }
    }),
  )
  agent.destroy()
  latencies.sort((a, b) => a - b)
  return {p50: latencies[Math.floor(latencies.length * 0.5)], p99: latencies[Math.floor(latencies.length * 0.99)], rps: latencies.length / seconds}
}

const install = await prepareMlflow(version)
if (!install.ok) throw new Error(install.error)
const servers: RunningServer[] = []
try {
  const plain = await startMlflowServer({kind: 'plain', version})
  servers.push(plain)
  // MLflow's default verifies the password hash on every request; auth_cache_ttl_seconds caches it.
  const basicAuth = await startMlflowServer({authConfig: {auth_cache_ttl_seconds: '0'}, kind: 'basic-auth', version})
  servers.push(basicAuth)
  const basicAuthCached = await startMlflowServer({authConfig: {auth_cache_ttl_seconds: '600'}, kind: 'basic-auth', version})
  servers.push(basicAuthCached)
  const serve = await startServe({upstream: plain.url})
  const user = {password: 'bench-password-1234', username: 'bench'}
  const targets: Array<[string, Target]> = [
    [`MLflow ${version} basic-auth (default)`, {admin: basicAuth.admin!, url: basicAuth.url}],
    [`MLflow ${version} basic-auth (auth cache 600 s)`, {admin: basicAuthCached.admin!, url: basicAuthCached.url}],
    [`mlflowctl serve -> plain MLflow ${version}`, {admin: serve.admin, url: serve.url}],
  ]
  const ids = new Map<string, {experimentId: string; runId: string}>()
  for (const [name, target] of targets) ids.set(name, await setUp(target, user))
  // serve's own cost: the same requests straight to the plain server behind it (no auth at all).
  const direct = `plain MLflow ${version}, no auth (serve's upstream)`
  targets.push([direct, {admin: serve.admin, url: plain.url}])
  ids.set(direct, ids.get(targets[2][0])!)

  console.log(`${seconds} s per scenario, ${concurrency} concurrent keep-alive connections, non-admin user, Node ${process.version}`)
  const scenarios: Array<[string, (id: {experimentId: string; runId: string}) => [string, string, unknown?]]> = [
    ['GET runs/get', ({runId}) => ['GET', `/api/2.0/mlflow/runs/get?run_id=${runId}`]],
    ['GET metrics/get-history', ({runId}) => ['GET', `/api/2.0/mlflow/metrics/get-history?run_id=${runId}&metric_key=loss`]],
    ['POST experiments/search', () => ['POST', '/api/2.0/mlflow/experiments/search', {max_results: 10}]],
    ['GET /health (no auth)', () => ['GET', '/health']],
  ]
  console.log(`${'scenario'.padEnd(26)} ${'server'.padEnd(48)} ${'req/s'.padStart(8)} ${'p50 ms'.padStart(8)} ${'p99 ms'.padStart(8)}`)
  for (const [scenario, make] of scenarios) {
    for (const [name, target] of targets) {
      const [method, path, body] = make(ids.get(name)!)
      const who = scenario.includes('no auth') ? undefined : user
      const result = await load(target.url, method, path, who, body)
      console.log(
        `${scenario.padEnd(26)} ${name.padEnd(48)} ${result.rps.toFixed(0).padStart(8)} ${result.p50.toFixed(1).padStart(8)} ${result.p99.toFixed(1).padStart(8)}`,
      )
    }
  }

  await serve.stop()
} finally {
  await Promise.all(servers.map((server) => server.stop()))
}
