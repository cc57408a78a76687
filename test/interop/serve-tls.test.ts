/**
 * serve over HTTPS in front of a plain MLflow server, with a CA and certificates made here by
 * openssl: MLflow's Python client (MLFLOW_TRACKING_SERVER_CERT_PATH, MLFLOW_TRACKING_INSECURE_TLS,
 * MLFLOW_TRACKING_CLIENT_CERT_PATH), mlflowctl's own commands, the web UI in headless Chromium, a
 * certificate replaced on disk and SIGHUP while an artifact upload is in flight, and mutual TLS.
 */
import assert from 'node:assert/strict'
import {createHash} from 'node:crypto'
import {copyFile, mkdtemp, readFile, rm, writeFile} from 'node:fs/promises'
import {type IncomingHttpHeaders} from 'node:http'
import {request as httpsRequest} from 'node:https'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {after, before, describe, it} from 'node:test'
import {type TLSSocket} from 'node:tls'

import {ExitCode} from '../../src/core/errors.js'
import {openBrowser, saveEvidence} from '../support/browser.js'
import {runCli} from '../support/cli.js'
import {MLFLOW_VERSIONS} from '../support/mlflow-versions.js'
import {createTestCa, fingerprint, type Issued, spkiHash, type TestCa} from '../support/pki.js'
import {expectError, PythonClient} from '../support/python-client.js'
import {basicAuth} from '../support/rest.js'
import {type RunningServe, startServe} from '../support/serve.js'
import {acquireServer, releaseServers, uniqueName} from '../support/servers.js'

const version = MLFLOW_VERSIONS.latest
const cleanups: Array<() => Promise<unknown>> = []
after(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup()
  await releaseServers()
})

let ca: TestCa
let first: Issued
let second: Issued
let alice: Issued
let upstream: string
let caPem: Buffer

before(async () => {
  ca = await createTestCa()
  cleanups.push(() => ca.remove())
  first = await ca.issue('first', 'server')
  second = await ca.issue('second', 'server')
  alice = await ca.issue('alice', 'client')
  caPem = await readFile(ca.cert)
  upstream = (await acquireServer(version, 'plain')).url
})

async function tempDir(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'mlflowctl-serve-tls-'))
  cleanups.push(() => rm(dir, {force: true, recursive: true}))
  return dir
}

/** serve over HTTPS with certificate files of its own (so that they can be replaced in place). */
async function httpsServe(extraArgs: string[] = []): Promise<{cert: string; key: string; serve: RunningServe}> {
  const dir = await tempDir()
  const cert = join(dir, 'tls.crt')
  const key = join(dir, 'tls.key')
  await copyFile(first.cert, cert)
  await copyFile(first.key, key)
  const serve = await startServe({extraArgs: ['--tls-cert', cert, '--tls-key', key, ...extraArgs], upstream})
  cleanups.push(() => serve.stop('SIGKILL'))
  assert.match(serve.url, /^https:/)
  return {cert, key, serve}
}

interface Answer {
  body: Buffer
  headers: IncomingHttpHeaders
  peer: string
  status: number
}

/** One request on a fresh connection that trusts only the test CA. */
function trusted(url: string, options: {auth?: string; body?: Buffer; method?: string} = {}): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const headers: Record<string, string> = {}
    if (options.auth) headers.authorization = options.auth
    if (options.body) headers['content-length'] = String(options.body.length)
    const request = httpsRequest(url, {agent: false, ca: caPem, headers, method: options.method ?? 'GET'}, (response) => {
      const chunks: Buffer[] = []
      const peer = (response.socket as TLSSocket).getPeerCertificate().fingerprint256
      response.on('data', (chunk: Buffer) => chunks.push(chunk))
      response.on('end', () => resolve({body: Buffer.concat(chunks), headers: response.headers, peer, status: response.statusCode!}))
    })
    request.on('error', reject)
    request.end(options.body)
  })
}

describe(`serve over HTTPS in front of MLflow ${version}`, () => {
  it("MLflow's Python client works with MLFLOW_TRACKING_SERVER_CERT_PATH and with MLFLOW_TRACKING_INSECURE_TLS, and refuses an untrusted certificate", async () => {
    const {serve} = await httpsServe()
    const work = await tempDir()
    const artifact = join(work, 'notes.txt')
    await writeFile(artifact, 'hello over https\n')
    const verified = new PythonClient({credentials: serve.admin, env: {MLFLOW_TRACKING_SERVER_CERT_PATH: ca.cert}, trackingUri: serve.url, version})
    const name = uniqueName('tls')
    const experimentId = await verified.call<string>('tracking', 'create_experiment', name)
    const runId = (await verified.call<{info: {run_id: string}}>('tracking', 'create_run', experimentId)).info.run_id
    const results = await verified.batch([
      {args: [runId, 'loss', 0.5], client: 'tracking', method: 'log_metric'},
      {args: [runId, artifact], client: 'tracking', method: 'log_artifact'},
      {args: [runId, 'notes.txt', join(work, 'down')], client: 'tracking', method: 'download_artifacts'},
      {args: [uniqueName('tls-user'), 'tls-user-password'], client: 'auth', method: 'create_user'},
    ])
    for (const result of results) assert.equal(result.error, undefined, JSON.stringify(result.error))
    assert.equal(await readFile(results[2].ok, 'utf8'), 'hello over https\n')

    // Without the CA the client refuses serve's certificate: the check above was a real one.
    const [untrusted] = await new PythonClient({credentials: serve.admin, trackingUri: serve.url, version}).batch([
      {args: [experimentId], client: 'tracking', method: 'get_experiment'},
    ])
    assert.match(expectError(untrusted).message, /CERTIFICATE_VERIFY_FAILED/)

    const insecure = new PythonClient({credentials: serve.admin, env: {MLFLOW_TRACKING_INSECURE_TLS: 'true'}, trackingUri: serve.url, version})
    assert.equal((await insecure.call<{name: string}>('tracking', 'get_experiment', experimentId)).name, name)
  })

  it("mlflowctl's commands log in, manage users and permissions over HTTPS with MLFLOW_TRACKING_SERVER_CERT_PATH", async () => {
    const {serve} = await httpsServe()
    const home = await tempDir()
    const env = {MLFLOW_TRACKING_SERVER_CERT_PATH: ca.cert}
    const cli = (args: string[], input?: string) => runCli(args, {env, home, input})
    const ok = (result: Awaited<ReturnType<typeof runCli>>) => {
      assert.equal(result.code, 0, `${result.stdout}\n${result.stderr}`)
      return result.stdout
    }

    ok(await cli(['login', '--tracking-uri', serve.url, '--username', serve.admin.username, '--password-stdin'], serve.admin.password))
    const user = uniqueName('tls-alice')
    ok(await cli(['users', 'create', user, '--password-stdin'], 'alice-over-https'))
    const experimentId = await new PythonClient({credentials: serve.admin, env, trackingUri: serve.url, version}).call<string>(
      'tracking',
      'create_experiment',
      uniqueName('tls-perms'),
    )
    ok(await cli(['perms', 'grant', 'experiment', experimentId, '--user', user, '--permission', 'EDIT']))
    const listed = JSON.parse(ok(await cli(['perms', 'list', 'experiment', '--user', user, '--json']))) as {
      permissions: Array<{permission: string; resource: string}>
    }
    assert.deepEqual(
      listed.permissions.map((row) => [row.resource, row.permission]),
      [[experimentId, 'EDIT']],
    )
    const whoami = JSON.parse(ok(await cli(['whoami', '--json']))) as {tracking_uri: {value: string}; user: {is_admin: boolean; username: string}}
    assert.equal(whoami.tracking_uri.value, serve.url)
    assert.deepEqual([whoami.user.username, whoami.user.is_admin], ['admin', true])

    // Without the CA mlflowctl refuses the certificate and says what to set.
    const refused = await runCli(['whoami'], {home})
    assert.equal(refused.code, ExitCode.Unavailable, refused.stderr)
    assert.match(refused.stderr, /MLFLOW_TRACKING_SERVER_CERT_PATH/)
  })

  it('the web UI works in headless Chromium over HTTPS, through its basic-auth prompt', async (t) => {
    const {serve} = await httpsServe()
    const name = uniqueName('tls-ui')
    await new PythonClient({credentials: serve.admin, env: {MLFLOW_TRACKING_SERVER_CERT_PATH: ca.cert}, trackingUri: serve.url, version}).call(
      'tracking',
      'create_experiment',
      name,
    )
    // Chromium offers no CA file option; this flag makes it accept exactly the certificate whose
    // public key hashes to this value (the test's server certificate), not any certificate.
    const args = [`--ignore-certificate-errors-spki-list=${await spkiHash(first.cert)}`]
    const untrusting = await openBrowser({baseURL: serve.url})
    try {
      await assert.rejects(untrusting.page.goto('/health'), /ERR_CERT_AUTHORITY_INVALID/)
    } finally {
      await untrusting.close()
    }

    const anonymous = await openBrowser({args, baseURL: serve.url})
    try {
      const health = await anonymous.page.goto('/health')
      assert.equal(health?.status(), 200)
      assert.equal(await health?.headerValue('strict-transport-security'), 'max-age=31536000')
      // Without credentials the browser is challenged for them (the prompt); headless Chromium has
      // nobody to answer it, so the navigation fails on the 401.
      const challenged = anonymous.page.waitForResponse((response) => response.url() === `${serve.url}/`)
      await assert.rejects(anonymous.page.goto('/'), /ERR_INVALID_AUTH_CREDENTIALS/)
      const challenge = await challenged
      assert.equal(challenge.status(), 401)
      assert.equal(await challenge.headerValue('www-authenticate'), 'Basic realm="mlflow"')
      assert.equal(await challenge.headerValue('strict-transport-security'), 'max-age=31536000')
    } finally {
      await anonymous.close()
    }

    const browser = await openBrowser({args, baseURL: serve.url, credentials: serve.admin})
    try {
      const page = browser.page
      const home = await page.goto('/')
      assert.equal(home?.status(), 200)
      assert.equal((await home!.securityDetails())?.protocol?.startsWith('TLS 1.'), true)
      await page.getByRole('link', {exact: true, name: 'Experiments'}).first().click()
      const search = page.getByTestId('search-experiment-input')
      await search.waitFor()
      await search.fill(name)
      await search.press('Enter')
      await page.getByTestId('experiment-list-item-link').filter({hasText: name}).first().waitFor()
      const origin = new URL(serve.url).origin
      const ours = browser.responses.filter((response) => response.url.startsWith(origin))
      assert.ok(
        ours.some((response) => response.url.includes('/experiments/search') && response.status === 200),
        'the UI searched experiments through serve',
      )
      assert.deepEqual(
        browser.responses.filter((response) => response.url.startsWith('http:')),
        [],
        'the UI fell back to plain HTTP',
      )
    } catch (error) {
      const saved = await saveEvidence(browser.page, `tls ${t.name}`)
      if (saved.length > 0) t.diagnostic(`saved ${saved.join(', ')}`)
      throw error
    } finally {
      await browser.close()
    }
  })

  it('a certificate replaced on disk is served to new connections after SIGHUP, while an upload in flight completes', async () => {
    const {cert, key, serve} = await httpsServe()
    const admin = basicAuth(serve.admin)
    const client = new PythonClient({credentials: serve.admin, env: {MLFLOW_TRACKING_SERVER_CERT_PATH: ca.cert}, trackingUri: serve.url, version})
    const experimentId = await client.call<string>('tracking', 'create_experiment', uniqueName('tls-reload'))
    const run = await client.call<{info: {artifact_uri: string; run_id: string}}>('tracking', 'create_run', experimentId)
    // Served artifacts: mlflow-artifacts:/<experiment>/<run>/artifacts → the proxied upload route.
    const where = run.info.artifact_uri.replace(/^mlflow-artifacts:\//, '')
    const path = `/api/2.0/mlflow-artifacts/artifacts/${where}/slow.bin`

    const block = Buffer.alloc(256 * 1024)
    const blocks = 32
    const whole = createHash('sha256')
    let uploadPeer = ''
    let release!: () => void
    const swapped = new Promise<void>((resolve) => (release = resolve))
    const upload = new Promise<{body: string; status: number}>((resolve, reject) => {
      const request = httpsRequest(
        `${serve.url}${path}`,
        {
          agent: false,
          ca: caPem,
          headers: {authorization: admin, 'content-length': String(block.length * blocks), 'content-type': 'application/octet-stream'},
          method: 'PUT',
        },
        (response) => {
          let body = ''
          response.on('data', (chunk) => (body += chunk))
          response.on('end', () => resolve({body, status: response.statusCode!}))
        },
      )
      request.on('error', reject)
      request.on('socket', (socket: TLSSocket) => socket.once('secureConnect', () => (uploadPeer = socket.getPeerCertificate().fingerprint256)))
      ;(async () => {
        for (let i = 0; i < blocks; i++) {
          // Half the body before the certificate changes, half after.
          if (i === blocks / 2) await swapped
          const chunk = Buffer.from(block)
          chunk.writeUInt32LE(i, 0)
          whole.update(chunk)
          if (!request.write(chunk)) await new Promise((resolve) => request.once('drain', resolve))
        }

        request.end()
      })().catch(reject)
    })

    await copyFile(second.cert, cert)
    await copyFile(second.key, key)
    serve.child.kill('SIGHUP')
    for (let attempt = 0; attempt < 400 && !serve.output().includes('SIGHUP: TLS'); attempt++) await new Promise((resolve) => setTimeout(resolve, 25))
    assert.match(serve.output(), /SIGHUP: TLS certificate "CN=second"/)
    const fresh = await trusted(`${serve.url}/api/2.0/mlflow/experiments/get?experiment_id=${experimentId}`, {auth: admin})
    assert.equal(fresh.status, 200)
    assert.equal(fresh.peer, await fingerprint(second.cert))
    release()

    const done = await upload
    assert.equal(done.status, 200, done.body)
    assert.equal(uploadPeer, await fingerprint(first.cert), 'the upload ran on the first certificate')
    const downloaded = await trusted(`${serve.url}${path}`, {auth: admin})
    assert.equal(downloaded.status, 200)
    assert.equal(downloaded.body.length, block.length * blocks)
    assert.equal(createHash('sha256').update(downloaded.body).digest('hex'), whole.digest('hex'))
  })

  it('with --tls-client-ca, clients without a certificate from that CA are refused; with one, MLflow and mlflowctl work', async () => {
    const {serve} = await httpsServe(['--tls-client-ca', ca.cert])
    assert.match(serve.output(), /client certificates required/)
    const serverCa = {MLFLOW_TRACKING_SERVER_CERT_PATH: ca.cert}
    const withCert = {...serverCa, MLFLOW_TRACKING_CLIENT_CERT_PATH: alice.pem}

    const [refused] = await new PythonClient({credentials: serve.admin, env: serverCa, trackingUri: serve.url, version}).batch([
      {client: 'tracking', method: 'search_experiments'},
    ])
    assert.match(expectError(refused).message, /SSL|certificate|Connection|reset/i)
    const accepted = await new PythonClient({credentials: serve.admin, env: withCert, trackingUri: serve.url, version}).call<unknown[]>(
      'tracking',
      'search_experiments',
    )
    assert.ok(Array.isArray(accepted))

    const home = await tempDir()
    const login = await runCli(['login', '--tracking-uri', serve.url, '--username', serve.admin.username, '--password-stdin'], {
      env: withCert,
      home,
      input: serve.admin.password,
    })
    assert.equal(login.code, 0, login.stderr)
    // No retries: a refused handshake looks like a dropped connection, which is otherwise retried for minutes.
    const without = await runCli(['whoami'], {env: {...serverCa, MLFLOW_HTTP_REQUEST_MAX_RETRIES: '0'}, home})
    assert.equal(without.code, ExitCode.Unavailable, without.stderr)
    await assert.rejects(trusted(`${serve.url}/health`))
  })
})
