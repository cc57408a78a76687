import {Command} from '../cli/oclif-command.js'
import {complete} from '../cli/completion.js'

/**
 * What the completion scripts call: `mlflowctl __complete -- WORDS…`, the last word the one being
 * typed. The `--` keeps oclif from reading a typed `-h` or `--help` as a request for help. Prints
 * `value<TAB>description` lines, and nothing at all on any error: a shell prompt is no place for one.
 */
export default class Complete extends Command {
  static override hidden = true
  static override strict = false
  static override summary = 'Completion candidates for the words typed so far (used by the completion scripts).'

  public async run(): Promise<void> {
    const words = this.argv[0] === '--' ? this.argv.slice(1) : this.argv
    try {
      const candidates = await complete(
        {
          bin: this.config.bin,
          commands: this.config.commands,
          async profiles() {
            const {MlflowCredentialsFile} = await import('../client/mlflow-credentials.js')
            return (await MlflowCredentialsFile.load()).listProfiles().map((login) => login.profile)
          },
          topics: this.config.topics,
        },
        words.length === 0 ? [''] : words,
      )
      for (const candidate of candidates)
        process.stdout.write(candidate.description ? `${candidate.value}\t${candidate.description}\n` : `${candidate.value}\n`)
    } catch {
      // No candidates rather than an error in the middle of someone's command line.
    }
  }
}
