/**
 * `mlflowctl serve` as an operator starts it (the built CLI, a fake upstream on loopback): plain
 * HTTP beyond loopback refused or allowed with --insecure-http, the TLS settings from flags and
 * environment, and SIGHUP re-reading the certificate files.
 */
import assert from 'node:assert/strict'
import {spawn} from 'node:child_process'
import {copyFile, mkdtemp, readFile, rm, stat, writeFile} from 'node:fs/promises'
import {request as httpsRequest} from 'node:https'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {after, before, describe, it} from 'node:test'
import {type TLSSocket} from 'node:tls'

import {ExitCode} from '../../src/core/errors.js'
import {CLI} from '../support/cli.js'
import {freePort} from '../support/mlflow-server.js'
import {createTestCa, fingerprint, type Issued, type TestCa} from '../support/pki.js'
import {type RunningServe, startServe} from '../support/serve.js'
import {startStubUpstream} from '../support/stub-upstream.js'

const cleanups: Array<() => Promise<unknown>> = []
after(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup()
})

let upstream: string
let ca: TestCa
let first: Issued
let second: Issued

before(async () => {
  const stub = await startStubUpstream()
  cleanups.push(stub.close)
  upstream = stub.url
  ca = await createTestCa()
  cleanups.push(() => ca.remove())
  first = await ca.issue('first', 'server')
  second = await ca.issue('second', 'server')
})

async function tempDir(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'mlflowctl-serve-tls-'))
  cleanups.push(() => rm(dir, {force: true, recursive: true}))
  return dir
}

async function serve(options: Parameters<typeof startServe>[0]): Promise<RunningServe> {
  const running = await startServe(options)
  cleanups.push(() => running.stop('SIGKILL'))
  return running
}

/** The certificate fingerprint a fresh HTTPS connection to serve sees, and the status of a GET /health. */
function peer(url: string): Promise<{fingerprint: string; status: number}> {
  return new Promise((resolve, reject) => {
    const request = httpsRequest(`${url}/health`, {agent: false, rejectUnauthorized: false}, (response) => {
      response.resume()
      resolve({fingerprint: (response.socket as TLSSocket).getPeerCertificate().fingerprint256, status: response.statusCode!})
    })
    request.on('error', reject)
    request.end()
  })
}

async function waitFor(what: string, predicate: () => boolean): Promise<void> {
  for (let attempt = 0; attempt < 400 && !predicate(); attempt++) await new Promise((resolve) => setTimeout(resolve, 25))
  assert.ok(predicate(), `timed out waiting for ${what}`)
}

describe('serve: where it may listen over plain HTTP', () => {
  it('refuses --host 0.0.0.0 without TLS or --insecure-http, says what to do, and creates nothing', async () => {
    const storePath = join(await tempDir(), 'auth.json')
    const child = spawn(
      process.execPath,
      [CLI, 'serve', '--proxy-to', upstream, '--host', '0.0.0.0', '--port', String(await freePort()), '--store', storePath],
      {
        env: {...process.env, MLFLOW_AUTH_ADMIN_PASSWORD: 'a long admin password', MLFLOWCTL_INSECURE_HTTP: '', NO_COLOR: '1', OCLIF_COLUMNS: '400'},
        stdio: ['ignore', 'ignore', 'pipe'],
      },
    )
    let stderr = ''
    const outcome = await new Promise<'exited' | 'listening'>((resolve) => {
      child.stderr!.on('data', (chunk: Buffer) => {
        stderr += chunk.toString()
        if (stderr.includes('listening on')) resolve('listening')
      })
      child.once('close', () => resolve('exited'))
    })
    if (outcome === 'listening') {
      child.kill('SIGKILL')
      assert.fail(`serve listened on 0.0.0.0 over plain HTTP:\n${stderr}`)
    }

    assert.equal(child.exitCode, ExitCode.Usage, stderr)
    assert.match(stderr, /serve would listen on 0\.0\.0\.0 over plain HTTP: every request carries a password, and it would cross the network in clear/)
    assert.match(stderr, /--tls-cert FILE --tls-key FILE/)
    assert.match(stderr, /--insecure-http/)
    assert.doesNotMatch(stderr, /listening on/)
    await assert.rejects(stat(storePath), {code: 'ENOENT'})
  })

  it('with --insecure-http (or MLFLOWCTL_INSECURE_HTTP) starts on 0.0.0.0 with a warning', async () => {
    for (const how of [{extraArgs: ['--insecure-http']}, {env: {MLFLOWCTL_INSECURE_HTTP: 'true'}}]) {
      const running = await serve({...how, host: '0.0.0.0', upstream})
      assert.match(running.output(), /warning: serve listens on 0\.0\.0\.0 over plain HTTP \(--insecure-http\): passwords cross the network in clear/)
      assert.match(running.output(), /listening on http:\/\/0\.0\.0\.0:\d+/)
      const answer = await fetch(`${running.url}/api/2.0/mlflow/experiments/get?experiment_id=1`)
      assert.equal(answer.status, 401)
      // A reload (systemctl reload) of a plain-HTTP serve changes nothing and stops nothing.
      running.child.kill('SIGHUP')
      await waitFor('the SIGHUP message', () => running.output().includes('SIGHUP: serve listens over plain HTTP: no certificate to reload'))
      assert.equal((await fetch(`${running.url}/health`)).status, 200)
      assert.equal(await running.stop(), 0)
    }
  })
})

describe('serve: TLS settings and SIGHUP', () => {
  it('takes the certificate from MLFLOWCTL_TLS_CERT / MLFLOWCTL_TLS_KEY and listens on 0.0.0.0 over HTTPS without a warning', async () => {
    const running = await serve({env: {MLFLOWCTL_TLS_CERT: first.cert, MLFLOWCTL_TLS_KEY: first.key}, host: '0.0.0.0', upstream})
    assert.match(running.output(), /listening on https:\/\/0\.0\.0\.0:\d+/)
    assert.match(running.output(), /TLS: certificate "CN=first" \(SHA-256 [\dA-F:]+, valid until /)
    assert.doesNotMatch(running.output(), /warning/)
    assert.deepEqual(await peer(running.url), {fingerprint: await fingerprint(first.cert), status: 200})
  })

  it('on SIGHUP serves the replaced certificate to new connections, and keeps the old one when the new files are broken', async () => {
    const dir = await tempDir()
    const cert = join(dir, 'tls.crt')
    const key = join(dir, 'tls.key')
    await copyFile(first.cert, cert)
    await copyFile(first.key, key)
    const running = await serve({extraArgs: ['--tls-cert', cert, '--tls-key', key], upstream})
    assert.equal((await peer(running.url)).fingerprint, await fingerprint(first.cert))

    // A half-done rotation: the new certificate with the old key.
    await copyFile(second.cert, cert)
    running.child.kill('SIGHUP')
    await waitFor('the failed reload', () => running.output().includes('error: SIGHUP'))
    assert.match(
      running.output(),
      /error: SIGHUP: The private key in .*tls\.key does not belong to the certificate in .*tls\.crt; still serving the previous certificate/,
    )
    assert.equal((await peer(running.url)).fingerprint, await fingerprint(first.cert))

    await copyFile(second.key, key)
    running.child.kill('SIGHUP')
    await waitFor('the reload', () => running.output().includes('SIGHUP: TLS certificate'))
    assert.match(running.output(), /SIGHUP: TLS certificate "CN=second" \(SHA-256 [\dA-F:]+, valid until [^)]+\) for new connections/)
    assert.deepEqual(await peer(running.url), {fingerprint: await fingerprint(second.cert), status: 200})
    assert.equal(await running.stop(), 0)
    assert.doesNotMatch(running.output(), /PRIVATE KEY/)
  })

  it('warns when the private key is readable by every user, and starts', async () => {
    const dir = await tempDir()
    const key = join(dir, 'open.key')
    await writeFile(key, await readFile(first.key), {mode: 0o644})
    const running = await serve({extraArgs: ['--tls-cert', first.cert, '--tls-key', key], upstream})
    assert.match(running.output(), /warning: the TLS private key .*open\.key is readable by every user of this machine/)
  })
})
