import {Flags} from '../cli/oclif.js'
import {BaseCommand} from '../cli/base-command.js'
import {atomicWriteFile} from '../core/atomic-file.js'
import {ExitCode, UserError} from '../core/errors.js'
import {POLICY_KIND_NAMES} from '../policy/model.js'
import {readServerState} from '../policy/server-state.js'
import {type PolicyData, policyData, writePolicy} from '../policy/write-file.js'

export interface ExportResult {
  file: null | string
  policy: PolicyData
}

export default class Export extends BaseCommand<typeof Export> {
  static override description =
    'Writes version 1 of the format (docs/access-as-code.md): users by name with their admin flag and own grants, then roles with their rows and members; experiments by name. The order is fixed, so two exports of the same state are byte-identical. Passwords are never written. Needs an admin.'
  static override examples = [
    '<%= config.bin %> <%= command.id %> -o access.yaml',
    '<%= config.bin %> <%= command.id %> --user alice',
    '<%= config.bin %> <%= command.id %> --kind experiment --kind model',
  ]
  static override flags = {
    kind: Flags.string({
      description: 'Only grants and role rows of this kind (repeatable). A filtered file is a partial view: applying it with --prune would remove the rest.',
      multiple: true,
      options: POLICY_KIND_NAMES,
    }),
    output: Flags.string({char: 'o', description: 'Write the file here (atomically) instead of to stdout.'}),
    user: Flags.string({char: 'u', description: "Only this user, the roles they hold, and of those roles' members only them."}),
  }
  static override summary = "Write a live server's users, admins, roles and grants as an access-policy file."

  public async run(): Promise<ExportResult> {
    const session = await this.session()
    const state = await readServerState(session)
    const {kind: kinds, output, user} = this.flags
    if (user !== undefined && !state.users.has(user)) {
      throw new UserError(`There is no user named "${user}"`, {code: 'RESOURCE_DOES_NOT_EXIST', exit: ExitCode.NotFound})
    }

    const filter = {kinds: kinds as typeof POLICY_KIND_NAMES | undefined, user}
    const text = writePolicy(state, filter)
    if (output === undefined) {
      if (!this.jsonEnabled()) process.stdout.write(text)
    } else {
      // Not a secret (no passwords), but it says who may do what: readable by its owner's group, not by everyone.
      await atomicWriteFile(output, text, {mode: 0o640})
      this.status(`Wrote ${output}: ${state.users.size} users, ${state.roles.size} roles`)
    }

    return {file: output ?? null, policy: policyData(state, filter)}
  }
}
