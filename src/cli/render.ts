/**
 * Human output: colours only on a terminal and never with NO_COLOR; tables for people.
 * Data goes to stdout, status to stderr; under --json the base command prints the result instead.
 *
 * Tables have two readers: a person at a terminal gets a drawn table; a pipe gets plain
 * tab-separated lines (or CSV with --csv) that `cut`, `awk` and spreadsheets read as they are.
 * Only the commands that print a table or a record load this module (and chalk and cli-table3).
 */
import {Chalk, type ChalkInstance} from 'chalk'
import Table from 'cli-table3'

import {type Cell, compareCells, pickColumns, sortKeys, type TableOptions} from './output.js'

export function colorsFor(stream: NodeJS.WriteStream, env: NodeJS.ProcessEnv = process.env): ChalkInstance {
  const enabled = Boolean(stream.isTTY) && env.NO_COLOR === undefined && env.TERM !== 'dumb'
  return new Chalk({level: enabled ? 1 : 0})
}

export function renderTable(head: string[], rows: Cell[][], color: ChalkInstance): string {
  const table = new Table({head: head.map((title) => color.bold(title)), style: {border: [], compact: true, head: []}})
  for (const row of rows) table.push(row.map((cell) => (cell === undefined ? '' : String(cell))))
  return table.toString()
}

/** Key/value lines, aligned, for a single record. */
export function renderRecord(entries: Array<[string, Cell]>, color: ChalkInstance): string {
  const width = Math.max(...entries.map(([key]) => key.length))
  return entries
    .filter(([, value]) => value !== undefined)
    .map(([key, value]) => `${color.bold(key.padEnd(width))}  ${value}`)
    .join('\n')
}

function csvCell(text: string): string {
  return /[",\r\n]/.test(text) || text.trim() !== text ? `"${text.replaceAll('"', '""')}"` : text
}

/** One cell on one tab-separated line: a tab or line break inside it would shift every column after it. */
function tsvCell(text: string): string {
  return text.replaceAll(/[\t\r\n]+/g, ' ')
}

/**
 * A table as the reader needs it: drawn on a terminal, tab-separated in a pipe, CSV with `csv`;
 * columns picked and rows sorted as asked. The heading line is left out with `header: false`.
 */
export function formatTable(head: string[], rows: Cell[][], options: TableOptions & {color: ChalkInstance; terminal: boolean}): string {
  const picked = pickColumns(head, options.columns)
  const keys = sortKeys(head, options.sort)
  const sorted =
    keys.length === 0
      ? rows
      : [...rows].sort((a, b) => {
          for (const {descending, index} of keys) {
            const order = compareCells(a[index], b[index])
            if (order !== 0) return descending ? -order : order
          }

          return 0
        })
  const title = picked.map((index) => head[index])
  const body = sorted.map((row) => picked.map((index) => (row[index] === undefined ? '' : String(row[index]))))
  const header = options.header !== false
  if (options.csv) return [...(header ? [title] : []), ...body].map((row) => row.map((cell) => csvCell(cell)).join(',')).join('\n')
  if (!options.terminal) return [...(header ? [title] : []), ...body].map((row) => row.map((cell) => tsvCell(cell)).join('\t')).join('\n')
  if (!header) {
    const table = new Table({style: {border: [], compact: true, head: []}})
    for (const row of body) table.push(row)
    return table.toString()
  }

  return renderTable(title, body, options.color)
}
