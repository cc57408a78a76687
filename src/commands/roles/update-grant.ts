import {BaseCommand} from '../../cli/base-command.js'
import {permissionFlag} from '../../cli/flags.js'
import {describeTarget, pickRole, resolvePattern, resourceNameFlag, roleFlags, rowArgs, rowArgsOf, rowOn} from '../../cli/roles.js'
import {type RoleGrantResult} from './grant.js'

export default class RolesUpdateGrant extends BaseCommand<typeof RolesUpdateGrant> {
  static override args = rowArgs
  static override description = 'The row is named as `roles grant` names it, and changed in place.'
  static override examples = [
    '<%= config.bin %> <%= command.id %> readers experiment "*" --permission EDIT',
    '<%= config.bin %> <%= command.id %> readers model churn-model --permission DENY',
  ]
  static override flags = {...roleFlags, ...resourceNameFlag, permission: permissionFlag({required: true})}
  static override summary = "Change the level of one of a role's permissions."

  public async run(): Promise<RoleGrantResult> {
    const {permission} = this.flags
    const args = rowArgsOf(this.args, this.flags.id)
    const session = await this.session()
    const role = await pickRole(session, args.role, this.flags, true)
    const target = await resolvePattern(session, args, {byName: this.flags.name, mustExist: false, permission})
    const row = rowOn(role, target)
    await session.roles.updatePermission(row.id, permission)
    this.status(`Updated ${describeTarget(target)} of role ${role.name}: ${row.permission} → ${permission}`)
    return {action: 'updated', permission, role: {id: role.id, name: role.name, workspace: role.workspace}, row: {...target, id: row.id}}
  }
}
