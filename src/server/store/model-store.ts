/**
 * What the store adapters share (the JSON file, json-store.ts, and PostgreSQL, pg-store.ts): every
 * read answered from the in-memory model, and every write a change of that model handed to the
 * adapter's `write`, which makes it durable in its next batch and only then applies it and settles.
 */
import {type RoleRow} from '../../mlflow/rbac.js'
import {type StoreModel} from './model.js'
import {
  type AssignmentRecord,
  type GrantRecord,
  type RolePermissionRecord,
  type RoleRecord,
  type Store,
  type JobCreatorRecord,
  type StoreContent,
  type TokenRecord,
  type UserRecord,
} from './store.js'

export abstract class ModelStore implements Omit<Store, 'close' | 'health' | 'location'> {
  /** Every task on the durable copy (a write batch, a reload, …) runs on this chain, one at a time. */
  protected chain: Promise<void> = Promise.resolve()
  protected abstract data: StoreModel
  protected abstract readonly options: {onError: (error: Error) => void; onWrite: (seconds: number, ok: boolean) => void}

  /** Queues a change of the model; `input` is what the caller gave, for checks made before queueing. */
  protected abstract write<T>(input: unknown, apply: (data: StoreModel) => T): Promise<T>

  /** A write, with the time until it was durable (or refused) told to onWrite. */
  private async timed<T>(input: unknown, apply: (data: StoreModel) => T): Promise<T> {
    const started = process.hrtime.bigint()
    let ok = false
    try {
      const result = await this.write(input, apply)
      ok = true
      return result
    } finally {
      try {
        this.options.onWrite(Number(process.hrtime.bigint() - started) / 1e9, ok)
      } catch {
        // Metrics must not turn a write into a failure.
      }
    }
  }

  /** Runs `task` on the chain; its outcome is the caller's, and never breaks the chain. */
  protected onChain<T>(task: () => Promise<T>): Promise<T> {
    const result = this.chain.then(task)
    this.chain = result.then(
      () => {},
      () => {},
    )
    return result
  }

  /** Runs `task` on the chain; a failure goes to the adapter's onError. */
  protected serially(task: () => Promise<void>): void {
    this.onChain(task).catch((error: Error) => this.options.onError(error))
  }

  // --- reads: memory only ---------------------------------------------------------------------

  getUser(username: string): undefined | UserRecord {
    return this.data.usersByName.get(username)
  }

  getUserById(id: number): undefined | UserRecord {
    return this.data.usersById.get(id)
  }

  listUsers(): UserRecord[] {
    return this.data.listUsers()
  }

  getGrant(userId: number, resourceType: string, resourceId: string): GrantRecord | undefined {
    return this.data.getGrant(userId, resourceType, resourceId)
  }

  rowsOf(userId: number): readonly RoleRow[] {
    return this.data.rowsOf(userId)
  }

  listGrants(userId: number): GrantRecord[] {
    return this.data.listGrants(userId)
  }

  getRole(roleId: number): RoleRecord | undefined {
    return this.data.getRole(roleId)
  }

  listRoles(workspaces?: readonly string[]): RoleRecord[] {
    return this.data.listRoles(workspaces)
  }

  getRolePermission(rowId: number): RolePermissionRecord | undefined {
    return this.data.getRolePermission(rowId)
  }

  listRolePermissions(roleId: number): RolePermissionRecord[] {
    return this.data.listRolePermissions(roleId)
  }

  listUserRoles(userId: number): RoleRecord[] {
    return this.data.listUserRoles(userId)
  }

  listRoleUsers(roleId: number): AssignmentRecord[] {
    return this.data.listRoleUsers(roleId)
  }

  getToken(tokenId: number): TokenRecord | undefined {
    return this.data.tokens.get(tokenId)
  }

  getTokenByDigest(digest: string): TokenRecord | undefined {
    return this.data.tokensByDigest.get(digest)
  }

  listTokens(userId?: number): TokenRecord[] {
    return this.data.listTokens(userId)
  }

  getJobCreator(jobId: string): number | undefined {
    return this.data.jobCreatorsByJob.get(jobId)?.userId
  }

  listJobCreators(): JobCreatorRecord[] {
    return this.data.listJobCreators()
  }

  // --- writes: a change of the model, made durable by the adapter ----------------------------

  createUser(user: Omit<UserRecord, 'id'>): Promise<UserRecord> {
    return this.timed(user, (data) => data.createUser(user))
  }

  updateUser(username: string, patch: Partial<Pick<UserRecord, 'isAdmin' | 'passwordHash'>>): Promise<UserRecord> {
    return this.timed([username, patch], (data) => data.updateUser(username, patch))
  }

  deleteUser(username: string): Promise<void> {
    return this.timed(username, (data) => data.deleteUser(username))
  }

  createGrant(grant: GrantRecord): Promise<GrantRecord> {
    return this.timed(grant, (data) => data.createGrant(grant))
  }

  updateGrant(grant: GrantRecord): Promise<GrantRecord> {
    return this.timed(grant, (data) => data.updateGrant(grant))
  }

  deleteGrant(userId: number, resourceType: string, resourceId: string): Promise<void> {
    return this.timed([resourceType, resourceId], (data) => data.deleteGrant(userId, resourceType, resourceId))
  }

  deleteGrantsForResource(resourceType: string, resourceId: string): Promise<number> {
    return this.timed([resourceType, resourceId], (data) => data.deleteGrantsForResource(resourceType, resourceId))
  }

  renameResource(resourceType: string, fromId: string, toId: string): Promise<number> {
    return this.timed([resourceType, fromId, toId], (data) => data.renameResource(resourceType, fromId, toId))
  }

  createRole(role: Omit<RoleRecord, 'id'>): Promise<RoleRecord> {
    return this.timed(role, (data) => data.createRole(role))
  }

  updateRole(roleId: number, patch: {description?: string; name?: string}): Promise<RoleRecord> {
    return this.timed(patch, (data) => data.updateRole(roleId, patch))
  }

  deleteRole(roleId: number): Promise<void> {
    return this.timed(undefined, (data) => data.deleteRole(roleId))
  }

  addRolePermission(row: Omit<RolePermissionRecord, 'id'>): Promise<RolePermissionRecord> {
    return this.timed(row, (data) => data.addRolePermission(row))
  }

  updateRolePermission(rowId: number, permission: string): Promise<RolePermissionRecord> {
    return this.timed(permission, (data) => data.updateRolePermission(rowId, permission))
  }

  removeRolePermission(rowId: number): Promise<void> {
    return this.timed(undefined, (data) => data.removeRolePermission(rowId))
  }

  assignRole(userId: number, roleId: number): Promise<AssignmentRecord> {
    return this.timed(undefined, (data) => data.assignRole(userId, roleId))
  }

  unassignRole(userId: number, roleId: number): Promise<void> {
    return this.timed(undefined, (data) => data.unassignRole(userId, roleId))
  }

  createToken(token: Omit<TokenRecord, 'id' | 'lastUsedAt'>): Promise<TokenRecord> {
    return this.timed(token, (data) => data.createToken(token))
  }

  deleteToken(tokenId: number): Promise<void> {
    return this.timed(undefined, (data) => data.deleteToken(tokenId))
  }

  touchTokens(lastUsed: ReadonlyMap<number, string>): Promise<number> {
    const copy = new Map(lastUsed)
    return this.timed([...copy.values()], (data) => data.touchTokens(copy))
  }

  async recordJobCreator(jobId: string, userId: number): Promise<void> {
    // Known already (a replayed answer): nothing to write.
    if (this.data.jobCreatorsByJob.has(jobId)) return
    await this.timed([jobId, userId], (data) => data.recordJobCreator(jobId, userId))
  }

  /** One write: the store gets all of it or none of it (ids kept; only into an empty store). */
  importContent(content: StoreContent): Promise<void> {
    return this.timed(content, (data) => data.loadContent(content))
  }
}
