/**
 * The JSON file format of the embedded auth store:
 *
 * ```json
 * {"version": 1, "next_user_id": 3,
 *  "users": [{"id": 1, "username": "admin", "password_hash": "scrypt:…", "is_admin": true}],
 *  "grants": [{"user_id": 2, "resource_type": "experiment", "resource_id": "42", "permission": "READ"}]}
 * ```
 *
 * Written sorted, one record per line; read strictly (exact keys, types, unique ids and names), so
 * a hand edit that would mean something else than it says is refused with what and where.
 */
import {jsonSyntaxMessage} from './json-syntax.js'
import {isId, StoreModel} from './model.js'
import {StoreFileError} from './store.js'

const FORMAT_VERSION = 1

function compareText(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0
}

/** `{"a": 1, "b": "x"}`: one record per line reads, greps and diffs well. */
function inlineObject(record: Record<string, unknown>): string {
  return `{${Object.entries(record)
    .map(([key, value]) => `${JSON.stringify(key)}: ${JSON.stringify(value)}`)
    .join(', ')}}`
}

function recordList(records: Record<string, unknown>[]): string {
  return records.length === 0 ? '[]' : `[\n${records.map((record) => `    ${inlineObject(record)}`).join(',\n')}\n  ]`
}

/** Sorted, so the file diffs cleanly and is the same whoever wrote it. */
export function serialize(data: StoreModel): string {
  const users = [...data.usersById.values()]
    .sort((a, b) => a.id - b.id)
    .map((user) => ({id: user.id, username: user.username, password_hash: user.passwordHash, is_admin: user.isAdmin}))
  const grants = [...data.grantsByUser.values()]
    .flatMap((byResource) => [...byResource.values()])
    .sort((a, b) => a.userId - b.userId || compareText(a.resourceType, b.resourceType) || compareText(a.resourceId, b.resourceId))
    .map((grant) => ({user_id: grant.userId, resource_type: grant.resourceType, resource_id: grant.resourceId, permission: grant.permission}))
  return `{\n  "version": ${FORMAT_VERSION},\n  "next_user_id": ${data.nextUserId},\n  "users": ${recordList(users)},\n  "grants": ${recordList(grants)}\n}\n`
}

const decoder = new TextDecoder('utf-8', {fatal: true})

function describe(value: unknown): string {
  if (value === null) return 'null'
  if (Array.isArray(value)) return 'an array'
  if (typeof value === 'object') return 'an object'
  if (typeof value === 'string') return `the string ${JSON.stringify(value)}`
  return `${typeof value} ${String(value)}`
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value)
}

/** Exactly these keys: a misspelt key (`"is_Admin"`) must not silently mean the default. */
function checkKeys(value: Record<string, unknown>, keys: readonly string[], where: string): string | undefined {
  const unknown = Object.keys(value).filter((key) => !keys.includes(key))
  if (unknown.length > 0) return `${where} has unknown key ${JSON.stringify(unknown[0])} (expected ${keys.join(', ')})`
  const missing = keys.find((key) => !(key in value))
  return missing === undefined ? undefined : `${where} has no "${missing}"`
}

/** The state a file holds, or a StoreFileError saying exactly what is wrong with it. */
export function parseStoreFile(bytes: Buffer, path: string): StoreModel {
  const invalid: Invalid = (what) =>
    new StoreFileError(path, `The auth store ${path} is not valid: ${what}. It was left unchanged; fix or restore it.`, {problem: 'invalid'})
  const raw = checkTopLevel(parseJson(bytes, path, invalid), invalid)
  const data = new StoreModel(raw.next_user_id)
  readUsers(raw.users, data, invalid)
  readGrants(raw.grants, data, invalid)
  data.dirty = false
  return data
}

/** The error for a file that is valid JSON (or not text at all) but not a store, given what is wrong. */
type Invalid = (what: string) => StoreFileError

/** The top-level object once checked. */
interface TopLevel {
  grants: unknown[]
  next_user_id: number
  users: unknown[]
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

function checkTopLevel(raw: unknown, invalid: Invalid): TopLevel {
  if (!isPlainObject(raw)) throw invalid(`the top level is ${describe(raw)}, not an object`)
  if (raw.version !== FORMAT_VERSION) {
    throw invalid(
      `"version" is ${describe(raw.version)}; this mlflowctl reads version ${FORMAT_VERSION}${typeof raw.version === 'number' && raw.version > FORMAT_VERSION ? ' (written by a newer mlflowctl?)' : ''}`,
    )
  }

  const topProblem = checkKeys(raw, ['version', 'next_user_id', 'users', 'grants'], 'the top-level object')
  if (topProblem) throw invalid(topProblem)
  if (!isId(raw.next_user_id)) throw invalid(`"next_user_id" is ${describe(raw.next_user_id)}, not a positive integer`)
  if (!Array.isArray(raw.users)) throw invalid(`"users" is ${describe(raw.users)}, not an array`)
  if (!Array.isArray(raw.grants)) throw invalid(`"grants" is ${describe(raw.grants)}, not an array`)
  return {grants: raw.grants, next_user_id: raw.next_user_id, users: raw.users}
}

function readUsers(users: unknown[], data: StoreModel, invalid: Invalid): void {
  const userIndex = new Map<number, number>()
  const nameIndex = new Map<string, number>()
  for (const [i, entry] of users.entries()) {
    const where = `users[${i}]`
    if (!isPlainObject(entry)) throw invalid(`${where} is ${describe(entry)}, not an object`)
    const problem = checkKeys(entry, ['id', 'username', 'password_hash', 'is_admin'], where)
    if (problem) throw invalid(problem)
    const {id, is_admin: isAdmin, password_hash: passwordHash, username} = entry
    if (!isId(id)) throw invalid(`${where}.id is ${describe(id)}, not a positive integer`)
    if (typeof username !== 'string') throw invalid(`${where}.username is ${describe(username)}, not a string`)
    if (typeof passwordHash !== 'string') throw invalid(`${where}.password_hash is ${describe(passwordHash)}, not a string`)
    if (typeof isAdmin !== 'boolean') throw invalid(`${where}.is_admin is ${describe(isAdmin)}, not true or false`)
    if (userIndex.has(id)) throw invalid(`${where}.id ${id} is also the id of users[${userIndex.get(id)}]`)
    if (nameIndex.has(username)) throw invalid(`${where}.username ${JSON.stringify(username)} is also the username of users[${nameIndex.get(username)}]`)
    // Ids are never reused: a counter at or below an existing id would hand that id out again.
    if (id >= data.nextUserId) throw invalid(`${where}.id ${id} is not below "next_user_id" (${data.nextUserId})`)
    userIndex.set(id, i)
    nameIndex.set(username, i)
    data.putUser(Object.freeze({id, isAdmin, passwordHash, username}))
  }
}

function readGrants(grants: unknown[], data: StoreModel, invalid: Invalid): void {
  for (const [i, entry] of grants.entries()) {
    const where = `grants[${i}]`
    if (!isPlainObject(entry)) throw invalid(`${where} is ${describe(entry)}, not an object`)
    const problem = checkKeys(entry, ['user_id', 'resource_type', 'resource_id', 'permission'], where)
    if (problem) throw invalid(problem)
    const {permission, resource_id: resourceId, resource_type: resourceType, user_id: userId} = entry
    if (!isId(userId)) throw invalid(`${where}.user_id is ${describe(userId)}, not a positive integer`)
    if (!data.usersById.has(userId)) throw invalid(`${where}.user_id ${userId} is not the id of any user`)
    if (typeof resourceType !== 'string' || resourceType === '') throw invalid(`${where}.resource_type is ${describe(resourceType)}, not a non-empty string`)
    if (typeof resourceId !== 'string') throw invalid(`${where}.resource_id is ${describe(resourceId)}, not a string`)
    if (typeof permission !== 'string' || permission === '') throw invalid(`${where}.permission is ${describe(permission)}, not a non-empty string`)
    if (data.getGrant(userId, resourceType, resourceId)) {
      throw invalid(`${where} repeats the grant of user ${userId} on ${resourceType} ${JSON.stringify(resourceId)}`)
    }

    data.putGrant(Object.freeze({permission, resourceId, resourceType, userId}))
  }
}
