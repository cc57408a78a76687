import {type UserSummary} from '../../api/auth-api.js'
import {BaseCommand} from '../../cli/base-command.js'
import {renderTable} from '../../cli/output.js'

export default class UsersList extends BaseCommand<typeof UsersList> {
  static override description = 'Admins only. Needs a server with a user list endpoint (MLflow 3.10 or later, or mlflowctl serve).'
  static override examples = ['<%= config.bin %> <%= command.id %>', '<%= config.bin %> <%= command.id %> --json']
  static override summary = 'List users.'

  public async run(): Promise<{users: UserSummary[]}> {
    const session = await this.session()
    const users = await session.api.listUsers()
    this.log(
      renderTable(
        ['USERNAME', 'ID', 'ADMIN'],
        users.map((user) => [user.username, user.id, user.is_admin === undefined ? '' : user.is_admin ? 'yes' : 'no']),
        this.stdoutColors(),
      ),
    )
    return {users}
  }
}
