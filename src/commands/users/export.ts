import {BaseCommand} from '../../cli/base-command.js'
import {mapLimit} from '../../core/map-limit.js'
import {DEFAULT_CONCURRENCY} from '../../policy/apply.js'
import {writeUsersCsv} from '../../policy/users-csv.js'

export default class UsersExport extends BaseCommand<typeof UsersExport> {
  static override description =
    'Admins only. Prints CSV on stdout: the header username,admin, then one line per user sorted by name, which `mlflowctl users import` reads back. No passwords: MLflow keeps only their hashes.'
  static override examples = ['<%= config.bin %> <%= command.id %> > users.csv']
  static override summary = 'Print every user and their admin flag as CSV.'

  public async run(): Promise<{users: Array<{admin: boolean; username: string}>}> {
    const session = await this.session()
    const listed = await session.api.listUsers()
    // Some servers leave is_admin out of the list; each such user is asked once, a few at a time as apply sends its changes.
    const users = await mapLimit(listed, DEFAULT_CONCURRENCY, async (user) => ({
      admin: user.is_admin ?? (await session.api.getUser(user.username)).is_admin,
      username: user.username,
    }))
    this.log(writeUsersCsv(users).trimEnd())
    return {users: users.sort((a, b) => (a.username < b.username ? -1 : a.username > b.username ? 1 : 0))}
  }
}
