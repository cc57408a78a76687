import {BaseCommand} from '../../cli/base-command.js'
import {usernameArg, yesFlag} from '../../cli/flags.js'
import {confirmDestructive} from '../../cli/prompts.js'

export default class UsersDemote extends BaseCommand<typeof UsersDemote> {
  static override args = {username: usernameArg}
  static override description =
    'Admins only. Asks for confirmation on a terminal (also with --json); without a terminal it refuses unless --yes is given. The last admin is never demoted: mlflowctl checks the users the server lists first (MLflow itself would allow it), and serve refuses it too (exit 2).'
  static override examples = ['<%= config.bin %> <%= command.id %> alice --yes']
  static override flags = {yes: yesFlag}
  static override summary = "Take away a user's admin rights."

  public async run(): Promise<{is_admin: false; username: string}> {
    const {username} = this.args
    await confirmDestructive(`remove admin rights from ${username}`, this.flags.yes)
    const session = await this.session()
    await session.api.refuseLastAdmin(username, 'demote')
    await session.api.setAdmin(username, false)
    this.status(`${username} is no longer an admin`)
    return {is_admin: false, username}
  }
}
