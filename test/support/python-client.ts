import {spawn} from 'node:child_process'
import {mkdtemp} from 'node:fs/promises'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {createInterface} from 'node:readline'
import {fileURLToPath} from 'node:url'

import {requireMlflow} from './mlflow-install.js'
import {type Credentials} from './mlflow-server.js'
import {MLFLOW_TEST_ENV} from './mlflow-versions.js'

const CALL_SCRIPT = fileURLToPath(new URL('py/call.py', import.meta.url))

export type ClientKind = 'auth' | 'mlflow' | 'tracking'

export interface PythonCall {
  args?: unknown[]
  client: ClientKind
  kwargs?: Record<string, unknown>
  method: string
  /** Return a search's page as {items, token} (token: the next page's, or null) instead of a plain list. */
  paged?: boolean
}

export interface PythonError {
  error_code: null | string
  message: string
  status: null | number
  type: string
}

/** A value a Python call returned, decoded from JSON (an object, a list, a string...): the test's assertions check it. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any -- any JSON value; the assertions are the type check
export type PythonValue = any

export type CallResult<T = PythonValue> = {error: PythonError; ok?: undefined} | {error?: undefined; ok: T}

export interface PythonClientOptions {
  /** Sent as MLFLOW_TRACKING_USERNAME / MLFLOW_TRACKING_PASSWORD; omit to send none. */
  credentials?: Credentials
  /** Extra environment for the client, e.g. MLFLOW_TRACKING_TOKEN. */
  env?: Record<string, string>
  /** HOME for the Python process; by default a fresh empty dir, so no stray credentials file is read. */
  home?: string
  /** A worker process of its own for this name (default: the version's shared one), so independent suites run in parallel. */
  lane?: string
  trackingUri: string
  version: string
}

/** Environment variables that would make the Python client's auth differ from what a test says. */
const CLIENT_AUTH_ENV = /^(MLFLOW_TRACKING_|DATABRICKS_|AWS_)/
const CALL_TIMEOUT_MS = 120_000

interface Worker {
  request(line: string): Promise<string>
}

const workers = new Map<string, Promise<Worker>>()

/**
 * One long-lived call.py per MLflow version (and optional lane) and test process; requests are
 * answered in order. Clients on different lanes of one version run in parallel.
 */
function worker(version: string, lane?: string): Promise<Worker> {
  const key = lane === undefined ? version : `${version}#${lane}`
  let ready = workers.get(key)
  if (!ready) {
    ready = startWorker(version, key)
    workers.set(key, ready)
    ready.catch(() => workers.delete(key))
  }

  return ready
}

async function startWorker(version: string, workerKey: string): Promise<Worker> {
  const python = await requireMlflow(version)
  const env = Object.fromEntries(Object.entries(process.env).filter(([key]) => !CLIENT_AUTH_ENV.test(key)))
  env.MLFLOW_HTTP_REQUEST_MAX_RETRIES = '0'
  env.PYTHONUNBUFFERED = '1'
  Object.assign(env, MLFLOW_TEST_ENV)
  const child = spawn(python, [CALL_SCRIPT], {env, stdio: ['pipe', 'pipe', 'pipe']})
  // An idle worker must not keep a finished test process alive (it exits when its stdin
  // closes); a busy one must, or the test's await would be dropped.
  const handles = [child, child.stdin, child.stdout, child.stderr] as unknown as Array<{ref(): void; unref(): void}>
  const keepAlive = (busy: boolean) => {
    for (const handle of handles) {
      if (busy) handle.ref()
      else handle.unref()
    }
  }
  let stderr = ''
  child.stderr.on('data', (chunk: Buffer) => {
    stderr = (stderr + chunk.toString()).slice(-4000)
  })
  const lines = createInterface({input: child.stdout})
  const pending: Array<{reject: (error: Error) => void; resolve: (line: string) => void}> = []
  const failAll = (why: string) => {
    workers.delete(workerKey)
    for (const waiter of pending.splice(0)) waiter.reject(new Error(`MLflow ${version} python client ${why}:\n${stderr}`))
  }

  lines.on('line', (line) => {
    pending.shift()?.resolve(line)
    if (pending.length === 0) keepAlive(false)
  })
  child.once('exit', (code, signal) => failAll(`exited (${code ?? signal})`))
  const next = () =>
    new Promise<string>((resolve, reject) => {
      const timer = setTimeout(() => {
        child.kill('SIGKILL')
        reject(new Error(`MLflow ${version} python client did not answer within ${CALL_TIMEOUT_MS / 1000}s`))
      }, CALL_TIMEOUT_MS)
      keepAlive(true)
      pending.push({
        reject(error) {
          clearTimeout(timer)
          reject(error)
        },
        resolve(line) {
          clearTimeout(timer)
          resolve(line)
        },
      })
    })

  await next() // the {"ready": ...} line, once MLflow is imported
  let queue = Promise.resolve()
  return {
    request(line) {
      const answer = queue.then(() => {
        const reply = next()
        child.stdin.write(`${line}\n`)
        return reply
      })
      queue = answer.then(
        () => {},
        () => {},
      )
      return answer
    },
  }
}

/**
 * The real MLflow Python client of the given MLflow version, in a worker process.
 * Clients: 'auth' is get_app_client("basic-auth"), 'tracking' is MlflowClient, 'mlflow' the module.
 */
export class PythonClient {
  private home: string | undefined

  constructor(private readonly options: PythonClientOptions) {}

  /** One call; throws if it failed. */
  async call<T = PythonValue>(client: ClientKind, method: string, ...args: unknown[]): Promise<T> {
    const [result] = await this.batch([{args, client, method}])
    if (result.error) throw Object.assign(new Error(`${client}.${method} failed: ${result.error.message}`), {python: result.error})
    return result.ok as T
  }

  async batch(calls: PythonCall[]): Promise<CallResult[]> {
    this.home ??= this.options.home ?? (await mkdtemp(join(tmpdir(), 'mlflowctl-pyhome-')))
    const env: Record<string, string> = {HOME: this.home}
    if (this.options.credentials) {
      env.MLFLOW_TRACKING_USERNAME = this.options.credentials.username
      env.MLFLOW_TRACKING_PASSWORD = this.options.credentials.password
    }

    Object.assign(env, this.options.env)
    const line = JSON.stringify({calls, env, tracking_uri: this.options.trackingUri})
    const response = JSON.parse(await (await worker(this.options.version, this.options.lane)).request(line)) as {fatal?: PythonError; results: CallResult[]}
    if (response.fatal) throw new Error(`python client request failed: ${response.fatal.message}`)
    return response.results
  }
}

/** The error of a result that must have failed. */
export function expectError(result: CallResult): PythonError {
  if (!result.error) throw new Error(`expected the call to fail, it returned ${JSON.stringify(result.ok)}`)
  return result.error
}
