/**
 * A store's whole content as plain records (StoreContent), whatever adapter holds it: read through
 * the Store interface, checked before it is loaded into another store, and summed up as counts per
 * table and a digest that does not depend on the order the records come in, so a copy can be
 * verified against its source.
 */
import {createHash} from 'node:crypto'

import {isDigest, isStoreTime, type Store, type StoreContent} from './store.js'

export type ContentTable = 'assignments' | 'job_creators' | 'role_permissions' | 'roles' | 'tokens' | 'users'
export type ContentCounts = Record<ContentTable, number>

/** Everything `store` holds, each table by id. Reads are synchronous, so this is one instant's state. */
export function readContent(store: Store): StoreContent {
  const roles = store.listRoles()
  const byId = <T extends {id: number}>(records: T[]) => records.sort((a, b) => a.id - b.id)
  return {
    assignments: byId(roles.flatMap((role) => store.listRoleUsers(role.id))),
    rolePermissions: byId(roles.flatMap((role) => store.listRolePermissions(role.id))),
    roles: byId(roles),
    tokens: store.listTokens(),
    jobCreators: store.listJobCreators(),
    users: byId(store.listUsers()),
  }
}

export function contentCounts(content: StoreContent): ContentCounts {
  return {
    assignments: content.assignments.length,
    job_creators: content.jobCreators?.length ?? 0,
    role_permissions: content.rolePermissions.length,
    roles: content.roles.length,
    tokens: content.tokens.length,
    users: content.users.length,
  }
}

export function isEmptyContent(content: StoreContent): boolean {
  return (
    content.users.length === 0 &&
    content.roles.length === 0 &&
    content.rolePermissions.length === 0 &&
    content.assignments.length === 0 &&
    content.tokens.length === 0 &&
    (content.jobCreators?.length ?? 0) === 0
  )
}

/** One line per record, every field in a fixed order; JSON so no value can run into the next. */
function canonicalLines(content: StoreContent): string[] {
  return [
    ...content.users.map((user) => JSON.stringify(['users', user.id, user.username, user.passwordHash, user.isAdmin])),
    ...content.roles.map((role) => JSON.stringify(['roles', role.id, role.workspace, role.name, role.description])),
    ...content.rolePermissions.map((row) => JSON.stringify(['role_permissions', row.id, row.roleId, row.resourceType, row.resourcePattern, row.permission])),
    ...content.assignments.map((assignment) => JSON.stringify(['assignments', assignment.id, assignment.userId, assignment.roleId])),
    ...content.tokens.map((token) =>
      JSON.stringify(['tokens', token.id, token.userId, token.name, token.digest, token.createdAt, token.expiresAt, token.lastUsedAt]),
    ),
    ...(content.jobCreators ?? []).map((job) => JSON.stringify(['job_creators', job.id, job.jobId, job.userId])),
  ]
}

/**
 * SHA-256 over the sorted canonical lines: the same content gives the same digest whichever store
 * holds it and in whatever order it lists it; any difference in any field (ids included) changes it.
 * Password hashes go into it, never out of it.
 */
export function contentDigest(content: StoreContent): string {
  const lines = canonicalLines(content).sort()
  const hash = createHash('sha256')
  for (const line of lines) hash.update(`${line}\n`)
  return hash.digest('hex')
}

const isString = (value: unknown): value is string => typeof value === 'string'
// As model.ts's isId, which imports this module.
const isId = (value: unknown): value is number => typeof value === 'number' && Number.isSafeInteger(value) && value >= 1

/**
 * Why `content` cannot be one store's state, or undefined when it can: ids positive and unique per
 * table, usernames unique, role names unique per workspace, rows and assignments naming roles and
 * users it holds, one row per role and resource, one assignment per user and role.
 */
export function contentProblem(content: StoreContent): string | undefined {
  const userIds = new Set<number>()
  const usernames = new Set<string>()
  for (const user of content.users) {
    if (!isId(user.id) || userIds.has(user.id)) return `user id ${user.id} is not a unique positive integer`
    if (!isString(user.username) || usernames.has(user.username)) return `username ${JSON.stringify(user.username)} is not a unique string`
    if (!isString(user.passwordHash)) return `user ${JSON.stringify(user.username)} has no password hash`
    if (typeof user.isAdmin !== 'boolean') return `user ${JSON.stringify(user.username)}'s admin flag is not true or false`
    userIds.add(user.id)
    usernames.add(user.username)
  }

  const roleIds = new Set<number>()
  const roleNames = new Set<string>()
  for (const role of content.roles) {
    if (!isId(role.id) || roleIds.has(role.id)) return `role id ${role.id} is not a unique positive integer`
    if (!isString(role.name) || role.name === '' || !isString(role.workspace) || role.workspace === '') return `role ${role.id} has no name or workspace`
    if (role.description !== null && !isString(role.description)) return `role ${role.id}'s description is not a string`
    const key = JSON.stringify([role.workspace, role.name])
    if (roleNames.has(key)) return `role name ${JSON.stringify(role.name)} is used twice in workspace ${JSON.stringify(role.workspace)}`
    roleIds.add(role.id)
    roleNames.add(key)
  }

  const rowIds = new Set<number>()
  const rowKeys = new Set<string>()
  for (const row of content.rolePermissions) {
    if (!isId(row.id) || rowIds.has(row.id)) return `role permission id ${row.id} is not a unique positive integer`
    if (!roleIds.has(row.roleId)) return `role permission ${row.id} names role ${row.roleId}, which is not there`
    if (!isString(row.resourceType) || row.resourceType === '' || !isString(row.resourcePattern) || !isString(row.permission) || row.permission === '')
      return `role permission ${row.id} is missing its resource type, pattern or permission`
    const key = JSON.stringify([row.roleId, row.resourceType, row.resourcePattern])
    if (rowKeys.has(key)) return `role ${row.roleId} has two rows on ${row.resourceType} ${JSON.stringify(row.resourcePattern)}`
    rowIds.add(row.id)
    rowKeys.add(key)
  }

  const assignmentIds = new Set<number>()
  const assignmentKeys = new Set<string>()
  for (const assignment of content.assignments) {
    if (!isId(assignment.id) || assignmentIds.has(assignment.id)) return `assignment id ${assignment.id} is not a unique positive integer`
    if (!userIds.has(assignment.userId) || !roleIds.has(assignment.roleId))
      return `assignment ${assignment.id} names user ${assignment.userId} or role ${assignment.roleId}, which is not there`
    const key = `${assignment.userId}:${assignment.roleId}`
    if (assignmentKeys.has(key)) return `role ${assignment.roleId} is assigned twice to user ${assignment.userId}`
    assignmentIds.add(assignment.id)
    assignmentKeys.add(key)
  }

  const tokenIds = new Set<number>()
  const tokenNames = new Set<string>()
  const digests = new Set<string>()
  for (const token of content.tokens) {
    if (!isId(token.id) || tokenIds.has(token.id)) return `token id ${token.id} is not a unique positive integer`
    if (!userIds.has(token.userId)) return `token ${token.id} names user ${token.userId}, who is not there`
    if (!isString(token.name) || token.name === '') return `token ${token.id} has no name`
    if (!isString(token.digest) || !isDigest(token.digest) || digests.has(token.digest)) return `token ${token.id}'s digest is not a unique SHA-256`
    if (
      !isStoreTime(token.createdAt) ||
      (token.expiresAt !== null && !isStoreTime(token.expiresAt)) ||
      (token.lastUsedAt !== null && !isStoreTime(token.lastUsedAt))
    )
      return `token ${token.id} has a time that is not ISO 8601 UTC`
    const key = JSON.stringify([token.userId, token.name])
    if (tokenNames.has(key)) return `user ${token.userId} has two tokens named ${JSON.stringify(token.name)}`
    tokenIds.add(token.id)
    tokenNames.add(key)
    digests.add(token.digest)
  }

  const jobIds = new Set<number>()
  const jobs = new Set<string>()
  for (const job of content.jobCreators ?? []) {
    if (!isId(job.id) || jobIds.has(job.id)) return `job creator id ${job.id} is not a unique positive integer`
    if (!userIds.has(job.userId)) return `job creator ${job.id} names user ${job.userId}, who is not there`
    if (!isString(job.jobId) || !/^[!-~]{1,256}$/.test(job.jobId) || jobs.has(job.jobId)) return `job creator ${job.id}'s job id is not a unique job id`
    jobIds.add(job.id)
    jobs.add(job.jobId)
  }

  return undefined
}
