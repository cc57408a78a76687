/**
 * How MLflow's Python server spells a JSON value in its messages (`{value!r}` and `f'{value}'`),
 * so serve's messages about the same bad input read the same: `None`, `True`, `'abc'`, `[1]`.
 */

/** Python's repr() of a value parsed from JSON. */
export function pythonRepr(value: unknown): string {
  if (value === null || value === undefined) return 'None'
  if (value === true) return 'True'
  if (value === false) return 'False'
  if (typeof value === 'string') return quote(value)
  if (typeof value === 'number') return String(value)
  if (Array.isArray(value)) return `[${value.map((item) => pythonRepr(item)).join(', ')}]`
  if (typeof value === 'object')
    return `{${Object.entries(value)
      .map(([key, item]) => `${quote(key)}: ${pythonRepr(item)}`)
      .join(', ')}}`
  return String(value)
}

/** Python's str(): a string as it is, anything else as its repr(). */
export function pythonStr(value: unknown): string {
  return typeof value === 'string' ? value : pythonRepr(value)
}

/** Python's truth value of a value parsed from JSON (`if not value:`). */
export function pythonFalsy(value: unknown): boolean {
  if (value === null || value === undefined || value === false || value === 0 || value === '') return true
  if (Array.isArray(value)) return value.length === 0
  return typeof value === 'object' && Object.keys(value).length === 0
}

/** Python's len() of a string: code points, not UTF-16 units. */
export function pythonLength(text: string): number {
  return [...text].length
}

function quote(text: string): string {
  // Python quotes with ' unless the text holds a ' and no ".
  const mark = text.includes("'") && !text.includes('"') ? '"' : "'"
  const escaped = text.replaceAll('\\', '\\\\').replaceAll('\n', '\\n').replaceAll('\r', '\\r').replaceAll('\t', '\\t')
  return mark + (mark === "'" ? escaped.replaceAll("'", "\\'") : escaped) + mark
}
