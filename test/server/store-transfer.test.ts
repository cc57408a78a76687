import assert from 'node:assert/strict'
import {readFile, writeFile} from 'node:fs/promises'
import {describe, it} from 'node:test'

import initSqlJs from 'sql.js'

import {contentDigest, readContent} from '../../src/server/store/content.js'
import {JsonFileStore} from '../../src/server/store/json-store.js'
import {readMlflowAuthDb} from '../../src/server/store/mlflow-auth-db.js'
import {StoreError} from '../../src/server/store/store.js'
import {copyStore, importFromMlflow} from '../../src/server/store/transfer.js'

import {exists, scratchFiles} from '../support/files.js'
import {assertUserError, populatedStore, storeRecords} from '../support/store-files.js'

const fresh = scratchFiles('transfer')
const missing = async (path: string) => !(await exists(path))

describe('store copy', () => {
  it('copies a store file into a new one: the same records, ids included, and the same digest', async () => {
    const from = fresh('source.json')
    const to = fresh('copy.json')
    await populatedStore(from)
    const result = await copyStore(from, to)
    const source = await storeRecords(from)
    const copy = await storeRecords(to)
    assert.deepEqual(copy, source)
    assert.equal(result.source.digest, contentDigest(source))
    assert.equal(result.destination.digest, result.source.digest)
    assert.deepEqual(result.destination.counts, {assignments: 3, job_creators: 1, role_permissions: 4, roles: 3, tokens: 1, users: 3})
    // The empty per-user role of bob and the deleted admin's id survive: the public writes could make neither.
    assert.ok(copy.roles.some((role) => role.name === '__user_3__'))
    assert.deepEqual(
      copy.users.map((user) => user.id),
      [2, 3, 4],
    )
    // And the copy goes on numbering where the source left off.
    const reopened = await JsonFileStore.open(to, {watch: false})
    const next = await reopened.createUser({isAdmin: false, passwordHash: 'x', username: 'carol'})
    await reopened.close()
    assert.equal(next.id, 5)
  })

  it('refuses a destination that holds users, and leaves it byte for byte as it was', async () => {
    const from = fresh('source.json')
    const to = fresh('busy.json')
    await populatedStore(from)
    const store = await JsonFileStore.open(to, {watch: false})
    await store.createUser({isAdmin: false, passwordHash: 'h', username: 'someone'})
    await store.close()
    const before = await readFile(to)
    await assert.rejects(copyStore(from, to), (error) => assertUserError(error, 6, /is not empty \(1 users, 0 roles\): nothing was changed/))
    assert.deepEqual(await readFile(to), before)
    assert.ok(await missing(`${to}.journal`))
  })

  it('refuses a corrupt source with where it breaks, and writes nothing', async () => {
    const from = fresh('corrupt.json')
    const to = fresh('never.json')
    await writeFile(from, '{"version": 2, "users": [\n')
    await assert.rejects(copyStore(from, to), (error) => assertUserError(error, 2, /is not valid JSON: .*line/))
    assert.ok(await missing(to))
  })

  it('refuses a source that does not exist rather than creating it', async () => {
    const from = fresh('absent.json')
    const to = fresh('never.json')
    await assert.rejects(copyStore(from, to), (error) => assertUserError(error, 2, /does not exist/))
    assert.ok(await missing(from))
    assert.ok(await missing(to))
  })

  it('takes a PostgreSQL location for a database: one that does not answer is a clear error (exit 2), without its password', async () => {
    const from = fresh('source.json')
    await populatedStore(from)
    await assert.rejects(copyStore(from, 'postgresql+psycopg2://me:hunter2@127.0.0.1:1/auth'), (error) => {
      assertUserError(error, 2, /Cannot use the auth store's database postgresql\+psycopg2:\/\/me@127\.0\.0\.1:1\/auth: .*ECONNREFUSED/)
      assert.doesNotMatch((error as Error).message, /hunter2/)
      return true
    })
  })
})

describe('importContent', () => {
  it('refuses a store that is not empty, changing nothing', async () => {
    const path = fresh('store.json')
    await populatedStore(path)
    const store = await JsonFileStore.open(path, {watch: false})
    const before = readContent(store)
    await assert.rejects(
      store.importContent({assignments: [], rolePermissions: [], roles: [], tokens: [], users: [{id: 9, isAdmin: false, passwordHash: 'h', username: 'x'}]}),
      (error) => error instanceof StoreError && error.code === 'RESOURCE_ALREADY_EXISTS',
    )
    assert.deepEqual(readContent(store), before)
    await store.close()
  })

  it('refuses records that do not fit together, whole', async () => {
    const path = fresh('store.json')
    const store = await JsonFileStore.open(path, {watch: false})
    await assert.rejects(
      store.importContent({
        assignments: [{id: 1, roleId: 7, userId: 1}],
        rolePermissions: [],
        roles: [],
        tokens: [],
        users: [{id: 1, isAdmin: false, passwordHash: 'h', username: 'x'}],
      }),
      (error) => error instanceof StoreError && error.code === 'INVALID_PARAMETER_VALUE' && /role 7, which is not there/.test(error.message),
    )
    assert.deepEqual(readContent(store).users, [])
    await store.close()
  })
})

describe('contentDigest', () => {
  it('does not depend on the order of the records, and changes with any field', async () => {
    const path = fresh('store.json')
    await populatedStore(path)
    const content = await storeRecords(path)
    const reversed = {
      assignments: [...content.assignments].reverse(),
      rolePermissions: [...content.rolePermissions].reverse(),
      roles: [...content.roles].reverse(),
      tokens: [...content.tokens].reverse(),
      jobCreators: [...(content.jobCreators ?? [])].reverse(),
      users: [...content.users].reverse(),
    }
    assert.equal(contentDigest(reversed), contentDigest(content))
    const changed = {...content, rolePermissions: content.rolePermissions.map((row, i) => (i === 0 ? {...row, permission: 'MANAGE'} : row))}
    assert.notEqual(contentDigest(changed), contentDigest(content))
    const used = {...content, tokens: content.tokens.map((token) => ({...token, lastUsedAt: '2026-01-03T00:00:00.000Z'}))}
    assert.notEqual(contentDigest(used), contentDigest(content))
    const otherCreator = {...content, jobCreators: content.jobCreators?.map((job) => ({...job, userId: content.users.at(-1)!.id}))}
    assert.equal(content.jobCreators?.length, 1)
    assert.notEqual(contentDigest(otherCreator), contentDigest(content))
  })
})

// --- MLflow's auth database ---------------------------------------------------------------------

/** The tables of MLflow 3.12's basic_auth.db (revision c3d4e5f6a7b8), as its migrations make them. */
const SCHEMA_312 = `
CREATE TABLE alembic_version_auth (version_num VARCHAR(32) NOT NULL PRIMARY KEY);
CREATE TABLE users (id INTEGER NOT NULL PRIMARY KEY, username VARCHAR(255) UNIQUE, password_hash VARCHAR(255), is_admin BOOLEAN);
CREATE TABLE experiment_permissions (id INTEGER NOT NULL PRIMARY KEY, experiment_id VARCHAR(255) NOT NULL, user_id INTEGER NOT NULL, permission VARCHAR(255));
CREATE TABLE scorer_permissions (id INTEGER NOT NULL PRIMARY KEY, experiment_id VARCHAR(255) NOT NULL, scorer_name VARCHAR(256) NOT NULL, user_id INTEGER NOT NULL, permission VARCHAR(255));
CREATE TABLE gateway_secret_permissions (id INTEGER NOT NULL PRIMARY KEY, secret_id VARCHAR(255) NOT NULL, user_id INTEGER NOT NULL, permission VARCHAR(255));
CREATE TABLE gateway_endpoint_permissions (id INTEGER NOT NULL PRIMARY KEY, endpoint_id VARCHAR(255) NOT NULL, user_id INTEGER NOT NULL, permission VARCHAR(255));
CREATE TABLE gateway_model_definition_permissions (id INTEGER NOT NULL PRIMARY KEY, model_definition_id VARCHAR(255) NOT NULL, user_id INTEGER NOT NULL, permission VARCHAR(255));
CREATE TABLE workspace_permissions (workspace VARCHAR(63) NOT NULL, user_id INTEGER NOT NULL, permission VARCHAR(32) NOT NULL, PRIMARY KEY (workspace, user_id));
CREATE TABLE registered_model_permissions (id INTEGER NOT NULL PRIMARY KEY, name VARCHAR(255) NOT NULL, user_id INTEGER NOT NULL, permission VARCHAR(255), workspace VARCHAR(63) DEFAULT 'default' NOT NULL);
CREATE TABLE roles (id INTEGER NOT NULL PRIMARY KEY, name VARCHAR(255) NOT NULL, workspace VARCHAR(63) NOT NULL, description VARCHAR(1024));
CREATE TABLE role_permissions (id INTEGER NOT NULL PRIMARY KEY, role_id INTEGER NOT NULL, resource_type VARCHAR(64) NOT NULL, resource_pattern VARCHAR(255) NOT NULL, permission VARCHAR(255) NOT NULL);
CREATE TABLE user_role_assignments (id INTEGER NOT NULL PRIMARY KEY, user_id INTEGER NOT NULL, role_id INTEGER NOT NULL);
`

async function sqliteFile(name: string, sql: string): Promise<string> {
  const SQL = await initSqlJs()
  const db = new SQL.Database()
  db.exec(sql)
  const path = fresh(name)
  await writeFile(path, db.export())
  db.close()
  return path
}

const DATA_312 = `
INSERT INTO alembic_version_auth VALUES ('c3d4e5f6a7b8');
INSERT INTO users VALUES (1, 'admin', 'scrypt:32768:8:1$s$aa', 1), (2, 'alice', 'pbkdf2:sha256:1000000$s$bb', 0), (4, 'bob', 'scrypt:32768:8:1$s$cc', NULL), (5, 'old', 'sha1$s$dd', 0);
INSERT INTO experiment_permissions VALUES (1, '10', 2, 'EDIT'), (2, '11', 2, 'NO_PERMISSIONS'), (3, '10', 9, 'READ');
INSERT INTO scorer_permissions VALUES (1, '10', 'my scorer/v', 4, 'MANAGE');
INSERT INTO registered_model_permissions VALUES (1, 'churn', 2, 'READ', 'default'), (2, 'churn', 4, 'READ', 'team-a');
INSERT INTO gateway_endpoint_permissions VALUES (1, 'e-1', 4, 'USE');
INSERT INTO workspace_permissions VALUES ('team-a', 4, 'EDIT');
INSERT INTO roles VALUES (1, 'readers', 'default', 'read everything'), (2, 'team', 'team-a', NULL), (3, '__user_4__', 'default', NULL);
INSERT INTO role_permissions VALUES (1, 1, 'workspace', '*', 'READ'), (2, 1, 'experiment', '*', 'EDIT'), (3, 1, 'scorer', '10/a b', 'READ'), (4, 1, 'registered_model', 'x', 'NO_PERMISSIONS'), (5, 2, 'experiment', '*', 'READ');
INSERT INTO user_role_assignments VALUES (1, 4, 1), (2, 4, 2), (3, 2, 3);
`

describe("MLflow's auth database", () => {
  it('reads MLflow 3.12: per-resource grants become per-user role rows, roles are read as 3.12 resolved them, the rest is listed', async () => {
    const path = await sqliteFile('basic_auth.db', SCHEMA_312 + DATA_312)
    const {content, schema, skipped} = await readMlflowAuthDb(`sqlite:///${path}`)
    assert.equal(schema, 'per-resource')
    assert.deepEqual(
      content.users.map((user) => [user.id, user.username, user.isAdmin, user.passwordHash]),
      [
        [1, 'admin', true, 'scrypt:32768:8:1$s$aa'],
        [2, 'alice', false, 'pbkdf2:sha256:1000000$s$bb'],
        [4, 'bob', false, 'scrypt:32768:8:1$s$cc'],
        [5, 'old', false, 'sha1$s$dd'],
      ],
    )
    const roleName = new Map(content.roles.map((role) => [role.id, role.name]))
    const rows = content.rolePermissions.map((row) => `${roleName.get(row.roleId)} ${row.resourceType} ${row.resourcePattern} ${row.permission}`).sort()
    assert.deepEqual(rows, [
      '__user_2__ experiment 10 EDIT',
      // Kept: in 3.12 it hides experiment 11 from alice whatever default_permission says.
      '__user_2__ experiment 11 NO_PERMISSIONS',
      '__user_2__ registered_model churn READ',
      '__user_4__ gateway_endpoint e-1 USE',
      '__user_4__ scorer 10/my%20scorer%2Fv MANAGE',
      // The workspace READ row reached every type at READ; with the experiment row, EDIT is the higher.
      'readers experiment * EDIT',
      'readers gateway_endpoint * READ',
      'readers gateway_model_definition * READ',
      'readers gateway_secret * READ',
      'readers registered_model * READ',
      'readers scorer * READ',
      'readers scorer 10/a%20b READ',
    ])
    const holders = content.assignments.map((assignment) => `${roleName.get(assignment.roleId)} ${assignment.userId}`).sort()
    assert.deepEqual(holders, ['__user_2__ 2', '__user_4__ 4', 'readers 4'])
    const said = skipped.map((entry) => entry.what).sort()
    assert.deepEqual(said, [
      'experiment_permissions row of user id 9 on 10',
      'registered_model_permissions row of user "bob" on churn in workspace "team-a"',
      'role "__user_4__"',
      'role "readers"\'s row registered_model "x" NO_PERMISSIONS',
      'role "team" in workspace "team-a"',
      'user "old"\'s password',
      'workspace_permissions row of user "bob" on workspace "team-a"',
    ])
  })

  it('reads MLflow 3.13+ from its roles tables alone, and never shares a per-user role', async () => {
    const path = await sqliteFile(
      'basic_auth.db',
      `${SCHEMA_312}
      INSERT INTO alembic_version_auth VALUES ('f1a2b3c4d5e6');
      INSERT INTO users VALUES (1, 'admin', 'scrypt:32768:8:1$s$aa', 1), (2, 'alice', 'scrypt:32768:8:1$s$bb', 0), (3, 'bob', 'scrypt:32768:8:1$s$cc', 0);
      INSERT INTO experiment_permissions VALUES (1, '10', 2, 'MANAGE');
      INSERT INTO roles VALUES (4, '__user_2__', 'default', NULL), (7, 'readers', 'default', NULL);
      INSERT INTO role_permissions VALUES (3, 4, 'experiment', '10', 'EDIT'), (8, 7, 'prompt', '*', 'READ'), (9, 7, 'registered_model', 'secret', 'DENY');
      INSERT INTO user_role_assignments VALUES (1, 2, 4), (2, 3, 4), (3, 3, 7);`,
    )
    const {content, schema, skipped} = await readMlflowAuthDb(path)
    assert.equal(schema, 'roles')
    assert.deepEqual(
      content.roles.map((role) => [role.id, role.name]),
      [
        [4, '__user_2__'],
        [7, 'readers'],
      ],
    )
    // The frozen per-resource table (MANAGE) is not read: the role row (EDIT) is the truth.
    assert.deepEqual(
      content.rolePermissions.map((row) => [row.id, row.roleId, row.resourceType, row.resourcePattern, row.permission]),
      [
        [3, 4, 'experiment', '10', 'EDIT'],
        [8, 7, 'prompt', '*', 'READ'],
        [9, 7, 'registered_model', 'secret', 'DENY'],
      ],
    )
    assert.deepEqual(
      content.assignments.map((assignment) => [assignment.userId, assignment.roleId]),
      [
        [2, 4],
        [3, 7],
      ],
    )
    assert.deepEqual(
      skipped.map((entry) => entry.what),
      ['the assignment of role "__user_2__" to user "bob"'],
    )
  })

  it('refuses a source with a DENY row serve cannot hold (the import would allow more than MLflow did), naming it', async () => {
    const path = await sqliteFile(
      'basic_auth.db',
      `${SCHEMA_312}
      INSERT INTO alembic_version_auth VALUES ('f1a2b3c4d5e6');
      INSERT INTO users VALUES (1, 'admin', 'scrypt:32768:8:1$s$aa', 1), (2, 'alice', 'scrypt:32768:8:1$s$bb', 0);
      INSERT INTO roles VALUES (7, 'readers', 'default', NULL);
      INSERT INTO role_permissions VALUES (8, 7, 'experiment', '*', 'READ'), (9, 7, 'a_future_type', '*', 'DENY');
      INSERT INTO user_role_assignments VALUES (1, 2, 7);`,
    )
    await assert.rejects(readMlflowAuthDb(path), (error: unknown) => {
      assertUserError(error, 2, /would allow more than MLflow did: serve cannot hold this restriction: role "readers"'s row a_future_type "\*" DENY/)
      return true
    })
  })

  it('imports into a new store file, which then holds exactly what was read', async () => {
    const db = await sqliteFile('basic_auth.db', SCHEMA_312 + DATA_312)
    const to = fresh('auth.json')
    const result = await importFromMlflow(db, to)
    const stored = await storeRecords(to)
    const read = await readMlflowAuthDb(db)
    assert.deepEqual(stored, read.content)
    assert.equal(result.destination.digest, contentDigest(read.content))
    assert.equal(result.skipped.length, 7)
  })

  for (const [title, prepare, pattern] of [
    [
      'a file that is not SQLite',
      (path: string) => writeFile(path, 'definitely not a database, just text long enough to have a header'.repeat(3)),
      /is not an SQLite database/,
    ],
    [
      'a truncated SQLite file',
      async (path: string) => {
        const whole = await readFile(await sqliteFile('whole.db', SCHEMA_312 + DATA_312))
        await writeFile(path, whole.subarray(0, 2048))
      },
      /SQLite (cannot|finds it damaged)/,
    ],
    [
      'a database without a users table',
      async (path: string) => writeFile(path, await readFile(await sqliteFile('x.db', 'CREATE TABLE t (a);'))),
      /has no users table/,
    ],
    [
      'a schema revision newer than mlflowctl knows',
      async (path: string) =>
        writeFile(path, await readFile(await sqliteFile('x.db', `${SCHEMA_312} INSERT INTO alembic_version_auth VALUES ('ffffffffffff');`))),
      /revision ffffffffffff is not one this mlflowctl knows/,
    ],
    [
      'a database with changes still in its write-ahead log',
      async (path: string) => {
        await writeFile(path, await readFile(await sqliteFile('x.db', SCHEMA_312 + DATA_312)))
        await writeFile(`${path}-wal`, 'pending')
      },
      /-wal holds changes not yet in the database/,
    ],
  ] as const) {
    it(`refuses ${title} with a clear error, and writes nothing`, async () => {
      const db = fresh('source.db')
      await prepare(db)
      const to = fresh('never.json')
      await assert.rejects(importFromMlflow(`sqlite:///${db}`, to), (error) => assertUserError(error, 2, pattern))
      assert.ok(await missing(to))
    })
  }

  it('refuses an import into a store that holds users (exit 6), changing nothing', async () => {
    const db = await sqliteFile('basic_auth.db', SCHEMA_312 + DATA_312)
    const to = fresh('busy.json')
    await populatedStore(to)
    const before = await readFile(to)
    await assert.rejects(importFromMlflow(db, to), (error) => assertUserError(error, 6, /is not empty/))
    assert.deepEqual(await readFile(to), before)
  })

  it('reads PostgreSQL sources by URL: one that does not answer is a clear error (exit 2) without its password, and nothing is written', async () => {
    const to = fresh('never.json')
    await assert.rejects(importFromMlflow('postgresql://mlflow:hunter2@127.0.0.1:1/auth', to), (error) => {
      assertUserError(error, 2, /postgresql:\/\/mlflow@127\.0\.0\.1:1\/auth is not a usable MLflow auth database: it cannot be read \(.*ECONNREFUSED/)
      assert.doesNotMatch((error as Error).message, /hunter2/)
      return true
    })
    assert.ok(await missing(to))
  })
})
