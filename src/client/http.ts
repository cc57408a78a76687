/**
 * The HTTP client for MLflow REST calls, sending requests the way MLflow's Python client does
 * (docs/client-credentials.md: "Basic or Bearer", "TLS", "Retries, backoff and timeouts",
 * "Requests and error answers"): same headers, same retry policy (urllib3's), same TLS settings,
 * and errors mapped to exit codes. No message, property or log ever carries a password, token or
 * header.
 */
import ky from 'ky'
import {readFile} from 'node:fs/promises'
import {STATUS_CODES} from 'node:http'
import {createRequire} from 'node:module'
import {setTimeout as delay} from 'node:timers/promises'

import {ExitCode, type ExitCodeValue, UserError} from '../core/errors.js'
import type {Connection, Sourced} from './connection.js'

export type QueryScalar = boolean | number | string
export type Query = Record<string, QueryScalar | QueryScalar[] | null | undefined>
type Json = Record<string, unknown>

export interface RetryEvent {
  /** Seconds waited before the retry. */
  delaySeconds: number
  /** Whether the wait came from the server's Retry-After header or from the backoff formula. */
  delaySource: 'backoff' | 'retry-after'
  method: string
  path: string
  /** What failed: `HTTP 503`, `timeout`, or the connection error. */
  reason: string
  /** 1 for the first retry. */
  retry: number
  status?: number
}

export interface MlflowHttpOptions {
  /** Called before each retry, e.g. for --verbose output. */
  onRetry?: (event: RetryEvent) => void
  /** Waits between retries; tests pass one that does not sleep. */
  sleep?: (ms: number) => Promise<void>
  /** Defaults to mlflowctl/<package version>. */
  userAgent?: string
}

export interface MlflowHttp {
  /** Releases pooled TLS connections; safe to call more than once. */
  close(): Promise<void>
  readonly connection: Connection
  delete<T = Json>(path: string, body?: unknown): Promise<T>
  get<T = Json>(path: string, query?: Query): Promise<T>
  patch<T = Json>(path: string, body?: unknown): Promise<T>
  post<T = Json>(path: string, body?: unknown): Promise<T>
}

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

/** MLflow's _TRANSIENT_FAILURE_RESPONSE_CODES. */
const RETRY_STATUSES = new Set([408, 429, 500, 502, 503, 504])
/** urllib3 Retry.RETRY_AFTER_STATUS_CODES: retried too when they carry Retry-After. */
const RETRY_AFTER_STATUSES = new Set([413, 429, 503])
/** urllib3 DEFAULT_BACKOFF_MAX and DEFAULT_RETRY_AFTER_MAX, seconds. */
const BACKOFF_MAX = 120
const RETRY_AFTER_MAX = 21_600
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

/** urllib3 Retry.get_backoff_time: before retry n, 0 if n ≤ 1, else factor·2^(n−1) + jitter, capped. */
export function backoffSeconds(retry: number, factor: number, jitter: number, random: () => number = Math.random): number {
  if (retry <= 1) return 0
  let value = factor * 2 ** (retry - 1)
  if (jitter !== 0) value += random() * jitter
  return Math.max(0, Math.min(BACKOFF_MAX, value))
}

/** Retry-After as seconds (delta or HTTP date), as urllib3 parses it; undefined when unusable. */
export function parseRetryAfter(value: string, now: number = Date.now()): number | undefined {
  let seconds: number
  if (/^\s*\d+\s*$/.test(value)) {
    seconds = Number(value.trim())
  } else {
    const date = Date.parse(value)
    if (Number.isNaN(date)) return undefined
    seconds = (date - now) / 1000
  }

  return Math.min(Math.max(seconds, 0), RETRY_AFTER_MAX)
}

interface Transport {
  close(): Promise<void>
  fetch: typeof fetch
}

export function createMlflowHttp(connection: Connection, options: MlflowHttpOptions = {}): MlflowHttp {
  const userAgent = options.userAgent ?? defaultUserAgent()
  const sleep = options.sleep ?? ((ms: number) => delay(ms))
  const secrets = secretValues(connection)
  const redact = (text: string): string => secrets.reduce((result, secret) => result.replaceAll(secret, '***'), text)
  let transport: Promise<Transport | undefined> | undefined
  let signer: Promise<(request: {body?: string; headers: Record<string, string>; method: string; url: URL}) => Promise<Record<string, string>>> | undefined

  const authorization = (): string | undefined => {
    if (connection.auth === 'basic') return `Basic ${Buffer.from(`${connection.username!.value}:${connection.password!.value}`, 'utf8').toString('base64')}`
    if (connection.auth === 'bearer') return `Bearer ${connection.token!.value}`
    return undefined
  }

  async function request<T>(method: string, path: string, query: Query | undefined, body: unknown): Promise<T> {
    const url = buildUrl(connection.host.value, path, query)
    const bodyText = method === 'GET' ? undefined : JSON.stringify(body ?? {})
    const headers: Record<string, string> = {'User-Agent': userAgent}
    if (bodyText !== undefined) headers['Content-Type'] = 'application/json'
    // Workspace admin endpoints carry the workspace in the path; MLflow omits the header there.
    if (connection.workspace && !path.includes('/mlflow/workspaces')) headers['X-MLFLOW-WORKSPACE'] = connection.workspace.value
    const auth = authorization()
    if (auth) headers.Authorization = auth

    transport ??= createTransport(connection)
    const fetchImpl = (await transport)?.fetch
    let sign: Awaited<NonNullable<typeof signer>> | undefined
    if (connection.auth === 'sigv4') {
      signer ??= import('./sigv4.js').then(({createSigV4Signer}) => createSigV4Signer(connection.sigv4!))
      sign = await signer
    }

    const {maxRetries, backoffFactor, backoffJitter, respectRetryAfter} = connection.retry
    for (let retries = 0; ; ) {
      // Signed per attempt: the signature covers x-amz-date.
      const sent = sign ? withoutHost(await sign({body: bodyText, headers, method, url})) : headers
      let response: Response
      let text: string
      try {
        response = await ky(url.href, {
          body: bodyText,
          fetch: fetchImpl,
          headers: sent,
          method,
          redirect: connection.followRedirects ? 'follow' : 'manual',
          retry: 0,
          // Per attempt, covering the body too: MLflow's timeout is per connect/read, not total.
          signal: AbortSignal.timeout(connection.timeoutSeconds * 1000),
          throwHttpErrors: false,
          timeout: false,
        })
        text = await response.text()
      } catch (error) {
        if (error instanceof UserError) throw error
        const problem = describeNetworkError(error, connection)
        if (!problem.retryable || retries >= maxRetries) throw unreachable(connection, problem, retries, redact)
        retries++
        const seconds = backoffSeconds(retries, backoffFactor, backoffJitter)
        options.onRetry?.({delaySeconds: seconds, delaySource: 'backoff', method, path, reason: redact(problem.reason), retry: retries})
        await sleep(seconds * 1000)
        continue
      }

      const retryAfter = response.headers.get('retry-after')
      const retryable = RETRY_STATUSES.has(response.status) || (respectRetryAfter && retryAfter !== null && RETRY_AFTER_STATUSES.has(response.status))
      if (retryable && retries < maxRetries) {
        retries++
        // urllib3 sleeps for a positive Retry-After on any retried status, else backs off.
        const after = respectRetryAfter && retryAfter !== null ? parseRetryAfter(retryAfter) : undefined
        const fromHeader = after !== undefined && after > 0
        const seconds = fromHeader ? after : backoffSeconds(retries, backoffFactor, backoffJitter)
        options.onRetry?.({delaySeconds: seconds, delaySource: fromHeader ? 'retry-after' : 'backoff', method, path, reason: `HTTP ${response.status}`, retry: retries, status: response.status})
        await sleep(seconds * 1000)
        continue
      }

      // Only 200 is success for MLflow's client (verify_rest_response).
      if (response.status === 200) return parseSuccess<T>(text, connection, method, path, redact)
      throw apiError(connection, response.status, text, {method, path, retries}, redact)
    }
  }

  return {
    async close() {
      const current = transport
      transport = undefined
      await (await current?.catch(() => undefined))?.close()
    },
    connection,
    delete: (path, body) => request('DELETE', path, undefined, body),
    get: (path, query) => request('GET', path, query, undefined),
    patch: (path, body) => request('PATCH', path, undefined, body),
    post: (path, body) => request('POST', path, undefined, body),
  }
}

function defaultUserAgent(): string {
  // package.json is two levels up from both src/client and dist/client.
  const {version} = createRequire(import.meta.url)('../../package.json') as {version: string}
  return `mlflowctl/${version}`
}

/** Tracking URI minus one trailing slash, plus the path (a path prefix in the URI is kept). */
function buildUrl(host: string, path: string, query: Query | undefined): URL {
  let url = (host.endsWith('/') ? host.slice(0, -1) : host) + path
  const parts: string[] = []
  for (const [key, value] of Object.entries(query ?? {})) {
    if (value === undefined || value === null) continue
    // Lists become repeated keys, as requests encodes them.
    for (const item of Array.isArray(value) ? value : [value]) parts.push(`${rfc3986(key)}=${rfc3986(String(item))}`)
  }

  if (parts.length > 0) url += (url.includes('?') ? '&' : '?') + parts.join('&')
  return new URL(url)
}

/** Percent-encoding that matches the SigV4 canonical query, so what is signed is what is sent. */
function rfc3986(value: string): string {
  return encodeURIComponent(value).replaceAll(/[!'()*]/g, (char) => `%${char.charCodeAt(0).toString(16).toUpperCase()}`)
}

function withoutHost(headers: Record<string, string>): Record<string, string> {
  const {host: _host, ...rest} = headers
  return rest
}

/** TLS settings need their own connection pool: an undici Agent, used with undici's own fetch. */
async function createTransport(connection: Connection): Promise<Transport | undefined> {
  const {tls} = connection
  if (!tls.insecure && !tls.serverCertPath && !tls.clientCertPath) return undefined
  const connect: {ca?: Buffer; cert?: Buffer; key?: Buffer; rejectUnauthorized?: boolean} = {}
  if (tls.serverCertPath) connect.ca = await readPem(tls.serverCertPath)
  if (tls.clientCertPath) {
    const pem = await readPem(tls.clientCertPath)
    if (!/-----BEGIN [A-Z ]*PRIVATE KEY-----/.test(pem.toString('latin1'))) {
      throw new UserError(`${tls.clientCertPath.source} (${tls.clientCertPath.value}) has no private key`, {
        code: 'INVALID_CLIENT_CERT',
        exit: ExitCode.Usage,
        hint: 'Give one PEM file with the client certificate followed by its unencrypted private key, as MLflow (Python requests) expects.',
      })
    }

    // One PEM holds both; Node picks the certificate and the key blocks out of it.
    connect.cert = pem
    connect.key = pem
  }

  if (tls.insecure) connect.rejectUnauthorized = false
  const undici = await import('undici')
  const agent = new undici.Agent({connect})
  // ky hands over a global Request, which undici's fetch does not recognise: pass its parts instead.
  const fetchWithAgent = async (input: Request): Promise<Response> => {
    const body = input.method === 'GET' || input.method === 'HEAD' ? undefined : await input.arrayBuffer()
    const response = await undici.fetch(input.url, {body, dispatcher: agent, headers: [...input.headers], method: input.method, redirect: input.redirect, signal: input.signal})
    return response as unknown as Response
  }

  return {close: () => agent.close(), fetch: fetchWithAgent as typeof fetch}
}

async function readPem(path: Sourced): Promise<Buffer> {
  try {
    return await readFile(path.value)
  } catch (error) {
    throw new UserError(`Cannot read ${path.source} (${path.value}): ${(error as Error).message}`, {code: 'INVALID_CERT_PATH', exit: ExitCode.Usage, hint: `Fix or unset ${path.source}.`})
  }
}

function parseSuccess<T>(text: string, connection: Connection, method: string, path: string, redact: (text: string) => string): T {
  const trimmed = text.trim()
  // MLflow's client treats an empty body, or Armeria's literal "200 OK", as {}.
  if (trimmed === '' || trimmed === '200 OK') return {} as T
  const json = parseJsonObject(text)
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

function parseJsonObject(text: string): Json | undefined {
  try {
    const value: unknown = JSON.parse(text)
    return value !== null && typeof value === 'object' && !Array.isArray(value) ? (value as Json) : undefined
  } catch {
    return undefined
  }
}

function excerpt(text: string): string {
  const collapsed = text.replaceAll(/\s+/g, ' ').trim()
  return collapsed.length > 200 ? `${collapsed.slice(0, 200)}…` : collapsed
}

/** Builds the error for a non-200 answer, as MLflow's RestException/MlflowException word it. */
function apiError(connection: Connection, status: number, text: string, request: {method: string; path: string; retries: number}, redact: (text: string) => string): MlflowApiError {
  const json = parseJsonObject(text)
  let errorCode: string | undefined
  let message: string
  if (json) {
    const raw = json.error_code
    // A numeric code (from a proxy) maps through the status table, as MLflow does.
    errorCode = typeof raw === 'string' && raw !== '' ? (/^\d+$/.test(raw) ? STATUS_TO_ERROR_CODE[Number(raw)] ?? raw : raw) : undefined
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
      return `The server answered ${status}${after}. Try again later, or check the server's logs; MLFLOW_HTTP_REQUEST_MAX_RETRIES sets the retries.`
    }

    default: {
      // Only reachable for a redirect when following them is off.
      return status >= 300 && status < 400 ? 'The server answered with a redirect, and MLFLOW_ALLOW_HTTP_REDIRECTS=false turns following redirects off.' : undefined
    }
  }
}

interface NetworkProblem {
  kind: 'network' | 'timeout' | 'tls'
  reason: string
  retryable: boolean
}

function describeNetworkError(error: unknown, connection: Connection): NetworkProblem {
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
  const fetchFailure = error instanceof TypeError && cause !== undefined
  return {kind: 'network', reason, retryable: fetchFailure}
}

function unreachable(connection: Connection, problem: NetworkProblem, retries: number, redact: (text: string) => string): UserError {
  const after = retries > 0 ? ` (after ${retries} ${retries === 1 ? 'retry' : 'retries'})` : ''
  const where = `${connection.host.value}`
  const hints: Record<NetworkProblem['kind'], string> = {
    network: `Check the address (from ${connection.trackingUri.source}; set it with --tracking-uri or MLFLOW_TRACKING_URI) and that the server is running.`,
    timeout: `The server did not answer in time: check the address (from ${connection.trackingUri.source}; --tracking-uri or MLFLOW_TRACKING_URI), or raise MLFLOW_HTTP_REQUEST_TIMEOUT (now ${connection.timeoutSeconds} s).`,
    tls: 'The TLS handshake failed: set MLFLOW_TRACKING_SERVER_CERT_PATH to the CA bundle that signed the server certificate (or, for testing only, MLFLOW_TRACKING_INSECURE_TLS=true); for mutual TLS, MLFLOW_TRACKING_CLIENT_CERT_PATH.',
  }
  return new UserError(redact(`Could not reach MLflow at ${where}: ${problem.reason}${after}`), {
    code: problem.kind === 'timeout' ? 'TIMEOUT' : problem.kind === 'tls' ? 'TLS_ERROR' : 'UNAVAILABLE',
    exit: ExitCode.Unavailable,
    hint: hints[problem.kind],
  })
}

/** Every form a secret could take in text, longest first so no fragment survives. */
function secretValues(connection: Connection): string[] {
  const values = [connection.password?.value, connection.token?.value, connection.sigv4?.credentials?.secretAccessKey, connection.sigv4?.credentials?.sessionToken]
  if (connection.username && connection.password) values.push(Buffer.from(`${connection.username.value}:${connection.password.value}`, 'utf8').toString('base64'))
  return values.filter((value): value is string => Boolean(value) && value!.length >= 3).sort((a, b) => b.length - a.length)
}
