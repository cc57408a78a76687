import {Flags} from '../../cli/oclif.js'
import {BaseCommand} from '../../cli/base-command.js'
import {UserError} from '../../core/errors.js'
import {usernameArg, yesFlag} from '../../cli/flags.js'
import {canPrompt, confirmDestructive} from '../../cli/prompts.js'

export interface UsersDeleteResult {
  deleted: true
  /** How many permissions were revoked first, on a server that keeps them otherwise. */
  revoked_permissions?: number
  username: string
}

export default class UsersDelete extends BaseCommand<typeof UsersDelete> {
  static override args = {username: usernameArg}
  static override description = `Admins only. Asks for confirmation on a terminal (also with --json); without a terminal it refuses unless --yes is given.

The last admin is never deleted: mlflowctl checks the users the server lists first, and serve refuses it too (exit 2).

MLflow 3.12 and older refuse to delete a user who still holds permissions. Then --revoke-permissions revokes them and deletes the user; without it, a terminal offers to, and otherwise nothing is changed and the command says so.`
  static override examples = [
    '<%= config.bin %> <%= command.id %> alice',
    '<%= config.bin %> <%= command.id %> alice --yes',
    '<%= config.bin %> <%= command.id %> alice --yes --revoke-permissions',
  ]
  static override flags = {
    'revoke-permissions': Flags.boolean({
      default: false,
      description: 'If the server refuses because the user holds permissions (MLflow 3.12 and older), revoke them and delete the user.',
    }),
    yes: yesFlag,
  }
  static override summary = 'Delete a user.'

  public async run(): Promise<UsersDeleteResult> {
    const {username} = this.args
    const {'revoke-permissions': revokePermissions, yes} = this.flags
    await confirmDestructive(`delete user ${username}`, yes)
    const session = await this.session()
    await session.api.refuseLastAdmin(username, 'delete')
    try {
      await session.api.deleteUser(username)
    } catch (error) {
      if (!(error instanceof UserError && error.code === 'USER_HAS_PERMISSIONS')) throw error
      // Offered on a terminal only when nobody said --yes: a script gets the error and its hint.
      if (!revokePermissions && (yes || !canPrompt())) throw error
      if (!revokePermissions) {
        this.status(error.message)
        await confirmDestructive(`revoke every permission of ${username} and delete the user`, false)
      }

      const revoked = await session.api.revokeAll(username)
      this.status(`Revoked ${revoked} permission${revoked === 1 ? '' : 's'} of ${username}`)
      await session.api.deleteUser(username)
      this.status(`Deleted user ${username}`)
      return {deleted: true, revoked_permissions: revoked, username}
    }

    this.status(`Deleted user ${username}`)
    return {deleted: true, username}
  }
}
