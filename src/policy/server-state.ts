/**
 * What a live server holds, read into an AccessPolicy (./model.ts), and the read-only lookups a
 * policy file is resolved with.
 *
 * Exports:
 * - readServerState(session): Promise<AccessPolicy> — every user (admin flag, own grants), every
 *   role of every workspace (rows, description, members). Needs an admin. Experiments are
 *   labelled with their names (their ids when none is found).
 * - serverResolver(session): Resolver — for ./file.ts: feature probes and name lookups, each asked
 *   once per run.
 * - ServerSession: what both need of a session (the CLI's Session is one).
 *
 * Two generations of MLflow's basic-auth app:
 * - 3.17 and serve: `users/list` answers every user with every role they hold, rows included
 *   (a user's own grants are the rows of their hidden role `__user_<id>__`), and `roles/list`
 *   the roles nobody holds: two requests whatever the size.
 * - up to 3.12 (and any server whose `users/list` carries no roles): per user `users/get` (admin
 *   flag and the per-resource grants of the legacy endpoints; on 3.13–3.16 `users/permissions/list`
 *   instead), and where roles exist `roles/list` and each role's members, a few requests at a time.
 */
import {type AuthApi, type UserSummary} from '../api/auth-api.js'
import {type Role, type RolesApi, type UserPermissionRow} from '../api/roles-api.js'
import {type TrackingApi} from '../api/tracking-api.js'
import {MlflowApiError, type MlflowHttp} from '../client/http.js'
import {ExitCode, UserError} from '../core/errors.js'
import {mapLimit} from '../core/map-limit.js'
import {DEFAULT_WORKSPACE, userIdOfRoleName} from '../mlflow/rbac.js'
import {ALL_RESOURCES, kindOfType, scorerNameOfId, scorerResourceId} from '../mlflow/resources.js'
import {type Feature, type Resolver} from './file.js'
import {type AccessPolicy, type Grant, type PolicyKind, roleKey, type RolePolicy, type Target, targetKey, type UserPolicy} from './model.js'

export interface ServerSession {
  api: AuthApi
  http: MlflowHttp
  roles: RolesApi
  tracking: TrackingApi
  whoami(): Promise<UserSummary>
}

/** Requests in flight at once while reading many users or roles: enough to hide latency, few enough not to load the server. */
const AT_ONCE = 8

const UNIFIED = '/api/3.0/mlflow/users/permissions'

function missing(error: unknown): boolean {
  return error instanceof MlflowApiError && error.endpointMissing
}

/** A resource type the server accepts? Asked with a read that an older server refuses by naming the type. */
async function typeKnown(http: MlflowHttp, username: string, resourceType: string, resourceId: string): Promise<boolean> {
  try {
    await http.get(`${UNIFIED}/get`, {resource_id: resourceId, resource_type: resourceType, username})
    return true
  } catch (error) {
    if (missing(error)) return false
    return !(error instanceof MlflowApiError && error.message.includes(`Invalid resource type '${resourceType}'`))
  }
}

/** Memoised lookups: a file naming one experiment a hundred times asks once. */
function memo<A, R>(lookup: (arg: A) => Promise<R>): (arg: A) => Promise<R> {
  const cache = new Map<A, Promise<R>>()
  return (arg) => {
    let result = cache.get(arg)
    if (!result) {
      result = lookup(arg)
      cache.set(arg, result)
    }

    return result
  }
}

export function serverResolver(session: ServerSession): Resolver {
  let caller: Promise<string> | undefined
  const me = () => (caller ??= session.whoami().then((user) => user.username))
  const probes: Record<Feature, () => Promise<boolean>> = {
    // The sub-resource tiers came with DENY (3.17): an older unified server names `run` unknown.
    deny: async () => (await supports('unified')) && typeKnown(session.http, await me(), 'run', ALL_RESOURCES),
    mcp: async () => (await supports('unified')) && typeKnown(session.http, await me(), 'mcp_server', ALL_RESOURCES),
    async roles() {
      try {
        await session.roles.list(DEFAULT_WORKSPACE)
        return true
      } catch (error) {
        if (error instanceof UserError && error.code === 'UNSUPPORTED') return false
        throw error
      }
    },
    async unified() {
      try {
        await session.http.get(`${UNIFIED}/list`, {username: await me()})
        return true
      } catch (error) {
        if (missing(error)) return false
        throw error
      }
    },
  }
  const supports = memo(async (feature: Feature) => probes[feature]())

  return {
    experimentId: memo(async (name: string) => {
      try {
        return (await session.tracking.experimentByName(name)).id
      } catch (error) {
        if (error instanceof UserError && error.code === 'RESOURCE_DOES_NOT_EXIST') return undefined
        throw error
      }
    }),
    experimentName: memo(async (id: string) => {
      const lookup = await session.tracking.experimentById(id)
      return lookup.found ? lookup.experiment.name : undefined
    }),
    modelExists: memo((name: string) => session.tracking.registeredModelExists(name)),
    promptExists: memo((name: string) => session.tracking.promptExists(name)),
    supports,
  }
}

interface Row {
  permission: string
  resource_pattern: string
  resource_type: string
}

/** A row as a grant; experiments and scorers labelled once every experiment's name is known. */
function grantOf(row: Row, where: string): Grant {
  const kind: PolicyKind | undefined = row.resource_type === 'workspace' ? 'workspace' : kindOfType(row.resource_type)
  if (!kind) {
    throw new UserError(`${where} holds a permission on "${row.resource_type}", a resource type this mlflowctl does not know`, {
      code: 'UNSUPPORTED',
      exit: ExitCode.Unsupported,
      hint: 'A newer mlflowctl may know it.',
    })
  }

  return {level: row.permission, target: {kind, label: row.resource_pattern, pattern: row.resource_pattern}}
}

function addGrant(grants: Map<string, Grant>, grant: Grant): void {
  grants.set(targetKey(grant.target), grant)
}

/** The experiment id a target names, if any (an experiment's, or a scorer's experiment). */
function experimentIdOf(target: Target): string | undefined {
  if (target.pattern === ALL_RESOURCES) return undefined
  if (target.kind === 'experiment') return target.pattern
  if (target.kind === 'scorer') return target.pattern.slice(0, target.pattern.indexOf('/'))
  return undefined
}

/** Experiments by name, scorers as `<experiment>/<scorer name>`: how the file names them. */
async function label(policy: AccessPolicy, tracking: TrackingApi): Promise<void> {
  const grants = [
    ...[...policy.users.values()].flatMap((user) => [...user.grants.values()]),
    ...[...policy.roles.values()].flatMap((role) => [...role.rows.values()]),
  ]
  const ids = grants.map((grant) => experimentIdOf(grant.target)).filter((id): id is string => id !== undefined)
  const names = await tracking.experimentNames(ids)
  for (const {target} of grants) {
    const id = experimentIdOf(target)
    if (id === undefined) continue
    const experiment = names.get(id) ?? id
    target.label = target.kind === 'scorer' ? `${experiment}/${scorerNameOfId(target.pattern)}` : experiment
  }
}

async function requireAdmin(session: ServerSession): Promise<void> {
  const me = await session.whoami()
  if (!me.is_admin) {
    throw new UserError(`${me.username} is not an admin: reading every user's and role's permissions needs one`, {
      code: 'PERMISSION_DENIED',
      exit: ExitCode.PermissionDenied,
    })
  }
}

interface ListedUser extends UserSummary {
  roles?: Role[]
}

export async function readServerState(session: ServerSession): Promise<AccessPolicy> {
  await requireAdmin(session)
  const listed = (await session.http.get<{users?: ListedUser[]}>('/api/2.0/mlflow/users/list')).users ?? []
  const policy: AccessPolicy = {roles: new Map(), users: new Map()}
  const byId = new Map<number, UserPolicy>()
  for (const user of listed) {
    const entry: UserPolicy = {admin: user.is_admin === true, grants: new Map(), name: user.username}
    policy.users.set(user.username, entry)
    byId.set(user.id, entry)
  }

  // Every workspace's roles (no workspace named); a server without roles has none.
  const rolesOf = async (): Promise<Role[]> => {
    try {
      return (await session.http.get<{roles?: Role[]}>('/api/3.0/mlflow/roles/list')).roles ?? []
    } catch (error) {
      if (missing(error)) return []
      throw error
    }
  }

  const addRole = (role: Role): RolePolicy => {
    const key = roleKey(role)
    let entry = policy.roles.get(key)
    if (!entry) {
      entry = {description: role.description ?? null, members: new Set(), name: role.name, rows: new Map(), workspace: role.workspace}
      for (const row of role.permissions ?? []) addGrant(entry.rows, grantOf(row, `Role ${role.name}`))
      policy.roles.set(key, entry)
    }

    return entry
  }

  if (listed.every((user) => Array.isArray(user.roles))) {
    // 3.17 and serve: the roster carries every role each user holds, with its rows.
    for (const user of listed) {
      const entry = policy.users.get(user.username)!
      for (const role of user.roles!) {
        if (userIdOfRoleName(role.name) === undefined) addRole(role).members.add(user.username)
        else for (const row of role.permissions ?? []) addGrant(entry.grants, grantOf(row, `User ${user.username}`))
      }
    }

    for (const role of await rolesOf()) if (userIdOfRoleName(role.name) === undefined) addRole(role)
  } else {
    await readPerUser(session, listed, policy)
    const roles = (await rolesOf()).filter((role) => userIdOfRoleName(role.name) === undefined)
    const members = await mapLimit(roles, AT_ONCE, (role) => session.roles.members(role.id))
    for (const [index, role] of roles.entries()) {
      const entry = addRole(role)
      for (const assignment of members[index]) {
        const user = byId.get(assignment.user_id)
        if (user) entry.members.add(user.name)
      }
    }
  }

  await label(policy, session.tracking)
  return policy
}

/** Servers whose roster carries no roles: each user's admin flag and own grants, one or two requests each. */
async function readPerUser(session: ServerSession, listed: ListedUser[], policy: AccessPolicy): Promise<void> {
  let unified: boolean | undefined
  await mapLimit(listed, AT_ONCE, async (user) => {
    const entry = policy.users.get(user.username)!
    if (unified !== false) {
      try {
        const answer = await session.http.get<{is_admin?: boolean; permissions?: UserPermissionRow[]}>(`${UNIFIED}/list`, {username: user.username})
        unified = true
        entry.admin = answer.is_admin === true
        for (const row of answer.permissions ?? []) {
          if (userIdOfRoleName(row.role_name) !== undefined) addGrant(entry.grants, grantOf(row, `User ${user.username}`))
        }

        return
      } catch (error) {
        if (!missing(error) || unified === true) throw error
        unified = false
      }
    }

    // Up to 3.12: the per-resource grants, with the admin flag, from users/get.
    const full = await session.api.getUser(user.username)
    entry.admin = full.is_admin
    for (const row of full.experiment_permissions ?? []) {
      addGrant(entry.grants, {level: row.permission, target: {kind: 'experiment', label: row.experiment_id, pattern: row.experiment_id}})
    }

    for (const row of full.registered_model_permissions ?? []) {
      addGrant(entry.grants, {level: row.permission, target: {kind: 'model', label: row.name, pattern: row.name}})
    }

    for (const row of full.scorer_permissions ?? []) {
      const pattern = scorerResourceId(row.experiment_id, row.scorer_name)
      addGrant(entry.grants, {level: row.permission, target: {kind: 'scorer', label: pattern, pattern}})
    }
  })
}
