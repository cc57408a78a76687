/**
 * The only place that talks to @inquirer/prompts (imported lazily: it costs ~50 ms at startup).
 * Prompts draw on stderr so stdout stays clean for data, and only when stdin is a terminal;
 * otherwise the caller gets an error naming the flag to use instead.
 */
import {ExitCode, UserError} from '../core/errors.js'

export function canPrompt(): boolean {
  return Boolean(process.stdin.isTTY) && Boolean(process.stderr.isTTY)
}

function needsFlag(what: string, flag: string): UserError {
  return new UserError(`${what} is required: no terminal to prompt on`, {code: 'INPUT_REQUIRED', exit: ExitCode.Usage, hint: `Pass ${flag}.`})
}

async function inquirer() {
  return import('@inquirer/prompts')
}

/** Ctrl-C or a closed terminal during a prompt is the user saying no, not a crash. */
async function asked<T>(prompt: Promise<T>): Promise<T> {
  try {
    return await prompt
  } catch (error) {
    if ((error as Error).name === 'ExitPromptError' || (error as Error).name === 'AbortPromptError') {
      throw new UserError('Cancelled', {code: 'CANCELLED', exit: ExitCode.Aborted})
    }

    throw error
  }
}

const context = () => ({input: process.stdin, output: process.stderr})

export async function promptText(message: string, options: {default?: string; flag: string; validate?: (value: string) => string | true}): Promise<string> {
  if (!canPrompt()) throw needsFlag(message, options.flag)
  const {input} = await inquirer()
  return asked(input({default: options.default, message, required: true, validate: options.validate}, context()))
}

export async function promptSecret(message: string, options: {flag: string}): Promise<string> {
  if (!canPrompt()) throw needsFlag(message, options.flag)
  const {password} = await inquirer()
  return asked(password({mask: true, message, validate: (value) => value.length > 0 || 'Required'}, context()))
}

/**
 * MLflow's rule for passwords (its basic-auth app refuses shorter ones, counted in characters as
 * Python counts them): checked here first, so a new password is never asked twice, sent, and only
 * then refused.
 */
export const PASSWORD_MIN_LENGTH = 12
export const PASSWORD_RULE = `at least ${PASSWORD_MIN_LENGTH} characters`

export function checkNewPassword(password: string): string | true {
  const length = [...password].length
  return length >= PASSWORD_MIN_LENGTH ? true : `Too short: MLflow needs ${PASSWORD_RULE} (this one has ${length})`
}

/** A new password from standard input (`--password-stdin`), held to the rule (default MLflow's) before anything is sent. */
export async function readNewPasswordFromStdin(check: (password: string) => string | true = checkNewPassword): Promise<string> {
  const password = await readSecretFromStdin('password')
  const verdict = check(password)
  if (verdict !== true) throw new UserError(`${verdict.replace(/\.$/, '')}; nothing was changed`, {code: 'INVALID_PASSWORD', exit: ExitCode.Usage})
  return password
}

/** A new password, with the rule shown first and checked as typed, then repeated; a mismatch asks again. */
export async function promptNewPassword(options: {
  /** Another rule than MLflow's, and its words for the prompt. */
  check?: (password: string) => string | true
  flag: string
  message?: string
  rule?: string
}): Promise<string> {
  if (!canPrompt()) throw needsFlag(options.message ?? 'New password', options.flag)
  const {password} = await inquirer()
  const ask = (message: string, validate: (value: string) => string | true) => asked(password({mask: true, message, validate}, context()))
  for (;;) {
    const first = await ask(`${options.message ?? 'New password'} (${options.rule ?? PASSWORD_RULE})`, options.check ?? checkNewPassword)
    const second = await ask('Repeat the password', (value) => value.length > 0 || 'Required')
    if (first === second) return first
    process.stderr.write('The passwords do not match; enter them again (Ctrl-C to cancel).\n')
  }
}

/** One of a few choices, by number (quick to type, and readable in a transcript). */
export async function promptChoice<T extends string>(message: string, choices: Array<{name: string; value: T}>): Promise<T> {
  if (!canPrompt()) throw new UserError(`${message}: no terminal to ask on`, {code: 'INPUT_REQUIRED', exit: ExitCode.Usage})
  const {rawlist} = await inquirer()
  return asked(rawlist({choices, message}, context()))
}

/**
 * A secret piped on stdin (`--password-stdin`): everything up to EOF, less one trailing newline,
 * so `echo "$PW" | mlflowctl …` and `mlflowctl … < file` both give the exact secret.
 */
export async function readSecretFromStdin(what: string): Promise<string> {
  if (process.stdin.isTTY)
    throw new UserError(`Expected the ${what} on standard input, but it is a terminal`, {
      exit: ExitCode.Usage,
      hint: 'Pipe it in, e.g. `printf %s "$PASSWORD" | mlflowctl …`, or drop the --*-stdin flag to be prompted.',
    })
  const chunks: Buffer[] = []
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer)
  const value = Buffer.concat(chunks)
    .toString('utf8')
    .replace(/\r?\n$/, '')
  if (value.length === 0) throw new UserError(`No ${what} on standard input`, {code: 'INPUT_REQUIRED', exit: ExitCode.Usage})
  return value
}

/** Confirms a destructive action: `--yes` skips, a terminal asks, anything else refuses. */
export async function confirmDestructive(action: string, yes: boolean): Promise<void> {
  if (yes) return
  if (!canPrompt()) {
    throw new UserError(`Refusing to ${action} without confirmation`, {code: 'CONFIRMATION_REQUIRED', exit: ExitCode.Aborted, hint: 'Pass --yes to confirm.'})
  }

  const {confirm} = await inquirer()
  if (!(await asked(confirm({default: false, message: `${action[0].toUpperCase()}${action.slice(1)}?`}, context())))) {
    throw new UserError('Cancelled; nothing was changed', {code: 'CANCELLED', exit: ExitCode.Aborted})
  }
}
