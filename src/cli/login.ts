/**
 * Logging in: check the credentials against the server, and only then store them where MLflow's
 * clients read them. A rejected login stores nothing.
 */
import {AuthApi, type UserSummary} from '../api/auth-api.js'
import {CREDENTIAL_ENV, resolveConnection} from '../client/connection.js'
import {removeDatabricksCredentials, saveDatabricksCredentials, type DatabricksWriteResult} from '../client/databrickscfg.js'
import {createMlflowHttp, MlflowApiError} from '../client/http.js'
import {MlflowCredentialsFile, type StoredLogin} from '../client/mlflow-credentials.js'
import {ExitCode, UserError} from '../core/errors.js'
import {type ProfileSummary, summarizeProfiles, unsavedActivePair} from './profiles.js'

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

/** Checks the credentials against the server (TLS, retry and timeout settings still come from the environment). */
export async function verifyMlflowLogin(options: {env: NodeJS.ProcessEnv; password: string; trackingUri: string; username: string}): Promise<UserSummary> {
  const connection = resolveConnection({
    credentialsFile: {password: options.password, path: 'login', username: options.username},
    env: withoutCredentialEnv(options.env),
    flags: {trackingUri: options.trackingUri},
  })
  if (connection.kind !== 'http') throw new UserError('Use --backend databricks for Databricks workspaces', {exit: ExitCode.Usage})
  const http = createMlflowHttp(connection)
  try {
    return await new AuthApi(http).caller(options.username)
  } catch (error) {
    rejected(options.trackingUri, error)
  } finally {
    await http.close()
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
