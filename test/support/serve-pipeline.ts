/**
 * serve's whole pipeline in this process (startServe: route → authenticate → answer or decide →
 * forward → after-effects) in front of a fake MLflow that records what reaches it and answers
 * from a handler the test sets. For error paths, body policies and route decisions: no MLflow.
 */
import {once} from 'node:events'
import {mkdtemp} from 'node:fs/promises'
import {createServer, type IncomingHttpHeaders, request as httpRequest, type ServerResponse} from 'node:http'
import {tmpdir} from 'node:os'
import {join} from 'node:path'

import {type RunningServe, type ServeOptions, startServe} from '../../src/server/serve.js'

export interface Who {
  password: string
  username: string
}

export interface PipelineAnswer {
  body: string
  /** False when the connection closed before the answer was whole. */
  complete: boolean
  headers: IncomingHttpHeaders
  status: number
}

export interface SeenRequest {
  body: Buffer
  headers: IncomingHttpHeaders
  method: string
  url: URL
}

/** How the fake MLflow answers; undefined: 404 ENDPOINT_NOT_FOUND, as MLflow for a route it lacks. */
export type FakeHandler = (request: SeenRequest, response: ServerResponse) => void

export const basicAuth = ({password, username}: Who) => `Basic ${Buffer.from(`${username}:${password}`).toString('base64')}`

export const parseJson = (answer: PipelineAnswer) => JSON.parse(answer.body) as Record<string, unknown>

export function answerJson(response: ServerResponse, status: number, body: unknown): void {
  response.writeHead(status, {'content-type': 'application/json'})
  response.end(JSON.stringify(body))
}

export interface CallOptions {
  /** Sent as JSON unless a Buffer or string (then as it is, with `headers` saying what it is). */
  body?: unknown
  /** undefined: no Authorization header. */
  credentials?: Who
  headers?: Record<string, string>
}

/** One request on its own connection; a truncated answer resolves with complete: false. */
export function call(base: string, method: string, path: string, options: CallOptions = {}): Promise<PipelineAnswer> {
  const {body} = options
  const payload = body === undefined ? undefined : Buffer.isBuffer(body) || typeof body === 'string' ? Buffer.from(body) : Buffer.from(JSON.stringify(body))
  const url = new URL(base)
  const headers: Record<string, string> = {}
  if (options.credentials) headers.authorization = basicAuth(options.credentials)
  if (payload !== undefined) Object.assign(headers, {'content-length': String(payload.length), 'content-type': 'application/json'})
  Object.assign(headers, options.headers)
  return new Promise((resolve, reject) => {
    // The path as given, byte for byte: URL parsing would tidy the odd paths tests send.
    const request = httpRequest({agent: false, headers, host: url.hostname, method, path, port: url.port}, (response) => {
      const chunks: Buffer[] = []
      response.on('data', (chunk: Buffer) => chunks.push(chunk))
      response.on('error', () => {}) // a truncated answer: 'close' says so
      response.on('close', () =>
        resolve({body: Buffer.concat(chunks).toString('utf8'), complete: response.complete, headers: response.headers, status: response.statusCode!}),
      )
    })
    request.on('error', reject)
    request.end(payload)
  })
}

export interface FakeUpstream {
  /** Replaces how it answers. */
  handle(handler: FakeHandler): void
  /** Every request that reached it, in order. */
  seen: SeenRequest[]
  /** `METHOD path` of every request whose head reached it, whole body or not, in order. */
  started: string[]
  stop(): Promise<void>
  url: URL
}

export async function startFakeUpstream(handler?: FakeHandler): Promise<FakeUpstream> {
  let current = handler
  const seen: SeenRequest[] = []
  const started: string[] = []
  const server = createServer((req, res) => {
    started.push(`${req.method} ${req.url}`)
    req.on('error', () => {}) // a request cut short: it never counts as seen
    const chunks: Buffer[] = []
    req.on('data', (chunk: Buffer) => chunks.push(chunk))
    req.on('end', () => {
      const request: SeenRequest = {body: Buffer.concat(chunks), headers: req.headers, method: req.method!, url: new URL(req.url!, 'http://fake')}
      seen.push(request)
      current?.(request, res)
      if (!res.headersSent) answerJson(res, 404, {error_code: 'ENDPOINT_NOT_FOUND', message: 'no such route in the fake'})
    })
  })
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  const {port} = server.address() as {port: number}
  return {
    handle(next) {
      current = next
    },
    seen,
    started,
    async stop() {
      server.closeAllConnections()
      await new Promise((resolve) => {
        server.close(resolve)
      })
    },
    url: new URL(`http://127.0.0.1:${port}`),
  }
}

export interface Pipeline {
  admin: Who
  close(): Promise<void>
  /** Creates a user through serve's own auth API (as the admin), with an optional grant per experiment. */
  createUser(who: Who, grants?: Record<string, string>): Promise<void>
  /** serve's log lines so far. */
  log: string[]
  serve: RunningServe
  upstream: FakeUpstream
  url: string
}

/** serve (in process, on a free loopback port, a fresh store) in front of a fake MLflow. */
export async function startPipeline(options: {handler?: FakeHandler; serve?: Partial<ServeOptions>} = {}): Promise<Pipeline> {
  const upstream = await startFakeUpstream(options.handler)
  const dir = await mkdtemp(join(tmpdir(), 'mlflowctl-pipeline-'))
  const admin = {password: 'admin-password-for-the-pipeline', username: 'admin'}
  const log: string[] = []
  const serve = await startServe({
    env: {MLFLOW_AUTH_ADMIN_PASSWORD: admin.password},
    host: '127.0.0.1',
    log: (line) => log.push(line),
    port: 0,
    proxyTo: upstream.url,
    storePath: join(dir, 'auth.json'),
    ...options.serve,
  })
  const url = serve.url
  return {
    admin,
    async close() {
      await serve.close()
      await upstream.stop()
    },
    async createUser(who, grants = {}) {
      const created = await call(url, 'POST', '/api/2.0/mlflow/users/create', {body: who, credentials: admin})
      if (created.status !== 200) throw new Error(`creating ${who.username}: ${created.status} ${created.body}`)
      for (const [experimentId, permission] of Object.entries(grants)) {
        const body = {experiment_id: experimentId, permission, username: who.username}
        const granted = await call(url, 'POST', '/api/2.0/mlflow/experiments/permissions/create', {body, credentials: admin})
        if (granted.status !== 200) throw new Error(`granting ${who.username} ${permission} on ${experimentId}: ${granted.status} ${granted.body}`)
      }
    },
    log,
    serve,
    upstream,
    url,
  }
}
