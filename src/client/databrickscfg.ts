/**
 * `~/.databrickscfg`: Databricks profiles, read like the Go SDK and written like the Databricks CLI
 * (docs/client-credentials.md, "Databricks profiles"). Plain module (no oclif); the environment is
 * always an argument.
 *
 * API:
 *   databricksConfigPath(env, file?): string        file > DATABRICKS_CONFIG_FILE > ~/.databrickscfg
 *   databricksProfileName(env, profile?): string    profile > DATABRICKS_CONFIG_PROFILE > DEFAULT
 *   parseDatabricksConfig(text, path?): Map<profile, Record<key, value>>
 *   readDatabricksProfile({file?, profile?, env}): Promise<DatabricksProfile | undefined>
 *       undefined when the file or the section is missing
 *   saveDatabricksCredentials({file?, profile?, env, credentials}): Promise<DatabricksWriteResult>
 *       replaces the profile's auth keys (DATABRICKS_AUTH_KEYS), keeps its other keys
 *   removeDatabricksCredentials({file?, profile?, env}): Promise<DatabricksWriteResult>
 *       removes token, username and password from the profile, keeps host and the rest
 *
 * Reading is the Go SDK's (databricks-ini.ts).
 *
 * Writing: only the lines of the target profile's auth keys change (every other byte is kept, no
 * reformatting); a new profile is appended. Values are refused when some reader would not get
 * them back exactly: Go (inline comments, quotes, continuations), Python's configparser
 * (surrounding whitespace, line breaks) and MLflow's legacy Databricks reader, which interpolates
 * `%`. The previous content goes to `<file>.bak` (0600) first; the file is replaced atomically
 * with mode 0600 (a looser existing file is tightened, with a warning).
 */
import {chmod} from 'node:fs/promises'
import {homedir} from 'node:os'
import {dirname, join} from 'node:path'

import {atomicWriteFile, ensurePrivateDir, looseModeWarning} from '../core/atomic-file.js'
import {ExitCode, UserError} from '../core/errors.js'
import {
  appendSection,
  canonicalSections,
  decodeUtf8,
  indentAt,
  type Line,
  linelessValueProblem,
  newlineOf,
  readIfExists,
  renderLines,
  reparseEdit,
  splitLines,
} from '../core/ini.js'
import {
  ANY_EDGE_SPACE,
  ANY_LEADING_SPACE,
  type CfgSection,
  goTrim,
  goTrimLeft,
  hasSurroundedQuote,
  merge,
  parseDatabricksConfig,
  SPACE_BEFORE_COMMENT,
  tokenize,
} from './databricks-ini.js'

export {parseDatabricksConfig} from './databricks-ini.js'

type Env = Readonly<Record<string, string | undefined>>

/** The keys that say who you are; a new login replaces all of them, other keys stay. */
export const DATABRICKS_AUTH_KEYS = ['host', 'token', 'username', 'password', 'client_id', 'client_secret', 'auth_type'] as const
export type DatabricksAuthKey = (typeof DATABRICKS_AUTH_KEYS)[number]
const LOGOUT_KEYS = ['token', 'username', 'password']

export interface DatabricksProfile {
  path: string
  profile: string
  values: Record<string, string>
}

export interface DatabricksWriteResult {
  /**
   * Where the previous content was copied: set whenever there was a previous file and it was
   * rewritten.
   */
  backupPath?: string
  path: string
  profile: string
  /** The auth keys removed (logout) or replaced (login), as spelt in the file. */
  removed: string[]
  warnings: string[]
}

interface Selection {
  env: Env
  file?: string
  profile?: string
}

const PROFILE_NAME = /^[A-Za-z0-9_.-]+$/
const SETTINGS_SECTION = '__settings__'

function homeDirectory(env: Env): string {
  return (process.platform === 'win32' ? env.USERPROFILE : env.HOME) || homedir()
}

export function databricksConfigPath(env: Env, file?: string): string {
  const path = file || env.DATABRICKS_CONFIG_FILE
  if (!path) return join(homeDirectory(env), '.databrickscfg')
  // The SDKs expand a leading ~ (MLflow's legacy reader does not).
  if (path === '~' || path.startsWith('~/') || path.startsWith('~\\')) return homeDirectory(env) + path.slice(1)
  return path
}

export function databricksProfileName(env: Env, profile?: string): string {
  return profile || env.DATABRICKS_CONFIG_PROFILE || 'DEFAULT'
}

function readConfigBytes(path: string): Promise<Buffer | undefined> {
  return readIfExists(path, 'DATABRICKS_CONFIG_UNREADABLE')
}

function decode(bytes: Buffer, path: string, options: {keepBom: boolean} = {keepBom: false}): string {
  // ini.v1 skips a UTF-8 byte order mark, so a reader may drop it; an editor keeps it.
  return decodeUtf8(bytes, path, {code: 'DATABRICKS_CONFIG_INVALID', keepBom: options.keepBom})
}

export async function readDatabricksProfile(selection: Selection): Promise<DatabricksProfile | undefined> {
  const path = databricksConfigPath(selection.env, selection.file)
  const profile = databricksProfileName(selection.env, selection.profile)
  const bytes = await readConfigBytes(path)
  if (bytes === undefined) return undefined
  const values = parseDatabricksConfig(decode(bytes, path), path).get(profile)
  return values === undefined ? undefined : {path, profile, values}
}

function checkValue(key: string, value: string): void {
  const refuse = (problem: string) =>
    new UserError(`The ${key} ${problem}, which the Databricks SDKs or MLflow would not read back as given.`, {
      code: 'INVALID_CREDENTIAL_VALUE',
      exit: ExitCode.Usage,
    })
  const lineless = linelessValueProblem(value, ANY_EDGE_SPACE)
  if (lineless) throw refuse(lineless)
  if (SPACE_BEFORE_COMMENT.test(value)) throw refuse('has a space before "#" or ";" (an inline comment to the Go SDK)')
  if (value.startsWith('"""') || value.startsWith('`') || hasSurroundedQuote(value, '"') || hasSurroundedQuote(value, "'")) {
    throw refuse('is quoted in a way the Go SDK strips')
  }

  if (value.endsWith('\\')) throw refuse('ends with "\\" (a line continuation to the Go SDK)')
  if (value.includes('%')) throw refuse("contains '%' (MLflow's Databricks config reader interpolates it)")
}

function checkProfileName(name: string): void {
  if (!PROFILE_NAME.test(name) || name === SETTINGS_SECTION) {
    throw new UserError(`Invalid Databricks profile name "${name}".`, {
      code: 'INVALID_PROFILE_NAME',
      exit: ExitCode.Usage,
      hint: 'Use letters, digits, ".", "_" and "-" only.',
    })
  }
}

/** Problems that make Python readers (MLflow, the Databricks Python SDK) reject the file. */
function pythonWarnings(sections: CfgSection[], path: string): string[] {
  const warnings = new Set<string>()
  const keysBySection = new Map<string, Set<string>>()
  for (const section of sections) {
    let keys = keysBySection.get(section.name)
    if (keys) {
      warnings.add(`${path} has the section [${section.name}] more than once; Python readers (MLflow, the Databricks Python SDK) reject such a file.`)
    } else {
      keys = new Set()
      keysBySection.set(section.name, keys)
    }

    for (const {key} of section.keys) {
      // configparser lower-cases key names, so `Token` and `token` collide there.
      const lower = key.toLowerCase()
      if (keys.has(lower)) warnings.add(`${path} sets "${lower}" more than once in [${section.name}]; Python readers reject such a file.`)
      keys.add(lower)
    }
  }

  return [...warnings]
}

function isContentLine(text: string): boolean {
  const first = goTrimLeft(text).slice(0, 1)
  return first !== '' && first !== '#' && first !== ';'
}

interface Edit {
  /** Keys to write into the section, in order. */
  insert: Array<[string, string]>
  /** Line indices to drop. */
  remove: Set<number>
  section: string
}

/**
 * Applies an edit to the target profile and checks, by parsing the result, that every other
 * profile reads exactly as before and the target reads as intended.
 */
function applyEdit(lines: Line[], sections: CfgSection[], edit: Edit, path: string): Line[] {
  const occurrences = sections.filter((section) => section.name === edit.section)
  const keyLines = edit.insert.map(([key, value]) => `${key} = ${value}`)
  const result = occurrences.length === 0 ? appended(lines, edit.section, keyLines) : replaced(lines, occurrences.at(-1)!, edit, keyLines)
  const expected = merge(sections)
  const removedKeys = new Set(occurrences.flatMap((section) => section.keys.filter((key) => edit.remove.has(key.line)).map((key) => key.key)))
  const targetValues = Object.entries(expected.get(edit.section) ?? {}).filter(([key]) => !removedKeys.has(key))
  expected.set(edit.section, Object.fromEntries([...targetValues, ...edit.insert]))
  if (!reparseEdit(result, (edited) => merge(tokenize(edited, path)), canonicalSections(expected), canonicalSections)) {
    throw new UserError(`mlflowctl cannot edit ${path} without changing how the Databricks SDKs read the rest of it.`, {
      code: 'DATABRICKS_CONFIG_UNEDITABLE',
      exit: ExitCode.Usage,
      hint: 'Edit the file by hand, or use `databricks configure`.',
    })
  }

  return result
}

/** A new profile goes at the end. */
function appended(lines: Line[], section: string, keyLines: string[]): Line[] {
  const result = lines.map((line) => ({...line}))
  appendSection(result, section, keyLines, {isBlank: (text) => goTrim(text) === '', newline: newlineOf(lines)})
  return result
}

/** New keys go where the first old auth key of the profile's last occurrence was, else under its header. */
function replaced(lines: Line[], target: CfgSection, edit: Edit, keyLines: string[]): Line[] {
  const newline = newlineOf(lines)
  const anchor = target.keys.find((key) => edit.remove.has(key.line))?.line ?? target.header + 1
  // Python reads a line indented deeper than the key before it as a continuation.
  const isContent = (line: Line, index: number) => !edit.remove.has(index) && isContentLine(line.text)
  const indent = indentAt(lines, anchor, isContent, (text) => ANY_LEADING_SPACE.exec(text)![0])
  const result: Line[] = []
  for (const [index, line] of [...lines, undefined].entries()) {
    if (index === anchor && keyLines.length > 0) {
      const previous = result.at(-1)
      if (previous && previous.eol === '') previous.eol = newline
      result.push(...keyLines.map((text) => ({eol: newline, text: indent + text})))
    }

    if (line && !edit.remove.has(index)) result.push({...line})
  }

  return result
}

/** The file's lines (a byte order mark kept aside, as ini.v1 skips it) and its sections. */
interface LoadedConfig {
  bom: boolean
  bytes?: Buffer
  lines: Line[]
  sections: CfgSection[]
}

async function loadForEdit(path: string): Promise<LoadedConfig> {
  const bytes = await readConfigBytes(path)
  const text = bytes === undefined ? '' : decode(bytes, path, {keepBom: true})
  const bom = text.startsWith('\uFEFF')
  const lines = splitLines(bom ? text.slice(1) : text, 'lf')
  return {bom, bytes, lines, sections: tokenize(lines, path)}
}

/** When the content stays as it is, a loose mode is still fixed: the file holds secrets. */
async function tightenMode(path: string): Promise<string[]> {
  const warning = await looseModeWarning(path)
  if (warning === undefined) return []
  await chmod(path, 0o600)
  return [warning]
}

/**
 * The shared write path: drops the profile's keys that `drop` selects, adds `insert`, then backs
 * up the old file and replaces it. Nothing is written when nothing would change: no key to
 * remove, or exactly the keys and values the profile already has (the .bak is left alone).
 */
async function editProfile(selection: Selection, insert: Array<[string, string]>, drop: (key: string) => boolean): Promise<DatabricksWriteResult> {
  const path = databricksConfigPath(selection.env, selection.file)
  const profile = databricksProfileName(selection.env, selection.profile)
  const config = await loadForEdit(path)
  const old = config.sections
    .filter((section) => section.name === profile)
    .flatMap((section) => section.keys)
    .filter((key) => drop(key.key.toLowerCase()))
  if (old.length === 0 && insert.length === 0) return {path, profile, removed: [], warnings: []}
  // The same login again: rewriting would replace the .bak, the user's only copy of what was
  // there before, with this very content.
  const pairs = (entries: Array<[string, string]>) => JSON.stringify(entries.map(([key, value]) => `${key}=${value}`).sort())
  if (config.bytes !== undefined && pairs(old.map((key) => [key.key, key.value])) === pairs(insert)) {
    return {path, profile, removed: [], warnings: await tightenMode(path)}
  }

  const remove = new Set(old.flatMap((key) => Array.from({length: key.lastLine - key.line + 1}, (_, offset) => key.line + offset)))
  const lines = applyEdit(config.lines, config.sections, {insert, remove, section: profile}, path)
  const warnings = pythonWarnings(tokenize(lines, path), path)
  let backupPath: string | undefined
  if (config.bytes === undefined) {
    await ensurePrivateDir(dirname(path))
  } else {
    backupPath = `${path}.bak`
    await atomicWriteFile(backupPath, config.bytes, {mode: 0o600})
    const looseMode = await looseModeWarning(path)
    if (looseMode) warnings.push(looseMode)
  }

  await atomicWriteFile(path, (config.bom ? '\uFEFF' : '') + renderLines(lines), {mode: 0o600})
  return {backupPath, path, profile, removed: old.map((key) => key.key), warnings}
}

export async function saveDatabricksCredentials(
  options: Selection & {credentials: Partial<Record<DatabricksAuthKey, string>>},
): Promise<DatabricksWriteResult> {
  checkProfileName(databricksProfileName(options.env, options.profile))
  if (!options.credentials.host) {
    throw new UserError('A Databricks profile needs a host.', {code: 'INVALID_CREDENTIAL_VALUE', exit: ExitCode.Usage})
  }

  const insert = DATABRICKS_AUTH_KEYS.flatMap((key): Array<[string, string]> => {
    const value = options.credentials[key]
    if (!value) return []
    checkValue(key, value)
    return [[key, value]]
  })
  const authKeys = new Set<string>(DATABRICKS_AUTH_KEYS)
  return editProfile(options, insert, (key) => authKeys.has(key))
}

export async function removeDatabricksCredentials(options: Selection): Promise<DatabricksWriteResult> {
  return editProfile(options, [], (key) => LOGOUT_KEYS.includes(key))
}
