import {BaseCommand} from '../../cli/base-command.js'
import {ExitCode, UserError} from '../../core/errors.js'
import {askNewPassword, newPasswordFlags} from '../../cli/break-glass.js'
import {usernameArg} from '../../cli/flags.js'
import {redactUrl} from '../../server/store/store.js'
import {type BreakGlassResult} from '../../server/store/break-glass.js'

export default class StoreCreateAdmin extends BaseCommand<typeof StoreCreateAdmin> {
  // Works on the store itself, not through a server: no --profile or --tracking-uri.
  static override baseFlags = {} as typeof BaseCommand.baseFlags
  static override args = {username: usernameArg}
  static override description = `Break-glass: creates a new admin directly in serve's store (a JSON file or a PostgreSQL database), whether serve is running on it or not; a running serve lets the new admin in at once. A user of that name already there is refused (exit 6): use \`store reset-password\` and \`store make-admin\` for an existing user. The password is asked twice, hidden, on a terminal, or read from standard input with --password-stdin, and held to serve's policy (--password-min-length, --refused-passwords). Asks for confirmation on a terminal; without one, --yes is needed.`
  static override examples = [
    '<%= config.bin %> <%= command.id %> rescue --store /var/lib/mlflowctl/auth.json',
    'printf %s "$PASSWORD" | <%= config.bin %> <%= command.id %> rescue --store postgresql://mlflowctl@db.internal/auth --password-stdin --yes',
  ]
  static override flags = newPasswordFlags
  static override summary = "Create an admin directly in serve's store (no login needed)."

  public async run(): Promise<BreakGlassResult> {
    const {username} = this.args
    const {createAdmin, describeUser} = await import('../../server/store/break-glass.js')
    const where = redactUrl(this.flags.store)
    const {password, policy} = await askNewPassword(this.flags, username, {
      action: `create the admin ${username} in ${where}`,
      check: async () => {
        if (await describeUser(this.flags.store, username))
          throw new UserError(`User (username=${username}) already exists in ${where}. Nothing was changed.`, {
            code: 'RESOURCE_ALREADY_EXISTS',
            exit: ExitCode.AlreadyExists,
            hint: 'Use `mlflowctl store reset-password` and `mlflowctl store make-admin` for an existing user.',
          })
      },
    })
    const result = await createAdmin({location: this.flags.store, password, policy, username})
    this.status(`Created the admin ${username} in ${result.store}`)
    return result
  }
}
