/**
 * The auth API's answers to bad input, side by side: each case of the table is sent as the same
 * HTTP request to MLflow 3.17.2's basic-auth app and to serve in front of a plain MLflow 3.17.2,
 * and both must give the same status line, content type, error_code, message, error_class and
 * sqlstate. Where serve answers otherwise on purpose, the case says what each answers and why.
 */
import assert from 'node:assert/strict'
import {randomBytes, randomInt} from 'node:crypto'
import {request as httpRequest} from 'node:http'
import {after, before, describe, it} from 'node:test'

import {type AuthTarget, authTarget} from '../support/auth-target.js'
import {type Credentials} from '../support/mlflow-server.js'
import {MLFLOW_VERSIONS} from '../support/mlflow-versions.js'
import {basicAuth, restClient} from '../support/rest.js'
import {releaseServers, uniqueName} from '../support/servers.js'

const version = MLFLOW_VERSIONS.latest
const API2 = '/api/2.0/mlflow'
const API3 = '/api/3.0/mlflow'
const UNKNOWN_ID = 999_999

after(releaseServers)

/** What one target holds for the cases: the same names on both, each with its own ids. */
interface World {
  admin: Credentials
  alice: Credentials
  bob: Credentials
  boss: Credentials
  carol: Credentials
  /** A workspace administrator: holds a role with the row (workspace, *, MANAGE). */
  dave: Credentials
  /** A user whose name is all digits. */
  digits: Credentials
  blankName: string
  nobody: string
  numericName: number
  /** A role with one row; another role whose name the first cannot take. */
  role: number
  roleName: string
  row: number
  otherRoleName: string
  url: string
}

interface Names {
  alice: Credentials
  blankName: string
  bob: Credentials
  boss: Credentials
  carol: Credentials
  dave: Credentials
  digits: Credentials
  nobody: string
  numericName: number
  otherRoleName: string
  roleName: string
}

type Who = 'admin' | 'alice' | 'bob' | 'boss' | 'carol' | 'dave' | 'none'

interface Case {
  /** The JSON body (a function of the target's world), or the raw bytes when a string. */
  body?: ((w: World) => unknown) | string
  /** The Content-Type sent; default application/json when there is a body. null: none. */
  contentType?: null | string
  /**
   * Where serve answers otherwise on purpose: what MLflow answers (asserted, so the difference stays
   * documented truthfully), what serve answers, and why.
   */
  differs?: {mlflow: Expected; serve: Expected; why: string}
  /** Compare the message only up to this text (MLflow appends its database's error after it). */
  messageUpTo?: string
  method: string
  name: string
  path: (w: World) => string
  who?: Who
}

interface Expected {
  code?: string
  message?: RegExp | string
  status: number
}

interface Answer {
  /** Allow, as a sorted list (Flask's order varies). */
  allow?: string[]
  body: string
  contentType: string
  json?: Record<string, unknown>
  status: number
  statusMessage: string
}

function send(w: World, c: Case): Promise<Answer> {
  const url = new URL(c.path(w), w.url)
  const payload = c.body === undefined ? undefined : Buffer.from(typeof c.body === 'string' ? c.body : JSON.stringify(c.body(w)))
  const headers: Record<string, string> = {}
  const who = c.who ?? 'admin'
  if (who !== 'none') headers.authorization = basicAuth(w[who])
  const contentType = c.contentType === undefined ? (payload ? 'application/json' : undefined) : c.contentType
  if (contentType) headers['content-type'] = contentType
  if (payload) headers['content-length'] = String(payload.length)
  return new Promise((resolve, reject) => {
    const req = httpRequest(url, {headers, method: c.method}, (res) => {
      const chunks: Buffer[] = []
      res.on('data', (chunk: Buffer) => chunks.push(chunk))
      res.on('error', reject)
      res.on('end', () => {
        const body = Buffer.concat(chunks).toString('utf8')
        let json: Record<string, unknown> | undefined
        try {
          json = JSON.parse(body) as Record<string, unknown>
        } catch {}

        const allow = res.headers.allow?.split(', ').sort()
        resolve({allow, body, contentType: String(res.headers['content-type']), json, status: res.statusCode!, statusMessage: res.statusMessage!})
      })
    })
    req.on('error', reject)
    req.end(payload)
  })
}

/** Ids differ between the two targets; the words around them must not. */
const scrubIds = (text: string) =>
  text.replaceAll(/\b(id|user_id|role_id)=(\d+)/g, (all, key: string, id: string) => (Number(id) === UNKNOWN_ID ? all : `${key}=<id>`))

/** What must be the same on both targets. */
function comparable(answer: Answer, c: Case): unknown {
  const base = {allow: answer.allow, contentType: answer.contentType, status: answer.status, statusLine: `${answer.status} ${answer.statusMessage}`}
  if (answer.status === 200) return {...base, keys: Object.keys(answer.json ?? {}).sort()}
  if (!answer.json) return {...base, text: answer.body}
  const {message, ...rest} = answer.json
  let text = scrubIds(String(message))
  if (c.messageUpTo !== undefined && text.includes(c.messageUpTo)) text = text.slice(0, text.indexOf(c.messageUpTo) + c.messageUpTo.length)
  return {...base, ...rest, message: text}
}

function assertExpected(answer: Answer, expected: Expected, what: string): void {
  const shown = `${what}: ${answer.status} ${answer.body.slice(0, 300)}`
  assert.equal(answer.status, expected.status, shown)
  if (expected.code !== undefined) assert.equal(answer.json?.error_code, expected.code, shown)
  if (typeof expected.message === 'string') assert.equal(answer.json?.message ?? answer.body, expected.message, shown)
  else if (expected.message) assert.match(String(answer.json?.message ?? answer.body), expected.message, shown)
}

const body = (make: (w: World) => unknown) => make
const users = (path: string) => () => `${API2}/users/${path}`
const q = (path: string, params: (w: World) => Record<string, number | string>) => (w: World) =>
  `${path}?${new URLSearchParams(Object.entries(params(w)).map(([key, value]): [string, string] => [key, String(value)]))}`

const CASES: Case[] = [
  // ---- users/create ----
  {
    body: body((w) => ({password: 'a-long-password-1', username: `${w.nobody}-c1`})),
    contentType: null,
    method: 'POST',
    name: 'create: no Content-Type',
    path: users('create'),
  },
  {body: '{"username": "x", "password": "a-long-password-1"}', contentType: 'text/plain', method: 'POST', name: 'create: text/plain', path: users('create')},
  {body: 'null', method: 'POST', name: 'create: a null body', path: users('create')},
  {body: '[]', method: 'POST', name: 'create: an array body', path: users('create')},
  {body: '"alice"', method: 'POST', name: 'create: a string body', path: users('create')},
  {body: '{"username": ', method: 'POST', name: 'create: malformed JSON', path: users('create')},
  {body: '', method: 'POST', name: 'create: an empty JSON body', path: users('create')},
  {body: body(() => ({})), method: 'POST', name: 'create: {}', path: users('create')},
  {body: body((w) => ({username: w.nobody})), method: 'POST', name: 'create: no password', path: users('create')},
  {body: body(() => ({password: 'a-long-password-1', username: ''})), method: 'POST', name: 'create: empty username', path: users('create')},
  {body: body((w) => ({password: '', username: w.nobody})), method: 'POST', name: 'create: empty password', path: users('create')},
  {body: body(() => ({password: 'a-long-password-1', username: null})), method: 'POST', name: 'create: null username', path: users('create')},
  {body: body((w) => ({password: null, username: w.nobody})), method: 'POST', name: 'create: null password', path: users('create')},
  {body: body(() => ({password: 'a-long-password-1', username: false})), method: 'POST', name: 'create: username false', path: users('create')},
  {body: body(() => ({password: 'a-long-password-1', username: 0})), method: 'POST', name: 'create: username 0', path: users('create')},
  {body: body(() => ({password: 'a-long-password-1', username: []})), method: 'POST', name: 'create: username []', path: users('create')},
  {body: body((w) => ({password: 'short', username: w.nobody})), method: 'POST', name: 'create: a short password', path: users('create')},
  {body: body((w) => ({password: 'elevenchars', username: w.nobody})), method: 'POST', name: 'create: 11 characters', path: users('create')},
  {
    body: body((w) => ({password: 'abcdefghij\u{1F600}', username: w.nobody})),
    method: 'POST',
    name: 'create: 11 characters, 12 UTF-16 units',
    path: users('create'),
  },
  {
    body: body((w) => ({password: 123_456_789_012, username: w.nobody})),
    differs: {
      mlflow: {status: 500},
      serve: {code: 'INVALID_PARAMETER_VALUE', message: 'Password must be at least 12 characters.', status: 400},
      why: 'MLflow fails on len() of a number',
    },
    method: 'POST',
    name: 'create: a numeric password',
    path: users('create'),
  },
  {
    body: body((w) => ({password: 'a-long-password-1', username: w.numericName})),
    differs: {
      mlflow: {status: 200},
      serve: {code: 'INVALID_PARAMETER_VALUE', message: 'Username must be a string.', status: 400},
      why: 'MLflow stores a number as a name, and answers it back as a number',
    },
    method: 'POST',
    name: 'create: a numeric username',
    path: users('create'),
  },
  {
    body: body((w) => ({password: 'a-long-password-1', username: w.blankName})),
    differs: {
      mlflow: {status: 200},
      serve: {code: 'INVALID_PARAMETER_VALUE', message: 'Username cannot be empty.', status: 400},
      why: 'a blank name cannot be told apart in a list',
    },
    method: 'POST',
    name: 'create: a blank username',
    path: users('create'),
  },
  {
    body: body((w) => ({password: 'a-long-password-1', username: w.alice.username})),
    messageUpTo: 'already exists.',
    method: 'POST',
    name: 'create: a taken username',
    path: users('create'),
  },
  {
    body: body((w) => ({password: 'a-long-password-1', username: `${w.nobody}-c2`})),
    method: 'POST',
    name: 'create: by a non-admin',
    path: users('create'),
    who: 'alice',
  },
  {
    body: body((w) => ({password: 'a-long-password-1', username: `${w.nobody}-c4`})),
    method: 'POST',
    name: 'create: by a workspace administrator',
    path: users('create'),
    who: 'dave',
  },
  {
    body: body((w) => ({password: 'a-long-password-1', username: `${w.nobody}-c3`})),
    contentType: 'application/merge-patch+json',
    method: 'POST',
    name: 'create: a +json type',
    path: users('create'),
  },
  {method: 'GET', name: 'create: GET', path: users('create')},

  // ---- users/get ----
  {method: 'GET', name: 'get: no username', path: users('get')},
  {method: 'GET', name: 'get: empty username', path: q(`${API2}/users/get`, () => ({username: ''}))},
  {method: 'GET', name: 'get: unknown user', path: q(`${API2}/users/get`, (w) => ({username: w.nobody}))},
  {method: 'GET', name: 'get: another user, by a non-admin', path: q(`${API2}/users/get`, (w) => ({username: w.bob.username})), who: 'alice'},
  {method: 'GET', name: 'get: unknown user, by a non-admin', path: q(`${API2}/users/get`, (w) => ({username: w.nobody})), who: 'alice'},
  {method: 'GET', name: 'get: no username, by a non-admin', path: users('get'), who: 'alice'},
  {method: 'GET', name: 'get: no credentials', path: users('get'), who: 'none'},

  // ---- users/update-password ----
  {body: 'null', method: 'PATCH', name: 'update-password: a null body', path: users('update-password')},
  {body: body(() => ({})), method: 'PATCH', name: 'update-password: {}', path: users('update-password')},
  {body: body((w) => ({username: w.alice.username})), method: 'PATCH', name: 'update-password: no password', path: users('update-password')},
  {
    body: body((w) => ({password: 'a-long-password-1', username: w.nobody})),
    method: 'PATCH',
    name: 'update-password: unknown user',
    path: users('update-password'),
  },
  {
    body: body((w) => ({password: 'short', username: w.nobody})),
    method: 'PATCH',
    name: 'update-password: unknown user, short password',
    path: users('update-password'),
  },
  {
    body: body((w) => ({password: 'short', username: w.alice.username})),
    method: 'PATCH',
    name: 'update-password: admin sets a short one',
    path: users('update-password'),
  },
  {
    body: body((w) => ({password: '', username: w.alice.username})),
    method: 'PATCH',
    name: 'update-password: admin sets an empty one',
    path: users('update-password'),
  },
  {
    body: body((w) => ({password: null, username: w.alice.username})),
    differs: {
      mlflow: {status: 200},
      serve: {code: 'INVALID_PARAMETER_VALUE', message: 'Password must be at least 12 characters.', status: 400},
      why: 'MLflow answers 200 having changed nothing',
    },
    method: 'PATCH',
    name: 'update-password: admin sets null',
    path: users('update-password'),
  },
  {
    body: body((w) => ({password: 123_456_789_012_345, username: w.alice.username})),
    differs: {
      mlflow: {code: 'INTERNAL_ERROR', status: 500},
      serve: {code: 'INVALID_PARAMETER_VALUE', message: 'Password must be at least 12 characters.', status: 400},
      why: 'MLflow fails on len() of a number',
    },
    method: 'PATCH',
    name: 'update-password: admin sets a number',
    path: users('update-password'),
  },
  {
    body: body((w) => ({password: 'a-long-password-2', username: w.bob.username})),
    method: 'PATCH',
    name: "update-password: another user's, by a non-admin",
    path: users('update-password'),
    who: 'alice',
  },
  {
    body: body(() => ({password: 'a-long-password-2'})),
    method: 'PATCH',
    name: 'update-password: no username, by a non-admin',
    path: users('update-password'),
    who: 'alice',
  },
  {
    body: body((w) => ({password: 'a-long-password-2', username: w.alice.username})),
    method: 'PATCH',
    name: 'update-password: own, no current password',
    path: users('update-password'),
    who: 'alice',
  },
  {
    body: body((w) => ({current_password: '', password: 'a-long-password-2', username: w.alice.username})),
    method: 'PATCH',
    name: 'update-password: own, empty current password',
    path: users('update-password'),
    who: 'alice',
  },
  {
    body: body((w) => ({current_password: null, password: 'a-long-password-2', username: w.alice.username})),
    method: 'PATCH',
    name: 'update-password: own, null current password',
    path: users('update-password'),
    who: 'alice',
  },
  {
    body: body((w) => ({current_password: 'not-her-password', password: 'a-long-password-2', username: w.alice.username})),
    method: 'PATCH',
    name: 'update-password: own, wrong current password',
    path: users('update-password'),
    who: 'alice',
  },
  {
    body: body((w) => ({current_password: 'not-her-password', password: 'short', username: w.alice.username})),
    method: 'PATCH',
    name: 'update-password: own, wrong current and short new',
    path: users('update-password'),
    who: 'alice',
  },
  {
    body: body((w) => ({current_password: w.alice.password, password: w.alice.password, username: w.alice.username})),
    method: 'PATCH',
    name: 'update-password: own, the same password',
    path: users('update-password'),
    who: 'alice',
  },
  {
    body: body((w) => ({current_password: w.alice.password, password: 'short', username: w.alice.username})),
    method: 'PATCH',
    name: 'update-password: own, a short new one',
    path: users('update-password'),
    who: 'alice',
  },
  {
    body: body((w) => ({current_password: 12_345, password: 'a-long-password-2', username: w.alice.username})),
    differs: {
      mlflow: {code: 'INTERNAL_ERROR', status: 500},
      serve: {code: 'INVALID_PARAMETER_VALUE', message: 'Current password does not match.', status: 400},
      why: 'MLflow fails hashing a number',
    },
    method: 'PATCH',
    name: 'update-password: own, a numeric current password',
    path: users('update-password'),
    who: 'alice',
  },
  {
    body: body((w) => ({current_password: w.admin.password, password: w.admin.password, username: w.admin.username})),
    method: 'PATCH',
    name: 'update-password: an admin, own, the same password',
    path: users('update-password'),
  },
  {
    body: body((w) => ({password: 'a-long-password-2', username: w.admin.username})),
    method: 'PATCH',
    name: 'update-password: an admin, own, no current password',
    path: users('update-password'),
  },

  // ---- users/update-admin ----
  {body: body(() => ({})), method: 'PATCH', name: 'update-admin: {}', path: users('update-admin')},
  {body: body((w) => ({username: w.bob.username})), method: 'PATCH', name: 'update-admin: no is_admin', path: users('update-admin')},
  {body: body((w) => ({is_admin: true, username: w.nobody})), method: 'PATCH', name: 'update-admin: unknown user', path: users('update-admin')},
  ...(['yes', 'true', 2] as const).map((value): Case => ({
    body: body((w) => ({is_admin: value, username: w.bob.username})),
    // Both refuse with 400 BAD_REQUEST; MLflow's message is its database's error, with the SQL.
    differs: {
      mlflow: {
        code: 'BAD_REQUEST',
        message: new RegExp(`^\\(builtins\\.\\w+\\) (Not a boolean value: '${value}'|Value ${value} is not None, True, or False)\\n\\[SQL: UPDATE users`),
        status: 400,
      },
      serve: {code: 'BAD_REQUEST', message: `Not a boolean value: ${typeof value === 'string' ? `'${value}'` : value}`, status: 400},
      why: 'the same refusal without the SQL statement',
    },
    method: 'PATCH',
    name: `update-admin: is_admin ${JSON.stringify(value)}`,
    path: users('update-admin'),
  })),
  {
    body: body((w) => ({is_admin: null, username: w.bob.username})),
    differs: {
      mlflow: {status: 200},
      serve: {code: 'BAD_REQUEST', message: 'Not a boolean value: None', status: 400},
      why: 'MLflow answers 200 having changed nothing',
    },
    method: 'PATCH',
    name: 'update-admin: is_admin null',
    path: users('update-admin'),
  },
  {body: body((w) => ({is_admin: 1, username: w.bob.username})), method: 'PATCH', name: 'update-admin: is_admin 1', path: users('update-admin')},
  {body: body((w) => ({is_admin: 0, username: w.bob.username})), method: 'PATCH', name: 'update-admin: is_admin 0', path: users('update-admin')},
  {
    body: body((w) => ({is_admin: true, username: w.alice.username})),
    method: 'PATCH',
    name: 'update-admin: by a non-admin',
    path: users('update-admin'),
    who: 'alice',
  },
  {
    body: body((w) => ({is_admin: false, username: w.boss.username})),
    method: 'PATCH',
    name: 'update-admin: an admin demotes themself',
    path: users('update-admin'),
    who: 'boss',
  },

  // ---- users/delete ----
  {body: body(() => ({})), method: 'DELETE', name: 'delete: {}', path: users('delete')},
  {body: 'null', method: 'DELETE', name: 'delete: a null body', path: users('delete')},
  {
    body: '',
    method: 'DELETE',
    name: 'delete: JSON type, no body, username in the query',
    path: q(`${API2}/users/delete`, (w) => ({username: w.carol.username})),
  },
  {contentType: null, method: 'DELETE', name: 'delete: no username', path: users('delete')},
  {contentType: null, method: 'DELETE', name: 'delete: unknown user (query)', path: q(`${API2}/users/delete`, (w) => ({username: w.nobody}))},
  {body: body((w) => ({username: w.nobody})), method: 'DELETE', name: 'delete: unknown user (body)', path: users('delete')},
  {body: body((w) => ({username: w.admin.username})), method: 'DELETE', name: 'delete: oneself (body)', path: users('delete')},
  {contentType: null, method: 'DELETE', name: 'delete: oneself (query)', path: q(`${API2}/users/delete`, (w) => ({username: w.admin.username}))},
  {body: body((w) => ({username: w.bob.username})), method: 'DELETE', name: 'delete: by a non-admin', path: users('delete'), who: 'alice'},
  {body: body((w) => ({username: w.alice.username})), method: 'DELETE', name: 'delete: oneself, by a non-admin', path: users('delete'), who: 'alice'},
  {contentType: null, method: 'DELETE', name: 'delete: a user (query)', path: q(`${API2}/users/delete`, (w) => ({username: w.carol.username}))},
  {contentType: null, method: 'DELETE', name: 'delete: the same user again', path: q(`${API2}/users/delete`, (w) => ({username: w.carol.username}))},

  // ---- users/list, users/roles/list ----
  ...(['alice', 'dave'] as const).map((who): Case => ({
    differs: {
      mlflow: {status: 200},
      serve: {message: 'Permission denied', status: 403},
      why: "MLflow 3.17 shows every user the roster (for its review queues' UI, admin only in serve)",
    },
    method: 'GET',
    name: `users/list: by ${who === 'alice' ? 'a non-admin' : 'a workspace administrator'}`,
    path: users('list'),
    who,
  })),
  {method: 'GET', name: 'users/roles/list: no username', path: () => `${API3}/users/roles/list`},
  {method: 'GET', name: 'users/roles/list: unknown user', path: q(`${API3}/users/roles/list`, (w) => ({username: w.nobody}))},
  {method: 'GET', name: 'users/roles/list: unknown user, by a non-admin', path: q(`${API3}/users/roles/list`, (w) => ({username: w.nobody})), who: 'alice'},
  {
    method: 'GET',
    name: "users/roles/list: another user's, by a non-admin",
    path: q(`${API3}/users/roles/list`, (w) => ({username: w.bob.username})),
    who: 'alice',
  },

  // ---- roles/create ----
  {body: body(() => ({})), method: 'POST', name: 'roles/create: {}', path: () => `${API3}/roles/create`},
  {body: 'null', method: 'POST', name: 'roles/create: a null body', path: () => `${API3}/roles/create`},
  {body: body(() => ({})), method: 'POST', name: 'roles/create: {}, by a non-admin', path: () => `${API3}/roles/create`, who: 'alice'},
  {body: '[]', method: 'POST', name: 'roles/create: an array body, by a non-admin', path: () => `${API3}/roles/create`, who: 'alice'},
  {body: body(() => ({name: null, workspace: 'default'})), method: 'POST', name: 'roles/create: null name', path: () => `${API3}/roles/create`},
  {body: body(() => ({name: '  ', workspace: 'default'})), method: 'POST', name: 'roles/create: blank name', path: () => `${API3}/roles/create`},
  {body: body(() => ({name: 5, workspace: 'default'})), method: 'POST', name: 'roles/create: numeric name', path: () => `${API3}/roles/create`},
  {body: body((w) => ({name: `${w.nobody}-r`})), method: 'POST', name: 'roles/create: no workspace', path: () => `${API3}/roles/create`},
  {body: body((w) => ({name: `${w.nobody}-r`, workspace: ''})), method: 'POST', name: 'roles/create: empty workspace', path: () => `${API3}/roles/create`},
  {body: body((w) => ({name: `${w.nobody}-r`, workspace: null})), method: 'POST', name: 'roles/create: null workspace', path: () => `${API3}/roles/create`},
  {
    body: body((w) => ({description: 5, name: `${w.nobody}-r`, workspace: 'default'})),
    method: 'POST',
    name: 'roles/create: numeric description',
    path: () => `${API3}/roles/create`,
  },
  {body: body(() => ({name: '__user_x', workspace: 'default'})), method: 'POST', name: 'roles/create: reserved name', path: () => `${API3}/roles/create`},
  {
    body: body((w) => ({name: w.roleName, workspace: 'default'})),
    messageUpTo: 'already exists.',
    method: 'POST',
    name: 'roles/create: a taken name',
    path: () => `${API3}/roles/create`,
  },
  {
    body: body((w) => ({name: `${w.nobody}-r`, workspace: 'default'})),
    method: 'POST',
    name: 'roles/create: by a non-admin',
    path: () => `${API3}/roles/create`,
    who: 'alice',
  },
  {
    body: body((w) => ({name: `${w.nobody}-r`, workspace: ''})),
    method: 'POST',
    name: 'roles/create: empty workspace, by a non-admin',
    path: () => `${API3}/roles/create`,
    who: 'alice',
  },
  {
    body: body((w) => ({name: `${w.nobody}-r`, workspace: 5})),
    method: 'POST',
    name: 'roles/create: numeric workspace, by a non-admin',
    path: () => `${API3}/roles/create`,
    who: 'alice',
  },
  {body: body(() => ({role_id: 'abc'})), method: 'POST', name: 'roles/create: a bad role_id, by a non-admin', path: () => `${API3}/roles/create`, who: 'alice'},
  {
    body: body(() => ({role_id: UNKNOWN_ID})),
    method: 'POST',
    name: 'roles/create: an unknown role_id, by a non-admin',
    path: () => `${API3}/roles/create`,
    who: 'alice',
  },

  // ---- roles/get, roles/list ----
  {method: 'GET', name: 'roles/get: no role_id', path: () => `${API3}/roles/get`},
  {method: 'GET', name: 'roles/get: role_id abc', path: q(`${API3}/roles/get`, () => ({role_id: 'abc'}))},
  {method: 'GET', name: 'roles/get: empty role_id', path: q(`${API3}/roles/get`, () => ({role_id: ''}))},
  {method: 'GET', name: 'roles/get: unknown role', path: q(`${API3}/roles/get`, () => ({role_id: UNKNOWN_ID}))},
  {method: 'GET', name: 'roles/get: negative role_id', path: q(`${API3}/roles/get`, () => ({role_id: -5}))},
  {method: 'GET', name: 'roles/get: role_id with spaces', path: q(`${API3}/roles/get`, (w) => ({role_id: ` ${w.role} `}))},
  {
    differs: {
      mlflow: {code: 'INTERNAL_ERROR', message: 'Python int too large to convert to SQLite INTEGER', status: 500},
      serve: {code: 'INVALID_PARAMETER_VALUE', message: "Parameter 'role_id' must be an integer. Got: '99999999999999999999'", status: 400},
      why: 'serve takes ids of at most 15 digits',
    },
    method: 'GET',
    name: 'roles/get: a huge role_id',
    path: q(`${API3}/roles/get`, () => ({role_id: '99999999999999999999'})),
  },
  {method: 'GET', name: 'roles/get: by a non-admin', path: q(`${API3}/roles/get`, (w) => ({role_id: w.role})), who: 'alice'},
  {method: 'GET', name: 'roles/get: role_id abc, by a non-admin', path: q(`${API3}/roles/get`, () => ({role_id: 'abc'})), who: 'alice'},
  {method: 'GET', name: 'roles/get: no role_id, by a non-admin', path: () => `${API3}/roles/get`, who: 'alice'},
  {method: 'GET', name: 'roles/list: empty workspace', path: q(`${API3}/roles/list`, () => ({workspace: ''}))},
  {method: 'GET', name: 'roles/list: by a non-admin, no workspace', path: () => `${API3}/roles/list`, who: 'alice'},
  {method: 'GET', name: 'roles/list: by a non-admin, a workspace without a role', path: q(`${API3}/roles/list`, () => ({workspace: 'default'})), who: 'alice'},

  // ---- roles/update, roles/delete ----
  {body: body(() => ({})), method: 'PATCH', name: 'roles/update: {}', path: () => `${API3}/roles/update`},
  {body: 'null', method: 'PATCH', name: 'roles/update: a null body', path: () => `${API3}/roles/update`},
  {body: body(() => ({name: 'x', role_id: null})), method: 'PATCH', name: 'roles/update: null role_id', path: () => `${API3}/roles/update`},
  {body: body(() => ({name: 'x', role_id: 'abc'})), method: 'PATCH', name: 'roles/update: role_id abc', path: () => `${API3}/roles/update`},
  {body: body(() => ({name: 'x', role_id: [1]})), method: 'PATCH', name: 'roles/update: role_id [1]', path: () => `${API3}/roles/update`},
  {body: body((w) => ({role_id: w.role})), method: 'PATCH', name: 'roles/update: neither name nor description', path: () => `${API3}/roles/update`},
  {body: body((w) => ({description: null, name: null, role_id: w.role})), method: 'PATCH', name: 'roles/update: both null', path: () => `${API3}/roles/update`},
  {body: body((w) => ({name: '', role_id: w.role})), method: 'PATCH', name: 'roles/update: empty name', path: () => `${API3}/roles/update`},
  {body: body((w) => ({name: 5, role_id: w.role})), method: 'PATCH', name: 'roles/update: numeric name', path: () => `${API3}/roles/update`},
  {body: body((w) => ({description: 5, role_id: w.role})), method: 'PATCH', name: 'roles/update: numeric description', path: () => `${API3}/roles/update`},
  {body: body((w) => ({name: '__user_1__', role_id: w.role})), method: 'PATCH', name: 'roles/update: reserved name', path: () => `${API3}/roles/update`},
  {
    body: body(() => ({name: '__user_x', role_id: UNKNOWN_ID})),
    method: 'PATCH',
    name: 'roles/update: reserved name, unknown role',
    path: () => `${API3}/roles/update`,
  },
  {body: body(() => ({name: 'x', role_id: UNKNOWN_ID})), method: 'PATCH', name: 'roles/update: unknown role', path: () => `${API3}/roles/update`},
  {body: body((w) => ({name: w.otherRoleName, role_id: w.role})), method: 'PATCH', name: 'roles/update: a taken name', path: () => `${API3}/roles/update`},
  {body: body(() => ({})), method: 'DELETE', name: 'roles/delete: {}', path: () => `${API3}/roles/delete`},
  {contentType: null, method: 'DELETE', name: 'roles/delete: role_id abc (query)', path: q(`${API3}/roles/delete`, () => ({role_id: 'abc'}))},
  {body: body(() => ({role_id: UNKNOWN_ID})), method: 'DELETE', name: 'roles/delete: unknown role', path: () => `${API3}/roles/delete`},
  {
    body: body(() => ({role_id: UNKNOWN_ID})),
    method: 'DELETE',
    name: 'roles/delete: unknown role, by a non-admin',
    path: () => `${API3}/roles/delete`,
    who: 'alice',
  },

  // ---- roles/permissions/* ----
  {body: body((w) => ({role_id: w.role})), method: 'POST', name: 'permissions/add: no resource_type', path: () => `${API3}/roles/permissions/add`},
  {
    body: body((w) => ({resource_type: 'experiment', role_id: w.role})),
    method: 'POST',
    name: 'permissions/add: no resource_pattern',
    path: () => `${API3}/roles/permissions/add`,
  },
  {
    body: body((w) => ({resource_pattern: '1', resource_type: 'experiment', role_id: w.role})),
    method: 'POST',
    name: 'permissions/add: no permission',
    path: () => `${API3}/roles/permissions/add`,
  },
  {
    body: body((w) => ({permission: 'OWNER', resource_pattern: '1', resource_type: 'experiment', role_id: w.role})),
    method: 'POST',
    name: 'permissions/add: unknown permission',
    path: () => `${API3}/roles/permissions/add`,
  },
  {
    body: body((w) => ({permission: null, resource_pattern: '1', resource_type: 'experiment', role_id: w.role})),
    method: 'POST',
    name: 'permissions/add: null permission',
    path: () => `${API3}/roles/permissions/add`,
  },
  {
    body: body((w) => ({permission: 'OWNER', resource_pattern: '1', resource_type: 'bogus', role_id: w.role})),
    method: 'POST',
    name: 'permissions/add: unknown permission and type',
    path: () => `${API3}/roles/permissions/add`,
  },
  {
    body: body((w) => ({permission: 'READ', resource_pattern: '1', resource_type: 'bogus', role_id: w.role})),
    method: 'POST',
    name: 'permissions/add: unknown type',
    path: () => `${API3}/roles/permissions/add`,
  },
  {
    body: body((w) => ({permission: 'READ', resource_pattern: '*', resource_type: 'workspace', role_id: w.role})),
    method: 'POST',
    name: 'permissions/add: READ on workspace',
    path: () => `${API3}/roles/permissions/add`,
  },
  {
    body: body((w) => ({permission: 'NO_PERMISSIONS', resource_pattern: '1', resource_type: 'experiment', role_id: w.role})),
    method: 'POST',
    name: 'permissions/add: NO_PERMISSIONS',
    path: () => `${API3}/roles/permissions/add`,
  },
  {
    body: body((w) => ({permission: 'READ', resource_pattern: '5', resource_type: 'run', role_id: w.role})),
    method: 'POST',
    name: 'permissions/add: an id on a wildcard-only type',
    path: () => `${API3}/roles/permissions/add`,
  },
  {
    body: body((w) => ({permission: 'READ', resource_pattern: '1', resource_type: null, role_id: w.role})),
    method: 'POST',
    name: 'permissions/add: null type',
    path: () => `${API3}/roles/permissions/add`,
  },
  {
    body: body((w) => ({permission: 'READ', resource_pattern: null, resource_type: 'experiment', role_id: w.role})),
    differs: {
      mlflow: {code: 'RESOURCE_ALREADY_EXISTS', message: /NOT NULL constraint failed/, status: 400},
      serve: {code: 'INVALID_PARAMETER_VALUE', message: "Parameter 'resource_pattern' must be a string. Got: None", status: 400},
      why: "MLflow's database refuses it, reported as already existing",
    },
    method: 'POST',
    name: 'permissions/add: null pattern',
    path: () => `${API3}/roles/permissions/add`,
  },
  {
    body: body((w) => ({permission: 'READ', resource_pattern: 77, resource_type: 'experiment', role_id: w.role})),
    method: 'POST',
    name: 'permissions/add: a numeric pattern',
    path: () => `${API3}/roles/permissions/add`,
  },
  {
    body: body(() => ({permission: 'READ', resource_pattern: '1', resource_type: 'experiment', role_id: UNKNOWN_ID})),
    method: 'POST',
    name: 'permissions/add: unknown role',
    path: () => `${API3}/roles/permissions/add`,
  },
  {
    body: body(() => ({permission: 'OWNER', resource_pattern: '1', resource_type: 'experiment', role_id: UNKNOWN_ID})),
    method: 'POST',
    name: 'permissions/add: unknown role and permission',
    path: () => `${API3}/roles/permissions/add`,
  },
  {
    body: body((w) => ({permission: 'EDIT', resource_pattern: '*', resource_type: 'experiment', role_id: w.role})),
    messageUpTo: 'already exists.',
    method: 'POST',
    name: 'permissions/add: a repeated row',
    path: () => `${API3}/roles/permissions/add`,
  },
  {
    contentType: null,
    method: 'DELETE',
    name: 'permissions/remove: role_permission_id abc',
    path: q(`${API3}/roles/permissions/remove`, () => ({role_permission_id: 'abc'})),
  },
  {
    body: body(() => ({role_permission_id: UNKNOWN_ID})),
    method: 'DELETE',
    name: 'permissions/remove: unknown row',
    path: () => `${API3}/roles/permissions/remove`,
  },
  {body: body(() => ({})), method: 'DELETE', name: 'permissions/remove: {}', path: () => `${API3}/roles/permissions/remove`},
  {method: 'GET', name: 'permissions/list: unknown role', path: q(`${API3}/roles/permissions/list`, () => ({role_id: UNKNOWN_ID}))},
  {method: 'GET', name: 'permissions/list: role_id abc', path: q(`${API3}/roles/permissions/list`, () => ({role_id: 'abc'}))},
  {
    body: body((w) => ({role_permission_id: w.row})),
    method: 'PATCH',
    name: 'permissions/update: no permission',
    path: () => `${API3}/roles/permissions/update`,
  },
  {
    body: body((w) => ({permission: 'OWNER', role_permission_id: w.row})),
    method: 'PATCH',
    name: 'permissions/update: unknown permission',
    path: () => `${API3}/roles/permissions/update`,
  },
  {
    body: body((w) => ({permission: 'NO_PERMISSIONS', role_permission_id: w.row})),
    method: 'PATCH',
    name: 'permissions/update: NO_PERMISSIONS',
    path: () => `${API3}/roles/permissions/update`,
  },
  {
    body: body(() => ({permission: 'OWNER', role_permission_id: UNKNOWN_ID})),
    method: 'PATCH',
    name: 'permissions/update: unknown row',
    path: () => `${API3}/roles/permissions/update`,
  },

  // ---- roles/assign, roles/unassign, roles/users/list ----
  {body: body(() => ({})), method: 'POST', name: 'assign: {}', path: () => `${API3}/roles/assign`},
  {body: body((w) => ({username: w.alice.username})), method: 'POST', name: 'assign: no role_id', path: () => `${API3}/roles/assign`},
  {body: body((w) => ({role_id: 'abc', username: w.nobody})), method: 'POST', name: 'assign: role_id abc, unknown user', path: () => `${API3}/roles/assign`},
  {body: body((w) => ({role_id: w.role, username: w.nobody})), method: 'POST', name: 'assign: unknown user', path: () => `${API3}/roles/assign`},
  {
    body: body((w) => ({role_id: w.role, username: w.numericName + 1})),
    method: 'POST',
    name: 'assign: a number naming no user',
    path: () => `${API3}/roles/assign`,
  },
  {
    body: body((w) => ({role_id: w.role, username: Number(w.digits.username)})),
    method: 'POST',
    name: 'assign: a number naming a user',
    path: () => `${API3}/roles/assign`,
  },
  {body: body((w) => ({role_id: UNKNOWN_ID, username: w.alice.username})), method: 'POST', name: 'assign: unknown role', path: () => `${API3}/roles/assign`},
  {body: body((w) => ({role_id: w.role, username: w.bob.username})), method: 'POST', name: 'assign: a role', path: () => `${API3}/roles/assign`},
  {body: body((w) => ({role_id: w.role, username: w.bob.username})), method: 'POST', name: 'assign: the same role again', path: () => `${API3}/roles/assign`},
  {
    body: body((w) => ({role_id: w.role, username: w.alice.username})),
    method: 'DELETE',
    name: 'unassign: a role not held',
    path: () => `${API3}/roles/unassign`,
  },
  {
    body: body((w) => ({role_id: UNKNOWN_ID, username: w.alice.username})),
    method: 'DELETE',
    name: 'unassign: unknown role',
    path: () => `${API3}/roles/unassign`,
  },
  {body: body((w) => ({role_id: w.role, username: w.nobody})), method: 'DELETE', name: 'unassign: unknown user', path: () => `${API3}/roles/unassign`},
  {method: 'GET', name: 'roles/users/list: unknown role', path: q(`${API3}/roles/users/list`, () => ({role_id: UNKNOWN_ID}))},
  {method: 'GET', name: 'roles/users/list: role_id abc', path: q(`${API3}/roles/users/list`, () => ({role_id: 'abc'}))},

  // ---- methods, as Flask routes them: OPTIONS and 405 say which are allowed, a HEAD's parameters come from its empty body ----
  {method: 'OPTIONS', name: 'OPTIONS users/get', path: q(`${API2}/users/get`, (w) => ({username: w.alice.username})), who: 'alice'},
  {method: 'OPTIONS', name: 'OPTIONS roles/permissions/remove', path: () => `${API3}/roles/permissions/remove`},
  {method: 'GET', name: 'GET users/create', path: users('create')},
  {method: 'PUT', name: 'PUT users/permissions/list', path: () => `${API3}/users/permissions/list`},
  {method: 'HEAD', name: 'HEAD users/get', path: q(`${API2}/users/get`, (w) => ({username: w.alice.username}))},
  {method: 'HEAD', name: 'HEAD users/current', path: users('current'), who: 'alice'},
  {method: 'HEAD', name: 'HEAD users/current, admin', path: users('current')},
  {method: 'OPTIONS', name: 'OPTIONS users/get, admin', path: q(`${API2}/users/get`, (w) => ({username: w.alice.username}))},
  {method: 'GET', name: 'GET users/create, non-admin', path: users('create'), who: 'alice'},
  {method: 'PUT', name: 'PUT users/current, non-admin', path: users('current'), who: 'alice'},
  {method: 'OPTIONS', name: 'OPTIONS users/current, non-admin', path: users('current'), who: 'alice'},

  // ---- last: a successful self-service change, then the old password no longer works ----
  {
    body: body((w) => ({current_password: w.alice.password, password: 'a-long-password-2', username: w.alice.username})),
    method: 'PATCH',
    name: 'update-password: own, correctly',
    path: users('update-password'),
    who: 'alice',
  },
  {method: 'GET', name: 'get: with the old password', path: q(`${API2}/users/get`, (w) => ({username: w.alice.username})), who: 'alice'},
]

async function setUp(target: AuthTarget, names: Names): Promise<World> {
  const rest = restClient(() => target.url)
  const {admin} = target
  for (const user of [names.alice, names.bob, names.boss, names.carol, names.dave, names.digits]) await rest.ok(admin, 'POST', `${API2}/users/create`, user)
  await rest.ok(admin, 'PATCH', `${API2}/users/update-admin`, {is_admin: true, username: names.boss.username})
  const role = (await rest.ok(admin, 'POST', `${API3}/roles/create`, {name: names.roleName, workspace: 'default'})).role.id as number
  await rest.ok(admin, 'POST', `${API3}/roles/create`, {name: names.otherRoleName, workspace: 'default'})
  const row = (
    await rest.ok(admin, 'POST', `${API3}/roles/permissions/add`, {permission: 'READ', resource_pattern: '*', resource_type: 'experiment', role_id: role})
  ).role_permission.id as number
  const admins = (await rest.ok(admin, 'POST', `${API3}/roles/create`, {name: `${names.roleName}-admins`, workspace: 'default'})).role.id as number
  await rest.ok(admin, 'POST', `${API3}/roles/permissions/add`, {permission: 'MANAGE', resource_pattern: '*', resource_type: 'workspace', role_id: admins})
  await rest.ok(admin, 'POST', `${API3}/roles/assign`, {role_id: admins, username: names.dave.username})
  return {...names, admin, role, row, url: target.url}
}

describe(`the auth API answers bad input as MLflow ${version}'s basic-auth app does`, () => {
  const targets: AuthTarget[] = []
  let mlflow: World
  let serve: World

  before(async () => {
    const password = (who: string) => `${who}-password-123`
    const names: Names = {
      alice: {password: password('alice'), username: uniqueName('alice')},
      bob: {password: password('bob'), username: uniqueName('bob')},
      boss: {password: password('boss'), username: uniqueName('boss')},
      carol: {password: password('carol'), username: uniqueName('carol')},
      dave: {password: password('dave'), username: uniqueName('dave')},
      digits: {password: password('digits'), username: String(200_000_000_000_000 + randomInt(2 ** 40))},
      // Unique on a shared server: a number of 15 digits; spaces and tabs spelling 24 random bits.
      blankName: [...randomBytes(3)]
        .map((byte) => byte.toString(2).padStart(8, '0'))
        .join('')
        .replaceAll('0', ' ')
        .replaceAll('1', '\t'),
      nobody: uniqueName('nobody'),
      numericName: 100_000_000_000_000 + randomInt(2 ** 40),
      otherRoleName: uniqueName('other'),
      roleName: uniqueName('readers'),
    }
    targets.push(await authTarget(version, 'basic-auth'), await authTarget(version, 'serve'))
    mlflow = await setUp(targets[0], names)
    serve = await setUp(targets[1], names)
  })
  after(async () => Promise.all(targets.map((target) => target.stop())))

  for (const c of CASES) {
    it(c.name, async () => {
      const fromMlflow = await send(mlflow, c)
      const fromServe = await send(serve, c)
      if (c.differs) {
        assertExpected(fromMlflow, c.differs.mlflow, 'MLflow')
        assertExpected(fromServe, c.differs.serve, 'serve')
        return
      }

      assert.deepEqual(
        comparable(fromServe, c),
        comparable(fromMlflow, c),
        `MLflow: ${fromMlflow.status} ${fromMlflow.body}\nserve: ${fromServe.status} ${fromServe.body}`,
      )
    })
  }
})

describe(`the last admin, as MLflow ${version}'s basic-auth app`, () => {
  const targets: AuthTarget[] = []
  after(async () => Promise.all(targets.map((target) => target.stop())))

  it('MLflow lets the last admin demote themself, leaving no admin; serve refuses it and the admin stays one', async () => {
    // Targets of their own (default_permission given): the shared servers keep their admin.
    const [mlflow, serve] = [
      await authTarget(version, 'basic-auth', {defaultPermission: 'READ'}),
      await authTarget(version, 'serve', {defaultPermission: 'READ'}),
    ]
    targets.push(mlflow, serve)
    for (const target of targets) {
      const users = (await restClient(() => target.url).ok(target.admin, 'GET', `${API2}/users/list`)).users as Array<{is_admin: boolean; username: string}>
      assert.deepEqual(
        users.filter((user) => user.is_admin).map((user) => user.username),
        [target.admin.username],
      )
    }

    const demote = {is_admin: false, username: mlflow.admin.username}
    const fromMlflow = restClient(() => mlflow.url)
    assert.deepEqual(await fromMlflow.ok(mlflow.admin, 'PATCH', `${API2}/users/update-admin`, demote), {})
    assert.equal((await fromMlflow.ok(mlflow.admin, 'GET', `${API2}/users/current`)).user.is_admin, false)
    assert.equal(
      (await fromMlflow.call(mlflow.admin, 'POST', `${API2}/users/create`, {password: 'a-long-password-1', username: uniqueName('after')})).status,
      403,
    )

    const fromServe = restClient(() => serve.url)
    const refused = await fromServe.call(serve.admin, 'PATCH', `${API2}/users/update-admin`, {...demote, username: serve.admin.username})
    assert.equal(refused.status, 400)
    assert.match(refused.text, /is the last admin/)
    assert.equal((await fromServe.ok(serve.admin, 'GET', `${API2}/users/current`)).user.is_admin, true)
  })
})
