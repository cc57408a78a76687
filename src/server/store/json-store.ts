/**
 * The JSON file adapter of the auth store: the in-memory model (model.ts) kept in one readable
 * file (json-format.ts), the snapshot, and a journal beside it (`<file>.journal`,
 * journal-format.ts) of the batches written since.
 *
 * - Reads come from the model in memory; no request ever waits on the disk.
 * - Writes are queued and applied in order. Whatever queued while one batch was in flight goes into
 *   the next one (group commit): the model plans the batch (what it would change, without changing
 *   what readers see), the change is appended to the journal as one line and fsynced, and only then
 *   applied in place and each promise settled. A write costs what it changes, whatever the size of
 *   the store; a batch is applied whole, so readers never see half of one.
 * - When the journal has grown (a quarter of the snapshot, at least `journalLimitBytes`), and at
 *   close, it is folded into a new snapshot in the background: the state is written to a temp file
 *   in pieces (the event loop is never held for long) and fsynced; then, under the lock, the lines
 *   written meanwhile go to `<file>.journal.next` under a header naming the new snapshot, the
 *   snapshot is renamed into place, then the journal. A crash between the renames is finished at the
 *   next load: the journal whose header names the snapshot on disk is the one that counts. A store
 *   closed cleanly is one file again, with no journal.
 * - At load, a journal line cut off by a crash (the last one, which no caller was told was durable)
 *   is dropped and the journal truncated, under the lock, with a report; any other line that is
 *   not valid, or a journal that continues another snapshot than the one on disk (the file was
 *   replaced while changes were pending), makes the store unusable, and both files stay as they are.
 * - Several processes may share the files (two `serve`s, an offline command). Each batch holds a
 *   cross-process lock (file-io.ts) and first applies the lines others appended (or reloads
 *   everything when the snapshot changed), so no update is lost. Changes by others also arrive
 *   without any write of ours: the directory is watched (fs.watch) and the files stat-polled as a
 *   fallback, and new lines are applied in the background, so a user created through one serve can
 *   log in at the other.
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
import {type FileHandle, open, readdir, rename, rm, stat, truncate} from 'node:fs/promises'
import {basename, dirname, join, resolve} from 'node:path'
import {setImmediate as yieldToLoop} from 'node:timers/promises'

import {atomicWriteFile, ensurePrivateDir, syncDirectory, tempPathFor, writeFileOnce} from '../../core/atomic-file.js'
import {errorCode, readStoreBytes, resolveTarget, statSignature, withFileLock} from './file-io.js'
import {type Invalid, parseStoreFile, serialize, serializePieces, type SnapshotContent, snapshotContent} from './json-format.js'
import {batchLine, checkCounters, checkOp, countersAfter, headerLine, parseBatch, parseHeader} from './journal-format.js'
import {type Plan, StoreModel} from './model.js'
import {ModelStore} from './model-store.js'
import {type Store, StoreFileError, type StoreHealth} from './store.js'

const FILE_MODE = 0o600
const DEFAULT_POLL_INTERVAL_MS = 2000
const DEFAULT_LOCK_STALE_MS = 10_000
const DEFAULT_JOURNAL_LIMIT_BYTES = 1024 * 1024
/** Bytes of snapshot text written per step of a compaction, between which the event loop runs. */
const COMPACTION_STEP_BYTES = 128 * 1024
const COMPACTION_SYNC_BYTES = 4 * 1024 * 1024

export interface JsonFileStoreOptions {
  /**
   * The journal is folded into a new snapshot once it holds more than this many bytes of changes,
   * or a quarter of the snapshot's size when that is more. Default 1 MiB.
   */
  journalLimitBytes?: number
  /**
   * After how long a lock left behind by a dead process is taken over (proper-lockfile's `stale`;
   * at least 2000 ms). A live holder refreshes its lock well within this. Default 10 s.
   */
  lockStaleMs?: number
  /**
   * Told about problems no caller is waiting for: the file turned invalid or vanished (the last
   * good state keeps serving, writes are refused), a lock was lost, a cut-off journal line was
   * dropped. Default: a line on stderr.
   */
  onError?: (error: Error) => void
  /** Told how long each change took to be durable, and whether it was (for metrics). */
  onWrite?: (seconds: number, ok: boolean) => void
  /** How often the files are stat-polled in case fs.watch misses a change. Default 2 s. */
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

/** Where the journal stands, as far as the served model has applied it. */
interface JournalState {
  /** The batches the snapshot holds (the header's seq). */
  baseSeq: number
  /** The journal file's inode; undefined while there is none (it is created by the first append). */
  ino: bigint | undefined
  /** Bytes of the file applied: the end of the last complete line. */
  offset: number
  /** Whether the file must be started anew (a header naming the snapshot) before the next append. */
  reset: boolean
  /** The last batch applied. */
  seq: number
}

/** What a load found: the state, and where the files stood. */
interface Loaded {
  data: StoreModel
  hash: string
  journal: JournalState
  signature: string
  snapshotBytes: number
}

/** A load without the lock met something only a holder of the lock may settle (or another process was mid-way). */
class NeedsLock extends Error {}

interface Paths {
  journal: string
  location: string
  next: string
  target: string
}

function pathsOf(location: string, target: string): Paths {
  return {journal: `${target}.journal`, location, next: `${target}.journal.next`, target}
}

async function readOptional(path: string, location: string): Promise<{bytes: Buffer; ino: bigint} | undefined> {
  let handle: FileHandle
  try {
    handle = await open(path, 'r')
  } catch (error) {
    if (errorCode(error) === 'ENOENT') return undefined
    throw new StoreFileError(location, `Cannot read ${path}: ${(error as Error).message}. It was left unchanged.`, {cause: error})
  }

  try {
    const info = await handle.stat({bigint: true})
    return {bytes: await handle.readFile(), ino: info.ino}
  } finally {
    await handle.close()
  }
}

function journalInvalid(paths: Paths): Invalid {
  return (what) =>
    new StoreFileError(paths.location, `The auth store's journal ${paths.journal} is not valid: ${what}. It was left unchanged; fix or restore it.`, {
      problem: 'invalid',
    })
}

/** The complete lines of `text` (each without its newline) and what follows the last newline. */
function splitLines(text: string): {lines: string[]; tail: string} {
  const lines = text.split('\n')
  const tail = lines.pop()!
  return {lines, tail}
}

function parseJsonLine(line: string): unknown {
  try {
    return JSON.parse(line)
  } catch {
    return undefined
  }
}

const decoder = new TextDecoder('utf-8', {fatal: true})

/**
 * Applies the complete journal lines in `text` to `data`, each checked against the state before
 * it and applied whole, advancing `journal` line by line. Stops at a line that does not parse when
 * it is the last one (a write cut off by a crash, or still being written): returns true then, and
 * when `text` ends in an unfinished line. Any other bad line throws.
 */
function applyLines(data: StoreModel, journal: JournalState, text: string, firstLineNumber: number, invalid: Invalid): boolean {
  const {lines, tail} = splitLines(text)
  for (const [i, line] of lines.entries()) {
    const at: Invalid = (what) => invalid(`line ${firstLineNumber + i}: ${what}`)
    const value = parseJsonLine(line)
    if (value === undefined) {
      if (i === lines.length - 1 && tail === '') return true
      throw at('it is not valid JSON')
    }

    const batch = parseBatch(value, at)
    if (batch.seq !== journal.seq + 1) throw at(`"seq" is ${batch.seq}, not ${journal.seq + 1}`)
    const counters = countersAfter(batch, data.counters)
    checkCounters(data.counters, counters, at)
    data.replay(batch.ops, counters, (op, model) => checkOp(op, model, counters, `changes[${batch.ops.indexOf(op)}]`, at))
    journal.seq = batch.seq
    journal.offset += Buffer.byteLength(line) + 1
  }

  return tail !== ''
}

/** Cuts the journal back to `length` bytes, durably: what follows is a line a crash cut off. Only under the lock. */
async function dropTornLine(paths: Paths, length: number, size: number, report: (error: Error) => void): Promise<void> {
  const handle = await open(paths.journal, 'r+')
  try {
    await handle.truncate(length)
    await handle.datasync()
  } finally {
    await handle.close()
  }

  report(
    new Error(
      `Dropped the last ${size - length} bytes of the auth store's journal ${paths.journal}: a change cut off by a crash before it was durable (no caller was told it was made).`,
    ),
  )
}

/**
 * Loads the snapshot and the journal after it. Without the lock (`locked` false), anything that
 * needs settling (a compaction cut off by a crash, a cut-off line, an old format) throws NeedsLock;
 * with it, those are settled here. `report` hears what was settled.
 */
async function load(paths: Paths, locked: boolean, report: (error: Error) => void): Promise<Loaded> {
  const {location, target} = paths
  let signature = await statSignature(target)
  let bytes = await readStoreBytes(target, location)
  if (bytes === undefined)
    throw new StoreFileError(location, `The auth store ${location} is gone (deleted or moved while in use); writes are refused until it is restored.`, {
      problem: 'missing',
    })
  let hash = sha256(bytes)
  const data = parseStoreFile(bytes, location)
  const invalid = journalInvalid(paths)

  const next = await readOptional(paths.next, location)
  if (next !== undefined) {
    if (!locked) throw new NeedsLock()
    // A compaction stopped between its renames: its journal counts when the snapshot it names is in place.
    const firstLine = next.bytes.toString('utf8').split('\n')[0]
    const value = parseJsonLine(firstLine)
    let named: string | undefined
    try {
      named = parseHeader(value, invalid).snapshotSha256
    } catch {}

    if (named === hash) await rename(paths.next, paths.journal)
    else await rm(paths.next, {force: true})
    await syncDirectory(dirname(target))
  }

  const found = await readOptional(paths.journal, location)
  let journal: JournalState = {baseSeq: 0, ino: undefined, offset: 0, reset: true, seq: 0}
  let body = ''
  if (found !== undefined) {
    let text: string
    try {
      text = decoder.decode(found.bytes)
    } catch {
      throw invalid('it is not UTF-8 text')
    }

    const newline = text.indexOf('\n')
    const header = parseHeader(newline === -1 ? undefined : parseJsonLine(text.slice(0, newline)), invalid)
    body = text.slice(newline + 1)
    const headerBytes = Buffer.byteLength(text.slice(0, newline + 1))
    if (header.snapshotSha256 === hash) {
      journal = {baseSeq: header.seq, ino: found.ino, offset: headerBytes, reset: false, seq: header.seq}
    } else {
      // Without the lock this may be a compaction between its renames: look again holding it.
      if (!locked) throw new NeedsLock()
      if (splitLines(body).lines.length > 0)
        throw invalid(
          `it holds changes to another version of ${location} than the one there now (the file was replaced, or written by an older mlflowctl, while changes were pending). ` +
            'Put back the file the journal belongs to, or move the journal aside to drop its changes',
        )
      // Nothing pending: the file is the whole state (a hand edit after a clean close); the journal starts anew.
      journal = {baseSeq: header.seq, ino: found.ino, offset: found.bytes.length, reset: true, seq: header.seq}
      body = ''
    }
  }

  // An older version is kept beside the file, then rewritten in the current one at once, unless
  // changes wait in the journal: they are kept, applied below, and the next compaction writes the
  // current version.
  if (data.upgradedFrom !== undefined) {
    if (!locked) throw new NeedsLock()
    await keepPreviousVersion(target, location, bytes, data.upgradedFrom)
    if (body === '') {
      bytes = Buffer.from(serialize(data))
      await writeStore(target, location, bytes)
      hash = sha256(bytes)
      signature = await statSignature(target)
      journal = {...journal, offset: 0, reset: true}
    }

    data.upgradedFrom = undefined
  }

  if (applyLines(data, journal, body, 2, invalid)) {
    if (!locked) throw new NeedsLock()
    await dropTornLine(paths, journal.offset, found!.bytes.length, report)
  }

  return {data, hash, journal, signature, snapshotBytes: bytes.length}
}

export class JsonFileStore extends ModelStore implements Store {
  private closed = false
  private closing: Promise<void> | undefined
  private compacting: Promise<void> | undefined
  protected data: StoreModel
  private flushScheduled = false
  private hash: string
  private journal: JournalState
  private readonly paths: Paths
  private readonly pending: PendingWrite[] = []
  private polling = false
  private readonly pollTimer: NodeJS.Timeout
  /** The problem last reported by a background reload, so it is reported once, not every poll. */
  private reportedProblem: string | undefined
  private reloadQueued = false
  /** The files' stat signatures when the reported problem was found. */
  private problemFiles: string | undefined
  private signature: string
  private snapshotBytes: number
  private tempFilesCleaned = false
  private watcher: FSWatcher | undefined

  private constructor(
    readonly location: string,
    target: string,
    loaded: Loaded,
    protected readonly options: Required<JsonFileStoreOptions>,
  ) {
    super()
    this.paths = pathsOf(location, target)
    this.data = loaded.data
    this.hash = loaded.hash
    this.journal = loaded.journal
    this.signature = loaded.signature
    this.snapshotBytes = loaded.snapshotBytes
    if (options.watch) this.startWatching()
    this.pollTimer = setInterval(() => void this.poll(), options.pollIntervalMs)
    this.pollTimer.unref()
  }

  /**
   * Loads the store at `path` (its file and journal), creating the file (and its directory) when
   * missing. Rejects with a StoreFileError naming the file and the problem when it cannot be read or
   * is not a valid store; such a file is left as it is.
   */
  static async open(path: string, options: JsonFileStoreOptions = {}): Promise<JsonFileStore> {
    const location = resolve(path)
    const settings: Required<JsonFileStoreOptions> = {
      journalLimitBytes: Math.max(options.journalLimitBytes ?? DEFAULT_JOURNAL_LIMIT_BYTES, 1),
      lockStaleMs: Math.max(options.lockStaleMs ?? DEFAULT_LOCK_STALE_MS, 2000),
      onError: safeReporter(options.onError ?? ((error) => process.stderr.write(`mlflowctl: auth store: ${error.message}\n`))),
      pollIntervalMs: Math.max(options.pollIntervalMs ?? DEFAULT_POLL_INTERVAL_MS, 50),
      onWrite: options.onWrite ?? (() => {}),
      watch: options.watch ?? true,
    }
    const exists = (await readStoreBytes(location, location)) !== undefined
    if (!exists) {
      try {
        await ensurePrivateDir(dirname(location))
      } catch (error) {
        throw new StoreFileError(location, `Cannot create the auth store ${location}: ${(error as Error).message}`, {cause: error})
      }
    }

    const target = await resolveTarget(location)
    const paths = pathsOf(location, target)
    const locked = <T>(body: () => Promise<T>) => withFileLock(target, location, settings.lockStaleMs, settings.onError, body)
    if (!exists) {
      // Another process may be creating it right now: decide under the lock.
      await locked(async () => {
        if ((await readStoreBytes(target, location)) !== undefined) return
        try {
          await atomicWriteFile(target, serialize(new StoreModel()), {mode: FILE_MODE})
        } catch (error) {
          throw new StoreFileError(location, `Cannot create the auth store ${location}: ${(error as Error).message}`, {cause: error})
        }
      })
    }

    let loaded: Loaded
    try {
      loaded = await load(paths, false, settings.onError)
    } catch (error) {
      if (!(error instanceof NeedsLock)) throw error
      loaded = await locked(() => load(paths, true, settings.onError))
    }

    return new JsonFileStore(location, target, loaded, settings)
  }

  // --- reads: memory only ---------------------------------------------------------------------

  /** The file is always at hand: a problem with it refuses writes, and is reported, but never stops decisions. */
  health(): StoreHealth {
    return {decide: true, ready: true}
  }

  /**
   * Folds the journal into a new snapshot (the file alone then holds the whole state); resolves when
   * done, or at once when there is nothing to fold. Runs by itself when the journal has grown and at
   * close. Writes go on meanwhile, blocked only for the final renames.
   */
  compact(): Promise<void> {
    this.compacting ??= this.runCompaction().finally(() => (this.compacting = undefined))
    return this.compacting
  }

  /**
   * Waits for every write queued before it, folds the journal into the file, then stops watching.
   * Later writes are refused.
   */
  close(): Promise<void> {
    this.closing ??= (async () => {
      this.closed = true
      this.watcher?.close()
      this.watcher = undefined
      clearInterval(this.pollTimer)
      await this.chain
      try {
        // Twice at most: lines another process appended during the first stay for it to fold.
        for (let pass = 0; pass < 2 && this.journal.seq > this.journal.baseSeq; pass++) await this.compact()
        if (this.journal.ino !== undefined) await this.onChain(() => this.locked(() => this.removeEmptyJournal()))
      } catch (error) {
        // Every change is durable in the journal all the same.
        this.options.onError(error as Error)
      }
    })()
    return this.closing
  }

  // --- the write path -------------------------------------------------------------------------

  protected write<T>(_input: unknown, apply: (data: StoreModel) => T): Promise<T> {
    if (this.closed) return Promise.reject(new Error(`The auth store ${this.location} is closed`))
    return new Promise<T>((resolve, reject) => {
      this.pending.push({apply, reject, resolve} as PendingWrite)
      if (!this.flushScheduled) {
        this.flushScheduled = true
        this.serially(() => this.flush())
      }
    })
  }

  private locked<T>(body: () => Promise<T>): Promise<T> {
    return withFileLock(this.paths.target, this.location, this.options.lockStaleMs, (error) => this.lockLost(error), body)
  }

  /** One group commit: everything queued so far, planned, appended as one journal line, applied. */
  private async flush(): Promise<void> {
    this.flushScheduled = false
    const batch = this.pending.splice(0)
    if (batch.length === 0) return
    let plan: Plan | undefined
    try {
      await this.locked(async () => {
        await this.removeOrphanedTempFiles()
        // Start from what is on disk now: another process may have written since we last looked.
        await this.catchUp(true)
        plan = this.data.plan(batch.map((write) => write.apply))
        if (plan.ops.length === 0) return
        await this.append(plan)
        this.data.commit(plan.ops, plan.counters)
      })
    } catch (error) {
      // Nothing of this batch reached the disk: every write in it fails, the state is unchanged.
      for (const write of batch) write.reject(error)
      return
    }

    for (const [i, write] of batch.entries()) {
      const outcome = plan!.outcomes[i]
      if (outcome.ok) write.resolve(outcome.value)
      else write.reject(outcome.error)
    }

    const pendingBytes = this.journal.offset
    if (pendingBytes > Math.max(this.options.journalLimitBytes, this.snapshotBytes / 4) && !this.closed) {
      this.compact().catch((error: Error) => this.options.onError(error))
    }
  }

  /** Appends the plan as the next journal line and makes it durable; on failure the journal is as before. */
  private async append(plan: Plan): Promise<void> {
    if (this.journal.ino === undefined || this.journal.reset) await this.startJournal()
    const seq = this.journal.seq + 1
    const line = Buffer.from(batchLine({counters: plan.counters, ops: plan.ops, seq}))
    let handle: FileHandle | undefined
    try {
      handle = await open(this.paths.journal, 'a')
      let written = 0
      while (written < line.length) written += (await handle.write(line, written)).bytesWritten
      await handle.datasync()
    } catch (error) {
      // A part of the line may have reached the file: take it back, so the next line does not follow it.
      await truncate(this.paths.journal, this.journal.offset).catch(() => {})
      throw new StoreFileError(
        this.location,
        `Cannot write the auth store's journal ${this.paths.journal}: ${(error as Error).message}. Nothing was changed.`,
        {
          cause: error,
        },
      )
    } finally {
      await handle?.close().catch(() => {})
    }

    this.journal.offset += line.length
    this.journal.seq = seq
  }

  /** A journal with only its header, naming the snapshot on disk (atomic: the old one, if any, is replaced whole). */
  private async startJournal(): Promise<void> {
    const header = headerLine({seq: this.journal.seq, snapshotSha256: this.hash})
    try {
      await atomicWriteFile(this.paths.journal, header, {mode: FILE_MODE})
    } catch (error) {
      throw new StoreFileError(
        this.location,
        `Cannot write the auth store's journal ${this.paths.journal}: ${(error as Error).message}. Nothing was changed.`,
        {
          cause: error,
        },
      )
    }

    const {ino} = await stat(this.paths.journal, {bigint: true})
    this.journal = {baseSeq: this.journal.seq, ino, offset: Buffer.byteLength(header), reset: false, seq: this.journal.seq}
  }

  /**
   * Brings the served state up to what is on disk: the journal lines appended since (the usual
   * case, read from where we stopped), or everything again when the snapshot or the journal file
   * was replaced. Without the lock, a line still being written is left for later.
   */
  private async catchUp(locked: boolean): Promise<void> {
    if ((await statSignature(this.paths.target)) !== this.signature) return this.reloadAll(locked)
    let handle: FileHandle
    try {
      handle = await open(this.paths.journal, 'r')
    } catch (error) {
      if (errorCode(error) !== 'ENOENT') throw error
      if (this.journal.ino === undefined) return
      if (this.journal.seq > this.journal.baseSeq) throw this.journalGoneError()
      // An empty journal removed by a clean close elsewhere: nothing is lost.
      this.journal = {...this.journal, ino: undefined, reset: true}
      return
    }

    let text: string
    let end: number
    try {
      const info = await handle.stat({bigint: true})
      if (info.ino !== this.journal.ino || Number(info.size) < this.journal.offset) {
        await handle.close()
        return this.reloadAll(locked)
      }

      end = Number(info.size)
      if (end === this.journal.offset) return
      const bytes = Buffer.alloc(end - this.journal.offset)
      let read = 0
      while (read < bytes.length) {
        const {bytesRead} = await handle.read(bytes, read, bytes.length - read, this.journal.offset + read)
        if (bytesRead === 0) break
        read += bytesRead
      }

      text = bytes.subarray(0, read).toString('utf8')
    } finally {
      await handle.close().catch(() => {})
    }

    let torn: boolean
    try {
      torn = applyLines(this.data, this.journal, text, Number.NaN, journalInvalid(this.paths))
    } catch {
      // Whatever is wrong, a full load says it properly (with line numbers) or settles it.
      return this.reloadAll(locked)
    }

    // Holding the lock, nobody is writing: an unfinished last line is one a crash cut off.
    if (torn && locked) await dropTornLine(this.paths, this.journal.offset, end, this.options.onError)
  }

  /** Loads everything again (under the lock when anything needs settling) and serves it. */
  private async reloadAll(locked: boolean): Promise<void> {
    let loaded: Loaded
    try {
      loaded = await load(this.paths, locked, this.options.onError)
    } catch (error) {
      if (!(error instanceof NeedsLock)) throw error
      loaded = await this.locked(() => load(this.paths, true, this.options.onError))
    }

    this.data = loaded.data
    this.hash = loaded.hash
    this.journal = loaded.journal
    this.signature = loaded.signature
    this.snapshotBytes = loaded.snapshotBytes
    this.reportedProblem = undefined
  }

  private async runCompaction(): Promise<void> {
    // 1. The state and where the journal stands, at one instant between batches.
    const capture = await this.onChain(async () => {
      if (this.journal.ino === undefined || this.journal.seq === this.journal.baseSeq) return undefined
      return {content: snapshotContent(this.data), hash: this.hash, ino: this.journal.ino, offset: this.journal.offset, seq: this.journal.seq}
    })
    if (capture === undefined) return
    // 2. The new snapshot, beside the file, while writes go on.
    const temp = tempPathFor(this.paths.target)
    try {
      const {bytes, hash} = await writeSnapshot(temp, capture.content)
      // 3. Under the lock: the lines written meanwhile into the next journal, then both renamed into place.
      await this.onChain(() =>
        this.locked(async () => {
          await this.catchUp(true)
          // Someone else compacted (or replaced the file) meanwhile: theirs stands.
          if (this.hash !== capture.hash || this.journal.ino !== capture.ino) return
          const tail = await readRange(this.paths.journal, capture.offset, this.journal.offset)
          const header = Buffer.from(headerLine({seq: capture.seq, snapshotSha256: hash}))
          await writeDurably(this.paths.next, Buffer.concat([header, tail]))
          const dir = dirname(this.paths.target)
          await rename(temp, this.paths.target)
          await syncDirectory(dir)
          await rename(this.paths.next, this.paths.journal)
          await syncDirectory(dir)
          const {ino} = await stat(this.paths.journal, {bigint: true})
          this.hash = hash
          this.signature = await statSignature(this.paths.target)
          this.snapshotBytes = bytes
          this.journal = {baseSeq: capture.seq, ino, offset: header.length + tail.length, reset: false, seq: this.journal.seq}
        }),
      )
    } finally {
      await rm(temp, {force: true}).catch(() => {})
    }
  }

  /** After a final compaction: a journal with nothing pending goes, so a closed store is one file. */
  private async removeEmptyJournal(): Promise<void> {
    await this.catchUp(true)
    if (this.journal.ino === undefined || this.journal.seq > this.journal.baseSeq) return
    await rm(this.paths.journal, {force: true})
    await syncDirectory(dirname(this.paths.target))
    this.journal = {...this.journal, ino: undefined, reset: true}
  }

  private journalGoneError(): StoreFileError {
    return new StoreFileError(
      this.location,
      `The auth store's journal ${this.paths.journal} is gone (deleted or moved while in use) with changes not yet in ${this.location}; writes are refused until it is restored.`,
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
    // atomicWriteFile's naming: .<name>.<pid>.<12 hex>.tmp, for the file and for its journal. (A
    // compaction elsewhere writes its snapshot outside the lock; should it lose its temp file here,
    // it gives up and folds the journal another time.)
    const prefixes = [`.${basename(this.paths.target)}.`, `.${basename(this.paths.journal)}.`]
    const isOrphan = (entry: string) => prefixes.some((prefix) => entry.startsWith(prefix) && /^\d+\.[0-9a-f]{12}\.tmp$/.test(entry.slice(prefix.length)))
    try {
      const orphans = (await readdir(dirname(this.paths.target))).filter((entry) => isOrphan(entry))
      await Promise.all(orphans.map((entry) => rm(join(dirname(this.paths.target), entry), {force: true})))
    } catch {
      // Only tidiness is at stake.
    }
  }

  // --- noticing other processes' writes ---------------------------------------------------------

  private startWatching(): void {
    const names = new Set([basename(this.paths.target), basename(this.paths.journal)])
    try {
      // The directory, not the files: a rename replaces a file's inode, and a watch on the old one goes quiet.
      this.watcher = watch(dirname(this.paths.target), {persistent: false}, (_event, filename) => {
        if (filename === null || names.has(filename)) this.requestReload()
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

  /** The reload itself checks cheaply (two stats) whether anything changed. */
  private poll(): void {
    if (this.closed || this.polling) return
    this.polling = true
    this.requestReload()
    this.polling = false
  }

  private requestReload(): void {
    if (this.closed || this.reloadQueued) return
    this.reloadQueued = true
    this.serially(() => this.reload())
  }

  /** Applies what another process changed; a bad file is reported and the last good state kept. */
  private async reload(): Promise<void> {
    this.reloadQueued = false
    if (this.closed) return
    // A bad file is loaded again only once it changed, not at every poll.
    const files = `${await statSignature(this.paths.target)}|${await statSignature(this.paths.journal)}`
    if (this.reportedProblem !== undefined && files === this.problemFiles) return
    try {
      await this.catchUp(false)
      this.reportedProblem = undefined
    } catch (error) {
      this.problemFiles = files
      const problem =
        error instanceof StoreFileError && error.problem === 'invalid'
          ? new StoreFileError(this.location, `${error.message} Serving the last good state; writes are refused until the file is valid.`, {
              cause: error,
              problem: 'invalid',
            })
          : (error as Error)
      this.reportProblem(error instanceof Error ? error.message : String(error), problem)
    }
  }

  private reportProblem(key: string, error: Error): void {
    if (this.reportedProblem === key) return
    this.reportedProblem = key
    this.options.onError(error)
  }
}

/**
 * The snapshot text, written in steps with the event loop running between them, then fsynced. Synced
 * every few MiB on the way, so the disk never has a large backlog that would hold up the journal's
 * own fsyncs meanwhile.
 */
async function writeSnapshot(path: string, content: SnapshotContent): Promise<{bytes: number; hash: string}> {
  const hash = createHash('sha256')
  const handle = await open(path, 'wx', FILE_MODE)
  let bytes = 0
  let unsynced = 0
  try {
    await handle.chmod(FILE_MODE)
    let buffered: string[] = []
    const flush = async () => {
      const chunk = Buffer.from(buffered.join(''))
      buffered = []
      hash.update(chunk)
      bytes += chunk.length
      unsynced += chunk.length
      let written = 0
      while (written < chunk.length) written += (await handle.write(chunk, written)).bytesWritten
      if (unsynced >= COMPACTION_SYNC_BYTES) {
        await handle.datasync()
        unsynced = 0
      }
    }

    let size = 0
    for (const piece of serializePieces(content, 250)) {
      buffered.push(piece)
      size += piece.length
      if (size >= COMPACTION_STEP_BYTES) {
        size = 0
        await flush()
        await yieldToLoop()
      }
    }

    await flush()
    await handle.sync()
  } finally {
    await handle.close()
  }

  return {bytes, hash: hash.digest('hex')}
}

async function readRange(path: string, from: number, to: number): Promise<Buffer> {
  const handle = await open(path, 'r')
  try {
    const bytes = Buffer.alloc(to - from)
    let read = 0
    while (read < bytes.length) {
      const {bytesRead} = await handle.read(bytes, read, bytes.length - read, from + read)
      if (bytesRead === 0) throw new Error(`${path} ended before byte ${to}`)
      read += bytesRead
    }

    return bytes
  } finally {
    await handle.close()
  }
}

async function writeDurably(path: string, bytes: Buffer): Promise<void> {
  const handle = await open(path, 'w', FILE_MODE)
  try {
    await handle.chmod(FILE_MODE)
    await handle.writeFile(bytes)
    await handle.sync()
  } finally {
    await handle.close()
  }
}
