import {Flags} from '../cli/oclif.js'
import {BaseCommand} from '../cli/base-command.js'
import {planFromFile} from '../cli/policy.js'
import {policyFileFlag, pruneFlag} from '../cli/policy-flags.js'
import {ExitCode} from '../core/errors.js'
import {type PlanJson, planJson, renderPlan} from '../policy/plan.js'

export default class Plan extends BaseCommand<typeof Plan> {
  static override description = `Reads the file, resolves its names against the server (an experiment, model or prompt that does not exist is an error with the file's line, exit 2) and reads the server's users, grants and roles (admins only). Lists what apply would change: + to add, ~ to change (old → new), - to remove (only with --prune), per user then per role, and what the server holds that the file does not describe (unmanaged), then a summary line. Changes nothing. With --detailed-exitcode: exit 0 when there is nothing to change, ${ExitCode.ChangesPending} when there is.`
  static override examples = [
    '<%= config.bin %> <%= command.id %> -f access.yaml',
    '<%= config.bin %> <%= command.id %> -f access.yaml --prune --json',
    '<%= config.bin %> <%= command.id %> -f access.yaml --detailed-exitcode || echo "the server differs from access.yaml"',
  ]
  static override flags = {
    'detailed-exitcode': Flags.boolean({default: false, description: `Exit ${ExitCode.ChangesPending} when there are changes to make (0 when none).`}),
    file: policyFileFlag,
    prune: pruneFlag,
  }
  static override summary = 'Show what apply would change to make the server match an access policy file.'

  public async run(): Promise<PlanJson> {
    const session = await this.session()
    const {plan} = await planFromFile(session, this.flags.file, this.flags.prune)
    this.log(renderPlan(plan))
    if (this.flags['detailed-exitcode'] && plan.changes.length > 0) process.exitCode = ExitCode.ChangesPending
    return planJson(plan)
  }
}
