/**
 * Errors a user can act on, and the exit codes they map to. Plain module: no oclif here, so
 * every layer (client, api, server) can throw these and the base command renders them.
 */

/** Documented exit codes (README "Exit codes"). Never reuse a number for another meaning. */
export const ExitCode = {
  /** Unexpected failure: a bug, or an error nobody anticipated. */
  Unexpected: 1,
  /** Bad command line or bad input, detected before or by the server (400). */
  Usage: 2,
  /** Not logged in, or the server rejected the credentials (401). */
  Unauthenticated: 3,
  /** Authenticated, but not allowed (403). */
  PermissionDenied: 4,
  /** The user, experiment, model or permission does not exist (404). */
  NotFound: 5,
  /** The thing to create already exists. */
  AlreadyExists: 6,
  /** The server could not be reached, timed out, or failed (5xx). */
  Unavailable: 7,
  /** The server does not offer this operation (an older or different MLflow). */
  Unsupported: 8,
  /** A confirmation was declined, or was needed without a terminal to ask on. */
  Aborted: 9,
  /** What serve needs is held by another process (its port, or its store's lock): may work later. */
  InUse: 10,
  /** `plan --detailed-exitcode`: the server differs from the policy file (not an error). */
  ChangesPending: 11,
} as const

export type ExitCodeValue = (typeof ExitCode)[keyof typeof ExitCode]

export interface UserErrorOptions {
  cause?: unknown
  /** A stable machine-readable code for --json, e.g. MLflow's RESOURCE_DOES_NOT_EXIST. */
  code?: string
  exit?: ExitCodeValue
  /** One line telling the user what to do next. */
  hint?: string
  /** The HTTP status, when the error came from a server. */
  status?: number
}

/** An error whose message is fit to show as is, with no stack trace. */
export class UserError extends Error {
  readonly code: string
  readonly exit: ExitCodeValue
  readonly hint?: string
  readonly status?: number

  constructor(message: string, options: UserErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : {cause: options.cause})
    this.name = 'UserError'
    this.code = options.code ?? 'USAGE_ERROR'
    this.exit = options.exit ?? ExitCode.Usage
    this.hint = options.hint
    this.status = options.status
  }
}
