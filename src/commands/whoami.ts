import {BaseCommand} from '../cli/base-command.js'
import {colorsFor, renderRecord} from '../cli/render.js'
import {CREDENTIAL_ENV} from '../client/connection.js'

export interface WhoamiResult {
  auth: string
  /** Environment variables that override the stored login. */
  overrides: string[]
  password_source?: string
  profile?: string
  token_source?: string
  tracking_uri: {source: string; value: string}
  user: {id?: number; is_admin?: boolean; username: string}
  username_source?: string
}

export default class Whoami extends BaseCommand<typeof Whoami> {
  static override aliases = ['auth:status']
  static override description =
    'Asks the server who you are, and shows where the server address and each credential came from (flag, environment variable or file). Exits 3 when the server rejects the credentials.'
  static override examples = ['<%= config.bin %> <%= command.id %>', '<%= config.bin %> <%= command.id %> --json']
  static override summary = 'Show the server, the user you are logged in as, and whether you are an admin.'

  public async run(): Promise<WhoamiResult> {
    const session = await this.session()
    const {connection} = session
    const overrides = session.profile ? CREDENTIAL_ENV.filter((name) => process.env[name]) : []
    for (const name of overrides) this.warn(`${name} is set and overrides the stored login "${session.profile}"`)
    const user = await session.whoami()
    const result: WhoamiResult = {
      auth: connection.auth,
      overrides,
      password_source: connection.password?.source,
      profile: session.profile,
      token_source: connection.token?.source,
      tracking_uri: {source: connection.trackingUri.source, value: connection.trackingUri.value},
      user: {id: user.id, is_admin: user.is_admin, username: user.username},
      username_source: connection.username?.source,
    }
    this.log(
      renderRecord(
        [
          ['server', `${result.tracking_uri.value} (${result.tracking_uri.source})`],
          ['user', user.username],
          ['admin', user.is_admin === undefined ? undefined : user.is_admin ? 'yes' : 'no'],
          ['auth', connection.auth],
          ['username from', result.username_source],
          ['password from', result.password_source],
          ['token from', result.token_source],
          ['profile', session.profile],
        ],
        colorsFor(process.stdout),
      ),
    )
    return result
  }
}
