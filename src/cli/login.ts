/**
 * Logging in: check the credentials against the server, and only then store them where MLflow's
 * clients read them. A rejected login stores nothing.
 */
import {AuthApi, type UserSummary} from '../api/auth-api.js'
import {CREDENTIAL_ENV, resolveConnection, suggestServerUrl} from '../client/connection.js'
import {removeDatabricksCredentials, saveDatabricksCredentials, type DatabricksWriteResult} from '../client/databrickscfg.js'
import {createMlflowHttp, MlflowApiError, type MlflowHttpOptions} from '../client/http.js'
import {MlflowCredentialsFile, type StoredLogin} from '../client/mlflow-credentials.js'
import {ExitCode, UserError} from '../core/errors.js'
import {type ProfileSummary, summarizeProfiles, unsavedActivePair} from './profiles.js'
import {canPrompt, promptChoice, promptSecret, promptText, readSecretFromStdin} from './prompts.js'

/** Credentials in the environment would be used instead of the ones being checked. */
const CHECK_IGNORES: ReadonlySet<string> = new Set([
  ...CREDENTIAL_ENV,
  'MLFLOW_TRACKING_AUTH',
  'MLFLOW_TRACKING_AWS_SIGV4',
  ...['HOST', 'TOKEN', 'USERNAME', 'PASSWORD', 'CLIENT_ID', 'CLIENT_SECRET', 'CONFIG_PROFILE'].map((name) => `DATABRICKS_${name}`),
])

function withoutCredentialEnv(env: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  return Object.fromEntries(Object.entries(env).filter(([key]) => !CHECK_IGNORES.has(key)))
}

function rejected(where: string, error: unknown): never {
  if (error instanceof MlflowApiError && error.status === 401) {
    throw new UserError(`${where} rejected the username or password; nothing was saved`, {code: 'LOGIN_REJECTED', exit: ExitCode.Unauthenticated, status: 401})
  }

  throw error
}

export interface VerifyOptions {
  env: NodeJS.ProcessEnv
  onRequest?: MlflowHttpOptions['onRequest']
  onRetry?: MlflowHttpOptions['onRetry']
  password: string
  /** --retries and --timeout. */
  retries?: number
  timeout?: number
  trackingUri: string
  username: string
}

/** Checks the credentials against the server (TLS, retry and timeout settings still come from the environment). */
export async function verifyMlflowLogin(options: VerifyOptions): Promise<UserSummary> {
  const connection = resolveConnection({
    credentialsFile: {password: options.password, path: 'login', username: options.username},
    env: withoutCredentialEnv(options.env),
    flags: {retries: options.retries, timeout: options.timeout, trackingUri: options.trackingUri},
  })
  if (connection.kind !== 'http') throw new UserError('Use --backend databricks for Databricks workspaces', {exit: ExitCode.Usage})
  const http = createMlflowHttp(connection, {onRequest: options.onRequest, onRetry: options.onRetry})
  try {
    return await new AuthApi(http).caller(options.username)
  } catch (error) {
    rejected(options.trackingUri, error)
  } finally {
    await http.close()
  }
}

/** Who the server says an access token belongs to (users/current: mlflowctl serve has it). */
export async function verifyTokenLogin(options: Omit<VerifyOptions, 'password' | 'username'> & {token: string}): Promise<UserSummary> {
  const connection = resolveConnection({
    env: {...withoutCredentialEnv(options.env), MLFLOW_TRACKING_TOKEN: options.token},
    flags: {retries: options.retries, timeout: options.timeout, trackingUri: options.trackingUri},
  })
  if (connection.kind !== 'http') throw new UserError('Use --backend databricks for Databricks workspaces', {exit: ExitCode.Usage})
  const http = createMlflowHttp(connection, {onRequest: options.onRequest, onRetry: options.onRetry})
  try {
    return await new AuthApi(http).caller(undefined)
  } catch (error) {
    if (error instanceof MlflowApiError && error.status === 401) {
      throw new UserError(`${options.trackingUri} rejected the token (unknown, revoked or expired); nothing was saved`, {
        code: 'LOGIN_REJECTED',
        exit: ExitCode.Unauthenticated,
        status: 401,
      })
    }

    throw error
  } finally {
    await http.close()
  }
}

const URI_EXAMPLE = 'e.g. http://127.0.0.1:5000 or https://mlflow.example.com'

/** An http(s) server address, or why not, with the likely meaning of one typed without its scheme. */
export function checkServerUrl(value: string): string | true {
  try {
    const url = new URL(value)
    if (url.protocol === 'http:' || url.protocol === 'https:') return true
  } catch {
    // Not a URL at all: maybe a host without its scheme.
  }

  const guess = suggestServerUrl(value)
  return guess ? `No http:// or https:// in "${value}"; did you mean ${guess}?` : `Not a server address: "${value}" (${URI_EXAMPLE})`
}

/** A tracking URI given on the command line or in MLFLOW_TRACKING_URI, refused before anything else is asked. */
export function assertServerUrl(value: string, source: string): void {
  const verdict = checkServerUrl(value)
  if (verdict !== true) {
    throw new UserError(`${source}: ${verdict}`, {
      code: 'INVALID_TRACKING_URI',
      exit: ExitCode.Usage,
      hint: `Log in to an MLflow server over http(s), ${URI_EXAMPLE}.`,
    })
  }
}

export interface MlflowLoginInput {
  env: NodeJS.ProcessEnv
  onRequest?: MlflowHttpOptions['onRequest']
  onRetry?: MlflowHttpOptions['onRetry']
  passwordStdin: boolean
  /** The profile being saved: its stored values are the prompts' defaults. */
  profile: string
  retries?: number
  /** Status for the person at the terminal (stderr). */
  say: (message: string) => void
  timeout?: number
  trackingUri?: string
  username?: string
}

export interface MlflowLoginOutcome {
  password: string
  trackingUri: string
  /** The server's answer; undefined when the user chose to save without checking. */
  user?: UserSummary
  username: string
}

/**
 * The values of an MLflow login, asked for where not given (with the stored profile's as
 * defaults), then checked against the server. On a terminal a failed check loses nothing typed:
 * the user may try again, change the address or the credentials, or, only if they choose so,
 * save without checking. Without a terminal the failure is the command's error.
 */
export async function collectMlflowLogin(input: MlflowLoginInput): Promise<MlflowLoginOutcome> {
  const stored = await storedDefaults(input.profile)
  const uriFrom = input.trackingUri === undefined ? (input.env.MLFLOW_TRACKING_URI ? 'MLFLOW_TRACKING_URI' : undefined) : '--tracking-uri'
  let trackingUri = input.trackingUri ?? (input.env.MLFLOW_TRACKING_URI || undefined)
  if (trackingUri === undefined) trackingUri = await askUri(stored?.trackingUri)
  else assertServerUrl(trackingUri, uriFrom!)
  let username = input.username ?? (await promptText('Username', {default: stored?.username, flag: '--user'}))
  let password = input.passwordStdin ? await readSecretFromStdin('password') : await promptSecret(`Password for ${username}`, {flag: '--password-stdin'})
  for (;;) {
    input.say(`Checking the login at ${trackingUri}…`)
    try {
      const user = await verifyMlflowLogin({...input, password, trackingUri, username})
      return {password, trackingUri, user, username}
    } catch (error) {
      const failure = error as UserError
      const unreachable = failure instanceof UserError && failure.exit === ExitCode.Unavailable
      const refused = failure instanceof UserError && failure.code === 'LOGIN_REJECTED'
      if (input.passwordStdin || !canPrompt() || !(unreachable || refused)) throw error
      input.say(`${failure.message}${failure.hint ? `\n${failure.hint}` : ''}`)
      const next = await promptChoice('What now?', [
        ...(unreachable ? [{name: 'Try again', value: 'retry' as const}] : []),
        ...(refused ? [{name: 'Enter the username and password again', value: 'credentials' as const}] : []),
        {name: 'Change the server address', value: 'uri' as const},
        ...(unreachable ? [{name: 'Save the login without checking it', value: 'save' as const}] : []),
        {name: 'Cancel (nothing is saved)', value: 'cancel' as const},
      ])
      switch (next) {
        case 'cancel': {
          throw error
        }

        case 'credentials': {
          username = await promptText('Username', {default: username, flag: '--user'})
          password = await promptSecret(`Password for ${username}`, {flag: '--password-stdin'})
          break
        }

        case 'save': {
          return {password, trackingUri, username}
        }

        case 'uri': {
          trackingUri = await askUri(trackingUri)
          break
        }

        case 'retry': {
          break
        }
      }
    }
  }
}

async function askUri(current: string | undefined): Promise<string> {
  const message = current === undefined ? `MLflow tracking URI (${URI_EXAMPLE})` : 'MLflow tracking URI'
  return promptText(message, {default: current, flag: '--tracking-uri', validate: checkServerUrl})
}

/** The stored login being replaced (else the current one), whose values make the prompts' defaults. */
async function storedDefaults(profile: string): Promise<StoredLogin | undefined> {
  try {
    const file = await MlflowCredentialsFile.load()
    return file.getProfile(profile) ?? (file.currentProfile === undefined ? undefined : file.getProfile(file.currentProfile))
  } catch {
    // A file that cannot be read gives no defaults; saving reports what is wrong with it.
    return undefined
  }
}

export interface SavedMlflowLogin {
  path: string
  /** The login that was current before, when it was another one. */
  previous?: ProfileSummary
  /** [mlflow] held a pair no stored login kept, now replaced (its username, when it had one). */
  replacedUnsaved?: {username?: string}
  warnings: string[]
}

/** Stores the login and makes it current (its pair goes to [mlflow], where MLflow's clients read it). */
export async function saveMlflowLogin(login: StoredLogin): Promise<SavedMlflowLogin> {
  const file = await MlflowCredentialsFile.load()
  const previous = summarizeProfiles(file).find((profile) => profile.current && profile.name !== login.profile)
  const unsaved = unsavedActivePair(file)
  const replacedUnsaved = unsaved && (unsaved.username !== login.username || file.activeCredentials.password !== login.password) ? unsaved : undefined
  file.saveLogin(login, {activate: true})
  const {warnings} = await file.save()
  return {path: file.path, previous, replacedUnsaved, warnings}
}

/** Removes a stored login; the current one unless a profile is named. Says which logins remain. */
export async function removeMlflowLogin(
  profile?: string,
): Promise<{current?: string; path: string; profile: string; remaining: ProfileSummary[]; wasCurrent: boolean}> {
  const file = await MlflowCredentialsFile.load()
  const name = profile ?? file.currentProfile
  if (!name) {
    const names = file.listProfiles().map((login) => login.profile)
    throw new UserError('Not logged in: no stored login is current', {
      code: 'NOT_LOGGED_IN',
      exit: ExitCode.NotFound,
      hint: names.length > 0 ? `Name the one to remove with --profile (${names.join(', ')}).` : `Nothing stored in ${file.path}.`,
    })
  }

  const wasCurrent = file.currentProfile === name
  if (!file.removeProfile(name)) throw new UserError(`No stored login named "${name}"`, {code: 'PROFILE_NOT_FOUND', exit: ExitCode.NotFound})
  await file.save()
  return {current: file.currentProfile, path: file.path, profile: name, remaining: summarizeProfiles(file), wasCurrent}
}

export type DatabricksSecret = {password: string; username: string} | {token: string}

/** Who the Databricks workspace says the credentials belong to (SCIM Me, as `mlflow.login()` checks). */
export async function verifyDatabricksLogin(options: {env: NodeJS.ProcessEnv; host: string; secret: DatabricksSecret}): Promise<string> {
  const values: Record<string, string> = {host: options.host, ...options.secret}
  const connection = resolveConnection({
    databricksProfile: {path: 'login', profile: 'login', values},
    env: withoutCredentialEnv(options.env),
    flags: {trackingUri: 'databricks://login'},
  })
  const http = createMlflowHttp(connection)
  try {
    const me = await http.get<{userName?: string}>('/api/2.0/preview/scim/v2/Me')
    return me.userName ?? '(unknown)'
  } catch (error) {
    rejected(options.host, error)
  } finally {
    await http.close()
  }
}

export async function saveDatabricksLogin(options: {
  env: NodeJS.ProcessEnv
  host: string
  profile?: string
  secret: DatabricksSecret
}): Promise<DatabricksWriteResult> {
  return saveDatabricksCredentials({credentials: {host: options.host, ...options.secret}, env: options.env, profile: options.profile})
}

export async function removeDatabricksLogin(options: {env: NodeJS.ProcessEnv; profile?: string}): Promise<DatabricksWriteResult> {
  return removeDatabricksCredentials(options)
}
