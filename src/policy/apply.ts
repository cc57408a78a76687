/**
 * `apply`: carry out a plan (./plan.ts) on a server, in an order that never lets anyone hold more
 * than the old and the new policy together allow, a few requests at a time, stopping at the first
 * failure. docs/access-as-code.md ("Why apply's order keeps everyone within old ∪ new") gives the
 * argument behind phases().
 */
import {randomBytes} from 'node:crypto'

import {type AuthApi, type Resource} from '../api/auth-api.js'
import {type Role, type RolesApi} from '../api/roles-api.js'
import {ExitCode, UserError} from '../core/errors.js'
import {ALL_RESOURCES} from '../mlflow/resources.js'
import {type AccessPolicy, POLICY_KINDS, roleKey, type Target, targetKey} from './model.js'
import {type Change, type Plan, type RoleRef} from './plan.js'

// ---- order ----

/**
 * Levels in the order of what they let a user do, with "no row" between the vetoes and the
 * positive levels: a missing row gives default_permission, which a veto (DENY, NO_PERMISSIONS)
 * overrides and a positive level can only raise. MLflow's fold (a DENY wins, else the highest
 * level, never below the default) is monotone in each row on this scale, so moving a row down it
 * can only take away, and up it only give.
 */
const RANK: Record<string, number> = {DENY: 0, EDIT: 4, MANAGE: 5, NO_PERMISSIONS: 1, READ: 2, USE: 3}
const NO_ROW = 1.5

export function rank(level: string | undefined): number {
  return level === undefined ? NO_ROW : (RANK[level] ?? NO_ROW)
}

/** Does moving one grant or row from `from` to `to` (undefined: none) only take away? */
export function isRestricting(from: string | undefined, to: string | undefined): boolean {
  return rank(to) < rank(from)
}

const isVeto = (level: string) => rank(level) < NO_ROW

/** What a role's rows give its holders: vetoes (DENY, NO_PERMISSIONS), positive levels, or both. */
function rowsGive(rows: Iterable<string>): {positive: boolean; veto: boolean} {
  let positive = false
  let veto = false
  for (const level of rows) {
    if (isVeto(level)) veto = true
    else positive = true
  }

  return {positive, veto}
}

/** The phases, in order; changes within one run concurrently. */
export const PHASES = ['create', 'restrict', 'restrict-assign', 'pivot', 'widen-unassign', 'widen'] as const
export type Phase = (typeof PHASES)[number]

/**
 * Each change's phase. Creating users and (empty) roles, and descriptions, give nobody anything:
 * first. Then everything that only takes away (demotions, grants and rows moved down, leaving a
 * role that only gives), then assignments to roles that by then only deny; then the changes that
 * both give and take (joining or leaving a role that, mid-way, both allows and denies): at that
 * point every taking-away is done and no giving is, so before it a user holds at most the old
 * policy and after it at most the new; then leaving roles that only deny, before those roles gain
 * rows; last everything that only gives. "Mid-way" rows are a role's rows once the restricting
 * row changes are made and before the widening ones.
 */
export function phaseOf(change: Change, actual: AccessPolicy, plan: Plan): Phase {
  switch (change.what) {
    case 'user':
    case 'description': {
      return 'create'
    }

    case 'role': {
      if (change.action === 'add') return 'create'
      return leaving(change.role, actual, plan, actual.roles.get(roleKey(change.role))?.members.size ?? 0)
    }

    case 'admin': {
      return change.to ? 'widen' : 'restrict'
    }

    case 'grant':
    case 'row': {
      return isRestricting(change.from, change.to) ? 'restrict' : 'widen'
    }

    case 'member': {
      if (change.action === 'remove') return leaving(change.role, actual, plan, 1)
      const {positive, veto} = rowsGive(midwayRows(change.role, actual, plan))
      if (!positive) return 'restrict-assign'
      return veto ? 'pivot' : 'widen'
    }
  }
}

/** Leaving a role (or deleting it, for its members): taking away what its rows gave. */
function leaving(role: RoleRef, actual: AccessPolicy, plan: Plan, members: number): Phase {
  const old = [...(actual.roles.get(roleKey(role))?.rows.values() ?? [])].map((row) => row.level)
  if (members === 0 || !rowsGive(old).veto) return 'restrict'
  const {positive} = rowsGive(midwayRows(role, actual, plan))
  return positive ? 'pivot' : 'widen-unassign'
}

/** A role's rows (their levels) once the restricting row changes are made, before the widening ones. */
function midwayRows(role: RoleRef, actual: AccessPolicy, plan: Plan): string[] {
  const rows = new Map<string, string>()
  for (const [key, row] of actual.roles.get(roleKey(role))?.rows ?? []) rows.set(key, row.level)
  const key = roleKey(role)
  for (const change of plan.changes) {
    if (change.what !== 'row' || roleKey(change.role) !== key || !isRestricting(change.from, change.to)) continue
    if (change.to === undefined) rows.delete(targetKey(change.target))
    else rows.set(targetKey(change.target), change.to)
  }

  return [...rows.values()]
}

/** The plan's changes by phase, in plan order within each; empty phases left out. */
export function phases(plan: Plan, actual: AccessPolicy): Change[][] {
  const byPhase = new Map<Phase, Change[]>(PHASES.map((phase) => [phase, []]))
  for (const change of plan.changes) byPhase.get(phaseOf(change, actual, plan))!.push(change)
  return [...byPhase.values()].filter((changes) => changes.length > 0)
}

// ---- passwords ----

export interface PasswordOptions {
  /** Checks a password given in the environment or on stdin (MLflow's rule): true, or why not. */
  check: (password: string) => string | true
  env: NodeJS.ProcessEnv
  /** The policy file's name, for messages (`access.yaml:12`). */
  file: string
  /** Reads all of standard input; called at most once, only if some user takes `{stdin: true}`. */
  readStdin: () => Promise<string>
}

export interface NewPassword {
  generated: boolean
  password: string
}

/**
 * The first password of every user the plan creates, all found before any change: a missing
 * environment variable, too few lines on stdin, a password MLflow would refuse or a user with no
 * source is an error naming the file's line. Stdin holds one password per line, for the users
 * taking `{stdin: true}` in the file's order.
 */
export async function newPasswords(plan: Plan, desired: AccessPolicy, options: PasswordOptions): Promise<Map<string, NewPassword>> {
  const creating = new Set(plan.changes.filter((change) => change.what === 'user').map((change) => change.user))
  const users = [...desired.users.values()].filter((user) => creating.has(user.name))
  const where = (user: {name: string; origin?: {line: number}}) => (user.origin ? `${options.file}:${user.origin.line}: ` : '')
  const stdinUsers = users.filter((user) => user.password && 'stdin' in user.password)
  let lines: string[] = []
  if (stdinUsers.length > 0) {
    lines = (await options.readStdin()).split(/\r?\n/)
    if (lines.at(-1) === '') lines.pop()
    if (lines.length !== stdinUsers.length) {
      throw new UserError(
        `Standard input holds ${lines.length} line${lines.length === 1 ? '' : 's'}, but ${stdinUsers.length} user${stdinUsers.length === 1 ? '' : 's'} to create take their password from it (${stdinUsers.map((user) => user.name).join(', ')}); nothing was changed`,
        {code: 'INPUT_REQUIRED', exit: ExitCode.Usage, hint: 'Give one password per line, in the order the users appear in the file.'},
      )
    }
  }

  const passwords = new Map<string, NewPassword>()
  for (const user of users) {
    const source = user.password
    if (!source) {
      throw new UserError(
        `${where(user)}user ${user.name} does not exist on the server, and the file gives no password to create it with; nothing was changed`,
        {
          code: 'PASSWORD_REQUIRED',
          exit: ExitCode.Usage,
          hint: 'Add `password: {env: VARIABLE}`, `{stdin: true}` or `{generate: true}` to the user.',
        },
      )
    }

    if ('generate' in source) {
      passwords.set(user.name, {generated: true, password: generatePassword()})
      continue
    }

    const password = 'env' in source ? options.env[source.env] : lines[stdinUsers.indexOf(user)]
    const from = 'env' in source ? `$${source.env}` : 'standard input'
    if (password === undefined || password === '') {
      throw new UserError(`${where(user)}${from} is not set: it holds the password to create user ${user.name} with; nothing was changed`, {
        code: 'PASSWORD_REQUIRED',
        exit: ExitCode.Usage,
      })
    }

    const verdict = options.check(password)
    if (verdict !== true) {
      throw new UserError(`${where(user)}the password for ${user.name} from ${from}: ${verdict}; nothing was changed`, {
        code: 'INVALID_PASSWORD',
        exit: ExitCode.Usage,
      })
    }

    passwords.set(user.name, {generated: false, password})
  }

  return passwords
}

/** 24 characters from 18 random bytes (144 bits), URL-safe so it pastes anywhere. */
export function generatePassword(): string {
  return randomBytes(18).toString('base64url')
}

// ---- running ----

/** Carries out one change on the server (or, in tests, on a model of one). */
export interface ApplyTarget {
  apply(change: Change, password?: string): Promise<void>
}

export interface ApplyResult {
  applied: Change[]
  failure?: {change: Change; error: unknown}
  /** In plan order: what was not done (the failed change among them). */
  notApplied: Change[]
}

export interface RunOptions {
  /** Requests at a time within a phase. */
  concurrency?: number
  onProgress?: (done: number, total: number) => void
  passwords?: Map<string, NewPassword>
}

export const DEFAULT_CONCURRENCY = 8

/**
 * Runs the plan's phases one after another, each with at most `concurrency` changes in flight. A
 * failure starts nothing more, waits for what is in flight, and is reported with what was and was
 * not applied; it is not thrown.
 */
export async function runPlan(plan: Plan, actual: AccessPolicy, target: ApplyTarget, options: RunOptions = {}): Promise<ApplyResult> {
  const concurrency = options.concurrency ?? DEFAULT_CONCURRENCY
  const done = new Set<Change>()
  let failure: ApplyResult['failure']
  for (const phase of phases(plan, actual)) {
    let next = 0
    const worker = async () => {
      while (failure === undefined && next < phase.length) {
        const change = phase[next++]
        try {
          await target.apply(change, change.what === 'user' ? options.passwords?.get(change.user)?.password : undefined)
          done.add(change)
          options.onProgress?.(done.size, plan.changes.length)
        } catch (error) {
          failure ??= {change, error}
        }
      }
    }

    await Promise.all(Array.from({length: Math.min(concurrency, phase.length)}, worker))
    if (failure) break
  }

  return {
    applied: plan.changes.filter((change) => done.has(change)),
    ...(failure ? {failure} : {}),
    notApplied: plan.changes.filter((change) => !done.has(change)),
  }
}

// ---- on a server ----

/** A target as the auth API names it. */
export function resourceOf(target: Target): Resource {
  if (target.pattern === ALL_RESOURCES) return {id: ALL_RESOURCES, kind: target.kind} as Resource
  if (target.kind === 'experiment') return {experimentName: target.label === target.pattern ? undefined : target.label, id: target.pattern, kind: 'experiment'}
  if (target.kind === 'scorer') {
    const slash = target.pattern.indexOf('/')
    return {experimentId: target.pattern.slice(0, slash), kind: 'scorer', name: decodeURIComponent(target.pattern.slice(slash + 1))}
  }

  return {id: target.pattern, kind: target.kind} as Resource
}

/**
 * Changes on a live server: per-user grants through the auth API (which picks MLflow's legacy or
 * unified endpoints), roles through the role API. Roles are named by (workspace, name); their ids
 * (and their rows' ids) are read once per workspace and kept, created roles' from their answers.
 */
export class ServerTarget implements ApplyTarget {
  private readonly roleIds = new Map<string, Promise<Map<string, Role>>>()
  private readonly created = new Map<string, Role>()

  constructor(
    private readonly api: AuthApi,
    private readonly roles: RolesApi,
  ) {}

  async apply(change: Change, password?: string): Promise<void> {
    switch (change.what) {
      case 'user': {
        if (password === undefined) throw new Error(`no password for ${change.user}`)
        await this.api.createUser(change.user, password)
        return
      }

      case 'admin': {
        await this.api.setAdmin(change.user, change.to)
        return
      }

      case 'grant': {
        const resource = resourceOf(change.target)
        if (change.action === 'add') await this.api.create(resource, change.user, change.to!)
        else if (change.action === 'change') await this.api.update(resource, change.user, change.to!)
        else await this.api.revoke(resource, change.user)
        return
      }

      case 'role': {
        if (change.action === 'add') {
          const role = await this.roles.create(change.role.workspace, change.role.name, change.to ?? undefined)
          this.created.set(roleKey(change.role), {...role, permissions: role.permissions ?? []})
        } else {
          await this.roles.delete((await this.role(change.role)).id)
        }

        return
      }

      case 'description': {
        await this.roles.update((await this.role(change.role)).id, {description: change.to})
        return
      }

      case 'row': {
        const role = await this.role(change.role)
        const type = POLICY_KINDS[change.target.kind].type
        if (change.action === 'add') {
          await this.roles.addPermission(role.id, type, change.target.pattern, change.to!)
          return
        }

        const row = role.permissions.find((candidate) => candidate.resource_type === type && candidate.resource_pattern === change.target.pattern)
        if (!row)
          throw new UserError(`Role "${role.name}" has no row on ${type} ${change.target.pattern} any more`, {
            code: 'RESOURCE_DOES_NOT_EXIST',
            exit: ExitCode.NotFound,
          })
        if (change.action === 'change') await this.roles.updatePermission(row.id, change.to!)
        else await this.roles.removePermission(row.id)
        return
      }

      case 'member': {
        const role = await this.role(change.role)
        if (change.action === 'add') await this.roles.assign(change.user, role.id)
        else await this.roles.unassign(change.user, role.id)
      }
    }
  }

  private async role(ref: RoleRef): Promise<Role> {
    const key = roleKey(ref)
    const created = this.created.get(key)
    if (created) return created
    let listing = this.roleIds.get(ref.workspace)
    if (!listing) {
      listing = this.roles.list(ref.workspace).then(async (roles) => {
        const byKey = new Map<string, Role>()
        for (const role of roles) byKey.set(roleKey(role), {...role, permissions: role.permissions ?? (await this.roles.listPermissions(role.id))})
        return byKey
      })
      this.roleIds.set(ref.workspace, listing)
    }

    const role = (await listing).get(key)
    if (!role)
      throw new UserError(`There is no role named "${ref.name}" in workspace ${ref.workspace} any more`, {
        code: 'RESOURCE_DOES_NOT_EXIST',
        exit: ExitCode.NotFound,
      })
    return role
  }
}
