import {BaseCommand, tableFlags} from '../../cli/base-command.js'
import {pickRole, roleArg, roleFlags} from '../../cli/roles.js'

export interface RoleMembersResult {
  members: Array<{user_id: number; username?: string}>
  role: {id: number; name: string; workspace: string}
}

export default class RolesMembers extends BaseCommand<typeof RolesMembers> {
  static override args = {role: roleArg}
  static override examples = ['<%= config.bin %> <%= command.id %> readers', '<%= config.bin %> <%= command.id %> --id 7 --json']
  static override flags = {...roleFlags, ...tableFlags}
  static tableHead = ['USERNAME', 'USER ID']
  static override summary = 'List the users who hold a role.'

  public async run(): Promise<RoleMembersResult> {
    const session = await this.session()
    const role = await pickRole(session, this.args.role, this.flags, false)
    const assignments = await session.roles.members(role.id)
    // MLflow answers user ids; names come from the user list (admins), else ids alone are shown.
    const names = new Map((await session.api.listUsers().catch(() => [])).map((user) => [user.id, user.username]))
    const members = assignments.map((assignment) => ({
      user_id: assignment.user_id,
      ...(names.has(assignment.user_id) ? {username: names.get(assignment.user_id)} : {}),
    }))
    if (members.length === 0) this.status(`Role ${role.name} has no members`)
    else this.table(members.map((member) => [member.username, member.user_id]))
    return {members, role: {id: role.id, name: role.name, workspace: role.workspace}}
  }
}
