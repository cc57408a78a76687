/**
 * The one INI line editor, shared by every INI file mlflowctl reads or edits (~/.mlflow/credentials,
 * ~/.databrickscfg, serve's basic_auth.ini). A file is kept as its lines, each with its own line
 * ending, so an edit changes only the lines it must and every other byte stays as it was. The
 * dialects (Python's configparser in configparser.ts, the Go SDK's ini.v1 in the Databricks
 * module) supply the parsing; this module supplies the line model, reading and decoding, the
 * common value checks, appending a section, and the re-parse check every edit passes.
 */
import {readFile} from 'node:fs/promises'

import {ExitCode, UserError} from './errors.js'

export interface Line {
  /** The line ending ('\n', '\r\n', '\r'), or '' on a last line without one. */
  eol: string
  text: string
}

/**
 * `universal` splits on \n, \r\n and \r (Python's universal newlines); `lf` only on \n, keeping a
 * \r before it in the ending (Go's ini.v1, which leaves a lone \r in the text).
 */
export function splitLines(content: string, newlines: 'lf' | 'universal'): Line[] {
  const lines: Line[] = []
  const pattern = newlines === 'universal' ? /([^\r\n]*)(\r\n|\r|\n|$)/gy : /([^\n]*?)(\r?\n|$)/gy
  while (pattern.lastIndex < content.length) {
    const match = pattern.exec(content)!
    lines.push({eol: match[2], text: match[1]})
  }

  return lines
}

export function renderLines(lines: Line[]): string {
  return lines.map((line) => line.text + line.eol).join('')
}

/** The file's own line ending, for lines we add; '\n' for a file without any. */
export function newlineOf(lines: Line[]): string {
  return lines.find((line) => line.eol !== '')?.eol ?? '\n'
}

/**
 * Appends `[header]` and its key lines at the end, after one blank line when the file does not
 * end in one; `newline` is the file's own line ending (newlineOf).
 */
export function appendSection(lines: Line[], header: string, keyLines: string[], options: {isBlank: (text: string) => boolean; newline: string}): void {
  const {isBlank, newline} = options
  const last = lines.at(-1)
  if (last && last.eol === '') last.eol = newline
  if (last && !isBlank(last.text)) lines.push({eol: newline, text: ''})
  lines.push({eol: newline, text: `[${header}]`}, ...keyLines.map((text) => ({eol: newline, text})))
}

/**
 * The indentation a line inserted at `index` needs: that of the next content line. That line is
 * no continuation of what precedes it, so it is indented no deeper; matching it keeps both the
 * new line and it from being read as a continuation.
 */
export function indentAt(lines: Line[], index: number, isContent: (line: Line, index: number) => boolean, leading: (text: string) => string): string {
  const next = lines.find((line, at) => at >= index && isContent(line, at))
  return next ? leading(next.text) : ''
}

/**
 * The re-parse check every edit passes: the edited lines must parse, and read exactly as
 * `expected` (what the file read before, with the intended change), else the edit would change
 * something else. Returns the parse when they do; undefined refuses the edit.
 */
export function reparseEdit<T>(lines: Line[], parse: (lines: Line[]) => T, expected: string, view: (parsed: T) => string): T | undefined {
  let parsed: T
  try {
    parsed = parse(lines)
  } catch {
    return undefined
  }

  return view(parsed) === expected ? parsed : undefined
}

/** A stable text for a map of sections to key/value pairs, whatever the order they were read in. */
export function canonicalSections(sections: Map<string, Map<string, string> | Record<string, string>>): string {
  const byName = (a: [string, unknown], b: [string, unknown]) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0)
  const entries = (values: Map<string, string> | Record<string, string>) => (values instanceof Map ? [...values] : Object.entries(values))
  return JSON.stringify([...sections].sort(byName).map(([name, values]) => [name, entries(values).sort(byName)]))
}

/**
 * Why a value cannot be written as one INI line and read back as given, for what every reader
 * refuses: a line break, whitespace at either end (`edge`: the reader's whitespace), an unpaired
 * surrogate (not encodable as UTF-8). Undefined when none applies.
 */
export function linelessValueProblem(value: string, edge: RegExp): string | undefined {
  if (/[\r\n]/.test(value)) return 'contains a line break'
  if (edge.test(value)) return 'starts or ends with whitespace'
  if (/\p{Cs}/u.test(value)) return 'contains an unpaired UTF-16 surrogate'
  return undefined
}

/** The file's bytes, or undefined when it does not exist; any other failure is a UserError with `code`. */
export async function readIfExists(path: string, code: string): Promise<Buffer | undefined> {
  try {
    return await readFile(path)
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined
    throw new UserError(`Cannot read ${path}: ${(error as Error).message}`, {
      cause: error,
      code,
      exit: ExitCode.Usage,
      hint: 'Check that the file is yours and readable.',
    })
  }
}

/** Strict UTF-8; `keepBom` leaves a byte order mark in the text for the dialect to judge. */
export function decodeUtf8(bytes: Buffer, path: string, options: {code: string; hint?: string; keepBom: boolean}): string {
  try {
    return new TextDecoder('utf-8', {fatal: true, ignoreBOM: options.keepBom}).decode(bytes)
  } catch (error) {
    throw new UserError(`${path} is not valid UTF-8.`, {cause: error, code: options.code, exit: ExitCode.Usage, hint: options.hint})
  }
}
