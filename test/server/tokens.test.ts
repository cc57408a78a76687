/**
 * Access tokens in the store and at the door: records kept (digests only) through a JSON file's
 * reopen, its journal, an older version's file, a PostgreSQL database and a store copy; a Bearer
 * token looked up by its digest, refused when unknown, malformed, revoked, expired or its user gone;
 * last uses written in one batch, never per request.
 */
import assert from 'node:assert/strict'
import {readFile, writeFile} from 'node:fs/promises'
import {after, before, describe, it} from 'node:test'

import {parseBearerToken} from '../../src/server/authn.js'
import {contentDigest, readContent} from '../../src/server/store/content.js'
import {JsonFileStore} from '../../src/server/store/json-store.js'
import {PgStore} from '../../src/server/store/pg-store.js'
import {type Store, StoreError, type TokenRecord} from '../../src/server/store/store.js'
import {copyStore} from '../../src/server/store/transfer.js'
import {startServe} from '../../src/server/serve.js'
import {newToken, TokenCheck, tokenDigest} from '../../src/server/tokens.js'
import {scratchFiles} from '../support/files.js'
import {freePort} from '../support/mlflow-server.js'
import {queryAt, type RunningPostgres, startPostgres} from '../support/postgres.js'

const fresh = scratchFiles('tokens')

const CREATED = '2026-01-01T00:00:00.000Z'
const LATER = '2026-02-01T00:00:00.000Z'

/** alice with two tokens (one never expires) and bob with one; returns alice's first token's text. */
async function populate(store: Store): Promise<{aliceToken: string; tokens: TokenRecord[]}> {
  const alice = await store.createUser({isAdmin: false, passwordHash: 'scrypt:32768:8:1$salt$aa', username: 'alice'})
  const bob = await store.createUser({isAdmin: false, passwordHash: '', username: 'bot'})
  const first = newToken()
  const tokens = [
    await store.createToken({createdAt: CREATED, digest: first.digest, expiresAt: '2026-04-01T00:00:00.000Z', name: 'laptop', userId: alice.id}),
    await store.createToken({createdAt: CREATED, digest: newToken().digest, expiresAt: null, name: 'ci ✓', userId: alice.id}),
    await store.createToken({createdAt: CREATED, digest: newToken().digest, expiresAt: null, name: 'laptop', userId: bob.id}),
  ]
  return {aliceToken: first.text, tokens}
}

describe('tokens in the JSON file store', () => {
  it('round-trips through version 3: reopened, the same records; the file holds digests and no token', async () => {
    const path = fresh('auth.json')
    const store = await JsonFileStore.open(path, {watch: false})
    const {aliceToken, tokens} = await populate(store)
    assert.equal(await store.touchTokens(new Map([[tokens[0].id, LATER]])), 1)
    await store.close()

    const text = await readFile(path, 'utf8')
    const file = JSON.parse(text)
    assert.equal(file.version, 3)
    assert.equal(file.next_token_id, 4)
    assert.deepEqual(file.tokens[0], {
      created_at: CREATED,
      digest: tokenDigest(aliceToken),
      expires_at: '2026-04-01T00:00:00.000Z',
      id: 1,
      last_used_at: LATER,
      name: 'laptop',
      user_id: 1,
    })
    assert.ok(!text.includes(aliceToken) && !text.includes(aliceToken.slice(5)), 'the token itself is never stored')

    const again = await JsonFileStore.open(path, {watch: false})
    assert.deepEqual(again.listTokens(), [{...tokens[0], lastUsedAt: LATER}, tokens[1], tokens[2]])
    assert.equal(again.getTokenByDigest(tokenDigest(aliceToken))?.name, 'laptop')
    // Ids are never reused, and a user's labels are unique.
    await again.deleteToken(tokens[2].id)
    assert.equal((await again.createToken({createdAt: CREATED, digest: newToken().digest, expiresAt: null, name: 'x', userId: 2})).id, 4)
    await assert.rejects(again.createToken({createdAt: CREATED, digest: newToken().digest, expiresAt: null, name: 'laptop', userId: 1}), (error: unknown) => {
      assert.ok(error instanceof StoreError && error.code === 'RESOURCE_ALREADY_EXISTS')
      return true
    })
    // A user's deletion takes their tokens with them.
    await again.deleteUser('alice')
    assert.equal(again.getTokenByDigest(tokenDigest(aliceToken)), undefined)
    assert.deepEqual(
      again.listTokens().map((token) => token.name),
      ['x'],
    )
    await again.close()
  })

  it('keeps token changes that are still only in the journal (read by another process before any compaction)', async () => {
    const path = fresh('auth.json')
    const store = await JsonFileStore.open(path, {watch: false})
    const {aliceToken, tokens} = await populate(store)
    await store.deleteToken(tokens[1].id)
    // Not closed: the changes are in the journal only, as after a crash.
    const other = await JsonFileStore.open(path, {watch: false})
    assert.deepEqual(
      other.listTokens().map((token) => token.id),
      [tokens[0].id, tokens[2].id],
    )
    assert.equal(other.getTokenByDigest(tokenDigest(aliceToken))?.id, tokens[0].id)
    await other.close()
    await store.close()
  })

  it('reads a version 2 file, with a pending journal line written before tokens, and writes version 3 keeping the old file', async () => {
    const path = fresh('auth.json')
    const v2 =
      '{"version": 2, "next_user_id": 2, "next_role_id": 1, "next_role_permission_id": 1, "next_assignment_id": 1, "users": [{"id": 1, "username": "admin", "password_hash": "h", "is_admin": true}], "roles": [], "role_permissions": [], "assignments": []}\n'
    await writeFile(path, v2)
    const plain = await JsonFileStore.open(path, {watch: false})
    assert.deepEqual(plain.listTokens(), [])
    await plain.createToken({createdAt: CREATED, digest: newToken().digest, expiresAt: null, name: 'a', userId: 1})
    await plain.close()
    assert.equal(await readFile(`${path}.v2.bak`, 'utf8'), v2)
    assert.equal(JSON.parse(await readFile(path, 'utf8')).tokens.length, 1)

    // A version 2 file with a change still in its journal (a line without next_token_id): kept.
    const pending = fresh('auth.json')
    await writeFile(pending, v2)
    const {createHash} = await import('node:crypto')
    const sha = createHash('sha256').update(v2).digest('hex')
    await writeFile(
      `${pending}.journal`,
      `{"journal": 1, "snapshot_sha256": "${sha}", "seq": 0}\n` +
        '{"seq": 1, "next_user_id": 3, "next_role_id": 1, "next_role_permission_id": 1, "next_assignment_id": 1, "changes": [{"put": "users", "id": 2, "username": "bob", "password_hash": "h2", "is_admin": false}]}\n',
    )
    const store = await JsonFileStore.open(pending, {watch: false})
    assert.equal(store.getUser('bob')?.id, 2)
    const token = await store.createToken({createdAt: CREATED, digest: newToken().digest, expiresAt: null, name: 'b', userId: 2})
    await store.close()
    const again = await JsonFileStore.open(pending, {watch: false})
    assert.deepEqual(again.listTokens(), [token])
    assert.equal(again.getUser('bob')?.id, 2)
    await again.close()
    assert.equal(JSON.parse(await readFile(pending, 'utf8')).version, 3)
    assert.equal(await readFile(`${pending}.v2.bak`, 'utf8'), v2, 'the version 2 file kept beside it too')
  })

  it('refuses a file whose token records do not hold together, naming what', async () => {
    const bad = (tokens: unknown[]) =>
      JSON.stringify({
        version: 3,
        next_user_id: 2,
        next_role_id: 1,
        next_role_permission_id: 1,
        next_assignment_id: 1,
        next_token_id: 3,
        users: [{id: 1, username: 'a', password_hash: 'h', is_admin: false}],
        roles: [],
        role_permissions: [],
        assignments: [],
        tokens,
      })
    const token = {id: 1, user_id: 1, name: 'n', digest: 'a'.repeat(64), created_at: CREATED, expires_at: null, last_used_at: null}
    const cases: [unknown[], RegExp][] = [
      [[{...token, user_id: 7}], /tokens\[0\]\.user_id 7 is not the id of any user/],
      [[{...token, digest: 'not-a-digest'}], /tokens\[0\]\.digest .* not a SHA-256/],
      [[{...token, token: 'mlft_x'}], /tokens\[0\] has unknown key "token"/],
      [[{...token, created_at: 'yesterday'}], /tokens\[0\]\.created_at .* not a time/],
      [[token, {...token, id: 2, name: 'other'}], /tokens\[1\]\.digest is also the digest of token 1/],
      [[token, {...token, id: 2, digest: 'b'.repeat(64)}], /tokens\[1\] repeats the token name "n" of user 1/],
    ]
    for (const [tokens, message] of cases) {
      const path = fresh('auth.json')
      await writeFile(path, bad(tokens))
      await assert.rejects(JsonFileStore.open(path, {watch: false}), message)
    }
  })

  it('store copy carries tokens: the same records and digest', async () => {
    const from = fresh('from.json')
    const source = await JsonFileStore.open(from, {watch: false})
    await populate(source)
    const content = readContent(source)
    await source.close()
    const to = fresh('to.json')
    const result = await copyStore(from, to)
    assert.equal(result.destination.counts.tokens, 3)
    const copy = await JsonFileStore.open(to, {watch: false})
    assert.deepEqual(readContent(copy).tokens, content.tokens)
    assert.equal(contentDigest(readContent(copy)), contentDigest(content))
    await copy.close()
  })
})

describe('tokens in the PostgreSQL store', () => {
  let postgres: RunningPostgres
  before(async () => {
    postgres = await startPostgres()
  })
  after(() => postgres?.stop())

  it('round-trip through the tables, and a revoke reaches another replica', async () => {
    const url = await postgres.database('tokens_unit')
    const a = await PgStore.open(url, {pollIntervalMs: 50})
    const b = await PgStore.open(url, {pollIntervalMs: 50})
    try {
      const {aliceToken, tokens} = await populate(a)
      await a.touchTokens(new Map([[tokens[1].id, LATER]]))
      const reopened = await PgStore.open(url, {follow: false})
      assert.deepEqual(reopened.listTokens(), [tokens[0], {...tokens[1], lastUsedAt: LATER}, tokens[2]])
      await reopened.close()

      const digest = tokenDigest(aliceToken)
      for (let i = 0; i < 100 && !b.getTokenByDigest(digest); i++) await new Promise((resolve) => setTimeout(resolve, 20))
      assert.equal(b.getTokenByDigest(digest)?.id, tokens[0].id)
      await a.deleteToken(tokens[0].id)
      assert.equal(a.getTokenByDigest(digest), undefined)
      for (let i = 0; i < 100 && b.getTokenByDigest(digest); i++) await new Promise((resolve) => setTimeout(resolve, 20))
      assert.equal(b.getTokenByDigest(digest), undefined)
      // The tables hold digests only.
      const {rows} = await queryAt(url, 'SELECT * FROM mlflowctl_tokens ORDER BY id')
      assert.deepEqual(
        rows.map((row) => row.name),
        ['ci ✓', 'laptop'],
      )
      assert.ok(!JSON.stringify(rows).includes(aliceToken.slice(5)))
    } finally {
      await a.close()
      await b.close()
    }
  })
})

describe('a Bearer token at the door', () => {
  async function storeWithToken(expiresAt: null | string) {
    const store = await JsonFileStore.open(fresh('auth.json'), {watch: false})
    const alice = await store.createUser({isAdmin: false, passwordHash: 'h', username: 'alice'})
    const {digest, text} = newToken()
    const record = await store.createToken({createdAt: CREATED, digest, expiresAt, name: 'n', userId: alice.id})
    return {record, store, text}
  }

  it('reads the header: Bearer in any case; anything else in a Bearer header is a token no one holds', () => {
    assert.equal(parseBearerToken('Bearer mlft_abc'), 'mlft_abc')
    assert.equal(parseBearerToken('bearer  mlft_abc'), 'mlft_abc')
    assert.equal(parseBearerToken('Bearer'), '')
    assert.equal(parseBearerToken('Bearer a b'), '')
    assert.equal(parseBearerToken('Basic YTpi'), undefined)
    assert.equal(parseBearerToken(undefined), undefined)
  })

  it('verifies a token by its digest as its user; refuses one unknown, malformed, revoked, expired or of a deleted user', async () => {
    const {record, store, text} = await storeWithToken('2026-03-01T00:00:00.000Z')
    const check = new TokenCheck(store, {flushIntervalMs: 3_600_000})
    const before = Date.parse('2026-02-28T23:59:59.999Z')
    const verified = check.check(text, before)
    assert.equal(verified.kind, 'verified')
    assert.equal(verified.kind === 'verified' && verified.user.username, 'alice')
    assert.equal(check.check(text, Date.parse('2026-03-01T00:00:00.000Z')).kind, 'rejected', 'expired at its instant')
    assert.equal(check.check(newToken().text, before).kind, 'rejected', 'unknown')
    assert.equal(check.check(`${text}x`, before).kind, 'rejected', 'malformed')
    assert.equal(check.check(text.toUpperCase(), before).kind, 'rejected')
    assert.equal(check.check(tokenDigest(text), before).kind, 'rejected', 'the digest is not the token')
    await store.deleteToken(record.id)
    assert.equal(check.check(text, before).kind, 'rejected', 'revoked')

    const other = await storeWithToken(null)
    const otherCheck = new TokenCheck(other.store, {flushIntervalMs: 3_600_000})
    assert.equal(otherCheck.check(other.text).kind, 'verified', 'never expires')
    await other.store.deleteUser('alice')
    assert.equal(otherCheck.check(other.text).kind, 'rejected', 'user gone')
    check.stop()
    otherCheck.stop()
    await store.close()
    await other.store.close()
  })

  it('keeps last uses in memory and writes them in one write per interval, not per request', async () => {
    const {record, store, text} = await storeWithToken(null)
    let writes = 0
    const touch = store.touchTokens.bind(store)
    store.touchTokens = (lastUsed) => {
      writes++
      return touch(lastUsed)
    }

    const check = new TokenCheck(store, {flushIntervalMs: 3_600_000})
    for (let i = 0; i < 100; i++) check.check(text, Date.parse(CREATED) + i)
    assert.equal(writes, 0)
    assert.equal(store.getToken(record.id)?.lastUsedAt, null)
    assert.equal(check.pendingLastUse(record.id), new Date(Date.parse(CREATED) + 99).toISOString())
    await check.flush()
    await check.flush()
    assert.equal(writes, 1)
    assert.equal(store.getToken(record.id)?.lastUsedAt, new Date(Date.parse(CREATED) + 99).toISOString())
    // An older report never moves it back.
    await store.touchTokens(new Map([[record.id, CREATED]]))
    assert.equal(store.getToken(record.id)?.lastUsedAt, new Date(Date.parse(CREATED) + 99).toISOString())
    check.stop()
    await store.close()
  })
})

describe('serve with tokens', () => {
  it('answers a Bearer request as the token’s user, and a clean stop writes the last use it kept in memory', async () => {
    const path = fresh('auth.json')
    const admin = {password: 'admin-password-for-tokens', username: 'admin'}
    const basic = `Basic ${Buffer.from(`${admin.username}:${admin.password}`).toString('base64')}`
    const serve = await startServe({
      env: {MLFLOW_AUTH_ADMIN_PASSWORD: admin.password},
      host: '127.0.0.1',
      log: () => {},
      port: await freePort(),
      // Never asked: the answers below are serve's own.
      proxyTo: new URL('http://127.0.0.1:9'),
      storePath: path,
    })
    let token: string
    try {
      const created = await fetch(`${serve.url}/api/2.0/mlflowctl/tokens/create`, {
        body: JSON.stringify({name: 'ops'}),
        headers: {authorization: basic, 'content-type': 'application/json'},
        method: 'POST',
      })
      assert.equal(created.status, 200)
      token = ((await created.json()) as {token: string}).token
      const current = await fetch(`${serve.url}/api/2.0/mlflow/users/current`, {headers: {authorization: `Bearer ${token}`}})
      assert.equal(current.status, 200)
      assert.equal(((await current.json()) as {user: {username: string}}).user.username, 'admin')
      const wrong = await fetch(`${serve.url}/api/2.0/mlflow/users/current`, {headers: {authorization: `Bearer ${newToken().text}`}})
      assert.equal(wrong.status, 401)
      await wrong.text()
    } finally {
      await serve.close()
    }

    const store = await JsonFileStore.open(path, {watch: false})
    const [record] = store.listTokens()
    assert.equal(record.digest, tokenDigest(token))
    assert.notEqual(record.lastUsedAt, null, 'the last use was written at stop')
    await store.close()
  })
})
