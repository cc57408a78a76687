/**
 * What an operation requires of a user's role rows, and whether the rows meet it: MLflow 3.17's
 * requirement model (docs/mlflow-rbac.md, "Requirements"), as pure functions. A route states a
 * list of requirements; every one must be met. A requirement names an action on a key
 * (`run *`, `experiment 7`) and the keys it falls back to, in order, when the user holds no row
 * on its own key; the first key holding any matching row decides, so a narrower row overrides an
 * inherited one both ways (a `run *` READ limits an experiment EDIT; a `run *` DENY vetoes an
 * experiment MANAGE).
 */
import {capabilities, type Level} from './permissions.js'
import {floorPositive, foldRows, isWorkspaceAdminRow, type RoleRow} from './rbac.js'

/** `not_denied`: a veto only, met by anything but a DENY (MLflow's creates and read-alongs). */
export type Action = 'delete' | 'manage' | 'not_denied' | 'read' | 'update' | 'use'

export interface Key {
  resourceId: string
  resourceType: string
}

/** A fallback rung: a key inheriting the requirement's action, or a key with its own. */
export type Rung = Key & {action?: Action}

export interface Requirement extends Key {
  action: Action
  /** Keys consulted, in order, only while no earlier key holds a row. */
  fallback?: readonly Rung[]
}

export interface Governing {
  action: Action
  /** The key whose rows decided; undefined when none held a row (the default decided). */
  key?: Key
  level: Level
}

/**
 * The level that governs a requirement and the action that level must meet: the first rung
 * holding a matching row, floored at the default when positive; with no row anywhere, the
 * default and the last rung's action (what a user without grants has always needed).
 */
export function governing(rows: readonly RoleRow[], requirement: Requirement, defaultPermission: Level): Governing {
  const rungs: Array<{action: Action; key: Key}> = [
    {action: requirement.action, key: requirement},
    ...(requirement.fallback ?? []).map((rung) => ({action: rung.action ?? requirement.action, key: rung})),
  ]
  if (rows.some((row) => isWorkspaceAdminRow(row))) return {action: requirement.action, key: requirement, level: 'MANAGE'}
  for (const {action, key} of rungs) {
    const fold = foldRows(rows, key.resourceType, key.resourceId)
    if (fold) return {action, key, level: floorPositive(fold.level, defaultPermission)}
  }

  return {action: rungs.at(-1)!.action, level: defaultPermission}
}

export function actionMet(action: Action, level: Level): boolean {
  if (action === 'not_denied') return level !== 'DENY'
  const can = capabilities(level)
  return {delete: can.canDelete, manage: can.canManage, read: can.canRead, update: can.canUpdate, use: can.canUse}[action]
}

export function requirementMet(rows: readonly RoleRow[], requirement: Requirement, defaultPermission: Level): boolean {
  const {action, level} = governing(rows, requirement, defaultPermission)
  return actionMet(action, level)
}

/** Whether every requirement is met. */
export function authorize(rows: readonly RoleRow[], requirements: readonly Requirement[], defaultPermission: Level): boolean {
  return requirements.every((requirement) => requirementMet(rows, requirement, defaultPermission))
}

/** The key of a sub-resource tier: wildcard rows only. */
export function tier(resourceType: string): Key {
  return {resourceId: '*', resourceType}
}

/**
 * What a listing shows (MLflow's read predicate for searches): READ on the row's own key, falling
 * back to the workspace slot, so a `(workspace, *, USE)` row lists what its holder still cannot
 * open one by one.
 */
export function listable(rows: readonly RoleRow[], resourceType: string, resourceId: string, defaultPermission: Level): boolean {
  return requirementMet(rows, {action: 'read', fallback: [tier('workspace')], resourceId, resourceType}, defaultPermission)
}
