/**
 * MLflow 3.14+'s role model, as pure functions over rows (docs/mlflow-rbac.md): which resource
 * types a role row may name and with which patterns, which levels each accepts, and how the rows
 * of every role a user holds decide a request. Shared by serve, which decides with it, and the
 * CLI, which explains a decision (`access check`) from the rows the server lists.
 */
import {type Level} from './permissions.js'
import {pythonStr} from './python-text.js'

/** Containers: a row names one resource (by id or name) or `*`. */
export const CONTAINER_RESOURCE_TYPES = [
  'experiment',
  'gateway_endpoint',
  'gateway_model_definition',
  'gateway_secret',
  'mcp_server',
  'prompt',
  'registered_model',
  'scorer',
] as const

/**
 * Sub-resource tiers and the workspace slot: `*` only. A per-id row here would hold on a point
 * route and lapse in a search, so MLflow refuses it.
 */
export const WILDCARD_ONLY_RESOURCE_TYPES = [
  'assessment',
  'logged_model',
  'mcp_server_version',
  'prompt_version',
  'registered_model_version',
  'review_queue',
  'run',
  'scorer_version',
  'trace',
  'workspace',
] as const

/** Every type a role row may name, sorted as MLflow lists them in its error message. */
export const ROLE_RESOURCE_TYPES = [...CONTAINER_RESOURCE_TYPES, ...WILDCARD_ONLY_RESOURCE_TYPES].sort()
export type RoleResourceType = (typeof CONTAINER_RESOURCE_TYPES)[number] | (typeof WILDCARD_ONLY_RESOURCE_TYPES)[number]

export const WILDCARD = '*'

/** The workspace every role lives in while MLflow's workspaces are off (serve has none). */
export const DEFAULT_WORKSPACE = 'default'

/** Levels a row on a resource accepts (NO_PERMISSIONS is absence plus default_permission). */
export const RESOURCE_ROW_LEVELS = ['DENY', 'EDIT', 'MANAGE', 'READ', 'USE'] as const
/** Levels the workspace slot accepts: USE = member, MANAGE = workspace admin. */
export const WORKSPACE_ROW_LEVELS = ['MANAGE', 'USE'] as const
/** Every level MLflow knows, in its own order (its error messages list them so). */
export const ALL_LEVELS = ['READ', 'USE', 'EDIT', 'MANAGE', 'NO_PERMISSIONS', 'DENY'] as const

/** DENY is below everything so no max() can pick it; the fold handles it before any max. */
const PRIORITY: Record<string, number> = {DENY: -1, EDIT: 3, MANAGE: 4, NO_PERMISSIONS: 0, READ: 1, USE: 2}

/** The higher of two levels; the first on a tie (MLflow's max_permission). */
export function maxLevel<T extends string>(a: T, b: T): T {
  return (PRIORITY[a] ?? 0) >= (PRIORITY[b] ?? 0) ? a : b
}

// Sets: every decision asks these, for each rung it folds.
const ROLE_TYPES = new Set<string>(ROLE_RESOURCE_TYPES)
const CONTAINER_TYPES = new Set<string>(CONTAINER_RESOURCE_TYPES)

export function isRoleResourceType(value: unknown): value is RoleResourceType {
  return typeof value === 'string' && ROLE_TYPES.has(value)
}

export function acceptsIdPattern(resourceType: RoleResourceType): boolean {
  return CONTAINER_TYPES.has(resourceType)
}

/** Does a row's pattern on `resourceType` apply to the resource `resourceId`? */
export function patternMatches(resourcePattern: string, resourceType: string, resourceId: string): boolean {
  if (!isRoleResourceType(resourceType)) return false
  return resourcePattern === WILDCARD || (acceptsIdPattern(resourceType) && resourcePattern === resourceId)
}

// MLflow's validation messages, word for word: its clients and tests match on them.

const tuple = (values: readonly string[]) => `(${values.map((value) => `'${value}'`).join(', ')})`

const unknownLevelMessage = (permission: unknown) => `Invalid permission '${pythonStr(permission)}'. Valid permissions are: ${tuple(ALL_LEVELS)}`
const resourceLevelMessage = (permission: unknown, resourceType: string) =>
  `Invalid permission '${pythonStr(permission)}' for resource_type='${resourceType}'. Resource-level grants accept only: ${tuple(RESOURCE_ROW_LEVELS)}.`
const wildcardOnlyMessage = (resourcePattern: unknown, resourceType: string) =>
  `Invalid resource_pattern '${pythonStr(resourcePattern)}' for resource_type='${resourceType}'. This resource type supports only wildcard ('*') grants.`

export function invalidResourceTypeMessage(resourceType: unknown): string {
  return `Invalid resource type '${pythonStr(resourceType)}'. Valid resource types are: ${tuple(ROLE_RESOURCE_TYPES)}`
}

/** Why MLflow refuses a row, or undefined when it accepts it; checked in MLflow's order. */
export function rowProblem(resourceType: unknown, resourcePattern: unknown, permission: unknown): string | undefined {
  if (!(ALL_LEVELS as readonly unknown[]).includes(permission)) return unknownLevelMessage(permission)
  if (!isRoleResourceType(resourceType)) return invalidResourceTypeMessage(resourceType)
  if (resourceType === 'workspace') {
    if (!(WORKSPACE_ROW_LEVELS as readonly unknown[]).includes(permission))
      return `Invalid permission '${pythonStr(permission)}' for resource_type='workspace'. Workspace-wide grants accept only: ${tuple(WORKSPACE_ROW_LEVELS)}.`
  } else if (!(RESOURCE_ROW_LEVELS as readonly unknown[]).includes(permission)) {
    return resourceLevelMessage(permission, resourceType)
  }
  if (resourcePattern !== WILDCARD && !acceptsIdPattern(resourceType)) return wildcardOnlyMessage(resourcePattern, resourceType)
  return undefined
}

// The per-user grant API (`users/permissions/{grant,revoke,get}`) writes and resolves rows of a
// user's own role, with its own checks and order.

/** The workspace slot has its own API; the per-user one refuses it, for everyone, first. */
export const WORKSPACE_PER_USER_MESSAGE =
  "resource_type 'workspace' is not supported by the per-user permission convenience APIs. Use set_workspace_permission / delete_workspace_permission for workspace-wide grants."

/**
 * Types whose single resources the per-user API resolves (to check a grantor's MANAGE, or answer
 * `get`). Prompts and the sub-resource tiers are not among them: there it takes `*` only, except
 * from an admin, whose grant needs no resolving.
 */
export const PER_USER_RESOLVABLE_TYPES = [
  'experiment',
  'gateway_endpoint',
  'gateway_model_definition',
  'gateway_secret',
  'mcp_server',
  'registered_model',
  'scorer',
] as const

/** Why the per-user API cannot resolve one resource of a type, or undefined when it can (types already valid). */
export function perUserResolveProblem(resourceType: string, resourceId: string): string | undefined {
  if (resourceType === 'scorer' && !resourceId.includes('/')) return "Invalid scorer resource_id. Expected '<experiment_id>/<scorer_name>'."
  if (!(PER_USER_RESOLVABLE_TYPES as readonly string[]).includes(resourceType))
    return `resource_type '${resourceType}' is not supported by the per-user permission convenience APIs.`
  return undefined
}

/** Why the per-user API refuses a type, in its order (workspace, then unknown), or undefined. */
export function perUserTypeProblem(resourceType: unknown): string | undefined {
  if (resourceType === 'workspace') return WORKSPACE_PER_USER_MESSAGE
  if (!isRoleResourceType(resourceType)) return invalidResourceTypeMessage(resourceType)
  return undefined
}

/** Why the per-user API refuses a grant, in its order: the type, the pattern, then the level. */
export function perUserGrantProblem(resourceType: unknown, resourcePattern: unknown, permission: unknown): string | undefined {
  const typeProblem = perUserTypeProblem(resourceType)
  if (typeProblem !== undefined) return typeProblem
  const type = resourceType as RoleResourceType
  if (resourcePattern !== WILDCARD && !acceptsIdPattern(type)) return wildcardOnlyMessage(resourcePattern, type)
  if (!(ALL_LEVELS as readonly unknown[]).includes(permission)) return unknownLevelMessage(permission)
  if (!(RESOURCE_ROW_LEVELS as readonly unknown[]).includes(permission)) return resourceLevelMessage(permission, type)
  return undefined
}

/** One permission row of a role, with the role it belongs to (for explanations). */
export interface RoleRow {
  permission: string
  resourcePattern: string
  resourceType: string
  roleId?: number
  roleName?: string
}

export interface Fold {
  level: Level
  /** The rows that decided: every DENY row when denied, else the rows at the winning level. */
  rows: RoleRow[]
}

/**
 * Every row that matches one resource, folded: a DENY among them wins, else the highest level.
 * Undefined when none matches: the caller decides what silence means (a fallback tier, or the
 * default).
 */
export function foldRows(rows: Iterable<RoleRow>, resourceType: string, resourceId: string): Fold | undefined {
  // patternMatches, with what depends only on the type asked once rather than per row; and no
  // list made until a row matches (most rungs of most decisions match none).
  if (!isRoleResourceType(resourceType)) return undefined
  const byId = acceptsIdPattern(resourceType)
  let denies: RoleRow[] | undefined
  let best: RoleRow[] | undefined
  for (const row of rows) {
    if (row.resourceType !== resourceType) continue
    if (row.resourcePattern !== WILDCARD && !(byId && row.resourcePattern === resourceId)) continue
    if (row.permission === 'DENY') (denies ??= []).push(row)
    else if (best === undefined || PRIORITY[row.permission] > PRIORITY[best[0].permission]) best = [row]
    else if (row.permission === best[0].permission) best.push(row)
  }
  if (denies) return {level: 'DENY', rows: denies}
  return best ? {level: best[0].permission as Level, rows: best} : undefined
}

/** A positive level never resolves below default_permission; a veto is never lifted by it. */
export function floorPositive(level: Level, defaultPermission: Level): Level {
  return level === 'DENY' || level === 'NO_PERMISSIONS' ? level : maxLevel(level, defaultPermission)
}

/** The workspace-admin row `(workspace, *, MANAGE)`: MANAGE on everything in the workspace, DENY included. */
export function isWorkspaceAdminRow(row: RoleRow): boolean {
  return row.resourceType === 'workspace' && row.resourcePattern === WILDCARD && row.permission === 'MANAGE'
}

export type Decision =
  | {level: 'MANAGE'; source: 'workspace-admin'; rows: RoleRow[]}
  | {level: Level; source: 'default'}
  | {level: Level; source: 'rows'; rows: RoleRow[]; tier: {resourceId: string; resourceType: string}}

/**
 * A user's level on one resource from all of their rows (MLflow's resolution with workspaces
 * off): a workspace admin gets MANAGE; else the first tier in `tiers` (the resource itself, then
 * what it inherits from, e.g. a run's `run *` then its experiment) holding any matching row
 * decides, DENY included, so a deny is never rescued by a more permissive ancestor; else
 * default_permission. Platform admins are decided before this.
 */
export function decide(rows: readonly RoleRow[], tiers: ReadonlyArray<{resourceId: string; resourceType: string}>, defaultPermission: Level): Decision {
  let admin: RoleRow[] | undefined
  for (const row of rows) if (isWorkspaceAdminRow(row)) (admin ??= []).push(row)
  if (admin) return {level: 'MANAGE', rows: admin, source: 'workspace-admin'}
  for (const tier of tiers) {
    const fold = foldRows(rows, tier.resourceType, tier.resourceId)
    if (fold) return {level: floorPositive(fold.level, defaultPermission), rows: fold.rows, source: 'rows', tier}
  }
  return {level: defaultPermission, source: 'default'}
}

/** One row as the explanations word it: `own grant (experiment 5 READ)`, `role analysts (experiment * DENY)`. */
export function describeRoleRow(row: RoleRow): string {
  const where = isUserRoleName(row.roleName ?? '') ? 'own grant' : `role ${row.roleName ?? ''}`
  return `${where} (${row.resourceType} ${row.resourcePattern} ${row.permission})`
}

/** The hidden per-user role that holds a user's own grants (MLflow's synthetic role name). */
export function userRoleName(userId: number): string {
  return `__user_${userId}__`
}

/** The user whose own grants a role of this name holds, or undefined for any other role. */
export function userIdOfRoleName(name: string): number | undefined {
  const match = /^__user_(\d+)__$/.exec(name)
  return match ? Number(match[1]) : undefined
}

export function isUserRoleName(name: string): boolean {
  return userIdOfRoleName(name) !== undefined
}
