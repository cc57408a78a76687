/**
 * Which new passwords serve (and the offline store commands) take: at least a minimum length,
 * counted in characters as Python counts them (MLflow's own rule is 12), not the username, and
 * not one of an operator's list of refused passwords (leaked or too common ones). Messages name
 * the rule broken, never the password.
 */
import {readFile} from 'node:fs/promises'

import {ExitCode, UserError} from '../core/errors.js'
import {pythonLength} from './python-text.js'

/** MLflow's own minimum; serve never goes below it, or it would take passwords MLflow refuses. */
export const MLFLOW_MIN_PASSWORD_LENGTH = 12
/** Far above any sensible minimum: a larger one is surely a typo. */
export const MAX_MIN_PASSWORD_LENGTH = 1024

export interface PasswordPolicy {
  minLength: number
  /** Refused passwords, as compared: see foldPassword. */
  refused: ReadonlySet<string>
  /** Where the refused passwords came from, for messages; undefined when none were given. */
  refusedFile?: string
}

export const MLFLOW_PASSWORD_POLICY: PasswordPolicy = Object.freeze({minLength: MLFLOW_MIN_PASSWORD_LENGTH, refused: new Set<string>()})

/** Case-insensitive, and one spelling per character (NFKC), so "Password1234" and "PASSWORD1234" are one entry. */
function foldPassword(password: string): string {
  return password.normalize('NFKC').toLowerCase()
}

/** The refused passwords of a list: one per line, surrounding blanks ignored, blank lines and lines starting with '#' skipped. */
export function parseRefusedPasswords(text: string): Set<string> {
  const refused = new Set<string>()
  for (const raw of text.split('\n')) {
    const line = raw.trim()
    if (line !== '' && !line.startsWith('#')) refused.add(foldPassword(line))
  }

  return refused
}

/** Why `password` is refused for `username`, or undefined when it is fine. Never holds the password. */
export function passwordProblem(policy: PasswordPolicy, password: string, username?: string): string | undefined {
  if (pythonLength(password) < policy.minLength) return `Password must be at least ${policy.minLength} characters.`
  const folded = foldPassword(password)
  if (username !== undefined && folded === foldPassword(username)) return 'Password must not be the username.'
  if (policy.refused.has(folded)) return 'Password is on the list of refused passwords (too common or known to be leaked); choose another.'
  return undefined
}

/**
 * The policy of `--password-min-length` and `--refused-passwords`: a minimum below MLflow's 12 or
 * a list that cannot be read is refused (exit 2), so a typo never weakens the rule unnoticed.
 */
export async function loadPasswordPolicy(options: {minLength?: number; refusedFile?: string}): Promise<PasswordPolicy> {
  const minLength = options.minLength ?? MLFLOW_MIN_PASSWORD_LENGTH
  if (!Number.isSafeInteger(minLength) || minLength < MLFLOW_MIN_PASSWORD_LENGTH || minLength > MAX_MIN_PASSWORD_LENGTH) {
    throw new UserError(`--password-min-length ${minLength} is not between ${MLFLOW_MIN_PASSWORD_LENGTH} and ${MAX_MIN_PASSWORD_LENGTH}`, {
      code: 'INVALID_PASSWORD_POLICY',
      exit: ExitCode.Usage,
      hint: `MLflow itself requires ${MLFLOW_MIN_PASSWORD_LENGTH}; serve can only ask for more.`,
    })
  }

  if (options.refusedFile === undefined) return {minLength, refused: new Set()}
  let text: string
  try {
    text = await readFile(options.refusedFile, 'utf8')
  } catch (error) {
    throw new UserError(`Cannot read the refused passwords file ${options.refusedFile}: ${(error as Error).message}`, {
      code: 'INVALID_PASSWORD_POLICY',
      exit: ExitCode.Usage,
      hint: 'Give a readable text file, one password per line (# starts a comment).',
    })
  }

  return {minLength, refused: parseRefusedPasswords(text), refusedFile: options.refusedFile}
}
