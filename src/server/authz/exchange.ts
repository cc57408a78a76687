/**
 * One request to MLflow as the gate handles it (gate.ts), and what every stage after the decision
 * shares: the buffered exchange with the upstream, and relaying its answer.
 */
import {type IncomingMessage, type ServerResponse} from 'node:http'

import {jsonObjectOrUndefined} from '../../core/json.js'
import {type AuditOrigin} from '../audit.js'
import {isHopByHop, type Upstream, type UpstreamResponse} from '../proxy.js'
import {type UserRecord} from '../store/store.js'
import {type Access} from './access.js'
import {type RequestParams} from './request-params.js'
import {type RouteMatch} from './route-table.js'

export type Json = Record<string, unknown>

export interface Exchange {
  access: Access
  /** The request body as read (JSON routes), to forward unchanged. */
  body?: Buffer
  /** That body parsed, as MLflow's handler will parse it. */
  json: Json
  match: RouteMatch
  /** The request as the audit log names it. */
  origin?: AuditOrigin
  params: RequestParams
  request: IncomingMessage
  response: ServerResponse
  /** The MCP server serve created for the caller before forwarding (a version create's missing server). */
  createdMcpServer?: string
  /** Path and query as the client sent them. */
  target: string
  upstream: Upstream
  user: UserRecord
}

/**
 * A HEAD is decided as the GET Flask dispatches it as, so it is sent as that GET (Node drops the
 * body of an answer to HEAD): MLflow would read a HEAD's parameters from its body instead.
 */
export function upstreamMethod(request: IncomingMessage): string {
  return request.method === 'HEAD' ? 'GET' : (request.method ?? 'GET')
}

/** The exchange with the upstream, buffered: for answers serve reads or changes. */
export function send(exchange: Exchange, body = exchange.body, target = exchange.target): Promise<UpstreamResponse> {
  const contentType = exchange.request.headers['content-type']
  const headers: Record<string, string> = contentType ? {'Content-Type': contentType} : {}
  return exchange.upstream.request(upstreamMethod(exchange.request), target, {body, headers, identity: exchange.user.username})
}

/** An upstream answer's JSON object, or undefined when it is not one. */
export function parseAnswer(answer: UpstreamResponse): Json | undefined {
  return jsonObjectOrUndefined(answer.body.toString('utf8'))
}

/** An upstream answer serve buffered, passed on as it came. */
export function relay(response: ServerResponse, answer: UpstreamResponse): void {
  for (const [name, value] of Object.entries(answer.headers)) {
    if (value !== undefined && !isHopByHop(name) && name !== 'content-length') response.setHeader(name, value)
  }

  response.writeHead(answer.status, {'content-length': answer.body.length})
  response.end(answer.body)
}
