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
 *   [mlflowctl.profile.ci]        a login with an access token (mlflowctl serve) instead of a password:
 *   tracking_uri = https://mlflow.example.com
 *   mlflow_tracking_username = ci-bot          the token's user, for display
 *   mlflowctl_tracking_token = mlft_…          MLflow's client reads tokens only from MLFLOW_TRACKING_TOKEN;
 *                                              made current, such a login leaves [mlflow] without a pair
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
 * The file is read as Python's configparser reads it (core/configparser.ts) and edited with the
 * shared INI line editor (core/ini.ts). Edits touch only the lines
 * they must: every other section, key, comment and blank line stays byte-for-byte. Each edit is
 * re-parsed and checked to change nothing but the intended keys, so an unusual layout (e.g. an
 * indented section header that a new line would turn into a continuation) is refused, not broken.
 * Error messages name lines, never echo them: a broken line may hold a password.
 */
import {homedir} from 'node:os'
import {dirname, join} from 'node:path'

import {atomicWriteFile, ensurePrivateDir, looseModeWarning} from '../core/atomic-file.js'
import {
  decodeConfigParserFile,
  EMPTY_VALUE_DELIMITER,
  interpolate,
  type IniDocument,
  isBlankOrComment,
  leadingSpace,
  parseIni,
  PY_EDGE_SPACE,
  pyStrip,
  readConfigParserBytes,
  snapshot,
} from '../core/configparser.js'
import {ExitCode, UserError} from '../core/errors.js'
import {appendSection, canonicalSections, indentAt, type Line, linelessValueProblem, newlineOf, renderLines, reparseEdit, splitLines} from '../core/ini.js'

export interface StoredLogin {
  password: string
  profile: string
  /** An access token used instead of the password (mlflowctl serve); mlflowctl sends it as Bearer. */
  token?: string
  trackingUri: string
  username: string
}

const MLFLOW_SECTION = 'mlflow'
const SETTINGS_SECTION = 'mlflowctl'
const PROFILE_SECTION_PREFIX = 'mlflowctl.profile.'
const USERNAME_KEY = 'mlflow_tracking_username'
const PASSWORD_KEY = 'mlflow_tracking_password'
const TOKEN_KEY = 'mlflowctl_tracking_token'
const TRACKING_URI_KEY = 'tracking_uri'
const CURRENT_PROFILE_KEY = 'current_profile'
const PROFILE_NAME = /^[A-Za-z0-9_.-]+$/

export function mlflowCredentialsPath(home: string = homedir()): string {
  return join(home, '.mlflow', 'credentials')
}

function escapeValue(value: string): string {
  return value.replaceAll('%', '%%')
}

function optionLine(key: string, raw: string): string {
  return raw === '' ? `${key} =` : `${key} = ${raw}`
}

function checkValue(what: string, value: string, options: {allowEmpty: boolean}): void {
  const problem = linelessValueProblem(value, PY_EDGE_SPACE)
  if (problem) {
    throw new UserError(`The ${what} ${problem}, which MLflow's Python client would not read back as given.`, {
      code: 'INVALID_CREDENTIAL_VALUE',
      exit: ExitCode.Usage,
    })
  }

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
    this.lines = splitLines(bytes === undefined ? '' : decodeConfigParserFile(bytes, path), 'universal')
    this.document = parseIni(this.lines, path)
    this.newline = newlineOf(this.lines)
  }

  static async load(path: string = mlflowCredentialsPath()): Promise<MlflowCredentialsFile> {
    return new MlflowCredentialsFile(path, await readConfigParserBytes(path))
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
    const token = value(TOKEN_KEY)
    return {password: value(PASSWORD_KEY), profile: name, ...(token ? {token} : {}), trackingUri: value(TRACKING_URI_KEY), username: value(USERNAME_KEY)}
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
    if (login.token !== undefined) checkValue('token', login.token, {allowEmpty: false})
    // [mlflow] mirrors the current profile, so updating that profile updates it too. It goes
    // first, so a new file reads top-down: active login, settings, profiles.
    if (options.activate || this.currentProfile === login.profile) this.activate(login)
    const section = profileSection(login.profile)
    // A login is a password or a token, never both: the one it does not use goes.
    this.setOptions(section, [
      [TRACKING_URI_KEY, login.trackingUri],
      [USERNAME_KEY, login.username],
      login.token === undefined ? [PASSWORD_KEY, login.password] : [TOKEN_KEY, login.token],
    ])
    this.deleteOption(section, login.token === undefined ? TOKEN_KEY : PASSWORD_KEY)
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
    const onDisk = await readConfigParserBytes(this.path)
    const unchanged = onDisk === undefined ? this.lastSeen === undefined : this.lastSeen?.equals(onDisk)
    if (!unchanged) {
      throw new UserError(`${this.path} was changed by another program while mlflowctl was working.`, {
        code: 'CREDENTIALS_FILE_CHANGED',
        exit: ExitCode.Unexpected,
        hint: 'Run the command again.',
      })
    }

    const looseMode = onDisk === undefined ? undefined : await looseModeWarning(this.path)
    if (looseMode) warnings.push(looseMode)

    const mlflow = this.document.sections.get(MLFLOW_SECTION)
    for (const key of [USERNAME_KEY, PASSWORD_KEY]) {
      if (mlflow && !mlflow.options.has(key) && this.document.defaults.has(key)) {
        warnings.push(`The [DEFAULT] section of ${this.path} sets ${key}, which MLflow applies to [mlflow].`)
      }
    }

    const bytes = Buffer.from(renderLines(this.lines), 'utf8')
    // Nothing to do: no change, and no loose mode to fix (nor an empty file to create).
    if (onDisk === undefined ? bytes.length === 0 : !looseMode && onDisk.equals(bytes)) return {warnings}
    await ensurePrivateDir(dirname(this.path))
    await atomicWriteFile(this.path, bytes, {mode: 0o600})
    this.lastSeen = bytes
    return {warnings}
  }

  private activate(login: StoredLogin): void {
    if (login.token === undefined) {
      this.setOptions(MLFLOW_SECTION, [
        [USERNAME_KEY, login.username],
        [PASSWORD_KEY, login.password],
      ])
    } else {
      // MLflow's clients cannot read a token from this file; a pair left in [mlflow] would be
      // another login's, sent to this login's server.
      this.deleteOption(MLFLOW_SECTION, USERNAME_KEY)
      this.deleteOption(MLFLOW_SECTION, PASSWORD_KEY)
    }

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
    const document = reparseEdit(
      lines,
      (edited) => parseIni(edited, this.path),
      canonicalSections(expected),
      (parsed) => canonicalSections(snapshot(parsed)),
    )
    if (!document) {
      throw new UserError(`mlflowctl cannot edit ${this.path} without changing how MLflow reads the rest of it.`, {
        code: 'CREDENTIALS_FILE_UNEDITABLE',
        exit: ExitCode.Usage,
        hint: 'Its layout is unusual (an indented section header?). Edit the file by hand, then run the command again.',
      })
    }

    this.lines = lines
    this.document = document
  }

  private setOptions(sectionName: string, entries: Array<[string, string]>): void {
    const section = this.document.sections.get(sectionName)
    if (!section) {
      this.edit(
        (lines) => {
          const keyLines = entries.map(([key, value]) => optionLine(key, escapeValue(value)))
          appendSection(lines, sectionName, keyLines, {isBlank: (text) => pyStrip(text) === '', newline: this.newline})
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
            // The indentation that keeps Python from reading our line, or the next, as a continuation.
            const indent = indentAt(lines, at, (line) => !isBlankOrComment(line.text), leadingSpace)
            lines.splice(at, 0, {eol: this.newline, text: indent + optionLine(key, raw)})
          }
        },
        (expected) => expected.get(sectionName)!.set(key, raw),
      )
    }
  }
}
