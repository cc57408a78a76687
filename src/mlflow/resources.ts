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
