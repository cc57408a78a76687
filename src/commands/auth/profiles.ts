import {BaseCommand, tableFlags} from '../../cli/base-command.js'
import {listProfiles, type ProfileSummary} from '../../cli/profiles.js'

export interface ProfilesResult {
  current?: string
  file: string
  profiles: ProfileSummary[]
}

export default class AuthProfiles extends BaseCommand<typeof AuthProfiles> {
  // Reads only the credentials file: no --profile or --tracking-uri.
  static override baseFlags = {} as typeof BaseCommand.baseFlags
  static override description =
    "The current login (marked *) is the one mlflowctl uses without --profile, and the one whose username and password MLflow's own clients read from [mlflow] in ~/.mlflow/credentials. Passwords are never shown. Databricks logins live in ~/.databrickscfg and are not listed here."
  static override examples = ['<%= config.bin %> <%= command.id %>', '<%= config.bin %> <%= command.id %> --json']
  static override flags = tableFlags
  static tableHead = ['CURRENT', 'PROFILE', 'TRACKING URI', 'USERNAME']
  static override summary = 'List the stored logins (profiles) and which one is current.'

  public async run(): Promise<ProfilesResult> {
    const {current, file, profiles, unsaved} = await listProfiles()
    if (profiles.length === 0) this.status(`No stored logins in ${file}; \`mlflowctl login\` stores one.`)
    else this.table(profiles.map((profile) => [profile.current ? '*' : '', profile.name, profile.tracking_uri, profile.username]))
    if (profiles.length > 0 && !current) this.status('No login is current: `mlflowctl auth switch NAME` makes one current.')
    if (unsaved) this.warn(`[mlflow] in ${file} holds credentials${unsaved.username ? ` for ${unsaved.username}` : ''} that no stored login keeps`)
    if (process.env.MLFLOWCTL_PROFILE)
      this.warn(`MLFLOWCTL_PROFILE=${process.env.MLFLOWCTL_PROFILE} is set: mlflowctl uses that login instead of the current one`)
    return {current, file, profiles}
  }
}
