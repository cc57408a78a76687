import {BaseCommand} from '../../cli/base-command.js'
import {ExitCode, UserError} from '../../core/errors.js'
import {askNewPassword, newPasswordFlags} from '../../cli/break-glass.js'
import {usernameArg} from '../../cli/flags.js'
import {redactUrl} from '../../server/store/store.js'
import {type BreakGlassResult} from '../../server/store/break-glass.js'

export default class StoreResetPassword extends BaseCommand<typeof StoreResetPassword> {
  // Works on the store itself, not through a server: no --profile or --tracking-uri.
  static override baseFlags = {} as typeof BaseCommand.baseFlags
  static override args = {username: usernameArg}
  static override description = `Break-glass: for the day no admin can log in. Sets the password of a user (typically an admin whose password is lost) directly in serve's store, a JSON file or a PostgreSQL database, whether serve is running on it or not: the write takes the store's own lock, and a running serve applies it at once (the old password stops working, the new one works). The password is asked twice, hidden, on a terminal, or read from standard input with --password-stdin; never from the command line. It is held to the same policy as serve's (--password-min-length, --refused-passwords). Asks for confirmation on a terminal; without one, --yes is needed.`
  static override examples = [
    '<%= config.bin %> <%= command.id %> admin --store /var/lib/mlflowctl/auth.json',
    'printf %s "$NEW_PASSWORD" | <%= config.bin %> <%= command.id %> admin --store postgresql://mlflowctl@db.internal/auth --password-stdin --yes',
  ]
  static override flags = newPasswordFlags
  static override summary = "Set a user's password directly in serve's store (no login needed)."

  public async run(): Promise<BreakGlassResult> {
    const {username} = this.args
    const {describeUser, resetPassword, serviceAccountRefusal} = await import('../../server/store/break-glass.js')
    const where = redactUrl(this.flags.store)
    const {password, policy} = await askNewPassword(this.flags, username, {
      action: `replace the password of ${username} in ${where}`,
      check: async () => {
        const user = await describeUser(this.flags.store, username)
        if (user?.serviceAccount) throw serviceAccountRefusal(username)
        if (!user)
          throw new UserError(`User with username=${username} not found in ${where}. Nothing was changed.`, {
            code: 'RESOURCE_DOES_NOT_EXIST',
            exit: ExitCode.NotFound,
            hint: 'Create an admin with `mlflowctl store create-admin`.',
          })
      },
    })
    const result = await resetPassword({location: this.flags.store, password, policy, username})
    this.status(`Set the password of ${username}${result.is_admin ? ' (admin)' : ''} in ${result.store}`)
    return result
  }
}
