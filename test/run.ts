/**
 * The test command's runner: installs the pinned MLflow releases (cached), starts the shared
 * MLflow servers, runs every test file under node:test, and always stops the servers.
 */
import {spawn} from 'node:child_process'
import {readdirSync, statSync} from 'node:fs'
import {join, relative} from 'node:path'
import {fileURLToPath} from 'node:url'

import {prepareMlflow} from './support/mlflow-install.js'
import {type RunningServer, type ServerKind, startMlflowServer} from './support/mlflow-server.js'
import {PINNED_VERSIONS} from './support/mlflow-versions.js'
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

// Arguments name test files or folders of them; none: every test file.
const only = process.argv.slice(2)
const files = (only.length > 0 ? only : ['test']).flatMap((path) => (statSync(path).isDirectory() ? testFiles(join(root, path)) : [path]))

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

// Only interop files talk to MLflow: a run without them installs and starts nothing.
const needsMlflow = files.some((file) => file.split(/[\\/]/).includes('interop'))
const installs = await Promise.all((needsMlflow ? PINNED_VERSIONS : []).map(async (version) => ({version, ...(await prepareMlflow(version))})))
for (const install of installs) {
  log(install.ok ? `MLflow ${install.version} ready (${install.seconds.toFixed(1)}s)` : `MLflow ${install.version} could not be installed: ${install.error}`)
}

const kinds: ServerKind[] = ['plain', 'basic-auth']
await Promise.all(
  installs.flatMap((install) =>
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
        const {stop: _stop, ...info} = server
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
const child = spawn(process.execPath, ['--import', 'tsx', '--test', ...reporterArgs, ...files], {
  cwd: root,
  env: {...process.env, [SHARED_SERVERS_ENV]: JSON.stringify(shared)},
  stdio: 'inherit',
})
const code: number = await new Promise((resolve) => {
  child.once('exit', (status, signal) => resolve(status ?? (signal ? 1 : 0)))
})
await stopAll()
process.exit(code)
