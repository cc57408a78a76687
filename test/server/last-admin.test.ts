/**
 * The store keeps at least one admin once it has one: deleting or demoting the last admin is
 * refused in the write itself, so two racing demotions of the last two admins (through one store,
 * or through two processes' stores on one JSON file or one database) leave one admin, never none.
 */
import assert from 'node:assert/strict'
import {mkdtemp, rm} from 'node:fs/promises'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {after, before, describe, test} from 'node:test'

import {JsonFileStore} from '../../src/server/store/json-store.js'
import {StoreModel} from '../../src/server/store/model.js'
import {PgStore} from '../../src/server/store/pg-store.js'
import {type Store, StoreError} from '../../src/server/store/store.js'
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

/** Two stores on one location demote one admin each, at once: exactly one is refused, one admin is left. */
async function raceDemotions(first: Store, second: Store): Promise<void> {
  const outcomes = await Promise.allSettled([first.updateUser('a', {isAdmin: false}), second.updateUser('b', {isAdmin: false})])
  const refused = outcomes.filter((outcome) => outcome.status === 'rejected')
  assert.equal(refused.length, 1, JSON.stringify(outcomes.map((outcome) => outcome.status)))
  assert.ok(isLastAdminRefusal((refused[0] as PromiseRejectedResult).reason))
}

describe('racing demotions of the last two admins', () => {
  let dir: string
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'mlflowctl-last-admin-'))
  })
  after(async () => {
    await rm(dir, {force: true, recursive: true})
  })

  test('JSON file: two stores on one file (as two processes)', async () => {
    const path = join(dir, 'auth.json')
    const first = await JsonFileStore.open(path, {watch: false})
    await first.createUser({isAdmin: true, passwordHash: HASH, username: 'a'})
    await first.createUser({isAdmin: true, passwordHash: HASH, username: 'b'})
    const second = await JsonFileStore.open(path, {watch: false})
    try {
      await raceDemotions(first, second)
    } finally {
      await first.close()
      await second.close()
    }

    const reopened = await JsonFileStore.open(path, {watch: false})
    try {
      assert.equal(admins(reopened).length, 1)
    } finally {
      await reopened.close()
    }
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
      const first = await PgStore.open(url, {follow: false})
      await first.createUser({isAdmin: true, passwordHash: HASH, username: 'a'})
      await first.createUser({isAdmin: true, passwordHash: HASH, username: 'b'})
      const second = await PgStore.open(url, {follow: false})
      try {
        await raceDemotions(first, second)
      } finally {
        await first.close()
        await second.close()
      }

      const reopened = await PgStore.open(url, {follow: false})
      try {
        assert.equal(admins(reopened).length, 1)
      } finally {
        await reopened.close()
      }
    })
  })
})
