/** Flags and arguments shared by several commands. */

import {Args} from './oclif-command.js'
import {Flags} from './oclif.js'
import {type PermissionLevel} from '../api/auth-api.js'
import {PERMISSION_LEVELS} from '../mlflow/permissions.js'
import {ExitCode, UserError} from '../core/errors.js'

export const yesFlag = Flags.boolean({char: 'y', default: false, description: 'Do not ask for confirmation.'})

export const userFlag = (description: string) => Flags.string({char: 'u', description, required: true})

/** Levels are checked before any request, case-insensitively (`read` is READ). */
export const permissionFlag = Flags.custom<PermissionLevel>({
  char: 'p',
  description: `Permission level: ${PERMISSION_LEVELS.join(', ')} (USE and DENY only where the server supports them).`,
  async parse(input) {
    const level = input.trim().toUpperCase()
    if (!(PERMISSION_LEVELS as readonly string[]).includes(level)) {
      throw new UserError(`Unknown permission level "${input}". Expected one of: ${PERMISSION_LEVELS.join(', ')}`, {
        code: 'INVALID_PERMISSION',
        exit: ExitCode.Usage,
      })
    }

    return level as PermissionLevel
  },
})

export const usernameArg = Args.string({description: "The user's name.", required: true})

export const passwordStdinFlag = Flags.boolean({default: false, description: 'Read the password from standard input instead of prompting.'})
