/**
 * serve's own calls to the upstream (a run's experiment, a search refill, a create whose answer
 * records a grant): the whole answer buffered, with a deadline and a size cap; any status
 * resolves, failures reject with UpstreamError.
 */
import {type ClientRequest, type IncomingHttpHeaders, type IncomingMessage, type OutgoingHttpHeaders} from 'node:http'

import {codeOf, UpstreamError, withCode} from './errors.js'
import {headerSafe, IDENTITY_HEADER} from './headers.js'
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

function outgoingHeaders(host: string, payload: ReturnType<typeof encodeBody>, options: RequestOptions): OutgoingHttpHeaders {
  const headers: OutgoingHttpHeaders = {Host: host, 'User-Agent': 'mlflowctl-serve'}
  if (payload?.type) headers['Content-Type'] = payload.type
  for (const [name, value] of Object.entries(options.headers ?? {})) {
    if (name.toLowerCase() !== 'host') headers[name] = value
  }

  if (options.identity !== undefined) headers[IDENTITY_HEADER] = headerSafe(options.identity)
  if (payload) headers['Content-Length'] = String(payload.data.length)
  return headers
}

interface Exchange {
  deadline: number
  headers: OutgoingHttpHeaders
  maxBytes: number
  method: string
  path: string
  payload: Buffer | undefined
  timeoutMs: number
}

/** One attempt; a stale pooled connection is tried once more on a fresh one. */
function attempt(pool: UpstreamPool, exchange: Exchange, mayRetry: boolean): Promise<UpstreamResponse> {
  return new Promise((resolve, reject) => {
    const {maxBytes, method} = exchange
    const upstreamReq: ClientRequest = pool.open(method, exchange.path, exchange.headers)
    let settled = false
    let answering = false
    const timer = setTimeout(
      () => upstreamReq.destroy(withCode(`no answer within ${exchange.timeoutMs} ms`, 'ETIMEDOUT')),
      Math.max(0, exchange.deadline - Date.now()),
    )
    const settle = () => {
      settled = true
      clearTimeout(timer)
    }

    const fail = (error: Error) => {
      if (settled) return
      settle()
      if (mayRetry && !answering && IDEMPOTENT.has(method) && isStaleConnection(upstreamReq, error)) attempt(pool, exchange, false).then(resolve, reject)
      else reject(pool.failure(error))
    }

    const brokenOff = () => withCode('the upstream connection closed in the middle of the answer', 'ECONNRESET')
    // Once the answer has begun, a socket error means it was broken off (our own timeout excepted).
    upstreamReq.on('error', (error: Error) => fail(answering && codeOf(error) !== 'ETIMEDOUT' ? brokenOff() : error))
    upstreamReq.on('response', (answer: IncomingMessage) => {
      answering = true
      const chunks: Buffer[] = []
      let size = 0
      answer.on('data', (chunk: Buffer) => {
        if (settled) return
        size += chunk.length
        if (size > maxBytes) {
          fail(new UpstreamError(`The MLflow tracking server at ${pool.url} sent an answer larger than ${maxBytes} bytes`, 502))
          upstreamReq.destroy()
          return
        }

        chunks.push(chunk)
      })
      answer.on('error', () => {}) // an aborted answer: 'close' below says so, as for a forward
      answer.on('end', () => {
        if (settled) return
        settle()
        resolve({body: Buffer.concat(chunks), headers: answer.headers, status: answer.statusCode!})
      })
      answer.on('close', () => {
        if (!answer.complete) fail(brokenOff())
      })
    })
    upstreamReq.end(exchange.payload)
  })
}

export async function request(pool: UpstreamPool, method: string, pathAndQuery: string, options: RequestOptions = {}): Promise<UpstreamResponse> {
  if (pool.closed) throw pool.shuttingDown()
  const path = pool.path(pathAndQuery)
  if (path === undefined) throw new TypeError(`The path must start with '/': ${pathAndQuery}`)
  const payload = encodeBody(options.body)
  const timeoutMs = options.timeoutMs ?? pool.responseTimeoutMs
  const exchange: Exchange = {
    deadline: Date.now() + timeoutMs,
    headers: outgoingHeaders(pool.host, payload, options),
    maxBytes: options.maxResponseBytes ?? DEFAULT_MAX_RESPONSE_BYTES,
    method,
    path,
    payload: payload?.data,
    timeoutMs,
  }
  return attempt(pool, exchange, true)
}
