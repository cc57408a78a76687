import {BaseCommand} from '../../cli/base-command.js'
import {yesFlag} from '../../cli/flags.js'
import {confirmDestructive} from '../../cli/prompts.js'
import {pickRole, roleArg, roleFlags} from '../../cli/roles.js'

export default class RolesDelete extends BaseCommand<typeof RolesDelete> {
  static override args = {role: roleArg}
  static override description =
    'Its members lose every permission it gave them. Asks for confirmation on a terminal (also with --json); without a terminal it refuses unless --yes is given.'
  static override examples = ['<%= config.bin %> <%= command.id %> readers', '<%= config.bin %> <%= command.id %> --id 7 --yes']
  static override flags = {...roleFlags, yes: yesFlag}
  static override summary = 'Delete a role.'

  public async run(): Promise<{deleted: true; role: {id: number; name: string; workspace: string}}> {
    const session = await this.session()
    const role = await pickRole(session, this.args.role, this.flags, true)
    const members = await session.roles.members(role.id)
    await confirmDestructive(`delete role ${role.name} (id ${role.id}, ${members.length} member${members.length === 1 ? '' : 's'})`, this.flags.yes)
    await session.roles.delete(role.id)
    this.status(`Deleted role ${role.name}`)
    return {deleted: true, role: {id: role.id, name: role.name, workspace: role.workspace}}
  }
}
