/**
 * A forward: the client's request streamed to the upstream and the answer streamed back, in
 * passes: check → framing and path → request headers → send (again, once, on a stale pooled
 * connection) → answer head → answer body. Failures before the answer began are MLflow JSON
 * (400, 502, 503, 504); after, the client's connection is cut so the answer looks truncated.
 */
import {type IncomingMessage, type ServerResponse} from 'node:http'
import {PassThrough} from 'node:stream'

import {type Dispatcher} from 'undici'

import {sendJson} from '../responses.js'
import {codeOf, type MlflowErrorBody} from './errors.js'
import {type Body, requestHeaders, responseHead} from './headers.js'
import {IDEMPOTENT, isStaleConnection, type UpstreamPool} from './pool.js'

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

/** Why a request must not be forwarded: ambiguous framing invites request smuggling. Node's strict
 * parser refuses most of these itself; this also holds with insecureHTTPParser. */
export function framingProblem(req: IncomingMessage): string | undefined {
  const length = req.headers['content-length']
  const encoding = req.headers['transfer-encoding']
  // Neither header in any spelling (Node sets both fields from every line of them): no body, nothing to check.
  if (length === undefined && encoding === undefined) return undefined
  let lengths = 0
  let encodings = 0
  for (let i = 0; i < req.rawHeaders.length; i += 2) {
    const name = req.rawHeaders[i]!.toLowerCase()
    if (name === 'content-length') lengths++
    else if (name === 'transfer-encoding') encodings++
  }

  if (lengths > 0 && encodings > 0) return 'both Content-Length and Transfer-Encoding'
  if (lengths > 1) return 'more than one Content-Length'
  if (length !== undefined && !/^\d+$/.test(length)) return 'invalid Content-Length'
  // The body is re-chunked on the way out, so no coding but plain chunked can be passed on.
  if (encodings > 1 || (encoding !== undefined && encoding.trim().toLowerCase() !== 'chunked')) return 'unsupported Transfer-Encoding'
  return undefined
}

/**
 * Bodies up to this size are read whole before the upstream hears of the request: a client that
 * stalls or stops in the middle of one never holds an upstream worker, and the upstream never sees
 * a part of it. Larger ones (uploads) are streamed as they come; one that stops is cut upstream too.
 */
export const READ_AHEAD_BYTES = 1024 * 1024

/** The body when nothing needs reading for it (given, empty, absent, or too large to read ahead); else undefined. */
function knownBody(req: IncomingMessage, body: Buffer | undefined): Body | undefined {
  if (body !== undefined) return {data: body, kind: 'buffer'}
  const length = req.headers['content-length']
  if (length === '0') return {data: Buffer.alloc(0), kind: 'buffer'}
  if (length !== undefined) return Number(length) > READ_AHEAD_BYTES ? {kind: 'stream', length} : undefined
  return req.headers['transfer-encoding'] === undefined ? {kind: 'none'} : undefined
}

/** The request's body, read whole when it is small; undefined when the client left before it ended. */
async function requestBody(req: IncomingMessage): Promise<Body | undefined> {
  if (req.headers['content-length'] !== undefined) {
    const read = await readAhead(req)
    return read && {data: Buffer.concat(read.chunks), kind: 'buffer'}
  }

  const read = await readAhead(req)
  if (read === undefined) return undefined
  if (read.ended) return {data: Buffer.concat(read.chunks), kind: 'buffer'}
  // Sent chunked (also for a DELETE or OPTIONS, where a body left unframed would be read as a next
  // request: httpxy GHSA-ggv3-7p47-pfv8), on a connection closed after it, so that nothing after
  // the body can ever be read on that connection.
  return {head: read.chunks, kind: 'stream'}
}

/**
 * Reads the body until it ends or passes READ_AHEAD_BYTES (then the stream is left paused, the
 * rest unread); undefined when the client leaves first. A client that stops sending is the
 * client watch's to close (connections.ts), which ends this read too.
 */
function readAhead(req: IncomingMessage): Promise<undefined | {chunks: Buffer[]; ended: boolean}> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = []
    if (req.readableEnded) {
      resolve({chunks, ended: true})
      return
    }

    let size = 0
    const done = (result: undefined | {chunks: Buffer[]; ended: boolean}) => {
      req.off('data', onData)
      req.off('end', onEnd)
      req.off('close', onClose)
      resolve(result)
    }

    const onData = (chunk: Buffer) => {
      chunks.push(chunk)
      size += chunk.length
      if (size > READ_AHEAD_BYTES) {
        req.pause()
        done({chunks, ended: false})
      }
    }

    const onEnd = () => done({chunks, ended: true})
    const onClose = () => done(undefined)
    req.on('error', () => {}) // ECONNRESET 'aborted'; 'close' follows
    req.on('data', onData)
    req.once('end', onEnd)
    req.once('close', onClose)
  })
}

/** An error answer, unless the answer began: then only a cut connection can say it failed. */
function sendFailure(req: IncomingMessage, res: ServerResponse, status: number, body: MlflowErrorBody): void {
  if (res.headersSent) {
    res.destroy()
    return
  }

  // An unread request body would otherwise be drained (maybe 500 MB) to keep the connection.
  sendJson(res, status, body, req.complete ? {} : {connection: 'close'})
}

interface Outgoing {
  body: Body
  headers: string[]
  method: string
  path: string
  req: IncomingMessage
  res: ServerResponse
}

/**
 * One attempt to pass the request on, as undici's handler: the upstream exchange, its errors, the
 * answer relayed with backpressure both ways.
 */
class Attempt implements Dispatcher.DispatchHandlers {
  private abortUpstream: ((error?: Error) => void) | undefined
  private answered = false
  /** The answer failed here (a head Node will not write): nothing more is relayed or reported. */
  private gaveUp = false
  private upload: PassThrough | undefined

  constructor(
    private readonly pool: UpstreamPool,
    private readonly exchange: Outgoing,
    private readonly mayRetry: boolean,
  ) {}

  start(): void {
    const {body, headers, method, path, req, res} = this.exchange
    // The client went away: abort the upstream exchange too, so no socket is left behind.
    res.once('close', this.abandon)
    let data: Buffer | null | PassThrough = null
    if (body.kind === 'stream') {
      req.once('close', this.clientAborted)
      req.on('error', () => {}) // ECONNRESET 'aborted'; 'close' follows
      // undici destroys the body stream it is given when the exchange ends: a stream of its own,
      // so that the client's request (and its connection, for the answer) outlives an early answer.
      this.upload = new PassThrough()
      for (const chunk of body.head ?? []) this.upload.write(chunk)
      req.pipe(this.upload)
      data = this.upload
    } else if (body.kind === 'buffer' && body.data.length > 0) data = body.data
    // A chunked upload closes its connection after it (see requestBody).
    const reset = body.kind === 'stream' && body.length === undefined
    this.pool.dispatch({body: data, headers, method: method as Dispatcher.HttpMethod, path, reset}, this)
  }

  onConnect(abort: (error?: Error) => void): void {
    this.abortUpstream = abort
    // The client left while the request waited for a connection.
    if (this.exchange.res.destroyed) abort()
  }

  onHeaders(statusCode: number, rawHeaders: Buffer[], resume: () => void, statusText: string): boolean {
    if (statusCode < 200) return true // 100 Continue and other interim answers are the upstream's own
    const {body, req, res} = this.exchange
    this.answered = true
    const headers = responseHead(rawHeaders)
    if (!req.complete && body.kind === 'stream') headers.push('Connection', 'close')
    try {
      res.writeHead(statusCode, statusText || undefined, headers)
    } catch (error) {
      // e.g. a status message Node will not write back
      this.gaveUp = true
      const failure = this.report(error as Error)
      sendFailure(req, res, failure.status, failure.body)
      queueMicrotask(() => this.abortUpstream?.())
      return false
    }

    this.resume = resume
    return true
  }

  onData(chunk: Buffer): boolean {
    if (this.gaveUp) return false
    const {res} = this.exchange
    if (res.write(chunk)) return true
    // The client reads slower than the upstream sends: undici stops reading until it caught up.
    res.once('drain', this.resume)
    return false
  }

  onComplete(): void {
    if (this.gaveUp) return
    this.exchange.res.end()
  }

  onError(error: Error): void {
    if (this.gaveUp) return
    const {body, method, req, res} = this.exchange
    if (this.upload) req.unpipe(this.upload)
    if (res.destroyed && !res.writableFinished) return // our own abort after the client left
    if (this.answered) {
      // A truncated answer must look truncated to the client, never like a success.
      this.report(this.pool.translate(error, true))
      res.destroy()
      return
    }

    const code = codeOf(error)
    if (code === 'UND_ERR_INVALID_ARG' || code === 'UND_ERR_NOT_SUPPORTED') {
      // undici refuses a path or header it cannot send (e.g. a caller's path with spaces).
      sendFailure(req, res, 400, {error_code: 'BAD_REQUEST', message: `Bad request: ${error.message}`})
      return
    }

    if (this.mayRetry && body.kind !== 'stream' && IDEMPOTENT.has(method) && isStaleConnection(error)) {
      res.off('close', this.abandon)
      new Attempt(this.pool, this.exchange, false).start()
      return
    }

    const failure = this.report(this.pool.translate(error, false))
    sendFailure(req, res, failure.status, failure.body)
  }

  private resume: () => void = () => {}

  private readonly abandon = () => {
    if (!this.exchange.res.writableFinished) this.abortUpstream?.()
  }

  private readonly clientAborted = () => {
    if (!this.exchange.req.complete) this.abortUpstream?.()
  }

  private report(error: Error) {
    return this.pool.report(error, this.exchange.method, this.exchange.path)
  }
}

/** Streams the request to the upstream and the answer back; resolves when the exchange is over, never rejects. */
export function forward(pool: UpstreamPool, req: IncomingMessage, res: ServerResponse, options: ForwardOptions = {}): Promise<void> {
  const method = options.method ?? req.method ?? 'GET'
  const requestedPath = options.path ?? req.url ?? ''
  return new Promise<void>((resolve) => {
    if (res.destroyed) {
      resolve()
      return
    }

    res.once('close', () => resolve())
    res.on('error', () => {}) // a client that vanished; 'close' follows
    if (pool.closed) {
      sendFailure(req, res, 503, pool.shuttingDown().body)
      return
    }

    const problem = options.body === undefined ? framingProblem(req) : undefined
    const path = pool.path(requestedPath)
    if (problem || path === undefined) {
      sendFailure(req, res, 400, {
        error_code: 'BAD_REQUEST',
        message: problem ? `Bad request: ${problem}` : `Bad request: the request target must be a path, not ${JSON.stringify(requestedPath.slice(0, 200))}`,
      })
      return
    }

    // Most requests (GETs, bodies serve already read) go out in this same tick: no read, no extra turn.
    const known = knownBody(req, options.body)
    if (known) {
      send(pool, {body: known, method, path, req, res}, options.identity)
      return
    }

    requestBody(req).then((body) => {
      // The client left before its body ended: nothing reaches the upstream.
      if (body === undefined || res.destroyed) return
      send(pool, {body, method, path, req, res}, options.identity)
    }, resolve)
  })
}

function send(pool: UpstreamPool, exchange: Omit<Outgoing, 'headers'>, identity: string | undefined): void {
  const {req, res} = exchange
  if (pool.closed) {
    sendFailure(req, res, 503, pool.shuttingDown().body)
    return
  }

  const {body, method, path} = exchange
  const headers = requestHeaders(req, pool.clientOf(req), body, identity)
  new Attempt(pool, {body, headers, method, path, req, res}, true).start()
}
