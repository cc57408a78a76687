/**
 * serve's settings, from the places MLflow's basic-auth app reads them: basic_auth.ini
 * (--config, else MLFLOW_AUTH_CONFIG_PATH) and MLFLOW_AUTH_ADMIN_* / MLFLOW_FLASK_SERVER_SECRET_KEY.
 */
import {randomBytes} from 'node:crypto'
import {isIP} from 'node:net'

import {readConfigParserSection} from '../core/configparser.js'
import {ExitCode, UserError} from '../core/errors.js'
import {isPermissionLevel} from '../mlflow/permissions.js'
import {loadPasswordPolicy, type PasswordPolicy} from '../mlflow/password-policy.js'

/** The admin password MLflow 2.22–3.16.0 shipped; accepted only on loopback, with warnings. */
export const LEGACY_DEFAULT_ADMIN_PASSWORD = 'password1234'

export interface ServeConfig {
  admin: {password: string; passwordIsDefault: boolean; username: string}
  configPath?: string
  defaultPermission: string
  /** Which new passwords users/create, users/update-password and /signup take. */
  passwordPolicy: PasswordPolicy
  /** Signs CSRF tokens for /signup; random per process when not configured. */
  secretKey: Buffer
  /** MLflow's --static-prefix (e.g. `/mlflow`): every route sits below it; '' for none. */
  staticPrefix: string
  warnings: string[]
}

export interface ConfigInput {
  configPath?: string
  env: NodeJS.ProcessEnv
  host: string
  /** At least MLflow's 12; default 12. */
  passwordMinLength?: number
  /** A file of refused passwords, one per line. */
  refusedPasswordsFile?: string
  staticPrefix?: string
}

export function isLoopback(host: string): boolean {
  if (host === 'localhost') return true
  const bare = host.replace(/^\[|\]$/g, '')
  if (isIP(bare) === 4) return bare.startsWith('127.')
  return bare === '::1'
}

export async function loadServeConfig(input: ConfigInput): Promise<ServeConfig> {
  const {env} = input
  const configPath = input.configPath ?? (env.MLFLOW_AUTH_CONFIG_PATH || undefined)
  const ini = configPath ? await readConfigParserSection(configPath, 'mlflow') : {}
  if (configPath && ini === undefined) throw new UserError(`Auth config ${configPath} does not exist`, {code: 'CONFIG_NOT_FOUND', exit: ExitCode.Usage})
  const settings = ini ?? {}
  const warnings: string[] = []

  const defaultPermission = settings.default_permission ?? 'READ'
  if (!isPermissionLevel(defaultPermission)) {
    throw new UserError(`default_permission = ${defaultPermission} in ${configPath} is not a permission level`, {
      exit: ExitCode.Usage,
      hint: 'Use READ, USE, EDIT, MANAGE or NO_PERMISSIONS.',
    })
  }

  // A set environment variable wins even when empty (MLflow 3.16.1+), and empty means "none".
  const username = (env.MLFLOW_AUTH_ADMIN_USERNAME ?? settings.admin_username ?? 'admin') || 'admin'
  let password = (env.MLFLOW_AUTH_ADMIN_PASSWORD ?? settings.admin_password ?? '') || ''
  let passwordIsDefault = password === LEGACY_DEFAULT_ADMIN_PASSWORD
  if (passwordIsDefault && !isLoopback(input.host)) {
    // Configured or not, the published default is no password beyond this machine (MLflow 3.16.1+ refuses it everywhere).
    throw new UserError(`The admin password is MLflow's old published default, and serve listens on ${input.host}, beyond this machine`, {
      code: 'DEFAULT_ADMIN_PASSWORD',
      exit: ExitCode.Usage,
      hint: 'Set MLFLOW_AUTH_ADMIN_PASSWORD (or admin_password in basic_auth.ini) to another password.',
    })
  }

  if (!password) {
    if (!isLoopback(input.host)) {
      throw new UserError(`No admin password is configured, and serve listens on ${input.host}, beyond this machine`, {
        code: 'NO_ADMIN_PASSWORD',
        exit: ExitCode.Usage,
        hint: 'Set MLFLOW_AUTH_ADMIN_PASSWORD (or admin_password in basic_auth.ini); it is used when the admin user is first created.',
      })
    }

    password = LEGACY_DEFAULT_ADMIN_PASSWORD
    passwordIsDefault = true
  }

  const staticPrefix = (input.staticPrefix ?? '').replace(/\/+$/, '')
  if (staticPrefix && !/^(\/[\w.~-]+)+$/.test(staticPrefix)) {
    throw new UserError(`--static-prefix ${input.staticPrefix} is not a path like /mlflow`, {
      exit: ExitCode.Usage,
      hint: "Give the same value as the MLflow server's --static-prefix.",
    })
  }

  const passwordPolicy = await loadPasswordPolicy({minLength: input.passwordMinLength, refusedFile: input.refusedPasswordsFile})
  const secret = env.MLFLOW_FLASK_SERVER_SECRET_KEY
  return {
    admin: {password, passwordIsDefault, username},
    configPath,
    defaultPermission,
    passwordPolicy,
    secretKey: secret ? Buffer.from(secret) : randomBytes(32),
    staticPrefix,
    warnings,
  }
}
