/**
 * In front of real MLflow (the newest pin), one run side by side: the plain server direct (no
 * auth), mlflowctl serve in front of it, and MLflow's own basic-auth app at its defaults (a
 * password hash checked on every request) and with its credential cache on
 * (auth_cache_ttl_seconds). Each as a non-admin user reading their own experiment and run.
 * Not a test: it returns figures (test/bench/run.ts prints them).
 */
import {Agent, request} from 'node:http'

import {prepareMlflow} from '../support/mlflow-install.js'
import {type Credentials, type RunningServer, startMlflowServer} from '../support/mlflow-server.js'
import {MLFLOW_VERSIONS} from '../support/mlflow-versions.js'
import {basicAuth} from '../support/rest.js'
import {startServe} from '../support/serve.js'
import {type Load} from './tools.js'

export const MLFLOW_CONNECTIONS = 8
export const MLFLOW_VERSION = MLFLOW_VERSIONS.latest

export interface MlflowFigure {
  load: Load
  scenario: string
  server: string
}

function get(agent: Agent, url: string, headers: Record<string, string>): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = request(url, {agent, headers}, (res) => {
      res.resume()
      res.on('end', () => resolve(res.statusCode!))
      res.on('error', reject)
    })
    req.on('error', reject)
    req.end()
  })
}

/**
 * Load from this process (MLflow answers tens to hundreds of requests a second, so the client's own
 * cost does not matter): `connections` keep-alive loops for `seconds`.
 */
async function load(url: string, connections: number, seconds: number, headers: Record<string, string>): Promise<Load> {
  const agent = new Agent({keepAlive: true, maxSockets: connections})
  const latencies: number[] = []
  let errors = 0
  const deadline = Date.now() + seconds * 1000
  await Promise.all(
    Array.from({length: connections}, async () => {
      while (Date.now() < deadline) {
        const started = process.hrtime.bigint()
        if ((await get(agent, url, headers)) !== 200) errors++
        latencies.push(Number(process.hrtime.bigint() - started) / 1e6)
      }
    }),
  )
  agent.destroy()
  latencies.sort((a, b) => a - b)
  const at = (q: number) => latencies[Math.min(latencies.length - 1, Math.floor(latencies.length * q))]
  return {errors, max: latencies.at(-1)!, p50: at(0.5), p99: at(0.99), rps: latencies.length / seconds}
}

async function post(base: string, path: string, who: Credentials, body: unknown): Promise<Record<string, unknown>> {
  const answer = await fetch(base + path, {
    body: JSON.stringify(body),
    headers: {authorization: basicAuth(who), 'content-type': 'application/json'},
    method: 'POST',
  })
  const text = await answer.text()
  if (!answer.ok) throw new Error(`${path}: ${answer.status} ${text}`)
  return JSON.parse(text) as Record<string, unknown>
}

/** The user, their experiment (its creator: MANAGE on it) and a run in it. */
async function setUp(base: string, admin: Credentials, user: Credentials): Promise<{experimentId: string; runId: string}> {
  await post(base, '/api/2.0/mlflow/users/create', admin, user)
  const experiment = await post(base, '/api/2.0/mlflow/experiments/create', user, {name: `bench-${Date.now()}`})
  const experimentId = experiment.experiment_id as string
  const run = await post(base, '/api/2.0/mlflow/runs/create', user, {experiment_id: experimentId})
  return {experimentId, runId: (run.run as {info: {run_id: string}}).info.run_id}
}

export async function benchMlflow(seconds: number): Promise<MlflowFigure[]> {
  const install = await prepareMlflow(MLFLOW_VERSION)
  if (!install.ok) throw new Error(install.error)
  const servers: RunningServer[] = []
  const user = {password: 'bench-password-1234', username: 'bench'}
  try {
    const plain = await startMlflowServer({kind: 'plain', version: MLFLOW_VERSION})
    servers.push(plain)
    // MLflow's default checks the password hash on every request; auth_cache_ttl_seconds caches a success.
    const defaults = await startMlflowServer({kind: 'basic-auth', version: MLFLOW_VERSION})
    servers.push(defaults)
    const cached = await startMlflowServer({authConfig: {auth_cache_ttl_seconds: '600'}, kind: 'basic-auth', version: MLFLOW_VERSION})
    servers.push(cached)
    const serve = await startServe({upstream: plain.url})
    try {
      const throughServe = await setUp(serve.url, serve.admin, user)
      const targets: Array<[string, string, {experimentId: string; runId: string}, Credentials | undefined]> = [
        ['plain MLflow direct (no auth)', plain.url, throughServe, undefined],
        ['mlflowctl serve -> plain MLflow', serve.url, throughServe, user],
        ['MLflow basic-auth (defaults)', defaults.url, await setUp(defaults.url, defaults.admin!, user), user],
        ['MLflow basic-auth (auth_cache_ttl_seconds=600)', cached.url, await setUp(cached.url, cached.admin!, user), user],
      ]
      const scenarios: Array<[string, (ids: {experimentId: string; runId: string}) => string]> = [
        ['GET experiments/get', ({experimentId}) => `/api/2.0/mlflow/experiments/get?experiment_id=${experimentId}`],
        ['GET runs/get', ({runId}) => `/api/2.0/mlflow/runs/get?run_id=${runId}`],
      ]
      const figures: MlflowFigure[] = []
      for (const [scenario, path] of scenarios) {
        for (const [server, base, ids, who] of targets) {
          const headers: Record<string, string> = who ? {authorization: basicAuth(who)} : {}
          await load(base + path(ids), MLFLOW_CONNECTIONS, 1, headers) // warm-up
          const figure = await load(base + path(ids), MLFLOW_CONNECTIONS, seconds, headers)
          if (figure.errors) throw new Error(`${server} ${scenario}: ${figure.errors} failed requests`)
          figures.push({load: figure, scenario, server})
        }
      }

      return figures
    } finally {
      await serve.stop()
    }
  } finally {
    await Promise.all(servers.map((server) => server.stop()))
  }
}
