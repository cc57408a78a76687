/**
 * The HTTP client for MLflow REST calls, sending requests the way MLflow's Python client does
 * (docs/client-credentials.md: "Basic or Bearer", "TLS", "Retries, backoff and timeouts",
 * "Requests and error answers"): same headers, same retry policy (urllib3's), same TLS settings,
 * and errors mapped to exit codes. No message, property or log ever carries a password, token or
 * header.
 *
 * ky runs each request: its retry loop (with urllib3's decision and wait, from retry.ts), its
 * per-attempt timeout, and hooks that authenticate every attempt. What ky cannot express is
 * written here, each with its reason: the response body gets a timeout of its own, and a test may
 * replace the wait between retries.
 */
import ky, {HTTPError, type Hooks, type KyRequest} from 'ky'
import {createRequire} from 'node:module'

import {UserError} from '../core/errors.js'
import {pythonQuote} from '../mlflow/resources.js'
import type {Connection} from './connection.js'
import {apiError, describeNetworkError, parseSuccess, unreachable} from './http-errors.js'
import {RETRY_AFTER_STATUSES, RETRY_STATUSES, type RetryEvent, type RetryWait, waitForAnswer, waitForFailure} from './retry.js'
import {createTransport, type Transport} from './transport.js'

export {MlflowApiError, type MlflowApiErrorOptions, whenEndpointMissing} from './http-errors.js'
export {backoffSeconds, parseRetryAfter, type RetryEvent} from './retry.js'

export type QueryScalar = boolean | number | string
export type Query = Record<string, QueryScalar | QueryScalar[] | null | undefined>
type Json = Record<string, unknown>

export interface MlflowHttpOptions {
  /** Called when a request starts (with its retries); the returned function when it ends. */
  onRequest?: (request: {host: string; method: string; path: string}) => () => void
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

/** Every method may be retried: MLflow's client retries POST and PATCH too. */
const ALL_METHODS = ['get', 'post', 'put', 'patch', 'delete', 'head', 'options', 'trace']
/** Answers ky must throw for, so that its retry loop sees them; shouldRetry decides. */
const RETRY_CANDIDATES = new Set([...RETRY_STATUSES, ...RETRY_AFTER_STATUSES])
/** setTimeout's limit, which ky enforces on its timeout. */
const MAX_TIMEOUT_MS = 2_147_483_647

/** The user agent of every request: mlflowctl/<package version>. */
export function defaultUserAgent(): string {
  // package.json is two levels up from both src/client and dist/client.
  const {version} = createRequire(import.meta.url)('../../package.json') as {version: string}
  return `mlflowctl/${version}`
}

/** What one request learned across its attempts. */
interface Attempts {
  /** Retries made so far. */
  retries: number
  /** The body of the latest answer. */
  text: string
  /** The wait before the retry ky is about to make. */
  wait?: RetryWait
}

export function createMlflowHttp(connection: Connection, options: MlflowHttpOptions = {}): MlflowHttp {
  return new HttpClient(connection, options)
}

/** One per connection: the TLS transport and the SigV4 signer are made on first use and kept. */
class HttpClient implements MlflowHttp {
  private readonly redact: (text: string) => string
  private signer: Promise<Signer> | undefined
  private readonly timeoutMs: number
  private transport: Promise<Transport | undefined> | undefined
  private readonly userAgent: string

  constructor(
    readonly connection: Connection,
    private readonly options: MlflowHttpOptions,
  ) {
    this.userAgent = options.userAgent ?? defaultUserAgent()
    const secrets = secretValues(connection)
    this.redact = (text) => secrets.reduce((result, secret) => result.replaceAll(secret, '***'), text)
    this.timeoutMs = Math.min(connection.timeoutSeconds * 1000, MAX_TIMEOUT_MS)
  }

  async close(): Promise<void> {
    const current = this.transport
    this.transport = undefined
    await (await current?.catch(() => undefined))?.close()
  }

  delete<T = Json>(path: string, body?: unknown): Promise<T> {
    return this.request('DELETE', path, undefined, body)
  }

  get<T = Json>(path: string, query?: Query): Promise<T> {
    return this.request('GET', path, query, undefined)
  }

  patch<T = Json>(path: string, body?: unknown): Promise<T> {
    return this.request('PATCH', path, undefined, body)
  }

  post<T = Json>(path: string, body?: unknown): Promise<T> {
    return this.request('POST', path, undefined, body)
  }

  private async request<T>(method: string, path: string, query: Query | undefined, body: unknown): Promise<T> {
    const {connection, redact} = this
    const url = buildUrl(connection.host.value, path, query)
    const bodyText = method === 'GET' ? undefined : JSON.stringify(body ?? {})
    const headers = this.headers(path, bodyText !== undefined)
    this.transport ??= createTransport(connection)
    const fetchImpl = (await this.transport)?.fetch
    const authenticate = await this.authenticator({body: bodyText, headers, method, url})
    const attempts: Attempts = {retries: 0, text: ''}
    const done = this.options.onRequest?.({host: url.host, method, path})
    let response: Response
    try {
      response = await ky(url.href, {
        body: bodyText,
        fetch: fetchImpl,
        headers,
        hooks: {
          afterResponse: [
            async (_request, _options, answer) => {
              attempts.text = await readBody(answer, this.timeoutMs)
            },
          ],
          beforeRequest: [authenticate],
        },
        method,
        redirect: connection.followRedirects ? 'follow' : 'manual',
        retry: {
          delay: () => (this.options.sleep ? 0 : attempts.wait!.seconds * 1000),
          limit: connection.retry.maxRetries,
          methods: ALL_METHODS,
          shouldRetry: ({error, retryCount}) => this.shouldRetry(attempts, error, retryCount, {method, path}),
        },
        throwHttpErrors: (status) => RETRY_CANDIDATES.has(status),
        timeout: this.timeoutMs,
      })
    } catch (error) {
      if (error instanceof UserError) throw error
      if (!(error instanceof HTTPError)) throw unreachable(connection, describeNetworkError(error, connection), attempts.retries, redact)
      response = error.response
    } finally {
      done?.()
    }

    // The body was read by the afterResponse hook.
    void response.body?.cancel().catch(() => {})
    // Only 200 is success for MLflow's client (verify_rest_response).
    if (response.status === 200) return parseSuccess<T>(attempts.text, connection, method, path, redact)
    throw apiError(connection, response.status, attempts.text, {method, path, retries: attempts.retries}, redact)
  }

  private headers(path: string, hasBody: boolean): Record<string, string> {
    const headers: Record<string, string> = {'User-Agent': this.userAgent}
    if (hasBody) headers['Content-Type'] = 'application/json'
    // Workspace admin endpoints carry the workspace in the path; MLflow omits the header there.
    if (this.connection.workspace && !path.includes('/mlflow/workspaces')) headers['X-MLFLOW-WORKSPACE'] = this.connection.workspace.value
    return headers
  }

  /** ky's beforeRequest hook: Basic or Bearer, or a SigV4 signature (made per attempt: it covers x-amz-date). */
  private async authenticator(signed: SignableRequest): Promise<NonNullable<Hooks['beforeRequest']>[number]> {
    const {connection} = this
    if (connection.auth === 'sigv4') {
      this.signer ??= import('./sigv4.js').then(({createSigV4Signer}) => createSigV4Signer(connection.sigv4!))
      const sign = await this.signer
      return async (request: KyRequest) => new Request(request, {headers: withoutHost(await sign(signed))})
    }

    const authorization = authorizationHeader(connection)
    return (request: KyRequest) => {
      if (authorization) request.headers.set('Authorization', authorization)
    }
  }

  /**
   * ky's shouldRetry: urllib3's decision and wait for this failure, announced before the wait.
   * A test's `sleep` waits here, and ky's own wait is then 0.
   */
  private async shouldRetry(attempts: Attempts, error: Error, retry: number, request: {method: string; path: string}): Promise<boolean> {
    attempts.wait = this.nextWait(error, retry)
    if (!attempts.wait) return false
    if (error instanceof HTTPError) void error.response.body?.cancel().catch(() => {})
    attempts.retries = retry
    const {reason, seconds, source, status} = attempts.wait
    this.options.onRetry?.({delaySeconds: seconds, delaySource: source, method: request.method, path: request.path, reason, retry, status})
    await this.options.sleep?.(seconds * 1000)
    return true
  }

  private nextWait(error: Error, retry: number): RetryWait | undefined {
    const {connection} = this
    if (error instanceof HTTPError) return waitForAnswer(error.response.status, error.response.headers.get('retry-after'), retry, connection.retry)
    if (error instanceof UserError) return undefined
    const problem = describeNetworkError(error, connection)
    return problem.retryable ? waitForFailure(this.redact(problem.reason), retry, connection.retry) : undefined
  }
}

interface SignableRequest {
  body?: string
  headers: Record<string, string>
  method: string
  url: URL
}

type Signer = (request: SignableRequest) => Promise<Record<string, string>>

function authorizationHeader(connection: Connection): string | undefined {
  if (connection.auth === 'basic') return `Basic ${Buffer.from(`${connection.username!.value}:${connection.password!.value}`, 'utf8').toString('base64')}`
  if (connection.auth === 'bearer') return `Bearer ${connection.token!.value}`
  return undefined
}

/**
 * The body, within the timeout. ky's timeout ends when the headers arrive, but MLflow's read
 * timeout also covers the body, so a server that stalls mid-body is retried like one that never
 * answers.
 */
async function readBody(response: Response, timeoutMs: number): Promise<string> {
  let timer: NodeJS.Timeout | undefined
  const expired = new Promise<never>((_resolve, reject) => {
    timer = setTimeout(() => reject(new DOMException('The response body did not arrive in time', 'TimeoutError')), timeoutMs)
  })
  try {
    return await Promise.race([response.text(), expired])
  } finally {
    clearTimeout(timer)
  }
}

/** Tracking URI minus one trailing slash, plus the path (a path prefix in the URI is kept). */
function buildUrl(host: string, path: string, query: Query | undefined): URL {
  let url = (host.endsWith('/') ? host.slice(0, -1) : host) + path
  const parts: string[] = []
  for (const [key, value] of Object.entries(query ?? {})) {
    if (value === undefined || value === null) continue
    // Lists become repeated keys, as requests encodes them; the RFC 3986 encoding is also the
    // SigV4 canonical query's, so what is signed is what is sent.
    for (const item of Array.isArray(value) ? value : [value]) parts.push(`${pythonQuote(key)}=${pythonQuote(String(item))}`)
  }

  if (parts.length > 0) url += (url.includes('?') ? '&' : '?') + parts.join('&')
  return new URL(url)
}

function withoutHost(headers: Record<string, string>): Record<string, string> {
  const {host: _host, ...rest} = headers
  return rest
}

/** Every form a secret could take in text, longest first so no fragment survives. */
function secretValues(connection: Connection): string[] {
  const values = [
    connection.password?.value,
    connection.token?.value,
    connection.sigv4?.credentials?.secretAccessKey,
    connection.sigv4?.credentials?.sessionToken,
  ]
  if (connection.username && connection.password)
    values.push(Buffer.from(`${connection.username.value}:${connection.password.value}`, 'utf8').toString('base64'))
  return values.filter((value): value is string => Boolean(value) && value!.length >= 3).sort((a, b) => b.length - a.length)
}
