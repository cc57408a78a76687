/**
 * What a non-admin may see of an answer (the route table's `filter`): searches filtered and
 * refilled to the page size asked for, runs and logged-model searches narrowed before they run,
 * GraphQL checked field by field (docs/mlflow-auth-contract.md, "Search filtering and refill" and
 * "GraphQL").
 */
import {ApiError, permissionDenied, sendJson} from '../responses.js'
import {type Access} from './access.js'
import {type AnswerRewrite, readAnswer, rewriteAnswer, sendRewritten, tierDenied} from './answer-rewrite.js'
import {type Exchange, type Json, relay, send} from './exchange.js'
import {authorizeGraphql} from './graphql.js'
import {stampAllowedActions, withholdVersions} from './mcp.js'
import {isPromptTagged} from './resolver.js'

/** Upstream pages fetched to refill one filtered search page before answering a short page. */
const MAX_REFILL_ROUNDS = 50

export async function filterAnswer(exchange: Exchange): Promise<void> {
  const {access, match, params, response} = exchange
  switch (match.rule.filter) {
    case 'experiments':
    case 'registered-models':
    case 'model-versions': {
      // As for logged models: a filter on run_id selects by run, which a denied run tier forbids.
      if (match.rule.filter === 'model-versions' && (params.optional('filter') ?? '').includes('run_id') && !access.can('not_denied', 'run', '*'))
        throw permissionDenied()
      await refilledSearch(exchange, REFILLED_SEARCHES[match.rule.filter])
      return
    }

    case 'mcp-servers':
    case 'mcp-access-endpoints': {
      await refilledSearch(exchange, REFILLED_SEARCHES[match.rule.filter])
      return
    }

    case 'runs':
    case 'logged-models': {
      // MLflow narrows the experiments searched to the listable ones before the search runs, so
      // pages and tokens stay the store's own; a denied run or logged-model tier lists none.
      const body = {...exchange.json}
      const key = Object.hasOwn(body, 'experimentIds') ? 'experimentIds' : 'experiment_ids'
      const tier = match.rule.filter === 'runs' ? 'run' : 'logged_model'
      // A filter on a logged model's source run would tell which runs it names: MLflow asks that
      // the run tier is not denied then. serve does not parse the filter: any mention counts.
      if (tier === 'logged_model' && (params.optional('filter') ?? '').includes('source_run_id') && !access.can('not_denied', 'run', '*'))
        throw permissionDenied()
      const readable = params.values('experiment_ids').filter((id) => access.lists('experiment', id, [tier]))
      if (readable.length === 0) {
        sendJson(response, 200, {})
        return
      }

      body[key] = readable
      // Read whole: the runs or models found may still name what a denied tier withholds.
      const answer = await send(exchange, Buffer.from(JSON.stringify(body)))
      await sendRewritten(exchange, answer, match.rule.rewrite ?? match.rule.filter)
      return
    }

    case 'graphql': {
      await graphql(exchange)
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
async function refilledSearch(exchange: Exchange, how: RefilledSearch): Promise<void> {
  const {params, response} = exchange
  // Checked before anything is sent: serve computes with it.
  const asked = params.pageSize('max_results')
  const first = await send(exchange)
  const page = readAnswer(first)
  if (!page) {
    relay(response, first)
    return
  }

  const {listKey} = how
  const readable = (item: Json) => how.readable(exchange.access, item)
  const kept = listOf(page, listKey).filter(readable)
  const maxResults = asked ?? how.defaultMaxResults
  let token = typeof page.next_page_token === 'string' && page.next_page_token ? page.next_page_token : undefined
  const filterField = how.filterField ?? 'filter'
  const fixed: Record<string, string | string[] | undefined> = {[filterField]: params.optional(filterField), order_by: params.values('order_by')}
  for (const name of how.extra) fixed[name] = params.optional(name)
  for (let round = 0; maxResults !== undefined && kept.length < maxResults && token && round < MAX_REFILL_ROUNDS; round++) {
    const query = {...fixed, max_results: String(maxResults - kept.length), page_token: token}
    const next = await (how.viaPost
      ? exchange.upstream.request('POST', how.path, {body: withoutEmpty(query), identity: exchange.user.username})
      : exchange.upstream.request('GET', `${how.path}?${toQuery(query)}`, {identity: exchange.user.username}))
    const more = readAnswer(next)
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
  if (how.finish) {
    // FastAPI's answers keep every field: an empty list, a null token.
    answer[listKey] = kept
    answer.next_page_token = token ?? null
    how.finish(exchange.access, answer)
  } else {
    if (kept.length > 0) answer[listKey] = kept
    if (token) answer.next_page_token = token
  }
  // What is kept may still embed versions, runs or logged models the caller's tiers withhold.
  if (how.rewrite) await rewriteAnswer(how.rewrite, answer, {access: exchange.access})
  sendJson(response, 200, answer)
}

/** GraphQL's field-level checks (graphql.ts); MLflow reads GraphQL from a JSON body only. */
async function graphql(exchange: Exchange): Promise<void> {
  const {access, request, response} = exchange
  if (request.method !== 'POST') throw new ApiError('BAD_REQUEST', 'Send GraphQL as a POST with a JSON body, as MLflow reads it.')
  const {operationName, query, variables} = exchange.json
  const decision = await authorizeGraphql(
    {operationName, query, variables},
    {
      canReadExperiment: (id) => access.canReadExperiment(id),
      listsExperiment: (id, vetoTiers) => access.lists('experiment', id, vetoTiers),
      canReadRun: (id) => access.canOnRun('read', id),
      listsModelVersion: (name, kind) => access.listsRegistryEntry(name, kind, true),
      tierDenied: (type) => tierDenied(access, type),
    },
  )
  if (!decision.allowed) {
    if (decision.status === 403) throw permissionDenied()
    throw new ApiError('BAD_REQUEST', decision.message)
  }

  const answer = await send(exchange, Buffer.from(JSON.stringify(decision.request)))
  const result = readAnswer(answer)
  if (!result) {
    relay(response, answer)
    return
  }

  sendJson(response, 200, decision.filterResponse(result))
}

interface RefilledSearch {
  /** MLflow's proto default for max_results; undefined: no default, so no refill (as MLflow). */
  defaultMaxResults: number | undefined
  /** Request fields besides filter, order_by, max_results and page_token to repeat on refills. */
  extra: string[]
  /** The filter's field, `filter` unless said. */
  filterField?: string
  /** What a FastAPI listing's answer gets once filtered (its shape is kept whole). */
  finish?(access: Access, answer: Json): void
  listKey: string
  path: string
  readable(access: Access, item: Json): boolean
  /** What is withheld from the entries kept. */
  rewrite?: AnswerRewrite
  viaPost: boolean
}

/**
 * The searches whose answers are filtered for non-admins and refilled
 * (docs/mlflow-auth-contract.md, "Search filtering and refill").
 */
const REFILLED_SEARCHES: Record<'experiments' | 'mcp-access-endpoints' | 'mcp-servers' | 'model-versions' | 'registered-models', RefilledSearch> = {
  experiments: {
    defaultMaxResults: undefined,
    extra: ['view_type'],
    listKey: 'experiments',
    path: '/api/2.0/mlflow/experiments/search',
    readable: (access, item) => typeof item.experiment_id === 'string' && access.lists('experiment', item.experiment_id),
    viaPost: true,
  },
  // MCP servers the caller may read, each stamped with what they may do to it; access endpoints
  // (across servers) of servers a listing shows. Both withhold the versions a denied tier hides.
  'mcp-access-endpoints': {
    defaultMaxResults: 100,
    extra: ['server_version', 'server_alias'],
    filterField: 'filter_string',
    finish: (access, answer) => withholdVersions(access, answer.mcp_access_endpoints),
    listKey: 'mcp_access_endpoints',
    path: '/api/3.0/mlflow/mcp-servers/endpoints',
    readable: (access, item) => typeof item.server_name === 'string' && access.lists('mcp_server', item.server_name),
    viaPost: false,
  },
  'mcp-servers': {
    defaultMaxResults: 100,
    extra: [],
    filterField: 'filter_string',
    finish(access, answer) {
      for (const server of answer.mcp_servers as Json[]) {
        stampAllowedActions(access, server)
        withholdVersions(access, server.access_endpoints)
      }
    },
    listKey: 'mcp_servers',
    path: '/api/3.0/mlflow/mcp-servers',
    readable: (access, item) => typeof item.name === 'string' && access.can('read', 'mcp_server', item.name),
    viaPost: false,
  },
  'model-versions': {
    defaultMaxResults: 10_000,
    extra: [],
    listKey: 'model_versions',
    path: '/api/2.0/mlflow/model-versions/search',
    readable: (access, item) => typeof item.name === 'string' && access.listsRegistryEntry(item.name, registryKind(item), true),
    rewrite: 'model-versions',
    viaPost: false,
  },
  'registered-models': {
    defaultMaxResults: 100,
    extra: [],
    listKey: 'registered_models',
    path: '/api/2.0/mlflow/registered-models/search',
    readable: (access, item) => typeof item.name === 'string' && access.listsRegistryEntry(item.name, registryKind(item)),
    rewrite: 'registered-models',
    viaPost: false,
  },
}

/** A search answer's registered model or version is a prompt's when its tags say so. */
function registryKind(item: Json): 'prompt' | 'registered_model' {
  return isPromptTagged(item.tags) ? 'prompt' : 'registered_model'
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
