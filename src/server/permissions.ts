/**
 * A caller's level on one resource, from every row of every role they hold (docs/mlflow-rbac.md,
 * "Deciding"): a workspace-admin row gives MANAGE; else the rows matching the resource (its id or
 * `*`) fold, a DENY among them winning, else the highest, floored at default_permission; with no
 * row, default_permission. Admins are decided elsewhere; routes that reach sub-resource tiers
 * decide with requirements (authz/access.ts).
 */
import {isGrantLevel, isPermissionLevel, type Level} from '../mlflow/permissions.js'
import {decide} from '../mlflow/rbac.js'
import {type Store, type UserRecord} from './store/store.js'

export function effectiveLevel(store: Store, user: UserRecord, resourceType: string, resourceId: string, defaultPermission: string): Level {
  const fallback = isPermissionLevel(defaultPermission) || isGrantLevel(defaultPermission) ? defaultPermission : 'NO_PERMISSIONS'
  return decide(store.rowsOf(user.id), [{resourceId, resourceType}], fallback).level
}
