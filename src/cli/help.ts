/**
 * oclif's help, except for a subject that is no command or topic (`mlflowctl users lst -h`): that
 * gets the same answer and suggestion as running it would, instead of oclif's colon-joined id.
 */
import {CLIError} from '@oclif/core/errors'
import {Help} from '@oclif/core/help'

import {ExitCode} from '../core/errors.js'
import {notFoundMessage} from './suggest.js'

export default class MlflowctlHelp extends Help {
  override async showHelp(argv: string[]): Promise<void> {
    try {
      await super.showHelp(argv)
    } catch (error) {
      const subject = /^Command (\S+) not found\.$/.exec((error as Error).message)?.[1]
      if (!subject) throw error
      const {hint, message} = notFoundMessage(this.config, subject, [])
      throw new CLIError(message, {code: 'COMMAND_NOT_FOUND', exit: ExitCode.Usage, suggestions: [hint]})
    }
  }
}
