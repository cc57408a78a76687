/**
 * MLflow's answers, byte for byte where clients or tests match on them
 * (docs/mlflow-auth-contract.md, "Authentication" and "Errors and status codes").
 */
import {type ServerResponse} from 'node:http'

export const UNAUTHENTICATED_TEXT =
  'You are not authenticated. Please see https://www.mlflow.org/docs/latest/auth/index.html#authenticating-to-mlflow on how to authenticate.'

const STATUS_OF_CODE: Record<string, number> = {
  BAD_REQUEST: 400,
  ENDPOINT_NOT_FOUND: 404,
  INTERNAL_ERROR: 500,
  INVALID_PARAMETER_VALUE: 400,
  PERMISSION_DENIED: 403,
  RESOURCE_ALREADY_EXISTS: 400,
  RESOURCE_DOES_NOT_EXIST: 404,
  TEMPORARILY_UNAVAILABLE: 503,
  UNAUTHENTICATED: 401,
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

/** MLflow's 403, plain text, the same whatever was refused. */
export function permissionDenied(): PlainError {
  return new PlainError(403, 'Permission denied')
}

export function missingParameter(name: string): ApiError {
  return new ApiError('INVALID_PARAMETER_VALUE', `Missing value for required parameter '${name}'. See the API docs for more information about request parameters.`)
}

export function sendJson(response: ServerResponse, status: number, body: unknown): void {
  const payload = JSON.stringify(body)
  response.writeHead(status, {'content-length': Buffer.byteLength(payload), 'content-type': 'application/json'})
  response.end(payload)
}

export function sendText(response: ServerResponse, status: number, text: string, headers: Record<string, string> = {}): void {
  response.writeHead(status, {'content-length': Buffer.byteLength(text), 'content-type': 'text/html; charset=utf-8', ...headers})
  response.end(text)
}

export function sendUnauthenticated(response: ServerResponse): void {
  sendText(response, 401, UNAUTHENTICATED_TEXT, {'www-authenticate': 'Basic realm="mlflow"'})
}

export function sendError(response: ServerResponse, error: ApiError | PlainError): void {
  if (error instanceof ApiError) sendJson(response, error.status, {error_code: error.code, message: error.message})
  else sendText(response, error.status, error.message)
}
