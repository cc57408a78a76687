/**
 * Python's `configparser.ConfigParser()` with default settings (3.11 `RawConfigParser._read` and
 * `BasicInterpolation`), the dialect of ~/.mlflow/credentials and of MLflow's basic_auth.ini. A
 * file it rejects is rejected here too, naming the line; values are what `ConfigParser.get`
 * returns. Error messages name lines, never echo them: a broken line may hold a password.
 */
import {ExitCode, UserError} from './errors.js'
import {decodeUtf8, type Line, readIfExists, splitLines} from './ini.js'

/** configparser's MAX_INTERPOLATION_DEPTH. */
const MAX_INTERPOLATION_DEPTH = 10

// Python's str.strip() and re's \s use str.isspace(), which differs from JS \s (\x1c-\x1f and
// \x85 are spaces in Python, \ufeff is not); using JS trim() would misread some lines.
const PY_SPACE = '\\t\\n\\v\\f\\r\\x1c-\\x1f \\x85\\xa0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000'
const LEADING_SPACE = new RegExp(`^[${PY_SPACE}]*`)
const TRAILING_SPACE = new RegExp(`[${PY_SPACE}]*$`)
/** Whitespace at either end of a value, as Python strips it. */
export const PY_EDGE_SPACE = new RegExp(`^[${PY_SPACE}]|[${PY_SPACE}]$`)
/** A delimiter with nothing after it: `key =`. */
export const EMPTY_VALUE_DELIMITER = new RegExp(`[${PY_SPACE}]*[=:][${PY_SPACE}]*$`)

export function leadingSpace(text: string): string {
  return LEADING_SPACE.exec(text)![0]
}

function pyRstrip(text: string): string {
  return text.replace(TRAILING_SPACE, '')
}

export function pyStrip(text: string): string {
  return pyRstrip(text).replace(LEADING_SPACE, '')
}

export function isBlankOrComment(text: string): boolean {
  const stripped = pyStrip(text)
  return stripped === '' || stripped.startsWith('#') || stripped.startsWith(';')
}

export interface IniOption {
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

export interface IniSection {
  header: number
  /** The section's last header, key or continuation line (not trailing comments or blanks). */
  lastLine: number
  options: Map<string, IniOption>
}

export interface IniDocument {
  defaults: Map<string, IniOption>
  sections: Map<string, IniSection>
}

function invalidFile(path: string, line: number, problem: string): UserError {
  return new UserError(`${path}, line ${line}: ${problem}. MLflow's Python client cannot read this file either.`, {
    code: 'CREDENTIALS_FILE_INVALID',
    exit: ExitCode.Usage,
    hint: `Fix that line of ${path} (a literal % is written %%), then run the command again.`,
  })
}

/** Where the parser is: the options map keys go to, and the option a continuation line extends. */
interface ParseState {
  defaults: Map<string, IniOption>
  indentLevel: number
  option?: IniOption
  options?: Map<string, IniOption>
  section?: IniSection
  sections: Map<string, IniSection>
}

/** configparser.RawConfigParser._read with ConfigParser's defaults (strict, `=`/`:`, `#`/`;`). */
export function parseIni(lines: Line[], path: string): IniDocument {
  const state: ParseState = {defaults: new Map(), indentLevel: 0, sections: new Map()}
  for (const [index, {text}] of lines.entries()) parseLine(state, text, index, path)
  const {defaults, sections} = state
  for (const map of [defaults, ...[...sections.values()].map((each) => each.options)]) {
    for (const each of map.values()) each.raw = pyRstrip(each.parts.join('\n'))
  }

  return {defaults, sections}
}

function parseLine(state: ParseState, text: string, index: number, path: string): void {
  const stripped = pyStrip(text)
  const comment = stripped.startsWith('#') || stripped.startsWith(';')
  if (stripped === '' || comment) {
    // A blank line inside a value is part of it (empty_lines_in_values); a comment is not.
    if (!comment) state.option?.parts.push('')
    return
  }

  const indent = leadingSpace(text).length
  if (state.option && indent > state.indentLevel) {
    state.option.parts.push(stripped)
    state.option.continuation.push(index)
    if (state.section) state.section.lastLine = index
    return
  }

  state.indentLevel = indent
  const header = /^\[(.+)\]/s.exec(stripped)
  if (header) {
    parseHeader(state, header[1], index, path)
    return
  }

  const {options} = state
  if (!options) throw invalidFile(path, index + 1, 'a key appears before any [section] header')
  const delimiter = stripped.search(/[=:]/)
  const name = delimiter < 0 ? '' : pyRstrip(stripped.slice(0, delimiter))
  if (name === '') throw invalidFile(path, index + 1, 'the line is neither a [section], a "key = value" pair, nor a comment')
  const key = name.toLowerCase()
  const previous = options.get(key)
  if (previous) throw invalidFile(path, index + 1, `key "${key}" appears again in its section (first on line ${previous.line + 1})`)
  const afterDelimiter = indent + delimiter + 1
  const prefix = text.slice(0, afterDelimiter + leadingSpace(text.slice(afterDelimiter)).length)
  state.option = {continuation: [], key, line: index, parts: [pyStrip(stripped.slice(delimiter + 1))], prefix, raw: ''}
  options.set(key, state.option)
  if (state.section) state.section.lastLine = index
}

function parseHeader(state: ParseState, name: string, index: number, path: string): void {
  state.option = undefined
  if (name === 'DEFAULT') {
    state.section = undefined
    state.options = state.defaults
    return
  }

  const previous = state.sections.get(name)
  if (previous) throw invalidFile(path, index + 1, `section [${name}] appears again (first on line ${previous.header + 1})`)
  state.section = {header: index, lastLine: index, options: new Map()}
  state.sections.set(name, state.section)
  state.options = state.section.options
}

/** BasicInterpolation.before_get: `%%` is `%`, `%(name)s` is another key of the section or DEFAULT. */
export function interpolate(document: IniDocument, sectionName: string, key: string, path: string): string | undefined {
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
export function snapshot(document: IniDocument): Map<string, Map<string, string>> {
  const values = (options: Map<string, IniOption>) => new Map([...options].map(([key, option]) => [key, option.raw]))
  const result = new Map([...document.sections].map(([name, section]) => [name, values(section.options)]))
  result.set('DEFAULT', values(document.defaults))
  return result
}

/** The file's text as Python's utf-8 codec reads it, refusing what configparser would reject. */
export function decodeConfigParserFile(bytes: Buffer, path: string): string {
  // Keep a BOM: Python's utf-8 codec keeps it too, and then rejects the first line.
  const text = decodeUtf8(bytes, path, {code: 'CREDENTIALS_FILE_INVALID', hint: 'Save the file as UTF-8, then run the command again.', keepBom: true})
  if (text.startsWith('\uFEFF')) {
    throw new UserError(`${path} starts with a byte order mark, which Python's configparser rejects.`, {
      code: 'CREDENTIALS_FILE_INVALID',
      exit: ExitCode.Usage,
      hint: 'Save the file as UTF-8 without BOM, then run the command again.',
    })
  }

  return text
}

/** The bytes of a configparser file, undefined when it does not exist. */
export function readConfigParserBytes(path: string): Promise<Buffer | undefined> {
  return readIfExists(path, 'CREDENTIALS_FILE_UNREADABLE')
}

/**
 * One section of any file in Python configparser format (MLflow's basic_auth.ini), read and
 * interpolated exactly as MLflow reads it. Undefined when the file does not exist.
 */
export async function readConfigParserSection(path: string, section: string): Promise<Record<string, string> | undefined> {
  const bytes = await readConfigParserBytes(path)
  if (bytes === undefined) return undefined
  const document = parseIni(splitLines(decodeConfigParserFile(bytes, path), 'universal'), path)
  const keys = new Set([...(document.sections.get(section)?.options.keys() ?? []), ...document.defaults.keys()])
  return Object.fromEntries([...keys].map((key) => [key, interpolate(document, section, key, path) ?? '']))
}
