import {Flags} from '../../cli/oclif.js'
import {type TokenInfo} from '../../api/tokens-api.js'
import {BaseCommand, tableFlags} from '../../cli/base-command.js'
import {tableTime} from '../../cli/tokens.js'

export default class TokensList extends BaseCommand<typeof TokensList> {
  static override description = `Needs mlflowctl serve. Your own tokens; an admin sees everyone's, or one user's with --user. Never shows a token itself (serve does not have it).

LAST USED is approximate: serve records uses in memory and writes them about once a minute.`
  static override examples = [
    '<%= config.bin %> <%= command.id %>',
    '<%= config.bin %> <%= command.id %> --user ci-bot',
    '<%= config.bin %> <%= command.id %> --json=name,username,expires_at',
  ]
  static override flags = {
    ...tableFlags,
    user: Flags.string({char: 'u', description: 'Only this user’s tokens (admins for other users).'}),
  }
  static override summary = 'List access tokens (mlflowctl serve only).'
  static tableHead = ['NAME', 'USER', 'ID', 'CREATED', 'EXPIRES', 'LAST USED']

  public async run(): Promise<{tokens: TokenInfo[]}> {
    const session = await this.session()
    const tokens = await session.tokens.list(this.flags.user)
    this.table(
      tokens.map((token) => [
        token.name,
        token.username ?? '',
        token.id,
        tableTime(token.created_at, ''),
        tableTime(token.expires_at, 'never'),
        tableTime(token.last_used_at, 'never'),
      ]),
    )
    return {tokens}
  }
}
