/**
 * MLflow's role API (its basic-auth app since MLflow 3.12; docs/mlflow-rbac.md), typed as the
 * server answers it: roles, their permission rows, who holds them, and every row a user holds.
 * Calls are thin; what needs more than one call (a role by name, a row by its resource) is here
 * too, so the commands stay one call each.
 */
import {MlflowApiError, type MlflowHttp, whenEndpointMissing} from '../client/http.js'
import {ExitCode, UserError} from '../core/errors.js'
import {isUserRoleName} from '../mlflow/rbac.js'

/** The workspace every role lives in when MLflow's workspaces are off. */
export const DEFAULT_WORKSPACE = 'default'

const ROLES = '/api/3.0/mlflow/roles'
const USERS = '/api/3.0/mlflow/users'

export interface RolePermission {
  id: number
  permission: string
  resource_pattern: string
  resource_type: string
  role_id: number
}

export interface Role {
  description: null | string
  id: number
  name: string
  permissions: RolePermission[]
  workspace: string
}

export interface RoleAssignment {
  id: number
  role_id: number
  user_id: number
}

/** One row of users/permissions/list: a row of one of the user's roles, with the role named. */
export interface UserPermissionRow {
  permission: string
  resource_pattern: string
  resource_type: string
  role_id: number
  role_name: string
  workspace?: string
}

export interface UserPermissions {
  is_admin: boolean
  permissions: UserPermissionRow[]
}

/** users/permissions/get: the level MLflow resolves for the user, as its own checks would. */
export interface EffectivePermission {
  allowed: boolean
  permission: string
}

/** The server has no role API: MLflow's basic-auth app before 3.12, or another server. */
export function noRoles(cause?: unknown): UserError {
  return new UserError('This server does not offer roles: MLflow added them to its basic-auth app in 3.12', {
    cause,
    code: 'UNSUPPORTED',
    exit: ExitCode.Unsupported,
  })
}

/** The server has roles but not the per-user views of them (users/permissions/list and get). */
export function noUserPermissions(cause?: unknown): UserError {
  return new UserError("This server cannot list a user's permissions: MLflow added users/permissions/list and get in 3.13", {
    cause,
    code: 'UNSUPPORTED',
    exit: ExitCode.Unsupported,
  })
}

/** MLflow's duplicate answers carry the raw SQL error; the first sentence says it all. */
function alreadyExists(error: MlflowApiError, message: string): UserError {
  return new UserError(message, {cause: error, code: 'RESOURCE_ALREADY_EXISTS', exit: ExitCode.AlreadyExists, status: error.status})
}

function isCode(error: unknown, code: string): error is MlflowApiError {
  return error instanceof MlflowApiError && error.errorCode === code
}

export class RolesApi {
  constructor(private readonly http: MlflowHttp) {}

  // ---- roles ----

  async create(workspace: string, name: string, description?: string): Promise<Role> {
    try {
      return (await this.call(() => this.http.post<{role: Role}>(`${ROLES}/create`, {name, workspace, ...(description === undefined ? {} : {description})})))
        .role
    } catch (error) {
      if (isCode(error, 'RESOURCE_ALREADY_EXISTS')) throw alreadyExists(error, `A role named "${name}" already exists in workspace ${workspace}`)
      throw error
    }
  }

  async get(roleId: number): Promise<Role> {
    return (await this.call(() => this.http.get<{role: Role}>(`${ROLES}/get`, {role_id: String(roleId)}))).role
  }

  /** The roles of one workspace (the per-user roles included). */
  async list(workspace: string): Promise<Role[]> {
    return (await this.call(() => this.http.get<{roles?: Role[]}>(`${ROLES}/list`, {workspace}))).roles ?? []
  }

  async update(roleId: number, changes: {description?: string; name?: string}): Promise<Role> {
    try {
      return (await this.call(() => this.http.patch<{role: Role}>(`${ROLES}/update`, {role_id: roleId, ...changes}))).role
    } catch (error) {
      if (isCode(error, 'RESOURCE_ALREADY_EXISTS')) throw alreadyExists(error, `A role named "${changes.name}" already exists in this workspace`)
      throw error
    }
  }

  async delete(roleId: number): Promise<void> {
    await this.call(() => this.http.delete(`${ROLES}/delete`, {role_id: roleId}))
  }

  /**
   * A role by name in a workspace, or by id. MLflow's role API takes ids only; names are how
   * people know roles, and are unique within a workspace.
   */
  async find(selector: {id: number} | {name: string; workspace: string}): Promise<Role> {
    if ('id' in selector) return this.get(selector.id)
    const role = (await this.list(selector.workspace)).find((candidate) => candidate.name === selector.name)
    if (!role) {
      throw new UserError(`There is no role named "${selector.name}" in workspace ${selector.workspace}`, {
        code: 'RESOURCE_DOES_NOT_EXIST',
        exit: ExitCode.NotFound,
        hint: '`mlflowctl roles list` lists the roles.',
      })
    }

    return role
  }

  // ---- a role's rows ----

  async addPermission(roleId: number, resourceType: string, resourcePattern: string, permission: string): Promise<RolePermission> {
    try {
      const body = {permission, resource_pattern: resourcePattern, resource_type: resourceType, role_id: roleId}
      return (await this.call(() => this.http.post<{role_permission: RolePermission}>(`${ROLES}/permissions/add`, body))).role_permission
    } catch (error) {
      if (isCode(error, 'RESOURCE_ALREADY_EXISTS')) throw alreadyExists(error, `The role already has a permission on ${resourceType} ${resourcePattern}`)
      throw error
    }
  }

  async removePermission(rolePermissionId: number): Promise<void> {
    await this.call(() => this.http.delete(`${ROLES}/permissions/remove`, {role_permission_id: rolePermissionId}))
  }

  async listPermissions(roleId: number): Promise<RolePermission[]> {
    return (
      (await this.call(() => this.http.get<{role_permissions?: RolePermission[]}>(`${ROLES}/permissions/list`, {role_id: String(roleId)}))).role_permissions ??
      []
    )
  }

  async updatePermission(rolePermissionId: number, permission: string): Promise<RolePermission> {
    const body = {permission, role_permission_id: rolePermissionId}
    return (await this.call(() => this.http.patch<{role_permission: RolePermission}>(`${ROLES}/permissions/update`, body))).role_permission
  }

  // ---- who holds a role ----

  async assign(username: string, roleId: number): Promise<RoleAssignment> {
    try {
      return (await this.call(() => this.http.post<{assignment: RoleAssignment}>(`${ROLES}/assign`, {role_id: roleId, username}))).assignment
    } catch (error) {
      if (isCode(error, 'RESOURCE_ALREADY_EXISTS')) throw alreadyExists(error, `${username} already holds this role`)
      throw error
    }
  }

  async unassign(username: string, roleId: number): Promise<void> {
    await this.call(() => this.http.delete(`${ROLES}/unassign`, {role_id: roleId, username}))
  }

  async members(roleId: number): Promise<RoleAssignment[]> {
    return (await this.call(() => this.http.get<{assignments?: RoleAssignment[]}>(`${ROLES}/users/list`, {role_id: String(roleId)}))).assignments ?? []
  }

  /** Every role the user holds, their per-user role included. */
  async rolesOf(username: string): Promise<Role[]> {
    return (await this.call(() => this.http.get<{roles?: Role[]}>(`${USERS}/roles/list`, {username}))).roles ?? []
  }

  // ---- a user's rows and MLflow's verdict (3.13+) ----

  /** Every row of every role the user holds, with `is_admin`. */
  async userPermissions(username: string): Promise<UserPermissions> {
    const answer = await whenEndpointMissing(this.http.get<Partial<UserPermissions>>(`${USERS}/permissions/list`, {username}), noUserPermissions)
    return {is_admin: answer.is_admin ?? false, permissions: answer.permissions ?? []}
  }

  /** The level MLflow itself resolves for the user on one resource (platform admins aside). */
  async effectivePermission(username: string, resourceType: string, resourceId: string): Promise<EffectivePermission> {
    return whenEndpointMissing(
      this.http.get<EffectivePermission>(`${USERS}/permissions/get`, {resource_id: resourceId, resource_type: resourceType, username}),
      noUserPermissions,
    )
  }

  /** A missing role endpoint is a server without roles, said in one sentence. */
  private call<T>(request: () => Promise<T>): Promise<T> {
    return whenEndpointMissing(request(), noRoles)
  }
}

/** The hidden per-user role holding a user's own grants: managed with `perms`, never as a role. */
export function isPerUserRole(role: Pick<Role, 'name'>): boolean {
  return isUserRoleName(role.name)
}
