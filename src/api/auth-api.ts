/**
 * MLflow's auth REST API (the basic-auth app, and `mlflowctl serve`), typed, for both surfaces:
 * - legacy: per-resource permission endpoints (/api/2.0/mlflow/experiments/permissions/*, …),
 *   served up to MLflow 3.12;
 * - unified: /api/3.0/mlflow/users/permissions/{grant,revoke,get,list}, MLflow 3.13 and later.
 * The surface is detected from the server's answers, never asked of the user: the unified call is
 * tried first and a missing endpoint falls back to the legacy one (and is remembered).
 */
import {MlflowApiError, type MlflowHttp} from '../client/http.js'
import {ExitCode, UserError} from '../core/errors.js'
import {type Level} from '../mlflow/permissions.js'
import {
  ALL_RESOURCES,
  DENY_SINCE,
  kindOfType,
  LEGACY_PERMISSION_ENDPOINTS,
  PERMISSION_KINDS,
  type PermissionKind,
  type ResourceType,
  scorerResourceId,
  UNIFIED_PERMISSIONS_PATH,
  UNIFIED_SINCE,
} from '../mlflow/resources.js'

export type PermissionLevel = Level

export type ResourceKind = PermissionKind

/** The kinds MLflow up to 3.12 grants on, through its per-resource endpoints. */
type LegacyKind = 'experiment' | 'model' | 'scorer'

/**
 * What a permission is on. `scorer` is the scorer `name` within experiment `experimentId`;
 * `{kind, id: '*'}` is every resource of the kind. `experimentName` is only for people reading
 * messages; requests use ids. Every other kind is its MLflow id or name in `id`.
 */
export type Resource =
  | {experimentId: string; experimentName?: string; kind: 'scorer'; name: string}
  | {experimentName?: string; id: string; kind: 'experiment'}
  | {id: string; kind: Exclude<ResourceKind, 'experiment' | 'scorer'>}
  | {id: typeof ALL_RESOURCES; kind: 'scorer'}

export interface User {
  experiment_permissions?: Array<{experiment_id: string; permission: string}>
  id: number
  is_admin: boolean
  /** mlflowctl serve's: a user with no password, used through access tokens only. */
  is_service_account?: boolean
  registered_model_permissions?: Array<{name: string; permission: string}>
  scorer_permissions?: Array<{experiment_id: string; permission: string; scorer_name: string}>
  username: string
}

export interface UserSummary {
  id: number
  is_admin?: boolean
  username: string
}

export interface PermissionRow {
  /** A scorer's experiment name, where known. */
  experiment_name?: string
  kind: ResourceKind | string
  /** The experiment's name, the model's name, the scorer's name, where known. */
  name?: string
  permission: string
  /** Experiment id, model name, or `<experiment id>/<scorer name>`. */
  resource: string
  /** 'direct' for a grant to the user; otherwise the role it comes from. */
  via: string
}

export type Surface = 'legacy' | 'unified'

const unifiedType = (kind: ResourceKind): string => PERMISSION_KINDS[kind].type

const LEGACY_TYPE: Record<LegacyKind, ResourceType> = {experiment: 'experiment', model: 'registered_model', scorer: 'scorer'}

const LEGACY = Object.fromEntries(
  Object.entries(LEGACY_TYPE).map(([kind, type]) => {
    const {key, path, prefix} = LEGACY_PERMISSION_ENDPOINTS[type]
    return [kind, {key, path: `${prefix}${path}`}]
  }),
) as Record<LegacyKind, {key: string; path: string}>

const UNIFIED = `/api/3.0${UNIFIED_PERMISSIONS_PATH}`

/** Does the resource name every resource of its kind (`*`)? */
export function isAllResources(resource: Resource): boolean {
  return 'id' in resource && resource.id === ALL_RESOURCES
}

export function describeResource(resource: Resource): string {
  if (isAllResources(resource)) return `all ${PERMISSION_KINDS[resource.kind].plural} (${ALL_RESOURCES})`
  switch (resource.kind) {
    case 'experiment': {
      return `experiment ${withName(resource.id, resource.experimentName)}`
    }

    case 'model': {
      return `registered model ${resource.id}`
    }

    case 'scorer': {
      return 'name' in resource ? `scorer ${resource.name} of experiment ${withName(resource.experimentId, resource.experimentName)}` : 'all scorers'
    }

    default: {
      return `${PERMISSION_KINDS[resource.kind].noun} ${resource.id}`
    }
  }
}

/** `42 ("2024")`: an id with its name beside it, quoted so a name that looks like an id cannot be mistaken for one. */
export function withName(id: string, name: string | undefined): string {
  return name === undefined ? id : `${id} (${JSON.stringify(name)})`
}

/** The scorer name in a scorer's resource id `<experiment id>/<quoted name>`. */
function scorerNameOf(resourceId: string): string | undefined {
  const slash = resourceId.indexOf('/')
  if (slash < 0) return undefined
  try {
    return decodeURIComponent(resourceId.slice(slash + 1))
  } catch {
    return undefined
  }
}

function unifiedId(resource: Resource): string {
  return 'id' in resource ? resource.id : scorerResourceId(resource.experimentId, resource.name)
}

type LegacyResource =
  | {experimentId: string; experimentName?: string; kind: 'scorer'; name: string}
  | {experimentName?: string; id: string; kind: 'experiment'}
  | {id: string; kind: 'model'}

function legacyParams(resource: LegacyResource): Record<string, string> {
  if ('id' in resource) return resource.kind === 'experiment' ? {experiment_id: resource.id} : {name: resource.id}
  return {experiment_id: resource.experimentId, scorer_name: resource.name}
}

function unsupported(message: string): UserError {
  return new UserError(message, {code: 'UNSUPPORTED', exit: ExitCode.Unsupported})
}

function kindMissing(kind: ResourceKind): UserError {
  const {plural, since} = PERMISSION_KINDS[kind] as {plural: string; since?: string}
  return unsupported(`This server does not take permissions on ${plural}: MLflow added them in ${since ?? UNIFIED_SINCE}.`)
}

const denyMissing = () => unsupported(`This server does not take DENY: MLflow added it in ${DENY_SINCE}.`)

/**
 * MLflow up to 3.12 has only the per-resource endpoints: no other kinds, no DENY, and no `*`
 * (its endpoints would store `*` as the id of an experiment, which matches nothing). Says so
 * before any request; returns the resource as one those endpoints take.
 */
function legacyResource(resource: Resource, level?: string): LegacyResource {
  if (!(resource.kind in LEGACY)) throw kindMissing(resource.kind)
  if (isAllResources(resource))
    throw unsupported(`This server does not take '${ALL_RESOURCES}' for all ${PERMISSION_KINDS[resource.kind].plural}: MLflow added it in ${UNIFIED_SINCE}.`)
  if (level === 'DENY') throw denyMissing()
  return resource as LegacyResource
}

/**
 * A unified server older than the feature refuses it in MLflow's words (an unknown resource type,
 * or DENY among unknown levels): that becomes one sentence naming the release that added it.
 */
function featureMissing(error: unknown, resource: Resource, level?: string): unknown {
  if (!(error instanceof MlflowApiError) || error.status !== 400) return error
  if (error.message.includes(`Invalid resource type '${unifiedType(resource.kind)}'`)) return kindMissing(resource.kind)
  if (level === 'DENY' && error.message.includes("Invalid permission 'DENY'. ")) return denyMissing()
  return error
}

interface UnifiedRow {
  permission: string
  resource_pattern: string
  resource_type: string
  role_id?: number
  role_name?: string
}

/** MLflow stores a user's own grants in a hidden role named `__user_<id>__`. */
function isDirect(row: UnifiedRow): boolean {
  return !row.role_name || row.role_name.startsWith('__user_')
}

function isCode(error: unknown, code: string): error is MlflowApiError {
  return error instanceof MlflowApiError && error.errorCode === code
}

export class AuthApi {
  private surfaceKnown: Surface | undefined

  constructor(private readonly http: MlflowHttp) {}

  // ---- users ----

  async createUser(username: string, password: string): Promise<User> {
    return (await this.http.post<{user: User}>('/api/2.0/mlflow/users/create', {password, username})).user
  }

  /** mlflowctl serve's: a user with no password, for tokens only. MLflow refuses a user without a password. */
  async createServiceAccount(username: string): Promise<User> {
    try {
      return (await this.http.post<{user: User}>('/api/2.0/mlflow/users/create', {service_account: true, username})).user
    } catch (error) {
      if (error instanceof MlflowApiError && error.status === 400 && error.message.includes('Username and password cannot be empty')) {
        throw new UserError('This server does not offer service accounts: they are a feature of mlflowctl serve, not of MLflow’s basic-auth app', {
          cause: error,
          code: 'UNSUPPORTED',
          exit: ExitCode.Unsupported,
        })
      }

      throw error
    }
  }

  async getUser(username: string): Promise<User> {
    return (await this.http.get<{user: User}>('/api/2.0/mlflow/users/get', {username})).user
  }

  /** The caller, where the server has users/current (MLflow 3.13+ and serve); else undefined. */
  async currentUser(): Promise<undefined | UserSummary> {
    try {
      return (await this.http.get<{user: UserSummary}>('/api/2.0/mlflow/users/current')).user
    } catch (error) {
      if (error instanceof MlflowApiError && error.endpointMissing) return undefined
      throw error
    }
  }

  /**
   * Who the server says the caller is: users/current where it exists, else users/get for
   * `username` (the Basic login's), which older servers answer for users asking about themselves.
   */
  async caller(username: string | undefined): Promise<UserSummary> {
    const current = await this.currentUser()
    if (current) return current
    if (!username) {
      throw new UserError('This server cannot tell who a token belongs to (it has no users/current)', {
        code: 'UNSUPPORTED',
        exit: ExitCode.Unsupported,
        hint: 'Pass --user explicitly.',
      })
    }

    const user = await this.getUser(username)
    return {id: user.id, is_admin: user.is_admin, username: user.username}
  }

  async listUsers(): Promise<UserSummary[]> {
    try {
      return (await this.http.get<{users?: UserSummary[]}>('/api/2.0/mlflow/users/list')).users ?? []
    } catch (error) {
      if (error instanceof MlflowApiError && error.endpointMissing) {
        throw new UserError('This server cannot list users (MLflow added users/list in 3.10)', {
          code: 'UNSUPPORTED',
          exit: ExitCode.Unsupported,
          hint: 'Use `mlflowctl users get USERNAME` for a known user.',
        })
      }

      throw error
    }
  }

  /** `currentPassword` is required by MLflow 3.13+ when users change their own password. */
  async updatePassword(username: string, password: string, currentPassword?: string): Promise<void> {
    await this.http.patch('/api/2.0/mlflow/users/update-password', {
      password,
      username,
      ...(currentPassword === undefined ? {} : {current_password: currentPassword}),
    })
  }

  /**
   * Refuses, before any change, to take the last admin a server lists (by demotion or deletion):
   * MLflow itself would let it happen and leave nobody able to manage users. Where the server
   * cannot tell (no users/list, no is_admin in it, the caller may not list), the server decides.
   */
  async refuseLastAdmin(username: string, doing: 'delete' | 'demote'): Promise<void> {
    let users: UserSummary[]
    try {
      users = await this.listUsers()
    } catch (error) {
      if (error instanceof UserError && error.code === 'UNSUPPORTED') return
      if (error instanceof MlflowApiError && error.status < 500) return
      throw error
    }

    if (users.some((user) => user.is_admin === undefined)) return
    const target = users.find((user) => user.username === username)
    if (!target?.is_admin || users.some((user) => user.is_admin && user.username !== username)) return
    throw new UserError(`${username} is the last admin of this server: to ${doing} them would leave no one able to manage users; nothing was changed`, {
      code: 'LAST_ADMIN',
      exit: ExitCode.Usage,
      hint: 'Make another user an admin first (`mlflowctl users promote USER`).',
    })
  }

  async setAdmin(username: string, isAdmin: boolean): Promise<void> {
    await this.http.patch('/api/2.0/mlflow/users/update-admin', {is_admin: isAdmin, username})
  }

  /**
   * MLflow up to 3.12 does not remove a user's permission rows with the user: its database refuses
   * the delete (a 400 carrying the raw SQL IntegrityError) and nothing changes. That answer becomes
   * USER_HAS_PERMISSIONS, saying what to do, instead of the SQL text.
   */
  async deleteUser(username: string): Promise<void> {
    try {
      await this.http.delete('/api/2.0/mlflow/users/delete', {username})
    } catch (error) {
      if (!(error instanceof MlflowApiError && error.status < 500 && /IntegrityError|constraint|Violation/i.test(error.message))) throw error
      const held = await this.list(username).then(
        (rows) => rows.filter((row) => row.via === 'direct').length,
        () => undefined,
      )
      throw new UserError(
        held
          ? `${username} still holds ${held} permission${held === 1 ? '' : 's'}, and this MLflow server (3.12 or older) cannot delete a user who does; nothing was deleted`
          : `MLflow's database refused to delete ${username}; nothing was deleted`,
        {
          cause: error,
          code: held ? 'USER_HAS_PERMISSIONS' : 'DELETE_REFUSED',
          exit: ExitCode.Usage,
          hint: held
            ? `Run again with --revoke-permissions to revoke them first, or revoke them with \`mlflowctl perms revoke\` (\`mlflowctl perms list --user ${username}\` lists them).`
            : "Check the MLflow server's log for the reason.",
          status: error.status,
        },
      )
    }
  }

  /** Revokes every permission the user holds directly (not through roles); returns how many. */
  async revokeAll(username: string): Promise<number> {
    const grants = await this.bySurface(
      async () => {
        const {permissions = []} = await this.http.get<{permissions?: UnifiedRow[]}>(`${UNIFIED}/list`, {username})
        return permissions
          .filter((row) => isDirect(row))
          .map((row) => () => this.http.post(`${UNIFIED}/revoke`, {resource_id: row.resource_pattern, resource_type: row.resource_type, username}))
      },
      async () => {
        const user = await this.getUser(username)
        const resources: LegacyResource[] = [
          ...(user.experiment_permissions ?? []).map((row): LegacyResource => ({id: row.experiment_id, kind: 'experiment'})),
          ...(user.registered_model_permissions ?? []).map((row): LegacyResource => ({id: row.name, kind: 'model'})),
          ...(user.scorer_permissions ?? []).map((row): LegacyResource => ({experimentId: row.experiment_id, kind: 'scorer', name: row.scorer_name})),
        ]
        return resources.map((resource) => () => this.http.delete(`${LEGACY[resource.kind].path}/delete`, {...legacyParams(resource), username}))
      },
    )
    for (const revoke of grants) await revoke()
    return grants.length
  }

  // ---- permissions ----

  /** Creates the permission, or updates the existing one. */
  async grant(resource: Resource, username: string, level: string): Promise<'created' | 'updated'> {
    try {
      await this.create(resource, username, level)
      return 'created'
    } catch (error) {
      if (!isCode(error, 'RESOURCE_ALREADY_EXISTS')) throw error
    }

    await this.update(resource, username, level)
    return 'updated'
  }

  async create(resource: Resource, username: string, level: string): Promise<void> {
    await this.byFeature(
      resource,
      level,
      () => this.http.post(`${UNIFIED}/grant`, {permission: level, resource_id: unifiedId(resource), resource_type: unifiedType(resource.kind), username}),
      (legacy) => this.http.post(`${LEGACY[legacy.kind].path}/create`, {...legacyParams(legacy), permission: level, username}),
    )
  }

  /** Changes an existing permission; NotFound when the user has none on the resource. */
  async update(resource: Resource, username: string, level: string): Promise<void> {
    await this.byFeature(
      resource,
      level,
      () => this.updateUnified(resource, username, level),
      (legacy) => this.http.patch(`${LEGACY[legacy.kind].path}/update`, {...legacyParams(legacy), permission: level, username}),
    )
  }

  async revoke(resource: Resource, username: string): Promise<void> {
    await this.byFeature(
      resource,
      undefined,
      () => this.http.post(`${UNIFIED}/revoke`, {resource_id: unifiedId(resource), resource_type: unifiedType(resource.kind), username}),
      (legacy) => this.http.delete(`${LEGACY[legacy.kind].path}/delete`, {...legacyParams(legacy), username}),
    )
  }

  /** The user's explicit permission on the resource; NotFound when there is none. */
  async get(resource: Resource, username: string): Promise<string> {
    return this.byFeature(
      resource,
      undefined,
      async () => {
        const row = await this.directRow(resource, username)
        if (!row) throw this.noPermission(resource, username)
        return row.permission
      },
      async (legacy) => {
        const response = await this.http.get<Record<string, {permission: string}>>(`${LEGACY[legacy.kind].path}/get`, {...legacyParams(legacy), username})
        return response[LEGACY[legacy.kind].key].permission
      },
    )
  }

  /** Everything the user holds explicitly (and, on the unified surface, through roles). */
  async list(username: string): Promise<PermissionRow[]> {
    return this.bySurface(
      async () => {
        const {permissions = []} = await this.http.get<{permissions?: UnifiedRow[]}>(`${UNIFIED}/list`, {username})
        return permissions.map((row) => {
          const kind = kindOfType(row.resource_type) ?? row.resource_type
          // '*' names no single resource; experiments and gateway objects are named by id.
          const name =
            row.resource_pattern === ALL_RESOURCES
              ? undefined
              : kind === 'scorer'
                ? scorerNameOf(row.resource_pattern)
                : kind in PERMISSION_KINDS && PERMISSION_KINDS[kind as ResourceKind].by === 'name'
                  ? row.resource_pattern
                  : undefined
          return {
            kind,
            ...(name === undefined ? {} : {name}),
            permission: row.permission,
            resource: row.resource_pattern,
            via: isDirect(row) ? 'direct' : `role ${row.role_name}`,
          }
        })
      },
      async () => {
        const user = await this.getUser(username)
        return [
          ...(user.experiment_permissions ?? []).map((row) => ({kind: 'experiment', permission: row.permission, resource: row.experiment_id, via: 'direct'})),
          ...(user.registered_model_permissions ?? []).map((row) => ({
            kind: 'model',
            name: row.name,
            permission: row.permission,
            resource: row.name,
            via: 'direct',
          })),
          ...(user.scorer_permissions ?? []).map((row) => ({
            kind: 'scorer',
            name: row.scorer_name,
            permission: row.permission,
            resource: scorerResourceId(row.experiment_id, row.scorer_name),
            via: 'direct',
          })),
        ]
      },
    )
  }

  /**
   * Exit 8 up front when the server has only the legacy endpoints and they cannot take the
   * resource or level, so that a grant says so before it looks the resource up. Any answer other
   * than a missing endpoint leaves the question to the request itself.
   */
  async requireSurfaceFor(resource: Resource, username: string, level?: string): Promise<void> {
    if (resource.kind in LEGACY && !isAllResources(resource) && level !== 'DENY') return
    if (this.surfaceKnown === undefined) {
      try {
        await this.http.get(`${UNIFIED}/list`, {username})
        this.surfaceKnown = 'unified'
      } catch (error) {
        if (error instanceof MlflowApiError && error.endpointMissing) this.surfaceKnown = 'legacy'
      }
    }

    if (this.surfaceKnown === 'legacy') legacyResource(resource, level)
  }

  /**
   * bySurface for one resource and level: the legacy endpoints get only what they can take (else
   * exit 8 before any request), and a unified server too old for the kind or for DENY is named
   * as such.
   */
  private async byFeature<T>(
    resource: Resource,
    level: string | undefined,
    unified: () => Promise<T>,
    legacy: (resource: LegacyResource) => Promise<T>,
  ): Promise<T> {
    return this.bySurface(
      async () => {
        try {
          return await unified()
        } catch (error) {
          throw featureMissing(error, resource, level)
        }
      },
      async () => legacy(legacyResource(resource, level)),
    )
  }

  private async bySurface<T>(unified: () => Promise<T>, legacy: () => Promise<T>): Promise<T> {
    if (this.surfaceKnown === 'legacy') return legacy()
    try {
      const result = await unified()
      this.surfaceKnown = 'unified'
      return result
    } catch (error) {
      // Another request may have found the surface meanwhile (apply sends several at once): a
      // missing unified endpoint means legacy unless some unified call has already succeeded.
      if (!(error instanceof MlflowApiError && error.endpointMissing && this.surfaceKnown !== 'unified')) throw error
      this.surfaceKnown = 'legacy'
      return legacy()
    }
  }

  /** The user's own grant on the resource (unified surface), with the synthetic role holding it. */
  private async directRow(resource: Resource, username: string): Promise<(PermissionRow & {roleId?: number}) | undefined> {
    const type = unifiedType(resource.kind)
    const id = unifiedId(resource)
    const {permissions = []} = await this.http.get<{permissions?: UnifiedRow[]}>(`${UNIFIED}/list`, {username})
    const row = permissions.find((candidate) => candidate.resource_type === type && candidate.resource_pattern === id && isDirect(candidate))
    return row && {kind: resource.kind, permission: row.permission, resource: id, roleId: row.role_id, via: 'direct'}
  }

  /**
   * The unified API has grant and revoke but no update, and grant refuses an existing row. MLflow
   * keeps a user's grants in a hidden per-user role, whose row an admin can update in place. Where
   * that is not allowed (a non-admin manager), update is revoke then grant, and a failed grant puts
   * the previous permission back, so a failed update never leaves the user with less than before.
   */
  private async updateUnified(resource: Resource, username: string, level: string): Promise<void> {
    const previous = await this.directRow(resource, username)
    if (!previous) throw this.noPermission(resource, username)
    if (previous.permission === level) return
    if (previous.roleId !== undefined) {
      try {
        const {role_permissions: rows = []} = await this.http.get<{role_permissions?: Array<{id: number; resource_pattern: string; resource_type: string}>}>(
          '/api/3.0/mlflow/roles/permissions/list',
          {role_id: String(previous.roleId)},
        )
        const row = rows.find((candidate) => candidate.resource_type === unifiedType(resource.kind) && candidate.resource_pattern === previous.resource)
        if (row) {
          await this.http.patch('/api/3.0/mlflow/roles/permissions/update', {permission: level, role_permission_id: row.id})
          return
        }
      } catch (error) {
        if (!(error instanceof MlflowApiError && (error.status === 403 || error.endpointMissing))) throw error
      }
    }

    const body = {resource_id: previous.resource, resource_type: unifiedType(resource.kind), username}
    await this.http.post(`${UNIFIED}/revoke`, body)
    try {
      await this.http.post(`${UNIFIED}/grant`, {...body, permission: level})
    } catch (error) {
      await this.http.post(`${UNIFIED}/grant`, {...body, permission: previous.permission}).catch(() => {})
      throw error
    }
  }

  private noPermission(resource: Resource, username: string): UserError {
    return new UserError(`${username} has no permission of their own on ${describeResource(resource)}`, {
      code: 'RESOURCE_DOES_NOT_EXIST',
      exit: ExitCode.NotFound,
      hint: `The server's default permission (or a role) applies. Grant one with \`mlflowctl perms grant ${resource.kind} …\`.`,
    })
  }
}
