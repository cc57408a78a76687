import {Args} from '../../cli/oclif-command.js'
import {Flags} from '../../cli/oclif.js'
import {BaseCommand} from '../../cli/base-command.js'
import {yesFlag} from '../../cli/flags.js'
import {confirmDestructive} from '../../cli/prompts.js'
import {ExitCode, UserError} from '../../core/errors.js'

export interface TokensRevokeResult {
  id?: number
  name?: string
  revoked: true
  username?: string
}

export default class TokensRevoke extends BaseCommand<typeof TokensRevoke> {
  static override args = {name: Args.string({description: 'The token’s label (or give --id).'})}
  static override description = `Needs mlflowctl serve. The token stops working at once, on every replica of serve. Your own tokens; admins any user's. Asks for confirmation on a terminal; without one it refuses unless --yes is given.`
  static override examples = [
    '<%= config.bin %> <%= command.id %> laptop --yes',
    '<%= config.bin %> <%= command.id %> nightly --user ci-bot --yes',
    '<%= config.bin %> <%= command.id %> --id 12 --yes',
  ]
  static override flags = {
    id: Flags.integer({description: 'The token’s id (from `tokens list`) instead of its label.', exclusive: ['user'], min: 1}),
    user: Flags.string({char: 'u', description: 'Whose token (default: yourself). Admins only for other users.'}),
    yes: yesFlag,
  }
  static override summary = 'Revoke an access token (mlflowctl serve only).'

  public async run(): Promise<TokensRevokeResult> {
    const {id, user, yes} = this.flags
    const {name} = this.args
    if ((id === undefined) === (name === undefined))
      throw new UserError('Name the token by its label or by --id (one of them)', {code: 'USAGE', exit: ExitCode.Usage})
    const what = id === undefined ? `token ${name}${user === undefined ? '' : ` of ${user}`}` : `token ${id}`
    await confirmDestructive(`revoke ${what}`, yes)
    const session = await this.session()
    await session.tokens.revoke(id === undefined ? {name: name!, username: user} : {id})
    this.status(`Revoked ${what}`)
    return id === undefined ? {name, revoked: true, ...(user === undefined ? {} : {username: user})} : {id, revoked: true}
  }
}
