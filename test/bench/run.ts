/**
 * `npm run bench`: every figure in one run, on this machine, printed as one table and written to
 * bench/results/latest.json (with the CPU count, Node and MLflow versions and the load average,
 * since a shared machine makes them noisy). Not a test: nothing here passes or fails on a figure.
 * Loopback only.
 *   BENCH_SECONDS per measurement (default 5)
 */
import {spawn} from 'node:child_process'
import {mkdirSync, mkdtempSync, readFileSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {fileURLToPath} from 'node:url'

import {benchMlflow, MLFLOW_CONNECTIONS, MLFLOW_VERSION} from './mlflow.js'
import {benchProxy} from './proxy.js'
import {machine} from './tools.js'

const seconds = Number(process.env.BENCH_SECONDS ?? 5)
const root = fileURLToPath(new URL('../..', import.meta.url))
const scratch = mkdtempSync(join(tmpdir(), 'mlflowctl-bench-'))

/** Runs one of the other bench scripts, its own output on stderr, and returns the figures it wrote. */
async function script<T>(name: string, nodeArgs: string[]): Promise<T> {
  const file = join(scratch, `${name}.json`)
  const child = spawn(process.execPath, [...nodeArgs, '--import', 'tsx', join(root, 'test/bench', `${name}.ts`)], {
    env: {...process.env, BENCH_JSON: file},
    stdio: ['ignore', process.stderr, process.stderr],
  })
  const code = await new Promise<null | number>((resolve) => child.once('exit', resolve))
  if (code !== 0) throw new Error(`test/bench/${name}.ts exited ${code}`)
  return JSON.parse(readFileSync(file, 'utf8')) as T
}

const started = machine()
const began = Date.now()
console.error(`bench: ${started.cpus} CPUs, Node ${started.node}, load average ${started.loadAverage.join(' ')}; ${seconds} s per measurement`)
console.error('start-up…')
const startup = await script<{commands: Array<{ms: number; name: string; ratio: number}>; runs: number}>('startup', [])
console.error('proxy on a stub upstream…')
const proxy = await benchProxy(seconds)
console.error(`real MLflow ${MLFLOW_VERSION}…`)
const mlflow = await benchMlflow(seconds)
console.error('store…')
const store = await script<{figures: Array<{label: string; value: string}>; files: {rows: number; users: number}}>('store', ['--expose-gc'])
console.error('access as code…')
const policy = await script<{figures: Array<{label: string; value: string}>; policy: {grants: number; roles: number; users: number}}>('policy', [])
const ended = machine()

const byName = (wanted: string) => proxy.find(({name}) => name.includes(wanted))!
const stub = byName('stub')
const nginx = byName('auth_basic')
const minimal = byName('minimal')
const serve = byName('serve')
const real = (server: string, scenario = 'GET experiments/get') => mlflow.find((figure) => figure.server.includes(server) && figure.scenario === scenario)!.load
const targets = [
  {at_least: 0.8, name: 'serve / minimal Node proxy, req/s at 32', value: serve.at32.rps / minimal.at32.rps},
  // ceiling: what the same ratio is for what serve cannot beat (the platform's no-check proxy; MLflow itself without auth).
  {at_least: 0.35, ceiling: minimal.at32.rps / nginx.at32.rps, name: 'serve / nginx auth_basic, req/s at 32', value: serve.at32.rps / nginx.at32.rps},
  {at_most: 0.3, name: 'p50 added over the stub at 1 connection (ms)', value: serve.at1.p50 - stub.at1.p50},
  {at_most: 5, name: "serve's p99 / p50 at 32 connections", value: serve.at32.p99 / serve.at32.p50},
  ...['GET experiments/get', 'GET runs/get'].flatMap((scenario) => [
    {at_least: 0.95, name: `${scenario}: serve / MLflow direct`, value: real('serve', scenario).rps / real('direct', scenario).rps},
    {
      at_least: 10,
      ceiling: real('direct', scenario).rps / real('(defaults)', scenario).rps,
      name: `${scenario}: serve / MLflow basic-auth (defaults)`,
      value: real('serve', scenario).rps / real('(defaults)', scenario).rps,
    },
    {
      at_least: 1.5,
      ceiling: real('direct', scenario).rps / real('auth_cache', scenario).rps,
      name: `${scenario}: serve / MLflow basic-auth (cache on)`,
      value: real('serve', scenario).rps / real('auth_cache', scenario).rps,
    },
  ]),
].map((target: {at_least?: number; at_most?: number; ceiling?: number; name: string; value: number}) => ({
  ...target,
  ceiling: target.ceiling === undefined ? undefined : Number(target.ceiling.toFixed(3)),
  met: target.at_least === undefined ? target.value <= target.at_most! : target.value >= target.at_least,
  value: Number(target.value.toFixed(3)),
}))

const n = (value: number, digits = 2) => value.toFixed(digits)
const rows: string[][] = [
  ...proxy.map((target) => [
    'proxy on a stub',
    target.cpuUsPerRequest === undefined ? target.name : `${target.name}; CPU ${n(target.cpuUsPerRequest, 0)} µs per request at 32`,
    n(target.at32.rps, 0),
    `${n(target.at1.p50)} / ${n(target.at1.p99)}`,
    `${n(target.at32.p50)} / ${n(target.at32.p99)} (${n(target.at32.max)})`,
  ]),
  ...mlflow.map(({load, scenario, server}) => [
    `MLflow ${MLFLOW_VERSION}, ${scenario}`,
    server,
    n(load.rps, 0),
    '',
    `${n(load.p50)} / ${n(load.p99)} (${n(load.max)})`,
  ]),
  ...startup.commands.map(({ms, name, ratio}) => ['CLI start-up (median)', name, '', `${n(ms, 1)} ms (${n(ratio)}x node -e 0)`, '']),
  ...store.figures.map(({label, value}) => [`store (${store.files.users} users, ${store.files.rows} rows)`, label, '', value, '']),
  ...policy.figures.map(({label, value}) => [
    `access as code on serve (${policy.policy.users} users, ${policy.policy.roles} roles, ${policy.policy.grants} grants)`,
    label,
    '',
    value,
    '',
  ]),
]
const heading = ['section', 'what', 'req/s at 32', 'at 1: p50 / p99 ms', `at 32 (MLflow: ${MLFLOW_CONNECTIONS}): p50 / p99 (max) ms`]
const table = [heading, heading.map(() => '---'), ...rows].map((cells) => `| ${cells.join(' | ')} |`).join('\n')
const verdicts = targets
  .map(
    (target) =>
      `| ${target.name} | ${target.value} | ${target.at_least === undefined ? `≤ ${target.at_most}` : `≥ ${target.at_least}`} | ${target.ceiling ?? ''} | ${target.met ? 'met' : 'missed'} |`,
  )
  .join('\n')
console.log(
  `${started.cpus} CPUs (${started.cpuModel}), Node ${started.node}, MLflow ${MLFLOW_VERSION}, load average ${started.loadAverage.join(' ')} → ${ended.loadAverage.join(' ')}, ${seconds} s per measurement, wrk on 1 thread\n`,
)
console.log(table)
// "ceiling": the same ratio for the minimal Node proxy (no checks), or for MLflow without auth: no proxy in Node, nor
// any proxy in front of MLflow, can exceed it, so a goal above it cannot be met.
console.log(`\n| target | this run | goal | ceiling | |\n| --- | --- | --- | --- | --- |\n${verdicts}`)

const results = join(root, 'bench/results')
mkdirSync(results, {recursive: true})
writeFileSync(
  join(results, 'latest.json'),
  `${JSON.stringify(
    {
      date: new Date(began).toISOString(),
      durationSeconds: Math.round((Date.now() - began) / 1000),
      machine: {...started, loadAverageAtEnd: ended.loadAverage},
      mlflow: {connections: MLFLOW_CONNECTIONS, figures: mlflow, version: MLFLOW_VERSION},
      policy,
      proxy,
      secondsPerMeasurement: seconds,
      startup,
      store,
      targets,
    },
    null,
    2,
  )}\n`,
)
console.error(`written: bench/results/latest.json (${Math.round((Date.now() - began) / 1000)} s)`)
