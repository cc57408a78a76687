import {Flags} from '../../cli/oclif.js'
import {BaseCommand} from '../../cli/base-command.js'
import {type ImportResult} from '../../server/store/transfer.js'

export default class StoreImport extends BaseCommand<typeof StoreImport> {
  // Works on files and databases, not on an MLflow server: no --profile or --tracking-uri.
  static override baseFlags = {} as typeof BaseCommand.baseFlags
  static override description = `Reads the database of MLflow's own basic-auth app (the database_uri of its basic_auth.ini: sqlite:///path or postgresql://…; or an SQLite file's path) as MLflow 3.12 to 3.17 write it, and loads its users (with their password hashes, so their passwords keep working through serve), admin flags, per-user grants and roles into an empty serve store, in one write. Stop the MLflow server first.

MLflow up to 3.12 keeps per-user grants in per-resource tables: they become the rows of each user's per-user role, as MLflow 3.13+ does (NO_PERMISSIONS rows kept). What serve cannot hold (workspaces other than default, rows it does not accept) is listed on stderr and under "skipped" in --json. A destination that already holds users or roles is refused (exit 6) and left unchanged. The store is read back afterwards and its counts and digest printed.`
  static override examples = [
    '<%= config.bin %> <%= command.id %> --from-mlflow sqlite:///var/lib/mlflow/basic_auth.db --to /var/lib/mlflowctl/auth.json',
    '<%= config.bin %> <%= command.id %> --from-mlflow ./basic_auth.db --to auth.json --json',
  ]
  static override flags = {
    'from-mlflow': Flags.string({
      description:
        "MLflow's auth database as basic_auth.ini's database_uri spells it (sqlite:///path/basic_auth.db, postgresql://…, postgresql+psycopg2://…) or an SQLite file's path.",
      required: true,
    }),
    to: Flags.string({
      description:
        'The serve store to fill: a JSON file (created when missing) or a postgresql:// URL (tables set up when missing); must hold no users or roles.',
      required: true,
    }),
  }
  static override summary = "Import users and permissions from MLflow's basic-auth database into a serve store."

  public async run(): Promise<ImportResult> {
    const {importFromMlflow, summaryLine} = await import('../../server/store/transfer.js')
    const result = await importFromMlflow(this.flags['from-mlflow'], this.flags.to)
    for (const {reason, what} of result.skipped) this.warn(`not imported: ${what}: ${reason}`)
    this.status(
      `Imported MLflow's auth database (${result.schema === 'roles' ? 'roles schema, MLflow 3.13+' : 'per-resource grants, MLflow up to 3.12'}) into ${result.to}`,
    )
    this.log(summaryLine(result.destination))
    return result
  }
}
