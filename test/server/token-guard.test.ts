/**
 * Access tokens wired to the rest of serve, in process in front of a fake MLflow: invalid Bearer
 * tokens count toward a client address's failed-login limit (429 with Retry-After, the refusal
 * checking nothing), their failures and the lock they set off reach the audit log and metrics,
 * and creating or revoking a token is an audit change that never carries the token's text.
 */
import assert from 'node:assert/strict'
import {mkdtemp, readFile} from 'node:fs/promises'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {after, before, describe, it} from 'node:test'

import {newToken} from '../../src/server/tokens.js'
import {seriesValue} from '../support/metrics.js'
import {answerJson, call, type Pipeline, parseJson, startPipeline} from '../support/serve-pipeline.js'

const PER_ADDRESS = 3
const LOCK_SECONDS = 60
const GET_EXPERIMENT = '/api/2.0/mlflow/experiments/get?experiment_id=1'

type Line = Record<string, unknown>

let auditPath: string
let pipeline: Pipeline

before(async () => {
  auditPath = join(await mkdtemp(join(tmpdir(), 'mlflowctl-token-guard-')), 'audit.jsonl')
  pipeline = await startPipeline({
    handler(request, response) {
      if (request.url.pathname === '/api/2.0/mlflow/experiments/get') answerJson(response, 200, {experiment: {experiment_id: '1'}})
    },
    serve: {
      auditLog: auditPath,
      // Only the address limit, set low: each test below uses client addresses of its own.
      credentialCheck: {lockout: {lockMs: LOCK_SECONDS * 1000, perAddress: PER_ADDRESS, perUser: 0, perUserAddress: 0}},
      metricsAddress: {host: '127.0.0.1', port: 0},
      // The tests name their client with X-Forwarded-For.
      trustedProxies: '127.0.0.1',
    },
  })
  const created = await call(pipeline.url, 'POST', '/api/2.0/mlflow/users/create', {
    body: {service_account: true, username: 'ci-bot'},
    credentials: pipeline.admin,
  })
  assert.equal(created.status, 200, created.body)
})

after(async () => {
  await pipeline.close()
})

/** Creates a token (as the admin, from 127.0.0.1) and returns its text and id. */
async function createToken(name: string, body: Record<string, unknown> = {}): Promise<{expiresAt: string; id: number; text: string}> {
  const answer = await call(pipeline.url, 'POST', '/api/2.0/mlflowctl/tokens/create', {
    body: {name, username: 'ci-bot', ...body},
    credentials: pipeline.admin,
  })
  assert.equal(answer.status, 200, answer.body)
  const {token, token_info: info} = parseJson(answer) as {token: string; token_info: {expires_at: string; id: number}}
  return {expiresAt: info.expires_at, id: info.id, text: token}
}

const bearer = (token: string, from: string) =>
  call(pipeline.url, 'GET', GET_EXPERIMENT, {headers: {authorization: `Bearer ${token}`, 'x-forwarded-for': from}})

async function scrape(): Promise<string> {
  const answer = await call(pipeline.serve.metricsUrl!, 'GET', '/metrics')
  assert.equal(answer.status, 200)
  return answer.body
}

const tokenLogins = (text: string, result: string) => seriesValue(text, 'mlflowctl_token_authentications_total', {result}) ?? 0
const lockouts = (text: string) => seriesValue(text, 'mlflowctl_lockouts_total') ?? 0

async function auditText(): Promise<string> {
  return readFile(auditPath, 'utf8').catch(() => '')
}

/** The audit lines so far, once no more are on their way (lines go to the file through a stream). */
async function auditLines(): Promise<Line[]> {
  let text = await auditText()
  for (;;) {
    await new Promise((resolve) => setTimeout(resolve, 50))
    const now = await auditText()
    if (now === text) break
    text = now
  }

  return text
    .split('\n')
    .filter(Boolean)
    .map((line) => JSON.parse(line) as Line)
}

describe('invalid tokens and the failed-login limit', () => {
  it('counts invalid tokens per address: 429 with Retry-After at the threshold; a valid token still works, there and elsewhere', async () => {
    const token = await createToken('limit')
    const guesser = '198.51.100.7'
    for (let i = 0; i < PER_ADDRESS; i++) assert.equal((await bearer(newToken().text, guesser)).status, 401, `guess ${i + 1}`)
    const metricsBefore = await scrape()
    const linesBefore = (await auditLines()).length

    const refused = await bearer(newToken().text, guesser)
    assert.equal(refused.status, 429, refused.body)
    assert.equal(refused.headers['retry-after'], String(LOCK_SECONDS))
    assert.equal(parseJson(refused).error_code, 'REQUEST_LIMIT_EXCEEDED')
    // Locked: a password is refused from there, unchecked; a valid token is not (it cannot be guessed).
    const password = await call(pipeline.url, 'GET', GET_EXPERIMENT, {credentials: pipeline.admin, headers: {'x-forwarded-for': guesser}})
    assert.equal(password.status, 429)
    assert.equal((await bearer(token.text, guesser)).status, 200)

    // The refusals recorded no failure and began no new lock.
    const metricsAfter = await scrape()
    assert.equal(lockouts(metricsAfter), lockouts(metricsBefore))
    assert.equal(tokenLogins(metricsAfter, 'verified'), tokenLogins(metricsBefore, 'verified') + 1)
    assert.equal((await auditLines()).length, linesBefore)

    const elsewhere = await bearer(token.text, '198.51.100.8')
    assert.equal(elsewhere.status, 200, elsewhere.body)
    assert.equal(pipeline.upstream.seen.at(-1)?.url.pathname, '/api/2.0/mlflow/experiments/get')
    assert.ok(
      pipeline.log.some((line) => line.includes(`${PER_ADDRESS} failed logins from ${guesser}`)),
      pipeline.log.join('\n'),
    )
  })
})

describe('tokens in the audit log', () => {
  it('records a bad token as auth.failed invalid-token, and the lock it sets off as auth.lockout', async () => {
    const guesser = '203.0.113.21'
    const before = (await auditLines()).length
    const started = Date.now()
    for (let i = 0; i < PER_ADDRESS; i++) assert.equal((await bearer(newToken().text, guesser)).status, 401)
    const written = (await auditLines()).slice(before)
    const failed = written.filter((line) => line.event === 'auth.failed')
    // The first refusal as it came; the others of the same address counted in one line, written
    // as the lock they led to begins, before it.
    assert.equal(failed.length, 2, JSON.stringify(written))
    const base = {client: guesser, decision: 'deny', event: 'auth.failed', reason: 'invalid-token', status: 401}
    const {time, ...first} = failed[0]
    assert.equal(typeof time, 'string')
    assert.deepEqual(first, {...base, method: 'GET', path: '/api/2.0/mlflow/experiments/get'})
    const {first: since, last, time: summarised, ...summary} = failed[1]
    assert.deepEqual(summary, {...base, count: PER_ADDRESS - 1})
    assert.ok(String(since) <= String(last) && String(last) <= String(summarised), JSON.stringify(failed[1]))
    assert.deepEqual(
      written.map((line) => line.event),
      ['auth.failed', 'auth.failed', 'auth.lockout'],
    )

    const locks = written.filter((line) => line.event === 'auth.lockout')
    assert.equal(locks.length, 1, JSON.stringify(written))
    const {time: locked, until, ...lock} = locks[0]
    assert.deepEqual(lock, {client: guesser, decision: 'deny', event: 'auth.lockout', failures: PER_ADDRESS, reason: 'address'})
    const ends = Date.parse(String(until)) - Date.parse(String(locked))
    assert.ok(Math.abs(ends - LOCK_SECONDS * 1000) < 5000, `until ${String(until)} is the lock's end (time ${String(locked)})`)
    assert.ok(Date.parse(String(locked)) >= started - 1000)
  })

  it('records creating and revoking a token as changes, and never the token itself', async () => {
    const before = (await auditLines()).length
    const token = await createToken('nightly', {expires_in_seconds: 3600})
    const revoked = await call(pipeline.url, 'DELETE', '/api/2.0/mlflowctl/tokens/revoke', {
      body: {name: 'nightly', username: 'ci-bot'},
      credentials: pipeline.admin,
    })
    assert.equal(revoked.status, 200, revoked.body)
    const changes = (await auditLines()).slice(before).map(({time: _time, ...rest}) => rest)
    assert.deepEqual(changes, [
      {
        client: '127.0.0.1',
        decision: 'allow',
        event: 'change',
        method: 'POST',
        operation: 'tokens/create',
        path: '/api/2.0/mlflowctl/tokens/create',
        status: 200,
        target: {id: token.id, name: 'nightly', username: 'ci-bot'},
        user: 'admin',
        values: {expires_in_seconds: 3600},
      },
      {
        client: '127.0.0.1',
        decision: 'allow',
        event: 'change',
        method: 'DELETE',
        path: '/api/2.0/mlflowctl/tokens/revoke',
        operation: 'tokens/revoke',
        status: 200,
        target: {name: 'nightly', username: 'ci-bot'},
        user: 'admin',
        values: {},
      },
    ])
    // Neither the token nor its random part is anywhere in the file.
    const text = await auditText()
    assert.ok(!text.includes(token.text) && !text.includes(token.text.slice('mlft_'.length)), 'the token is never in the audit log')
  })
})

describe('tokens in the metrics', () => {
  it('counts token logins verified, rejected and expired, and each lock begun', async () => {
    const fresh = await createToken('metrics')
    const short = await createToken('short-lived', {expires_in_seconds: 1})
    const first = await scrape()
    assert.equal((await bearer(fresh.text, '192.0.2.10')).status, 200)
    assert.equal((await bearer(newToken().text, '192.0.2.11')).status, 401)
    assert.equal((await bearer('not-a-token', '192.0.2.11')).status, 401)
    const second = await scrape()
    assert.equal(tokenLogins(second, 'verified') - tokenLogins(first, 'verified'), 1)
    assert.equal(tokenLogins(second, 'rejected') - tokenLogins(first, 'rejected'), 2)
    assert.equal(tokenLogins(second, 'expired') - tokenLogins(first, 'expired'), 0)
    assert.equal(lockouts(second), lockouts(first))

    // Past its expiry instant, the short-lived token is an expired login.
    await new Promise((resolve) => setTimeout(resolve, Math.max(0, Date.parse(short.expiresAt) - Date.now()) + 50))
    assert.equal((await bearer(short.text, '192.0.2.12')).status, 401)
    // The third failure from 192.0.2.11 locks it: one lock begun.
    assert.equal((await bearer(newToken().text, '192.0.2.11')).status, 401)
    const third = await scrape()
    assert.equal(tokenLogins(third, 'expired') - tokenLogins(second, 'expired'), 1)
    assert.equal(tokenLogins(third, 'rejected') - tokenLogins(second, 'rejected'), 1)
    assert.equal(tokenLogins(third, 'verified'), tokenLogins(second, 'verified'))
    assert.equal(lockouts(third) - lockouts(second), 1)
  })
})

describe('what a token may do with tokens', () => {
  it('lists its user’s tokens but cannot create one (a token must not outlive its own expiry)', async () => {
    const {text} = await createToken('one-hour', {expires_in_seconds: 3600})
    const headers = {authorization: `Bearer ${text}`, 'x-forwarded-for': '198.51.100.80'}
    const listed = await call(pipeline.url, 'GET', '/api/2.0/mlflowctl/tokens/list', {headers})
    assert.equal(listed.status, 200, listed.body)
    const before = (parseJson(listed).tokens as unknown[]).length
    const minted = await call(pipeline.url, 'POST', '/api/2.0/mlflowctl/tokens/create', {body: {expires_in_seconds: null, name: 'forever'}, headers})
    assert.equal(minted.status, 403, minted.body)
    assert.equal(parseJson(minted).error_code, 'PERMISSION_DENIED')
    const after = await call(pipeline.url, 'GET', '/api/2.0/mlflowctl/tokens/list', {headers})
    assert.equal((parseJson(after).tokens as unknown[]).length, before, 'nothing created')
  })
})

describe('how many tokens a user may hold', () => {
  it('refuses the 101st token of one user, and takes one again after a revoke', async () => {
    const created = await call(pipeline.url, 'POST', '/api/2.0/mlflow/users/create', {
      body: {service_account: true, username: 'many-bot'},
      credentials: pipeline.admin,
    })
    assert.equal(created.status, 200, created.body)
    const create = (name: string) =>
      call(pipeline.url, 'POST', '/api/2.0/mlflowctl/tokens/create', {body: {name, username: 'many-bot'}, credentials: pipeline.admin})
    for (let i = 0; i < 100; i++) assert.equal((await create(`t${i}`)).status, 200)
    const refused = await create('t100')
    assert.equal(refused.status, 400, refused.body)
    assert.match(String(parseJson(refused).message), /100 access tokens/)
    const revoked = await call(pipeline.url, 'DELETE', '/api/2.0/mlflowctl/tokens/revoke', {
      body: {name: 't0', username: 'many-bot'},
      credentials: pipeline.admin,
    })
    assert.equal(revoked.status, 200, revoked.body)
    assert.equal((await create('t100')).status, 200)
  })
})
