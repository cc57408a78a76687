/**
 * The test command's runner: installs the pinned MLflow releases (cached), starts the shared
 * MLflow servers, runs every test file under node:test, and always stops the servers. Unit files
 * alone start no server.
 */
import {spawn} from 'node:child_process'
import {mkdtempSync, readdirSync, readFileSync, rmSync, statSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join, relative, resolve} from 'node:path'
import {fileURLToPath} from 'node:url'

import {prepareMlflow} from './support/mlflow-install.js'
import {type RunningServer, type ServerKind, startMlflowServer} from './support/mlflow-server.js'
import {MLFLOW_VERSIONS, PINNED_VERSIONS} from './support/mlflow-versions.js'
import {SHARED_SERVERS_ENV, serverKey} from './support/servers.js'

const root = fileURLToPath(new URL('..', import.meta.url))

function testFiles(dir: string): string[] {
  return readdirSync(dir, {withFileTypes: true}).flatMap((entry) => {
    const path = join(dir, entry.name)
    if (entry.isDirectory()) return testFiles(path)
    return entry.name.endsWith('.test.ts') ? [relative(root, path)] : []
  })
}

function log(message: string): void {
  process.stderr.write(`[test] ${message}\n`)
}

const isInterop = (file: string) => file.split(/[\\/]/).includes('interop')

// Arguments name test files or folders of them; none: every test file; --unit: every test file
// outside test/interop, so a new folder of unit tests is run without being listed anywhere;
// --postgres: the PostgreSQL pass (below) for the files named too.
const only = process.argv.slice(2)
const unit = only.includes('--unit')
const named = only.filter((arg) => arg !== '--unit' && arg !== '--postgres')
const found = (named.length > 0 ? named : ['test']).flatMap((path) => (statSync(path).isDirectory() ? testFiles(join(root, path)) : [path]))
const files = unit ? found.filter((file) => !isInterop(file)) : found

const started: RunningServer[] = []
const shared: Record<string, unknown> = {}

async function stopAll(): Promise<void> {
  await Promise.all(started.splice(0).map((server) => server.stop()))
}

for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, async () => {
    log(`${signal}: stopping MLflow servers`)
    await stopAll()
    process.exit(130)
  })
}

// Only interop files talk to a running MLflow. A few unit files compare with MLflow's own Python
// code (Werkzeug's password hashes, MLflow's credentials reader) through requireMlflow: they need
// the latest release installed (cached), and no server. A run with neither installs nothing.
const needsServers = files.some(isInterop)
const needsInstall = files.some((file) => readFileSync(resolve(root, file), 'utf8').includes('requireMlflow('))
const versions = needsServers ? PINNED_VERSIONS : needsInstall ? [MLFLOW_VERSIONS.latest] : []
const installs = await Promise.all(versions.map(async (version) => ({version, ...(await prepareMlflow(version))})))
for (const install of installs) {
  log(install.ok ? `MLflow ${install.version} ready (${install.seconds.toFixed(1)}s)` : `MLflow ${install.version} could not be installed: ${install.error}`)
}

const kinds: ServerKind[] = ['plain', 'basic-auth']
await Promise.all(
  (needsServers ? installs : []).flatMap((install) =>
    kinds.map(async (kind) => {
      const key = serverKey(install.version, kind)
      if (!install.ok) {
        shared[key] = {error: `MLflow ${install.version} could not be installed: ${install.error}`}
        return
      }

      const t0 = Date.now()
      try {
        const server = await startMlflowServer({kind, version: install.version})
        started.push(server)
        const {exited: _exited, signal: _signal, stop: _stop, ...info} = server
        shared[key] = info
        log(`${key} on ${server.url} (${((Date.now() - t0) / 1000).toFixed(1)}s)`)
      } catch (error) {
        const message = `could not start ${key}: ${(error as Error).message}`
        shared[key] = {error: message}
        log(message)
      }
    }),
  ),
)

const reporterArgs = [
  '--test-reporter=spec',
  '--test-reporter-destination=stdout',
  `--test-reporter=${join(root, 'test/support/summary-reporter.mjs')}`,
  '--test-reporter-destination=stdout',
]
// Files that need no MLflow server run two at a time (node's default is one per spare core, so
// one on a 2-core machine); interop files one at a time, so that the shared MLflow servers are not
// starved. A whole run makes them two passes: unit files first, then interop files.
const UNIT_CONCURRENCY = 2
const INTEROP_CONCURRENCY = 1
// Each pass's reporter adds its counts here, so a run of two passes ends with their sum.
const countsDir = mkdtempSync(join(tmpdir(), 'mlflowctl-test-counts-'))
const countsFile = join(countsDir, 'counts.jsonl')

async function pass(passFiles: string[], concurrency: number, env: NodeJS.ProcessEnv = {}): Promise<number> {
  const child = spawn(process.execPath, ['--import', 'tsx', '--test', `--test-concurrency=${concurrency}`, ...reporterArgs, ...passFiles], {
    cwd: root,
    env: {...process.env, ...env, [SHARED_SERVERS_ENV]: JSON.stringify(shared), MLFLOWCTL_TEST_COUNTS: countsFile},
    stdio: 'inherit',
  })
  return new Promise((resolve) => {
    child.once('exit', (status, signal) => resolve(status ?? (signal ? 1 : 0)))
  })
}

// The whole run (no file named, or --postgres) runs the serve suites that exercise the auth store a second
// time with serve on PostgreSQL (test/support/serve.ts starts one per test process).
// MLFLOWCTL_TEST_STORE set by hand chooses the store of a single pass instead.
const POSTGRES_PASS = [
  'serve-authz',
  'serve-auth-api',
  'serve-scorers',
  'serve-logged-models',
  'serve-operations',
  'serve-break-glass',
  'serve-audit',
  'serve-bruteforce',
  'serve-tokens',
  'serve-jobs',
  'serve-upstream-loss',
  'serve-fuzz',
  'web-ui',
].map((name) => join('test', 'interop', `${name}.test.ts`))
const postgresPass =
  (named.length === 0 || only.includes('--postgres')) && process.env.MLFLOWCTL_TEST_STORE === undefined
    ? files.filter((file) => POSTGRES_PASS.includes(file))
    : []

const unitFiles = files.filter((file) => !isInterop(file))
const interopFiles = files.filter(isInterop)
const passes: Array<{concurrency: number; env?: NodeJS.ProcessEnv; files: string[]; name: string}> = [
  {concurrency: UNIT_CONCURRENCY, files: unitFiles, name: 'unit files'},
  {concurrency: INTEROP_CONCURRENCY, files: interopFiles, name: 'interop files'},
  {concurrency: INTEROP_CONCURRENCY, env: {MLFLOWCTL_TEST_STORE: 'postgres'}, files: postgresPass, name: 'interop files on PostgreSQL'},
].filter((each) => each.files.length > 0)

let code = 0
for (const each of passes) {
  if (passes.length > 1) log(`${each.name}: ${each.files.length} file${each.files.length === 1 ? '' : 's'}`)
  code = Math.max(code, await pass(each.files, each.concurrency, each.env))
}

// Each pass ends with its own counts; several end with their sum.
if (passes.length > 1) {
  const counts = readFileSync(countsFile, 'utf8')
    .trim()
    .split('\n')
    .map((line) => JSON.parse(line) as {failed: number; passed: number; skipped: number})
  const sum = (key: 'failed' | 'passed' | 'skipped') => counts.reduce((total, each) => total + each[key], 0)
  log(`the ${passes.length} passes together (${passes.map((each) => each.name).join(', ')}):`)
  process.stdout.write(`\n${sum('passed')} passed, ${sum('failed')} failed${sum('skipped') ? `, ${sum('skipped')} skipped` : ''}\n`)
}

rmSync(countsDir, {force: true, recursive: true})
await stopAll()
process.exit(code)
