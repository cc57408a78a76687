import {Flags} from '../../cli/oclif.js'
import {type TokenInfo} from '../../api/tokens-api.js'
import {BaseCommand} from '../../cli/base-command.js'
import {expiresFlag, tableTime} from '../../cli/tokens.js'

export interface TokensCreateResult extends TokenInfo {
  token: string
}

export default class TokensCreate extends BaseCommand<typeof TokensCreate> {
  static override description = `Needs mlflowctl serve (MLflow's own server has no tokens). Admins create tokens for anyone; other users (also when logged in with a token) for themselves.

The token is printed once, on standard output, and cannot be shown again: serve keeps only its SHA-256. Tokens start with mlft_. Use one with MLflow's clients as MLFLOW_TRACKING_TOKEN (sent as "Authorization: Bearer"), or store it with \`mlflowctl login --token-stdin\`.`
  static override examples = [
    '<%= config.bin %> <%= command.id %> --name laptop',
    '<%= config.bin %> <%= command.id %> --user ci-bot --name nightly --expires 30d',
    'export MLFLOW_TRACKING_TOKEN=$(<%= config.bin %> <%= command.id %> --user ci-bot --name nightly)',
  ]
  static override flags = {
    expires: expiresFlag(),
    name: Flags.string({char: 'n', description: 'A label for the token, unique among the user’s tokens (e.g. where it is used).', required: true}),
    user: Flags.string({char: 'u', description: 'Whose token (default: yourself). Admins only for other users.'}),
  }
  static override summary = 'Create an access token for a user (mlflowctl serve only).'

  public async run(): Promise<TokensCreateResult> {
    const session = await this.session()
    const created = await session.tokens.create({expiresInSeconds: this.flags.expires, name: this.flags.name, username: this.flags.user})
    const info = created.token_info
    this.status(
      `Created token ${info.name} for ${info.username ?? this.flags.user ?? 'you'}, ${info.expires_at === null ? 'never expires' : `expires ${tableTime(info.expires_at, '')}`}. It is shown only this once:`,
    )
    this.log(created.token)
    return {...info, token: created.token}
  }
}
