/**
 * serve over HTTPS, in process (startServe) in front of a fake upstream: the TLS profile, HSTS,
 * certificate reload with an upload in flight, mutual TLS, the plain-HTTP rule, and trusted
 * proxies naming the client. Certificates come from a throwaway CA made with openssl.
 */
import assert from 'node:assert/strict'
import {once} from 'node:events'
import {copyFile, mkdtemp, readFile, rm, stat, writeFile} from 'node:fs/promises'
import {createServer, type IncomingHttpHeaders, request as httpRequest, type Server} from 'node:http'
import {request as httpsRequest} from 'node:https'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {after, before, describe, it} from 'node:test'
import {connect, type ConnectionOptions, type TLSSocket} from 'node:tls'

import {UserError} from '../../src/core/errors.js'
import {ClientAddresses} from '../../src/server/client-address.js'
import {type RunningServe, type ServeOptions, startServe} from '../../src/server/serve.js'
import {createTestCa, fingerprint, type Issued, type TestCa} from '../support/pki.js'

const ADMIN_PASSWORD = 'tls-test-admin-password'
const ADMIN = `Basic ${Buffer.from(`admin:${ADMIN_PASSWORD}`).toString('base64')}`

interface Seen {
  body: Buffer
  headers: IncomingHttpHeaders
  method: string
  url: string
}

interface FakeUpstream {
  seen: Seen[]
  server: Server
  url: URL
}

const cleanups: Array<() => Promise<unknown>> = []
after(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup()
})

/** A plain MLflow stand-in: answers 200 with what it got, once the whole body is in. */
async function fakeUpstream(): Promise<FakeUpstream> {
  const seen: Seen[] = []
  const server = createServer((request, response) => {
    const chunks: Buffer[] = []
    request.on('data', (chunk: Buffer) => chunks.push(chunk))
    request.on('end', () => {
      const body = Buffer.concat(chunks)
      seen.push({body, headers: request.headers, method: request.method!, url: request.url!})
      const payload = JSON.stringify({bytes: body.length, url: request.url})
      response.writeHead(200, {'content-length': Buffer.byteLength(payload), 'content-type': 'application/json'})
      response.end(payload)
    })
  })
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  cleanups.push(() => {
    server.closeAllConnections()
    return new Promise((resolve) => server.close(resolve))
  })
  return {seen, server, url: new URL(`http://127.0.0.1:${(server.address() as {port: number}).port}`)}
}

async function tempDir(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'mlflowctl-tls-serve-'))
  cleanups.push(() => rm(dir, {force: true, recursive: true}))
  return dir
}

async function serve(upstream: FakeUpstream, options: Partial<ServeOptions> = {}): Promise<RunningServe & {logs: string[]; port: number}> {
  const logs: string[] = []
  const running = await startServe({
    env: {MLFLOW_AUTH_ADMIN_PASSWORD: ADMIN_PASSWORD},
    host: '127.0.0.1',
    log: (message) => logs.push(message),
    port: 0,
    proxyTo: upstream.url,
    storePath: join(await tempDir(), 'auth.json'),
    ...options,
  })
  cleanups.push(() => running.close())
  return {...running, logs, port: Number(new URL(running.url).port)}
}

interface Answer {
  body: string
  headers: IncomingHttpHeaders
  /** The SHA-256 fingerprint of the certificate the server presented. */
  peer: string
  status: number
}

/** One HTTPS request on a fresh connection (no pooling, no session reuse). */
function call(port: number, tls: ConnectionOptions, options: {auth?: string; path?: string} = {}): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const request = httpsRequest(
      {
        ...tls,
        agent: false,
        headers: options.auth ? {authorization: options.auth} : {},
        host: '127.0.0.1',
        path: options.path ?? '/api/2.0/mlflow/experiments/get?experiment_id=1',
        port,
      },
      (response) => {
        const peer = (response.socket as TLSSocket).getPeerCertificate().fingerprint256
        let body = ''
        response.on('data', (chunk) => (body += chunk))
        response.on('end', () => resolve({body, headers: response.headers, peer, status: response.statusCode!}))
      },
    )
    request.on('error', reject)
    request.end()
  })
}

/** A bare TLS handshake; resolves to the error it failed with, or undefined when it succeeded. */
function handshake(port: number, tls: ConnectionOptions): Promise<Error | undefined> {
  return new Promise((resolve) => {
    const socket = connect({...tls, host: '127.0.0.1', port, servername: undefined})
    socket.once('secureConnect', () => {
      // TLS 1.3 servers refuse a client certificate after the client's handshake is done: wait for
      // the server's first word (or its alert) before calling it a success.
      socket.write('GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n')
    })
    socket.once('data', () => {
      socket.destroy()
      resolve(undefined)
    })
    socket.once('error', (error) => resolve(error))
    socket.once('close', () => resolve(new Error('the server closed the connection without an answer')))
  })
}

describe('serve over HTTPS', () => {
  let ca: TestCa
  let first: Issued
  let second: Issued
  let clientCert: Issued
  let otherCa: TestCa
  let strangerCert: Issued

  before(async () => {
    ca = await createTestCa()
    otherCa = await createTestCa('another CA')
    cleanups.push(
      () => ca.remove(),
      () => otherCa.remove(),
    )
    first = await ca.issue('first', 'server')
    second = await ca.issue('second', 'server')
    clientCert = await ca.issue('alice', 'client')
    strangerCert = await otherCa.issue('mallory', 'client')
  })

  /** Certificate files at fixed paths, to be replaced in place as an operator would. */
  async function liveFiles(from: Issued): Promise<{cert: string; key: string}> {
    const dir = await tempDir()
    const files = {cert: join(dir, 'tls.crt'), key: join(dir, 'tls.key')}
    await copyFile(from.cert, files.cert)
    await copyFile(from.key, files.key)
    return files
  }

  it('answers over TLS 1.2 and 1.3 only, with forward-secret AEAD suites, and says so to the upstream', async () => {
    const upstream = await fakeUpstream()
    const running = await serve(upstream, {tls: await liveFiles(first)})
    assert.match(running.url, /^https:\/\/127\.0\.0\.1:\d+$/)
    assert.match(running.tlsSummary ?? '', /certificate "CN=first"/)
    const ca0 = await readFile(ca.cert)

    for (const version of ['TLSv1.2', 'TLSv1.3'] as const) {
      const answer = await call(running.port, {ca: ca0, maxVersion: version, minVersion: version}, {auth: ADMIN})
      assert.equal(answer.status, 200, answer.body)
      assert.equal(answer.peer, await fingerprint(first.cert))
    }

    assert.equal(upstream.seen.at(-1)!.headers['x-forwarded-proto'], 'https')
    // Old protocols and a CBC suite are refused by serve (the client here offers them at any security level).
    const old = await handshake(running.port, {ca: ca0, ciphers: 'DEFAULT@SECLEVEL=0', maxVersion: 'TLSv1.1', minVersion: 'TLSv1'})
    assert.match(String(old), /protocol version|unsupported protocol/i)
    const cbc = await handshake(running.port, {ca: ca0, ciphers: 'ECDHE-ECDSA-AES128-SHA256:ECDHE-ECDSA-AES128-SHA', maxVersion: 'TLSv1.2'})
    assert.match(String(cbc), /handshake failure|no shared cipher/i)
    // Plain HTTP on the HTTPS port is not answered as HTTP.
    const plain = await new Promise<number | string>((resolve) => {
      const request = httpRequest(
        {agent: false, headers: {authorization: ADMIN}, host: '127.0.0.1', path: '/api/2.0/mlflow/experiments/get?experiment_id=1', port: running.port},
        (response) => resolve(response.statusCode!),
      )
      request.on('error', (error) => resolve(error.message))
      request.end()
    })
    assert.notEqual(plain, 200)
    assert.equal(upstream.seen.length, 2)
  })

  it('sends Strict-Transport-Security on every HTTPS answer (configurable, or off), never over plain HTTP', async () => {
    const upstream = await fakeUpstream()
    const ca0 = await readFile(ca.cert)
    const defaults = await serve(upstream, {tls: await liveFiles(first)})
    const refused = await call(defaults.port, {ca: ca0})
    assert.equal(refused.status, 401)
    assert.equal(refused.headers['www-authenticate'], 'Basic realm="mlflow"')
    assert.equal(refused.headers['strict-transport-security'], 'max-age=31536000')
    const forwarded = await call(defaults.port, {ca: ca0}, {auth: ADMIN})
    assert.equal(forwarded.status, 200)
    assert.equal(forwarded.headers['strict-transport-security'], 'max-age=31536000')
    const health = await call(defaults.port, {ca: ca0}, {path: '/health'})
    assert.equal(health.headers['strict-transport-security'], 'max-age=31536000')

    const custom = await serve(upstream, {hsts: 'max-age=600;includeSubDomains', tls: await liveFiles(first)})
    assert.equal((await call(custom.port, {ca: ca0})).headers['strict-transport-security'], 'max-age=600; includeSubDomains')
    const off = await serve(upstream, {hsts: 'off', tls: await liveFiles(first)})
    assert.equal((await call(off.port, {ca: ca0})).headers['strict-transport-security'], undefined)

    const plain = await serve(upstream)
    assert.match(plain.url, /^http:\/\//)
    const answer = await fetch(`${plain.url}/api/2.0/mlflow/experiments/get?experiment_id=1`)
    assert.equal(answer.status, 401)
    assert.equal(answer.headers.get('strict-transport-security'), null)

    for (const bad of ['max-age=abc', 'includeSubDomains', 'max-age=1; max-age=2', 'max-age=1; always']) {
      await assert.rejects(
        serve(upstream, {hsts: bad, tls: await liveFiles(first)}),
        (error: UserError) => error.code === 'BAD_HSTS' && /max-age=SECONDS/.test(error.hint ?? ''),
      )
    }
  })

  it('reloads the certificate for new connections while an upload on an open one completes', async () => {
    const upstream = await fakeUpstream()
    const files = await liveFiles(first)
    const running = await serve(upstream, {tls: files})
    const ca0 = await readFile(ca.cert)
    const chunk = Buffer.alloc(64 * 1024, 7)
    const chunks = 32

    let markSwapped!: () => void
    const swapped = new Promise<void>((resolve) => (markSwapped = resolve))
    // A chunked upload, begun on the first certificate and left half sent.
    let uploadPeer = ''
    const uploaded = new Promise<{body: string; status: number}>((resolve, reject) => {
      const request = httpsRequest(
        {
          agent: false,
          ca: ca0,
          headers: {authorization: ADMIN, 'content-type': 'application/octet-stream'},
          host: '127.0.0.1',
          method: 'PUT',
          path: '/api/2.0/mlflow-artifacts/artifacts/1/abc/artifacts/slow.bin',
          port: running.port,
        },
        (response) => {
          let body = ''
          response.on('data', (data) => (body += data))
          response.on('end', () => resolve({body, status: response.statusCode!}))
        },
      )
      request.on('error', reject)
      request.on('socket', (socket: TLSSocket) => socket.once('secureConnect', () => (uploadPeer = socket.getPeerCertificate().fingerprint256)))
      for (let i = 0; i < chunks / 2; i++) request.write(chunk)
      cleanups.push(async () => request.destroy())
      ;(async () => {
        // The second half goes once the certificate has been swapped.
        await swapped
        for (let i = chunks / 2; i < chunks; i++) request.write(chunk)
        request.end()
      })().catch(reject)
    })

    // The file is replaced on disk, then the reload asked for (what SIGHUP does).
    await copyFile(second.cert, files.cert)
    await copyFile(second.key, files.key)
    assert.equal((await call(running.port, {ca: ca0})).peer, await fingerprint(first.cert), 'the new file was used before the reload')
    assert.match(await running.reloadTls(), /certificate "CN=second"/)
    const after = await call(running.port, {ca: ca0}, {auth: ADMIN})
    assert.equal(after.status, 200)
    assert.equal(after.peer, await fingerprint(second.cert))
    markSwapped()

    const upload = await uploaded
    assert.equal(upload.status, 200, upload.body)
    assert.equal(uploadPeer, await fingerprint(first.cert))
    const received = upstream.seen.find((seen) => seen.method === 'PUT')!
    assert.equal(received.body.length, chunk.length * chunks)
    assert.ok(received.body.every((byte) => byte === 7))
  })

  it('keeps serving the current certificate when the new files are unusable', async () => {
    const upstream = await fakeUpstream()
    const files = await liveFiles(first)
    const running = await serve(upstream, {tls: files})
    const ca0 = await readFile(ca.cert)
    // The new certificate, but still the old key: a half-finished rotation.
    await copyFile(second.cert, files.cert)
    await assert.rejects(running.reloadTls(), (error: UserError) => error.code === 'TLS_KEY_MISMATCH' && error.message.includes(files.key))
    await writeFile(files.key, 'not a key')
    await assert.rejects(running.reloadTls(), (error: UserError) => error.code === 'TLS_FILE')
    await rm(files.cert)
    await assert.rejects(running.reloadTls(), /does not exist/)
    const answer = await call(running.port, {ca: ca0}, {auth: ADMIN})
    assert.equal(answer.status, 200)
    assert.equal(answer.peer, await fingerprint(first.cert))
  })

  it('with a client CA, refuses clients without a certificate from it during the handshake', async () => {
    const upstream = await fakeUpstream()
    const running = await serve(upstream, {tls: {...(await liveFiles(first)), clientCa: ca.cert}})
    assert.match(running.tlsSummary ?? '', /client certificates required/)
    const ca0 = await readFile(ca.cert)
    const none = await handshake(running.port, {ca: ca0})
    assert.ok(none, 'a client without a certificate got an answer')
    const stranger = await handshake(running.port, {ca: ca0, cert: await readFile(strangerCert.cert), key: await readFile(strangerCert.key)})
    assert.ok(stranger, 'a client with a certificate from another CA got an answer')
    await assert.rejects(call(running.port, {ca: ca0}, {auth: ADMIN}))
    assert.equal(upstream.seen.length, 0)

    // A client certificate opens the connection; the password is still needed.
    const mutual = {ca: ca0, cert: await readFile(clientCert.cert), key: await readFile(clientCert.key)}
    assert.equal((await call(running.port, mutual)).status, 401)
    assert.equal((await call(running.port, mutual, {auth: ADMIN})).status, 200)
    assert.equal(upstream.seen.length, 1)
  })

  it('refuses unusable TLS settings before creating anything', async () => {
    const upstream = await fakeUpstream()
    const dir = await tempDir()
    const storePath = join(dir, 'auth.json')
    const start = (tls: ServeOptions['tls'], extra: Partial<ServeOptions> = {}) => serve(upstream, {storePath, tls, ...extra})
    const cases: Array<[ServeOptions['tls'], Partial<ServeOptions>, string, RegExp]> = [
      [{cert: first.cert}, {}, 'TLS_INCOMPLETE', /--tls-cert needs --tls-key/],
      [{key: first.key}, {}, 'TLS_INCOMPLETE', /--tls-key needs --tls-cert/],
      [{clientCa: ca.cert}, {}, 'TLS_INCOMPLETE', /--tls-client-ca needs HTTPS/],
      [{cert: join(dir, 'missing.crt'), key: first.key}, {}, 'TLS_FILE', /missing\.crt given by --tls-cert \(MLFLOWCTL_TLS_CERT\) does not exist/],
      [{cert: first.cert, key: second.key}, {}, 'TLS_KEY_MISMATCH', /does not belong to the certificate/],
      [{cert: first.key, key: first.key}, {}, 'TLS_FILE', /holds no PEM certificate/],
      [{cert: first.cert, clientCa: first.key, key: first.key}, {}, 'TLS_FILE', /--tls-client-ca \(MLFLOWCTL_TLS_CLIENT_CA\) holds no PEM certificate/],
      [{cert: first.cert, key: first.key}, {insecureHttp: true}, 'TLS_CONFLICT', /contradict/],
      [undefined, {trustedProxies: '127.0.0.1, proxy.example'}, 'BAD_TRUSTED_PROXY', /"proxy\.example" is not an IP address/],
      [undefined, {trustedProxies: '10.0.0.0/33'}, 'BAD_TRUSTED_PROXY', /10\.0\.0\.0\/33/],
    ]
    for (const [tls, extra, code, message] of cases) {
      await assert.rejects(start(tls, extra), (error: UserError) => {
        assert.equal(error.code, code, error.message)
        assert.match(error.message, message)
        return true
      })
      await assert.rejects(stat(storePath), {code: 'ENOENT'}, `${code}: the store was created`)
    }
  })
})

describe('serve: plain HTTP beyond loopback', () => {
  it('is refused with what to do instead, and changes nothing; on loopback it needs nothing', async () => {
    const upstream = await fakeUpstream()
    const storePath = join(await tempDir(), 'auth.json')
    for (const host of ['0.0.0.0', '::', '192.0.2.10', 'mlflow.example']) {
      await assert.rejects(serve(upstream, {host, storePath}), (error: UserError) => {
        assert.equal(error.code, 'PLAIN_HTTP_BEYOND_LOOPBACK')
        assert.equal(error.message, `serve would listen on ${host} over plain HTTP: every request carries a password, and it would cross the network in clear`)
        assert.match(error.hint ?? '', /--tls-cert FILE --tls-key FILE.*--insecure-http/)
        return true
      })
    }

    await assert.rejects(stat(storePath), {code: 'ENOENT'})

    // On loopback nothing changes: no flag needed, no warning.
    for (const host of ['127.0.0.1', '::1', 'localhost']) {
      const running = await serve(upstream, {host})
      assert.match(running.url, /^http:\/\//)
      assert.deepEqual(
        running.logs.filter((line) => line.startsWith('warning')),
        [],
      )
      await running.close()
    }
  })
})

describe('trusted proxies', () => {
  it('read X-Forwarded-For from the right, past trusted hops only, and stop at anything that is not an address', () => {
    const clients = ClientAddresses.parse('127.0.0.1, 10.0.0.0/8, ::1')
    const request = (peer: string, headers: Record<string, string>) => ({headers, socket: {encrypted: false, remoteAddress: peer}}) as never
    const cases: Array<[string, Record<string, string>, string, string]> = [
      // peer, headers → client address, protocol
      ['127.0.0.1', {}, '127.0.0.1', 'http'],
      ['::ffff:127.0.0.1', {'x-forwarded-for': '203.0.113.9', 'x-forwarded-proto': 'https'}, '203.0.113.9', 'https'],
      ['127.0.0.1', {'x-forwarded-for': '6.6.6.6, 203.0.113.9, 10.1.2.3'}, '203.0.113.9', 'http'],
      ['127.0.0.1', {'x-forwarded-for': '10.9.9.9, 10.1.2.3'}, '10.9.9.9', 'http'],
      ['127.0.0.1', {'x-forwarded-for': '[2001:db8::1]:443'}, '2001:db8::1', 'http'],
      ['127.0.0.1', {'x-forwarded-for': '198.51.100.7:5123'}, '198.51.100.7', 'http'],
      // Garbage stops the walk at the last proxy known: a sender cannot pick the client's address.
      ['127.0.0.1', {'x-forwarded-for': '6.6.6.6, unknown'}, '127.0.0.1', 'http'],
      ['127.0.0.1', {'x-forwarded-for': '6.6.6.6, unknown, 10.0.0.5'}, '10.0.0.5', 'http'],
      // The protocol is the nearest proxy's word, and only http or https.
      ['127.0.0.1', {'x-forwarded-proto': 'http, https'}, '127.0.0.1', 'https'],
      ['127.0.0.1', {'x-forwarded-proto': 'gopher'}, '127.0.0.1', 'http'],
      // From an untrusted peer, the headers count for nothing.
      ['198.51.100.1', {'x-forwarded-for': '203.0.113.9', 'x-forwarded-proto': 'https'}, '198.51.100.1', 'http'],
    ]
    for (const [peer, headers, address, protocol] of cases) {
      const client = clients.resolve(request(peer, headers))
      assert.deepEqual([client.address, client.protocol], [address, protocol], `${peer} ${JSON.stringify(headers)}`)
    }

    assert.equal(ClientAddresses.none().resolve(request('127.0.0.1', {'x-forwarded-for': '203.0.113.9'})).address, '127.0.0.1')
  })

  it("through serve: the upstream hears the client a trusted proxy names, and HSTS follows the client's protocol", async () => {
    const upstream = await fakeUpstream()
    // Only 127.0.0.2 is the proxy; 127.0.0.1 is any other client on this host.
    const running = await serve(upstream, {trustedProxies: '127.0.0.2'})
    const send = (localAddress: string) =>
      new Promise<IncomingHttpHeaders>((resolve, reject) => {
        const request = httpRequest(
          {
            agent: false,
            headers: {authorization: ADMIN, 'x-forwarded-for': '203.0.113.9', 'x-forwarded-proto': 'https'},
            host: '127.0.0.1',
            localAddress,
            path: '/api/2.0/mlflow/experiments/get?experiment_id=1',
            port: running.port,
          },
          (response) => {
            response.resume()
            response.on('end', () => resolve(response.headers))
          },
        )
        request.on('error', reject)
        request.end()
      })

    const viaProxy = await send('127.0.0.2')
    assert.equal(viaProxy['strict-transport-security'], 'max-age=31536000')
    assert.equal(upstream.seen.at(-1)!.headers['x-forwarded-for'], '203.0.113.9')
    assert.equal(upstream.seen.at(-1)!.headers['x-forwarded-proto'], 'https')

    const direct = await send('127.0.0.1')
    assert.equal(direct['strict-transport-security'], undefined)
    assert.equal(upstream.seen.at(-1)!.headers['x-forwarded-for'], '127.0.0.1')
    assert.equal(upstream.seen.at(-1)!.headers['x-forwarded-proto'], 'http')
  })
})
