/**
 * The PostgreSQL adapter of the auth store (`serve --store postgresql://…`): the same in-memory
 * model as the JSON file adapter (model.ts), kept in step with a database that several serve
 * replicas share.
 *
 * - Reads and decisions come from the model in memory: a request never waits on the database.
 * - Writes are queued and go in one transaction per batch (group commit, as json-store.ts). The
 *   transaction first locks the one row of `mlflowctl_state`, so writers of all replicas take
 *   turns; applies what others committed since (so the model plans on the latest state, and a
 *   racing create or rename is decided once, on every replica the same); writes the rows the batch
 *   changes (O(change)), one entry of `mlflowctl_changes` with the batch's ops under the next
 *   sequence number, and NOTIFYs it. Only after COMMIT is the model changed and the caller answered.
 *   Unique keys and references in the tables are a second guard.
 * - Every replica applies changes it did not make by reading `mlflowctl_changes` after the last one
 *   it applied: woken by the NOTIFY, and by a poll (default every second) in case a notification was
 *   missed. After a reconnect it reads what it missed; further behind than the pruned log reaches
 *   (or the database went back), it loads all tables again.
 * - The schema is versioned SQL files (pg-schema/NNN-name.sql, shipped in the package), applied at
 *   open in one transaction under an advisory lock, so replicas starting together migrate once.
 * - The database away: decisions go on from the last state for `maxStaleMs` after the last time the
 *   replica knew it was current, changes are refused (StoreUnavailableError: 503), health() is not
 *   ready, and the replica reconnects and catches up when it can. Cut off longer, health() says not
 *   to decide: serve refuses requests (fail closed) and the log says so.
 */
import {readdir, readFile} from 'node:fs/promises'
import {fileURLToPath} from 'node:url'

import pg from 'pg'

import {COUNTERS, type Invalid, recordJson} from './json-format.js'
import {batchLine, checkCounters, checkOp, countersAfter, parseBatch} from './journal-format.js'
import {type Counters, isId, isJobId, type Op, type Plan, StoreModel, type Table} from './model.js'
import {ModelStore} from './model-store.js'
import {isStoreTime, redactUrl, type Store, StoreError, StoreFileError, type StoreHealth, StoreUnavailableError} from './store.js'

const CHANNEL = 'mlflowctl_changes'
/** pg_advisory_xact_lock's key for migrations: any constant no other application on the database uses. */
const MIGRATION_LOCK = 7_302_615_021_845_113n
const SCHEMA_DIR = fileURLToPath(new URL('../../../pg-schema/', import.meta.url))
const DEFAULT_MAX_STALE_MS = 60_000
const DEFAULT_POLL_INTERVAL_MS = 1000
const DEFAULT_KEEP_CHANGES = 10_000
const RECONNECT_MIN_MS = 100
const RECONNECT_MAX_MS = 2000

export interface PgStoreOptions {
  /** The connection's application_name (pg_stat_activity shows it). Default `mlflowctl serve`. */
  applicationName?: string
  /** Set the store's tables up in a database that has none. Default true; false: such a database is refused (`missing`), left as it was. */
  create?: boolean
  /**
   * Follow the changes other replicas make (LISTEN and the poll). Default true; false for a
   * command's store, which lives for one run and alone decides what it writes.
   */
  follow?: boolean
  /** Entries of the change log kept for replicas that fall behind; further behind, they reload all. Default 10 000. */
  keepChanges?: number
  /** How long decisions go on from the last known state while the database is out of reach. Default 60 s. */
  maxStaleMs?: number
  /** Told about what no caller waits for: connection lost and back, fail-closed, a bad change. Default: a line on stderr. */
  onError?: (error: Error) => void
  /** Told how long each change took to be durable, and whether it was (for metrics). */
  onWrite?: (seconds: number, ok: boolean) => void
  /** How often the replica checks for changes it was not notified of. Default 1 s. */
  pollIntervalMs?: number
  /** Client-side bound on each query, so a dead network is noticed. Default 10 s. */
  queryTimeoutMs?: number
}

/** int8 (ids, seq) as numbers: every id the model holds is a safe integer. */
const types = {
  getTypeParser: ((oid: number, format?: 'binary' | 'text') =>
    oid === 20 ? (value: string) => Number(value) : pg.types.getTypeParser(oid, format as 'text')) as typeof pg.types.getTypeParser,
}

const COLUMNS: Record<Table, string> = {
  assignments: 'id, user_id, role_id',
  job_creators: 'id, job_id, user_id',
  role_permissions: 'id, role_id, resource_type, resource_pattern, permission',
  roles: 'id, workspace, name, description',
  tokens: 'id, user_id, name, digest, created_at, expires_at, last_used_at',
  users: 'id, username, password_hash, is_admin',
}

function tableName(table: Table): string {
  return `mlflowctl_${table}`
}

/** One put as an upsert by id; its other keys are unique too, checked at commit. */
function upsert(table: Table, record: Extract<Op, {op: 'put'}>): {text: string; values: unknown[]} {
  const fields = recordJson(table, record.record)
  const columns = Object.keys(fields)
  const set = columns
    .filter((column) => column !== 'id')
    .map((column) => `${column} = EXCLUDED.${column}`)
    .join(', ')
  return {
    text: `INSERT INTO ${tableName(table)} (${columns.join(', ')}) VALUES (${columns.map((_, i) => `$${i + 1}`).join(', ')}) ON CONFLICT (id) DO UPDATE SET ${set}`,
    values: Object.values(fields),
  }
}

/** SQLSTATE classes that say the data was refused (22: a value; 23: a constraint), not that the database is away. */
function sqlState(error: unknown): string | undefined {
  const code = (error as {code?: unknown} | undefined)?.code
  return typeof code === 'string' && /^[0-9A-Z]{5}$/.test(code) ? code : undefined
}

/** Strings the database cannot hold: text refuses NUL. */
function hasNul(value: unknown): boolean {
  if (typeof value === 'string') return value.includes('\0')
  if (typeof value === 'object' && value !== null) return Object.values(value).some((inner) => hasNul(inner))
  return false
}

interface PendingWrite<T = unknown> {
  apply: (data: StoreModel) => T
  reject: (error: unknown) => void
  resolve: (value: T) => void
}

type Query = <R extends pg.QueryResultRow = pg.QueryResultRow>(text: string, values?: unknown[]) => Promise<pg.QueryResult<R>>

interface StateRow {
  next_assignment_id: number
  next_job_creator_id: number
  next_role_id: number
  next_role_permission_id: number
  next_token_id: number
  next_user_id: number
  seq: number
}

function countersOf(state: StateRow): Counters {
  return {
    nextAssignmentId: state.next_assignment_id,
    nextJobCreatorId: state.next_job_creator_id,
    nextRoleId: state.next_role_id,
    nextRowId: state.next_role_permission_id,
    nextTokenId: state.next_token_id,
    nextUserId: state.next_user_id,
  }
}

function sameCounters(a: Counters, b: Counters): boolean {
  return COUNTERS.every(([, counter]) => a[counter] === b[counter])
}

/** A change entry that does not fit: the state is loaded again from the tables. */
class ReloadNeeded extends Error {}

/** Applies the versioned schema files the database does not have yet, once, whoever else starts now. */
async function migrate(query: Query, location: string, create: boolean): Promise<void> {
  const files = (await readdir(SCHEMA_DIR)).filter((name) => /^\d{3}-[\w-]+\.sql$/.test(name)).sort()
  const known = files.length === 0 ? 0 : Number(files.at(-1)!.slice(0, 3))
  await query('BEGIN')
  try {
    await query('SELECT pg_advisory_xact_lock($1)', [MIGRATION_LOCK.toString()])
    if (!create && (await query<{found: null | string}>("SELECT to_regclass('mlflowctl_schema_versions')::text AS found")).rows[0].found === null) {
      throw new StoreFileError(location, `The database ${location} holds no mlflowctl auth store (no mlflowctl tables); it was left unchanged.`, {
        problem: 'missing',
      })
    }

    await query(
      'CREATE TABLE IF NOT EXISTS mlflowctl_schema_versions (version integer PRIMARY KEY, name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())',
    )
    const {rows} = await query<{version: null | number}>('SELECT max(version) AS version FROM mlflowctl_schema_versions')
    const current = rows[0].version ?? 0
    if (current > known) {
      throw new StoreFileError(
        location,
        `The auth store's database ${location} has schema version ${current}; this mlflowctl knows up to ${known} (a newer mlflowctl set it up). It was left unchanged.`,
        {problem: 'invalid'},
      )
    }

    for (const file of files) {
      const version = Number(file.slice(0, 3))
      if (version <= current) continue
      await query(await readFile(`${SCHEMA_DIR}${file}`, 'utf8'))
      await query('INSERT INTO mlflowctl_schema_versions (version, name) VALUES ($1, $2)', [version, file])
    }

    await query('COMMIT')
  } catch (error) {
    await query('ROLLBACK').catch(() => {})
    throw error
  }
}

/**
 * Every table into a model. Run inside a transaction for one consistent view. The tables' own
 * constraints already hold most of what a store file's reader checks (types, non-empty names,
 * unique ids, usernames, role names and rows, references that resolve), so only what they do
 * not is checked here: ids are positive safe integers below their counters (ids are never reused).
 * A large store loads in one plain SELECT per table, without a second validation pass.
 */
async function loadAll(query: Query, location: string): Promise<{data: StoreModel; seq: number}> {
  const state = (await query<StateRow>('SELECT * FROM mlflowctl_state WHERE id = 1')).rows[0]
  const invalid: Invalid = (what) =>
    new StoreFileError(location, `The auth store's database ${location} is not valid: ${what}. It was left unchanged.`, {problem: 'invalid'})
  if (!state) throw invalid('mlflowctl_state has no row')
  for (const [key] of COUNTERS) {
    const value = state[key as keyof StateRow]
    if (!isId(value)) throw invalid(`mlflowctl_state.${key} is ${String(value)}, not a positive integer`)
  }

  const data = new StoreModel(countersOf(state))
  const select = async <R extends pg.QueryResultRow>(table: Table, counter: keyof Counters, put: (row: R) => void) => {
    const below = data.counters[counter]
    for (const row of (await query<R>(`SELECT ${COLUMNS[table]} FROM ${tableName(table)} ORDER BY id`)).rows) {
      if (!isId(row.id) || row.id >= below)
        throw invalid(`${tableName(table)} has the id ${String(row.id)}, not a positive integer below its counter (${below})`)
      put(row)
    }
  }

  type Rows = {
    assignments: {id: number; role_id: number; user_id: number}
    role_permissions: {id: number; permission: string; resource_pattern: string; resource_type: string; role_id: number}
    job_creators: {id: number; job_id: string; user_id: number}
    roles: {description: null | string; id: number; name: string; workspace: string}
    tokens: {
      created_at: string
      digest: string
      expires_at: null | string
      id: number
      last_used_at: null | string
      name: string
      user_id: number
    }
    users: {id: number; is_admin: boolean; password_hash: string; username: string}
  }
  await select<Rows['users']>('users', 'nextUserId', (row) =>
    data.putUser(Object.freeze({id: row.id, isAdmin: row.is_admin, passwordHash: row.password_hash, username: row.username})),
  )
  await select<Rows['roles']>('roles', 'nextRoleId', (row) =>
    data.putRole(Object.freeze({description: row.description, id: row.id, name: row.name, workspace: row.workspace})),
  )
  await select<Rows['role_permissions']>('role_permissions', 'nextRowId', (row) =>
    data.putRow(
      Object.freeze({id: row.id, permission: row.permission, resourcePattern: row.resource_pattern, resourceType: row.resource_type, roleId: row.role_id}),
    ),
  )
  await select<Rows['assignments']>('assignments', 'nextAssignmentId', (row) =>
    data.putAssignment(Object.freeze({id: row.id, roleId: row.role_id, userId: row.user_id})),
  )
  await select<Rows['tokens']>('tokens', 'nextTokenId', (row) => {
    // Times are written by the model only; one that is not its format was edited by hand.
    for (const time of [row.created_at, row.expires_at, row.last_used_at])
      if (time !== null && !isStoreTime(time)) throw invalid(`mlflowctl_tokens ${row.id} has the time ${JSON.stringify(time)}, not ISO 8601 UTC`)
    data.putToken(
      Object.freeze({
        createdAt: row.created_at,
        digest: row.digest,
        expiresAt: row.expires_at,
        id: row.id,
        lastUsedAt: row.last_used_at,
        name: row.name,
        userId: row.user_id,
      }),
    )
  })
  await select<Rows['job_creators']>('job_creators', 'nextJobCreatorId', (row) => {
    if (!isJobId(row.job_id)) throw invalid(`mlflowctl_job_creators ${row.id} has the job id ${JSON.stringify(row.job_id)}, not one serve records`)
    data.putJobCreator(Object.freeze({id: row.id, jobId: row.job_id, userId: row.user_id}))
  })
  return {data, seq: state.seq}
}

export class PgStore extends ModelStore implements Store {
  readonly location: string
  private client: pg.Client | undefined
  private closed = false
  private closing: Promise<void> | undefined
  protected data: StoreModel
  private failClosedTimer: NodeJS.Timeout | undefined
  private flushScheduled = false
  /** Why the database is out of reach, while it is. */
  private lost: string | undefined
  protected readonly options: Required<PgStoreOptions>
  private readonly pending: PendingWrite[] = []
  private readonly pollTimer: NodeJS.Timeout | undefined
  private reconnectDelay = RECONNECT_MIN_MS
  private reconnectTimer: NodeJS.Timeout | undefined
  private syncQueued = false
  /** When the model was last known to be the database's latest state. */
  private syncedAt: number
  /** The last change applied. */
  private seq: number
  /** Why the last attempt to read others' changes failed, while the connection stayed. */
  private syncProblem: string | undefined

  private constructor(
    private readonly url: string,
    client: pg.Client,
    loaded: {data: StoreModel; seq: number},
    options: Required<PgStoreOptions>,
  ) {
    super()
    this.location = redactUrl(url)
    this.options = options
    this.data = loaded.data
    this.seq = loaded.seq
    this.syncedAt = Date.now()
    this.adopt(client)
    if (options.follow) {
      this.pollTimer = setInterval(() => this.requestSync(), options.pollIntervalMs)
      this.pollTimer.unref()
    }
  }

  /**
   * Connects, brings the schema up to date, LISTENs and loads every table. Rejects with a
   * StoreFileError saying what failed (the database unreachable, a newer schema, invalid rows).
   */
  static async open(url: string, options: PgStoreOptions = {}): Promise<PgStore> {
    const settings: Required<PgStoreOptions> = {
      applicationName: options.applicationName ?? 'mlflowctl serve',
      create: options.create ?? true,
      follow: options.follow ?? true,
      keepChanges: Math.max(options.keepChanges ?? DEFAULT_KEEP_CHANGES, 1),
      maxStaleMs: Math.max(options.maxStaleMs ?? DEFAULT_MAX_STALE_MS, 0),
      onError: safeReporter(options.onError ?? ((error) => process.stderr.write(`mlflowctl: auth store: ${error.message}\n`))),
      pollIntervalMs: Math.max(options.pollIntervalMs ?? DEFAULT_POLL_INTERVAL_MS, 20),
      onWrite: options.onWrite ?? (() => {}),
      queryTimeoutMs: Math.max(options.queryTimeoutMs ?? 10_000, 100),
    }
    const location = redactUrl(url)
    let client: pg.Client | undefined
    try {
      client = await connect(url, settings)
      const query: Query = (text, values) => client!.query(text, values)
      await migrate(query, location, settings.create)
      await query('BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY')
      const loaded = await loadAll(query, location)
      await query('COMMIT')
      return new PgStore(url, client, loaded, settings)
    } catch (error) {
      await client?.end().catch(() => {})
      if (error instanceof StoreFileError) throw error
      throw new StoreFileError(location, `Cannot use the auth store's database ${location}: ${(error as Error).message}`, {cause: error})
    }
  }

  // --- health: memory only --------------------------------------------------------------------

  health(): StoreHealth {
    const staleMs = Date.now() - this.syncedAt
    const fresh = staleMs <= this.options.maxStaleMs
    if (this.lost !== undefined) {
      return {
        decide: fresh,
        problem: fresh
          ? `the auth store's database is out of reach (${this.lost}); deciding from the last known state, changes refused`
          : `the auth store's database has been out of reach for more than ${this.options.maxStaleMs / 1000} s (${this.lost}); not deciding`,
        ready: false,
      }
    }

    // Connected, but not catching up (a query refused, an invalid row): what other replicas changed
    // is not applied here, so past the same limit this replica stops deciding too.
    if (this.options.follow && this.syncProblem !== undefined) {
      return {
        decide: fresh,
        problem: fresh
          ? `the auth store cannot read the database's latest changes (${this.syncProblem}); deciding from the last known state`
          : `the auth store has not read the database's latest changes for more than ${this.options.maxStaleMs / 1000} s (${this.syncProblem}); not deciding`,
        ready: false,
      }
    }

    return {decide: true, ready: true}
  }

  // --- reads: memory only ---------------------------------------------------------------------

  /** Waits for every write queued before it, then disconnects. Later writes are refused. */
  close(): Promise<void> {
    this.closing ??= (async () => {
      this.closed = true
      clearInterval(this.pollTimer)
      clearTimeout(this.reconnectTimer)
      clearTimeout(this.failClosedTimer)
      await this.chain
      const client = this.client
      this.client = undefined
      await client?.end().catch(() => {})
    })()
    return this.closing
  }

  // --- the write path -------------------------------------------------------------------------

  protected write<T>(input: unknown, apply: (data: StoreModel) => T): Promise<T> {
    if (this.closed) return Promise.reject(new Error(`The auth store ${this.location} is closed`))
    // Refused here, alone: in the batch the database would refuse it and every write with it.
    if (hasNul(input)) return Promise.reject(new StoreError('INVALID_PARAMETER_VALUE', 'A name, id or password hash cannot hold a NUL character.'))
    if (this.lost !== undefined) return Promise.reject(this.unavailable())
    return new Promise<T>((resolve, reject) => {
      this.pending.push({apply, reject, resolve} as PendingWrite)
      if (!this.flushScheduled) {
        this.flushScheduled = true
        this.serially(() => this.flush())
      }
    })
  }

  private unavailable(cause?: unknown): StoreUnavailableError {
    const why = this.lost ?? (cause as Error | undefined)?.message ?? 'unknown'
    return new StoreUnavailableError(`The auth store's database ${this.location} cannot be reached (${why}); the change was not made.`, {cause})
  }

  private query: Query = (text, values) => {
    if (!this.client) return Promise.reject(this.unavailable())
    return this.client.query(text, values)
  }

  /** One group commit: everything queued so far, in one transaction, then applied to the model. */
  private async flush(): Promise<void> {
    this.flushScheduled = false
    const batch = this.pending.splice(0)
    if (batch.length === 0) return
    if (!this.client) {
      for (const write of batch) write.reject(this.unavailable())
      return
    }

    let plan: Plan | undefined
    let seq = this.seq
    let committing = false
    try {
      await this.query('BEGIN')
      // Writers of every replica take turns on this row; what they committed before is visible now.
      const state = (await this.query<StateRow>('SELECT * FROM mlflowctl_state WHERE id = 1 FOR UPDATE')).rows[0]
      await this.applyChanges(state)
      plan = this.data.plan(batch.map((write) => write.apply))
      if (plan.ops.length > 0) {
        seq = state.seq + 1
        for (const op of plan.ops) {
          if (op.op === 'put') {
            const {text, values} = upsert(op.table, op)
            await this.query(text, values)
          } else await this.query(`DELETE FROM ${tableName(op.table)} WHERE id = $1`, [op.id])
        }

        const {counters} = plan
        await this.query('INSERT INTO mlflowctl_changes (id, body) VALUES ($1, $2)', [seq, batchLine({counters, ops: plan.ops, seq}).trimEnd()])
        await this.query(
          'UPDATE mlflowctl_state SET seq = $1, next_user_id = $2, next_role_id = $3, next_role_permission_id = $4, next_assignment_id = $5, next_token_id = $6, next_job_creator_id = $7 WHERE id = 1',
          [seq, counters.nextUserId, counters.nextRoleId, counters.nextRowId, counters.nextAssignmentId, counters.nextTokenId, counters.nextJobCreatorId],
        )
        if (seq % 100 === 0) await this.query('DELETE FROM mlflowctl_changes WHERE id <= $1', [seq - this.options.keepChanges])
        await this.query('SELECT pg_notify($1, $2)', [CHANNEL, String(seq)])
      }

      committing = true
      await this.query('COMMIT')
    } catch (error) {
      await this.query('ROLLBACK').catch(() => {})
      const state = sqlState(error)
      // A COMMIT that got no answer may have landed: the caller is told so, and the model learns
      // which once it has caught up with the database.
      let refusal: Error
      if (state?.startsWith('22') === true) {
        refusal = new StoreError('INVALID_PARAMETER_VALUE', `The auth store's database refused a value: ${(error as Error).message}`)
      } else {
        refusal = this.failed(error)
        if (committing && refusal instanceof StoreUnavailableError)
          refusal = new StoreUnavailableError(
            `The auth store's database ${this.location} did not confirm the change (${(error as Error).message}); it may or may not have been made: check before repeating it.`,
            {cause: error},
          )
      }
      // A constraint the model did not foresee: it is out of step with the tables; start again from them.
      if (state?.startsWith('23')) await this.reload().catch((reloadError: Error) => this.failed(reloadError))
      for (const write of batch) write.reject(refusal)
      return
    }

    if (plan.ops.length > 0) {
      this.data.commit(plan.ops, plan.counters)
      this.seq = seq
    }

    this.synced()
    for (const [i, write] of batch.entries()) {
      const outcome = plan.outcomes[i]
      if (outcome.ok) write.resolve(outcome.value)
      else write.reject(outcome.error)
    }
  }

  // --- following the database -----------------------------------------------------------------

  /** Brings the model to `state` (the database's latest): the change log after our last, or all the tables. */
  private async applyChanges(state: StateRow | undefined): Promise<void> {
    if (!state) throw new StoreFileError(this.location, `The auth store's database ${this.location} has no mlflowctl_state row.`, {problem: 'invalid'})
    try {
      if (state.seq < this.seq) throw new ReloadNeeded('the database is behind this replica (restored from a backup?)')
      while (this.seq < state.seq) {
        const {rows} = await this.query<{body: string; id: number}>(
          'SELECT id, body FROM mlflowctl_changes WHERE id > $1 AND id <= $2 ORDER BY id LIMIT 1000',
          [this.seq, state.seq],
        )
        if (rows.length === 0 || rows[0].id !== this.seq + 1) throw new ReloadNeeded('the changes since the last one applied are no longer all logged')
        for (const row of rows) this.applyChange(row.id, row.body)
      }

      if (!sameCounters(this.data.counters, countersOf(state))) throw new ReloadNeeded('the id counters differ from the changes logged')
    } catch (error) {
      if (!(error instanceof ReloadNeeded)) throw error
      const loaded = await loadAll(this.query, this.location)
      this.data = loaded.data
      this.seq = loaded.seq
    }
  }

  /** One logged change, checked against the model as a journal line is. */
  private applyChange(id: number, body: string): void {
    const invalid: Invalid = (what) => new ReloadNeeded(`change ${id}: ${what}`) as unknown as StoreFileError
    let value: unknown
    try {
      value = JSON.parse(body)
    } catch {
      throw invalid('not JSON')
    }

    const batch = parseBatch(value, invalid)
    if (batch.seq !== id) throw invalid(`"seq" is ${batch.seq}`)
    const counters = countersAfter(batch, this.data.counters)
    checkCounters(this.data.counters, counters, invalid)
    this.data.replay(batch.ops, counters, (op, model) => checkOp(op, model, counters, `changes[${batch.ops.indexOf(op)}]`, invalid))
    this.seq = id
  }

  /** Reads what others committed since the last look (a notification, the poll, a reconnect). */
  private requestSync(): void {
    if (this.closed || this.syncQueued || !this.client) return
    this.syncQueued = true
    this.serially(() => this.sync())
  }

  private async sync(): Promise<void> {
    this.syncQueued = false
    if (this.closed || !this.client) return
    try {
      await this.query('BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY')
      try {
        const state = (await this.query<StateRow>('SELECT * FROM mlflowctl_state WHERE id = 1')).rows[0]
        await this.applyChanges(state)
        await this.query('COMMIT')
      } catch (error) {
        await this.query('ROLLBACK').catch(() => {})
        throw error
      }

      this.synced()
    } catch (error) {
      this.syncProblem = this.failed(error).message
    }
  }

  /** The whole state again from the tables, in one consistent view. */
  private async reload(): Promise<void> {
    await this.query('BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY')
    try {
      const loaded = await loadAll(this.query, this.location)
      await this.query('COMMIT')
      this.data = loaded.data
      this.seq = loaded.seq
    } catch (error) {
      await this.query('ROLLBACK').catch(() => {})
      throw error
    }
  }

  /** The model is the database's latest state; a replica that was cut off is back. */
  private synced(): void {
    this.syncedAt = Date.now()
    this.syncProblem = undefined
    if (this.lost === undefined || !this.client) return
    this.lost = undefined
    clearTimeout(this.failClosedTimer)
    this.options.onError(new Error(`the auth store's database ${this.location} is back; caught up to change ${this.seq}`))
  }

  // --- the connection -------------------------------------------------------------------------

  private adopt(client: pg.Client): void {
    this.client = client
    client.on('notification', (message) => {
      if (message.channel === CHANNEL && Number(message.payload) > this.seq) this.requestSync()
    })
    client.on('error', (error) => this.dropped(client, error))
    client.on('end', () => this.dropped(client, new Error('the connection ended')))
  }

  /**
   * What a failed query means: the connection is gone or unusable (then: reconnect, and until then
   * decide from the last state and refuse changes), or the database refused something (reported).
   * Returns the error for the callers waiting on it.
   */
  private failed(error: unknown): Error {
    if (error instanceof StoreUnavailableError || error instanceof StoreError) return error
    if (error instanceof StoreFileError) {
      this.options.onError(error)
      return new StoreUnavailableError(error.message, {cause: error})
    }

    const state = sqlState(error)
    // A query refused by a live connection (e.g. a table missing after a hand edit): the connection stays.
    if (state !== undefined && !/^(08|57|53|40|25)/.test(state)) {
      const problem = new StoreUnavailableError(`The auth store's database ${this.location} refused a query: ${(error as Error).message}`, {cause: error})
      this.options.onError(problem)
      return problem
    }

    if (this.client) this.dropped(this.client, error as Error)
    return this.unavailable(error)
  }

  private dropped(client: pg.Client, error: Error): void {
    if (this.client !== client) return
    this.client = undefined
    client.end().catch(() => {})
    if (this.closed) return
    this.lost = error.message
    this.options.onError(
      new Error(
        `lost the connection to the auth store's database ${this.location} (${error.message}); deciding from the last known state for up to ${this.options.maxStaleMs / 1000} s, refusing changes, reconnecting`,
      ),
    )
    const remaining = Math.max(this.options.maxStaleMs - (Date.now() - this.syncedAt), 0)
    clearTimeout(this.failClosedTimer)
    this.failClosedTimer = setTimeout(() => {
      if (this.lost !== undefined && !this.closed) {
        this.options.onError(
          new Error(
            `the auth store's database ${this.location} has been out of reach for more than ${this.options.maxStaleMs / 1000} s: serve refuses requests (503) until it is back`,
          ),
        )
      }
    }, remaining + 1)
    this.failClosedTimer.unref()
    this.reconnectDelay = RECONNECT_MIN_MS
    this.scheduleReconnect()
  }

  private scheduleReconnect(): void {
    clearTimeout(this.reconnectTimer)
    this.reconnectTimer = setTimeout(() => this.serially(() => this.reconnect()), this.reconnectDelay)
    this.reconnectTimer.unref()
  }

  private async reconnect(): Promise<void> {
    if (this.closed || this.client) return
    let client: pg.Client
    try {
      client = await connect(this.url, this.options)
    } catch (error) {
      this.lost = (error as Error).message
      this.reconnectDelay = Math.min(this.reconnectDelay * 2, RECONNECT_MAX_MS)
      this.scheduleReconnect()
      return
    }

    this.adopt(client)
    // Whatever was committed while we were away, and notifications we may have missed; only once
    // that is read is the replica back (synced()), else the poll keeps trying.
    await this.sync()
  }
}

async function connect(url: string, options: Required<PgStoreOptions>): Promise<pg.Client> {
  // An application_name in the URL wins, so replicas can be told apart in pg_stat_activity.
  const named = /[?&]application_name=/.test(url)
  const client = new pg.Client({
    ...(named ? {} : {application_name: options.applicationName}),
    connectionString: url,
    connectionTimeoutMillis: options.queryTimeoutMs,
    keepAlive: true,
    query_timeout: options.queryTimeoutMs,
    types,
  })
  // Until adopted, an error on the socket must not crash the process.
  const early = () => {}
  client.on('error', early)
  try {
    await client.connect()
    if (options.follow) await client.query(`LISTEN ${CHANNEL}`)
  } catch (error) {
    await client.end().catch(() => {})
    throw error
  }

  client.off('error', early)
  return client
}

/** A throwing onError must not break the store. */
function safeReporter(onError: (error: Error) => void): (error: Error) => void {
  return (error) => {
    try {
      onError(error)
    } catch {}
  }
}
