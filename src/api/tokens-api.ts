/**
 * mlflowctl serve's access tokens (its own API: MLflow's basic-auth app has none). Against a server
 * without it, every call says so in one sentence (exit code for "not supported by this server").
 */
import {type MlflowHttp, whenEndpointMissing} from '../client/http.js'
import {ExitCode, UserError} from '../core/errors.js'

const BASE = '/api/2.0/mlflowctl/tokens'

/** What serve says about a token: never its text. Times are ISO 8601 UTC; null: never / not yet. */
export interface TokenInfo {
  created_at: string
  expires_at: null | string
  id: number
  /** Approximate: serve writes last uses about once a minute. */
  last_used_at: null | string
  name: string
  user_id: number
  username: null | string
}

export interface CreatedToken {
  /** The token itself: shown once, stored nowhere by serve. */
  token: string
  token_info: TokenInfo
}

/** The server has no token API: MLflow's own server, or an mlflowctl serve from before tokens. */
export function noTokens(cause?: unknown): UserError {
  return new UserError('This server does not offer access tokens: they are a feature of mlflowctl serve, not of MLflow’s basic-auth app', {
    cause,
    code: 'UNSUPPORTED',
    exit: ExitCode.Unsupported,
    hint: 'Put `mlflowctl serve` in front of the MLflow server to use tokens.',
  })
}

export class TokensApi {
  constructor(private readonly http: MlflowHttp) {}

  /** `expiresInSeconds`: null for a token that never expires; undefined for the server's default (90 days). */
  async create(options: {expiresInSeconds?: null | number; name: string; username?: string}): Promise<CreatedToken> {
    const body: Record<string, unknown> = {name: options.name}
    if (options.username !== undefined) body.username = options.username
    if (options.expiresInSeconds !== undefined) body.expires_in_seconds = options.expiresInSeconds
    return this.call(() => this.http.post<CreatedToken>(`${BASE}/create`, body))
  }

  /** The user's tokens; for an admin naming no one, everyone's. */
  async list(username?: string): Promise<TokenInfo[]> {
    const answer = await this.call(() => this.http.get<{tokens?: TokenInfo[]}>(`${BASE}/list`, username === undefined ? {} : {username}))
    return answer.tokens ?? []
  }

  async revoke(options: {id: number} | {name: string; username?: string}): Promise<void> {
    const body = 'id' in options ? {id: options.id} : {name: options.name, ...(options.username === undefined ? {} : {username: options.username})}
    await this.call(() => this.http.delete(`${BASE}/revoke`, body))
  }

  private call<T>(request: () => Promise<T>): Promise<T> {
    return whenEndpointMissing(request(), noTokens)
  }
}
