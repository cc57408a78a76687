/**
 * MLflow's permission levels and what each allows (docs/mlflow-auth-contract.md, "Permission
 * model"): READ < USE < EDIT < MANAGE; EDIT cannot delete, MANAGE can; NO_PERMISSIONS hides (the
 * classic per-resource endpoints and default_permission), DENY hides (the unified grants of 3.13+,
 * which refuse NO_PERMISSIONS). Shared by the CLI, which checks levels before sending, and serve.
 */

/** Levels of the classic endpoints and of default_permission. */
export const LEVELS = ['READ', 'USE', 'EDIT', 'MANAGE', 'NO_PERMISSIONS'] as const
/** What MLflow 3.13+'s unified grant endpoint accepts on a resource. */
export const GRANT_LEVELS = ['DENY', 'EDIT', 'MANAGE', 'READ', 'USE'] as const
/** Every level some MLflow version accepts, in the order people read them. */
export const PERMISSION_LEVELS = [...LEVELS, 'DENY'] as const
export type Level = (typeof PERMISSION_LEVELS)[number]

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

export function capabilities(level: Level): Capabilities {
  return CAPABILITIES[level]
}

/** MLflow's message, word for word: clients and tests match on it. */
export function invalidPermissionMessage(value: unknown): string {
  return `Invalid permission '${String(value)}'. Valid permissions are: (${LEVELS.map((level) => `'${level}'`).join(', ')})`
}
