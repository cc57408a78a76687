import {BaseCommand} from '../cli/base-command.js'

export interface VersionResult {
  arch: string
  node: string
  platform: string
  version: string
}

export default class Version extends BaseCommand<typeof Version> {
  // Talks to no server: no --profile or --tracking-uri.
  static override baseFlags = {} as typeof BaseCommand.baseFlags
  static override examples = ['<%= config.bin %> <%= command.id %>', '<%= config.bin %> <%= command.id %> --json']
  static override summary = 'Show the version of mlflowctl (also --version and -v).'

  public async run(): Promise<VersionResult> {
    // The same line as --version, which oclif prints itself.
    this.log(this.config.userAgent)
    return {arch: this.config.arch, node: process.version, platform: this.config.platform, version: this.config.version}
  }
}
