import {Flags} from '../../cli/oclif.js'
import {BaseCommand} from '../../cli/base-command.js'
import {pickRole, roleArg, type RoleJson, roleFlags, roleJson} from '../../cli/roles.js'
import {ExitCode, UserError} from '../../core/errors.js'

export default class RolesUpdate extends BaseCommand<typeof RolesUpdate> {
  static override args = {role: roleArg}
  static override examples = [
    '<%= config.bin %> <%= command.id %> readers --rename viewers',
    '<%= config.bin %> <%= command.id %> readers --description "Read only"',
  ]
  static override flags = {
    ...roleFlags,
    description: Flags.string({description: 'The new description ("" to clear it).'}),
    rename: Flags.string({description: 'The new name.'}),
  }
  static override summary = 'Rename a role or change its description.'

  public async run(): Promise<{role: RoleJson}> {
    const {description, rename} = this.flags
    if (description === undefined && rename === undefined) {
      throw new UserError('Nothing to change: give --rename or --description', {code: 'USAGE_ERROR', exit: ExitCode.Usage})
    }

    if (rename !== undefined && rename.trim() === '') throw new UserError('The new name is empty', {code: 'USAGE_ERROR', exit: ExitCode.Usage})
    const session = await this.session()
    const role = await pickRole(session, this.args.role, this.flags, true)
    const updated = await session.roles.update(role.id, {...(description === undefined ? {} : {description}), ...(rename === undefined ? {} : {name: rename})})
    this.status(`Updated role ${updated.name} (id ${updated.id})`)
    return {role: roleJson(updated)}
  }
}
