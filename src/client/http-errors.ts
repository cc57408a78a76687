/**
 * How MLflow's answers become errors: MlflowApiError for an error answer (worded as MLflow's
 * RestException words it, with the exit code and a hint naming where the credentials came from),
 * and the errors for a server that cannot be reached. Messages pass through `redact` first, so no
 * password, token or header value ever reaches one.
 */
import {STATUS_CODES} from 'node:http'

import {ExitCode, type ExitCodeValue, UserError} from '../core/errors.js'
import {jsonObjectOrUndefined} from '../core/json.js'
import type {Connection} from './connection.js'

type Redact = (text: string) => string

export interface MlflowApiErrorOptions {
  code: string
  endpointMissing: boolean
  errorCode?: string
  exit: ExitCodeValue
  hint?: string
  method: string
  path: string
  status: number
}

/** An error answer from the server (after retries). */
export class MlflowApiError extends UserError {
  /** True when the server does not have this endpoint at all (another MLflow version or app). */
  readonly endpointMissing: boolean
  /** MLflow's error_code from a JSON body, e.g. RESOURCE_DOES_NOT_EXIST; absent for other bodies. */
  readonly errorCode?: string
  readonly method: string
  readonly path: string
  declare readonly status: number

  constructor(message: string, options: MlflowApiErrorOptions) {
    super(message, {code: options.code, exit: options.exit, hint: options.hint, status: options.status})
    this.name = 'MlflowApiError'
    this.endpointMissing = options.endpointMissing
    this.errorCode = options.errorCode
    this.method = options.method
    this.path = options.path
  }
}

/** `request`'s answer; its error for an endpoint the server does not have becomes `missing`'s (what the server lacks, in one sentence). */
export async function whenEndpointMissing<T>(request: Promise<T>, missing: (cause: MlflowApiError) => Error): Promise<T> {
  try {
    return await request
  } catch (error) {
    if (error instanceof MlflowApiError && error.endpointMissing) throw missing(error)
    throw error
  }
}

/** MLflow's HTTP_STATUS_TO_ERROR_CODE, for bodies without an error_code. */
const STATUS_TO_ERROR_CODE: Record<number, string> = {
  400: 'BAD_REQUEST',
  401: 'UNAUTHENTICATED',
  403: 'PERMISSION_DENIED',
  404: 'ENDPOINT_NOT_FOUND',
  409: 'ALREADY_EXISTS',
  429: 'RESOURCE_EXHAUSTED',
  499: 'CANCELLED',
  500: 'INTERNAL_ERROR',
  501: 'NOT_IMPLEMENTED',
  503: 'TEMPORARILY_UNAVAILABLE',
  504: 'DEADLINE_EXCEEDED',
}

export function parseSuccess<T>(text: string, connection: Connection, method: string, path: string, redact: Redact): T {
  const trimmed = text.trim()
  // MLflow's client treats an empty body, or Armeria's literal "200 OK", as {}.
  if (trimmed === '' || trimmed === '200 OK') return {} as T
  const json = jsonObjectOrUndefined(text)
  if (json) return json as T
  throw new MlflowApiError(`MLflow at ${connection.host.value} answered ${method} ${path} with a body that is not a JSON object: ${redact(excerpt(text))}`, {
    code: 'INVALID_RESPONSE',
    endpointMissing: false,
    exit: ExitCode.Unexpected,
    hint: `Check that the tracking URI (from ${connection.trackingUri.source}) points at an MLflow server, not a login page or another service.`,
    method,
    path,
    status: 200,
  })
}

function excerpt(text: string): string {
  const collapsed = text.replaceAll(/\s+/g, ' ').trim()
  return collapsed.length > 200 ? `${collapsed.slice(0, 200)}…` : collapsed
}

/** Builds the error for a non-200 answer, as MLflow's RestException/MlflowException word it. */
export function apiError(
  connection: Connection,
  status: number,
  text: string,
  request: {method: string; path: string; retries: number},
  redact: Redact,
): MlflowApiError {
  const json = jsonObjectOrUndefined(text)
  let errorCode: string | undefined
  let message: string
  if (json) {
    const raw = json.error_code
    // A numeric code (from a proxy) maps through the status table, as MLflow does.
    errorCode = typeof raw === 'string' && raw !== '' ? (/^\d+$/.test(raw) ? (STATUS_TO_ERROR_CODE[Number(raw)] ?? raw) : raw) : undefined
    const shown = errorCode ?? 'INTERNAL_ERROR'
    const detail = typeof json.message === 'string' ? json.message : JSON.stringify(json.message)
    message = 'message' in json ? `${shown}: ${detail}` : `${shown}: Response: ${JSON.stringify(json)}`
  } else {
    const body = excerpt(text)
    message = `HTTP ${status}: ${body || STATUS_CODES[status] || 'no body'}`
  }

  // A 404 without MLflow's error_code is a route the server does not have at all.
  const endpointMissing = errorCode === 'ENDPOINT_NOT_FOUND' || (status === 404 && errorCode === undefined)
  const exit = exitFor(status, errorCode, endpointMissing)
  return new MlflowApiError(redact(message), {
    code: errorCode ?? STATUS_TO_ERROR_CODE[status] ?? `HTTP_${status}`,
    endpointMissing,
    errorCode,
    exit,
    hint: hintFor(connection, status, exit, request),
    method: request.method,
    path: request.path,
    status,
  })
}

function exitFor(status: number, errorCode: string | undefined, endpointMissing: boolean): ExitCodeValue {
  if (status === 401) return ExitCode.Unauthenticated
  if (status === 403) return ExitCode.PermissionDenied
  if (endpointMissing || status === 501) return ExitCode.Unsupported
  if (errorCode === 'RESOURCE_DOES_NOT_EXIST' || errorCode === 'NOT_FOUND' || status === 404) return ExitCode.NotFound
  if (errorCode === 'RESOURCE_ALREADY_EXISTS' || errorCode === 'ALREADY_EXISTS') return ExitCode.AlreadyExists
  if (status >= 500 || status === 408 || status === 429) return ExitCode.Unavailable
  if (status >= 400) return ExitCode.Usage
  return ExitCode.Unexpected
}

function hintFor(connection: Connection, status: number, exit: ExitCodeValue, request: {method: string; path: string; retries: number}): string | undefined {
  const {password, token, username} = connection
  switch (exit) {
    case ExitCode.Unauthenticated: {
      switch (connection.auth) {
        case 'basic': {
          return `The server rejected the username "${username!.value}" (from ${username!.source}) with the password from ${password!.source}. Run \`mlflowctl login\`, or fix ${username!.source === password!.source ? username!.source : `${username!.source} / ${password!.source}`}.`
        }

        case 'bearer': {
          return `The server rejected the token from ${token!.source}. Set a valid one, or run \`mlflowctl login\` with a username and password.`
        }

        case 'sigv4': {
          return `The server rejected the AWS SigV4 signature (region from ${connection.sigv4!.region.source}). Check the AWS credentials and region.`
        }

        default: {
          return 'No credentials were sent. Run `mlflowctl login`, or set MLFLOW_TRACKING_USERNAME and MLFLOW_TRACKING_PASSWORD (or MLFLOW_TRACKING_TOKEN).'
        }
      }
    }

    case ExitCode.PermissionDenied: {
      return connection.auth === 'basic'
        ? `Logged in as "${username!.value}" (from ${username!.source}), who is not allowed to do this; an admin can grant it.`
        : 'The credentials are valid but not allowed to do this; an admin can grant it.'
    }

    case ExitCode.Unsupported: {
      return `The server at ${connection.host.value} does not offer ${request.method} ${request.path}: it may run another MLflow version, or not the basic-auth app (mlflow server --app-name basic-auth).`
    }

    case ExitCode.Unavailable: {
      const after = request.retries > 0 ? ` after ${request.retries} ${request.retries === 1 ? 'retry' : 'retries'}` : ''
      return `The server answered ${status}${after}. Try again later, or check the server's logs; --retries or MLFLOW_HTTP_REQUEST_MAX_RETRIES sets the retries.`
    }

    default: {
      // Only reachable for a redirect when following them is off.
      return status >= 300 && status < 400
        ? 'The server answered with a redirect, and MLFLOW_ALLOW_HTTP_REDIRECTS=false turns following redirects off.'
        : undefined
    }
  }
}

export interface NetworkProblem {
  kind: 'dns' | 'network' | 'timeout' | 'tls'
  reason: string
  retryable: boolean
}

export function describeNetworkError(error: unknown, connection: Connection): NetworkProblem {
  const err = error as {cause?: unknown; code?: string; message?: string; name?: string}
  if (err?.name === 'TimeoutError' || err?.name === 'AbortError') {
    return {kind: 'timeout', reason: `no response within ${connection.timeoutSeconds} s`, retryable: true}
  }

  const cause = err?.cause as {code?: string; errors?: Array<{code?: string; message?: string}>; message?: string} | undefined
  const inner = cause?.errors?.[0] ?? cause
  const code = inner?.code ?? err?.code
  const text = inner?.message || cause?.message || err?.message || String(error)
  const reason = code && !text.includes(code) ? `${text} (${code})` : text
  // A certificate that fails verification fails the same way every time; do not wait minutes for it.
  if (code && /CERT|SELF_SIGNED|UNABLE_TO_VERIFY|ALTNAME|^ERR_SSL_|^ERR_TLS_/.test(code)) return {kind: 'tls', reason, retryable: false}
  // A name that does not exist (NXDOMAIN) will not exist a few seconds later either; EAI_AGAIN
  // (no answer from the resolver) is a passing failure, retried like a refused connection.
  if (code === 'ENOTFOUND') return {kind: 'dns', reason, retryable: false}
  const fetchFailure = error instanceof TypeError && cause !== undefined
  return {kind: 'network', reason, retryable: fetchFailure}
}

export function unreachable(connection: Connection, problem: NetworkProblem, retries: number, redact: Redact): UserError {
  const after = retries > 0 ? ` (after ${retries} ${retries === 1 ? 'retry' : 'retries'})` : ''
  const where = `${connection.host.value}`
  const address = `from ${connection.trackingUri.source}; set it with --tracking-uri or MLFLOW_TRACKING_URI`
  const waiting = `mlflowctl tries ${1 + connection.retry.maxRetries} ${connection.retry.maxRetries === 0 ? 'time' : 'times'} (--retries or MLFLOW_HTTP_REQUEST_MAX_RETRIES, now ${connection.retry.maxRetries} from ${connection.retriesSource}), waiting up to ${connection.timeoutSeconds} s for each answer (--timeout or MLFLOW_HTTP_REQUEST_TIMEOUT, from ${connection.timeoutSource})`
  const hints: Record<NetworkProblem['kind'], string> = {
    dns: `No such host: check the address (${address}); a name that does not resolve is not retried.`,
    network: `Check the address (${address}) and that the server is running. ${waiting}.`,
    timeout: `The server did not answer in time: check the address (${address}), or raise --timeout. ${waiting}.`,
    tls: 'The TLS handshake failed: set MLFLOW_TRACKING_SERVER_CERT_PATH to the CA bundle that signed the server certificate (or, for testing only, MLFLOW_TRACKING_INSECURE_TLS=true); for mutual TLS, MLFLOW_TRACKING_CLIENT_CERT_PATH.',
  }
  return new UserError(redact(`Could not reach MLflow at ${where}: ${problem.reason}${after}`), {
    code: {dns: 'HOST_NOT_FOUND', network: 'UNAVAILABLE', timeout: 'TIMEOUT', tls: 'TLS_ERROR'}[problem.kind],
    exit: ExitCode.Unavailable,
    hint: hints[problem.kind],
  })
}
