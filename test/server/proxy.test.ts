/**
 * The forwarding layer of `mlflowctl serve` against fake upstreams built with node:http on
 * 127.0.0.1:0 (the real-MLflow tests come with serve itself). No timing assertions: every wait is
 * for an event.
 */
import assert from 'node:assert/strict'
import {type ChildProcess, execFile, spawn} from 'node:child_process'
import {createHash} from 'node:crypto'
import {once} from 'node:events'
import {mkdtemp, readFile, rm} from 'node:fs/promises'
import {
  createServer,
  type IncomingHttpHeaders,
  type IncomingMessage,
  request as httpRequest,
  type Server,
  type ServerOptions,
  type ServerResponse,
} from 'node:http'
import {createServer as createHttpsServer, Server as HttpsServer} from 'node:https'
import {createConnection, createServer as createNetServer, type Socket} from 'node:net'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {Readable} from 'node:stream'
import {after, describe, it} from 'node:test'
import {fileURLToPath, pathToFileURL} from 'node:url'
import {promisify} from 'node:util'
import {gzipSync} from 'node:zlib'

import {createUpstream, type ForwardOptions, READ_AHEAD_BYTES, type Upstream, UpstreamError, type UpstreamOptions} from '../../src/server/proxy.js'

const root = fileURLToPath(new URL('../..', import.meta.url))
// Only so that a broken abort fails instead of hanging: nothing here waits on a clock.
const HANG_GUARD_MS = 120_000

// ---------- helpers ----------

interface Seen {
  body: Buffer
  headers: IncomingHttpHeaders
  method: string
  rawHeaders: string[]
  remotePort: number
  url: string
}

type Handler = (req: IncomingMessage, res: ServerResponse, body: Buffer) => void

interface FakeUpstream {
  close(): Promise<void>
  port: number
  seen: Seen[]
  server: Server
  url: URL
}

const cleanups: Array<() => Promise<void>> = []
after(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup()
})

async function listen(server: Server | ReturnType<typeof createNetServer>, port = 0): Promise<number> {
  server.listen(port, '127.0.0.1')
  await once(server, 'listening')
  return (server.address() as {port: number}).port
}

async function closeServer(server: Server): Promise<void> {
  server.closeAllConnections()
  await new Promise((resolve) => {
    server.close(resolve)
  })
}

/** Echoes what it saw as JSON unless given a handler; `raw` handlers get the request unread. */
async function fakeUpstream(
  handler?: Handler,
  options: {port?: number; raw?: (req: IncomingMessage, res: ServerResponse) => void; server?: Server} = {},
): Promise<FakeUpstream> {
  const seen: Seen[] = []
  const server = options.server ?? createServer()
  server.on('request', (req: IncomingMessage, res: ServerResponse) => {
    if (options.raw) {
      options.raw(req, res)
      return
    }

    const chunks: Buffer[] = []
    req.on('data', (chunk: Buffer) => chunks.push(chunk))
    req.on('end', () => {
      const body = Buffer.concat(chunks)
      const entry = {body, headers: req.headers, method: req.method!, rawHeaders: req.rawHeaders, remotePort: req.socket.remotePort!, url: req.url!}
      seen.push(entry)
      if (handler) handler(req, res, body)
      else {
        res.setHeader('Content-Type', 'application/json')
        res.end(JSON.stringify({...entry, body: body.toString('utf8')}))
      }
    })
  })
  const port = await listen(server, options.port)
  const scheme = server instanceof HttpsServer ? 'https' : 'http'
  const fake = {close: () => closeServer(server), port, seen, server, url: new URL(`${scheme}://127.0.0.1:${port}`)}
  cleanups.push(fake.close)
  return fake
}

interface Proxy {
  port: number
  upstream: Upstream
}

/** A proxy server in this process: each request is forwarded, with `forwardOptions` when given. */
async function startProxy(
  options: UpstreamOptions,
  forwardOptions?: (req: IncomingMessage) => ForwardOptions,
  serverOptions: ServerOptions = {},
): Promise<Proxy> {
  const upstream = createUpstream(options)
  const server = createServer(serverOptions, (req, res) => {
    void upstream.forward(req, res, forwardOptions?.(req))
  })
  const port = await listen(server)
  cleanups.push(async () => {
    await closeServer(server)
    await upstream.close()
  })
  return {port, upstream}
}

interface Answer {
  body: Buffer
  complete: boolean
  headers: IncomingHttpHeaders
  rawHeaders: string[]
  status: number
  statusMessage: string
}

/** The whole answer, also a truncated one ('close' comes after an aborted body; `complete` says which). */
function collectAnswer(res: IncomingMessage, resolve: (answer: Answer) => void): void {
  const chunks: Buffer[] = []
  res.on('data', (chunk: Buffer) => chunks.push(chunk))
  res.on('error', () => {})
  res.on('close', () =>
    resolve({
      body: Buffer.concat(chunks),
      complete: res.complete,
      headers: res.headers,
      rawHeaders: res.rawHeaders,
      status: res.statusCode!,
      statusMessage: res.statusMessage!,
    }),
  )
}

function call(
  port: number,
  options: {body?: Buffer | string; headers?: Record<string, string | string[]>; method?: string; path?: string} = {},
): Promise<Answer> {
  // An explicit length: for DELETE and OPTIONS Node's client would send the body unframed.
  const headers = options.body === undefined ? options.headers : {'Content-Length': String(Buffer.byteLength(options.body)), ...options.headers}
  return new Promise((resolve, reject) => {
    const req = httpRequest({agent: false, headers, host: '127.0.0.1', method: options.method ?? 'GET', path: options.path ?? '/', port}, (res) =>
      collectAnswer(res, resolve),
    )
    req.on('error', reject)
    req.end(options.body)
  })
}

/** Sends bytes as they are and returns everything the server sent until it closed the connection. */
function raw(port: number, data: Buffer | string): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = createConnection(port, '127.0.0.1', () => socket.write(data))
    const chunks: Buffer[] = []
    socket.on('data', (chunk: Buffer) => chunks.push(chunk))
    socket.on('error', reject)
    socket.on('close', () => resolve(Buffer.concat(chunks).toString('latin1')))
  })
}

function parseRaw(text: string): {body: string; headers: Array<[string, string]>; status: number} {
  const end = text.indexOf('\r\n\r\n')
  const [statusLine, ...lines] = text.slice(0, end).split('\r\n')
  return {
    body: text.slice(end + 4),
    headers: lines.map((line) => [line.slice(0, line.indexOf(':')).toLowerCase(), line.slice(line.indexOf(':') + 1).trim()]),
    status: Number(statusLine!.split(' ')[1]),
  }
}

async function freePort(): Promise<number> {
  const server = createNetServer()
  const port = await listen(server)
  await new Promise((resolve) => {
    server.close(resolve)
  })
  return port
}

function json(answer: Answer): Record<string, unknown> {
  return JSON.parse(answer.body.toString('utf8')) as Record<string, unknown>
}

// ---------- pass-through ----------

describe('forward: what passes through', {timeout: HANG_GUARD_MS}, () => {
  it('passes method, path, query (byte for byte), body and ordinary headers', async () => {
    const fake = await fakeUpstream()
    const proxy = await startProxy({upstream: fake.url})
    const path = "/api/2.0/mlflow/runs/search?filter=metrics.acc%20%3E%200.5&a=1&a=2&x=a+b&bad=%zz&e=&u=%E2%98%83&s=~!*()'&slash=%2F"
    const answer = await call(proxy.port, {
      body: '{"experiment_ids":["1"]}',
      headers: {'Content-Type': 'application/json', Cookie: 'a=1', 'User-Agent': 'mlflow-python-client/3.1', 'X-MLflow-Workspace': 'team-a'},
      method: 'POST',
      path,
    })
    assert.equal(answer.status, 200)
    const seen = fake.seen[0]!
    assert.equal(seen.method, 'POST')
    assert.equal(seen.url, path)
    assert.equal(seen.body.toString(), '{"experiment_ids":["1"]}')
    assert.equal(seen.headers['content-type'], 'application/json')
    assert.equal(seen.headers['content-length'], '24')
    assert.equal(seen.headers.cookie, 'a=1')
    assert.equal(seen.headers['user-agent'], 'mlflow-python-client/3.1')
    assert.equal(seen.headers['x-mlflow-workspace'], 'team-a')
    for (const method of ['GET', 'PATCH', 'DELETE', 'PUT', 'OPTIONS']) {
      const each = await call(proxy.port, {body: method === 'GET' ? undefined : 'x', method, path: '/m'})
      assert.equal(json(each).method, method)
    }
  })

  it('sends the body the caller already read, and a path the caller chose', async () => {
    const fake = await fakeUpstream()
    const upstream = createUpstream({upstream: fake.url})
    cleanups.push(() => upstream.close())
    const server = createServer(async (req, res) => {
      for await (const _chunk of req) {
        // read, as serve does for small JSON bodies
      }

      await upstream.forward(req, res, {body: Buffer.from('{"rewritten":true}'), path: '/api/2.0/mlflow/runs/search?x=1'})
    })
    const port = await listen(server)
    cleanups.push(() => closeServer(server))
    const answer = await call(port, {body: 'original body', headers: {'Content-Type': 'application/json'}, method: 'POST', path: '/original'})
    assert.equal(answer.status, 200)
    assert.equal(fake.seen[0]!.url, '/api/2.0/mlflow/runs/search?x=1')
    assert.equal(fake.seen[0]!.body.toString(), '{"rewritten":true}')
    assert.equal(fake.seen[0]!.headers['content-length'], '18')
  })

  it('passes status, reason, headers (every Set-Cookie) and both body framings back', async () => {
    const fake = await fakeUpstream((req, res) => {
      if (req.url === '/chunked') {
        res.write('part one, ')
        res.end('part two')
        return
      }

      res.writeHead(201, 'Made It', [
        ['Set-Cookie', 'a=1; Path=/'],
        ['Set-Cookie', 'b=2; HttpOnly'],
        ['X-Custom', 'v'],
        ['Content-Type', 'text/plain'],
        ['Content-Length', '5'],
      ])
      res.end('hello')
    })
    const proxy = await startProxy({upstream: fake.url})
    const answer = await call(proxy.port, {path: '/fixed'})
    assert.equal(answer.status, 201)
    assert.equal(answer.statusMessage, 'Made It')
    assert.deepEqual(answer.headers['set-cookie'], ['a=1; Path=/', 'b=2; HttpOnly'])
    assert.equal(answer.headers['x-custom'], 'v')
    assert.equal(answer.headers['content-length'], '5')
    assert.equal(answer.headers['transfer-encoding'], undefined)
    assert.equal(answer.body.toString(), 'hello')

    const chunked = await call(proxy.port, {path: '/chunked'})
    assert.equal(chunked.headers['transfer-encoding'], 'chunked')
    assert.equal(chunked.headers['content-length'], undefined)
    assert.equal(chunked.body.toString(), 'part one, part two')
  })

  it('answers HEAD with the upstream headers and no body, and passes 204 and 304', async () => {
    const fake = await fakeUpstream((req, res) => {
      if (req.url === '/204') res.writeHead(204).end()
      else if (req.url === '/304') res.writeHead(304, {ETag: '"x"'}).end()
      else
        res.writeHead(200, {'Content-Length': '1234', 'Content-Type': 'application/octet-stream'}).end(req.method === 'HEAD' ? undefined : Buffer.alloc(1234))
    })
    const proxy = await startProxy({upstream: fake.url})
    const head = await call(proxy.port, {method: 'HEAD', path: '/artifact'})
    assert.equal(head.status, 200)
    assert.equal(head.headers['content-length'], '1234')
    assert.equal(head.body.length, 0)
    assert.equal(fake.seen[0]!.method, 'HEAD')
    assert.equal((await call(proxy.port, {path: '/204'})).status, 204)
    const notModified = await call(proxy.port, {headers: {'If-None-Match': '"x"'}, path: '/304'})
    assert.equal(notModified.status, 304)
    assert.equal(notModified.headers.etag, '"x"')
    // A HEAD on the same pooled connection afterwards still works: the framing stayed in step.
    assert.equal((await call(proxy.port, {method: 'GET', path: '/artifact'})).body.length, 1234)
  })

  it("answers the client's Expect: 100-continue itself and streams the body without Expect", async () => {
    const fake = await fakeUpstream()
    const proxy = await startProxy({upstream: fake.url})
    const answer = await new Promise<Answer>((resolve, reject) => {
      const req = httpRequest(
        {agent: false, headers: {'Content-Length': '5', Expect: '100-continue'}, host: '127.0.0.1', method: 'PUT', path: '/upload', port: proxy.port},
        (res) => collectAnswer(res, resolve),
      )
      req.on('error', reject)
      req.on('continue', () => req.end('hello'))
    })
    assert.equal(answer.status, 200)
    assert.equal(fake.seen[0]!.body.toString(), 'hello')
    assert.equal(fake.seen[0]!.headers.expect, undefined)
  })

  it('keeps upstream connections alive and reuses them', async () => {
    const fake = await fakeUpstream()
    const proxy = await startProxy({upstream: fake.url})
    await call(proxy.port, {path: '/one'})
    await call(proxy.port, {path: '/two'})
    await call(proxy.port, {body: 'x', method: 'POST', path: '/three'})
    assert.equal(fake.seen.length, 3)
    assert.equal(new Set(fake.seen.map((seen) => seen.remotePort)).size, 1)
  })

  it('does not cut a slow answer when the idle-connection timeout is shorter', async () => {
    const fake = await fakeUpstream((_req, res) => {
      res.write('first ')
      setTimeout(() => res.end('last'), 300)
    })
    const proxy = await startProxy({idleSocketTimeoutMs: 20, upstream: fake.url})
    const answer = await call(proxy.port)
    assert.equal(answer.complete, true)
    assert.equal(answer.body.toString(), 'first last')
  })

  it("sends the path under the upstream's prefix, and refuses a request target that is not a path", async () => {
    const fake = await fakeUpstream()
    const proxy = await startProxy({upstream: new URL(`${fake.url.href}mlflow/`)})
    await call(proxy.port, {path: '/api/2.0/mlflow/experiments/get?experiment_id=1'})
    assert.equal(fake.seen[0]!.url, '/mlflow/api/2.0/mlflow/experiments/get?experiment_id=1')

    const absolute = parseRaw(await raw(proxy.port, 'GET http://elsewhere/api/2.0/mlflow/users/list HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n'))
    assert.equal(absolute.status, 400)
    assert.equal((JSON.parse(absolute.body) as {error_code: string}).error_code, 'BAD_REQUEST')
    assert.equal(fake.seen.length, 1)
  })

  it('talks to an https upstream with a given CA, and reports an untrusted certificate as 502', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'mlflowctl-proxy-'))
    cleanups.push(() => rm(dir, {force: true, recursive: true}))
    await promisify(execFile)(
      'openssl',
      [
        'req',
        '-x509',
        '-newkey',
        'ec',
        '-pkeyopt',
        'ec_paramgen_curve:prime256v1',
        '-nodes',
        '-keyout',
        'key.pem',
        '-out',
        'cert.pem',
        '-days',
        '1',
        '-subj',
        '/CN=127.0.0.1',
        '-addext',
        'subjectAltName=IP:127.0.0.1',
      ],
      {cwd: dir},
    )
    const cert = await readFile(join(dir, 'cert.pem'))
    const server = createHttpsServer({cert, key: await readFile(join(dir, 'key.pem'))})
    const fake = await fakeUpstream(undefined, {server})
    assert.equal(fake.url.protocol, 'https:')

    const trusted = await startProxy({tls: {ca: cert}, upstream: fake.url})
    const answer = await call(trusted.port, {path: '/api/2.0/mlflow/experiments/search'})
    assert.equal(answer.status, 200)
    assert.equal(json(answer).url, '/api/2.0/mlflow/experiments/search')

    const untrusted = await startProxy({upstream: fake.url})
    const refused = await call(untrusted.port)
    assert.equal(refused.status, 502)
    assert.match(String(json(refused).message), /self-signed certificate/)
  })
})

// ---------- headers the proxy controls ----------

describe('forward: headers', {timeout: HANG_GUARD_MS}, () => {
  it('removes hop-by-hop request headers, and those Connection names', async () => {
    const fake = await fakeUpstream()
    const proxy = await startProxy({upstream: fake.url})
    const request = [
      'POST /api/2.0/mlflow/runs/create HTTP/1.1',
      'Host: proxy.example',
      'Connection: close, X-Hop, Upgrade',
      'X-Hop: secret',
      'Keep-Alive: timeout=99',
      'TE: trailers',
      'Trailer: X-Later',
      'Upgrade: websocket',
      'Proxy-Connection: keep-alive',
      'Proxy-Authorization: Basic Zm9vOmJhcg==',
      'HTTP2-Settings: AAMAAABkAAQCAAAAAAIAAAAA',
      'X-Kept: yes',
      'Content-Length: 2',
      '',
      '{}',
    ].join('\r\n')
    const answer = parseRaw(await raw(proxy.port, request))
    assert.equal(answer.status, 200)
    const headers = fake.seen[0]!.headers
    for (const name of ['x-hop', 'keep-alive', 'te', 'trailer', 'upgrade', 'proxy-connection', 'proxy-authorization', 'http2-settings'])
      assert.equal(headers[name], undefined, name)
    assert.notEqual(headers.connection, 'close, X-Hop, Upgrade')
    assert.equal(headers['x-kept'], 'yes')
    assert.equal(fake.seen[0]!.body.toString(), '{}')
  })

  it('keeps the headers that say how the body is read, even when Connection names them', async () => {
    const fake = await fakeUpstream()
    const proxy = await startProxy({upstream: fake.url})
    const body = gzipSync('{}')
    const head = [
      'POST /api/2.0/mlflow/runs/create HTTP/1.1',
      'Host: proxy.example',
      'Connection: close, Content-Encoding, Content-Type, Content-Length',
      'Content-Type: application/json',
      'Content-Encoding: gzip',
      `Content-Length: ${body.length}`,
      '',
      '',
    ].join('\r\n')
    const answer = parseRaw(await raw(proxy.port, Buffer.concat([Buffer.from(head), body])))
    assert.equal(answer.status, 200)
    const headers = fake.seen[0]!.headers
    assert.equal(headers['content-encoding'], 'gzip')
    assert.equal(headers['content-type'], 'application/json')
    assert.deepEqual(fake.seen[0]!.body, body)
  })

  it('removes hop-by-hop response headers, and those Connection names', async () => {
    const fake = await fakeUpstream((_req, res) => {
      res.writeHead(200, [
        ['Connection', 'keep-alive, X-Upstream-Hop'],
        ['X-Upstream-Hop', 'internal'],
        ['Keep-Alive', 'timeout=99'],
        ['Proxy-Authenticate', 'Basic realm="upstream"'],
        ['Trailer', 'Expires'],
        ['Upgrade', 'h2c'],
        ['X-Kept', 'yes'],
      ])
      res.end('ok')
    })
    const proxy = await startProxy({upstream: fake.url})
    const answer = await call(proxy.port)
    assert.equal(answer.status, 200)
    for (const name of ['x-upstream-hop', 'proxy-authenticate', 'trailer', 'upgrade']) assert.equal(answer.headers[name], undefined, name)
    assert.notEqual(answer.headers['keep-alive'], 'timeout=99')
    assert.equal(answer.headers['x-kept'], 'yes')
    assert.equal(answer.body.toString(), 'ok')
  })

  it('strips credentials and identity headers, and sets Host, X-Forwarded-* and the identity itself', async () => {
    const fake = await fakeUpstream()
    const proxy = await startProxy({upstream: fake.url}, (req) => ({identity: req.headers['x-test-identity'] as string | undefined}))
    const spoofed = {
      Authorization: 'Basic YWRtaW46cGFzc3dvcmQxMjM0',
      Forwarded: 'for=6.6.6.6;proto=https;host=evil',
      'Remote-User': 'admin',
      'X-Auth-Request-Email': 'admin@example.com',
      'X-Auth-Request-User': 'admin',
      'X-Authenticated-User': 'admin',
      'X-Forwarded-Email': 'admin@example.com',
      'X-Forwarded-For': '6.6.6.6',
      'X-Forwarded-Groups': 'admins',
      'X-Forwarded-Host': 'evil.example',
      'X-Forwarded-Preferred-Username': 'admin',
      'X-Forwarded-Proto': 'https',
      'X-Forwarded-User': 'admin',
      'X-MLflow-User': 'admin',
      'X-Real-IP': '6.6.6.6',
      'X-Remote-User': 'admin',
      'X-User': 'admin',
      'X-Username': 'admin',
    }
    await call(proxy.port, {headers: {...spoofed, Host: 'mlflow.example.com', 'X-Test-Identity': 'alice'}, path: '/api/2.0/mlflow/experiments/search'})
    const headers = fake.seen[0]!.headers
    assert.equal(headers.authorization, undefined)
    for (const name of Object.keys(spoofed)
      .map((name) => name.toLowerCase())
      .filter((name) => !['x-forwarded-for', 'x-forwarded-host', 'x-forwarded-proto', 'x-forwarded-user'].includes(name))) {
      assert.equal(headers[name], undefined, name)
    }

    assert.equal(headers.host, `127.0.0.1:${fake.port}`)
    assert.equal(headers['x-forwarded-for'], '127.0.0.1')
    assert.equal(headers['x-forwarded-proto'], 'http')
    assert.equal(headers['x-forwarded-host'], 'mlflow.example.com')
    assert.equal(headers['x-forwarded-user'], 'alice')
    // One line each: replaced, not appended to.
    assert.equal(fake.seen[0]!.rawHeaders.filter((name) => name.toLowerCase() === 'x-forwarded-for').length, 1)
    assert.equal(fake.seen[0]!.rawHeaders.filter((name) => name.toLowerCase() === 'host').length, 1)

    // Without an identity, no identity header at all; a username Node cannot send is percent-encoded.
    await call(proxy.port, {headers: spoofed})
    assert.equal(fake.seen[1]!.headers['x-forwarded-user'], undefined)
    await call(proxy.port, {headers: {'X-Test-Identity': 'zoë smith'}})
    assert.equal(fake.seen[2]!.headers['x-forwarded-user'], 'zo%C3%AB%20smith')
  })
})

// ---------- request smuggling ----------

describe('forward: request smuggling guard', {timeout: HANG_GUARD_MS}, () => {
  it('Node itself answers 400 to Content-Length with Transfer-Encoding, bad or doubled lengths; nothing reaches the upstream', async () => {
    const fake = await fakeUpstream()
    const proxy = await startProxy({upstream: fake.url})
    const requests = [
      'POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n',
      'POST / HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n',
      'POST / HTTP/1.1\r\nHost: x\r\nContent-Length: +5\r\n\r\nhello',
      'POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello',
      'POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n\r\nhello',
    ]
    for (const request of requests) {
      assert.equal(parseRaw(await raw(proxy.port, request)).status, 400, request)
    }

    assert.equal(fake.seen.length, 0)
  })

  it('refuses with 400 what Node lets through: Content-Length with Transfer-Encoding (lenient parser), codings other than chunked', async () => {
    const fake = await fakeUpstream()
    const proxy = await startProxy({upstream: fake.url}, undefined, {insecureHTTPParser: true})
    const requests = [
      'POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n0\r\n\r\n',
      'POST /b HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n0\r\n\r\n',
      'POST /c HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip, chunked\r\nConnection: close\r\n\r\n0\r\n\r\n',
    ]
    for (const request of requests) {
      const answer = parseRaw(await raw(proxy.port, request))
      assert.equal(answer.status, 400, request)
      assert.equal((JSON.parse(answer.body) as {error_code: string}).error_code, 'BAD_REQUEST')
    }

    assert.equal(fake.seen.length, 0)
  })

  it('frames a chunked DELETE body explicitly, so a request hidden in it stays body (GHSA-ggv3-7p47-pfv8)', async () => {
    // Small bodies are read whole first and sent with a Content-Length; larger ones stream, chunked.
    for (const padding of [0, READ_AHEAD_BYTES]) await chunkedDelete(padding)
  })

  async function chunkedDelete(padding: number) {
    const fake = await fakeUpstream()
    const proxy = await startProxy({upstream: fake.url})
    const hidden = 'GET /secret HTTP/1.1\r\nHost: x\r\n\r\n' + ' '.repeat(padding)
    const request = `DELETE /api/2.0/mlflow/experiments/delete HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nConnection: keep-alive, upgrade\r\n\r\n${hidden.length.toString(16)}\r\n${hidden}\r\n0\r\n\r\n`
    const socket = createConnection(proxy.port, '127.0.0.1', () => socket.write(request))
    await once(socket, 'data')
    socket.destroy()
    // A second request through the proxy: anything smuggled on the first upstream connection would be in before it.
    await call(proxy.port, {path: '/after'})
    assert.deepEqual(
      fake.seen.map((seen) => `${seen.method} ${seen.url}`),
      ['DELETE /api/2.0/mlflow/experiments/delete', 'GET /after'],
    )
    assert.equal(fake.seen[0]!.body.toString(), hidden)
    if (padding === 0) {
      assert.equal(fake.seen[0]!.headers['content-length'], String(hidden.length))
    } else {
      assert.equal(fake.seen[0]!.headers['transfer-encoding'], 'chunked')
      assert.equal(fake.seen[0]!.headers.connection, 'close')
    }
  }
})

// ---------- failures ----------

describe('forward: upstream failures', {timeout: HANG_GUARD_MS}, () => {
  it('answers 503 JSON while the upstream refuses connections, and works again once it is back', async () => {
    const port = await freePort()
    const upstreamUrl = new URL(`http://127.0.0.1:${port}`)
    const errors: Error[] = []
    const proxy = await startProxy({onError: (error) => errors.push(error), upstream: upstreamUrl})
    for (const method of ['GET', 'POST']) {
      const down = await call(proxy.port, {body: method === 'POST' ? '{"name":"x"}' : undefined, method, path: '/api/2.0/mlflow/experiments/create'})
      assert.equal(down.status, 503)
      assert.equal(down.headers['content-type'], 'application/json')
      assert.deepEqual(json(down), {
        error_code: 'TEMPORARILY_UNAVAILABLE',
        message: `The MLflow tracking server at http://127.0.0.1:${port} is not reachable: connection refused (ECONNREFUSED)`,
      })
    }

    assert.equal(errors.length, 2)
    const fake = await fakeUpstream(undefined, {port})
    const back = await call(proxy.port, {path: '/api/2.0/mlflow/experiments/search'})
    assert.equal(back.status, 200)
    assert.equal(fake.seen.length, 1)
  })

  it('answers 502 JSON when the upstream drops the connection before answering, or answers garbage', async () => {
    const fake = await fakeUpstream(undefined, {raw: (req) => req.socket.destroy()})
    const reported: Array<{method: string; path: string; status: number}> = []
    const proxy = await startProxy({onError: (error, request) => reported.push({...request, status: error.status}), upstream: fake.url})
    const dropped = await call(proxy.port, {path: '/x?token=secret'})
    assert.equal(dropped.status, 502)
    assert.deepEqual(json(dropped), {
      error_code: 'TEMPORARILY_UNAVAILABLE',
      message: `The MLflow tracking server at ${fake.url.origin} gave no usable answer: connection closed without an answer (ECONNRESET)`,
    })
    // Reported for the log without the query, which may carry anything.
    assert.deepEqual(reported, [{method: 'GET', path: '/x', status: 502}])

    const garbage = createNetServer((socket) => {
      socket.resume() // read, or the proxy's closing of the connection is never seen
      socket.end('SSH-2.0-OpenSSH_9.6\r\n\r\n')
    })
    const garbagePort = await listen(garbage)
    cleanups.push(
      () =>
        new Promise((resolve) => {
          garbage.close(() => resolve())
        }),
    )
    const broken = await startProxy({upstream: new URL(`http://127.0.0.1:${garbagePort}/prefix`)})
    const answer = await call(broken.port)
    assert.equal(answer.status, 502)
    assert.match(
      String(json(answer).message),
      new RegExp(`^The MLflow tracking server at http://127\\.0\\.0\\.1:${garbagePort}/prefix gave no usable answer: invalid HTTP answer`),
    )
  })

  it('gives up on a connection that does not open (here: a TLS handshake never answered) with 504', async () => {
    const mute = createNetServer((socket) => socket.resume())
    const port = await listen(mute)
    cleanups.push(
      () =>
        new Promise((resolve) => {
          mute.close(() => resolve())
        }),
    )
    const proxy = await startProxy({connectTimeoutMs: 50, upstream: new URL(`https://127.0.0.1:${port}`)})
    const answer = await call(proxy.port)
    assert.equal(answer.status, 504)
    assert.deepEqual(json(answer), {
      error_code: 'DEADLINE_EXCEEDED',
      message: `The MLflow tracking server at https://127.0.0.1:${port} did not answer in time: no connection within 50 ms (ETIMEDOUT)`,
    })
  })

  it('answers 504 JSON when the upstream takes the request and never answers, counting from the end of the body', async () => {
    const hanging = new Set<ServerResponse>()
    let bodyReceived!: () => void
    const received = new Promise<void>((resolve) => {
      bodyReceived = resolve
    })
    const fake = await fakeUpstream((_req, res) => {
      hanging.add(res)
      bodyReceived()
    })
    cleanups.push(async () => {
      for (const res of hanging) res.destroy()
    })
    const reported: Array<{method: string; path: string; status: number}> = []
    const proxy = await startProxy({onError: (error, request) => reported.push({...request, status: error.status}), responseTimeoutMs: 100, upstream: fake.url})
    const answer = await call(proxy.port, {path: '/api/2.0/mlflow/runs/search?q=1'})
    assert.equal(answer.status, 504)
    assert.deepEqual(json(answer), {
      error_code: 'DEADLINE_EXCEEDED',
      message: `The MLflow tracking server at ${fake.url.origin} did not answer in time: no answer within 100 ms (ETIMEDOUT)`,
    })
    assert.deepEqual(reported, [{method: 'GET', path: '/api/2.0/mlflow/runs/search', status: 504}])

    // A slow upload is not a slow upstream: the clock starts once the whole body is sent.
    const slowFake = await fakeUpstream((_req, res, body) => res.end(`got ${body.length}`))
    const slowProxy = await startProxy({responseTimeoutMs: 100, upstream: slowFake.url})
    // Larger than what is read ahead, so the upstream gets the first part before the rest is sent.
    const client = httpRequest({
      agent: false,
      headers: {'Content-Length': String(READ_AHEAD_BYTES + 6)},
      host: '127.0.0.1',
      method: 'PUT',
      path: '/upload',
      port: slowProxy.port,
    })
    client.write(Buffer.alloc(READ_AHEAD_BYTES + 3))
    await once(slowFake.server, 'request')
    // Longer than the timeout, waited for by an event the proxy cannot shorten: a second upstream
    // request of the first fake that times out meanwhile.
    await call(proxy.port, {path: '/meanwhile'})
    client.end('def')
    const [response] = (await once(client, 'response')) as [IncomingMessage]
    let text = ''
    for await (const chunk of response) text += String(chunk)
    assert.equal(response.statusCode, 200)
    assert.equal(text, `got ${READ_AHEAD_BYTES + 6}`)
    await received
  })

  it('retries once on a new connection when a pooled one turns out closed, for idempotent requests only', async () => {
    // Each upstream connection answers one request, then drops the next without answering: what a
    // pooled connection the upstream closed while idle looks like.
    const used = new WeakSet<Socket>()
    const seen: string[] = []
    const fake = await fakeUpstream(undefined, {
      raw(req, res) {
        seen.push(`${req.method} ${req.url}`)
        if (used.has(req.socket)) {
          req.socket.destroy()
          return
        }

        used.add(req.socket)
        req.resume()
        req.on('end', () => res.end('ok'))
      },
    })
    const proxy = await startProxy({upstream: fake.url})
    assert.equal((await call(proxy.port, {path: '/first'})).status, 200)
    // A POST is not sent twice: it may have been acted on.
    assert.equal((await call(proxy.port, {body: '{}', method: 'POST', path: '/second'})).status, 502)
    assert.deepEqual(seen, ['GET /first', 'POST /second'])
    // The pool's connection is open again (a fresh one, answered); the next GET on it is retried.
    assert.equal((await call(proxy.port, {path: '/third'})).status, 200)
    assert.equal((await call(proxy.port, {path: '/fourth'})).status, 200)
    assert.deepEqual(seen.slice(2), ['GET /third', 'GET /fourth', 'GET /fourth'])
  })

  it('destroys the client connection when the upstream fails mid-answer (a truncated answer, never a clean one)', async () => {
    const fake = await fakeUpstream((req, res) => {
      if (req.url === '/fixed') res.writeHead(200, {'Content-Length': '1000'})
      res.write('only the beginning')
      // Wait until the beginning has gone out, then break the connection.
      setImmediate(() => res.socket?.destroy())
    })
    const errors: Error[] = []
    const proxy = await startProxy({onError: (error) => errors.push(error), upstream: fake.url})
    for (const path of ['/fixed', '/chunked']) {
      const answer = await call(proxy.port, {path})
      assert.equal(answer.status, 200, path)
      assert.equal(answer.complete, false, path)
      assert.ok(answer.body.length < 1000, path)
    }

    assert.equal(errors.length, 2)
  })

  it('cuts an answer that stops for longer than the upstream timeout, and says so in the log', async () => {
    const stalled = new Set<ServerResponse>()
    const fake = await fakeUpstream((_req, res) => {
      stalled.add(res)
      res.writeHead(200, {'Content-Length': '1000'})
      res.write('the beginning, then nothing')
    })
    cleanups.push(async () => {
      for (const res of stalled) res.destroy()
    })
    const reported: Array<{message: string; status: number}> = []
    const proxy = await startProxy({
      onError: (error) => reported.push({message: error.message, status: error.status}),
      responseTimeoutMs: 100,
      upstream: fake.url,
    })
    const answer = await call(proxy.port, {path: '/download'})
    assert.equal(answer.status, 200)
    assert.equal(answer.complete, false)
    assert.equal(answer.body.toString(), 'the beginning, then nothing')
    assert.deepEqual(reported, [
      {message: `The MLflow tracking server at ${fake.url.origin} did not answer in time: the answer stopped for more than 100 ms (ETIMEDOUT)`, status: 504},
    ])
  })

  it('relays an early answer to an upload still under way, and closes that client connection after it', async () => {
    const fake = await fakeUpstream(undefined, {
      raw(req, res) {
        res.writeHead(413, {'Content-Type': 'application/json'}).end('{"error_code":"INVALID_PARAMETER_VALUE","message":"too big"}')
        req.resume()
      },
    })
    const errors: Error[] = []
    const proxy = await startProxy({onError: (error) => errors.push(error), upstream: fake.url})
    const client = httpRequest({
      agent: false,
      headers: {'Content-Length': String(4 * BLOCK)},
      host: '127.0.0.1',
      method: 'PUT',
      path: '/upload',
      port: proxy.port,
    })
    client.on('error', () => {}) // the rest of the upload may meet a closed connection
    client.write(Buffer.alloc(BLOCK))
    const [response] = (await once(client, 'response')) as [IncomingMessage]
    let text = ''
    for await (const chunk of response) text += String(chunk)
    assert.equal(response.statusCode, 413)
    assert.equal(text, '{"error_code":"INVALID_PARAMETER_VALUE","message":"too big"}')
    assert.equal(response.complete, true)
    assert.equal(response.headers.connection, 'close')
    client.end(Buffer.alloc(3 * BLOCK))
    assert.deepEqual(errors, [])
  })

  it('aborts the upstream request when the client disconnects mid-upload', async () => {
    let upstreamReq: IncomingMessage | undefined
    let firstData!: () => void
    const receiving = new Promise<void>((resolve) => {
      firstData = resolve
    })
    const fake = await fakeUpstream(undefined, {
      raw(req) {
        upstreamReq = req
        req.once('data', () => firstData())
        req.resume()
      },
    })
    const proxy = await startProxy({upstream: fake.url})
    const client = httpRequest({
      agent: false,
      headers: {'Content-Length': String(100 * 1024 * 1024)},
      host: '127.0.0.1',
      method: 'PUT',
      path: '/upload',
      port: proxy.port,
    })
    client.on('error', () => {})
    client.write(Buffer.alloc(1024 * 1024))
    await receiving
    // Not events.once: it rejects on the 'error' ('aborted') that comes first.
    const closed = new Promise((resolve) => upstreamReq!.once('close', resolve))
    const socketClosed = new Promise((resolve) => upstreamReq!.socket.once('close', resolve))
    client.destroy()
    await closed
    await socketClosed
    assert.equal(upstreamReq!.complete, false)
    const connections = await promisify(fake.server.getConnections.bind(fake.server))()
    assert.equal(connections, 0)
  })

  it('aborts the upstream request when the client disconnects mid-download', async () => {
    let upstreamRes: ServerResponse | undefined
    const fake = await fakeUpstream((_req, res) => {
      upstreamRes = res
      res.write(Buffer.alloc(64 * 1024))
      // ...and never ends: only the client can end this.
    })
    const proxy = await startProxy({upstream: fake.url})
    const client = httpRequest({agent: false, host: '127.0.0.1', path: '/download', port: proxy.port})
    client.on('error', () => {})
    client.end()
    const [response] = (await once(client, 'response')) as [IncomingMessage]
    response.on('error', () => {})
    await once(response, 'data')
    const closed = once(upstreamRes!, 'close')
    const socketClosed = once(upstreamRes!.socket!, 'close')
    client.destroy()
    await closed
    await socketClosed
    assert.equal(upstreamRes!.writableFinished, false)
    const connections = await promisify(fake.server.getConnections.bind(fake.server))()
    assert.equal(connections, 0)
  })

  it('answers 503 after close(), and request() rejects', async () => {
    const fake = await fakeUpstream()
    const proxy = await startProxy({upstream: fake.url})
    await proxy.upstream.close()
    const answer = await call(proxy.port)
    assert.equal(answer.status, 503)
    assert.match(String(json(answer).message), /shutting down/)
    await assert.rejects(proxy.upstream.request('GET', '/x'), UpstreamError)
    assert.equal(fake.seen.length, 0)
  })
})

// ---------- request() ----------

describe("request(): serve's own calls", {timeout: HANG_GUARD_MS}, () => {
  it('sends JSON or raw bodies with headers, under the prefix, and returns any status with its body', async () => {
    const fake = await fakeUpstream((req, res, body) => {
      res.writeHead(req.url!.includes('missing') ? 404 : 200, {'Content-Type': 'application/json', 'X-Echo': req.headers['x-extra'] ?? ''})
      res.end(
        JSON.stringify({body: body.toString(), contentType: req.headers['content-type'] ?? null, host: req.headers.host, method: req.method, url: req.url}),
      )
    })
    const upstream = createUpstream({upstream: new URL(`${fake.url.href}prefix`)})
    cleanups.push(() => upstream.close())

    const got = await upstream.request('GET', '/api/2.0/mlflow/runs/get?run_id=abc%20d', {headers: {'X-Extra': 'yes'}})
    assert.equal(got.status, 200)
    assert.equal(got.headers['x-echo'], 'yes')
    assert.deepEqual(JSON.parse(got.body.toString()), {
      body: '',
      contentType: null,
      host: `127.0.0.1:${fake.port}`,
      method: 'GET',
      url: '/prefix/api/2.0/mlflow/runs/get?run_id=abc%20d',
    })

    const posted = await upstream.request('POST', '/api/2.0/mlflow/experiments/get-by-name', {body: {experiment_name: 'x'}})
    assert.deepEqual(JSON.parse(posted.body.toString()), {
      body: '{"experiment_name":"x"}',
      contentType: 'application/json',
      host: `127.0.0.1:${fake.port}`,
      method: 'POST',
      url: '/prefix/api/2.0/mlflow/experiments/get-by-name',
    })

    const rawBody = await upstream.request('PUT', '/raw', {body: Buffer.from('bytes'), headers: {'Content-Type': 'text/plain'}})
    assert.equal((JSON.parse(rawBody.body.toString()) as {body: string}).body, 'bytes')

    const missing = await upstream.request('GET', '/missing')
    assert.equal(missing.status, 404)
    // On pooled connections, not one each (undici waits a turn of the event loop before it reuses
    // a connection, so calls made back to back may alternate between two).
    assert.ok(new Set(fake.seen.map((seen) => seen.remotePort)).size < fake.seen.length)
  })

  it('rejects with UpstreamError: 503 when refused, 504 on timeout, 502 on an oversized answer', async () => {
    const port = await freePort()
    const down = createUpstream({upstream: new URL(`http://127.0.0.1:${port}`)})
    cleanups.push(() => down.close())
    await assert.rejects(down.request('GET', '/x'), (error: unknown) => {
      assert.ok(error instanceof UpstreamError)
      assert.equal(error.status, 503)
      assert.equal(error.code, 'ECONNREFUSED')
      assert.deepEqual(error.body, {
        error_code: 'TEMPORARILY_UNAVAILABLE',
        message: `The MLflow tracking server at http://127.0.0.1:${port} is not reachable: connection refused (ECONNREFUSED)`,
      })
      return true
    })

    const silent = await fakeUpstream(undefined, {raw: () => {}})
    const slow = createUpstream({upstream: silent.url})
    cleanups.push(() => slow.close())
    await assert.rejects(
      slow.request('GET', '/x', {timeoutMs: 50}),
      (error: unknown) => error instanceof UpstreamError && error.status === 504 && error.code === 'ETIMEDOUT' && error.body.error_code === 'DEADLINE_EXCEEDED',
    )
    // The upstream's responseTimeoutMs is request()'s default.
    const impatient = createUpstream({responseTimeoutMs: 50, upstream: silent.url})
    cleanups.push(() => impatient.close())
    await assert.rejects(impatient.request('GET', '/x'), (error: unknown) => error instanceof UpstreamError && error.status === 504)

    const big = await fakeUpstream((_req, res) => res.end(Buffer.alloc(2048)))
    const limited = createUpstream({upstream: big.url})
    cleanups.push(() => limited.close())
    await assert.rejects(
      limited.request('GET', '/x', {maxResponseBytes: 1024}),
      (error: unknown) => error instanceof UpstreamError && error.status === 502 && /larger than 1024 bytes/.test(error.message),
    )
    assert.equal((await limited.request('GET', '/x')).body.length, 2048)
  })

  it('refuses an upstream URL it cannot use', () => {
    assert.throws(() => createUpstream({upstream: new URL('ftp://127.0.0.1')}), /http or https/)
    assert.throws(() => createUpstream({upstream: new URL('http://user:pw@127.0.0.1')}), /credentials/)
    assert.throws(() => createUpstream({upstream: new URL('http://127.0.0.1/?x=1')}), /query/)
  })
})

// ---------- streaming, in a child process whose memory is measured ----------

const BLOCK = 1024 * 1024
const BLOCKS = 300

/** 300 MiB made on the fly: one random block, stamped with its index so blocks differ. */
function generated(): {hash: Promise<string>; stream: Readable} {
  const seed = Buffer.alloc(BLOCK)
  for (let i = 0; i < BLOCK; i += 4) seed.writeUInt32LE((i * 2_654_435_761) >>> 0, i)
  const hash = createHash('sha256')
  let done!: (digest: string) => void
  const digest = new Promise<string>((resolve) => {
    done = resolve
  })
  async function* blocks() {
    for (let index = 0; index < BLOCKS; index++) {
      const block = Buffer.from(seed)
      block.writeUInt32LE(index, 0)
      hash.update(block)
      yield block
    }

    done(hash.digest('hex'))
  }

  return {hash: digest, stream: Readable.from(blocks(), {objectMode: false})}
}

async function hashStream(stream: NodeJS.ReadableStream): Promise<{bytes: number; hash: string}> {
  const hash = createHash('sha256')
  let bytes = 0
  for await (const chunk of stream) {
    hash.update(chunk as Buffer)
    bytes += (chunk as Buffer).length
  }

  return {bytes, hash: hash.digest('hex')}
}

const CHILD = `
const {createServer} = await import('node:http')
const {createUpstream} = await import(process.env.PROXY_MODULE)
const upstream = createUpstream({upstream: new URL(process.env.UPSTREAM_URL)})
const server = createServer((req, res) => { void upstream.forward(req, res) })
let baseline = 0
let peak = 0
const sample = () => { peak = Math.max(peak, process.memoryUsage.rss()) }
setInterval(sample, 10)
process.on('message', (message) => {
  if (message === 'baseline') { baseline = process.memoryUsage.rss(); peak = baseline; process.send({baseline}) }
  if (message === 'report') { sample(); process.send({baseline, peak}) }
  if (message === 'exit') process.exit(0)
})
server.listen(0, '127.0.0.1', () => process.send({port: server.address().port}))
`

async function ask<T>(child: ChildProcess, message?: string): Promise<T> {
  const answer = once(child, 'message') as Promise<[T]>
  if (message) child.send(message)
  return (await answer)[0]
}

describe('forward: streaming', {timeout: HANG_GUARD_MS}, () => {
  it('streams a 300 MiB upload and download through with flat memory', async () => {
    let served: Promise<string> | undefined
    const fake = await fakeUpstream(undefined, {
      async raw(req, res) {
        if (req.method === 'PUT') {
          const received = await hashStream(req)
          res.setHeader('Content-Type', 'application/json')
          res.end(JSON.stringify(received))
          return
        }

        const {hash, stream} = generated()
        served = hash
        stream.pipe(res) // chunked: no Content-Length
      },
    })
    const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', CHILD], {
      cwd: root,
      env: {...process.env, PROXY_MODULE: pathToFileURL(join(root, 'src/server/proxy.ts')).href, UPSTREAM_URL: fake.url.href},
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    })
    cleanups.push(async () => {
      if (child.exitCode === null) {
        child.send('exit')
        await once(child, 'exit')
      }
    })
    const {port} = await ask<{port: number}>(child)
    // Warm up (modules, pool, buffers) before the baseline.
    assert.equal((await call(port, {body: Buffer.alloc(BLOCK), method: 'PUT', path: '/warm'})).status, 200)
    await ask(child, 'baseline')

    const upload = generated()
    const uploaded = await new Promise<{bytes: number; hash: string}>((resolve, reject) => {
      const req = httpRequest(
        {
          agent: false,
          headers: {'Content-Length': String(BLOCK * BLOCKS), 'Content-Type': 'application/octet-stream'},
          host: '127.0.0.1',
          method: 'PUT',
          path: '/api/2.0/mlflow-artifacts/artifacts/1/big.bin',
          port,
        },
        (res) => {
          const chunks: Buffer[] = []
          res.on('data', (chunk: Buffer) => chunks.push(chunk))
          res.on('end', () => resolve(JSON.parse(Buffer.concat(chunks).toString()) as {bytes: number; hash: string}))
        },
      )
      req.on('error', reject)
      upload.stream.pipe(req)
    })
    assert.deepEqual(uploaded, {bytes: BLOCK * BLOCKS, hash: await upload.hash})

    const downloaded = await new Promise<{bytes: number; hash: string}>((resolve, reject) => {
      const req = httpRequest({agent: false, host: '127.0.0.1', path: '/get-artifact?path=big.bin&run_uuid=1', port}, (res) => {
        assert.equal(res.headers['transfer-encoding'], 'chunked')
        hashStream(res).then(resolve, reject)
      })
      req.on('error', reject)
      req.end()
    })
    assert.equal(downloaded.bytes, BLOCK * BLOCKS)
    assert.equal(downloaded.hash, await served)

    const {baseline, peak} = await ask<{baseline: number; peak: number}>(child, 'report')
    const growth = (peak - baseline) / 1024 / 1024
    assert.ok(growth < 150, `the proxy's RSS grew by ${growth.toFixed(1)} MiB while streaming 600 MiB`)
  })
})
