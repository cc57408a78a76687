/**
 * serve's own calls to the upstream (a run's experiment, a search refill, a create whose answer
 * records a grant): the whole answer buffered, with a deadline and a size cap; any status
 * resolves, failures reject with UpstreamError.
 */
import {type IncomingHttpHeaders} from 'node:http'

import {type Dispatcher} from 'undici'

import {UpstreamError, withCode} from './errors.js'
import {headerSafe, headersObject, IDENTITY_HEADER} from './headers.js'
import {IDEMPOTENT, isStaleConnection, type UpstreamPool} from './pool.js'

export interface RequestOptions {
  /** A Buffer is sent as it is; anything else as JSON. */
  body?: unknown
  headers?: Record<string, string>
  /** The authenticated username, sent as X-Forwarded-User, as for a forward. */
  identity?: string
  /** Bigger answers are refused; default 64 MiB. */
  maxResponseBytes?: number
  /** Deadline for the whole exchange; default the upstream's responseTimeoutMs. */
  timeoutMs?: number
}

export interface UpstreamResponse {
  body: Buffer
  headers: IncomingHttpHeaders
  status: number
}

const DEFAULT_MAX_RESPONSE_BYTES = 64 * 1024 * 1024

function encodeBody(body: unknown): {data: Buffer; type?: string} | undefined {
  if (body === undefined) return undefined
  if (Buffer.isBuffer(body)) return {data: body}
  if (body instanceof Uint8Array) return {data: Buffer.from(body.buffer, body.byteOffset, body.byteLength)}
  return {data: Buffer.from(JSON.stringify(body), 'utf8'), type: 'application/json'}
}

/** The headers as undici takes them; Host and Content-Length are undici's to write. */
function outgoingHeaders(payload: ReturnType<typeof encodeBody>, options: RequestOptions): string[] {
  const headers = ['User-Agent', 'mlflowctl-serve']
  if (payload?.type) headers.push('Content-Type', payload.type)
  for (const [name, value] of Object.entries(options.headers ?? {})) {
    const lower = name.toLowerCase()
    if (lower !== 'host' && lower !== 'content-length') headers.push(name, value)
  }

  if (options.identity !== undefined) headers.push(IDENTITY_HEADER, headerSafe(options.identity))
  return headers
}

interface Exchange {
  deadline: number
  headers: string[]
  maxBytes: number
  method: string
  path: string
  payload: Buffer | undefined
  timeoutMs: number
}

/** One attempt, as undici's handler: the answer collected whole, within the deadline and the size cap. */
class Collect implements Dispatcher.DispatchHandlers {
  private abortUpstream: ((error?: Error) => void) | undefined
  private answered = false
  private readonly chunks: Buffer[] = []
  private headers: IncomingHttpHeaders = {}
  private settled = false
  private size = 0
  private status = 0
  private readonly timer: NodeJS.Timeout

  constructor(
    private readonly pool: UpstreamPool,
    private readonly exchange: Exchange,
    private readonly mayRetry: boolean,
    private readonly resolve: (response: UpstreamResponse) => void,
    private readonly reject: (error: Error) => void,
  ) {
    this.timer = setTimeout(() => this.fail(withCode(`no answer within ${exchange.timeoutMs} ms`, 'ETIMEDOUT')), Math.max(0, exchange.deadline - Date.now()))
    const {headers, method, path, payload} = exchange
    // The deadline above is the only clock: undici's own timeouts are off for these calls.
    pool.dispatch({body: payload?.length ? payload : null, bodyTimeout: 0, headers, headersTimeout: 0, method: method as Dispatcher.HttpMethod, path}, this)
  }

  onConnect(abort: (error?: Error) => void): void {
    this.abortUpstream = abort
    if (this.settled) abort()
  }

  onHeaders(statusCode: number, rawHeaders: Buffer[]): boolean {
    if (statusCode < 200) return true
    this.answered = true
    this.status = statusCode
    this.headers = headersObject(rawHeaders)
    return true
  }

  onData(chunk: Buffer): boolean {
    if (this.settled) return false
    this.size += chunk.length
    if (this.size > this.exchange.maxBytes) {
      this.fail(new UpstreamError(`The MLflow tracking server at ${this.pool.url} sent an answer larger than ${this.exchange.maxBytes} bytes`, 502))
      return false
    }

    this.chunks.push(chunk)
    return true
  }

  onComplete(): void {
    if (this.settled) return
    this.settle()
    this.resolve({body: Buffer.concat(this.chunks), headers: this.headers, status: this.status})
  }

  onError(error: Error): void {
    if (this.settled) return
    const {exchange} = this
    if (this.mayRetry && !this.answered && IDEMPOTENT.has(exchange.method) && isStaleConnection(error)) {
      this.settle()
      void new Collect(this.pool, exchange, false, this.resolve, this.reject)
      return
    }

    this.fail(this.pool.translate(error, this.answered))
  }

  private settle(): void {
    this.settled = true
    clearTimeout(this.timer)
  }

  /** Rejects, and ends the upstream exchange if it is still under way. */
  private fail(error: Error): void {
    if (this.settled) return
    this.settle()
    this.reject(this.pool.failure(error))
    queueMicrotask(() => this.abortUpstream?.())
  }
}

export async function request(pool: UpstreamPool, method: string, pathAndQuery: string, options: RequestOptions = {}): Promise<UpstreamResponse> {
  if (pool.closed) throw pool.shuttingDown()
  const path = pool.path(pathAndQuery)
  if (path === undefined) throw new TypeError(`The path must start with '/': ${pathAndQuery}`)
  const payload = encodeBody(options.body)
  const timeoutMs = options.timeoutMs ?? pool.responseTimeoutMs
  const exchange: Exchange = {
    deadline: Date.now() + timeoutMs,
    headers: outgoingHeaders(payload, options),
    maxBytes: options.maxResponseBytes ?? DEFAULT_MAX_RESPONSE_BYTES,
    method,
    path,
    payload: payload?.data,
    timeoutMs,
  }
  return new Promise((resolve, reject) => {
    void new Collect(pool, exchange, true, resolve, reject)
  })
}
