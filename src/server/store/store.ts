/**
 * The auth store behind `mlflowctl serve`: users, roles with their permission rows, and who holds
 * which role; a user's own grants are the rows of their per-user role. serve knows only
 * this interface; the JSON file adapter (json-store.ts, on the in-memory model of model.ts) is one
 * implementation, and the PostgreSQL adapter (pg-store.ts, on the same model) another.
 *
 * Reads are synchronous and come from memory: no I/O on the request path. Writes are serialized,
 * and durable (on disk, fsynced, or committed) when their promise resolves, so the API answers only
 * after. The PostgreSQL adapter (pg-store.ts) keeps the same model in memory, in step with the
 * database and the other replicas on it.
 */
import {type RoleRow} from '../../mlflow/rbac.js'

export interface UserRecord {
  id: number
  isAdmin: boolean
  /**
   * Werkzeug format: `scrypt:32768:8:1$salt$hex` or `pbkdf2:sha256:N$salt$hex`; empty for a service
   * account, which has no password and is used through its access tokens only.
   */
  passwordHash: string
  username: string
}

/** A user with no password (isServiceAccount): Basic auth never verifies it, only its tokens do. */
export const SERVICE_ACCOUNT_HASH = ''

export function isServiceAccount(user: UserRecord): boolean {
  return user.passwordHash === SERVICE_ACCOUNT_HASH
}

/** SHA-256 in lower-case hex. */
export function isDigest(value: string): boolean {
  return /^[0-9a-f]{64}$/.test(value)
}

/** An instant as the store writes it: ISO 8601 in UTC with milliseconds (`Date.toISOString()`), so strings compare as times. */
export function isStoreTime(value: unknown): value is string {
  if (typeof value !== 'string' || !/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/.test(value)) return false
  const ms = Date.parse(value)
  return Number.isFinite(ms) && new Date(ms).toISOString() === value
}

/**
 * An access token of a user: never the token itself, only the SHA-256 of its text (a 256-bit random
 * secret needs no slow derivation). Times are ISO 8601 in UTC; `lastUsedAt` is approximate (kept
 * in memory and written in batches).
 */
export interface TokenRecord {
  createdAt: string
  /** SHA-256 of the token's text, lower-case hex: what a request's Bearer token is looked up by. */
  digest: string
  /** null: never expires. */
  expiresAt: null | string
  id: number
  lastUsedAt: null | string
  /** The label, unique per user. */
  name: string
  userId: number
}

/**
 * Who submitted one of MLflow's server-side jobs: MLflow records that in its own job table only
 * when it authenticates the caller itself, so serve records it. `jobId` is MLflow's id of the job.
 */
export interface JobCreatorRecord {
  id: number
  jobId: string
  userId: number
}

/**
 * A user's own permission on one resource: a row of their per-user role `__user_<id>__`. MLflow's resource types and ids, as its unified grant API
 * names them: `experiment` (experiment id), `registered_model` (model name), `scorer`
 * (`<experiment id>/<quote(scorer name)>`), and any other type MLflow adds.
 */
export interface GrantRecord {
  permission: string
  resourceId: string
  resourceType: string
  userId: number
}

/** A role (MLflow 3.14+): named rows, assigned to users. `__user_<id>__` roles hold users' own grants. */
export interface RoleRecord {
  description: null | string
  id: number
  name: string
  workspace: string
}

/** One row of a role: `(resource_type, resource_pattern, permission)`, unique per role on type and pattern. */
export interface RolePermissionRecord {
  id: number
  permission: string
  resourcePattern: string
  resourceType: string
  roleId: number
}

export interface AssignmentRecord {
  id: number
  roleId: number
  userId: number
}

/**
 * Everything a store holds, as plain records with their ids: what `store copy` moves from one
 * store to another, and what `store import --from-mlflow` builds from MLflow's database.
 */
export interface StoreContent {
  assignments: AssignmentRecord[]
  rolePermissions: RolePermissionRecord[]
  roles: RoleRecord[]
  /** Absent in content written before job creators were kept: none. */
  jobCreators?: JobCreatorRecord[]
  tokens: TokenRecord[]
  users: UserRecord[]
}

export type StoreErrorCode = 'INVALID_PARAMETER_VALUE' | 'RESOURCE_ALREADY_EXISTS' | 'RESOURCE_DOES_NOT_EXIST'

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

/**
 * The store cannot take a change now (its database is out of reach); the change was not confirmed.
 * serve answers 503, and the log says why.
 */
export class StoreUnavailableError extends Error {
  constructor(message: string, options: {cause?: unknown} = {}) {
    super(message, options.cause === undefined ? undefined : {cause: options.cause})
    this.name = 'StoreUnavailableError'
  }
}

/** Whether serve may decide from what the store holds, and whether it is in step with its data. */
export interface StoreHealth {
  /** False: what is in memory may be too old to decide from; serve refuses (503) what needs a decision. */
  decide: boolean
  /** Why not ready or not deciding, for answers and the log (never a secret). */
  problem?: string
  /** False: not in step with where the data lives (changes are refused); /health answers 503. */
  ready: boolean
}

export interface Store {
  /** Where the data lives, for the start-up banner (never a password). */
  readonly location: string

  /** Read from memory, on every request: never I/O. */
  health(): StoreHealth

  close(): Promise<void>
  createUser(user: Omit<UserRecord, 'id'>): Promise<UserRecord>
  /** Deletes the user, their per-user role (their grants), their assignments to other roles, their tokens and their job records. */
  deleteUser(username: string): Promise<void>
  getUser(username: string): undefined | UserRecord
  getUserById(id: number): undefined | UserRecord
  listUsers(): UserRecord[]
  updateUser(username: string, patch: Partial<Pick<UserRecord, 'isAdmin' | 'passwordHash'>>): Promise<UserRecord>

  // A user's own grants: the rows of their per-user role, created and assigned with the first grant.
  createGrant(grant: GrantRecord): Promise<GrantRecord>
  deleteGrant(userId: number, resourceType: string, resourceId: string): Promise<void>
  /** Removes every per-user grant on a resource (e.g. a deleted registered model); rows of other roles stay. Returns how many. */
  deleteGrantsForResource(resourceType: string, resourceId: string): Promise<number>
  getGrant(userId: number, resourceType: string, resourceId: string): GrantRecord | undefined
  listGrants(userId: number): GrantRecord[]
  /** Moves every per-user grant on a resource to a new id (e.g. a renamed registered model); rows of other roles stay. Returns how many. */
  renameResource(resourceType: string, fromId: string, toId: string): Promise<number>
  updateGrant(grant: GrantRecord): Promise<GrantRecord>

  // Roles, their rows and assignments, as MLflow 3.14+'s store (docs/mlflow-rbac.md).
  addRolePermission(row: Omit<RolePermissionRecord, 'id'>): Promise<RolePermissionRecord>
  assignRole(userId: number, roleId: number): Promise<AssignmentRecord>
  createRole(role: Omit<RoleRecord, 'id'>): Promise<RoleRecord>
  /** Deletes the role with its rows and assignments. */
  deleteRole(roleId: number): Promise<void>
  getRole(roleId: number): RoleRecord | undefined
  getRolePermission(rowId: number): RolePermissionRecord | undefined
  listRolePermissions(roleId: number): RolePermissionRecord[]
  /** By id; only those of the given workspaces when given. */
  listRoles(workspaces?: readonly string[]): RoleRecord[]
  listRoleUsers(roleId: number): AssignmentRecord[]
  listUserRoles(userId: number): RoleRecord[]
  removeRolePermission(rowId: number): Promise<void>
  /** Every row of every role the user holds, their per-user role's included: what decisions fold (docs/mlflow-rbac.md). */
  rowsOf(userId: number): readonly RoleRow[]
  unassignRole(userId: number, roleId: number): Promise<void>
  updateRole(roleId: number, patch: {description?: string; name?: string}): Promise<RoleRecord>
  updateRolePermission(rowId: number, permission: string): Promise<RolePermissionRecord>

  // Access tokens: looked up by the digest of their text, never stored themselves.
  createToken(token: Omit<TokenRecord, 'id' | 'lastUsedAt'>): Promise<TokenRecord>
  deleteToken(tokenId: number): Promise<void>
  getToken(tokenId: number): TokenRecord | undefined
  /** The token whose text has this SHA-256 (hex): one Map lookup, on every Bearer request. */
  getTokenByDigest(digest: string): TokenRecord | undefined
  /** By id; only the user's when given. */
  listTokens(userId?: number): TokenRecord[]
  /** Records when tokens were last used, in one write for all (tokens gone meanwhile are skipped; a time never goes back). Returns how many changed. */
  touchTokens(lastUsed: ReadonlyMap<number, string>): Promise<number>

  // Server-side jobs' creators, by MLflow's job id.
  /** The id of the user who submitted the job, if serve recorded one. */
  getJobCreator(jobId: string): number | undefined
  listJobCreators(): JobCreatorRecord[]
  /** Records the job's creator; a job already recorded keeps its first creator (ids are never reused). */
  recordJobCreator(jobId: string, userId: number): Promise<void>

  /**
   * Fills an empty store (no user, no role) with `content`, ids kept, in one durable write: all of
   * it or, on any refusal, nothing. Refused with RESOURCE_ALREADY_EXISTS when the store holds
   * anything, INVALID_PARAMETER_VALUE when the records do not fit together (contentProblem).
   */
  importContent(content: StoreContent): Promise<void>
}

/**
 * A store location for messages, logs and --json: a file path as it is; a URL without its password,
 * neither in its user part nor as a query parameter (`password`, `sslpassword`). A URL that cannot
 * be parsed is not shown at all (it could hold a password anywhere).
 */
export function redactUrl(location: string): string {
  const scheme = /^([a-z][a-z0-9+.-]*):\/\//i.exec(location)
  if (!scheme) return location
  try {
    const url = new URL(location)
    url.password = ''
    for (const key of [...url.searchParams.keys()]) if (/password/i.test(key)) url.searchParams.delete(key)
    return url.href.replace(/^([^:]+:\/\/[^@/]*):@/, '$1@')
  } catch {
    return `${scheme[1]}://(a URL that cannot be read, not shown)`
  }
}

/**
 * A store location (serve's --store, the store commands' --from/--to) names a PostgreSQL database
 * rather than a file: `postgresql://` or `postgres://`, also in SQLAlchemy's spelling with a
 * driver (`postgresql+psycopg2://`, as MLflow's own database_uri may be written).
 */
export function isPostgresUrl(location: string): boolean {
  return /^postgres(?:ql)?(?:\+[a-z0-9]+)?:\/\//i.test(location)
}
