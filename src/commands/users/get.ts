import {type User} from '../../api/auth-api.js'
import {BaseCommand} from '../../cli/base-command.js'
import {usernameArg} from '../../cli/flags.js'
import {colorsFor, renderRecord} from '../../cli/render.js'

export default class UsersGet extends BaseCommand<typeof UsersGet> {
  static override args = {username: usernameArg}
  static override description = 'Admins can see anyone; other users only themselves. `mlflowctl perms list --user NAME` lists what the user holds.'
  static override examples = ['<%= config.bin %> <%= command.id %> alice', '<%= config.bin %> <%= command.id %> alice --json']
  static override summary = 'Show a user.'

  public async run(): Promise<{user: User}> {
    const session = await this.session()
    const user = await session.api.getUser(this.args.username)
    this.log(
      renderRecord(
        [
          ['username', user.username],
          ['id', user.id],
          ['admin', user.is_admin ? 'yes' : 'no'],
        ],
        colorsFor(process.stdout),
      ),
    )
    return {user}
  }
}
