/**
 * MLflow's permission levels (docs/mlflow-auth-contract.md, "Permission model"):
 * READ < USE < EDIT < MANAGE; EDIT cannot delete, MANAGE can; NO_PERMISSIONS hides (the classic
 * per-resource endpoints), DENY hides (the unified grants of 3.13+, which refuse NO_PERMISSIONS).
 * An explicit grant wins over default_permission both ways. Decisions come from the store alone.
 */
import {type Store, type UserRecord} from './store/store.js'

export const LEVELS = ['READ', 'USE', 'EDIT', 'MANAGE', 'NO_PERMISSIONS'] as const
/** What MLflow 3.13+'s unified grant endpoint accepts on a resource. */
export const GRANT_LEVELS = ['DENY', 'EDIT', 'MANAGE', 'READ', 'USE'] as const
export type Level = (typeof LEVELS)[number] | 'DENY'

export interface Capabilities {
  canDelete: boolean
  canManage: boolean
  canRead: boolean
  canUpdate: boolean
  canUse: boolean
}

const NOTHING: Capabilities = {canDelete: false, canManage: false, canRead: false, canUpdate: false, canUse: false}
const CAPABILITIES: Record<Level, Capabilities> = {
  DENY: NOTHING,
  EDIT: {canDelete: false, canManage: false, canRead: true, canUpdate: true, canUse: true},
  MANAGE: {canDelete: true, canManage: true, canRead: true, canUpdate: true, canUse: true},
  NO_PERMISSIONS: NOTHING,
  READ: {canDelete: false, canManage: false, canRead: true, canUpdate: false, canUse: false},
  USE: {canDelete: false, canManage: false, canRead: true, canUpdate: false, canUse: true},
}

/** A level of the classic endpoints and of default_permission. */
export function isPermissionLevel(value: unknown): value is Level {
  return typeof value === 'string' && (LEVELS as readonly string[]).includes(value)
}

/** A level the unified grant endpoint accepts. */
export function isGrantLevel(value: unknown): value is Level {
  return typeof value === 'string' && (GRANT_LEVELS as readonly string[]).includes(value)
}

/** MLflow 3.17's message for a level the unified grant endpoint refuses. */
export function invalidGrantLevelMessage(value: unknown, resourceType: string): string {
  return `Invalid permission '${String(value)}' for resource_type='${resourceType}'. Resource-level grants accept only: (${GRANT_LEVELS.map((level) => `'${level}'`).join(', ')}).`
}

export function capabilities(level: Level): Capabilities {
  return CAPABILITIES[level]
}

/** MLflow's message, word for word: clients and tests match on it. */
export function invalidPermissionMessage(value: unknown): string {
  return `Invalid permission '${String(value)}'. Valid permissions are: (${LEVELS.map((level) => `'${level}'`).join(', ')})`
}

/** Resource types serve keeps grants for (MLflow's unified-grant names). */
export const RESOURCE_TYPES = ['experiment', 'registered_model', 'scorer'] as const

/** Python's urllib.parse.quote(name, safe=''): MLflow's encoding of a scorer in its resource id. */
export function scorerResourceId(experimentId: string, scorerName: string): string {
  const quoted = encodeURIComponent(scorerName).replaceAll(/[!'()*]/g, (char) => `%${char.charCodeAt(0).toString(16).toUpperCase()}`)
  return `${experimentId}/${quoted}`
}

/** The caller's level on a resource: their own grant, else the configured default. Admins are decided elsewhere. */
export function effectiveLevel(store: Store, user: UserRecord, resourceType: string, resourceId: string, defaultPermission: string): Level {
  const grant = store.getGrant(user.id, resourceType, resourceId)
  const level = grant?.permission ?? defaultPermission
  return isPermissionLevel(level) || isGrantLevel(level) ? level : 'NO_PERMISSIONS'
}
