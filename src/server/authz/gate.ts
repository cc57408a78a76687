/**
 * Everything serve does with an authenticated request to MLflow (not to its own auth API): decide
 * it from the route table, filter what a non-admin may see, record permissions after creates,
 * renames and deletes, and forward it (docs/mlflow-auth-contract.md, "Search filtering and refill"
 * and "After-request side effects"). The request that was decided is the one forwarded: a body read
 * to decide is sent as those same bytes, or as a narrowed copy of them.
 */
import {type IncomingMessage, type ServerResponse} from 'node:http'

import {scorerResourceId} from '../../mlflow/resources.js'
import {isHopByHop, type Upstream, type UpstreamResponse} from '../proxy.js'
import {readRequestBody} from '../request-body.js'
import {ApiError, permissionDenied, sendJson} from '../responses.js'
import {type Store, type UserRecord} from '../store/store.js'
import {Access} from './access.js'
import {authorizeGraphql} from './graphql.js'
import {readModelVersionSource} from './model-version-source.js'
import {RequestParams} from './request-params.js'
import {ResourceResolver} from './resolver.js'
import {type AfterEffect, type RouteMatch} from './route-table.js'

/** Upstream pages fetched to refill one filtered search page before answering a short page. */
const MAX_REFILL_ROUNDS = 50

export interface GateOptions {
  defaultPermission: string
  /** serve's log: permission changes MLflow made that the store could not record. */
  log: (message: string) => void
  store: Store
  upstream: Upstream
}

interface Exchange {
  access: Access
  /** The request body as read (JSON routes), to forward unchanged. */
  body?: Buffer
  /** That body parsed, as MLflow's handler will parse it. */
  json: Json
  match: RouteMatch
  params: RequestParams
  request: IncomingMessage
  response: ServerResponse
  /** Path and query as the client sent them. */
  target: string
  user: UserRecord
}

type Json = Record<string, unknown>

export class Gate {
  private readonly resolver: ResourceResolver

  constructor(private readonly options: GateOptions) {
    this.resolver = new ResourceResolver(options.upstream)
  }

  /** `match` is undefined for a route the table does not know: admins only. */
  async handle(request: IncomingMessage, response: ServerResponse, user: UserRecord, match: RouteMatch | undefined, target: string): Promise<void> {
    const {upstream} = this.options
    const method = request.method ?? 'GET'
    if ((method === 'GET' || method === 'HEAD') && hasBody(request)) {
      throw new ApiError('BAD_REQUEST', `A ${method} request must not have a body: MLflow reads its parameters from the query string.`)
    }

    const rule = match?.rule
    if (!user.isAdmin && (!rule || rule.access === 'admin')) throw permissionDenied()
    // serve's grants know no workspaces; a workspace-enabled upstream would apply them across.
    if (!user.isAdmin && request.headers['x-mlflow-workspace'] !== undefined) throw new ApiError('BAD_REQUEST', 'mlflowctl serve does not support MLflow workspaces (X-MLFLOW-WORKSPACE).')
    if (!match || !rule || (user.isAdmin && !rule.after)) {
      await upstream.forward(request, response, {identity: user.username})
      return
    }

    // MLflow reads the fields of a GET from its query, of a request whose body is data (uploads) too.
    const readsBody = method !== 'GET' && method !== 'HEAD' && rule.params !== 'query'
    const {json = {}, raw: body} = readsBody ? await readRequestBody(request, rule.body) : {}
    const url = new URL(target, 'http://serve.invalid')
    const params = new RequestParams(readsBody ? 'body' : 'query', url.searchParams, json, match.pathParams, request.headers)
    const access = new Access({defaultPermission: this.options.defaultPermission, resolver: this.resolver, store: this.options.store, user})
    const exchange: Exchange = {access, body, json, match, params, request, response, target, user}

    if (!user.isAdmin) {
      if (Array.isArray(rule.access)) await access.enforce(rule.access, params)
      if (rule.special === 'model-version-source') await this.checkModelVersionSource(exchange)
      if (rule.special === 'experiment-artifact-location' && params.optional('artifact_location')) {
        throw new ApiError('PERMISSION_DENIED', 'Permission denied: only admins can choose an experiment\'s artifact_location (the server would write and read there for its runs).')
      }

      if (rule.special === 'trace-body') checkTraceBody(json)
      if (rule.special === 'assessment-overrides') await this.checkAssessmentOverride(exchange)
      if (rule.filter) {
        await this.filter(exchange)
        return
      }
    }

    if (rule.after) {
      const answer = await this.send(exchange)
      if (answer.status < 400) await this.recordAfter(rule.after, exchange, answer)
      relay(response, answer)
      return
    }

    await upstream.forward(request, response, {body, identity: user.username, method: upstreamMethod(request)})
  }

  /** The exchange with the upstream, buffered: for answers serve reads or changes. */
  private send(exchange: Exchange, body = exchange.body, target = exchange.target): Promise<UpstreamResponse> {
    const contentType = exchange.request.headers['content-type']
    const headers: Record<string, string> = contentType ? {'Content-Type': contentType} : {}
    return this.options.upstream.request(upstreamMethod(exchange.request), target, {body, headers, identity: exchange.user.username})
  }

  /**
   * MLflow has made the change, so its answer is what the client gets even when the store cannot
   * record what follows from it: an error would say the change failed, and clients (MLflow's retry
   * on 5xx too) would repeat a create that then fails as "already exists". The store failing only
   * withholds access (a creator without MANAGE) or leaves grants for an admin to tidy, and the log
   * says which.
   */
  private async recordAfter(effect: AfterEffect, exchange: Exchange, answer: UpstreamResponse): Promise<void> {
    try {
      await this.applyAfter(effect, exchange, answer)
    } catch (error) {
      const {request, user} = exchange
      this.options.log(`error: ${request.method} ${exchange.target.split('?', 1)[0]} by ${user.username}: MLflow made the change, but ${AFTER_EFFECT_MISSED[effect]}: ${(error as Error).message}`)
    }
  }

  private async applyAfter(effect: AfterEffect, {params, user}: Exchange, answer: UpstreamResponse): Promise<void> {
    const {store} = this.options
    const result = parseAnswer(answer)
    switch (effect) {
      case 'grant-experiment-creator': {
        const id = typeof result?.experiment_id === 'string' ? result.experiment_id : undefined
        if (id) await grantManage(store, user, 'experiment', id)
        return
      }

      case 'grant-registered-model-creator': {
        const name = (result?.registered_model as Json | undefined)?.name
        if (typeof name === 'string') await grantManage(store, user, 'registered_model', name)
        return
      }

      case 'rename-registered-model-grants': {
        await store.renameResource('registered_model', params.required('name'), params.required('new_name'))
        return
      }

      case 'delete-registered-model-grants': {
        await store.deleteGrantsForResource('registered_model', params.required('name'))
        return
      }

      case 'grant-scorer-creator': {
        // Only the first version makes a creator; registering a new version of someone else's
        // scorer (EDIT on the experiment suffices) must not make its author MANAGE.
        if (result?.version !== undefined && String(result.version) !== '1') return
        const id = scorerResourceId(params.required('experiment_id'), params.required('name'))
        if (!store.getGrant(user.id, 'scorer', id)) await store.createGrant({permission: 'MANAGE', resourceId: id, resourceType: 'scorer', userId: user.id})
        return
      }

      case 'delete-scorer-grants': {
        // With a version, MLflow deletes that version only and the scorer stays: so do its grants.
        if (params.optional('version') !== undefined) return
        await store.deleteGrantsForResource('scorer', scorerResourceId(params.required('experiment_id'), params.required('name')))
      }
    }
  }

  /**
   * A model version's `source` is read by the server on the caller's behalf (get-artifact,
   * get-download-uri), so it must not name what the caller cannot read
   * (docs/mlflow-auth-contract.md, "Authorization bypass classes", file and URL inputs): the run
   * and logged model it names, the experiment of a served-artifact path, the registered model of a
   * models:/name/version URI. A local path is accepted with a readable run_id or model_id, in whose
   * artifact directory MLflow itself requires it to lie. Other stores (s3://, gs://, …) the server
   * would read with its own credentials: admins only.
   */
  private async checkModelVersionSource({access, params}: Exchange): Promise<void> {
    const runId = params.optional('run_id')
    const modelId = params.optional('model_id')
    if (runId && !(await access.canOnRun('read', runId))) throw permissionDenied()
    if (modelId && !(await access.canOnLoggedModel('read', modelId))) throw permissionDenied()
    const source = params.optional('source')
    if (source && !(await this.sourceReadable(source, access, Boolean(runId || modelId)))) {
      throw new ApiError('PERMISSION_DENIED', `Permission denied for model version source ${source}: it must be a runs:/, models:/ or mlflow-artifacts URI of something you can read, or a local path inside the run or logged model given.`)
    }
  }

  /**
   * An assessment that overrides another marks that one invalid: it must be an assessment of the
   * same trace (which the route's checks already cover), never one of another trace.
   */
  private async checkAssessmentOverride({params, user}: Exchange): Promise<void> {
    const overrides = params.optional('assessment.overrides')
    if (!overrides) return
    const traceId = params.required('path.trace_id')
    const answer = await this.options.upstream.request('GET', `/api/3.0/mlflow/traces/${encodeURIComponent(traceId)}/assessments/${encodeURIComponent(overrides)}`, {identity: user.username})
    if (answer.status !== 200) throw new ApiError('PERMISSION_DENIED', `Permission denied: assessment ${overrides} is not an assessment of trace ${traceId}.`)
  }

  /** Whether the caller may read what `source` names, as the upstream will read it (model-version-source.ts). */
  private async sourceReadable(source: string, access: Access, hasOwner: boolean): Promise<boolean> {
    const reading = readModelVersionSource(source)
    switch (reading.kind) {
      case 'run': {
        return access.canOnRun('read', reading.runId)
      }

      case 'logged-model': {
        return access.canOnLoggedModel('read', reading.modelId)
      }

      case 'registered-model': {
        return access.canReadRegisteredModel(reading.name)
      }

      case 'experiment-artifacts': {
        return access.canReadExperiment(reading.experimentId)
      }

      case 'local': {
        return hasOwner
      }

      case 'refused': {
        throw new ApiError('INVALID_PARAMETER_VALUE', `Refused model version source ${JSON.stringify(source)}: ${reading.reason}.`)
      }

      case 'other-store': {
        return false
      }
    }
  }

  private async filter(exchange: Exchange): Promise<void> {
    const {access, match, params, response} = exchange
    switch (match.rule.filter) {
      case 'experiments':
      case 'registered-models':
      case 'model-versions': {
        await this.refilledSearch(exchange, REFILLED_SEARCHES[match.rule.filter])
        return
      }

      case 'runs':
      case 'logged-models': {
        // MLflow narrows the experiments searched to the readable ones before the search runs, so
        // pages and tokens stay the store's own.
        const body = {...exchange.json}
        const key = Object.hasOwn(body, 'experimentIds') ? 'experimentIds' : 'experiment_ids'
        const readable = params.values('experiment_ids').filter((id) => access.canReadExperiment(id))
        if (readable.length === 0) {
          sendJson(response, 200, {})
          return
        }

        body[key] = readable
        await this.options.upstream.forward(exchange.request, response, {body: Buffer.from(JSON.stringify(body)), identity: exchange.user.username})
        return
      }

      case 'graphql': {
        await this.graphql(exchange)
        return
      }

      default: {
        throw permissionDenied()
      }
    }
  }

  /**
   * A search answer without what the caller cannot read, refilled to the page size asked for from
   * the following upstream pages (docs/mlflow-auth-contract.md, "Search filtering and refill").
   * Each refill asks for exactly the missing count, so the upstream's own next_page_token stays
   * exact whatever its format.
   */
  private async refilledSearch(exchange: Exchange, how: RefilledSearch): Promise<void> {
    const {params, response} = exchange
    const first = await this.send(exchange)
    const page = first.status === 200 ? parseAnswer(first) : undefined
    if (!page) {
      relay(response, first)
      return
    }

    const {listKey} = how
    const readable = (item: Json) => how.readable(exchange.access, item)
    const kept = listOf(page, listKey).filter(readable)
    const asked = params.optional('max_results')
    const maxResults = asked === undefined ? how.defaultMaxResults : Number.parseInt(asked, 10)
    let token = typeof page.next_page_token === 'string' && page.next_page_token ? page.next_page_token : undefined
    const fixed: Record<string, string | string[] | undefined> = {filter: params.optional('filter'), order_by: params.values('order_by')}
    for (const name of how.extra) fixed[name] = params.optional(name)
    for (let round = 0; maxResults !== undefined && kept.length < maxResults && token && round < MAX_REFILL_ROUNDS; round++) {
      const query = {...fixed, max_results: String(maxResults - kept.length), page_token: token}
      const next = await (how.viaPost
        ? this.options.upstream.request('POST', how.path, {body: withoutEmpty(query), identity: exchange.user.username})
        : this.options.upstream.request('GET', `${how.path}?${toQuery(query)}`, {identity: exchange.user.username}))
      const more = next.status === 200 ? parseAnswer(next) : undefined
      if (!more) {
        relay(response, next)
        return
      }

      kept.push(...listOf(more, listKey).filter(readable))
      token = typeof more.next_page_token === 'string' && more.next_page_token ? more.next_page_token : undefined
    }

    const answer: Json = {...page}
    delete answer[listKey]
    delete answer.next_page_token
    if (kept.length > 0) answer[listKey] = kept
    if (token) answer.next_page_token = token
    sendJson(response, 200, answer)
  }

  /** GraphQL's field-level checks (graphql.ts); MLflow reads GraphQL from a JSON body only. */
  private async graphql(exchange: Exchange): Promise<void> {
    const {access, request, response} = exchange
    if (request.method !== 'POST') throw new ApiError('BAD_REQUEST', 'Send GraphQL as a POST with a JSON body, as MLflow reads it.')
    const {operationName, query, variables} = exchange.json
    const decision = await authorizeGraphql({operationName, query, variables}, {
      canReadExperiment: (id) => access.canReadExperiment(id),
      canReadRegisteredModel: (name) => access.canReadRegisteredModel(name),
      canReadRun: (id) => access.canOnRun('read', id),
    })
    if (!decision.allowed) {
      if (decision.status === 403) throw permissionDenied()
      throw new ApiError('BAD_REQUEST', decision.message)
    }

    const answer = await this.send(exchange, Buffer.from(JSON.stringify(decision.request)))
    const result = answer.status === 200 ? parseAnswer(answer) : undefined
    if (!result) {
      relay(response, answer)
      return
    }

    sendJson(response, 200, decision.filterResponse(result))
  }
}

/** What is missing when an after-effect could not be recorded, for the admin reading the log. */
const AFTER_EFFECT_MISSED: Record<AfterEffect, string> = {
  'delete-registered-model-grants': 'the grants on the deleted registered model were not removed (they would apply to a new model of that name: revoke them)',
  'delete-scorer-grants': 'the grants on the deleted scorer were not removed (they would apply to a new scorer of that name: revoke them)',
  'grant-experiment-creator': 'its creator was not given MANAGE on the new experiment',
  'grant-registered-model-creator': 'its creator was not given MANAGE on the new registered model',
  'grant-scorer-creator': 'its creator was not given MANAGE on the new scorer',
  'rename-registered-model-grants': 'the grants on the registered model were not moved to its new name (those left on the old name would apply to a new model of that name: revoke them)',
}

/**
 * A HEAD is decided as the GET Flask dispatches it as, so it is sent as that GET (Node drops the
 * body of an answer to HEAD): MLflow would read a HEAD's parameters from its body instead.
 */
function upstreamMethod(request: IncomingMessage): string {
  return request.method === 'HEAD' ? 'GET' : (request.method ?? 'GET')
}

/** Trace tags that tell MLflow where a trace's data lives: set by the server, never by a caller. */
const LOCATION_TAG = /^mlflow\.(artifactLocation|trace\.\w*Location)$/i

/**
 * Refuses location tags in a trace tag request, a v2 start or end (tags[]), or a v3 start (tag and
 * metadata maps); and, in a v3 start, assessments that name another trace or override another
 * assessment (MLflow would write them where the caller has no right).
 */
function checkTraceBody(body: Json): void {
  const traceInfo = ((body.trace as Json | undefined)?.trace_info ?? (body.trace as Json | undefined)?.traceInfo) as Json | undefined
  const keys = [
    body.key,
    ...(Array.isArray(body.tags) ? body.tags.map((tag: unknown) => (tag as Json | null)?.key) : []),
    ...Object.keys((traceInfo?.tags as Json | undefined) ?? {}),
    ...Object.keys(((traceInfo?.trace_metadata ?? traceInfo?.traceMetadata) as Json | undefined) ?? {}),
  ]
  const refused = keys.find((key) => typeof key === 'string' && LOCATION_TAG.test(key))
  if (refused) throw new ApiError('PERMISSION_DENIED', `Permission denied: the trace tag ${refused} says where the trace's data lives and is set by the server.`)
  const traceId = traceInfo?.trace_id ?? traceInfo?.traceId
  for (const assessment of Array.isArray(traceInfo?.assessments) ? (traceInfo.assessments as unknown[]) : []) {
    const item = (assessment ?? {}) as Json
    const named = item.trace_id ?? item.traceId
    if ((named !== undefined && named !== traceId) || item.overrides !== undefined) {
      throw new ApiError('PERMISSION_DENIED', 'Permission denied: assessments sent with a trace must belong to it and override nothing.')
    }
  }
}

interface RefilledSearch {
  /** MLflow's proto default for max_results; undefined: no default, so no refill (as MLflow). */
  defaultMaxResults: number | undefined
  /** Request fields besides filter, order_by, max_results and page_token to repeat on refills. */
  extra: string[]
  listKey: string
  path: string
  readable(access: Access, item: Json): boolean
  viaPost: boolean
}

/**
 * The searches whose answers are filtered for non-admins and refilled
 * (docs/mlflow-auth-contract.md, "Search filtering and refill").
 */
const REFILLED_SEARCHES: Record<'experiments' | 'model-versions' | 'registered-models', RefilledSearch> = {
  experiments: {
    defaultMaxResults: undefined,
    extra: ['view_type'],
    listKey: 'experiments',
    path: '/api/2.0/mlflow/experiments/search',
    readable: (access, item) => typeof item.experiment_id === 'string' && access.canReadExperiment(item.experiment_id),
    viaPost: true,
  },
  'model-versions': {
    defaultMaxResults: 10_000,
    extra: [],
    listKey: 'model_versions',
    path: '/api/2.0/mlflow/model-versions/search',
    readable: (access, item) => typeof item.name === 'string' && access.canReadRegisteredModel(item.name),
    viaPost: false,
  },
  'registered-models': {
    defaultMaxResults: 100,
    extra: [],
    listKey: 'registered_models',
    path: '/api/2.0/mlflow/registered-models/search',
    readable: (access, item) => typeof item.name === 'string' && access.canReadRegisteredModel(item.name),
    viaPost: false,
  },
}

async function grantManage(store: Store, user: UserRecord, resourceType: string, resourceId: string): Promise<void> {
  const grant = {permission: 'MANAGE', resourceId, resourceType, userId: user.id}
  if (store.getGrant(user.id, resourceType, resourceId)) await store.updateGrant(grant)
  else await store.createGrant(grant)
}

function hasBody(request: IncomingMessage): boolean {
  const length = request.headers['content-length']
  return request.headers['transfer-encoding'] !== undefined || (length !== undefined && length !== '0')
}

function parseAnswer(answer: UpstreamResponse): Json | undefined {
  try {
    const value: unknown = JSON.parse(answer.body.toString('utf8'))
    return value && typeof value === 'object' && !Array.isArray(value) ? (value as Json) : undefined
  } catch {
    return undefined
  }
}

function listOf(page: Json, key: string): Json[] {
  const list = page[key]
  return Array.isArray(list) ? list.filter((item): item is Json => Boolean(item) && typeof item === 'object') : []
}

function withoutEmpty(query: Record<string, string | string[] | undefined>): Json {
  return Object.fromEntries(Object.entries(query).filter(([, value]) => value !== undefined && !(Array.isArray(value) && value.length === 0)))
}

function toQuery(query: Record<string, string | string[] | undefined>): string {
  const search = new URLSearchParams()
  for (const [name, value] of Object.entries(query)) {
    for (const item of Array.isArray(value) ? value : value === undefined ? [] : [value]) search.append(name, item)
  }

  return search.toString()
}

/** An upstream answer serve buffered, passed on as it came. */
function relay(response: ServerResponse, answer: UpstreamResponse): void {
  for (const [name, value] of Object.entries(answer.headers)) {
    if (value !== undefined && !isHopByHop(name) && name !== 'content-length') response.setHeader(name, value)
  }

  response.writeHead(answer.status, {'content-length': answer.body.length})
  response.end(answer.body)
}
