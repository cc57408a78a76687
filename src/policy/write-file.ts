/**
 * An AccessPolicy as a policy file (format v1), the way `export` writes it: stable, so two
 * exports of one state are byte-identical and a diff of two shows what changed.
 *
 * Exports:
 * - writePolicy(policy, filter?): string — the YAML text.
 * - policyData(policy, filter?): PolicyData — the same as plain data (`export --json`).
 * - ExportFilter: `kinds` keeps only grants and role rows of those kinds; `user` keeps that user,
 *   the roles they hold and, of those roles' members, only them (so the file stays valid).
 *
 * Order: `version`, then users by name (`admin: true` only when true; no password, ever), then
 * roles by (workspace, name) (`workspace` left out when default, members sorted). Grants in
 * POLICY_KIND_NAMES order, `*` first, then by label. Experiments by name, by `experiment_id` only
 * when no experiment has the id. No `resources:` section, no header: nothing about where or when.
 */
import {Document, YAMLMap, YAMLSeq} from 'yaml'

import {DEFAULT_WORKSPACE} from '../mlflow/rbac.js'
import {ALL_RESOURCES, scorerNameOfId} from '../mlflow/resources.js'
import {type AccessPolicy, type Grant, POLICY_KIND_NAMES, type PolicyKind, type RolePolicy, type Target} from './model.js'

export interface ExportFilter {
  kinds?: readonly PolicyKind[]
  user?: string
}

export type GrantData = Record<string, string>

export interface PolicyData {
  roles?: Array<{description?: string; grants?: GrantData[]; members?: string[]; name: string; workspace?: string}>
  users: Array<{admin?: true; grants?: GrantData[]; name: string}>
  version: 1
}

/** Code-unit order: the same on every machine and locale. */
const compare = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0)

const KIND_ORDER = new Map(POLICY_KIND_NAMES.map((kind, index) => [kind, index]))

function compareTargets(a: Target, b: Target): number {
  return (
    KIND_ORDER.get(a.kind)! - KIND_ORDER.get(b.kind)! ||
    Number(b.pattern === ALL_RESOURCES) - Number(a.pattern === ALL_RESOURCES) ||
    compare(a.label, b.label) ||
    compare(a.pattern, b.pattern)
  )
}

/** An experiment by name, or by id when its label is its id (no experiment has that id). */
function experimentKey(id: string, label: string): GrantData {
  return label === id ? {experiment_id: id} : {experiment: label}
}

/** One grant item, its resource key first and `permission` last. */
export function grantData(grant: Grant): GrantData {
  const {kind, label, pattern} = grant.target
  if (pattern === ALL_RESOURCES) return {[kind]: ALL_RESOURCES, permission: grant.level}
  if (kind === 'experiment') return {...experimentKey(pattern, label), permission: grant.level}
  if (kind === 'scorer') {
    const name = scorerNameOfId(pattern)
    const id = pattern.slice(0, pattern.indexOf('/'))
    const experiment = label.endsWith(`/${name}`) ? label.slice(0, -(name.length + 1)) : id
    return {scorer: name, ...experimentKey(id, experiment), permission: grant.level}
  }

  return {[kind]: pattern, permission: grant.level}
}

function grantsData(grants: Iterable<Grant>, filter: ExportFilter): GrantData[] {
  return [...grants]
    .filter((grant) => !filter.kinds || filter.kinds.includes(grant.target.kind))
    .sort((a, b) => compareTargets(a.target, b.target))
    .map((grant) => grantData(grant))
}

export function policyData(policy: AccessPolicy, filter: ExportFilter = {}): PolicyData {
  const users = [...policy.users.values()].filter((user) => filter.user === undefined || user.name === filter.user).sort((a, b) => compare(a.name, b.name))
  const roles = [...policy.roles.values()]
    .filter((role) => filter.user === undefined || role.members.has(filter.user))
    .sort((a, b) => compare(a.workspace, b.workspace) || compare(a.name, b.name))
  const data: PolicyData = {
    users: users.map((user) => {
      const grants = grantsData(user.grants.values(), filter)
      return {name: user.name, ...(user.admin ? {admin: true as const} : {}), ...(grants.length > 0 ? {grants} : {})}
    }),
    version: 1,
  }
  if (roles.length > 0) data.roles = roles.map((role) => roleData(role, filter))
  return data
}

function roleData(role: RolePolicy, filter: ExportFilter): NonNullable<PolicyData['roles']>[number] {
  const grants = grantsData(role.rows.values(), filter)
  const members = [...role.members].filter((member) => filter.user === undefined || member === filter.user).sort(compare)
  return {
    name: role.name,
    ...(role.workspace === DEFAULT_WORKSPACE ? {} : {workspace: role.workspace}),
    ...(role.description === null ? {} : {description: role.description}),
    ...(grants.length > 0 ? {grants} : {}),
    ...(members.length > 0 ? {members} : {}),
  }
}

/** Grant items and member lists on one line each (`- {experiment: X, permission: READ}`), the rest in block style. */
export function writePolicy(policy: AccessPolicy, filter: ExportFilter = {}): string {
  const data = policyData(policy, filter)
  const doc = new Document({version: data.version})
  const section = (items: Array<Record<string, unknown>>) => {
    const seq = new YAMLSeq()
    for (const item of items) {
      const map = doc.createNode(item) as YAMLMap
      for (const pair of map.items) {
        const value = pair.value
        if (value instanceof YAMLSeq) {
          for (const grant of value.items) if (grant instanceof YAMLMap) grant.flow = true
          if ((pair.key as {value?: unknown}).value === 'members') value.flow = true
        }
      }

      seq.items.push(map)
    }

    return seq
  }

  doc.set('users', section(data.users))
  if (data.roles) doc.set('roles', section(data.roles))
  return doc.toString({flowCollectionPadding: false, lineWidth: 0})
}
