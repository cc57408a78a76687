import {type ChildProcess, spawn} from 'node:child_process'
import {randomBytes} from 'node:crypto'
import {createWriteStream, readFileSync} from 'node:fs'
import {mkdtemp, readFile, rm, writeFile} from 'node:fs/promises'
import {createServer} from 'node:net'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {fileURLToPath} from 'node:url'

import {requireMlflow} from './mlflow-install.js'
import {MLFLOW_TEST_ENV, venvBin} from './mlflow-versions.js'

const SUPERVISE = fileURLToPath(new URL('py/supervise.py', import.meta.url))
const READY_TIMEOUT_MS = 180_000

export type ServerKind = 'basic-auth' | 'plain'

export interface Credentials {
  password: string
  username: string
}

/** What a test needs to reach a server; plain data so it can be handed to test processes. */
export interface ServerInfo {
  /** The admin of a basic-auth server. */
  admin?: Credentials
  dir: string
  kind: ServerKind
  logPath: string
  url: string
  version: string
}

export interface RunningServer extends ServerInfo {
  /**
   * Sends a signal to the MLflow server and all its workers at once (its process group, below
   * supervise.py): SIGKILL to make it vanish, SIGSTOP / SIGCONT to hang and resume it. Linux only.
   */
  signal(signal: NodeJS.Signals): void
  stop(): Promise<void>
  /** Resolves when the server is gone (stopped, or killed by signal()). */
  exited: Promise<void>
}

const running = new Set<ChildProcess>()
// Last resort for an exiting harness: supervise.py also sees its stdin close and cleans up.
process.once('exit', () => {
  for (const child of running) child.kill('SIGTERM')
})

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer()
    server.unref()
    server.once('error', reject)
    server.listen(0, '127.0.0.1', () => {
      const {port} = server.address() as {port: number}
      server.close(() => resolve(port))
    })
  })
}

export function randomSecret(bytes = 12): string {
  return randomBytes(bytes).toString('base64url')
}

async function waitUntilHealthy(url: string, child: ChildProcess, logPath: string): Promise<void> {
  const deadline = Date.now() + READY_TIMEOUT_MS
  while (Date.now() < deadline) {
    if (child.exitCode !== null || child.signalCode !== null) {
      throw new Error(`mlflow server exited (${child.exitCode ?? child.signalCode}) before it answered:\n${await tail(logPath)}`)
    }

    try {
      const response = await fetch(`${url}/health`, {signal: AbortSignal.timeout(2000)})
      if (response.ok) return
    } catch {}

    await new Promise((resolve) => {
      setTimeout(resolve, 250)
    })
  }

  throw new Error(`mlflow server at ${url} did not answer /health within ${READY_TIMEOUT_MS / 1000}s:\n${await tail(logPath)}`)
}

async function tail(path: string, lines = 30): Promise<string> {
  try {
    return (await readFile(path, 'utf8')).trimEnd().split('\n').slice(-lines).join('\n')
  } catch {
    return '(no log)'
  }
}

export interface StartOptions {
  /** Extra keys for basic_auth.ini's [mlflow] section. */
  authConfig?: Record<string, string>
  /**
   * The directory of its databases and artifacts, kept at stop (the caller removes it), so another
   * server can start on the same data; default: a fresh temp dir, removed at stop.
   */
  dir?: string
  env?: NodeJS.ProcessEnv
  kind: ServerKind
  /** A fixed port (to restart a server where clients expect it); default: a free one. */
  port?: number
  version: string
}

/**
 * Starts a real `mlflow server` on a free loopback port: SQLite backend and served artifacts in
 * a fresh temp dir; with kind 'basic-auth', a fresh auth database, its own basic_auth.ini and a
 * random admin password. Resolves once /health answers.
 */
export async function startMlflowServer(options: StartOptions): Promise<RunningServer> {
  await requireMlflow(options.version)
  const dir = options.dir ?? (await mkdtemp(join(tmpdir(), `mlflowctl-${options.kind}-${options.version}-`)))
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    ...MLFLOW_TEST_ENV,
    // MLflow 3.x's GenAI job runner forks seven huey consumers; auth tests need none of them.
    MLFLOW_SERVER_ENABLE_JOB_EXECUTION: 'false',
    ...options.env,
  }
  let admin: Credentials | undefined
  if (options.kind === 'basic-auth') {
    admin = {password: `admin-${randomSecret()}`, username: 'admin'}
    const config = {
      admin_password: admin.password,
      admin_username: admin.username,
      authorization_function: 'mlflow.server.auth:authenticate_request_basic_auth',
      database_uri: `sqlite:///${join(dir, 'auth.db')}`,
      default_permission: 'READ',
      // MLflow verifies scrypt on every request unless this is set (~0.3 s each on 2 cores); its
      // cache is per process and invalidated on every user change, and the servers run one worker.
      auth_cache_ttl_seconds: '600',
      ...options.authConfig,
    }
    const ini = ['[mlflow]', ...Object.entries(config).map(([key, value]) => `${key} = ${value}`)].join('\n')
    await writeFile(join(dir, 'basic_auth.ini'), `${ini}\n`)
    env.MLFLOW_AUTH_CONFIG_PATH = join(dir, 'basic_auth.ini')
    env.MLFLOW_FLASK_SERVER_SECRET_KEY = randomSecret(24)
  }

  // A port can be taken between freePort() and the server's bind; try a few.
  for (let attempt = 1; ; attempt++) {
    const port = options.port ?? (await freePort())
    const url = `http://127.0.0.1:${port}`
    const logPath = join(dir, `server-${attempt}.log`)
    const args = [
      SUPERVISE,
      venvBin(options.version, 'mlflow'),
      'server',
      '--host',
      '127.0.0.1',
      '--port',
      String(port),
      '--workers',
      '1',
      '--backend-store-uri',
      `sqlite:///${join(dir, 'mlflow.db')}`,
      '--artifacts-destination',
      join(dir, 'artifacts'),
      ...(options.kind === 'basic-auth' ? ['--app-name', 'basic-auth'] : []),
    ]
    const log = createWriteStream(logPath)
    const child = spawn(venvBin(options.version, 'python'), args, {cwd: dir, env, stdio: ['pipe', 'pipe', 'pipe']})
    child.stdout!.pipe(log)
    child.stderr!.pipe(log)
    running.add(child)
    child.once('exit', () => running.delete(child))

    const stop = async () => {
      if (child.exitCode === null && child.signalCode === null) {
        const exited = new Promise((resolve) => {
          child.once('exit', resolve)
        })
        child.stdin!.end()
        await exited
      }

      log.end()
    }

    try {
      await waitUntilHealthy(url, child, logPath)
    } catch (error) {
      await stop()
      if (attempt < 3 && options.port === undefined && /address already in use/i.test(await tail(logPath))) continue
      throw error
    }

    const exited = new Promise<void>((resolve) => {
      if (child.exitCode !== null || child.signalCode !== null) resolve()
      else child.once('exit', () => resolve())
    })
    return {
      admin,
      dir,
      exited,
      kind: options.kind,
      logPath,
      signal(signal) {
        // supervise.py started the server as the leader of a new process group: its only child.
        const [group] = readFileSync(`/proc/${child.pid}/task/${child.pid}/children`, 'utf8').trim().split(/\s+/).map(Number)
        if (!group) throw new Error(`the MLflow server under supervise.py (pid ${child.pid}) is not running`)
        process.kill(-group, signal)
      },
      async stop() {
        await stop()
        if (options.dir === undefined) await rm(dir, {force: true, recursive: true})
      },
      url,
      version: options.version,
    }
  }
}
