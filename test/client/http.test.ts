import assert from 'node:assert/strict'
import {readFile, writeFile} from 'node:fs/promises'
import {createServer} from 'node:http'
import {createServer as createHttpsServer} from 'node:https'
import {join} from 'node:path'
import {after, before, describe, it} from 'node:test'

import {resolveConnection} from '../../src/client/connection.js'
import {
  backoffSeconds,
  createMlflowHttp,
  MlflowApiError,
  type MlflowHttpOptions,
  parseRetryAfter,
  type RetryEvent,
  whenEndpointMissing,
} from '../../src/client/http.js'
import {ExitCode, UserError} from '../../src/core/errors.js'
import {createTestCa, type TestCa} from '../support/pki.js'
import {type Handler, json, listen, type TestServer} from '../support/recorder.js'

function serve(handler: Handler): Promise<TestServer> {
  return listen(createServer(), handler, 'http')
}

/** Fast retries: backoff factor 0 and no jitter. */
const FAST = {MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR: '0', MLFLOW_HTTP_REQUEST_BACKOFF_JITTER: '0'}

function client(url: string, env: NodeJS.ProcessEnv = {}, options: MlflowHttpOptions = {}) {
  const connection = resolveConnection({env: {...FAST, MLFLOW_TRACKING_URI: url, ...env}, flags: {}})
  return createMlflowHttp(connection, {userAgent: 'mlflowctl/test', ...options})
}

async function rejection(promise: Promise<unknown>): Promise<UserError> {
  try {
    await promise
  } catch (error) {
    assert.ok(error instanceof UserError, `expected a UserError, got ${error}`)
    return error
  }

  assert.fail('expected the request to fail')
}

describe('requests', () => {
  it('builds URL, query and headers as MLflow does', async () => {
    const server = await serve((_request, response) => json(response, 200, {ok: true}))
    try {
      const http = client(
        `${server.url}/prefix/`,
        {MLFLOW_TRACKING_PASSWORD: 'pässwörd', MLFLOW_TRACKING_USERNAME: 'alïce', MLFLOW_WORKSPACE: ' team '},
        {userAgent: undefined},
      )
      assert.deepEqual(
        await http.get('/api/2.0/mlflow/experiments/search', {empty: undefined, experiment_ids: ['1', '2'], filter: "name = 'a b'", max_results: 5}),
        {ok: true},
      )
      const [seen] = server.seen
      assert.equal(seen.method, 'GET')
      assert.equal(seen.url, '/prefix/api/2.0/mlflow/experiments/search?experiment_ids=1&experiment_ids=2&filter=name%20%3D%20%27a%20b%27&max_results=5')
      assert.equal(seen.headers.authorization, `Basic ${Buffer.from('alïce:pässwörd', 'utf8').toString('base64')}`)
      assert.equal(seen.headers['x-mlflow-workspace'], 'team')
      const pkg = JSON.parse(await readFile(new URL('../../package.json', import.meta.url), 'utf8')) as {version: string}
      assert.equal(seen.headers['user-agent'], `mlflowctl/${pkg.version}`)
      assert.equal(seen.headers['content-type'], undefined)
    } finally {
      await server.close()
    }
  })

  it('sends JSON bodies on POST, PATCH and DELETE, with a Bearer token', async () => {
    const server = await serve((_request, response) => json(response, 200, {}))
    try {
      const http = client(server.url, {MLFLOW_TRACKING_TOKEN: 'tok'})
      await http.post('/api/2.0/mlflow/users/create', {password: 'x', username: 'bob'})
      await http.patch('/api/2.0/mlflow/users/update-admin', {is_admin: true, username: 'bob'})
      await http.delete('/api/2.0/mlflow/users/delete', {username: 'bob'})
      assert.deepEqual(
        server.seen.map((seen) => [seen.method, seen.url, seen.body, seen.headers['content-type'], seen.headers.authorization]),
        [
          ['POST', '/api/2.0/mlflow/users/create', '{"password":"x","username":"bob"}', 'application/json', 'Bearer tok'],
          ['PATCH', '/api/2.0/mlflow/users/update-admin', '{"is_admin":true,"username":"bob"}', 'application/json', 'Bearer tok'],
          ['DELETE', '/api/2.0/mlflow/users/delete', '{"username":"bob"}', 'application/json', 'Bearer tok'],
        ],
      )
    } finally {
      await server.close()
    }
  })

  it('sends no Authorization without credentials, and no workspace header on workspace endpoints', async () => {
    const server = await serve((_request, response) => json(response, 200, {}))
    try {
      await client(server.url, {MLFLOW_WORKSPACE: 'team'}).get('/api/3.0/mlflow/workspaces/list')
      assert.equal(server.seen[0].headers.authorization, undefined)
      assert.equal(server.seen[0].headers['x-mlflow-workspace'], undefined)
    } finally {
      await server.close()
    }
  })

  it('follows redirects unless MLFLOW_ALLOW_HTTP_REDIRECTS is false', async () => {
    const server = await serve((request, response) =>
      request.url === '/old' ? response.writeHead(302, {Location: '/new'}).end() : json(response, 200, {at: request.url}),
    )
    try {
      assert.deepEqual(await client(server.url).get('/old'), {at: '/new'})
      const error = await rejection(client(server.url, {MLFLOW_ALLOW_HTTP_REDIRECTS: 'false'}).get('/old'))
      assert.equal((error as MlflowApiError).status, 302)
      assert.match(error.hint ?? '', /MLFLOW_ALLOW_HTTP_REDIRECTS/)
    } finally {
      await server.close()
    }
  })

  it('treats an empty 200 or "200 OK" as {} and rejects a non-JSON 200', async () => {
    const bodies = ['', '200 OK', '<html>login</html>']
    const server = await serve((_request, response, _body, attempt) => response.writeHead(200).end(bodies[attempt - 1]))
    try {
      const http = client(server.url)
      assert.deepEqual(await http.get('/a'), {})
      assert.deepEqual(await http.get('/b'), {})
      const error = await rejection(http.get('/c'))
      assert.ok(error instanceof MlflowApiError)
      assert.equal(error.code, 'INVALID_RESPONSE')
      assert.match(error.message, /not a JSON object: <html>login<\/html>/)
    } finally {
      await server.close()
    }
  })
})

describe('retries', () => {
  for (const status of [408, 429, 500, 502, 503, 504]) {
    it(`retries ${status} MLFLOW_HTTP_REQUEST_MAX_RETRIES times, on every method`, async () => {
      const server = await serve((_request, response) => response.writeHead(status).end('busy'))
      try {
        const http = client(server.url, {MLFLOW_HTTP_REQUEST_MAX_RETRIES: '3'})
        const error = await rejection(http.post('/api/2.0/mlflow/users/create', {username: 'x'}))
        assert.equal(server.seen.length, 4)
        assert.ok(error instanceof MlflowApiError)
        assert.equal(error.status, status)
        assert.equal(error.exit, ExitCode.Unavailable)
        assert.match(error.hint ?? '', /after 3 retries/)
      } finally {
        await server.close()
      }
    })
  }

  it('returns the answer once a retried request succeeds', async () => {
    const server = await serve((_request, response, _body, attempt) => (attempt < 3 ? response.writeHead(503).end() : json(response, 200, {done: attempt})))
    try {
      assert.deepEqual(await client(server.url).delete('/x', {}), {done: 3})
    } finally {
      await server.close()
    }
  })

  it('retries a dropped connection', async () => {
    const server = await serve((request, response, _body, attempt) => (attempt < 3 ? request.socket.destroy() : json(response, 200, {attempt})))
    try {
      assert.deepEqual(await client(server.url).get('/x'), {attempt: 3})
      assert.equal(server.seen.length, 3)
    } finally {
      await server.close()
    }
  })

  it('gives up on a connection that keeps dropping with an Unavailable error', async () => {
    const server = await serve((request) => request.socket.destroy())
    try {
      const error = await rejection(client(server.url, {MLFLOW_HTTP_REQUEST_MAX_RETRIES: '2'}).get('/x'))
      assert.equal(server.seen.length, 3)
      assert.equal(error.exit, ExitCode.Unavailable)
      assert.match(error.message, new RegExp(`^Could not reach MLflow at ${server.url}: .*\\(after 2 retries\\)`))
    } finally {
      await server.close()
    }
  })

  for (const status of [400, 401, 403, 404]) {
    it(`does not retry ${status}`, async () => {
      const server = await serve((_request, response) => response.writeHead(status).end())
      try {
        await rejection(client(server.url).get('/x'))
        assert.equal(server.seen.length, 1)
      } finally {
        await server.close()
      }
    })
  }

  it('waits for Retry-After on 429 and 503, and retries 413 only when it carries one', async () => {
    const answers: Array<[number, Record<string, string>]> = [
      [429, {'Retry-After': '7'}],
      [503, {'Retry-After': '3'}],
      [413, {'Retry-After': '2'}],
      [413, {}],
    ]
    const server = await serve((_request, response, _body, attempt) => response.writeHead(...answers[attempt - 1]).end())
    const slept: number[] = []
    const events: RetryEvent[] = []
    try {
      const http = client(
        server.url,
        {},
        {
          onRetry: (event) => events.push(event),
          sleep: async (ms) => {
            slept.push(ms)
          },
        },
      )
      const error = await rejection(http.get('/x'))
      assert.equal(server.seen.length, 4)
      assert.equal((error as MlflowApiError).status, 413)
      assert.deepEqual(slept, [7000, 3000, 2000])
      assert.deepEqual(
        events.map((event) => [event.retry, event.status, event.delaySource, event.delaySeconds]),
        [
          [1, 429, 'retry-after', 7],
          [2, 503, 'retry-after', 3],
          [3, 413, 'retry-after', 2],
        ],
      )
    } finally {
      await server.close()
    }
  })

  it('ignores Retry-After when MLFLOW_HTTP_RESPECT_RETRY_AFTER_HEADER is false', async () => {
    const server = await serve((_request, response, _body, attempt) =>
      attempt === 1 ? response.writeHead(429, {'Retry-After': '30'}).end() : json(response, 200, {}),
    )
    const events: RetryEvent[] = []
    try {
      await client(server.url, {MLFLOW_HTTP_RESPECT_RETRY_AFTER_HEADER: 'false'}, {onRetry: (event) => events.push(event)}).get('/x')
      assert.deepEqual(
        events.map((event) => [event.delaySource, event.delaySeconds]),
        [['backoff', 0]],
      )
      // Not a retried status without the header being respected.
      const again = await serve((_request, response) => response.writeHead(413, {'Retry-After': '1'}).end())
      try {
        await rejection(client(again.url, {MLFLOW_HTTP_RESPECT_RETRY_AFTER_HEADER: 'false'}).get('/x'))
        assert.equal(again.seen.length, 1)
      } finally {
        await again.close()
      }
    } finally {
      await server.close()
    }
  })

  it("backs off with urllib3's formula", async () => {
    const server = await serve((_request, response) => response.writeHead(500).end())
    const slept: number[] = []
    try {
      const http = client(
        server.url,
        {MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR: '2', MLFLOW_HTTP_REQUEST_MAX_RETRIES: '4'},
        {
          sleep: async (ms) => {
            slept.push(ms)
          },
        },
      )
      await rejection(http.get('/x'))
      assert.deepEqual(slept, [0, 4000, 8000, 16_000])
    } finally {
      await server.close()
    }

    assert.equal(backoffSeconds(1, 2, 1), 0)
    assert.equal(backoffSeconds(7, 2, 0), 120)
    assert.equal(
      backoffSeconds(3, 2, 1, () => 0.5),
      8.5,
    )
    assert.equal(
      backoffSeconds(8, 2, 1, () => 0.5),
      120,
    )
    assert.equal(parseRetryAfter(' 5 '), 5)
    assert.equal(parseRetryAfter('Wed, 21 Oct 2015 07:28:10 GMT', Date.parse('Wed, 21 Oct 2015 07:28:00 GMT')), 10)
    assert.equal(parseRetryAfter('soon'), undefined)
  })

  it('times out each attempt after MLFLOW_HTTP_REQUEST_TIMEOUT with an Unavailable error', async () => {
    const server = await serve(() => {})
    try {
      const error = await rejection(client(server.url, {MLFLOW_HTTP_REQUEST_MAX_RETRIES: '0', MLFLOW_HTTP_REQUEST_TIMEOUT: '1'}).get('/x'))
      assert.equal(error.exit, ExitCode.Unavailable)
      assert.equal(error.code, 'TIMEOUT')
      assert.equal(error.message, `Could not reach MLflow at ${server.url}: no response within 1 s`)
      assert.match(error.hint ?? '', /MLFLOW_HTTP_REQUEST_TIMEOUT/)
      assert.match(error.hint ?? '', /--tracking-uri or MLFLOW_TRACKING_URI/)
    } finally {
      await server.close()
    }
  })

  it('times out, and retries, an answer whose body stalls after the headers', async () => {
    const server = await serve((_request, response) => {
      response.writeHead(200, {'Content-Type': 'application/json'})
      response.write('{"partial":')
    })
    try {
      const events: RetryEvent[] = []
      const error = await rejection(
        client(server.url, {MLFLOW_HTTP_REQUEST_MAX_RETRIES: '1', MLFLOW_HTTP_REQUEST_TIMEOUT: '1'}, {onRetry: (event) => events.push(event)}).get('/x'),
      )
      assert.equal(server.seen.length, 2)
      assert.equal(events.length, 1)
      assert.equal(error.code, 'TIMEOUT')
      assert.equal(error.message, `Could not reach MLflow at ${server.url}: no response within 1 s (after 1 retry)`)
    } finally {
      await server.close()
    }
  })

  it('reports a refused connection', async () => {
    const server = await serve(() => {})
    await server.close()
    const error = await rejection(client(server.url, {MLFLOW_HTTP_REQUEST_MAX_RETRIES: '1'}).get('/x'))
    assert.equal(error.exit, ExitCode.Unavailable)
    assert.match(error.message, /ECONNREFUSED.*\(after 1 retry\)/)
  })
})

describe('errors', () => {
  const cases: Array<{body: string; code: string; endpointMissing: boolean; errorCode?: string; exit: number; message: RegExp | string; status: number}> = [
    {
      body: '{"error_code": "RESOURCE_DOES_NOT_EXIST", "message": "User with username=bob not found"}',
      code: 'RESOURCE_DOES_NOT_EXIST',
      endpointMissing: false,
      errorCode: 'RESOURCE_DOES_NOT_EXIST',
      exit: ExitCode.NotFound,
      message: 'RESOURCE_DOES_NOT_EXIST: User with username=bob not found',
      status: 404,
    },
    {
      body: '{"error_code": "ENDPOINT_NOT_FOUND", "message": "No such API"}',
      code: 'ENDPOINT_NOT_FOUND',
      endpointMissing: true,
      errorCode: 'ENDPOINT_NOT_FOUND',
      exit: ExitCode.Unsupported,
      message: 'ENDPOINT_NOT_FOUND: No such API',
      status: 404,
    },
    {
      body: '<!doctype html>\n<html>\n  <title>404   Not Found</title>\n</html>',
      code: 'ENDPOINT_NOT_FOUND',
      endpointMissing: true,
      exit: ExitCode.Unsupported,
      message: 'HTTP 404: <!doctype html> <html> <title>404 Not Found</title> </html>',
      status: 404,
    },
    {
      body: '{"error_code": "RESOURCE_ALREADY_EXISTS", "message": "User bob already exists."}',
      code: 'RESOURCE_ALREADY_EXISTS',
      endpointMissing: false,
      errorCode: 'RESOURCE_ALREADY_EXISTS',
      exit: ExitCode.AlreadyExists,
      message: 'RESOURCE_ALREADY_EXISTS: User bob already exists.',
      status: 400,
    },
    {
      body: '{"error_code": "INVALID_PARAMETER_VALUE", "message": "Missing value for required parameter"}',
      code: 'INVALID_PARAMETER_VALUE',
      endpointMissing: false,
      errorCode: 'INVALID_PARAMETER_VALUE',
      exit: ExitCode.Usage,
      message: 'INVALID_PARAMETER_VALUE: Missing value for required parameter',
      status: 400,
    },
    {
      body: '{"detail": "nope"}',
      code: 'BAD_REQUEST',
      endpointMissing: false,
      exit: ExitCode.Usage,
      message: 'INTERNAL_ERROR: Response: {"detail":"nope"}',
      status: 400,
    },
    {
      body: 'Permission denied',
      code: 'PERMISSION_DENIED',
      endpointMissing: false,
      exit: ExitCode.PermissionDenied,
      message: 'HTTP 403: Permission denied',
      status: 403,
    },
    {body: '', code: 'NOT_IMPLEMENTED', endpointMissing: false, exit: ExitCode.Unsupported, message: 'HTTP 501: Not Implemented', status: 501},
    {body: 'x'.repeat(300), code: 'INTERNAL_ERROR', endpointMissing: false, exit: ExitCode.Unavailable, message: `HTTP 500: ${'x'.repeat(200)}…`, status: 500},
  ]
  for (const expected of cases) {
    it(`maps ${expected.status} ${expected.errorCode ?? JSON.stringify(expected.body.slice(0, 20))}`, async () => {
      const server = await serve((_request, response) => response.writeHead(expected.status).end(expected.body))
      try {
        const error = await rejection(client(server.url, {MLFLOW_HTTP_REQUEST_MAX_RETRIES: '0'}).get('/api/2.0/mlflow/users/get', {username: 'bob'}))
        assert.ok(error instanceof MlflowApiError)
        assert.equal(error.message, expected.message)
        assert.equal(error.status, expected.status)
        assert.equal(error.errorCode, expected.errorCode)
        assert.equal(error.endpointMissing, expected.endpointMissing)
        assert.equal(error.exit, expected.exit)
        assert.equal(error.code, expected.code)
        assert.equal(error.path, '/api/2.0/mlflow/users/get')
      } finally {
        await server.close()
      }
    })
  }

  it('whenEndpointMissing replaces only the error of an endpoint the server does not have', async () => {
    const server = await serve((request, response) =>
      request.url!.startsWith('/api/2.0/mlflow/roles/')
        ? response.writeHead(404).end('<html>404 Not Found</html>')
        : json(response, 404, {error_code: 'RESOURCE_DOES_NOT_EXIST', message: 'User with username=bob not found'}),
    )
    try {
      const http = client(server.url, {MLFLOW_HTTP_REQUEST_MAX_RETRIES: '0'})
      const missing = (cause: MlflowApiError) => new UserError('no roles here', {cause, exit: ExitCode.Unsupported})
      const replaced = await rejection(whenEndpointMissing(http.get('/api/2.0/mlflow/roles/list'), missing))
      assert.equal(replaced.message, 'no roles here')
      assert.ok(replaced.cause instanceof MlflowApiError && replaced.cause.endpointMissing)
      const kept = await rejection(whenEndpointMissing(http.get('/api/2.0/mlflow/users/get', {username: 'bob'}), missing))
      assert.ok(kept instanceof MlflowApiError)
      assert.equal(kept.code, 'RESOURCE_DOES_NOT_EXIST')
      assert.deepEqual(await whenEndpointMissing(Promise.resolve({ok: 1}), missing), {ok: 1})
    } finally {
      await server.close()
    }
  })

  it('maps 401 to Unauthenticated, naming the sources of the credentials', async () => {
    const text = 'You are not authenticated. Please see https://www.mlflow.org/docs/latest/auth/index.html#authenticating-to-mlflow on how to authenticate.'
    const server = await serve((_request, response) => response.writeHead(401, {'WWW-Authenticate': 'Basic realm="mlflow"'}).end(text))
    try {
      const connection = resolveConnection({
        credentialsFile: {password: 'pw', path: '/home/a/.mlflow/credentials'},
        env: {MLFLOW_TRACKING_URI: server.url, MLFLOW_TRACKING_USERNAME: 'alice'},
        flags: {},
      })
      const error = await rejection(createMlflowHttp(connection).get('/x'))
      assert.equal(error.exit, ExitCode.Unauthenticated)
      assert.equal(error.message, `HTTP 401: ${text}`)
      assert.match(error.hint ?? '', /"alice" \(from MLFLOW_TRACKING_USERNAME\) with the password from \/home\/a\/\.mlflow\/credentials/)
      assert.match(error.hint ?? '', /mlflowctl login/)

      const anonymous = await rejection(client(server.url).get('/x'))
      assert.match(anonymous.hint ?? '', /No credentials were sent.*MLFLOW_TRACKING_USERNAME/)
    } finally {
      await server.close()
    }
  })

  it('never lets a password, token or Authorization header into an error', async () => {
    const password = 'hunter2-secret'
    // A hostile server echoes everything it got.
    const server = await serve((request, response, _body, attempt) => {
      const echo = `auth=${request.headers.authorization} password=${password}`
      if (attempt % 2 === 1) response.writeHead(401).end(echo)
      else json(response, 500, {error_code: 'INTERNAL_ERROR', message: echo})
    })
    try {
      const env = {
        MLFLOW_HTTP_REQUEST_MAX_RETRIES: '0',
        MLFLOW_TRACKING_PASSWORD: password,
        MLFLOW_TRACKING_TOKEN: 'tok-secret-123',
        MLFLOW_TRACKING_USERNAME: 'alice',
      }
      const basic = Buffer.from(`alice:${password}`).toString('base64')
      for (const path of ['/one', '/two']) {
        const error = await rejection(client(server.url, env).get(path))
        const shown = `${error.message}\n${error.hint}\n${JSON.stringify(error)}\n${error.stack}`
        for (const secret of [password, 'tok-secret-123', basic]) assert.ok(!shown.includes(secret), `${secret} leaked: ${shown}`)
        assert.match(error.message, /auth=Basic \*\*\*/)
      }
    } finally {
      await server.close()
    }
  })
})

describe('TLS', () => {
  let ca: TestCa
  let dir: string
  let server: TestServer

  before(async () => {
    ca = await createTestCa()
    dir = ca.dir
    const serverCert = await ca.issue('server', 'server')
    const clientCert = await ca.issue('client', 'client')
    // The names the tests below use.
    await writeFile(join(dir, 'client.pem'), await readFile(clientCert.pem))
    await writeFile(join(dir, 'client.crt'), await readFile(clientCert.cert))
    const https = createHttpsServer({
      ca: await readFile(ca.cert),
      cert: await readFile(serverCert.cert),
      key: await readFile(serverCert.key),
      rejectUnauthorized: true,
      requestCert: true,
    })
    server = await listen(
      https,
      (request, response) => json(response, 200, {client: (request.socket as import('node:tls').TLSSocket).getPeerCertificate().subject.CN}),
      'https',
    )
  })

  after(async () => {
    await server?.close()
    await ca?.remove()
  })

  it('verifies the server with MLFLOW_TRACKING_SERVER_CERT_PATH and presents the client certificate', async () => {
    const http = client(server.url, {MLFLOW_TRACKING_CLIENT_CERT_PATH: join(dir, 'client.pem'), MLFLOW_TRACKING_SERVER_CERT_PATH: ca.cert})
    try {
      assert.deepEqual(await http.get('/api/2.0/mlflow/users/current'), {client: 'client'})
      // POST bodies go through the TLS transport too.
      assert.deepEqual(await http.post('/x', {a: 1}), {client: 'client'})
      assert.equal(server.seen.at(-1)?.body, '{"a":1}')
    } finally {
      await http.close()
    }
  })

  it('fails clearly, without retrying, when the server certificate is not trusted', async () => {
    const before = server.seen.length
    const http = client(server.url, {MLFLOW_TRACKING_CLIENT_CERT_PATH: join(dir, 'client.pem')})
    try {
      const error = await rejection(http.get('/x'))
      assert.equal(error.exit, ExitCode.Unavailable)
      assert.equal(error.code, 'TLS_ERROR')
      assert.match(error.message, /^Could not reach MLflow at https:\/\/127\.0\.0\.1:\d+: self-signed certificate in certificate chain/)
      assert.match(error.hint ?? '', /MLFLOW_TRACKING_SERVER_CERT_PATH/)
      assert.equal(server.seen.length, before)
    } finally {
      await http.close()
    }
  })

  it('skips verification with MLFLOW_TRACKING_INSECURE_TLS', async () => {
    const http = client(server.url, {MLFLOW_TRACKING_CLIENT_CERT_PATH: join(dir, 'client.pem'), MLFLOW_TRACKING_INSECURE_TLS: 'true'})
    try {
      assert.deepEqual(await http.get('/x'), {client: 'client'})
    } finally {
      await http.close()
    }
  })

  it('refuses insecure TLS with a server CA before sending anything', () => {
    const before = server.seen.length
    assert.throws(
      () => client(server.url, {MLFLOW_TRACKING_INSECURE_TLS: 'true', MLFLOW_TRACKING_SERVER_CERT_PATH: ca.cert}),
      /MLFLOW_TRACKING_INSECURE_TLS and MLFLOW_TRACKING_SERVER_CERT_PATH/,
    )
    assert.equal(server.seen.length, before)
  })

  it('refuses a client certificate file without its key, and an unreadable CA', async () => {
    const noKey = await rejection(
      client(server.url, {MLFLOW_TRACKING_CLIENT_CERT_PATH: join(dir, 'client.crt'), MLFLOW_TRACKING_SERVER_CERT_PATH: ca.cert}).get('/x'),
    )
    assert.match(noKey.message, /MLFLOW_TRACKING_CLIENT_CERT_PATH .* has no private key/)
    const missing = await rejection(client(server.url, {MLFLOW_TRACKING_SERVER_CERT_PATH: join(dir, 'nope.pem')}).get('/x'))
    assert.match(missing.message, /Cannot read MLFLOW_TRACKING_SERVER_CERT_PATH/)
    assert.equal(missing.exit, ExitCode.Usage)
  })
})
