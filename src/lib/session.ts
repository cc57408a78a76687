/**
 * Everything a client command needs to talk to MLflow: the stored login, the resolved connection
 * (flags, environment, files — with where each value came from), the HTTP client and the auth API.
 */
import {AuthApi, type UserSummary} from '../api/auth-api.js'
import {type Connection, databricksProfileSelection, resolveConnection} from '../client/connection.js'
import {readDatabricksProfile} from '../client/databrickscfg.js'
import {createMlflowHttp, type MlflowHttp, type RetryEvent} from '../client/http.js'
import {MlflowCredentialsFile} from '../client/mlflow-credentials.js'
import {ExitCode, UserError} from './errors.js'

export interface SessionOptions {
  env: NodeJS.ProcessEnv
  onRetry?: (event: RetryEvent) => void
  profile?: string
  trackingUri?: string
  userAgent: string
}

export class Session {
  readonly api: AuthApi
  private me: Promise<UserSummary> | undefined

  private constructor(
    readonly connection: Connection,
    readonly http: MlflowHttp,
    readonly credentials: MlflowCredentialsFile,
    readonly profile: string | undefined,
  ) {
    this.api = new AuthApi(http)
  }

  static async open(options: SessionOptions): Promise<Session> {
    const credentials = await MlflowCredentialsFile.load()
    const profileName = options.profile ?? (options.env.MLFLOWCTL_PROFILE || undefined) ?? credentials.currentProfile
    const stored = profileName === undefined ? undefined : credentials.getProfile(profileName)
    if (profileName !== undefined && !stored && (options.profile !== undefined || options.env.MLFLOWCTL_PROFILE)) {
      throw new UserError(`No stored login named "${profileName}"`, {code: 'PROFILE_NOT_FOUND', exit: ExitCode.Usage, hint: `Run \`mlflowctl login --profile ${profileName}\`.`})
    }

    const uri = options.trackingUri ?? (options.env.MLFLOW_TRACKING_URI || undefined) ?? stored?.trackingUri
    const databricksProfile = uri?.startsWith('databricks') ? await readDatabricksProfile({env: options.env, profile: databricksProfileSelection(uri, options.env).profile}) : undefined
    // A named, non-current profile brings its own credentials; otherwise MLflow's [mlflow] pair.
    const fileCredentials = stored && profileName !== credentials.currentProfile ? {password: stored.password, username: stored.username} : credentials.activeCredentials
    const connection = resolveConnection({
      credentialsFile: {path: credentials.path, ...fileCredentials},
      databricksProfile,
      env: options.env,
      flags: {trackingUri: options.trackingUri},
      profile: stored ? {name: stored.profile, trackingUri: stored.trackingUri} : undefined,
    })
    const http = createMlflowHttp(connection, {onRetry: options.onRetry, userAgent: options.userAgent})
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

  /** An experiment id from an id or a name (anything not all digits is a name). */
  async experimentId(idOrName: string): Promise<string> {
    if (/^\d+$/.test(idOrName)) return idOrName
    const {experiment} = await this.http.get<{experiment: {experiment_id: string}}>('/api/2.0/mlflow/experiments/get-by-name', {experiment_name: idOrName})
    return experiment.experiment_id
  }

  /** Who the server says we are: users/current where it exists, else users/get for our username. */
  async whoami(): Promise<UserSummary> {
    this.me ??= (async () => {
      const current = await this.api.currentUser()
      if (current) return current
      const username = this.connection.username?.value
      if (!username) {
        throw new UserError('This server cannot tell who a token belongs to (it has no users/current)', {code: 'UNSUPPORTED', exit: ExitCode.Unsupported, hint: 'Pass --user explicitly.'})
      }

      const user = await this.api.getUser(username)
      return {id: user.id, is_admin: user.is_admin, username: user.username}
    })()
    return this.me
  }
}
