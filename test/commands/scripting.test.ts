/**
 * Scripting, waiting and input, through the built command (spawned bin/run.js) against loopback
 * servers scripted here: tables in a pipe, --json field lists, --timeout and --retries, DNS
 * failures, the spinner, and the checks that refuse bad input before any request. Terminal parts
 * run on a pseudo-terminal.
 */
import assert from 'node:assert/strict'
import {mkdtemp, readFile} from 'node:fs/promises'
import {createServer, type Server} from 'node:http'
import {createServer as createTcpServer, type Server as TcpServer, type Socket} from 'node:net'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {after, before, beforeEach, describe, it} from 'node:test'

import {ExitCode} from '../../src/core/errors.js'
import {runCli, runCliOnTerminal} from '../support/cli.js'

const USERS = [
  {id: 2, is_admin: false, username: 'zoe'},
  {id: 10, is_admin: true, username: 'admin'},
  {id: 3, is_admin: false, username: 'bob, the "builder"'},
]
const PERMISSIONS = [
  {permission: 'READ', resource_pattern: 'churn-model', resource_type: 'registered_model'},
  {permission: 'EDIT', resource_pattern: '12', resource_type: 'experiment'},
  {permission: 'MANAGE', resource_pattern: '9/relevance', resource_type: 'scorer'},
  {permission: 'READ', resource_pattern: '9', resource_type: 'experiment'},
]
const EXPERIMENTS: Record<string, string> = {9: 'nine', 12: 'twelve'}
const ROLES = [
  {
    description: 'read all',
    id: 4,
    name: 'readers',
    permissions: [{id: 1, permission: 'READ', resource_pattern: '*', resource_type: 'experiment', role_id: 4}],
    workspace: 'default',
  },
  {description: null, id: 5, name: '__user_2__', permissions: [], workspace: 'default'},
]

async function listen<T extends Server | TcpServer>(server: T): Promise<{port: number; server: T}> {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()))
  return {port: (server.address() as {port: number}).port, server}
}

describe('scripting, waiting and input (built command)', () => {
  let mlflow: Server
  let url: string
  let requests: string[]
  // Accepts connections and never answers: counts the requests it is sent (attempts). Connections
  // are not counted: Node's fetch may open a spare one when a request is aborted.
  let silent: TcpServer
  let silentUrl: string
  let sockets: Socket[]
  let attempts: number
  // A port nothing listens on: refused at once.
  let closedUrl: string

  before(async () => {
    const fake = await listen(
      createServer((request, response) => {
        const path = new URL(request.url!, 'http://x').pathname
        const query = new URL(request.url!, 'http://x').searchParams
        requests.push(`${request.method} ${path}`)
        const answer = (status: number, body: unknown) => {
          response.writeHead(status, {'content-type': 'application/json'})
          response.end(JSON.stringify(body))
        }

        request.resume()
        if (path === '/api/2.0/mlflow/users/list') answer(200, {users: USERS})
        else if (path === '/api/2.0/mlflow/users/current') answer(200, {user: {id: 10, is_admin: true, username: 'admin'}})
        else if (path === '/api/3.0/mlflow/users/permissions/list') answer(200, {permissions: PERMISSIONS})
        else if (path === '/api/3.0/mlflow/roles/list') answer(200, {roles: ROLES})
        else if (path === '/api/2.0/mlflow/experiments/get' && EXPERIMENTS[query.get('experiment_id')!]) {
          answer(200, {experiment: {experiment_id: query.get('experiment_id'), name: EXPERIMENTS[query.get('experiment_id')!]}})
        } else answer(404, {error_code: 'RESOURCE_DOES_NOT_EXIST', message: 'no'})
      }),
    )
    mlflow = fake.server
    url = `http://127.0.0.1:${fake.port}`
    const hang = await listen(
      createTcpServer((socket) => {
        sockets.push(socket)
        socket.on('data', (chunk) => (attempts += chunk.toString('latin1').match(/^[A-Z]+ \/\S* HTTP\/1\.1\r$/gm)?.length ?? 0))
      }),
    )
    silent = hang.server
    silentUrl = `http://127.0.0.1:${hang.port}`
    const closed = await listen(createTcpServer())
    closedUrl = `http://127.0.0.1:${closed.port}`
    await new Promise((resolve) => closed.server.close(resolve))
  })

  after(async () => {
    for (const socket of sockets) socket.destroy()
    await Promise.all([new Promise((resolve) => mlflow.close(resolve)), new Promise((resolve) => silent.close(resolve))])
  })

  beforeEach(() => {
    attempts = 0
    requests = []
    sockets = []
  })

  const env = (extra: NodeJS.ProcessEnv = {}) => ({
    MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR: '0',
    MLFLOW_HTTP_REQUEST_BACKOFF_JITTER: '0',
    MLFLOW_TRACKING_PASSWORD: 'admin-password-123',
    MLFLOW_TRACKING_URI: url,
    MLFLOW_TRACKING_USERNAME: 'admin',
    ...extra,
  })

  describe('tables in a pipe', () => {
    it('users list prints tab-separated columns with a header and no box drawing', async () => {
      const result = await runCli(['users', 'list'], {env: env()})
      assert.equal(result.code, 0, result.stderr)
      assert.equal(result.stdout, 'USERNAME\tID\tADMIN\nzoe\t2\tno\nadmin\t10\tyes\nbob, the "builder"\t3\tno\n')
    })

    it('--no-header, --columns and --sort pick and order what a script reads', async () => {
      const result = await runCli(['users', 'list', '--no-header', '--columns', 'id,username', '--sort=-id'], {env: env()})
      assert.equal(result.code, 0, result.stderr)
      assert.equal(result.stdout, '10\tadmin\n3\tbob, the "builder"\n2\tzoe\n')
    })

    it('--csv quotes what CSV needs quoted', async () => {
      const result = await runCli(['users', 'list', '--csv', '--sort', 'username'], {env: env()})
      assert.equal(result.code, 0, result.stderr)
      assert.equal(result.stdout, 'USERNAME,ID,ADMIN\nadmin,10,yes\n"bob, the ""builder""",3,no\nzoe,2,no\n')
    })

    it('an unknown column is refused before any request, listing the columns', async () => {
      const result = await runCli(['users', 'list', '--columns', 'username,email'], {env: env()})
      assert.equal(result.code, ExitCode.Usage)
      assert.match(result.stderr, /unknown column "email"/)
      assert.match(result.stderr, /Columns: username, id, admin/)
      assert.deepEqual(requests, [])
    })

    it('every table of the CLI is plain in a pipe and takes --columns and --json fields: roles list', async () => {
      const table = await runCli(['roles', 'list', '--columns', 'name,permissions'], {env: env()})
      assert.equal(table.code, 0, table.stderr)
      assert.equal(table.stdout, 'NAME\tPERMISSIONS\nreaders\texperiment * READ\n')
      const json = await runCli(['roles', 'list', '--json=name,id'], {env: env()})
      assert.equal(json.code, 0, json.stderr)
      assert.deepEqual(JSON.parse(json.stdout), {roles: [{id: 4, name: 'readers'}], workspace: 'default'})
    })

    it('perms list groups by kind, sorts ids as numbers, and shows names beside ids', async () => {
      const result = await runCli(['perms', 'list', '--user', 'alice'], {env: env()})
      assert.equal(result.code, 0, result.stderr)
      assert.deepEqual(result.stdout.trimEnd().split('\n'), [
        'KIND\tRESOURCE\tNAME\tPERMISSION\tVIA',
        'experiment\t9\tnine\tREAD\tdirect',
        'experiment\t12\ttwelve\tEDIT\tdirect',
        'model\tchurn-model\tchurn-model\tREAD\tdirect',
        'scorer\t9/relevance\trelevance (experiment "nine")\tMANAGE\tdirect',
      ])
      const json = JSON.parse((await runCli(['perms', 'list', '--user', 'alice', '--json'], {env: env()})).stdout)
      assert.deepEqual(
        json.permissions.map((row: {resource: string}) => row.resource),
        ['9', '12', 'churn-model', '9/relevance'],
      )
    })
  })

  describe('--json with a field list', () => {
    it('keeps only the fields asked for, in each item of a list', async () => {
      const result = await runCli(['users', 'list', '--json', 'username,is_admin'], {env: env()})
      assert.equal(result.code, 0, result.stderr)
      assert.deepEqual(JSON.parse(result.stdout), {users: USERS.map(({is_admin, username}) => ({is_admin, username}))})
      const perms = await runCli(['perms', 'list', '--user', 'alice', '--json=resource,permission'], {env: env()})
      assert.deepEqual(JSON.parse(perms.stdout).permissions[0], {permission: 'READ', resource: '9'})
      assert.equal(JSON.parse(perms.stdout).user, 'alice')
    })

    it('bare --json still prints the whole document', async () => {
      const result = await runCli(['users', 'list', '--json'], {env: env()})
      assert.deepEqual(JSON.parse(result.stdout), {users: USERS})
    })

    it('an unknown field is refused before any request, listing the valid ones', async () => {
      const result = await runCli(['users', 'list', '--json=username,email'], {env: env()})
      assert.equal(result.code, ExitCode.Usage)
      const {error} = JSON.parse(result.stdout)
      assert.equal(error.code, 'INVALID_JSON_FIELD')
      assert.match(error.message, /"email"/)
      assert.equal(error.hint, 'Available fields: id, username, is_admin.')
      assert.deepEqual(requests, [])
    })
  })

  describe('waiting', () => {
    it('--timeout and --retries bound a server that accepts and never answers: 1 + retries attempts, and the hint names both', async () => {
      const result = await runCli(['users', 'list', '--timeout', '1', '--retries', '1'], {env: env({MLFLOW_TRACKING_URI: silentUrl})})
      assert.equal(result.code, ExitCode.Unavailable, result.stderr)
      assert.equal(attempts, 2)
      assert.match(result.stderr, /retry 1 in/)
      assert.match(result.stderr, /--timeout/)
      assert.match(result.stderr, /--retries or MLFLOW_HTTP_REQUEST_MAX_RETRIES, now 1 from --retries/)
      // No spinner when stderr is not a terminal.
      assert.doesNotMatch(result.stderr, /Waiting for|\r/)
    })

    it('the flags win over MLflow’s variables', async () => {
      const result = await runCli(['users', 'list', '--retries', '0', '--timeout', '1'], {
        env: env({MLFLOW_HTTP_REQUEST_MAX_RETRIES: '5', MLFLOW_HTTP_REQUEST_TIMEOUT: '100', MLFLOW_TRACKING_URI: silentUrl}),
      })
      assert.equal(result.code, ExitCode.Unavailable, result.stderr)
      assert.equal(attempts, 1)
      assert.doesNotMatch(result.stderr, /retry 1/)
    })

    it('a refused connection is retried as many times as --retries says, and the hint mentions the settings', async () => {
      const result = await runCli(['users', 'list', '--retries', '2'], {env: env({MLFLOW_TRACKING_URI: closedUrl})})
      assert.equal(result.code, ExitCode.Unavailable)
      assert.equal(result.stderr.match(/; retry \d/g)?.length, 2, result.stderr)
      assert.match(result.stderr, /ECONNREFUSED/)
      assert.match(result.stderr, /mlflowctl tries 3 times \(--retries or MLFLOW_HTTP_REQUEST_MAX_RETRIES/)
    })

    it('a host name that does not exist (.invalid) fails at once, without retries', async () => {
      const result = await runCli(['users', 'list', '--retries', '5'], {env: env({MLFLOW_TRACKING_URI: 'http://mlflow.invalid:5000'})})
      assert.equal(result.code, ExitCode.Unavailable)
      assert.match(result.stderr, /ENOTFOUND/)
      assert.match(result.stderr, /not retried/)
      assert.doesNotMatch(result.stderr, /retry 1/)
    })

    it('on a terminal, a wait of more than half a second shows a spinner', async () => {
      const result = await runCliOnTerminal(['users', 'list', '--timeout', '2', '--retries', '0'], [], {env: env({MLFLOW_TRACKING_URI: silentUrl})})
      assert.equal(result.code, ExitCode.Unavailable, result.output)
      assert.match(result.output, /Waiting for 127\.0\.0\.1:\d+ \(GET \/api\/2\.0\/mlflow\/users\/list\)/)
      assert.equal(attempts, 1)
    })
  })

  describe('input', () => {
    it('a tracking URI without a scheme gets "did you mean http://host:port?", in login and elsewhere', async () => {
      const address = url.replace('http://', '')
      const login = await runCli(['login', '--tracking-uri', address, '--username', 'admin', '--password-stdin'], {input: 'admin-password-123'})
      assert.equal(login.code, ExitCode.Usage)
      assert.match(login.stderr, new RegExp(`did you mean ${url.replaceAll('.', '\\.')}\\?`))
      const list = await runCli(['users', 'list'], {env: env({MLFLOW_TRACKING_URI: address})})
      assert.equal(list.code, ExitCode.Usage)
      assert.match(list.stderr, new RegExp(`did you mean ${url.replaceAll('.', '\\.')}\\?`))
      assert.deepEqual(requests, [])
    })

    it('login does not take "garbage" for a local store: it asks for a server address', async () => {
      const result = await runCli(['login', '--username', 'admin', '--password-stdin'], {env: {MLFLOW_TRACKING_URI: 'garbage'}, input: 'x'})
      assert.equal(result.code, ExitCode.Usage)
      assert.match(result.stderr, /MLFLOW_TRACKING_URI: Not a server address: "garbage" \(e\.g\. http:\/\/127\.0\.0\.1:5000/)
      assert.doesNotMatch(result.stderr, /local store/)
    })

    it('a new password shorter than MLflow allows is refused before it is sent', async () => {
      const result = await runCli(['users', 'create', 'carol', '--password-stdin'], {env: env(), input: 'eleven-char'})
      assert.equal(result.code, ExitCode.Usage)
      assert.match(result.stderr, /at least 12 characters \(this one has 11\); nothing was changed/)
      assert.deepEqual(requests, [])
    })

    it('errors are wrapped between words, never inside a `command` or a URL', async () => {
      const loggedOut = await runCli(['users', 'list'], {env: {OCLIF_COLUMNS: '30'}})
      assert.equal(loggedOut.code, ExitCode.Unauthenticated)
      assert.ok(
        loggedOut.stderr.split('\n').some((line) => line.includes('`mlflowctl login`')),
        loggedOut.stderr,
      )
      for (const line of loggedOut.stderr.trimEnd().split('\n')) assert.match(line, /^ › {3}/)
      const longUrl = 'http://a-rather-long-host-name-for-mlflow.invalid:5000/prefix'
      const unreachable = await runCli(['users', 'list'], {env: env({MLFLOW_HTTP_REQUEST_MAX_RETRIES: '0', MLFLOW_TRACKING_URI: longUrl, OCLIF_COLUMNS: '40'})})
      assert.equal(unreachable.code, ExitCode.Unavailable)
      assert.ok(
        unreachable.stderr.split('\n').some((line) => line.includes(longUrl)),
        unreachable.stderr,
      )
    })
  })

  describe('login on a terminal', () => {
    it('shows the rule first, checks a short password as typed, and asks again on a mismatch', async () => {
      const result = await runCliOnTerminal(
        ['users', 'create', 'carol'],
        [
          {expect: 'Password for carol \\(at least 12 characters\\)', send: 'short\r'},
          {expect: 'Too short', send: '-and-longer-now\r'},
          {expect: 'Repeat the password', send: 'typo-typo-typo\r'},
          {expect: 'do not match', send: ''},
          {expect: 'Password for carol', send: 'long-enough-pw\r'},
          {expect: 'Repeat the password', send: 'long-enough-pw\r'},
        ],
        {env: env()},
      )
      assert.equal(result.unmatched, null, result.output)
      assert.ok(requests.includes('POST /api/2.0/mlflow/users/create'), result.output)
    })

    it('offers the stored URI and username as defaults', async () => {
      const home = await mkdtemp(join(tmpdir(), 'mlflowctl-i12b-'))
      const first = await runCli(['login', '--tracking-uri', url, '--username', 'admin', '--password-stdin'], {home, input: 'admin-password-123'})
      assert.equal(first.code, 0, first.stderr)
      const again = await runCliOnTerminal(
        ['login'],
        [
          {expect: `MLflow tracking URI \\(${url.replaceAll('.', '\\.')}\\)`, send: '\r'},
          {expect: 'Username \\(admin\\)', send: '\r'},
          {expect: 'Password for admin', send: 'admin-password-123\r'},
        ],
        {home},
      )
      assert.equal(again.unmatched, null, again.output)
      assert.equal(again.code, 0, again.output)
      assert.match(again.output, /Logged in to .* as admin/)
    })

    it('a server that does not answer: the login is kept, retried on request, and saved unchecked only when chosen', async () => {
      const home = await mkdtemp(join(tmpdir(), 'mlflowctl-i12b-'))
      const result = await runCliOnTerminal(
        ['login', '--timeout', '1', '--retries', '0'],
        [
          {expect: 'MLflow tracking URI \\(e\\.g\\.', send: `${silentUrl}\r`},
          {expect: 'Username', send: 'admin\r'},
          {expect: 'Password for admin', send: 'admin-password-123\r'},
          {expect: 'Checking the login at', send: ''},
          {expect: 'Save the login without checking it', send: '1\r'},
          {expect: 'Save the login without checking it', send: '3\r'},
        ],
        {home},
      )
      assert.equal(result.unmatched, null, result.output)
      assert.equal(result.code, 0, result.output)
      assert.equal(attempts, 2, 'tried once, then again when asked')
      assert.match(result.output, /Saved without checking/)
      const credentials = await readFile(join(home, '.mlflow', 'credentials'), 'utf8')
      assert.match(credentials, new RegExp(`tracking_uri = ${silentUrl.replaceAll('.', '\\.')}`))
      assert.match(credentials, /mlflow_tracking_password = admin-password-123/)
    })
  })
})
