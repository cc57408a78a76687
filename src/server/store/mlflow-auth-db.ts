/**
 * Reads the database of MLflow's own basic-auth app (`basic_auth.db`, SQLite) into a StoreContent
 * serve can load: users with their Werkzeug hashes and admin flags, and every grant, with what
 * could not be carried over listed rather than dropped in silence.
 *
 * Two generations of the schema, told apart by its Alembic revision (`alembic_version_auth`):
 * - up to MLflow 3.12 (revision c3d4e5f6a7b8 and before) a user's own grants live in per-resource
 *   tables (`experiment_permissions`, `registered_model_permissions`, `scorer_permissions`,
 *   `gateway_*_permissions`); 3.12 also has roles, whose rows its resolver folds in with the higher
 *   level winning. They become the rows of each user's per-user role `__user_<id>__`, as MLflow's
 *   own upgrade (revision e5f6a7b8c9d0) does, except that NO_PERMISSIONS rows are kept: in 3.12 such
 *   a row hides the resource from the user whatever default_permission says, and serve reads it so.
 * - from MLflow 3.13 (e5f6a7b8c9d0 and later) the roles tables are the whole truth (the old tables
 *   are a frozen copy MLflow no longer reads) and are taken as they are.
 *
 * SQLite is read with sql.js (SQLite compiled to WebAssembly, shipped inside its npm package): the
 * file is read into memory and never written. PostgreSQL (MLflow's auth app on a `postgresql://`
 * database_uri) is read with `pg`, in one read-only transaction, so a running MLflow's changes
 * cannot tear what is read.
 */
import {readFile} from 'node:fs/promises'
import {resolve} from 'node:path'

import {ExitCode, UserError} from '../../core/errors.js'
import {ALL_LEVELS, CONTAINER_RESOURCE_TYPES, DEFAULT_WORKSPACE, maxLevel, rowProblem, userIdOfRoleName, userRoleName, WILDCARD} from '../../mlflow/rbac.js'
import {pythonQuote} from '../../mlflow/resources.js'
import {contentProblem} from './content.js'
import {type AssignmentRecord, isPostgresUrl, redactUrl, type RolePermissionRecord, type RoleRecord, type StoreContent, type UserRecord} from './store.js'

/** Something in MLflow's database that serve's store does not hold; said on stderr and in --json. */
export interface Skipped {
  reason: string
  what: string
}

export type MlflowSchema = 'per-resource' | 'roles'

export interface MlflowAuthImport {
  content: StoreContent
  /** The Alembic revision of the database, null when it has none (before MLflow stamped them). */
  revision: null | string
  schema: MlflowSchema
  skipped: Skipped[]
}

/** Revisions whose per-user grants are the per-resource tables (MLflow up to 3.12), oldest first. */
const PER_RESOURCE_REVISIONS = ['8606fa83a998', '0965eb92f5f0', 'a1b2c3d4e5f6', '2ed73881770d', 'c3d4e5f6a7b8']
/** Revisions after the move of every grant into roles (MLflow 3.13 to 3.17). */
const ROLES_REVISIONS = ['e5f6a7b8c9d0', 'f1a2b3c4d5e6']

/** The per-resource tables: where each keeps its resource, and the resource type it becomes. */
const LEGACY_TABLES = [
  {columns: 'experiment_id', table: 'experiment_permissions', type: 'experiment'},
  {columns: 'workspace, name', table: 'registered_model_permissions', type: 'registered_model'},
  {columns: 'experiment_id, scorer_name', table: 'scorer_permissions', type: 'scorer'},
  {columns: 'secret_id', table: 'gateway_secret_permissions', type: 'gateway_secret'},
  {columns: 'endpoint_id', table: 'gateway_endpoint_permissions', type: 'gateway_endpoint'},
  {columns: 'model_definition_id', table: 'gateway_model_definition_permissions', type: 'gateway_model_definition'},
] as const

/** The resource types MLflow 3.12 knew: its `workspace` rows reached each of them. */
const MLFLOW_312_TYPES = ['experiment', 'registered_model', 'scorer', 'gateway_secret', 'gateway_endpoint', 'gateway_model_definition']

type Row = Record<string, unknown>

interface Database {
  close(): Promise<void>
  query(sql: string): Promise<Row[]>
  /** The names of its tables. */
  tables(): Promise<Set<string>>
}

function bad(source: string, what: string, hint?: string): UserError {
  return new UserError(`${source} is not a usable MLflow auth database: ${what}. Nothing was imported.`, {code: 'INVALID_SOURCE', exit: ExitCode.Usage, hint})
}

/**
 * The SQLite file a source names: MLflow's `database_uri` spelling (`sqlite:///relative.db`,
 * `sqlite:////absolute.db`, SQLAlchemy's query parameters ignored) or a plain path. Undefined for a
 * PostgreSQL URL (read by openPostgres); any other URL is refused.
 */
export function sqlitePathOf(source: string): string | undefined {
  if (isPostgresUrl(source)) return undefined
  const sqlite = /^sqlite(?:\+[a-z0-9]+)?:\/\/(.*)$/i.exec(source)
  if (sqlite) {
    const rest = sqlite[1].split('?')[0]
    if (!rest.startsWith('/') || rest === '/')
      throw new UserError(`${source} names no database file (an in-memory database holds nothing to import)`, {
        exit: ExitCode.Usage,
        hint: 'Use sqlite:///path/to/basic_auth.db.',
      })
    return resolve(decodeURIComponent(rest.slice(1)))
  }

  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(source))
    throw new UserError(`mlflowctl imports MLflow auth databases in SQLite or PostgreSQL, not ${source.split(':')[0]}`, {
      code: 'UNSUPPORTED_SOURCE',
      exit: ExitCode.Unsupported,
    })
  return resolve(source)
}

async function openSqlite(path: string): Promise<Database> {
  let bytes: Buffer
  try {
    bytes = await readFile(path)
  } catch (error) {
    throw bad(path, `it cannot be read (${(error as NodeJS.ErrnoException).code ?? (error as Error).message})`)
  }

  if (bytes.length < 100 || bytes.subarray(0, 16).toString('latin1') !== 'SQLite format 3\0') throw bad(path, 'it is not an SQLite database')
  // Changes still in a write-ahead log or a hot rollback journal are not in the file itself.
  for (const suffix of ['-wal', '-journal']) {
    const size = await readFile(`${path}${suffix}`).then(
      (content) => content.length,
      () => 0,
    )
    if (size > 0) throw bad(path, `${path}${suffix} holds changes not yet in the database`, 'Stop the MLflow server that uses it (cleanly), then import again.')
  }

  // Write-ahead-log mode with no log: the file is whole; read it as a rollback-journal database.
  if (bytes[18] === 2 && bytes[19] === 2) {
    bytes = Buffer.from(bytes)
    bytes[18] = 1
    bytes[19] = 1
  }

  const {default: initSqlJs} = await import('sql.js')
  const SQL = await initSqlJs()
  let db: InstanceType<typeof SQL.Database>
  try {
    db = new SQL.Database(bytes)
  } catch (error) {
    throw bad(path, `SQLite cannot open it (${(error as Error).message})`)
  }

  const querySync = (sql: string): Row[] => {
    try {
      const statement = db.prepare(sql)
      const rows: Row[] = []
      try {
        while (statement.step()) rows.push(statement.getAsObject())
      } finally {
        statement.free()
      }

      return rows
    } catch (error) {
      throw bad(path, `SQLite cannot read it (${(error as Error).message})`)
    }
  }

  const check = querySync('PRAGMA quick_check')
  if (check.length !== 1 || check[0].quick_check !== 'ok') {
    db.close()
    throw bad(path, 'SQLite finds it damaged (PRAGMA quick_check)')
  }

  return {
    close: async () => db.close(),
    query: async (sql) => querySync(sql),
    tables: async () => new Set(querySync("SELECT name FROM sqlite_master WHERE type = 'table'").map((row) => String(row.name))),
  }
}

/** MLflow's auth database in PostgreSQL: one read-only snapshot, closed when read. */
async function openPostgres(url: string): Promise<Database> {
  const where = redactUrl(url)
  const {default: pg} = await import('pg')
  // bigint columns as numbers (ids are far below 2^53); anything larger is caught by isInteger.
  const types = {
    getTypeParser: ((oid: number, format?: 'binary' | 'text') =>
      oid === 20 ? (value: string) => Number(value) : pg.types.getTypeParser(oid, format as 'text')) as typeof pg.types.getTypeParser,
  }
  const client = new pg.Client({application_name: 'mlflowctl store import', connectionString: url, connectionTimeoutMillis: 10_000, types})
  client.on('error', () => {})
  try {
    await client.connect()
    await client.query('BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY')
  } catch (error) {
    await client.end().catch(() => {})
    throw bad(
      where,
      `it cannot be read (${(error as Error).message})`,
      'Check that the database is up and that the URL names it with a user that may read it (the password in the URL or PGPASSWORD).',
    )
  }

  const query = async (sql: string): Promise<Row[]> => {
    try {
      return (await client.query(sql)).rows as Row[]
    } catch (error) {
      throw bad(where, `PostgreSQL cannot read it (${(error as Error).message})`)
    }
  }

  return {
    close: () => client.end().catch(() => {}),
    query,
    tables: async () =>
      new Set((await query('SELECT table_name AS name FROM information_schema.tables WHERE table_schema = current_schema()')).map((row) => String(row.name))),
  }
}

/** Reads MLflow's auth database at `source`: SQLite (see sqlitePathOf) or PostgreSQL. */
export async function readMlflowAuthDb(source: string): Promise<MlflowAuthImport> {
  const path = sqlitePathOf(source)
  const db = path === undefined ? await openPostgres(source) : await openSqlite(path)
  try {
    return await readDatabase(db, path ?? redactUrl(source))
  } finally {
    await db.close()
  }
}

async function readDatabase(db: Database, path: string): Promise<MlflowAuthImport> {
  const tables = await db.tables()
  if (!tables.has('users')) throw bad(path, 'it has no users table', "MLflow's basic-auth app keeps its database where basic_auth.ini's database_uri says.")
  let revision: null | string = null
  if (tables.has('alembic_version_auth')) {
    const versions = await db.query('SELECT version_num FROM alembic_version_auth')
    if (versions.length !== 1 || typeof versions[0].version_num !== 'string') throw bad(path, 'its alembic_version_auth table does not hold one revision')
    revision = versions[0].version_num
  }

  let schema: MlflowSchema
  if (revision === null || PER_RESOURCE_REVISIONS.includes(revision)) schema = 'per-resource'
  else if (ROLES_REVISIONS.includes(revision)) schema = 'roles'
  else
    throw bad(
      path,
      `its schema revision ${revision} is not one this mlflowctl knows (MLflow up to 3.17)`,
      'It was probably written by a newer MLflow: use a newer mlflowctl.',
    )

  const reader = new Reader(db, path, tables)
  await reader.readUsers()
  if (schema === 'roles') await reader.readRoles(false)
  else {
    await reader.readRoles(true)
    await reader.readPerResourceGrants()
  }

  if (reader.lostRestrictions.length > 0) {
    throw new UserError(
      `Importing ${path} would allow more than MLflow did: serve cannot hold ${reader.lostRestrictions.length === 1 ? 'this restriction' : 'these restrictions'}: ${reader.lostRestrictions.join('; ')}. Nothing was imported.`,
      {code: 'WOULD_WIDEN_ACCESS', exit: ExitCode.Usage, hint: 'Change or remove these rows in MLflow first, then import again.'},
    )
  }

  const content = reader.content()
  // A record this reader made wrong is a bug, never a half-made store.
  const problem = contentProblem(content)
  if (problem) throw new Error(`The import of ${path} made records that do not fit together: ${problem}`)
  return {content, revision, schema, skipped: reader.skipped}
}

class Reader {
  readonly skipped: Skipped[] = []
  private readonly users = new Map<number, UserRecord>()
  private readonly roles = new Map<number, RoleRecord>()
  /** roleId → `type\0pattern` → row */
  private readonly rows = new Map<number, Map<string, Omit<RolePermissionRecord, 'id'> & {id?: number}>>()
  private readonly assignments: Omit<AssignmentRecord, 'id'>[] = []
  private nextRoleId = 1

  constructor(
    private readonly db: Database,
    private readonly path: string,
    private readonly tables: Set<string>,
  ) {}

  /** DENY and NO_PERMISSIONS rows left out: without them the import would allow more than MLflow did. */
  readonly lostRestrictions: string[] = []

  private skip(what: string, reason: string): void {
    this.skipped.push({reason, what})
  }

  private userName(userId: number): string {
    const user = this.users.get(userId)
    return user ? `user ${JSON.stringify(user.username)}` : `user id ${userId}`
  }

  async readUsers(): Promise<void> {
    for (const row of await this.db.query('SELECT id, username, password_hash, is_admin FROM users ORDER BY id')) {
      const {id, is_admin: isAdmin, password_hash: passwordHash, username} = row
      if (!isInteger(id)) throw bad(this.path, `a user's id is ${String(id)}`)
      const what = typeof username === 'string' ? `user ${JSON.stringify(username)}` : `user id ${id}`
      if (typeof username !== 'string' || username === '') {
        this.skip(what, 'it has no username')
        continue
      }

      if (typeof passwordHash !== 'string' || passwordHash === '') {
        this.skip(what, 'it has no password hash, so it could never log in')
        continue
      }

      // SQLite keeps MLflow's Boolean as 0 or 1, PostgreSQL as a boolean.
      if (isAdmin !== null && isAdmin !== 0 && isAdmin !== 1 && typeof isAdmin !== 'boolean') {
        this.skip(what, `its is_admin is ${String(isAdmin)}, neither true nor false`)
        continue
      }

      if (!isSupportedHash(passwordHash))
        this.skip(`${what}'s password`, 'its hash uses a method serve cannot check: the user is imported, and needs a new password to log in')
      this.users.set(id, {id, isAdmin: isAdmin === 1 || isAdmin === true, passwordHash, username})
    }
  }

  /** The roles tables. `mlflow312` reads rows as MLflow 3.12 resolved them (see the module comment). */
  async readRoles(mlflow312: boolean): Promise<void> {
    if (!this.tables.has('roles')) return
    for (const row of await this.db.query('SELECT id, name, workspace, description FROM roles ORDER BY id')) {
      const {description, id, name, workspace} = row
      if (!isInteger(id)) throw bad(this.path, `a role's id is ${String(id)}`)
      this.nextRoleId = Math.max(this.nextRoleId, id + 1)
      const what = `role ${typeof name === 'string' ? JSON.stringify(name) : `id ${id}`}`
      if (typeof name !== 'string' || name === '' || typeof workspace !== 'string') {
        this.skip(what, 'it has no name or workspace')
        continue
      }

      if (workspace !== DEFAULT_WORKSPACE) {
        this.skip(
          `${what} in workspace ${JSON.stringify(workspace)}`,
          "serve has no workspaces other than default; the role, its rows and its members' assignments are left out",
        )
        continue
      }

      if (mlflow312 && name.startsWith('__user_')) {
        this.skip(what, "its name starts with '__user_', which holds a user's own grants in serve (as in MLflow 3.13+): recreate it under another name")
        continue
      }

      const owner = userIdOfRoleName(name)
      if (owner !== undefined && !this.users.has(owner)) {
        this.skip(what, `it holds the own grants of user id ${owner}, who is not imported`)
        continue
      }

      this.roles.set(id, {description: typeof description === 'string' ? description : null, id, name, workspace})
    }

    if (this.tables.has('role_permissions')) {
      for (const row of await this.db.query('SELECT id, role_id, resource_type, resource_pattern, permission FROM role_permissions ORDER BY id')) {
        const {id, permission, resource_pattern: pattern, resource_type: type, role_id: roleId} = row
        if (!isInteger(id) || !isInteger(roleId) || !this.roles.has(roleId)) continue
        const role = this.roles.get(roleId)!
        const where = `role ${JSON.stringify(role.name)}'s row ${String(type)} ${JSON.stringify(pattern)} ${String(permission)}`
        if (typeof type !== 'string' || typeof pattern !== 'string' || typeof permission !== 'string') {
          this.skip(where, 'it is incomplete')
          continue
        }

        if (mlflow312) this.addMlflow312RoleRow(role, id, type, pattern, permission, where)
        else this.addRow(role.id, {id, permission, resourcePattern: pattern, resourceType: type}, where, userIdOfRoleName(role.name) !== undefined)
      }
    }

    if (this.tables.has('user_role_assignments')) {
      for (const row of await this.db.query('SELECT id, user_id, role_id FROM user_role_assignments ORDER BY id')) {
        const {role_id: roleId, user_id: userId} = row
        if (!isInteger(userId) || !isInteger(roleId) || !this.roles.has(roleId)) continue
        const role = this.roles.get(roleId)!
        if (!this.users.has(userId)) continue
        const owner = userIdOfRoleName(role.name)
        if (owner !== undefined && owner !== userId) {
          this.skip(
            `the assignment of role ${JSON.stringify(role.name)} to ${this.userName(userId)}`,
            `that role holds the own grants of ${this.userName(owner)}; serve never shares them with another user`,
          )
          continue
        }

        this.assignments.push({roleId, userId})
      }
    }
  }

  /**
   * A row of a 3.12 role: a `workspace` row reached every resource type at its level (MANAGE is
   * serve's workspace admin as it is); NO_PERMISSIONS never won there, so it has no row here.
   */
  private addMlflow312RoleRow(role: RoleRecord, id: number, type: string, pattern: string, permission: string, where: string): void {
    if (permission === 'NO_PERMISSIONS') {
      this.skip(where, 'a NO_PERMISSIONS row of a role never changed anything in MLflow 3.12 (the higher level wins)')
      return
    }

    if (type === 'workspace' && permission !== 'MANAGE') {
      for (const each of MLFLOW_312_TYPES) this.addRow(role.id, {permission, resourcePattern: WILDCARD, resourceType: each}, where, false)
      return
    }

    // 3.12 matched a role's scorer rows against `<experiment id>/<name>` as given; serve against the quoted name.
    const resourcePattern = type === 'scorer' && pattern !== WILDCARD && pattern.includes('/') ? quoteScorer(pattern) : pattern
    this.addRow(role.id, {id, permission, resourcePattern, resourceType: type}, where, false)
  }

  /**
   * One row of a role, when serve's model accepts it (a per-user role also keeps NO_PERMISSIONS on
   * a resource). Two rows on one resource keep the higher level, as MLflow 3.12 folded them.
   */
  private addRow(roleId: number, row: {id?: number; permission: string; resourcePattern: string; resourceType: string}, where: string, perUser: boolean): void {
    const noPermissions = perUser && row.permission === 'NO_PERMISSIONS' && (CONTAINER_RESOURCE_TYPES as readonly string[]).includes(row.resourceType)
    const problem = noPermissions ? undefined : rowProblem(row.resourceType, row.resourcePattern, row.permission)
    if (problem !== undefined || row.resourcePattern === '') {
      this.skip(where, problem ?? 'it names no resource')
      if (row.permission === 'DENY' || row.permission === 'NO_PERMISSIONS') this.lostRestrictions.push(`${where} (${problem ?? 'it names no resource'})`)
      return
    }

    let byKey = this.rows.get(roleId)
    if (!byKey) this.rows.set(roleId, (byKey = new Map()))
    const key = `${row.resourceType}\0${row.resourcePattern}`
    const existing = byKey.get(key)
    if (existing) {
      existing.permission = maxLevel(existing.permission, row.permission)
      return
    }

    byKey.set(key, {...row, roleId})
  }

  /** The per-resource tables of MLflow up to 3.12: each user's rows of their per-user role. */
  async readPerResourceGrants(): Promise<void> {
    const perUser = new Map<number, RoleRecord>()
    const roleOf = (userId: number): RoleRecord => {
      let role = perUser.get(userId)
      if (!role) {
        role = {description: null, id: this.nextRoleId++, name: userRoleName(userId), workspace: DEFAULT_WORKSPACE}
        perUser.set(userId, role)
        this.roles.set(role.id, role)
        this.assignments.push({roleId: role.id, userId})
      }

      return role
    }

    for (const {columns, table, type} of LEGACY_TABLES) {
      if (!this.tables.has(table)) continue
      for (const row of await this.db.query(`SELECT user_id, ${columns}, permission FROM ${table} ORDER BY id`)) {
        const {permission, user_id: userId} = row
        const key = legacyKey(type, row)
        const where = `${table} row of ${isInteger(userId) ? this.userName(userId) : 'no user'} on ${key ?? 'nothing'}`
        if (!isInteger(userId) || !this.users.has(userId)) {
          if (!isInteger(userId) || !this.skipped.some((entry) => entry.what === `user id ${userId}`)) this.skip(where, 'its user is not imported')
          continue
        }

        if (key === undefined) {
          this.skip(where, 'it names no resource')
          continue
        }

        if (type === 'registered_model' && row.workspace !== DEFAULT_WORKSPACE) {
          this.skip(`${where} in workspace ${JSON.stringify(row.workspace)}`, 'serve has no workspaces other than default')
          continue
        }

        if (typeof permission !== 'string' || !(ALL_LEVELS as readonly string[]).includes(permission) || permission === 'DENY') {
          this.skip(where, `its permission ${JSON.stringify(permission)} is not one MLflow 3.12 knows`)
          continue
        }

        this.addRow(roleOf(userId).id, {permission, resourcePattern: key, resourceType: type}, where, true)
      }
    }

    if (this.tables.has('workspace_permissions')) {
      for (const row of await this.db.query('SELECT workspace, user_id, permission FROM workspace_permissions')) {
        this.skip(
          `workspace_permissions row of ${isInteger(row.user_id) ? this.userName(row.user_id) : 'no user'} on workspace ${JSON.stringify(row.workspace)}`,
          'serve has no workspaces (MLflow applies these rows only with its workspaces on)',
        )
      }
    }
  }

  content(): StoreContent {
    let nextRowId = 1
    for (const byKey of this.rows.values()) for (const row of byKey.values()) if (row.id !== undefined) nextRowId = Math.max(nextRowId, row.id + 1)
    const rolePermissions: RolePermissionRecord[] = []
    const taken = new Set<number>()
    for (const byKey of this.rows.values()) {
      for (const row of byKey.values()) {
        // Rows keep MLflow's ids; rows made here (and a second row folded into one) get new ones.
        const id = row.id !== undefined && !taken.has(row.id) ? row.id : nextRowId++
        taken.add(id)
        rolePermissions.push({id, permission: row.permission, resourcePattern: row.resourcePattern, resourceType: row.resourceType, roleId: row.roleId})
      }
    }

    return {
      assignments: this.assignments.map((assignment, i) => ({...assignment, id: i + 1})),
      rolePermissions: rolePermissions.sort((a, b) => a.id - b.id),
      roles: [...this.roles.values()].sort((a, b) => a.id - b.id),
      // MLflow's auth database has no access tokens.
      tokens: [],
      // Nor job creators: MLflow keeps those in its tracking store's job table.
      jobCreators: [],
      users: [...this.users.values()],
    }
  }
}

function isInteger(value: unknown): value is number {
  return typeof value === 'number' && Number.isSafeInteger(value) && value >= 1
}

/** The resource id a per-resource table's row names, as serve's rows name it. */
function legacyKey(type: string, row: Row): string | undefined {
  const text = (value: unknown) => (typeof value === 'string' && value !== '' ? value : undefined)
  switch (type) {
    case 'experiment': {
      return text(row.experiment_id)
    }

    case 'registered_model': {
      return text(row.name)
    }

    case 'scorer': {
      const experiment = text(row.experiment_id)
      const name = text(row.scorer_name)
      return experiment && name ? `${experiment}/${pythonQuote(name)}` : undefined
    }

    case 'gateway_secret': {
      return text(row.secret_id)
    }

    case 'gateway_endpoint': {
      return text(row.endpoint_id)
    }

    default: {
      return text(row.model_definition_id)
    }
  }
}

function quoteScorer(pattern: string): string {
  const slash = pattern.indexOf('/')
  return `${pattern.slice(0, slash)}/${pythonQuote(pattern.slice(slash + 1))}`
}

/** A Werkzeug method serve's password check knows (scrypt, pbkdf2); the rest of the hash is its business. */
function isSupportedHash(hash: string): boolean {
  const method = hash.split('$')[0]
  return /^scrypt(:\d+:\d+:\d+)?$/.test(method) || /^pbkdf2(:[a-z0-9_]+(:\d+)?)?$/i.test(method)
}
