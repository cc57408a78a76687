import assert from 'node:assert/strict'
import {createHash, createHmac} from 'node:crypto'
import {mkdtemp, rm, writeFile} from 'node:fs/promises'
import {createServer} from 'node:http'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {describe, it} from 'node:test'

import {resolveConnection} from '../../src/client/connection.js'
import {createMlflowHttp} from '../../src/client/http.js'
import {signRequest} from '../../src/client/sigv4.js'
import {listen, type Seen, type TestServer} from '../support/recorder.js'

/** A server that records each request and answers {}. */
function recorder(): Promise<TestServer> {
  return listen(createServer(), (_request, response) => response.writeHead(200, {'Content-Type': 'application/json'}).end('{}'), 'http')
}

const sha256 = (data: string) => createHash('sha256').update(data, 'utf8').digest('hex')
const hmac = (key: Buffer | string, data: string) => createHmac('sha256', key).update(data, 'utf8').digest()

/**
 * Recomputes the signature of a received request independently (AWS SigV4, execute-api), from
 * what actually arrived: so the signature must cover the exact path, query and body sent.
 */
function verify(request: Seen, secret: string): boolean {
  const auth = /^AWS4-HMAC-SHA256 Credential=([^/]+)\/(\d{8})\/([^/]+)\/([^/]+)\/aws4_request, SignedHeaders=([^,]+), Signature=([\da-f]{64})$/.exec(
    String(request.headers.authorization),
  )
  if (!auth) return false
  const [, , day, region, service, signedHeaders, signature] = auth
  const [rawPath, rawQuery = ''] = request.url.split('?')
  // Non-S3 services encode each path segment twice; MLflow paths have nothing to encode.
  const path = rawPath
    .split('/')
    .map((segment) => encodeURIComponent(segment))
    .join('/')
  const query =
    rawQuery === ''
      ? ''
      : rawQuery
          .split('&')
          .map((pair) => pair.split('=') as [string, string])
          .sort(([a, x], [b, y]) => (a === b ? (x < y ? -1 : 1) : a < b ? -1 : 1))
          .map((pair) => pair.join('='))
          .join('&')
  const names = signedHeaders.split(';')
  const headers = names.map((name) => `${name}:${String(request.headers[name]).trim()}\n`).join('')
  const canonical = [request.method, path, query, headers, signedHeaders, sha256(request.body)].join('\n')
  const date = String(request.headers['x-amz-date'])
  const scope = `${day}/${region}/${service}/aws4_request`
  const toSign = ['AWS4-HMAC-SHA256', date, scope, sha256(canonical)].join('\n')
  const key = hmac(hmac(hmac(hmac(`AWS4${secret}`, day), region), service), 'aws4_request')
  return createHmac('sha256', key).update(toSign).digest('hex') === signature
}

describe('AWS SigV4 signing', () => {
  it('reproduces the AWS test-suite vector get-vanilla', async () => {
    const headers = await signRequest(
      {headers: {}, method: 'GET', url: new URL('https://example.amazonaws.com/')},
      {
        applyChecksum: false,
        credentials: {accessKeyId: 'AKIDEXAMPLE', secretAccessKey: 'wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY'},
        region: 'us-east-1',
        service: 'service',
        signingDate: new Date('2015-08-30T12:36:00Z'),
      },
    )
    assert.equal(headers['x-amz-date'], '20150830T123600Z')
    assert.equal(
      headers.authorization,
      'AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, SignedHeaders=host;x-amz-date, Signature=5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31',
    )
  })

  it('signs host and x-amz-* only, with the payload hash and session token, as requests-auth-aws-sigv4 does', async () => {
    const headers = await signRequest(
      {
        body: '{"a":1}',
        headers: {'Content-Type': 'application/json', 'User-Agent': 'x', 'X-MLFLOW-WORKSPACE': 'w'},
        method: 'POST',
        url: new URL('https://gw.example.com:8443/p?b=2&a=1'),
      },
      {credentials: {accessKeyId: 'AKID', secretAccessKey: 'secret', sessionToken: 'session'}, region: 'eu-west-1', service: 'execute-api'},
    )
    assert.match(headers.authorization, /SignedHeaders=host;x-amz-content-sha256;x-amz-date;x-amz-security-token,/)
    assert.equal(headers['x-amz-content-sha256'], sha256('{"a":1}'))
    assert.equal(headers['x-amz-security-token'], 'session')
    assert.equal(headers.host, 'gw.example.com:8443')
  })
})

describe('SigV4 requests through createMlflowHttp', () => {
  const base = {AWS_DEFAULT_REGION: 'us-west-2', MLFLOW_TRACKING_AWS_SIGV4: 'true'}

  it('signs GET and POST requests with credentials from the environment, covering query and body', async () => {
    const server = await recorder()
    try {
      const env = {
        ...base,
        AWS_ACCESS_KEY_ID: 'AKIDTEST',
        AWS_SECRET_ACCESS_KEY: 'test-secret',
        MLFLOW_TRACKING_PASSWORD: 'p',
        MLFLOW_TRACKING_URI: server.url,
        MLFLOW_TRACKING_USERNAME: 'u',
      }
      const http = createMlflowHttp(resolveConnection({env, flags: {}}))
      await http.get('/api/2.0/mlflow/users/get', {tags: ['b', 'a'], username: "o'brien smith"})
      await http.post('/api/2.0/mlflow/users/create', {password: 'pw', username: 'bob'})
      for (const request of server.seen) {
        assert.match(
          String(request.headers.authorization),
          /^AWS4-HMAC-SHA256 Credential=AKIDTEST\/\d{8}\/us-west-2\/execute-api\/aws4_request, SignedHeaders=host;x-amz-content-sha256;x-amz-date, Signature=[\da-f]{64}$/,
        )
        assert.match(String(request.headers['x-amz-date']), /^\d{8}T\d{6}Z$/)
        assert.ok(verify(request, 'test-secret'), `signature does not verify for ${request.method} ${request.url}`)
        assert.ok(!verify(request, 'wrong-secret'))
      }

      assert.equal(server.seen[0].url, '/api/2.0/mlflow/users/get?tags=b&tags=a&username=o%27brien%20smith')
      assert.equal(server.seen[1].body, '{"password":"pw","username":"bob"}')
    } finally {
      await server.close()
    }
  })

  it('takes credentials from the standard AWS chain (a shared credentials file profile)', async () => {
    const server = await recorder()
    const dir = await mkdtemp(join(tmpdir(), 'mlflowctl-aws-'))
    const saved = {...process.env}
    try {
      await writeFile(join(dir, 'credentials'), '[ops]\naws_access_key_id = AKIDFROMFILE\naws_secret_access_key = file-secret\n')
      // The chain reads process.env; keep it on these files and away from instance metadata.
      for (const name of Object.keys(process.env).filter((key) => key.startsWith('AWS_'))) delete process.env[name]
      Object.assign(process.env, {
        AWS_CONFIG_FILE: join(dir, 'config'),
        AWS_EC2_METADATA_DISABLED: 'true',
        AWS_SHARED_CREDENTIALS_FILE: join(dir, 'credentials'),
      })
      const connection = resolveConnection({env: {...base, AWS_PROFILE: 'ops', MLFLOW_TRACKING_URI: server.url}, flags: {}})
      await createMlflowHttp(connection).get('/api/2.0/mlflow/users/current')
      assert.match(String(server.seen[0].headers.authorization), /Credential=AKIDFROMFILE\/\d{8}\/us-west-2\/execute-api\/aws4_request/)
      assert.ok(verify(server.seen[0], 'file-secret'))
    } finally {
      for (const name of Object.keys(process.env)) if (!(name in saved)) delete process.env[name]
      Object.assign(process.env, saved)
      await rm(dir, {force: true, recursive: true})
      await server.close()
    }
  })
})
