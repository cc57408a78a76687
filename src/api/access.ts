/**
 * "Who may do what on this resource, and why": a user's effective level on one resource, computed
 * from the rows the server lists (every role the user holds, their per-user role included) with
 * MLflow's own fold (src/mlflow/rbac.ts, docs/mlflow-rbac.md), then checked against the level the
 * server itself resolves (users/permissions/get), so an explanation never silently disagrees
 * with what the server enforces.
 */
import {MlflowApiError} from '../client/http.js'
import {ExitCode, UserError} from '../core/errors.js'
import {type Level} from '../mlflow/permissions.js'
import {decide, describeRoleRow, isUserRoleName, isWorkspaceAdminRow, type RoleRow} from '../mlflow/rbac.js'
import {DEFAULT_WORKSPACE, type RolesApi, type UserPermissionRow} from './roles-api.js'

/** What decided; `server` when the rows explain another level than the server resolves (then the server's level is shown). */
export type AccessSource = 'default' | 'deny' | 'platform-admin' | 'role' | 'server' | 'user-grant' | 'workspace-admin'

export interface DecidingRow {
  permission: string
  /** True for the user's own grant (their hidden per-user role). */
  per_user: boolean
  resource_pattern: string
  resource_type: string
  role: string
  role_id?: number
}

export interface AccessVerdict {
  /** False when the server resolves another level than the rows explain (reason says which). */
  agrees?: boolean
  /** A positive row raised to default_permission. */
  floored?: boolean
  is_admin: boolean
  permission: string
  reason: string
  rows: DecidingRow[]
  /** The level the server itself resolves (users/permissions/get); absent for platform admins. */
  server_permission?: string
  source: AccessSource
  username: string
}

export interface AccessTarget {
  resourceId: string
  resourceType: string
}

interface Holder {
  is_admin: boolean
  rows: RoleRow[]
  username: string
}

/** Rows that apply with MLflow's workspaces off: those of roles in the default workspace. */
function applicable(rows: UserPermissionRow[]): RoleRow[] {
  return rows
    .filter((row) => (row.workspace ?? DEFAULT_WORKSPACE) === DEFAULT_WORKSPACE)
    .map((row) => ({
      permission: row.permission,
      resourcePattern: row.resource_pattern,
      resourceType: row.resource_type,
      roleId: row.role_id,
      roleName: row.role_name,
    }))
}

export async function holder(api: RolesApi, username: string): Promise<Holder> {
  const {is_admin: isAdmin, permissions} = await api.userPermissions(username)
  return {is_admin: isAdmin, rows: applicable(permissions), username}
}

/** Types a probe for default_permission may use: any id works when the prober has no row of the type. */
const PROBE_TYPES = ['experiment', 'registered_model', 'prompt']

/**
 * MLflow's default_permission, which no endpoint names: the level the server resolves for a user
 * who holds no row of a resource type (and is no workspace admin) is exactly that default.
 */
export async function learnDefault(api: RolesApi, candidates: Holder[], target: AccessTarget): Promise<Level> {
  const types = [...new Set([...(target.resourceType === 'scorer' ? [] : [target.resourceType]), ...PROBE_TYPES])]
  for (const candidate of candidates) {
    if (candidate.rows.some((row) => isWorkspaceAdminRow(row))) continue
    for (const type of types) {
      if (candidate.rows.some((row) => row.resourceType === type)) continue
      try {
        const probeId = type === target.resourceType ? target.resourceId : '0'
        return (await api.effectivePermission(candidate.username, type, probeId)).permission as Level
      } catch (error) {
        // A type this server does not know: try the next.
        if (error instanceof MlflowApiError && error.status === 400) continue
        throw error
      }
    }
  }

  throw new UserError("Could not learn the server's default permission: every user checked holds rows on every resource type tried", {
    code: 'DEFAULT_UNKNOWN',
    exit: ExitCode.Unexpected,
  })
}

function describeRow(row: DecidingRow): string {
  return describeRoleRow({permission: row.permission, resourcePattern: row.resource_pattern, resourceType: row.resource_type, roleName: row.role})
}

/** The verdict for one user, explained, before the server's own answer is compared. */
export function explain(user: Holder, target: AccessTarget, defaultPermission: Level): AccessVerdict {
  const base = {is_admin: user.is_admin, username: user.username}
  if (user.is_admin) return {...base, permission: 'MANAGE', reason: 'platform admin (may do anything)', rows: [], source: 'platform-admin'}
  const decision = decide(user.rows, [target], defaultPermission)
  if (decision.source === 'default') {
    return {...base, permission: decision.level, reason: `no row applies: the server's default_permission (${decision.level})`, rows: [], source: 'default'}
  }

  const rows = decision.rows.map((row): DecidingRow => ({
    permission: row.permission,
    per_user: isUserRoleName(row.roleName ?? ''),
    resource_pattern: row.resourcePattern,
    resource_type: row.resourceType,
    role: row.roleName ?? '',
    ...(row.roleId === undefined ? {} : {role_id: row.roleId}),
  }))
  const why = rows.map((row) => describeRow(row)).join('; ')
  if (decision.source === 'workspace-admin') return {...base, permission: 'MANAGE', reason: `workspace admin: ${why}`, rows, source: 'workspace-admin'}
  if (decision.level === 'DENY') return {...base, permission: 'DENY', reason: `denied by ${why}`, rows, source: 'deny'}
  const floored = decision.level !== rows[0].permission
  return {
    ...base,
    ...(floored ? {floored} : {}),
    permission: decision.level,
    reason: floored ? `${why}, raised to the server's default_permission (${decision.level})` : why,
    rows,
    source: rows.every((row) => row.per_user) ? 'user-grant' : 'role',
  }
}

/**
 * Each user's verdict on the target, and default_permission. `others` (the caller, say) are only
 * asked for when the users checked cannot reveal the default.
 */
export async function accessOf(
  api: RolesApi,
  usernames: string[],
  target: AccessTarget,
  others: () => Promise<string[]> = async () => [],
): Promise<{defaultPermission: Level; verdicts: AccessVerdict[]}> {
  const holders: Holder[] = []
  for (const username of usernames) holders.push(await holder(api, username))
  let defaultPermission: Level
  try {
    defaultPermission = await learnDefault(api, holders, target)
  } catch (error) {
    if (!(error instanceof UserError && error.code === 'DEFAULT_UNKNOWN')) throw error
    const extra: Holder[] = []
    for (const username of (await others()).filter((name) => !usernames.includes(name))) extra.push(await holder(api, username))
    defaultPermission = await learnDefault(api, extra, target)
  }

  const verdicts: AccessVerdict[] = []
  for (const user of holders) {
    const verdict = explain(user, target, defaultPermission)
    if (!user.is_admin) {
      // MLflow's resolver leaves platform admins out (they pass before any row is read).
      const server = await api.effectivePermission(user.username, target.resourceType, target.resourceId)
      verdict.server_permission = server.permission
      verdict.agrees = server.permission === verdict.permission
      if (!verdict.agrees) {
        // What the server enforces wins: never report a level it does not apply.
        verdict.reason = `the server resolves ${server.permission}, where the rows listed give ${verdict.permission} (${verdict.reason}): workspaces, or a rule this mlflowctl does not know`
        verdict.permission = server.permission
        verdict.source = 'server'
      }
    }

    verdicts.push(verdict)
  }

  return {defaultPermission, verdicts}
}
