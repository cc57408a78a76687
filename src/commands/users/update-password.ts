import {BaseCommand} from '../../cli/base-command.js'
import {passwordStdinFlag, usernameArg} from '../../cli/flags.js'
import {promptNewPassword, readNewPasswordFromStdin} from '../../cli/prompts.js'

export interface UpdatePasswordResult {
  /** True when the new password also replaced the stored login it was changed through. */
  stored_login_updated: boolean
  username: string
}

export default class UsersUpdatePassword extends BaseCommand<typeof UsersUpdatePassword> {
  static override args = {username: usernameArg}
  static override description = `Admins can change anyone's password; users their own. When you change your own password, your current one is sent as MLflow 3.13+ requires, and a login stored by \`mlflowctl login\` is updated so it keeps working.`
  static override examples = [
    '<%= config.bin %> <%= command.id %> alice',
    'printf %s "$NEW_PASSWORD" | <%= config.bin %> <%= command.id %> alice --password-stdin',
  ]
  static override flags = {'password-stdin': passwordStdinFlag}
  static override summary = "Change a user's password."

  public async run(): Promise<UpdatePasswordResult> {
    const {username} = this.args
    const password = this.flags['password-stdin']
      ? await readNewPasswordFromStdin()
      : await promptNewPassword({flag: '--password-stdin', message: `New password for ${username}`})
    const session = await this.session()
    const {connection} = session
    const self = connection.username?.value === username
    await session.api.updatePassword(username, password, self ? connection.password?.value : undefined)
    const storedLoginUpdated = self && (await session.updateStoredPassword(password))
    this.status(`Changed the password of ${username}${storedLoginUpdated ? ` and the stored login in ${session.credentials.path}` : ''}`)
    return {stored_login_updated: storedLoginUpdated, username}
  }
}
