import {Flags} from '../../cli/oclif.js'
import {isPerUserRole} from '../../api/roles-api.js'
import {BaseCommand, tableFlags} from '../../cli/base-command.js'
import {type RoleJson, roleFlags, roleJson, roleTableRows, ROLES_TABLE_HEAD} from '../../cli/roles.js'

export default class RolesList extends BaseCommand<typeof RolesList> {
  static override description =
    "MLflow keeps each user's own permissions as a hidden role named __user_<id>__; those are left out unless --all is given (`mlflowctl perms list --user USER` shows them per user)."
  static override examples = ['<%= config.bin %> <%= command.id %>', '<%= config.bin %> <%= command.id %> --all --json']
  static override flags = {
    ...tableFlags,
    all: Flags.boolean({default: false, description: "Also list the hidden per-user roles that hold each user's own permissions."}),
    workspace: roleFlags.workspace,
  }
  static tableHead = ROLES_TABLE_HEAD
  static override summary = 'List the roles of a workspace, with their permissions.'

  public async run(): Promise<{roles: RoleJson[]; workspace: string}> {
    const session = await this.session()
    const roles = (await session.roles.list(this.flags.workspace)).filter((role) => this.flags.all || !isPerUserRole(role))
    if (roles.length === 0) this.status(`No roles in workspace ${this.flags.workspace}`)
    else this.table(roleTableRows(roles))
    return {roles: roles.map((role) => roleJson(role)), workspace: this.flags.workspace}
  }
}
