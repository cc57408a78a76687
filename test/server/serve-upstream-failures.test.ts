/**
 * serve (in this process, through startServe) in front of a fake MLflow that can be switched
 * between answering, refusing connections, hanging, dropping the connection before answering and
 * dropping it in the middle of an answer. For each kind of route a non-admin calls, every upstream
 * failure answers the documented 502/503/504 MLflow JSON (never a 500), serve keeps running, and
 * answers again once the upstream is back. No timing assertions: a hang ends by serve's own
 * (short) upstream timeout.
 */
import assert from 'node:assert/strict'
import {once} from 'node:events'
import {mkdtemp, readFile, writeFile} from 'node:fs/promises'
import {createServer, type ServerResponse} from 'node:http'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {after, afterEach, before, describe, it} from 'node:test'

import {type RunningServe, startServe} from '../../src/server/serve.js'
import {call as pipelineCall, type PipelineAnswer} from '../support/serve-pipeline.js'
import {readStoreFiles} from '../support/store-files.js'

const ADMIN = {password: 'admin-password-for-failures', username: 'admin'}
const ALICE = {password: 'alice-password-for-failures', username: 'alice'}
const UPSTREAM_TIMEOUT_MS = 300
// Only so that a request serve never answers fails the test instead of hanging it.
const GUARD = {timeout: 60_000}

type Mode = 'answer' | 'hang' | 'reset' | 'reset-mid'

interface Seen {
  body: Record<string, unknown>
  method: string
  url: URL
}

type Answer = PipelineAnswer

/** As the shared harness's call(), as alice unless told otherwise. */
function call(base: string, method: string, path: string, options: {body?: unknown; credentials?: {password: string; username: string}} = {}): Promise<Answer> {
  return pipelineCall(base, method, path, {body: options.body, credentials: options.credentials ?? ALICE})
}

/** A fake MLflow with just the answers the routes below need. */
async function fakeMlflow() {
  let mode: Mode = 'answer'
  // Which requests the failure mode applies to (default: all), to reach one step of a route.
  let affected: (seen: Seen) => boolean = () => true
  let nextExperiment = 100
  const held = new Set<ServerResponse>()
  const seen: Seen[] = []
  const server = createServer((req, res) => {
    const chunks: Buffer[] = []
    req.on('data', (chunk: Buffer) => chunks.push(chunk))
    req.on('end', () => {
      const text = Buffer.concat(chunks).toString('utf8')
      const request: Seen = {body: text ? (JSON.parse(text) as Record<string, unknown>) : {}, method: req.method!, url: new URL(req.url!, 'http://fake')}
      seen.push(request)
      if (mode !== 'answer' && affected(request)) {
        if (mode === 'hang') held.add(res)
        else if (mode === 'reset') req.socket.destroy()
        else {
          res.writeHead(200, {'content-length': '1000', 'content-type': 'application/json'})
          // Ended, not reset: a reset may discard the head before serve reads it, which is the case above.
          res.write('{"partial": ', () => res.socket?.end())
        }

        return
      }

      const answer = mlflowAnswer(request, () => String(nextExperiment++))
      res.writeHead(answer ? 200 : 404, {'content-type': 'application/json'})
      res.end(JSON.stringify(answer ?? {error_code: 'ENDPOINT_NOT_FOUND', message: 'no such route in the fake'}))
    })
  })
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  const {port} = server.address() as {port: number}
  let listening = true
  const stop = async () => {
    listening = false
    for (const res of held) res.destroy()
    held.clear()
    server.closeAllConnections()
    await new Promise((resolve) => {
      server.close(resolve)
    })
  }

  return {
    /** Listening again on the same port after refuse(). */
    async back() {
      if (listening) return
      server.listen(port, '127.0.0.1')
      await once(server, 'listening')
      listening = true
    },
    async refuse() {
      await stop()
    },
    seen,
    set(next: Mode, only: (request: Seen) => boolean = () => true) {
      mode = next
      affected = only
      if (next === 'answer') {
        for (const res of held) res.destroy()
        held.clear()
      }
    },
    stop,
    url: new URL(`http://127.0.0.1:${port}`),
  }
}

function mlflowAnswer({body, method, url}: Seen, newExperimentId: () => string): Record<string, unknown> | undefined {
  const route = `${method} ${url.pathname}`
  const query = url.searchParams
  if (route === 'GET /api/2.0/mlflow/experiments/get') return {experiment: {experiment_id: query.get('experiment_id'), name: 'one'}}
  if (route === 'GET /api/2.0/mlflow/experiments/get-by-name') return {experiment: {experiment_id: '1', name: query.get('experiment_name')}}
  if (route === 'GET /api/2.0/mlflow/runs/get') return {run: {info: {experiment_id: '1', run_id: query.get('run_id')}}}
  if (route === 'POST /api/2.0/mlflow/experiments/search') {
    return body.page_token ? {experiments: [{experiment_id: '3'}]} : {experiments: [{experiment_id: '1'}, {experiment_id: '2'}], next_page_token: 'p2'}
  }

  if (route === 'GET /api/2.0/mlflow/registered-models/search') {
    return query.get('page_token') ? {registered_models: [{name: 'm3'}]} : {next_page_token: 'p2', registered_models: [{name: 'm1'}, {name: 'm2'}]}
  }

  if (route === 'POST /api/2.0/mlflow/runs/search') return {runs: [{info: {experiment_id: '1'}}], searched: body.experiment_ids}
  if (route === 'POST /graphql') return {data: {mlflowGetExperiment: {experiment: {experimentId: '1'}}}}
  if (route === 'POST /api/2.0/mlflow/experiments/create') return {experiment_id: newExperimentId()}
  if (/^GET \/api\/3\.0\/mlflow\/traces\/[^/]+$/.test(route)) return {trace: {trace_info: {trace_location: {mlflow_experiment: {experiment_id: '1'}}}}}
  if (/^GET \/api\/3\.0\/mlflow\/traces\/[^/]+\/assessments\/[^/]+$/.test(route)) return {assessment: {assessment_id: url.pathname.split('/').pop()}}
  if (/^POST \/api\/3\.0\/mlflow\/traces\/[^/]+\/assessments$/.test(route)) return {assessment: {assessment_id: 'a2'}}
  return undefined
}

const GRAPHQL_GET_EXPERIMENT =
  'query MlflowGetExperimentQuery($input: MlflowGetExperimentInput!) { mlflowGetExperiment(input: $input) { experiment { experimentId } } }'

interface Route {
  /** Whose failure the targeted modes (hang, reset) cause: the serve-specific step of the route. */
  affected?: (request: Seen) => boolean
  check(answer: Answer): void
  name: string
  send(base: string, n: number): Promise<Answer>
  /** The failing step is a streamed forward: a reset mid-answer reaches the client as a truncated answer. */
  streamed: boolean
}

const json = (answer: Answer) => JSON.parse(answer.body) as Record<string, unknown>

const ROUTES: Route[] = [
  {
    check: (answer) => assert.deepEqual(json(answer), {experiment: {experiment_id: '1', name: 'one'}}),
    name: 'a plain forward (experiments/get)',
    send: (base) => call(base, 'GET', '/api/2.0/mlflow/experiments/get?experiment_id=1'),
    streamed: true,
  },
  {
    check: (answer) => assert.equal((json(answer).run as {info: {experiment_id: string}}).info.experiment_id, '1'),
    name: 'a resource lookup (runs/get)',
    // A new run each time: a resolved run is cached and would not ask the upstream again.
    send: (base, n) => call(base, 'GET', `/api/2.0/mlflow/runs/get?run_id=run-${n}`),
    streamed: false,
  },
  {
    affected: (request) => request.body.page_token !== undefined,
    check: (answer) => assert.deepEqual(json(answer), {experiments: [{experiment_id: '1'}]}),
    name: 'a filtered search refilled (experiments/search)',
    send: (base) => call(base, 'POST', '/api/2.0/mlflow/experiments/search', {body: {max_results: 2}}),
    streamed: false,
  },
  {
    affected: (request) => request.url.searchParams.has('page_token'),
    check: (answer) => assert.deepEqual(json(answer), {registered_models: [{name: 'm1'}]}),
    name: 'a filtered search refilled (registered-models/search)',
    send: (base) => call(base, 'GET', '/api/2.0/mlflow/registered-models/search?max_results=2'),
    streamed: false,
  },
  {
    check: (answer) => assert.deepEqual(json(answer).searched, ['1']),
    name: 'a narrowed search (runs/search)',
    send: (base) => call(base, 'POST', '/api/2.0/mlflow/runs/search', {body: {experiment_ids: ['1', '2']}}),
    // Read whole: the runs found may name logged models the caller's tier withholds.
    streamed: false,
  },
  {
    check: (answer) => assert.deepEqual(json(answer), {data: {mlflowGetExperiment: {experiment: {experimentId: '1'}}}}),
    name: 'GraphQL',
    send: (base) =>
      call(base, 'POST', '/graphql', {
        body: {operationName: 'MlflowGetExperimentQuery', query: GRAPHQL_GET_EXPERIMENT, variables: {input: {experimentId: '1'}}},
      }),
    streamed: false,
  },
  {
    check: (answer) => assert.match(String(json(answer).experiment_id), /^\d+$/),
    name: 'a create with a creator grant (experiments/create)',
    send: (base, n) => call(base, 'POST', '/api/2.0/mlflow/experiments/create', {body: {name: `created-${n}`}}),
    streamed: false,
  },
  {
    affected: (request) => request.url.pathname.endsWith('/experiments/get-by-name'),
    check: (answer) => assert.deepEqual(json(answer), {experiment: {experiment_id: '1', name: 'one'}}),
    name: 'an experiment-by-name lookup (experiments/get-by-name)',
    send: (base) => call(base, 'GET', '/api/2.0/mlflow/experiments/get-by-name?experiment_name=one'),
    streamed: false,
  },
  {
    affected: (request) => request.url.pathname.includes('/assessments/'),
    check: (answer) => assert.deepEqual(json(answer), {assessment: {assessment_id: 'a2'}}),
    name: 'the assessment-override check',
    send: (base, n) =>
      call(base, 'POST', `/api/3.0/mlflow/traces/tr-${n}/assessments`, {body: {assessment: {assessment_name: 'x', overrides: 'a1', trace_id: `tr-${n}`}}}),
    streamed: false,
  },
]

describe('serve when the upstream fails, for every kind of route a non-admin calls', () => {
  let fake: Awaited<ReturnType<typeof fakeMlflow>>
  let serve: RunningServe
  let storePath: string
  const logged: string[] = []
  let counter = 0

  before(async () => {
    fake = await fakeMlflow()
    const dir = await mkdtemp(join(tmpdir(), 'mlflowctl-upstream-failures-'))
    storePath = join(dir, 'auth.json')
    const configPath = join(dir, 'basic_auth.ini')
    await writeFile(configPath, '[mlflow]\ndefault_permission = NO_PERMISSIONS\n')
    serve = await startServe({
      configPath,
      env: {MLFLOW_AUTH_ADMIN_PASSWORD: ADMIN.password},
      host: '127.0.0.1',
      log: (message) => logged.push(message),
      port: 0,
      proxyTo: fake.url,
      storePath,
      upstreamTimeoutMs: UPSTREAM_TIMEOUT_MS,
    })
    const asAdmin = {credentials: ADMIN}
    assert.equal((await call(serve.url, 'POST', '/api/2.0/mlflow/users/create', {...asAdmin, body: ALICE})).status, 200)
    const grants = [
      ['/api/2.0/mlflow/experiments/permissions/create', {experiment_id: '1', permission: 'EDIT', username: 'alice'}],
      ['/api/2.0/mlflow/registered-models/permissions/create', {name: 'm1', permission: 'READ', username: 'alice'}],
    ] as const
    for (const [path, body] of grants) assert.equal((await call(serve.url, 'POST', path, {...asAdmin, body})).status, 200, path)
  })

  // A failed test must not leave the next one with a failing upstream.
  afterEach(async () => {
    fake.set('answer')
    await fake.back()
  })

  after(async () => {
    await serve?.close()
    await fake?.stop()
  })

  async function everyRoute(expect: (route: Route, answer: Answer) => void): Promise<void> {
    for (const route of ROUTES) {
      const answer = await route.send(serve.url, counter++)
      assert.notEqual(answer.status, 500, `${route.name}: ${answer.body}`)
      try {
        expect(route, answer)
      } catch (error) {
        throw new Error(`${route.name}: ${(error as Error).message}\n${answer.status} ${answer.body}`, {cause: error})
      }
    }
  }

  const answersAgain = () =>
    everyRoute((route, answer) => {
      assert.equal(answer.status, 200)
      route.check(answer)
    })

  it('answers every route while the upstream answers', GUARD, answersAgain)

  it('answers 503 TEMPORARILY_UNAVAILABLE while the upstream refuses connections, then answers again', GUARD, async () => {
    await fake.refuse()
    await everyRoute((_route, answer) => {
      assert.equal(answer.status, 503)
      assert.equal(answer.headers['content-type'], 'application/json')
      assert.deepEqual(json(answer), {
        error_code: 'TEMPORARILY_UNAVAILABLE',
        message: `The MLflow tracking server at ${fake.url.origin} is not reachable: connection refused (ECONNREFUSED)`,
      })
    })
    await fake.back()
    await answersAgain()
  })

  for (const failure of [
    {
      code: 'DEADLINE_EXCEEDED',
      mode: 'hang',
      status: 504,
      title: 'answers 504 DEADLINE_EXCEEDED when the upstream does not answer in time, then answers again',
      why: `did not answer in time: no answer within ${UPSTREAM_TIMEOUT_MS} ms (ETIMEDOUT)`,
    },
    {
      code: 'TEMPORARILY_UNAVAILABLE',
      mode: 'reset',
      status: 502,
      title: 'answers 502 when the upstream drops the connection before answering, then answers again',
      why: 'gave no usable answer: connection closed without an answer (ECONNRESET)',
    },
  ] as const) {
    it(failure.title, GUARD, async () => {
      for (const route of ROUTES) {
        fake.set(failure.mode, route.affected)
        const answer = await route.send(serve.url, counter++)
        assert.equal(answer.status, failure.status, `${route.name}: ${answer.body}`)
        assert.deepEqual(json(answer), {error_code: failure.code, message: `The MLflow tracking server at ${fake.url.origin} ${failure.why}`}, route.name)
      }

      fake.set('answer')
      await answersAgain()
    })
  }

  it('answers 502 when the upstream breaks off an answer serve reads; a streamed one reaches the client truncated', GUARD, async () => {
    for (const route of ROUTES) {
      fake.set('reset-mid', route.affected)
      const answer = await route.send(serve.url, counter++)
      if (route.streamed) {
        // Its head is already on the way: the client must see a truncated answer, never a complete one.
        assert.equal(answer.status, 200, route.name)
        assert.equal(answer.complete, false, route.name)
      } else {
        assert.equal(answer.status, 502, `${route.name}: ${answer.body}`)
        assert.deepEqual(
          json(answer),
          {
            error_code: 'TEMPORARILY_UNAVAILABLE',
            message: `The MLflow tracking server at ${fake.url.origin} gave no usable answer: the upstream connection closed in the middle of the answer (ECONNRESET)`,
          },
          route.name,
        )
      }
    }

    fake.set('answer')
    await answersAgain()
  })

  it('logs each failure in one line without query, credentials or hashes', GUARD, () => {
    const failures = logged.filter((line) => line.startsWith('error: '))
    // A streamed forward answers its client itself: its failure is logged too.
    assert.ok(
      failures.includes(
        `error: GET /api/2.0/mlflow/experiments/get: The MLflow tracking server at ${fake.url.origin} is not reachable: connection refused (ECONNREFUSED)`,
      ),
      failures.join('\n'),
    )
    assert.ok(
      failures.includes(
        `error: POST /api/2.0/mlflow/runs/search: The MLflow tracking server at ${fake.url.origin} did not answer in time: no answer within ${UPSTREAM_TIMEOUT_MS} ms (ETIMEDOUT)`,
      ),
      failures.join('\n'),
    )
    assert.ok(
      failures.includes(
        `error: GET /api/2.0/mlflow/runs/get: The MLflow tracking server at ${fake.url.origin} gave no usable answer: connection closed without an answer (ECONNRESET)`,
      ),
      failures.join('\n'),
    )
    for (const line of logged) {
      assert.doesNotMatch(line, /\?|Basic |scrypt:|pbkdf2:/, line)
      assert.ok(!line.includes(ALICE.password) && !line.includes(ADMIN.password), line)
    }
  })

  it('relays a create MLflow made when the store cannot record the creator grant, logs it, and answers store writes 503', GUARD, async () => {
    const good = await readFile(storePath)
    // A bad hand edit: the store keeps serving the last good state and refuses writes.
    await writeFile(storePath, '{"version": 1,')
    const before = fake.seen.length
    const created = await call(serve.url, 'POST', '/api/2.0/mlflow/experiments/create', {body: {name: 'while-broken'}})
    assert.equal(created.status, 200, created.body)
    const id = String(json(created).experiment_id)
    assert.equal(fake.seen.slice(before).filter((request) => request.url.pathname.endsWith('/experiments/create')).length, 1, 'sent once')
    assert.ok(
      logged.some((line) =>
        line.startsWith(
          `error: POST /api/2.0/mlflow/experiments/create by alice: MLflow made the change, but its creator was not given MANAGE on the new experiment: The auth store ${storePath} is not valid JSON`,
        ),
      ),
      logged.join('\n'),
    )

    const refused = await call(serve.url, 'POST', '/api/2.0/mlflow/users/create', {body: {password: 'bob-password-12345', username: 'bob'}, credentials: ADMIN})
    assert.equal(refused.status, 503)
    assert.deepEqual(json(refused), {
      error_code: 'TEMPORARILY_UNAVAILABLE',
      message: 'The auth store of mlflowctl serve cannot be written right now; nothing was changed. Its log says why.',
    })
    assert.equal(await readFile(storePath, 'utf8'), '{"version": 1,', 'the broken file is left alone')

    // Repaired: the next create records its grant again; the one missed stays missed.
    await writeFile(storePath, good)
    const again = await call(serve.url, 'POST', '/api/2.0/mlflow/experiments/create', {body: {name: 'after-repair'}})
    assert.equal(again.status, 200)
    const rows = (await readStoreFiles(storePath)).role_permissions
    assert.ok(rows.some((row) => row.resource_pattern === String(json(again).experiment_id) && row.permission === 'MANAGE'))
    assert.ok(!rows.some((row) => row.resource_pattern === id))
  })
})
