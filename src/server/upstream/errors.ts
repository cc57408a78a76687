/**
 * How a failure of the upstream is told: the status a client gets (503 unreachable, 502 a broken
 * answer, 504 no answer in time), MLflow's error body for it, and a short reason for the log.
 */

/** MLflow's error body (3.17 adds `sqlstate` and `error_class`, see responses.ts). */
export interface MlflowErrorBody {
  error_class?: string
  error_code: string
  message: string
  sqlstate?: string
}

/**
 * The upstream failed; `status` is what a client gets: 503 it cannot be reached (refused, no such
 * host, serve shutting down), 502 it answered brokenly (reset, closed early, not HTTP, too big),
 * 504 it did not answer in time. The error code is MLflow's for the status (both 5xx without one of
 * their own are TEMPORARILY_UNAVAILABLE), so MLflow's clients retry as they would against MLflow.
 */
export class UpstreamError extends Error {
  readonly body: MlflowErrorBody
  readonly code?: string

  constructor(
    message: string,
    readonly status: UpstreamFailureStatus,
    code?: string,
    options?: ErrorOptions,
  ) {
    super(message, options)
    this.name = 'UpstreamError'
    this.code = code
    this.body = {error_code: status === 504 ? 'DEADLINE_EXCEEDED' : 'TEMPORARILY_UNAVAILABLE', message}
  }
}

export type UpstreamFailureStatus = 502 | 503 | 504

export function codeOf(error: unknown): string | undefined {
  const code = (error as NodeJS.ErrnoException | undefined)?.code
  return typeof code === 'string' ? code : undefined
}

/** An error of our own making: its message is already the reason to show. */
export function withCode(message: string, code: string): Error {
  return Object.assign(new Error(message), {code, ownReason: true})
}

const UNREACHABLE = new Set(['EAI_AGAIN', 'ECONNREFUSED', 'EHOSTUNREACH', 'ENETUNREACH', 'ENOTFOUND', 'ESHUTDOWN'])

/** The one place a failure's status is decided (see UpstreamError). */
function failureStatus(error: Error): UpstreamFailureStatus {
  const code = codeOf(error)
  if (code === 'ETIMEDOUT') return 504
  return code !== undefined && UNREACHABLE.has(code) ? 503 : 502
}

const FAILURE_PHRASE: Record<UpstreamFailureStatus, string> = {
  502: 'gave no usable answer',
  503: 'is not reachable',
  504: 'did not answer in time',
}

/** A short reason for the message, with the system code for whoever reads the logs. */
function describeFailure(error: Error, hostname: string): string {
  const code = codeOf(error)
  let reason: string
  switch ((error as {ownReason?: boolean}).ownReason ? undefined : code) {
    case 'ECONNREFUSED': {
      reason = 'connection refused'
      break
    }

    case 'ECONNRESET': {
      reason = error.message === 'socket hang up' ? 'connection closed without an answer' : 'connection reset'
      break
    }

    case 'EPIPE': {
      reason = 'connection closed while sending the request'
      break
    }

    case 'ENOTFOUND':
    case 'EAI_AGAIN': {
      reason = `host ${hostname} not found`
      break
    }

    case 'EHOSTUNREACH':
    case 'ENETUNREACH': {
      reason = 'host unreachable'
      break
    }

    default: {
      reason = code?.startsWith('HPE_') ? `invalid HTTP answer (${error.message})` : error.message
    }
  }

  return code && !reason.includes(code) ? `${reason} (${code})` : reason
}

/** The upstream's failure as a client is told it: `url` is the upstream as shown in messages, `hostname` its host. */
export function upstreamFailure(error: Error, url: string, hostname: string): UpstreamError {
  if (error instanceof UpstreamError) return error
  const status = failureStatus(error)
  const message = `The MLflow tracking server at ${url} ${FAILURE_PHRASE[status]}: ${describeFailure(error, hostname)}`
  return new UpstreamError(message, status, codeOf(error), {cause: error})
}
