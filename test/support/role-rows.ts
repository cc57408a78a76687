/**
 * Rows of roles beyond a user's own grants, for tests of serve's decisions before its store keeps
 * roles of its own: every store opened in this process lists, for a user, their grants as rows
 * (as it does) plus the rows given here, as if the user held further roles.
 */
import {after} from 'node:test'

import {type RoleRow} from '../../src/mlflow/rbac.js'
import {JsonFileStore} from '../../src/server/store/json-store.js'

export type RoleRows = Map<number, RoleRow[]>

/** Installs the extra rows for this test file (undone after it); returns the map to fill by user id. */
export function extraRoleRows(): RoleRows {
  const extra: RoleRows = new Map()
  const original = Object.getOwnPropertyDescriptor(JsonFileStore.prototype, 'rowsOf')!
  Object.defineProperty(JsonFileStore.prototype, 'rowsOf', {
    ...original,
    value(this: JsonFileStore, userId: number): readonly RoleRow[] {
      return [...(original.value as (id: number) => readonly RoleRow[]).call(this, userId), ...(extra.get(userId) ?? [])]
    },
  })
  after(() => {
    Object.defineProperty(JsonFileStore.prototype, 'rowsOf', original)
  })
  return extra
}

/** A row of a role named `roleName` (not a user's own). */
export function roleRow(resourceType: string, resourcePattern: string, permission: string, roleName = 'team'): RoleRow {
  return {permission, resourcePattern, resourceType, roleName}
}
