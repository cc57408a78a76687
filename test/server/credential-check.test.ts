/**
 * Password checks that cannot be turned against serve: wrong passwords remembered (one
 * derivation per distinct pair), derivations bounded, attempts beyond the bound told to come back
 * (429) while verified users are answered from memory; through serve, a flood of wrong passwords
 * leaves the real user able to log in.
 */
import assert from 'node:assert/strict'
import {after, before, describe, it} from 'node:test'

import {type CheckResult, CredentialCheck} from '../../src/server/credential-check.js'
import {hashPassword, verifyPassword} from '../../src/server/passwords.js'
import {type Store, type UserRecord} from '../../src/server/store/store.js'
import {answerJson, call, type Pipeline, startPipeline} from '../support/serve-pipeline.js'

function storeOf(users: UserRecord[]): Store {
  return {getUser: (username: string) => users.find((user) => user.username === username)} as unknown as Store
}

/** verifyPassword, counted: how many derivations ran, and the most at once. */
function counted(verify: (hash: string, password: string) => Promise<boolean> = verifyPassword) {
  const stats = {calls: 0, maxRunning: 0, running: 0}
  return {
    stats,
    async verify(hash: string, password: string) {
      stats.calls++
      stats.running++
      stats.maxRunning = Math.max(stats.maxRunning, stats.running)
      try {
        return await verify(hash, password)
      } finally {
        stats.running--
      }
    },
  }
}

describe('credential check', () => {
  let alice: UserRecord
  before(async () => {
    alice = {id: 2, isAdmin: false, passwordHash: await hashPassword('right'), username: 'alice'}
  })

  it('derives a wrong password once per user and password, also for unknown users and concurrent repeats', async () => {
    const {stats, verify} = counted()
    const check = new CredentialCheck(storeOf([alice]), {concurrency: 2, verify})
    const attempts = [
      ...Array.from({length: 5}, () => ({password: 'wrong', username: 'alice'})),
      ...Array.from({length: 5}, () => ({password: 'wrong', username: 'nobody'})),
    ]
    for (const result of await Promise.all(attempts.map((credentials) => check.check(credentials)))) assert.equal(result.kind, 'rejected')
    for (const credentials of attempts) assert.equal((await check.check(credentials)).kind, 'rejected')
    assert.equal(stats.calls, 2)
    assert.equal((await check.check({password: 'right', username: 'alice'})).kind, 'verified')
    assert.equal((await check.check({password: 'right', username: 'alice'})).kind, 'verified')
    assert.equal(stats.calls, 3)
  })

  it('forgets a remembered wrong password when the hash changes, and a remembered right one too', async () => {
    const user = {...alice}
    const check = new CredentialCheck(storeOf([user]))
    assert.equal((await check.check({password: 'new', username: 'alice'})).kind, 'rejected')
    assert.equal((await check.check({password: 'right', username: 'alice'})).kind, 'verified')
    user.passwordHash = await hashPassword('new')
    assert.equal((await check.check({password: 'new', username: 'alice'})).kind, 'verified')
    assert.equal((await check.check({password: 'right', username: 'alice'})).kind, 'rejected')
  })

  it('runs at most `concurrency` derivations; beyond the queue an attempt is busy at once, a verified user never waits', async () => {
    const gates: Array<() => void> = []
    // Derivations that end only when the test says so.
    const {stats, verify} = counted(
      (hash, password) =>
        new Promise<boolean>((resolve) => {
          gates.push(() => resolve(verifyPassword(hash, password)))
        }),
    )
    /** Lets the oldest derivation that started finish. */
    const openNext = async () => {
      while (gates.length === 0) await new Promise((resolve) => setImmediate(resolve))
      gates.shift()!()
    }

    const check = new CredentialCheck(storeOf([alice]), {concurrency: 1, maxQueue: 2, maxWaitMs: 60_000, verify})
    const login = check.check({password: 'right', username: 'alice'})
    await openNext()
    assert.equal((await login).kind, 'verified')

    const pending: Array<Promise<CheckResult>> = []
    for (let i = 0; i < 3; i++) pending.push(check.check({password: `wrong-${i}`, username: 'nobody'}))
    // One derives, two wait: the fourth distinct attempt finds the queue full.
    assert.equal((await check.check({password: 'wrong-3', username: 'nobody'})).kind, 'busy')
    assert.equal((await check.check({password: 'right', username: 'alice'})).kind, 'verified')
    while (pending.length > 0) {
      await openNext()
      assert.equal((await pending.shift()!).kind, 'rejected')
    }

    assert.equal(stats.maxRunning, 1)
    assert.equal(stats.calls, 4)
  })

  it('tells an attempt that waited too long that serve is busy', async () => {
    let release!: () => void
    const check = new CredentialCheck(storeOf([alice]), {
      concurrency: 1,
      maxWaitMs: 50,
      verify: () =>
        new Promise<boolean>((resolve) => {
          release = () => resolve(false)
        }),
    })
    const first = check.check({password: 'a', username: 'alice'})
    assert.equal((await check.check({password: 'b', username: 'alice'})).kind, 'busy')
    release()
    assert.equal((await first).kind, 'rejected')
  })
})

describe('serve under a flood of wrong passwords', {timeout: 120_000}, () => {
  const ALICE = {password: 'alice-right-password', username: 'alice'}
  const BOB = {password: 'bob-right-password', username: 'bob'}
  let pipeline: Pipeline

  before(async () => {
    pipeline = await startPipeline({
      handler: (_request, response) => answerJson(response, 200, {experiment: {experiment_id: '1'}}),
      // The derivation bounds alone: the flood comes from one address, which the failed-login limits
      // would refuse outright (test/server/lockout.test.ts).
      serve: {credentialCheck: {concurrency: 1, lockout: false, maxQueue: 4, maxWaitMs: 1000}},
    })
    await pipeline.createUser(ALICE, {1: 'READ'})
    await pipeline.createUser(BOB, {1: 'READ'})
  })

  after(async () => {
    await pipeline.close()
  })

  it('answers 429 to what it cannot check now, never to a verified user, and the real user still logs in', async () => {
    const get = (credentials: {password: string; username: string}) =>
      call(pipeline.url, 'GET', '/api/2.0/mlflow/experiments/get?experiment_id=1', {credentials})
    assert.equal((await get(BOB)).status, 200)
    const wrong = [
      ...Array.from({length: 10}, (_, i) => ({password: `guess-${i}`, username: 'alice'})),
      ...Array.from({length: 10}, (_, i) => ({password: `guess-${i}`, username: `nobody-${i}`})),
    ]
    const flood = Array.from({length: 5}, () => wrong.map((credentials) => get(credentials))).flat()
    const verified = Array.from({length: 10}, () => get(BOB))
    const statuses = (await Promise.all(flood)).map((answer) => answer.status)
    assert.ok(statuses.includes(429), 'some attempts were told to come back')
    assert.deepEqual(new Set(statuses), new Set([401, 429]))
    for (const answer of await Promise.all(verified)) assert.equal(answer.status, 200)

    // As MLflow's client: retry a 429.
    let status = 429
    for (let attempt = 0; attempt < 20 && status === 429; attempt++) {
      status = (await get(ALICE)).status
      if (status === 429) await new Promise((resolve) => setTimeout(resolve, 500))
    }

    assert.equal(status, 200)
  })
})
