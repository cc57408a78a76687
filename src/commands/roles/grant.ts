import {BaseCommand} from '../../cli/base-command.js'
import {permissionFlag} from '../../cli/flags.js'
import {describeTarget, pickRole, type PatternTarget, resolvePattern, resourceNameFlag, roleFlags, rowArgs, rowArgsOf} from '../../cli/roles.js'

export interface RoleGrantResult {
  action: 'created' | 'removed' | 'updated'
  permission?: string
  role: {id: number; name: string; workspace: string}
  row: PatternTarget & {id: number}
}

export default class RolesGrant extends BaseCommand<typeof RolesGrant> {
  static override args = rowArgs
  static override description = `Every member of the role gets the permission. RESOURCE is one resource's id (registered models and prompts: the name) or * for all of the kind; run, trace, assessment, logged_model, review_queue and the *_version kinds, and workspace (USE or MANAGE), take * only. DENY overrides any other row on the same resource. An experiment or registered model must exist (exit 5 otherwise).`
  static override examples = [
    '<%= config.bin %> <%= command.id %> readers experiment "*" --permission READ',
    '<%= config.bin %> <%= command.id %> readers experiment "My experiment" --permission EDIT',
    '<%= config.bin %> <%= command.id %> readers model churn-model --permission DENY',
    '<%= config.bin %> <%= command.id %> readers scorer 42 relevance --permission READ',
  ]
  static override flags = {...roleFlags, ...resourceNameFlag, permission: permissionFlag({required: true})}
  static override summary = 'Add a permission to a role (a row: resource type, pattern, level).'

  public async run(): Promise<RoleGrantResult> {
    const {flags} = this
    const {permission} = flags
    const args = rowArgsOf(this.args, flags.id)
    const session = await this.session()
    const role = await pickRole(session, args.role, flags, true)
    const target = await resolvePattern(session, args, {byName: flags.name, mustExist: true, permission})
    const row = await session.roles.addPermission(role.id, target.resource_type, target.resource_pattern, permission)
    this.status(`Granted ${permission} on ${describeTarget(target)} to role ${role.name}`)
    return {action: 'created', permission, role: {id: role.id, name: role.name, workspace: role.workspace}, row: {...target, id: row.id}}
  }
}
