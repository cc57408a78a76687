/**
 * The store's in-memory model: users, roles, their rows and assignments (MLflow 3.14+'s model,
 * docs/mlflow-rbac.md) with the indexes every read uses, and the writes as MLflow's store makes
 * them (its error codes and messages). A user's own grants are the rows of their hidden per-user
 * role `__user_<id>__`, created and assigned with their first grant.
 *
 * Every change goes through one primitive, apply(op): a record put or deleted. Adapters first plan()
 * a batch of writes: it runs them, notes the ops they made, and undoes them at once, so readers keep
 * seeing the committed state; once the ops are durable, commit() applies them in place. A write
 * costs what it changes, never a copy of the indexes. The JSON file adapter (json-store.ts) keeps
 * the ops in its journal; a database adapter would keep only what it caches here.
 */
import {DEFAULT_WORKSPACE, type RoleRow, rowProblem, userIdOfRoleName, userRoleName} from '../../mlflow/rbac.js'
import {contentProblem} from './content.js'
import {
  type AssignmentRecord,
  type GrantRecord,
  type JobCreatorRecord,
  type RolePermissionRecord,
  type RoleRecord,
  StoreError,
  type StoreContent,
  isDigest,
  isStoreTime,
  type TokenRecord,
  type UserRecord,
} from './store.js'

/** `list` sorted by `id`, in place; sorted only when it is not already (Maps keep insertion order, mostly id order). */
function inOrder<T>(list: T[], id: (item: T) => number): T[] {
  for (let i = 1; i < list.length; i++) if (id(list[i - 1]) > id(list[i])) return list.sort((a, b) => id(a) - id(b))
  return list
}

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
  nextJobCreatorId: number
  nextRoleId: number
  nextRowId: number
  nextTokenId: number
  nextUserId: number
}

/** The tables of the model, named as the file format names them. */
export type Table = 'assignments' | 'job_creators' | 'role_permissions' | 'roles' | 'tokens' | 'users'

/** One change: a record created or replaced (by id), or deleted. What a journal line holds. */
export type Op =
  | {op: 'delete'; table: Table; id: number}
  | {op: 'put'; record: AssignmentRecord; table: 'assignments'}
  | {op: 'put'; record: JobCreatorRecord; table: 'job_creators'}
  | {op: 'put'; record: RolePermissionRecord; table: 'role_permissions'}
  | {op: 'put'; record: RoleRecord; table: 'roles'}
  | {op: 'put'; record: TokenRecord; table: 'tokens'}
  | {op: 'put'; record: UserRecord; table: 'users'}

/** What a batch of writes would change: its ops and the counters after it, and each write's outcome. */
export interface Plan {
  counters: Counters
  ops: Op[]
  outcomes: ({error: unknown; ok: false} | {ok: true; value: unknown})[]
}

interface Savepoint {
  counters: Counters
  ops: number
  undo: number
}

/**
 * One consistent state with its indexes. Records are frozen and replaced, never mutated, so a
 * reader holding one never sees it change.
 */
export class StoreModel {
  /** The file format version the model was read from, when older than the current one. */
  upgradedFrom: number | undefined
  counters: Counters
  /** userId → every row of every role they hold; filled on demand, forgotten for whom a change concerns. */
  private readonly rowsCache = new Map<number, readonly RoleRow[]>()
  /** While recording: the ops applied, and their inverses to undo them. */
  private recording: {ops: Op[]; undo: Op[]} | undefined

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
    readonly tokens = new Map<number, TokenRecord>(),
    /** digest → token: the lookup of every Bearer request. */
    readonly tokensByDigest = new Map<string, TokenRecord>(),
    /** userId → name → token */
    readonly tokensByUser = new Map<number, Map<string, TokenRecord>>(),
    readonly jobCreators = new Map<number, JobCreatorRecord>(),
    /** MLflow's job id → its record: the lookup of every request about one job. */
    readonly jobCreatorsByJob = new Map<string, JobCreatorRecord>(),
    /** userId → the user's job records, so deleting a user finds them. */
    readonly jobCreatorsByUser = new Map<number, Map<number, JobCreatorRecord>>(),
  ) {
    this.counters = {nextAssignmentId: 1, nextJobCreatorId: 1, nextRoleId: 1, nextRowId: 1, nextTokenId: 1, nextUserId: 1, ...counters}
  }

  // --- batches ---

  /**
   * Runs the writes in order, each seeing the ones before; a write that throws leaves no trace.
   * Then undoes them all: the model is as before, and the plan says what to make durable and then
   * commit(). Synchronous, so no reader ever sees a planned state.
   */
  plan(writes: readonly ((model: StoreModel) => unknown)[]): Plan {
    const start = this.begin()
    const outcomes: Plan['outcomes'] = []
    for (const write of writes) {
      const savepoint = this.savepoint()
      try {
        outcomes.push({ok: true, value: write(this)})
      } catch (error) {
        this.rollbackTo(savepoint)
        outcomes.push({error, ok: false})
      }
    }

    const plan: Plan = {counters: {...this.counters}, ops: [...this.recording!.ops], outcomes}
    this.rollbackTo(start)
    this.recording = undefined
    return plan
  }

  /** Applies ops a plan (or a journal line) made, and its counters. */
  commit(ops: readonly Op[], counters: Counters): void {
    for (const op of ops) this.apply(op)
    this.counters = {...counters}
  }

  /**
   * Applies a change read back from a journal, each op checked by `check` against the state before
   * it; when any is refused, none stays applied and the error is thrown.
   */
  replay(ops: readonly Op[], counters: Counters, check: (op: Op, model: StoreModel) => void): void {
    const start = this.begin()
    try {
      for (const op of ops) {
        check(op, this)
        this.apply(op)
      }

      this.counters = {...counters}
    } catch (error) {
      this.rollbackTo(start)
      throw error
    } finally {
      this.recording = undefined
    }
  }

  private begin(): Savepoint {
    if (this.recording) throw new Error('a batch is already being planned')
    this.recording = {ops: [], undo: []}
    return this.savepoint()
  }

  private savepoint(): Savepoint {
    return {counters: {...this.counters}, ops: this.recording!.ops.length, undo: this.recording!.undo.length}
  }

  private rollbackTo(savepoint: Savepoint): void {
    const recording = this.recording!
    const undo = recording.undo.splice(savepoint.undo).reverse()
    recording.ops.length = savepoint.ops
    this.recording = undefined
    for (const op of undo) this.apply(op)
    this.recording = recording
    this.counters = {...savepoint.counters}
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

  /** A role's row on one resource type and pattern (unique per role). */
  rowByKey(roleId: number, resourceType: string, resourcePattern: string): RolePermissionRecord | undefined {
    return this.rowsByRole.get(roleId)?.get(pairKey(resourceType, resourcePattern))
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
      // Roles, then each role's rows, by id: the order listUserRoles and listRolePermissions give,
      // without their copies (a user's first decision pays for this).
      for (const roleId of inOrder([...(this.assignmentsByUser.get(userId)?.keys() ?? [])], (id) => id)) {
        const role = this.roles.get(roleId)!
        if (role.workspace !== DEFAULT_WORKSPACE) continue
        const byKey = this.rowsByRole.get(roleId)
        if (!byKey) continue
        for (const row of inOrder([...byKey.values()], (record) => record.id)) {
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

  // --- the one primitive (no checks: the writes below and the file readers check first) ---

  /** Forgets the cached rows of everyone holding the role: a change to it changes theirs. */
  private forgetHolders(roleId: number): void {
    for (const userId of this.assignmentsByRole.get(roleId)?.keys() ?? []) this.rowsCache.delete(userId)
  }

  /** Applies one change to the records and every index; while recording, notes it and its inverse. */
  apply(op: Op): void {
    const id = op.op === 'put' ? op.record.id : op.id
    const previous = this.record(op.table, id)
    if (op.op === 'delete' && !previous) throw new Error(`no record ${op.id} in ${op.table}`)
    // The inverse only while recording: a load applies every record of the store through here.
    if (this.recording) {
      this.recording.ops.push(op)
      this.recording.undo.push(previous ? ({op: 'put', record: previous, table: op.table} as Op) : {id, op: 'delete', table: op.table})
    }

    if (previous) this.unindex(op.table, previous)
    if (op.op === 'put') this.index(op)
  }

  private record(table: Table, id: number): AnyRecord | undefined {
    if (table === 'users') return this.usersById.get(id)
    if (table === 'tokens') return this.tokens.get(id)
    if (table === 'job_creators') return this.jobCreators.get(id)
    if (table === 'roles') return this.roles.get(id)
    if (table === 'role_permissions') return this.rows.get(id)
    return this.assignments.get(id)
  }

  private index(op: Op & {op: 'put'}): void {
    switch (op.table) {
      case 'users': {
        this.usersById.set(op.record.id, op.record)
        this.usersByName.set(op.record.username, op.record)
        break
      }

      case 'roles': {
        this.roles.set(op.record.id, op.record)
        this.rolesByName.set(pairKey(op.record.workspace, op.record.name), op.record)
        this.forgetHolders(op.record.id)
        break
      }

      case 'role_permissions': {
        const row = op.record
        let byKey = this.rowsByRole.get(row.roleId)
        if (!byKey) this.rowsByRole.set(row.roleId, (byKey = new Map()))
        byKey.set(pairKey(row.resourceType, row.resourcePattern), row)
        this.rows.set(row.id, row)
        this.forgetHolders(row.roleId)
        break
      }

      case 'assignments': {
        const assignment = op.record
        let byRole = this.assignmentsByUser.get(assignment.userId)
        if (!byRole) this.assignmentsByUser.set(assignment.userId, (byRole = new Map()))
        let byUser = this.assignmentsByRole.get(assignment.roleId)
        if (!byUser) this.assignmentsByRole.set(assignment.roleId, (byUser = new Map()))
        byRole.set(assignment.roleId, assignment)
        byUser.set(assignment.userId, assignment)
        this.assignments.set(assignment.id, assignment)
        this.rowsCache.delete(assignment.userId)
        break
      }

      case 'tokens': {
        const token = op.record
        let byName = this.tokensByUser.get(token.userId)
        if (!byName) this.tokensByUser.set(token.userId, (byName = new Map()))
        byName.set(token.name, token)
        this.tokensByDigest.set(token.digest, token)
        this.tokens.set(token.id, token)
        break
      }

      case 'job_creators': {
        const job = op.record
        let byUser = this.jobCreatorsByUser.get(job.userId)
        if (!byUser) this.jobCreatorsByUser.set(job.userId, (byUser = new Map()))
        byUser.set(job.id, job)
        this.jobCreatorsByJob.set(job.jobId, job)
        this.jobCreators.set(job.id, job)
        break
      }
    }
  }

  private unindex(table: Table, record: AnyRecord): void {
    switch (table) {
      case 'users': {
        const user = record as UserRecord
        this.usersById.delete(user.id)
        if (this.usersByName.get(user.username) === user) this.usersByName.delete(user.username)
        this.rowsCache.delete(user.id)
        break
      }

      case 'roles': {
        const role = record as RoleRecord
        this.roles.delete(role.id)
        if (this.rolesByName.get(pairKey(role.workspace, role.name)) === role) this.rolesByName.delete(pairKey(role.workspace, role.name))
        this.forgetHolders(role.id)
        break
      }

      case 'role_permissions': {
        const row = record as RolePermissionRecord
        const byKey = this.rowsByRole.get(row.roleId)
        const key = pairKey(row.resourceType, row.resourcePattern)
        if (byKey?.get(key) === row) byKey.delete(key)
        if (byKey?.size === 0) this.rowsByRole.delete(row.roleId)
        this.rows.delete(row.id)
        this.forgetHolders(row.roleId)
        break
      }

      case 'assignments': {
        const assignment = record as AssignmentRecord
        const byRole = this.assignmentsByUser.get(assignment.userId)
        if (byRole?.get(assignment.roleId) === assignment) byRole.delete(assignment.roleId)
        if (byRole?.size === 0) this.assignmentsByUser.delete(assignment.userId)
        const byUser = this.assignmentsByRole.get(assignment.roleId)
        if (byUser?.get(assignment.userId) === assignment) byUser.delete(assignment.userId)
        if (byUser?.size === 0) this.assignmentsByRole.delete(assignment.roleId)
        this.assignments.delete(assignment.id)
        this.rowsCache.delete(assignment.userId)
        break
      }

      case 'tokens': {
        const token = record as TokenRecord
        const byName = this.tokensByUser.get(token.userId)
        if (byName?.get(token.name) === token) byName.delete(token.name)
        if (byName?.size === 0) this.tokensByUser.delete(token.userId)
        if (this.tokensByDigest.get(token.digest) === token) this.tokensByDigest.delete(token.digest)
        this.tokens.delete(token.id)
        break
      }

      case 'job_creators': {
        const job = record as JobCreatorRecord
        const byUser = this.jobCreatorsByUser.get(job.userId)
        byUser?.delete(job.id)
        if (byUser?.size === 0) this.jobCreatorsByUser.delete(job.userId)
        if (this.jobCreatorsByJob.get(job.jobId) === job) this.jobCreatorsByJob.delete(job.jobId)
        this.jobCreators.delete(job.id)
        break
      }
    }
  }

  putUser(user: UserRecord): void {
    this.apply({op: 'put', record: user, table: 'users'})
  }

  putRole(role: RoleRecord): void {
    this.apply({op: 'put', record: role, table: 'roles'})
  }

  putRow(row: RolePermissionRecord): void {
    this.apply({op: 'put', record: row, table: 'role_permissions'})
  }

  putAssignment(assignment: AssignmentRecord): void {
    this.apply({op: 'put', record: assignment, table: 'assignments'})
  }

  putToken(token: TokenRecord): void {
    this.apply({op: 'put', record: token, table: 'tokens'})
  }

  putJobCreator(job: JobCreatorRecord): void {
    this.apply({op: 'put', record: job, table: 'job_creators'})
  }

  private removeRow(row: RolePermissionRecord): void {
    this.apply({id: row.id, op: 'delete', table: 'role_permissions'})
  }

  private removeAssignment(assignment: AssignmentRecord): void {
    this.apply({id: assignment.id, op: 'delete', table: 'assignments'})
  }

  /** A role goes with its rows and assignments. */
  private removeRole(role: RoleRecord): void {
    for (const row of this.listRolePermissions(role.id)) this.removeRow(row)
    for (const assignment of this.listRoleUsers(role.id)) this.removeAssignment(assignment)
    this.apply({id: role.id, op: 'delete', table: 'roles'})
  }

  // --- a whole store at once ---

  /**
   * Fills an empty model with `content`, ids kept (a copy of another store, or an import): refused
   * when the model holds any user or role, or when the records do not fit together. The counters
   * end above every id, so none is handed out again.
   */
  loadContent(content: StoreContent): void {
    if (this.usersById.size > 0 || this.roles.size > 0 || this.tokens.size > 0 || this.jobCreators.size > 0)
      throw new StoreError('RESOURCE_ALREADY_EXISTS', `The store already holds ${this.usersById.size} users and ${this.roles.size} roles.`)
    const problem = contentProblem(content)
    if (problem) throw new StoreError('INVALID_PARAMETER_VALUE', `The records do not make one store: ${problem}.`)
    for (const {id, isAdmin, passwordHash, username} of content.users) this.putUser(Object.freeze({id, isAdmin, passwordHash, username}))
    for (const {description, id, name, workspace} of content.roles) this.putRole(Object.freeze({description, id, name, workspace}))
    for (const {id, permission, resourcePattern, resourceType, roleId} of content.rolePermissions)
      this.putRow(Object.freeze({id, permission, resourcePattern, resourceType, roleId}))
    for (const {id, roleId, userId} of content.assignments) this.putAssignment(Object.freeze({id, roleId, userId}))
    for (const {createdAt, digest, expiresAt, id, lastUsedAt, name, userId} of content.tokens)
      this.putToken(Object.freeze({createdAt, digest, expiresAt, id, lastUsedAt, name, userId}))
    const jobCreators = content.jobCreators ?? []
    for (const {id, jobId, userId} of jobCreators) this.putJobCreator(Object.freeze({id, jobId, userId}))
    const above = (records: {id: number}[], current: number) => records.reduce((next, record) => Math.max(next, record.id + 1), current)
    this.counters = {
      nextAssignmentId: above(content.assignments, this.counters.nextAssignmentId),
      nextJobCreatorId: above(jobCreators, this.counters.nextJobCreatorId),
      nextRoleId: above(content.roles, this.counters.nextRoleId),
      nextRowId: above(content.rolePermissions, this.counters.nextRowId),
      nextTokenId: above(content.tokens, this.counters.nextTokenId),
      nextUserId: above(content.users, this.counters.nextUserId),
    }
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
    if (user.isAdmin && patch.isAdmin === false) this.keepAnAdmin(user, 'demoting')
    const updated: UserRecord = Object.freeze({
      id: user.id,
      isAdmin: patch.isAdmin ?? user.isAdmin,
      passwordHash: patch.passwordHash ?? user.passwordHash,
      username,
    })
    if (updated.isAdmin !== user.isAdmin || updated.passwordHash !== user.passwordHash) this.putUser(updated)
    return this.usersByName.get(username)!
  }

  /**
   * Refuses the change that would leave a store with admins without any: nobody could then manage
   * users through the API. Checked here, in the write itself, so two writes racing (two admins
   * demoting each other, on one serve or on several sharing the store) cannot both pass.
   */
  private keepAnAdmin(user: UserRecord, doing: 'deleting' | 'demoting'): void {
    for (const other of this.usersById.values()) if (other.isAdmin && other.id !== user.id) return
    throw new StoreError(
      'INVALID_PARAMETER_VALUE',
      `User ${user.username} is the last admin: ${doing} them would leave no one able to manage users. Promote another user to admin first.`,
    )
  }

  /** As MLflow: the user's per-user roles go (with their rows), and so do all their assignments; their tokens too. */
  deleteUser(username: string): void {
    const user = this.usersByName.get(username)
    if (!user) throw userNotFound(username)
    if (user.isAdmin) this.keepAnAdmin(user, 'deleting')
    for (const token of this.listTokens(user.id)) this.apply({id: token.id, op: 'delete', table: 'tokens'})
    for (const job of [...(this.jobCreatorsByUser.get(user.id)?.values() ?? [])]) this.apply({id: job.id, op: 'delete', table: 'job_creators'})
    const ownRole = userRoleName(user.id)
    for (const role of [...this.roles.values()]) if (role.name === ownRole) this.removeRole(role)
    for (const assignment of [...(this.assignmentsByUser.get(user.id)?.values() ?? [])]) this.removeAssignment(assignment)
    this.apply({id: user.id, op: 'delete', table: 'users'})
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

  // --- access tokens ---

  /** By id; only the user's when given. */
  listTokens(userId?: number): TokenRecord[] {
    const tokens = userId === undefined ? this.tokens.values() : (this.tokensByUser.get(userId)?.values() ?? [])
    return [...tokens].sort((a, b) => a.id - b.id)
  }

  createToken(token: Omit<TokenRecord, 'id' | 'lastUsedAt'>): TokenRecord {
    const {createdAt, digest, expiresAt, name, userId} = token
    checkId(userId, 'userId')
    checkString(name, 'name', true)
    checkTime(createdAt, 'createdAt')
    if (expiresAt !== null) checkTime(expiresAt, 'expiresAt')
    if (typeof digest !== 'string' || !isDigest(digest)) throw new TypeError('digest must be a SHA-256 in lower-case hex')
    const user = this.usersById.get(userId)
    if (!user) throw new StoreError('RESOURCE_DOES_NOT_EXIST', `User with id=${userId} not found`)
    if (this.tokensByUser.get(userId)?.has(name))
      throw new StoreError('RESOURCE_ALREADY_EXISTS', `Token (username=${user.username}, name=${name}) already exists.`)
    // 256 random bits never collide; a repeat is a caller's bug, and two users must never share a token.
    if (this.tokensByDigest.has(digest)) throw new StoreError('INVALID_PARAMETER_VALUE', 'This token is already in use; create a new one.')
    const record: TokenRecord = Object.freeze({createdAt, digest, expiresAt, id: this.counters.nextTokenId++, lastUsedAt: null, name, userId})
    this.putToken(record)
    return record
  }

  deleteToken(tokenId: number): void {
    if (!this.tokens.has(tokenId)) throw new StoreError('RESOURCE_DOES_NOT_EXIST', `Token with id=${tokenId} not found`)
    this.apply({id: tokenId, op: 'delete', table: 'tokens'})
  }

  /** Later times only, of tokens still there: a revoke or an older report meanwhile wins. */
  touchTokens(lastUsed: ReadonlyMap<number, string>): number {
    let changed = 0
    for (const [id, at] of lastUsed) {
      checkTime(at, 'lastUsedAt')
      const token = this.tokens.get(id)
      if (!token || (token.lastUsedAt !== null && token.lastUsedAt >= at)) continue
      this.putToken(Object.freeze({...token, lastUsedAt: at}))
      changed++
    }

    return changed
  }

  // --- server-side jobs' creators ---

  listJobCreators(): JobCreatorRecord[] {
    return [...this.jobCreators.values()].sort((a, b) => a.id - b.id)
  }

  /** A job already recorded keeps its creator: MLflow never reuses a job id, so a second record is a replay or a forgery. */
  recordJobCreator(jobId: string, userId: number): JobCreatorRecord | undefined {
    checkId(userId, 'userId')
    if (!isJobId(jobId)) throw new TypeError('jobId must be a non-empty string of at most 256 printable characters')
    if (!this.usersById.has(userId)) throw new StoreError('RESOURCE_DOES_NOT_EXIST', `User with id=${userId} not found`)
    if (this.jobCreatorsByJob.has(jobId)) return undefined
    const record: JobCreatorRecord = Object.freeze({id: this.counters.nextJobCreatorId++, jobId, userId})
    this.putJobCreator(record)
    return record
  }
}

/** A job id as serve records it: what MLflow hands out (a UUID), bounded and printable so a file stays readable. */
export function isJobId(value: unknown): value is string {
  return typeof value === 'string' && value.length > 0 && value.length <= 256 && /^[\x21-\x7e]+$/.test(value)
}

type AnyRecord = AssignmentRecord | JobCreatorRecord | RolePermissionRecord | RoleRecord | TokenRecord | UserRecord

function checkTime(value: unknown, name: string): void {
  if (!isStoreTime(value)) throw new TypeError(`${name} must be a time in ISO 8601 UTC (Date.toISOString())`)
}

function toGrant(row: RolePermissionRecord, userId: number): GrantRecord {
  return Object.freeze({permission: row.permission, resourceId: row.resourcePattern, resourceType: row.resourceType, userId})
}

/** The user whose own grants a role holds (`__user_<id>__`), or undefined for a role an admin made. */
export function perUserRoleOwner(role: RoleRecord): number | undefined {
  return userIdOfRoleName(role.name)
}
