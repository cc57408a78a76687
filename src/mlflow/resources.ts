/**
 * How MLflow names what a permission is on, and the endpoints that grant it: shared by the CLI
 * (which calls them) and serve (which answers them). See docs/mlflow-auth-contract.md, "Auth REST
 * API".
 */

/** Resource types of the unified grants that mlflowctl handles (MLflow's names). */
export const RESOURCE_TYPES = ['experiment', 'registered_model', 'scorer'] as const
export type ResourceType = (typeof RESOURCE_TYPES)[number]

/** Python's urllib.parse.quote(value, safe=''): how MLflow encodes a scorer's name in its resource id. */
export function pythonQuote(value: string): string {
  return encodeURIComponent(value).replaceAll(/[!'()*]/g, (char) => `%${char.charCodeAt(0).toString(16).toUpperCase()}`)
}

/** A scorer's resource id in the unified grants: `<experiment id>/<quoted name>`. */
export function scorerResourceId(experimentId: string, scorerName: string): string {
  return `${experimentId}/${pythonQuote(scorerName)}`
}

/** The scorer's name in such an id (the part after the first slash, unquoted; as stored when it is not validly quoted). */
export function scorerNameOfId(resourceId: string): string {
  const rest = resourceId.slice(resourceId.indexOf('/') + 1)
  try {
    return decodeURIComponent(rest)
  } catch {
    return rest
  }
}

/**
 * The per-resource permission endpoints of MLflow up to 3.12 (removed in 3.13): where each lives
 * and the key its answers use. Each is `<prefix><path>/{create,get,update,delete}`.
 */
export const LEGACY_PERMISSION_ENDPOINTS = {
  experiment: {key: 'experiment_permission', path: '/mlflow/experiments/permissions', prefix: '/api/2.0'},
  registered_model: {key: 'registered_model_permission', path: '/mlflow/registered-models/permissions', prefix: '/api/2.0'},
  scorer: {key: 'scorer_permission', path: '/mlflow/scorers/permissions', prefix: '/api/3.0'},
} as const satisfies Record<ResourceType, {key: string; path: string; prefix: string}>

/** MLflow 3.13+'s unified per-user grants: `<this>/{grant,revoke,get,list}`. */
export const UNIFIED_PERMISSIONS_PATH = '/mlflow/users/permissions'

/**
 * An id in its one decimal spelling. MLflow's stores read experiment ids (and version numbers)
 * with Python's int(), which also takes "06", " 6", "+6", "6_0" and non-ASCII digits, while
 * grants are kept under the id's string: any other spelling would reach the experiment and miss
 * its grants.
 */
export function isCanonicalId(value: string): boolean {
  return /^(?:0|[1-9]\d*)$/.test(value)
}

/**
 * What a per-user grant can be on, as the perms commands name it, with MLflow's resource type for
 * each. `by` says what names one resource: an id, a name, or only `*` (the sub-resource tiers,
 * which MLflow grants wildcard-only). `since` is the MLflow release whose per-user grants first
 * took the type (the kinds without one were there from the start); the probes behind these are in
 * docs/mlflow-rbac.md.
 */
export const PERMISSION_KINDS = {
  experiment: {by: 'id', noun: 'experiment', plural: 'experiments', type: 'experiment'},
  model: {by: 'name', noun: 'registered model', plural: 'registered models', type: 'registered_model'},
  prompt: {by: 'name', noun: 'prompt', plural: 'prompts', since: '3.13', type: 'prompt'},
  scorer: {by: 'name', noun: 'scorer', plural: 'scorers', type: 'scorer'},
  'gateway-secret': {by: 'id', noun: 'gateway secret', plural: 'gateway secrets', since: '3.13', type: 'gateway_secret'},
  'gateway-endpoint': {by: 'id', noun: 'gateway endpoint', plural: 'gateway endpoints', since: '3.13', type: 'gateway_endpoint'},
  'gateway-model-definition': {
    by: 'id',
    noun: 'gateway model definition',
    plural: 'gateway model definitions',
    since: '3.13',
    type: 'gateway_model_definition',
  },
  'mcp-server': {by: 'name', noun: 'MCP server', plural: 'MCP servers', since: '3.15', type: 'mcp_server'},
  run: {by: 'wildcard', noun: 'run', plural: 'runs', since: '3.17', type: 'run'},
  trace: {by: 'wildcard', noun: 'trace', plural: 'traces', since: '3.17', type: 'trace'},
  assessment: {by: 'wildcard', noun: 'assessment', plural: 'assessments', since: '3.17', type: 'assessment'},
  'logged-model': {by: 'wildcard', noun: 'logged model', plural: 'logged models', since: '3.17', type: 'logged_model'},
  'review-queue': {by: 'wildcard', noun: 'review queue', plural: 'review queues', since: '3.17', type: 'review_queue'},
  'model-version': {by: 'wildcard', noun: 'model version', plural: 'model versions', since: '3.17', type: 'registered_model_version'},
  'prompt-version': {by: 'wildcard', noun: 'prompt version', plural: 'prompt versions', since: '3.17', type: 'prompt_version'},
  'scorer-version': {by: 'wildcard', noun: 'scorer version', plural: 'scorer versions', since: '3.17', type: 'scorer_version'},
  'mcp-server-version': {by: 'wildcard', noun: 'MCP server version', plural: 'MCP server versions', since: '3.17', type: 'mcp_server_version'},
} as const satisfies Record<string, {by: 'id' | 'name' | 'wildcard'; noun: string; plural: string; since?: string; type: string}>

export type PermissionKind = keyof typeof PERMISSION_KINDS

/** Every kind, in the order listings group them: the containers, then the sub-resource tiers. */
export const PERMISSION_KIND_NAMES = Object.keys(PERMISSION_KINDS) as PermissionKind[]

/** The perms kind of one of MLflow's resource types, if mlflowctl knows the type. */
export function kindOfType(resourceType: string): PermissionKind | undefined {
  return PERMISSION_KIND_NAMES.find((kind) => PERMISSION_KINDS[kind].type === resourceType)
}

/** The pattern that names every resource of a type. */
export const ALL_RESOURCES = '*'

/** The MLflow release that added explicit DENY grants. */
export const DENY_SINCE = '3.17'

/** The MLflow release that added the unified per-user grants, and with them `*` patterns. */
export const UNIFIED_SINCE = '3.13'
