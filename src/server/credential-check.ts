/**
 * Checking HTTP Basic credentials against the store without letting the check be turned against
 * the service. A key derivation (scrypt, ~100 ms of a core) per request is what makes MLflow's app
 * slow, and what a flood of wrong passwords would burn, so:
 * - a verified pair is remembered, and so is a wrong one: both under a digest of the credentials
 *   keyed with a per-process secret (never the password), each valid only while the user's hash is
 *   the one it was checked against, so a password change, a new user or a deletion ends it. Repeating a
 *   password costs nothing, right or wrong; the two memories are apart, so wrong pairs can never
 *   push out verified ones;
 * - the same pair checked twice at once is derived once;
 * - derivations run on libuv's thread pool, at most `concurrency` at a time (default: half the
 *   cores, at least one), so verified users' requests always find a core; an attempt that finds
 *   them busy waits briefly in a bounded queue, then is told to come back (429).
 * Verified users never wait behind unverified attempts: their check is a map lookup.
 *
 * This is the one place a login attempt is judged, and where failed ones are counted (lockout.ts):
 * a locked address or username-and-address pair is refused before anything else, verified pairs
 * included (else a locked-out guesser could still test guesses against the verified memory).
 */
import {hash as digest, randomBytes} from 'node:crypto'
import {availableParallelism} from 'node:os'

import {type BasicCredentials} from './authn.js'
import {Lockout, type LockoutOptions, type LockoutRefusal} from './lockout.js'
import {verifyPassword} from './passwords.js'
import {isServiceAccount, type Store, type UserRecord} from './store/store.js'

export interface CredentialCheckOptions {
  /** Key derivations at once; default half the cores, at least one. */
  concurrency?: number
  /** Attempts that may wait for a derivation; beyond, at once 429. Default 64. */
  maxQueue?: number
  /** How long an attempt waits for a derivation to start before 429; default 1 000 ms. */
  maxWaitMs?: number
  /** Told whether each check was answered from memory (true) or needed a derivation (false): the cache's hit ratio. */
  onLookup?: (hit: boolean) => void
  /** Limits on failed logins (lockout.ts), or the counts to share; false: none. Default: on, with DEFAULT_LOCKOUT. */
  lockout?: false | Lockout | LockoutOptions
  /** How a delayed attempt waits (tests give a fake one); default a timer. */
  sleep?: (ms: number) => Promise<void>
  /** The derivation (tests count it); default verifyPassword. */
  verify?: (hash: string, password: string) => Promise<boolean>
}

/**
 * The caller; no valid credentials (401); no capacity to check them now (429); or refused
 * unchecked for too many failed logins (429 with the time to wait).
 */
export type CheckResult = {kind: 'busy'} | ({kind: 'locked'} & LockoutRefusal) | {kind: 'rejected'} | {kind: 'verified'; user: UserRecord}

const MAX_REMEMBERED = 10_000

/** A well-formed scrypt hash no password matches, so an unknown user costs what a known one costs. */
const DUMMY_HASH = 'scrypt:32768:8:1$dummysaltdummysa$' + '0'.repeat(128)

/** A Map that forgets its oldest entries beyond a size; a hit makes an entry the newest. */
class Recent {
  private readonly entries = new Map<string, string>()
  get(key: string): string | undefined {
    const value = this.entries.get(key)
    if (value !== undefined) {
      this.entries.delete(key)
      this.entries.set(key, value)
    }

    return value
  }

  set(key: string, value: string): void {
    this.entries.delete(key)
    if (this.entries.size >= MAX_REMEMBERED) this.entries.delete(this.entries.keys().next().value!)
    this.entries.set(key, value)
  }
}

/** At most `limit` tasks at once; the rest wait in order, each for at most `maxWaitMs`, in a queue of at most `maxQueue`. */
class Slots {
  private running = 0
  private readonly waiting: Array<{start: () => void; timer: NodeJS.Timeout}> = []

  constructor(
    private readonly limit: number,
    private readonly maxQueue: number,
    private readonly maxWaitMs: number,
  ) {}

  /** Resolves true with a slot taken (give it back with release()), or false when none came in time. */
  acquire(): Promise<boolean> {
    if (this.running < this.limit) {
      this.running++
      return Promise.resolve(true)
    }

    if (this.waiting.length >= this.maxQueue) return Promise.resolve(false)
    return new Promise((resolve) => {
      const entry = {
        start: () => {
          clearTimeout(entry.timer)
          resolve(true)
        },
        timer: setTimeout(() => {
          this.waiting.splice(this.waiting.indexOf(entry), 1)
          resolve(false)
        }, this.maxWaitMs),
      }
      this.waiting.push(entry)
    })
  }

  release(): void {
    const next = this.waiting.shift()
    if (next) next.start()
    else this.running--
  }
}

export class CredentialCheck {
  /**
   * The failed-login counts, for other ways of logging in to share (an invalid token is
   * `lockout.failed(address)`, after `lockout.refusal(address)` said it may be checked).
   */
  readonly lockout: Lockout | undefined
  private readonly inFlight = new Map<string, Promise<boolean | undefined>>()
  /**
   * Put before the credentials and digested with them in one call (crypto.hash, a quarter of an
   * HMAC's cost on every request): fixed-length, so the input splits one way only, and secret, so
   * the digests kept here cannot be tried against guessed passwords. They never leave the process.
   */
  private readonly secret = randomBytes(32).toString('base64')
  /** digest(credentials) → the hash they were found wrong for ('' for a user that did not exist). */
  private readonly rejected = new Recent()
  private readonly sleep: (ms: number) => Promise<void>
  private readonly slots: Slots
  /** digest(credentials) → the hash they were verified against. */
  private readonly verified = new Recent()
  private readonly verify: (hash: string, password: string) => Promise<boolean>
  private readonly onLookup: (hit: boolean) => void

  constructor(
    private readonly store: Store,
    options: CredentialCheckOptions = {},
  ) {
    const concurrency = options.concurrency ?? Math.max(1, Math.floor(availableParallelism() / 2))
    this.slots = new Slots(concurrency, options.maxQueue ?? 64, options.maxWaitMs ?? 1000)
    this.verify = options.verify ?? verifyPassword
    this.onLookup = options.onLookup ?? (() => {})
    const {lockout} = options
    this.lockout = lockout === false ? undefined : lockout instanceof Lockout ? lockout : new Lockout(lockout)
    this.sleep = options.sleep ?? ((ms) => new Promise((resolve) => setTimeout(resolve, ms)))
  }

  /** Judges the credentials a client at `address` sent ('' when unknown: not counted per address). */
  async check(credentials: BasicCredentials | undefined, address = ''): Promise<CheckResult> {
    // No credentials, or a header that is not Basic: nothing was guessed, nothing is counted.
    if (!credentials || !credentials.username) return {kind: 'rejected'}
    const {password, username} = credentials
    const {lockout} = this
    // Before anything else, so that a locked-out client costs a map lookup and learns nothing.
    const refused = lockout?.refusal(address, username)
    if (refused) return {kind: 'locked', ...refused}
    let user = this.store.getUser(username)
    let hash = user?.passwordHash ?? ''
    // The name's length first: whatever the two strings hold, the input names one pair only.
    const key = digest('sha256', `${this.secret}${username.length}:${username}${password}`, 'base64')
    if (user && this.verified.get(key) === hash) {
      this.onLookup(true)
      lockout?.succeeded(address, username)
      return {kind: 'verified', user}
    }

    // A username under attack from many addresses: credentials not verified before wait first
    // (bounded), then are checked as usual, so the real user is delayed, never locked out.
    const delay = lockout?.delayMs(username) ?? 0
    if (delay > 0) {
      await this.sleep(delay)
      const refusedNow = lockout?.refusal(address, username)
      if (refusedNow) return {kind: 'locked', ...refusedNow}
      user = this.store.getUser(username)
      hash = user?.passwordHash ?? ''
    }

    if (this.rejected.get(key) === hash) {
      // Costs no derivation, but is a guess all the same.
      this.onLookup(true)
      lockout?.failed(address, username)
      return {kind: 'rejected'}
    }

    this.onLookup(false)

    // The same pair already being derived (a client's parallel requests, or a flood): one derivation.
    const flightKey = `${key}\0${hash}`
    let pending = this.inFlight.get(flightKey)
    if (!pending) {
      pending = this.derive(hash || DUMMY_HASH, credentials.password)
      this.inFlight.set(flightKey, pending)
      void pending.finally(() => this.inFlight.delete(flightKey))
    }

    const ok = await pending
    if (ok === undefined) return {kind: 'busy'}
    // The user may have changed while we derived: remember and trust only what is still current.
    const current = this.store.getUser(credentials.username)
    if ((current?.passwordHash ?? '') !== hash) return {kind: 'rejected'}
    // A service account has no password: nothing verifies it but its tokens.
    if (!ok || !current || isServiceAccount(current)) {
      this.rejected.set(key, hash)
      lockout?.failed(address, username)
      return {kind: 'rejected'}
    }

    this.verified.set(key, hash)
    lockout?.succeeded(address, username)
    return {kind: 'verified', user: current}
  }

  /** The verification, once a slot is free; undefined when none came in time. */
  private async derive(hash: string, password: string): Promise<boolean | undefined> {
    if (!(await this.slots.acquire())) return undefined
    try {
      return await this.verify(hash, password)
    } finally {
      this.slots.release()
    }
  }
}
