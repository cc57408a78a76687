/**
 * The connection to the upstream MLflow server that forwards and serve's own requests share: a
 * keep-alive pool, connections that must open in time, and the one place a failure becomes the
 * UpstreamError a client is answered with (and, for forwards, a line in the log).
 */
import {type ClientRequest, Agent as HttpAgent, request as httpRequest, type IncomingMessage, type OutgoingHttpHeaders} from 'node:http'
import {Agent as HttpsAgent, request as httpsRequest} from 'node:https'
import type {Socket} from 'node:net'

import {type Client, directClient} from '../client-address.js'
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
   * How long the upstream may take to answer: for a forward, from the end of the request body to
   * the answer's head (a long download is not cut); for request(), the whole exchange unless the
   * call gives its own. Default 120 000 ms, MLflow's own client timeout.
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

/** A pooled connection the upstream closed while it sat idle: the request never reached it. */
export function isStaleConnection(request: ClientRequest, error: Error): boolean {
  const code = codeOf(error)
  return request.reusedSocket && (code === 'ECONNRESET' || code === 'EPIPE')
}

export class UpstreamPool {
  closed = false
  readonly clientOf: (req: IncomingMessage) => Client
  readonly responseTimeoutMs: number
  /** The upstream as shown in messages: origin and path prefix, never credentials. */
  readonly url: string
  private readonly agent: HttpAgent
  private readonly connectTimeoutMs: number
  private readonly hostname: string
  private readonly prefix: string
  private readonly secure: boolean
  private readonly send: typeof httpRequest

  constructor(private readonly options: UpstreamOptions) {
    const {upstream} = options
    if (upstream.protocol !== 'http:' && upstream.protocol !== 'https:')
      throw new TypeError(`The upstream must be an http or https URL, not ${upstream.protocol}`)
    if (upstream.username || upstream.password) throw new TypeError('The upstream URL must not contain credentials')
    if (upstream.search || upstream.hash) throw new TypeError('The upstream URL must not have a query or fragment')
    this.secure = upstream.protocol === 'https:'
    this.clientOf = options.client ?? directClient
    this.hostname = upstream.hostname.replace(/^\[(.*)]$/, '$1') // [::1] → ::1 for node:http
    this.prefix = upstream.pathname.replace(/\/+$/, '')
    this.url = upstream.origin + this.prefix
    this.connectTimeoutMs = options.connectTimeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS
    this.responseTimeoutMs = options.responseTimeoutMs ?? DEFAULT_RESPONSE_TIMEOUT_MS
    const agentOptions = {
      keepAlive: true,
      maxSockets: options.maxSockets ?? DEFAULT_MAX_SOCKETS,
      scheduling: 'lifo' as const,
      // Node applies this to idle pooled sockets (destroyed on timeout); on a socket in use it only
      // emits 'timeout', which nothing here listens to, so long answers are not cut.
      timeout: options.idleSocketTimeoutMs ?? DEFAULT_IDLE_SOCKET_TIMEOUT_MS,
    }
    this.agent = this.secure ? new HttpsAgent({...agentOptions, ...options.tls}) : new HttpAgent(agentOptions)
    this.send = this.secure ? httpsRequest : httpRequest
  }

  /** The upstream's Host header value. */
  get host(): string {
    return this.options.upstream.host
  }

  /**
   * The path to send: the upstream's prefix, then the request's path and query byte for byte.
   * Absolute-form and `*` are refused (undefined): the auth checks read the path, so the upstream
   * must route on exactly that path.
   */
  path(requested: string): string | undefined {
    return requested.startsWith('/') ? this.prefix + requested : undefined
  }

  /** Opens an upstream request; a connection that does not open in time is destroyed with ETIMEDOUT. */
  open(method: string, path: string, headers: OutgoingHttpHeaders): ClientRequest {
    const request = this.send({agent: this.agent, headers, hostname: this.hostname, method, path, port: this.options.upstream.port || undefined})
    request.once('socket', (socket: Socket) => {
      if (!socket.connecting) return
      const timer = setTimeout(() => request.destroy(withCode(`no connection within ${this.connectTimeoutMs} ms`, 'ETIMEDOUT')), this.connectTimeoutMs)
      const done = () => clearTimeout(timer)
      socket.once(this.secure ? 'secureConnect' : 'connect', done)
      socket.once('close', done)
    })
    return request
  }

  /** A failure as the client is told it. */
  failure(error: Error): UpstreamError {
    return upstreamFailure(error, this.url, this.options.upstream.hostname)
  }

  /** The failure of a forward, told to the logging hook too; never with its query (it may carry anything). */
  report(error: Error, method: string, path: string): UpstreamError {
    const failure = this.failure(error)
    try {
      this.options.onError?.(failure, {method, path: path.split('?', 1)[0]})
    } catch {
      // A logging hook must not break forwarding.
    }

    return failure
  }

  /** The failure for a call made after close(). */
  shuttingDown(): UpstreamError {
    return this.failure(withCode('the proxy is shutting down', 'ESHUTDOWN'))
  }

  close(): void {
    this.closed = true
    this.agent.destroy()
  }
}
