/**
 * Roles for a test's user, made through MLflow's role API (`/api/3.0/mlflow/roles/…`), so the same
 * helper serves MLflow's own basic-auth app and serve, and serve's decisions are tested on what
 * its store really keeps.
 */

/** One row of a role, as the role API takes it: [resource_type, resource_pattern, permission]. */
export type RowSpec = [resourceType: string, resourcePattern: string, permission: string]

/** One call of the auth API as an admin: the answer's JSON, or a throw on anything but 200. */
export type AdminCall = (method: string, path: string, body: Record<string, unknown>) => Promise<Record<string, unknown>>

let counter = 0

/**
 * Gives the user one role per entry of `roles`, holding those rows, and returns what takes them
 * away again (deleting a role deletes its rows and assignments).
 */
export async function giveRoles(admin: AdminCall, username: string, roles: readonly RowSpec[][]): Promise<() => Promise<void>> {
  const ids: number[] = []
  const remove = async () => {
    for (const id of ids.splice(0)) await admin('DELETE', '/api/3.0/mlflow/roles/delete', {role_id: id})
  }

  try {
    for (const rows of roles) {
      counter++
      const name = `test-role-${process.pid}-${counter}-${Date.now().toString(36)}`
      const {id} = (await admin('POST', '/api/3.0/mlflow/roles/create', {name, workspace: 'default'})).role as {id: number}
      ids.push(id)
      for (const [resource_type, resource_pattern, permission] of rows)
        await admin('POST', '/api/3.0/mlflow/roles/permissions/add', {permission, resource_pattern, resource_type, role_id: id})
      await admin('POST', '/api/3.0/mlflow/roles/assign', {role_id: id, username})
    }
  } catch (error) {
    await remove()
    throw error
  }

  return remove
}

/** `body` run while `username` holds one role with these rows; the role is removed afterwards, whatever happens. */
export async function withRole(admin: AdminCall, username: string, rows: RowSpec[], body: () => Promise<void>): Promise<void> {
  const remove = await giveRoles(admin, username, [rows])
  try {
    await body()
  } finally {
    await remove()
  }
}
