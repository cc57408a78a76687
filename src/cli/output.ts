/**
 * What output takes no drawing: the table options (`--columns`, `--sort`, `--csv`, `--no-header`),
 * checked before any request, and the fields of `--json a,b`. Colours and drawn tables are in
 * render.ts, which only the commands that draw load (chalk and cli-table3 cost every other command
 * start-up time).
 */
import {ExitCode, UserError} from '../core/errors.js'
import {PERMISSION_KIND_NAMES} from '../mlflow/resources.js'

export type Cell = boolean | number | string | undefined

/** What a table-printing command lets its user choose (`--columns`, `--sort`, `--csv`, `--no-header`). */
export interface TableOptions {
  columns?: string
  csv?: boolean
  header?: boolean
  sort?: string
}

/** Column headings as the user may name them: any case, `-` or `_` for spaces. */
function columnKey(name: string): string {
  return name
    .trim()
    .toUpperCase()
    .replaceAll(/[\s_-]+/g, '_')
}

function unknownColumns(flag: string, names: string[], head: string[]): UserError {
  return new UserError(`${flag}: unknown column${names.length > 1 ? 's' : ''} ${names.map((name) => JSON.stringify(name)).join(', ')}`, {
    code: 'INVALID_COLUMN',
    exit: ExitCode.Usage,
    hint: `Columns: ${head.map((title) => title.toLowerCase()).join(', ')}.`,
  })
}

/** The column indexes `--columns` picks, in its order; all columns without it. Checked before any request. */
export function pickColumns(head: string[], columns: string | undefined): number[] {
  if (columns === undefined) return head.map((_title, index) => index)
  const keys = head.map((title) => columnKey(title))
  const wanted = columns.split(',').filter((name) => name.trim() !== '')
  if (wanted.length === 0) throw unknownColumns('--columns', [columns], head)
  const missing = wanted.filter((name) => !keys.includes(columnKey(name)))
  if (missing.length > 0) throw unknownColumns('--columns', missing, head)
  return wanted.map((name) => keys.indexOf(columnKey(name)))
}

/** `--sort` keys: column names, each optionally prefixed with `-` for descending order. */
export function sortKeys(head: string[], sort: string | undefined): Array<{descending: boolean; index: number}> {
  if (sort === undefined) return []
  const keys = head.map((title) => columnKey(title))
  const parts = sort.split(',').filter((name) => name.trim() !== '')
  const parsed = parts.map((part) => {
    const descending = part.trim().startsWith('-')
    return {descending, index: keys.indexOf(columnKey(part.trim().replace(/^-/, ''))), name: part}
  })
  const missing = parsed.filter((key) => key.index === -1).map((key) => key.name)
  if (missing.length > 0 || parsed.length === 0) throw unknownColumns('--sort', missing.length > 0 ? missing : [sort], head)
  return parsed.map(({descending, index}) => ({descending, index}))
}

/** Numbers as numbers (`9` before `10`), empty cells last, the rest by text. */
export function compareCells(a: Cell, b: Cell): number {
  const left = a === undefined ? '' : String(a)
  const right = b === undefined ? '' : String(b)
  if (left === '' || right === '') return left === right ? 0 : left === '' ? 1 : -1
  if (/^-?\d+(\.\d+)?$/.test(left) && /^-?\d+(\.\d+)?$/.test(right)) return Number(left) - Number(right)
  return left.localeCompare(right, 'en', {numeric: true})
}

/**
 * `--json=a,b`: the fields of a command's JSON document to keep. With `within`, the fields are
 * those of the record or of each item of the list under that key (`user`, `users`,
 * `permissions`), and the rest of the document stays.
 */
export interface JsonFields {
  fields: readonly string[]
  within?: string
}

const USER_FIELDS = ['id', 'username', 'is_admin', 'experiment_permissions', 'registered_model_permissions', 'scorer_permissions']
const PERMS_FIELDS = {fields: ['user', 'resource', 'action', 'permission']}

const PERMS_LIST_FIELDS = {fields: ['kind', 'resource', 'name', 'experiment_name', 'permission', 'via'], within: 'permissions'}
const ROLE_FIELDS = ['id', 'name', 'workspace', 'description', 'permissions']
const VERDICT_FIELDS = ['username', 'is_admin', 'permission', 'source', 'reason', 'rows', 'floored', 'server_permission', 'agrees']
const WHOAMI_FIELDS = {fields: ['tracking_uri', 'user', 'auth', 'username_source', 'password_source', 'token_source', 'profile', 'overrides']}

/**
 * The fields `--json a,b` may pick (and lists on a typo), per command id; `within` names the member whose items (or
 * object) the fields apply to. Commands not listed take bare `--json` only.
 */
export const JSON_FIELDS: Readonly<Record<string, JsonFields>> = {
  'access:check': {fields: VERDICT_FIELDS, within: 'access'},
  'access:who': {fields: VERDICT_FIELDS, within: 'users'},
  'auth:profiles': {fields: ['name', 'current', 'tracking_uri', 'username'], within: 'profiles'},
  'auth:status': WHOAMI_FIELDS,
  'auth:switch': {fields: ['file', 'profile', 'tracking_uri', 'username', 'previous_profile']},
  login: {fields: ['backend', 'file', 'profile', 'tracking_uri', 'username', 'is_admin', 'verified', 'previous_profile']},
  logout: {fields: ['backend', 'file', 'profile', 'current', 'remaining']},
  'perms:list': PERMS_LIST_FIELDS,
  ...Object.fromEntries(PERMISSION_KIND_NAMES.flatMap((kind) => ['get', 'grant', 'revoke', 'update'].map((verb) => [`perms:${verb}:${kind}`, PERMS_FIELDS]))),
  ...Object.fromEntries(PERMISSION_KIND_NAMES.map((kind) => [`perms:list:${kind}`, PERMS_LIST_FIELDS])),
  'roles:create': {fields: ROLE_FIELDS, within: 'role'},
  'roles:get': {fields: ROLE_FIELDS, within: 'role'},
  'roles:list': {fields: ROLE_FIELDS, within: 'roles'},
  'roles:members': {fields: ['user_id', 'username'], within: 'members'},
  'roles:update': {fields: ROLE_FIELDS, within: 'role'},
  'tokens:create': {fields: ['token', 'id', 'name', 'username', 'user_id', 'created_at', 'expires_at', 'last_used_at']},
  'tokens:list': {fields: ['id', 'name', 'username', 'user_id', 'created_at', 'expires_at', 'last_used_at'], within: 'tokens'},
  'tokens:revoke': {fields: ['id', 'name', 'username', 'revoked']},
  'users:create': {fields: USER_FIELDS, within: 'user'},
  'users:delete': {fields: ['username', 'deleted', 'revoked_permissions']},
  'users:demote': {fields: ['username', 'is_admin']},
  'users:get': {fields: USER_FIELDS, within: 'user'},
  'users:list': {fields: ['id', 'username', 'is_admin'], within: 'users'},
  'users:promote': {fields: ['username', 'is_admin']},
  'users:roles': {fields: ROLE_FIELDS, within: 'roles'},
  'users:update-password': {fields: ['username', 'stored_login_updated']},
  version: {fields: ['version', 'node', 'platform', 'arch']},
  whoami: WHOAMI_FIELDS,
}

/** The requested fields, each one checked against the command's. */
export function parseJsonFields(spec: JsonFields | undefined, value: string): string[] {
  const wanted = value
    .split(',')
    .map((name) => name.trim())
    .filter((name) => name !== '')
  const valid = spec?.fields ?? []
  const missing = wanted.filter((name) => !valid.includes(name))
  if (wanted.length === 0 || missing.length > 0) {
    throw new UserError(
      valid.length === 0
        ? '--json takes no field list for this command'
        : `--json: unknown field${missing.length > 1 ? 's' : ''} ${(missing.length > 0 ? missing : [value]).map((name) => JSON.stringify(name)).join(', ')}`,
      {code: 'INVALID_JSON_FIELD', exit: ExitCode.Usage, hint: valid.length === 0 ? 'Use --json alone.' : `Available fields: ${valid.join(', ')}.`},
    )
  }

  return wanted
}

function pickFields(value: unknown, fields: readonly string[]): unknown {
  if (value === null || typeof value !== 'object') return value
  if (Array.isArray(value)) return value.map((item) => pickFields(item, fields))
  const record = value as Record<string, unknown>
  return Object.fromEntries(fields.filter((field) => record[field] !== undefined).map((field) => [field, record[field]]))
}

export function selectJsonFields(document: unknown, spec: JsonFields | undefined, fields: readonly string[]): unknown {
  if (!spec?.within) return pickFields(document, fields)
  const record = document as Record<string, unknown>
  return {...record, [spec.within]: pickFields(record[spec.within], fields)}
}
