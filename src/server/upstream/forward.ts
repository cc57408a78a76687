/**
 * A forward: the client's request streamed to the upstream and the answer streamed back, in
 * passes: check → framing and path → request headers → send (again, once, on a stale pooled
 * connection) → answer head → answer body. Failures before the answer began are MLflow JSON
 * (400, 502, 503, 504); after, the client's connection is cut so the answer looks truncated.
 */
import {type ClientRequest, type IncomingMessage, type OutgoingHttpHeaders, type ServerResponse} from 'node:http'

import {sendJson} from '../responses.js'
import {type MlflowErrorBody, withCode} from './errors.js'
import {type Body, copyResponseHead, requestHeaders} from './headers.js'
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
  if (length !== undefined) return Number(length) > READ_AHEAD_BYTES ? {framing: {'Content-Length': length}, kind: 'stream'} : undefined
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
  // Explicit chunked framing: for DELETE/OPTIONS Node would otherwise send the body unframed, for
  // the upstream to read as a next request (httpxy GHSA-ggv3-7p47-pfv8). Connection: close as well,
  // so that nothing after the body can ever be read on that connection.
  return {framing: {Connection: 'close', 'Transfer-Encoding': 'chunked'}, head: read.chunks, kind: 'stream'}
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

/** One attempt to pass the request on: the upstream request, its errors, the answer relayed. */
class Attempt {
  private answered = false
  private upstreamRes: IncomingMessage | undefined
  private readonly upstreamReq: ClientRequest
  private answerTimer: NodeJS.Timeout | undefined

  constructor(
    private readonly pool: UpstreamPool,
    private readonly exchange: {body: Body; headers: OutgoingHttpHeaders; method: string; path: string; req: IncomingMessage; res: ServerResponse},
    private readonly mayRetry: boolean,
  ) {
    this.upstreamReq = pool.open(exchange.method, exchange.path, exchange.headers)
  }

  start(): void {
    const {body, req, res} = this.exchange
    const {upstreamReq} = this
    // Counted from the end of the request body, so a slow upload is never the upstream's fault.
    upstreamReq.once('finish', () => {
      if (this.answered) return
      this.answerTimer = setTimeout(
        () => upstreamReq.destroy(withCode(`no answer within ${this.pool.responseTimeoutMs} ms`, 'ETIMEDOUT')),
        this.pool.responseTimeoutMs,
      )
    })
    upstreamReq.once('close', () => clearTimeout(this.answerTimer))
    // The client went away: abort the upstream exchange too, so no socket is left behind.
    res.once('close', this.abandon)
    req.once('close', this.clientAborted)
    req.on('error', () => {}) // ECONNRESET 'aborted'; 'close' follows
    upstreamReq.on('error', (error: Error) => this.failed(error))
    upstreamReq.on('response', (answer: IncomingMessage) => this.relay(answer))
    if (body.kind === 'stream') {
      for (const chunk of body.head ?? []) upstreamReq.write(chunk)
      req.pipe(upstreamReq)
    } else upstreamReq.end(body.kind === 'buffer' ? body.data : undefined)
  }

  private readonly abandon = () => {
    if (!this.exchange.res.writableFinished) this.upstreamReq.destroy()
  }

  private readonly clientAborted = () => {
    if (!this.exchange.req.complete) this.upstreamReq.destroy()
  }

  private report(error: Error) {
    return this.pool.report(error, this.exchange.method, this.exchange.path)
  }

  private failed(error: Error): void {
    const {body, req, res} = this.exchange
    if (body.kind === 'stream') req.unpipe(this.upstreamReq)
    if (res.destroyed && !res.writableFinished) return // our own abort after the client left
    if (this.answered) {
      // An early answer (e.g. 413) already relayed in full: the unsent rest of the body no longer matters.
      if (this.upstreamRes?.complete) return
      this.report(error)
      res.destroy()
      return
    }

    const replayable = body.kind !== 'stream' && IDEMPOTENT.has(this.exchange.method)
    if (this.mayRetry && replayable && isStaleConnection(this.upstreamReq, error)) {
      res.off('close', this.abandon)
      req.off('close', this.clientAborted)
      new Attempt(this.pool, this.exchange, false).start()
      return
    }

    const failure = this.report(error)
    sendFailure(req, res, failure.status, failure.body)
  }

  private relay(answer: IncomingMessage): void {
    const {body, req, res} = this.exchange
    this.answered = true
    clearTimeout(this.answerTimer)
    this.upstreamRes = answer
    if (res.destroyed) {
      answer.destroy()
      return
    }

    try {
      copyResponseHead(answer, res)
    } catch (error) {
      // e.g. a status message Node will not write back
      answer.destroy()
      const failure = this.report(error as Error)
      sendFailure(req, res, failure.status, failure.body)
      return
    }

    if (!req.complete && body.kind === 'stream') res.setHeader('Connection', 'close')
    answer.on('error', () => {}) // 'close' below decides
    answer.once('close', () => {
      // A truncated answer must look truncated to the client, never like a success.
      if (!answer.complete && !res.destroyed) {
        this.report(withCode('the upstream connection closed in the middle of the answer', 'ECONNRESET'))
        res.destroy()
      }
    })
    answer.pipe(res)
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

function send(
  pool: UpstreamPool,
  exchange: {body: Body; method: string; path: string; req: IncomingMessage; res: ServerResponse},
  identity: string | undefined,
): void {
  const {req, res} = exchange
  if (pool.closed) {
    sendFailure(req, res, 503, pool.shuttingDown().body)
    return
  }

  const headers = requestHeaders(req, pool.clientOf(req), pool.host, exchange.body, identity)
  let attempt: Attempt
  try {
    attempt = new Attempt(pool, {...exchange, headers}, true)
  } catch (error) {
    // Node refuses a path or header it cannot send (e.g. a caller's path with spaces).
    sendFailure(req, res, 400, {error_code: 'BAD_REQUEST', message: `Bad request: ${(error as Error).message}`})
    return
  }

  attempt.start()
}
