import {BaseCommand} from '../../lib/base-command.js'
import {usernameArg, yesFlag} from '../../lib/flags.js'
import {confirmDestructive} from '../../lib/prompts.js'

export default class UsersDelete extends BaseCommand<typeof UsersDelete> {
  static override args = {username: usernameArg}
  static override description = 'Admins only. Asks for confirmation on a terminal; pass --yes in scripts.'
  static override examples = ['<%= config.bin %> <%= command.id %> alice', '<%= config.bin %> <%= command.id %> alice --yes']
  static override flags = {yes: yesFlag}
  static override summary = 'Delete a user.'

  public async run(): Promise<{deleted: true; username: string}> {
    const {username} = this.args
    await confirmDestructive(`delete user ${username}`, this.flags.yes || this.jsonEnabled())
    const session = await this.session()
    await session.api.deleteUser(username)
    this.status(`Deleted user ${username}`)
    return {deleted: true, username}
  }
}
