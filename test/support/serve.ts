import {type ChildProcess, spawn} from 'node:child_process'
import {mkdtemp} from 'node:fs/promises'
import {tmpdir} from 'node:os'
import {join} from 'node:path'

import {CLI} from './cli.js'
import {type Credentials, freePort, randomSecret} from './mlflow-server.js'
import {type RunningPostgres, startPostgres} from './postgres.js'

/**
 * MLFLOWCTL_TEST_STORE=postgres: serve keeps its store in PostgreSQL (one server per test process,
 * a fresh database per serve), so the serve suites run against the database store too.
 */
const STORE_ENV = 'MLFLOWCTL_TEST_STORE'
let postgres: Promise<RunningPostgres> | undefined
let databases = 0

async function postgresStore(): Promise<string> {
  postgres ??= startPostgres().then((running) => {
    process.once('beforeExit', () => void running.stop())
    return running
  })
  const running = await postgres
  return running.database(`serve_${process.pid}_${++databases}`)
}

export interface RunningServe {
  admin: Credentials
  child: ChildProcess
  /** Everything serve printed on stderr so far. */
  output(): string
  stop(signal?: NodeJS.Signals): Promise<number | null>
  storePath: string
  url: string
}

/**
 * Starts the built `mlflowctl serve` in its own process in front of an upstream MLflow server.
 * `url` is on 127.0.0.1 whatever --host is, with https when serve says it listens over HTTPS.
 */
export async function startServe(options: {
  env?: NodeJS.ProcessEnv
  extraArgs?: string[]
  host?: string
  /** Options for node itself, before the CLI (e.g. --cpu-prof, which NODE_OPTIONS does not take). */
  nodeArgs?: string[]
  storePath?: string
  upstream: string
}): Promise<RunningServe> {
  const dir = await mkdtemp(join(tmpdir(), 'mlflowctl-serve-'))
  const storeKind = process.env[STORE_ENV]
  if (storeKind !== undefined && storeKind !== 'postgres' && storeKind !== 'file') throw new Error(`${STORE_ENV} is "${storeKind}", not postgres or file`)
  const storePath = options.storePath ?? (storeKind === 'postgres' ? await postgresStore() : join(dir, 'auth.json'))
  const admin = {password: `admin-${randomSecret()}`, username: 'admin'}
  const port = await freePort()
  const env = {
    ...Object.fromEntries(Object.entries(process.env).filter(([key]) => !/^(MLFLOW_|NODE_TEST)/.test(key))),
    MLFLOW_AUTH_ADMIN_PASSWORD: admin.password,
    // serve's log as a person reads it on a terminal (without one it writes JSON lines), which the tests match.
    MLFLOWCTL_LOG_FORMAT: 'pretty',
    ...options.env,
  }
  const child = spawn(
    process.execPath,
    [
      ...(options.nodeArgs ?? []),
      CLI,
      'serve',
      '--proxy-to',
      options.upstream,
      '--host',
      options.host ?? '127.0.0.1',
      '--port',
      String(port),
      '--store',
      storePath,
      ...(options.extraArgs ?? []),
    ],
    {env, stdio: ['ignore', 'ignore', 'pipe']},
  )
  let stderr = ''
  child.stderr!.on('data', (chunk: Buffer) => {
    stderr += chunk.toString()
  })
  await new Promise<void>((resolve, reject) => {
    const check = () => {
      if (stderr.includes('listening on')) resolve()
    }

    child.stderr!.on('data', check)
    child.once('exit', (code) => reject(new Error(`serve exited (${code}) before listening:\n${stderr}`)))
    setTimeout(() => reject(new Error(`serve did not start:\n${stderr}`)), 30_000).unref()
  })
  return {
    admin,
    child,
    output: () => stderr,
    async stop(signal = 'SIGTERM') {
      if (child.exitCode !== null || child.signalCode !== null) return child.exitCode
      const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)))
      child.kill(signal)
      return exited
    },
    storePath,
    url: `${/listening on https:/.test(stderr) ? 'https' : 'http'}://127.0.0.1:${port}`,
  }
}
