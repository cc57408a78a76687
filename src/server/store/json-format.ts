/**
 * The JSON file format of the embedded auth store, version 3 (MLflow 3.14+'s roles, and access tokens):
 *
 * ```json
 * {"version": 3, "next_user_id": 3, "next_role_id": 2, "next_role_permission_id": 2, "next_assignment_id": 2, "next_token_id": 2,
 *  "users": [{"id": 1, "username": "admin", "password_hash": "scrypt:…", "is_admin": true}],
 *  "roles": [{"id": 1, "workspace": "default", "name": "__user_2__", "description": null}],
 *  "role_permissions": [{"id": 1, "role_id": 1, "resource_type": "experiment", "resource_pattern": "42", "permission": "READ"}],
 *  "assignments": [{"id": 1, "user_id": 2, "role_id": 1}],
 *  "tokens": [{"id": 1, "user_id": 2, "name": "ci", "digest": "<sha-256 hex>", "created_at": "2026-01-01T00:00:00.000Z", "expires_at": null, "last_used_at": null}],
 *  "job_creators": [{"id": 1, "job_id": "<MLflow's job id>", "user_id": 2}]}
 * ```
 *
 * Each table and its counter name the version that added it (TABLE_SINCE, COUNTERS): a file of an
 * older version is read with the tables it has, the rest empty, so one more kind of record is one
 * more entry there. `job_creators` (with `next_job_creator_id`) joined version 3 before its
 * release: a version 3 file without them is read as having none. Version 2 is version 3 without tokens (json-store.ts rewrites it as version 3
 * and keeps the old one beside it). Version 1 (users and per-user `grants` only) is still read:
 * each user's grants become the rows of their per-user role `__user_<id>__`, roles numbered in
 * user order.
 *
 * Written sorted by id, one record per line; read strictly (exact keys, types, unique ids and
 * names, references that resolve), so a hand edit that would mean something else than it says is
 * refused with what and where.
 */
import {jsonSyntaxMessage} from './json-syntax.js'
import {type Counters, isId, isJobId, StoreModel, type Table} from './model.js'
import {
  type AssignmentRecord,
  isDigest,
  type JobCreatorRecord,
  isStoreTime,
  type RolePermissionRecord,
  type RoleRecord,
  StoreFileError,
  type TokenRecord,
  type UserRecord,
} from './store.js'

export const FORMAT_VERSION = 3

const text = JSON.stringify

/**
 * `{"id": 1, "username": "x", …}`, recordJson's keys in its order: one record per line reads, greps
 * and diffs well. Spelt out per table, as a large store's file is mostly these lines.
 */
function recordLine(table: Table, record: AnyRecord): string {
  switch (table) {
    case 'users': {
      const user = record as UserRecord
      return `{"id": ${user.id}, "username": ${text(user.username)}, "password_hash": ${text(user.passwordHash)}, "is_admin": ${user.isAdmin}}`
    }

    case 'roles': {
      const role = record as RoleRecord
      return `{"id": ${role.id}, "workspace": ${text(role.workspace)}, "name": ${text(role.name)}, "description": ${text(role.description)}}`
    }

    case 'role_permissions': {
      const row = record as RolePermissionRecord
      return `{"id": ${row.id}, "role_id": ${row.roleId}, "resource_type": ${text(row.resourceType)}, "resource_pattern": ${text(row.resourcePattern)}, "permission": ${text(row.permission)}}`
    }

    case 'assignments': {
      const assignment = record as AssignmentRecord
      return `{"id": ${assignment.id}, "user_id": ${assignment.userId}, "role_id": ${assignment.roleId}}`
    }

    case 'tokens': {
      const token = record as TokenRecord
      return `{"id": ${token.id}, "user_id": ${token.userId}, "name": ${text(token.name)}, "digest": "${token.digest}", "created_at": "${token.createdAt}", "expires_at": ${text(token.expiresAt)}, "last_used_at": ${text(token.lastUsedAt)}}`
    }

    case 'job_creators': {
      const job = record as JobCreatorRecord
      return `{"id": ${job.id}, "job_id": ${text(job.jobId)}, "user_id": ${job.userId}}`
    }
  }
}

/** Maps keep insertion order, which is id order unless a file listed records otherwise: sorting is then rarely needed. */
function byId<T extends {id: number}>(records: Iterable<T>): T[] {
  const list = [...records]
  for (let i = 1; i < list.length; i++) if (list[i - 1].id > list[i].id) return list.sort((a, b) => a.id - b.id)
  return list
}

type AnyRecord = AssignmentRecord | JobCreatorRecord | RolePermissionRecord | RoleRecord | TokenRecord | UserRecord

/** A record as the file writes it: snake_case keys, in this order. */
export function recordJson(table: Table, record: AnyRecord): Record<string, unknown> {
  switch (table) {
    case 'users': {
      const user = record as UserRecord
      return {id: user.id, username: user.username, password_hash: user.passwordHash, is_admin: user.isAdmin}
    }

    case 'roles': {
      const role = record as RoleRecord
      return {id: role.id, workspace: role.workspace, name: role.name, description: role.description}
    }

    case 'role_permissions': {
      const row = record as RolePermissionRecord
      return {id: row.id, role_id: row.roleId, resource_type: row.resourceType, resource_pattern: row.resourcePattern, permission: row.permission}
    }

    case 'assignments': {
      const assignment = record as AssignmentRecord
      return {id: assignment.id, user_id: assignment.userId, role_id: assignment.roleId}
    }

    case 'tokens': {
      const token = record as TokenRecord
      return {
        id: token.id,
        user_id: token.userId,
        name: token.name,
        digest: token.digest,
        created_at: token.createdAt,
        expires_at: token.expiresAt,
        last_used_at: token.lastUsedAt,
      }
    }

    case 'job_creators': {
      const job = record as JobCreatorRecord
      return {id: job.id, job_id: job.jobId, user_id: job.userId}
    }
  }
}

/** The state to write, taken at one instant: records are frozen, so it stays as it was while the model goes on. */
export interface SnapshotContent {
  counters: Counters
  tables: [Table, AnyRecord[]][]
}

/** The tables in the file's order (references point back), and the format version that added each. */
export const TABLE_SINCE: Readonly<Record<Table, number>> = {assignments: 2, job_creators: 3, role_permissions: 2, roles: 2, tokens: 3, users: 1}
export const TABLES: readonly Table[] = ['users', 'roles', 'role_permissions', 'assignments', 'tokens', 'job_creators']

/** Keys added to version 3 before its release, which a version 3 file may lack: read as empty and 1. */
const LATE_IN_VERSION_3: readonly string[] = ['next_job_creator_id', 'job_creators']

export function snapshotContent(data: StoreModel): SnapshotContent {
  const sources: Record<Table, Iterable<AnyRecord>> = {
    assignments: data.assignments.values(),
    role_permissions: data.rows.values(),
    roles: data.roles.values(),
    tokens: data.tokens.values(),
    job_creators: data.jobCreators.values(),
    users: data.usersById.values(),
  }
  return {counters: {...data.counters}, tables: TABLES.map((table) => [table, byId(sources[table])])}
}

/**
 * The file's text in pieces of about `recordsPerPiece` records, so a large store can be written
 * without holding the event loop: joined, they are serialize()'s text.
 */
export function* serializePieces(content: SnapshotContent, recordsPerPiece = 2000): Generator<string> {
  const counters = COUNTERS.map(([key, counter]) => `  "${key}": ${content.counters[counter]},\n`).join('')
  yield `{\n  "version": ${FORMAT_VERSION},\n${counters}`
  for (const [t, [table, records]] of content.tables.entries()) {
    const end = t === content.tables.length - 1 ? '\n' : ',\n'
    if (records.length === 0) {
      yield `  "${table}": []${end}`
      continue
    }

    yield `  "${table}": [\n`
    for (let i = 0; i < records.length; i += recordsPerPiece) {
      const piece = records.slice(i, i + recordsPerPiece).map((record) => `    ${recordLine(table, record)}`)
      yield piece.join(',\n') + (i + recordsPerPiece < records.length ? ',\n' : '\n')
    }

    yield `  ]${end}`
  }

  yield '}\n'
}

/** Sorted, so the file diffs cleanly and is the same whoever wrote it. */
export function serialize(data: StoreModel): string {
  return [...serializePieces(snapshotContent(data))].join('')
}

/** Each id counter: its key in files (and journal lines), and the format version that added it. */
export const COUNTERS: [key: string, counter: keyof Counters, since: number][] = [
  ['next_user_id', 'nextUserId', 1],
  ['next_role_id', 'nextRoleId', 2],
  ['next_role_permission_id', 'nextRowId', 2],
  ['next_assignment_id', 'nextAssignmentId', 2],
  ['next_token_id', 'nextTokenId', 3],
  ['next_job_creator_id', 'nextJobCreatorId', 3],
]

/** The top-level keys of a file of `version` (2 or later). */
function versionKeys(version: number): string[] {
  return ['version', ...COUNTERS.filter(([, , since]) => since <= version).map(([key]) => key), ...TABLES.filter((table) => TABLE_SINCE[table] <= version)]
}

const decoder = new TextDecoder('utf-8', {fatal: true})

export function describe(value: unknown): string {
  if (value === null) return 'null'
  if (Array.isArray(value)) return 'an array'
  if (typeof value === 'object') return 'an object'
  if (typeof value === 'string') return `the string ${JSON.stringify(value)}`
  return `${typeof value} ${String(value)}`
}

export function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value)
}

/** Exactly these keys: a misspelt key (`"is_Admin"`) must not silently mean the default. */
export function checkKeys(value: Record<string, unknown>, keys: readonly string[], where: string): string | undefined {
  // Counted in one pass: every record of a large store comes through here.
  let count = 0
  for (const key in value) {
    if (!keys.includes(key)) return `${where} has unknown key ${JSON.stringify(key)} (expected ${keys.join(', ')})`
    count++
  }

  if (count === keys.length) return undefined
  const missing = keys.find((key) => !(key in value))
  return missing === undefined ? undefined : `${where} has no "${missing}"`
}

/**
 * The state a file holds, or a StoreFileError saying exactly what is wrong with it. A version 1
 * file comes back upgraded, with `upgradedFrom` set.
 */
export function parseStoreFile(bytes: Buffer, path: string): StoreModel {
  const invalid: Invalid = (what) =>
    new StoreFileError(path, `The auth store ${path} is not valid: ${what}. It was left unchanged; fix or restore it.`, {problem: 'invalid'})
  const raw = parseJson(bytes, path, invalid)
  if (!isPlainObject(raw)) throw invalid(`the top level is ${describe(raw)}, not an object`)
  if (raw.version === 1) return readVersion1(raw, invalid)
  if (raw.version === 2) {
    const data = readVersioned(raw, 2, invalid)
    data.upgradedFrom = 2
    return data
  }

  if (raw.version !== FORMAT_VERSION) {
    const newer = typeof raw.version === 'number' && raw.version > FORMAT_VERSION
    throw invalid(
      `"version" is ${describe(raw.version)}; this mlflowctl reads versions 1 to ${FORMAT_VERSION}${newer ? ' (written by a newer mlflowctl? Run that one, or restore a backup of a version this one reads)' : ''}`,
    )
  }

  return readVersioned(raw, FORMAT_VERSION, invalid)
}

/**
 * The state of a store of `version` (2 or later) given as an object (a file's JSON, or a
 * database's tables in the same shape), every record, reference and counter checked as a file's
 * are; the tables and counters the version predates are empty and start at 1.
 */
export function readVersioned(raw: Record<string, unknown>, version: number, invalid: Invalid): StoreModel {
  // Both late keys or neither: one without the other is a hand edit that lost something.
  const late = version === 3 && LATE_IN_VERSION_3.every((key) => !(key in raw))
  const keys = late ? versionKeys(version).filter((key) => !LATE_IN_VERSION_3.includes(key)) : versionKeys(version)
  const problem = checkKeys(raw, keys, 'the top-level object')
  if (problem) throw invalid(problem)
  const counters: Partial<Counters> = {}
  for (const [key, counter, since] of COUNTERS) {
    if (since > version || (late && LATE_IN_VERSION_3.includes(key))) continue
    const value = raw[key]
    if (!isId(value)) throw invalid(`"${key}" is ${describe(value)}, not a positive integer`)
    counters[counter] = value
  }

  const data = new StoreModel(counters)
  readUsers(list(raw, 'users', invalid), data, invalid)
  readRoles(list(raw, 'roles', invalid), data, invalid)
  readRows(list(raw, 'role_permissions', invalid), data, invalid)
  readAssignments(list(raw, 'assignments', invalid), data, invalid)
  if (TABLE_SINCE.tokens <= version) readTokens(list(raw, 'tokens', invalid), data, invalid)
  if (TABLE_SINCE.job_creators <= version && !late) readJobCreators(list(raw, 'job_creators', invalid), data, invalid)
  return data
}

/** The error for a file that is valid JSON (or not text at all) but not a store, given what is wrong. */
export type Invalid = (what: string) => StoreFileError

function list(raw: Record<string, unknown>, key: string, invalid: Invalid): unknown[] {
  const value = raw[key]
  if (!Array.isArray(value)) throw invalid(`"${key}" is ${describe(value)}, not an array`)
  return value
}

function parseJson(bytes: Buffer, path: string, invalid: Invalid): unknown {
  let text: string
  try {
    text = decoder.decode(bytes)
  } catch {
    throw invalid('it is not UTF-8 text')
  }

  if (text.trim() === '') throw invalid('it is empty')
  try {
    return JSON.parse(text)
  } catch {
    const where = jsonSyntaxMessage(text) ?? 'it cannot be parsed'
    throw new StoreFileError(path, `The auth store ${path} is not valid JSON: ${where}. It was left unchanged; fix or restore it.`, {problem: 'invalid'})
  }
}

function readUsers(users: unknown[], data: StoreModel, invalid: Invalid): void {
  const userIndex = new Map<number, number>()
  const nameIndex = new Map<string, number>()
  for (const [i, entry] of users.entries()) {
    const where = `users[${i}]`
    const user = parseRecord('users', entry, where, invalid) as UserRecord
    const {id, username} = user
    if (userIndex.has(id)) throw invalid(`${where}.id ${id} is also the id of users[${userIndex.get(id)}]`)
    if (nameIndex.has(username)) throw invalid(`${where}.username ${JSON.stringify(username)} is also the username of users[${nameIndex.get(username)}]`)
    // Ids are never reused: a counter at or below an existing id would hand that id out again.
    if (id >= data.counters.nextUserId) throw invalid(`${where}.id ${id} is not below "next_user_id" (${data.counters.nextUserId})`)
    userIndex.set(id, i)
    nameIndex.set(username, i)
    data.putUser(user)
  }
}

/** Version 1: users and per-user grants; the grants become rows of per-user roles, in user order. */
function readVersion1(raw: Record<string, unknown>, invalid: Invalid): StoreModel {
  const problem = checkKeys(raw, ['version', 'next_user_id', 'users', 'grants'], 'the top-level object')
  if (problem) throw invalid(problem)
  if (!isId(raw.next_user_id)) throw invalid(`"next_user_id" is ${describe(raw.next_user_id)}, not a positive integer`)
  const data = new StoreModel({nextUserId: raw.next_user_id})
  readUsers(list(raw, 'users', invalid), data, invalid)
  const grants: {permission: string; resourceId: string; resourceType: string; userId: number}[] = []
  const seen = new Set<string>()
  for (const [i, entry] of list(raw, 'grants', invalid).entries()) {
    const where = `grants[${i}]`
    const fields = record(entry, ['user_id', 'resource_type', 'resource_id', 'permission'], where, invalid)
    const {permission, resource_id: resourceId, resource_type: resourceType, user_id: userId} = fields
    if (!isId(userId)) throw invalid(`${where}.user_id is ${describe(userId)}, not a positive integer`)
    if (!data.usersById.has(userId)) throw invalid(`${where}.user_id ${userId} is not the id of any user`)
    if (typeof resourceType !== 'string' || resourceType === '') throw invalid(`${where}.resource_type is ${describe(resourceType)}, not a non-empty string`)
    if (typeof resourceId !== 'string') throw invalid(`${where}.resource_id is ${describe(resourceId)}, not a string`)
    if (typeof permission !== 'string' || permission === '') throw invalid(`${where}.permission is ${describe(permission)}, not a non-empty string`)
    const key = JSON.stringify([userId, resourceType, resourceId])
    if (seen.has(key)) throw invalid(`${where} repeats the grant of user ${userId} on ${resourceType} ${JSON.stringify(resourceId)}`)
    seen.add(key)
    grants.push({permission, resourceId, resourceType, userId})
  }

  // A stable sort: each user's grants keep the file's order, so row ids follow it.
  grants.sort((a, b) => a.userId - b.userId)
  for (const grant of grants) data.createGrant(grant)
  data.upgradedFrom = 1
  return data
}

/** A record's fields once its keys are checked; `where` names it in messages. */
export function record(entry: unknown, keys: readonly string[], where: string, invalid: Invalid): Record<string, unknown> {
  if (!isPlainObject(entry)) throw invalid(`${where} is ${describe(entry)}, not an object`)
  const problem = checkKeys(entry, keys, where)
  if (problem) throw invalid(problem)
  return entry
}

/** `where` and `key` name the field in the message (joined only for it: every record of a large store comes through here). */
export function nonEmptyString(value: unknown, where: string, invalid: Invalid, key?: string): string {
  if (typeof value !== 'string' || value === '') throw invalid(`${key === undefined ? where : `${where}.${key}`} is ${describe(value)}, not a non-empty string`)
  return value
}

function reference(fields: Record<string, unknown>, key: 'role_id' | 'user_id', where: string, invalid: Invalid): number {
  const value = fields[key]
  if (!isId(value)) throw invalid(`${where}.${key} ${describe(value)} is not the id of any ${key === 'role_id' ? 'role' : 'user'}`)
  return value
}

const RECORD_KEYS: Record<Table, readonly string[]> = {
  assignments: ['id', 'user_id', 'role_id'],
  role_permissions: ['id', 'role_id', 'resource_type', 'resource_pattern', 'permission'],
  roles: ['id', 'workspace', 'name', 'description'],
  tokens: ['id', 'user_id', 'name', 'digest', 'created_at', 'expires_at', 'last_used_at'],
  job_creators: ['id', 'job_id', 'user_id'],
  users: ['id', 'username', 'password_hash', 'is_admin'],
}

/** One record of a table, its keys and types checked (not its references or uniqueness); frozen. */
export function parseRecord(table: Table, entry: unknown, where: string, invalid: Invalid): AnyRecord {
  const fields = record(entry, RECORD_KEYS[table], where, invalid)
  const {id} = fields
  if (!isId(id)) throw invalid(`${where}.id is ${describe(id)}, not a positive integer`)

  switch (table) {
    case 'users': {
      const {is_admin: isAdmin, password_hash: passwordHash, username} = fields
      if (typeof username !== 'string') throw invalid(`${where}.username is ${describe(username)}, not a string`)
      if (typeof passwordHash !== 'string') throw invalid(`${where}.password_hash is ${describe(passwordHash)}, not a string`)
      if (typeof isAdmin !== 'boolean') throw invalid(`${where}.is_admin is ${describe(isAdmin)}, not true or false`)
      return Object.freeze({id, isAdmin, passwordHash, username})
    }

    case 'roles': {
      const workspace = nonEmptyString(fields.workspace, where, invalid, 'workspace')
      const name = nonEmptyString(fields.name, where, invalid, 'name')
      const {description} = fields
      if (description !== null && typeof description !== 'string') throw invalid(`${where}.description is ${describe(description)}, not a string or null`)
      return Object.freeze({description, id, name, workspace})
    }

    case 'role_permissions': {
      const roleId = reference(fields, 'role_id', where, invalid)
      const resourceType = nonEmptyString(fields.resource_type, where, invalid, 'resource_type')
      const resourcePattern = fields.resource_pattern
      if (typeof resourcePattern !== 'string') throw invalid(`${where}.resource_pattern is ${describe(resourcePattern)}, not a string`)
      const permission = nonEmptyString(fields.permission, where, invalid, 'permission')
      return Object.freeze({id, permission, resourcePattern, resourceType, roleId})
    }

    case 'assignments': {
      const userId = reference(fields, 'user_id', where, invalid)
      const roleId = reference(fields, 'role_id', where, invalid)
      return Object.freeze({id, roleId, userId})
    }

    case 'tokens': {
      const userId = reference(fields, 'user_id', where, invalid)
      const name = nonEmptyString(fields.name, where, invalid, 'name')
      const {created_at: createdAt, digest, expires_at: expiresAt, last_used_at: lastUsedAt} = fields
      if (typeof digest !== 'string' || !isDigest(digest)) throw invalid(`${where}.digest is ${describe(digest)}, not a SHA-256 in lower-case hex`)
      if (!isStoreTime(createdAt)) throw invalid(`${where}.created_at is ${describe(createdAt)}, not a time like 2026-01-31T12:00:00.000Z`)
      if (expiresAt !== null && !isStoreTime(expiresAt))
        throw invalid(`${where}.expires_at is ${describe(expiresAt)}, not null or a time like 2026-01-31T12:00:00.000Z`)
      if (lastUsedAt !== null && !isStoreTime(lastUsedAt))
        throw invalid(`${where}.last_used_at is ${describe(lastUsedAt)}, not null or a time like 2026-01-31T12:00:00.000Z`)
      return Object.freeze({createdAt, digest, expiresAt, id, lastUsedAt, name, userId})
    }

    case 'job_creators': {
      const userId = reference(fields, 'user_id', where, invalid)
      const jobId = fields.job_id
      if (!isJobId(jobId)) throw invalid(`${where}.job_id is ${describe(jobId)}, not a job id (1 to 256 printable characters, no spaces)`)
      return Object.freeze({id, jobId, userId})
    }
  }
}

/** A record's id: unique, and below its counter (ids are never reused). */
function checkNewId(id: number, where: string, taken: Map<number, unknown>, counter: [string, number], invalid: Invalid): void {
  if (taken.has(id)) throw invalid(`${where}.id ${id} is used twice`)
  if (id >= counter[1]) throw invalid(`${where}.id ${id} is not below "${counter[0]}" (${counter[1]})`)
}

function readRoles(roles: unknown[], data: StoreModel, invalid: Invalid): void {
  for (const [i, entry] of roles.entries()) {
    const where = `roles[${i}]`
    const role = parseRecord('roles', entry, where, invalid) as RoleRecord
    checkNewId(role.id, where, data.roles, ['next_role_id', data.counters.nextRoleId], invalid)
    if (data.getRoleByName(role.workspace, role.name))
      throw invalid(`${where} repeats the role name ${JSON.stringify(role.name)} in workspace ${JSON.stringify(role.workspace)}`)
    data.putRole(role)
  }
}

function readRows(rows: unknown[], data: StoreModel, invalid: Invalid): void {
  for (const [i, entry] of rows.entries()) {
    const where = `role_permissions[${i}]`
    const row = parseRecord('role_permissions', entry, where, invalid) as RolePermissionRecord
    checkNewId(row.id, where, data.rows, ['next_role_permission_id', data.counters.nextRowId], invalid)
    if (!data.roles.has(row.roleId)) throw invalid(`${where}.role_id ${describe(row.roleId)} is not the id of any role`)
    if (data.rowByKey(row.roleId, row.resourceType, row.resourcePattern))
      throw invalid(`${where} repeats the row of role ${row.roleId} on ${row.resourceType} ${JSON.stringify(row.resourcePattern)}`)
    data.putRow(row)
  }
}

function readAssignments(assignments: unknown[], data: StoreModel, invalid: Invalid): void {
  for (const [i, entry] of assignments.entries()) {
    const where = `assignments[${i}]`
    const assignment = parseRecord('assignments', entry, where, invalid) as AssignmentRecord
    checkNewId(assignment.id, where, data.assignments, ['next_assignment_id', data.counters.nextAssignmentId], invalid)
    const {roleId, userId} = assignment
    if (!data.usersById.has(userId)) throw invalid(`${where}.user_id ${describe(userId)} is not the id of any user`)
    if (!data.roles.has(roleId)) throw invalid(`${where}.role_id ${describe(roleId)} is not the id of any role`)
    if (data.assignmentsByUser.get(userId)?.has(roleId)) throw invalid(`${where} repeats the assignment of role ${roleId} to user ${userId}`)
    data.putAssignment(assignment)
  }
}

function readTokens(tokens: unknown[], data: StoreModel, invalid: Invalid): void {
  for (const [i, entry] of tokens.entries()) {
    const where = `tokens[${i}]`
    const token = parseRecord('tokens', entry, where, invalid) as TokenRecord
    checkNewId(token.id, where, data.tokens, ['next_token_id', data.counters.nextTokenId], invalid)
    if (!data.usersById.has(token.userId)) throw invalid(`${where}.user_id ${token.userId} is not the id of any user`)
    if (data.tokensByUser.get(token.userId)?.has(token.name))
      throw invalid(`${where} repeats the token name ${JSON.stringify(token.name)} of user ${token.userId}`)
    if (data.tokensByDigest.has(token.digest)) throw invalid(`${where}.digest is also the digest of token ${data.tokensByDigest.get(token.digest)!.id}`)
    data.putToken(token)
  }
}

function readJobCreators(jobs: unknown[], data: StoreModel, invalid: Invalid): void {
  for (const [i, entry] of jobs.entries()) {
    const where = `job_creators[${i}]`
    const job = parseRecord('job_creators', entry, where, invalid) as JobCreatorRecord
    checkNewId(job.id, where, data.jobCreators, ['next_job_creator_id', data.counters.nextJobCreatorId], invalid)
    if (!data.usersById.has(job.userId)) throw invalid(`${where}.user_id ${job.userId} is not the id of any user`)
    if (data.jobCreatorsByJob.has(job.jobId))
      throw invalid(`${where} repeats the job id ${JSON.stringify(job.jobId)} of job_creators ${data.jobCreatorsByJob.get(job.jobId)!.id}`)
    data.putJobCreator(job)
  }
}
