/**
 * MCP servers as MLflow 3.17's basic-auth app decides them, beyond what the route table states:
 * which requests select a version (its tier may veto them), a version created for a server that
 * does not exist yet (which creates the server too), and what a non-admin's answers are stripped
 * of (the version an access endpoint points at, when the version tier is denied) or stamped with
 * (the actions the caller may take on a server, as MLflow adds them for its UI).
 */
import {UpstreamError} from '../proxy.js'
import {ApiError, permissionDenied} from '../responses.js'
import {type Access} from './access.js'
import {type Exchange, type Json, parseAnswer} from './exchange.js'
import {type RequestParams} from './request-params.js'

/** A server's name from its path: `<namespace>/<slug>`. */
export function mcpServerName(params: RequestParams): string {
  return `${params.required('path.namespace')}/${params.required('path.slug')}`
}

const isObject = (value: unknown): value is Json => value !== null && typeof value === 'object' && !Array.isArray(value)
/** Python's truthiness of a JSON value, as MLflow tests the selectors. */
const truthy = (value: unknown) => value !== undefined && value !== null && value !== false && value !== '' && value !== 0

/**
 * Whether a request selects a version (`server_version`, `server_alias`, or a filter on a
 * version's `status`). MLflow parses the filter to see whether it names `status`; serve does not
 * parse MLflow's filter grammar, so any filter counts (stricter).
 */
function selectsVersion(exchange: Exchange): boolean {
  const query = new URL(exchange.target, 'http://serve.invalid').searchParams
  if (truthy(query.get('server_version')) || truthy(query.get('server_alias')) || truthy(query.get('filter_string'))) return true
  const method = exchange.request.method
  if (method !== 'POST' && method !== 'PATCH') return false
  return truthy(exchange.json.server_version) || truthy(exchange.json.server_alias)
}

/** A request selecting a version is vetoed by a DENY on the version tier (of its server, or of every server for the cross-server search). */
export function checkVersionSelected(exchange: Exchange): void {
  if (!selectsVersion(exchange)) return
  const {access, match, params} = exchange
  const allowed =
    match.pathParams.namespace === undefined
      ? access.can('not_denied', 'mcp_server_version', '*')
      : access.canOnMcpVersions('not_denied', mcpServerName(params))
  if (!allowed) throw permissionDenied()
}

/** The name a version's server.json gives, raw or in a registry envelope (as MLflow unwraps it). */
function versionServerName(json: Json): unknown {
  const serverJson = json.server_json
  if (!isObject(serverJson)) return undefined
  if (!('name' in serverJson && 'version' in serverJson) && isObject(serverJson.server)) {
    const {server} = serverJson
    if ('name' in server && 'version' in server) return server.name
  }

  return serverJson.name
}

/**
 * A new version of an existing server needs EDIT on it, its version tier not denied. A version of
 * a server that does not exist creates the server: the caller may create servers (none of this
 * name, nor the version tier, denied), and serve creates the server first, so it knows who made it
 * (its creator gets MANAGE once the version is made) and so that a server someone else creates
 * meanwhile is decided as theirs. A body naming another server is refused before anything is made.
 */
export async function checkVersionCreate(exchange: Exchange): Promise<void> {
  const {access, params} = exchange
  const name = mcpServerName(params)
  const canAddTo = () => access.can('update', 'mcp_server', name) && access.can('not_denied', 'mcp_server_version', '*')
  if (await access.mcpServerExists(name)) {
    if (!canAddTo()) throw permissionDenied()
    return
  }

  const mayCreate = ['*', name].every((id) => access.can('not_denied', 'mcp_server', id)) && access.can('not_denied', 'mcp_server_version', '*')
  if (!mayCreate) throw permissionDenied()
  if (versionServerName(exchange.json) !== name) throw new ApiError('INVALID_PARAMETER_VALUE', `server_json.name does not match path parameter '${name}'`)
  const made = await exchange.upstream.request('POST', '/api/3.0/mlflow/mcp-servers', {
    body: {name},
    identity: exchange.user.username,
  })
  if (made.status === 200) {
    exchange.createdMcpServer = name
    return
  }

  const error = parseAnswer(made)
  if (error?.error_code === 'RESOURCE_ALREADY_EXISTS') {
    // Created by someone else since the lookup: theirs, so decided as an existing server.
    if (!canAddTo()) throw permissionDenied()
    return
  }

  if (typeof error?.error_code === 'string' && typeof error.message === 'string' && made.status < 500) throw new ApiError(error.error_code, error.message)
  throw new UpstreamError(`The MLflow server answered ${made.status} when serve created the MCP server for this version.`, 502)
}

/**
 * A version create that failed after serve created its server: the server is removed again, so a
 * refused or failed request leaves nothing behind.
 */
export async function removeCreatedServer(exchange: Exchange, log: (message: string) => void): Promise<void> {
  const name = exchange.createdMcpServer
  if (name === undefined) return
  const path = name
    .split('/')
    .map((segment) => encodeURIComponent(segment))
    .join('/')
  try {
    const answer = await exchange.upstream.request('DELETE', `/api/3.0/mlflow/mcp-servers/${path}`, {identity: exchange.user.username})
    if (answer.status < 400) return
    log(`error: the MCP server ${name} serve created for a version that failed could not be removed (MLflow answered ${answer.status}): remove it`)
  } catch (error) {
    log(`error: the MCP server ${name} serve created for a version that failed could not be removed: ${(error as Error).message}: remove it`)
  }
}

/** Fields of an access endpoint that tell which version it serves. */
const VERSION_FIELDS = ['resolved_version', 'tools', 'server_version', 'server_alias']

/** Access endpoints without the version they point at when the caller's version tier on their server is denied (fields emptied, never added). */
export function withholdVersions(access: Access, endpoints: unknown): void {
  const denied = new Map<string, boolean>()
  for (const endpoint of Array.isArray(endpoints) ? endpoints : []) {
    if (!isObject(endpoint)) continue
    const server = String(endpoint.server_name)
    if (!denied.has(server)) denied.set(server, !access.canOnMcpVersions('not_denied', server))
    if (!denied.get(server)) continue
    for (const field of VERSION_FIELDS) if (field in endpoint) endpoint[field] = null
  }
}

/** What MLflow's UI is told the caller may do to a server. */
export function stampAllowedActions(access: Access, server: Json): void {
  if (typeof server.name !== 'string') return
  const name = server.name
  const actions = (['use', 'update', 'delete', 'manage'] as const).filter((need) => access.can(need, 'mcp_server', name))
  server.allowed_actions = actions.map((action) => action.toUpperCase())
}

/** A server answer, a server listing's row, an access endpoint or a listing of them, as a non-admin gets it. */
export function redactMcp(redaction: 'mcp-endpoint' | 'mcp-endpoints' | 'mcp-server', access: Access, body: Json): void {
  switch (redaction) {
    case 'mcp-server': {
      stampAllowedActions(access, body)
      withholdVersions(access, body.access_endpoints)
      return
    }

    case 'mcp-endpoint': {
      withholdVersions(access, [body])
      return
    }

    case 'mcp-endpoints': {
      withholdVersions(access, body.mcp_access_endpoints)
    }
  }
}
