import {Flags} from '../cli/oclif.js'
import {BaseCommand} from '../cli/base-command.js'
import {CREDENTIAL_ENV} from '../client/connection.js'
import {ExitCode, UserError} from '../core/errors.js'
import {promptSecret, promptText, readSecretFromStdin} from '../cli/prompts.js'

export interface LoginResult {
  backend: 'databricks' | 'mlflow'
  /** Where the login was written. */
  file: string
  is_admin?: boolean
  /** The login that was current before (mlflow backend), when it was another one: it is kept, no longer current. */
  previous_profile?: string
  profile: string
  tracking_uri: string
  username: string
  /** False when the user chose to save the login although the server could not be reached. */
  verified?: boolean
}

export default class Login extends BaseCommand<typeof Login> {
  static override aliases = ['auth:login']
  static override description = `Checks the credentials against the server first; a rejected login saves nothing.

mlflow backend (default): with --token-stdin, an access token of mlflowctl serve (\`mlflowctl tokens create\`) instead of a username and password: mlflowctl stores it in the profile and sends it as "Authorization: Bearer". MLflow's own clients read tokens only from the environment: export MLFLOW_TRACKING_TOKEN for them (a token login leaves [mlflow] without a username and password).

Without a token, it stores the login under a profile (default "default") with its tracking URI, so later commands need no flag, and makes it the current one: its username and password go to ~/.mlflow/credentials, section [mlflow], where MLflow's Python client reads them for every server it talks to. Other stored logins are kept; \`mlflowctl auth profiles\` lists them and \`mlflowctl auth switch NAME\` makes another current. The file is 0600 in a 0700 directory; other sections and comments are kept.

databricks backend: writes host and token (or username and password) to ~/.databrickscfg (or $DATABRICKS_CONFIG_FILE) under the profile --profile, $DATABRICKS_CONFIG_PROFILE or DEFAULT; other profiles and keys are kept and the previous file is saved as .bak.

Secrets are prompted for on a terminal, or read from standard input with --password-stdin / --token-stdin; never from the command line.`
  static override examples = [
    '<%= config.bin %> <%= command.id %>',
    'printf %s "$PASSWORD" | <%= config.bin %> <%= command.id %> --tracking-uri https://mlflow.example.com --user admin --password-stdin',
    '<%= config.bin %> <%= command.id %> --tracking-uri https://staging.example.com --user alice --profile staging',
    'printf %s "$DATABRICKS_TOKEN" | <%= config.bin %> <%= command.id %> --backend databricks --host https://adb-123.azuredatabricks.net --token-stdin',
    'printf %s "$MLFLOWCTL_TOKEN" | <%= config.bin %> <%= command.id %> --tracking-uri https://mlflow.example.com --token-stdin --profile ci',
  ]
  static override flags = {
    backend: Flags.option({default: 'mlflow', description: 'Where the server lives.', options: ['mlflow', 'databricks'] as const})(),
    host: Flags.string({description: 'Databricks workspace URL (databricks backend). Default: $DATABRICKS_HOST.'}),
    'password-stdin': Flags.boolean({default: false, description: 'Read the password from standard input.', exclusive: ['token-stdin']}),
    'token-stdin': Flags.boolean({
      default: false,
      description: 'Read a token from standard input: an mlflowctl serve access token (mlflow backend), or a Databricks personal access token.',
      exclusive: ['user'],
    }),
    // --user, as in perms; --username was its first spelling and keeps working.
    user: Flags.string({aliases: ['username'], char: 'u', description: 'User to log in as.'}),
  }
  static override summary = 'Log in to an MLflow server and store the login where MLflow clients find it.'

  public async run(): Promise<LoginResult> {
    return this.flags.backend === 'databricks' ? this.databricks() : this.mlflow()
  }

  private async databricks(): Promise<LoginResult> {
    const {host: hostFlag, 'password-stdin': passwordStdin, profile, 'token-stdin': tokenStdin, user: username} = this.flags
    const login = await import('../cli/login.js')
    const host =
      hostFlag ??
      (process.env.DATABRICKS_HOST || undefined) ??
      (await promptText('Databricks host (https://…)', {flag: '--host', validate: login.checkServerUrl}))
    const verdict = login.checkServerUrl(host)
    if (verdict !== true) throw new UserError(`Not a workspace URL: ${verdict}`, {exit: ExitCode.Usage})
    let secret: {password: string; username: string} | {token: string}
    if (username) {
      secret = {password: passwordStdin ? await readSecretFromStdin('password') : await promptSecret('Password', {flag: '--password-stdin'}), username}
    } else {
      if (passwordStdin) throw new UserError('--password-stdin needs --user', {exit: ExitCode.Usage})
      secret = {token: tokenStdin ? await readSecretFromStdin('token') : await promptSecret('Personal access token', {flag: '--token-stdin'})}
    }

    const user = await login.verifyDatabricksLogin({env: process.env, host, secret})
    const saved = await login.saveDatabricksLogin({env: process.env, host, profile, secret})
    for (const warning of saved.warnings) this.warn(warning)
    this.status(
      `Logged in to ${host} as ${user}; saved profile [${saved.profile}] in ${saved.path}${saved.backupPath ? ` (previous file kept as ${saved.backupPath})` : ''}`,
    )
    return {
      backend: 'databricks',
      file: saved.path,
      profile: saved.profile,
      tracking_uri: saved.profile === 'DEFAULT' ? 'databricks' : `databricks://${saved.profile}`,
      username: user,
    }
  }

  /** A token login: checked with users/current, stored in the profile (mlflowctl's key), made current. */
  private async mlflowToken(): Promise<LoginResult> {
    const login = await import('../cli/login.js')
    const profile = this.flags.profile ?? 'default'
    const trackingUri = this.flags['tracking-uri'] ?? (process.env.MLFLOW_TRACKING_URI || undefined)
    if (!trackingUri) throw new UserError('A token login needs the server: pass --tracking-uri or set MLFLOW_TRACKING_URI', {exit: ExitCode.Usage})
    login.assertServerUrl(trackingUri, this.flags['tracking-uri'] === undefined ? 'MLFLOW_TRACKING_URI' : '--tracking-uri')
    const token = await readSecretFromStdin('token')
    this.status(`Checking the token at ${trackingUri}…`)
    const user = await login.verifyTokenLogin({
      env: process.env,
      onRequest: (request) => this.waitingFor(request),
      onRetry: (event) => this.announceRetry(event),
      retries: this.flags.retries,
      timeout: this.flags.timeout,
      token,
      trackingUri,
    })
    const saved = await login.saveMlflowLogin({password: '', profile, token, trackingUri, username: user.username})
    for (const warning of saved.warnings) this.warn(warning)
    for (const name of CREDENTIAL_ENV.filter((variable) => process.env[variable])) {
      this.warn(`${name} is set: it overrides this login for mlflowctl and MLflow's clients until you unset it`)
    }

    this.status(
      `Logged in to ${trackingUri} as ${user.username}${user.is_admin ? ' (admin)' : ''} with a token; saved as profile "${profile}" in ${saved.path}`,
    )
    this.status(
      "MLflow's own clients cannot read a token from that file: for them, export MLFLOW_TRACKING_TOKEN (and MLFLOW_TRACKING_URI). [mlflow] now holds no username and password.",
    )
    return {
      backend: 'mlflow',
      file: saved.path,
      is_admin: user.is_admin,
      previous_profile: saved.previous?.name,
      profile,
      tracking_uri: trackingUri,
      username: user.username,
      verified: true,
    }
  }

  private async mlflow(): Promise<LoginResult> {
    if (this.flags['token-stdin']) return this.mlflowToken()
    const login = await import('../cli/login.js')
    const profile = this.flags.profile ?? 'default'
    const {password, trackingUri, user, username} = await login.collectMlflowLogin({
      env: process.env,
      onRequest: (request) => this.waitingFor(request),
      onRetry: (event) => this.announceRetry(event),
      passwordStdin: this.flags['password-stdin'],
      profile,
      retries: this.flags.retries,
      say: (message) => this.status(message),
      timeout: this.flags.timeout,
      trackingUri: this.flags['tracking-uri'],
      username: this.flags.user,
    })
    const saved = await login.saveMlflowLogin({password, profile, trackingUri, username})
    for (const warning of saved.warnings) this.warn(warning)
    for (const name of CREDENTIAL_ENV.filter((variable) => process.env[variable])) {
      this.warn(`${name} is set: it overrides this login for mlflowctl and MLflow's clients until you unset it`)
    }

    if (saved.replacedUnsaved) {
      this.warn(
        `[mlflow] held credentials${saved.replacedUnsaved.username ? ` for ${saved.replacedUnsaved.username}` : ''} that no stored login kept; they are replaced by this login`,
      )
    }

    const {previous} = saved
    // MLflow's clients send the [mlflow] pair to whatever server they use: code still pointed at the
    // previous login's server now sends this login's credentials there.
    if (previous && (previous.username !== username || previous.tracking_uri !== trackingUri)) {
      this.warn(
        `Profile "${previous.name}" (${previous.username} at ${previous.tracking_uri}) is kept but no longer current: MLflow's own clients now send ${username}'s credentials, also to ${previous.tracking_uri}. \`mlflowctl auth switch ${previous.name}\` makes it current again.`,
      )
    }

    if (!user) {
      this.warn(`Saved without checking: the server at ${trackingUri} did not answer; run \`mlflowctl whoami\` once it does`)
      this.status(`Saved the login for ${username} at ${trackingUri} as profile "${profile}" in ${saved.path}`)
      return {backend: 'mlflow', file: saved.path, previous_profile: previous?.name, profile, tracking_uri: trackingUri, username, verified: false}
    }

    this.status(`Logged in to ${trackingUri} as ${user.username}${user.is_admin ? ' (admin)' : ''}; saved as profile "${profile}" in ${saved.path}`)
    this.status(
      `Profile "${profile}" is now current: mlflowctl uses it by default, and MLflow's own clients send its username and password (from [mlflow]) to the server they are pointed at, e.g. MLFLOW_TRACKING_URI=${trackingUri}.`,
    )
    return {
      backend: 'mlflow',
      file: saved.path,
      is_admin: user.is_admin,
      previous_profile: previous?.name,
      profile,
      tracking_uri: trackingUri,
      username: user.username,
      verified: true,
    }
  }
}
