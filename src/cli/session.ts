/**
 * Everything a client command needs to talk to MLflow: the stored login, the resolved connection
 * (flags, environment, files — with where each value came from), the HTTP client and the auth API.
 */
import {AuthApi, type UserSummary} from '../api/auth-api.js'
import {RolesApi} from '../api/roles-api.js'
import {TokensApi} from '../api/tokens-api.js'
import {TrackingApi} from '../api/tracking-api.js'
import {type Connection, CREDENTIAL_ENV, databricksProfileSelection, resolveConnection} from '../client/connection.js'
import {readDatabricksProfile} from '../client/databrickscfg.js'
import {createMlflowHttp, type MlflowHttp, type MlflowHttpOptions, type RetryEvent} from '../client/http.js'
import {MlflowCredentialsFile} from '../client/mlflow-credentials.js'
import {ExitCode, UserError} from '../core/errors.js'
import {switchHint} from './profiles.js'

export interface SessionOptions {
  env: NodeJS.ProcessEnv
  onRequest?: MlflowHttpOptions['onRequest']
  onRetry?: (event: RetryEvent) => void
  profile?: string
  /** --retries and --timeout. */
  retries?: number
  timeout?: number
  trackingUri?: string
}

/**
 * No server and no credentials anywhere: the user never logged in, or logged out. That is "not
 * logged in" (exit 3), not a bad command line. With credentials but no server, the resolver's own
 * "no tracking server is configured" says more.
 */
function throwIfLoggedOut(credentials: MlflowCredentialsFile, env: NodeJS.ProcessEnv): void {
  const active = credentials.activeCredentials
  if (active.username || active.password || CREDENTIAL_ENV.some((name) => env[name])) return
  const others = credentials.listProfiles().map((login) => login.profile)
  throw new UserError(others.length > 0 ? 'Not logged in: no stored login is current' : 'Not logged in', {
    code: 'NOT_LOGGED_IN',
    exit: ExitCode.Unauthenticated,
    hint:
      others.length > 0
        ? switchHint(others)
        : 'Run `mlflowctl login` (or pass --tracking-uri / set MLFLOW_TRACKING_URI with MLFLOW_TRACKING_USERNAME and MLFLOW_TRACKING_PASSWORD).',
  })
}

export class Session {
  readonly api: AuthApi
  readonly roles: RolesApi
  readonly tokens: TokensApi
  readonly tracking: TrackingApi
  private me: Promise<UserSummary> | undefined

  private constructor(
    readonly connection: Connection,
    readonly http: MlflowHttp,
    readonly credentials: MlflowCredentialsFile,
    readonly profile: string | undefined,
  ) {
    this.api = new AuthApi(http)
    this.roles = new RolesApi(http)
    this.tokens = new TokensApi(http)
    this.tracking = new TrackingApi(http)
  }

  static async open(options: SessionOptions): Promise<Session> {
    const credentials = await MlflowCredentialsFile.load()
    const profileName = options.profile ?? (options.env.MLFLOWCTL_PROFILE || undefined) ?? credentials.currentProfile
    const stored = profileName === undefined ? undefined : credentials.getProfile(profileName)
    if (profileName !== undefined && !stored && (options.profile !== undefined || options.env.MLFLOWCTL_PROFILE)) {
      throw new UserError(`No stored login named "${profileName}"`, {
        code: 'PROFILE_NOT_FOUND',
        exit: ExitCode.Usage,
        hint: `Run \`mlflowctl login --profile ${profileName}\`.`,
      })
    }

    const uri = options.trackingUri ?? (options.env.MLFLOW_TRACKING_URI || undefined) ?? stored?.trackingUri
    if (!uri) throwIfLoggedOut(credentials, options.env)
    const databricksProfile = uri?.startsWith('databricks')
      ? await readDatabricksProfile({env: options.env, profile: databricksProfileSelection(uri, options.env).profile})
      : undefined
    // A named, non-current profile brings its own credentials (a token login: the token alone);
    // otherwise MLflow's [mlflow] pair.
    const fileCredentials =
      stored && profileName !== credentials.currentProfile
        ? stored.token === undefined
          ? {password: stored.password, username: stored.username}
          : {}
        : credentials.activeCredentials
    const connection = resolveConnection({
      credentialsFile: {path: credentials.path, ...fileCredentials, ...(stored?.token === undefined ? {} : {token: stored.token})},
      databricksProfile,
      env: options.env,
      flags: {retries: options.retries, timeout: options.timeout, trackingUri: options.trackingUri},
      profile: stored ? {name: stored.profile, trackingUri: stored.trackingUri} : undefined,
    })
    const http = createMlflowHttp(connection, {onRequest: options.onRequest, onRetry: options.onRetry})
    return new Session(connection, http, credentials, stored?.profile)
  }

  /**
   * After users change their own password, the stored login they used must follow, or the next
   * command (and MLflow's own clients) would fail. Only when the password came from that login.
   */
  async updateStoredPassword(password: string): Promise<boolean> {
    if (!this.profile || this.connection.password?.source !== this.credentials.path) return false
    const login = this.credentials.getProfile(this.profile)
    if (!login) return false
    this.credentials.saveLogin({...login, password}, {activate: this.credentials.currentProfile === this.profile})
    await this.credentials.save()
    return true
  }

  /** Who the server says we are: users/current where it exists, else users/get for our username. */
  async whoami(): Promise<UserSummary> {
    this.me ??= this.api.caller(this.connection.username?.value)
    return this.me
  }
}
