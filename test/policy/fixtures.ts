/**
 * Hand-built access policies for the plan and apply tests, a model of a server that applies plan
 * changes to one, and what a user may do on an experiment under MLflow's fold (src/mlflow/rbac.ts).
 */
import {ExitCode, UserError} from '../../src/core/errors.js'
import {type Level} from '../../src/mlflow/permissions.js'
import {decide, type RoleRow} from '../../src/mlflow/rbac.js'
import {type ApplyTarget, rank} from '../../src/policy/apply.js'
import {
  type AccessPolicy,
  type Grant,
  type PasswordSource,
  POLICY_KINDS,
  type PolicyKind,
  type RolePolicy,
  roleKey,
  type Target,
  targetKey,
} from '../../src/policy/model.js'
import {type Change} from '../../src/policy/plan.js'

export function target(kind: PolicyKind, pattern: string, label = pattern): Target {
  return {kind, label, pattern}
}

export const exp = (id: string, name = id === '*' ? '*' : `exp ${id}`) => target('experiment', id, name)

export function grants(...items: Array<[Target, string]>): Map<string, Grant> {
  return new Map(items.map(([t, level]) => [targetKey(t), {level, target: t}]))
}

export interface UserSpec {
  admin?: boolean
  grants?: Array<[Target, string]>
  password?: PasswordSource
}

export interface RoleSpec {
  description?: null | string
  members?: string[]
  rows?: Array<[Target, string]>
  workspace?: string
}

export function policy(users: Record<string, UserSpec>, roles: Record<string, RoleSpec> = {}): AccessPolicy {
  const result: AccessPolicy = {roles: new Map(), users: new Map()}
  for (const [name, spec] of Object.entries(users)) {
    result.users.set(name, {admin: spec.admin ?? false, grants: grants(...(spec.grants ?? [])), name, ...(spec.password ? {password: spec.password} : {})})
  }

  for (const [name, spec] of Object.entries(roles)) {
    const role: RolePolicy = {
      description: spec.description ?? null,
      members: new Set(spec.members ?? []),
      name,
      rows: grants(...(spec.rows ?? [])),
      workspace: spec.workspace ?? 'default',
    }
    result.roles.set(roleKey(role), role)
  }

  return result
}

export function clone(source: AccessPolicy): AccessPolicy {
  return {
    roles: new Map([...source.roles].map(([key, role]) => [key, {...role, members: new Set(role.members), rows: new Map(role.rows)}])),
    users: new Map([...source.users].map(([key, user]) => [key, {...user, grants: new Map(user.grants)}])),
  }
}

/** Applies one change to a model of a server, failing where the server would (the change does not fit the state). */
export function applyTo(state: AccessPolicy, change: Change): void {
  const fail = (why: string) => {
    throw new Error(`${change.what} ${change.action}: ${why}`)
  }

  const roleOf = (ref: {name: string; workspace: string}) => state.roles.get(roleKey(ref)) ?? fail('no such role')
  switch (change.what) {
    case 'user': {
      if (state.users.has(change.user)) fail('user exists')
      state.users.set(change.user, {admin: false, grants: new Map(), name: change.user})
      return
    }

    case 'admin': {
      ;(state.users.get(change.user) ?? fail('no such user')).admin = change.to
      return
    }

    case 'grant':
    case 'row': {
      const map = change.what === 'grant' ? (state.users.get(change.user) ?? fail('no such user')).grants : roleOf(change.role).rows
      const key = targetKey(change.target)
      if (change.action === 'add' && map.has(key)) fail('exists')
      if (change.action !== 'add' && !map.has(key)) fail('missing')
      if (change.action === 'remove') map.delete(key)
      else map.set(key, {level: change.to!, target: change.target})
      return
    }

    case 'role': {
      const key = roleKey(change.role)
      if (change.action === 'add') {
        if (state.roles.has(key)) fail('role exists')
        state.roles.set(key, {description: change.to ?? null, members: new Set(), name: change.role.name, rows: new Map(), workspace: change.role.workspace})
      } else if (!state.roles.delete(key)) fail('no such role')
      return
    }

    case 'description': {
      roleOf(change.role).description = change.to
      return
    }

    case 'member': {
      if (!state.users.has(change.user)) fail('no such user')
      const {members} = roleOf(change.role)
      if (change.action === 'add') members.add(change.user)
      else members.delete(change.user)
    }
  }
}

/** A server model as an apply target; `failAt` (1-based) makes that request fail as an unreachable server would. */
export class FakeTarget implements ApplyTarget {
  calls: Array<{change: Change; password?: string}> = []
  constructor(
    readonly state: AccessPolicy,
    private readonly options: {failAt?: number; onChange?: (state: AccessPolicy) => void} = {},
  ) {}

  async apply(change: Change, password?: string): Promise<void> {
    const number = this.calls.push({change, password})
    await new Promise((resolve) => setImmediate(resolve))
    if (number === this.options.failAt) {
      throw new UserError('MLflow did not answer', {code: 'UNAVAILABLE', exit: ExitCode.Unavailable})
    }

    applyTo(this.state, change)
    this.options.onChange?.(this.state)
  }
}

/** What `user` may do on experiment `id` (a rank, ./apply.ts's scale; admins above all; -1 for no account). */
export function effective(state: AccessPolicy, user: string, id: string, defaultPermission: Level): number {
  const account = state.users.get(user)
  if (!account) return -1
  if (account.admin) return 99
  const rows: RoleRow[] = []
  const add = (grant: Grant, roleName: string) =>
    rows.push({permission: grant.level, resourcePattern: grant.target.pattern, resourceType: POLICY_KINDS[grant.target.kind].type, roleName})
  for (const grant of account.grants.values()) add(grant, `__user_${user}__`)
  for (const role of state.roles.values()) if (role.members.has(user)) for (const row of role.rows.values()) add(row, role.name)
  return rank(decide(rows, [{resourceId: id, resourceType: 'experiment'}], defaultPermission).level)
}
