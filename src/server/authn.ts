/**
 * Who is calling: HTTP Basic, read as Werkzeug reads it, checked against the store. A full
 * key derivation (scrypt) per request is what makes MLflow's app slow, so successful checks are
 * remembered under an HMAC of the credentials with a per-process key; an entry only counts while
 * the user still exists with the same password hash, so a password change or deletion ends it.
 */
import {createHmac, randomBytes} from 'node:crypto'

import {verifyPassword} from './passwords.js'
import {type Store, type UserRecord} from './store/store.js'

export interface BasicCredentials {
  password: string
  username: string
}

/** Werkzeug: `Basic base64(user:pass)`, UTF-8, split at the first colon; anything else is no credentials. */
export function parseBasicAuthorization(header: string | undefined): BasicCredentials | undefined {
  if (!header) return undefined
  const match = /^basic +([A-Za-z0-9+/]+=*) *$/i.exec(header)
  if (!match) return undefined
  let decoded: string
  try {
    decoded = new TextDecoder('utf-8', {fatal: true}).decode(Buffer.from(match[1], 'base64'))
  } catch {
    return undefined
  }

  const colon = decoded.indexOf(':')
  if (colon < 0) return undefined
  return {password: decoded.slice(colon + 1), username: decoded.slice(0, colon)}
}

const MAX_CACHED = 10_000

export class Authenticator {
  private readonly key = randomBytes(32)
  /** HMAC(credentials) → the password hash they were verified against. Insertion order = age. */
  private readonly verified = new Map<string, string>()

  constructor(private readonly store: Store) {}

  async authenticate(credentials: BasicCredentials | undefined): Promise<undefined | UserRecord> {
    if (!credentials || !credentials.username) return undefined
    const user = this.store.getUser(credentials.username)
    const cacheKey = createHmac('sha256', this.key).update(credentials.username).update('\0').update(credentials.password).digest('base64')
    if (user && this.verified.get(cacheKey) === user.passwordHash) return user
    // Unknown users still cost a verification, so timing does not tell which usernames exist.
    const ok = await verifyPassword(user?.passwordHash ?? DUMMY_HASH, credentials.password)
    if (!user || !ok) return undefined
    // The user may have changed while we hashed: trust only what is still current.
    const current = this.store.getUser(credentials.username)
    if (current?.passwordHash !== user.passwordHash) return undefined
    if (this.verified.size >= MAX_CACHED) this.verified.delete(this.verified.keys().next().value!)
    this.verified.set(cacheKey, user.passwordHash)
    return current
  }
}

/** A well-formed scrypt hash no password matches, so a miss costs what a hit costs. */
const DUMMY_HASH = 'scrypt:32768:8:1$dummysaltdummysa$' + '0'.repeat(128)
