import {BaseCommand} from '../cli/base-command.js'
import {POLICY_SCHEMA} from '../policy/schema.js'

export default class Schema extends BaseCommand<typeof Schema> {
  // Talks to no server: no --profile or --tracking-uri.
  static override baseFlags = {} as typeof BaseCommand.baseFlags
  static override description =
    "Save it beside your policy file and name it in the file's first line, `# yaml-language-server: $schema=access-policy.schema.json`, so editors complete and check the file. `plan` and `apply` check every file with it."
  static override examples = ['<%= config.bin %> <%= command.id %> > access-policy.schema.json']
  static override summary = 'Print the JSON Schema of access-policy files (the files of plan, apply and export).'

  public async run(): Promise<typeof POLICY_SCHEMA> {
    // Under --json oclif prints the returned document: the schema itself either way.
    if (!this.jsonEnabled()) this.log(JSON.stringify(POLICY_SCHEMA, null, 2))
    return POLICY_SCHEMA
  }
}
