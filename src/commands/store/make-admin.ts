import {BaseCommand} from '../../cli/base-command.js'
import {storeFlag} from '../../cli/break-glass.js'
import {usernameArg, yesFlag} from '../../cli/flags.js'
import {confirmDestructive} from '../../cli/prompts.js'
import {redactUrl} from '../../server/store/store.js'
import {type BreakGlassResult} from '../../server/store/break-glass.js'

export default class StoreMakeAdmin extends BaseCommand<typeof StoreMakeAdmin> {
  // Works on the store itself, not through a server: no --profile or --tracking-uri.
  static override baseFlags = {} as typeof BaseCommand.baseFlags
  static override args = {username: usernameArg}
  static override description = `Break-glass: makes an existing user an admin directly in serve's store (a JSON file or a PostgreSQL database), whether serve is running on it or not; a running serve applies it at once. Their password is unchanged. There is no offline demotion or deletion: do those through serve, which never lets the last admin go. Asks for confirmation on a terminal; without one, --yes is needed.`
  static override examples = ['<%= config.bin %> <%= command.id %> alice --store /var/lib/mlflowctl/auth.json --yes']
  static override flags = {store: storeFlag, yes: yesFlag}
  static override summary = "Make a user an admin directly in serve's store (no login needed)."

  public async run(): Promise<BreakGlassResult> {
    const {username} = this.args
    const {makeAdmin} = await import('../../server/store/break-glass.js')
    await confirmDestructive(`make ${username} an admin in ${redactUrl(this.flags.store)}`, this.flags.yes)
    const result = await makeAdmin({location: this.flags.store, username})
    this.status(`${username} is an admin in ${result.store}`)
    return result
  }
}
