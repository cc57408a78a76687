/**
 * The one base class: --json, the global flags, parsing, error rendering and exit codes.
 * Commands print for people with log() (data, stdout) and status() (stderr), both silent under
 * --json, and return their result, which oclif prints as the JSON document under --json.
 */
// Subpath imports: the package index loads all of oclif (~30 ms more on every run).
import {Command} from '@oclif/core/command'
import {CLIError} from '@oclif/core/errors'
import * as Flags from '@oclif/core/flags'
import type * as Interfaces from '@oclif/core/interfaces'

import {ExitCode, UserError} from '../core/errors.js'
import {colorsFor} from './output.js'
import type {Session} from './session.js'

export type BaseFlags<T extends typeof Command> = Interfaces.InferredFlags<(typeof BaseCommand)['baseFlags'] & T['flags']>
export type BaseArgs<T extends typeof Command> = Interfaces.InferredArgs<T['args']>

export interface ErrorJson {
  error: {code: string; exit: number; hint?: string; message: string; status?: number}
}

export abstract class BaseCommand<T extends typeof Command> extends Command {
  static override baseFlags = {
    profile: Flags.string({
      description: 'Stored login to use (see `mlflowctl login --profile`). Default: $MLFLOWCTL_PROFILE, else the current one.',
      helpGroup: 'GLOBAL',
    }),
    'tracking-uri': Flags.string({
      description: "MLflow server URL. Default: $MLFLOW_TRACKING_URI, else the profile's.",
      helpGroup: 'GLOBAL',
    }),
  }
  static override enableJsonFlag = true

  protected args!: BaseArgs<T>
  protected flags!: BaseFlags<T>

  public override async init(): Promise<void> {
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
  }

  private sessionPromise: Promise<Session> | undefined

  /** The connection to MLflow, opened on first use (commands that need none pay nothing). */
  protected session(): Promise<Session> {
    this.sessionPromise ??= import('./session.js')
      .then(({Session}) =>
        Session.open({
          env: process.env,
          // MLflow's retry policy can wait minutes; say what is happening rather than hang silently.
          onRetry: (event) => this.status(`${event.method} ${event.path}: ${event.reason}; retry ${event.retry} in ${event.delaySeconds.toFixed(1)}s`),
          profile: this.flags.profile,
          trackingUri: this.flags['tracking-uri'],
        }),
      )
      .then((session) => {
        for (const warning of session.connection.warnings) this.warn(warning)
        return session
      })
    return this.sessionPromise
  }

  protected stdoutColors() {
    return colorsFor(process.stdout)
  }

  protected stderrColors() {
    return colorsFor(process.stderr)
  }

  /** Status for people, on stderr; silent under --json. */
  protected status(message: string): void {
    this.logToStderr(message)
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

    throw new CLIError(failure.message, {code: failure.code, exit: failure.exit, suggestions: failure.hint ? [failure.hint] : undefined})
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
