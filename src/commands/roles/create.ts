import {Args} from '../../cli/oclif-command.js'
import {Flags} from '../../cli/oclif.js'
import {BaseCommand} from '../../cli/base-command.js'
import {colorsFor} from '../../cli/render.js'
import {renderRole, type RoleJson, roleFlags, roleJson} from '../../cli/roles.js'

export default class RolesCreate extends BaseCommand<typeof RolesCreate> {
  static override args = {
    name: Args.string({description: 'The new role name (unique in its workspace; names starting with __user_ are reserved).', required: true}),
  }
  static override description =
    'Admins (or workspace admins) only. Needs a server with roles (MLflow 3.12 or later). Add permissions with `roles grant`, members with `roles assign`.'
  static override examples = [
    '<%= config.bin %> <%= command.id %> readers',
    '<%= config.bin %> <%= command.id %> readers --description "Read every experiment"',
  ]
  static override flags = {
    description: Flags.string({description: 'What the role is for.'}),
    workspace: roleFlags.workspace,
  }
  static override summary = 'Create a role.'

  public async run(): Promise<{role: RoleJson}> {
    const session = await this.session()
    const role = await session.roles.create(this.flags.workspace, this.args.name, this.flags.description)
    this.status(`Created role ${role.name} (id ${role.id}) in workspace ${role.workspace}`)
    this.log(renderRole(role, colorsFor(process.stdout)))
    return {role: roleJson(role)}
  }
}
