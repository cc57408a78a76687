/**
 * Limits on failed logins, on a fake clock: thresholds per address, per username and address,
 * and per username; locks that double up to a cap and are forgotten; IPv6 counted per /64;
 * bounded memory; repeated wrong passwords counted though never derived again; a locked client
 * refused before any derivation; the real user never locked out by a guesser elsewhere; and,
 * through serve, the client address taken from X-Forwarded-For only from trusted proxies.
 */
import assert from 'node:assert/strict'
import {after, before, describe, it} from 'node:test'

import {CredentialCheck, type CredentialCheckOptions} from '../../src/server/credential-check.js'
import {ExitCode, UserError} from '../../src/core/errors.js'
import {addressKey, DEFAULT_LOCKOUT, describeLockout, Lockout, type LockoutEvent, type LockoutOptions, lockoutSettings} from '../../src/server/lockout.js'
import {type Store, type UserRecord} from '../../src/server/store/store.js'
import {call, parseJson, type Pipeline, startPipeline} from '../support/serve-pipeline.js'

const SECOND = 1000
const MINUTE = 60 * SECOND

/** A clock the test moves by hand. */
function fakeClock() {
  let now = 1_700_000_000_000
  return {
    advance(ms: number) {
      now += ms
    },
    now: () => now,
  }
}

function lockout(options: LockoutOptions = {}) {
  const clock = fakeClock()
  const events: LockoutEvent[] = []
  const limits = new Lockout({now: clock.now, onLockout: (event) => events.push(event), ...options})
  return {clock, events, limits}
}

describe('lockout: counting failed logins', () => {
  it('refuses an address at the threshold within the window, for the lock, then lets it in again', () => {
    const {clock, events, limits} = lockout({perAddress: 5, perUser: 0, perUserAddress: 0})
    // Spread over more than the window: never five at once.
    for (let i = 0; i < 8; i++) {
      limits.failed('10.0.0.1', `user-${i}`)
      clock.advance(80 * SECOND)
    }

    assert.equal(limits.refusal('10.0.0.1'), undefined)
    assert.equal(events.length, 0)
    clock.advance(5 * MINUTE)
    for (let i = 0; i < 4; i++) limits.failed('10.0.0.1', `user-${i}`)
    assert.equal(limits.refusal('10.0.0.1', 'anyone'), undefined)
    limits.failed('10.0.0.1', 'user-4')
    assert.deepEqual(limits.refusal('10.0.0.1', 'anyone'), {retryAfterSeconds: 60, scope: 'address'})
    assert.equal(limits.refusal('10.0.0.2', 'anyone'), undefined, 'another address is not refused')
    assert.deepEqual(events, [{address: '10.0.0.1', failures: 5, lockMs: MINUTE, scope: 'address', strike: 1}])
    clock.advance(59 * SECOND + 500)
    assert.deepEqual(limits.refusal('10.0.0.1'), {retryAfterSeconds: 1, scope: 'address'})
    clock.advance(500)
    assert.equal(limits.refusal('10.0.0.1'), undefined)
    assert.equal(limits.stats().lockouts.address, 1)
    assert.equal(limits.stats().refused.address, 2)
  })

  it('doubles each further lock of the same key up to the cap, and forgets a key left quiet', () => {
    const {clock, events, limits} = lockout({lockMaxMs: 5 * MINUTE, perAddress: 3, perUser: 0, perUserAddress: 0})
    const lockNow = () => {
      for (let i = 0; i < 3; i++) limits.failed('10.0.0.1')
      const refusal = limits.refusal('10.0.0.1')
      assert.ok(refusal)
      clock.advance(refusal.retryAfterSeconds * SECOND)
      return refusal.retryAfterSeconds
    }

    assert.deepEqual([lockNow(), lockNow(), lockNow(), lockNow(), lockNow()], [60, 120, 240, 300, 300])
    assert.deepEqual(
      events.map((event) => event.strike),
      [1, 2, 3, 4, 5],
    )
    // Quiet for the cap after the last lock ended: the strikes are gone, the next lock is the first again.
    clock.advance(5 * MINUTE)
    assert.equal(lockNow(), 60)
  })

  it('locks a username from one address without touching the user elsewhere or other users there; success starts the count again', () => {
    const {events, limits} = lockout({perAddress: 0, perUser: 0, perUserAddress: 3})
    limits.failed('10.0.0.1', 'alice')
    limits.failed('10.0.0.1', 'alice')
    limits.succeeded('10.0.0.1', 'alice')
    limits.failed('10.0.0.1', 'alice')
    limits.failed('10.0.0.1', 'alice')
    assert.equal(limits.refusal('10.0.0.1', 'alice'), undefined, 'the success reset the count')
    limits.failed('10.0.0.1', 'alice')
    assert.deepEqual(limits.refusal('10.0.0.1', 'alice'), {retryAfterSeconds: 60, scope: 'user-address'})
    assert.equal(limits.refusal('10.0.0.2', 'alice'), undefined)
    assert.equal(limits.refusal('10.0.0.1', 'bob'), undefined)
    assert.equal(limits.refusal('10.0.0.1'), undefined)
    assert.deepEqual(events, [{address: '10.0.0.1', failures: 3, lockMs: MINUTE, scope: 'user-address', strike: 1, username: 'alice'}])
  })

  it('counts IPv6 clients per /64, whatever the spelling', () => {
    assert.equal(addressKey('2001:DB8::1'), '2001:db8:0:0::/64')
    assert.equal(addressKey('2001:0db8:0000:0000:ffff:0000:0000:0001'), '2001:db8:0:0::/64')
    assert.equal(addressKey('::ffff:10.1.2.3'), '10.1.2.3')
    assert.equal(addressKey('64:ff9b::1.2.3.4'), '64:ff9b:0:0::/64')
    assert.equal(addressKey('::1'), '0:0:0:0::/64')
    const {limits} = lockout({perAddress: 3, perUser: 0, perUserAddress: 0})
    limits.failed('2001:db8::1')
    limits.failed('2001:db8::2:3')
    limits.failed('2001:db8:0:0:ffff::9')
    assert.equal(limits.refusal('2001:db8::abcd')?.scope, 'address')
    assert.equal(limits.refusal('2001:db8:0:1::1'), undefined, 'another /64')
  })

  it('keeps at most maxEntries keys per scope, and a spray of new ones does not push out a lock', () => {
    const {limits} = lockout({maxEntries: 100, perAddress: 3, perUser: 5, perUserAddress: 3})
    for (let i = 0; i < 3; i++) limits.failed('10.9.9.9', 'alice')
    assert.equal(limits.refusal('10.9.9.9')?.scope, 'address')
    for (let i = 0; i < 5000; i++) limits.failed(`10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`, `sprayed-${i}`)
    const {tracked} = limits.stats()
    assert.ok(tracked.address <= 100 && tracked['user-address'] <= 100 && tracked.user <= 100, JSON.stringify(tracked))
    assert.equal(limits.refusal('10.9.9.9')?.scope, 'address')
  })

  it('counts a long username (kept as its digest) apart from another with the same start', () => {
    const {limits} = lockout({perAddress: 0, perUser: 0, perUserAddress: 3})
    const long = 'x'.repeat(10_000)
    for (let i = 0; i < 3; i++) limits.failed('10.1.1.1', `${long}a`)
    assert.equal(limits.refusal('10.1.1.1', `${long}a`)?.scope, 'user-address')
    assert.equal(limits.refusal('10.1.1.1', `${long}b`), undefined)
    assert.equal(limits.refusal('10.1.1.1', long.slice(0, 64)), undefined)
  })

  it('makes a username under attack wait, more with each lock, up to the cap', () => {
    const {clock, events, limits} = lockout({delayMaxMs: 5 * SECOND, perAddress: 0, perUser: 4, perUserAddress: 0})
    assert.equal(limits.delayMs('alice'), 0)
    const delays = []
    for (let round = 0; round < 5; round++) {
      for (let i = 0; i < 4; i++) limits.failed(`10.0.${round}.${i}`, 'alice')
      delays.push(limits.delayMs('alice'))
    }

    assert.deepEqual(delays, [1000, 2000, 4000, 5000, 5000])
    assert.equal(limits.delayMs('bob'), 0)
    assert.equal(events.at(-1)?.scope, 'user')
    assert.equal(limits.refusal('10.0.0.0', 'alice'), undefined, 'the username scope never refuses')
    clock.advance(15 * MINUTE)
    assert.equal(limits.delayMs('alice'), 0)
  })

  it("checks serve's settings together: a cap below the first lock is refused (exit 2), all thresholds 0 is off", () => {
    assert.throws(
      () => lockoutSettings({...DEFAULT_LOCKOUT, lockMaxMs: 30 * SECOND, lockMs: MINUTE}),
      (error: unknown) =>
        error instanceof UserError && error.exit === ExitCode.Usage && /--lockout-max \(30 s\) is shorter than --lockout-duration \(60 s\)/.test(error.message),
    )
    assert.equal(lockoutSettings({...DEFAULT_LOCKOUT, perAddress: 0, perUser: 0, perUserAddress: 0}), false)
    assert.deepEqual(lockoutSettings({...DEFAULT_LOCKOUT, perUser: 0}), {...DEFAULT_LOCKOUT, perUser: 0})
  })

  it('logs a lock with the address and a quoted username, nothing else of the request', () => {
    const line = describeLockout({address: '10.0.0.1', failures: 10, lockMs: 120 * SECOND, scope: 'user-address', strike: 2, username: 'al"ice\n'})
    assert.equal(line, 'warning: 10 failed logins for user "al\\"ice\\n" from 10.0.0.1: refused for 120 s (lock 2 in a row) (--lockout-per-user-address)')
  })
})

describe('lockout: in the credential check', () => {
  const alice: UserRecord = {id: 2, isAdmin: false, passwordHash: 'h:right', username: 'alice'}
  const store = {getUser: (username: string) => (username === 'alice' ? alice : undefined)} as unknown as Store

  /** A check with a cheap fake derivation (counted) and a fake clock and sleep (recorded). */
  function checker(options: LockoutOptions, extra: CredentialCheckOptions = {}) {
    const clock = fakeClock()
    const slept: number[] = []
    const stats = {derivations: 0}
    const check = new CredentialCheck(store, {
      lockout: {now: clock.now, ...options},
      async sleep(ms) {
        slept.push(ms)
        clock.advance(ms)
      },
      async verify(hash, password) {
        stats.derivations++
        return hash === `h:${password}`
      },
      ...extra,
    })
    return {check, clock, slept, stats}
  }

  it('counts a repeated wrong password though it is not derived again, and refuses the pair before any derivation', async () => {
    const {check, stats} = checker({perAddress: 0, perUser: 0, perUserAddress: 4})
    for (let i = 0; i < 4; i++) assert.equal((await check.check({password: 'wrong', username: 'alice'}, '10.0.0.1')).kind, 'rejected')
    assert.equal(stats.derivations, 1)
    const locked = await check.check({password: 'right', username: 'alice'}, '10.0.0.1')
    assert.deepEqual(locked, {kind: 'locked', retryAfterSeconds: 60, scope: 'user-address'})
    assert.equal(stats.derivations, 1, 'a refused attempt runs no derivation')
    assert.equal((await check.check({password: 'right', username: 'alice'}, '10.0.0.2')).kind, 'verified')
  })

  it('counts an unknown username like a known one', async () => {
    const {check} = checker({perAddress: 0, perUser: 0, perUserAddress: 3})
    const answers = []
    for (const username of ['alice', 'ghost']) {
      for (let i = 0; i < 3; i++) await check.check({password: `guess-${i}`, username}, '10.0.0.1')
      answers.push(await check.check({password: 'guess-9', username}, '10.0.0.1'))
    }

    assert.deepEqual(answers[0], answers[1])
    assert.equal(answers[0].kind, 'locked')
  })

  it('refuses a locked address even credentials verified before (no oracle for a guesser there)', async () => {
    const {check, stats} = checker({perAddress: 3, perUser: 0, perUserAddress: 0})
    assert.equal((await check.check({password: 'right', username: 'alice'}, '10.0.0.1')).kind, 'verified')
    for (let i = 0; i < 3; i++) await check.check({password: `guess-${i}`, username: 'ghost'}, '10.0.0.1')
    assert.equal((await check.check({password: 'right', username: 'alice'}, '10.0.0.1')).kind, 'locked')
    assert.equal(stats.derivations, 4)
  })

  it('a guesser spread over many addresses delays the real user a bounded time and never locks them out', async () => {
    const {check, slept} = checker({delayMaxMs: 4 * SECOND, perAddress: 3, perUser: 5, perUserAddress: 2})
    assert.equal((await check.check({password: 'right', username: 'alice'}, '10.1.0.1')).kind, 'verified')
    // Each guessing address stays below its own limits; together they pass the username's, again and again.
    for (let i = 0; i < 60; i++) assert.equal((await check.check({password: `guess-${i}`, username: 'alice'}, `10.2.${i}.1`)).kind, 'rejected')
    assert.ok(slept.length > 0, 'the guesses were held')
    assert.ok(
      slept.every((ms) => ms <= 4 * SECOND),
      String(slept),
    )
    assert.equal(Math.max(...slept), 4 * SECOND)

    // Verified before: in at once, from anywhere.
    slept.length = 0
    assert.equal((await check.check({password: 'right', username: 'alice'}, '10.3.0.1')).kind, 'verified')
    assert.deepEqual(slept, [])

    // Credentials not verified in this process (a restart, a new password): a bounded wait, then in.
    const fresh = checker({delayMaxMs: 4 * SECOND, perAddress: 3, perUser: 5, perUserAddress: 2})
    for (let i = 0; i < 60; i++) await fresh.check.check({password: `guess-${i}`, username: 'alice'}, `10.2.${i}.1`)
    fresh.slept.length = 0
    assert.equal((await fresh.check.check({password: 'right', username: 'alice'}, '10.3.0.1')).kind, 'verified')
    assert.deepEqual(fresh.slept, [4 * SECOND])
  })
})

describe('lockout: through serve, the client address', () => {
  const ALICE = {password: 'alice-right-password', username: 'alice'}
  let proxied: Pipeline
  let direct: Pipeline
  const events: LockoutEvent[] = []
  const lockoutOptions = {onLockout: (event: LockoutEvent) => events.push(event), perAddress: 4, perUser: 0, perUserAddress: 0}

  before(async () => {
    const handler = (_request: unknown, response: import('node:http').ServerResponse) => {
      response.writeHead(200, {'content-type': 'application/json'})
      response.end('{"experiment": {"experiment_id": "1"}}')
    }

    // 127.0.0.1 is the trusted proxy for one, and just a client for the other.
    proxied = await startPipeline({handler, serve: {credentialCheck: {lockout: lockoutOptions}, trustedProxies: '127.0.0.1'}})
    direct = await startPipeline({handler, serve: {credentialCheck: {lockout: lockoutOptions}, trustedProxies: '10.255.255.1'}})
    for (const pipeline of [proxied, direct]) await pipeline.createUser(ALICE, {1: 'READ'})
  })

  after(async () => {
    await proxied?.close()
    await direct?.close()
  })

  const get = (pipeline: Pipeline, credentials: {password: string; username: string}, forwardedFor: string) =>
    call(pipeline.url, 'GET', '/api/2.0/mlflow/experiments/get?experiment_id=1', {credentials, headers: {'x-forwarded-for': forwardedFor}})

  it("behind a trusted proxy: each forwarded client counted apart; 429 with Retry-After and MLflow's error", async () => {
    for (let i = 0; i < 4; i++) assert.equal((await get(proxied, {password: `guess-${i}`, username: 'ghost'}, '203.0.113.7')).status, 401)
    const refused = await get(proxied, ALICE, '203.0.113.7')
    assert.equal(refused.status, 429)
    assert.equal(refused.headers['retry-after'], '60')
    assert.deepEqual(parseJson(refused), {error_code: 'REQUEST_LIMIT_EXCEEDED', message: 'Too many failed logins from this address; try again in 60 seconds.'})
    assert.equal((await get(proxied, ALICE, '203.0.113.8')).status, 200, 'another forwarded client')
    assert.ok(
      proxied.log.some((line) => line === 'warning: 4 failed logins from 203.0.113.7: its logins are refused for 60 s (--lockout-per-address)'),
      proxied.log.join('\n'),
    )
    // The hooks for audit logs and metrics.
    assert.deepEqual(events, [{address: '203.0.113.7', failures: 4, lockMs: MINUTE, scope: 'address', strike: 1}])
    const stats = proxied.serve.lockout?.stats()
    assert.equal(stats?.lockouts.address, 1)
    assert.equal(stats?.refused.address, 1)
  })

  it('from a peer that is not a trusted proxy: X-Forwarded-For is ignored, the peer is counted', async () => {
    // Each guess claims another address; all are the peer's.
    for (let i = 0; i < 4; i++) assert.equal((await get(direct, {password: `guess-${i}`, username: 'ghost'}, `198.51.100.${i}`)).status, 401)
    assert.equal((await get(direct, ALICE, '198.51.100.200')).status, 429)
  })
})
