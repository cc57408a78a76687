/**
 * The REST API of MLflow's basic-auth app (docs/mlflow-auth-contract.md, "Auth REST API"),
 * wire-compatible: users, per-resource permissions (the classic endpoints MLflow served up to
 * 3.12), scorer permissions, the unified grants of MLflow 3.13+, and the roles of 3.14+ (roles, their
 * rows, assignments), so clients of either generation work. Who may call what is decided here from
 * the store alone.
 */
import {
  type AssignmentRecord,
  isServiceAccount,
  type RolePermissionRecord,
  type RoleRecord,
  SERVICE_ACCOUNT_HASH,
  type Store,
  StoreError,
  type TokenRecord,
  type UserRecord,
} from './store/store.js'
import {newToken} from './tokens.js'
import {hashPassword, verifyPassword} from './passwords.js'
import {MLFLOW_PASSWORD_POLICY, type PasswordPolicy, passwordProblem} from '../mlflow/password-policy.js'
import {capabilities, invalidPermissionMessage, isPermissionLevel} from '../mlflow/permissions.js'
import {RESOURCE_TYPES, scorerResourceId} from '../mlflow/resources.js'
import {
  DEFAULT_WORKSPACE,
  isWorkspaceAdminRow,
  perUserGrantProblem,
  perUserResolveProblem,
  perUserTypeProblem,
  rowProblem,
  WILDCARD,
  WORKSPACE_PER_USER_MESSAGE,
} from '../mlflow/rbac.js'
import {effectiveLevel} from './permissions.js'
import {canonicalId} from './authz/request-params.js'
import {type AuthOperation} from './authz/route-rule.js'
import {ApiError, missingParameter, permissionDenied, PlainError} from './responses.js'
import {isJsonMediaType} from './request-body.js'
import {pythonFalsy, pythonRepr, pythonStr} from '../mlflow/python-text.js'
import {type AuditOrigin, type AuditSink, NO_AUDIT} from './audit.js'

export interface AuthCall {
  body: Record<string, unknown> | undefined
  /** The request's media type, lower case, without parameters. */
  contentType: string | undefined
  method: string
  /** Where the request came from, for the audit log. */
  origin?: AuditOrigin
  /** The query string: GET parameters, and DELETE's when the request has no JSON body. */
  query: URLSearchParams
  user: UserRecord
}

export interface AuthApiOptions {
  /** Where each change made is recorded. */
  audit?: AuditSink
  defaultPermission: string
  /** Which new passwords are taken; default MLflow's rule (12 characters). */
  passwordPolicy?: PasswordPolicy
  store: Store
  /** A token's last use not yet written to the store, if any (tokens.ts keeps them). */
  tokenLastUse?: (tokenId: number) => string | undefined
}

/**
 * The operations that change the store: each one that succeeds is an audit `change` event. An
 * endpoint that changes users, roles, permissions or tokens is added here.
 */
export const CHANGE_OPERATIONS: ReadonlySet<AuthOperation> = new Set<AuthOperation>([
  'grants/grant',
  'grants/revoke',
  'roles/assign',
  'roles/create',
  'roles/delete',
  'roles/permissions/add',
  'roles/permissions/remove',
  'roles/permissions/update',
  'roles/unassign',
  'roles/update',
  'users/create',
  'users/delete',
  'users/update-admin',
  'users/update-password',
  'tokens/create',
  'tokens/revoke',
  ...RESOURCE_TYPES.flatMap((kind) => (['create', 'delete', 'update'] as const).map((verb): AuthOperation => `permissions/${kind}/${verb}`)),
])

/** Request fields that say which user, role, row or resource a change is about. */
const TARGET_FIELDS = [
  'username',
  'role_id',
  'role_permission_id',
  'resource_type',
  'resource_id',
  'resource_pattern',
  'experiment_id',
  'scorer_name',
  'workspace',
  'id',
]
/**
 * Request fields that carry the values a change sets. Only fields named here or above reach the
 * audit log: a password, current password, token or anything else an endpoint takes never does.
 */
const VALUE_FIELDS = ['permission', 'is_admin', 'description', 'service_account', 'expires_in_seconds']

/** A change's audit fields from its request and answer: `name` names a model or role, except where it is a role's new name. */
function changeFields(
  operation: AuthOperation,
  params: Record<string, unknown>,
  answer: unknown,
): {target: Record<string, unknown>; values: Record<string, unknown>} {
  const pick = (names: readonly string[]) => Object.fromEntries(names.filter((name) => Object.hasOwn(params, name)).map((name) => [name, params[name]]))
  const renames = operation === 'roles/update'
  const target = pick(renames ? TARGET_FIELDS : [...TARGET_FIELDS, 'name'])
  const values = pick(renames ? [...VALUE_FIELDS, 'name'] : VALUE_FIELDS)
  // What a create made, by its id (a token's is in token_info: `token` is its text, never recorded).
  const made = answer as Record<string, {id?: unknown} | undefined> | undefined
  const id = made?.user?.id ?? made?.role?.id ?? made?.role_permission?.id ?? made?.assignment?.id ?? made?.token_info?.id
  if (typeof id === 'number') target.id = id
  return {target, values}
}

/** Access tokens one user may hold, expired ones included until revoked. */
export const MAX_TOKENS_PER_USER = 100
/** A token lives this long unless its creator says otherwise. */
export const DEFAULT_TOKEN_LIFETIME_SECONDS = 90 * 24 * 3600
/** The longest lifetime a token may be given in seconds (about 100 years); longer is `null`: never. */
const MAX_TOKEN_LIFETIME_SECONDS = 100 * 366 * 24 * 3600

/** Legacy per-resource endpoints: how each names its resource and its response key. */
const LEGACY_KINDS = {
  experiment: {
    describe: (params: Record<string, string>) => `experiment_id=${params.experiment_id}`,
    entity: (params: Record<string, string>, userId: number, permission: string) => ({experiment_id: params.experiment_id, permission, user_id: userId}),
    key: 'experiment_permission',
    label: 'Experiment permission',
    params: ['experiment_id'],
    resource: (params: Record<string, string>) => ({id: params.experiment_id, type: 'experiment'}),
  },
  registered_model: {
    describe: (params: Record<string, string>) => `workspace=default, name=${params.name}`,
    entity: (params: Record<string, string>, userId: number, permission: string) => ({name: params.name, permission, user_id: userId, workspace: 'default'}),
    key: 'registered_model_permission',
    label: 'Registered model permission',
    params: ['name'],
    resource: (params: Record<string, string>) => ({id: params.name, type: 'registered_model'}),
  },
  scorer: {
    describe: (params: Record<string, string>) => `experiment_id=${params.experiment_id}, scorer_name=${params.scorer_name}`,
    entity: (params: Record<string, string>, userId: number, permission: string) => ({
      experiment_id: params.experiment_id,
      permission,
      scorer_name: params.scorer_name,
      user_id: userId,
    }),
    key: 'scorer_permission',
    label: 'Scorer permission',
    params: ['experiment_id', 'scorer_name'],
    resource: (params: Record<string, string>) => ({id: scorerResourceId(params.experiment_id, params.scorer_name), type: 'scorer'}),
  },
} as const

type LegacyKind = keyof typeof LEGACY_KINDS
type Handler = (call: AuthCall) => Promise<unknown>

/** MLflow's `_get_request_param`: query for GET, JSON body for POST/PATCH, body-or-query for DELETE. */
function param(call: AuthCall, name: string, options: {optional?: boolean} = {}): unknown {
  const fromQuery = () => (call.query.has(name) ? call.query.get(name) : undefined)
  const value = call.method === 'GET' ? fromQuery() : call.method === 'DELETE' && !call.body ? fromQuery() : call.body?.[name]
  if ((value === undefined || value === null) && !options.optional) throw missingParameter(name)
  return value ?? undefined
}

/**
 * `_get_request_param` to the letter: missing only when the field is absent, so a JSON `null` is
 * a value (Python's None) that the handler then judges as MLflow's does.
 */
function presentParam(call: AuthCall, name: string): unknown {
  const args = requestParams(call)
  if (!Object.hasOwn(args, name)) throw missingParameter(name)
  return args[name]
}

function stringParam(call: AuthCall, name: string): string {
  const value = param(call, name)
  if (typeof value !== 'string' && typeof value !== 'number') throw new ApiError('INVALID_PARAMETER_VALUE', `Parameter '${name}' must be a string.`)
  return String(value)
}

/**
 * MLflow's `_coerce_int_param`. Stricter: Python's int() also takes true, 1.5 and "1_0"; serve takes
 * integers and decimal strings only.
 */
function toInt(name: string, raw: unknown): number {
  if (typeof raw === 'number' && Number.isSafeInteger(raw)) return raw
  if (typeof raw === 'string' && /^\s*[+-]?\d{1,15}\s*$/.test(raw)) return Number(raw)
  throw new ApiError('INVALID_PARAMETER_VALUE', `Parameter '${name}' must be an integer. Got: ${pythonRepr(raw)}`)
}

function intParam(call: AuthCall, name: string): number {
  return toInt(name, presentParam(call, name))
}

/** The body for POST and PATCH, else the query (MLflow's `_request_params`, which role checks read). */
function requestParams(call: AuthCall): Record<string, unknown> {
  if (call.method === 'GET' || (call.method === 'DELETE' && !call.body)) return Object.fromEntries(call.query)
  return call.body ?? {}
}

function permissionParam(call: AuthCall): string {
  const value = param(call, 'permission')
  if (!isPermissionLevel(value)) throw new ApiError('INVALID_PARAMETER_VALUE', invalidPermissionMessage(value))
  return value
}

function requireAdmin(call: AuthCall): void {
  if (!call.user.isAdmin) throw permissionDenied({rule: 'auth API: admins only'})
}

function requireSelfOrAdmin(call: AuthCall, username: unknown): void {
  if (!call.user.isAdmin && call.user.username !== username) throw permissionDenied({rule: 'auth API: own account, or admins'})
}

function userNotFound(username: unknown): ApiError {
  return new ApiError('RESOURCE_DOES_NOT_EXIST', `User with username=${pythonStr(username)} not found`)
}

/**
 * The password policy: MLflow's rule (3.17's words for it: at least 12 characters, counted as
 * Python counts them), or the operator's stricter one.
 */
function checkPassword(policy: PasswordPolicy, password: unknown, username: string): string {
  // MLflow answers 500 for a password that is not a string (len() of a number); serve refuses it.
  if (typeof password !== 'string') throw new ApiError('INVALID_PARAMETER_VALUE', `Password must be at least ${policy.minLength} characters.`)
  const problem = passwordProblem(policy, password, username)
  if (problem) throw new ApiError('INVALID_PARAMETER_VALUE', problem)
  return password
}

export class AuthApi {
  /** Each operation the route table names (route-rule.ts), and its handler. */
  private readonly operations: Record<AuthOperation, Handler>

  constructor(private readonly options: AuthApiOptions) {
    const operations: Partial<Record<AuthOperation, Handler>> = {
      'grants/get': (call) => this.getGrant(call),
      'grants/grant': (call) => this.grant(call),
      'grants/list': (call) => this.listGrants(call),
      'grants/revoke': (call) => this.revoke(call),
      'roles/assign': (call) => this.assignRole(call),
      'roles/create': (call) => this.createRole(call),
      'roles/delete': (call) => this.deleteRole(call),
      'roles/get': (call) => this.getRole(call),
      'roles/list': (call) => this.listRoles(call),
      'roles/permissions/add': (call) => this.addRolePermission(call),
      'roles/permissions/list': (call) => this.listRolePermissions(call),
      'roles/permissions/remove': (call) => this.removeRolePermission(call),
      'roles/permissions/update': (call) => this.updateRolePermission(call),
      'roles/unassign': (call) => this.unassignRole(call),
      'roles/update': (call) => this.updateRole(call),
      'roles/users/list': (call) => this.listRoleUsers(call),
      'tokens/create': (call) => this.createToken(call),
      'tokens/list': (call) => this.listTokens(call),
      'tokens/revoke': (call) => this.revokeToken(call),
      'users/create': (call) => this.createUser(call),
      'users/current': async (call) => ({is_basic_auth: true, user: summary(call.user)}),
      'users/current/permissions': async (call) => ({is_admin: call.user.isAdmin, permissions: this.userRows(call.user.id)}),
      'users/delete': (call) => this.deleteUser(call),
      'users/get': (call) => this.getUser(call),
      'users/list': (call) => this.listUsers(call),
      'users/roles/list': (call) => this.listUserRoles(call),
      'users/update-admin': (call) => this.updateAdmin(call),
      'users/update-password': (call) => this.updatePassword(call),
    }
    for (const kind of RESOURCE_TYPES) {
      operations[`permissions/${kind}/create`] = (call) => this.legacyCreate(kind, call)
      operations[`permissions/${kind}/delete`] = (call) => this.legacyDelete(kind, call)
      operations[`permissions/${kind}/get`] = (call) => this.legacyGet(kind, call)
      operations[`permissions/${kind}/update`] = (call) => this.legacyUpdate(kind, call)
    }

    this.operations = operations as Record<AuthOperation, Handler>
  }

  /** Answers one operation: the JSON body of MLflow's 200, or throws MLflow's error. A change made is recorded in the audit log. */
  async call(operation: AuthOperation, call: AuthCall): Promise<unknown> {
    const answer = await this.operations[operation](call)
    if (CHANGE_OPERATIONS.has(operation) && call.origin) {
      const audit = this.options.audit ?? NO_AUDIT
      audit.record({...call.origin, event: 'change', operation, user: call.user.username, ...changeFields(operation, requestParams(call), answer)})
    }

    return answer
  }

  private get passwordPolicy(): PasswordPolicy {
    return this.options.passwordPolicy ?? MLFLOW_PASSWORD_POLICY
  }

  // ---- users ----

  private async createUser(call: AuthCall): Promise<unknown> {
    // As MLflow 3.17: admins, and administrators of a workspace (who may need to seed an account
    // before giving it a role there); a new user holds nothing.
    if (!call.user.isAdmin && this.adminWorkspaces(call.user).size === 0) throw permissionDenied({rule: 'auth API: admins and workspace admins only'})
    if (!isJsonMediaType(call.contentType)) throw new PlainError(400, 'Invalid content type. Must be application/json')
    // serve's own: a service account has no password and is used through its tokens only.
    const serviceAccount = call.body?.service_account
    if (serviceAccount !== undefined && typeof serviceAccount !== 'boolean')
      throw new ApiError('INVALID_PARAMETER_VALUE', "Parameter 'service_account' must be true or false.")
    if (serviceAccount === true) return this.createServiceAccount(call)
    const username = presentParam(call, 'username')
    const password = presentParam(call, 'password')
    if (pythonFalsy(username) || pythonFalsy(password)) throw new PlainError(400, 'Username and password cannot be empty.')
    // Stricter than MLflow, which stores a number as a name (its JSON then says 1234, not "1234") and
    // a blank name no one can tell apart in a list.
    if (typeof username !== 'string') throw new ApiError('INVALID_PARAMETER_VALUE', 'Username must be a string.')
    if (!username.trim()) throw new ApiError('INVALID_PARAMETER_VALUE', 'Username cannot be empty.')
    checkPassword(this.passwordPolicy, password, username)
    if (this.options.store.getUser(username)) throw new ApiError('RESOURCE_ALREADY_EXISTS', `User (username=${username}) already exists.`)
    const passwordHash = await hashPassword(password as string)
    const user = await this.storeCall(() => this.options.store.createUser({isAdmin: false, passwordHash, username}))
    return {user: this.userJson(user)}
  }

  private async createServiceAccount(call: AuthCall): Promise<unknown> {
    const username = presentParam(call, 'username')
    if (typeof username !== 'string' || !username.trim()) throw new ApiError('INVALID_PARAMETER_VALUE', 'Username must be a non-empty string.')
    if (call.body?.password !== undefined && call.body.password !== null)
      throw new ApiError('INVALID_PARAMETER_VALUE', "A service account has no password: leave out 'password', and create a token for it.")
    if (this.options.store.getUser(username)) throw new ApiError('RESOURCE_ALREADY_EXISTS', `User (username=${username}) already exists.`)
    const user = await this.storeCall(() => this.options.store.createUser({isAdmin: false, passwordHash: SERVICE_ACCOUNT_HASH, username}))
    return {user: this.userJson(user)}
  }

  /**
   * A user named by a parameter, as MLflow's database finds one: a number matches the name spelt
   * with its digits (SQLite compares a text column as text), anything else but a string no one.
   */
  private namedUser(username: unknown): UserRecord {
    const name = typeof username === 'string' ? username : typeof username === 'number' && Number.isSafeInteger(username) ? String(username) : undefined
    const user = name === undefined ? undefined : this.options.store.getUser(name)
    if (!user) throw userNotFound(username)
    return user
  }

  private async getUser(call: AuthCall): Promise<unknown> {
    const username = presentParam(call, 'username')
    requireSelfOrAdmin(call, username)
    return {user: this.userJson(this.namedUser(username))}
  }

  /** In MLflow 3.17's order: the fields, then (own password) the current one, then the user, then the new password. */
  private async updatePassword(call: AuthCall): Promise<unknown> {
    const username = presentParam(call, 'username')
    requireSelfOrAdmin(call, username)
    const password = presentParam(call, 'password')
    // Changing your own password (admins too) needs the current one, so a borrowed session cannot lock you out.
    if (username === call.user.username) {
      const current = call.body?.current_password
      if (pythonFalsy(current)) throw new ApiError('INVALID_PARAMETER_VALUE', 'Current password is required when changing your own password.')
      // MLflow answers 500 for a current password that is not a string; it cannot match.
      if (typeof current !== 'string' || !(await verifyPassword(call.user.passwordHash, current)))
        throw new ApiError('INVALID_PARAMETER_VALUE', 'Current password does not match.')
      if (password === current) throw new ApiError('INVALID_PARAMETER_VALUE', 'New password must differ from the current password.')
    }

    const user = this.namedUser(username)
    if (isServiceAccount(user))
      throw new ApiError('INVALID_PARAMETER_VALUE', `User ${user.username} is a service account: it has no password and logs in with its access tokens only.`)
    // MLflow takes a null password as "leave it" and answers 200 having changed nothing; serve refuses it.
    const passwordHash = await hashPassword(checkPassword(this.passwordPolicy, password, user.username))
    await this.storeCall(() => this.options.store.updateUser(user.username, {passwordHash}))
    return {}
  }

  private async updateAdmin(call: AuthCall): Promise<unknown> {
    requireAdmin(call)
    const username = presentParam(call, 'username')
    const raw = presentParam(call, 'is_admin')
    const user = this.namedUser(username)
    // What MLflow's database column takes: booleans, and 0 or 1. It refuses other values with its
    // database's error (400 BAD_REQUEST), and takes null as "leave it" (200, nothing changed):
    // serve refuses null too.
    const isAdmin = raw === true || raw === 1 ? true : raw === false || raw === 0 ? false : undefined
    if (isAdmin === undefined) throw new ApiError('BAD_REQUEST', `Not a boolean value: ${pythonRepr(raw)}`)
    await this.storeCall(() => this.options.store.updateUser(user.username, {isAdmin}))
    return {}
  }

  private async deleteUser(call: AuthCall): Promise<unknown> {
    requireAdmin(call)
    const username = presentParam(call, 'username')
    if (username === call.user.username)
      throw new ApiError('BAD_REQUEST', 'Users cannot delete their own account. Ask another admin to delete this user instead.')
    const user = this.namedUser(username)
    await this.storeCall(() => this.options.store.deleteUser(user.username))
    return {}
  }

  /** As MLflow 3.14+: each user with the roles they hold (MLflow ≤ 3.12's clients read only the summary). */
  private async listUsers(call: AuthCall): Promise<unknown> {
    requireAdmin(call)
    return {
      users: this.options.store
        .listUsers()
        .map((user) => ({...summary(user), roles: this.options.store.listUserRoles(user.id).map((role) => this.roleJson(role))})),
    }
  }

  // ---- classic per-resource permissions ----

  /**
   * Who may grant on a resource: admins and holders of MANAGE on it (on a scorer itself, not its
   * experiment).
   */
  private requireManage(call: AuthCall, resourceType: string, resourceId: string): void {
    if (call.user.isAdmin) return
    const level = effectiveLevel(this.options.store, call.user, resourceType, resourceId, this.options.defaultPermission)
    if (!capabilities(level).canManage)
      throw permissionDenied({level, need: 'manage', resource: {id: resourceId, type: resourceType}, rule: 'auth API: granting needs MANAGE on the resource'})
  }

  private legacyTarget(kind: LegacyKind, call: AuthCall) {
    const spec = LEGACY_KINDS[kind]
    const params = Object.fromEntries(spec.params.map((name) => [name, stringParam(call, name)])) as Record<string, string>
    // Grants are matched by the id's string: one under another spelling would never apply.
    if (params.experiment_id !== undefined) canonicalId(params.experiment_id, 'experiment_id')
    const resource = spec.resource(params)
    this.requireManage(call, resource.type, resource.id)

    return {params, resource, spec}
  }

  private targetUser(username: string): UserRecord {
    const user = this.options.store.getUser(username)
    if (!user) throw userNotFound(username)
    return user
  }

  private async legacyCreate(kind: LegacyKind, call: AuthCall): Promise<unknown> {
    const {params, resource, spec} = this.legacyTarget(kind, call)
    const permission = permissionParam(call)
    const user = this.targetUser(stringParam(call, 'username'))
    if (this.options.store.getGrant(user.id, resource.type, resource.id)) {
      throw new ApiError('RESOURCE_ALREADY_EXISTS', `${spec.label} (${spec.describe(params)}, username=${user.username}) already exists.`)
    }

    await this.storeCall(() => this.options.store.createGrant({permission, resourceId: resource.id, resourceType: resource.type, userId: user.id}))
    return {[spec.key]: spec.entity(params, user.id, permission)}
  }

  private async legacyGet(kind: LegacyKind, call: AuthCall): Promise<unknown> {
    const {params, resource, spec} = this.legacyTarget(kind, call)
    const user = this.targetUser(stringParam(call, 'username'))
    const grant = this.options.store.getGrant(user.id, resource.type, resource.id)
    if (!grant) throw this.legacyMissing(kind, params, user.username)
    return {[spec.key]: spec.entity(params, user.id, grant.permission)}
  }

  private async legacyUpdate(kind: LegacyKind, call: AuthCall): Promise<unknown> {
    const {params, resource} = this.legacyTarget(kind, call)
    const permission = permissionParam(call)
    const user = this.targetUser(stringParam(call, 'username'))
    if (!this.options.store.getGrant(user.id, resource.type, resource.id)) throw this.legacyMissing(kind, params, user.username)
    await this.storeCall(() => this.options.store.updateGrant({permission, resourceId: resource.id, resourceType: resource.type, userId: user.id}))
    return {}
  }

  private async legacyDelete(kind: LegacyKind, call: AuthCall): Promise<unknown> {
    const {params, resource} = this.legacyTarget(kind, call)
    const user = this.targetUser(stringParam(call, 'username'))
    if (!this.options.store.getGrant(user.id, resource.type, resource.id)) throw this.legacyMissing(kind, params, user.username)
    await this.storeCall(() => this.options.store.deleteGrant(user.id, resource.type, resource.id))
    return {}
  }

  private legacyMissing(kind: LegacyKind, params: Record<string, string>, username: string): ApiError {
    const spec = LEGACY_KINDS[kind]
    const where =
      kind === 'experiment'
        ? `experiment_id=${params.experiment_id} and`
        : kind === 'registered_model'
          ? `workspace=default, name=${params.name} and`
          : `experiment_id=${params.experiment_id}, scorer_name=${params.scorer_name} and`
    return new ApiError('RESOURCE_DOES_NOT_EXIST', `${spec.label} with ${where} username=${username} not found`)
  }

  // ---- unified grants (MLflow 3.13+; every type, `*` and DENY as 3.17) ----

  /** The three parameters that name a per-user row; ids spelled as serve keeps them (below). */
  private unifiedParams(call: AuthCall): {id: string; type: string; username: string} {
    const username = stringParam(call, 'username')
    const type = stringParam(call, 'resource_type')
    const id = stringParam(call, 'resource_id')
    // Stricter than MLflow: rows are matched by the id's string, so an experiment id in another
    // spelling, or a scorer id without its experiment (which MLflow stores from an admin), would
    // name nothing.
    if (id !== WILDCARD && type === 'experiment') canonicalId(id, 'resource_id')
    if (id !== WILDCARD && type === 'scorer') {
      const problem = perUserResolveProblem(type, id)
      if (problem) throw new ApiError('INVALID_PARAMETER_VALUE', problem)
      canonicalId(id.slice(0, id.indexOf('/')), 'resource_id')
    }

    return {id, type, username}
  }

  /**
   * The per-user API's own resolution of one resource: MLflow answers 400 for a type it cannot
   * resolve single resources of (prompts, the sub-resource tiers).
   */
  private resolvable(type: string, id: string): void {
    const problem = perUserTypeProblem(type) ?? (id === WILDCARD ? undefined : perUserResolveProblem(type, id))
    if (problem) throw new ApiError('INVALID_PARAMETER_VALUE', problem)
  }

  /**
   * Who may grant or revoke a user's row, as MLflow 3.17: admins; on `*` (a row on no resource
   * whose MANAGE could delegate it) the workspace's admins, as the role API; on one resource,
   * holders of MANAGE on it.
   */
  private requireGrantor(call: AuthCall, type: string, id: string): void {
    if (call.user.isAdmin) return
    this.resolvable(type, id)
    if (id === WILDCARD) {
      if (!this.adminWorkspaces(call.user).has(DEFAULT_WORKSPACE)) throw permissionDenied({rule: "auth API: a grant on '*' needs a workspace admin"})
      return
    }

    this.requireManage(call, type, id)
  }

  private async grant(call: AuthCall): Promise<unknown> {
    const {id, type, username} = this.unifiedParams(call)
    this.requireGrantor(call, type, id)
    const permission = param(call, 'permission')
    const user = this.targetUser(username)
    const problem = perUserGrantProblem(type, id, permission)
    if (problem) throw new ApiError('INVALID_PARAMETER_VALUE', problem)
    if (this.options.store.getGrant(user.id, type, id)) {
      throw new ApiError('RESOURCE_ALREADY_EXISTS', `Permission for user=${user.username} on resource_type=${type}, resource_id=${id} already exists.`)
    }

    await this.storeCall(() => this.options.store.createGrant({permission: permission as string, resourceId: id, resourceType: type, userId: user.id}))
    return {}
  }

  private async revoke(call: AuthCall): Promise<unknown> {
    const {id, type, username} = this.unifiedParams(call)
    this.requireGrantor(call, type, id)
    const user = this.targetUser(username)
    const problem = perUserTypeProblem(type)
    if (problem) throw new ApiError('INVALID_PARAMETER_VALUE', problem)
    if (!this.options.store.getGrant(user.id, type, id)) {
      throw new ApiError('RESOURCE_DOES_NOT_EXIST', `Permission for user=${user.username} on resource_type=${type}, resource_id=${id} not found.`)
    }

    await this.storeCall(() => this.options.store.deleteGrant(user.id, type, id))
    return {}
  }

  /**
   * The level MLflow resolves for a user on one resource (or on `*`), from rows and
   * default_permission alone: as MLflow, it does not know platform admins. Admins, the user
   * themself, and the workspace's admins (about a resource the API can resolve) may ask.
   */
  private async getGrant(call: AuthCall): Promise<unknown> {
    const {id, type, username} = this.unifiedParams(call)
    if (type === 'workspace') throw new ApiError('INVALID_PARAMETER_VALUE', WORKSPACE_PER_USER_MESSAGE)
    if (!call.user.isAdmin && call.user.username !== username) {
      const resolvable = perUserTypeProblem(type) === undefined && (id === WILDCARD || perUserResolveProblem(type, id) === undefined)
      if (!this.options.store.getUser(username) || !resolvable || !this.adminWorkspaces(call.user).has(DEFAULT_WORKSPACE))
        throw permissionDenied({rule: "auth API: another user's level, for admins and workspace admins only"})
    }

    const user = this.targetUser(username)
    this.resolvable(type, id)
    const level = effectiveLevel(this.options.store, user, type, id, this.options.defaultPermission)
    return {allowed: capabilities(level).canUse, permission: level}
  }

  /** Every row of every role the user holds, their per-user role's included (MLflow 3.14+). */
  private async listGrants(call: AuthCall): Promise<unknown> {
    const user = this.userRolesTarget(call)
    const rows = this.userRows(user.id)
    return {is_admin: user.isAdmin, permissions: this.seesAllOf(call, user) ? rows : rows.filter((row) => this.adminWorkspaces(call.user).has(row.workspace))}
  }

  private userRows(userId: number) {
    const {store} = this.options
    return store.listUserRoles(userId).flatMap((role) =>
      store.listRolePermissions(role.id).map((row) => ({
        permission: row.permission,
        resource_pattern: row.resourcePattern,
        resource_type: row.resourceType,
        role_id: role.id,
        role_name: role.name,
        workspace: role.workspace,
      })),
    )
  }

  // ---- roles (MLflow 3.14+) ----

  /** Workspaces where the user administers (holds a role there with the row `(workspace, *, MANAGE)`). */
  private adminWorkspaces(user: UserRecord): Set<string> {
    const {store} = this.options
    return new Set(
      store
        .listUserRoles(user.id)
        .filter((role) => store.listRolePermissions(role.id).some((row) => isWorkspaceAdminRow(row)))
        .map((role) => role.workspace),
    )
  }

  /** Workspaces where the user holds any role (their per-user role counts). */
  private presentWorkspaces(user: UserRecord): Set<string> {
    return new Set(this.options.store.listUserRoles(user.id).map((role) => role.workspace))
  }

  /**
   * The workspace a role request is about (MLflow's `_get_role_workspace_from_request`): the
   * role's, the row's role's, or the `workspace` given; undefined when the role or row does not
   * exist, which the caller refuses without saying so.
   */
  private requestWorkspace(call: AuthCall): string | undefined {
    const {store} = this.options
    const params = requestParams(call)
    if ('role_id' in params) return store.getRole(toInt('role_id', params.role_id))?.workspace
    if ('role_permission_id' in params) {
      const row = store.getRolePermission(toInt('role_permission_id', params.role_permission_id))
      return row && store.getRole(row.roleId)?.workspace
    }

    if ('workspace' in params) {
      const {workspace} = params
      if (typeof workspace !== 'string' || !workspace.trim()) throw new ApiError('INVALID_PARAMETER_VALUE', "Parameter 'workspace' must be a non-empty string.")
      return workspace
    }

    throw new ApiError('INVALID_PARAMETER_VALUE', 'Request must include one of: role_id, role_permission_id, workspace.')
  }

  /** Changing roles, their rows and assignments: admins, and administrators of the role's workspace. */
  private requireManageRoles(call: AuthCall): void {
    if (call.user.isAdmin) return
    const workspace = this.requestWorkspace(call)
    if (workspace === undefined || !this.adminWorkspaces(call.user).has(workspace))
      throw permissionDenied({rule: "auth API: changing roles needs an admin of the role's workspace"})
  }

  /** Reading a role and its rows: admins, and anyone holding a role in its workspace. */
  private requireViewRoles(call: AuthCall): void {
    if (call.user.isAdmin) return
    const workspace = this.requestWorkspace(call)
    if (workspace === undefined || !this.presentWorkspaces(call.user).has(workspace))
      throw permissionDenied({rule: 'auth API: reading a role needs a role in its workspace'})
  }

  /**
   * Whose roles and rows a caller may list: their own, anyone's for an admin, and for a workspace
   * administrator those of users present in a workspace they administer (who then see only that
   * workspace's part). An unknown user is refused to non-admins, not reported missing.
   */
  private userRolesTarget(call: AuthCall): UserRecord {
    const username = stringParam(call, 'username')
    const user = this.options.store.getUser(username)
    if (!call.user.isAdmin && call.user.username !== username) {
      const administered = this.adminWorkspaces(call.user)
      if (!user || ![...this.presentWorkspaces(user)].some((workspace) => administered.has(workspace)))
        throw permissionDenied({rule: "auth API: another user's roles, for admins and admins of their workspaces only"})
    }

    if (!user) throw userNotFound(username)
    return user
  }

  private seesAllOf(call: AuthCall, user: UserRecord): boolean {
    return call.user.isAdmin || call.user.id === user.id
  }

  private requireRole(roleId: number): RoleRecord {
    const role = this.options.store.getRole(roleId)
    if (!role) throw new ApiError('RESOURCE_DOES_NOT_EXIST', `Role with id=${roleId} not found`)
    return role
  }

  private roleJson(role: RoleRecord) {
    return {
      description: role.description,
      id: role.id,
      name: role.name,
      permissions: this.options.store.listRolePermissions(role.id).map((row) => rowJson(row)),
      workspace: role.workspace,
    }
  }

  private async createRole(call: AuthCall): Promise<unknown> {
    this.requireManageRoles(call)
    const name = presentParam(call, 'name')
    const workspace = presentParam(call, 'workspace')
    if (typeof name !== 'string' || !name.trim()) throw new ApiError('INVALID_PARAMETER_VALUE', 'Role name cannot be empty.')
    if (typeof workspace !== 'string' || !workspace.trim()) throw new ApiError('INVALID_PARAMETER_VALUE', 'Workspace cannot be empty.')
    const description = call.body?.description ?? null
    if (description !== null && typeof description !== 'string') throw new ApiError('INVALID_PARAMETER_VALUE', 'Role description must be a string or null.')
    // Stricter than MLflow, which stores a role in any workspace named: serve has only the default
    // one, and a role elsewhere would never apply.
    if (workspace !== DEFAULT_WORKSPACE) {
      throw new ApiError(
        'INVALID_PARAMETER_VALUE',
        `Workspace '${workspace}' does not exist: mlflowctl serve has no workspaces, and roles live in '${DEFAULT_WORKSPACE}'.`,
      )
    }

    const role = await this.storeCall(() => this.options.store.createRole({description, name, workspace}))
    return {role: this.roleJson(role)}
  }

  private async getRole(call: AuthCall): Promise<unknown> {
    this.requireViewRoles(call)
    return {role: this.roleJson(this.requireRole(intParam(call, 'role_id')))}
  }

  private async listRoles(call: AuthCall): Promise<unknown> {
    const workspaces = call.query.getAll('workspace')
    if (!call.user.isAdmin) {
      // Non-admins name the workspaces, and must hold a role in each.
      const requested = workspaces.map((workspace) => workspace.trim()).filter(Boolean)
      const present = this.presentWorkspaces(call.user)
      if (requested.length === 0 || !requested.every((workspace) => present.has(workspace)))
        throw permissionDenied({rule: 'auth API: listing roles needs a role in each workspace named'})
    }

    if (workspaces.some((workspace) => !workspace.trim()))
      throw new ApiError('INVALID_PARAMETER_VALUE', "Parameter 'workspace' must be a non-empty string when provided.")
    return {roles: this.options.store.listRoles(workspaces.length > 0 ? workspaces : undefined).map((role) => this.roleJson(role))}
  }

  private async updateRole(call: AuthCall): Promise<unknown> {
    this.requireManageRoles(call)
    const roleId = intParam(call, 'role_id')
    const name = call.body?.name ?? undefined
    const description = call.body?.description ?? undefined
    if (name === undefined && description === undefined)
      throw new ApiError('INVALID_PARAMETER_VALUE', "At least one of 'name' or 'description' must be provided to update a role.")
    if (name !== undefined && (typeof name !== 'string' || !name.trim())) throw new ApiError('INVALID_PARAMETER_VALUE', 'Role name cannot be empty.')
    if (description !== undefined && typeof description !== 'string') throw new ApiError('INVALID_PARAMETER_VALUE', 'Role description must be a string.')
    const role = await this.storeCall(() => this.options.store.updateRole(roleId, {description, name}))
    return {role: this.roleJson(role)}
  }

  private async deleteRole(call: AuthCall): Promise<unknown> {
    this.requireManageRoles(call)
    const roleId = intParam(call, 'role_id')
    await this.storeCall(() => this.options.store.deleteRole(roleId))
    return {}
  }

  private async addRolePermission(call: AuthCall): Promise<unknown> {
    this.requireManageRoles(call)
    const roleId = intParam(call, 'role_id')
    const resourceType = presentParam(call, 'resource_type')
    const pattern = presentParam(call, 'resource_pattern')
    const permission = presentParam(call, 'permission')
    const problem = rowProblem(resourceType, pattern, permission)
    if (problem) throw new ApiError('INVALID_PARAMETER_VALUE', problem)
    // MLflow stores a number as its text, and fails on null with a misleading "already exists".
    if (typeof pattern !== 'string' && typeof pattern !== 'number')
      throw new ApiError('INVALID_PARAMETER_VALUE', `Parameter 'resource_pattern' must be a string. Got: ${pythonRepr(pattern)}`)
    const row = await this.storeCall(() =>
      this.options.store.addRolePermission({permission: permission as string, resourcePattern: String(pattern), resourceType: resourceType as string, roleId}),
    )
    return {role_permission: rowJson(row)}
  }

  private async removeRolePermission(call: AuthCall): Promise<unknown> {
    this.requireManageRoles(call)
    const rowId = intParam(call, 'role_permission_id')
    await this.storeCall(() => this.options.store.removeRolePermission(rowId))
    return {}
  }

  private async listRolePermissions(call: AuthCall): Promise<unknown> {
    this.requireViewRoles(call)
    const role = this.requireRole(intParam(call, 'role_id'))
    return {role_permissions: this.options.store.listRolePermissions(role.id).map((row) => rowJson(row))}
  }

  private async updateRolePermission(call: AuthCall): Promise<unknown> {
    this.requireManageRoles(call)
    const rowId = intParam(call, 'role_permission_id')
    const permission = presentParam(call, 'permission')
    const row = await this.storeCall(() => this.options.store.updateRolePermission(rowId, permission as string))
    return {role_permission: rowJson(row)}
  }

  private async assignRole(call: AuthCall): Promise<unknown> {
    this.requireManageRoles(call)
    const username = presentParam(call, 'username')
    const roleId = intParam(call, 'role_id')
    const user = this.namedUser(username)
    const assignment = await this.storeCall(() => this.options.store.assignRole(user.id, roleId))
    return {assignment: assignmentJson(assignment)}
  }

  private async unassignRole(call: AuthCall): Promise<unknown> {
    this.requireManageRoles(call)
    const username = presentParam(call, 'username')
    const roleId = intParam(call, 'role_id')
    const user = this.namedUser(username)
    await this.storeCall(() => this.options.store.unassignRole(user.id, roleId))
    return {}
  }

  private async listUserRoles(call: AuthCall): Promise<unknown> {
    const user = this.userRolesTarget(call)
    let roles = this.options.store.listUserRoles(user.id)
    if (!this.seesAllOf(call, user)) {
      const administered = this.adminWorkspaces(call.user)
      roles = roles.filter((role) => administered.has(role.workspace))
    }

    return {roles: roles.map((role) => this.roleJson(role))}
  }

  private async listRoleUsers(call: AuthCall): Promise<unknown> {
    this.requireManageRoles(call)
    const role = this.requireRole(intParam(call, 'role_id'))
    return {assignments: this.options.store.listRoleUsers(role.id).map((assignment) => assignmentJson(assignment))}
  }

  // ---- helpers ----

  /** The classic User JSON (with the permission arrays the 3.x Python client requires). */
  private userJson(user: UserRecord) {
    const grants = this.options.store.listGrants(user.id)
    const of = (type: string) => grants.filter((grant) => grant.resourceType === type)
    return {
      // Only where true, so answers about other users stay MLflow's to the byte.
      ...(isServiceAccount(user) ? {is_service_account: true} : {}),
      experiment_permissions: of('experiment').map((grant) => ({experiment_id: grant.resourceId, permission: grant.permission, user_id: user.id})),
      id: user.id,
      is_admin: user.isAdmin,
      registered_model_permissions: of('registered_model').map((grant) => ({
        name: grant.resourceId,
        permission: grant.permission,
        user_id: user.id,
        workspace: 'default',
      })),
      scorer_permissions: of('scorer').map((grant) => {
        const slash = grant.resourceId.indexOf('/')
        return {
          experiment_id: grant.resourceId.slice(0, slash),
          permission: grant.permission,
          scorer_name: decodeURIComponent(grant.resourceId.slice(slash + 1)),
          user_id: user.id,
        }
      }),
      username: user.username,
    }
  }

  // ---- access tokens (serve's own) ----

  /**
   * Whose tokens a call is about: `username` when given, else the caller. Admins may name anyone;
   * others only themselves (a call made with a token acts as its user, so it may manage that user's
   * tokens too).
   */
  private tokenOwner(call: AuthCall): UserRecord {
    const named = param(call, 'username', {optional: true})
    if (named === undefined || named === '') return call.user
    if (typeof named !== 'string') throw new ApiError('INVALID_PARAMETER_VALUE', "Parameter 'username' must be a string.")
    requireSelfOrAdmin(call, named)
    return this.namedUser(named)
  }

  private tokenJson(token: TokenRecord) {
    const pending = this.options.tokenLastUse?.(token.id)
    const lastUsed = pending !== undefined && (token.lastUsedAt === null || pending > token.lastUsedAt) ? pending : token.lastUsedAt
    return {
      created_at: token.createdAt,
      expires_at: token.expiresAt,
      id: token.id,
      last_used_at: lastUsed,
      name: token.name,
      user_id: token.userId,
      username: this.options.store.getUserById(token.userId)?.username ?? null,
    }
  }

  private async createToken(call: AuthCall): Promise<unknown> {
    if (!isJsonMediaType(call.contentType)) throw new PlainError(400, 'Invalid content type. Must be application/json')
    const owner = this.tokenOwner(call)
    const name = presentParam(call, 'name')
    if (typeof name !== 'string' || !name.trim() || name.length > 200)
      throw new ApiError('INVALID_PARAMETER_VALUE', "Parameter 'name' must be a non-empty string of at most 200 characters.")
    const lifetime = Object.hasOwn(call.body ?? {}, 'expires_in_seconds') ? call.body!.expires_in_seconds : DEFAULT_TOKEN_LIFETIME_SECONDS
    if (lifetime !== null && (typeof lifetime !== 'number' || !Number.isSafeInteger(lifetime) || lifetime < 1 || lifetime > MAX_TOKEN_LIFETIME_SECONDS))
      throw new ApiError(
        'INVALID_PARAMETER_VALUE',
        `Parameter 'expires_in_seconds' must be a whole number of seconds from 1 to ${MAX_TOKEN_LIFETIME_SECONDS}, or null for a token that never expires.`,
      )
    const held = this.options.store.listTokens(owner.id)
    if (held.some((token) => token.name === name))
      throw new ApiError('RESOURCE_ALREADY_EXISTS', `Token (username=${owner.username}, name=${name}) already exists.`)
    // Every token is held in memory by every replica: one user cannot make that unbounded.
    if (held.length >= MAX_TOKENS_PER_USER)
      throw new ApiError(
        'INVALID_PARAMETER_VALUE',
        `User ${owner.username} already has ${held.length} access tokens, the most one user may hold: revoke some (expired ones too) first.`,
      )
    const now = Date.now()
    const {digest, text} = newToken()
    const token = await this.storeCall(() =>
      this.options.store.createToken({
        createdAt: new Date(now).toISOString(),
        digest,
        expiresAt: lifetime === null ? null : new Date(now + (lifetime as number) * 1000).toISOString(),
        name,
        userId: owner.id,
      }),
    )
    // The only time the token is ever shown: the store keeps its digest.
    return {token: text, token_info: this.tokenJson(token)}
  }

  /** A user's tokens (any user's, for an admin who names no one: all of them), never their text. */
  private async listTokens(call: AuthCall): Promise<unknown> {
    const named = param(call, 'username', {optional: true})
    const tokens =
      call.user.isAdmin && (named === undefined || named === '') ? this.options.store.listTokens() : this.options.store.listTokens(this.tokenOwner(call).id)
    return {tokens: tokens.map((token) => this.tokenJson(token))}
  }

  /** By `name` (of `username`, default the caller) or by `id`; either way only the owner or an admin. */
  private async revokeToken(call: AuthCall): Promise<unknown> {
    const rawId = param(call, 'id', {optional: true})
    let token: TokenRecord | undefined
    let owner: UserRecord
    if (rawId !== undefined && rawId !== '') {
      const id = toInt('id', rawId)
      token = this.options.store.getToken(id)
      // Someone else's token is as not found as one that is not there: ids say nothing about others.
      if (token && !call.user.isAdmin && token.userId !== call.user.id) token = undefined
      if (!token) throw new ApiError('RESOURCE_DOES_NOT_EXIST', `Token with id=${id} not found`)
      owner = this.options.store.getUserById(token.userId)!
    } else {
      owner = this.tokenOwner(call)
      const name = presentParam(call, 'name')
      token = this.options.store.listTokens(owner.id).find((candidate) => candidate.name === name)
      if (!token) throw new ApiError('RESOURCE_DOES_NOT_EXIST', `Token (username=${owner.username}, name=${pythonStr(name)}) not found`)
    }

    const revoked = token
    await this.storeCall(() => this.options.store.deleteToken(revoked.id))
    return {}
  }

  /** Store refusals become MLflow's errors; anything else is a real failure. */
  private async storeCall<T>(write: () => Promise<T>): Promise<T> {
    try {
      return await write()
    } catch (error) {
      if (error instanceof StoreError) throw new ApiError(error.code, error.message)
      throw error
    }
  }
}

function rowJson(row: RolePermissionRecord) {
  return {id: row.id, permission: row.permission, resource_pattern: row.resourcePattern, resource_type: row.resourceType, role_id: row.roleId}
}

function assignmentJson(assignment: AssignmentRecord) {
  return {id: assignment.id, role_id: assignment.roleId, user_id: assignment.userId}
}

function summary(user: UserRecord) {
  return {id: user.id, is_admin: user.isAdmin, username: user.username}
}
