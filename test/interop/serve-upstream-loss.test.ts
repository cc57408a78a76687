/**
 * The real MLflow behind serve killed, hung and restarted while several clients keep reading and
 * writing through serve: serve (the built command, its own process) never exits, answers 502/503
 * while MLflow is gone and 504 while it hangs, keeps answering its own auth API all along, and
 * recovers by itself once MLflow is back, with every answer matching its request; its memory
 * stays bounded. MLflow's Python client sees the same. A dedicated MLflow server, since it is
 * killed. No timing assertions: each phase lasts until every client has had its answers in it.
 */
import assert from 'node:assert/strict'
import {mkdtemp, readFile, rm} from 'node:fs/promises'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {after, before, describe, it} from 'node:test'

import {freePort, randomSecret, type RunningServer, startMlflowServer} from '../support/mlflow-server.js'
import {MLFLOW_VERSIONS} from '../support/mlflow-versions.js'
import {type PythonError, PythonClient} from '../support/python-client.js'
import {basicAuth} from '../support/rest.js'
import {type RunningServe, startServe} from '../support/serve.js'

const VERSION = MLFLOW_VERSIONS.latest
const CLIENTS = 4
/** Answers each client must have had in a phase before the next one starts. */
const PER_PHASE = 6
/** A guard only: a request with no answer for this long is a hang, and fails the test. */
const HANG_MS = 60_000
/** serve's RSS may grow by less than this over the whole run (a bound on memory, not a measure). */
const RSS_BOUND_BYTES = 100 * 1024 * 1024

type Phase = 'dead' | 'healthy' | 'hung' | 'restarted' | 'resumed' | 'resuming' | 'transition'
type Op = 'auth-write' | 'read' | 'write'

interface Sample {
  body: string
  client: number
  op: Op
  phase: Phase
  status: number
}

const alice = {password: `alice-${randomSecret()}`, username: 'alice'}
const bob = {password: `bob-${randomSecret()}`, username: 'bob'}

async function rssBytes(pid: number): Promise<number> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8')
  return Number(/^VmRSS:\s+(\d+) kB/m.exec(status)![1]) * 1024
}

describe(`serve while the MLflow ${VERSION} behind it is killed, hung and restarted`, () => {
  let dir: string
  let port: number
  let mlflow: RunningServer
  let serve: RunningServe

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'mlflowctl-upstream-loss-'))
    port = await freePort()
    mlflow = await startMlflowServer({dir, kind: 'plain', port, version: VERSION})
    // A short upstream timeout, so that a hung MLflow is answered 504 soon; long enough for a busy
    // machine's MLflow to answer within it.
    serve = await startServe({extraArgs: ['--upstream-timeout', '3'], upstream: mlflow.url})
  })

  after(async () => {
    try {
      mlflow?.signal('SIGCONT')
    } catch {}

    await serve?.stop()
    await mlflow?.stop()
    await rm(dir, {force: true, recursive: true})
  })

  it('answers 502/503 while it is gone, 504 while it hangs, and recovers by itself', {timeout: 600_000}, async () => {
    const admin = serve.admin
    const json = {'content-type': 'application/json'}
    const call = async (who: {password: string; username: string}, method: string, path: string, body?: unknown) => {
      const answer = await fetch(`${serve.url}${path}`, {
        body: body === undefined ? undefined : JSON.stringify(body),
        headers: {...json, authorization: basicAuth(who)},
        method,
        signal: AbortSignal.timeout(HANG_MS),
      })
      return {body: await answer.text(), status: answer.status}
    }

    for (const user of [alice, bob]) assert.equal((await call(admin, 'POST', '/api/2.0/mlflow/users/create', user)).status, 200)
    const created = await call(alice, 'POST', '/api/2.0/mlflow/experiments/create', {name: `loss-${randomSecret()}`})
    assert.equal(created.status, 200, created.body)
    const experimentId = (JSON.parse(created.body) as {experiment_id: string}).experiment_id
    const python = new PythonClient({credentials: alice, lane: 'upstream-loss', trackingUri: serve.url, version: VERSION})

    // The load: each client loops over a read and a write of alice's (forwarded to MLflow) and a
    // write of serve's own auth API (never forwarded), each sample labelled with the phase it began in.
    let phase: Phase = 'healthy'
    let running = true
    const samples: Sample[] = []
    let users = 0
    const ops: Record<Op, () => Promise<{body: string; status: number}>> = {
      'auth-write': () => call(admin, 'POST', '/api/2.0/mlflow/users/create', {password: `user-${randomSecret()}`, username: `load-${++users}`}),
      read: () => call(alice, 'GET', `/api/2.0/mlflow/experiments/get?experiment_id=${experimentId}`),
      write: () => call(alice, 'POST', '/api/2.0/mlflow/runs/create', {experiment_id: experimentId, start_time: Date.now()}),
    }
    const order: Op[] = ['read', 'write', 'auth-write']
    const clients = Array.from({length: CLIENTS}, async (_, client) => {
      for (let i = client; running; i++) {
        const op = order[i % order.length]
        const began = phase
        // A connection cut (status 0): serve must cut one whose answer had begun when MLflow died;
        // the phase assertions allow it nowhere but in a transition.
        const answer = await ops[op]().catch((error: unknown) => ({body: String((error as Error).cause ?? error), status: 0}))
        samples.push({...answer, client, op, phase: began})
      }
    })

    const inPhase = (p: Phase) => samples.filter((sample) => sample.phase === p)
    /** Polling, not timing: the phase lasts until every client has had `count` answers (of `status`, when given) in it. */
    async function settle(p: Phase, count = PER_PHASE, status?: number): Promise<Sample[]> {
      phase = p
      const had = (client: number) => inPhase(p).filter((s) => s.client === client && (status === undefined || s.status === status)).length
      while (Array.from({length: CLIENTS}, (_, client) => had(client)).some((n) => n < count)) {
        await new Promise((resolve) => {
          setTimeout(resolve, 50)
        })
      }

      return inPhase(p)
    }

    const forwarded = (list: Sample[]) => list.filter((sample) => sample.op !== 'auth-write')
    const statuses = (list: Sample[]) => [...new Set(list.map((sample) => sample.status))].sort()
    function assertServing(list: Sample[], what: string): void {
      for (const sample of list) {
        assert.equal(sample.status, 200, `${what}: ${sample.op} answered ${sample.status} ${sample.body}`)
        // Each answer is its own request's (no answer of a timed-out request on a reused connection).
        if (sample.op === 'read') assert.equal((JSON.parse(sample.body) as {experiment: {experiment_id: string}}).experiment.experiment_id, experimentId)
        if (sample.op === 'write') assert.equal((JSON.parse(sample.body) as {run: {info: {experiment_id: string}}}).run.info.experiment_id, experimentId)
      }
    }

    function assertFailing(list: Sample[], allowed: number[], errorCode: string, what: string): void {
      for (const sample of forwarded(list)) {
        assert.ok(allowed.includes(sample.status), `${what}: ${sample.op} answered ${sample.status} ${sample.body}`)
        assert.equal((JSON.parse(sample.body) as {error_code: string}).error_code, errorCode, sample.body)
      }

      // serve's own auth API needs no MLflow: it goes on.
      for (const sample of list.filter((s) => s.op === 'auth-write')) assert.equal(sample.status, 200, `${what}: auth API ${sample.body}`)
    }

    async function pythonSees(what: string): Promise<PythonError | undefined> {
      const [result] = await python.batch([{args: [experimentId], client: 'tracking', method: 'get_experiment'}])
      if (result.ok) assert.equal(result.ok.experiment_id, experimentId, what)
      return result.error
    }

    try {
      assertServing(await settle('healthy'), 'healthy')
      assert.equal(await pythonSees('healthy'), undefined)
      const rssBefore = await rssBytes(serve.child.pid!)

      // Gone: the whole MLflow process group killed at once.
      phase = 'transition'
      mlflow.signal('SIGKILL')
      await mlflow.exited
      const dead = await settle('dead')
      assertFailing(dead, [502, 503], 'TEMPORARILY_UNAVAILABLE', 'MLflow killed')
      assert.ok(
        forwarded(dead).some((sample) => sample.status === 503),
        `refused connections are 503: ${statuses(dead)}`,
      )
      assert.match((await pythonSees('dead'))?.message ?? 'no error', /503|TEMPORARILY_UNAVAILABLE/)

      // Back on the same port and data: serve finds it without being restarted.
      phase = 'transition'
      mlflow = await startMlflowServer({dir, kind: 'plain', port, version: VERSION})
      assertServing(await settle('restarted'), 'after the restart')
      assert.equal(await pythonSees('restarted'), undefined)

      // Hung: stopped, its sockets open and the kernel still accepting connections.
      phase = 'transition'
      mlflow.signal('SIGSTOP')
      // Fewer answers: each waits out the upstream timeout.
      const hung = await settle('hung', 3)
      assertFailing(hung, [504], 'DEADLINE_EXCEEDED', 'MLflow hung')
      assert.match((await pythonSees('hung'))?.message ?? 'no error', /504|DEADLINE_EXCEEDED/)

      // Resumed: it answers the requests serve gave up on (to nobody) and the new ones.
      phase = 'transition'
      mlflow.signal('SIGCONT')
      // Until MLflow has worked off the requests queued while it was stopped, answers may still be 504s.
      await settle('resuming', 1, 200)
      assertServing(await settle('resumed'), 'after resuming')
      assert.equal(await pythonSees('resumed'), undefined)

      const rssAfter = await rssBytes(serve.child.pid!)
      process.stdout.write(
        `# ${samples.length} requests; serve's RSS ${(rssBefore / 2 ** 20).toFixed(1)} MiB → ${(rssAfter / 2 ** 20).toFixed(1)} MiB; dead: ${statuses(dead)}, hung: ${statuses(hung)}\n`,
      )
      assert.ok(rssAfter - rssBefore < RSS_BOUND_BYTES, `serve's RSS grew from ${rssBefore} to ${rssAfter} bytes`)
    } finally {
      running = false
      await Promise.allSettled(clients)
    }

    await Promise.all(clients) // a client whose request failed (a hang, a reset) fails the test
    assert.equal(serve.child.exitCode, null, 'serve is still running')
    assert.equal(serve.child.signalCode, null, 'serve is still running')
    const log = serve.output()
    assert.doesNotMatch(log, /a bug in mlflowctl serve|Uncaught|TypeError|RangeError/)
    // Each failure logged in one line, never with a credential.
    assert.match(log, /did not answer in time/)
    for (const secret of [admin.password, alice.password, basicAuth(alice).slice(6)]) assert.ok(!log.includes(secret), "a credential in serve's log")
  })
})
