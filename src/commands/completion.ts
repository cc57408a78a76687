import {Args} from '../cli/oclif-command.js'
import {BaseCommand} from '../cli/base-command.js'
import {completionScript, type Shell, SHELLS} from '../cli/completion.js'

export default class Completion extends BaseCommand<typeof Completion> {
  static override args = {shell: Args.string({description: 'The shell to print the script for.', options: [...SHELLS], required: true})}
  // Talks to no server: no --profile or --tracking-uri.
  static override baseFlags = {} as typeof BaseCommand.baseFlags
  static override description = `The script asks mlflowctl itself what to offer, so it never goes stale: commands, flags, flag values, and the names of stored logins.

bash, in ~/.bashrc:   eval "$(mlflowctl completion bash)"
zsh, in ~/.zshrc (after compinit):   eval "$(mlflowctl completion zsh)"
fish:   mlflowctl completion fish > ~/.config/fish/completions/mlflowctl.fish`
  static override enableJsonFlag = false
  static override examples = ['<%= config.bin %> <%= command.id %> bash', '<%= config.bin %> <%= command.id %> zsh', '<%= config.bin %> <%= command.id %> fish']
  static override summary = 'Print the shell completion script for bash, zsh or fish.'

  public async run(): Promise<void> {
    this.log(completionScript(this.args.shell as Shell, this.config.bin).trimEnd())
  }
}
