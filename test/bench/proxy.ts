/**
 * The proxy on a fast stub upstream (nginx answering fixed JSON), side by side in one run: the stub
 * direct, nginx with auth_basic proxying to it, a minimal Node proxy (the platform's baseline) and
 * mlflowctl serve, each as `experiments/get` by a user with a grant. Throughput at 32 connections,
 * p50/p99 at 1 and at 32 (the median of BENCH_ROUNDS alternating rounds, default 3). Not a test: it returns figures (test/bench/run.ts prints them).
 *   npx tsx test/bench/proxy.ts      (alone; BENCH_SECONDS per measurement, default 5)
 */
import {spawn} from 'node:child_process'
import {chmodSync, mkdtempSync, readFileSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {fileURLToPath} from 'node:url'

import {basicAuth} from '../support/rest.js'
import {startServe} from '../support/serve.js'
import {type Child, child, ensureCommands, freePort, htpasswdLine, type Load, startNginx, waitForPort, wrk} from './tools.js'

export const PROXY_PATH = '/api/2.0/mlflow/experiments/get?experiment_id=1'
const ANSWER = JSON.stringify({
  experiment: {
    artifact_location: 'mlflow-artifacts:/1',
    creation_time: 1,
    experiment_id: '1',
    last_update_time: 1,
    lifecycle_stage: 'active',
    name: 'bench',
    tags: [],
  },
})
const USER = {password: 'bench-user-password', username: 'bench'}

export interface ProxyTarget {
  at1: Load
  at32: Load
  /**
   * The proxy process's CPU time (user + system, every thread) per request answered at 32
   * connections, in µs, for the Node proxies: it depends far less on other jobs' load than req/s.
   */
  cpuUsPerRequest?: number
  name: string
}

/** A process's CPU time so far in clock ticks (Linux: /proc/<pid>/stat utime + stime, 100 per second). */
function cpuTicks(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ')
  return Number(fields[11]) + Number(fields[12])
}

const TICKS_PER_SECOND = 100
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3)

/** Throughput and latency of each target; `only` narrows to the named targets (profiling). */
export async function benchProxy(seconds: number, options: {only?: string[]; serveNodeArgs?: string[]} = {}): Promise<ProxyTarget[]> {
  ensureCommands({nginx: 'nginx-light', wrk: 'wrk'})
  const children: Child[] = []
  try {
    const stubPort = await freePort()
    children.push(
      await startNginx(
        ` server {\n  listen 127.0.0.1:${stubPort};\n  keepalive_requests 1000000;\n  location / {\n   default_type application/json;\n   return 200 '${ANSWER}';\n  }\n }`,
        stubPort,
      ),
    )
    const stub = `http://127.0.0.1:${stubPort}`
    const targets: Array<[string, string, number?]> = [['stub direct (nginx, fixed JSON)', stub]]

    const dir = mkdtempSync(join(tmpdir(), 'mlflowctl-bench-proxy-'))
    const nginxPort = await freePort()
    // nginx's workers run as an unprivileged user: they must be able to read the file (a bench password).
    chmodSync(dir, 0o755)
    writeFileSync(join(dir, 'htpasswd'), htpasswdLine(USER.username, USER.password), {mode: 0o644})
    children.push(
      await startNginx(
        ` upstream stub {\n  server 127.0.0.1:${stubPort};\n  keepalive 64;\n }\n` +
          ` server {\n  listen 127.0.0.1:${nginxPort};\n  keepalive_requests 1000000;\n  location / {\n   auth_basic bench;\n   auth_basic_user_file ${dir}/htpasswd;\n` +
          `   proxy_http_version 1.1;\n   proxy_set_header Connection "";\n   proxy_pass http://stub;\n  }\n }`,
        nginxPort,
      ),
    )
    targets.push(['nginx auth_basic + proxy_pass', `http://127.0.0.1:${nginxPort}`])

    const minimalPort = await freePort()
    const script = fileURLToPath(new URL('minimal-proxy.ts', import.meta.url))
    const minimal = spawn(process.execPath, ['--import', 'tsx', script, String(minimalPort), String(stubPort)], {stdio: 'ignore'})
    children.push(child(minimal))
    await waitForPort(minimalPort)
    targets.push(['minimal Node proxy (no checks)', `http://127.0.0.1:${minimalPort}`, minimal.pid])

    const serve = await startServe({nodeArgs: options.serveNodeArgs, upstream: stub})
    children.push({stop: async () => void (await serve.stop())})
    await grant(serve.url, serve.admin)
    targets.push(['mlflowctl serve', serve.url, serve.child.pid])

    // At 32 connections, ROUNDS alternating rounds over the targets and the median round of each:
    // one round's figure moves with whatever else the machine does meanwhile, alike for every target.
    const headers = {authorization: basicAuth(USER)}
    const chosen = targets.filter(([name]) => !options.only || options.only.some((wanted) => name.includes(wanted)))
    for (const [, base] of chosen) wrk(base + PROXY_PATH, 32, 1, headers) // warm-up: connections, JIT
    const rounds = new Map<string, Array<{cpuUsPerRequest?: number; load: Load}>>(chosen.map(([name]) => [name, []]))
    for (let round = 0; round < ROUNDS; round++) {
      for (const [name, base, pid] of chosen) {
        const ticks = pid === undefined ? undefined : cpuTicks(pid)
        const load = wrk(base + PROXY_PATH, 32, seconds, headers)
        const cpuUsPerRequest = ticks === undefined ? undefined : (((cpuTicks(pid!) - ticks) / TICKS_PER_SECOND) * 1e6) / (load.rps * seconds)
        rounds.get(name)!.push({cpuUsPerRequest, load})
      }
    }

    const results: ProxyTarget[] = []
    for (const [name, base] of chosen) {
      const at1 = wrk(base + PROXY_PATH, 1, seconds, headers)
      const sorted = rounds.get(name)!.sort((a, b) => a.load.rps - b.load.rps)
      const {load: at32} = sorted[Math.floor(sorted.length / 2)]
      const cpu = sorted.map(({cpuUsPerRequest}) => cpuUsPerRequest).filter((value) => value !== undefined)
      const cpuUsPerRequest = cpu.length === 0 ? undefined : cpu.sort((a, b) => a - b)[Math.floor(cpu.length / 2)]
      for (const load of [at1, ...sorted.map(({load}) => load)]) if (load.errors) throw new Error(`${name}: ${load.errors} failed requests`)
      results.push({at1, at32, cpuUsPerRequest, name})
    }

    return results
  } finally {
    for (const started of children.reverse()) await started.stop()
  }
}

/** The bench user, with READ on experiment 1, through serve's own auth API. */
async function grant(base: string, admin: {password: string; username: string}): Promise<void> {
  const post = async (path: string, body: unknown) => {
    const answer = await fetch(base + path, {
      body: JSON.stringify(body),
      headers: {authorization: basicAuth(admin), 'content-type': 'application/json'},
      method: 'POST',
    })
    if (!answer.ok) throw new Error(`${path}: ${answer.status} ${await answer.text()}`)
  }

  await post('/api/2.0/mlflow/users/create', USER)
  await post('/api/2.0/mlflow/experiments/permissions/create', {experiment_id: '1', permission: 'READ', username: USER.username})
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const only = process.env.BENCH_ONLY?.split(',')
  // e.g. BENCH_SERVE_NODE_ARGS='--cpu-prof --cpu-prof-dir=/tmp/prof' BENCH_ONLY=serve: a profile of serve under load
  const serveNodeArgs = process.env.BENCH_SERVE_NODE_ARGS?.split(' ').filter(Boolean)
  for (const target of await benchProxy(Number(process.env.BENCH_SECONDS ?? 5), {only, serveNodeArgs})) console.log(JSON.stringify(target))
}
