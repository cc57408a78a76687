/**
 * Everything serve does with an authenticated request to MLflow (not one it answers itself): the
 * decide stage from the route table (access checks, special checks), then the answer stage
 * (filtered or rewritten for non-admins, search-filter.ts and answer-rewrite.ts) or the forward, and the after-effects stage
 * (after-effects.ts). The request that was decided is the one forwarded: a body read to decide is
 * sent as those same bytes, or as a narrowed copy of them.
 */
import {type IncomingMessage, type ServerResponse} from 'node:http'

import {type AuditOrigin, type AuditSink} from '../audit.js'
import {type ClientAddresses} from '../client-address.js'
import {type Upstream} from '../proxy.js'
import {readRequestBody} from '../request-body.js'
import {queryParams} from '../request-path.js'
import {ApiError, PermissionDenied, permissionDenied} from '../responses.js'
import {type Store, type UserRecord} from '../store/store.js'
import {Access} from './access.js'
import {recordAfter} from './after-effects.js'
import {sendRewritten} from './answer-rewrite.js'
import {type Exchange, relay, send, upstreamMethod} from './exchange.js'
import {removeCreatedServer} from './mcp.js'
import {RequestParams} from './request-params.js'
import {ResourceResolver} from './resolver.js'
import {bindReviewer, checkQueueName} from './review-queues.js'
import {type RouteMatch} from './route-table.js'
import {filterAnswer} from './search-filter.js'
import {checkSpecial} from './special-checks.js'

export interface GateOptions {
  /** Where the store changes after-effects make are recorded. */
  audit?: AuditSink
  /** Who the client is (trusted proxies honoured). */
  clients: ClientAddresses
  defaultPermission: string
  /** serve's log: permission changes MLflow made that the store could not record. */
  log: (message: string) => void
  store: Store
  upstream: Upstream
}

function hasBody(request: IncomingMessage): boolean {
  const length = request.headers['content-length']
  return request.headers['transfer-encoding'] !== undefined || (length !== undefined && length !== '0')
}

/**
 * What is refused before any field is read: a body MLflow would not read, an unknown or admin-only
 * route, a local clients' route from afar, workspaces.
 */
function refuseEarly(request: IncomingMessage, user: UserRecord, match: RouteMatch | undefined, clients: ClientAddresses): void {
  const method = request.method ?? 'GET'
  if ((method === 'GET' || method === 'HEAD') && hasBody(request)) {
    throw new ApiError('BAD_REQUEST', `A ${method} request must not have a body: MLflow reads its parameters from the query string.`)
  }

  if (!user.isAdmin && (!match || match.rule.access === 'admin'))
    throw permissionDenied({rule: match ? 'admin-only route' : 'a route serve does not know: admins only'})
  // Only serve knows the real client for sure: MLflow may see serve's own loopback address.
  if (!user.isAdmin && match?.rule.access === 'local-clients' && !clients.isLocal(request))
    throw permissionDenied({rule: 'local clients only (remote: admins)'})
  if (!user.isAdmin) refuseWorkspace(request)
}

/**
 * A workspace named by a caller who is not an admin (anonymous callers of the public routes too):
 * serve's grants know no workspaces, and a workspace-enabled upstream would apply them across; one
 * with workspaces off fails on the header with a 500.
 */
export function refuseWorkspace(request: IncomingMessage): void {
  if (request.headers['x-mlflow-workspace'] !== undefined)
    throw new ApiError('BAD_REQUEST', 'mlflowctl serve does not support MLflow workspaces (X-MLFLOW-WORKSPACE).')
}

export class Gate {
  private readonly resolver: ResourceResolver

  constructor(private readonly options: GateOptions) {
    this.resolver = new ResourceResolver(options.upstream)
  }

  /** `match` is undefined for a route the table does not know: admins only. */
  async handle(
    request: IncomingMessage,
    response: ServerResponse,
    user: UserRecord,
    match: RouteMatch | undefined,
    target: string,
    origin?: AuditOrigin,
  ): Promise<void> {
    const {upstream} = this.options
    refuseEarly(request, user, match, this.options.clients)
    if (!match || (user.isAdmin && !match.rule.after && !match.rule.handlerRule)) {
      await upstream.forward(request, response, {identity: user.username})
      return
    }

    const exchange = await this.read(request, response, user, match, target)
    exchange.origin = origin
    try {
      await this.decideAndAnswer(exchange)
    } catch (error) {
      // A refusal from a special check or a filter: the audit log gets the rows that refused, when a level did.
      if (error instanceof PermissionDenied && !error.denial)
        throw permissionDenied(exchange.access.lastDenial() ?? {rule: `serve's own checks of ${match.template} (resource not found, or a request it refuses)`})
      throw error
    }
  }

  private async decideAndAnswer(exchange: Exchange): Promise<void> {
    const {match, request, response, user} = exchange
    const {upstream} = this.options
    const {rule} = match
    if (!user.isAdmin) {
      if (Array.isArray(rule.access)) await exchange.access.enforce(rule.access, exchange.params)
      if (rule.special !== undefined) await checkSpecial(exchange)
      if (rule.filter) {
        await filterAnswer(exchange)
        return
      }
    }

    if (rule.handlerRule === 'review-queue-name') await checkQueueName(exchange, this.options.store)
    if (rule.handlerRule === 'reviewer') bindReviewer(exchange)

    const rewrite = user.isAdmin ? undefined : rule.rewrite
    if (rule.after || rewrite) {
      // A version create may have created its MCP server first: a failure takes that back.
      let answer = await send(exchange).catch(async (error: unknown) => {
        await removeCreatedServer(exchange, this.options.log)
        throw error
      })
      if (rule.after && answer.status < 400) answer = await recordAfter(rule.after, exchange, answer, this.options.store, this.options.log, this.options.audit)
      else await removeCreatedServer(exchange, this.options.log)
      if (rewrite) await sendRewritten(exchange, answer, rewrite)
      else relay(response, answer)
      return
    }

    await upstream.forward(request, response, {body: exchange.body, identity: user.username, method: upstreamMethod(request)})
  }

  /** The fields of the request, read as MLflow's handler reads them, and the caller's access. */
  private async read(request: IncomingMessage, response: ServerResponse, user: UserRecord, match: RouteMatch, target: string): Promise<Exchange> {
    const method = request.method ?? 'GET'
    // MLflow reads the fields of a GET from its query, of a request whose body is data (uploads) too.
    const readsBody = method !== 'GET' && method !== 'HEAD' && match.rule.params !== 'query'
    const {json = {}, raw: body} = readsBody ? await readRequestBody(request, match.rule.body) : {}
    const params = new RequestParams(readsBody ? 'body' : 'query', queryParams(target), json, match.pathParams, request.headers)
    if (!user.isAdmin) params.checkNumbers()
    const access = new Access({defaultPermission: this.options.defaultPermission, resolver: this.resolver, store: this.options.store, user})
    return {access, body, json, match, params, request, response, target, upstream: this.options.upstream, user}
  }
}
