/**
 * `mlflowctl help [COMMAND…]`: the command @oclif/plugin-help provides, kept here so oclif loads no
 * plugin at start-up (finding it, reading its package.json and manifest cost every command ~5 ms),
 * and without the plugin's import of the whole of @oclif/core.
 */
import {Args, Command} from '../cli/oclif-command.js'
import {Flags, loadHelpClass} from '../cli/oclif.js'

export default class Help extends Command {
  static override args = {command: Args.string({description: 'Command to show help for.', required: false})}
  static override summary = 'Display help for mlflowctl.'
  static override flags = {
    'nested-commands': Flags.boolean({char: 'n', description: 'Include all nested commands in the output.'}),
  }
  static override strict = false

  public async run(): Promise<void> {
    const {argv, flags} = await this.parse(Help)
    const HelpClass = await loadHelpClass(this.config)
    await new HelpClass(this.config, {all: flags['nested-commands']}).showHelp(argv as string[])
  }
}
