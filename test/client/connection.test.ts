import assert from 'node:assert/strict'
import {describe, it} from 'node:test'

import {type ConnectionInput, databricksProfileSelection, resolveConnection, resolveTrackingUri} from '../../src/client/connection.js'
import {ExitCode, UserError} from '../../src/core/errors.js'

const URI = 'https://mlflow.example.com'
const FILE = '/home/alice/.mlflow/credentials'

function connect(env: NodeJS.ProcessEnv, extra: Partial<ConnectionInput> = {}) {
  return resolveConnection({env: {MLFLOW_TRACKING_URI: URI, ...env}, flags: {}, ...extra})
}

/** Asserts a UserError with the given exit code whose message matches. */
function throwsUser(fn: () => unknown, pattern: RegExp, exit: number = ExitCode.Usage): UserError {
  let caught: unknown
  assert.throws(fn, (error: unknown) => {
    caught = error
    return true
  })
  assert.ok(caught instanceof UserError, `expected a UserError, got ${caught}`)
  assert.match(caught.message, pattern)
  assert.equal(caught.exit, exit)
  return caught
}

describe('tracking URI resolution', () => {
  const profile = {name: 'prod', trackingUri: 'https://from-profile'}

  it('takes --tracking-uri over MLFLOW_TRACKING_URI over the profile, with sources', () => {
    const all = {env: {MLFLOW_TRACKING_URI: 'https://from-env'}, flags: {trackingUri: 'https://from-flag'}, profile}
    assert.deepEqual(resolveTrackingUri(all), {source: '--tracking-uri', value: 'https://from-flag'})
    assert.deepEqual(resolveTrackingUri({...all, flags: {}}), {source: 'MLFLOW_TRACKING_URI', value: 'https://from-env'})
    assert.deepEqual(resolveTrackingUri({env: {}, flags: {}, profile}), {source: 'profile prod', value: 'https://from-profile'})
  })

  it('lets an empty MLFLOW_TRACKING_URI fall through to the profile', () => {
    assert.deepEqual(resolveTrackingUri({env: {MLFLOW_TRACKING_URI: ''}, flags: {trackingUri: ''}, profile}).source, 'profile prod')
  })

  it('fails with a usage error and a hint when nothing is configured', () => {
    const error = throwsUser(() => resolveConnection({env: {}, flags: {}}), /No MLflow tracking server/)
    assert.match(error.hint ?? '', /--tracking-uri/)
    assert.match(error.hint ?? '', /mlflowctl login/)
  })

  it('refuses local stores: an admin CLI needs a server', () => {
    for (const uri of ['file:///tmp/mlruns', './mlruns', '/srv/mlruns', 'sqlite:///mlflow.db', 'postgresql+psycopg2://u:hunter22@db/mlflow', 'C:\\mlruns']) {
      const error = throwsUser(() => connect({MLFLOW_TRACKING_URI: uri}), /an admin CLI needs a server/)
      assert.equal(error.code, 'LOCAL_TRACKING_STORE')
      assert.doesNotMatch(error.message, /hunter22/)
    }
  })

  it('refuses other schemes and credentials inside the URI', () => {
    throwsUser(() => connect({MLFLOW_TRACKING_URI: 's3://bucket/x'}), /Unsupported tracking URI scheme "s3:"/)
    throwsUser(() => connect({MLFLOW_TRACKING_URI: 'databricks-uc://prod'}), /Unsupported tracking URI scheme/)
    const error = throwsUser(() => connect({MLFLOW_TRACKING_URI: 'https://bob:hunter22@mlflow.example.com'}), /contains credentials/)
    assert.doesNotMatch(JSON.stringify(error) + error.message, /hunter22/)
  })

  it('keeps an http(s) URI as the request host', () => {
    const connection = connect({MLFLOW_TRACKING_URI: 'http://127.0.0.1:5000/prefix/'})
    assert.equal(connection.kind, 'http')
    assert.deepEqual(connection.host, {source: 'MLFLOW_TRACKING_URI', value: 'http://127.0.0.1:5000/prefix/'})
  })
})

describe('credentials', () => {
  const file = {credentialsFile: {password: 'file-pw', path: FILE, username: 'file-user'}}

  it('resolves username and password per field, env (non-empty) before the file', () => {
    const mixed = connect({MLFLOW_TRACKING_USERNAME: 'env-user'}, file)
    assert.deepEqual(mixed.username, {source: 'MLFLOW_TRACKING_USERNAME', value: 'env-user'})
    assert.deepEqual(mixed.password, {source: FILE, value: 'file-pw'})
    assert.equal(mixed.auth, 'basic')

    const empty = connect({MLFLOW_TRACKING_PASSWORD: '', MLFLOW_TRACKING_USERNAME: ''}, file)
    assert.deepEqual(empty.username, {source: FILE, value: 'file-user'})
    assert.deepEqual(empty.password, {source: FILE, value: 'file-pw'})
  })

  it('chooses Basic, else Bearer, else nothing', () => {
    assert.equal(connect({MLFLOW_TRACKING_PASSWORD: 'p', MLFLOW_TRACKING_USERNAME: 'u'}).auth, 'basic')
    const bearer = connect({MLFLOW_TRACKING_TOKEN: 'tok'})
    assert.equal(bearer.auth, 'bearer')
    assert.deepEqual(bearer.token, {source: 'MLFLOW_TRACKING_TOKEN', value: 'tok'})
    const none = connect({MLFLOW_TRACKING_TOKEN: ''})
    assert.equal(none.auth, 'none')
    assert.deepEqual(none.warnings, [])
  })

  it('warns that Basic wins when Basic and Bearer are both configured', () => {
    const connection = connect({MLFLOW_TRACKING_TOKEN: 'tok'}, file)
    assert.equal(connection.auth, 'basic')
    assert.equal(connection.warnings.length, 1)
    assert.match(connection.warnings[0], /Basic is used, as MLflow does/)
    assert.match(connection.warnings[0], new RegExp(FILE))
  })

  it('warns when only one of username and password is set', () => {
    const connection = connect({MLFLOW_TRACKING_USERNAME: 'u'})
    assert.equal(connection.auth, 'none')
    assert.match(connection.warnings.join('\n'), /username \(from MLFLOW_TRACKING_USERNAME\) is set but no password: no credentials are sent/)
    const withToken = connect({MLFLOW_TRACKING_PASSWORD: 'p', MLFLOW_TRACKING_TOKEN: 't'})
    assert.equal(withToken.auth, 'bearer')
    assert.match(withToken.warnings.join('\n'), /no username: the token is sent instead/)
  })

  it('refuses a token that cannot go into a header, without showing it', () => {
    const error = throwsUser(() => connect({MLFLOW_TRACKING_TOKEN: 'tok-secret\n'}), /MLFLOW_TRACKING_TOKEN cannot be sent in an HTTP header/)
    assert.doesNotMatch(error.message + JSON.stringify(error), /tok-secret/)
  })

  it('never puts a secret into a warning', () => {
    const connection = connect({
      MLFLOW_TRACKING_AUTH: 'custom',
      MLFLOW_TRACKING_PASSWORD: 'hunter22',
      MLFLOW_TRACKING_TOKEN: 'tok-secret',
      MLFLOW_TRACKING_USERNAME: 'u',
    })
    assert.doesNotMatch(connection.warnings.join('\n'), /hunter22|tok-secret/)
  })
})

describe('MLFLOW_TRACKING_AUTH', () => {
  it('is ignored with a warning when Basic or Bearer credentials exist', () => {
    const basic = connect({MLFLOW_TRACKING_AUTH: 'my-plugin', MLFLOW_TRACKING_PASSWORD: 'p', MLFLOW_TRACKING_USERNAME: 'u'})
    assert.equal(basic.auth, 'basic')
    assert.deepEqual(basic.authPlugin, {source: 'MLFLOW_TRACKING_AUTH', value: 'my-plugin'})
    assert.match(basic.warnings.join('\n'), /MLFLOW_TRACKING_AUTH=my-plugin .*cannot run; it is ignored/)
    assert.equal(connect({MLFLOW_TRACKING_AUTH: 'my-plugin', MLFLOW_TRACKING_TOKEN: 't'}).auth, 'bearer')
  })

  it('refuses to send an unauthenticated request in place of the plugin', () => {
    const error = throwsUser(() => connect({MLFLOW_TRACKING_AUTH: 'my-plugin'}), /Python request-auth plugin/)
    assert.equal(error.code, 'UNSUPPORTED_AUTH_PLUGIN')
    assert.match(error.hint ?? '', /MLFLOW_TRACKING_TOKEN/)
  })

  it('follows MLflow for kubernetes: the token is sent, a username/password alone is refused', () => {
    const withToken = connect({MLFLOW_TRACKING_AUTH: 'kubernetes', MLFLOW_TRACKING_PASSWORD: 'p', MLFLOW_TRACKING_TOKEN: 't', MLFLOW_TRACKING_USERNAME: 'u'})
    assert.equal(withToken.auth, 'bearer')
    throwsUser(() => connect({MLFLOW_TRACKING_AUTH: 'kubernetes', MLFLOW_TRACKING_PASSWORD: 'p', MLFLOW_TRACKING_USERNAME: 'u'}), /service-account token/)
  })
})

describe('AWS SigV4', () => {
  const aws = {AWS_ACCESS_KEY_ID: 'AKID', AWS_DEFAULT_REGION: 'eu-west-1', AWS_SECRET_ACCESS_KEY: 'secret', MLFLOW_TRACKING_AWS_SIGV4: 'true'}

  it('takes priority over Basic and plugins, with a warning', () => {
    const connection = connect({...aws, MLFLOW_TRACKING_AUTH: 'kubernetes', MLFLOW_TRACKING_PASSWORD: 'p', MLFLOW_TRACKING_USERNAME: 'u'})
    assert.equal(connection.auth, 'sigv4')
    assert.deepEqual(connection.sigv4?.region, {source: 'AWS_DEFAULT_REGION', value: 'eu-west-1'})
    assert.equal(connection.sigv4?.credentials?.accessKeyId, 'AKID')
    assert.equal(connection.sigv4?.service, 'execute-api')
    assert.match(connection.warnings.join('\n'), /signed with AWS SigV4/)
    assert.match(connection.warnings.join('\n'), /MLFLOW_TRACKING_AUTH=kubernetes is ignored/)
  })

  it('reads the region from AWS_DEFAULT_REGION, else AWS_REGION, and needs one', () => {
    assert.deepEqual(connect({...aws, AWS_DEFAULT_REGION: undefined, AWS_REGION: 'us-east-2'}).sigv4?.region, {source: 'AWS_REGION', value: 'us-east-2'})
    throwsUser(() => connect({...aws, AWS_DEFAULT_REGION: undefined}), /no AWS region/)
  })

  it('leaves credentials to the AWS chain when the environment has none', () => {
    const connection = connect({AWS_DEFAULT_REGION: 'eu-west-1', AWS_PROFILE: 'ops', MLFLOW_TRACKING_AWS_SIGV4: '1'})
    assert.equal(connection.sigv4?.credentials, undefined)
    assert.equal(connection.sigv4?.profile, 'ops')
  })
})

describe('typed environment variables', () => {
  it('accepts only true/false/1/0 in any case for booleans', () => {
    assert.equal(connect({MLFLOW_TRACKING_INSECURE_TLS: 'TRUE'}).tls.insecure, true)
    assert.equal(connect({MLFLOW_TRACKING_INSECURE_TLS: '0'}).tls.insecure, false)
    assert.equal(connect({MLFLOW_HTTP_RESPECT_RETRY_AFTER_HEADER: 'False'}).retry.respectRetryAfter, false)
    for (const value of ['yes', 'on', ' true', '']) {
      throwsUser(() => connect({MLFLOW_TRACKING_AWS_SIGV4: value}), /^MLFLOW_TRACKING_AWS_SIGV4 must be one of/)
    }
  })

  it('parses integers strictly, as Python int() does', () => {
    assert.equal(connect({MLFLOW_HTTP_REQUEST_MAX_RETRIES: ' 3 '}).retry.maxRetries, 3)
    assert.equal(connect({MLFLOW_HTTP_REQUEST_TIMEOUT: '1_0'}).timeoutSeconds, 10)
    for (const value of ['2.5', '5s', '', '0x10']) {
      throwsUser(() => connect({MLFLOW_HTTP_REQUEST_TIMEOUT: value}), /^MLFLOW_HTTP_REQUEST_TIMEOUT must be an integer/)
    }

    throwsUser(() => connect({MLFLOW_HTTP_REQUEST_TIMEOUT: '0'}), /greater than 0/)
    throwsUser(() => connect({MLFLOW_HTTP_REQUEST_BACKOFF_JITTER: 'abc'}), /^MLFLOW_HTTP_REQUEST_BACKOFF_JITTER must be a number/)
    assert.equal(connect({MLFLOW_HTTP_REQUEST_BACKOFF_JITTER: '0.25'}).retry.backoffJitter, 0.25)
  })

  it('has MLflow defaults and bounds for retries and backoff', () => {
    assert.deepEqual(connect({}).retry, {backoffFactor: 2, backoffJitter: 1, maxRetries: 7, respectRetryAfter: true})
    assert.equal(connect({}).timeoutSeconds, 120)
    assert.equal(connect({MLFLOW_HTTP_REQUEST_MAX_RETRIES: '10'}).retry.maxRetries, 10)
    throwsUser(() => connect({MLFLOW_HTTP_REQUEST_MAX_RETRIES: '11'}), /MLFLOW_HTTP_REQUEST_MAX_RETRIES must be an integer from 0 to 10/)
    throwsUser(() => connect({MLFLOW_HTTP_REQUEST_MAX_RETRIES: '-1'}), /MLFLOW_HTTP_REQUEST_MAX_RETRIES/)
    assert.equal(connect({_MLFLOW_HTTP_REQUEST_MAX_RETRIES_LIMIT: '20', MLFLOW_HTTP_REQUEST_MAX_RETRIES: '15'}).retry.maxRetries, 15)
    throwsUser(() => connect({MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR: '121'}), /MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR must be an integer from 0 to 120/)
    throwsUser(() => connect({MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR: '1.5'}), /MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR must be an integer/)
  })

  it('reads redirects leniently, as MLflow does', () => {
    assert.equal(connect({}).followRedirects, true)
    assert.equal(connect({MLFLOW_ALLOW_HTTP_REDIRECTS: 'no'}).followRedirects, false)
  })
})

describe('TLS settings', () => {
  it('refuses insecure TLS together with a server CA, naming both variables', () => {
    const error = throwsUser(
      () => connect({MLFLOW_TRACKING_INSECURE_TLS: 'true', MLFLOW_TRACKING_SERVER_CERT_PATH: '/ca.pem'}),
      /MLFLOW_TRACKING_INSECURE_TLS and MLFLOW_TRACKING_SERVER_CERT_PATH/,
    )
    assert.equal(error.code, 'INVALID_PARAMETER_VALUE')
  })

  it('records the CA and client certificate paths', () => {
    const {tls} = connect({MLFLOW_TRACKING_CLIENT_CERT_PATH: '/client.pem', MLFLOW_TRACKING_SERVER_CERT_PATH: '/ca.pem'})
    assert.deepEqual(tls, {
      clientCertPath: {source: 'MLFLOW_TRACKING_CLIENT_CERT_PATH', value: '/client.pem'},
      insecure: false,
      serverCertPath: {source: 'MLFLOW_TRACKING_SERVER_CERT_PATH', value: '/ca.pem'},
    })
  })

  it('refuses an empty server CA path, which would disable verification in Python', () => {
    throwsUser(() => connect({MLFLOW_TRACKING_SERVER_CERT_PATH: ''}), /MLFLOW_TRACKING_SERVER_CERT_PATH/)
  })
})

describe('workspace', () => {
  it('takes --workspace, MLFLOW_WORKSPACE, then the profile, trimmed; empty is unset', () => {
    assert.deepEqual(connect({MLFLOW_WORKSPACE: '  team-a '}).workspace, {source: 'MLFLOW_WORKSPACE', value: 'team-a'})
    assert.equal(connect({MLFLOW_WORKSPACE: '   '}).workspace, undefined)
    const profile = {name: 'prod', workspace: 'from-profile'}
    assert.deepEqual(connect({MLFLOW_WORKSPACE: ''}, {profile}).workspace, {source: 'profile prod', value: 'from-profile'})
    assert.deepEqual(connect({MLFLOW_WORKSPACE: 'env'}, {flags: {workspace: 'flag'}, profile}).workspace, {source: '--workspace', value: 'flag'})
  })
})

describe('databricks URIs', () => {
  const cfg = '/home/alice/.databrickscfg'

  it('selects the profile from the URI, else DATABRICKS_CONFIG_PROFILE, else DEFAULT', () => {
    assert.deepEqual(databricksProfileSelection('databricks://prod', {DATABRICKS_CONFIG_PROFILE: 'x'}), {
      explicit: true,
      profile: 'prod',
      source: 'tracking URI',
    })
    assert.deepEqual(databricksProfileSelection('databricks', {DATABRICKS_CONFIG_PROFILE: 'x'}), {
      explicit: true,
      profile: 'x',
      source: 'DATABRICKS_CONFIG_PROFILE',
    })
    assert.deepEqual(databricksProfileSelection('databricks', {}), {explicit: false, profile: 'DEFAULT', source: 'default'})
    throwsUser(() => databricksProfileSelection('databricks:/x', {}), /malformed/)
    throwsUser(() => databricksProfileSelection('databricks://scope:prefix', {}), /secret scope/)
  })

  it('uses DATABRICKS_HOST and DATABRICKS_TOKEN and then ignores the DEFAULT profile', () => {
    const connection = connect(
      {DATABRICKS_HOST: 'adb-1.azuredatabricks.net/some/path', DATABRICKS_TOKEN: 'dapi-env', MLFLOW_TRACKING_URI: 'databricks'},
      {databricksProfile: {path: cfg, profile: 'DEFAULT', values: {host: 'https://file-host', token: 'dapi-file'}}},
    )
    assert.equal(connection.kind, 'databricks')
    assert.equal(connection.auth, 'bearer')
    assert.deepEqual(connection.host, {source: 'DATABRICKS_HOST', value: 'https://adb-1.azuredatabricks.net'})
    assert.deepEqual(connection.token, {source: 'DATABRICKS_TOKEN', value: 'dapi-env'})
  })

  it('reads a named profile, with env values winning per attribute', () => {
    const connection = connect(
      {DATABRICKS_TOKEN: 'dapi-env', MLFLOW_TRACKING_URI: 'databricks://prod'},
      {databricksProfile: {path: cfg, profile: 'prod', values: {host: 'https://prod.cloud.databricks.com', token: 'dapi-file'}}},
    )
    assert.deepEqual(connection.host, {source: `${cfg} [prod]`, value: 'https://prod.cloud.databricks.com'})
    assert.deepEqual(connection.token, {source: 'DATABRICKS_TOKEN', value: 'dapi-env'})
    assert.equal(connection.trackingUri.value, 'databricks://prod')
  })

  it('reads DEFAULT with username/password as Basic', () => {
    const connection = connect(
      {MLFLOW_TRACKING_URI: 'databricks'},
      {databricksProfile: {path: cfg, profile: 'DEFAULT', values: {host: 'https://h', password: 'p', username: 'u'}}},
    )
    assert.equal(connection.auth, 'basic')
    assert.deepEqual(connection.username, {source: `${cfg} [DEFAULT]`, value: 'u'})
  })

  it('fails clearly for a missing profile, a missing host, or OAuth-only credentials', () => {
    throwsUser(() => connect({MLFLOW_TRACKING_URI: 'databricks://nope'}), /profile "nope" .*was not found/)
    throwsUser(() => connect({DATABRICKS_TOKEN: 't', MLFLOW_TRACKING_URI: 'databricks'}), /No Databricks host/)
    const error = throwsUser(
      () =>
        connect(
          {MLFLOW_TRACKING_URI: 'databricks://sp'},
          {databricksProfile: {path: cfg, profile: 'sp', values: {client_id: 'id', client_secret: 'sec', host: 'https://h'}}},
        ),
      /OAuth machine-to-machine/,
    )
    assert.match(error.hint ?? '', /DATABRICKS_TOKEN/)
  })

  it('warns that MLFLOW_TRACKING_* credentials do not apply', () => {
    const connection = connect({DATABRICKS_HOST: 'https://h', DATABRICKS_TOKEN: 't', MLFLOW_TRACKING_TOKEN: 'x', MLFLOW_TRACKING_URI: 'databricks'})
    assert.match(connection.warnings.join('\n'), /MLFLOW_TRACKING_TOKEN is not used for databricks/)
  })
})
