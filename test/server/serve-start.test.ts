/**
 * `mlflowctl serve` start-up failures, through the built command as a user runs it: a store that
 * is corrupt, unreadable, uncreatable or locked by another live process, and a port in use. Each
 * says what failed, exits with its documented code, and changes nothing. Also, in process: a
 * request that arrives while the store is not ready yet waits for it.
 */
import assert from 'node:assert/strict'
import {once} from 'node:events'
import {mkdir, mkdtemp, readdir, readFile, stat, writeFile} from 'node:fs/promises'
import {createServer as createHttpServer, request as httpRequest} from 'node:http'
import {connect, createServer} from 'node:net'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {after, describe, it} from 'node:test'

import {lock} from 'proper-lockfile'

import {ExitCode, UserError} from '../../src/core/errors.js'
import {startServe} from '../../src/server/serve.js'
import {runCli} from '../support/cli.js'
import {freePort} from '../support/mlflow-server.js'

const ADMIN_PASSWORD = 'admin-password-for-start-tests'
const EMPTY_STORE =
  '{\n  "version": 3,\n  "next_user_id": 1,\n  "next_role_id": 1,\n  "next_role_permission_id": 1,\n  "next_assignment_id": 1,\n  "next_token_id": 1,\n  "users": [],\n  "roles": [],\n  "role_permissions": [],\n  "assignments": [],\n  "tokens": []\n}\n'

const cleanups: Array<() => Promise<unknown>> = []
after(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup()
})

/** An upstream that is never asked anything here: serve does not call it to start. */
async function upstreamUrl(): Promise<string> {
  const server = createHttpServer((_req, res) => res.end('{}'))
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  cleanups.push(
    () =>
      new Promise((resolve) => {
        server.close(resolve)
      }),
  )
  return `http://127.0.0.1:${(server.address() as {port: number}).port}`
}

async function serve(store: string, port?: number) {
  const args = ['serve', '--proxy-to', await upstreamUrl(), '--host', '127.0.0.1', '--port', String(port ?? (await freePort())), '--store', store]
  return runCli(args, {env: {MLFLOW_AUTH_ADMIN_PASSWORD: ADMIN_PASSWORD}})
}

/** The failure a person reads: no "unexpected error", no stack trace, no secrets. */
function assertPlainFailure(stderr: string): void {
  assert.doesNotMatch(stderr, /Unexpected error|This is a bug|\n\s+at /, stderr)
  assert.ok(!stderr.includes(ADMIN_PASSWORD), stderr)
}

async function freshDir(): Promise<string> {
  return mkdtemp(join(tmpdir(), 'mlflowctl-serve-start-'))
}

describe('serve refuses a store it cannot use, says why, and changes nothing', () => {
  it('a file that is not valid JSON: names the file, line and column, without quoting its content (exit 2)', async () => {
    const dir = await freshDir()
    const path = join(dir, 'auth.json')
    // A hand edit lost the quotes around a password hash.
    const content =
      '{\n  "version": 1,\n  "next_user_id": 2,\n  "users": [\n    {"id": 1, "username": "admin", "password_hash": scrypt:32768:8:1$SECRETSALT$deadbeef, "is_admin": true}\n  ],\n  "grants": []\n}\n'
    await writeFile(path, content, {mode: 0o600})
    const result = await serve(path)
    assert.equal(result.code, ExitCode.Usage, result.stderr)
    assert.match(
      result.stderr,
      new RegExp(
        `The auth store ${path.replaceAll('.', '\\.')} is not valid JSON: unexpected character at line 5, column 53\\. It was left unchanged; fix or restore it\\.`,
      ),
    )
    assert.doesNotMatch(result.stderr, /scrypt|SECRETSALT|deadbeef|"s"/)
    assertPlainFailure(result.stderr)
    assert.equal(await readFile(path, 'utf8'), content)
    assert.deepEqual(await readdir(dir), ['auth.json'])
  })

  it('a file that is valid JSON but not a store (exit 2)', async () => {
    const dir = await freshDir()
    const path = join(dir, 'auth.json')
    await writeFile(path, '{"version": 1, "next_user_id": 1, "users": []}')
    const result = await serve(path)
    assert.equal(result.code, ExitCode.Usage, result.stderr)
    assert.match(result.stderr, /The auth store .*auth\.json is not valid: the top-level object has no "grants"\. It was left unchanged/)
    assertPlainFailure(result.stderr)
    assert.equal(await readFile(path, 'utf8'), '{"version": 1, "next_user_id": 1, "users": []}')
  })

  it("a path that cannot be read (a directory in the file's place) (exit 2)", async () => {
    const dir = await freshDir()
    // Permission bits mean nothing to root, who runs the tests.
    const path = join(dir, 'auth.json')
    await mkdir(path)
    const result = await serve(path)
    assert.equal(result.code, ExitCode.Usage, result.stderr)
    assert.match(result.stderr, new RegExp(`Cannot read the auth store ${path.replaceAll('.', '\\.')}: EISDIR.*It was left unchanged\\.`))
    assertPlainFailure(result.stderr)
    assert.deepEqual(await readdir(path), [])
    assert.deepEqual(await readdir(dir), ['auth.json'])
  })

  it('a path that cannot be created (its directory is a file) (exit 2)', async () => {
    const dir = await freshDir()
    await writeFile(join(dir, 'not-a-dir'), 'x')
    const path = join(dir, 'not-a-dir', 'auth.json')
    const result = await serve(path)
    assert.equal(result.code, ExitCode.Usage, result.stderr)
    assert.match(result.stderr, /Cannot (create|open|read) the auth store .*not-a-dir\/auth\.json: ENOTDIR/)
    assertPlainFailure(result.stderr)
    assert.equal(await readFile(join(dir, 'not-a-dir'), 'utf8'), 'x')
  })

  it('a URL of a scheme that names no store is refused, not taken for a file name (exit 2)', async () => {
    const dir = await freshDir()
    const result = await runCli(
      ['serve', '--proxy-to', await upstreamUrl(), '--host', '127.0.0.1', '--port', String(await freePort()), '--store', 'mysql://me:hunter2@127.0.0.1/auth'],
      {cwd: dir, env: {MLFLOW_AUTH_ADMIN_PASSWORD: ADMIN_PASSWORD}},
    )
    assert.equal(result.code, ExitCode.Usage, result.stderr)
    assert.match(result.stderr, /mysql:\/\/me@127\.0\.0\.1\/auth is not a store location mlflowctl knows/)
    assert.doesNotMatch(result.stderr, /hunter2/)
    assertPlainFailure(result.stderr)
    assert.deepEqual(await readdir(dir), [])
  })

  it("a PostgreSQL URL in SQLAlchemy's spelling names a database, as for the store commands (exit 2 when none answers)", async () => {
    const dir = await freshDir()
    const closed = await freePort()
    const result = await runCli(
      [
        'serve',
        '--proxy-to',
        await upstreamUrl(),
        '--host',
        '127.0.0.1',
        '--port',
        String(await freePort()),
        '--store',
        `postgresql+psycopg2://me:hunter2@127.0.0.1:${closed}/auth`,
      ],
      {cwd: dir, env: {MLFLOW_AUTH_ADMIN_PASSWORD: ADMIN_PASSWORD}},
    )
    assert.equal(result.code, ExitCode.Usage, result.stderr)
    assert.match(result.stderr, /Cannot use the auth store's database postgresql\+psycopg2:\/\/me@127\.0\.0\.1:\d+\/auth: .*ECONNREFUSED/)
    assert.match(result.stderr, /Check that the database is up/)
    assert.doesNotMatch(result.stderr, /hunter2/)
    assertPlainFailure(result.stderr)
    assert.deepEqual(await readdir(dir), [])
  })

  // In process, with a short stale time: through the command the start waits 30 s for the lock
  // (three times the default 10 s) before it gives up. The command's rendering of a UserError (no
  // stack, its exit code) is what the other cases here check.
  it('a store whose lock another live process holds (exit 10)', async () => {
    const dir = await freshDir()
    const path = join(dir, 'auth.json')
    // No admin yet: the first start must write one, and needs the lock for that.
    await writeFile(path, EMPTY_STORE)
    // This test process is the other one, and keeps its lock fresh as a live holder does.
    const release = await lock(path, {lockfilePath: `${path}.lock`, realpath: false, stale: 2000, update: 500})
    cleanups.push(() => release().catch(() => {}))
    const logged: string[] = []
    const error = await startServe({
      env: {MLFLOW_AUTH_ADMIN_PASSWORD: ADMIN_PASSWORD},
      host: '127.0.0.1',
      log: (line) => logged.push(line),
      port: await freePort(),
      proxyTo: new URL(await upstreamUrl()),
      storeLockStaleMs: 2000,
      storePath: path,
    }).then(
      () => assert.fail('serve started while another process held its store'),
      (error: unknown) => error as UserError,
    )
    assert.ok(error instanceof UserError, String(error))
    assert.equal(error.exit, ExitCode.InUse)
    assert.match(
      error.message,
      new RegExp(
        `Cannot lock the auth store ${path.replaceAll('.', '\\.')}: another process holds .*auth\\.json\\.lock and keeps it fresh\\. Nothing was changed\\.`,
      ),
    )
    assert.equal(await readFile(path, 'utf8'), EMPTY_STORE)
    assert.ok(!logged.some((line) => line.includes('Created admin user')), logged.join('\n'))
  })
})

describe('serve on a port already in use', () => {
  it('says so, exits 10, and creates neither the store nor the admin', async () => {
    const taken = createServer()
    taken.listen(0, '127.0.0.1')
    await once(taken, 'listening')
    cleanups.push(
      () =>
        new Promise((resolve) => {
          taken.close(resolve)
        }),
    )
    const {port} = taken.address() as {port: number}
    const dir = await freshDir()
    const path = join(dir, 'state', 'auth.json')
    const result = await serve(path, port)
    assert.equal(result.code, ExitCode.InUse, result.stderr)
    assert.match(result.stderr, new RegExp(`Port ${port} on 127\\.0\\.0\\.1 is already in use; nothing was started or created\\.`))
    assert.doesNotMatch(result.stderr, /Created admin user/)
    assertPlainFailure(result.stderr)
    assert.deepEqual(await readdir(dir), [], 'no store, no directory for it')
  })
})

describe('serve while its store is not ready yet', () => {
  it('holds a request that arrives meanwhile and answers it once the admin exists', {timeout: 120_000}, async () => {
    const dir = await freshDir()
    const path = join(dir, 'auth.json')
    await writeFile(path, EMPTY_STORE)
    const release = await lock(path, {lockfilePath: `${path}.lock`, realpath: false, stale: 10_000})
    const port = await freePort()
    const logged: string[] = []
    const starting = startServe({
      env: {MLFLOW_AUTH_ADMIN_PASSWORD: ADMIN_PASSWORD},
      host: '127.0.0.1',
      log: (line) => logged.push(line),
      port,
      proxyTo: new URL(await upstreamUrl()),
      storePath: path,
    })
    starting.catch(() => {})
    // The port is bound while the store still waits for the lock...
    for (;;) {
      const socket = connect(port, '127.0.0.1')
      const connected = await new Promise<boolean>((resolve) => {
        socket.once('connect', () => resolve(true))
        socket.once('error', () => resolve(false))
      })
      socket.destroy()
      if (connected) break
      await new Promise((resolve) => setImmediate(resolve))
    }

    assert.equal((await stat(path)).size, EMPTY_STORE.length)
    // ...and a request sent now is decided only once the admin exists (before, it would be a 401).
    const answer = new Promise<{body: string; status: number}>((resolve, reject) => {
      const request = httpRequest(
        {
          headers: {authorization: `Basic ${Buffer.from(`admin:${ADMIN_PASSWORD}`).toString('base64')}`},
          host: '127.0.0.1',
          path: '/api/2.0/mlflow/users/current',
          port,
        },
        (response) => {
          let body = ''
          response.on('data', (chunk) => (body += chunk))
          response.on('end', () => resolve({body, status: response.statusCode!}))
        },
      )
      request.on('error', reject)
      request.end()
    })
    await release()
    const running = await starting
    cleanups.push(() => running.close())
    const {body, status} = await answer
    assert.equal(status, 200, body)
    assert.equal((JSON.parse(body) as {user: {username: string}}).user.username, 'admin')
    assert.ok(logged.some((line) => line.startsWith('Created admin user "admin"')))
  })
})
