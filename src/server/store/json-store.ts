/**
 * The JSON file adapter of the auth store: the in-memory model (model.ts) kept in one readable file
 * (json-format.ts).
 *
 * - Reads come from the model in memory; no request ever waits on the disk.
 * - Writes are queued and applied in order. Whatever queued while one file write was in flight
 *   goes into the next one (group commit); each promise settles once the write holding its change
 *   is durable (atomicWriteFile: temp file, fsync, rename, fsync of the directory), so a crash
 *   leaves the old or the new file, never a torn one.
 * - Several processes may share the file (two `serve`s, an offline command). Each write batch
 *   holds a cross-process lock (file-io.ts) and re-reads the file first: when its content hash
 *   differs from what we last read or wrote, the other process's state is adopted before our
 *   writes are applied, so no update is lost. Changes by others also arrive without any write of
 *   ours: the directory is watched (fs.watch) and the file stat-polled as a fallback, and a changed
 *   file is reloaded in the background, so a user created through one serve can log in at the other.
 * - A file that is unreadable or invalid is never overwritten. At open it is an error; later (a
 *   bad hand edit) the last good state keeps serving, `onError` is told, and writes are refused
 *   until the file is valid again.
 * - The file is created at open when missing (mode 0600; missing directories 0700), so a store
 *   that cannot be written fails at start-up rather than at the first request that writes.
 * - A file of an older format version is rewritten in the current one at open (and before any
 *   write over one an older mlflowctl wrote meanwhile), its bytes first kept beside it as
 *   `<file>.v<old version>.bak` (0600; an existing backup is never replaced). A newer version is
 *   refused like any invalid file.
 */
import {createHash} from 'node:crypto'
import {type FSWatcher, watch} from 'node:fs'
import {readdir, rm} from 'node:fs/promises'
import {basename, dirname, join, resolve} from 'node:path'

import {atomicWriteFile, ensurePrivateDir, writeFileOnce} from '../../core/atomic-file.js'
import {type RoleRow} from '../../mlflow/rbac.js'
import {readStoreBytes, resolveTarget, statSignature, withFileLock} from './file-io.js'
import {parseStoreFile, serialize} from './json-format.js'
import {StoreModel} from './model.js'
import {type AssignmentRecord, type GrantRecord, type RolePermissionRecord, type RoleRecord, type Store, StoreFileError, type UserRecord} from './store.js'

const FILE_MODE = 0o600
const DEFAULT_POLL_INTERVAL_MS = 2000
const DEFAULT_LOCK_STALE_MS = 10_000

export interface JsonFileStoreOptions {
  /**
   * After how long a lock left behind by a dead process is taken over (proper-lockfile's `stale`;
   * at least 2000 ms). A live holder refreshes its lock well within this. Default 10 s.
   */
  lockStaleMs?: number
  /**
   * Told about problems no caller is waiting for: the file turned invalid or vanished (the last
   * good state keeps serving, writes are refused), a lock was lost. Default: a line on stderr.
   */
  onError?: (error: Error) => void
  /** How often the file is stat-polled in case fs.watch misses a change. Default 2 s. */
  pollIntervalMs?: number
  /** Watch the directory with fs.watch (default). False polls only, e.g. where fs.watch is unreliable (NFS). */
  watch?: boolean
}

export {StoreFileError} from './store.js'

async function writeStore(target: string, location: string, text: Buffer | string): Promise<void> {
  try {
    await atomicWriteFile(target, text, {mode: FILE_MODE})
  } catch (error) {
    throw new StoreFileError(location, `Cannot write the auth store ${location}: ${(error as Error).message}. It was left unchanged.`, {cause: error})
  }
}

/**
 * Before a file of an older format is rewritten: its bytes as `<file>.v<version>.bak` (0600),
 * beside it. An existing backup is never replaced, so it keeps the oldest content.
 */
async function keepPreviousVersion(target: string, location: string, bytes: Buffer, version: number): Promise<void> {
  const backup = `${target}.v${version}.bak`
  try {
    await writeFileOnce(backup, bytes, {mode: FILE_MODE})
  } catch (error) {
    throw new StoreFileError(location, `Cannot keep the auth store's previous version as ${backup}: ${(error as Error).message}. It was left unchanged.`, {
      cause: error,
    })
  }
}

function sha256(bytes: Buffer | string): string {
  return createHash('sha256').update(bytes).digest('hex')
}

/** A throwing onError must not break the store: the write chain depends on it returning. */
function safeReporter(onError: (error: Error) => void): (error: Error) => void {
  return (error) => {
    try {
      onError(error)
    } catch {}
  }
}

/** A write waiting for the next batch; each resolves with what its own apply returned. */
interface PendingWrite<T = unknown> {
  apply: (data: StoreModel) => T
  reject: (error: unknown) => void
  resolve: (value: T) => void
}

export class JsonFileStore implements Store {
  private closed = false
  private closing: Promise<void> | undefined
  /** Every disk task (write batch, reload) runs on this chain, one at a time. */
  private chain: Promise<void> = Promise.resolve()
  private flushScheduled = false
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
    private data: StoreModel,
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
        const empty = Buffer.from(serialize(new StoreModel()))
        try {
          await atomicWriteFile(target, empty, {mode: FILE_MODE})
        } catch (error) {
          throw new StoreFileError(location, `Cannot create the auth store ${location}: ${(error as Error).message}`, {cause: error})
        }

        signature = await statSignature(target)
        return empty
      })
    }

    let data = parseStoreFile(bytes, location)
    if (data.upgradedFrom !== undefined) {
      // Rewritten in the current format at once, under the lock: another process may be doing the same.
      ;({bytes, data, signature} = await withFileLock(target, location, settings.lockStaleMs, settings.onError, async () => {
        const current = await readStoreBytes(target, location)
        if (current === undefined) throw new StoreFileError(location, `The auth store ${location} vanished while it was being opened.`, {problem: 'missing'})
        const parsed = parseStoreFile(current, location)
        if (parsed.upgradedFrom === undefined) return {bytes: current, data: parsed, signature: await statSignature(target)}
        await keepPreviousVersion(target, location, current, parsed.upgradedFrom)
        const text = Buffer.from(serialize(parsed))
        await writeStore(target, location, text)
        parsed.dirty = false
        parsed.upgradedFrom = undefined
        return {bytes: text, data: parsed, signature: await statSignature(target)}
      }))
    }

    return new JsonFileStore(location, target, data, sha256(bytes), settings, signature)
  }

  // --- reads: memory only ---------------------------------------------------------------------

  getUser(username: string): undefined | UserRecord {
    return this.data.usersByName.get(username)
  }

  getUserById(id: number): undefined | UserRecord {
    return this.data.usersById.get(id)
  }

  listUsers(): UserRecord[] {
    return this.data.listUsers()
  }

  getGrant(userId: number, resourceType: string, resourceId: string): GrantRecord | undefined {
    return this.data.getGrant(userId, resourceType, resourceId)
  }

  rowsOf(userId: number): readonly RoleRow[] {
    return this.data.rowsOf(userId)
  }

  listGrants(userId: number): GrantRecord[] {
    return this.data.listGrants(userId)
  }

  getRole(roleId: number): RoleRecord | undefined {
    return this.data.getRole(roleId)
  }

  listRoles(workspaces?: readonly string[]): RoleRecord[] {
    return this.data.listRoles(workspaces)
  }

  getRolePermission(rowId: number): RolePermissionRecord | undefined {
    return this.data.getRolePermission(rowId)
  }

  listRolePermissions(roleId: number): RolePermissionRecord[] {
    return this.data.listRolePermissions(roleId)
  }

  listUserRoles(userId: number): RoleRecord[] {
    return this.data.listUserRoles(userId)
  }

  listRoleUsers(roleId: number): AssignmentRecord[] {
    return this.data.listRoleUsers(roleId)
  }

  // --- writes: applied to the model in the next group commit -----------------------------------

  createUser(user: Omit<UserRecord, 'id'>): Promise<UserRecord> {
    return this.enqueue((data) => data.createUser(user))
  }

  updateUser(username: string, patch: Partial<Pick<UserRecord, 'isAdmin' | 'passwordHash'>>): Promise<UserRecord> {
    return this.enqueue((data) => data.updateUser(username, patch))
  }

  deleteUser(username: string): Promise<void> {
    return this.enqueue((data) => data.deleteUser(username))
  }

  createGrant(grant: GrantRecord): Promise<GrantRecord> {
    return this.enqueue((data) => data.createGrant(grant))
  }

  updateGrant(grant: GrantRecord): Promise<GrantRecord> {
    return this.enqueue((data) => data.updateGrant(grant))
  }

  deleteGrant(userId: number, resourceType: string, resourceId: string): Promise<void> {
    return this.enqueue((data) => data.deleteGrant(userId, resourceType, resourceId))
  }

  deleteGrantsForResource(resourceType: string, resourceId: string): Promise<number> {
    return this.enqueue((data) => data.deleteGrantsForResource(resourceType, resourceId))
  }

  renameResource(resourceType: string, fromId: string, toId: string): Promise<number> {
    return this.enqueue((data) => data.renameResource(resourceType, fromId, toId))
  }

  createRole(role: Omit<RoleRecord, 'id'>): Promise<RoleRecord> {
    return this.enqueue((data) => data.createRole(role))
  }

  updateRole(roleId: number, patch: {description?: string; name?: string}): Promise<RoleRecord> {
    return this.enqueue((data) => data.updateRole(roleId, patch))
  }

  deleteRole(roleId: number): Promise<void> {
    return this.enqueue((data) => data.deleteRole(roleId))
  }

  addRolePermission(row: Omit<RolePermissionRecord, 'id'>): Promise<RolePermissionRecord> {
    return this.enqueue((data) => data.addRolePermission(row))
  }

  updateRolePermission(rowId: number, permission: string): Promise<RolePermissionRecord> {
    return this.enqueue((data) => data.updateRolePermission(rowId, permission))
  }

  removeRolePermission(rowId: number): Promise<void> {
    return this.enqueue((data) => data.removeRolePermission(rowId))
  }

  assignRole(userId: number, roleId: number): Promise<AssignmentRecord> {
    return this.enqueue((data) => data.assignRole(userId, roleId))
  }

  unassignRole(userId: number, roleId: number): Promise<void> {
    return this.enqueue((data) => data.unassignRole(userId, roleId))
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

  private enqueue<T>(apply: (data: StoreModel) => T): Promise<T> {
    if (this.closed) return Promise.reject(new Error(`The auth store ${this.location} is closed`))
    return new Promise<T>((resolve, reject) => {
      this.pending.push({apply, reject, resolve} as PendingWrite)
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
      await withFileLock(
        this.target,
        this.location,
        this.options.lockStaleMs,
        (error) => this.lockLost(error),
        async () => {
          await this.removeOrphanedTempFiles()
          // Start from what is on disk now: another process may have written since we last looked.
          const bytes = await readStoreBytes(this.target, this.location)
          if (bytes === undefined) throw this.missingFileError()
          const hash = sha256(bytes)
          // An older mlflowctl may have written its format since: keep that file before replacing it.
          let olderVersion: number | undefined
          if (hash !== this.hash) {
            const onDisk = parseStoreFile(bytes, this.location)
            olderVersion = onDisk.upgradedFrom
            this.adopt(onDisk, hash)
          }

          const draft = this.data.clone()
          for (const write of batch) {
            try {
              outcomes.push({ok: true, value: write.apply(draft)})
            } catch (error) {
              outcomes.push({error, ok: false})
            }
          }

          if (!draft.dirty) return
          if (olderVersion !== undefined) await keepPreviousVersion(this.target, this.location, bytes, olderVersion)
          const text = serialize(draft)
          await writeStore(this.target, this.location, text)

          draft.dirty = false
          this.adopt(draft, sha256(text))
        },
      )
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
    return new StoreFileError(
      this.location,
      `The auth store ${this.location} is gone (deleted or moved while in use); writes are refused until it is restored. Restart to start from an empty store.`,
      {problem: 'missing'},
    )
  }

  private lockLost(error: Error): void {
    this.options.onError(
      new Error(`Lost the lock on the auth store ${this.location} (${error.message}); another process may have written at the same time`, {cause: error}),
    )
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

  /** Makes `data` the served state. */
  private adopt(data: StoreModel, hash: string): void {
    this.data = data
    this.hash = hash
    this.reportedProblem = undefined
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

    let data: StoreModel
    try {
      data = parseStoreFile(bytes, this.location)
    } catch (error) {
      this.reportProblem(
        hash,
        new StoreFileError(this.location, `${(error as Error).message} Serving the last good state; writes are refused until the file is valid.`, {
          cause: error,
          problem: 'invalid',
        }),
      )
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
