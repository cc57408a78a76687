import {type ApplyJson, ApplyingCommand, planFromFile} from '../cli/policy.js'
import {policyFileFlag, pruneFlag} from '../cli/policy-flags.js'
import {yesFlag} from '../cli/flags.js'
import {checkNewPassword, readSecretFromStdin} from '../cli/prompts.js'
import {newPasswords} from '../policy/apply.js'

export default class Apply extends ApplyingCommand<typeof Apply> {
  static override description = `Plans as \`mlflowctl plan\` does, shows the plan, asks for confirmation on a terminal (without one, --yes is needed: exit 9), then makes the changes, 8 at a time, in an order that never gives anyone more than the old and the new policy together allow (restricting changes first), and says what it did. Users the server lacks are created with the password the file names: {env: VAR} (read before any change), {stdin: true} (one line of standard input per such user, in the file's order) or {generate: true} (printed once at the end, with the username, on stdout; in --json under passwords). Stops at the first failure: reports what was and was not applied and exits with that request's code; a re-run finishes the job. Not atomic: see "Access as code" in the README.`
  static override examples = [
    '<%= config.bin %> <%= command.id %> -f access.yaml',
    '<%= config.bin %> <%= command.id %> -f access.yaml --prune --yes',
    'printf "%s\\n" "$ALICE_PW" "$BOB_PW" | <%= config.bin %> <%= command.id %> -f access.yaml --yes',
  ]
  static override flags = {file: policyFileFlag, prune: pruneFlag, yes: yesFlag}
  static override summary = 'Make the server match an access policy file: users, admins, grants and roles.'

  public async run(): Promise<ApplyJson> {
    const session = await this.session()
    const context = await planFromFile(session, this.flags.file, this.flags.prune)
    const passwords = await newPasswords(context.plan, context.desired, {
      check: checkNewPassword,
      env: process.env,
      file: this.flags.file,
      readStdin: () => readSecretFromStdin('passwords (one line per user in the order of the file)'),
    })
    return this.applyAndReport(session, context, passwords, this.flags.yes)
  }
}
