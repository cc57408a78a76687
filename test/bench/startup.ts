/**
 * Startup cost of the CLI against a bare `node -e 0` on the same machine (median of N runs,
 * interleaved so that machine load affects every command alike). Not a test: it prints figures.
 *   npm run bench            (N = 30)
 */
import {spawnSync} from 'node:child_process'
import {writeFileSync} from 'node:fs'
import {fileURLToPath} from 'node:url'

const CLI = fileURLToPath(new URL('../../bin/run.js', import.meta.url))
const runs = Number(process.env.BENCH_RUNS ?? 30)

const commands: Array<[string, string[]]> = [
  ['node -e 0', ['-e', '0']],
  ['mlflowctl --version', [CLI, '--version']],
  ['mlflowctl users --help', [CLI, 'users', '--help']],
  ['mlflowctl perms grant experiment --help', [CLI, 'perms', 'grant', 'experiment', '--help']],
  ['mlflowctl version', [CLI, 'version']],
  // What every TAB of the shell completion costs.
  ['mlflowctl __complete -- perms g', [CLI, '__complete', '--', 'perms', 'g']],
]

const samples = new Map<string, number[]>(commands.map(([name]) => [name, []]))
for (let i = 0; i < runs + 2; i++) {
  for (const [name, args] of commands) {
    const started = process.hrtime.bigint()
    const result = spawnSync(process.execPath, args, {env: {...process.env, NO_COLOR: '1'}, stdio: 'ignore'})
    const ms = Number(process.hrtime.bigint() - started) / 1e6
    if (result.status !== 0) throw new Error(`${name} exited ${result.status}`)
    if (i >= 2) samples.get(name)!.push(ms) // the first two rounds warm the file cache
  }
}

const median = (values: number[]) => {
  const sorted = [...values].sort((a, b) => a - b)
  return sorted[Math.floor(sorted.length / 2)]
}

const baseline = median(samples.get('node -e 0')!)
console.log(`median of ${runs} runs, Node ${process.version}`)
const figures = commands.map(([name]) => ({
  ms: Number(median(samples.get(name)!).toFixed(1)),
  name,
  ratio: Number((median(samples.get(name)!) / baseline).toFixed(2)),
}))
for (const {ms, name, ratio} of figures) console.log(`${name.padEnd(42)} ${ms.toFixed(1).padStart(7)} ms  ${ratio.toFixed(2)}x`)
// For test/bench/run.ts, which folds these figures into its table.
if (process.env.BENCH_JSON) writeFileSync(process.env.BENCH_JSON, JSON.stringify({commands: figures, runs}))
