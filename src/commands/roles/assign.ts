import {BaseCommand} from '../../cli/base-command.js'
import {userFlag} from '../../cli/flags.js'
import {pickRole, roleArg, roleFlags} from '../../cli/roles.js'

export interface RoleMembershipResult {
  action: 'assigned' | 'unassigned'
  role: {id: number; name: string; workspace: string}
  user: string
}

export default class RolesAssign extends BaseCommand<typeof RolesAssign> {
  static override args = {role: roleArg}
  static override description = 'The user gets every permission of the role, on top of their own.'
  static override examples = ['<%= config.bin %> <%= command.id %> readers --user alice', '<%= config.bin %> <%= command.id %> --id 7 -u alice']
  static override flags = {...roleFlags, user: userFlag('The user to give the role to.')}
  static override summary = 'Give a user a role.'

  public async run(): Promise<RoleMembershipResult> {
    const session = await this.session()
    const role = await pickRole(session, this.args.role, this.flags, true)
    await session.roles.assign(this.flags.user, role.id)
    this.status(`Gave role ${role.name} to ${this.flags.user}`)
    return {action: 'assigned', role: {id: role.id, name: role.name, workspace: role.workspace}, user: this.flags.user}
  }
}
