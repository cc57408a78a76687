/**
 * serve's limits on what clients hold (in process, in front of a fake MLflow, with small limits):
 * connections beyond the limit per client address, or overall, are closed as they arrive and
 * logged, and new ones work once some close; a client behind a trusted proxy is limited in its
 * requests in flight (503); headers too large or too many get 431 and are never passed on.
 */
import assert from 'node:assert/strict'
import {once} from 'node:events'
import {type ServerResponse} from 'node:http'
import {readFile} from 'node:fs/promises'
import {connect} from 'node:net'
import {after, afterEach, describe, it} from 'node:test'

import {closeAll, closeOpened, holdConnections, opened, openConnection} from '../support/held-connections.js'
import {createTestCa} from '../support/pki.js'
import {answerJson, basicAuth, call, type Pipeline, startPipeline} from '../support/serve-pipeline.js'

const ALICE = {password: 'alice-password-for-limits', username: 'alice'}

/** Answers /health at once; /health?hold=… with its head at once and its end when released. */
function holdingUpstream(held: ServerResponse[]) {
  return (request: {url: URL}, response: ServerResponse) => {
    if (request.url.pathname !== '/health') return
    if (!request.url.searchParams.has('hold')) {
      answerJson(response, 200, {ok: true})
      return
    }

    response.writeHead(200, {'content-type': 'text/plain'})
    response.write('held ')
    held.push(response)
  }
}

describe('serve: connection limits', {timeout: 60_000}, () => {
  let pipeline: Pipeline | undefined
  /** Upstream answers begun and not yet ended. */
  const held: ServerResponse[] = []
  afterEach(async () => {
    for (const response of held.splice(0)) response.end()
    await closeOpened()
    await pipeline?.close()
    pipeline = undefined
  })

  it('closes a connection beyond the limit per client address, logs it, leaves other addresses alone, and accepts again once one closes', async () => {
    pipeline = await startPipeline({handler: holdingUpstream([]), serve: {clientLimits: {maxConnectionsPerClient: 3}}})
    const port = Number(new URL(pipeline.url).port)
    const mine = await holdConnections(port, 3)

    const extra = await openConnection(port)
    assert.equal(extra.answered, false)
    assert.ok(
      pipeline.log.some((line) => line.startsWith("warning: 127.0.0.1 has 3 connections open, serve's limit per client (--max-connections-per-client)")),
      pipeline.log.join('\n'),
    )
    // Another client address is not limited by this one's connections.
    const other = await holdConnections(port, 2, '127.0.0.2')

    await closeAll(mine.splice(0, 1))
    mine.push(...(await holdConnections(port, 1)))
    await closeAll([...mine, ...other])
  })

  it('counts HTTPS connections per client address from before their handshake', async (t) => {
    const ca = await createTestCa()
    t.after(() => ca.remove())
    const {cert, key} = await ca.issue('serve', 'server')
    pipeline = await startPipeline({handler: holdingUpstream([]), serve: {clientLimits: {maxConnectionsPerClient: 2}, tls: {cert, key}}})
    const port = Number(new URL(pipeline.url).port)
    const tls = {ca: await readFile(ca.cert)}
    // A connection that never starts its handshake counts: serve accepts in order, so once the
    // TLS one after it is answered, it has been counted too.
    const silent = connect(port, '127.0.0.1')
    opened.add(silent)
    silent.on('error', () => {})
    await once(silent, 'connect')
    const mine = await holdConnections(port, 1, undefined, tls)

    assert.equal((await openConnection(port, undefined, tls)).answered, false)
    assert.ok(
      pipeline.log.some((line) => line.startsWith("warning: 127.0.0.1 has 2 connections open, serve's limit per client (--max-connections-per-client)")),
      pipeline.log.join('\n'),
    )
    await closeAll([silent])
    mine.push(...(await holdConnections(port, 1, undefined, tls)))
  })

  it('closes a connection beyond the overall limit, logs it, and accepts again once one closes', async () => {
    pipeline = await startPipeline({handler: holdingUpstream([]), serve: {clientLimits: {maxConnections: 4}}})
    const port = Number(new URL(pipeline.url).port)
    const open = [...(await holdConnections(port, 2)), ...(await holdConnections(port, 2, '127.0.0.2'))]

    const extra = await openConnection(port, '127.0.0.3')
    assert.equal(extra.answered, false)
    assert.ok(
      pipeline.log.some((line) => line.startsWith("warning: 4 client connections are open, serve's limit (--max-connections)")),
      pipeline.log.join('\n'),
    )

    await closeAll(open.splice(0, 2))
    open.push(...(await holdConnections(port, 2, '127.0.0.3')))
    await closeAll(open)
  })

  it('answers 503 to a client behind a trusted proxy with too many requests in flight, not to others, and never forwards it', async () => {
    pipeline = await startPipeline({handler: holdingUpstream(held), serve: {clientLimits: {maxConnectionsPerClient: 2}, trustedProxies: '127.0.0.1'}})
    const {url} = pipeline
    const from = (client: string) => ({headers: {'x-forwarded-for': `198.51.100.1, ${client}`}})

    // Two requests of one client in flight: the upstream has their heads and has not ended them.
    const inFlight = [call(url, 'GET', '/health?hold=1', from('203.0.113.5')), call(url, 'GET', '/health?hold=2', from('203.0.113.5'))]
    while (held.length < 2) await new Promise((resolve) => setTimeout(resolve, 20))

    const refused = await call(url, 'GET', '/health?refused=1', from('203.0.113.5'))
    assert.equal(refused.status, 503)
    assert.equal(refused.headers['retry-after'], '1')
    assert.equal(JSON.parse(refused.body).error_code, 'TEMPORARILY_UNAVAILABLE')
    assert.ok(!pipeline.upstream.started.some((line) => line.includes('refused')))
    assert.ok(
      pipeline.log.some((line) =>
        line.startsWith("warning: 203.0.113.5 (through 127.0.0.1) has 2 requests in flight, serve's limit per client (--max-connections-per-client)"),
      ),
      pipeline.log.join('\n'),
    )

    // Another client behind the proxy is served; the proxy's own connections (four now) are not limited.
    assert.equal((await call(url, 'GET', '/health', from('203.0.113.6'))).status, 200)

    for (const response of held.splice(0)) response.end('released')
    for (const answer of await Promise.all(inFlight)) assert.equal(answer.body, 'held released')
    assert.equal((await call(url, 'GET', '/health?after=1', from('203.0.113.5'))).status, 200)
  })
})

describe('serve: header limits', {timeout: 60_000}, () => {
  let pipeline: Pipeline
  after(async () => {
    await pipeline.close()
  })

  const experiment = '/api/2.0/mlflow/experiments/get?experiment_id=1'

  it('answers 431 to headers over --max-header-size bytes, passes a request below it, and answers other malformed requests as Node does', async () => {
    pipeline = await startPipeline({
      handler(request, response) {
        if (request.url.pathname === '/api/2.0/mlflow/experiments/get') answerJson(response, 200, {experiment: {experiment_id: '1'}})
      },
      serve: {clientLimits: {maxHeaderSize: 2048, maxHeaders: 20}},
    })
    await pipeline.createUser(ALICE, {1: 'READ'})

    const below = await call(pipeline.url, 'GET', `${experiment}&size=below`, {credentials: ALICE, headers: {'x-big': 'b'.repeat(1500)}})
    assert.equal(below.status, 200)
    const started = pipeline.upstream.started.length

    const over = await call(pipeline.url, 'GET', `${experiment}&size=over`, {credentials: ALICE, headers: {'x-big': 'b'.repeat(3000)}})
    assert.equal(over.status, 431)
    assert.equal(over.headers.connection, 'close')
    assert.equal(JSON.parse(over.body).error_code, 'BAD_REQUEST')
    assert.equal(pipeline.upstream.started.length, started)
    const line = pipeline.log.find((entry) => entry.includes('--max-header-size'))
    assert.match(line ?? '', /^warning: a request from 127\.0\.0\.1 with more than 2048 bytes of headers \(--max-header-size\): 431$/)
    assert.ok(!pipeline.log.join('\n').includes(basicAuth(ALICE).split(' ')[1]))

    // Serve answers header overflows itself; any other malformed request still gets Node's answer.
    const port = Number(new URL(pipeline.url).port)
    const received = await new Promise<string>((resolve) => {
      let text = ''
      const socket = connect(port, '127.0.0.1', () => socket.write('GET /health HTTP/1.1\r\nHost serve\r\n\r\n'))
      socket.on('data', (chunk: Buffer) => (text += chunk.toString('latin1')))
      socket.on('error', () => {})
      socket.on('close', () => resolve(text))
    })
    assert.equal(received, 'HTTP/1.1 400 Bad Request\r\nConnection: close\r\n\r\n')
  })

  it('answers 431 to more than --max-headers header fields and passes a request with as many', async () => {
    // With Host, Authorization and Connection, 17 more make 20 fields; 18 make 21.
    const fields = (count: number) => Object.fromEntries(Array.from({length: count}, (_, i) => [`x-field-${i}`, String(i)]))
    const atLimit = await call(pipeline.url, 'GET', `${experiment}&count=at`, {credentials: ALICE, headers: fields(17)})
    assert.equal(atLimit.status, 200)
    const started = pipeline.upstream.started.length

    const over = await call(pipeline.url, 'GET', `${experiment}&count=over`, {credentials: ALICE, headers: fields(18)})
    assert.equal(over.status, 431)
    assert.equal(over.headers.connection, 'close')
    assert.equal(JSON.parse(over.body).error_code, 'BAD_REQUEST')
    assert.equal(pipeline.upstream.started.length, started)
    assert.ok(pipeline.log.includes('warning: a request from 127.0.0.1 with more than 20 header fields (--max-headers): 431'), pipeline.log.join('\n'))
  })
})
