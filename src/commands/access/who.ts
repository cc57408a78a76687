import {type AccessVerdict} from '../../api/access.js'
import {accessResourceArgs, type AccessResult, accessTarget, verdicts} from '../../cli/access.js'
import {BaseCommand, tableFlags} from '../../cli/base-command.js'
import {describeTarget, resourceNameFlag} from '../../cli/roles.js'

export default class AccessWho extends BaseCommand<typeof AccessWho> {
  static override args = accessResourceArgs
  static override description =
    'Every user, with the effective permission as `access check` computes it (and checks it against the server). Admins only. Needs MLflow 3.13 or later.'
  static override examples = ['<%= config.bin %> <%= command.id %> experiment 42', '<%= config.bin %> <%= command.id %> model churn-model --json']
  static override flags = {...resourceNameFlag, ...tableFlags}
  static tableHead = ['USER', 'PERMISSION', 'SOURCE', 'WHY']
  static override summary = 'List who can do what on a resource, and why.'

  public async run(): Promise<AccessResult & {users: AccessVerdict[]}> {
    const session = await this.session()
    const target = await accessTarget(session, this.args, this.flags.name)
    const users = (await session.api.listUsers()).map((user) => user.username)
    const {verdicts: found, ...rest} = await verdicts(session, users, target)
    this.status(`${describeTarget(target)}; default_permission ${rest.default_permission}`)
    this.table(found.map((verdict) => [verdict.username, verdict.permission, verdict.source, verdict.reason]))
    return {...rest, users: found}
  }
}
