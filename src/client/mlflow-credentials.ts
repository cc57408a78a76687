/**
 * `~/.mlflow/credentials`: the file MLflow's Python client reads its username and password from
 * (docs/client-credentials.md, "The credentials file"), and where mlflowctl keeps its named logins.
 * Plain module (no oclif).
 *
 * Layout (MLflow reads only `[mlflow]`; configparser ignores the other sections):
 *
 *   [mlflow]                      the ACTIVE login, so Python with no env vars authenticates
 *   mlflow_tracking_username = alice
 *   mlflow_tracking_password = s3cr%%t      (`%` is written `%%`: BasicInterpolation)
 *
 *   [mlflowctl]
 *   current_profile = prod
 *
 *   [mlflowctl.profile.prod]      one section per named login; names match ^[A-Za-z0-9_.-]+$
 *   tracking_uri = https://mlflow.example.com
 *   mlflow_tracking_username = alice
 *   mlflow_tracking_password = s3cr%%t
 *
 * API:
 *   mlflowCredentialsPath(home?): string
 *   MlflowCredentialsFile.load(path?): Promise<MlflowCredentialsFile>   a missing file is empty
 *     .path
 *     .activeCredentials: {username?, password?}   what Python reads from [mlflow]; '' = absent
 *     .currentProfile: string | undefined
 *     .getProfile(name): StoredLogin | undefined
 *     .listProfiles(): StoredLogin[]                 in file order
 *     .saveLogin(login, {activate}): void            activate also fills [mlflow] and current_profile
 *                                                    (so does saving the current profile)
 *     .removeProfile(name): boolean                  clears [mlflow] too when it was the current one
 *     .useProfile(name): void                        copies the profile's credentials to [mlflow]
 *     .save(): Promise<{warnings: string[]}>
 *   Mutators change the document in memory; save() writes it (atomic, 0600, directory 0700),
 *   skips the write when nothing changed, and refuses (CREDENTIALS_FILE_CHANGED) when another
 *   program changed the file since load(). Errors are UserErrors: CREDENTIALS_FILE_INVALID,
 *   _UNREADABLE, _UNEDITABLE, _CHANGED, INVALID_CREDENTIAL_VALUE, INVALID_PROFILE_NAME, PROFILE_NOT_FOUND.
 *
 * The file is parsed exactly like Python's `configparser.ConfigParser()` with default settings
 * (3.11 `RawConfigParser._read`): a file it rejects is rejected here too, naming the line, and
 * values are what `ConfigParser.get` returns (interpolation included). Edits touch only the lines
 * they must: every other section, key, comment and blank line stays byte-for-byte. Each edit is
 * re-parsed and checked to change nothing but the intended keys, so an unusual layout (e.g. an
 * indented section header that a new line would turn into a continuation) is refused, not broken.
 * Error messages name lines, never echo them: a broken line may hold a password.
 */
import {readFile, stat} from 'node:fs/promises'
import {homedir} from 'node:os'
import {dirname, join} from 'node:path'

import {atomicWriteFile, ensurePrivateDir} from '../core/atomic-file.js'
import {ExitCode, UserError} from '../core/errors.js'

export interface StoredLogin {
  password: string
  profile: string
  trackingUri: string
  username: string
}

const MLFLOW_SECTION = 'mlflow'
const SETTINGS_SECTION = 'mlflowctl'
const PROFILE_SECTION_PREFIX = 'mlflowctl.profile.'
const USERNAME_KEY = 'mlflow_tracking_username'
const PASSWORD_KEY = 'mlflow_tracking_password'
const TRACKING_URI_KEY = 'tracking_uri'
const CURRENT_PROFILE_KEY = 'current_profile'
const PROFILE_NAME = /^[A-Za-z0-9_.-]+$/
/** configparser's MAX_INTERPOLATION_DEPTH. */
const MAX_INTERPOLATION_DEPTH = 10

export function mlflowCredentialsPath(home: string = homedir()): string {
  return join(home, '.mlflow', 'credentials')
}

// Python's str.strip() and re's \s use str.isspace(), which differs from JS \s (\x1c-\x1f and
// \x85 are spaces in Python, \ufeff is not); using JS trim() would misread some lines.
const PY_SPACE = '\\t\\n\\v\\f\\r\\x1c-\\x1f \\x85\\xa0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000'
const LEADING_SPACE = new RegExp(`^[${PY_SPACE}]*`)
const TRAILING_SPACE = new RegExp(`[${PY_SPACE}]*$`)
const EMPTY_VALUE_DELIMITER = new RegExp(`[${PY_SPACE}]*[=:][${PY_SPACE}]*$`)

function leadingSpace(text: string): string {
  return LEADING_SPACE.exec(text)![0]
}

function pyRstrip(text: string): string {
  return text.replace(TRAILING_SPACE, '')
}

function pyStrip(text: string): string {
  return pyRstrip(text).replace(LEADING_SPACE, '')
}

interface Line {
  /** '\n', '\r\n' or '\r' (Python's universal newlines), or '' on a last line without one. */
  eol: string
  text: string
}

function splitLines(content: string): Line[] {
  const lines: Line[] = []
  const pattern = /([^\r\n]*)(\r\n|\r|\n|$)/gy
  while (pattern.lastIndex < content.length) {
    const match = pattern.exec(content)!
    lines.push({eol: match[2], text: match[1]})
  }

  return lines
}

function renderLines(lines: Line[]): string {
  return lines.map((line) => line.text + line.eol).join('')
}

function isBlankOrComment(text: string): boolean {
  const stripped = pyStrip(text)
  return stripped === '' || stripped.startsWith('#') || stripped.startsWith(';')
}

interface IniOption {
  /** Indices of the indented lines that continue the value. */
  continuation: number[]
  key: string
  line: number
  parts: string[]
  /** The line up to where the value starts: indentation, key as written, delimiter, spaces. */
  prefix: string
  /** The value as configparser stores it, before interpolation. */
  raw: string
}

interface IniSection {
  header: number
  /** The section's last header, key or continuation line (not trailing comments or blanks). */
  lastLine: number
  options: Map<string, IniOption>
}

interface IniDocument {
  defaults: Map<string, IniOption>
  sections: Map<string, IniSection>
}

function invalidFile(path: string, line: number, problem: string, cause?: unknown): UserError {
  return new UserError(`${path}, line ${line}: ${problem}. MLflow's Python client cannot read this file either.`, {
    cause,
    code: 'CREDENTIALS_FILE_INVALID',
    exit: ExitCode.Usage,
    hint: `Fix that line of ${path} (a literal % is written %%), then run the command again.`,
  })
}

/** configparser.RawConfigParser._read with ConfigParser's defaults (strict, `=`/`:`, `#`/`;`). */
function parseIni(lines: Line[], path: string): IniDocument {
  const sections = new Map<string, IniSection>()
  const defaults = new Map<string, IniOption>()
  let options: Map<string, IniOption> | undefined
  let section: IniSection | undefined
  let option: IniOption | undefined
  let indentLevel = 0
  for (const [index, {text}] of lines.entries()) {
    const lineNumber = index + 1
    const stripped = pyStrip(text)
    const comment = stripped.startsWith('#') || stripped.startsWith(';')
    if (stripped === '' || comment) {
      // A blank line inside a value is part of it (empty_lines_in_values); a comment is not.
      if (!comment) option?.parts.push('')
      continue
    }

    const indent = leadingSpace(text).length
    if (option && indent > indentLevel) {
      option.parts.push(stripped)
      option.continuation.push(index)
      if (section) section.lastLine = index
      continue
    }

    indentLevel = indent
    const header = /^\[(.+)\]/s.exec(stripped)
    if (header) {
      const name = header[1]
      option = undefined
      if (name === 'DEFAULT') {
        section = undefined
        options = defaults
        continue
      }

      const previous = sections.get(name)
      if (previous) throw invalidFile(path, lineNumber, `section [${name}] appears again (first on line ${previous.header + 1})`)
      section = {header: index, lastLine: index, options: new Map()}
      sections.set(name, section)
      options = section.options
      continue
    }

    if (!options) throw invalidFile(path, lineNumber, 'a key appears before any [section] header')
    const delimiter = stripped.search(/[=:]/)
    const name = delimiter < 0 ? '' : pyRstrip(stripped.slice(0, delimiter))
    if (name === '') throw invalidFile(path, lineNumber, 'the line is neither a [section], a "key = value" pair, nor a comment')
    const key = name.toLowerCase()
    const previous = options.get(key)
    if (previous) throw invalidFile(path, lineNumber, `key "${key}" appears again in its section (first on line ${previous.line + 1})`)
    const afterDelimiter = indent + delimiter + 1
    const prefix = text.slice(0, afterDelimiter + leadingSpace(text.slice(afterDelimiter)).length)
    option = {continuation: [], key, line: index, parts: [pyStrip(stripped.slice(delimiter + 1))], prefix, raw: ''}
    options.set(key, option)
    if (section) section.lastLine = index
  }

  for (const map of [defaults, ...[...sections.values()].map((each) => each.options)]) {
    for (const each of map.values()) each.raw = pyRstrip(each.parts.join('\n'))
  }

  return {defaults, sections}
}

/** BasicInterpolation.before_get: `%%` is `%`, `%(name)s` is another key of the section or DEFAULT. */
function interpolate(document: IniDocument, sectionName: string, key: string, path: string): string | undefined {
  const lookup = (name: string) => document.sections.get(sectionName)?.options.get(name) ?? document.defaults.get(name)
  const option = lookup(key)
  if (!option) return undefined
  const fail = (problem: string) => invalidFile(path, option.line + 1, `the value of "${key}" in [${sectionName}] ${problem}`)
  const out: string[] = []
  const expand = (value: string, depth: number): void => {
    if (depth > MAX_INTERPOLATION_DEPTH) throw fail('nests %(name)s references too deeply')
    let rest = value
    while (rest) {
      const percent = rest.indexOf('%')
      if (percent < 0) {
        out.push(rest)
        return
      }

      out.push(rest.slice(0, percent))
      rest = rest.slice(percent)
      if (rest[1] === '%') {
        out.push('%')
        rest = rest.slice(2)
      } else if (rest[1] === '(') {
        const reference = /^%\(([^)]+)\)s/.exec(rest)
        if (!reference) throw fail("has a '%(' that is not a %(name)s reference")
        rest = rest.slice(reference[0].length)
        const target = lookup(reference[1].toLowerCase())
        if (!target) throw fail(`refers to %(${reference[1]})s, which is not set`)
        if (target.raw.includes('%')) expand(target.raw, depth + 1)
        else out.push(target.raw)
      } else {
        throw fail("has a '%' that is neither '%%' nor '%(name)s'")
      }
    }
  }

  expand(option.raw, 1)
  return out.join('')
}

/** What configparser would read for each section (DEFAULT under its own name), to compare edits. */
function snapshot(document: IniDocument): Map<string, Map<string, string>> {
  const values = (options: Map<string, IniOption>) => new Map([...options].map(([key, option]) => [key, option.raw]))
  const result = new Map([...document.sections].map(([name, section]) => [name, values(section.options)]))
  result.set('DEFAULT', values(document.defaults))
  return result
}

function canonical(sections: Map<string, Map<string, string>>): string {
  const byName = (a: [string, unknown], b: [string, unknown]) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0)
  return JSON.stringify([...sections].sort(byName).map(([name, options]) => [name, [...options].sort(byName)]))
}

function escapeValue(value: string): string {
  return value.replaceAll('%', '%%')
}

function optionLine(key: string, raw: string): string {
  return raw === '' ? `${key} =` : `${key} = ${raw}`
}

function checkValue(what: string, value: string, options: {allowEmpty: boolean}): void {
  const refuse = (problem: string) =>
    new UserError(`The ${what} ${problem}, which MLflow's Python client would not read back as given.`, {
      code: 'INVALID_CREDENTIAL_VALUE',
      exit: ExitCode.Usage,
    })
  if (/[\r\n]/.test(value)) throw refuse('contains a line break')
  if (pyStrip(value) !== value) throw refuse('starts or ends with whitespace')
  if (/\p{Cs}/u.test(value)) throw refuse('contains an unpaired UTF-16 surrogate')
  if (!options.allowEmpty && value === '') {
    throw new UserError(`The ${what} is empty.`, {code: 'INVALID_CREDENTIAL_VALUE', exit: ExitCode.Usage})
  }
}

function checkProfileName(name: string): void {
  if (!PROFILE_NAME.test(name)) {
    throw new UserError(`Invalid profile name "${name}".`, {
      code: 'INVALID_PROFILE_NAME',
      exit: ExitCode.Usage,
      hint: 'Use letters, digits, ".", "_" and "-" only.',
    })
  }
}

function profileSection(name: string): string {
  return PROFILE_SECTION_PREFIX + name
}

async function readIfExists(path: string): Promise<Buffer | undefined> {
  try {
    return await readFile(path)
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined
    throw new UserError(`Cannot read ${path}: ${(error as Error).message}`, {
      cause: error,
      code: 'CREDENTIALS_FILE_UNREADABLE',
      exit: ExitCode.Usage,
      hint: 'Check that the file is yours and readable.',
    })
  }
}

function decode(bytes: Buffer, path: string): string {
  let text: string
  try {
    // Keep a BOM: Python's utf-8 codec keeps it too, and then rejects the first line.
    text = new TextDecoder('utf-8', {fatal: true, ignoreBOM: true}).decode(bytes)
  } catch (error) {
    throw new UserError(`${path} is not valid UTF-8.`, {
      cause: error,
      code: 'CREDENTIALS_FILE_INVALID',
      exit: ExitCode.Usage,
      hint: 'Save the file as UTF-8, then run the command again.',
    })
  }

  if (text.startsWith('\uFEFF')) {
    throw new UserError(`${path} starts with a byte order mark, which Python's configparser rejects.`, {
      code: 'CREDENTIALS_FILE_INVALID',
      exit: ExitCode.Usage,
      hint: 'Save the file as UTF-8 without BOM, then run the command again.',
    })
  }

  return text
}

export class MlflowCredentialsFile {
  readonly path: string
  private document: IniDocument
  /** The bytes load() or the last save() saw, to notice another program's write in between. */
  private lastSeen: Buffer | undefined
  private lines: Line[]
  private readonly newline: string

  private constructor(path: string, bytes: Buffer | undefined) {
    this.path = path
    this.lastSeen = bytes
    this.lines = splitLines(bytes === undefined ? '' : decode(bytes, path))
    this.document = parseIni(this.lines, path)
    this.newline = this.lines.find((line) => line.eol !== '')?.eol ?? '\n'
  }

  static async load(path: string = mlflowCredentialsPath()): Promise<MlflowCredentialsFile> {
    return new MlflowCredentialsFile(path, await readIfExists(path))
  }

  get activeCredentials(): {password?: string; username?: string} {
    if (!this.document.sections.has(MLFLOW_SECTION)) return {}
    const username = interpolate(this.document, MLFLOW_SECTION, USERNAME_KEY, this.path)
    const password = interpolate(this.document, MLFLOW_SECTION, PASSWORD_KEY, this.path)
    return {...(username ? {username} : {}), ...(password ? {password} : {})}
  }

  get currentProfile(): string | undefined {
    if (!this.document.sections.has(SETTINGS_SECTION)) return undefined
    return interpolate(this.document, SETTINGS_SECTION, CURRENT_PROFILE_KEY, this.path) || undefined
  }

  getProfile(name: string): StoredLogin | undefined {
    checkProfileName(name)
    const section = profileSection(name)
    if (!this.document.sections.has(section)) return undefined
    const value = (key: string) => interpolate(this.document, section, key, this.path) ?? ''
    return {password: value(PASSWORD_KEY), profile: name, trackingUri: value(TRACKING_URI_KEY), username: value(USERNAME_KEY)}
  }

  listProfiles(): StoredLogin[] {
    return [...this.document.sections.keys()]
      .filter((section) => section.startsWith(PROFILE_SECTION_PREFIX))
      .map((section) => section.slice(PROFILE_SECTION_PREFIX.length))
      .filter((name) => PROFILE_NAME.test(name))
      .map((name) => this.getProfile(name)!)
  }

  saveLogin(login: StoredLogin, options: {activate: boolean}): void {
    checkProfileName(login.profile)
    checkValue('tracking URI', login.trackingUri, {allowEmpty: false})
    checkValue('username', login.username, {allowEmpty: false})
    checkValue('password', login.password, {allowEmpty: true})
    // [mlflow] mirrors the current profile, so updating that profile updates it too. It goes
    // first, so a new file reads top-down: active login, settings, profiles.
    if (options.activate || this.currentProfile === login.profile) this.activate(login)
    this.setOptions(profileSection(login.profile), [
      [TRACKING_URI_KEY, login.trackingUri],
      [USERNAME_KEY, login.username],
      [PASSWORD_KEY, login.password],
    ])
  }

  removeProfile(name: string): boolean {
    checkProfileName(name)
    const sectionName = profileSection(name)
    const section = this.document.sections.get(sectionName)
    if (!section) return false
    const wasCurrent = this.currentProfile === name
    this.edit(
      (lines) => {
        let start = section.header
        let end = section.lastLine + 1
        // Drop one separating blank line too, so removals do not pile up empty lines.
        if (start > 0 && pyStrip(lines[start - 1].text) === '' && (end === lines.length || pyStrip(lines[end].text) === '')) start--
        else if (end < lines.length && pyStrip(lines[end].text) === '' && start === 0) end++
        lines.splice(start, end - start)
      },
      (expected) => expected.delete(sectionName),
    )
    if (wasCurrent) {
      this.deleteOption(MLFLOW_SECTION, USERNAME_KEY)
      this.deleteOption(MLFLOW_SECTION, PASSWORD_KEY)
      this.deleteOption(SETTINGS_SECTION, CURRENT_PROFILE_KEY)
    }

    return true
  }

  useProfile(name: string): void {
    const login = this.getProfile(name)
    if (!login) {
      throw new UserError(`There is no profile "${name}" in ${this.path}.`, {
        code: 'PROFILE_NOT_FOUND',
        exit: ExitCode.Usage,
        hint: `Check the name, or store a login under it with \`mlflowctl login --profile ${name}\`.`,
      })
    }

    this.activate(login)
  }

  async save(): Promise<{warnings: string[]}> {
    const warnings: string[] = []
    const onDisk = await readIfExists(this.path)
    const unchanged = onDisk === undefined ? this.lastSeen === undefined : this.lastSeen?.equals(onDisk)
    if (!unchanged) {
      throw new UserError(`${this.path} was changed by another program while mlflowctl was working.`, {
        code: 'CREDENTIALS_FILE_CHANGED',
        exit: ExitCode.Unexpected,
        hint: 'Run the command again.',
      })
    }

    let loose = false
    if (onDisk !== undefined) {
      const {mode} = await stat(this.path)
      loose = (mode & 0o077) !== 0 && process.platform !== 'win32'
      if (loose) warnings.push(`${this.path} was accessible to other users (mode ${(mode & 0o777).toString(8).padStart(4, '0')}); it is now 0600.`)
    }

    const mlflow = this.document.sections.get(MLFLOW_SECTION)
    for (const key of [USERNAME_KEY, PASSWORD_KEY]) {
      if (mlflow && !mlflow.options.has(key) && this.document.defaults.has(key)) {
        warnings.push(`The [DEFAULT] section of ${this.path} sets ${key}, which MLflow applies to [mlflow].`)
      }
    }

    const bytes = Buffer.from(renderLines(this.lines), 'utf8')
    // Nothing to do: no change, and no loose mode to fix (nor an empty file to create).
    if (onDisk === undefined ? bytes.length === 0 : !loose && onDisk.equals(bytes)) return {warnings}
    await ensurePrivateDir(dirname(this.path))
    await atomicWriteFile(this.path, bytes, {mode: 0o600})
    this.lastSeen = bytes
    return {warnings}
  }

  private activate(login: StoredLogin): void {
    this.setOptions(MLFLOW_SECTION, [
      [USERNAME_KEY, login.username],
      [PASSWORD_KEY, login.password],
    ])
    this.setOptions(SETTINGS_SECTION, [[CURRENT_PROFILE_KEY, login.profile]])
  }

  private deleteOption(sectionName: string, key: string): void {
    const option = this.document.sections.get(sectionName)?.options.get(key)
    if (!option) return
    this.edit(
      (lines) => {
        for (const index of [...option.continuation].reverse()) lines.splice(index, 1)
        lines.splice(option.line, 1)
      },
      (expected) => expected.get(sectionName)!.delete(key),
    )
  }

  /**
   * Applies a line edit, then re-parses: the result must be exactly `expected` (the current
   * values with the intended change), or the edit is refused and the document left as it was.
   */
  private edit(change: (lines: Line[]) => void, expect: (expected: Map<string, Map<string, string>>) => void): void {
    const lines = this.lines.map((line) => ({...line}))
    change(lines)
    const expected = snapshot(this.document)
    expect(expected)
    let document: IniDocument | undefined
    try {
      document = parseIni(lines, this.path)
    } catch {}

    if (!document || canonical(snapshot(document)) !== canonical(expected)) {
      throw new UserError(`mlflowctl cannot edit ${this.path} without changing how MLflow reads the rest of it.`, {
        code: 'CREDENTIALS_FILE_UNEDITABLE',
        exit: ExitCode.Usage,
        hint: 'Its layout is unusual (an indented section header?). Edit the file by hand, then run the command again.',
      })
    }

    this.lines = lines
    this.document = document
  }

  /** The indentation a new key line needs so that Python reads it, and the next line, unchanged. */
  private indentBefore(lines: Line[], index: number): string {
    const next = lines.slice(index).find((line) => !isBlankOrComment(line.text))
    // The next content line is not a continuation of what precedes it, so it is indented no
    // deeper than that; matching its indentation keeps both our line and it from becoming one.
    return next ? leadingSpace(next.text) : ''
  }

  private setOptions(sectionName: string, entries: Array<[string, string]>): void {
    const section = this.document.sections.get(sectionName)
    if (!section) {
      this.edit(
        (lines) => {
          const last = lines.at(-1)
          if (last && last.eol === '') last.eol = this.newline
          if (last && pyStrip(last.text) !== '') lines.push({eol: this.newline, text: ''})
          lines.push({eol: this.newline, text: `[${sectionName}]`})
          for (const [key, value] of entries) lines.push({eol: this.newline, text: optionLine(key, escapeValue(value))})
        },
        (expected) => expected.set(sectionName, new Map(entries.map(([key, value]) => [key, escapeValue(value)]))),
      )
      return
    }

    for (const [key, value] of entries) {
      const raw = escapeValue(value)
      const current = this.document.sections.get(sectionName)!
      const option = current.options.get(key)
      this.edit(
        (lines) => {
          if (option) {
            // Keep the key and delimiter as the user wrote them; a formerly empty `key=` gets spaces.
            const prefix = option.raw === '' && raw !== '' ? option.prefix.replace(EMPTY_VALUE_DELIMITER, ' = ') : option.prefix
            lines[option.line] = {eol: lines[option.line].eol, text: prefix + raw}
            for (const index of [...option.continuation].reverse()) lines.splice(index, 1)
          } else {
            const at = current.lastLine + 1
            if (lines[at - 1].eol === '') lines[at - 1] = {...lines[at - 1], eol: this.newline}
            lines.splice(at, 0, {eol: this.newline, text: this.indentBefore(lines, at) + optionLine(key, raw)})
          }
        },
        (expected) => expected.get(sectionName)!.set(key, raw),
      )
    }
  }
}

/**
 * One section of any file in Python configparser format (MLflow's basic_auth.ini), read and
 * interpolated exactly as MLflow reads it. Undefined when the file does not exist.
 */
export async function readConfigParserSection(path: string, section: string): Promise<Record<string, string> | undefined> {
  const bytes = await readIfExists(path)
  if (bytes === undefined) return undefined
  const document = parseIni(splitLines(decode(bytes, path)), path)
  const keys = new Set([...(document.sections.get(section)?.options.keys() ?? []), ...document.defaults.keys()])
  return Object.fromEntries([...keys].map((key) => [key, interpolate(document, section, key, path) ?? '']))
}
