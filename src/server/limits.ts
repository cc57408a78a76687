/**
 * How much of serve one client, or all of them, may hold at once: open connections overall and
 * per client address, and the size and number of a request's header fields. A production front
 * server bounds these; without them one client could hold every file descriptor, or have a header
 * silently dropped (Node keeps only the first headers of a request beyond its count limit).
 */
import {type IncomingMessage, type Server, type ServerOptions, type ServerResponse} from 'node:http'
import {type Socket} from 'node:net'

import {type ClientAddresses, normalizeAddress, peerAddress} from './client-address.js'
import {sendJson} from './responses.js'

export interface ClientLimits {
  /** Client connections open at once, overall; more are closed as they arrive. */
  maxConnections: number
  /**
   * Per client address: connections open from it (more are closed as they arrive). Behind a
   * trusted proxy, whose connections carry many clients, its forwarded clients' requests in
   * flight instead (more get 503).
   */
  maxConnectionsPerClient: number
  /** Bytes of a request's line and header fields together; more: 431. */
  maxHeaderSize: number
  /** Header fields in a request; more: 431. */
  maxHeaders: number
}

/**
 * Generous for MLflow: the web UI opens about 6 connections per tab and a training job's client
 * a few, so even an office behind one NAT address stays far below 256. Node's own 16 KiB for the
 * header bytes; 100 fields as Apache's LimitRequestFields (a browser sends about 20).
 */
export const DEFAULT_CLIENT_LIMITS: ClientLimits = {maxConnections: 4096, maxConnectionsPerClient: 256, maxHeaderSize: 16_384, maxHeaders: 100}

/** The node:http(s) options for the limits Node enforces while parsing: the header bytes. */
export function serverLimitOptions(limits: ClientLimits): ServerOptions {
  return {maxHeaderSize: limits.maxHeaderSize}
}

/** What Node answers a client error it does not let serve answer as a request (its own default). */
const NODE_CLIENT_ERROR_ANSWERS: Record<string, string> = {
  ERR_HTTP_REQUEST_TIMEOUT: 'HTTP/1.1 408 Request Timeout\r\nConnection: close\r\n\r\n',
  HPE_CHUNK_EXTENSIONS_OVERFLOW: 'HTTP/1.1 413 Payload Too Large\r\nConnection: close\r\n\r\n',
}
const NODE_BAD_REQUEST = 'HTTP/1.1 400 Bad Request\r\nConnection: close\r\n\r\n'

/** MLflow's JSON error as the raw bytes of a last answer on a connection no request object owns. */
export function rawErrorAnswer(status: string, message: string, headers = ''): string {
  const body = JSON.stringify({error_code: 'BAD_REQUEST', message})
  return `HTTP/1.1 ${status}\r\n${headers}Connection: close\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`
}

/**
 * A CONNECT asks for a tunnel, which serve never opens. Node hands it to no request handler and,
 * with no listener, drops the connection unanswered: a client deserves a refusal it can read.
 */
export function refuseTunnels(server: Server): void {
  server.on('connect', (_request: IncomingMessage, socket: Socket) => {
    socket.on('error', () => {})
    if (!socket.writable) {
      socket.destroy()
      return
    }

    // The socket is serve's alone now (Node's HTTP handling let go of it): what the client sends
    // after the request is read and dropped, or a client that sends more than the kernel buffers
    // would keep it half-closed for ever (and serve's stop waiting on it); one that goes quiet
    // without closing is cut after TUNNEL_LINGER_MS.
    socket.resume()
    socket.setTimeout(TUNNEL_LINGER_MS, () => socket.destroy())
    socket.end(rawErrorAnswer('405 Method Not Allowed', 'mlflowctl serve does not open tunnels (CONNECT).'))
  })
}

/** How long a refused CONNECT's connection may stay idle before serve cuts it. */
const TUNNEL_LINGER_MS = 5000

/** At most one log line a minute per limit and address: a flood of refusals must not flood the log. */
const LOG_INTERVAL_MS = 60_000

/** Enforces ClientLimits on a server, answering and logging what it refuses. */
export class ClientLimiter {
  /** Open connections per peer address (trusted proxies are not counted). */
  private readonly connections = new Map<string, number>()
  /** Requests in flight per client address behind a trusted proxy. */
  private readonly forwarded = new Map<string, number>()
  /** Per limit and address: when the last line was logged, and refusals since. */
  private readonly logged = new Map<string, {at: number; refused: number}>()

  constructor(
    private readonly limits: ClientLimits,
    private readonly clients: ClientAddresses,
    private readonly log: (message: string) => void,
  ) {}

  /** Counts and bounds connections on a server, and answers headers too large with 431. */
  attach(server: Server): void {
    server.maxConnections = this.limits.maxConnections
    // One field more than allowed is kept, so that admit() sees there were too many.
    server.maxHeadersCount = this.limits.maxHeaders + 1
    // Node closes a connection over maxConnections before any JavaScript sees it.
    server.on('drop', (data) => {
      const address = data?.remoteAddress ? normalizeAddress(data.remoteAddress) : 'unknown'
      this.refused(
        'connections',
        `${this.limits.maxConnections} client connections are open, serve's limit (--max-connections): closing new ones as they arrive (latest from ${address})`,
      )
    })
    // The raw TCP connection, also over HTTPS (before its handshake).
    server.on('connection', (socket: Socket) => this.onConnection(socket))
    server.on('clientError', (error: NodeJS.ErrnoException, socket: Socket) => this.onClientError(error, socket))
  }

  /**
   * Whether a request may go on; when not, it has been answered. Too many header fields: 431 and
   * the connection closed. A client behind a trusted proxy with too many requests in flight: 503,
   * which MLflow's clients retry.
   */
  admit(request: IncomingMessage, response: ServerResponse): boolean {
    const peer = peerAddress(request.socket)
    const fields = request.rawHeaders.length / 2
    if (fields > this.limits.maxHeaders) {
      this.refused('header-count', `a request from ${peer} with more than ${this.limits.maxHeaders} header fields (--max-headers): 431`)
      const message = `The request has more than ${this.limits.maxHeaders} header fields. It was not passed on.`
      sendJson(response, 431, {error_code: 'BAD_REQUEST', message}, {connection: 'close'})
      return false
    }

    if (!this.clients.isTrusted(peer)) return true
    const {address} = this.clients.resolve(request)
    const limit = this.limits.maxConnectionsPerClient
    const count = this.forwarded.get(address) ?? 0
    if (count >= limit) {
      this.refused(
        `forwarded ${address}`,
        `${address} (through ${peer}) has ${limit} requests in flight, serve's limit per client (--max-connections-per-client): 503 to more`,
      )
      const message = `Too many requests at once from ${address}; try again shortly.`
      sendJson(response, 503, {error_code: 'TEMPORARILY_UNAVAILABLE', message}, {'retry-after': '1'})
      return false
    }

    this.forwarded.set(address, count + 1)
    response.once('close', () => decrement(this.forwarded, address))
    return true
  }

  private onConnection(socket: Socket): void {
    const peer = peerAddress(socket)
    // A trusted proxy carries many clients: they are counted per request (admit), not here.
    if (!peer || this.clients.isTrusted(peer)) return
    const count = this.connections.get(peer) ?? 0
    const limit = this.limits.maxConnectionsPerClient
    if (count >= limit) {
      this.refused(
        `connections ${peer}`,
        `${peer} has ${limit} connections open, serve's limit per client (--max-connections-per-client): closing its new ones`,
      )
      socket.destroy()
      return
    }

    this.connections.set(peer, count + 1)
    socket.once('close', () => decrement(this.connections, peer))
  }

  /**
   * Header bytes over the limit: a 431 in MLflow's JSON shape, logged. Every other client error
   * as Node answers it by default (a listener replaces Node's own answer for all of them).
   */
  private onClientError(error: NodeJS.ErrnoException, socket: Socket): void {
    const answering = socket.writable && !(socket as {_httpMessage?: ServerResponse})._httpMessage?.headersSent
    if (error.code === 'HPE_HEADER_OVERFLOW') {
      const limit = this.limits.maxHeaderSize
      this.refused('header-size', `a request from ${peerAddress(socket)} with more than ${limit} bytes of headers (--max-header-size): 431`)
      if (answering)
        socket.write(rawErrorAnswer('431 Request Header Fields Too Large', `The request's header fields exceed ${limit} bytes. It was not passed on.`))
    } else if (answering) socket.write(NODE_CLIENT_ERROR_ANSWERS[error.code ?? ''] ?? NODE_BAD_REQUEST)
    socket.destroy(error)
  }

  /** Logs a refusal: the first at once, then at most one line a minute per key, with the count. */
  private refused(key: string, line: string): void {
    const now = Date.now()
    const last = this.logged.get(key)
    if (last && now - last.at < LOG_INTERVAL_MS) {
      last.refused += 1
      return
    }

    const since = last && last.refused > 0 ? ` (${last.refused} more refused since the last such line)` : ''
    this.log(`warning: ${line}${since}`)
    if (this.logged.size > 10_000) this.forget(now)
    this.logged.set(key, {at: now, refused: 0})
  }

  /** Drops the entries whose interval has passed, so that many addresses cannot grow the map. */
  private forget(now: number): void {
    for (const [key, entry] of this.logged) if (now - entry.at >= LOG_INTERVAL_MS) this.logged.delete(key)
  }
}

function decrement(counts: Map<string, number>, key: string): void {
  const count = (counts.get(key) ?? 1) - 1
  if (count <= 0) counts.delete(key)
  else counts.set(key, count)
}
