/**
 * serve's access log (docs/operations.md, "Access log"): one JSON line per request once its answer
 * is over: time, client address, user, method, path without its query, status, bytes, duration,
 * decision and route family. Never a query, a header or a credential. Not the audit log: it says
 * what reached serve, not what changed.
 */
import {createWriteStream} from 'node:fs'

import {ExitCode, UserError} from '../core/errors.js'
import {type RequestRecord} from './app.js'
import {BoundedWriter, type LineDestination} from './bounded-write.js'

export interface AccessLine {
  bytes: number
  client: string
  decision: string
  duration_ms: number
  method: string
  path: string
  route: string
  /** 0: the connection closed before an answer began. */
  status: number
  time: string
  user: null | string
}

export function accessLine(record: RequestRecord, client: string, now = new Date()): AccessLine {
  return {
    bytes: record.bytes,
    client,
    decision: record.decision,
    duration_ms: Math.round(record.seconds * 1e6) / 1000,
    method: record.method,
    path: record.path,
    route: record.family,
    status: record.status,
    time: now.toISOString(),
    user: record.user ?? null,
  }
}

export interface AccessLogOptions {
  /** serve's log: dropping lines is said once when it starts and once when it stops. */
  log: (message: string) => void
  /** Bytes queued for the sink beyond which lines are dropped; default DEFAULT_MAX_QUEUED_BYTES. */
  maxQueuedBytes?: number
  /** Each line dropped (a metric). */
  onDrop?: () => void
}

/**
 * Writes each request's line to the sink (a file opened for appending, or standard output). A
 * sink that cannot keep up does not hold serve's memory: beyond a bound of bytes queued, lines
 * are dropped and counted.
 */
export class AccessLog {
  private readonly writer: BoundedWriter

  constructor(
    private readonly sink: LineDestination,
    options: AccessLogOptions,
  ) {
    const {log} = options
    this.writer = new BoundedWriter({
      maxBytes: options.maxQueuedBytes,
      onDrop: options.onDrop,
      onDropEnd: (dropped) => log(`warning: access log is written again; ${dropped} lines were dropped meanwhile`),
      onDropStart: (queued) =>
        log(
          `warning: access log cannot keep up (${queued} bytes not yet written): lines are dropped and counted (mlflowctl_log_lines_dropped_total{log="access"}) until it catches up`,
        ),
    })
  }

  write(record: RequestRecord, client: string): void {
    this.writer.write(this.sink, `${JSON.stringify(accessLine(record, client))}\n`)
  }

  /** Lines dropped so far. */
  get dropped(): number {
    return this.writer.dropped
  }
}

/** The access log's destination: `-` for standard output, else a file opened for appending (created 0600: it names users and addresses). */
export async function openAccessLog(path: string, onError: (error: Error) => void): Promise<{close(): Promise<void>; sink: LineDestination}> {
  if (path === '-') return {close: async () => {}, sink: process.stdout}
  const stream = createWriteStream(path, {flags: 'a', mode: 0o600})
  await new Promise<void>((resolve, reject) => {
    stream.once('open', () => resolve())
    stream.once('error', (error) =>
      reject(
        new UserError(`Cannot open the access log ${path}: ${error.message}`, {
          cause: error,
          code: 'BAD_ACCESS_LOG',
          exit: ExitCode.Usage,
          hint: 'Give a file serve may create or append to, or - for standard output.',
        }),
      ),
    )
  })
  // A failing disk later must not stop serve: the log says so, and requests go on.
  stream.on('error', onError)
  return {
    close: () => new Promise<void>((resolve) => stream.end(() => resolve())),
    sink: stream,
  }
}
