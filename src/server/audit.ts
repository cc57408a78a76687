/**
 * serve's audit log (docs/audit-log.md): one JSON object per line for every failed
 * authentication, every change made through the auth API (users, roles, permissions, and what
 * later endpoints add to its list of changes), every request serve refuses with 403, and
 * lockouts. Events are built from named fields only, so no password, hash, token or
 * Authorization header can reach a line; strings a client chose are cut to MAX_FIELD characters.
 *
 * The destination is a file (opened append-only, created 0600, reopened by `reopen()` so that a
 * rotated file is let go) or standard output. Lines go through a stream: a request never waits
 * for the disk. A start that cannot open the file fails; a write that fails later is logged once
 * and counted (`stats()`), and the next reopen tries again.
 *
 * Neither the disk nor the memory is the client's to fill: failed logins, which anyone can send
 * at line rate, are written once per key and then counted (FailureAggregator), and lines beyond
 * a bound of bytes the stream has not written yet are dropped, counted and reported
 * (BoundedWriter).
 */
import {createHmac, randomBytes} from 'node:crypto'
import {createWriteStream, fstat, type WriteStream} from 'node:fs'
import {promisify} from 'node:util'
import {resolve} from 'node:path'
import {type Writable} from 'node:stream'

import {ExitCode, UserError} from '../core/errors.js'
import {BoundedWriter, type LineDestination} from './bounded-write.js'
import {addressKey} from './lockout.js'

/** Longest string kept in a field; longer ones end in `…` after this many characters. */
export const MAX_FIELD = 256

export interface AuditResource {
  id: string
  type: string
}

/** Where a request came from and what it asked, as every event about a request carries it. */
export interface AuditOrigin {
  /** The client's address (a trusted proxy's X-Forwarded-For honoured). */
  client: string
  method: string
  /** The path, without the query string (it can carry values no one should find in a log). */
  path: string
}

/** Why credentials were refused. */
export type AuthFailure = 'invalid-token' | 'malformed' | 'no-credentials' | 'unknown-user' | 'wrong-password'

export interface AuthFailedEvent extends Partial<AuditOrigin> {
  /** A summary: the refusals of one key since its last line (FailureAggregator). */
  count?: number
  event: 'auth.failed'
  /** A summary's first and last refusal (ISO 8601). */
  first?: string
  last?: string
  /**
   * The refusals of one reason from one client (IPv6: its /64, as `client` shows it) beyond the
   * keys a client is followed under, whatever name or address each gave: no user.
   */
  many?: boolean
  /** A summary of the refusals of keys beyond the ones followed one by one, per reason: no client, no user. */
  overflow?: boolean
  reason: AuthFailure
  /** The user name the client gave, when it gave one: as given for a user that exists, else its digest (userLabel). */
  user?: string
}

export interface DeniedEvent extends AuditOrigin {
  event: 'request.denied'
  /** The level that decided, when a level did. */
  level?: string
  /** What the request needed on the resource (read, update, delete, manage, use, not_denied), when a level decided. */
  need?: string
  resource?: AuditResource
  /** What decided: the rows (and their roles), the default permission, or the rule of serve's that refused. */
  rule: string
  user: string
}

export interface ChangeEvent extends AuditOrigin {
  event: 'change'
  /** The auth API's operation, e.g. `users/create`, `roles/permissions/add`. */
  operation: string
  /** Which user, role, row or resource was changed: the request's naming fields (and the id of what was created). */
  target: Record<string, unknown>
  user: string
  /** The values set (levels, flags, descriptions); never a secret. */
  values: Record<string, unknown>
}

/** For the brute-force guard: a client or a user locked out after failed logins. */
export interface LockoutEvent {
  client?: string
  event: 'auth.lockout'
  /** Failed attempts that led to it. */
  failures?: number
  reason: string
  /** When the lockout ends (ISO 8601). */
  until?: string
  user?: string
}

export type AuditEvent = AuthFailedEvent | ChangeEvent | DeniedEvent | LockoutEvent

/** What the rest of serve records into; the no-op one when there is no audit log. */
export interface AuditSink {
  record(event: AuditEvent): void
}

export const NO_AUDIT: AuditSink = {record() {}}

/** The decision each event stands for. */
const DECISION: Record<AuditEvent['event'], string> = {
  'auth.failed': 'deny',
  'auth.lockout': 'deny',
  change: 'allow',
  'request.denied': 'deny',
}

const STATUS: Partial<Record<AuditEvent['event'], number>> = {'auth.failed': 401, change: 200, 'request.denied': 403}

function cap(value: string): string {
  if (value.length <= MAX_FIELD) return value
  // Whole code points, so that a cut never leaves half a surrogate pair.
  return `${Array.from(value).slice(0, MAX_FIELD).join('')}…`
}

/** Strings capped, nested objects too; anything but strings, numbers, booleans, null and plain objects left out. */
function clean(value: unknown): unknown {
  if (typeof value === 'string') return cap(value)
  if (typeof value === 'number' || typeof value === 'boolean' || value === null) return value
  if (typeof value === 'object' && !Array.isArray(value)) {
    const out: Record<string, unknown> = {}
    for (const [key, inner] of Object.entries(value as Record<string, unknown>)) {
      const cleaned = clean(inner)
      if (cleaned !== undefined) out[cap(key)] = cleaned
    }

    return out
  }

  return undefined
}

/**
 * One event as its line: `time` and `event` first, then the fields in a fixed order, strings
 * capped; the line separators JSON leaves as they are (U+2028, U+2029) escaped too, so that no
 * reader can split an event.
 */
export function serializeAuditEvent(event: AuditEvent, now: Date = new Date()): string {
  const {event: name, ...fields} = event
  const line: Record<string, unknown> = {time: now.toISOString(), event: name}
  const order = [
    'user',
    'client',
    'method',
    'path',
    'status',
    'decision',
    'rule',
    'resource',
    'need',
    'level',
    'reason',
    'count',
    'first',
    'last',
    'many',
    'overflow',
    'operation',
    'target',
    'values',
  ]
  const all: Record<string, unknown> = {...fields, decision: DECISION[name], status: STATUS[name]}
  for (const key of [
    ...order,
    ...Object.keys(all)
      .filter((key) => !order.includes(key))
      .sort(),
  ]) {
    const value = clean(all[key])
    if (value !== undefined) line[key] = value
  }

  return `${JSON.stringify(line).replaceAll('\u2028', '\\u2028').replaceAll('\u2029', '\\u2029')}\n`
}

/**
 * Drawn once per process: a digest of a name that is not a user's is keyed with it, so that a
 * password typed into the username field cannot be tried against guesses by whoever reads the log.
 */
const NAME_KEY = randomBytes(32)

/**
 * A user name a client gave, as logs show it: as it is when `known` (a user that exists), else
 * `hmac-sha256:` and 12 hex digits of its keyed digest. The name of a login that failed may be a
 * password typed in the wrong field; its digest still tells repeated attempts apart, within one
 * serve process.
 */
export function userLabel(username: string, known: boolean): string {
  return known ? username : `hmac-sha256:${createHmac('sha256', NAME_KEY).update(username).digest('hex').slice(0, 12)}`
}

/** How failed logins are summarised: the window, and how many keys are followed one by one. */
export interface FailureLimits {
  /**
   * Keys followed at once for `wrong-password` refusals (a name that is a user's), apart from all
   * others, so that a flood of unknown names cannot crowd them out. Default 1 000.
   */
  maxKnownKeys?: number
  /** Keys followed at once for every other reason; default 1 000. */
  maxKeys?: number
  /**
   * Keys one client (IPv6: its /64) is followed under, in each of the two groups above; beyond,
   * its further names and addresses are counted under one key per reason (`many`). Default 20.
   */
  maxKeysPerClient?: number
  /** How long refusals of one key are counted before their summary is written; default 60 000 ms. */
  windowMs?: number
}

export const DEFAULT_FAILURE_WINDOW_MS = 60_000
export const DEFAULT_FAILURE_KEYS = 1000
export const DEFAULT_FAILURE_KEYS_PER_CLIENT = 20

/** Keys followed one by one, bounded as a whole and per client. */
interface KeyGroup {
  /** Keys of the group, `many` ones included. */
  keys: number
  max: number
  /** Per client (IPv6: its /64): its keys other than `many` ones. */
  perClient: Map<string, number>
}

interface Pending {
  /** The client as counted (IPv6: its /64); '' when none. */
  client: string
  count: number
  event: AuthFailedEvent
  first: number
  group?: KeyGroup
  last: number
}

/**
 * Failed logins, bounded: anyone can send them as fast as serve answers, and a line each would
 * let them fill the disk. The first refusal of a key (reason, client, user) is written at once, as
 * it comes; later ones of the same key are counted, and written as one line with `count`, `first`
 * and `last` when the window ends (or a lock of that address or user begins, or the log is
 * reopened or closed). A key with no refusal for a whole window is forgotten.
 *
 * The keys are bounded so that no one client can take the room of the others: a client (IPv6: its
 * /64, which one holder has whole) is followed under at most `maxKeysPerClient` keys, and its
 * refusals beyond them are counted per reason under one key of its own (`many`: client as counted,
 * no user). `wrong-password` keys (a user that exists, whose login is being guessed) have a group
 * of their own, `maxKnownKeys`, which unknown names, missing credentials and bad tokens never
 * use. Only when a group is full are further refusals counted per reason alone (`overflow`). So
 * each window writes at most two lines per key (three when a lock of its address or user
 * begins), `maxKeys` + `maxKnownKeys` keys, and one line per reason, however many refusals came.
 */
export class FailureAggregator {
  private readonly keys = new Map<string, Pending>()
  private readonly known: KeyGroup
  private readonly maxPerClient: number
  private readonly others: KeyGroup
  private readonly overflow = new Map<string, Pending>()

  constructor(
    private readonly write: (event: AuditEvent, time: Date) => void,
    limits: FailureLimits = {},
  ) {
    this.others = {keys: 0, max: limits.maxKeys ?? DEFAULT_FAILURE_KEYS, perClient: new Map()}
    this.known = {keys: 0, max: limits.maxKnownKeys ?? DEFAULT_FAILURE_KEYS, perClient: new Map()}
    this.maxPerClient = limits.maxKeysPerClient ?? DEFAULT_FAILURE_KEYS_PER_CLIENT
  }

  add(event: AuthFailedEvent, now = Date.now()): void {
    // Keyed by the client as the limits count it (an IPv6 /64): rotating addresses inside one
    // network must not take a key each.
    const client = event.client === undefined ? '' : addressKey(event.client)
    const key = JSON.stringify([event.reason, client, event.user ?? ''])
    const followed = this.keys.get(key)
    if (followed) {
      count(followed, now)
      return
    }

    const group = event.reason === 'wrong-password' ? this.known : this.others
    if ((group.perClient.get(client) ?? 0) < this.maxPerClient) {
      if (group.keys >= group.max) {
        this.overflowed(event, now)
        return
      }

      group.perClient.set(client, (group.perClient.get(client) ?? 0) + 1)
      this.follow(key, {client, count: 0, event, first: now, group, last: now})
      return
    }

    // This client has used its keys: its other names and addresses are counted together. (Two
    // elements: no key of three can be the same.)
    const manyKey = JSON.stringify([event.reason, client])
    const many = this.keys.get(manyKey)
    if (many) count(many, now)
    else if (group.keys >= group.max) this.overflowed(event, now)
    else {
      const {user: _user, ...rest} = event
      this.follow(manyKey, {client, count: 0, event: {...rest, client: client || undefined, many: true}, first: now, group, last: now})
    }
  }

  /** The window ended: every key's refusals since its last line written as one; keys without any forgotten. */
  tick(now = Date.now()): void {
    for (const [key, pending] of this.keys) {
      if (pending.count === 0) this.forget(key, pending)
      else this.summarise(pending, now)
    }

    for (const pending of this.overflow.values()) this.summarise(pending, now)
    this.overflow.clear()
  }

  /** Writes the summaries of the keys `matches` picks (a lock beginning: the refusals that led to it first). */
  flush(matches: (event: AuthFailedEvent) => boolean = () => true, now = Date.now()): void {
    for (const pending of this.keys.values()) if (pending.count > 0 && matches(pending.event)) this.summarise(pending, now)
  }

  /** Everything still counted, written (a close). */
  flushAll(now = Date.now()): void {
    this.flush(() => true, now)
    for (const pending of this.overflow.values()) this.summarise(pending, now)
    this.overflow.clear()
  }

  /** A new key: followed, and its first refusal written at once. */
  private follow(key: string, pending: Pending): void {
    this.keys.set(key, pending)
    pending.group!.keys++
    this.write(pending.event, new Date(pending.first))
  }

  private forget(key: string, pending: Pending): void {
    this.keys.delete(key)
    const {client, event, group} = pending
    if (!group) return
    group.keys--
    if (event.many) return
    const left = (group.perClient.get(client) ?? 1) - 1
    if (left > 0) group.perClient.set(client, left)
    else group.perClient.delete(client)
  }

  /** A group full: counted per reason only, the last resort. */
  private overflowed(event: AuthFailedEvent, now: number): void {
    // A wrong password keeps its user (a real one: as many as the store holds), so a flood cannot
    // hide which account is being guessed; other refusals are counted per reason alone.
    const user = event.reason === 'wrong-password' ? event.user : undefined
    const key = JSON.stringify([event.reason, user ?? ''])
    const other = this.overflow.get(key)
    if (other) count(other, now)
    else
      this.overflow.set(key, {
        client: '',
        count: 1,
        event: {event: 'auth.failed', overflow: true, reason: event.reason, ...(user === undefined ? {} : {user})},
        first: now,
        last: now,
      })
  }

  private summarise(pending: Pending, now: number): void {
    const {client, many, reason, user} = pending.event
    const summary: AuthFailedEvent = pending.event.overflow
      ? {...pending.event}
      : {client, event: 'auth.failed', reason, ...(user === undefined ? {} : {user}), ...(many ? {many} : {})}
    this.write({...summary, count: pending.count, first: new Date(pending.first).toISOString(), last: new Date(pending.last).toISOString()}, new Date(now))
    pending.count = 0
  }
}

function count(pending: Pending, now: number): void {
  if (pending.count === 0) pending.first = now
  pending.count++
  pending.last = now
}

export interface AuditStats {
  /** Lines dropped because the destination could not keep up (more queued than its bound). */
  dropped: number
  /** Lines that could not be written: a full disk, a closed pipe, or an event recorded after the log was closed. */
  failed: number
  /** Lines written. */
  lines: number
}

export interface AuditLogOptions {
  /** How failed logins are summarised. */
  failures?: FailureLimits
  /** Bytes queued for the destination beyond which lines are dropped; default DEFAULT_MAX_QUEUED_BYTES. */
  maxQueuedBytes?: number
  /** Each line dropped (a metric). */
  onDrop?: () => void
  /** Each line that could not be written (a metric): counted in `failed`. */
  onFail?: () => void
}

interface Destination {
  /** A file's stream, which closes the file when it ends; undefined for standard output. */
  file?: WriteStream
  stream: LineDestination & Pick<Writable, 'destroyed' | 'on' | 'writableEnded'>
}

/** The audit log: a file or standard output. */
export class AuditLog implements AuditSink {
  private changesDropped = 0
  private closed = false
  /** `failed` when the log was closed: the first line lost after it is logged. */
  private failedAtClose = 0
  private destination: Destination
  private failed = 0
  private readonly failures: FailureAggregator
  private readonly onFail: () => void
  private lines = 0
  /** Whether the current destination's failure has been logged (once per destination). */
  private reported = false
  private readonly timer: NodeJS.Timeout
  private readonly writer: BoundedWriter

  private constructor(
    /** The absolute path, or '-' for standard output. */
    readonly location: string,
    destination: Destination,
    private readonly log: (message: string) => void,
    options: AuditLogOptions = {},
  ) {
    this.destination = destination
    this.onFail = options.onFail ?? (() => {})
    this.watch(destination)
    this.failures = new FailureAggregator((event, time) => this.write(event, time), options.failures)
    this.timer = setInterval(() => this.failures.tick(), options.failures?.windowMs ?? DEFAULT_FAILURE_WINDOW_MS)
    // The summaries' clock must not keep a stopping process alive; close() writes what is left.
    this.timer.unref()
    const where = location === '-' ? 'on standard output' : location
    this.writer = new BoundedWriter({
      maxBytes: options.maxQueuedBytes,
      onDrop: options.onDrop,
      onDropEnd: (dropped) => {
        this.log(`error: audit log ${where} is written again; ${dropped} audit lines were dropped meanwhile, ${this.changesDropped} of them changes`)
        this.changesDropped = 0
      },
      onDropStart: (queued) =>
        this.log(
          `error: audit log ${where} cannot keep up (${queued} bytes not yet written): audit lines are dropped, changes included, until it catches up; each is counted (mlflowctl_log_lines_dropped_total{log="audit"})`,
        ),
    })
  }

  /** Opens `target` (a path, or '-' for standard output); a file that cannot be opened stops the start. */
  static async open(target: string, log: (message: string) => void, options: AuditLogOptions = {}): Promise<AuditLog> {
    if (target === '-') return new AuditLog('-', {stream: process.stdout}, log, options)
    const location = resolve(target)
    try {
      return new AuditLog(location, await openFile(location, log), log, options)
    } catch (error) {
      throw new UserError(`Cannot open the audit log ${location}: ${(error as Error).message}; nothing was started`, {
        code: 'AUDIT_LOG_UNWRITABLE',
        exit: ExitCode.Usage,
        hint: 'Give --audit-log a file serve may create or append to (its directory must exist), or - for standard output.',
      })
    }
  }

  /** An audit log on a stream of the caller's (a test's): reported as standard output is. */
  static onStream(stream: Destination['stream'], log: (message: string) => void, options: AuditLogOptions = {}): AuditLog {
    return new AuditLog('-', {stream}, log, options)
  }

  record(event: AuditEvent): void {
    if (this.closed) {
      // A request still being handled when serve stopped: its line is lost, but not silently.
      if (this.failed === this.failedAtClose)
        this.log(
          `error: audit log ${this.where()}: an event (${event.event}) was recorded after the log was closed and is lost; every such line is counted (mlflowctl_log_lines_failed_total{log="audit"})`,
        )
      this.fail()
      return
    }

    if (event.event === 'auth.failed') {
      this.failures.add(event)
      return
    }

    // The refusals that led to a lock come before it.
    if (event.event === 'auth.lockout') this.failures.flush((failed) => lockedBy(event, failed))
    this.write(event, new Date())
  }

  stats(): AuditStats {
    return {dropped: this.writer.dropped, failed: this.failed, lines: this.lines}
  }

  /**
   * Opens the file again by its path (after a rotation moved it away, a new one is created) and
   * writes every later line there; the lines written before go to the file they were meant for.
   * The current file stays in use when the new one cannot be opened. Resolves to a line for the log.
   */
  async reopen(): Promise<string> {
    if (this.location === '-' || this.closed) return 'audit log on standard output: nothing to reopen'
    const next = await openFile(this.location, this.log)
    if (this.closed) {
      await finish(next)
      return 'audit log closed: nothing to reopen'
    }

    // The refusals counted before the signal belong to the file they happened in.
    this.failures.flushAll()
    const previous = this.destination
    this.destination = next
    this.writer.release()
    this.reported = false
    this.watch(next)
    await finish(previous)
    return `audit log reopened: ${this.location}`
  }

  /** Writes what is counted and buffered and lets the file go; later events are lost, counted as `failed` and logged. */
  async close(): Promise<void> {
    if (this.closed) return
    this.failures.flushAll()
    clearInterval(this.timer)
    this.closed = true
    this.failedAtClose = this.failed
    if (this.location === '-') {
      // Standard output stays open for others; its buffered writes are flushed before exit by Node.
      await new Promise<void>((done) => {
        this.destination.stream.write('', () => done())
      })
      return
    }

    await finish(this.destination)
  }

  private write(event: AuditEvent, time: Date): void {
    const {stream} = this.destination
    if (stream.destroyed || stream.writableEnded) {
      this.fail()
      return
    }

    const written = this.writer.write(stream, serializeAuditEvent(event, time), (error) => {
      if (error) this.lost(error)
      else this.lines++
    })
    if (!written && event.event === 'change') this.changesDropped++
  }

  /** A line that could not be written: counted, and the first failure of a destination logged. */
  private lost(error: Error): void {
    this.fail()
    this.report(error)
  }

  private fail(): void {
    this.failed++
    this.onFail()
  }

  private where(): string {
    return this.location === '-' ? 'on standard output' : this.location
  }

  private report(error: Error): void {
    if (this.reported) return
    this.reported = true
    this.log(
      `error: audit log ${this.location === '-' ? 'on standard output' : this.location}: ${error.message}; audit lines are lost until it can be written again${this.location === '-' ? '' : ' (SIGHUP reopens it)'}`,
    )
  }

  private watch(destination: Destination): void {
    // A failed stream reports to the log once; the lines it drops are counted by their callbacks.
    destination.stream.on('error', (error: Error) => this.report(error))
  }
}

/** Whether a failed login is one of those a lock counted: the same address (IPv6: its /64), the same user. */
function lockedBy(lock: LockoutEvent, failed: AuthFailedEvent): boolean {
  if (lock.client !== undefined) {
    // A `many` count names its client as counted already.
    const client = failed.many || failed.client === undefined ? failed.client : addressKey(failed.client)
    if (client !== lock.client) return false
  }

  // A client's `many` count may hold refusals of the name locked from it: written before the lock too.
  return lock.user === undefined || failed.user === lock.user || (failed.many === true && lock.client !== undefined)
}

async function openFile(location: string, log: (message: string) => void): Promise<Destination> {
  // Append-only: every write lands at the end, whoever else appends (a rotation tool copying).
  const file = createWriteStream(location, {encoding: 'utf8', flags: 'a', mode: 0o600})
  await new Promise<void>((ready, fail) => {
    file.once('ready', () => ready())
    file.once('error', fail)
  })
  const {mode} = await promisify(fstat)((file as unknown as {fd: number}).fd)
  if (mode & 0o077) log(`warning: the audit log ${location} can be read by other users (mode ${(mode & 0o777).toString(8)}); serve creates it 0600`)
  return {file, stream: file}
}

/** Flushes a file's stream and closes the file. */
async function finish({file}: Destination): Promise<void> {
  if (!file || file.closed) return
  await new Promise<void>((done) => {
    file.once('close', done)
    if (file.destroyed) return
    file.end()
  })
}
