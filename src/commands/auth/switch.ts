import {Args} from '../../cli/oclif-command.js'
import {BaseCommand} from '../../cli/base-command.js'
import {CREDENTIAL_ENV} from '../../client/connection.js'

export interface SwitchResult {
  file: string
  previous_profile?: string
  profile: string
  tracking_uri: string
  username: string
}

export default class AuthSwitch extends BaseCommand<typeof AuthSwitch> {
  static override args = {name: Args.string({description: 'The stored login to make current (`mlflowctl auth profiles` lists them).', required: true})}
  // Reads only the credentials file: no --profile or --tracking-uri.
  static override baseFlags = {} as typeof BaseCommand.baseFlags
  static override description = `Copies the profile's username and password to [mlflow] in ~/.mlflow/credentials, where MLflow's own clients read them, and makes it mlflowctl's default. Nothing is asked of the server. The file is written atomically and stays 0600; other sections and comments are kept.

Refuses, changing nothing, when [mlflow] holds credentials that no stored login keeps (written by hand or by another tool): they would be lost.`
  static override examples = ['<%= config.bin %> <%= command.id %> staging', '<%= config.bin %> <%= command.id %> default --json']
  static override summary = "Make another stored login current, for mlflowctl and for MLflow's own clients."

  public async run(): Promise<SwitchResult> {
    const {switchProfile} = await import('../../cli/profiles.js')
    const switched = await switchProfile(this.args.name)
    for (const warning of switched.warnings) this.warn(warning)
    const {name, tracking_uri: trackingUri, username} = switched.profile
    for (const variable of CREDENTIAL_ENV.filter((key) => process.env[key])) {
      this.warn(`${variable} is set: it overrides this login for mlflowctl and MLflow's clients until you unset it`)
    }

    if (process.env.MLFLOWCTL_PROFILE && process.env.MLFLOWCTL_PROFILE !== name) {
      this.warn(`MLFLOWCTL_PROFILE=${process.env.MLFLOWCTL_PROFILE} is set: mlflowctl keeps using that login until you unset it`)
    }

    this.status(
      switched.previous === name
        ? `Profile "${name}" (${username} at ${trackingUri}) was already current; nothing changed`
        : `Switched to profile "${name}": ${username} at ${trackingUri}. MLflow's own clients now send ${username}'s username and password (from [mlflow] in ${switched.file}) to the server they are pointed at, e.g. MLFLOW_TRACKING_URI=${trackingUri}.`,
    )
    return {file: switched.file, previous_profile: switched.previous, profile: name, tracking_uri: trackingUri, username}
  }
}
