/**
 * The one base class: --json, the global flags, parsing, error rendering and exit codes.
 * Commands print for people with log() (data, stdout) and status() (stderr), both silent under
 * --json, and return their result, which oclif prints as the JSON document under --json.
 * Tables go through table(), so every table takes the same --columns, --sort, --csv and
 * --no-header, and reads as tab-separated lines in a pipe.
 */
// oclif's types by subpath (its package index loads all of oclif), its values through ./oclif.js.
import type * as Interfaces from '@oclif/core/interfaces'

import {Command} from './oclif-command.js'
import {CLIError, Flags} from './oclif.js'
import {ExitCode, UserError} from '../core/errors.js'
import {type Cell, JSON_FIELDS, type JsonFields, parseJsonFields, pickColumns, selectJsonFields, sortKeys, type TableOptions} from './output.js'
import {Progress} from './progress.js'
import type {RetryEvent} from '../client/retry.js'
import type {Session} from './session.js'

export type BaseFlags<T extends typeof Command> = Interfaces.InferredFlags<(typeof BaseCommand)['baseFlags'] & T['flags']>
export type BaseArgs<T extends typeof Command> = Interfaces.InferredArgs<T['args']>

export interface ErrorJson {
  error: {code: string; exit: number; hint?: string; message: string; status?: number}
}

/** The flags of every command that prints a table; the base command applies them in table(). */
export const tableFlags = {
  columns: Flags.string({description: 'Only these columns, in this order (comma-separated names, any case).', helpGroup: 'TABLE'}),
  csv: Flags.boolean({default: false, description: 'Print CSV instead of a table.', helpGroup: 'TABLE'}),
  header: Flags.boolean({
    allowNo: true,
    default: true,
    description: 'Print the heading line (--no-header leaves it out).',
    helpGroup: 'TABLE',
  }),
  sort: Flags.string({description: 'Sort rows by these columns (comma-separated; -NAME for descending, e.g. --sort=-id).', helpGroup: 'TABLE'}),
}

/** What a command may declare for the base command to check before it runs. */
interface CommandShape {
  args?: Record<string, unknown>
  /** The columns of the command's table, for --columns and --sort. */
  tableHead?: readonly string[]
}

export abstract class BaseCommand<T extends typeof Command> extends Command {
  static override baseFlags = {
    profile: Flags.string({
      description: 'Stored login to use (see `mlflowctl login --profile`). Default: $MLFLOWCTL_PROFILE, else the current one.',
      helpGroup: 'GLOBAL',
    }),
    retries: Flags.integer({
      description: 'Retries after a connection error, a timeout or a 408/429/5xx answer. Default: $MLFLOW_HTTP_REQUEST_MAX_RETRIES, else 7.',
      helpGroup: 'GLOBAL',
      min: 0,
    }),
    timeout: Flags.integer({
      description: 'Seconds to wait for each answer from the server. Default: $MLFLOW_HTTP_REQUEST_TIMEOUT, else 120.',
      helpGroup: 'GLOBAL',
      min: 1,
    }),
    'tracking-uri': Flags.string({
      description: "MLflow server URL. Default: $MLFLOW_TRACKING_URI, else the profile's.",
      helpGroup: 'GLOBAL',
    }),
  }
  static override enableJsonFlag = true

  protected args!: BaseArgs<T>
  protected flags!: BaseFlags<T>
  /** The fields of --json=a,b; undefined for the whole document. */
  private jsonFieldList: string[] | undefined
  private progress: Progress | undefined
  /** The table renderer, loaded in init() by the commands that print a table (chalk, cli-table3). */
  private render: typeof import('./render.js') | undefined

  public override async init(): Promise<void> {
    // Before anything else: oclif decides JSON output (also for errors) from `--json` in argv.
    const rawFields = this.takeJsonFields()
    await super.init()
    const {args, flags} = await this.parse({
      args: this.ctor.args,
      baseFlags: this.ctor.baseFlags,
      enableJsonFlag: this.ctor.enableJsonFlag,
      flags: this.ctor.flags,
      strict: this.ctor.strict,
    })
    this.flags = flags as BaseFlags<T>
    this.args = args as BaseArgs<T>
    const shape = this.shape()
    if (rawFields !== undefined) this.jsonFieldList = parseJsonFields(shape.jsonFields, rawFields)
    // A misspelt column fails before the request, not after the wait for its answer.
    if (shape.tableHead) {
      const options = this.flags as TableOptions
      pickColumns([...shape.tableHead], options.columns)
      sortKeys([...shape.tableHead], options.sort)
      this.render = await import('./render.js')
    }
  }

  private shape(): CommandShape & {jsonFields?: JsonFields} {
    const {args, tableHead} = this.ctor as unknown as CommandShape
    return {args, jsonFields: JSON_FIELDS[this.id ?? ''], tableHead}
  }

  /**
   * `--json=a,b`, or `--json a,b` where the next word can only be a field list (the command takes
   * no arguments, or every name in it is a field): taken out of argv, leaving a bare `--json`.
   */
  private takeJsonFields(): string | undefined {
    const end = this.argv.includes('--') ? this.argv.indexOf('--') : this.argv.length
    const index = this.argv.findIndex((arg, position) => position < end && (arg === '--json' || arg.startsWith('--json=')))
    if (index === -1) return undefined
    const arg = this.argv[index]
    if (arg.startsWith('--json=')) {
      this.argv.splice(index, 1, '--json')
      return arg.slice('--json='.length)
    }

    const next = this.argv[index + 1]
    if (index + 1 >= end || next === undefined || next.startsWith('-')) return undefined
    const {args, jsonFields} = this.shape()
    const takesArgs = Object.keys(args ?? {}).length > 0
    const allFields = next.split(',').every((name) => jsonFields?.fields.includes(name.trim()))
    if (takesArgs && !allFields) return undefined
    this.argv.splice(index + 1, 1)
    return next
  }

  protected override toSuccessJson(result: unknown): unknown {
    return this.jsonFieldList ? selectJsonFields(result, this.shape().jsonFields, this.jsonFieldList) : result
  }

  /** Prints the command's table (columns as declared in `tableHead`) on stdout, as the user asked. */
  protected table(rows: Cell[][]): void {
    const head = this.shape().tableHead
    // The renderer is loaded in init() for commands that declare a tableHead: both are a programming error.
    if (!head) throw new Error(`${this.id} prints a table but declares no tableHead`)
    if (!this.render) throw new Error(`${this.id} prints a table before its renderer was loaded`)
    const options = this.flags as TableOptions
    const {colorsFor, formatTable} = this.render
    this.log(formatTable([...head], rows, {...options, color: colorsFor(process.stdout), terminal: Boolean(process.stdout.isTTY)}))
  }

  private sessionPromise: Promise<Session> | undefined

  /** The connection to MLflow, opened on first use (commands that need none pay nothing). */
  protected session(): Promise<Session> {
    this.sessionPromise ??= import('./session.js')
      .then(({Session}) =>
        Session.open({
          env: process.env,
          onRequest: (request) => this.waitingFor(request),
          // MLflow's retry policy can wait minutes; say what is happening rather than hang silently.
          onRetry: (event) => this.announceRetry(event),
          profile: this.flags.profile,
          retries: this.flags.retries,
          timeout: this.flags.timeout,
          trackingUri: this.flags['tracking-uri'],
        }),
      )
      .then((session) => {
        for (const warning of session.connection.warnings) this.warn(warning)
        return session
      })
    return this.sessionPromise
  }

  /** Each retry, on stderr: MLflow's policy can wait minutes, and a silent wait looks like a hang. */
  protected announceRetry(event: RetryEvent): void {
    this.status(`${event.method} ${event.path}: ${event.reason}; retry ${event.retry} in ${event.delaySeconds.toFixed(1)}s`)
  }

  /**
   * A request started: on a terminal, a spinner on stderr once it takes longer than half a
   * second (also under --json, which keeps stdout for the document). Returns what ends it.
   */
  protected waitingFor(request: {host: string; method: string; path: string}): () => void {
    if (!Progress.enabledFor(process.stderr)) return () => {}
    this.progress ??= new Progress(process.stderr)
    return this.progress.begin(`Waiting for ${request.host} (${request.method} ${request.path})…`)
  }

  /** Status for people, on stderr; silent under --json. */
  protected status(message: string): void {
    if (this.progress) this.progress.interrupt(() => this.logToStderr(message))
    else this.logToStderr(message)
  }

  protected override async catch(error: Error & {exitCode?: number; oclif?: {exit?: number}}): Promise<unknown> {
    // oclif's own errors (unknown flag, missing argument, --help) keep their rendering and codes.
    if (error.oclif && !(error instanceof UserError)) {
      if (this.jsonEnabled()) {
        process.exitCode = error.oclif.exit ?? ExitCode.Usage
        this.logJson(this.toErrorJson(error))
        return
      }

      throw error
    }

    const failure = error instanceof UserError ? error : unexpected(error)
    // oclif prefixes a flag's own parse error with "Parsing --flag \n\t…\nSee more help with --help".
    failure.message = failure.message.replace(/^Parsing (--\S+) \n\t/, '$1: ').replace(/\nSee more help with --help$/, '')
    process.exitCode = failure.exit
    if (this.jsonEnabled()) {
      this.logJson(this.toErrorJson(failure))
      return
    }

    // With DEBUG, oclif prints the stack; otherwise the message is ours to lay out.
    if (process.env.DEBUG) {
      throw new CLIError(failure.message, {code: failure.code, exit: failure.exit, suggestions: failure.hint ? [failure.hint] : undefined})
    }

    process.stderr.write(`${renderError(failure, errorWidth())}\n`)
  }

  protected override toErrorJson(error: unknown): ErrorJson {
    if (error instanceof UserError) {
      return {error: {code: error.code, exit: error.exit, hint: error.hint, message: error.message, status: error.status}}
    }

    const exit = (error as {oclif?: {exit?: number}}).oclif?.exit ?? ExitCode.Usage
    return {error: {code: 'USAGE_ERROR', exit, message: (error as Error).message}}
  }
}

function unexpected(error: Error): UserError {
  return new UserError(`Unexpected error: ${error.message}`, {
    cause: error,
    code: 'UNEXPECTED',
    exit: ExitCode.Unexpected,
    hint: 'This is a bug in mlflowctl; run again with DEBUG=* for details and report it.',
  })
}

/** The width to wrap errors at: OCLIF_COLUMNS or oclif's setting, else the terminal's; none in a pipe. */
function errorWidth(): number | undefined {
  const configured = Number.parseInt(process.env.OCLIF_COLUMNS ?? '', 10) || (globalThis as {oclif?: {columns?: number}}).oclif?.columns
  if (configured) return configured
  return process.stderr.isTTY ? process.stderr.columns || 80 : undefined
}

const ERROR_PREFIX = ' ›   '

/**
 * The error as oclif lays it out (`Error:`, `Code:`, `Try this:`), wrapped only between words: a
 * command in backticks or a URL stays on one line, whole, so it can be copied.
 */
export function renderError(error: UserError, width: number | undefined): string {
  const lines = [`Error: ${error.message}`, `Code: ${error.code}`, ...(error.hint ? [`Try this: ${error.hint}`] : [])]
  const room = width === undefined ? Infinity : Math.max(width - ERROR_PREFIX.length - 1, 20)
  return lines
    .flatMap((line) => line.split('\n'))
    .flatMap((line) => wrapWords(line, room))
    .map((line) => `${ERROR_PREFIX}${line}`)
    .join('\n')
}

/** Greedy wrapping at spaces; a `quoted command` (with what follows it up to a space) is one word. */
function wrapWords(text: string, room: number): string[] {
  const words = text.match(/`[^`]*`\S*|\S+/g) ?? ['']
  const lines: string[] = []
  let line = ''
  for (const word of words) {
    if (line !== '' && line.length + 1 + word.length > room) {
      lines.push(line)
      line = word
    } else {
      line = line === '' ? word : `${line} ${word}`
    }
  }

  lines.push(line)
  return lines
}
