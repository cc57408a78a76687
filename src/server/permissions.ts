/**
 * MLflow's permission levels (spec §5): READ < USE < EDIT < MANAGE; EDIT cannot delete, MANAGE can;
 * NO_PERMISSIONS hides. Decisions come from the store alone.
 */
import {type Store, type UserRecord} from './store/store.js'

export const LEVELS = ['READ', 'USE', 'EDIT', 'MANAGE', 'NO_PERMISSIONS'] as const
export type Level = (typeof LEVELS)[number]

export interface Capabilities {
  canDelete: boolean
  canManage: boolean
  canRead: boolean
  canUpdate: boolean
  canUse: boolean
}

const CAPABILITIES: Record<Level, Capabilities> = {
  EDIT: {canDelete: false, canManage: false, canRead: true, canUpdate: true, canUse: true},
  MANAGE: {canDelete: true, canManage: true, canRead: true, canUpdate: true, canUse: true},
  NO_PERMISSIONS: {canDelete: false, canManage: false, canRead: false, canUpdate: false, canUse: false},
  READ: {canDelete: false, canManage: false, canRead: true, canUpdate: false, canUse: false},
  USE: {canDelete: false, canManage: false, canRead: true, canUpdate: false, canUse: true},
}

export function isPermissionLevel(value: unknown): value is Level {
  return typeof value === 'string' && (LEVELS as readonly string[]).includes(value)
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
  return isPermissionLevel(level) ? level : 'NO_PERMISSIONS'
}
