import {BaseCommand} from '../../cli/base-command.js'
import {usernameArg} from '../../cli/flags.js'

export default class UsersPromote extends BaseCommand<typeof UsersPromote> {
  static override args = {username: usernameArg}
  static override description = 'Admins only. Admins pass every permission check.'
  static override examples = ['<%= config.bin %> <%= command.id %> alice']
  static override summary = 'Make a user an admin.'

  public async run(): Promise<{is_admin: true; username: string}> {
    const session = await this.session()
    await session.api.setAdmin(this.args.username, true)
    this.status(`${this.args.username} is now an admin`)
    return {is_admin: true, username: this.args.username}
  }
}
