/**
 * Fuzzing serve with raw HTTP (fast-check generates the bytes, sent over a bare socket): malformed
 * and wrongly typed JSON for every field of the auth API and of a few MLflow routes, huge,
 * truncated and deeply nested bodies, invalid UTF-8 in the target, headers and body, odd methods
 * and versions, duplicate and conflicting Content-Length / Transfer-Encoding, obs-fold,
 * absolute-form targets, and path tricks. serve runs as the built command (a crash is its exit)
 * in front of the real MLflow 3.17.2, and a second one in front of an upstream that is gone.
 *
 * Every answer must be: a 4xx or a success (never a 5xx; in front of the missing upstream 502,
 * 503 or 504 too), never a hang, never a success for an anonymous caller on a protected route or
 * for a non-admin on an admin-only one; serve never logs a bug and still answers afterwards.
 */
import assert from 'node:assert/strict'
import {after, before, describe, it} from 'node:test'

import fc from 'fast-check'

import {freePort} from '../support/mlflow-server.js'
import {MLFLOW_VERSIONS} from '../support/mlflow-versions.js'
import {Hang, sendRaw} from '../support/raw-socket.js'
import {basicAuth} from '../support/rest.js'
import {type RunningServe, startServe} from '../support/serve.js'
import {acquireServer, releaseServers} from '../support/servers.js'

after(releaseServers)

const ALICE = {password: 'alice-password-for-the-fuzz', username: 'alice'}
/** Only ever sent to auth API routes: it could otherwise change the shared MLflow server. */
const FUZZ_ADMIN = {password: 'fuzzadmin-password-for-the-fuzz', username: 'fuzzadmin'}
// Each property run's count; the whole file stays within about a minute on a busy 2-core machine.
const RUNS_LIVE = Number(process.env.MLFLOWCTL_FUZZ_RUNS ?? 1000)
const RUNS_GONE = Math.ceil(RUNS_LIVE / 4)
// A run is random unless a seed is given (fast-check prints the seed of a failing run).
const SEED = process.env.MLFLOWCTL_FUZZ_SEED === undefined ? {} : {seed: Number(process.env.MLFLOWCTL_FUZZ_SEED)}
const HANG_MS = 20_000
// serve's own timeouts, short, so a body that never comes ends in a 408 well before HANG_MS. The
// failed-login limits off: the fuzz sends many bad credentials from one address, and the limits
// have tests of their own (a 429 would hide what the inputs after it would have met).
const SERVE_ARGS = [
  '--idle-timeout',
  '2',
  '--header-timeout',
  '4',
  '--upstream-timeout',
  '8',
  '--lockout-per-address',
  '0',
  '--lockout-per-user-address',
  '0',
  '--lockout-per-user',
  '0',
]

type FieldKind = 'bool' | 'description' | 'experimentId' | 'name' | 'password' | 'permission' | 'resourceType' | 'roleId' | 'text' | 'username'

interface Route {
  /** Only admins may succeed here: a non-admin or anonymous 2xx is a leak. */
  adminOnly?: boolean
  /** Part of serve's own auth API (the only routes the fuzz admin is sent to). */
  auth?: boolean
  fields: Record<string, FieldKind>
  method: string
  path: string
  /** Needs no login (MLflow's unprotected routes). */
  public?: boolean
}

const f = (fields: string) =>
  Object.fromEntries(
    fields
      .split(' ')
      .filter(Boolean)
      .map((pair) => pair.split(':') as [string, FieldKind]),
  )

const ROUTES: Route[] = [
  {adminOnly: true, auth: true, fields: f('username:username password:password'), method: 'POST', path: '/api/2.0/mlflow/users/create'},
  {auth: true, fields: f('username:username'), method: 'GET', path: '/api/2.0/mlflow/users/get'},
  {auth: true, fields: f('username:username password:password current_password:password'), method: 'PATCH', path: '/api/2.0/mlflow/users/update-password'},
  {adminOnly: true, auth: true, fields: f('username:username is_admin:bool'), method: 'PATCH', path: '/api/2.0/mlflow/users/update-admin'},
  {adminOnly: true, auth: true, fields: f('username:username'), method: 'DELETE', path: '/api/2.0/mlflow/users/delete'},
  {adminOnly: true, auth: true, fields: {}, method: 'GET', path: '/api/2.0/mlflow/users/list'},
  {auth: true, fields: {}, method: 'GET', path: '/api/2.0/mlflow/users/current'},
  {
    auth: true,
    fields: f('experiment_id:experimentId username:username permission:permission'),
    method: 'POST',
    path: '/api/2.0/mlflow/experiments/permissions/create',
  },
  {auth: true, fields: f('experiment_id:experimentId username:username'), method: 'GET', path: '/api/2.0/mlflow/experiments/permissions/get'},
  {
    auth: true,
    fields: f('experiment_id:experimentId username:username permission:permission'),
    method: 'PATCH',
    path: '/api/2.0/mlflow/experiments/permissions/update',
  },
  {auth: true, fields: f('experiment_id:experimentId username:username'), method: 'DELETE', path: '/api/2.0/mlflow/experiments/permissions/delete'},
  {auth: true, fields: f('name:name username:username permission:permission'), method: 'POST', path: '/api/2.0/mlflow/registered-models/permissions/create'},
  {
    auth: true,
    fields: f('experiment_id:experimentId scorer_name:name username:username permission:permission'),
    method: 'POST',
    path: '/api/3.0/mlflow/scorers/permissions/create',
  },
  {
    auth: true,
    fields: f('username:username resource_type:resourceType resource_id:text permission:permission'),
    method: 'POST',
    path: '/api/3.0/mlflow/users/permissions/grant',
  },
  {auth: true, fields: f('username:username resource_type:resourceType resource_id:text'), method: 'POST', path: '/api/3.0/mlflow/users/permissions/revoke'},
  {auth: true, fields: f('username:username resource_type:resourceType resource_id:text'), method: 'GET', path: '/api/3.0/mlflow/users/permissions/get'},
  {auth: true, fields: f('username:username'), method: 'GET', path: '/api/3.0/mlflow/users/permissions/list'},
  {auth: true, fields: f('name:name workspace:text description:description'), method: 'POST', path: '/api/3.0/mlflow/roles/create'},
  {auth: true, fields: f('role_id:roleId name:name workspace:text'), method: 'GET', path: '/api/3.0/mlflow/roles/get'},
  {auth: true, fields: f('workspace:text'), method: 'GET', path: '/api/3.0/mlflow/roles/list'},
  {auth: true, fields: f('role_id:roleId name:name description:description'), method: 'PATCH', path: '/api/3.0/mlflow/roles/update'},
  {auth: true, fields: f('role_id:roleId'), method: 'DELETE', path: '/api/3.0/mlflow/roles/delete'},
  {
    auth: true,
    fields: f('role_id:roleId resource_type:resourceType resource_pattern:text permission:permission'),
    method: 'POST',
    path: '/api/3.0/mlflow/roles/permissions/add',
  },
  {auth: true, fields: f('role_permission_id:roleId'), method: 'DELETE', path: '/api/3.0/mlflow/roles/permissions/remove'},
  {auth: true, fields: f('role_permission_id:roleId permission:permission'), method: 'PATCH', path: '/api/3.0/mlflow/roles/permissions/update'},
  {auth: true, fields: f('role_id:roleId'), method: 'GET', path: '/api/3.0/mlflow/roles/permissions/list'},
  {auth: true, fields: f('username:username role_id:roleId'), method: 'POST', path: '/api/3.0/mlflow/roles/assign'},
  {auth: true, fields: f('username:username role_id:roleId'), method: 'DELETE', path: '/api/3.0/mlflow/roles/unassign'},
  {auth: true, fields: f('role_id:roleId'), method: 'GET', path: '/api/3.0/mlflow/roles/users/list'},
  {auth: true, fields: f('username:username'), method: 'GET', path: '/api/3.0/mlflow/users/roles/list'},
  {adminOnly: true, auth: true, fields: f('username:username password:password'), method: 'POST', path: '/api/2.0/mlflow/users/create-ui'},
  {adminOnly: true, fields: {}, method: 'GET', path: '/signup'},
  // MLflow's own routes (forwarded when allowed).
  {fields: f('experiment_id:experimentId'), method: 'GET', path: '/api/2.0/mlflow/experiments/get'},
  {fields: f('name:name artifact_location:text'), method: 'POST', path: '/api/2.0/mlflow/experiments/create'},
  {fields: f('max_results:roleId filter:text order_by:text view_type:text'), method: 'POST', path: '/api/2.0/mlflow/experiments/search'},
  {fields: f('experiment_id:experimentId run_name:name start_time:roleId'), method: 'POST', path: '/api/2.0/mlflow/runs/create'},
  {fields: f('experiment_ids:experimentId filter:text max_results:roleId'), method: 'POST', path: '/api/2.0/mlflow/runs/search'},
  {fields: f('run_id:text'), method: 'GET', path: '/api/2.0/mlflow/runs/get'},
  {fields: f('run_id:text key:name value:roleId timestamp:roleId'), method: 'POST', path: '/api/2.0/mlflow/runs/log-metric'},
  {fields: f('name:name source:text run_id:text'), method: 'POST', path: '/api/2.0/mlflow/model-versions/create'},
  {fields: f('filter:text max_results:roleId'), method: 'GET', path: '/api/2.0/mlflow/registered-models/search'},
  {fields: f('query:text variables:text'), method: 'POST', path: '/graphql'},
  {fields: {}, method: 'GET', path: '/api/2.0/mlflow-artifacts/artifacts/0/fuzz/x.txt'},
  {fields: {}, method: 'GET', path: '/version'},
  {fields: {}, method: 'GET', path: '/health', public: true},
  {fields: {}, method: 'GET', path: '/static-files/favicon.ico', public: true},
]

// ---- values ----

const good: Record<FieldKind, fc.Arbitrary<unknown>> = {
  bool: fc.constantFrom(true, false, 'true', 'false', 1, 0),
  description: fc.string({maxLength: 40}),
  experimentId: fc.constantFrom('0', '1', '2', '*', '999999'),
  name: fc.constantFrom('bob', 'fuzz-model', 'fuzz-exp', 'readers'),
  password: fc.constantFrom('a-long-enough-password', 'short'),
  permission: fc.constantFrom('READ', 'USE', 'EDIT', 'MANAGE', 'NO_PERMISSIONS', 'DENY', 'read', 'ADMIN'),
  resourceType: fc.constantFrom('experiment', 'registered_model', 'scorer', 'prompt', 'workspace', 'run', 'gateway_secret', 'nope'),
  roleId: fc.constantFrom(1, 2, 3, '1', '2'),
  text: fc.string({maxLength: 30}),
  username: fc.constantFrom('bob', 'carol', 'nobody-here', ''),
}

/** Values of every type but the expected one, and the strings that break naive code. */
const wrong: fc.Arbitrary<unknown> = fc.oneof(
  {
    arbitrary: fc.constantFrom(
      null,
      true,
      false,
      0,
      -1,
      1.5,
      1e308,
      2 ** 64,
      '',
      ' ',
      '\u0000',
      'a\u0000b',
      '\u202e',
      '\ud800',
      '__proto__',
      'constructor',
      '9223372036854775808',
      '-9223372036854775809',
      '٣',
      '06',
      [],
      {},
      {$gt: ''},
      JSON.parse('{"__proto__": {"is_admin": true}}') as unknown,
    ),
    weight: 8,
  },
  {arbitrary: fc.jsonValue({maxDepth: 3}), weight: 4},
  {arbitrary: fc.string({maxLength: 12, unit: 'binary'}), weight: 4},
  {arbitrary: fc.constant('x'.repeat(70_000)), weight: 1},
)

const value = (kind: FieldKind) => fc.oneof({arbitrary: good[kind], weight: 2}, {arbitrary: wrong, weight: 3})

/** A body object: each field present or not, good or wrongly typed, plus the odd unknown field. */
const bodyObject = (route: Route) =>
  fc.record(
    {
      ...Object.fromEntries(Object.entries(route.fields).map(([name, kind]) => [name, value(kind)])),
      extra: wrong,
    },
    {requiredKeys: []},
  )

type Encoding = 'bom' | 'deep' | 'dup-key' | 'garbage' | 'huge' | 'invalid-utf8' | 'json' | 'non-object' | 'truncated-json'

function encodeBody(encoding: Encoding, object: Record<string, unknown>, cut: number, bytes: Uint8Array): Buffer {
  const json = JSON.stringify(object)
  switch (encoding) {
    case 'json':
      return Buffer.from(json)
    case 'bom':
      return Buffer.from(`\uFEFF${json}`)
    case 'deep':
      return Buffer.from(`{"a":${'['.repeat(20_000 + cut)}${']'.repeat(20_000 + cut)}}`)
    case 'dup-key': {
      const [key] = Object.keys(object)
      return Buffer.from(key ? `{"${key}":"first",${json.slice(1)}` : '{"username":"bob","username":7}')
    }

    case 'garbage':
      return Buffer.from(bytes)
    case 'huge':
      // Past the 1 MiB an auth API body may have, still valid JSON.
      return Buffer.from(`{"username":"bob","pad":"${'p'.repeat(1_100_000)}"}`)
    case 'invalid-utf8':
      return Buffer.concat([
        Buffer.from(json.slice(0, Math.min(cut, json.length - 1))),
        Buffer.from([0xff, 0xfe, 0xc3]),
        Buffer.from(json.slice(Math.min(cut, json.length - 1))),
      ])
    case 'non-object':
      return Buffer.from(['5', '[]', 'null', '"x"', 'true', '[{"username":"bob"}]'][cut % 6])
    case 'truncated-json':
      return Buffer.from(json.slice(0, cut % Math.max(json.length, 1)))
  }
}

// ---- the request ----

type Framing =
  | 'chunked'
  | 'chunked-bad'
  | 'cl'
  | 'cl-dup-diff'
  | 'cl-dup-same'
  | 'cl-odd'
  | 'cl-short-close'
  | 'cl-short-wait'
  | 'cl-te'
  | 'declared-huge'
  | 'lf-only'
  | 'no-length'
  | 'te-odd'

interface Input {
  auth: 'admin' | 'alice' | 'alice-wrong' | 'bearer' | 'garbage' | 'invalid-utf8' | 'none' | 'no-colon' | 'raw-high-bytes' | 'unknown-unicode'
  body: Buffer | undefined
  contentType: string | undefined
  extraHeaders: string[]
  framing: Framing
  method: string
  pick: number
  route: Route
  target: string
  trick: string
  version: string
}

const PATH_TRICKS = [
  'none',
  'dotdot',
  'enc-dotdot',
  'double-slash',
  'dot',
  'nul',
  'backslash',
  'enc-slash',
  'semicolon',
  'trailing-slash',
  'pct-ff',
  'raw-ff',
  'fragment',
  'overlong',
  'absolute',
  'absolute-other-host',
  'asterisk',
  'enc-upper',
  'case',
]

function trickPath(path: string, trick: string, port: number): string {
  const cut = path.lastIndexOf('/')
  const [head, tail] = [path.slice(0, cut), path.slice(cut + 1)]
  switch (trick) {
    case 'dotdot':
      return `${head}/x/../${tail}`
    case 'enc-dotdot':
      return `${head}/x/%2e%2e/${tail}`
    case 'double-slash':
      return `/${path}`
    case 'dot':
      return `${head}/./${tail}`
    case 'nul':
      return `${path}%00`
    case 'backslash':
      return `${head}\\${tail}`
    case 'enc-slash':
      return `${head}%2F${tail}`
    case 'semicolon':
      return `${path};x=1`
    case 'trailing-slash':
      return `${path}/`
    case 'pct-ff':
      return `${path}%ff%fe`
    case 'raw-ff':
      return `${path}\u00ff\u00fe`
    case 'fragment':
      return `${path}#frag`
    case 'overlong':
      return `${path}/${'a'.repeat(12_000)}`
    case 'absolute':
      return `http://127.0.0.1:${port}${path}`
    case 'absolute-other-host':
      return `http://evil.example${path}`
    case 'asterisk':
      return '*'
    case 'enc-upper':
      return path.replace(/u/, '%75')
    case 'case':
      return path.toUpperCase()
    default:
      return path
  }
}

const EXTRA_HEADERS = [
  'X-Folded: first\r\n continued',
  'X-Bad Name: x',
  'X-Utf8: \u00ff\u00fe\u00c3',
  'X-Forwarded-User: admin',
  'X-Forwarded-For: 10.0.0.1',
  'X-Forwarded-Proto: https',
  'Remote-User: admin',
  'X-MLFLOW-WORKSPACE: other',
  'Expect: 100-continue',
  'Content-Type: text/plain',
  'Authorization: Basic Ym9iOndyb25n',
  'Host: second.example',
  'Transfer-Encoding: chunked',
  'Content-Length: 3',
  'Upgrade: websocket',
]

function authHeader(auth: Input['auth']): string | undefined {
  switch (auth) {
    case 'admin':
      return basicAuth(FUZZ_ADMIN)
    case 'alice':
      return basicAuth(ALICE)
    case 'alice-wrong':
      return basicAuth({password: 'not-her-password', username: ALICE.username})
    case 'bearer':
      return 'Bearer abc.def.ghi'
    case 'garbage':
      return 'Basic %%%not-base64'
    case 'no-colon':
      return `Basic ${Buffer.from('alice').toString('base64')}`
    case 'invalid-utf8':
      return `Basic ${Buffer.concat([Buffer.from('alice:'), Buffer.from([0xff, 0xfe, 0xc3])]).toString('base64')}`
    case 'raw-high-bytes':
      return 'Basic \u00ff\u00fe\u00c3'
    case 'unknown-unicode':
      return `Basic ${Buffer.from('李雷\u0000:pässwörd').toString('base64')}`
    case 'none':
      return undefined
  }
}

/** Percent-encodes the UTF-8 bytes of any string, lone surrogates included (as U+FFFD). */
const percent = (text: string) =>
  [...Buffer.from(text)]
    .map((byte) => (/[\w.~-]/.test(String.fromCharCode(byte)) ? String.fromCharCode(byte) : `%${byte.toString(16).padStart(2, '0')}`))
    .join('')

function input(port: number): fc.Arbitrary<Input> {
  return fc
    .record({
      auth: fc.oneof(
        {arbitrary: fc.constantFrom<Input['auth']>('admin', 'alice'), weight: 6},
        {
          arbitrary: fc.constantFrom<Input['auth']>(
            'alice-wrong',
            'bearer',
            'garbage',
            'invalid-utf8',
            'none',
            'no-colon',
            'raw-high-bytes',
            'unknown-unicode',
          ),
          weight: 3,
        },
      ),
      bytes: fc.uint8Array({maxLength: 64}),
      contentType: fc.constantFrom(
        'application/json',
        'application/json',
        'application/json; charset=utf-16',
        'text/plain',
        'application/x-www-form-urlencoded',
        undefined,
        'application/json\u00ff',
      ),
      cut: fc.nat({max: 200}),
      encoding: fc.oneof(
        {arbitrary: fc.constant<Encoding>('json'), weight: 6},
        {arbitrary: fc.constantFrom<Encoding>('bom', 'deep', 'dup-key', 'garbage', 'huge', 'invalid-utf8', 'non-object', 'truncated-json'), weight: 4},
      ),
      extra: fc.oneof(
        {arbitrary: fc.constant<number[]>([]), weight: 3},
        {arbitrary: fc.uniqueArray(fc.nat({max: EXTRA_HEADERS.length - 1}), {maxLength: 2}), weight: 1},
      ),
      framing: fc.oneof(
        {arbitrary: fc.constant<Framing>('cl'), weight: 6},
        {
          arbitrary: fc.constantFrom<Framing>(
            'chunked',
            'chunked-bad',
            'cl-dup-diff',
            'cl-dup-same',
            'cl-odd',
            'cl-short-close',
            'cl-short-wait',
            'cl-te',
            'declared-huge',
            'lf-only',
            'no-length',
            'te-odd',
          ),
          weight: 3,
        },
      ),
      manyHeaders: fc.boolean(),
      method: fc.oneof(
        {arbitrary: fc.constant('route'), weight: 6},
        {
          arbitrary: fc.constantFrom('GET', 'POST', 'PUT', 'PATCH', 'DELETE', 'HEAD', 'OPTIONS', 'TRACE', 'CONNECT', 'PROPFIND', 'get', 'BREW', 'M-SEARCH'),
          weight: 2,
        },
        {arbitrary: fc.stringMatching(/^[A-Za-z!#$%&'*+.^_`|~-]{1,12}$/), weight: 1},
      ),
      object: fc.integer({max: ROUTES.length - 1, min: 0}).chain((index) => fc.tuple(fc.constant(index), bodyObject(ROUTES[index]))),
      pick: fc.nat(),
      query: fc.boolean(),
      trick: fc.oneof({arbitrary: fc.constant('none'), weight: 6}, {arbitrary: fc.constantFrom(...PATH_TRICKS), weight: 2}),
      version: fc.oneof({arbitrary: fc.constant('HTTP/1.1'), weight: 12}, {arbitrary: fc.constantFrom('HTTP/1.0', 'HTTP/2.0', 'HTTP/1.1x', ''), weight: 1}),
    })
    .map((raw) => {
      const [index, object] = raw.object
      const route = ROUTES[index]
      const method = raw.method === 'route' ? route.method : raw.method
      // Parameters go in the query for GET/DELETE routes (as MLflow reads them), else in the body.
      let path = route.path
      let body: Buffer | undefined
      if (raw.query || route.method === 'GET') {
        const search = Object.entries(object)
          .map(([name, v]) => `${percent(name)}=${percent(typeof v === 'string' ? v : (JSON.stringify(v) ?? ''))}`)
          .join('&')
        if (search) path += `?${search}`
      }

      if (!(route.method === 'GET' && raw.framing === 'cl' && raw.encoding === 'json')) body = encodeBody(raw.encoding, object, raw.cut, raw.bytes)
      const extraHeaders = raw.extra.map((i) => EXTRA_HEADERS[i])
      // Now and then over serve's limits on header fields and bytes (431).
      if (raw.manyHeaders && raw.pick % 32 === 0) for (let i = 0; i < 120; i++) extraHeaders.push(`X-Many-${i}: ${i}`)
      if (raw.manyHeaders && raw.pick % 32 === 1) extraHeaders.push(`X-Long: ${'v'.repeat(20_000)}`)
      return {
        // The fuzz admin stays on serve's own API: on MLflow's routes it could change the shared server.
        auth: raw.auth === 'admin' && !route.auth ? 'alice' : raw.auth,
        body,
        contentType: raw.contentType,
        extraHeaders,
        framing: raw.framing,
        method,
        pick: raw.pick,
        route,
        target: trickPath(path, raw.trick, port),
        trick: raw.trick,
        version: raw.version,
      }
    })
}

/** The bytes of one request, and whether to close our side after them. */
function requestBytes(input: Input): {bytes: Buffer; endAfter: boolean} {
  const lines = [`${input.method} ${input.target}${input.version ? ` ${input.version}` : ''}`, 'Host: 127.0.0.1', 'Connection: close']
  const authorization = authHeader(input.auth)
  if (authorization) lines.push(`Authorization: ${authorization}`)
  if (input.contentType) lines.push(`Content-Type: ${input.contentType}`)
  lines.push(...input.extraHeaders)
  const body = input.body ?? Buffer.alloc(0)
  let payload = body
  let endAfter = false
  switch (input.framing) {
    case 'cl':
    case 'lf-only':
      if (input.body) lines.push(`Content-Length: ${body.length}`)
      break
    case 'chunked':
      lines.push('Transfer-Encoding: chunked')
      payload = Buffer.concat([Buffer.from(`${body.length.toString(16)}\r\n`), body, Buffer.from('\r\n0\r\n\r\n')])
      break
    case 'chunked-bad': {
      lines.push('Transfer-Encoding: chunked')
      const size = ['zz', '-1', 'fffffffffffffffffff', `${body.length.toString(16)};ext="\u00ff"`, '1 1'][input.pick % 5]
      payload = Buffer.concat([Buffer.from(`${size}\r\n`, 'latin1'), body, Buffer.from('\r\n0\r\n\r\n')])
      endAfter = input.pick % 2 === 0
      break
    }

    case 'cl-dup-diff':
      lines.push(`Content-Length: ${body.length}`, `Content-Length: ${body.length + 1}`)
      endAfter = true
      break
    case 'cl-dup-same':
      lines.push(`Content-Length: ${body.length}`, `Content-Length: ${body.length}`)
      break
    case 'cl-odd':
      lines.push(
        `Content-Length: ${[`+${body.length}`, ` ${body.length} `, `${body.length}, ${body.length}`, `0x${body.length.toString(16)}`, '-1', `${body.length}.0`][input.pick % 6]}`,
      )
      endAfter = true
      break
    case 'cl-short-close':
      lines.push(`Content-Length: ${body.length + 100}`)
      endAfter = true
      break
    case 'cl-short-wait':
      // Never completed: serve's idle timeout must end it.
      lines.push(`Content-Length: ${body.length + 100}`)
      break
    case 'cl-te':
      lines.push(`Content-Length: ${body.length}`, 'Transfer-Encoding: chunked')
      payload = Buffer.concat([Buffer.from(`${body.length.toString(16)}\r\n`), body, Buffer.from('\r\n0\r\n\r\n')])
      break
    case 'declared-huge':
      lines.push('Content-Length: 99999999999')
      endAfter = true
      break
    case 'no-length':
      // The body's bytes then read as a second request on the connection.
      break
    case 'te-odd':
      lines.push(`Transfer-Encoding: ${['chunked, gzip', 'gzip', 'xchunked', 'Chunked', 'chunked\u000b', 'identity, chunked'][input.pick % 6]}`)
      payload = Buffer.concat([Buffer.from(`${body.length.toString(16)}\r\n`), body, Buffer.from('\r\n0\r\n\r\n')])
      endAfter = true
      break
  }

  const eol = input.framing === 'lf-only' ? '\n' : '\r\n'
  const head = Buffer.from(lines.join(eol) + eol + eol, 'latin1')
  return {bytes: Buffer.concat([head, payload]), endAfter}
}

const authenticatedAs = (input: Input) => (input.auth === 'admin' ? 'admin' : input.auth === 'alice' ? 'alice' : 'anonymous')

interface Counts {
  byStatus: Map<string, number>
  /** MLflow's own 5xx answers to what serve forwarded (not serve's: reported, not failed). */
  mlflow5xx: string[]
  runs: number
}

/** The property, for a serve in front of a live upstream (gone: 502/503/504 are allowed too). */
async function check(serve: RunningServe, input: Input, gone: boolean, counts: Counts): Promise<void> {
  const port = Number(new URL(serve.url).port)
  const {bytes, endAfter} = requestBytes(input)
  const what = `${JSON.stringify(bytes.toString('latin1').slice(0, 400))}${bytes.length > 400 ? ` … (${bytes.length} bytes)` : ''}`
  let answer
  try {
    answer = await sendRaw(port, bytes, {endAfter, hangAfterMs: HANG_MS})
  } catch (error) {
    if (error instanceof Hang) assert.fail(`serve hung on ${what}: ${error.message}`)
    throw error
  }

  counts.runs++
  const key = String(answer.status ?? 'closed')
  counts.byStatus.set(key, (counts.byStatus.get(key) ?? 0) + 1)
  const status = answer.status
  const message = `${what}\n→ ${JSON.stringify(answer.raw.slice(0, 400))}`
  assert.equal(serve.child.exitCode, null, `serve exited on ${message}\n${serve.output()}`)
  if (status === undefined) {
    // Only a client that went away mid-request may go unanswered.
    assert.ok(endAfter, `closed without an answer: ${message}`)
    return
  }

  const upstreamGone = gone && [502, 503, 504].includes(status)
  // MLflow's own answer, relayed as it is (uvicorn names itself; serve's answers carry no Server
  // header): MLflow fails with a 500 on some wrongly typed fields serve has no reason to read.
  if (status >= 500 && !gone && /^server: uvicorn/im.test(answer.head)) {
    counts.mlflow5xx.push(`${input.method} ${input.target.slice(0, 200)} ${input.body?.toString('latin1').slice(0, 200) ?? ''} → ${answer.body.slice(0, 120)}`)
    return
  }

  assert.ok(status < 500 || upstreamGone, `a ${status}: ${message}`)
  if (status >= 200 && status < 300) {
    const who = authenticatedAs(input)
    if (who === 'anonymous') assert.ok(input.route.public, `an anonymous ${status} on a protected route: ${message}`)
    if (who !== 'admin') assert.ok(!input.route.adminOnly, `a non-admin ${status} on an admin-only route: ${message}`)
  }
}

const BUG_IN_LOG = /a bug in mlflowctl serve|Uncaught|TypeError|RangeError|ReferenceError|unhandled/i

async function stillServes(serve: RunningServe): Promise<void> {
  const answer = await fetch(`${serve.url}/api/2.0/mlflow/users/current`, {headers: {authorization: basicAuth(ALICE)}})
  const text = await answer.text()
  assert.equal(answer.status, 200, text)
  assert.equal((JSON.parse(text) as {user: {username: string}}).user.username, ALICE.username)
  assert.doesNotMatch(serve.output(), BUG_IN_LOG)
}

async function seedUsers(serve: RunningServe): Promise<void> {
  for (const [user, admin] of [
    [ALICE, false],
    [FUZZ_ADMIN, true],
    [{password: 'bob-password-for-the-fuzz', username: 'bob'}, false],
  ] as const) {
    const headers = {authorization: basicAuth(serve.admin), 'content-type': 'application/json'}
    const created = await fetch(`${serve.url}/api/2.0/mlflow/users/create`, {body: JSON.stringify(user), headers, method: 'POST'})
    assert.equal(created.status, 200, await created.text())
    if (admin) {
      const promoted = await fetch(`${serve.url}/api/2.0/mlflow/users/update-admin`, {
        body: JSON.stringify({is_admin: true, username: user.username}),
        headers,
        method: 'PATCH',
      })
      assert.equal(promoted.status, 200, await promoted.text())
    }
  }
}

function report(label: string, counts: Counts): void {
  const statuses = [...counts.byStatus.entries()].sort(([a], [b]) => a.localeCompare(b)).map(([status, n]) => `${status}: ${n}`)
  process.stdout.write(`# fuzz ${label}: ${counts.runs} inputs; answers ${statuses.join(', ')}\n`)
  for (const line of counts.mlflow5xx.slice(0, 5)) process.stdout.write(`#   MLflow's own 5xx, relayed: ${JSON.stringify(line)}\n`)
}

describe(`serve under fuzzed raw HTTP (MLflow ${MLFLOW_VERSIONS.latest})`, () => {
  let live: RunningServe
  let gone: RunningServe
  before(async () => {
    const upstream = await acquireServer(MLFLOW_VERSIONS.latest, 'plain')
    // Nothing listens there: every forward finds the upstream gone.
    const nowhere = `http://127.0.0.1:${await freePort()}`
    ;[live, gone] = await Promise.all([startServe({extraArgs: SERVE_ARGS, upstream: upstream.url}), startServe({extraArgs: SERVE_ARGS, upstream: nowhere})])
    await Promise.all([seedUsers(live), seedUsers(gone)])
  })
  after(async () => {
    await Promise.all([live?.stop(), gone?.stop()])
  })

  it('in front of the real MLflow: 4xx or success as allowed, never a 5xx, a hang or a crash', async () => {
    const counts: Counts = {byStatus: new Map(), mlflow5xx: [], runs: 0}
    const port = Number(new URL(live.url).port)
    await fc.assert(
      fc.asyncProperty(input(port), (generated) => check(live, generated, false, counts)),
      {...SEED, includeErrorInReport: true, numRuns: RUNS_LIVE},
    )
    report('in front of MLflow', counts)
    await stillServes(live)
  })

  it('in front of an upstream that is gone: 4xx, or 502/503/504 for what must be forwarded', async () => {
    const counts: Counts = {byStatus: new Map(), mlflow5xx: [], runs: 0}
    const port = Number(new URL(gone.url).port)
    await fc.assert(
      fc.asyncProperty(input(port), (generated) => check(gone, generated, true, counts)),
      {...SEED, includeErrorInReport: true, numRuns: RUNS_GONE},
    )
    report('upstream gone', counts)
    await stillServes(gone)
  })
})
