/**
 * Access tokens: what they look like, how serve recognises one on a request, and when each was last
 * used. A token is `mlft_` followed by the base64url of 32 random bytes (43 characters): the prefix
 * lets secret scanners find leaked ones. The store keeps only the SHA-256 of the text: for 256
 * random bits a fast digest is as strong as a slow key derivation, so a Bearer request costs one
 * digest and one Map lookup, and never waits behind password derivations.
 */
import {createHash, randomBytes} from 'node:crypto'

import {type Store, type TokenRecord, type UserRecord} from './store/store.js'

export const TOKEN_PREFIX = 'mlft_'
/** The whole text: prefix and 43 base64url characters. */
const TOKEN_PATTERN = /^mlft_[A-Za-z0-9_-]{43}$/

/** A new token's text and the digest the store keeps. */
export function newToken(): {digest: string; text: string} {
  const text = `${TOKEN_PREFIX}${randomBytes(32).toString('base64url')}`
  return {digest: tokenDigest(text), text}
}

export function tokenDigest(text: string): string {
  return createHash('sha256').update(text).digest('hex')
}

export function looksLikeToken(text: string): boolean {
  return TOKEN_PATTERN.test(text)
}

/** Whether the token has expired at `now` (ms since the epoch): at its expiry instant it no longer works. */
export function isExpired(token: TokenRecord, now: number): boolean {
  return token.expiresAt !== null && Date.parse(token.expiresAt) <= now
}

export type TokenCheckResult = {kind: 'rejected'} | {kind: 'verified'; token: TokenRecord; user: UserRecord}

export interface TokenUseOptions {
  /** How often the last-used times are written, all in one write. Default 60 s. */
  flushIntervalMs?: number
  /** Told each check's outcome (metrics): an expired token apart from other rejections. */
  onCheck?: (result: 'expired' | 'rejected' | 'verified') => void
  /** Told when a write of last-used times failed (they are tried again at the next interval). */
  onError?: (error: Error) => void
}

/**
 * Bearer tokens checked against the store, and their last use kept in memory and written in
 * batches: at most one write per interval for all tokens, so a token's `last_used_at` lags its real
 * last use by up to the interval (and a process that stops loses its last interval).
 */
export class TokenCheck {
  private readonly lastUsed = new Map<number, string>()
  private readonly timer: NodeJS.Timeout
  private flushing: Promise<void> | undefined

  constructor(
    private readonly store: Store,
    private readonly options: TokenUseOptions = {},
  ) {
    this.timer = setInterval(() => void this.flush(), options.flushIntervalMs ?? 60_000)
    this.timer.unref()
  }

  /** Synchronous: a digest and a lookup. Unknown, revoked and expired tokens, and those of users gone, are all just rejected. */
  check(text: string, now = Date.now()): TokenCheckResult {
    const token = looksLikeToken(text) ? this.store.getTokenByDigest(tokenDigest(text)) : undefined
    const user = token && this.store.getUserById(token.userId)
    const expired = token !== undefined && isExpired(token, now)
    const verified = user !== undefined && !expired
    this.options.onCheck?.(verified ? 'verified' : expired ? 'expired' : 'rejected')
    if (!verified) return {kind: 'rejected'}
    this.lastUsed.set(token!.id, new Date(now).toISOString())
    return {kind: 'verified', token: token!, user}
  }

  /** The last use not yet written, for answers that show last_used_at. */
  pendingLastUse(tokenId: number): string | undefined {
    return this.lastUsed.get(tokenId)
  }

  /** Writes the last-used times gathered since the last write, in one write (after the one under way, if any). */
  flush(): Promise<void> {
    if (this.flushing) return this.flushing.then(() => this.flush())
    if (this.lastUsed.size === 0) return Promise.resolve()
    const batch = new Map(this.lastUsed)
    this.lastUsed.clear()
    this.flushing = this.store
      .touchTokens(batch)
      .then(
        () => {},
        (error: Error) => {
          // Kept for the next try, unless a newer use came meanwhile.
          for (const [id, at] of batch) if (!this.lastUsed.has(id)) this.lastUsed.set(id, at)
          this.options.onError?.(new Error(`could not record when access tokens were last used: ${error.message}`))
        },
      )
      .finally(() => (this.flushing = undefined))
    return this.flushing
  }

  /** Stops the interval; call flush() first to keep the last times. */
  stop(): void {
    clearInterval(this.timer)
  }
}
