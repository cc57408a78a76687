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
 */
import {createWriteStream, fstat, type WriteStream} from 'node:fs'
import {promisify} from 'node:util'
import {resolve} from 'node:path'
import {type Writable} from 'node:stream'

import {ExitCode, UserError} from '../core/errors.js'

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

export interface AuthFailedEvent extends AuditOrigin {
  event: 'auth.failed'
  reason: AuthFailure
  /** The user name the client gave, when it gave one (it need not exist). */
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
  const order = ['user', 'client', 'method', 'path', 'status', 'decision', 'rule', 'resource', 'need', 'level', 'reason', 'operation', 'target', 'values']
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

export interface AuditStats {
  /** Lines that could not be written (a full disk, a closed pipe). */
  failed: number
  /** Lines written. */
  lines: number
}

interface Destination {
  /** A file's stream, which closes the file when it ends; undefined for standard output. */
  file?: WriteStream
  stream: Writable
}

/** The audit log: a file or standard output. */
export class AuditLog implements AuditSink {
  private closed = false
  private destination: Destination
  private failed = 0
  private lines = 0
  /** Whether the current destination's failure has been logged (once per destination). */
  private reported = false

  private constructor(
    /** The absolute path, or '-' for standard output. */
    readonly location: string,
    destination: Destination,
    private readonly log: (message: string) => void,
  ) {
    this.destination = destination
    this.watch(destination)
  }

  /** Opens `target` (a path, or '-' for standard output); a file that cannot be opened stops the start. */
  static async open(target: string, log: (message: string) => void): Promise<AuditLog> {
    if (target === '-') return new AuditLog('-', {stream: process.stdout}, log)
    const location = resolve(target)
    try {
      return new AuditLog(location, await openFile(location, log), log)
    } catch (error) {
      throw new UserError(`Cannot open the audit log ${location}: ${(error as Error).message}; nothing was started`, {
        code: 'AUDIT_LOG_UNWRITABLE',
        exit: ExitCode.Usage,
        hint: 'Give --audit-log a file serve may create or append to (its directory must exist), or - for standard output.',
      })
    }
  }

  record(event: AuditEvent): void {
    if (this.closed) return
    const {stream} = this.destination
    if (stream.destroyed || stream.writableEnded) {
      this.failed++
      return
    }

    stream.write(serializeAuditEvent(event), (error) => {
      if (error) this.lost(error)
      else this.lines++
    })
  }

  stats(): AuditStats {
    return {failed: this.failed, lines: this.lines}
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

    const previous = this.destination
    this.destination = next
    this.reported = false
    this.watch(next)
    await finish(previous)
    return `audit log reopened: ${this.location}`
  }

  /** Writes what is buffered and lets the file go; later events are dropped. */
  async close(): Promise<void> {
    if (this.closed) return
    this.closed = true
    if (this.location === '-') {
      // Standard output stays open for others; its buffered writes are flushed before exit by Node.
      await new Promise<void>((done) => {
        process.stdout.write('', () => done())
      })
      return
    }

    await finish(this.destination)
  }

  /** A line that could not be written: counted, and the first failure of a destination logged. */
  private lost(error: Error): void {
    this.failed++
    this.report(error)
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
