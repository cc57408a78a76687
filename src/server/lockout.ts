/**
 * Limits on failed logins, so that passwords cannot be guessed at the speed serve answers.
 * Failures are counted in a sliding window at three scopes:
 * - a client address (IPv6 per /64, what one subscriber usually holds): at the threshold its
 *   logins are refused (429) for a while;
 * - a username from one address: the same, for that pair only;
 * - a username from every address (a guesser spread over many addresses): its unverified
 *   attempts are held for a while before they are checked, never refused, so a guesser cannot
 *   lock the real user out: credentials serve verified before pass at once, new ones wait a
 *   bounded time (`delayMaxMs`) and are then checked as usual.
 * Each lock lasts `lockMs`, doubling with every further lock of the same key, up to `lockMaxMs`;
 * a key quiet for `lockMaxMs` after its lock (and its window) is forgotten, strikes included.
 * Unknown usernames count like known ones, so the limits say nothing about who exists.
 *
 * Memory is bounded: each scope keeps at most `maxEntries` keys, dropping the least recently
 * failed (locked ones last). State is this process's: replicas each count their own.
 */
import {hash} from 'node:crypto'
import {isIP} from 'node:net'

import {ExitCode, UserError} from '../core/errors.js'
import {normalizeAddress} from './client-address.js'

export type LockoutScope = 'address' | 'user' | 'user-address'

export interface LockoutSettings {
  /** Most unverified delay, at the username scope; default 10 s. */
  delayMaxMs: number
  /** First lock; each further one of the same key doubles it. Default 60 s. */
  lockMs: number
  /** Longest lock; default 15 minutes. */
  lockMaxMs: number
  /** Failures from one address (IPv6: one /64) within the window that lock it; 0: off. Default 30. */
  perAddress: number
  /** Failures of one username from every address within the window that start delays; 0: off. Default 100. */
  perUser: number
  /** Failures of one username from one address within the window that lock the pair; 0: off. Default 10. */
  perUserAddress: number
  /** The sliding window failures are counted in; default 5 minutes. */
  windowMs: number
}

export const DEFAULT_LOCKOUT: LockoutSettings = {
  delayMaxMs: 10_000,
  lockMaxMs: 15 * 60_000,
  lockMs: 60_000,
  perAddress: 30,
  perUser: 100,
  perUserAddress: 10,
  windowMs: 5 * 60_000,
}

/** Settings from serve's flags, checked together: all of them off is `false` (no counting at all). */
export function lockoutSettings(settings: LockoutSettings): false | LockoutSettings {
  if (settings.lockMaxMs < settings.lockMs) {
    throw new UserError(`--lockout-max (${settings.lockMaxMs / 1000} s) is shorter than --lockout-duration (${settings.lockMs / 1000} s)`, {
      code: 'BAD_LOCKOUT',
      exit: ExitCode.Usage,
      hint: 'The first lock lasts --lockout-duration and doubles up to --lockout-max: give a --lockout-max at least as long.',
    })
  }

  return settings.perAddress === 0 && settings.perUser === 0 && settings.perUserAddress === 0 ? false : settings
}

/** A lock that has just begun: for the log, and for the audit log and metrics the integrator wires. */
export interface LockoutEvent {
  /** The client address (an IPv6 one as its /64); absent at the username scope. */
  address?: string
  /** The failures that set it off (the threshold). */
  failures: number
  /** How long it lasts, ms. */
  lockMs: number
  scope: LockoutScope
  /** The how-many-th lock of this key since it was last forgotten (1 for the first). */
  strike: number
  /** Absent at the address scope. */
  username?: string
}

export interface LockoutOptions extends Partial<LockoutSettings> {
  /** Most keys per scope; default 50 000. */
  maxEntries?: number
  /** The clock, ms (tests give a fake one); default Date.now. */
  now?: () => number
  /** Called as each lock begins (never with a password). */
  onLockout?: (event: LockoutEvent) => void
}

/** An attempt refused before any check: which limit, and when to come back. */
export interface LockoutRefusal {
  retryAfterSeconds: number
  scope: 'address' | 'user-address'
}

export interface LockoutStats {
  /** Attempts held back at the username scope. */
  delayed: number
  /** Locks begun, per scope. */
  lockouts: Record<LockoutScope, number>
  /** Attempts refused (429), per scope. */
  refused: Record<'address' | 'user-address', number>
  /** Keys held now, per scope. */
  tracked: Record<LockoutScope, number>
}

interface Entry {
  /** Failures in the window since the last lock began, oldest first. */
  failures: number[]
  /** Locks so far. */
  strikes: number
  /** When the current (or last) lock ends; 0: never locked. */
  until: number
}

/** Failures per key in a sliding window, with doubling locks; at most `maxEntries` keys. */
class Counter {
  private readonly entries = new Map<string, Entry>()

  constructor(
    private readonly threshold: number,
    private readonly settings: LockoutSettings,
    private readonly maxEntries: number,
  ) {}

  get size(): number {
    return this.entries.size
  }

  /** The end of the key's lock when it is locked now, else undefined. */
  lockedUntil(key: string, now: number): number | undefined {
    const entry = this.current(key, now)
    return entry && entry.until > now ? entry.until : undefined
  }

  /** Strikes of a key locked now (0 when not locked). */
  strikesIfLocked(key: string, now: number): number {
    const entry = this.current(key, now)
    return entry && entry.until > now ? entry.strikes : 0
  }

  /** Counts a failure; returns the new lock's strike and length when this one sets it off. */
  fail(key: string, now: number): undefined | {lockMs: number; strike: number} {
    if (this.threshold <= 0) return undefined
    let entry = this.current(key, now)
    if (entry) this.entries.delete(key)
    else {
      if (this.entries.size >= this.maxEntries) this.evict(now)
      entry = {failures: [], strikes: 0, until: 0}
    }

    // Last in the map's order: the oldest keys are the first to go when it is full.
    this.entries.set(key, entry)
    const {windowMs} = this.settings
    entry.failures = entry.failures.filter((at) => now - at < windowMs)
    entry.failures.push(now)
    if (entry.failures.length < this.threshold) return undefined
    entry.failures = []
    entry.strikes++
    const lockMs = Math.min(this.settings.lockMaxMs, this.settings.lockMs * 2 ** Math.min(entry.strikes - 1, 30))
    entry.until = now + lockMs
    return {lockMs, strike: entry.strikes}
  }

  forget(key: string): void {
    this.entries.delete(key)
  }

  /** The key's entry, unless it has expired (then it is dropped): strikes are forgotten with it. */
  private current(key: string, now: number): Entry | undefined {
    const entry = this.entries.get(key)
    if (entry && this.expired(entry, now)) {
      this.entries.delete(key)
      return undefined
    }

    return entry
  }

  private expired(entry: Entry, now: number): boolean {
    const lastFailure = entry.failures.at(-1) ?? 0
    return now >= entry.until + this.settings.lockMaxMs && now - lastFailure >= this.settings.windowMs
  }

  /** Room for one more key: an expired or unlocked one among the oldest, else the oldest. */
  private evict(now: number): void {
    let scanned = 0
    let oldest: string | undefined
    for (const [key, entry] of this.entries) {
      oldest ??= key
      if (this.expired(entry, now) || entry.until <= now) {
        this.entries.delete(key)
        return
      }

      if (++scanned >= 16) break
    }

    if (oldest !== undefined) this.entries.delete(oldest)
  }
}

/**
 * The key an address is counted under: IPv4 as it is, IPv6 by its /64 (one subscriber is
 * usually given a whole /64, so counting single addresses would give a guesser 2^64 of them).
 */
export function addressKey(address: string): string {
  const normal = normalizeAddress(address)
  if (isIP(normal) !== 6) return normal
  const groups = expandIpv6(normal)
  return `${groups.slice(0, 4).join(':')}::/64`
}

/** An IPv6 address as eight groups of lower-case hex without leading zeros. */
function expandIpv6(address: string): string[] {
  let text = address.split('%')[0]
  // A trailing dotted IPv4 part (`64:ff9b::1.2.3.4`) as two groups.
  const dotted = /(\d+)\.(\d+)\.(\d+)\.(\d+)$/.exec(text)
  if (dotted) {
    const [a, b, c, d] = dotted.slice(1).map(Number)
    text = `${text.slice(0, dotted.index)}${((a << 8) | b).toString(16)}:${((c << 8) | d).toString(16)}`
  }

  const [head, tail] = text.split('::') as [string, string | undefined]
  const left = head ? head.split(':') : []
  const right = tail === undefined ? [] : tail ? tail.split(':') : []
  const middle = tail === undefined ? [] : Array.from({length: 8 - left.length - right.length}, () => '0')
  return [...left, ...middle, ...right].map((group) => Number.parseInt(group, 16).toString(16))
}

/** A username as a log shows it: quoted, escaped, and cut (it is whatever a client sent). */
function shown(username: string): string {
  return JSON.stringify(username.length > 64 ? `${username.slice(0, 64)}…` : username)
}

/** One log line for a lock that has begun (never a password). */
export function describeLockout(event: LockoutEvent): string {
  const seconds = Math.round(event.lockMs / 1000)
  const strike = event.strike > 1 ? ` (lock ${event.strike} in a row)` : ''
  switch (event.scope) {
    case 'address': {
      return `warning: ${event.failures} failed logins from ${event.address}: its logins are refused for ${seconds} s${strike} (--lockout-per-address)`
    }

    case 'user': {
      return `warning: ${event.failures} failed logins for user ${shown(event.username ?? '')} from any address: for ${seconds} s${strike}, logins with credentials not verified before wait first (--lockout-per-user)`
    }

    case 'user-address': {
      return `warning: ${event.failures} failed logins for user ${shown(event.username ?? '')} from ${event.address}: refused for ${seconds} s${strike} (--lockout-per-user-address)`
    }
  }
}

export class Lockout {
  readonly settings: LockoutSettings
  private readonly byAddress: Counter
  private readonly byUser: Counter
  private readonly byUserAddress: Counter
  private readonly now: () => number
  private readonly onLockout?: (event: LockoutEvent) => void
  private readonly counts: Omit<LockoutStats, 'tracked'> = {
    delayed: 0,
    lockouts: {address: 0, user: 0, 'user-address': 0},
    refused: {address: 0, 'user-address': 0},
  }

  constructor(options: LockoutOptions = {}) {
    const {maxEntries = 50_000, now = Date.now, onLockout, ...given} = options
    const settings = {...DEFAULT_LOCKOUT, ...Object.fromEntries(Object.entries(given).filter(([, value]) => value !== undefined))}
    this.settings = settings
    this.byAddress = new Counter(settings.perAddress, settings, maxEntries)
    this.byUserAddress = new Counter(settings.perUserAddress, settings, maxEntries)
    this.byUser = new Counter(settings.perUser, settings, maxEntries)
    this.now = now
    this.onLockout = onLockout
  }

  /**
   * Whether an attempt from this address (for this username, when there is one) is refused
   * before any check, and for how long. '' (a connection already gone) is never refused.
   */
  refusal(address: string, username?: string): LockoutRefusal | undefined {
    if (!address) return undefined
    const now = this.now()
    const key = addressKey(address)
    const scopes: Array<[LockoutRefusal['scope'], number | undefined]> = [
      ['address', this.byAddress.lockedUntil(key, now)],
      ['user-address', username === undefined ? undefined : this.byUserAddress.lockedUntil(pairKey(username, key), now)],
    ]
    const locked = scopes.filter((scope): scope is [LockoutRefusal['scope'], number] => scope[1] !== undefined)
    if (locked.length === 0) return undefined
    // The later end of the two, so that coming back then is not refused again at once.
    const [scope, until] = locked.reduce((a, b) => (b[1] > a[1] ? b : a))
    this.counts.refused[scope]++
    return {retryAfterSeconds: Math.max(1, Math.ceil((until - now) / 1000)), scope}
  }

  /** How long an attempt with unverified credentials for this username waits before its check; 0: none. */
  delayMs(username: string): number {
    const strikes = this.byUser.strikesIfLocked(userKey(username), this.now())
    if (strikes === 0) return 0
    this.counts.delayed++
    return Math.min(this.settings.delayMaxMs, 1000 * 2 ** Math.min(strikes - 1, 30))
  }

  /**
   * A failed login: counted for the address, and for the username (from this address and from
   * anywhere) when there is one. An invalid token has no username: call it with the address only.
   */
  failed(address: string, username?: string): void {
    const now = this.now()
    const key = address ? addressKey(address) : undefined
    if (key !== undefined) this.begin(this.byAddress.fail(key, now), {address: key, scope: 'address'})
    if (username === undefined) return
    if (key !== undefined) this.begin(this.byUserAddress.fail(pairKey(username, key), now), {address: key, scope: 'user-address', username})
    this.begin(this.byUser.fail(userKey(username), now), {scope: 'user', username})
  }

  /** A login that succeeded: the pair's count starts again (the address's and the username's stay). */
  succeeded(address: string, username: string): void {
    if (address) this.byUserAddress.forget(pairKey(username, addressKey(address)))
  }

  stats(): LockoutStats {
    return {
      ...structuredClone(this.counts),
      tracked: {address: this.byAddress.size, user: this.byUser.size, 'user-address': this.byUserAddress.size},
    }
  }

  private begin(lock: undefined | {lockMs: number; strike: number}, what: Pick<LockoutEvent, 'address' | 'scope' | 'username'>): void {
    if (!lock) return
    this.counts.lockouts[what.scope]++
    const threshold = {address: this.settings.perAddress, user: this.settings.perUser, 'user-address': this.settings.perUserAddress}[what.scope]
    try {
      this.onLockout?.({...what, failures: threshold, lockMs: lock.lockMs, strike: lock.strike})
    } catch {
      // A hook that fails (a log or metric) must not change how the login is judged: the lock stands.
    }
  }
}

/**
 * A username as a key: a long one (a client may send up to the header limit) as its digest, so
 * 50,000 keys of attacker-chosen names stay small.
 */
function userKey(username: string): string {
  return username.length <= 64 ? username : `sha256:${hash('sha256', username, 'base64')}`
}

/** The username's length first, so that no username and address can spell another pair. */
function pairKey(username: string, address: string): string {
  const key = userKey(username)
  return `${key.length}:${key}\0${address}`
}
