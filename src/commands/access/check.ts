import {type AccessVerdict} from '../../api/access.js'
import {accessResourceArgs, type AccessResult, accessTarget, verdicts} from '../../cli/access.js'
import {BaseCommand} from '../../cli/base-command.js'
import {usernameArg} from '../../cli/flags.js'
import {describeTarget, resourceNameFlag} from '../../cli/roles.js'

export default class AccessCheck extends BaseCommand<typeof AccessCheck> {
  static override args = {username: usernameArg, ...accessResourceArgs}
  static override description = `Computed from every row of every role the user holds, as MLflow decides (a platform admin may do anything; a workspace admin row gives MANAGE; a DENY row wins; else the highest matching row, never below default_permission; no row: default_permission), and checked against the level the server itself resolves: where the two differ, the server's is shown, with source "server". Admins, or users asking about themselves. Needs MLflow 3.13 or later.`
  static override examples = [
    '<%= config.bin %> <%= command.id %> alice experiment 42',
    '<%= config.bin %> <%= command.id %> alice experiment "My experiment" --json',
    '<%= config.bin %> <%= command.id %> alice model churn-model',
  ]
  static override flags = resourceNameFlag
  static override summary = "Show a user's effective permission on a resource, and the rule that decided it."

  public async run(): Promise<AccessResult & {access: AccessVerdict}> {
    const session = await this.session()
    const target = await accessTarget(session, this.args, this.flags.name)
    const {
      verdicts: [access],
      ...rest
    } = await verdicts(session, [this.args.username], target)
    this.log(`${access.username}: ${access.permission} on ${describeTarget(target)}\n  because: ${access.reason}`)
    return {...rest, access}
  }
}
