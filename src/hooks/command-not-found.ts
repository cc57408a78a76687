/**
 * A command line that names no command: say so with the spelling people type (spaces, not
 * oclif's colons), suggest the closest command, and exit 2 like any other bad command line.
 * Unlike @oclif/plugin-not-found it suggests without a terminal too (scripts see the hint), and
 * never runs the guessed command itself: in an admin tool a typo must not grant or revoke.
 * Loaded only when a command is not found, so it costs the other commands nothing.
 */
import type {Hook} from '@oclif/core/hooks'

import {CLIError} from '../cli/oclif.js'
import {ExitCode} from '../core/errors.js'
import {notFoundMessage} from '../cli/suggest.js'

const hook: Hook.CommandNotFound = async function (options) {
  const argv = options.argv ?? []
  const {hint, message} = notFoundMessage(options.config, options.id, argv)
  if (argv.includes('--json')) {
    this.log(JSON.stringify({error: {code: 'COMMAND_NOT_FOUND', exit: ExitCode.Usage, hint, message}}, null, 2))
    this.exit(ExitCode.Usage)
  }

  throw new CLIError(message, {code: 'COMMAND_NOT_FOUND', exit: ExitCode.Usage, suggestions: [hint]})
}

export default hook
