/**
 * MLflow's answers, byte for byte where clients or tests match on them
 * (docs/mlflow-auth-contract.md, "Authentication" and "Errors and status codes").
 */
import {type ServerResponse} from 'node:http'

import {type MlflowErrorBody, UpstreamError} from './upstream/errors.js'
import {StoreError, StoreFileError, StoreUnavailableError} from './store/store.js'

export const UNAUTHENTICATED_TEXT =
  'You are not authenticated. Please see https://www.mlflow.org/docs/latest/auth/index.html#authenticating-to-mlflow on how to authenticate.'

const STATUS_OF_CODE: Record<string, number> = {
  BAD_REQUEST: 400,
  DEADLINE_EXCEEDED: 504,
  ENDPOINT_NOT_FOUND: 404,
  INTERNAL_ERROR: 500,
  INVALID_PARAMETER_VALUE: 400,
  PERMISSION_DENIED: 403,
  RESOURCE_ALREADY_EXISTS: 400,
  RESOURCE_DOES_NOT_EXIST: 404,
  TEMPORARILY_UNAVAILABLE: 503,
  UNAUTHENTICATED: 401,
}

/**
 * What MLflow 3.17 adds beside `error_code` in every error it raises (`sqlstate`, `error_class`),
 * derived from the code alone; its Python client keeps both on the exception it raises. Codes
 * without an entry get neither, as in MLflow. Only the refusals serve answers in MLflow's place
 * carry them: its own failures (upstream, store, a bug) are nothing MLflow would send.
 */
const CLASS_OF_CODE: Record<string, {error_class: string; sqlstate: string}> = {
  BAD_REQUEST: {error_class: 'INVALID_PARAMETER_VALUE', sqlstate: 'KAM00'},
  ENDPOINT_NOT_FOUND: {error_class: 'RESOURCE_NOT_FOUND', sqlstate: 'KAM00'},
  INTERNAL_ERROR: {error_class: 'CLIENT_INTERNAL_ERROR', sqlstate: 'XXM00'},
  INVALID_PARAMETER_VALUE: {error_class: 'INVALID_PARAMETER_VALUE', sqlstate: 'KAM00'},
  INVALID_STATE: {error_class: 'CLIENT_INTERNAL_ERROR', sqlstate: 'XXM00'},
  PERMISSION_DENIED: {error_class: 'PERMISSION_DENIED', sqlstate: 'KAM00'},
  RESOURCE_ALREADY_EXISTS: {error_class: 'RESOURCE_ALREADY_EXISTS', sqlstate: 'KAM00'},
  RESOURCE_DOES_NOT_EXIST: {error_class: 'RESOURCE_NOT_FOUND', sqlstate: 'KAM00'},
  TEMPORARILY_UNAVAILABLE: {error_class: 'CLIENT_INTERNAL_ERROR', sqlstate: 'XXM00'},
}

/** MLflow's JSON error body for a code and message, as 3.17 serializes it. */
function errorBody(code: string, message: string): MlflowErrorBody {
  const classes = CLASS_OF_CODE[code]
  return classes ? {error_code: code, message, sqlstate: classes.sqlstate, error_class: classes.error_class} : {error_code: code, message}
}

/** An MLflow JSON error: `{"error_code", "message"}` with MLflow's status for the code. */
export class ApiError extends Error {
  readonly status: number
  constructor(
    readonly code: string,
    message: string,
  ) {
    super(message)
    this.status = STATUS_OF_CODE[code] ?? 500
  }
}

/** A plain-text answer (MLflow answers 401, 403 and some 400s without JSON). */
export class PlainError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message)
  }
}

/** What refused a request, for the audit log only: the client's answer never says. */
export interface Denial {
  /** The level that decided, when a level did. */
  level?: string
  /** What the request needed of that level. */
  need?: string
  resource?: {id: string; type: string}
  rule: string
}

/** MLflow's 403: plain text, the same whatever was refused; `denial` is kept for the audit log. */
export class PermissionDenied extends PlainError {
  constructor(readonly denial?: Denial) {
    super(403, 'Permission denied')
  }
}

export function permissionDenied(denial?: Denial): PermissionDenied {
  return new PermissionDenied(denial)
}

export function missingParameter(name: string): ApiError {
  return new ApiError(
    'INVALID_PARAMETER_VALUE',
    `Missing value for required parameter '${name}'. See the API docs for more information about request parameters.`,
  )
}

export function sendJson(response: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  const payload = JSON.stringify(body)
  response.writeHead(status, {'content-length': Buffer.byteLength(payload), 'content-type': 'application/json', ...headers})
  response.end(payload)
}

export function sendText(response: ServerResponse, status: number, text: string, headers: Record<string, string> = {}): void {
  response.writeHead(status, {'content-length': Buffer.byteLength(text), 'content-type': 'text/html; charset=utf-8', ...headers})
  response.end(text)
}

export function sendUnauthenticated(response: ServerResponse): void {
  sendText(response, 401, UNAUTHENTICATED_TEXT, {'www-authenticate': 'Basic realm="mlflow"'})
}

/** How serve answers a request that failed, and what its log says about it. */
export interface ErrorAnswer {
  /** MLflow's JSON error, or plain text where MLflow answers without JSON. */
  body: MlflowErrorBody | string
  /** One line for serve's log when the failure is serve's or the upstream's, not the caller's. */
  log?: string
  status: number
}

/**
 * The one mapping from anything a request's handling can throw to its answer: the caller's
 * mistakes and refusals as MLflow words them; the upstream's failures as 503 (unreachable), 502
 * (broken answer) or 504 (no answer in time); an auth store that cannot be written as 503 (nothing
 * was changed; the log says why, clients are not told where the file is); anything else as 500,
 * logged, since it is a bug.
 */
export function errorAnswer(error: unknown): ErrorAnswer {
  if (error instanceof ApiError) return {body: errorBody(error.code, error.message), status: error.status}
  if (error instanceof PlainError) return {body: error.message, status: error.status}
  if (error instanceof UpstreamError) return {body: error.body, log: error.message, status: error.status}
  if (error instanceof StoreError) return errorAnswer(new ApiError(error.code, error.message))
  if (error instanceof StoreUnavailableError) return storeUnavailable('cannot take changes right now; this one was not made', error)
  if (error instanceof StoreFileError) return storeUnavailable('cannot be written right now; nothing was changed', error)

  return {
    body: {error_code: 'INTERNAL_ERROR', message: 'Internal error in mlflowctl serve.'},
    log: `${(error as Error | undefined)?.message ?? String(error)} (a bug in mlflowctl serve)`,
    status: 500,
  }
}

/** A change the auth store could not make: the client is told so, the log why. */
function storeUnavailable(what: string, error: Error): ErrorAnswer {
  return {
    body: {error_code: 'TEMPORARILY_UNAVAILABLE', message: `The auth store of mlflowctl serve ${what}. Its log says why.`},
    log: error.message,
    status: 503,
  }
}

export function sendError(response: ServerResponse, answer: ErrorAnswer): void {
  if (typeof answer.body === 'string') sendText(response, answer.status, answer.body)
  else sendJson(response, answer.status, answer.body)
}
