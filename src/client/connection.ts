/**
 * Resolves everything needed to talk to an MLflow server, the way MLflow's Python client does
 * (docs/client-credentials.md), and records where each value came from for `status` and error
 * hints. Plain module: it reads no files and no process state; the caller injects env and file
 * contents.
 */
import {ExitCode, UserError} from '../core/errors.js'
import {resolveDatabricks} from './databricks-connection.js'
import {assertHeaderSafe, invalidEnv, LOGIN_HINT, readBool, readFloat, readInt} from './env.js'

export {databricksProfileSelection} from './databricks-connection.js'
export {CREDENTIAL_ENV} from './env.js'

/** A resolved value and a short human description of where it came from. */
export interface Sourced<T = string> {
  source: string
  value: T
}

export type AuthScheme = 'basic' | 'bearer' | 'none' | 'sigv4'

export interface ConnectionInput {
  /** ~/.mlflow/credentials [mlflow], already parsed; `token`: the stored login's access token (mlflowctl's own, not MLflow's). */
  credentialsFile?: {password?: string; path: string; token?: string; username?: string}
  /** The ~/.databrickscfg profile for a databricks URI (see databricksProfileSelection). */
  databricksProfile?: {path: string; profile: string; values: Record<string, string>}
  env: NodeJS.ProcessEnv
  /** --retries and --timeout replace MLFLOW_HTTP_REQUEST_MAX_RETRIES and MLFLOW_HTTP_REQUEST_TIMEOUT. */
  flags: {retries?: number; timeout?: number; trackingUri?: string; workspace?: string}
  /** mlflowctl's stored profile: MLflow itself never remembers a URI. */
  profile?: {name: string; trackingUri?: string; workspace?: string}
}

export interface TlsSettings {
  /** PEM with the client certificate and its key (Python requests' `cert=`). */
  clientCertPath?: Sourced
  insecure: boolean
  /** CA bundle that replaces the default trust store. */
  serverCertPath?: Sourced
}

export interface RetrySettings {
  backoffFactor: number
  backoffJitter: number
  /** Retries, not attempts. */
  maxRetries: number
  respectRetryAfter: boolean
}

export interface SigV4Settings {
  /** Static credentials from the injected environment; absent → the standard AWS chain. */
  credentials?: {accessKeyId: string; secretAccessKey: string; sessionToken?: string; source: string}
  /** AWS_PROFILE from the injected environment, for the AWS chain. */
  profile?: string
  region: Sourced
  service: 'execute-api'
}

export interface Connection {
  auth: AuthScheme
  /** MLFLOW_TRACKING_AUTH: a Python plugin, never run by mlflowctl. */
  authPlugin?: Sourced
  /** Follow HTTP redirects (MLFLOW_ALLOW_HTTP_REDIRECTS). */
  followRedirects: boolean
  /** The http(s) base URL requests go to: the tracking URI, or a Databricks host. */
  host: Sourced
  kind: 'databricks' | 'http'
  password?: Sourced
  retry: RetrySettings
  /** Where the number of retries came from: --retries, the variable, or MLflow's default. */
  retriesSource: string
  sigv4?: SigV4Settings
  timeoutSeconds: number
  /** Where the timeout came from: --timeout, the variable, or MLflow's default. */
  timeoutSource: string
  tls: TlsSettings
  token?: Sourced
  trackingUri: Sourced
  username?: Sourced
  warnings: string[]
  /** Sent as X-MLFLOW-WORKSPACE. */
  workspace?: Sourced
}

/**
 * The tracking URI: --tracking-uri > MLFLOW_TRACKING_URI > the stored profile
 * (docs/client-credentials.md, "Tracking URI").
 */
export function resolveTrackingUri(input: Pick<ConnectionInput, 'env' | 'flags' | 'profile'>): Sourced {
  const candidates: Array<[string | undefined, string]> = [
    [input.flags.trackingUri, '--tracking-uri'],
    [input.env.MLFLOW_TRACKING_URI, 'MLFLOW_TRACKING_URI'],
    [input.profile?.trackingUri, `profile ${input.profile?.name}`],
  ]
  for (const [value, source] of candidates) {
    if (value) return {source, value}
  }

  throw new UserError('No MLflow tracking server is configured', {code: 'NO_TRACKING_URI', exit: ExitCode.Usage, hint: LOGIN_HINT})
}

export function resolveConnection(input: ConnectionInput): Connection {
  const {env} = input
  const warnings: string[] = []
  const trackingUri = resolveTrackingUri(input)
  const kind = classifyTrackingUri(trackingUri)

  const retry = resolveRetry(env, input.flags.retries)
  const retriesSource = input.flags.retries === undefined ? sourceOf(env, 'MLFLOW_HTTP_REQUEST_MAX_RETRIES') : '--retries'
  const timeoutSeconds = input.flags.timeout ?? readInt(env, 'MLFLOW_HTTP_REQUEST_TIMEOUT', 120)
  const timeoutSource = input.flags.timeout === undefined ? sourceOf(env, 'MLFLOW_HTTP_REQUEST_TIMEOUT') : '--timeout'
  if (timeoutSeconds <= 0) {
    if (input.flags.timeout !== undefined) throw usageValue('--timeout', 'a number of seconds greater than 0', input.flags.timeout)
    throw invalidEnv('MLFLOW_HTTP_REQUEST_TIMEOUT', env.MLFLOW_HTTP_REQUEST_TIMEOUT, 'a number of seconds greater than 0')
  }

  // MLflow reads this one leniently: anything but true/1 means false.
  const followRedirects = ['1', 'true'].includes((env.MLFLOW_ALLOW_HTTP_REDIRECTS ?? 'true').toLowerCase())
  const workspace = resolveWorkspace(input)
  if (workspace) assertHeaderSafe(workspace)
  const common = {followRedirects, retriesSource, retry, timeoutSeconds, timeoutSource, trackingUri, warnings, workspace}

  if (kind === 'databricks') return {...common, ...resolveDatabricks(input, trackingUri, warnings)}
  assertHttpUri(trackingUri)
  return {...common, ...resolveHttpAuth(input, warnings), host: trackingUri, kind: 'http', tls: resolveTls(env)}
}

/** Credentials for an http(s) server: Basic, Bearer or SigV4, and the plugin MLflow would load. */
function resolveHttpAuth(input: ConnectionInput, warnings: string[]): Pick<Connection, 'auth' | 'authPlugin' | 'password' | 'sigv4' | 'token' | 'username'> {
  const {env} = input
  const username = firstSet(env, 'MLFLOW_TRACKING_USERNAME', input.credentialsFile?.username, input.credentialsFile?.path)
  const password = firstSet(env, 'MLFLOW_TRACKING_PASSWORD', input.credentialsFile?.password, input.credentialsFile?.path)
  const token = firstSet(env, 'MLFLOW_TRACKING_TOKEN', input.credentialsFile?.token, input.credentialsFile?.path)
  const sigv4On = readBool(env, 'MLFLOW_TRACKING_AWS_SIGV4', false)
  const authPlugin = env.MLFLOW_TRACKING_AUTH ? {source: 'MLFLOW_TRACKING_AUTH', value: env.MLFLOW_TRACKING_AUTH} : undefined

  const hasBasic = username !== undefined && password !== undefined
  let auth: AuthScheme = hasBasic ? 'basic' : token ? 'bearer' : 'none'

  if (!hasBasic && (username || password)) {
    const [set, missing] = username ? [`username (from ${username.source})`, 'password'] : [`password (from ${password!.source})`, 'username']
    const effect = token ? 'the token is sent instead' : 'no credentials are sent'
    warnings.push(`A ${set} is set but no ${missing}: ${effect}, as MLflow does. Set MLFLOW_TRACKING_${missing.toUpperCase()} or run \`mlflowctl login\`.`)
  }

  let sigv4: SigV4Settings | undefined
  if (sigv4On) {
    // SigV4 replaces the Authorization header and takes priority over plugins
    // (docs/client-credentials.md, "SigV4").
    sigv4 = resolveSigV4(env)
    if (auth !== 'none')
      warnings.push(
        `MLFLOW_TRACKING_AWS_SIGV4 is on: requests are signed with AWS SigV4 and the ${auth === 'basic' ? 'username/password are' : 'token is'} not used, as MLflow does.`,
      )
    if (authPlugin) warnings.push(`MLFLOW_TRACKING_AUTH=${authPlugin.value} is ignored: MLFLOW_TRACKING_AWS_SIGV4 takes priority, as in MLflow.`)
    auth = 'sigv4'
  } else if (authPlugin) {
    auth = checkAuthPlugin(authPlugin.value, auth, token !== undefined, warnings)
  }

  if (hasBasic && token && auth === 'basic') {
    warnings.push(
      `Both a username/password (${describeSources(username, password)}) and MLFLOW_TRACKING_TOKEN are set: Basic is used, as MLflow does, and the token is ignored.`,
    )
  }

  // A bad header value would fail inside fetch with the value in the message: stop it here.
  if (token && auth === 'bearer') assertHeaderSafe(token)
  return {auth, authPlugin, password, sigv4, token, username}
}

/**
 * A Python request-auth plugin cannot run here. The built-in ones only add Authorization when it is
 * absent, so with Basic/Bearer configured Python sends the same header we do; without them Python
 * would send the plugin's token, which we cannot produce: refuse rather than go unauthenticated.
 */
function checkAuthPlugin(name: string, auth: AuthScheme, hasToken: boolean, warnings: string[]): AuthScheme {
  const kubernetes = name === 'kubernetes' || name === 'kubernetes-namespaced'
  // Recent MLflow (3.17) skips Basic under the kubernetes plugins and sends the pod's token instead.
  if (kubernetes && auth === 'basic' && !hasToken) {
    throw new UserError(
      `MLFLOW_TRACKING_AUTH=${name}: MLflow ignores the username/password with this plugin and sends the Kubernetes service-account token, which mlflowctl cannot read`,
      {
        code: 'UNSUPPORTED_AUTH_PLUGIN',
        exit: ExitCode.Usage,
        hint: 'Set MLFLOW_TRACKING_TOKEN to the token (e.g. `kubectl create token <service-account>`), or unset MLFLOW_TRACKING_AUTH to use the username/password.',
      },
    )
  }

  if (auth === 'basic' || auth === 'bearer') {
    const sent = kubernetes ? 'the token from MLFLOW_TRACKING_TOKEN' : auth === 'basic' ? 'the username/password' : 'the token from MLFLOW_TRACKING_TOKEN'
    warnings.push(
      `MLFLOW_TRACKING_AUTH=${name} names a Python plugin that mlflowctl cannot run; it is ignored and ${sent} is sent, which is what MLflow sends too (its plugins only add Authorization when none is set).`,
    )
    return kubernetes ? 'bearer' : auth
  }

  throw new UserError(`MLFLOW_TRACKING_AUTH=${name} names a Python request-auth plugin, which mlflowctl cannot run, and no other credentials are configured`, {
    code: 'UNSUPPORTED_AUTH_PLUGIN',
    exit: ExitCode.Usage,
    hint: 'Set MLFLOW_TRACKING_TOKEN to a token the plugin would send, or MLFLOW_TRACKING_USERNAME and MLFLOW_TRACKING_PASSWORD (or run `mlflowctl login`), and unset MLFLOW_TRACKING_AUTH.',
  })
}

function classifyTrackingUri(uri: Sourced): 'databricks' | 'http' {
  const {value} = uri
  const scheme = /^([a-z][a-z\d+.-]*):/i.exec(value)?.[1].toLowerCase()
  if (value.toLowerCase() === 'databricks' || scheme === 'databricks') return 'databricks'
  if (scheme === 'http' || scheme === 'https') return 'http'

  const base = scheme?.split('+')[0]
  // One letter is a Windows drive (C:\mlruns), i.e. a path.
  if (scheme === undefined || scheme.length === 1 || ['file', 'mssql', 'mysql', 'postgresql', 'sqlite'].includes(base!)) {
    const guess = scheme === undefined ? suggestServerUrl(value) : undefined
    throw new UserError(
      guess
        ? `The tracking URI "${redactUri(value)}" (from ${uri.source}) has no http:// or https://, so it names a local store; did you mean ${guess}?`
        : `The tracking URI "${redactUri(value)}" (from ${uri.source}) is a local store, and an admin CLI needs a server`,
      {
        code: 'LOCAL_TRACKING_STORE',
        exit: ExitCode.Usage,
        hint: `Point mlflowctl at an MLflow server (http:// or https://): ${LOGIN_HINT}`,
      },
    )
  }

  const guess = suggestServerUrl(value)
  if (guess) {
    throw new UserError(`The tracking URI "${redactUri(value)}" (from ${uri.source}) has no http:// or https://; did you mean ${guess}?`, {
      code: 'INVALID_TRACKING_URI',
      exit: ExitCode.Usage,
      hint: LOGIN_HINT,
    })
  }

  throw new UserError(
    `Unsupported tracking URI scheme "${scheme}:" (from ${uri.source}): mlflowctl talks to http(s):// MLflow servers and databricks:// workspaces`,
    {
      code: 'UNSUPPORTED_TRACKING_URI',
      exit: ExitCode.Usage,
      hint: LOGIN_HINT,
    },
  )
}

/**
 * What a server address typed without its scheme most likely meant: `host:port` (which URL
 * parsers read as the scheme `host:`) is plain HTTP, as `mlflow server` serves; a bare domain
 * name is HTTPS; localhost and IP addresses are HTTP. Anything else (`mlruns`, `./x`) gets none.
 */
export function suggestServerUrl(value: string): string | undefined {
  const text = value.trim()
  if (/^(?:[a-z\d][a-z\d.-]*|\[[\da-f:.]+\]):\d{1,5}(?:[/?#]\S*)?$/i.test(text)) return `http://${text}`
  const host = /^([a-z\d][a-z\d-]*(?:\.[a-z\d-]+)+|localhost)(?:[/?#]\S*)?$/i.exec(text)?.[1]
  if (!host) return undefined
  return host === 'localhost' || /^[\d.]+$/.test(host) ? `http://${text}` : `https://${text}`
}

function assertHttpUri(uri: Sourced): void {
  let url: URL
  try {
    url = new URL(uri.value)
  } catch {
    throw new UserError(`The tracking URI "${redactUri(uri.value)}" (from ${uri.source}) is not a valid URL`, {
      code: 'INVALID_TRACKING_URI',
      exit: ExitCode.Usage,
      hint: LOGIN_HINT,
    })
  }

  // fetch refuses URLs with credentials; name the supported places instead of a fetch TypeError.
  if (url.username || url.password) {
    throw new UserError(`The tracking URI (from ${uri.source}) contains credentials, which mlflowctl does not take from a URL`, {
      code: 'INVALID_TRACKING_URI',
      exit: ExitCode.Usage,
      hint: 'Remove them from the URI and set MLFLOW_TRACKING_USERNAME/MLFLOW_TRACKING_PASSWORD, or run `mlflowctl login`.',
    })
  }
}

/** The variable when set, else MLflow's default. */
function sourceOf(env: NodeJS.ProcessEnv, name: string): string {
  return env[name] === undefined ? 'default' : name
}

function usageValue(flag: string, expected: string, value: number): UserError {
  return new UserError(`${flag} must be ${expected}, but is ${value}`, {code: 'INVALID_PARAMETER_VALUE', exit: ExitCode.Usage})
}

function resolveRetry(env: NodeJS.ProcessEnv, retriesFlag?: number): RetrySettings {
  const maxRetries = retriesFlag ?? readInt(env, 'MLFLOW_HTTP_REQUEST_MAX_RETRIES', 7)
  const retryLimit = readInt(env, '_MLFLOW_HTTP_REQUEST_MAX_RETRIES_LIMIT', 10)
  const backoffFactor = readInt(env, 'MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR', 2)
  const backoffLimit = readInt(env, '_MLFLOW_HTTP_REQUEST_MAX_BACKOFF_FACTOR_LIMIT', 120)
  // Same bounds as MLflow's _validate_max_retries/_validate_backoff_factor: the limit itself is allowed.
  if (retryLimit < 0) throw invalidEnv('_MLFLOW_HTTP_REQUEST_MAX_RETRIES_LIMIT', String(retryLimit), 'an integer ≥ 0')
  if ((maxRetries < 0 || maxRetries > retryLimit) && retriesFlag !== undefined)
    throw usageValue('--retries', `an integer from 0 to ${retryLimit} (_MLFLOW_HTTP_REQUEST_MAX_RETRIES_LIMIT)`, retriesFlag)
  if (maxRetries < 0 || maxRetries > retryLimit)
    throw invalidEnv('MLFLOW_HTTP_REQUEST_MAX_RETRIES', String(maxRetries), `an integer from 0 to ${retryLimit} (_MLFLOW_HTTP_REQUEST_MAX_RETRIES_LIMIT)`)
  if (backoffLimit < 0) throw invalidEnv('_MLFLOW_HTTP_REQUEST_MAX_BACKOFF_FACTOR_LIMIT', String(backoffLimit), 'an integer ≥ 0')
  if (backoffFactor < 0 || backoffFactor > backoffLimit)
    throw invalidEnv(
      'MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR',
      String(backoffFactor),
      `an integer from 0 to ${backoffLimit} (_MLFLOW_HTTP_REQUEST_MAX_BACKOFF_FACTOR_LIMIT)`,
    )

  return {
    backoffFactor,
    backoffJitter: readFloat(env, 'MLFLOW_HTTP_REQUEST_BACKOFF_JITTER', 1),
    maxRetries,
    respectRetryAfter: readBool(env, 'MLFLOW_HTTP_RESPECT_RETRY_AFTER_HEADER', true),
  }
}

function resolveTls(env: NodeJS.ProcessEnv): TlsSettings {
  const insecure = readBool(env, 'MLFLOW_TRACKING_INSECURE_TLS', false)
  const serverCert = env.MLFLOW_TRACKING_SERVER_CERT_PATH
  // Python would pass verify='' to requests, which silently disables verification: refuse instead.
  if (serverCert === '') throw invalidEnv('MLFLOW_TRACKING_SERVER_CERT_PATH', '', 'the path of a PEM CA bundle (or unset)')
  if (insecure && serverCert !== undefined) {
    throw new UserError('MLFLOW_TRACKING_INSECURE_TLS and MLFLOW_TRACKING_SERVER_CERT_PATH are both set: only one of these may be set, as in MLflow', {
      code: 'INVALID_PARAMETER_VALUE',
      exit: ExitCode.Usage,
      hint: 'Unset MLFLOW_TRACKING_INSECURE_TLS to verify the server with the CA bundle, or unset MLFLOW_TRACKING_SERVER_CERT_PATH to skip verification.',
    })
  }

  return {
    clientCertPath: env.MLFLOW_TRACKING_CLIENT_CERT_PATH
      ? {source: 'MLFLOW_TRACKING_CLIENT_CERT_PATH', value: env.MLFLOW_TRACKING_CLIENT_CERT_PATH}
      : undefined,
    insecure,
    serverCertPath: serverCert ? {source: 'MLFLOW_TRACKING_SERVER_CERT_PATH', value: serverCert} : undefined,
  }
}

function resolveSigV4(env: NodeJS.ProcessEnv): SigV4Settings {
  // requests-auth-aws-sigv4 (what MLflow uses) reads AWS_DEFAULT_REGION, as boto3 does; the JS SDKs use AWS_REGION.
  const regionVar = env.AWS_DEFAULT_REGION ? 'AWS_DEFAULT_REGION' : env.AWS_REGION ? 'AWS_REGION' : undefined
  if (!regionVar) {
    throw new UserError('MLFLOW_TRACKING_AWS_SIGV4 is on but no AWS region is set', {
      code: 'AWS_REGION_MISSING',
      exit: ExitCode.Usage,
      hint: 'Set AWS_DEFAULT_REGION (or AWS_REGION) to the region of the API gateway, e.g. us-east-1.',
    })
  }

  const accessKeyId = env.AWS_ACCESS_KEY_ID
  const secretAccessKey = env.AWS_SECRET_ACCESS_KEY
  return {
    credentials:
      accessKeyId && secretAccessKey
        ? {accessKeyId, secretAccessKey, sessionToken: env.AWS_SESSION_TOKEN || env.AWS_SECURITY_TOKEN || undefined, source: 'AWS_ACCESS_KEY_ID'}
        : undefined,
    profile: env.AWS_PROFILE || undefined,
    region: {source: regionVar, value: env[regionVar]!},
    service: 'execute-api',
  }
}

/**
 * --workspace > MLFLOW_WORKSPACE > the stored profile; trimmed, empty means unset
 * (docs/client-credentials.md, "Requests and error answers").
 */
function resolveWorkspace(input: ConnectionInput): Sourced | undefined {
  const candidates: Array<[string | undefined, string]> = [
    [input.flags.workspace, '--workspace'],
    [input.env.MLFLOW_WORKSPACE, 'MLFLOW_WORKSPACE'],
    [input.profile?.workspace, `profile ${input.profile?.name}`],
  ]
  for (const [value, source] of candidates) {
    const trimmed = value?.trim()
    if (trimmed) return {source, value: trimmed}
  }

  return undefined
}

/**
 * Env var if non-empty, else the file's value if non-empty: Python's `or`
 * (docs/client-credentials.md, "Precedence of username, password and token").
 */
function firstSet(env: NodeJS.ProcessEnv, name: string, fileValue?: string, filePath?: string): Sourced | undefined {
  if (env[name]) return {source: name, value: env[name]!}
  if (fileValue) return {source: filePath ?? 'credentials file', value: fileValue}
  return undefined
}

function describeSources(...values: Array<Sourced | undefined>): string {
  return [...new Set(values.filter((value) => value !== undefined).map((value) => value!.source))].join(', ')
}

export function redactUri(uri: string): string {
  return uri.replace(/^([a-z][a-z\d+.-]*:\/\/)[^/@]*@/i, '$1***@')
}
