import assert from 'node:assert/strict'
import {test} from 'node:test'

import {ExitCode, UserError} from '../../src/core/errors.js'
import {type Level} from '../../src/mlflow/permissions.js'
import {newPasswords, phaseOf, phases, runPlan} from '../../src/policy/apply.js'
import {type AccessPolicy} from '../../src/policy/model.js'
import {type Change, diff, type Plan} from '../../src/policy/plan.js'
import {applyTo, clone, effective, exp, FakeTarget, policy, type RoleSpec, type UserSpec} from './fixtures.js'

/** A small seeded generator (mulberry32), so a failing case can be replayed. */
function random(seed: number): () => number {
  let state = seed
  return () => {
    state = (state + 0x6d2b79f5) | 0
    let t = Math.imul(state ^ (state >>> 15), 1 | state)
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t
    return ((t ^ (t >>> 14)) >>> 0) / 4_294_967_296
  }
}

const TARGETS = [exp('1'), exp('2'), exp('*')]
const USERS = ['u1', 'u2', 'u3']
const ROLES = ['r1', 'r2']

/** A random small policy: users with grants (NO_PERMISSIONS too, as MLflow 3.12 stores it), roles with rows and members. */
function randomPolicy(next: () => number, users = USERS): AccessPolicy {
  const pick = <T>(values: readonly T[]) => values[Math.floor(next() * values.length)]
  const some = <T>(values: readonly T[], p: number) => values.filter(() => next() < p)
  const userSpecs: Record<string, UserSpec> = {}
  for (const user of users) {
    userSpecs[user] = {admin: next() < 0.15, grants: some(TARGETS, 0.35).map((t) => [t, pick(['READ', 'EDIT', 'MANAGE', 'DENY', 'NO_PERMISSIONS'])])}
  }

  const roleSpecs: Record<string, RoleSpec> = {}
  for (const role of some(ROLES, 0.7)) {
    roleSpecs[role] = {members: some(users, 0.5), rows: some(TARGETS, 0.5).map((t) => [t, pick(['READ', 'EDIT', 'MANAGE', 'DENY'])])}
  }

  return policy(userSpecs, roleSpecs)
}

/** Runs each phase in a random order, one change at a time: any interleaving of a phase's concurrent requests is one of these. */
function runShuffled(plan: Plan, actual: AccessPolicy, next: () => number, each: (state: AccessPolicy, change: Change) => void): AccessPolicy {
  const state = clone(actual)
  for (const phase of phases(plan, actual)) {
    const order = [...phase].sort(() => next() - 0.5)
    for (const change of order) {
      applyTo(state, change)
      each(state, change)
    }
  }

  return state
}

/** Users given or taken more than one role that both allows and denies: the one order apply cannot keep within old ∪ new. */
function pivots(plan: Plan, actual: AccessPolicy): number {
  const perUser = new Map<string, number>()
  for (const change of plan.changes) {
    if (change.what === 'member' && phaseOf(change, actual, plan) === 'pivot') perUser.set(change.user, (perUser.get(change.user) ?? 0) + 1)
    if (change.what === 'role' && phaseOf(change, actual, plan) === 'pivot') return 2
  }

  return Math.max(0, ...perUser.values())
}

test('order: for random old and new policies, no user ever holds more than old ∪ new, at any step, in any order within a phase', () => {
  let checked = 0
  let states = 0
  for (let seed = 1; seed <= 600; seed++) {
    const next = random(seed)
    const old = randomPolicy(next)
    // Users of the file exist on the server (a created user's first moments are the one documented exception).
    const desired = randomPolicy(next)
    for (const prune of [true, false]) {
      const plan = diff(desired, old, {prune})
      if (pivots(plan, old) > 1) continue
      const final = clone(old)
      for (const change of plan.changes) applyTo(final, change)
      for (const defaultPermission of ['READ', 'NO_PERMISSIONS'] as Level[]) {
        const bound = (user: string, id: string) => Math.max(effective(old, user, id, defaultPermission), effective(final, user, id, defaultPermission))
        runShuffled(plan, old, next, (state, change) => {
          states++
          for (const user of USERS) {
            for (const id of ['1', '2', '3']) {
              const now = effective(state, user, id, defaultPermission)
              if (now > bound(user, id)) {
                assert.fail(
                  `seed ${seed} prune ${prune} default ${defaultPermission}: after ${JSON.stringify(change)} ${user} holds ${now} on experiment ${id}, more than old ${effective(old, user, id, defaultPermission)} / new ${effective(final, user, id, defaultPermission)}`,
                )
              }
            }
          }
        })
      }

      // Idempotence: the plan reaches the file, and a second plan is empty.
      assert.deepEqual(diff(desired, final, {prune}).changes, [], `seed ${seed}`)
      checked++
    }
  }

  assert.ok(checked > 1000, `only ${checked} cases had at most one change per user that both gives and takes`)
  assert.ok(states > 10_000)
})

test('order: a role that both allows and denies is built denials first, then joined, then given its allowances', () => {
  const old = policy({u: {}}, {})
  const desired = policy(
    {u: {}},
    {
      mixed: {
        members: ['u'],
        rows: [
          [exp('1'), 'DENY'],
          [exp('*'), 'EDIT'],
        ],
      },
    },
  )
  const plan = diff(desired, old, {prune: false})
  const steps = phases(plan, old).map((phase) => phase.map((change) => `${change.what} ${change.action}${'to' in change ? ` ${change.to}` : ''}`))
  assert.deepEqual(steps, [['role add null'], ['row add DENY'], ['member add'], ['row add EDIT']])
})

test('apply: a failure halfway starts nothing more, waits for what is in flight, reports both lists; a re-run converges', async () => {
  const old = policy({u1: {}, u2: {}})
  const desired = policy(
    Object.fromEntries(
      ['u1', 'u2', 'u3'].map((user) => [
        user,
        {
          grants: [
            [exp('1'), 'READ'],
            [exp('2'), 'EDIT'],
            [exp('*'), 'READ'],
          ],
          password: {generate: true},
        },
      ]),
    ),
    {r: {members: ['u1', 'u2', 'u3'], rows: [[exp('3'), 'MANAGE']]}},
  ) as AccessPolicy
  const plan = diff(desired, old, {prune: false})
  const target = new FakeTarget(clone(old), {failAt: 6})
  const result = await runPlan(plan, old, target, {concurrency: 3})
  assert.ok(result.failure)
  assert.equal((result.failure.error as UserError).exit, ExitCode.Unavailable)
  // Requests 7 and 8 were already in flight when 6 failed (3 at a time); nothing started after.
  assert.equal(target.calls.length, 8)
  assert.equal(result.applied.length, 7)
  assert.equal(result.notApplied.length, plan.changes.length - 7)
  assert.ok(result.notApplied.includes(result.failure.change))
  assert.deepEqual(new Set([...result.applied, ...result.notApplied]), new Set(plan.changes))

  // The re-run plans from what the server now holds, and finishes the job.
  const now = clone(target.state)
  const rest = diff(desired, now, {prune: false})
  assert.equal(rest.changes.length, result.notApplied.length)
  const again = await runPlan(rest, now, new FakeTarget(target.state))
  assert.equal(again.failure, undefined)
  assert.deepEqual(diff(desired, target.state, {prune: true}).changes, [])
})

test('apply: at most `concurrency` requests in flight', async () => {
  const desired = policy({u: {grants: Array.from({length: 30}, (_, index) => [exp(String(index)), 'READ'] as [ReturnType<typeof exp>, string])}})
  const old = policy({u: {}})
  let inFlight = 0
  let most = 0
  const target = {
    async apply() {
      inFlight++
      most = Math.max(most, inFlight)
      await new Promise((resolve) => setTimeout(resolve, 1))
      inFlight--
    },
  }
  const result = await runPlan(diff(desired, old, {prune: false}), old, target, {concurrency: 8})
  assert.equal(result.applied.length, 30)
  assert.equal(most, 8)
})

test('passwords: env read before any change, stdin one line per user in file order, generated ones random', async () => {
  const desired = policy({
    zed: {password: {stdin: true}},
    amy: {password: {stdin: true}},
    gen: {password: {generate: true}},
    env: {password: {env: 'ENV_PW'}},
    known: {},
  })
  for (const [index, name] of ['zed', 'amy', 'gen', 'env', 'known'].entries()) desired.users.get(name)!.origin = {line: index + 3}
  const old = policy({known: {}})
  const plan = diff(desired, old, {prune: false})
  const check = (password: string) => password.length >= 12 || 'too short'
  let reads = 0
  const readStdin = async () => {
    reads++
    return 'first-password-1\nsecond-password-2\n'
  }

  const passwords = await newPasswords(plan, desired, {check, env: {ENV_PW: 'env-password-123'}, file: 'access.yaml', readStdin})
  assert.equal(reads, 1)
  assert.deepEqual(passwords.get('zed'), {generated: false, password: 'first-password-1'})
  assert.deepEqual(passwords.get('amy'), {generated: false, password: 'second-password-2'})
  assert.deepEqual(passwords.get('env'), {generated: false, password: 'env-password-123'})
  assert.equal(passwords.get('gen')!.generated, true)
  assert.match(passwords.get('gen')!.password, /^[\w-]{24}$/)
  assert.equal(passwords.has('known'), false)
  const again = await newPasswords(plan, desired, {check, env: {ENV_PW: 'env-password-123'}, file: 'access.yaml', readStdin})
  assert.notEqual(again.get('gen')!.password, passwords.get('gen')!.password)

  await assert.rejects(newPasswords(plan, desired, {check, env: {}, file: 'access.yaml', readStdin}), (error: UserError) => {
    assert.equal(error.exit, ExitCode.Usage)
    assert.match(error.message, /^access\.yaml:6: \$ENV_PW is not set/)
    return true
  })
  await assert.rejects(
    newPasswords(plan, desired, {check, env: {ENV_PW: 'short'}, file: 'access.yaml', readStdin}),
    /access\.yaml:6: the password for env from \$ENV_PW: too short/,
  )
  await assert.rejects(
    newPasswords(plan, desired, {check, env: {ENV_PW: 'env-password-123'}, file: 'access.yaml', readStdin: async () => 'only-one-line-here'}),
    /Standard input holds 1 line, but 2 users/,
  )
  desired.users.get('gen')!.password = undefined
  await assert.rejects(
    newPasswords(plan, desired, {check, env: {ENV_PW: 'env-password-123'}, file: 'access.yaml', readStdin}),
    /access\.yaml:5: user gen does not exist on the server, and the file gives no password/,
  )
})

test('apply: a created user gets its password, and only that call does', async () => {
  const desired = policy({eve: {grants: [[exp('1'), 'READ']], password: {generate: true}}})
  const old = policy({})
  const plan = diff(desired, old, {prune: false})
  const target = new FakeTarget(clone(old))
  await runPlan(plan, old, target, {passwords: new Map([['eve', {generated: true, password: 'p'.repeat(24)}]])})
  assert.deepEqual(
    target.calls.map((call) => [call.change.what, call.password]),
    [
      ['user', 'p'.repeat(24)],
      ['grant', undefined],
    ],
  )
})
