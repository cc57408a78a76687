/**
 * What serve allows a client connection, like a production front server: how long it may take to
 * send its headers, to send the next byte of its body, to read the next byte of an answer, and to
 * sit idle between requests. A client that goes quiet is closed; a slow but steady one (a large
 * upload on a slow link) is never cut, since no limit is on the total time.
 */
import {type IncomingMessage, type Server, type ServerOptions, type ServerResponse} from 'node:http'
import {type Socket} from 'node:net'

import {pathOf} from './request-path.js'

export interface ClientTimeouts {
  /** From the connection (after the TLS handshake) to the end of a request's headers; also bounds the TLS handshake. */
  headerMs: number
  /** Between two bytes of a request body, and between two bytes of an answer the client reads. */
  idleMs: number
  /** An idle keep-alive connection between requests. */
  keepAliveMs: number
}

/**
 * nginx's defaults for the client side (client_header_timeout and client_body_timeout 60 s,
 * keepalive_timeout 75 s): 75 s outlasts the 60 s idle timeout of common load balancers, so the
 * balancer, not serve, closes a pooled connection and never sends a request on one serve has just
 * closed.
 */
export const DEFAULT_CLIENT_TIMEOUTS: ClientTimeouts = {headerMs: 60_000, idleMs: 60_000, keepAliveMs: 75_000}

/** The node:http(s) options for the timeouts Node enforces itself: headers and keep-alive. */
export function serverTimeoutOptions(timeouts: ClientTimeouts): ServerOptions {
  return {
    // Node checks header deadlines on this interval: a quarter of the timeout keeps it close.
    connectionsCheckingInterval: Math.max(100, Math.min(30_000, Math.floor(timeouts.headerMs / 4))),
    headersTimeout: timeouts.headerMs,
    // A slow handshake is a slow header: Node's own default would be 120 s.
    ...({handshakeTimeout: timeouts.headerMs} as ServerOptions),
    keepAliveTimeout: timeouts.keepAliveMs,
    // No limit on a request's total time: a large upload on a slow, steady link must finish.
    requestTimeout: 0,
  }
}

interface Exchange {
  request: IncomingMessage
  response: ServerResponse
}

/**
 * Watches each connection for a client that stopped sending its body or reading its answer.
 * Node's socket timeout (server.timeout) measures silence on the connection; when it fires,
 * whose silence it is decides: a body that is not arriving is the client's (408 and closed), an
 * answer it does not read is the client's (closed), an answer the upstream has not given yet is
 * the upstream's (its own timeout decides), and a body serve is not reading yet (it is buffered,
 * waiting for the upstream or a password check) is serve's (the clock starts again).
 */
export class ClientWatch {
  private readonly exchanges = new WeakMap<Socket, Exchange>()

  constructor(
    private readonly timeouts: ClientTimeouts,
    private readonly log: (message: string) => void,
  ) {}

  /** Arms the body and answer timeout on a server. */
  attach(server: Server): void {
    server.setTimeout(this.timeouts.idleMs)
    // With a listener, Node leaves every timeout to it, the keep-alive one included.
    server.on('timeout', (socket: Socket) => this.onTimeout(socket))
  }

  /** The request now on a connection (Node serves one at a time per connection). */
  track(request: IncomingMessage, response: ServerResponse): void {
    const {socket} = request
    this.exchanges.set(socket, {request, response})
    response.once('close', () => {
      if (this.exchanges.get(socket)?.request === request) this.exchanges.delete(socket)
    })
  }

  private onTimeout(socket: Socket): void {
    const exchange = this.exchanges.get(socket)
    // Between requests: the keep-alive timeout ran out.
    if (!exchange) {
      socket.destroy()
      return
    }

    const {request, response} = exchange
    const seconds = this.timeouts.idleMs / 1000
    const where = `${request.method} ${pathOf(request)}`
    if (!request.complete) {
      // Bytes wait in the request's buffer: serve is the one not reading.
      if (request.readableLength > 0) return
      this.log(`error: ${where}: no byte of the request body for ${seconds} s: closed (408)`)
      requestTimeout(socket, response, seconds)
      return
    }

    if (response.writableNeedDrain) {
      this.log(`error: ${where}: the client read nothing of the answer for ${seconds} s: closed`)
      socket.destroy()
    }
  }
}

/**
 * A 408 when no answer began, then the connection closed. Written on the socket, as Node writes
 * its own header timeout, so that nothing still holding the response (a forward) can write after
 * it; destroying the socket ends the request everywhere, and a forward in flight aborts its
 * upstream request, so the upstream never takes a partial body for a whole one.
 */
function requestTimeout(socket: Socket, response: ServerResponse, seconds: number): void {
  if (response.headersSent || socket.destroyed) {
    socket.destroy()
    return
  }

  const body = JSON.stringify({
    error_code: 'BAD_REQUEST',
    message: `The request body stopped arriving: no byte for ${seconds} s. The request was not passed on.`,
  })
  const head = `HTTP/1.1 408 Request Timeout\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n`
  // Destroying ends the request for everyone reading it, once the answer is with the kernel.
  socket.end(head + body, () => socket.destroy())
  setTimeout(() => socket.destroy(), 1000).unref()
}
