/**
 * The auth store behind `mlflowctl serve`: users and their permission grants. serve knows only
 * this interface; the JSON file adapter (json-store.ts, on the in-memory model of model.ts) is one
 * implementation, and a database adapter would be another.
 *
 * Reads are synchronous and come from memory: no I/O on the request path. Writes are serialized,
 * and durable (on disk, fsynced) when their promise resolves, so the API answers only after.
 */
import {type RoleRow} from '../../mlflow/rbac.js'

export interface UserRecord {
  id: number
  isAdmin: boolean
  /** Werkzeug format: `scrypt:32768:8:1$salt$hex` or `pbkdf2:sha256:N$salt$hex`. */
  passwordHash: string
  username: string
}

/**
 * A user's permission on one resource. MLflow's resource types and ids, as its unified grant API
 * names them: `experiment` (experiment id), `registered_model` (model name), `scorer`
 * (`<experiment id>/<quote(scorer name)>`), and any other type MLflow adds.
 */
export interface GrantRecord {
  permission: string
  resourceId: string
  resourceType: string
  userId: number
}

export type StoreErrorCode = 'RESOURCE_ALREADY_EXISTS' | 'RESOURCE_DOES_NOT_EXIST'

/** A write refused because of the data; `code` is MLflow's error code for it. */
export class StoreError extends Error {
  constructor(
    readonly code: StoreErrorCode,
    message: string,
  ) {
    super(message)
    this.name = 'StoreError'
  }
}

/** Why the store's file cannot be used; decides how serve reports it (e.g. its exit code at start). */
export type StoreFileProblem = 'invalid' | 'locked' | 'missing' | 'unreadable'

/**
 * The store's file cannot be used: unreadable or not creatable, not a valid store, gone while in
 * use, or locked by another process for too long. Whatever failed changed nothing. The message
 * names the file and the problem, never the file's content.
 */
export class StoreFileError extends Error {
  readonly problem: StoreFileProblem

  constructor(
    readonly path: string,
    message: string,
    options: {cause?: unknown; problem?: StoreFileProblem} = {},
  ) {
    super(message, options.cause === undefined ? undefined : {cause: options.cause})
    this.name = 'StoreFileError'
    this.problem = options.problem ?? 'unreadable'
  }
}

export interface Store {
  /** Where the data lives, for the start-up banner. */
  readonly location: string

  close(): Promise<void>
  createGrant(grant: GrantRecord): Promise<GrantRecord>
  createUser(user: Omit<UserRecord, 'id'>): Promise<UserRecord>
  deleteGrant(userId: number, resourceType: string, resourceId: string): Promise<void>
  /** Removes every user's grant on a resource (e.g. a deleted registered model); returns how many. */
  deleteGrantsForResource(resourceType: string, resourceId: string): Promise<number>
  /** Deletes the user and every grant of theirs. */
  deleteUser(username: string): Promise<void>
  getGrant(userId: number, resourceType: string, resourceId: string): GrantRecord | undefined
  getUser(username: string): undefined | UserRecord
  getUserById(id: number): undefined | UserRecord
  listGrants(userId: number): GrantRecord[]
  listUsers(): UserRecord[]
  /** Every row of every role the user holds, their per-user role's included: what decisions fold (docs/mlflow-rbac.md). */
  rowsOf(userId: number): readonly RoleRow[]
  /** Moves every grant on a resource to a new id (e.g. a renamed registered model); returns how many. */
  renameResource(resourceType: string, fromId: string, toId: string): Promise<number>
  updateGrant(grant: GrantRecord): Promise<GrantRecord>
  updateUser(username: string, patch: Partial<Pick<UserRecord, 'isAdmin' | 'passwordHash'>>): Promise<UserRecord>
}
