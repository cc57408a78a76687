import {Flags} from '../cli/oclif.js'
import {BaseCommand} from '../cli/base-command.js'

export interface LogoutResult {
  backend: 'databricks' | 'mlflow'
  /** The current login after this one was removed (mlflow backend). */
  current?: string
  file: string
  profile: string
  /** The stored logins left (mlflow backend). */
  remaining?: string[]
}

export default class Logout extends BaseCommand<typeof Logout> {
  static override aliases = ['auth:logout']
  static override description = `mlflow backend: removes the stored login (the current one, or --profile) from ~/.mlflow/credentials, and the [mlflow] username and password when it was the current one; then no login is current until \`mlflowctl auth switch NAME\` (or a new login) makes one so, and says which remain. databricks backend: removes the token, username and password of the ~/.databrickscfg profile (the previous file is kept as .bak). Nothing is revoked on the server.`
  static override examples = [
    '<%= config.bin %> <%= command.id %>',
    '<%= config.bin %> <%= command.id %> --profile staging',
    '<%= config.bin %> <%= command.id %> --backend databricks --profile DEFAULT',
  ]
  static override flags = {
    backend: Flags.option({default: 'mlflow', description: 'Which login to remove.', options: ['mlflow', 'databricks'] as const})(),
  }
  static override summary = 'Remove a stored login.'

  public async run(): Promise<LogoutResult> {
    const login = await import('../cli/login.js')
    if (this.flags.backend === 'databricks') {
      const removed = await login.removeDatabricksLogin({env: process.env, profile: this.flags.profile})
      this.status(
        removed.removed.length > 0
          ? `Removed ${removed.removed.join(', ')} from [${removed.profile}] in ${removed.path}`
          : `No credentials in [${removed.profile}] of ${removed.path}`,
      )
      return {backend: 'databricks', file: removed.path, profile: removed.profile}
    }

    const removed = await login.removeMlflowLogin(this.flags.profile)
    const remaining = removed.remaining.map((profile) => profile.name)
    const others = removed.remaining.map((profile) => `${profile.name} (${profile.tracking_uri})`).join(', ')
    let next: string
    if (!removed.wasCurrent) next = removed.current ? `the current login "${removed.current}" is unchanged` : 'no login is current'
    else if (remaining.length === 0) next = 'no stored logins remain'
    else
      next = `no login is current now, so MLflow's own clients send no credentials. Stored logins: ${others}; make one current with \`mlflowctl auth switch NAME\``
    this.status(`Logged out of profile "${removed.profile}" (${removed.path}); ${next}`)
    return {backend: 'mlflow', current: removed.current, file: removed.path, profile: removed.profile, remaining}
  }
}
