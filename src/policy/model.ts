/**
 * An access policy: the users, admins, roles and grants of one MLflow server, in one shape for
 * both sides of a comparison — what a policy file asks for (read by ./file.ts, resources resolved
 * against the server) and what a server holds (read by ./server-state.ts). `plan` compares two of
 * these; `apply` makes the server match; `export` writes one as a file. docs/access-as-code.md
 * describes the file and the rules.
 */
import {ALL_RESOURCES, PERMISSION_KIND_NAMES, PERMISSION_KINDS} from '../mlflow/resources.js'

/**
 * What a grant or a role's row can be on: every kind of per-user grant (by its perms name), and,
 * for roles only, MLflow's workspace slot (`workspace *` USE = member, MANAGE = workspace admin),
 * which the per-user API refuses but a role may hold.
 */
export const POLICY_KINDS = {
  ...PERMISSION_KINDS,
  workspace: {by: 'wildcard', noun: 'workspace', plural: 'workspaces', since: '3.12', type: 'workspace'},
} as const

export type PolicyKind = keyof typeof POLICY_KINDS

/** Every kind in the order files and listings give them: PERMISSION_KIND_NAMES, then the workspace slot. */
export const POLICY_KIND_NAMES: PolicyKind[] = [...PERMISSION_KIND_NAMES, 'workspace']

/** Where something was written in a policy file, for messages ("access.yaml:12"). Absent when read from a server. */
export interface Origin {
  line: number
}

/**
 * What a grant or a role's row is on, resolved: `pattern` is what MLflow stores and matches (an
 * experiment's id, a model's, prompt's or MCP server's name, a gateway object's id,
 * `<experiment id>/<quoted scorer name>` for a scorer, or `*` for every resource of the kind);
 * `label` is how people name it, for messages and for the exported file: an experiment's name (its
 * id when no experiment has it), `<experiment label>/<scorer name>` for a scorer, else the pattern.
 */
export interface Target {
  kind: PolicyKind
  label: string
  pattern: string
}

/** The key of a target within one holder's grants: one grant per MLflow resource type and pattern. */
export function targetKey(target: Pick<Target, 'kind' | 'pattern'>): string {
  return `${POLICY_KINDS[target.kind].type}\u0000${target.pattern}`
}

/**
 * A target as people name it, in messages and plans: `experiment "My experiment" (42)` (the
 * stored pattern beside a label that differs from it), `registered model "churn"`, `all runs (*)`.
 */
export function describeTarget(target: Target): string {
  const {noun, plural} = POLICY_KINDS[target.kind]
  if (target.pattern === ALL_RESOURCES) return `all ${plural} (*)`
  const name = JSON.stringify(target.label)
  return target.label === target.pattern ? `${noun} ${name}` : `${noun} ${name} (${target.pattern})`
}

export interface Grant {
  /** READ, USE, EDIT, MANAGE, NO_PERMISSIONS or DENY, as MLflow spells them. */
  level: string
  origin?: Origin
  target: Target
}

/** How a user the server lacks gets its first password; never written to a file or a log. */
export type PasswordSource = {env: string} | {generate: true} | {stdin: true}

export interface UserPolicy {
  admin: boolean
  /** The user's own grants (MLflow's per-user permissions; since 3.17 the rows of `__user_<id>__`), by targetKey. */
  grants: Map<string, Grant>
  name: string
  origin?: Origin
  /** Only in a file: how to create the user if the server lacks it. */
  password?: PasswordSource
}

export interface RolePolicy {
  description: null | string
  /** Usernames. */
  members: Set<string>
  name: string
  origin?: Origin
  /** The role's rows, by targetKey. */
  rows: Map<string, Grant>
  workspace: string
}

/** The key of a role: roles are named within a workspace. */
export function roleKey(role: Pick<RolePolicy, 'name' | 'workspace'>): string {
  return `${role.workspace}\u0000${role.name}`
}

export interface AccessPolicy {
  /** By roleKey. Empty, and never compared, on a server without roles. */
  roles: Map<string, RolePolicy>
  /** By username. */
  users: Map<string, UserPolicy>
}
