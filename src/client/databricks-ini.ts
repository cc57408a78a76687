/**
 * The Go SDK's reading of ~/.databrickscfg: gopkg.in/ini.v1 with SpaceBeforeInlineComment, as the
 * Go SDK and the Databricks CLI load it. `#` or `;` starts an inline comment only after a space;
 * duplicate sections merge and the last key wins; keys are case-sensitive; surrounding quotes,
 * `"""`/backtick quoting and trailing-`\` continuations are honoured; keys before the first
 * section are ignored (like the JS SDK); a line ini.v1 cannot parse (no `=`/`:`, unclosed `[`)
 * fails the read, as it fails the SDK.
 */
import {ExitCode, UserError} from '../core/errors.js'
import {type Line, splitLines} from '../core/ini.js'

// Go's unicode.IsSpace; Python's str.isspace() adds \x1c-\x1f, JS adds \ufeff. Writes refuse the union.
const GO_SPACE = '\\t\\n\\v\\f\\r \\x85\\xa0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000'
const ANY_SPACE = `${GO_SPACE}\\x1c-\\x1f\\ufeff`
const GO_LEADING_SPACE = new RegExp(`^[${GO_SPACE}]+`)
const GO_TRAILING_SPACE = new RegExp(`[${GO_SPACE}]+$`)
export const ANY_LEADING_SPACE = new RegExp(`^[${ANY_SPACE}]*`)
export const ANY_EDGE_SPACE = new RegExp(`^[${ANY_SPACE}]|[${ANY_SPACE}]$`)
export const SPACE_BEFORE_COMMENT = new RegExp(`[${ANY_SPACE}][#;]`)

export function goTrimLeft(text: string): string {
  return text.replace(GO_LEADING_SPACE, '')
}

export function goTrim(text: string): string {
  return goTrimLeft(text).replace(GO_TRAILING_SPACE, '')
}

export interface CfgKey {
  key: string
  /** The last line the value spans (quoted multi-line values, `\` continuations). */
  lastLine: number
  line: number
  value: string
}

export interface CfgSection {
  header: number
  keys: CfgKey[]
  /** The last header or key line (not trailing comments or blank lines). */
  lastLine: number
  name: string
}

function invalidConfig(path: string, line: number, problem: string): UserError {
  return new UserError(`${path}, line ${line}: ${problem}. The Databricks SDKs cannot read this file either.`, {
    code: 'DATABRICKS_CONFIG_INVALID',
    exit: ExitCode.Usage,
    hint: `Fix that line of ${path}, then run the command again.`,
  })
}

/** ini.v1's hasSurroundedQuote: exactly one quote at each end. */
export function hasSurroundedQuote(value: string, quote: string): boolean {
  return value.length >= 2 && value[0] === quote && value.at(-1) === quote && value.indexOf(quote, 1) === value.length - 1
}

/** Sections in file order, duplicates included, with each key's lines; ini.v1's parser. */
export function tokenize(lines: Line[], path: string): CfgSection[] {
  const sections: CfgSection[] = []
  let section: CfgSection | undefined
  for (let index = 0; index < lines.length; index++) {
    const lineNumber = index + 1
    const text = goTrimLeft(lines[index].text)
    if (text === '' || text[0] === '#' || text[0] === ';') continue
    if (text[0] === '[') {
      const close = text.lastIndexOf(']')
      if (close < 0) throw invalidConfig(path, lineNumber, 'the section header has no closing "]"')
      const name = text.slice(1, close)
      if (name === '') throw invalidConfig(path, lineNumber, 'the section name is empty')
      section = {header: index, keys: [], lastLine: index, name}
      sections.push(section)
      continue
    }

    const delimiter = text.search(/[=:]/)
    if (delimiter < 0) throw invalidConfig(path, lineNumber, 'the line is neither a [section], a "key = value" pair, nor a comment')
    const key = goTrim(text.slice(0, delimiter))
    if (key === '') throw invalidConfig(path, lineNumber, 'the key name is empty')
    const start = index
    const read = readValue(lines, index, goTrimLeft(text.slice(delimiter + 1)), path)
    index = read.lastLine
    // ini.v1 files keys before the first section under DEFAULT; the JS SDK, and we, ignore them.
    if (!section) continue
    section.keys.push({key, lastLine: index, line: start, value: read.value})
    section.lastLine = index
  }

  return sections
}

/** A key's value from `rest` (after the delimiter) on line `index`, and the last line it spans. */
function readValue(lines: Line[], index: number, rest: string, path: string): {lastLine: number; value: string} {
  const quote = rest.length > 3 && rest.startsWith('"""') ? '"""' : rest.startsWith('`') ? '`' : ''
  if (quote) return readQuoted(lines, index, rest, quote, path)
  let value = goTrim(rest)
  if (!value.endsWith('\\')) {
    let comment = value.indexOf(' #')
    if (comment < 0) comment = value.indexOf(' ;')
    if (comment >= 0) value = goTrim(value.slice(0, comment))
    if (hasSurroundedQuote(value, "'") || hasSurroundedQuote(value, '"')) value = value.slice(1, -1)
    return {lastLine: index, value}
  }

  // Continuation lines are trimmed and glued on until one does not end in '\' or is empty.
  value = value.slice(0, -1)
  let last = index
  while (last + 1 < lines.length) {
    last++
    const next = goTrim(lines[last].text)
    if (next === '') break
    value += next
    if (!value.endsWith('\\')) break
    value = value.slice(0, -1)
  }

  return {lastLine: last, value}
}

/** A `"""` or backtick quoted value; it runs on, newlines included, to the last quote of a later line. */
function readQuoted(lines: Line[], index: number, rest: string, quote: string, path: string): {lastLine: number; value: string} {
  const close = rest.lastIndexOf(quote)
  if (close >= quote.length) return {lastLine: index, value: rest.slice(quote.length, close)}
  let value = rest.slice(quote.length) + lines[index].eol
  for (let last = index + 1; last < lines.length; last++) {
    const next = lines[last].text + lines[last].eol
    const end = next.lastIndexOf(quote)
    if (end >= 0) return {lastLine: last, value: value + next.slice(0, end)}
    value += next
  }

  throw invalidConfig(path, index + 1, `the ${quote} quoted value is never closed`)
}

export function merge(sections: CfgSection[]): Map<string, Record<string, string>> {
  const profiles = new Map<string, Record<string, string>>()
  for (const section of sections) {
    const values = profiles.get(section.name) ?? {}
    for (const {key, value} of section.keys) values[key] = value
    profiles.set(section.name, values)
  }

  return profiles
}

export function parseDatabricksConfig(text: string, path = '.databrickscfg'): Map<string, Record<string, string>> {
  return merge(tokenize(splitLines(text, 'lf'), path))
}
