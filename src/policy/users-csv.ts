/**
 * `users import` and `users export`: users as CSV (header `username,admin[,password]`), read into
 * a policy of users only, so that import runs on plan and apply's engine.
 */
import {ExitCode, UserError} from '../core/errors.js'
import {type AccessPolicy} from './model.js'

export interface CsvUser {
  admin: boolean
  line: number
  /** Empty or absent: generated. */
  password?: string
  username: string
}

/** RFC 4180 records: fields split at commas, `"…"` quoting with `""` for a quote, CRLF or LF; each with its first line. */
export function parseCsv(text: string): Array<{fields: string[]; line: number}> {
  const records: Array<{fields: string[]; line: number}> = []
  let fields: string[] = []
  let field = ''
  let quoted = false
  let line = 1
  let start = 1
  let touched = false
  const endRecord = () => {
    fields.push(field)
    if (touched || fields.length > 1 || field !== '') records.push({fields, line: start})
    fields = []
    field = ''
    touched = false
  }

  for (let index = 0; index < text.length; index++) {
    const char = text[index]
    if (quoted) {
      if (char === '"' && text[index + 1] === '"') {
        field += '"'
        index++
      } else if (char === '"') quoted = false
      else {
        if (char === '\n') line++
        field += char
      }
    } else if (char === '"' && field === '') {
      quoted = true
      touched = true
    } else if (char === ',') {
      fields.push(field)
      field = ''
      touched = true
    } else if (char === '\n' || char === '\r') {
      if (char === '\r' && text[index + 1] === '\n') index++
      endRecord()
      line++
      start = line
    } else {
      field += char
    }
  }

  if (quoted) throw new UserError(`line ${start}: a quoted field is not closed`, {code: 'USAGE_ERROR', exit: ExitCode.Usage})
  if (field !== '' || fields.length > 0 || touched) endRecord()
  return records
}

const TRUE = new Set(['1', 'true', 'yes', 'y'])
const FALSE = new Set(['', '0', 'false', 'no', 'n'])

/** The users of a CSV file; every problem (with its line) at once, before anything is sent. */
export function readUsersCsv(text: string, fileName: string): CsvUser[] {
  const records = parseCsv(text.replace(/^\uFEFF/, ''))
  const problems: string[] = []
  const header = records.shift()
  const columns = header?.fields.map((name) => name.trim().toLowerCase()) ?? []
  if (!header || columns[0] !== 'username' || columns[1] !== 'admin' || columns.length > 3 || (columns.length === 3 && columns[2] !== 'password')) {
    throw new UserError(`${fileName}:${header?.line ?? 1}: the header must be username,admin or username,admin,password`, {
      code: 'USAGE_ERROR',
      exit: ExitCode.Usage,
    })
  }

  const users: CsvUser[] = []
  const seen = new Map<string, number>()
  for (const {fields, line} of records) {
    if (fields.length !== columns.length) {
      problems.push(`${fileName}:${line}: ${fields.length} field${fields.length === 1 ? '' : 's'}, expected ${columns.length}`)
      continue
    }

    const [username, adminText, password] = fields
    const admin = adminText.trim().toLowerCase()
    if (username.trim() === '' || username !== username.trim()) problems.push(`${fileName}:${line}: the username is empty or has spaces around it`)
    else if (seen.has(username)) problems.push(`${fileName}:${line}: user ${username} is listed twice (also on line ${seen.get(username)})`)
    if (!TRUE.has(admin) && !FALSE.has(admin)) problems.push(`${fileName}:${line}: admin must be true or false, not ${JSON.stringify(adminText)}`)
    seen.set(username, line)
    users.push({admin: TRUE.has(admin), line, ...(password ? {password} : {}), username})
  }

  if (problems.length > 0) {
    throw new UserError(problems.length === 1 ? problems[0] : `${fileName} has ${problems.length} problems:\n${problems.join('\n')}`, {
      code: 'USAGE_ERROR',
      exit: ExitCode.Usage,
    })
  }

  return users
}

/** The policy a CSV file describes: its users and admin flags; nothing about grants or roles. */
export function usersPolicy(users: CsvUser[]): AccessPolicy {
  return {
    roles: new Map(),
    users: new Map(
      users.map((user) => [user.username, {admin: user.admin, grants: new Map(), name: user.username, origin: {line: user.line}, password: {generate: true}}]),
    ),
  }
}

/** Only the accounts and admin flags of a policy: what import compares and changes. */
export function accountsOf(policy: AccessPolicy): AccessPolicy {
  return {roles: new Map(), users: new Map([...policy.users].map(([name, user]) => [name, {admin: user.admin, grants: new Map(), name}]))}
}

function csvField(value: string): string {
  return /[",\r\n]/.test(value) || value !== value.trim() ? `"${value.replaceAll('"', '""')}"` : value
}

/** `username,admin` lines, sorted by name: what `users export` prints and `users import` reads. */
export function writeUsersCsv(users: Array<{admin: boolean; username: string}>): string {
  const sorted = [...users].sort((a, b) => (a.username < b.username ? -1 : a.username > b.username ? 1 : 0))
  return ['username,admin', ...sorted.map((user) => `${csvField(user.username)},${user.admin}`)].join('\n') + '\n'
}
