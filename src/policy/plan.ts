/**
 * `plan`: what would change on a server to make it match a policy file. diff() compares the
 * policy the file asks for with the one the server holds (both ./model.ts) and lists the changes,
 * and what the server holds that the file does not describe ("unmanaged": removed only with
 * --prune). renderPlan() prints it for people, planJson() as data. docs/access-as-code.md.
 */
import {ALL_RESOURCES} from '../mlflow/resources.js'
import {
  type AccessPolicy,
  describeTarget,
  type Grant,
  type PasswordSource,
  POLICY_KIND_NAMES,
  POLICY_KINDS,
  type RolePolicy,
  roleKey,
  type Target,
} from './model.js'

/** `+`, `~`, `-`. */
export type ChangeAction = 'add' | 'change' | 'remove'

export interface RoleRef {
  name: string
  workspace: string
}

/**
 * One change. `what` says what it is on:
 * - `user`: create the account (add only), with `password` saying where its first password comes from;
 * - `admin`: the admin flag, `from` → `to` (booleans; a created user that is to be admin gets one too);
 * - `grant`: the user's own permission on `target`, level `from` → `to`;
 * - `role`: create (with `to`: its description, or null) or delete a role;
 * - `description`: a role's description, `from` → `to`;
 * - `row`: a role's permission row on `target`, level `from` → `to`;
 * - `member`: `user` given (add) or taken (remove) the role.
 */
export type Change =
  | {action: 'add'; password: PasswordSource | undefined; user: string; what: 'user'}
  | {action: 'change'; from: boolean; to: boolean; user: string; what: 'admin'}
  | {action: ChangeAction; from?: string; target: Target; to?: string; user: string; what: 'grant'}
  | {action: 'add' | 'remove'; role: RoleRef; to?: null | string; what: 'role'}
  | {action: 'change'; from: null | string; role: RoleRef; to: string; what: 'description'}
  | {action: ChangeAction; from?: string; role: RoleRef; target: Target; to?: string; what: 'row'}
  | {action: 'add' | 'remove'; role: RoleRef; user: string; what: 'member'}

/** What the server holds that the file does not describe: each is removed by --prune. */
export type Unmanaged =
  | {level: string; target: Target; user: string; what: 'grant'}
  | {level: string; role: RoleRef; target: Target; what: 'row'}
  | {role: RoleRef; user: string; what: 'member'}
  | {role: RoleRef; what: 'role'}

export interface Plan {
  changes: Change[]
  unmanaged: Unmanaged[]
}

export interface DiffOptions {
  /** Remove what the file does not describe (grants, rows, memberships, roles; never users). */
  prune: boolean
}

const ref = (role: RolePolicy): RoleRef => ({name: role.name, workspace: role.workspace})

/** The keys of grants (or rows) in a stable order: by kind as listings group them, then by label, then pattern. */
function sortedKeys(grants: Map<string, Grant>): string[] {
  const order = (key: string) => POLICY_KIND_NAMES.indexOf(grants.get(key)!.target.kind)
  const target = (key: string) => grants.get(key)!.target
  return [...grants.keys()].sort((a, b) => order(a) - order(b) || compare(target(a).label, target(b).label) || compare(target(a).pattern, target(b).pattern))
}

const compare = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0)
const sorted = (values: Iterable<string>) => [...values].sort(compare)
const sortedRoles = (roles: Iterable<RolePolicy>) => [...roles].sort((a, b) => compare(a.workspace, b.workspace) || compare(a.name, b.name))

/**
 * The changes that make `actual` (the server) match `desired` (the file), in a stable order: per
 * user by name, then per role by (workspace, name). Users the file does not list are never
 * created, changed or removed, but their grants are the file's to describe (unmanaged, or removed
 * with --prune). A role's description left out of the file (null) is not managed.
 */
export function diff(desired: AccessPolicy, actual: AccessPolicy, options: DiffOptions): Plan {
  const changes: Change[] = []
  const unmanaged: Unmanaged[] = []

  const usernames = sorted(new Set([...desired.users.keys(), ...actual.users.keys()]))
  for (const name of usernames) {
    const want = desired.users.get(name)
    const have = actual.users.get(name)
    if (want && !have) {
      changes.push({action: 'add', password: want.password, user: name, what: 'user'})
      if (want.admin) changes.push({action: 'change', from: false, to: true, user: name, what: 'admin'})
    } else if (want && have && want.admin !== have.admin) {
      changes.push({action: 'change', from: have.admin, to: want.admin, user: name, what: 'admin'})
    }

    const wanted = want?.grants ?? new Map<string, Grant>()
    const held = have?.grants ?? new Map<string, Grant>()
    for (const key of sortedKeys(new Map([...held, ...wanted]))) {
      const w = wanted.get(key)
      const h = held.get(key)
      if (w && !h) changes.push({action: 'add', target: w.target, to: w.level, user: name, what: 'grant'})
      else if (w && h && w.level !== h.level) changes.push({action: 'change', from: h.level, target: w.target, to: w.level, user: name, what: 'grant'})
      else if (!w && h) {
        if (options.prune) changes.push({action: 'remove', from: h.level, target: h.target, user: name, what: 'grant'})
        else unmanaged.push({level: h.level, target: h.target, user: name, what: 'grant'})
      }
    }
  }

  const roleKeys = sortedRoles(new Map([...actual.roles, ...desired.roles]).values()).map((role) => roleKey(role))
  for (const key of roleKeys) {
    const want = desired.roles.get(key)
    const have = actual.roles.get(key)
    if (!want) {
      if (options.prune) changes.push({action: 'remove', role: ref(have!), what: 'role'})
      else unmanaged.push({role: ref(have!), what: 'role'})
      continue
    }

    const role = ref(want)
    if (!have) changes.push({action: 'add', role, to: want.description, what: 'role'})
    else if (want.description !== null && want.description !== have.description)
      changes.push({action: 'change', from: have.description, role, to: want.description, what: 'description'})

    const heldRows = have?.rows ?? new Map<string, Grant>()
    for (const key of sortedKeys(want.rows)) {
      const row = want.rows.get(key)!
      const h = heldRows.get(key)
      if (!h) changes.push({action: 'add', role, target: row.target, to: row.level, what: 'row'})
      else if (h.level !== row.level) changes.push({action: 'change', from: h.level, role, target: row.target, to: row.level, what: 'row'})
    }

    for (const row of sortedKeys(heldRows)
      .filter((rowKey) => !want.rows.has(rowKey))
      .map((rowKey) => heldRows.get(rowKey)!)) {
      if (options.prune) changes.push({action: 'remove', from: row.level, role, target: row.target, what: 'row'})
      else unmanaged.push({level: row.level, role, target: row.target, what: 'row'})
    }

    const members = have?.members ?? new Set<string>()
    for (const user of sorted(want.members)) if (!members.has(user)) changes.push({action: 'add', role, user, what: 'member'})
    for (const user of sorted(members)) {
      if (want.members.has(user)) continue
      if (options.prune) changes.push({action: 'remove', role, user, what: 'member'})
      else unmanaged.push({role, user, what: 'member'})
    }
  }

  return {changes, unmanaged}
}

export interface PlanSummary {
  add: number
  change: number
  remove: number
  unmanaged: number
}

export function summarize(plan: Plan): PlanSummary {
  const count = (action: ChangeAction) => plan.changes.filter((change) => change.action === action).length
  return {add: count('add'), change: count('change'), remove: count('remove'), unmanaged: plan.unmanaged.length}
}

export function summaryLine(plan: Plan): string {
  const {add, change, remove, unmanaged} = summarize(plan)
  return `Plan: ${add} to add, ${change} to change, ${remove} to remove; ${unmanaged} unmanaged`
}

const roleTitle = (role: RoleRef) => (role.workspace === 'default' ? `role ${role.name}` : `role ${role.name} (workspace ${role.workspace})`)

function describePassword(source: PasswordSource | undefined): string {
  if (!source) return 'no password source'
  if ('env' in source) return `password from $${source.env}`
  if ('stdin' in source) return 'password from stdin'
  return 'generated password'
}

const CREATOR_MARK = ' (as MLflow gives its creator)'

const SIGN: Record<ChangeAction, string> = {add: '+', change: '~', remove: '-'}

/** One change as a line under its user or role heading. */
export function describeChange(change: Change): string {
  const sign = SIGN[change.action]
  switch (change.what) {
    case 'user': {
      return `${sign} create user (${describePassword(change.password)})`
    }

    case 'admin': {
      return `${sign} admin ${change.from} → ${change.to}`
    }

    case 'grant':
    case 'row': {
      const level = change.action === 'change' ? `${change.from} → ${change.to}` : change.action === 'add' ? change.to : change.from
      // --prune removes creator grants too: say so where it happens, not only in the unmanaged list.
      const creator =
        change.what === 'grant' && change.action === 'remove' && change.from !== undefined && isCreatorStyle({level: change.from, target: change.target})
      return `${sign} ${describeTarget(change.target)}: ${level}${creator ? CREATOR_MARK : ''}`
    }

    case 'role': {
      if (change.action === 'remove') return `${sign} delete role (its rows and memberships with it)`
      return `${sign} create role${change.to ? ` (description ${JSON.stringify(change.to)})` : ''}`
    }

    case 'description': {
      return `${sign} description ${JSON.stringify(change.from)} → ${JSON.stringify(change.to)}`
    }

    case 'member': {
      return `${sign} member ${change.user}`
    }
  }
}

/**
 * A grant shaped like the one MLflow gives whoever creates a resource: MANAGE on that one
 * experiment, model, prompt, scorer, gateway object or MCP server. Only a likeness (the server
 * does not record why a grant exists), shown so that --prune's removal of an admin's creator
 * grants surprises nobody.
 */
export function isCreatorStyle(item: {level: string; target: Target}): boolean {
  return item.level === 'MANAGE' && item.target.pattern !== ALL_RESOURCES && POLICY_KINDS[item.target.kind].by !== 'wildcard'
}

function describeUnmanaged(item: Unmanaged): string {
  switch (item.what) {
    case 'grant': {
      return `user ${item.user}: ${describeTarget(item.target)}: ${item.level}${isCreatorStyle(item) ? CREATOR_MARK : ''}`
    }

    case 'row': {
      return `${roleTitle(item.role)}: ${describeTarget(item.target)}: ${item.level}`
    }

    case 'member': {
      return `${roleTitle(item.role)}: member ${item.user}`
    }

    case 'role': {
      return roleTitle(item.role)
    }
  }
}

/** The heading a change is listed under. */
function headingOf(change: Change): string {
  return 'role' in change ? roleTitle(change.role) : `user ${change.user}`
}

/** Terraform-like text: changes grouped per user, then per role; the unmanaged; the summary line. */
export function renderPlan(plan: Plan): string {
  const lines: string[] = []
  let heading: string | undefined
  for (const change of plan.changes) {
    const title = headingOf(change)
    if (title !== heading) lines.push(title)
    heading = title
    lines.push(`  ${describeChange(change)}`)
  }

  if (plan.changes.length === 0) lines.push('No changes: the server matches the file.')
  if (plan.unmanaged.length > 0) {
    lines.push('', 'Unmanaged (on the server, not in the file; --prune removes them):')
    for (const item of plan.unmanaged) lines.push(`  ${describeUnmanaged(item)}`)
  }

  lines.push('', summaryLine(plan))
  return lines.join('\n')
}

/** A target as data: MLflow's resource type and pattern, the kind as the CLI names it, and its label. */
export interface TargetJson {
  kind: string
  label: string
  pattern: string
  resource_type: string
}

export interface ChangeJson {
  action: ChangeAction
  from?: boolean | null | string
  /** `env`, `stdin` or `generate`, for a user to create (`none` when the file gives none). */
  password?: 'env' | 'generate' | 'none' | 'stdin'
  resource?: TargetJson
  role?: RoleRef
  to?: boolean | null | string
  user?: string
  what: Change['what']
}

export interface UnmanagedJson {
  level?: string
  resource?: TargetJson
  role?: RoleRef
  user?: string
  what: Unmanaged['what']
}

export interface PlanJson {
  changes: ChangeJson[]
  summary: PlanSummary
  unmanaged: UnmanagedJson[]
}

export function targetJson(target: Target): TargetJson {
  return {kind: target.kind, label: target.label, pattern: target.pattern, resource_type: POLICY_KINDS[target.kind].type}
}

export function changeJson(change: Change): ChangeJson {
  const json: ChangeJson = {action: change.action, what: change.what}
  if ('user' in change) json.user = change.user
  if ('role' in change) json.role = change.role
  if ('target' in change) json.resource = targetJson(change.target)
  if ('from' in change && change.from !== undefined) json.from = change.from
  if ('to' in change && change.to !== undefined) json.to = change.to
  if (change.what === 'user') json.password = change.password ? (Object.keys(change.password)[0] as 'env' | 'generate' | 'stdin') : 'none'
  return json
}

/** The plan as data (`--json`): field names are documented in docs/access-as-code.md and stay stable. */
export function planJson(plan: Plan): PlanJson {
  return {
    changes: plan.changes.map((change) => changeJson(change)),
    summary: summarize(plan),
    unmanaged: plan.unmanaged.map((item) => ({
      what: item.what,
      ...('user' in item ? {user: item.user} : {}),
      ...('role' in item ? {role: item.role} : {}),
      ...('target' in item ? {resource: targetJson(item.target)} : {}),
      ...('level' in item ? {level: item.level} : {}),
    })),
  }
}
