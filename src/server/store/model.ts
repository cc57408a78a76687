/**
 * The store's in-memory model: users, roles, their rows and assignments (MLflow 3.14+'s model,
 * docs/mlflow-rbac.md) with the indexes every read uses, and the writes as MLflow's store makes
 * them (its error codes and messages). A user's own grants are the rows of their hidden per-user
 * role `__user_<id>__`, created and assigned with their first grant. Adapters keep one committed
 * model for readers and apply writes to a clone, which they make durable before adopting it: the
 * JSON file adapter (json-store.ts) does so; a database adapter would keep only what it caches here.
 */
import {DEFAULT_WORKSPACE, type RoleRow, rowProblem, userRoleName} from '../../mlflow/rbac.js'
import {type AssignmentRecord, type GrantRecord, type RolePermissionRecord, type RoleRecord, StoreError, type UserRecord} from './store.js'

/** Unambiguous whatever the strings hold: the length prefix says where the first ends. */
function pairKey(first: string, second: string): string {
  return `${first.length}:${first}${second}`
}

/** MLflow reserves the whole prefix, not only `__user_<digits>__`, for its per-user roles. */
const RESERVED_ROLE_PREFIX = '__user_'

export function isId(value: unknown): value is number {
  return typeof value === 'number' && Number.isSafeInteger(value) && value >= 1
}

// Runtime checks on what callers pass, so a write can never produce a state the file format refuses.

function checkString(value: unknown, name: string, nonEmpty = false): void {
  if (typeof value !== 'string' || (nonEmpty && value === '')) throw new TypeError(`${name} must be a ${nonEmpty ? 'non-empty ' : ''}string`)
}

function checkBoolean(value: unknown, name: string): void {
  if (typeof value !== 'boolean') throw new TypeError(`${name} must be true or false`)
}

function checkId(value: unknown, name: string): void {
  if (!isId(value)) throw new TypeError(`${name} must be a positive integer`)
}

function checkGrantKey(userId: unknown, resourceType: unknown, resourceId: unknown): void {
  checkId(userId, 'userId')
  checkString(resourceType, 'resourceType', true)
  checkString(resourceId, 'resourceId')
}

function checkDescription(value: unknown): void {
  if (value !== null) checkString(value, 'description')
}

function grantName(userId: number, resourceType: string, resourceId: string): string {
  return `Permission (user_id=${userId}, resource_type=${resourceType}, resource_id=${resourceId})`
}

function userNotFound(username: string): StoreError {
  return new StoreError('RESOURCE_DOES_NOT_EXIST', `User with username=${username} not found`)
}

function rejectReservedName(name: string): void {
  if (name.startsWith(RESERVED_ROLE_PREFIX)) {
    throw new StoreError(
      'INVALID_PARAMETER_VALUE',
      `Role name '${name}' uses the reserved '__user_' prefix, which is held for the per-user permission representation. Choose a different name.`,
    )
  }
}

/** The id counters: ids are never reused, so a deleted record's id never names a new one. */
export interface Counters {
  nextAssignmentId: number
  nextRoleId: number
  nextRowId: number
  nextUserId: number
}

const copyNested = <K, J, V>(outer: Map<K, Map<J, V>>) => new Map([...outer].map(([key, inner]) => [key, new Map(inner)]))

/**
 * One consistent state with its indexes. Records are frozen and replaced, never mutated, so a
 * writer works on a clone() while readers keep using the committed state.
 */
export class StoreModel {
  /** Whether a write changed anything since the model was read or written. */
  dirty = false
  /** The file format version the model was read from, when older than the current one. */
  upgradedFrom: number | undefined
  readonly counters: Counters
  /** userId → every row of every role they hold; filled on demand, emptied by any write. */
  private readonly rowsCache = new Map<number, readonly RoleRow[]>()

  constructor(
    counters: Partial<Counters> = {},
    readonly usersByName = new Map<string, UserRecord>(),
    readonly usersById = new Map<number, UserRecord>(),
    readonly roles = new Map<number, RoleRecord>(),
    /** pairKey(workspace, name) → role */
    readonly rolesByName = new Map<string, RoleRecord>(),
    readonly rows = new Map<number, RolePermissionRecord>(),
    /** roleId → pairKey(type, pattern) → row */
    readonly rowsByRole = new Map<number, Map<string, RolePermissionRecord>>(),
    readonly assignments = new Map<number, AssignmentRecord>(),
    /** userId → roleId → assignment */
    readonly assignmentsByUser = new Map<number, Map<number, AssignmentRecord>>(),
    /** roleId → userId → assignment */
    readonly assignmentsByRole = new Map<number, Map<number, AssignmentRecord>>(),
  ) {
    this.counters = {nextAssignmentId: 1, nextRoleId: 1, nextRowId: 1, nextUserId: 1, ...counters}
  }

  clone(): StoreModel {
    return new StoreModel(
      {...this.counters},
      new Map(this.usersByName),
      new Map(this.usersById),
      new Map(this.roles),
      new Map(this.rolesByName),
      new Map(this.rows),
      copyNested(this.rowsByRole),
      new Map(this.assignments),
      copyNested(this.assignmentsByUser),
      copyNested(this.assignmentsByRole),
    )
  }

  // --- reads ---

  /** By id, oldest first. */
  listUsers(): UserRecord[] {
    return [...this.usersById.values()].sort((a, b) => a.id - b.id)
  }

  /** The user's per-user role in the default workspace, if they ever had a grant. */
  userRole(userId: number): RoleRecord | undefined {
    return this.rolesByName.get(pairKey(DEFAULT_WORKSPACE, userRoleName(userId)))
  }

  getGrant(userId: number, resourceType: string, resourceId: string): GrantRecord | undefined {
    const role = this.userRole(userId)
    const row = role && this.rowsByRole.get(role.id)?.get(pairKey(resourceType, resourceId))
    return row && toGrant(row, userId)
  }

  listGrants(userId: number): GrantRecord[] {
    const role = this.userRole(userId)
    return role ? this.listRolePermissions(role.id).map((row) => toGrant(row, userId)) : []
  }

  getRole(roleId: number): RoleRecord | undefined {
    return this.roles.get(roleId)
  }

  getRoleByName(workspace: string, name: string): RoleRecord | undefined {
    return this.rolesByName.get(pairKey(workspace, name))
  }

  /** By id; only those of the given workspaces when given. */
  listRoles(workspaces?: readonly string[]): RoleRecord[] {
    const roles = [...this.roles.values()].sort((a, b) => a.id - b.id)
    return workspaces ? roles.filter((role) => workspaces.includes(role.workspace)) : roles
  }

  getRolePermission(rowId: number): RolePermissionRecord | undefined {
    return this.rows.get(rowId)
  }

  /** A role's rows by id; empty for an unknown role. */
  listRolePermissions(roleId: number): RolePermissionRecord[] {
    return [...(this.rowsByRole.get(roleId)?.values() ?? [])].sort((a, b) => a.id - b.id)
  }

  /** The roles assigned to a user, by role id. */
  listUserRoles(userId: number): RoleRecord[] {
    return [...(this.assignmentsByUser.get(userId)?.keys() ?? [])].sort((a, b) => a - b).map((roleId) => this.roles.get(roleId)!)
  }

  /** A role's assignments, by assignment id. */
  listRoleUsers(roleId: number): AssignmentRecord[] {
    return [...(this.assignmentsByRole.get(roleId)?.values() ?? [])].sort((a, b) => a.id - b.id)
  }

  /**
   * Every row of every role the user holds in the default workspace (the only one serve has), their
   * per-user role's included: what decisions fold. Built once per state and user, then shared.
   */
  rowsOf(userId: number): readonly RoleRow[] {
    let rows = this.rowsCache.get(userId)
    if (rows === undefined) {
      const collected: RoleRow[] = []
      for (const role of this.listUserRoles(userId)) {
        if (role.workspace !== DEFAULT_WORKSPACE) continue
        for (const row of this.listRolePermissions(role.id)) {
          collected.push(
            Object.freeze({
              permission: row.permission,
              resourcePattern: row.resourcePattern,
              resourceType: row.resourceType,
              roleId: role.id,
              roleName: role.name,
            }),
          )
        }
      }

      rows = Object.freeze(collected)
      this.rowsCache.set(userId, rows)
    }

    return rows
  }

  // --- index maintenance (no checks: the writes below and the file reader check first) ---

  private changed(): void {
    this.dirty = true
    this.rowsCache.clear()
  }

  putUser(user: UserRecord): void {
    const previous = this.usersById.get(user.id)
    if (previous && previous.username !== user.username) this.usersByName.delete(previous.username)
    this.usersById.set(user.id, user)
    this.usersByName.set(user.username, user)
    this.changed()
  }

  putRole(role: RoleRecord): void {
    const previous = this.roles.get(role.id)
    if (previous) this.rolesByName.delete(pairKey(previous.workspace, previous.name))
    this.roles.set(role.id, role)
    this.rolesByName.set(pairKey(role.workspace, role.name), role)
    this.changed()
  }

  putRow(row: RolePermissionRecord): void {
    const previous = this.rows.get(row.id)
    if (previous) this.rowsByRole.get(previous.roleId)?.delete(pairKey(previous.resourceType, previous.resourcePattern))
    let byKey = this.rowsByRole.get(row.roleId)
    if (!byKey) this.rowsByRole.set(row.roleId, (byKey = new Map()))
    byKey.set(pairKey(row.resourceType, row.resourcePattern), row)
    this.rows.set(row.id, row)
    this.changed()
  }

  putAssignment(assignment: AssignmentRecord): void {
    let byRole = this.assignmentsByUser.get(assignment.userId)
    if (!byRole) this.assignmentsByUser.set(assignment.userId, (byRole = new Map()))
    let byUser = this.assignmentsByRole.get(assignment.roleId)
    if (!byUser) this.assignmentsByRole.set(assignment.roleId, (byUser = new Map()))
    byRole.set(assignment.roleId, assignment)
    byUser.set(assignment.userId, assignment)
    this.assignments.set(assignment.id, assignment)
    this.changed()
  }

  private removeRow(row: RolePermissionRecord): void {
    const byKey = this.rowsByRole.get(row.roleId)
    byKey?.delete(pairKey(row.resourceType, row.resourcePattern))
    if (byKey?.size === 0) this.rowsByRole.delete(row.roleId)
    this.rows.delete(row.id)
    this.changed()
  }

  private removeAssignment(assignment: AssignmentRecord): void {
    const byRole = this.assignmentsByUser.get(assignment.userId)
    byRole?.delete(assignment.roleId)
    if (byRole?.size === 0) this.assignmentsByUser.delete(assignment.userId)
    const byUser = this.assignmentsByRole.get(assignment.roleId)
    byUser?.delete(assignment.userId)
    if (byUser?.size === 0) this.assignmentsByRole.delete(assignment.roleId)
    this.assignments.delete(assignment.id)
    this.changed()
  }

  /** A role goes with its rows and assignments. */
  private removeRole(role: RoleRecord): void {
    for (const row of this.listRolePermissions(role.id)) this.removeRow(row)
    for (const assignment of this.listRoleUsers(role.id)) this.removeAssignment(assignment)
    this.roles.delete(role.id)
    this.rolesByName.delete(pairKey(role.workspace, role.name))
    this.changed()
  }

  // --- users ---

  createUser(user: Omit<UserRecord, 'id'>): UserRecord {
    checkString(user.username, 'username')
    checkString(user.passwordHash, 'passwordHash')
    checkBoolean(user.isAdmin, 'isAdmin')
    if (this.usersByName.has(user.username)) throw new StoreError('RESOURCE_ALREADY_EXISTS', `User (username=${user.username}) already exists.`)
    const record: UserRecord = Object.freeze({id: this.counters.nextUserId++, isAdmin: user.isAdmin, passwordHash: user.passwordHash, username: user.username})
    this.putUser(record)
    return record
  }

  updateUser(username: string, patch: Partial<Pick<UserRecord, 'isAdmin' | 'passwordHash'>>): UserRecord {
    if (patch.passwordHash !== undefined) checkString(patch.passwordHash, 'passwordHash')
    if (patch.isAdmin !== undefined) checkBoolean(patch.isAdmin, 'isAdmin')
    const user = this.usersByName.get(username)
    if (!user) throw userNotFound(username)
    const updated: UserRecord = Object.freeze({
      id: user.id,
      isAdmin: patch.isAdmin ?? user.isAdmin,
      passwordHash: patch.passwordHash ?? user.passwordHash,
      username,
    })
    if (updated.isAdmin !== user.isAdmin || updated.passwordHash !== user.passwordHash) this.putUser(updated)
    return this.usersByName.get(username)!
  }

  /** As MLflow: the user's per-user roles go (with their rows), and so do all their assignments. */
  deleteUser(username: string): void {
    const user = this.usersByName.get(username)
    if (!user) throw userNotFound(username)
    const ownRole = userRoleName(user.id)
    for (const role of [...this.roles.values()]) if (role.name === ownRole) this.removeRole(role)
    for (const assignment of [...(this.assignmentsByUser.get(user.id)?.values() ?? [])]) this.removeAssignment(assignment)
    this.usersById.delete(user.id)
    this.usersByName.delete(user.username)
    this.changed()
  }

  // --- a user's own grants: rows of their per-user role ---

  /**
   * The user's per-user role, created and assigned when missing (as MLflow does on a first grant,
   * and again after the user was unassigned from it). Refused when another user holds a role of that
   * name: the grants would reach them too.
   */
  private ensureUserRole(userId: number): RoleRecord {
    const name = userRoleName(userId)
    let role = this.userRole(userId)
    if (role) {
      const other = [...(this.assignmentsByRole.get(role.id)?.keys() ?? [])].find((holder) => holder !== userId)
      if (other !== undefined) {
        throw new StoreError(
          'INVALID_PARAMETER_VALUE',
          `Role '${name}' in workspace '${DEFAULT_WORKSPACE}' collides with the reserved '__user_<id>__' synthetic namespace but is already assigned to user_id=${other}. Rename or delete the conflicting role before granting per-user permissions.`,
        )
      }
    } else {
      role = Object.freeze({description: null, id: this.counters.nextRoleId++, name, workspace: DEFAULT_WORKSPACE})
      this.putRole(role)
    }

    if (!this.assignmentsByUser.get(userId)?.has(role.id)) this.putAssignment(Object.freeze({id: this.counters.nextAssignmentId++, roleId: role.id, userId}))
    return role
  }

  private grantRow(userId: number, resourceType: string, resourceId: string): RolePermissionRecord | undefined {
    const role = this.userRole(userId)
    return role && this.rowsByRole.get(role.id)?.get(pairKey(resourceType, resourceId))
  }

  createGrant(grant: GrantRecord): GrantRecord {
    const {permission, resourceId, resourceType, userId} = grant
    checkGrantKey(userId, resourceType, resourceId)
    checkString(permission, 'permission', true)
    if (!this.usersById.has(userId)) throw new StoreError('RESOURCE_DOES_NOT_EXIST', `User with id=${userId} not found`)
    if (this.grantRow(userId, resourceType, resourceId))
      throw new StoreError('RESOURCE_ALREADY_EXISTS', `${grantName(userId, resourceType, resourceId)} already exists.`)
    const role = this.ensureUserRole(userId)
    this.putRow(Object.freeze({id: this.counters.nextRowId++, permission, resourcePattern: resourceId, resourceType, roleId: role.id}))
    return Object.freeze({permission, resourceId, resourceType, userId})
  }

  /** Changes the row in place: its id stays. */
  updateGrant(grant: GrantRecord): GrantRecord {
    const {permission, resourceId, resourceType, userId} = grant
    checkGrantKey(userId, resourceType, resourceId)
    checkString(permission, 'permission', true)
    const row = this.grantRow(userId, resourceType, resourceId)
    if (!row) throw new StoreError('RESOURCE_DOES_NOT_EXIST', `${grantName(userId, resourceType, resourceId)} not found`)
    if (row.permission !== permission) this.putRow(Object.freeze({...row, permission}))
    return Object.freeze({permission, resourceId, resourceType, userId})
  }

  /** The row goes; the per-user role stays, empty, as in MLflow. */
  deleteGrant(userId: number, resourceType: string, resourceId: string): void {
    checkGrantKey(userId, resourceType, resourceId)
    const row = this.grantRow(userId, resourceType, resourceId)
    if (!row) throw new StoreError('RESOURCE_DOES_NOT_EXIST', `${grantName(userId, resourceType, resourceId)} not found`)
    this.removeRow(row)
  }

  /** The rows of per-user roles on one resource. Rows of roles an admin made are policy by name: never touched. */
  private userRoleRowsOn(resourceType: string, resourceId: string): RolePermissionRecord[] {
    const key = pairKey(resourceType, resourceId)
    const found: RolePermissionRecord[] = []
    for (const role of this.roles.values()) {
      if (role.workspace !== DEFAULT_WORKSPACE || perUserRoleOwner(role) === undefined) continue
      const row = this.rowsByRole.get(role.id)?.get(key)
      if (row) found.push(row)
    }

    return found
  }

  deleteGrantsForResource(resourceType: string, resourceId: string): number {
    checkString(resourceType, 'resourceType', true)
    checkString(resourceId, 'resourceId')
    const rows = this.userRoleRowsOn(resourceType, resourceId)
    for (const row of rows) this.removeRow(row)
    return rows.length
  }

  /**
   * Afterwards the per-user rows on `toId` are exactly those that were on `fromId`: one left on
   * `toId` (from a deleted resource of that name) is dropped rather than kept, so a rename never
   * gives anyone access they did not have to the renamed resource. Rows keep their ids.
   */
  renameResource(resourceType: string, fromId: string, toId: string): number {
    checkString(resourceType, 'resourceType', true)
    checkString(fromId, 'fromId')
    checkString(toId, 'toId')
    const moving = this.userRoleRowsOn(resourceType, fromId)
    if (fromId === toId) return moving.length
    for (const stale of this.userRoleRowsOn(resourceType, toId)) this.removeRow(stale)
    for (const row of moving) this.putRow(Object.freeze({...row, resourcePattern: toId}))
    return moving.length
  }

  // --- roles ---

  /** Any number: one that is no id (0, -1) is simply not found, as in MLflow. */
  private requireRole(roleId: number): RoleRecord {
    const role = this.roles.get(roleId)
    if (!role) throw new StoreError('RESOURCE_DOES_NOT_EXIST', `Role with id=${roleId} not found`)
    return role
  }

  private requireRow(rowId: number): RolePermissionRecord {
    const row = this.rows.get(rowId)
    if (!row) throw new StoreError('RESOURCE_DOES_NOT_EXIST', `Role permission with id=${rowId} not found`)
    return row
  }

  createRole(role: Omit<RoleRecord, 'id'>): RoleRecord {
    const {description, name, workspace} = role
    checkString(name, 'name', true)
    checkString(workspace, 'workspace', true)
    checkDescription(description)
    rejectReservedName(name)
    if (this.getRoleByName(workspace, name)) throw new StoreError('RESOURCE_ALREADY_EXISTS', `Role (name=${name}, workspace=${workspace}) already exists.`)
    const record: RoleRecord = Object.freeze({description, id: this.counters.nextRoleId++, name, workspace})
    this.putRole(record)
    return record
  }

  /** Renames and re-describes; a field left undefined stays. */
  updateRole(roleId: number, patch: {description?: string; name?: string}): RoleRecord {
    if (patch.name !== undefined) {
      checkString(patch.name, 'name', true)
      rejectReservedName(patch.name)
    }

    if (patch.description !== undefined) checkString(patch.description, 'description')
    const role = this.requireRole(roleId)
    if (patch.name !== undefined && patch.name !== role.name && this.getRoleByName(role.workspace, patch.name))
      throw new StoreError('RESOURCE_ALREADY_EXISTS', `Role with name=${patch.name} already exists in workspace=${role.workspace}`)
    const updated: RoleRecord = Object.freeze({...role, description: patch.description ?? role.description, name: patch.name ?? role.name})
    if (updated.name !== role.name || updated.description !== role.description) this.putRole(updated)
    return this.roles.get(roleId)!
  }

  deleteRole(roleId: number): void {
    this.removeRole(this.requireRole(roleId))
  }

  /** A row on a role, checked as MLflow checks it (level for the type, then the pattern, then the role). */
  addRolePermission(row: Omit<RolePermissionRecord, 'id'>): RolePermissionRecord {
    const {permission, resourcePattern, resourceType, roleId} = row
    const problem = rowProblem(resourceType, resourcePattern, permission)
    if (problem) throw new StoreError('INVALID_PARAMETER_VALUE', problem)
    // MLflow would store an empty pattern, which names nothing.
    if (resourcePattern === '') throw new StoreError('INVALID_PARAMETER_VALUE', 'resource_pattern cannot be empty.')
    this.requireRole(roleId)
    if (this.rowsByRole.get(roleId)?.has(pairKey(resourceType, resourcePattern))) {
      throw new StoreError(
        'RESOURCE_ALREADY_EXISTS',
        `Role permission (role_id=${roleId}, resource_type=${resourceType}, resource_pattern=${resourcePattern}) already exists.`,
      )
    }

    const record: RolePermissionRecord = Object.freeze({id: this.counters.nextRowId++, permission, resourcePattern, resourceType, roleId})
    this.putRow(record)
    return record
  }

  updateRolePermission(rowId: number, permission: string): RolePermissionRecord {
    const row = this.requireRow(rowId)
    // The level is checked against the row's own type; its pattern was accepted when it was added.
    const problem = rowProblem(row.resourceType, '*', permission)
    if (problem) throw new StoreError('INVALID_PARAMETER_VALUE', problem)
    if (row.permission !== permission) this.putRow(Object.freeze({...row, permission}))
    return this.rows.get(rowId)!
  }

  removeRolePermission(rowId: number): void {
    this.removeRow(this.requireRow(rowId))
  }

  // --- assignments ---

  assignRole(userId: number, roleId: number): AssignmentRecord {
    checkId(userId, 'userId')
    if (!this.usersById.has(userId)) throw new StoreError('RESOURCE_DOES_NOT_EXIST', `User with id=${userId} not found`)
    const role = this.requireRole(roleId)
    if (this.assignmentsByUser.get(userId)?.has(roleId))
      throw new StoreError('RESOURCE_ALREADY_EXISTS', `User role assignment (user_id=${userId}, role_id=${roleId}) already exists`)
    // Stricter than MLflow, which would let another user share this user's own grants.
    const owner = perUserRoleOwner(role)
    if (owner !== undefined && owner !== userId) {
      throw new StoreError(
        'INVALID_PARAMETER_VALUE',
        `Role '${role.name}' holds the own grants of user_id=${owner} and cannot be assigned to another user. Create a role of your own and add rows to it instead.`,
      )
    }

    const record: AssignmentRecord = Object.freeze({id: this.counters.nextAssignmentId++, roleId, userId})
    this.putAssignment(record)
    return record
  }

  unassignRole(userId: number, roleId: number): void {
    checkId(userId, 'userId')
    const assignment = this.assignmentsByUser.get(userId)?.get(roleId)
    if (!assignment) throw new StoreError('RESOURCE_DOES_NOT_EXIST', `User role assignment (user_id=${userId}, role_id=${roleId}) not found`)
    this.removeAssignment(assignment)
  }
}

function toGrant(row: RolePermissionRecord, userId: number): GrantRecord {
  return Object.freeze({permission: row.permission, resourceId: row.resourcePattern, resourceType: row.resourceType, userId})
}

/** The user whose own grants a role holds (`__user_<id>__`), or undefined for a role an admin made. */
export function perUserRoleOwner(role: RoleRecord): number | undefined {
  const match = /^__user_(\d+)__$/.exec(role.name)
  return match ? Number(match[1]) : undefined
}
