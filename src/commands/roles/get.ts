import {BaseCommand} from '../../cli/base-command.js'
import {colorsFor} from '../../cli/render.js'
import {pickRole, renderRole, roleArg, type RoleJson, roleFlags, roleJson} from '../../cli/roles.js'

export default class RolesGet extends BaseCommand<typeof RolesGet> {
  static override args = {role: roleArg}
  static override examples = ['<%= config.bin %> <%= command.id %> readers', '<%= config.bin %> <%= command.id %> --id 7 --json']
  static override flags = roleFlags
  static override summary = 'Show a role and its permissions.'

  public async run(): Promise<{role: RoleJson}> {
    const session = await this.session()
    const role = await pickRole(session, this.args.role, this.flags, false)
    this.log(renderRole(role, colorsFor(process.stdout)))
    return {role: roleJson(role)}
  }
}
