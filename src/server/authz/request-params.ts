/**
 * A request's fields, read the way MLflow's handlers read them (docs/mlflow-auth-contract.md,
 * "Reading request fields"): the query string for GET, the JSON body otherwise (Flask's
 * get_json(force=True), whatever the content type), plus path parameters and headers. Protobuf's
 * JSON parser accepts a field under its proto name and its lowerCamelCase name, so both are read,
 * and a body that gives both is refused: the checker and MLflow must never see two different
 * values.
 */
import {isCanonicalId} from '../../mlflow/resources.js'
import {ApiError, missingParameter} from '../responses.js'

export type ParamSource = 'body' | 'query'

/** The largest id MLflow's stores keep (a 64-bit integer column); a larger one fails inside MLflow (500). */
export const MAX_ID = 9_223_372_036_854_775_807n

/** Whether a canonical decimal id fits the stores' 64-bit integers. */
export function idInRange(value: string): boolean {
  return value.length <= 19 && BigInt(value) <= MAX_ID
}

/** `value` when it is a canonical id MLflow's stores can hold, else a 400 naming the field. */
export function canonicalId(value: string, field: string): string {
  if (!isCanonicalId(value))
    throw new ApiError(
      'INVALID_PARAMETER_VALUE',
      `Parameter '${displayName(field)}' must be a decimal number without sign, spaces or leading zeros, got ${JSON.stringify(value)}.`,
    )
  if (!idInRange(value))
    throw new ApiError(
      'INVALID_PARAMETER_VALUE',
      `Parameter '${displayName(field)}' must be at most ${MAX_ID} (a 64-bit integer), got ${JSON.stringify(value)}.`,
    )
  return value
}

/** The largest page size serve passes on: protobuf's int32. */
const MAX_PAGE_SIZE = 2_147_483_647

/** Python's name for a JSON value's type, as MLflow's parameter errors say it. */
function pythonType(value: unknown): string {
  if (typeof value === 'string') return 'str'
  if (typeof value === 'boolean') return 'bool'
  if (typeof value === 'number') return Number.isInteger(value) ? 'int' : 'float'
  return Array.isArray(value) ? 'list' : 'dict'
}

/**
 * Fields that hold experiment ids or version numbers wherever they sit in a request (the last
 * name of the field's path): every value serve reads from them must be canonical, whichever
 * check, filter or after-effect reads it.
 */
const CANONICAL_ID_FIELDS = new Set(['experiment_id', 'experiment_ids', 'version', 'x-mlflow-experiment-id'])

/** Field names come from the route table, a few dozen: each is looked at once, not on every request. */
const holdsIds = new Map<string, boolean>()

function holdsCanonicalIds(field: string): boolean {
  let holds = holdsIds.get(field)
  if (holds === undefined) holdsIds.set(field, (holds = CANONICAL_ID_FIELDS.has(field.split('.').at(-1)!.replace('[]', ''))))
  return holds
}

/** The id and number fields checked on every request serve decides, whether or not a check reads them. */
const ALWAYS_CHECKED = ['experiment_id', 'experiment_ids', 'version']

export class RequestParams {
  constructor(
    private readonly source: ParamSource,
    private readonly query: URLSearchParams,
    private readonly body: Record<string, unknown> | undefined,
    private readonly pathParams: Record<string, string>,
    private readonly headers: Record<string, string | string[] | undefined>,
  ) {}

  /**
   * Refuses (400) a malformed experiment id or version number anywhere serve may read one, before
   * anything is decided or sent: MLflow fails on some of them with a 500.
   */
  checkNumbers(): void {
    for (const field of ALWAYS_CHECKED) this.values(field)
  }

  /**
   * Every value of a field: `a.b` walks objects, `a[].b` maps over a list, `path.x` / `header.x`
   * read those. Experiment ids and version numbers are refused in any but their canonical form
   * (an empty value is left to `required`).
   */
  values(field: string): string[] {
    const values = this.read(field)
    if (holdsCanonicalIds(field)) for (const value of values) if (value !== '') canonicalId(value, field)
    return values
  }

  private read(field: string): string[] {
    if (field.startsWith('path.')) {
      const value = this.pathParams[field.slice(5)]
      return value === undefined ? [] : [value]
    }

    if (field.startsWith('header.')) {
      const value = this.headers[field.slice(7)]
      if (Array.isArray(value)) throw new ApiError('INVALID_PARAMETER_VALUE', `Header '${field.slice(7)}' is given more than once.`)
      return value === undefined ? [] : [value]
    }

    if (this.source === 'query') {
      // A nested field on a query route is a mistake in the route table: fail loudly, never pass.
      if (field.includes('.') || field.includes('[]')) throw new TypeError(`route table: nested field ${field} on a route read from the query`)
      return this.query.getAll(field)
    }

    return collect(this.body ?? {}, field.split('.'), field)
  }

  /** A single-valued field, or undefined when absent; a field given twice is refused. */
  optional(field: string): string | undefined {
    const values = this.values(field)
    if (values.length > 1) throw new ApiError('INVALID_PARAMETER_VALUE', `Parameter '${displayName(field)}' is given more than once.`)
    return values[0]
  }

  /** A single-valued field that must be there (MLflow's "Missing value for required parameter"). */
  required(field: string): string {
    const value = this.optional(field)
    if (value === undefined || value === '') throw missingParameter(displayName(field))
    return value
  }

  /** The `{key, value}` pairs of a tags list in the body (e.g. `tags`), values read as strings. */
  tags(field: string): Array<{key: string; value: string}> {
    const keys = this.values(`${field}[].key`)
    const values = this.values(`${field}[].value`)
    // A tag without a value would leave keys and values unpaired: refused rather than guessed.
    if (keys.length !== values.length) throw new ApiError('INVALID_PARAMETER_VALUE', `Every entry of '${field}' must have a key and a value.`)
    return keys.map((key, index) => ({key, value: values[index]}))
  }

  /**
   * A page size (`max_results`) serve reads to refill a filtered page: a positive integer, as a
   * JSON number or a decimal string; undefined when absent. Anything else is refused with
   * MLflow's own message for it, never passed on for MLflow to fail on.
   */
  pageSize(field: string): number | undefined {
    const raw = this.source === 'query' ? (this.query.has(field) ? this.query.get(field) : undefined) : member(this.body ?? {}, field, field)
    if (raw === undefined || raw === null) return undefined
    const text = typeof raw === 'number' && Number.isInteger(raw) ? String(raw) : typeof raw === 'string' && /^-?\d+$/.test(raw) ? raw : undefined
    if (text === undefined)
      throw new ApiError(
        'INVALID_PARAMETER_VALUE',
        `Invalid value ${JSON.stringify(raw)} for parameter '${field}' supplied:  Hint: Value was of type '${pythonType(raw)}'. See the API docs for more information about request parameters.`,
      )
    const value = Number(text)
    if (value <= 0) throw new ApiError('INVALID_PARAMETER_VALUE', `Invalid value ${text} for parameter '${field}' supplied. It must be a positive integer`)
    if (value > MAX_PAGE_SIZE)
      throw new ApiError('INVALID_PARAMETER_VALUE', `Invalid value ${text} for parameter '${field}' supplied. It must be at most ${MAX_PAGE_SIZE}`)
    return value
  }

  /** run_id, else MLflow's older run_uuid; two different ids are refused. */
  runId(field: string): string {
    if (field !== 'run_id') return this.required(field)
    const runId = this.optional('run_id')
    const runUuid = this.optional('run_uuid')
    if (runId && runUuid && runId !== runUuid) throw new ApiError('INVALID_PARAMETER_VALUE', 'run_id and run_uuid name different runs.')
    const value = runId || runUuid
    if (!value) throw missingParameter('run_id')
    return value
  }
}

function displayName(field: string): string {
  return field.replace(/^(path|header)\./, '')
}

function camelCase(name: string): string {
  return name.replaceAll(/_([a-z\d])/g, (_, char: string) => char.toUpperCase())
}

/** A field of a JSON object under its proto name or its JSON name, never both. */
function member(object: Record<string, unknown>, name: string, field: string): unknown {
  const camel = camelCase(name)
  const hasSnake = Object.hasOwn(object, name)
  const hasCamel = camel !== name && Object.hasOwn(object, camel)
  if (hasSnake && hasCamel) throw new ApiError('INVALID_PARAMETER_VALUE', `Field '${field}' is given twice, as '${name}' and '${camel}'.`)
  return hasSnake ? object[name] : hasCamel ? object[camel] : undefined
}

function scalar(value: unknown, field: string): string {
  if (typeof value === 'string') return value
  if (typeof value === 'number' && Number.isSafeInteger(value)) return String(value)
  throw new ApiError('INVALID_PARAMETER_VALUE', `Field '${field}' must be a string.`)
}

function collect(value: unknown, segments: string[], field: string): string[] {
  if (value === undefined || value === null) return []
  const [segment, ...rest] = segments
  if (segment === undefined) return Array.isArray(value) ? value.map((item) => scalar(item, field)) : [scalar(value, field)]
  if (typeof value !== 'object' || Array.isArray(value)) throw new ApiError('INVALID_PARAMETER_VALUE', `Field '${field}' has the wrong shape.`)
  const isList = segment.endsWith('[]')
  const inner = member(value as Record<string, unknown>, isList ? segment.slice(0, -2) : segment, field)
  if (!isList) return collect(inner, rest, field)
  if (inner === undefined || inner === null) return []
  if (!Array.isArray(inner)) throw new ApiError('INVALID_PARAMETER_VALUE', `Field '${field}' must be a list.`)
  return inner.flatMap((item) => collect(item, rest, field))
}
