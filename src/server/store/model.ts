/**
 * The store's in-memory model: users and grants with the indexes every read uses, and the writes
 * as MLflow's store makes them (its error codes and messages). Adapters keep one committed model
 * for readers and apply writes to a clone, which they make durable before adopting it: the JSON
 * file adapter (json-store.ts) does so; a database adapter would keep only what it caches here.
 */
import {type RoleRow, userRoleName} from '../../mlflow/rbac.js'
import {type GrantRecord, StoreError, type UserRecord} from './store.js'

/** Unambiguous whatever the strings hold: the length prefix says where the type ends. */
function resourceKey(resourceType: string, resourceId: string): string {
  return `${resourceType.length}:${resourceType}${resourceId}`
}

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

function checkGrantKey(userId: unknown, resourceType: unknown, resourceId: unknown): void {
  if (!isId(userId)) throw new TypeError('userId must be a positive integer')
  checkString(resourceType, 'resourceType', true)
  checkString(resourceId, 'resourceId')
}

function grantName(userId: number, resourceType: string, resourceId: string): string {
  return `Permission (user_id=${userId}, resource_type=${resourceType}, resource_id=${resourceId})`
}

function userNotFound(username: string): StoreError {
  return new StoreError('RESOURCE_DOES_NOT_EXIST', `User with username=${username} not found`)
}

/**
 * One consistent state with its indexes. Records are frozen and replaced, never mutated, so a
 * writer works on a clone() while readers keep using the committed state.
 */
export class StoreModel {
  /** Whether a write changed anything since the model was read or written. */
  dirty = false

  constructor(
    public nextUserId: number,
    readonly usersByName = new Map<string, UserRecord>(),
    readonly usersById = new Map<number, UserRecord>(),
    /** userId → resourceKey → grant */
    readonly grantsByUser = new Map<number, Map<string, GrantRecord>>(),
    /** resourceKey → userId → grant */
    readonly grantsByResource = new Map<string, Map<number, GrantRecord>>(),
  ) {}

  clone(): StoreModel {
    const copy = <K, J>(outer: Map<K, Map<J, GrantRecord>>) => new Map([...outer].map(([key, inner]) => [key, new Map(inner)]))
    return new StoreModel(this.nextUserId, new Map(this.usersByName), new Map(this.usersById), copy(this.grantsByUser), copy(this.grantsByResource))
  }

  // --- reads ---

  getGrant(userId: number, resourceType: string, resourceId: string): GrantRecord | undefined {
    return this.grantsByUser.get(userId)?.get(resourceKey(resourceType, resourceId))
  }

  grantsOn(resourceType: string, resourceId: string): GrantRecord[] {
    return [...(this.grantsByResource.get(resourceKey(resourceType, resourceId))?.values() ?? [])]
  }

  listGrants(userId: number): GrantRecord[] {
    return [...(this.grantsByUser.get(userId)?.values() ?? [])]
  }

  /** A user's grants as the rows of their per-user role (the only role this store keeps so far). */
  rowsOf(userId: number): RoleRow[] {
    const roleName = userRoleName(userId)
    return this.listGrants(userId).map((grant) => ({
      permission: grant.permission,
      resourcePattern: grant.resourceId,
      resourceType: grant.resourceType,
      roleName,
    }))
  }

  /** By id, oldest first. */
  listUsers(): UserRecord[] {
    return [...this.usersById.values()].sort((a, b) => a.id - b.id)
  }

  // --- index maintenance ---

  putUser(user: UserRecord): void {
    const previous = this.usersById.get(user.id)
    if (previous && previous.username !== user.username) this.usersByName.delete(previous.username)
    this.usersById.set(user.id, user)
    this.usersByName.set(user.username, user)
    this.dirty = true
  }

  removeUser(user: UserRecord): void {
    for (const grant of this.listGrants(user.id)) this.removeGrant(grant)
    this.grantsByUser.delete(user.id)
    this.usersById.delete(user.id)
    this.usersByName.delete(user.username)
    this.dirty = true
  }

  putGrant(grant: GrantRecord): void {
    const key = resourceKey(grant.resourceType, grant.resourceId)
    let byResource = this.grantsByUser.get(grant.userId)
    if (!byResource) this.grantsByUser.set(grant.userId, (byResource = new Map()))
    let byUser = this.grantsByResource.get(key)
    if (!byUser) this.grantsByResource.set(key, (byUser = new Map()))
    byResource.set(key, grant)
    byUser.set(grant.userId, grant)
    this.dirty = true
  }

  removeGrant(grant: GrantRecord): void {
    const key = resourceKey(grant.resourceType, grant.resourceId)
    const byResource = this.grantsByUser.get(grant.userId)
    if (!byResource?.delete(key)) return
    if (byResource.size === 0) this.grantsByUser.delete(grant.userId)
    const byUser = this.grantsByResource.get(key)
    byUser?.delete(grant.userId)
    if (byUser?.size === 0) this.grantsByResource.delete(key)
    this.dirty = true
  }

  // --- writes, checked, with MLflow's errors ---

  createUser(user: Omit<UserRecord, 'id'>): UserRecord {
    checkString(user.username, 'username')
    checkString(user.passwordHash, 'passwordHash')
    checkBoolean(user.isAdmin, 'isAdmin')
    if (this.usersByName.has(user.username)) throw new StoreError('RESOURCE_ALREADY_EXISTS', `User (username=${user.username}) already exists.`)
    const record: UserRecord = Object.freeze({id: this.nextUserId, isAdmin: user.isAdmin, passwordHash: user.passwordHash, username: user.username})
    this.nextUserId++
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

  deleteUser(username: string): void {
    const user = this.usersByName.get(username)
    if (!user) throw userNotFound(username)
    this.removeUser(user)
  }

  createGrant(grant: GrantRecord): GrantRecord {
    const {permission, resourceId, resourceType, userId} = grant
    checkGrantKey(userId, resourceType, resourceId)
    checkString(permission, 'permission', true)
    if (!this.usersById.has(userId)) throw new StoreError('RESOURCE_DOES_NOT_EXIST', `User with id=${userId} not found`)
    if (this.getGrant(userId, resourceType, resourceId))
      throw new StoreError('RESOURCE_ALREADY_EXISTS', `${grantName(userId, resourceType, resourceId)} already exists.`)
    const record: GrantRecord = Object.freeze({permission, resourceId, resourceType, userId})
    this.putGrant(record)
    return record
  }

  updateGrant(grant: GrantRecord): GrantRecord {
    const {permission, resourceId, resourceType, userId} = grant
    checkGrantKey(userId, resourceType, resourceId)
    checkString(permission, 'permission', true)
    const existing = this.getGrant(userId, resourceType, resourceId)
    if (!existing) throw new StoreError('RESOURCE_DOES_NOT_EXIST', `${grantName(userId, resourceType, resourceId)} not found`)
    if (existing.permission === permission) return existing
    const record: GrantRecord = Object.freeze({permission, resourceId, resourceType, userId})
    this.putGrant(record)
    return record
  }

  deleteGrant(userId: number, resourceType: string, resourceId: string): void {
    checkGrantKey(userId, resourceType, resourceId)
    const existing = this.getGrant(userId, resourceType, resourceId)
    if (!existing) throw new StoreError('RESOURCE_DOES_NOT_EXIST', `${grantName(userId, resourceType, resourceId)} not found`)
    this.removeGrant(existing)
  }

  deleteGrantsForResource(resourceType: string, resourceId: string): number {
    checkString(resourceType, 'resourceType', true)
    checkString(resourceId, 'resourceId')
    const grants = this.grantsOn(resourceType, resourceId)
    for (const grant of grants) this.removeGrant(grant)
    return grants.length
  }

  /**
   * Afterwards the grants on `toId` are exactly those that were on `fromId`: a grant left on
   * `toId` (from a deleted resource of that name) is dropped rather than kept, so a rename never
   * gives anyone access they did not have to the renamed resource.
   */
  renameResource(resourceType: string, fromId: string, toId: string): number {
    checkString(resourceType, 'resourceType', true)
    checkString(fromId, 'fromId')
    checkString(toId, 'toId')
    const moving = this.grantsOn(resourceType, fromId)
    if (fromId === toId) return moving.length
    for (const stale of this.grantsOn(resourceType, toId)) this.removeGrant(stale)
    for (const grant of moving) {
      this.removeGrant(grant)
      this.putGrant(Object.freeze({...grant, resourceId: toId}))
    }

    return moving.length
  }
}
