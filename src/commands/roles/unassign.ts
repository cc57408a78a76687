import {BaseCommand} from '../../cli/base-command.js'
import {userFlag, yesFlag} from '../../cli/flags.js'
import {confirmDestructive} from '../../cli/prompts.js'
import {pickRole, roleArg, roleFlags} from '../../cli/roles.js'
import {type RoleMembershipResult} from './assign.js'

export default class RolesUnassign extends BaseCommand<typeof RolesUnassign> {
  static override args = {role: roleArg}
  static override description =
    'The user loses what the role gave them (their own permissions and other roles stay). Asks for confirmation on a terminal (also with --json); without a terminal it refuses unless --yes is given.'
  static override examples = ['<%= config.bin %> <%= command.id %> readers --user alice', '<%= config.bin %> <%= command.id %> --id 7 -u alice --yes']
  static override flags = {...roleFlags, user: userFlag('The user to take the role from.'), yes: yesFlag}
  static override summary = 'Take a role from a user.'

  public async run(): Promise<RoleMembershipResult> {
    const session = await this.session()
    const role = await pickRole(session, this.args.role, this.flags, true)
    await confirmDestructive(`take role ${role.name} from ${this.flags.user}`, this.flags.yes)
    await session.roles.unassign(this.flags.user, role.id)
    this.status(`Took role ${role.name} from ${this.flags.user}`)
    return {action: 'unassigned', role: {id: role.id, name: role.name, workspace: role.workspace}, user: this.flags.user}
  }
}
