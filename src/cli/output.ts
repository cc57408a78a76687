/**
 * Human output: colours only on a terminal and never with NO_COLOR; tables for people.
 * Data goes to stdout, status to stderr; under --json the base command prints the result instead.
 */
import {Chalk, type ChalkInstance} from 'chalk'
import Table from 'cli-table3'

export function colorsFor(stream: NodeJS.WriteStream, env: NodeJS.ProcessEnv = process.env): ChalkInstance {
  const enabled = Boolean(stream.isTTY) && env.NO_COLOR === undefined && env.TERM !== 'dumb'
  return new Chalk({level: enabled ? 1 : 0})
}

export function renderTable(head: string[], rows: Array<Array<boolean | number | string | undefined>>, color: ChalkInstance): string {
  const table = new Table({head: head.map((title) => color.bold(title)), style: {border: [], compact: true, head: []}})
  for (const row of rows) table.push(row.map((cell) => (cell === undefined ? '' : String(cell))))
  return table.toString()
}

/** Key/value lines, aligned, for a single record. */
export function renderRecord(entries: Array<[string, boolean | number | string | undefined]>, color: ChalkInstance): string {
  const width = Math.max(...entries.map(([key]) => key.length))
  return entries
    .filter(([, value]) => value !== undefined)
    .map(([key, value]) => `${color.bold(key.padEnd(width))}  ${value}`)
    .join('\n')
}
