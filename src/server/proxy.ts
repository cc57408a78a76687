/**
 * Forwarding to the upstream MLflow tracking server for `mlflowctl serve`
 * (docs/mlflow-auth-contract.md, "Forwarding to the upstream"): a keep-alive connection pool,
 * bodies streamed both ways (never buffered), and headers cleaned so that the upstream only hears
 * what the proxy vouches for.
 *
 * Built on node:http, shaped like the httpxy proxy library: small named passes for the way in
 * (check framing → upstream path → request headers → send) and the way back (response headers →
 * stream), an upstream request aborted when the client goes away, and failures mapped to
 * MLflow-style JSON before the response starts, or to a destroyed client socket after.
 */
import {type ClientRequest, Agent as HttpAgent, request as httpRequest, type IncomingHttpHeaders, type IncomingMessage, type OutgoingHttpHeaders, type ServerResponse} from 'node:http'
import {Agent as HttpsAgent, request as httpsRequest} from 'node:https'
import type {Socket} from 'node:net'

import {type Client, directClient} from './client-address.js'

export interface UpstreamTlsOptions {
  /** Trusted CA certificates (PEM) for the upstream's certificate; default: Node's store. */
  ca?: Buffer | string | Array<Buffer | string>
  /** Client certificate and key (PEM), when the upstream asks for one. */
  cert?: Buffer | string
  key?: Buffer | string
  /** Default true. */
  rejectUnauthorized?: boolean
  /** SNI and certificate name to check, when it differs from the URL's host. */
  servername?: string
}

export interface UpstreamOptions {
  /**
   * Who the client is (address, and whether it came over HTTPS), sent upstream as X-Forwarded-For
   * and X-Forwarded-Proto; default: the socket's peer, as if no proxy were trusted.
   */
  client?: (req: IncomingMessage) => Client
  /** Time to open a connection (TCP, and TLS for https); default 10 000 ms. Not a response timeout. */
  connectTimeoutMs?: number
  /**
   * How long an unused pooled connection is kept; default 1 500 ms, below the keep-alive timeouts of
   * the servers MLflow runs on (gunicorn 2 s, uvicorn 5 s), so a connection the upstream is about to
   * close is rarely reused.
   */
  idleSocketTimeoutMs?: number
  /** Connections to the upstream at once (requests beyond wait for one); default 256. */
  maxSockets?: number
  /**
   * Called for each failure of a forward (refused, reset, timed out, broken answer), for logging:
   * forward() answers the client itself and never rejects. `path` is the upstream path without
   * its query. request() rejects instead and reports nothing: its caller decides.
   */
  onError?: (error: UpstreamError, request: {method: string; path: string}) => void
  /**
   * How long the upstream may take to answer: for a forward, from the end of the request body to
   * the answer's head (a long download is not cut); for request(), the whole exchange unless the
   * call gives its own. Default 120 000 ms, MLflow's own client timeout.
   */
  responseTimeoutMs?: number
  tls?: UpstreamTlsOptions
  /** The plain MLflow server, e.g. http://127.0.0.1:5000; may have a path prefix (http://host/mlflow). */
  upstream: URL
}

export interface ForwardOptions {
  /** Replaces the request body when the caller already read it (small JSON). */
  body?: Buffer
  /** The authenticated username, sent as X-Forwarded-User for the upstream's logs. */
  identity?: string
  /** Replaces the request's method (a HEAD sent as the GET it was decided as). */
  method?: string
  /** Path and query to send (before the upstream's prefix); default req.url. Must start with '/'. */
  path?: string
}

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

export interface Upstream {
  /** Destroys pooled and in-use connections; later calls answer 503 (forward) or reject (request). */
  close(): Promise<void>
  /**
   * Streams the client's request to the upstream and the answer back. Never rejects: failures
   * become a 400/502/503/504 JSON answer, or a destroyed client socket once the answer has started.
   * Resolves when the exchange is over. An `Expect: 100-continue` is the HTTP server's to answer
   * (Node does it before 'request' unless the server listens for 'checkContinue'); it is not
   * passed on, since the body is streamed straight away.
   */
  forward(req: IncomingMessage, res: ServerResponse, options?: ForwardOptions): Promise<void>
  /** serve's own calls to the upstream, on the same pool; any status resolves, failures reject with UpstreamError. */
  request(method: string, pathAndQuery: string, options?: RequestOptions): Promise<UpstreamResponse>
  /** The upstream as shown in messages: origin and path prefix, never credentials. */
  readonly url: string
}

/** MLflow's error body. */
export interface MlflowErrorBody {
  error_code: string
  message: string
}

/**
 * The upstream failed; `status` is what a client gets: 503 it cannot be reached (refused, no such
 * host, serve shutting down), 502 it answered brokenly (reset, closed early, not HTTP, too big),
 * 504 it did not answer in time. The error code is MLflow's for the status (both 5xx without one of
 * their own are TEMPORARILY_UNAVAILABLE), so MLflow's clients retry as they would against MLflow.
 */
export class UpstreamError extends Error {
  readonly body: MlflowErrorBody
  readonly code?: string

  constructor(
    message: string,
    readonly status: UpstreamFailureStatus,
    code?: string,
    options?: ErrorOptions,
  ) {
    super(message, options)
    this.name = 'UpstreamError'
    this.code = code
    this.body = {error_code: status === 504 ? 'DEADLINE_EXCEEDED' : 'TEMPORARILY_UNAVAILABLE', message}
  }
}

export type UpstreamFailureStatus = 502 | 503 | 504

const DEFAULT_CONNECT_TIMEOUT_MS = 10_000
const DEFAULT_IDLE_SOCKET_TIMEOUT_MS = 1500
const DEFAULT_MAX_SOCKETS = 256
const DEFAULT_RESPONSE_TIMEOUT_MS = 120_000
const DEFAULT_MAX_RESPONSE_BYTES = 64 * 1024 * 1024

/** The header that carries the authenticated user to the upstream. */
export const IDENTITY_HEADER = 'X-Forwarded-User'

// RFC 9110 §7.6.1 hop-by-hop headers, plus those clients still send (Proxy-Connection, HTTP2-Settings).
const HOP_BY_HOP = new Set(['connection', 'http2-settings', 'keep-alive', 'te', 'trailer', 'transfer-encoding', 'upgrade'])

// Headers a server behind a proxy might take as "who is calling" or "from where": the client must
// never be able to choose them. A deny list cannot be complete, hence the prefixes.
const IDENTITY_HEADERS = new Set([
  'cf-access-authenticated-user-email',
  'cf-access-jwt-assertion',
  'forwarded',
  'remote-user',
  'x-access-token',
  'x-auth-user',
  'x-client-ip',
  'x-credential-identifier',
  'x-email',
  'x-goog-iap-jwt-assertion',
  'x-groups',
  'x-id-token',
  'x-jwt-assertion',
  'x-mlflow-user',
  'x-mlflow-username',
  'x-real-ip',
  'x-user',
  'x-user-email',
  'x-user-groups',
  'x-user-id',
  'x-user-name',
  'x-userinfo',
  'x-username',
])
const IDENTITY_PREFIXES = [
  'x-amzn-oidc-',
  'x-auth-request-',
  'x-authenticated-',
  'x-consumer-',
  'x-forwarded-', // also X-Forwarded-User/-Email/-Groups/-Access-Token (oauth2-proxy)
  'x-goog-authenticated-user-',
  'x-ms-client-principal',
  'x-remote-',
  'x-webauth-',
]

// Replaced by the proxy (Host, framing) or not passed on (credentials, Expect: we stream at once).
const REPLACED_REQUEST_HEADERS = new Set(['authorization', 'content-length', 'expect', 'host'])

const IDEMPOTENT = new Set(['DELETE', 'GET', 'HEAD', 'OPTIONS', 'PUT', 'TRACE'])

export function isHopByHop(name: string): boolean {
  return HOP_BY_HOP.has(name) || name.startsWith('proxy-')
}

function isIdentityHeader(name: string): boolean {
  return IDENTITY_HEADERS.has(name) || IDENTITY_PREFIXES.some((prefix) => name.startsWith(prefix))
}

/** Names listed in Connection are hop-by-hop too; never the framing one, which is re-derived anyway. */
function connectionTokens(value: string | string[] | undefined): Set<string> {
  const text = Array.isArray(value) ? value.join(',') : (value ?? '')
  const tokens = new Set(text.split(',').map((token) => token.trim().toLowerCase()).filter(Boolean))
  tokens.delete('content-length')
  return tokens
}

/** Header lines from rawHeaders, keeping the first spelling and every value (e.g. several Set-Cookie). */
function collectHeaders(rawHeaders: string[], keep: (name: string) => boolean): Map<string, {name: string; values: string[]}> {
  const headers = new Map<string, {name: string; values: string[]}>()
  for (let i = 0; i < rawHeaders.length; i += 2) {
    const name = rawHeaders[i]!
    const lower = name.toLowerCase()
    if (!keep(lower)) continue
    const entry = headers.get(lower)
    if (entry) entry.values.push(rawHeaders[i + 1]!)
    else headers.set(lower, {name, values: [rawHeaders[i + 1]!]})
  }

  return headers
}

function codeOf(error: unknown): string | undefined {
  const code = (error as NodeJS.ErrnoException | undefined)?.code
  return typeof code === 'string' ? code : undefined
}

/** An error of our own making: its message is already the reason to show. */
function withCode(message: string, code: string): Error {
  return Object.assign(new Error(message), {code, ownReason: true})
}

const UNREACHABLE = new Set(['EAI_AGAIN', 'ECONNREFUSED', 'EHOSTUNREACH', 'ENETUNREACH', 'ENOTFOUND', 'ESHUTDOWN'])

/** The one place a failure's status is decided (see UpstreamError). */
function failureStatus(error: Error): UpstreamFailureStatus {
  const code = codeOf(error)
  if (code === 'ETIMEDOUT') return 504
  return code !== undefined && UNREACHABLE.has(code) ? 503 : 502
}

const FAILURE_PHRASE: Record<UpstreamFailureStatus, string> = {
  502: 'gave no usable answer',
  503: 'is not reachable',
  504: 'did not answer in time',
}

/** A short reason for the message, with the system code for whoever reads the logs. */
function describeFailure(error: Error, hostname: string): string {
  const code = codeOf(error)
  let reason: string
  switch ((error as {ownReason?: boolean}).ownReason ? undefined : code) {
    case 'ECONNREFUSED': {
      reason = 'connection refused'
      break
    }

    case 'ECONNRESET': {
      reason = error.message === 'socket hang up' ? 'connection closed without an answer' : 'connection reset'
      break
    }

    case 'EPIPE': {
      reason = 'connection closed while sending the request'
      break
    }

    case 'ENOTFOUND':
    case 'EAI_AGAIN': {
      reason = `host ${hostname} not found`
      break
    }

    case 'EHOSTUNREACH':
    case 'ENETUNREACH': {
      reason = 'host unreachable'
      break
    }

    default: {
      reason = code?.startsWith('HPE_') ? `invalid HTTP answer (${error.message})` : error.message
    }
  }

  return code && !reason.includes(code) ? `${reason} (${code})` : reason
}

/** Query strings are passed byte for byte; only the prefix is added. Absolute-form and `*` are refused:
 * the auth checks read the path, so the upstream must route on exactly that path. */
function upstreamPath(prefix: string, path: string): string | undefined {
  return path.startsWith('/') ? prefix + path : undefined
}

/** Why a request must not be forwarded: ambiguous framing invites request smuggling. Node's strict
 * parser refuses most of these itself; this also holds with insecureHTTPParser. */
export function framingProblem(req: IncomingMessage): string | undefined {
  let lengths = 0
  let encodings = 0
  for (let i = 0; i < req.rawHeaders.length; i += 2) {
    const name = req.rawHeaders[i]!.toLowerCase()
    if (name === 'content-length') lengths++
    else if (name === 'transfer-encoding') encodings++
  }

  const length = req.headers['content-length']
  const encoding = req.headers['transfer-encoding']
  if (lengths > 0 && encodings > 0) return 'both Content-Length and Transfer-Encoding'
  if (lengths > 1) return 'more than one Content-Length'
  if (length !== undefined && !/^\d+$/.test(length)) return 'invalid Content-Length'
  // The body is re-chunked on the way out, so no coding but plain chunked can be passed on.
  if (encodings > 1 || (encoding !== undefined && encoding.trim().toLowerCase() !== 'chunked')) return 'unsupported Transfer-Encoding'
  return undefined
}

/** The body to send: the caller's buffer, the client's stream with its framing, or nothing. */
type Body = {data: Buffer; kind: 'buffer'} | {framing: OutgoingHttpHeaders; kind: 'stream'} | {kind: 'none'}

function requestBody(req: IncomingMessage, body: Buffer | undefined): Body {
  if (body !== undefined) return {data: body, kind: 'buffer'}
  const length = req.headers['content-length']
  if (length === '0') return {data: Buffer.alloc(0), kind: 'buffer'}
  if (length !== undefined) return {framing: {'Content-Length': length}, kind: 'stream'}
  // Explicit chunked framing: for DELETE/OPTIONS Node would otherwise send the body unframed, for
  // the upstream to read as a next request (httpxy GHSA-ggv3-7p47-pfv8). Connection: close as well,
  // so that nothing after the body can ever be read on that connection.
  if (req.headers['transfer-encoding'] !== undefined) return {framing: {Connection: 'close', 'Transfer-Encoding': 'chunked'}, kind: 'stream'}
  return {kind: 'none'}
}

/** Header values must be latin1 without controls; other usernames are percent-encoded. */
function headerSafe(value: string): string {
  return /^[\u0021-\u0024\u0026-\u007E]+$/.test(value) ? value : encodeURIComponent(value)
}

function requestHeaders(req: IncomingMessage, client: Client, host: string, body: Body, identity: string | undefined): OutgoingHttpHeaders {
  const dropped = connectionTokens(req.headers.connection)
  const kept = collectHeaders(req.rawHeaders, (name) => !isHopByHop(name) && !dropped.has(name) && !isIdentityHeader(name) && !REPLACED_REQUEST_HEADERS.has(name))
  // MLflow ≥ 3.5 refuses Host headers it does not know: send the upstream's own.
  const headers: OutgoingHttpHeaders = {Host: host}
  for (const {name, values} of kept.values()) headers[name] = values.length === 1 ? values[0] : values
  if (client.address) headers['X-Forwarded-For'] = client.address
  headers['X-Forwarded-Proto'] = client.protocol
  if (req.headers.host) headers['X-Forwarded-Host'] = req.headers.host
  if (identity !== undefined) headers[IDENTITY_HEADER] = headerSafe(identity)
  if (body.kind === 'buffer') headers['Content-Length'] = String(body.data.length)
  else if (body.kind === 'stream') Object.assign(headers, body.framing)
  return headers
}

function copyResponseHead(upstream: IncomingMessage, res: ServerResponse): void {
  const dropped = connectionTokens(upstream.headers.connection)
  const headers = collectHeaders(upstream.rawHeaders, (name) => !isHopByHop(name) && !dropped.has(name))
  res.statusCode = upstream.statusCode!
  if (upstream.statusMessage) res.statusMessage = upstream.statusMessage
  for (const {name, values} of headers.values()) res.setHeader(name, values.length === 1 ? values[0]! : values)
}

function sendJson(req: IncomingMessage, res: ServerResponse, status: number, body: MlflowErrorBody): void {
  if (res.headersSent) {
    res.destroy()
    return
  }

  const text = JSON.stringify(body)
  res.statusCode = status
  res.setHeader('Content-Type', 'application/json')
  res.setHeader('Content-Length', Buffer.byteLength(text))
  // An unread request body would otherwise be drained (maybe 500 MB) to keep the connection.
  if (!req.complete) res.setHeader('Connection', 'close')
  res.end(text)
}

function encodeBody(body: unknown): {data: Buffer; type?: string} | undefined {
  if (body === undefined) return undefined
  if (Buffer.isBuffer(body)) return {data: body}
  if (body instanceof Uint8Array) return {data: Buffer.from(body.buffer, body.byteOffset, body.byteLength)}
  return {data: Buffer.from(JSON.stringify(body), 'utf8'), type: 'application/json'}
}

/** A pooled connection the upstream closed while it sat idle: the request never reached it. */
function isStaleConnection(request: ClientRequest, error: Error): boolean {
  const code = codeOf(error)
  return request.reusedSocket && (code === 'ECONNRESET' || code === 'EPIPE')
}

export function createUpstream(options: UpstreamOptions): Upstream {
  const {upstream} = options
  if (upstream.protocol !== 'http:' && upstream.protocol !== 'https:') throw new TypeError(`The upstream must be an http or https URL, not ${upstream.protocol}`)
  if (upstream.username || upstream.password) throw new TypeError('The upstream URL must not contain credentials')
  if (upstream.search || upstream.hash) throw new TypeError('The upstream URL must not have a query or fragment')

  const secure = upstream.protocol === 'https:'
  const clientOf = options.client ?? directClient
  const hostname = upstream.hostname.replace(/^\[(.*)]$/, '$1') // [::1] → ::1 for node:http
  const prefix = upstream.pathname.replace(/\/+$/, '')
  const url = upstream.origin + prefix
  const connectTimeoutMs = options.connectTimeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS
  const responseTimeoutMs = options.responseTimeoutMs ?? DEFAULT_RESPONSE_TIMEOUT_MS
  const agentOptions = {
    keepAlive: true,
    maxSockets: options.maxSockets ?? DEFAULT_MAX_SOCKETS,
    scheduling: 'lifo' as const,
    // Node applies this to idle pooled sockets (destroyed on timeout); on a socket in use it only
    // emits 'timeout', which nothing here listens to, so long answers are not cut.
    timeout: options.idleSocketTimeoutMs ?? DEFAULT_IDLE_SOCKET_TIMEOUT_MS,
  }
  const agent = secure ? new HttpsAgent({...agentOptions, ...options.tls}) : new HttpAgent(agentOptions)
  const send = secure ? httpsRequest : httpRequest
  let closed = false

  function unavailable(error: Error): UpstreamError {
    if (error instanceof UpstreamError) return error
    const status = failureStatus(error)
    const message = `The MLflow tracking server at ${url} ${FAILURE_PHRASE[status]}: ${describeFailure(error, upstream.hostname)}`
    return new UpstreamError(message, status, codeOf(error), {cause: error})
  }

  /** Tells the logging hook about a failed forward; never its query (it may carry anything). */
  function report(error: Error, method: string, path: string): UpstreamError {
    const failure = unavailable(error)
    try {
      options.onError?.(failure, {method, path: path.split('?', 1)[0]})
    } catch {
      // A logging hook must not break forwarding.
    }

    return failure
  }

  /** Opens the upstream request; a connection that does not open in time is destroyed with ETIMEDOUT. */
  function open(method: string, path: string, headers: OutgoingHttpHeaders): ClientRequest {
    const request = send({agent, headers, hostname, method, path, port: upstream.port || undefined})
    request.once('socket', (socket: Socket) => {
      if (!socket.connecting) return
      const timer = setTimeout(() => request.destroy(withCode(`no connection within ${connectTimeoutMs} ms`, 'ETIMEDOUT')), connectTimeoutMs)
      const done = () => clearTimeout(timer)
      socket.once(secure ? 'secureConnect' : 'connect', done)
      socket.once('close', done)
    })
    return request
  }

  function forward(req: IncomingMessage, res: ServerResponse, forwardOptions: ForwardOptions = {}): Promise<void> {
    const method = forwardOptions.method ?? req.method ?? 'GET'
    const requestedPath = forwardOptions.path ?? req.url ?? ''
    return new Promise<void>((resolve) => {
      if (res.destroyed) {
        resolve()
        return
      }

      res.once('close', () => resolve())
      res.on('error', () => {}) // a client that vanished; 'close' follows

      if (closed) {
        sendJson(req, res, 503, unavailable(withCode('the proxy is shutting down', 'ESHUTDOWN')).body)
        return
      }

      const problem = forwardOptions.body === undefined ? framingProblem(req) : undefined
      const path = upstreamPath(prefix, requestedPath)
      if (problem || path === undefined) {
        sendJson(req, res, 400, {error_code: 'BAD_REQUEST', message: problem ? `Bad request: ${problem}` : `Bad request: the request target must be a path, not ${JSON.stringify(requestedPath.slice(0, 200))}`})
        return
      }

      const body = requestBody(req, forwardOptions.body)
      const headers = requestHeaders(req, clientOf(req), upstream.host, body, forwardOptions.identity)
      const replayable = body.kind !== 'stream' && IDEMPOTENT.has(method)
      dispatch(true)

      function dispatch(mayRetry: boolean): void {
        let upstreamReq: ClientRequest
        try {
          upstreamReq = open(method, path!, headers)
        } catch (error) {
          // Node refuses a path or header it cannot send (e.g. a caller's path with spaces).
          sendJson(req, res, 400, {error_code: 'BAD_REQUEST', message: `Bad request: ${(error as Error).message}`})
          return
        }

        let answered = false
        let upstreamRes: IncomingMessage | undefined
        // Counted from the end of the request body, so a slow upload is never the upstream's fault.
        let answerTimer: NodeJS.Timeout | undefined
        const stopAnswerTimer = () => clearTimeout(answerTimer)
        upstreamReq.once('finish', () => {
          if (answered) return
          answerTimer = setTimeout(() => upstreamReq.destroy(withCode(`no answer within ${responseTimeoutMs} ms`, 'ETIMEDOUT')), responseTimeoutMs)
        })
        upstreamReq.once('close', stopAnswerTimer)

        // The client went away: abort the upstream exchange too, so no socket is left behind.
        const abandon = () => {
          if (!res.writableFinished) upstreamReq.destroy()
        }

        res.once('close', abandon)
        const clientAborted = () => {
          if (!req.complete) upstreamReq.destroy()
        }

        req.once('close', clientAborted)
        req.on('error', () => {}) // ECONNRESET 'aborted'; 'close' follows

        upstreamReq.on('error', (error: Error) => {
          if (body.kind === 'stream') req.unpipe(upstreamReq)
          if (res.destroyed && !res.writableFinished) return // our own abort after the client left
          if (answered) {
            // An early answer (e.g. 413) already relayed in full: the unsent rest of the body no longer matters.
            if (upstreamRes?.complete) return
            report(error, method, path!)
            res.destroy()
            return
          }

          if (mayRetry && replayable && isStaleConnection(upstreamReq, error)) {
            res.off('close', abandon)
            req.off('close', clientAborted)
            dispatch(false)
            return
          }

          const failure = report(error, method, path!)
          sendJson(req, res, failure.status, failure.body)
        })

        upstreamReq.on('response', (answer: IncomingMessage) => {
          answered = true
          stopAnswerTimer()
          upstreamRes = answer
          if (res.destroyed) {
            answer.destroy()
            return
          }

          try {
            copyResponseHead(answer, res)
          } catch (error) {
            // e.g. a status message Node will not write back
            answer.destroy()
            const failure = report(error as Error, method, path!)
            sendJson(req, res, failure.status, failure.body)
            return
          }

          if (!req.complete && body.kind === 'stream') res.setHeader('Connection', 'close')
          answer.on('error', () => {}) // 'close' below decides
          answer.once('close', () => {
            // A truncated answer must look truncated to the client, never like a success.
            if (!answer.complete && !res.destroyed) {
              report(withCode('the upstream connection closed in the middle of the answer', 'ECONNRESET'), method, path!)
              res.destroy()
            }
          })
          answer.pipe(res)
        })

        if (body.kind === 'stream') req.pipe(upstreamReq)
        else upstreamReq.end(body.kind === 'buffer' ? body.data : undefined)
      }
    })
  }

  async function request(method: string, pathAndQuery: string, requestOptions: RequestOptions = {}): Promise<UpstreamResponse> {
    if (closed) throw unavailable(withCode('the proxy is shutting down', 'ESHUTDOWN'))
    const path = upstreamPath(prefix, pathAndQuery)
    if (path === undefined) throw new TypeError(`The path must start with '/': ${pathAndQuery}`)
    const payload = encodeBody(requestOptions.body)
    const headers: OutgoingHttpHeaders = {Host: upstream.host, 'User-Agent': 'mlflowctl-serve'}
    if (payload?.type) headers['Content-Type'] = payload.type
    for (const [name, value] of Object.entries(requestOptions.headers ?? {})) {
      if (name.toLowerCase() !== 'host') headers[name] = value
    }

    if (requestOptions.identity !== undefined) headers[IDENTITY_HEADER] = headerSafe(requestOptions.identity)
    if (payload) headers['Content-Length'] = String(payload.data.length)
    const timeoutMs = requestOptions.timeoutMs ?? responseTimeoutMs
    const maxBytes = requestOptions.maxResponseBytes ?? DEFAULT_MAX_RESPONSE_BYTES
    const deadline = Date.now() + timeoutMs

    const attempt = (mayRetry: boolean): Promise<UpstreamResponse> =>
      new Promise((resolve, reject) => {
        const upstreamReq = open(method, path, headers)
        let settled = false
        const timer = setTimeout(() => upstreamReq.destroy(withCode(`no answer within ${timeoutMs} ms`, 'ETIMEDOUT')), Math.max(0, deadline - Date.now()))
        const fail = (error: Error) => {
          if (settled) return
          settled = true
          clearTimeout(timer)
          if (mayRetry && IDEMPOTENT.has(method) && isStaleConnection(upstreamReq, error)) {
            attempt(false).then(resolve, reject)
            return
          }

          reject(unavailable(error))
        }

        let answering = false
        const brokenOff = () => withCode('the upstream connection closed in the middle of the answer', 'ECONNRESET')
        // Once the answer has begun, a socket error means it was broken off (our own timeout excepted).
        upstreamReq.on('error', (error: Error) => fail(answering && codeOf(error) !== 'ETIMEDOUT' ? brokenOff() : error))
        upstreamReq.on('response', (answer: IncomingMessage) => {
          mayRetry = false
          answering = true
          const chunks: Buffer[] = []
          let size = 0
          answer.on('data', (chunk: Buffer) => {
            if (settled) return
            size += chunk.length
            if (size > maxBytes) {
              fail(new UpstreamError(`The MLflow tracking server at ${url} sent an answer larger than ${maxBytes} bytes`, 502))
              upstreamReq.destroy()
              return
            }

            chunks.push(chunk)
          })
          answer.on('error', () => {}) // an aborted answer: 'close' below says so, as for a forward
          answer.on('end', () => {
            if (settled) return
            settled = true
            clearTimeout(timer)
            resolve({body: Buffer.concat(chunks), headers: answer.headers, status: answer.statusCode!})
          })
          answer.on('close', () => {
            if (!answer.complete) fail(brokenOff())
          })
        })
        upstreamReq.end(payload?.data)
      })

    return attempt(true)
  }

  return {
    async close() {
      closed = true
      agent.destroy()
    },
    forward,
    request,
    url,
  }
}
