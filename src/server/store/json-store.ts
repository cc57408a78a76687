/**
 * The embedded auth store: users and grants in one readable JSON file.
 *
 * ```json
 * {"version": 1, "next_user_id": 3,
 *  "users": [{"id": 1, "username": "admin", "password_hash": "scrypt:…", "is_admin": true}],
 *  "grants": [{"user_id": 2, "resource_type": "experiment", "resource_id": "42", "permission": "READ"}]}
 * ```
 *
 * - Reads come from in-memory indexes; no request ever waits on the disk.
 * - Writes are queued and applied in order. Whatever queued while one file write was in flight
 *   goes into the next one (group commit); each promise settles once the write holding its change
 *   is durable (atomicWriteFile: temp file, fsync, rename, fsync of the directory), so a crash
 *   leaves the old or the new file, never a torn one.
 * - Several processes may share the file (two `serve`s, an offline command). Each write batch
 *   holds a cross-process lock (`<file>.lock`, proper-lockfile) and re-reads the file first: when
 *   its content hash differs from what we last read or wrote, the other process's state is adopted
 *   before our mutations are applied, so no update is lost. Changes by others also arrive without
 *   any write of ours: the directory is watched (fs.watch) and the file stat-polled as a fallback,
 *   and a changed file is reloaded in the background.
 * - A file that is unreadable or invalid is never overwritten. At open it is an error; later (a
 *   bad hand edit) the last good state keeps serving, `onError` is told, and writes are refused
 *   until the file is valid again.
 * - The file is created at open when missing (mode 0600; missing directories 0700), so a store
 *   that cannot be written fails at start-up rather than at the first request that writes.
 */
import {createHash} from 'node:crypto'
import {type FSWatcher, watch} from 'node:fs'
import {readdir, readFile, realpath, rm, stat} from 'node:fs/promises'
import {basename, dirname, join, resolve} from 'node:path'
import {lock} from 'proper-lockfile'

import {atomicWriteFile, ensurePrivateDir} from '../../core/atomic-file.js'
import {type GrantRecord, type Store, type StoreChange, StoreError, StoreFileError, type UserRecord} from './store.js'

const FORMAT_VERSION = 1
const FILE_MODE = 0o600
const DEFAULT_POLL_INTERVAL_MS = 2000
const DEFAULT_LOCK_STALE_MS = 10_000
const LOCK_RETRY_MAX_TIMEOUT_MS = 200

export interface JsonFileStoreOptions {
  /**
   * After how long a lock left behind by a dead process is taken over (proper-lockfile's `stale`;
   * at least 2000 ms). A live holder refreshes its lock well within this. Default 10 s.
   */
  lockStaleMs?: number
  /**
   * Told about problems no caller is waiting for: the file turned invalid or vanished (the last
   * good state keeps serving, writes are refused), a lock was lost, a change listener threw.
   * Default: a line on stderr.
   */
  onError?: (error: Error) => void
  /** How often the file is stat-polled in case fs.watch misses a change. Default 2 s. */
  pollIntervalMs?: number
  /** Watch the directory with fs.watch (default). False polls only, e.g. where fs.watch is unreliable (NFS). */
  watch?: boolean
}

export {StoreFileError} from './store.js'

// ---------------------------------------------------------------------------------------------
// In-memory state

/** Unambiguous whatever the strings hold: the length prefix says where the type ends. */
function resourceKey(resourceType: string, resourceId: string): string {
  return `${resourceType.length}:${resourceType}${resourceId}`
}

/**
 * One consistent state with its indexes. Records are frozen and replaced, never mutated, so a
 * writer works on a clone() while readers keep using the committed state.
 */
class Data {
  dirty = false

  constructor(
    public nextUserId: number,
    readonly usersByName = new Map<string, UserRecord>(),
    readonly usersById = new Map<number, UserRecord>(),
    /** userId → resourceKey → grant */
    readonly grantsByUser = new Map<number, Map<string, GrantRecord>>(),
    /** resourceKey → userId → grant */
    readonly grantsByResource = new Map<string, Map<number, GrantRecord>>(),
    public grantCount = 0,
  ) {}

  clone(): Data {
    const copy = <K, L>(outer: Map<K, Map<L, GrantRecord>>) => new Map([...outer].map(([key, inner]) => [key, new Map(inner)]))
    return new Data(this.nextUserId, new Map(this.usersByName), new Map(this.usersById), copy(this.grantsByUser), copy(this.grantsByResource), this.grantCount)
  }

  getGrant(userId: number, resourceType: string, resourceId: string): GrantRecord | undefined {
    return this.grantsByUser.get(userId)?.get(resourceKey(resourceType, resourceId))
  }

  putUser(user: UserRecord): void {
    const previous = this.usersById.get(user.id)
    if (previous && previous.username !== user.username) this.usersByName.delete(previous.username)
    this.usersById.set(user.id, user)
    this.usersByName.set(user.username, user)
    this.dirty = true
  }

  removeUser(user: UserRecord): void {
    for (const grant of [...(this.grantsByUser.get(user.id)?.values() ?? [])]) this.removeGrant(grant)
    this.grantsByUser.delete(user.id)
    this.usersById.delete(user.id)
    this.usersByName.delete(user.username)
    this.dirty = true
  }

  putGrant(grant: GrantRecord): void {
    const key = resourceKey(grant.resourceType, grant.resourceId)
    let byResource = this.grantsByUser.get(grant.userId)
    if (!byResource) this.grantsByUser.set(grant.userId, (byResource = new Map()))
    let byUser = this.grantsByResource.get(key)
    if (!byUser) this.grantsByResource.set(key, (byUser = new Map()))
    if (!byResource.has(key)) this.grantCount++
    byResource.set(key, grant)
    byUser.set(grant.userId, grant)
    this.dirty = true
  }

  removeGrant(grant: GrantRecord): void {
    const key = resourceKey(grant.resourceType, grant.resourceId)
    const byResource = this.grantsByUser.get(grant.userId)
    if (!byResource?.delete(key)) return
    if (byResource.size === 0) this.grantsByUser.delete(grant.userId)
    const byUser = this.grantsByResource.get(key)
    byUser?.delete(grant.userId)
    if (byUser?.size === 0) this.grantsByResource.delete(key)
    this.grantCount--
    this.dirty = true
  }

  grantsOn(resourceType: string, resourceId: string): GrantRecord[] {
    return [...(this.grantsByResource.get(resourceKey(resourceType, resourceId))?.values() ?? [])]
  }
}

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
function serialize(data: Data): string {
  const users = [...data.usersById.values()]
    .sort((a, b) => a.id - b.id)
    .map((user) => ({id: user.id, username: user.username, password_hash: user.passwordHash, is_admin: user.isAdmin}))
  const grants = [...data.grantsByUser.values()]
    .flatMap((byResource) => [...byResource.values()])
    .sort((a, b) => a.userId - b.userId || compareText(a.resourceType, b.resourceType) || compareText(a.resourceId, b.resourceId))
    .map((grant) => ({user_id: grant.userId, resource_type: grant.resourceType, resource_id: grant.resourceId, permission: grant.permission}))
  return `{\n  "version": ${FORMAT_VERSION},\n  "next_user_id": ${data.nextUserId},\n  "users": ${recordList(users)},\n  "grants": ${recordList(grants)}\n}\n`
}

/** What a cache keyed by username or by grants must forget after `before` became `after`. */
function changesBetween(before: Data, after: Data): StoreChange[] {
  const changes: StoreChange[] = []
  for (const [username, old] of before.usersByName) {
    const now = after.usersByName.get(username)
    if (!now || now.id !== old.id || now.passwordHash !== old.passwordHash || now.isAdmin !== old.isAdmin) changes.push({kind: 'user', username})
  }

  for (const username of after.usersByName.keys()) {
    if (!before.usersByName.has(username)) changes.push({kind: 'user', username})
  }

  if (!sameGrants(before, after)) changes.push({kind: 'grants'})
  return changes
}

function sameGrants(before: Data, after: Data): boolean {
  if (before.grantCount !== after.grantCount) return false
  for (const byResource of before.grantsByUser.values()) {
    for (const grant of byResource.values()) {
      if (after.getGrant(grant.userId, grant.resourceType, grant.resourceId)?.permission !== grant.permission) return false
    }
  }

  return true
}

// ---------------------------------------------------------------------------------------------
// Reading and validating the file

const decoder = new TextDecoder('utf-8', {fatal: true})

function sha256(bytes: Buffer | string): string {
  return createHash('sha256').update(bytes).digest('hex')
}

function errorCode(error: unknown): string | undefined {
  return (error as NodeJS.ErrnoException | undefined)?.code
}

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

function isId(value: unknown): value is number {
  return typeof value === 'number' && Number.isSafeInteger(value) && value >= 1
}

/** Exactly these keys: a misspelt key (`"is_Admin"`) must not silently mean the default. */
function checkKeys(value: Record<string, unknown>, keys: readonly string[], where: string): string | undefined {
  const unknown = Object.keys(value).filter((key) => !keys.includes(key))
  if (unknown.length > 0) return `${where} has unknown key ${JSON.stringify(unknown[0])} (expected ${keys.join(', ')})`
  const missing = keys.find((key) => !(key in value))
  return missing === undefined ? undefined : `${where} has no "${missing}"`
}

/**
 * Where JSON.parse gave up, as "unexpected X at line L, column C": V8's own message has no
 * position for some errors, and quotes file content (password hashes) for others. Only JSON's own
 * punctuation is quoted back; any other character could be part of a secret.
 */
function jsonSyntaxMessage(text: string): string | undefined {
  let i = 0
  const fail = (): never => {
    throw i
  }

  const space = () => {
    while (i < text.length && ' \t\n\r'.includes(text[i])) i++
  }

  const expect = (char: string) => {
    if (text[i] !== char) fail()
    i++
  }

  const string = () => {
    i++
    for (;;) {
      if (i >= text.length || text.charCodeAt(i) < 0x20) fail()
      const char = text[i++]
      if (char === '"') return
      if (char !== '\\') continue
      const escape = text[i] ?? fail()
      if (escape === 'u') {
        for (let k = 1; k <= 4; k++) if (!/[0-9a-fA-F]/.test(text[i + k] ?? '')) fail()
        i += 5
      } else if ('"\\/bfnrt'.includes(escape)) i++
      else fail()
    }
  }

  const number = /-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?/y
  const value = (): void => {
    space()
    const char = text[i]
    if (char === '{') {
      i++
      space()
      if (text[i] === '}') return void i++
      for (;;) {
        space()
        if (text[i] !== '"') fail()
        string()
        space()
        expect(':')
        value()
        space()
        if (text[i] === '}') return void i++
        expect(',')
      }
    } else if (char === '[') {
      i++
      space()
      if (text[i] === ']') return void i++
      for (;;) {
        value()
        space()
        if (text[i] === ']') return void i++
        expect(',')
      }
    } else if (char === '"') {
      string()
    } else if (char === 't' || char === 'f' || char === 'n') {
      for (const letter of char === 't' ? 'true' : char === 'f' ? 'false' : 'null') expect(letter)
    } else {
      number.lastIndex = i
      if (!number.test(text)) fail()
      i = number.lastIndex
    }
  }

  try {
    value()
    space()
    if (i < text.length) fail()
    return undefined
  } catch (error) {
    if (typeof error !== 'number') return undefined
    const before = text.slice(0, error)
    const line = before.split('\n').length
    const column = error - before.lastIndexOf('\n')
    const what = error >= text.length ? 'end of file' : '{}[],:"'.includes(text[error]) ? JSON.stringify(text[error]) : 'character'
    return `unexpected ${what} at line ${line}, column ${column}`
  }
}

/** The state a file holds, or a StoreFileError saying exactly what is wrong with it. */
function parseStoreFile(bytes: Buffer, path: string): Data {
  const invalid = (what: string) => new StoreFileError(path, `The auth store ${path} is not valid: ${what}. It was left unchanged; fix or restore it.`, {problem: 'invalid'})
  let text: string
  try {
    text = decoder.decode(bytes)
  } catch {
    throw invalid('it is not UTF-8 text')
  }

  if (text.trim() === '') throw invalid('it is empty')
  let raw: unknown
  try {
    raw = JSON.parse(text)
  } catch {
    const where = jsonSyntaxMessage(text) ?? 'it cannot be parsed'
    throw new StoreFileError(path, `The auth store ${path} is not valid JSON: ${where}. It was left unchanged; fix or restore it.`, {problem: 'invalid'})
  }

  if (!isPlainObject(raw)) throw invalid(`the top level is ${describe(raw)}, not an object`)
  if (raw.version !== FORMAT_VERSION) {
    throw invalid(`"version" is ${describe(raw.version)}; this mlflowctl reads version ${FORMAT_VERSION}${typeof raw.version === 'number' && raw.version > FORMAT_VERSION ? ' (written by a newer mlflowctl?)' : ''}`)
  }

  const topProblem = checkKeys(raw, ['version', 'next_user_id', 'users', 'grants'], 'the top-level object')
  if (topProblem) throw invalid(topProblem)
  if (!isId(raw.next_user_id)) throw invalid(`"next_user_id" is ${describe(raw.next_user_id)}, not a positive integer`)
  if (!Array.isArray(raw.users)) throw invalid(`"users" is ${describe(raw.users)}, not an array`)
  if (!Array.isArray(raw.grants)) throw invalid(`"grants" is ${describe(raw.grants)}, not an array`)

  const data = new Data(raw.next_user_id)
  const userIndex = new Map<number, number>()
  const nameIndex = new Map<string, number>()
  for (const [i, entry] of raw.users.entries()) {
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
    if (id >= raw.next_user_id) throw invalid(`${where}.id ${id} is not below "next_user_id" (${raw.next_user_id})`)
    userIndex.set(id, i)
    nameIndex.set(username, i)
    data.putUser(Object.freeze({id, isAdmin, passwordHash, username}))
  }

  for (const [i, entry] of raw.grants.entries()) {
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

  data.dirty = false
  return data
}

/** The file's bytes, or undefined when there is no file. */
async function readStoreBytes(path: string, location: string): Promise<Buffer | undefined> {
  try {
    return await readFile(path)
  } catch (error) {
    if (errorCode(error) === 'ENOENT') return undefined
    throw new StoreFileError(location, `Cannot read the auth store ${location}: ${(error as Error).message}. It was left unchanged.`, {cause: error})
  }
}

/**
 * Changes whenever the file is replaced or rewritten. Only a hint that a reload is due: whether
 * the content changed is decided by its hash.
 */
async function statSignature(path: string): Promise<string> {
  try {
    const info = await stat(path, {bigint: true})
    return `${info.ino}:${info.size}:${info.mtimeNs}:${info.ctimeNs}`
  } catch (error) {
    return `error:${errorCode(error) ?? 'unknown'}`
  }
}

/** The file that writes replace and the lock guards: a symlink's target, so every path to it agrees. */
async function resolveTarget(location: string): Promise<string> {
  try {
    return await realpath(location)
  } catch (error) {
    if (errorCode(error) !== 'ENOENT') throw cannotOpen(location, error)
    try {
      return join(await realpath(dirname(location)), basename(location))
    } catch (inner) {
      throw cannotOpen(location, inner)
    }
  }
}

function cannotOpen(location: string, error: unknown): StoreFileError {
  return new StoreFileError(location, `Cannot open the auth store ${location}: ${(error as Error).message}`, {cause: error})
}

/** Runs `body` holding the cross-process lock `<target>.lock`. */
async function withFileLock<T>(target: string, location: string, staleMs: number, onCompromised: (error: Error) => void, body: () => Promise<T>): Promise<T> {
  let release: () => Promise<void>
  let compromised = false
  try {
    release = await lock(target, {
      lockfilePath: `${target}.lock`,
      onCompromised(error) {
        // proper-lockfile's default throws from a timer, which would kill the server.
        compromised = true
        onCompromised(error)
      },
      realpath: false,
      // Wait long enough to outlast a dead holder's stale lock, then give up with an error.
      retries: {factor: 1.5, maxTimeout: LOCK_RETRY_MAX_TIMEOUT_MS, minTimeout: 2, randomize: true, retries: Math.ceil((3 * staleMs) / LOCK_RETRY_MAX_TIMEOUT_MS) + 20},
      stale: staleMs,
    })
  } catch (error) {
    const locked = errorCode(error) === 'ELOCKED'
    const reason = locked ? `another process holds ${target}.lock and keeps it fresh` : (error as Error).message
    throw new StoreFileError(location, `Cannot lock the auth store ${location}: ${reason}. Nothing was changed.`, {cause: error, problem: locked ? 'locked' : 'unreadable'})
  }

  try {
    return await body()
  } finally {
    if (!compromised) await release().catch((error: Error) => onCompromised(error))
  }
}

// ---------------------------------------------------------------------------------------------
// Runtime checks on what callers pass, so a write can never produce a file we would refuse.

function checkString(value: unknown, name: string, nonEmpty = false): void {
  if (typeof value !== 'string' || (nonEmpty && value === '')) throw new TypeError(`${name} must be a ${nonEmpty ? 'non-empty ' : ''}string`)
}

function checkBoolean(value: unknown, name: string): void {
  if (typeof value !== 'boolean') throw new TypeError(`${name} must be true or false`)
}

function checkGrantKey(userId: unknown, resourceType: unknown, resourceId: unknown): void {
  if (!isId(userId)) throw new TypeError('userId must be a positive integer')
  checkString(resourceType, 'resourceType', true)
  checkString(resourceId, 'resourceId')
}

function grantName(userId: number, resourceType: string, resourceId: string): string {
  return `Permission (user_id=${userId}, resource_type=${resourceType}, resource_id=${resourceId})`
}

/** A throwing onError must not break the store: the write chain depends on it returning. */
function safeReporter(onError: (error: Error) => void): (error: Error) => void {
  return (error) => {
    try {
      onError(error)
    } catch {}
  }
}

// ---------------------------------------------------------------------------------------------

interface PendingWrite {
  apply: (data: Data) => unknown
  reject: (error: unknown) => void
  resolve: (value: unknown) => void
}

export class JsonFileStore implements Store {
  private closed = false
  private closing: Promise<void> | undefined
  /** Every disk task (write batch, reload) runs on this chain, one at a time. */
  private chain: Promise<void> = Promise.resolve()
  private flushScheduled = false
  private readonly listeners = new Set<(change: StoreChange) => void>()
  private readonly pending: PendingWrite[] = []
  private polling = false
  private readonly pollTimer: NodeJS.Timeout
  /** The problem last reported by a background reload, so it is reported once, not every poll. */
  private reportedProblem: string | undefined
  private reloadQueued = false
  private tempFilesCleaned = false
  private watcher: FSWatcher | undefined

  private constructor(
    readonly location: string,
    private readonly target: string,
    private data: Data,
    /** sha256 of the file content `data` came from (or was written as). */
    private hash: string,
    private readonly options: Required<JsonFileStoreOptions>,
    /** Taken before `data` was read, so a change in between still shows as a difference. */
    private statSignature: string,
  ) {
    if (options.watch) this.startWatching()
    this.pollTimer = setInterval(() => void this.poll(), options.pollIntervalMs)
    this.pollTimer.unref()
  }

  /**
   * Loads the store at `path`, creating it (and its directory) when missing. Rejects with a
   * StoreFileError naming the file and the problem when it cannot be read or is not a valid store;
   * such a file is left as it is.
   */
  static async open(path: string, options: JsonFileStoreOptions = {}): Promise<JsonFileStore> {
    const location = resolve(path)
    const settings: Required<JsonFileStoreOptions> = {
      lockStaleMs: Math.max(options.lockStaleMs ?? DEFAULT_LOCK_STALE_MS, 2000),
      onError: safeReporter(options.onError ?? ((error) => process.stderr.write(`mlflowctl: auth store: ${error.message}\n`))),
      pollIntervalMs: Math.max(options.pollIntervalMs ?? DEFAULT_POLL_INTERVAL_MS, 50),
      watch: options.watch ?? true,
    }
    let signature = await statSignature(location)
    let bytes = await readStoreBytes(location, location)
    if (bytes === undefined) {
      try {
        await ensurePrivateDir(dirname(location))
      } catch (error) {
        throw new StoreFileError(location, `Cannot create the auth store ${location}: ${(error as Error).message}`, {cause: error})
      }
    }

    const target = await resolveTarget(location)
    if (bytes === undefined) {
      // Another process may be creating it right now: decide under the lock.
      bytes = await withFileLock(target, location, settings.lockStaleMs, settings.onError, async () => {
        signature = await statSignature(target)
        const existing = await readStoreBytes(target, location)
        if (existing !== undefined) return existing
        const empty = Buffer.from(serialize(new Data(1)))
        try {
          await atomicWriteFile(target, empty, {mode: FILE_MODE})
        } catch (error) {
          throw new StoreFileError(location, `Cannot create the auth store ${location}: ${(error as Error).message}`, {cause: error})
        }

        signature = await statSignature(target)
        return empty
      })
    }

    return new JsonFileStore(location, target, parseStoreFile(bytes, location), sha256(bytes), settings, signature)
  }

  // --- reads: memory only ---------------------------------------------------------------------

  getUser(username: string): undefined | UserRecord {
    return this.data.usersByName.get(username)
  }

  getUserById(id: number): undefined | UserRecord {
    return this.data.usersById.get(id)
  }

  /** By id, oldest first. */
  listUsers(): UserRecord[] {
    return [...this.data.usersById.values()].sort((a, b) => a.id - b.id)
  }

  getGrant(userId: number, resourceType: string, resourceId: string): GrantRecord | undefined {
    return this.data.getGrant(userId, resourceType, resourceId)
  }

  listGrants(userId: number): GrantRecord[] {
    return [...(this.data.grantsByUser.get(userId)?.values() ?? [])]
  }

  onChange(listener: (change: StoreChange) => void): () => void {
    // A wrapper, so subscribing the same function twice gives two independent subscriptions.
    const entry = (change: StoreChange) => listener(change)
    this.listeners.add(entry)
    return () => {
      this.listeners.delete(entry)
    }
  }

  // --- writes ---------------------------------------------------------------------------------

  createUser(user: Omit<UserRecord, 'id'>): Promise<UserRecord> {
    return this.enqueue((data) => {
      checkString(user.username, 'username')
      checkString(user.passwordHash, 'passwordHash')
      checkBoolean(user.isAdmin, 'isAdmin')
      if (data.usersByName.has(user.username)) throw new StoreError('RESOURCE_ALREADY_EXISTS', `User (username=${user.username}) already exists.`)
      const record: UserRecord = Object.freeze({id: data.nextUserId, isAdmin: user.isAdmin, passwordHash: user.passwordHash, username: user.username})
      data.nextUserId++
      data.putUser(record)
      return record
    })
  }

  updateUser(username: string, patch: Partial<Pick<UserRecord, 'isAdmin' | 'passwordHash'>>): Promise<UserRecord> {
    return this.enqueue((data) => {
      if (patch.passwordHash !== undefined) checkString(patch.passwordHash, 'passwordHash')
      if (patch.isAdmin !== undefined) checkBoolean(patch.isAdmin, 'isAdmin')
      const user = data.usersByName.get(username)
      if (!user) throw new StoreError('RESOURCE_DOES_NOT_EXIST', `User with username=${username} not found`)
      const updated: UserRecord = Object.freeze({
        id: user.id,
        isAdmin: patch.isAdmin ?? user.isAdmin,
        passwordHash: patch.passwordHash ?? user.passwordHash,
        username,
      })
      if (updated.isAdmin !== user.isAdmin || updated.passwordHash !== user.passwordHash) data.putUser(updated)
      return data.usersByName.get(username)!
    })
  }

  deleteUser(username: string): Promise<void> {
    return this.enqueue((data) => {
      const user = data.usersByName.get(username)
      if (!user) throw new StoreError('RESOURCE_DOES_NOT_EXIST', `User with username=${username} not found`)
      data.removeUser(user)
    })
  }

  createGrant(grant: GrantRecord): Promise<GrantRecord> {
    return this.enqueue((data) => {
      const {permission, resourceId, resourceType, userId} = grant
      checkGrantKey(userId, resourceType, resourceId)
      checkString(permission, 'permission', true)
      if (!data.usersById.has(userId)) throw new StoreError('RESOURCE_DOES_NOT_EXIST', `User with id=${userId} not found`)
      if (data.getGrant(userId, resourceType, resourceId)) throw new StoreError('RESOURCE_ALREADY_EXISTS', `${grantName(userId, resourceType, resourceId)} already exists.`)
      const record: GrantRecord = Object.freeze({permission, resourceId, resourceType, userId})
      data.putGrant(record)
      return record
    })
  }

  updateGrant(grant: GrantRecord): Promise<GrantRecord> {
    return this.enqueue((data) => {
      const {permission, resourceId, resourceType, userId} = grant
      checkGrantKey(userId, resourceType, resourceId)
      checkString(permission, 'permission', true)
      const existing = data.getGrant(userId, resourceType, resourceId)
      if (!existing) throw new StoreError('RESOURCE_DOES_NOT_EXIST', `${grantName(userId, resourceType, resourceId)} not found`)
      if (existing.permission === permission) return existing
      const record: GrantRecord = Object.freeze({permission, resourceId, resourceType, userId})
      data.putGrant(record)
      return record
    })
  }

  deleteGrant(userId: number, resourceType: string, resourceId: string): Promise<void> {
    return this.enqueue((data) => {
      checkGrantKey(userId, resourceType, resourceId)
      const existing = data.getGrant(userId, resourceType, resourceId)
      if (!existing) throw new StoreError('RESOURCE_DOES_NOT_EXIST', `${grantName(userId, resourceType, resourceId)} not found`)
      data.removeGrant(existing)
    })
  }

  deleteGrantsForResource(resourceType: string, resourceId: string): Promise<number> {
    return this.enqueue((data) => {
      checkString(resourceType, 'resourceType', true)
      checkString(resourceId, 'resourceId')
      const grants = data.grantsOn(resourceType, resourceId)
      for (const grant of grants) data.removeGrant(grant)
      return grants.length
    })
  }

  /**
   * Afterwards the grants on `toId` are exactly those that were on `fromId`: a grant left on
   * `toId` (from a deleted resource of that name) is dropped rather than kept, so a rename never
   * gives anyone access they did not have to the renamed resource.
   */
  renameResource(resourceType: string, fromId: string, toId: string): Promise<number> {
    return this.enqueue((data) => {
      checkString(resourceType, 'resourceType', true)
      checkString(fromId, 'fromId')
      checkString(toId, 'toId')
      const moving = data.grantsOn(resourceType, fromId)
      if (fromId === toId) return moving.length
      for (const stale of data.grantsOn(resourceType, toId)) data.removeGrant(stale)
      for (const grant of moving) {
        data.removeGrant(grant)
        data.putGrant(Object.freeze({...grant, resourceId: toId}))
      }

      return moving.length
    })
  }

  /** Waits for every write queued before it, then stops watching. Later writes are refused. */
  close(): Promise<void> {
    this.closing ??= (async () => {
      this.closed = true
      this.watcher?.close()
      this.watcher = undefined
      clearInterval(this.pollTimer)
      await this.chain
    })()
    return this.closing
  }

  // --- the write path -------------------------------------------------------------------------

  private enqueue<T>(apply: (data: Data) => T): Promise<T> {
    if (this.closed) return Promise.reject(new Error(`The auth store ${this.location} is closed`))
    return new Promise<T>((resolve, reject) => {
      this.pending.push({apply, reject, resolve: resolve as (value: unknown) => void})
      if (!this.flushScheduled) {
        this.flushScheduled = true
        this.serially(() => this.flush())
      }
    })
  }

  private serially(task: () => Promise<void>): void {
    this.chain = this.chain.then(task).catch((error: Error) => this.options.onError(error))
  }

  /** One group commit: everything queued so far, in one locked read-modify-write. */
  private async flush(): Promise<void> {
    this.flushScheduled = false
    const batch = this.pending.splice(0)
    if (batch.length === 0) return
    const outcomes: ({error: unknown; ok: false} | {ok: true; value: unknown})[] = []
    try {
      await withFileLock(this.target, this.location, this.options.lockStaleMs, (error) => this.lockLost(error), async () => {
        await this.removeOrphanedTempFiles()
        // Start from what is on disk now: another process may have written since we last looked.
        const bytes = await readStoreBytes(this.target, this.location)
        if (bytes === undefined) throw this.missingFileError()
        const hash = sha256(bytes)
        if (hash !== this.hash) this.adopt(parseStoreFile(bytes, this.location), hash)
        const draft = this.data.clone()
        for (const write of batch) {
          try {
            outcomes.push({ok: true, value: write.apply(draft)})
          } catch (error) {
            outcomes.push({error, ok: false})
          }
        }

        if (!draft.dirty) return
        const text = serialize(draft)
        try {
          await atomicWriteFile(this.target, text, {mode: FILE_MODE})
        } catch (error) {
          throw new StoreFileError(this.location, `Cannot write the auth store ${this.location}: ${(error as Error).message}. It was left unchanged.`, {cause: error})
        }

        draft.dirty = false
        this.adopt(draft, sha256(text))
      })
    } catch (error) {
      // Nothing of this batch reached the disk: every write in it fails, the state is unchanged.
      for (const write of batch) write.reject(error)
      return
    }

    for (const [i, write] of batch.entries()) {
      const outcome = outcomes[i]
      if (outcome.ok) write.resolve(outcome.value)
      else write.reject(outcome.error)
    }
  }

  private missingFileError(): StoreFileError {
    return new StoreFileError(this.location, `The auth store ${this.location} is gone (deleted or moved while in use); writes are refused until it is restored. Restart to start from an empty store.`, {problem: 'missing'})
  }

  private lockLost(error: Error): void {
    this.options.onError(new Error(`Lost the lock on the auth store ${this.location} (${error.message}); another process may have written at the same time`, {cause: error}))
  }

  /** A process killed mid-write leaves its temp file; while we hold the lock, nobody else has one. */
  private async removeOrphanedTempFiles(): Promise<void> {
    if (this.tempFilesCleaned) return
    this.tempFilesCleaned = true
    // atomicWriteFile's naming: .<name>.<pid>.<12 hex>.tmp
    const prefix = `.${basename(this.target)}.`
    const isOrphan = (entry: string) => entry.startsWith(prefix) && /^\d+\.[0-9a-f]{12}\.tmp$/.test(entry.slice(prefix.length))
    try {
      const orphans = (await readdir(dirname(this.target))).filter((entry) => isOrphan(entry))
      await Promise.all(orphans.map((entry) => rm(join(dirname(this.target), entry), {force: true})))
    } catch {
      // Only tidiness is at stake.
    }
  }

  /** Makes `data` the served state and tells listeners what changed. */
  private adopt(data: Data, hash: string): void {
    const before = this.data
    this.data = data
    this.hash = hash
    this.reportedProblem = undefined
    for (const change of changesBetween(before, data)) {
      for (const listener of this.listeners) {
        try {
          listener(change)
        } catch (error) {
          this.options.onError(new Error(`An auth store change listener failed: ${(error as Error)?.message ?? String(error)}`, {cause: error}))
        }
      }
    }
  }

  // --- noticing other processes' writes ---------------------------------------------------------

  private startWatching(): void {
    const name = basename(this.target)
    try {
      // The directory, not the file: a rename replaces the file's inode, and a watch on the old one goes quiet.
      this.watcher = watch(dirname(this.target), {persistent: false}, (_event, filename) => {
        if (filename === null || filename === name) this.requestReload()
      })
      this.watcher.on('error', () => {
        // The stat poll still notices changes.
        this.watcher?.close()
        this.watcher = undefined
      })
    } catch {
      this.watcher = undefined
    }
  }

  private async poll(): Promise<void> {
    if (this.closed || this.polling) return
    this.polling = true
    try {
      const signature = await statSignature(this.target)
      if (signature !== this.statSignature) {
        this.statSignature = signature
        this.requestReload()
      }
    } finally {
      this.polling = false
    }
  }

  private requestReload(): void {
    if (this.closed || this.reloadQueued) return
    this.reloadQueued = true
    this.serially(() => this.reload())
  }

  /** Adopts the file if another process changed it; a bad file is reported and the last good state kept. */
  private async reload(): Promise<void> {
    this.reloadQueued = false
    if (this.closed) return
    let bytes: Buffer | undefined
    try {
      bytes = await readStoreBytes(this.target, this.location)
    } catch (error) {
      this.reportProblem(`read:${(error as Error).message}`, error as Error)
      return
    }

    if (bytes === undefined) {
      this.reportProblem('missing', this.missingFileError())
      return
    }

    const hash = sha256(bytes)
    if (hash === this.hash) {
      this.reportedProblem = undefined
      return
    }

    let data: Data
    try {
      data = parseStoreFile(bytes, this.location)
    } catch (error) {
      this.reportProblem(hash, new StoreFileError(this.location, `${(error as Error).message} Serving the last good state; writes are refused until the file is valid.`, {cause: error, problem: 'invalid'}))
      return
    }

    this.adopt(data, hash)
  }

  private reportProblem(key: string, error: Error): void {
    if (this.reportedProblem === key) return
    this.reportedProblem = key
    this.options.onError(error)
  }
}
