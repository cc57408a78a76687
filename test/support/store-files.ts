/**
 * What serve's store files hold together, read independently of the store: the file, with the
 * changes of every line of its journal (`<file>.journal`, when there is one) applied by id. The
 * journal's header must name the file by its SHA-256, as the store requires.
 */
import assert from 'node:assert/strict'
import {createHash} from 'node:crypto'
import {readFile} from 'node:fs/promises'

import {UserError} from '../../src/core/errors.js'
import {readContent} from '../../src/server/store/content.js'
import {JsonFileStore} from '../../src/server/store/json-store.js'
import {PgStore} from '../../src/server/store/pg-store.js'
import {isPostgresUrl, type StoreContent as StoreRecords} from '../../src/server/store/store.js'

export type StoreTable = 'assignments' | 'role_permissions' | 'roles' | 'users'
export type StoredRecord = Record<string, unknown> & {id: number}
export interface StoreContent {
  [key: string]: unknown
  assignments: StoredRecord[]
  role_permissions: StoredRecord[]
  roles: StoredRecord[]
  users: StoredRecord[]
}

export async function readStoreFiles(path: string): Promise<StoreContent> {
  const bytes = await readFile(path)
  const content = JSON.parse(bytes.toString('utf8')) as StoreContent
  let journal: string
  try {
    journal = await readFile(`${path}.journal`, 'utf8')
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return content
    throw error
  }

  const [header, ...lines] = journal.split('\n').filter((line) => line !== '')
  assert.equal(
    (JSON.parse(header) as {snapshot_sha256: string}).snapshot_sha256,
    createHash('sha256').update(bytes).digest('hex'),
    'the journal continues this file',
  )
  for (const line of lines) {
    const {changes, seq: _seq, ...counters} = JSON.parse(line) as {changes: Record<string, unknown>[]; seq: number}
    Object.assign(content, counters)
    for (const change of changes) {
      if ('delete' in change) {
        const table = change.delete as StoreTable
        content[table] = content[table].filter((record) => record.id !== change.id)
      } else {
        const {put, ...record} = change as StoredRecord & {put: StoreTable}
        content[put] = [...content[put].filter((other) => other.id !== record.id), record].sort((a, b) => a.id - b.id)
      }
    }
  }

  return content
}

/** A store's records as `store copy` reads them, through the store itself (a JSON file or a database). */
export async function storeRecords(location: string): Promise<StoreRecords> {
  const store = isPostgresUrl(location) ? await PgStore.open(location, {follow: false}) : await JsonFileStore.open(location, {watch: false})
  try {
    return readContent(store)
  } finally {
    await store.close()
  }
}

/** A command's refusal: a UserError with this exit code and message (for assert.rejects). */
export function assertUserError(error: unknown, exit: number, pattern: RegExp): true {
  assert.ok(error instanceof UserError, `a UserError, not ${String(error)}`)
  assert.equal(error.exit, exit)
  assert.match(error.message, pattern)
  return true
}

/**
 * A JSON file store with what a copy must carry over whole: users (the first one deleted, so ids
 * have a gap), per-user grants (bob's per-user role left empty), a role with rows and a holder
 * (its description with a quote), tokens (one revoked: its id is not reused; one with a last use)
 * and a job's creator. Users: alice 2, bob 3, root 4.
 */
export async function populatedStore(path: string): Promise<void> {
  const store = await JsonFileStore.open(path, {watch: false})
  const gone = await store.createUser({isAdmin: true, passwordHash: 'scrypt:32768:8:1$salt$aa', username: 'gone'})
  const alice = await store.createUser({isAdmin: false, passwordHash: 'pbkdf2:sha256:1000$salt$bb', username: 'alice'})
  const bob = await store.createUser({isAdmin: false, passwordHash: 'scrypt:32768:8:1$salt$cc', username: 'bob'})
  await store.createUser({isAdmin: true, passwordHash: gone.passwordHash, username: 'root'})
  // After root is made: the store never lets its last admin go.
  await store.deleteUser(gone.username)
  await store.createGrant({permission: 'EDIT', resourceId: '1', resourceType: 'experiment', userId: alice.id})
  await store.createGrant({permission: 'NO_PERMISSIONS', resourceId: '2', resourceType: 'experiment', userId: alice.id})
  await store.createGrant({permission: 'READ', resourceId: 'm', resourceType: 'registered_model', userId: bob.id})
  await store.deleteGrant(bob.id, 'registered_model', 'm')
  const role = await store.createRole({description: "it's read-only", name: 'readers', workspace: 'default'})
  await store.addRolePermission({permission: 'READ', resourcePattern: '*', resourceType: 'experiment', roleId: role.id})
  await store.addRolePermission({permission: 'DENY', resourcePattern: 'secret', resourceType: 'registered_model', roleId: role.id})
  await store.assignRole(bob.id, role.id)
  const revoked = await store.createToken({createdAt: '2026-01-01T00:00:00.000Z', digest: 'a'.repeat(64), expiresAt: null, name: 'old', userId: bob.id})
  await store.deleteToken(revoked.id)
  const token = await store.createToken({
    createdAt: '2026-01-01T00:00:00.000Z',
    digest: 'b'.repeat(64),
    expiresAt: '2026-04-01T00:00:00.000Z',
    name: 'ci ✓',
    userId: alice.id,
  })
  await store.touchTokens(new Map([[token.id, '2026-01-02T00:00:00.000Z']]))
  await store.recordJobCreator('0b6c4e2a-9f1d-4c3b-8a7e-5d2f1e0c9b8a', alice.id)
  await store.close()
}
