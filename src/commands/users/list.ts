import {type UserSummary} from '../../api/auth-api.js'
import {BaseCommand, tableFlags} from '../../cli/base-command.js'

export default class UsersList extends BaseCommand<typeof UsersList> {
  static override description = 'Admins only. Needs a server with a user list endpoint (MLflow 3.10 or later, or mlflowctl serve).'
  static override examples = [
    '<%= config.bin %> <%= command.id %>',
    '<%= config.bin %> <%= command.id %> --json=username,is_admin',
    '<%= config.bin %> <%= command.id %> --no-header --columns username | while read -r name; do …; done',
  ]
  static override flags = tableFlags
  static override summary = 'List users.'
  static tableHead = ['USERNAME', 'ID', 'ADMIN']

  public async run(): Promise<{users: UserSummary[]}> {
    const session = await this.session()
    const users = await session.api.listUsers()
    this.table(users.map((user) => [user.username, user.id, user.is_admin === undefined ? '' : user.is_admin ? 'yes' : 'no']))
    return {users}
  }
}
