import {type User} from '../../api/auth-api.js'
import {BaseCommand} from '../../cli/base-command.js'
import {passwordStdinFlag, usernameArg} from '../../cli/flags.js'
import {promptNewPassword, readNewPasswordFromStdin} from '../../cli/prompts.js'

export default class UsersCreate extends BaseCommand<typeof UsersCreate> {
  static override args = {username: usernameArg}
  static override description =
    'Admins only. The password is asked twice on a terminal, or read from standard input with --password-stdin; it is never taken from the command line. New users are not admins (see `users promote`).'
  static override examples = [
    '<%= config.bin %> <%= command.id %> alice',
    'printf %s "$ALICE_PASSWORD" | <%= config.bin %> <%= command.id %> alice --password-stdin',
  ]
  static override flags = {'password-stdin': passwordStdinFlag}
  static override summary = 'Create a user.'

  public async run(): Promise<{user: User}> {
    const password = this.flags['password-stdin']
      ? await readNewPasswordFromStdin()
      : await promptNewPassword({flag: '--password-stdin', message: `Password for ${this.args.username}`})
    const session = await this.session()
    const user = await session.api.createUser(this.args.username, password)
    this.status(`Created user ${user.username}`)
    return {user}
  }
}
