import {Flags} from '../../cli/oclif.js'
import {isPerUserRole} from '../../api/roles-api.js'
import {BaseCommand, tableFlags} from '../../cli/base-command.js'
import {usernameArg} from '../../cli/flags.js'
import {type RoleJson, roleJson, roleTableRows, ROLES_TABLE_HEAD} from '../../cli/roles.js'

export default class UsersRoles extends BaseCommand<typeof UsersRoles> {
  static override args = {username: usernameArg}
  static override description =
    "Needs a server with roles (MLflow 3.12 or later). The user's own permissions live in a hidden role (__user_<id>__), left out unless --all is given; `mlflowctl perms list --user USER` shows them."
  static override examples = ['<%= config.bin %> <%= command.id %> alice', '<%= config.bin %> <%= command.id %> alice --all --json']
  static override flags = {...tableFlags, all: Flags.boolean({default: false, description: "Also show the hidden role that holds the user's own permissions."})}
  static tableHead = ROLES_TABLE_HEAD
  static override summary = 'List the roles a user holds.'

  public async run(): Promise<{roles: RoleJson[]; username: string}> {
    const session = await this.session()
    const {username} = this.args
    const roles = (await session.roles.rolesOf(username)).filter((role) => this.flags.all || !isPerUserRole(role))
    if (roles.length === 0) this.status(`${username} holds no roles`)
    else this.table(roleTableRows(roles))
    return {roles: roles.map((role) => roleJson(role)), username}
  }
}
