import {Flags} from '../../cli/oclif.js'
import {type User} from '../../api/auth-api.js'
import {BaseCommand} from '../../cli/base-command.js'
import {passwordStdinFlag, usernameArg} from '../../cli/flags.js'
import {promptNewPassword, readNewPasswordFromStdin} from '../../cli/prompts.js'

export default class UsersCreate extends BaseCommand<typeof UsersCreate> {
  static override args = {username: usernameArg}
  static override description = `Admins only. The password is asked twice on a terminal, or read from standard input with --password-stdin; it is never taken from the command line. New users are not admins (see \`users promote\`).

--service-account (mlflowctl serve only) creates a user with no password: no one can log in as it with a password, and it is used through access tokens (\`tokens create --user NAME\`).`
  static override examples = [
    '<%= config.bin %> <%= command.id %> alice',
    'printf %s "$ALICE_PASSWORD" | <%= config.bin %> <%= command.id %> alice --password-stdin',
    '<%= config.bin %> <%= command.id %> ci-bot --service-account',
  ]
  static override flags = {
    'password-stdin': passwordStdinFlag,
    'service-account': Flags.boolean({
      default: false,
      description: 'A user with no password, used through access tokens only (mlflowctl serve only).',
      exclusive: ['password-stdin'],
    }),
  }
  static override summary = 'Create a user.'

  public async run(): Promise<{user: User}> {
    if (this.flags['service-account']) {
      const session = await this.session()
      const user = await session.api.createServiceAccount(this.args.username)
      this.status(
        `Created service account ${user.username} (no password; create a token for it with \`mlflowctl tokens create --user ${user.username} --name LABEL\`)`,
      )
      return {user}
    }

    const password = this.flags['password-stdin']
      ? await readNewPasswordFromStdin()
      : await promptNewPassword({flag: '--password-stdin', message: `Password for ${this.args.username}`})
    const session = await this.session()
    const user = await session.api.createUser(this.args.username, password)
    this.status(`Created user ${user.username}`)
    return {user}
  }
}
