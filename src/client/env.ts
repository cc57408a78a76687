/**
 * MLflow's environment variables as its Python client reads them: the credential variables, and
 * the strict readers for booleans, integers and floats (a value MLflow would refuse is refused
 * here too, naming the variable).
 */
import {ExitCode, UserError} from '../core/errors.js'
import type {Sourced} from './connection.js'

/** The variables that hold an http(s) server's credentials: when set, they override a stored login. */
export const CREDENTIAL_ENV = ['MLFLOW_TRACKING_USERNAME', 'MLFLOW_TRACKING_PASSWORD', 'MLFLOW_TRACKING_TOKEN'] as const

/** What to do when no usable tracking URI is configured. */
export const LOGIN_HINT = 'Pass --tracking-uri, set MLFLOW_TRACKING_URI, or run `mlflowctl login`.'

export function assertHeaderSafe(value: Sourced): void {
  // HTTP header values are bytes without CR, LF or NUL; surrounding spaces would be stripped.
  if (/[^\t\x20-\x7E\x80-\xFF]/.test(value.value) || value.value.trim() !== value.value) {
    throw new UserError(
      `The value from ${value.source} cannot be sent in an HTTP header: it has a line break, a control character, surrounding spaces or a character outside Latin-1`,
      {
        code: 'INVALID_PARAMETER_VALUE',
        exit: ExitCode.Usage,
        hint: `Fix ${value.source}.`,
      },
    )
  }
}

/**
 * MLflow's boolean variables accept only true/false/1/0, any case (docs/client-credentials.md,
 * "Environment variables").
 */
export function readBool(env: NodeJS.ProcessEnv, name: string, fallback: boolean): boolean {
  const raw = env[name]
  if (raw === undefined) return fallback
  const lower = raw.toLowerCase()
  if (!['0', '1', 'false', 'true'].includes(lower)) throw invalidEnv(name, raw, "one of 'true', 'false', '1', '0' (any case)")
  return lower === 'true' || lower === '1'
}

/** Python int(): optional sign, digits, single underscores between digits, surrounding spaces. */
export function readInt(env: NodeJS.ProcessEnv, name: string, fallback: number): number {
  const raw = env[name]
  if (raw === undefined) return fallback
  if (!/^\s*[+-]?\d+(?:_\d+)*\s*$/.test(raw)) throw invalidEnv(name, raw, 'an integer')
  const value = Number(raw.trim().replaceAll('_', ''))
  if (!Number.isSafeInteger(value)) throw invalidEnv(name, raw, 'an integer')
  return value
}

/** Python float(), finite values only. */
export function readFloat(env: NodeJS.ProcessEnv, name: string, fallback: number): number {
  const raw = env[name]
  if (raw === undefined) return fallback
  if (!/^\s*[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:e[+-]?\d+)?\s*$/i.test(raw)) throw invalidEnv(name, raw, 'a number')
  const value = Number(raw.trim())
  if (!Number.isFinite(value)) throw invalidEnv(name, raw, 'a finite number')
  return value
}

export function invalidEnv(name: string, raw: string | undefined, expected: string): UserError {
  return new UserError(`${name} must be ${expected}, but is ${JSON.stringify(raw)}`, {
    code: 'INVALID_PARAMETER_VALUE',
    exit: ExitCode.Usage,
    hint: `Fix or unset ${name}.`,
  })
}

/** Hide any user:password@ part before showing a URI. */
