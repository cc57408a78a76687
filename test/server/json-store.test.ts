import assert from 'node:assert/strict'
import {type ChildProcessWithoutNullStreams, spawn} from 'node:child_process'
import {createHash} from 'node:crypto'
import {readFileSync} from 'node:fs'
import {appendFile, copyFile, mkdir, mkdtemp, readdir, readFile, rename, rm, stat, writeFile} from 'node:fs/promises'
import {tmpdir} from 'node:os'
import {dirname, join} from 'node:path'
import {after, before, describe, it} from 'node:test'
import {fileURLToPath} from 'node:url'

import {JsonFileStore, type JsonFileStoreOptions, StoreFileError} from '../../src/server/store/json-store.js'
import {StoreError} from '../../src/server/store/store.js'
import {modeOf} from '../support/files.js'
import {readStoreFiles, type StoreContent} from '../support/store-files.js'

const root = fileURLToPath(new URL('../..', import.meta.url))
const storeModule = new URL('../../src/server/store/json-store.ts', import.meta.url).href

/**
 * The other process in the multi-process tests, run with `node --import tsx`:
 * - burst PATH PREFIX [LIMIT]: writes users and grants, 8 at a time, until killed; prints each one
 *   only after its promise resolved (`user NAME ID`, `grant USERNAME`). LIMIT: the journal's
 *   compaction threshold in bytes (1: a compaction after every batch).
 * - writer PATH PREFIX COUNT: prints `ready` once open, waits for a line on stdin, then makes COUNT
 *   users (each with a grant) concurrently, closes and prints `done`.
 * - changes PATH: creates carol, makes alice an admin, grants bob READ on experiment 7.
 */
const CHILD_SCRIPT = `
import {createInterface} from 'node:readline'
import {JsonFileStore} from ${JSON.stringify(storeModule)}

const [mode, path, prefix, count] = process.argv.slice(2)
const store = await JsonFileStore.open(path, {journalLimitBytes: mode === 'burst' && count ? Number(count) : undefined, lockStaleMs: 2000})
const say = (line) => process.stdout.write(line + '\\n')

async function userWithGrant(name) {
  const user = await store.createUser({isAdmin: false, passwordHash: 'hash-' + name, username: name})
  say('user ' + name + ' ' + user.id)
  await store.createGrant({permission: 'READ', resourceId: name, resourceType: 'experiment', userId: user.id})
  say('grant ' + name)
}

if (mode === 'burst') {
  for (let wave = 0; ; wave++) {
    await Promise.all(Array.from({length: 8}, (_, i) => userWithGrant(prefix + '-' + wave + '-' + i)))
  }
} else if (mode === 'writer') {
  say('ready')
  await new Promise((resolve) => createInterface({input: process.stdin}).once('line', resolve))
  await Promise.all(Array.from({length: Number(count)}, (_, i) => userWithGrant(prefix + '-' + i)))
  await store.close()
  say('done')
  process.exit(0)
} else if (mode === 'changes') {
  await store.createUser({isAdmin: false, passwordHash: 'carol-hash', username: 'carol'})
  await store.updateUser('alice', {isAdmin: true})
  await store.createGrant({permission: 'READ', resourceId: '7', resourceType: 'experiment', userId: store.getUser('bob').id})
  await store.close()
  process.exit(0)
}
`

let scratch: string
let childScript: string

before(async () => {
  scratch = await mkdtemp(join(tmpdir(), 'mlflowctl-json-store-'))
  // .mts: the temp directory has no package.json saying "type": "module".
  childScript = join(scratch, 'child.mts')
  await writeFile(childScript, CHILD_SCRIPT)
})

after(async () => {
  await rm(scratch, {force: true, recursive: true})
})

let dirCount = 0
async function freshDir(): Promise<string> {
  const dir = join(scratch, `case-${++dirCount}`)
  await mkdir(dir)
  return dir
}

const opened: JsonFileStore[] = []
async function openStore(path: string, options: JsonFileStoreOptions = {}): Promise<JsonFileStore> {
  const store = await JsonFileStore.open(path, {onError() {}, ...options})
  opened.push(store)
  return store
}

after(async () => {
  await Promise.all(opened.map((store) => store.close()))
})

interface Child {
  done: Promise<{code: null | number; signal: NodeJS.Signals | null}>
  process: ChildProcessWithoutNullStreams
  /** Complete lines printed so far (a line cut by a kill is not included). */
  lines: string[]
  stderr(): string
  /** Resolves once `predicate` holds for the lines printed so far. */
  waitFor(predicate: (lines: string[]) => boolean): Promise<void>
}

function startChild(...args: string[]): Child {
  const child = spawn(process.execPath, ['--import', 'tsx', childScript, ...args], {cwd: root, stdio: ['pipe', 'pipe', 'pipe']})
  const lines: string[] = []
  let partial = ''
  let stderr = ''
  const waiters: {predicate: (lines: string[]) => boolean; resolve: () => void}[] = []
  const check = () => {
    for (const waiter of [...waiters]) {
      if (waiter.predicate(lines)) {
        waiters.splice(waiters.indexOf(waiter), 1)
        waiter.resolve()
      }
    }
  }

  child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
    const parts = (partial + chunk).split('\n')
    partial = parts.pop()!
    lines.push(...parts)
    check()
  })
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk))
  const done = new Promise<{code: null | number; signal: NodeJS.Signals | null}>((resolve) => {
    child.once('close', (code, signal) => resolve({code, signal}))
  })
  return {
    done,
    lines,
    process: child,
    stderr: () => stderr,
    waitFor(predicate) {
      if (predicate(lines)) return Promise.resolve()
      return new Promise<void>((resolve, reject) => {
        waiters.push({predicate, resolve})
        void done.then(({code, signal}) => reject(new Error(`child exited (${code ?? signal}) before the expected output:\n${lines.join('\n')}\n${stderr}`)))
      })
    },
  }
}

/**
 * The store's watcher and poll timer do not keep a process alive (an offline command that forgets
 * close() must still exit), so a test waiting on them holds the event loop open itself.
 */
async function keepingAlive<T>(promise: Promise<T>): Promise<T> {
  const timer = setInterval(() => {}, 60_000)
  try {
    return await promise
  } finally {
    clearInterval(timer)
  }
}

/**
 * Resolves once `predicate` holds for what the store serves: a reload by its watcher or poll shows
 * only there. Checked every few milliseconds; the test's timeout bounds the wait.
 */
async function until(predicate: () => boolean): Promise<void> {
  while (!predicate()) await new Promise((resolve) => setTimeout(resolve, 10))
}

/**
 * A store whose onError reports are collected; `untilReported(pattern)` resolves once one matches (no
 * clocks). Await it with keepingAlive: only the store's watcher and poll timer deliver them.
 */
async function openReportingStore(path: string): Promise<{errors: Error[]; store: JsonFileStore; untilReported(pattern: RegExp): Promise<void>}> {
  const errors: Error[] = []
  let errorSeen: (() => void) | undefined
  const store = await openStore(path, {
    onError(error) {
      errors.push(error)
      errorSeen?.()
    },
  })
  return {
    errors,
    store,
    untilReported: (pattern) =>
      new Promise<void>((resolve) => {
        errorSeen = () => {
          if (errors.some((error) => pattern.test(error.message))) resolve()
        }
      }),
  }
}

const user = (username: string, isAdmin = false) => ({isAdmin, passwordHash: `hash-of-${username}`, username})

const onDisk = readStoreFiles

describe('JsonFileStore: users and grants', () => {
  it('creates, reads, updates and deletes users, with MLflow error codes', async () => {
    const store = await openStore(join(await freshDir(), 'auth.json'))
    const alice = await store.createUser(user('alice', true))
    const bob = await store.createUser(user('bob'))
    assert.deepEqual(alice, {id: 1, isAdmin: true, passwordHash: 'hash-of-alice', username: 'alice'})
    assert.equal(bob.id, 2)
    assert.deepEqual(store.getUser('bob'), bob)
    assert.deepEqual(store.getUserById(1), alice)
    assert.equal(store.getUser('nobody'), undefined)
    assert.equal(store.getUserById(99), undefined)
    assert.deepEqual(
      store.listUsers().map((u) => u.username),
      ['alice', 'bob'],
    )

    await assert.rejects(store.createUser(user('alice')), (error: unknown) => {
      assert.ok(error instanceof StoreError)
      assert.equal(error.code, 'RESOURCE_ALREADY_EXISTS')
      assert.equal(error.message, 'User (username=alice) already exists.')
      return true
    })

    const promoted = await store.updateUser('bob', {isAdmin: true})
    assert.deepEqual(promoted, {...bob, isAdmin: true})
    const rehashed = await store.updateUser('bob', {passwordHash: 'new-hash'})
    assert.deepEqual(rehashed, {...bob, isAdmin: true, passwordHash: 'new-hash'})
    assert.deepEqual(store.getUser('bob'), rehashed)
    assert.deepEqual(await store.updateUser('bob', {}), rehashed)

    for (const attempt of [() => store.updateUser('carol', {isAdmin: true}), () => store.deleteUser('carol')]) {
      await assert.rejects(attempt(), (error: unknown) => {
        assert.ok(error instanceof StoreError)
        assert.equal(error.code, 'RESOURCE_DOES_NOT_EXIST')
        assert.equal(error.message, 'User with username=carol not found')
        return true
      })
    }

    // Ids are never reused, not even the highest one after its user is gone. (The last admin never
    // goes: bob is demoted while alice is one, and alice deleted once carol is one.)
    await store.updateUser('bob', {isAdmin: false})
    await store.deleteUser('bob')
    const carol = await store.createUser(user('carol', true))
    assert.equal(carol.id, 3)
    await store.deleteUser('alice')
    assert.equal(store.getUser('alice'), undefined)
    assert.equal(store.getUserById(1), undefined)
    const alice2 = await store.createUser(user('alice'))
    assert.equal(alice2.id, 4)
  })

  it('creates, updates and deletes grants; deleting a user removes their grants', async () => {
    const store = await openStore(join(await freshDir(), 'auth.json'))
    const alice = await store.createUser(user('alice'))
    const bob = await store.createUser(user('bob'))
    const grant = {permission: 'READ', resourceId: '42', resourceType: 'experiment', userId: alice.id}
    assert.deepEqual(await store.createGrant(grant), grant)
    await store.createGrant({permission: 'EDIT', resourceId: 'churn-model', resourceType: 'registered_model', userId: alice.id})
    await store.createGrant({permission: 'MANAGE', resourceId: '42', resourceType: 'experiment', userId: bob.id})
    await store.createGrant({permission: 'READ', resourceId: '42/my%20scorer', resourceType: 'scorer', userId: bob.id})

    assert.deepEqual(store.getGrant(alice.id, 'experiment', '42'), grant)
    assert.equal(store.getGrant(alice.id, 'experiment', '43'), undefined)
    assert.equal(store.getGrant(alice.id, 'registered_model', '42'), undefined)
    assert.equal(store.getGrant(99, 'experiment', '42'), undefined)
    assert.equal(store.listGrants(alice.id).length, 2)
    assert.deepEqual(store.listGrants(99), [])

    await assert.rejects(
      store.createGrant({...grant, permission: 'EDIT'}),
      (error: unknown) => error instanceof StoreError && error.code === 'RESOURCE_ALREADY_EXISTS',
    )
    await assert.rejects(store.createGrant({...grant, userId: 99}), (error: unknown) => error instanceof StoreError && error.code === 'RESOURCE_DOES_NOT_EXIST')
    assert.equal(store.getGrant(alice.id, 'experiment', '42')?.permission, 'READ')

    assert.deepEqual(await store.updateGrant({...grant, permission: 'EDIT'}), {...grant, permission: 'EDIT'})
    assert.equal(store.getGrant(alice.id, 'experiment', '42')?.permission, 'EDIT')
    const missing = {permission: 'READ', resourceId: '1', resourceType: 'experiment', userId: alice.id}
    await assert.rejects(store.updateGrant(missing), (error: unknown) => error instanceof StoreError && error.code === 'RESOURCE_DOES_NOT_EXIST')
    await assert.rejects(
      store.deleteGrant(alice.id, 'experiment', '1'),
      (error: unknown) => error instanceof StoreError && error.code === 'RESOURCE_DOES_NOT_EXIST',
    )

    await store.deleteGrant(alice.id, 'experiment', '42')
    assert.equal(store.getGrant(alice.id, 'experiment', '42'), undefined)
    assert.equal(store.getGrant(bob.id, 'experiment', '42')?.permission, 'MANAGE')

    await store.deleteUser('bob')
    assert.deepEqual(store.listGrants(bob.id), [])
    assert.equal(store.getGrant(bob.id, 'scorer', '42/my%20scorer'), undefined)
    // A new user never inherits a deleted user's grants: ids are not reused.
    const carol = await store.createUser(user('carol'))
    assert.notEqual(carol.id, bob.id)
    assert.deepEqual(store.listGrants(carol.id), [])
  })

  it('deletes and renames all grants on a resource', async () => {
    const store = await openStore(join(await freshDir(), 'auth.json'))
    const [a, b, c] = await Promise.all(['a', 'b', 'c'].map((name) => store.createUser(user(name))))
    await Promise.all([
      store.createGrant({permission: 'READ', resourceId: 'old', resourceType: 'registered_model', userId: a.id}),
      store.createGrant({permission: 'EDIT', resourceId: 'old', resourceType: 'registered_model', userId: b.id}),
      store.createGrant({permission: 'READ', resourceId: 'old', resourceType: 'experiment', userId: a.id}),
      // Left over from a deleted model that was called "new".
      store.createGrant({permission: 'MANAGE', resourceId: 'new', resourceType: 'registered_model', userId: c.id}),
      store.createGrant({permission: 'MANAGE', resourceId: 'new', resourceType: 'registered_model', userId: a.id}),
    ])

    assert.equal(await store.renameResource('registered_model', 'old', 'new'), 2)
    assert.equal(store.getGrant(a.id, 'registered_model', 'old'), undefined)
    assert.equal(store.getGrant(a.id, 'registered_model', 'new')?.permission, 'READ')
    assert.equal(store.getGrant(b.id, 'registered_model', 'new')?.permission, 'EDIT')
    assert.equal(store.getGrant(c.id, 'registered_model', 'new'), undefined, 'a stale grant on the new name must not survive')
    assert.equal(store.getGrant(a.id, 'experiment', 'old')?.permission, 'READ', 'other resource types are untouched')
    assert.equal(await store.renameResource('registered_model', 'absent', 'other'), 0)

    assert.equal(await store.deleteGrantsForResource('registered_model', 'new'), 2)
    assert.equal(store.getGrant(a.id, 'registered_model', 'new'), undefined)
    assert.equal(store.getGrant(b.id, 'registered_model', 'new'), undefined)
    assert.equal(store.getGrant(a.id, 'experiment', 'old')?.permission, 'READ')
    assert.equal(await store.deleteGrantsForResource('registered_model', 'new'), 0)
  })

  it('keeps resource types and ids apart whatever characters they hold', async () => {
    const store = await openStore(join(await freshDir(), 'auth.json'))
    const a = await store.createUser(user('a'))
    await store.createGrant({permission: 'READ', resourceId: 'b:c', resourceType: 'a', userId: a.id})
    await store.createGrant({permission: 'EDIT', resourceId: 'c', resourceType: 'a:b', userId: a.id})
    await store.createGrant({permission: 'MANAGE', resourceId: '', resourceType: 'a:b:c', userId: a.id})
    assert.equal(store.getGrant(a.id, 'a', 'b:c')?.permission, 'READ')
    assert.equal(store.getGrant(a.id, 'a:b', 'c')?.permission, 'EDIT')
    assert.equal(store.getGrant(a.id, 'a:b:c', '')?.permission, 'MANAGE')
    assert.equal(store.listGrants(a.id).length, 3)
  })

  it('shows every write to its callers as soon as its promise resolves', async () => {
    const store = await openStore(join(await freshDir(), 'auth.json'))
    const alice = await store.createUser(user('alice'))
    assert.deepEqual(store.getUser('alice'), alice)
    await store.updateUser('alice', {passwordHash: 'other'})
    assert.equal(store.getUser('alice')?.passwordHash, 'other')
    await store.createGrant({permission: 'READ', resourceId: '1', resourceType: 'experiment', userId: alice.id})
    assert.equal(store.getGrant(alice.id, 'experiment', '1')?.permission, 'READ')
    await store.deleteUser('alice')
    assert.equal(store.getUser('alice'), undefined)
    assert.equal(store.getGrant(alice.id, 'experiment', '1'), undefined)
  })

  it('batches many concurrent writes, each durable when it resolves', async () => {
    const path = join(await freshDir(), 'auth.json')
    const store = await openStore(path)
    const users = await Promise.all(Array.from({length: 200}, (_, i) => store.createUser(user(`user-${i}`))))
    assert.deepEqual(
      users.map((u) => u.id).sort((a, b) => a - b),
      Array.from({length: 200}, (_, i) => i + 1),
    )
    const grants = await Promise.all(
      users.map((u) => store.createGrant({permission: 'READ', resourceId: String(u.id), resourceType: 'experiment', userId: u.id})),
    )
    assert.equal(grants.length, 200)
    // Everything resolved is already on disk, before any close().
    const durable = await onDisk(path)
    assert.equal(durable.users.length, 200)
    assert.equal(durable.role_permissions.length, 200)
    assert.equal(durable.next_user_id, 201)
  })

  it('close() finishes queued writes, then refuses new ones', async () => {
    const path = join(await freshDir(), 'auth.json')
    const store = await JsonFileStore.open(path)
    const pending = Promise.all([store.createUser(user('a')), store.createUser(user('b'))])
    await store.close()
    assert.equal((await pending).length, 2)
    await assert.rejects(store.createUser(user('c')), /closed/)
    const reopened = await openStore(path)
    assert.deepEqual(
      reopened.listUsers().map((u) => u.username),
      ['a', 'b'],
    )
  })
})

/** Runs a store write and returns MLflow's error code and message it was refused with. */
async function refusal(write: Promise<unknown>): Promise<{code: string; message: string}> {
  try {
    await write
  } catch (error) {
    assert.ok(error instanceof StoreError, String(error))
    return {code: error.code, message: error.message}
  }

  assert.fail('the write was accepted')
}

describe('JsonFileStore: roles, rows and assignments', () => {
  it('creates, reads, updates and deletes roles with MLflow’s errors', async () => {
    const store = await openStore(join(await freshDir(), 'auth.json'))
    const readers = await store.createRole({description: 'may read', name: 'readers', workspace: 'default'})
    assert.deepEqual(readers, {description: 'may read', id: 1, name: 'readers', workspace: 'default'})
    const writers = await store.createRole({description: null, name: 'writers', workspace: 'default'})
    assert.equal(writers.id, 2)
    assert.deepEqual(store.getRole(1), readers)
    assert.equal(store.getRole(99), undefined)
    assert.deepEqual(
      store.listRoles().map((role) => role.name),
      ['readers', 'writers'],
    )
    assert.deepEqual(store.listRoles(['other']), [])

    assert.deepEqual(await refusal(store.createRole({description: null, name: 'readers', workspace: 'default'})), {
      code: 'RESOURCE_ALREADY_EXISTS',
      message: 'Role (name=readers, workspace=default) already exists.',
    })
    // The whole prefix is reserved, not only the exact per-user shape.
    for (const name of ['__user_7__', '__user_x']) {
      assert.deepEqual(await refusal(store.createRole({description: null, name, workspace: 'default'})), {
        code: 'INVALID_PARAMETER_VALUE',
        message: `Role name '${name}' uses the reserved '__user_' prefix, which is held for the per-user permission representation. Choose a different name.`,
      })
    }

    assert.deepEqual(await store.updateRole(readers.id, {name: 'viewers'}), {...readers, name: 'viewers'})
    assert.deepEqual(await store.updateRole(readers.id, {description: 'may view'}), {...readers, description: 'may view', name: 'viewers'})
    assert.deepEqual(await refusal(store.updateRole(readers.id, {name: 'writers'})), {
      code: 'RESOURCE_ALREADY_EXISTS',
      message: 'Role with name=writers already exists in workspace=default',
    })
    assert.equal((await refusal(store.updateRole(readers.id, {name: '__user_1__'}))).code, 'INVALID_PARAMETER_VALUE')
    assert.deepEqual(await refusal(store.updateRole(99, {name: 'x'})), {code: 'RESOURCE_DOES_NOT_EXIST', message: 'Role with id=99 not found'})

    await store.deleteRole(writers.id)
    assert.equal(store.getRole(writers.id), undefined)
    assert.deepEqual(await refusal(store.deleteRole(writers.id)), {code: 'RESOURCE_DOES_NOT_EXIST', message: `Role with id=${writers.id} not found`})
    // Ids are never reused.
    assert.equal((await store.createRole({description: null, name: 'writers', workspace: 'default'})).id, 3)
  })

  it('adds, updates and removes rows as MLflow validates them, and assigns roles', async () => {
    const store = await openStore(join(await freshDir(), 'auth.json'))
    const alice = await store.createUser(user('alice'))
    const role = await store.createRole({description: null, name: 'team', workspace: 'default'})
    const row = await store.addRolePermission({permission: 'READ', resourcePattern: '*', resourceType: 'experiment', roleId: role.id})
    assert.deepEqual(row, {id: 1, permission: 'READ', resourcePattern: '*', resourceType: 'experiment', roleId: role.id})
    await store.addRolePermission({permission: 'DENY', resourcePattern: 'secret-model', resourceType: 'registered_model', roleId: role.id})
    assert.deepEqual(await refusal(store.addRolePermission({permission: 'EDIT', resourcePattern: '*', resourceType: 'experiment', roleId: role.id})), {
      code: 'RESOURCE_ALREADY_EXISTS',
      message: `Role permission (role_id=${role.id}, resource_type=experiment, resource_pattern=*) already exists.`,
    })
    assert.deepEqual(await refusal(store.addRolePermission({permission: 'READ', resourcePattern: 'run-1', resourceType: 'run', roleId: role.id})), {
      code: 'INVALID_PARAMETER_VALUE',
      message: "Invalid resource_pattern 'run-1' for resource_type='run'. This resource type supports only wildcard ('*') grants.",
    })
    assert.equal(
      (await refusal(store.addRolePermission({permission: 'NO_PERMISSIONS', resourcePattern: '1', resourceType: 'experiment', roleId: role.id}))).code,
      'INVALID_PARAMETER_VALUE',
    )
    assert.equal(
      (await refusal(store.addRolePermission({permission: 'READ', resourcePattern: '1', resourceType: 'experiments', roleId: role.id}))).code,
      'INVALID_PARAMETER_VALUE',
    )
    // MLflow checks the row before the role.
    assert.equal(
      (await refusal(store.addRolePermission({permission: 'READ', resourcePattern: '*', resourceType: 'run', roleId: 99}))).code,
      'RESOURCE_DOES_NOT_EXIST',
    )

    assert.deepEqual(await store.updateRolePermission(row.id, 'EDIT'), {...row, permission: 'EDIT'})
    assert.equal((await refusal(store.updateRolePermission(row.id, 'NO_PERMISSIONS'))).code, 'INVALID_PARAMETER_VALUE')
    assert.deepEqual(await refusal(store.updateRolePermission(99, 'READ')), {code: 'RESOURCE_DOES_NOT_EXIST', message: 'Role permission with id=99 not found'})

    assert.deepEqual(store.rowsOf(alice.id), [])
    const assignment = await store.assignRole(alice.id, role.id)
    assert.deepEqual(assignment, {id: 1, roleId: role.id, userId: alice.id})
    assert.deepEqual(await refusal(store.assignRole(alice.id, role.id)), {
      code: 'RESOURCE_ALREADY_EXISTS',
      message: `User role assignment (user_id=${alice.id}, role_id=${role.id}) already exists`,
    })
    assert.deepEqual(await refusal(store.assignRole(99, role.id)), {code: 'RESOURCE_DOES_NOT_EXIST', message: 'User with id=99 not found'})
    assert.deepEqual(store.listUserRoles(alice.id), [role])
    assert.deepEqual(store.listRoleUsers(role.id), [assignment])
    assert.deepEqual(store.rowsOf(alice.id), [
      {permission: 'EDIT', resourcePattern: '*', resourceType: 'experiment', roleId: role.id, roleName: 'team'},
      {permission: 'DENY', resourcePattern: 'secret-model', resourceType: 'registered_model', roleId: role.id, roleName: 'team'},
    ])

    await store.removeRolePermission(row.id)
    assert.equal(store.getRolePermission(row.id), undefined)
    assert.deepEqual(
      store.rowsOf(alice.id).map((r) => r.permission),
      ['DENY'],
    )
    await store.unassignRole(alice.id, role.id)
    assert.deepEqual(store.rowsOf(alice.id), [])
    assert.deepEqual(await refusal(store.unassignRole(alice.id, role.id)), {
      code: 'RESOURCE_DOES_NOT_EXIST',
      message: `User role assignment (user_id=${alice.id}, role_id=${role.id}) not found`,
    })

    // Deleting a role takes its rows and assignments along.
    await store.assignRole(alice.id, role.id)
    await store.deleteRole(role.id)
    assert.deepEqual(store.listUserRoles(alice.id), [])
    assert.deepEqual(store.rowsOf(alice.id), [])
    assert.deepEqual(store.listRolePermissions(role.id), [])
  })

  it('keeps a user’s own grants as rows of their per-user role, beside the roles they hold', async () => {
    const store = await openStore(join(await freshDir(), 'auth.json'))
    const alice = await store.createUser(user('alice'))
    const bob = await store.createUser(user('bob'))
    const team = await store.createRole({description: null, name: 'team', workspace: 'default'})
    await store.addRolePermission({permission: 'READ', resourcePattern: 'churn', resourceType: 'registered_model', roleId: team.id})
    await store.assignRole(alice.id, team.id)

    await store.createGrant({permission: 'EDIT', resourceId: 'churn', resourceType: 'registered_model', userId: alice.id})
    const own = store.listUserRoles(alice.id).find((role) => role.name === `__user_${alice.id}__`)
    assert.ok(own, 'the first grant creates and assigns the per-user role')
    assert.deepEqual(own, {description: null, id: own.id, name: `__user_${alice.id}__`, workspace: 'default'})
    assert.deepEqual(
      store.listRolePermissions(own.id).map((row) => [row.resourceType, row.resourcePattern, row.permission]),
      [['registered_model', 'churn', 'EDIT']],
    )
    assert.deepEqual(
      store.rowsOf(alice.id).map((row) => `${row.roleName}:${row.permission}`),
      ['team:READ', `__user_${alice.id}__:EDIT`],
    )

    // An update changes the row in place; a revoke removes it and leaves the role, as MLflow does.
    const [rowBefore] = store.listRolePermissions(own.id)
    await store.updateGrant({permission: 'MANAGE', resourceId: 'churn', resourceType: 'registered_model', userId: alice.id})
    assert.deepEqual(store.listRolePermissions(own.id), [{...rowBefore, permission: 'MANAGE'}])
    await store.deleteGrant(alice.id, 'registered_model', 'churn')
    assert.deepEqual(store.listRolePermissions(own.id), [])
    assert.ok(store.getRole(own.id))

    // Another user never receives this user's own grants.
    assert.equal((await refusal(store.assignRole(bob.id, own.id))).code, 'INVALID_PARAMETER_VALUE')

    // Unassigned from it, the next grant assigns it again.
    await store.unassignRole(alice.id, own.id)
    await store.createGrant({permission: 'READ', resourceId: '1', resourceType: 'experiment', userId: alice.id})
    assert.ok(store.listUserRoles(alice.id).some((role) => role.id === own.id))

    // Deleting the user deletes their per-user role and their assignments; other roles stay.
    await store.deleteUser('alice')
    assert.equal(store.getRole(own.id), undefined)
    assert.deepEqual(store.listRoleUsers(team.id), [])
    assert.ok(store.getRole(team.id))
  })

  it('moves and removes per-user rows on a rename or delete, and leaves the rows of roles an admin made', async () => {
    const store = await openStore(join(await freshDir(), 'auth.json'))
    const alice = await store.createUser(user('alice'))
    const team = await store.createRole({description: null, name: 'team', workspace: 'default'})
    const teamRow = await store.addRolePermission({permission: 'READ', resourcePattern: 'old', resourceType: 'registered_model', roleId: team.id})
    await store.createGrant({permission: 'EDIT', resourceId: 'old', resourceType: 'registered_model', userId: alice.id})

    assert.equal(await store.renameResource('registered_model', 'old', 'new'), 1)
    assert.equal(store.getGrant(alice.id, 'registered_model', 'new')?.permission, 'EDIT')
    assert.deepEqual(store.getRolePermission(teamRow.id), teamRow, 'a role’s row names a model by name: MLflow leaves it')
    assert.equal(await store.deleteGrantsForResource('registered_model', 'new'), 1)
    assert.equal(store.getGrant(alice.id, 'registered_model', 'new'), undefined)
    await store.addRolePermission({permission: 'READ', resourcePattern: 'new', resourceType: 'registered_model', roleId: team.id})
    assert.equal(await store.deleteGrantsForResource('registered_model', 'new'), 0)
    assert.equal(store.listRolePermissions(team.id).length, 2)
  })

  it('lists rows from memory, one shared array per user until the next write', async () => {
    const store = await openStore(join(await freshDir(), 'auth.json'))
    const alice = await store.createUser(user('alice'))
    await store.createGrant({permission: 'READ', resourceId: '1', resourceType: 'experiment', userId: alice.id})
    const first = store.rowsOf(alice.id)
    assert.equal(store.rowsOf(alice.id), first)
    assert.ok(Object.isFrozen(first))
    await store.createGrant({permission: 'EDIT', resourceId: '2', resourceType: 'experiment', userId: alice.id})
    assert.notEqual(store.rowsOf(alice.id), first)
    assert.equal(store.rowsOf(alice.id).length, 2)
  })
})

describe('JsonFileStore: format upgrade', () => {
  const VERSION_1 = `{
  "version": 1,
  "next_user_id": 5,
  "users": [
    {"id": 1, "username": "admin", "password_hash": "h1", "is_admin": true},
    {"id": 3, "username": "carol", "password_hash": "h3", "is_admin": false},
    {"id": 4, "username": "dave", "password_hash": "h4", "is_admin": false}
  ],
  "grants": [
    {"user_id": 4, "resource_type": "experiment", "resource_id": "7", "permission": "MANAGE"},
    {"user_id": 3, "resource_type": "experiment", "resource_id": "42", "permission": "READ"},
    {"user_id": 3, "resource_type": "registered_model", "resource_id": "churn", "permission": "EDIT"}
  ]
}
`

  it('upgrades a version 1 file on open, keeping it beside as <file>.v1.bak (0600), with nothing lost', async () => {
    const dir = await freshDir()
    const path = join(dir, 'auth.json')
    await writeFile(path, VERSION_1, {mode: 0o600})
    const store = await openStore(path)
    assert.equal(store.getGrant(3, 'experiment', '42')?.permission, 'READ')
    assert.equal(store.getGrant(3, 'registered_model', 'churn')?.permission, 'EDIT')
    assert.equal(store.getGrant(4, 'experiment', '7')?.permission, 'MANAGE')

    assert.equal(await readFile(`${path}.v1.bak`, 'utf8'), VERSION_1)
    assert.equal(await modeOf(`${path}.v1.bak`), 0o600)
    const upgraded = JSON.parse(await readFile(path, 'utf8'))
    // Roles in user order, rows in each user's file order: the same ids whoever upgrades the file.
    assert.deepEqual(upgraded, {
      assignments: [
        {id: 1, role_id: 1, user_id: 3},
        {id: 2, role_id: 2, user_id: 4},
      ],
      next_assignment_id: 3,
      next_role_id: 3,
      next_role_permission_id: 4,
      next_token_id: 1,
      next_job_creator_id: 1,
      job_creators: [],
      next_user_id: 5,
      role_permissions: [
        {id: 1, permission: 'READ', resource_pattern: '42', resource_type: 'experiment', role_id: 1},
        {id: 2, permission: 'EDIT', resource_pattern: 'churn', resource_type: 'registered_model', role_id: 1},
        {id: 3, permission: 'MANAGE', resource_pattern: '7', resource_type: 'experiment', role_id: 2},
      ],
      roles: [
        {description: null, id: 1, name: '__user_3__', workspace: 'default'},
        {description: null, id: 2, name: '__user_4__', workspace: 'default'},
      ],
      users: [
        {id: 1, is_admin: true, password_hash: 'h1', username: 'admin'},
        {id: 3, is_admin: false, password_hash: 'h3', username: 'carol'},
        {id: 4, is_admin: false, password_hash: 'h4', username: 'dave'},
      ],
      tokens: [],
      version: 3,
    })

    // The round trip: reopened, the upgraded file reads back the same and is not rewritten.
    await store.close()
    const bytes = await readFile(path)
    const again = await openStore(path)
    assert.deepEqual(again.listGrants(3), store.listGrants(3))
    assert.deepEqual(again.listUsers(), store.listUsers())
    assert.deepEqual(await readFile(path), bytes)
    assert.deepEqual((await readdir(dir)).sort(), ['auth.json', 'auth.json.v1.bak'])
  })

  it('never replaces a backup already there', async () => {
    const dir = await freshDir()
    const path = join(dir, 'auth.json')
    await writeFile(`${path}.v1.bak`, 'the first backup')
    await writeFile(path, VERSION_1)
    const store = await openStore(path)
    assert.equal(store.getGrant(4, 'experiment', '7')?.permission, 'MANAGE')
    assert.equal(await readFile(`${path}.v1.bak`, 'utf8'), 'the first backup')
    assert.equal(JSON.parse(await readFile(path, 'utf8')).version, 3)
  })

  it('keeps a version 1 file another process wrote before writing over it', async () => {
    const dir = await freshDir()
    const path = join(dir, 'auth.json')
    const store = await openStore(path, {watch: false, pollIntervalMs: 3_600_000})
    // An older mlflowctl replaces the file meanwhile.
    await writeFile(path, VERSION_1)
    await store.createUser(user('erin'))
    assert.equal(await readFile(`${path}.v1.bak`, 'utf8'), VERSION_1)
    assert.equal(JSON.parse(await readFile(path, 'utf8')).version, 3)
    const durable = await onDisk(path)
    assert.deepEqual(
      durable.users.map((u) => u.username),
      ['admin', 'carol', 'dave', 'erin'],
    )
    assert.equal(durable.role_permissions.length, 3)
  })
})

describe('JsonFileStore: the file', () => {
  it('creates the file (0600) and its directories at open, as an empty store', async () => {
    const dir = join(await freshDir(), 'nested', 'deeper')
    const path = join(dir, 'auth.json')
    const previous = process.umask(0)
    let store: JsonFileStore
    try {
      store = await openStore(path)
    } finally {
      process.umask(previous)
    }

    assert.equal(store.location, path)
    assert.deepEqual(store.listUsers(), [])
    assert.equal(await modeOf(path), 0o600)
    assert.equal(await modeOf(dir), 0o700)
    assert.deepEqual(JSON.parse(await readFile(path, 'utf8')), {
      assignments: [],
      next_assignment_id: 1,
      next_role_id: 1,
      next_role_permission_id: 1,
      next_token_id: 1,
      next_job_creator_id: 1,
      job_creators: [],
      next_user_id: 1,
      role_permissions: [],
      roles: [],
      tokens: [],
      users: [],
      version: 3,
    })
    await store.createUser(user('a'))
    assert.equal(await modeOf(path), 0o600)
  })

  it('persists across reopen in a readable snake_case file', async () => {
    const path = join(await freshDir(), 'auth.json')
    const first = await JsonFileStore.open(path)
    const alice = await first.createUser(user('alice', true))
    const bob = await first.createUser(user('bob'))
    const doomed = await first.createUser(user('doomed'))
    await first.createGrant({permission: 'READ', resourceId: '42', resourceType: 'experiment', userId: bob.id})
    await first.createGrant({permission: 'EDIT', resourceId: 'model ✓', resourceType: 'registered_model', userId: bob.id})
    await first.createGrant({permission: 'READ', resourceId: '42', resourceType: 'experiment', userId: doomed.id})
    await first.deleteUser('doomed')
    await first.close()

    const text = await readFile(path, 'utf8')
    // The doomed user's per-user role went with them; ids are never reused.
    assert.deepEqual(JSON.parse(text), {
      assignments: [{id: 1, role_id: 1, user_id: 2}],
      next_assignment_id: 3,
      next_role_id: 3,
      next_role_permission_id: 4,
      next_token_id: 1,
      next_job_creator_id: 1,
      job_creators: [],
      next_user_id: 4,
      role_permissions: [
        {id: 1, permission: 'READ', resource_pattern: '42', resource_type: 'experiment', role_id: 1},
        {id: 2, permission: 'EDIT', resource_pattern: 'model ✓', resource_type: 'registered_model', role_id: 1},
      ],
      roles: [{description: null, id: 1, name: '__user_2__', workspace: 'default'}],
      users: [
        {id: 1, is_admin: true, password_hash: 'hash-of-alice', username: 'alice'},
        {id: 2, is_admin: false, password_hash: 'hash-of-bob', username: 'bob'},
      ],
      tokens: [],
      version: 3,
    })
    assert.match(text, /^\{\n {2}"version": 3,/, 'pretty-printed')
    assert.match(
      text,
      /\n {4}\{"id": 1, "role_id": 1, "resource_type": "experiment", "resource_pattern": "42", "permission": "READ"\},\n/,
      'one record per line',
    )

    const second = await openStore(path)
    assert.deepEqual(second.listUsers(), [alice, bob])
    assert.equal(second.getGrant(bob.id, 'registered_model', 'model ✓')?.permission, 'EDIT')
    assert.equal((await second.createUser(user('carol'))).id, doomed.id + 1)
  })

  const CORRUPT: [string, Buffer | string, RegExp][] = [
    ['bad JSON', '{\n  "version": 1,\n  "users": [}\n', /is not valid JSON: unexpected "}" at line 3, column 13\./],
    ['an empty file', '', /is empty/],
    ['bytes that are not UTF-8', Buffer.from([0x7b, 0xff, 0xfe, 0x7d]), /not UTF-8/],
    ['an array', '[]', /top level is an array/],
    [
      'a newer version',
      '{"version": 4, "next_user_id": 1, "users": [], "grants": []}',
      /"version" is number 4; this mlflowctl reads versions 1 to 3 \(written by a newer mlflowctl\?/,
    ],
    ['a missing key', '{"version": 1, "next_user_id": 1, "grants": []}', /has no "users"/],
    ['an unknown key', '{"version": 1, "next_user_id": 1, "users": [], "grants": [], "roles": []}', /unknown key "roles"/],
    [
      'a misspelt user key',
      '{"version": 1, "next_user_id": 2, "users": [{"id": 1, "username": "a", "password_hash": "h", "is_Admin": true}], "grants": []}',
      /users\[0\] has unknown key "is_Admin"/,
    ],
    [
      'a string id',
      '{"version": 1, "next_user_id": 2, "users": [{"id": "1", "username": "a", "password_hash": "h", "is_admin": true}], "grants": []}',
      /users\[0\]\.id is the string "1"/,
    ],
    [
      'a string is_admin',
      '{"version": 1, "next_user_id": 2, "users": [{"id": 1, "username": "a", "password_hash": "h", "is_admin": "true"}], "grants": []}',
      /users\[0\]\.is_admin is the string "true"/,
    ],
    [
      'duplicate usernames',
      '{"version": 1, "next_user_id": 3, "users": [{"id": 1, "username": "alice", "password_hash": "h", "is_admin": false}, {"id": 2, "username": "alice", "password_hash": "h", "is_admin": false}], "grants": []}',
      /users\[1\]\.username "alice" is also the username of users\[0\]/,
    ],
    [
      'duplicate ids',
      '{"version": 1, "next_user_id": 3, "users": [{"id": 1, "username": "a", "password_hash": "h", "is_admin": false}, {"id": 1, "username": "b", "password_hash": "h", "is_admin": false}], "grants": []}',
      /users\[1\]\.id 1 is also the id of users\[0\]/,
    ],
    [
      'a reused id counter',
      '{"version": 1, "next_user_id": 1, "users": [{"id": 1, "username": "a", "password_hash": "h", "is_admin": false}], "grants": []}',
      /users\[0\]\.id 1 is not below "next_user_id"/,
    ],
    [
      'a grant of an unknown user',
      '{"version": 1, "next_user_id": 1, "users": [], "grants": [{"user_id": 9, "resource_type": "experiment", "resource_id": "1", "permission": "READ"}]}',
      /grants\[0\]\.user_id 9 is not the id of any user/,
    ],
    [
      'a repeated grant',
      '{"version": 1, "next_user_id": 2, "users": [{"id": 1, "username": "a", "password_hash": "h", "is_admin": false}], "grants": [{"user_id": 1, "resource_type": "experiment", "resource_id": "1", "permission": "READ"}, {"user_id": 1, "resource_type": "experiment", "resource_id": "1", "permission": "EDIT"}]}',
      /grants\[1\] repeats the grant of user 1 on experiment "1"/,
    ],
    [
      'a row of an unknown role',
      '{"version": 2, "next_user_id": 1, "next_role_id": 1, "next_role_permission_id": 2, "next_assignment_id": 1, "users": [], "roles": [], "role_permissions": [{"id": 1, "role_id": 4, "resource_type": "experiment", "resource_pattern": "1", "permission": "READ"}], "assignments": []}',
      /role_permissions\[0\]\.role_id number 4 is not the id of any role/,
    ],
    [
      'a repeated role name',
      '{"version": 2, "next_user_id": 1, "next_role_id": 3, "next_role_permission_id": 1, "next_assignment_id": 1, "users": [], "roles": [{"id": 1, "workspace": "default", "name": "team", "description": null}, {"id": 2, "workspace": "default", "name": "team", "description": "again"}], "role_permissions": [], "assignments": []}',
      /roles\[1\] repeats the role name "team" in workspace "default"/,
    ],
    [
      'an assignment of an unknown user',
      '{"version": 2, "next_user_id": 1, "next_role_id": 2, "next_role_permission_id": 1, "next_assignment_id": 2, "users": [], "roles": [{"id": 1, "workspace": "default", "name": "team", "description": null}], "role_permissions": [], "assignments": [{"id": 1, "user_id": 5, "role_id": 1}]}',
      /assignments\[0\]\.user_id number 5 is not the id of any user/,
    ],
    [
      'a role id at its counter',
      '{"version": 2, "next_user_id": 1, "next_role_id": 1, "next_role_permission_id": 1, "next_assignment_id": 1, "users": [], "roles": [{"id": 1, "workspace": "default", "name": "team", "description": null}], "role_permissions": [], "assignments": []}',
      /roles\[0\]\.id 1 is not below "next_role_id" \(1\)/,
    ],
  ]

  for (const [what, content, message] of CORRUPT) {
    it(`refuses ${what} at open, naming the file, and leaves it byte for byte`, async () => {
      const dir = await freshDir()
      const path = join(dir, 'auth.json')
      const bytes = Buffer.from(content)
      await writeFile(path, bytes, {mode: 0o640})
      await assert.rejects(JsonFileStore.open(path), (error: unknown) => {
        assert.ok(error instanceof StoreFileError, String(error))
        assert.ok(error.message.includes(path), error.message)
        assert.match(error.message, message)
        return true
      })
      assert.deepEqual(await readFile(path), bytes)
      assert.equal(await modeOf(path), 0o640)
      assert.deepEqual(await readdir(dir), ['auth.json'])
    })
  }

  it('refuses a file it cannot read', async () => {
    const dir = await freshDir()
    const path = join(dir, 'auth.json')
    // A directory where the file should be (permission bits mean nothing to root, who runs CI).
    await mkdir(path)
    await assert.rejects(JsonFileStore.open(path), (error: unknown) => {
      assert.ok(error instanceof StoreFileError)
      assert.match(error.message, /Cannot read the auth store .*auth\.json: EISDIR/)
      return true
    })
    assert.ok((await stat(path)).isDirectory())
  })

  it('keeps serving the last good state when the file turns corrupt, refuses writes, and recovers', async () => {
    const path = join(await freshDir(), 'auth.json')
    const {errors, store, untilReported} = await openReportingStore(path)
    const alice = await store.createUser(user('alice'))
    await store.createGrant({permission: 'READ', resourceId: '1', resourceType: 'experiment', userId: alice.id})
    // Folded into the file: a hand edit of a file with changes pending in its journal is refused (below).
    await store.compact()
    const good = JSON.parse(await readFile(path, 'utf8'))
    assert.equal(good.users.length, 1)

    const corruption = '{"version": 1, "users": ['
    const reported = untilReported(/not valid JSON/)
    // A hand edit in place, as an editor or `echo >` would do it.
    await writeFile(path, corruption)
    await keepingAlive(reported)
    assert.ok(errors.every((error) => error.message.includes(path)))

    assert.deepEqual(store.getUser('alice'), alice)
    assert.equal(store.getGrant(alice.id, 'experiment', '1')?.permission, 'READ')
    await assert.rejects(store.createUser(user('bob')), (error: unknown) => error instanceof StoreFileError && /not valid JSON/.test(error.message))
    await assert.rejects(store.deleteUser('alice'), StoreFileError)
    assert.equal(await readFile(path, 'utf8'), corruption, 'a refused write leaves the file alone')
    assert.deepEqual(store.getUser('alice'), alice)

    // Someone repairs it, adding a user by hand: the store picks it up and writes again.
    good.users.push({id: good.next_user_id, is_admin: false, password_hash: 'dave-hash', username: 'dave'})
    good.next_user_id++
    await writeFile(path, JSON.stringify(good))
    await until(() => store.getUser('dave') !== undefined)
    assert.equal(store.getUser('dave')?.passwordHash, 'dave-hash')
    const bob = await store.createUser(user('bob'))
    assert.equal(bob.id, 3)
    assert.deepEqual(
      (await onDisk(path)).users.map((u) => u.username),
      ['alice', 'dave', 'bob'],
    )
  })

  it('refuses writes while the file is gone, without recreating it', async () => {
    const path = join(await freshDir(), 'auth.json')
    const {store, untilReported} = await openReportingStore(path)
    await store.createUser(user('alice'))
    const saved = `${path}.saved`
    const reported = untilReported(/is gone/)
    await rename(path, saved)
    await keepingAlive(reported)
    assert.ok(store.getUser('alice'))
    await assert.rejects(store.createUser(user('bob')), /is gone/)
    await assert.rejects(stat(path), {code: 'ENOENT'})

    await rename(saved, path)
    await store.createUser(user('bob'))
    assert.equal((await onDisk(path)).users.length, 2)
  })
})

describe('JsonFileStore: several processes', () => {
  it('loses no acknowledged write when the writing process is killed (SIGKILL) mid-burst', {timeout: 120_000}, async (t) => {
    const dir = await freshDir()
    const path = join(dir, 'auth.json')
    const acknowledged = new Map<string, number>()
    const granted = new Set<string>()
    // Kills right after an acknowledgement land between writes; these delays spread them over the
    // lock, temp-file, rename and fsync steps. Where a kill lands only changes what is tested, not
    // what must hold.
    const delays = [0, 1, 2, 3, 5, 8, 12, 17, 23, 30, 38, 47]
    let killedMidWrite = 0
    for (const [round, delay] of delays.entries()) {
      if (round >= 4 && killedMidWrite >= 2) break
      // Every other round compacts after each batch, so kills land inside compactions too.
      const child = startChild('burst', path, `r${round}`, ...(round % 2 === 1 ? ['1'] : []))
      await child.waitFor((lines) => lines.length >= 1 + 5 * round)
      await new Promise((resolve) => setTimeout(resolve, delay))
      child.process.kill('SIGKILL')
      assert.equal((await child.done).signal, 'SIGKILL', child.stderr())
      for (const line of child.lines) {
        const [kind, name, id] = line.split(' ')
        if (kind === 'user') acknowledged.set(name, Number(id))
        else if (kind === 'grant') granted.add(name)
        else assert.fail(`unexpected output: ${line}`)
      }

      // A lock or temp file left behind: the process died inside a write (or a compaction).
      if ((await readdir(dir)).some((entry) => entry !== 'auth.json' && entry !== 'auth.json.journal')) killedMidWrite++
      // The file parses and holds every acknowledged write.
      const store = await JsonFileStore.open(path)
      for (const [name, id] of acknowledged) assert.equal(store.getUser(name)?.id, id, `acknowledged user ${name} is missing`)
      for (const name of granted)
        assert.equal(store.getGrant(acknowledged.get(name)!, 'experiment', name)?.permission, 'READ', `acknowledged grant ${name} is missing`)
      const ids = store.listUsers().map((u) => u.id)
      assert.equal(new Set(ids).size, ids.length)
      await store.close()
    }

    t.diagnostic(`${acknowledged.size} users and ${granted.size} grants acknowledged; ${killedMidWrite} kills inside a write`)
    assert.ok(killedMidWrite >= 1, 'no kill landed inside a write: the test did not test crash safety')
    // The killed writer's lock goes stale and is taken over; an orphaned temp file is removed.
    const store = await JsonFileStore.open(path, {lockStaleMs: 2000})
    await store.createUser(user('after-the-crash'))
    await store.close()
    // Closed, the store is one file again: the journal folded into it.
    assert.deepEqual(await readdir(dir), ['auth.json'])
  })

  it('loses no update when two processes write the same file at the same time', {timeout: 60_000}, async () => {
    const path = join(await freshDir(), 'auth.json')
    const count = 40
    // Neither creates the file first: they race to create it as well.
    const children = [startChild('writer', path, 'left', String(count)), startChild('writer', path, 'right', String(count))]
    await Promise.all(children.map((child) => child.waitFor((lines) => lines.includes('ready'))))
    for (const child of children) child.process.stdin.write('go\n')
    for (const child of children) {
      const {code} = await child.done
      assert.equal(code, 0, child.stderr())
      assert.equal(child.lines.at(-1), 'done')
    }

    const store = await openStore(path)
    const users = store.listUsers()
    assert.equal(users.length, 2 * count)
    assert.deepEqual(
      users.map((u) => u.id),
      Array.from({length: 2 * count}, (_, i) => i + 1),
    )
    for (const child of children) {
      for (const line of child.lines.filter((l) => l.startsWith('user '))) {
        const [, name, id] = line.split(' ')
        assert.equal(store.getUser(name)?.id, Number(id), `${name} as the child saw it`)
        assert.equal(store.getGrant(Number(id), 'experiment', name)?.permission, 'READ')
      }
    }
  })

  it('sees another process’s writes without writing itself', {timeout: 60_000}, async () => {
    const path = join(await freshDir(), 'auth.json')
    // The watcher alone: the poll would come too late to matter.
    const store = await openStore(path, {pollIntervalMs: 3_600_000})
    await store.createUser(user('alice'))
    const bob = await store.createUser(user('bob'))

    const child = startChild('changes', path)
    await until(
      () => store.getUser('carol') !== undefined && store.getUser('alice')?.isAdmin === true && store.getGrant(bob.id, 'experiment', '7') !== undefined,
    )
    assert.equal((await child.done).code, 0, child.stderr())
    assert.deepEqual(store.getUser('bob'), bob, 'bob did not change')
    assert.equal(store.getUser('carol')?.passwordHash, 'carol-hash')
    assert.equal(store.getUser('alice')?.isAdmin, true)
    assert.equal(store.getGrant(bob.id, 'experiment', '7')?.permission, 'READ')

    // Our next write builds on theirs rather than overwriting it.
    const dave = await store.createUser(user('dave'))
    assert.equal(dave.id, 4)
    const durable = await onDisk(path)
    assert.deepEqual(
      durable.users.map((u) => u.username),
      ['alice', 'bob', 'carol', 'dave'],
    )
    assert.equal(durable.role_permissions.length, 1)
  })

  it('notices another process’s writes by polling alone when not watching', {timeout: 60_000}, async () => {
    const path = join(await freshDir(), 'auth.json')
    const store = await openStore(path, {pollIntervalMs: 50, watch: false})
    await store.createUser(user('alice'))
    const bob = await store.createUser(user('bob'))
    const child = startChild('changes', path)
    await until(
      () => store.getUser('carol') !== undefined && store.getUser('alice')?.isAdmin === true && store.getGrant(bob.id, 'experiment', '7') !== undefined,
    )
    assert.equal((await child.done).code, 0, child.stderr())
    assert.equal(store.getUser('alice')?.isAdmin, true)
  })
})

describe('JsonFileStore: the journal', () => {
  const journalLines = async (path: string) => (await readFile(`${path}.journal`, 'utf8')).split('\n').filter((line) => line !== '')

  /** A copy of a store's files as a crash would leave them: the store is not closed, so its journal stays. */
  async function crashedCopy(path: string, names = ['auth.json', 'auth.json.journal']): Promise<string> {
    const dir = await freshDir()
    for (const name of names) await copyFile(join(dirname(path), name), join(dir, name))
    return join(dir, 'auth.json')
  }

  it('appends each batch as one line and leaves the file alone; writes made together share one line', async () => {
    const path = join(await freshDir(), 'auth.json')
    const store = await openStore(path, {watch: false})
    const file = await readFile(path)
    const users = await Promise.all(Array.from({length: 50}, (_, i) => store.createUser(user(`u${i}`))))
    await store.createGrant({permission: 'READ', resourceId: '7', resourceType: 'experiment', userId: users[0].id})
    assert.deepEqual(await readFile(path), file, 'the file is not rewritten')
    const [header, ...lines] = await journalLines(path)
    assert.deepEqual(JSON.parse(header), {journal: 1, seq: 0, snapshot_sha256: createHash('sha256').update(file).digest('hex')})
    // One line (one fsync) for the 50 users queued together, one for the grant.
    assert.equal(lines.length, 2)
    assert.deepEqual(
      JSON.parse(lines[1]).changes.map((change: Record<string, unknown>) => change.put),
      ['roles', 'assignments', 'role_permissions'],
    )
    const durable = await onDisk(path)
    assert.equal(durable.users.length, 50)
    assert.deepEqual(durable.role_permissions, [{id: 1, permission: 'READ', resource_pattern: '7', resource_type: 'experiment', role_id: 1}])
  })

  it('drops a last line a crash cut off, truncating the journal, and goes on from there', async () => {
    const original = join(await freshDir(), 'auth.json')
    const store = await openStore(original, {watch: false})
    await store.createUser(user('alice'))
    await store.createUser(user('bob'))
    const path = await crashedCopy(original)
    const complete = await readFile(`${path}.journal`)
    await appendFile(`${path}.journal`, '{"seq": 3, "next_user_id": 4, "next_ro')

    const errors: Error[] = []
    const reopened = await openStore(path, {onError: (error) => errors.push(error), watch: false})
    assert.deepEqual(
      reopened.listUsers().map((u) => u.username),
      ['alice', 'bob'],
    )
    assert.deepEqual(await readFile(`${path}.journal`), complete, 'truncated to the last complete line')
    assert.equal(errors.length, 1)
    assert.match(errors[0].message, /Dropped the last 38 bytes of the auth store's journal .*auth\.json\.journal: a change cut off by a crash/)
    await reopened.createUser(user('carol'))
    assert.deepEqual(
      (await onDisk(path)).users.map((u) => u.username),
      ['alice', 'bob', 'carol'],
    )
  })

  it('refuses a journal with a bad line before the last, or a last line that parses but does not fit, and leaves both files', async () => {
    const original = join(await freshDir(), 'auth.json')
    const store = await openStore(original, {watch: false})
    const alice = await store.createUser(user('alice'))
    await store.createGrant({permission: 'READ', resourceId: '1', resourceType: 'experiment', userId: alice.id})
    await store.createUser(user('bob'))
    const [header, first, second, third] = await journalLines(original)
    const cases: [string, string, RegExp][] = [
      ['a line that is not JSON', [header, '{"seq": 1, "next_user', second, third].join('\n') + '\n', /line 2: it is not valid JSON/],
      ['a line that skips a batch', [header, first, third].join('\n') + '\n', /line 3: "seq" is 3, not 2/],
      [
        'a row of a role that does not exist',
        [header, first, second.replace('"role_id":1', '"role_id":9')].join('\n') + '\n',
        /line 3: changes\[\d\]\.role_id 9 is not the id of any role/,
      ],
    ]
    for (const [what, journal, message] of cases) {
      const path = await crashedCopy(original, ['auth.json'])
      await writeFile(`${path}.journal`, journal)
      const before = [await readFile(path), await readFile(`${path}.journal`)]
      await assert.rejects(JsonFileStore.open(path), (error: unknown) => {
        assert.ok(error instanceof StoreFileError, `${what}: ${String(error)}`)
        assert.equal(error.problem, 'invalid')
        assert.match(error.message, /The auth store's journal .*auth\.json\.journal is not valid: /, what)
        assert.match(error.message, message, what)
        return true
      })
      assert.deepEqual([await readFile(path), await readFile(`${path}.journal`)], before, what)
    }
  })

  it('folds the journal into a new snapshot: the same content, the journal emptied, and by itself once it has grown', async () => {
    const path = join(await freshDir(), 'auth.json')
    const store = await openStore(path, {watch: false})
    const alice = await store.createUser(user('alice'))
    await store.createGrant({permission: 'READ', resourceId: '1', resourceType: 'experiment', userId: alice.id})
    const role = await store.createRole({description: 'team', name: 'team', workspace: 'default'})
    await store.addRolePermission({permission: 'EDIT', resourcePattern: '*', resourceType: 'experiment', roleId: role.id})
    await store.assignRole(alice.id, role.id)
    await store.deleteGrant(alice.id, 'experiment', '1')
    const before = await onDisk(path)

    await store.compact()
    const file = await readFile(path)
    assert.deepEqual(JSON.parse(file.toString('utf8')), before, 'the file alone holds what file and journal held')
    const [header, ...lines] = await journalLines(path)
    assert.deepEqual(lines, [])
    assert.equal(JSON.parse(header).snapshot_sha256, createHash('sha256').update(file).digest('hex'))
    assert.equal(JSON.parse(header).seq, 6)
    const next = await store.createUser(user('bob'))
    assert.equal(JSON.parse((await journalLines(path))[1]).seq, 7)
    assert.deepEqual(
      (await openStore(path, {watch: false})).listUsers().map((u) => u.id),
      [alice.id, next.id],
    )

    // With a small limit, writes alone start a compaction.
    const small = join(await freshDir(), 'auth.json')
    const busy = await openStore(small, {journalLimitBytes: 1, watch: false})
    for (let i = 0; i < 5; i++) await busy.createUser(user(`u${i}`))
    await until(() => (JSON.parse(readFileSync(small, 'utf8')) as StoreContent).users.length > 0)
    assert.equal((await onDisk(small)).users.length, 5)
  })

  it('finishes a compaction a crash stopped between its renames, whichever rename was made', async () => {
    const original = join(await freshDir(), 'auth.json')
    const store = await openStore(original, {watch: false})
    for (const name of ['alice', 'bob']) await store.createUser(user(name))
    const oldFile = await readFile(original)
    const oldJournal = await readFile(`${original}.journal`)
    await store.compact()
    const newFile = await readFile(original)
    const newJournal = await readFile(`${original}.journal`)

    for (const [what, file] of [
      ['the file renamed, not the journal', newFile],
      ['neither renamed', oldFile],
    ] as const) {
      const dir = await freshDir()
      const path = join(dir, 'auth.json')
      await writeFile(path, file)
      await writeFile(`${path}.journal`, oldJournal)
      await writeFile(`${path}.journal.next`, newJournal)
      const reopened = await openStore(path, {watch: false})
      assert.deepEqual(
        reopened.listUsers().map((u) => u.username),
        ['alice', 'bob'],
        what,
      )
      assert.deepEqual((await readdir(dir)).sort(), ['auth.json', 'auth.json.journal'], what)
      assert.deepEqual(await readFile(`${path}.journal`), file === newFile ? newJournal : oldJournal, what)
    }
  })

  it('refuses a file replaced while changes were pending in the journal, and keeps serving', async () => {
    const path = join(await freshDir(), 'auth.json')
    const {errors, store, untilReported} = await openReportingStore(path)
    await store.createUser(user('alice'))
    const journal = await readFile(`${path}.journal`)
    // An older mlflowctl, or a restore, writes a valid file of its own.
    const replaced = (await readFile(path, 'utf8')).replace('"next_user_id": 1', '"next_user_id": 5')
    const reported = untilReported(/holds changes to another version/)
    await writeFile(path, replaced)
    await keepingAlive(reported)
    assert.ok(errors.some((error) => error instanceof StoreFileError && error.problem === 'invalid'))
    assert.ok(store.getUser('alice'))
    await assert.rejects(store.createUser(user('bob')), /holds changes to another version/)
    assert.equal(await readFile(path, 'utf8'), replaced)
    assert.deepEqual(await readFile(`${path}.journal`), journal)
  })

  it('two stores on one file see each other’s writes and compactions', {timeout: 60_000}, async () => {
    const path = join(await freshDir(), 'auth.json')
    const a = await openStore(path, {pollIntervalMs: 50})
    const b = await openStore(path, {pollIntervalMs: 50})
    const alice = await a.createUser(user('alice'))
    await until(() => b.getUser('alice') !== undefined)
    await b.createGrant({permission: 'EDIT', resourceId: '3', resourceType: 'experiment', userId: alice.id})
    await until(() => a.getGrant(alice.id, 'experiment', '3') !== undefined)
    await a.compact()
    // b had not seen the compaction before its write: the write lands on the new snapshot, nothing lost.
    const bob = await b.createUser(user('bob'))
    await until(() => a.getUser('bob') !== undefined)
    assert.equal(bob.id, alice.id + 1)
    for (const store of [a, b]) {
      assert.deepEqual(
        store.listUsers().map((u) => u.username),
        ['alice', 'bob'],
      )
      assert.equal(store.getGrant(alice.id, 'experiment', '3')?.permission, 'EDIT')
    }

    assert.deepEqual(
      (await onDisk(path)).users.map((u) => u.username),
      ['alice', 'bob'],
    )
  })
})

describe('JsonFileStore: job creators', () => {
  it('reads a version 3 file written before job creators as holding none, and keeps records across reopen (journal and file)', async () => {
    const path = join(await freshDir(), 'auth.json')
    const older = {
      version: 3,
      next_user_id: 2,
      next_role_id: 1,
      next_role_permission_id: 1,
      next_assignment_id: 1,
      next_token_id: 1,
      users: [{id: 1, username: 'alice', password_hash: 'h', is_admin: true}],
      roles: [],
      role_permissions: [],
      assignments: [],
      tokens: [],
    }
    await writeFile(path, JSON.stringify(older), {mode: 0o600})
    let store = await JsonFileStore.open(path, {watch: false})
    assert.deepEqual(store.listJobCreators(), [])
    await store.recordJobCreator('job-a', 1)
    await store.recordJobCreator('job-a', 1)
    await store.close()
    store = await JsonFileStore.open(path, {watch: false})
    assert.equal(store.getJobCreator('job-a'), 1)
    assert.deepEqual(store.listJobCreators(), [{id: 1, jobId: 'job-a', userId: 1}])
    await store.close()
  })
})
