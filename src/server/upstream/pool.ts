/**
 * The connection to the upstream MLflow server that forwards and serve's own requests share: an
 * undici keep-alive pool (one request per connection at a time), connections that must open in
 * time, and the one place a failure becomes the UpstreamError a client is answered with (and, for
 * forwards, a line in the log).
 */
import {type IncomingMessage} from 'node:http'

import {buildConnector, type Dispatcher, Pool} from 'undici'

import {type Client, directClient} from '../client-address.js'
import {withoutQuery} from '../request-path.js'
import {codeOf, type UpstreamError, upstreamFailure, withCode} from './errors.js'

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
   * Told how long each exchange took from being sent to its answer's head (`answered`), or to its
   * failure before one (for metrics).
   */
  onLatency?: (seconds: number, answered: boolean) => void
  /**
   * How long the upstream may take to answer: for a forward, from the end of the request body to
   * the answer's head, and then between two parts of the answer (a long download that keeps coming
   * is not cut); for request(), the whole exchange unless the call gives its own. Default
   * 120 000 ms, MLflow's own client timeout.
   */
  responseTimeoutMs?: number
  tls?: UpstreamTlsOptions
  /** The plain MLflow server, e.g. http://127.0.0.1:5000; may have a path prefix (http://host/mlflow). */
  upstream: URL
}

const DEFAULT_CONNECT_TIMEOUT_MS = 10_000
const DEFAULT_IDLE_SOCKET_TIMEOUT_MS = 1500
const DEFAULT_MAX_SOCKETS = 256
const DEFAULT_RESPONSE_TIMEOUT_MS = 120_000

/** Methods whose request may be sent again when a pooled connection turns out to be closed. */
export const IDEMPOTENT = new Set(['DELETE', 'GET', 'HEAD', 'OPTIONS', 'PUT', 'TRACE'])

/** On a socket error: whether that connection had carried an answer before. */
const REUSED = Symbol('reused')

/**
 * A connection that had answered before (it sat in the pool) closing or resetting before any
 * answer: the upstream closed it while idle, and the request never reached it.
 */
export function isStaleConnection(error: Error): boolean {
  const code = codeOf(error)
  return (code === 'UND_ERR_SOCKET' || code === 'ECONNRESET' || code === 'EPIPE') && (error as {[REUSED]?: boolean})[REUSED] === true
}

/** An answer the upstream began and did not finish. */
export function brokenOff(): Error {
  return withCode('the upstream connection closed in the middle of the answer', 'ECONNRESET')
}

/**
 * The handler, reporting the time to the answer's head (or to a failure before it) once. A plain
 * class rather than a Proxy: undici reads a handler's callbacks several times per exchange, and a
 * trap that binds a function on each read costs on every request. The handlers it wraps (a
 * forward's attempt, serve's own calls) take no callbacks beyond these five.
 */
class Timed implements Dispatcher.DispatchHandlers {
  private readonly started = process.hrtime.bigint()
  private reported = false

  constructor(
    private readonly handler: Dispatcher.DispatchHandlers,
    private readonly onLatency: (seconds: number, answered: boolean) => void,
  ) {}

  onConnect(abort: (error?: Error) => void): void {
    this.handler.onConnect!(abort)
  }

  onError(error: Error): void {
    this.report(false)
    this.handler.onError!(error)
  }

  onHeaders(statusCode: number, headers: Buffer[], resume: () => void, statusText: string): boolean {
    // A 1xx head is not the answer.
    if (statusCode >= 200) this.report(true)
    return this.handler.onHeaders!(statusCode, headers, resume, statusText)
  }

  onData(chunk: Buffer): boolean {
    return this.handler.onData!(chunk)
  }

  onComplete(trailers: null | string[]): void {
    this.handler.onComplete!(trailers)
  }

  private report(answered: boolean): void {
    if (this.reported) return
    this.reported = true
    try {
      this.onLatency(Number(process.hrtime.bigint() - this.started) / 1e9, answered)
    } catch {
      // Metrics must not break forwarding.
    }
  }
}

export class UpstreamPool {
  closed = false
  readonly clientOf: (req: IncomingMessage) => Client
  readonly connectTimeoutMs: number
  readonly responseTimeoutMs: number
  /** The upstream as shown in messages: origin and path prefix, never credentials. */
  readonly url: string
  private readonly pool: Pool
  private readonly prefix: string

  constructor(private readonly options: UpstreamOptions) {
    const {upstream} = options
    if (upstream.protocol !== 'http:' && upstream.protocol !== 'https:')
      throw new TypeError(`The upstream must be an http or https URL, not ${upstream.protocol}`)
    if (upstream.username || upstream.password) throw new TypeError('The upstream URL must not contain credentials')
    if (upstream.search || upstream.hash) throw new TypeError('The upstream URL must not have a query or fragment')
    this.clientOf = options.client ?? directClient
    this.prefix = upstream.pathname.replace(/\/+$/, '')
    this.url = upstream.origin + this.prefix
    this.connectTimeoutMs = options.connectTimeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS
    this.responseTimeoutMs = options.responseTimeoutMs ?? DEFAULT_RESPONSE_TIMEOUT_MS
    const idle = options.idleSocketTimeoutMs ?? DEFAULT_IDLE_SOCKET_TIMEOUT_MS
    // TCP and TLS within the connect timeout (undici's connector also turns Nagle off).
    const connector = buildConnector({...options.tls, timeout: this.connectTimeoutMs})
    this.pool = new Pool(upstream.origin, {
      // A forward's timeout counts from the end of its body: undici's headers timer does not fire
      // while the body is still being sent (unless the upstream stops reading it).
      bodyTimeout: this.responseTimeoutMs,
      connect(connectOptions, callback) {
        connector(connectOptions, (error, socket) => {
          if (socket) {
            // What it read while opening (a TLS handshake): more later means an answer came on it.
            const readAtOpen = socket.bytesRead
            socket.on('error', (socketError: Error) => {
              Object.assign(socketError, {[REUSED]: socket.bytesRead > readAtOpen})
            })
          }

          // undici's types want the error as null when there is a socket
          if (error) callback(error, null)
          else callback(null, socket!)
        })
      },
      connections: options.maxSockets ?? DEFAULT_MAX_SOCKETS,
      headersTimeout: this.responseTimeoutMs,
      keepAliveMaxTimeout: idle,
      keepAliveTimeout: idle,
      // A keep-alive hint from the upstream shorter than ours is taken as it is.
      keepAliveTimeoutThreshold: 0,
      pipelining: 1,
    })
  }

  /**
   * The path to send: the upstream's prefix, then the request's path and query byte for byte.
   * Absolute-form and `*` are refused (undefined): the auth checks read the path, so the upstream
   * must route on exactly that path.
   */
  path(requested: string): string | undefined {
    return requested.charCodeAt(0) === 47 /* / */ ? this.prefix + requested : undefined
  }

  /** Starts an upstream exchange; whatever fails reaches the handler's onError. */
  dispatch(options: Dispatcher.DispatchOptions, handler: Dispatcher.DispatchHandlers): void {
    const {onLatency} = this.options
    this.pool.dispatch(options, onLatency ? new Timed(handler, onLatency) : handler)
  }

  /** undici's errors in serve's words, with the codes the failure mapping knows. */
  translate(error: Error, answered: boolean): Error {
    // Once the answer has begun, a reset too means it was broken off.
    if (answered && (codeOf(error) === 'ECONNRESET' || codeOf(error) === 'EPIPE')) return brokenOff()
    switch (codeOf(error)) {
      case 'UND_ERR_CONNECT_TIMEOUT': {
        return withCode(`no connection within ${this.connectTimeoutMs} ms`, 'ETIMEDOUT')
      }

      case 'UND_ERR_HEADERS_TIMEOUT': {
        return withCode(`no answer within ${this.responseTimeoutMs} ms`, 'ETIMEDOUT')
      }

      case 'UND_ERR_BODY_TIMEOUT': {
        return withCode(`the answer stopped for more than ${this.responseTimeoutMs} ms`, 'ETIMEDOUT')
      }

      case 'UND_ERR_SOCKET':
      case 'UND_ERR_RES_CONTENT_LENGTH_MISMATCH': {
        return answered ? brokenOff() : withCode('connection closed without an answer', 'ECONNRESET')
      }

      case 'UND_ERR_HEADERS_OVERFLOW': {
        return withCode('invalid HTTP answer (its headers are too large)', 'HPE_HEADER_OVERFLOW')
      }

      case 'UND_ERR_CLOSED':
      case 'UND_ERR_DESTROYED': {
        return withCode('the proxy is shutting down', 'ESHUTDOWN')
      }

      default: {
        return error
      }
    }
  }

  /** A failure as the client is told it. */
  failure(error: Error): UpstreamError {
    return upstreamFailure(error, this.url, this.options.upstream.hostname)
  }

  /** The failure of a forward, told to the logging hook too; never with its query (it may carry anything). */
  report(error: Error, method: string, path: string): UpstreamError {
    const failure = this.failure(error)
    try {
      this.options.onError?.(failure, {method, path: withoutQuery(path)})
    } catch {
      // A logging hook must not break forwarding.
    }

    return failure
  }

  /** The failure for a call made after close(). */
  shuttingDown(): UpstreamError {
    return this.failure(withCode('the proxy is shutting down', 'ESHUTDOWN'))
  }

  async close(): Promise<void> {
    this.closed = true
    await this.pool.destroy()
  }
}
