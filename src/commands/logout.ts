import * as Flags from '@oclif/core/flags'

import {BaseCommand} from '../cli/base-command.js'

export interface LogoutResult {
  backend: 'databricks' | 'mlflow'
  file: string
  profile: string
}

export default class Logout extends BaseCommand<typeof Logout> {
  static override description = `mlflow backend: removes the stored login (the current one, or --profile) from ~/.mlflow/credentials, and the [mlflow] username and password when it was the current one. databricks backend: removes the token, username and password of the ~/.databrickscfg profile (the previous file is kept as .bak). Nothing is revoked on the server.`
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
    this.status(`Logged out of profile "${removed.profile}" (${removed.path})${removed.wasCurrent ? '' : '; the current login is unchanged'}`)
    return {backend: 'mlflow', file: removed.path, profile: removed.profile}
  }
}
