/**
 * `mlflowctl serve --audit-log` as an operator runs it (the built CLI, a stub upstream): SIGHUP
 * reopens the file after a rotation, SIGTERM leaves every line in it, `-` writes to standard
 * output, and a file serve cannot open stops the start.
 */
import assert from 'node:assert/strict'
import {spawn} from 'node:child_process'
import {mkdtemp, readFile, rename, stat} from 'node:fs/promises'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {after, before, describe, it} from 'node:test'

import {ExitCode} from '../../src/core/errors.js'
import {CLI} from '../support/cli.js'
import {freePort} from '../support/mlflow-server.js'
import {startServe} from '../support/serve.js'
import {startStubUpstream} from '../support/stub-upstream.js'

const cleanups: Array<() => Promise<unknown>> = []
after(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup()
})

let upstream: string
let dir: string

before(async () => {
  const stub = await startStubUpstream()
  cleanups.push(stub.close)
  upstream = stub.url
  dir = await mkdtemp(join(tmpdir(), 'mlflowctl-serve-audit-'))
})

async function waitFor(what: string, test: () => Promise<boolean> | boolean): Promise<void> {
  for (let i = 0; i < 500; i++) {
    if (await test()) return
    await new Promise((resolve) => setTimeout(resolve, 20))
  }

  throw new Error(`timed out waiting for ${what}`)
}

const linesOf = async (path: string) => (await readFile(path, 'utf8').catch(() => '')).split('\n').filter(Boolean)
const wrongLogin = {authorization: `Basic ${Buffer.from('mallory:not-the-password').toString('base64')}`}

describe('serve --audit-log', () => {
  it('SIGHUP reopens the file after a rotation; SIGTERM stops with every line written', async () => {
    const path = join(dir, 'audit.jsonl')
    const running = await startServe({extraArgs: ['--audit-log', path], upstream})
    cleanups.push(() => running.stop())
    const target = `${running.url}/api/2.0/mlflow/experiments/get?experiment_id=1`
    assert.equal((await fetch(target, {headers: wrongLogin})).status, 401)
    await waitFor('the first line', async () => (await linesOf(path)).length === 1)
    await rename(path, `${path}.1`)
    running.child.kill('SIGHUP')
    await waitFor('the reopen message', () => running.output().includes(`SIGHUP: audit log reopened: ${path}`))
    assert.doesNotMatch(running.output(), /no certificate to reload/)
    for (let i = 0; i < 3; i++) assert.equal((await fetch(target, {headers: wrongLogin})).status, 401)
    assert.equal(await running.stop(), 0)
    const fresh = (await linesOf(path)).map((line) => JSON.parse(line) as Record<string, unknown>)
    // The name's first failure was written at once (to the old file); the three after it are
    // counted and written as one line when serve stops. A name that is no user's, as its digest.
    assert.deepEqual(
      fresh.map((line) => [line.event, line.reason, line.count]),
      [['auth.failed', 'unknown-user', 3]],
    )
    const old = (await linesOf(`${path}.1`)).map((line) => JSON.parse(line) as Record<string, unknown>)
    assert.equal(old.length, 1)
    assert.match(String(fresh[0].user), /^hmac-sha256:[\da-f]{12}$/)
    assert.equal(old[0].user, fresh[0].user)
    assert.doesNotMatch(await readFile(path, 'utf8'), /mallory/)
    assert.equal((await stat(path)).mode & 0o777, 0o600)
  })

  it('- writes the lines to standard output', async () => {
    const port = await freePort()
    const child = spawn(
      process.execPath,
      [CLI, 'serve', '--proxy-to', upstream, '--port', String(port), '--store', join(dir, 'stdout.json'), '--audit-log', '-'],
      {
        env: {...process.env, MLFLOW_AUTH_ADMIN_PASSWORD: 'admin-password-for-audit'},
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    )
    let stdout = ''
    let stderr = ''
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()))
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()))
    await waitFor('serve to listen', () => stderr.includes('listening on'))
    assert.equal((await fetch(`http://127.0.0.1:${port}/api/2.0/mlflow/experiments/get?experiment_id=1`, {headers: wrongLogin})).status, 401)
    const exited = new Promise((resolve) => child.once('exit', resolve))
    child.kill('SIGTERM')
    assert.equal(await exited, 0)
    const [line, ...rest] = stdout.split('\n').filter(Boolean)
    assert.deepEqual(rest, [])
    assert.equal(JSON.parse(line).event, 'auth.failed')
  })

  it('a file serve cannot open stops the start, and nothing is created', async () => {
    const storePath = join(dir, 'refused.json')
    const child = spawn(
      process.execPath,
      [CLI, 'serve', '--proxy-to', upstream, '--port', '0', '--store', storePath, '--audit-log', join(dir, 'missing', 'audit.jsonl')],
      {
        env: {...process.env, MLFLOW_AUTH_ADMIN_PASSWORD: 'admin-password-for-audit'},
        stdio: ['ignore', 'ignore', 'pipe'],
      },
    )
    let stderr = ''
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()))
    const code = await new Promise((resolve) => child.once('exit', resolve))
    assert.equal(code, ExitCode.Usage, stderr)
    assert.match(stderr, /Cannot open the audit log .*missing\/audit\.jsonl/)
    assert.doesNotMatch(stderr, /listening on/)
    await assert.rejects(stat(storePath), {code: 'ENOENT'})
  })
})
