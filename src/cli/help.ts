/**
 * oclif's help, except for a subject that is no command or topic (`mlflowctl users lst -h`): that
 * gets the same answer and suggestion as running it would, instead of oclif's colon-joined id.
 */
import type {Config} from '@oclif/core/interfaces'

import {CLIError, CommandHelp, Help} from './oclif.js'
import {ExitCode} from '../core/errors.js'
import {notFoundMessage} from './suggest.js'

/**
 * oclif passes every text of the help through ejs, which compiles each one into a function (a few
 * milliseconds in all, on each --help). Most have no template tag and come out as they went in; the
 * tags our texts use, `<%= config.bin %>` and `<%= command.id %>`, are filled in here as ejs would
 * (escaped for XML); any other template still goes to ejs.
 */
const SIMPLE_TAG = /<%= (config\.bin|command\.id) %>/g
const XML_ESCAPES: Record<string, string> = {'"': '&#34;', '&': '&amp;', "'": '&#39;', '<': '&lt;', '>': '&gt;'}

function quickRender(tags: () => Record<string, string | undefined>, render: (text: string) => string): (text: string) => string {
  return (text) => {
    if (!text.includes('<%') && !text.includes('%>')) return text
    const values = tags()
    let filled = true
    const result = text.replaceAll(SIMPLE_TAG, (tag, name: string) => {
      const value = values[name]
      if (typeof value !== 'string') filled = false
      return typeof value === 'string' ? value.replaceAll(/[&<>'"]/g, (char) => XML_ESCAPES[char]) : tag
    })
    return filled && !result.includes('<%') && !result.includes('%>') ? result : render(text)
  }
}

class MlflowctlCommandHelp extends CommandHelp {
  constructor(...args: ConstructorParameters<typeof CommandHelp>) {
    super(...args)
    this.render = quickRender(() => ({'command.id': this.command.id, 'config.bin': this.config.bin}), this.render)
  }
}

export default class MlflowctlHelp extends Help {
  protected override CommandHelpClass = MlflowctlCommandHelp

  constructor(config: Config, options?: ConstructorParameters<typeof Help>[1]) {
    super(config, options)
    this.render = quickRender(() => ({'config.bin': this.config.bin}), this.render)
  }

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
