/**
 * The store keeps at least one admin once it has one: deleting or demoting the last admin is
 * refused in the write itself, so two racing demotions of the last two admins (through one store,
 * or through two processes' stores on one JSON file or one database) leave one admin, never none.
 */
import assert from 'node:assert/strict'
import {after, before, describe, test} from 'node:test'

import {JsonFileStore} from '../../src/server/store/json-store.js'
import {StoreModel} from '../../src/server/store/model.js'
import {PgStore} from '../../src/server/store/pg-store.js'
import {type Store, StoreError} from '../../src/server/store/store.js'
import {scratchFiles} from '../support/files.js'
import {type RunningPostgres, startPostgres} from '../support/postgres.js'

const HASH = 'scrypt:32768:8:1$salt$aa'
const LAST_ADMIN = /is the last admin/

function isLastAdminRefusal(error: unknown): boolean {
  return error instanceof StoreError && error.code === 'INVALID_PARAMETER_VALUE' && LAST_ADMIN.test(error.message)
}

const admins = (store: Pick<Store, 'listUsers'>) =>
  store
    .listUsers()
    .filter((user) => user.isAdmin)
    .map((user) => user.username)

describe('the last admin, in the model', () => {
  test('cannot be demoted or deleted; another admin can, and a non-admin always', () => {
    const model = new StoreModel()
    model.createUser({isAdmin: true, passwordHash: HASH, username: 'root'})
    model.createUser({isAdmin: false, passwordHash: HASH, username: 'alice'})
    assert.throws(() => model.updateUser('root', {isAdmin: false}), isLastAdminRefusal)
    assert.throws(() => model.deleteUser('root'), isLastAdminRefusal)
    // A password change of the last admin is no demotion.
    model.updateUser('root', {isAdmin: true, passwordHash: 'pbkdf2:sha256:1$s$bb'})
    model.updateUser('alice', {isAdmin: true})
    model.updateUser('root', {isAdmin: false})
    assert.throws(() => model.deleteUser('alice'), isLastAdminRefusal)
    model.deleteUser('root')
    assert.deepEqual(admins(model), ['alice'])
  })

  test('two demotions planned in one batch: the second is refused', () => {
    const model = new StoreModel()
    model.createUser({isAdmin: true, passwordHash: HASH, username: 'a'})
    model.createUser({isAdmin: true, passwordHash: HASH, username: 'b'})
    const plan = model.plan([(data) => data.updateUser('a', {isAdmin: false}), (data) => data.updateUser('b', {isAdmin: false})])
    assert.equal(plan.outcomes[0].ok, true)
    assert.equal(plan.outcomes[1].ok, false)
    assert.ok(!plan.outcomes[1].ok && isLastAdminRefusal(plan.outcomes[1].error))
  })
})

/**
 * Two stores `open` on one location demote one of its two admins each, at once: exactly one is
 * refused, and the location, opened again, holds one admin.
 */
async function raceDemotions(open: () => Promise<Store>): Promise<void> {
  const first = await open()
  await first.createUser({isAdmin: true, passwordHash: HASH, username: 'a'})
  await first.createUser({isAdmin: true, passwordHash: HASH, username: 'b'})
  const second = await open()
  try {
    const outcomes = await Promise.allSettled([first.updateUser('a', {isAdmin: false}), second.updateUser('b', {isAdmin: false})])
    const refused = outcomes.filter((outcome) => outcome.status === 'rejected')
    assert.equal(refused.length, 1, JSON.stringify(outcomes.map((outcome) => outcome.status)))
    assert.ok(isLastAdminRefusal((refused[0] as PromiseRejectedResult).reason))
  } finally {
    await first.close()
    await second.close()
  }

  const reopened = await open()
  try {
    assert.equal(admins(reopened).length, 1)
  } finally {
    await reopened.close()
  }
}

describe('racing demotions of the last two admins', () => {
  const fresh = scratchFiles('last-admin')

  test('JSON file: two stores on one file (as two processes)', async () => {
    const path = fresh('auth.json')
    await raceDemotions(() => JsonFileStore.open(path, {watch: false}))
  })

  describe('PostgreSQL: two stores on one database (as two replicas)', () => {
    let postgres: RunningPostgres
    before(async () => {
      postgres = await startPostgres()
    })
    after(async () => {
      await postgres?.stop()
    })

    test('one demotion wins, the other is refused', async () => {
      const url = await postgres.database('last_admin')
      await raceDemotions(() => PgStore.open(url, {follow: false}))
    })
  })
})
