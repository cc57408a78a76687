/**
 * `store copy` and `store import` with a PostgreSQL store on either side, on a real database: a
 * file copied into the database and back out is the same content (digest, ids, next ids); a
 * database that holds users is refused and left as it was; a database with no store is no source.
 */
import assert from 'node:assert/strict'
import {after, before, describe, test} from 'node:test'

import {contentDigest} from '../../src/server/store/content.js'
import {PgStore} from '../../src/server/store/pg-store.js'
import {copyStore} from '../../src/server/store/transfer.js'
import {exists, scratchFiles} from '../support/files.js'
import {queryAt, type RunningPostgres, startPostgres} from '../support/postgres.js'
import {assertUserError, populatedStore, storeRecords} from '../support/store-files.js'

let postgres: RunningPostgres
const fresh = scratchFiles('pg-transfer')

before(async () => {
  postgres = await startPostgres()
})
after(async () => {
  await postgres?.stop()
})

/** The rows a query gives on the database at `url`. */
const rows = async (url: string, text: string) => (await queryAt(url, text)).rows

/** The connections a command left open on the database (none once it is done). */
async function commandConnections(): Promise<number> {
  const {rows} = await postgres.query<{count: number}>("SELECT count(*)::int AS count FROM pg_stat_activity WHERE application_name = 'mlflowctl store'")
  return rows[0].count
}

describe('store copy with PostgreSQL', () => {
  test('a file into an empty database and back into a file: the same records, ids and digest; the next ids go on', async () => {
    const from = fresh('source.json')
    const back = fresh('back.json')
    await populatedStore(from)
    const url = await postgres.database('copy_round_trip')
    const source = await storeRecords(from)

    const there = await copyStore(from, url)
    assert.equal(there.source.digest, contentDigest(source))
    assert.equal(there.destination.digest, there.source.digest)
    assert.deepEqual(there.destination.counts, {assignments: 3, job_creators: 1, role_permissions: 4, roles: 3, tokens: 1, users: 3})
    assert.doesNotMatch(there.to, new RegExp(new URL(postgres.url).password))
    assert.deepEqual(await storeRecords(url), source)
    assert.equal(await commandConnections(), 0)

    const home = await copyStore(url, back)
    assert.equal(home.source.digest, there.source.digest)
    assert.deepEqual(await storeRecords(back), source)
    assert.equal(await commandConnections(), 0)

    // The database numbers on where the file left off: the deleted user's id is not handed out again.
    const store = await PgStore.open(url, {follow: false})
    const carol = await store.createUser({isAdmin: false, passwordHash: 'h', username: 'carol'})
    await store.close()
    assert.equal(carol.id, 5)
  })

  test('refuses a database that holds users (exit 6) and leaves its tables and change log as they were', async () => {
    const from = fresh('source.json')
    await populatedStore(from)
    const url = await postgres.database('copy_busy')
    const busy = await PgStore.open(url, {follow: false})
    await busy.createUser({isAdmin: false, passwordHash: 'h', username: 'someone'})
    await busy.close()
    const before = await Promise.all([storeRecords(url), rows(url, 'SELECT * FROM mlflowctl_state'), rows(url, 'SELECT * FROM mlflowctl_changes ORDER BY id')])
    await assert.rejects(copyStore(from, url), (error) => assertUserError(error, 6, /is not empty \(1 users, 0 roles\): nothing was changed/))
    const now = await Promise.all([storeRecords(url), rows(url, 'SELECT * FROM mlflowctl_state'), rows(url, 'SELECT * FROM mlflowctl_changes ORDER BY id')])
    assert.deepEqual(now, before)
  })

  test('a database that holds no store is no source: refused (exit 2), and no table is made in it', async () => {
    const url = await postgres.database('copy_no_store')
    const to = fresh('never.json')
    await assert.rejects(copyStore(url, to), (error) => assertUserError(error, 2, /holds no mlflowctl auth store/))
    assert.deepEqual(await rows(url, "SELECT tablename FROM pg_tables WHERE tablename LIKE 'mlflowctl%'"), [])
    assert.equal(await exists(to), false)
  })
})

describe('loading the tables', () => {
  test('what the constraints do not guard is still checked: an id not below its counter is refused, and the tables left as they were', async () => {
    const url = await postgres.database('load_bad_counter')
    const store = await PgStore.open(url, {follow: false})
    await store.createUser({isAdmin: false, passwordHash: 'h', username: 'alice'})
    await store.close()
    await rows(url, 'UPDATE mlflowctl_state SET next_user_id = 1')
    await assert.rejects(
      PgStore.open(url, {follow: false}),
      (error: Error) => error.name === 'StoreFileError' && /mlflowctl_users has the id 1, not a positive integer below its counter \(1\)/.test(error.message),
    )
    assert.deepEqual(await rows(url, 'SELECT id, username FROM mlflowctl_users'), [{id: '1', username: 'alice'}])
  })
})
