/**
 * What clients cannot do to serve's logs: fill the disk with failed logins (each key written once
 * and then counted), fill the memory through a destination that does not keep up (lines beyond a
 * bound dropped, counted and reported), or get a password typed as a username into a log (only
 * its digest). And the operations address's health answers before the store is open, not cached.
 */
import assert from 'node:assert/strict'
import {mkdtemp, readFile} from 'node:fs/promises'
import {createServer} from 'node:http'
import {type AddressInfo} from 'node:net'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {Writable} from 'node:stream'
import {describe, it} from 'node:test'

import {AccessLog} from '../../src/server/access-log.js'
import {type RequestRecord} from '../../src/server/app.js'
import {type AuditEvent, AuditLog, type AuthFailedEvent, FailureAggregator, serializeAuditEvent, userLabel} from '../../src/server/audit.js'
import {ServeMetrics} from '../../src/server/metrics.js'
import {startingHealth} from '../../src/server/ops-endpoint.js'
import {GRANT_CHANGE} from '../support/audit-events.js'
import {seriesValue} from '../support/metrics.js'
import {call, startPipeline} from '../support/serve-pipeline.js'

type Line = Record<string, unknown>

const linesOf = async (path: string): Promise<Line[]> =>
  (await readFile(path, 'utf8'))
    .split('\n')
    .filter(Boolean)
    .map((line) => JSON.parse(line) as Line)

const GET = '/api/2.0/mlflow/experiments/get?experiment_id=1'
/** A password typed into the username field. */
const TYPED = 'Correct-Horse-Battery-9'

describe('failed logins in the audit log are bounded', () => {
  it('a flood of refused logins writes at most two lines per key, whose counts add up to every refusal', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'mlflowctl-audit-bounds-'))
    const path = join(dir, 'audit.jsonl')
    // Counting off, so that every request is judged (a lock would answer 429, which is not recorded);
    // a window longer than the test, so that only the close writes the summaries.
    const pipeline = await startPipeline({serve: {auditFailures: {windowMs: 3_600_000}, auditLog: path, credentialCheck: {lockout: false}}})
    const N = 60
    try {
      for (let round = 0; round < N / 10; round++) {
        const answers = await Promise.all(
          Array.from({length: 10}, (_, i) =>
            i % 2 === 0 ? call(pipeline.url, 'GET', GET) : call(pipeline.url, 'GET', GET, {credentials: {password: 'whatever-it-is', username: TYPED}}),
          ),
        )
        for (const answer of answers) assert.equal(answer.status, 401)
      }
    } finally {
      await pipeline.close()
    }

    const failed = (await linesOf(path)).filter((line) => line.event === 'auth.failed')
    const byReason = (reason: string) => failed.filter((line) => line.reason === reason)
    for (const reason of ['no-credentials', 'unknown-user']) {
      const lines = byReason(reason)
      assert.ok(lines.length >= 1 && lines.length <= 2, JSON.stringify(lines))
      assert.equal(
        lines.reduce((sum, line) => sum + Number(line.count ?? 1), 0),
        N / 2,
        JSON.stringify(lines),
      )
      // The first as it came; the summary with its count, first and last, and no method or path (they may differ).
      assert.equal(lines[0].count, undefined)
      assert.equal(lines[0].path, '/api/2.0/mlflow/experiments/get')
      const summary = lines.at(-1)!
      assert.deepEqual(Object.keys(summary), [
        'time',
        'event',
        ...(reason === 'unknown-user' ? ['user'] : []),
        'client',
        'status',
        'decision',
        'reason',
        'count',
        'first',
        'last',
      ])
      assert.ok(String(summary.first) <= String(summary.last))
    }

    assert.equal(failed.length, byReason('no-credentials').length + byReason('unknown-user').length)
    for (const line of byReason('unknown-user')) assert.equal(line.user, userLabel(TYPED, false))
    assert.ok(!(await readFile(path, 'utf8')).includes(TYPED), 'the typed password is in the audit log')
  })

  it('keys beyond the ones followed are counted per reason; a key quiet for a window is forgotten', () => {
    const written: AuditEvent[] = []
    const failures = new FailureAggregator((event) => written.push(event), {maxKeys: 3})
    const N = 1000
    let now = Date.parse('2026-01-31T09:00:00Z')
    // A network per refusal: what a guesser with many IPv6 /64s sends.
    for (let i = 0; i < N; i++) failures.add({client: `2001:db8:${i.toString(16)}::1`, event: 'auth.failed', reason: 'invalid-token'}, now++)
    failures.tick(now)
    assert.equal(written.length, 4, JSON.stringify(written))
    assert.equal(
      written.reduce((sum, event) => sum + ((event as {count?: number}).count ?? 1), 0),
      N,
    )
    assert.deepEqual(written.at(-1), {
      count: N - 3,
      event: 'auth.failed',
      first: '2026-01-31T09:00:00.003Z',
      last: new Date(now - 1).toISOString(),
      overflow: true,
      reason: 'invalid-token',
    })
    // The three keys had no refusal after their first line: forgotten at the window's end, so the
    // next refusal of one is written at once again.
    failures.add({client: '2001:db8:0::1', event: 'auth.failed', reason: 'invalid-token'}, now)
    assert.equal(written.length, 5)
    assert.equal((written[4] as {count?: number}).count, undefined)
  })
})

describe('failed logins: no client can crowd out the others', () => {
  const sum = (events: AuditEvent[]) => events.reduce((total, event) => total + ((event as {count?: number}).count ?? 1), 0)
  const failedOf = (events: AuditEvent[]) => events.filter((event): event is AuthFailedEvent => event.event === 'auth.failed')

  it('addresses of one /64 share a key; a full pool of wrong passwords still names the user guessed', () => {
    const written: AuditEvent[] = []
    const failures = new FailureAggregator((event) => written.push(event), {maxKnownKeys: 50})
    let now = Date.parse('2026-01-31T09:00:00Z')
    // 50 networks, 20 addresses each, all guessing admin's password: one key per network.
    for (let net = 0; net < 50; net++)
      for (let host = 1; host <= 20; host++)
        failures.add({client: `2001:db8:${net.toString(16)}::${host.toString(16)}`, event: 'auth.failed', reason: 'wrong-password', user: 'admin'}, now++)
    assert.equal(failedOf(written).length, 50, 'a first line per network, not per address')
    // The pool is full now: bob's mistyped password, from elsewhere, is counted with his name.
    failures.add({client: '198.51.100.7', event: 'auth.failed', reason: 'wrong-password', user: 'bob'}, now++)
    failures.tick(now)
    const bob = failedOf(written).filter((event) => event.user === 'bob')
    assert.deepEqual(
      bob.map(({count, overflow}) => ({count, overflow})),
      [{count: 1, overflow: true}],
    )
    assert.equal(sum(failedOf(written)), 50 * 20 + 1)
  })

  it('after 1 200 unknown names from 60 IPv6 /64s, a wrong password for a real user from another client has its own line', () => {
    const written: AuditEvent[] = []
    // The defaults: what serve runs with.
    const failures = new FailureAggregator((event) => written.push(event))
    let now = Date.parse('2026-01-31T09:00:00Z')
    let sent = 0
    for (let net = 0; net < 60; net++)
      for (let host = 0; host < 20; host++) {
        failures.add(
          {
            client: `2001:db8:0:${net.toString(16)}::${(host + 1).toString(16)}`,
            event: 'auth.failed',
            reason: 'unknown-user',
            user: userLabel(`guess-${net}-${host}`, false),
          },
          now++,
        )
        sent++
      }

    // Then one repeat per key, as the attacker keeps them alive.
    for (let net = 0; net < 60; net++) {
      failures.add({client: `2001:db8:0:${net.toString(16)}::1`, event: 'auth.failed', reason: 'unknown-user', user: userLabel(`guess-${net}-0`, false)}, now++)
      sent++
    }

    const before = written.length
    const admin: AuthFailedEvent = {
      client: '198.51.100.7',
      event: 'auth.failed',
      method: 'GET',
      path: '/api/2.0/mlflow/experiments/get',
      reason: 'wrong-password',
      user: 'admin',
    }
    failures.add(admin, now++)
    assert.deepEqual(written.slice(before), [admin])
    // And its repeats are summarised under its own key, with its client and user.
    failures.add(admin, now++)
    failures.tick(now)
    const adminLines = failedOf(written).filter((event) => event.user === 'admin')
    assert.equal(adminLines.length, 2, JSON.stringify(adminLines))
    assert.deepEqual(
      {client: adminLines[1].client, count: adminLines[1].count, overflow: adminLines[1].overflow},
      {client: '198.51.100.7', count: 1, overflow: undefined},
    )
    assert.equal(sum(written), sent + 2)
  })

  it('one client is followed under 20 keys; its further names and addresses are counted under one `many` key for its /64', () => {
    const written: AuditEvent[] = []
    const failures = new FailureAggregator((event) => written.push(event))
    let now = Date.parse('2026-01-31T09:00:00Z')
    const N = 50
    for (let i = 0; i < N; i++)
      failures.add(
        {
          client: `2001:db8:1:2::${(i + 1).toString(16)}`,
          event: 'auth.failed',
          method: 'GET',
          path: '/x',
          reason: 'unknown-user',
          user: userLabel(`name-${i}`, false),
        },
        now++,
      )
    assert.equal(written.length, 21, JSON.stringify(written))
    assert.ok(written.slice(0, 20).every((event) => (event as AuthFailedEvent).user !== undefined && !(event as AuthFailedEvent).many))
    // The 21st: the first refusal of the client's `many` key, as it came, but without a name, and the client as counted.
    assert.deepEqual(written[20], {client: '2001:db8:1:2::/64', event: 'auth.failed', many: true, method: 'GET', path: '/x', reason: 'unknown-user'})
    // A wrong password for a real user from the same /64 is in a group of its own: its own line.
    failures.add({client: '2001:db8:1:2::99', event: 'auth.failed', reason: 'wrong-password', user: 'alice'}, now++)
    assert.deepEqual(written.at(-1), {client: '2001:db8:1:2::99', event: 'auth.failed', reason: 'wrong-password', user: 'alice'})
    // Another client is not affected.
    failures.add({client: '2001:db8:1:3::1', event: 'auth.failed', reason: 'unknown-user', user: userLabel('someone', false)}, now++)
    assert.equal((written.at(-1) as AuthFailedEvent).client, '2001:db8:1:3::1')
    const count = written.length
    failures.tick(now)
    assert.deepEqual(written.slice(count), [
      {
        client: '2001:db8:1:2::/64',
        count: N - 21,
        event: 'auth.failed',
        first: new Date(Date.parse('2026-01-31T09:00:00Z') + 21).toISOString(),
        last: new Date(Date.parse('2026-01-31T09:00:00Z') + N - 1).toISOString(),
        many: true,
        reason: 'unknown-user',
      },
    ])
    assert.equal(sum(written), N + 2)
    // The line as written: `many` after the counts, no user.
    const line = JSON.parse(serializeAuditEvent(written.at(-1)!, new Date(now))) as Record<string, unknown>
    assert.deepEqual(Object.keys(line), ['time', 'event', 'client', 'status', 'decision', 'reason', 'count', 'first', 'last', 'many'])
  })

  it('the keys a client forgets at the end of a window are its to use again', () => {
    const written: AuditEvent[] = []
    const failures = new FailureAggregator((event) => written.push(event), {maxKeysPerClient: 2})
    let now = 0
    for (const name of ['a', 'b', 'c']) failures.add({client: '10.0.0.1', event: 'auth.failed', reason: 'unknown-user', user: name}, now++)
    assert.equal((written.at(-1) as AuthFailedEvent).many, true)
    // No repeat in the window: all three forgotten.
    failures.tick(now)
    failures.add({client: '10.0.0.1', event: 'auth.failed', reason: 'unknown-user', user: 'd'}, now++)
    assert.deepEqual(written.at(-1), {client: '10.0.0.1', event: 'auth.failed', reason: 'unknown-user', user: 'd'})
  })

  it("a lock of a client's address writes its `many` count before the lock line", async () => {
    const lines: string[] = []
    const stream = new Writable({
      write(chunk: Buffer, _encoding, done) {
        if (chunk.length > 0) lines.push(chunk.toString())
        done()
      },
    })
    const audit = AuditLog.onStream(stream, () => {}, {failures: {maxKeysPerClient: 1}})
    for (const name of ['a', 'b', 'c', 'd']) audit.record({client: '2001:db8:5:6::1', event: 'auth.failed', reason: 'unknown-user', user: name})
    audit.record({client: '2001:db8:5:6::/64', event: 'auth.lockout', failures: 4, reason: 'address'})
    await audit.close()
    const events = lines.map((line) => JSON.parse(line) as Record<string, unknown>)
    assert.deepEqual(
      events.map((event) => [event.event, event.user, event.client, event.many, event.count]),
      [
        ['auth.failed', 'a', '2001:db8:5:6::1', undefined, undefined],
        ['auth.failed', undefined, '2001:db8:5:6::/64', true, undefined],
        ['auth.failed', undefined, '2001:db8:5:6::/64', true, 2],
        ['auth.lockout', undefined, '2001:db8:5:6::/64', undefined, undefined],
      ],
    )
  })

  it('only when a whole group is full are refusals counted per reason alone', () => {
    const written: AuditEvent[] = []
    const failures = new FailureAggregator((event) => written.push(event), {maxKeys: 4, maxKeysPerClient: 2, maxKnownKeys: 2})
    let now = 0
    // Three clients' unknown names: 2 + 2 followed, the third client's overflow.
    for (const client of ['10.0.0.1', '10.0.0.2', '10.0.0.3'])
      for (const name of ['a', 'b']) failures.add({client, event: 'auth.failed', reason: 'unknown-user', user: name}, now++)
    assert.equal(written.length, 4)
    // The wrong-password group is still empty.
    failures.add({client: '10.0.0.3', event: 'auth.failed', reason: 'wrong-password', user: 'admin'}, now++)
    failures.add({client: '10.0.0.4', event: 'auth.failed', reason: 'wrong-password', user: 'admin'}, now++)
    failures.add({client: '10.0.0.5', event: 'auth.failed', reason: 'wrong-password', user: 'admin'}, now++)
    assert.deepEqual(
      failedOf(written.slice(4)).map((event) => event.client),
      ['10.0.0.3', '10.0.0.4'],
    )
    failures.tick(now)
    assert.deepEqual(
      failedOf(written)
        .filter((event) => event.overflow)
        .map((event) => [event.reason, event.count]),
      [
        ['unknown-user', 2],
        ['wrong-password', 1],
      ],
    )
    assert.equal(sum(written), 9)
  })
})

describe('a name that is no user is never written as it is', () => {
  it("a lock of a username that does not exist is logged and recorded under the name's digest", async () => {
    const dir = await mkdtemp(join(tmpdir(), 'mlflowctl-audit-names-'))
    const path = join(dir, 'audit.jsonl')
    const pipeline = await startPipeline({
      serve: {auditLog: path, credentialCheck: {lockout: {perAddress: 0, perUser: 0, perUserAddress: 3}}},
    })
    try {
      for (let i = 0; i < 3; i++)
        assert.equal((await call(pipeline.url, 'GET', GET, {credentials: {password: 'the-password-guessed', username: TYPED}})).status, 401)
      assert.equal((await call(pipeline.url, 'GET', GET, {credentials: {password: 'the-password-guessed', username: TYPED}})).status, 429)
    } finally {
      await pipeline.close()
    }

    const label = userLabel(TYPED, false)
    const lines = await linesOf(path)
    assert.deepEqual(
      lines.filter((line) => line.event === 'auth.lockout').map((line) => line.user),
      [label],
    )
    assert.ok(lines.filter((line) => line.event === 'auth.failed').every((line) => line.user === label))
    assert.ok(
      pipeline.log.some((line) => line.includes(`failed logins for user "${label}" from 127.0.0.1`)),
      pipeline.log.join('\n'),
    )
    assert.ok(!pipeline.log.join('\n').includes(TYPED), 'the typed password is in the log')
    assert.ok(!(await readFile(path, 'utf8')).includes(TYPED), 'the typed password is in the audit log')
  })
})

/** A destination that takes a first line and then never says it was written, until released. */
function blockedStream(): {release(): void; stream: Writable} {
  let held: (() => void) | undefined
  let blocked = true
  const stream = new Writable({
    write(_chunk, _encoding, callback) {
      if (blocked) held = callback
      else callback()
    },
  })
  return {
    release() {
      blocked = false
      held?.()
    },
    stream,
  }
}

const MAX = 64 * 1024

describe('a destination that does not keep up holds a bounded amount of memory', () => {
  it('the audit log drops lines beyond the bound, counts them, and says so once when it starts and once when it stops', async () => {
    const {release, stream} = blockedStream()
    const log: string[] = []
    let metered = 0
    const audit = AuditLog.onStream(stream, (line) => log.push(line), {maxQueuedBytes: MAX, onDrop: () => metered++})
    const change = GRANT_CHANGE
    const N = 5000
    for (let i = 0; i < N; i++) {
      audit.record(change)
      assert.ok(stream.writableLength <= MAX, `${stream.writableLength} bytes queued`)
    }

    const {dropped} = audit.stats()
    assert.ok(dropped > 0 && dropped < N, `${dropped} dropped`)
    assert.equal(metered, dropped)
    assert.equal(log.length, 1, log.join('\n'))
    assert.match(log[0], /^error: audit log on standard output cannot keep up \(\d+ bytes not yet written\): audit lines are dropped, changes included/)
    const drained = new Promise((resolve) => stream.once('drain', resolve))
    release()
    await drained
    await new Promise((resolve) => setImmediate(resolve))
    assert.equal(log.length, 2, log.join('\n'))
    assert.equal(log[1], `error: audit log on standard output is written again; ${dropped} audit lines were dropped meanwhile, ${dropped} of them changes`)
    audit.record(change)
    await audit.close()
    assert.deepEqual(audit.stats(), {dropped, failed: 0, lines: N - dropped + 1})
  })

  it('the access log drops lines beyond the bound and counts them in mlflowctl_log_lines_dropped_total{log="access"}', async () => {
    const {release, stream} = blockedStream()
    const log: string[] = []
    const metrics = new ServeMetrics()
    const access = new AccessLog(stream, {log: (line) => log.push(line), maxQueuedBytes: MAX, onDrop: () => metrics.logLineDropped('access')})
    const record = {bytes: 10, decision: 'allow', family: '/x', method: 'GET', path: '/x', seconds: 0.001, status: 200, user: 'alice'} as RequestRecord
    const N = 5000
    for (let i = 0; i < N; i++) {
      access.write(record, '10.0.0.1')
      assert.ok(stream.writableLength <= MAX, `${stream.writableLength} bytes queued`)
    }

    assert.ok(access.dropped > 0)
    const {body} = await metrics.exposition()
    assert.equal(seriesValue(body, 'mlflowctl_log_lines_dropped_total', {log: 'access'}), access.dropped)
    assert.equal(seriesValue(body, 'mlflowctl_log_lines_dropped_total', {log: 'audit'}), 0)
    assert.deepEqual(log.length, 1, log.join('\n'))
    assert.match(log[0], /^warning: access log cannot keep up/)
    const drained = new Promise((resolve) => stream.once('drain', resolve))
    release()
    await drained
    await new Promise((resolve) => setImmediate(resolve))
    assert.equal(log[1], `warning: access log is written again; ${access.dropped} lines were dropped meanwhile`)
  })
})

describe('the operations address before the store is open', () => {
  it('answers /-/live 200 and /-/ready 503, neither cached', async () => {
    const health = startingHealth(() => undefined)
    const server = createServer((request, response) => void health.answer(request.url === '/-/live' ? 'live' : 'ready', response))
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
    const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
    try {
      const live = await call(base, 'GET', '/-/live')
      assert.equal(live.status, 200)
      assert.equal(live.headers['cache-control'], 'no-store')
      assert.deepEqual(JSON.parse(live.body), {status: 'live'})
      const ready = await call(base, 'GET', '/-/ready')
      assert.equal(ready.status, 503)
      assert.equal(ready.headers['cache-control'], 'no-store')
      assert.equal(ready.headers['retry-after'], '1')
    } finally {
      server.close()
    }
  })
})
