/**
 * The connection for a databricks tracking URI (databricks, databricks://<profile>): the profile it
 * names, and the host and credentials from DATABRICKS_* variables and ~/.databrickscfg, resolved
 * the way Databricks unified auth does (docs/client-credentials.md, "Databricks profiles").
 */
import {ExitCode, UserError} from '../core/errors.js'
import type {AuthScheme, Connection, ConnectionInput, Sourced} from './connection.js'
import {assertHeaderSafe, CREDENTIAL_ENV, LOGIN_HINT} from './env.js'

/**
 * Which ~/.databrickscfg profile a databricks URI needs: the URI's, else DATABRICKS_CONFIG_PROFILE,
 * else DEFAULT. `explicit` is false for DEFAULT, where a missing section is not an error (and where
 * a caller honouring [__settings__] default_profile may substitute its own choice).
 */
export function databricksProfileSelection(trackingUri: string, env: NodeJS.ProcessEnv): {explicit: boolean; profile: string; source: string} {
  const fromUri = parseDatabricksUri(trackingUri)
  if (fromUri) return {explicit: true, profile: fromUri, source: 'tracking URI'}
  if (env.DATABRICKS_CONFIG_PROFILE) return {explicit: true, profile: env.DATABRICKS_CONFIG_PROFILE, source: 'DATABRICKS_CONFIG_PROFILE'}
  return {explicit: false, profile: 'DEFAULT', source: 'default'}
}

/**
 * databricks://profile → profile; bare `databricks` → undefined (docs/client-credentials.md,
 * "Databricks profiles").
 */
function parseDatabricksUri(uri: string): string | undefined {
  if (uri.toLowerCase() === 'databricks') return undefined
  const match = /^databricks:(\/\/)?([^/?#]*)/i.exec(uri)
  if (!match) return undefined
  const netloc = match[1] ? match[2] : ''
  if (netloc === '') {
    throw new UserError(`The tracking URI "${uri}" is malformed: expected databricks or databricks://<profile>`, {
      code: 'INVALID_TRACKING_URI',
      exit: ExitCode.Usage,
      hint: LOGIN_HINT,
    })
  }

  if (netloc.includes(':')) {
    throw new UserError(`The tracking URI "${uri}" names a Databricks secret scope, which only works inside Databricks notebooks`, {
      code: 'UNSUPPORTED_TRACKING_URI',
      exit: ExitCode.Usage,
      hint: 'Use databricks://<profile> with a ~/.databrickscfg profile, or DATABRICKS_HOST and DATABRICKS_TOKEN.',
    })
  }

  if (netloc.includes(' ')) {
    throw new UserError(`Unsupported Databricks profile name "${netloc}": profile names cannot contain spaces`, {
      code: 'INVALID_TRACKING_URI',
      exit: ExitCode.Usage,
    })
  }

  return netloc
}

const DATABRICKS_KEYS = {
  auth_type: 'DATABRICKS_AUTH_TYPE',
  client_id: 'DATABRICKS_CLIENT_ID',
  client_secret: 'DATABRICKS_CLIENT_SECRET',
  host: 'DATABRICKS_HOST',
  password: 'DATABRICKS_PASSWORD',
  token: 'DATABRICKS_TOKEN',
  username: 'DATABRICKS_USERNAME',
} as const

type DatabricksKey = keyof typeof DATABRICKS_KEYS

/**
 * Databricks unified auth (docs/client-credentials.md, "Databricks profiles"): env beats the file
 * per attribute when a profile is named; with no profile named, any DATABRICKS_* auth variable
 * means the file is not read at all.
 */
export function resolveDatabricks(
  input: ConnectionInput,
  trackingUri: Sourced,
  warnings: string[],
): Pick<Connection, 'auth' | 'host' | 'kind' | 'password' | 'tls' | 'token' | 'username'> {
  const {env} = input
  const selection = databricksProfileSelection(trackingUri.value, env)
  const keys = Object.keys(DATABRICKS_KEYS) as DatabricksKey[]
  const envSet = keys.some((key) => env[DATABRICKS_KEYS[key]])
  const readFile = selection.explicit || !envSet
  const given = input.databricksProfile
  const file = readFile && given && (given.profile === selection.profile || !selection.explicit) ? given : undefined

  if (readFile && selection.explicit && !file) {
    throw new UserError(`The Databricks profile "${selection.profile}" (from ${selection.source}) was not found`, {
      code: 'DATABRICKS_PROFILE_NOT_FOUND',
      exit: ExitCode.Usage,
      hint: `Create it with \`databricks auth login --profile ${selection.profile}\` or \`databricks configure --profile ${selection.profile}\`, or set DATABRICKS_HOST and DATABRICKS_TOKEN.`,
    })
  }

  const value = (key: DatabricksKey): Sourced | undefined => {
    const name = DATABRICKS_KEYS[key]
    if (env[name]) return {source: name, value: env[name]!}
    const fromFile = file?.values[key]
    return fromFile ? {source: `${file!.path} [${file!.profile}]`, value: fromFile} : undefined
  }

  const where = file ? `${file.path} [${file.profile}]` : 'the environment'
  const host = value('host')
  if (!host) {
    throw new UserError(`No Databricks host is configured for ${trackingUri.value} (looked in ${where})`, {
      code: 'DATABRICKS_HOST_MISSING',
      exit: ExitCode.Usage,
      hint: 'Set DATABRICKS_HOST (and DATABRICKS_TOKEN), or run `databricks auth login`.',
    })
  }

  const {auth, password, token, username} = databricksAuth(value, where, warnings)
  const ignored = [
    ...CREDENTIAL_ENV,
    'MLFLOW_TRACKING_AWS_SIGV4',
    'MLFLOW_TRACKING_AUTH',
    'MLFLOW_TRACKING_INSECURE_TLS',
    'MLFLOW_TRACKING_SERVER_CERT_PATH',
    'MLFLOW_TRACKING_CLIENT_CERT_PATH',
  ].filter((name) => env[name])
  if (ignored.length > 0)
    warnings.push(
      `${ignored.join(', ')} ${ignored.length === 1 ? 'is' : 'are'} not used for databricks tracking URIs (MLflow reads the Databricks settings instead).`,
    )

  return {
    auth,
    host: {source: host.source, value: normalizeDatabricksHost(host.value)},
    kind: 'databricks',
    password: auth === 'basic' ? password : undefined,
    tls: {insecure: false},
    token: auth === 'bearer' ? token : undefined,
    username: auth === 'basic' ? username : undefined,
  }
}

/** A token (Bearer), else a username and password (Basic); the other Databricks methods are refused by name. */
function databricksAuth(
  value: (key: DatabricksKey) => Sourced | undefined,
  where: string,
  warnings: string[],
): Pick<Connection, 'password' | 'token' | 'username'> & {auth: AuthScheme} {
  const token = value('token')
  const username = value('username')
  const password = value('password')
  if (token) {
    assertHeaderSafe(token)
    if (username && password) warnings.push(`Both a Databricks token (${token.source}) and a username/password are configured: the token is used.`)
    return {auth: 'bearer', password, token, username}
  }

  if (username && password) return {auth: 'basic', password, token, username}
  const authType = value('auth_type')?.value
  const oauth = value('client_id') && value('client_secret')
  const method = oauth ? 'OAuth machine-to-machine (client_id/client_secret)' : authType ? `auth_type = ${authType}` : undefined
  throw new UserError(
    method
      ? `The Databricks credentials in ${where} use ${method}, which mlflowctl does not support`
      : `No Databricks token or username/password is configured (looked in ${where})`,
    {
      code: 'DATABRICKS_AUTH_UNSUPPORTED',
      exit: ExitCode.Usage,
      hint: 'Create a personal access token (`databricks tokens create`) and set DATABRICKS_TOKEN, or add `token = …` to the profile.',
    },
  )
}

/** The Databricks SDKs keep scheme and host only, adding https:// when missing. */
function normalizeDatabricksHost(host: string): string {
  const withScheme = /^https?:\/\//i.test(host) ? host : `https://${host}`
  try {
    return new URL(withScheme).origin
  } catch {
    throw new UserError(`The Databricks host "${host}" is not a valid URL`, {code: 'INVALID_TRACKING_URI', exit: ExitCode.Usage})
  }
}
