import {Flags} from '../../cli/oclif.js'
import {BaseCommand} from '../../cli/base-command.js'
import {type CopyResult} from '../../server/store/transfer.js'

export default class StoreCopy extends BaseCommand<typeof StoreCopy> {
  // Works on stores, not on an MLflow server: no --profile or --tracking-uri.
  static override baseFlags = {} as typeof BaseCommand.baseFlags
  static override description = `Copies every user, role, role row and assignment, ids included, from one serve store into an empty one (JSON file or PostgreSQL, either way), in one write; then reads the destination back and compares its counts per table and its digest (SHA-256 of its records in a canonical, order-independent form) with the source's. A difference exits 1. A destination that already holds users or roles is refused (exit 6) and left unchanged.`
  static override examples = [
    '<%= config.bin %> <%= command.id %> --from /var/lib/mlflowctl/auth.json --to /backup/auth.json',
    '<%= config.bin %> <%= command.id %> --from /var/lib/mlflowctl/auth.json --to postgresql://mlflowctl@db.internal:5432/auth',
  ]
  static override flags = {
    from: Flags.string({description: 'The store to copy: a JSON file, or a postgresql:// URL of a database that holds one.', required: true}),
    to: Flags.string({
      description: 'The store to fill: a JSON file (created when missing) or a postgresql:// URL (tables set up when missing); must hold no users or roles.',
      required: true,
    }),
  }
  static override summary = 'Copy a serve store into another, verified.'

  public async run(): Promise<CopyResult> {
    const {copyStore, summaryLine} = await import('../../server/store/transfer.js')
    const result = await copyStore(this.flags.from, this.flags.to)
    this.log(`source       ${summaryLine(result.source)}`)
    this.log(`destination  ${summaryLine(result.destination)}`)
    this.status(`Copied ${result.from} to ${result.to}: identical`)
    return result
  }
}
