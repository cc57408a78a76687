/**
 * A caller's level on a resource, from the store: their own grant, else default_permission
 * (docs/mlflow-auth-contract.md, "Permission model"). An explicit grant wins over the default both
 * ways. Admins are decided elsewhere.
 */
import {isGrantLevel, isPermissionLevel, type Level} from '../mlflow/permissions.js'
import {type Store, type UserRecord} from './store/store.js'

export function effectiveLevel(store: Store, user: UserRecord, resourceType: string, resourceId: string, defaultPermission: string): Level {
  const grant = store.getGrant(user.id, resourceType, resourceId)
  const level = grant?.permission ?? defaultPermission
  return isPermissionLevel(level) || isGrantLevel(level) ? level : 'NO_PERMISSIONS'
}
