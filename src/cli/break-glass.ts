/**
 * What the offline store commands (store reset-password, create-admin, make-admin) share: their
 * flags (the store, and the same password policy flags as serve, read from the same environment
 * variables), and reading a new password held to that policy: hidden on a terminal, or from
 * standard input, never from the command line, once the user is checked and the change confirmed.
 */

import {Flags} from './oclif.js'
import {loadPasswordPolicy, MAX_MIN_PASSWORD_LENGTH, MLFLOW_MIN_PASSWORD_LENGTH, type PasswordPolicy, passwordProblem} from '../mlflow/password-policy.js'
import {passwordStdinFlag, yesFlag} from './flags.js'
import {confirmDestructive, promptNewPassword, readNewPasswordFromStdin} from './prompts.js'

export const storeFlag = Flags.string({
  description:
    "The store serve uses (its --store): a JSON file, or a postgresql:// URL (password in the URL or PGPASSWORD). It must exist already. serve may be running on it: the change is made under the store's own locking and serve applies it at once.",
  env: 'MLFLOWCTL_STORE',
  required: true,
})

export const policyFlags = {
  'password-min-length': Flags.integer({
    default: MLFLOW_MIN_PASSWORD_LENGTH,
    description: "The shortest password taken, as serve's flag of the same name (at least 12).",
    env: 'MLFLOWCTL_PASSWORD_MIN_LENGTH',
    max: MAX_MIN_PASSWORD_LENGTH,
    min: MLFLOW_MIN_PASSWORD_LENGTH,
  }),
  'refused-passwords': Flags.string({
    description: "A file of refused passwords, as serve's flag of the same name.",
    env: 'MLFLOWCTL_REFUSED_PASSWORDS',
  }),
}

export const newPasswordFlags = {...policyFlags, 'password-stdin': passwordStdinFlag, store: storeFlag, yes: yesFlag}

interface PolicyFlagValues {
  'password-min-length': number
  'refused-passwords'?: string
}

export function policyOf(flags: PolicyFlagValues): Promise<PasswordPolicy> {
  return loadPasswordPolicy({minLength: flags['password-min-length'], refusedFile: flags['refused-passwords']})
}

/** The new password for `username`, checked against the policy as it is typed or read. */
export async function readPolicyPassword(policy: PasswordPolicy, username: string, fromStdin: boolean): Promise<string> {
  const check = (password: string) => passwordProblem(policy, password, username) ?? true
  if (fromStdin) return readNewPasswordFromStdin(check)
  return promptNewPassword({check, flag: '--password-stdin', message: `New password for ${username}`, rule: `at least ${policy.minLength} characters`})
}

/**
 * What store create-admin and reset-password do before their write: `check` refuses what the write
 * would (before a password is typed in vain; the write checks again), then `action` is confirmed,
 * then the new password is read, held to the policy.
 */
export async function askNewPassword(
  flags: PolicyFlagValues & {'password-stdin': boolean; yes: boolean},
  username: string,
  options: {action: string; check: () => Promise<void>},
): Promise<{password: string; policy: PasswordPolicy}> {
  const policy = await policyOf(flags)
  await options.check()
  await confirmDestructive(options.action, flags.yes)
  return {password: await readPolicyPassword(policy, username, flags['password-stdin']), policy}
}
