/**
 * The journal beside the auth store's file (`<file>.journal`): JSON Lines, so a write appends one
 * line instead of rewriting the whole file. The first line names the snapshot (the store file) the
 * journal continues, by the SHA-256 of its bytes; each further line is one committed batch of
 * writes, the records it put and the ids it deleted, in the store file's own record format:
 *
 * ```
 * {"journal": 1, "snapshot_sha256": "9f86d0…", "seq": 0}
 * {"seq": 1, "next_user_id": 3, "next_role_id": 2, "next_role_permission_id": 2, "next_assignment_id": 2, "changes": [{"put": "roles", "id": 1, …}, …]}
 * {"seq": 2, …, "changes": [{"delete": "role_permissions", "id": 1}]}
 * ```
 *
 * `seq` counts batches: a snapshot holds those up to its header's `seq`, and each line is the next.
 * Lines are read as strictly as the file, and checked against the state they apply to, so a line
 * that would make a state the file format refuses is refused.
 */
import {checkKeys, COUNTERS, describe, type Invalid, isPlainObject, parseRecord, recordJson} from './json-format.js'
import {type Counters, isId, type Op, type StoreModel, type Table} from './model.js'
import {type JobCreatorRecord, type RolePermissionRecord, type RoleRecord, type TokenRecord, type UserRecord} from './store.js'

export const JOURNAL_VERSION = 1

export interface JournalHeader {
  /** The batches the snapshot already holds. */
  seq: number
  snapshotSha256: string
}

export interface JournalBatch {
  /** A counter newer than the line's writer (e.g. next_token_id in a line mlflowctl wrote before tokens) is absent: unchanged. */
  counters: Partial<Counters>
  ops: Op[]
  seq: number
}

/** The counters after a batch: those it names, the others as they were. */
export function countersAfter(batch: JournalBatch, before: Counters): Counters {
  return {...before, ...batch.counters}
}

const TABLE_NAMES: readonly string[] = ['users', 'roles', 'role_permissions', 'assignments', 'tokens', 'job_creators']
const COUNTER_OF: Record<Table, keyof Counters> = {
  assignments: 'nextAssignmentId',
  job_creators: 'nextJobCreatorId',
  role_permissions: 'nextRowId',
  roles: 'nextRoleId',
  tokens: 'nextTokenId',
  users: 'nextUserId',
}

export function headerLine(header: JournalHeader): string {
  return `${JSON.stringify({journal: JOURNAL_VERSION, snapshot_sha256: header.snapshotSha256, seq: header.seq})}\n`
}

export function batchLine(batch: JournalBatch): string {
  const line: Record<string, unknown> = {seq: batch.seq}
  for (const [key, counter] of COUNTERS) line[key] = batch.counters[counter]
  line.changes = batch.ops.map((op) => (op.op === 'put' ? {put: op.table, ...recordJson(op.table, op.record)} : {delete: op.table, id: op.id}))
  return `${JSON.stringify(line)}\n`
}

export function parseHeader(value: unknown, invalid: Invalid): JournalHeader {
  if (!isPlainObject(value)) throw invalid(`its first line is ${describe(value)}, not a journal header`)
  const problem = checkKeys(value, ['journal', 'snapshot_sha256', 'seq'], 'its first line')
  if (problem) throw invalid(problem)
  if (value.journal !== JOURNAL_VERSION) throw invalid(`"journal" is ${describe(value.journal)}; this mlflowctl reads journal version ${JOURNAL_VERSION}`)
  if (typeof value.snapshot_sha256 !== 'string' || !/^[0-9a-f]{64}$/.test(value.snapshot_sha256))
    throw invalid(`"snapshot_sha256" is ${describe(value.snapshot_sha256)}, not a SHA-256 in hex`)
  if (!isSeq(value.seq)) throw invalid(`"seq" is ${describe(value.seq)}, not a count`)
  return {seq: value.seq, snapshotSha256: value.snapshot_sha256}
}

function isSeq(value: unknown): value is number {
  return typeof value === 'number' && Number.isSafeInteger(value) && value >= 0
}

/** A batch line's shape (keys, types, records); whether it fits the state is checkOp's job. */
export function parseBatch(value: unknown, invalid: Invalid): JournalBatch {
  if (!isPlainObject(value)) throw invalid(`it is ${describe(value)}, not an object`)
  // The counters of the journal's first version are always there; later ones only in lines written since they came.
  const present = COUNTERS.filter(([key, , since]) => since <= 2 || Object.hasOwn(value, key))
  const problem = checkKeys(value, ['seq', ...present.map(([key]) => key), 'changes'], 'it')
  if (problem) throw invalid(problem)
  if (!isSeq(value.seq)) throw invalid(`"seq" is ${describe(value.seq)}, not a count`)
  const counters: Partial<Counters> = {}
  for (const [key, counter] of present) {
    const count = value[key]
    if (!isId(count)) throw invalid(`"${key}" is ${describe(count)}, not a positive integer`)
    counters[counter] = count
  }

  if (!Array.isArray(value.changes)) throw invalid(`"changes" is ${describe(value.changes)}, not an array`)
  const ops = value.changes.map((change: unknown, i): Op => {
    const where = `changes[${i}]`
    if (!isPlainObject(change)) throw invalid(`${where} is ${describe(change)}, not an object`)
    if ('delete' in change) {
      const keysProblem = checkKeys(change, ['delete', 'id'], where)
      if (keysProblem) throw invalid(keysProblem)
      const table = change.delete
      if (typeof table !== 'string' || !TABLE_NAMES.includes(table)) throw invalid(`${where}.delete is ${describe(table)}, not a table`)
      if (!isId(change.id)) throw invalid(`${where}.id is ${describe(change.id)}, not a positive integer`)
      return {id: change.id, op: 'delete', table: table as Table}
    }

    const {put: table, ...fields} = change
    if (typeof table !== 'string' || !TABLE_NAMES.includes(table)) throw invalid(`${where} has neither "put" nor "delete" naming a table`)
    return {op: 'put', record: parseRecord(table as Table, fields, where, invalid), table} as Op
  })
  return {counters, ops, seq: value.seq}
}

/**
 * Whether `op` may apply to `model` as it is, with `counters` the batch's: references resolve,
 * names and keys stay unique, ids stay below their counters, and nothing deleted is still used.
 */
export function checkOp(op: Op, model: StoreModel, counters: Counters, where: string, invalid: Invalid): void {
  if (op.op === 'delete') {
    const {id, table} = op
    const exists =
      table === 'users'
        ? model.usersById.has(id)
        : table === 'roles'
          ? model.roles.has(id)
          : table === 'role_permissions'
            ? model.rows.has(id)
            : table === 'tokens'
              ? model.tokens.has(id)
              : table === 'job_creators'
                ? model.jobCreators.has(id)
                : model.assignments.has(id)
    if (!exists) throw invalid(`${where} deletes ${table} ${id}, which does not exist`)
    if (table === 'users' && model.assignmentsByUser.has(id)) throw invalid(`${where} deletes user ${id}, who still holds roles`)
    if (table === 'users' && model.tokensByUser.has(id)) throw invalid(`${where} deletes user ${id}, who still holds tokens`)
    if (table === 'users' && model.jobCreatorsByUser.has(id)) throw invalid(`${where} deletes user ${id}, who is still recorded as a job's creator`)
    if (table === 'roles' && (model.rowsByRole.has(id) || model.assignmentsByRole.has(id)))
      throw invalid(`${where} deletes role ${id}, which still has rows or holders`)
    return
  }

  const {id} = op.record
  const counter = COUNTERS.find(([, name]) => name === COUNTER_OF[op.table])![0]
  if (id >= counters[COUNTER_OF[op.table]]) throw invalid(`${where}.id ${id} is not below "${counter}" (${counters[COUNTER_OF[op.table]]})`)
  const clash = (other: undefined | {id: number}, what: string) => {
    if (other && other.id !== id) throw invalid(`${where} repeats ${what} of ${op.table} ${other.id}`)
  }

  switch (op.table) {
    case 'users': {
      clash(model.usersByName.get((op.record as UserRecord).username), 'the username')
      break
    }

    case 'roles': {
      const role = op.record as RoleRecord
      clash(model.getRoleByName(role.workspace, role.name), 'the name')
      break
    }

    case 'role_permissions': {
      const row = op.record as RolePermissionRecord
      if (!model.roles.has(row.roleId)) throw invalid(`${where}.role_id ${row.roleId} is not the id of any role`)
      clash(model.rowByKey(row.roleId, row.resourceType, row.resourcePattern), 'the resource')
      break
    }

    case 'assignments': {
      const {roleId, userId} = op.record
      if (!model.usersById.has(userId)) throw invalid(`${where}.user_id ${userId} is not the id of any user`)
      if (!model.roles.has(roleId)) throw invalid(`${where}.role_id ${roleId} is not the id of any role`)
      clash(model.assignmentsByUser.get(userId)?.get(roleId), 'the assignment')
      break
    }

    case 'tokens': {
      const token = op.record as TokenRecord
      if (!model.usersById.has(token.userId)) throw invalid(`${where}.user_id ${token.userId} is not the id of any user`)
      const previous = model.tokens.get(id)
      // A token never moves to another user: its holder is who it was issued to.
      if (previous && previous.userId !== token.userId) throw invalid(`${where} moves token ${id} to another user`)
      clash(model.tokensByUser.get(token.userId)?.get(token.name), 'the name')
      clash(model.tokensByDigest.get(token.digest), 'the digest')
      break
    }

    case 'job_creators': {
      const job = op.record as JobCreatorRecord
      if (!model.usersById.has(job.userId)) throw invalid(`${where}.user_id ${job.userId} is not the id of any user`)
      clash(model.jobCreatorsByJob.get(job.jobId), 'the job id')
      break
    }
  }
}

/** Counters never go back: ids are never reused. */
export function checkCounters(before: Counters, after: Counters, invalid: Invalid): void {
  for (const [key, counter] of COUNTERS) {
    if (after[counter] < before[counter]) throw invalid(`"${key}" goes back from ${before[counter]} to ${after[counter]}`)
  }
}
