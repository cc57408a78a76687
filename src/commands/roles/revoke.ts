import {BaseCommand} from '../../cli/base-command.js'
import {yesFlag} from '../../cli/flags.js'
import {confirmDestructive} from '../../cli/prompts.js'
import {describeTarget, pickRole, resolvePattern, resourceNameFlag, roleFlags, rowArgs, rowArgsOf, rowOn} from '../../cli/roles.js'
import {type RoleGrantResult} from './grant.js'

export default class RolesRevoke extends BaseCommand<typeof RolesRevoke> {
  static override args = rowArgs
  static override description =
    'The row is named as `roles grant` names it. Asks for confirmation on a terminal (also with --json); without a terminal it refuses unless --yes is given.'
  static override examples = [
    '<%= config.bin %> <%= command.id %> readers experiment "*"',
    '<%= config.bin %> <%= command.id %> readers model churn-model --yes',
  ]
  static override flags = {...roleFlags, ...resourceNameFlag, yes: yesFlag}
  static override summary = 'Remove a permission from a role.'

  public async run(): Promise<RoleGrantResult> {
    const args = rowArgsOf(this.args, this.flags.id)
    const session = await this.session()
    const role = await pickRole(session, args.role, this.flags, true)
    const target = await resolvePattern(session, args, {byName: this.flags.name, mustExist: false})
    const row = rowOn(role, target)
    await confirmDestructive(`remove ${row.permission} on ${describeTarget(target)} from role ${role.name}`, this.flags.yes)
    await session.roles.removePermission(row.id)
    this.status(`Removed ${row.permission} on ${describeTarget(target)} from role ${role.name}`)
    return {action: 'removed', permission: row.permission, role: {id: role.id, name: role.name, workspace: role.workspace}, row: {...target, id: row.id}}
  }
}
