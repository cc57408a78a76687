/**
 * Reading a request body serve must see whole (JSON to decide on, the auth API's, forms), with a
 * size cap, by the route's body policy (route-rule.ts).
 */
import {type IncomingMessage} from 'node:http'

import {type BodyPolicy} from './authz/route-rule.js'
import {ApiError} from './responses.js'

const MIB = 1024 * 1024

/** What a policy reads at most: bodies serve decides on can be large (a batch of metrics); the auth API's and forms cannot. */
const MAX_BYTES: Record<Exclude<BodyPolicy, 'stream'>, number> = {'auth-json': MIB, form: MIB, json: 64 * MIB, raw: 64 * MIB}

export interface RequestBody {
  /** The media type, lower case, without parameters. */
  contentType: string | undefined
  /** `form`: the fields of a url-encoded body (none for another type). */
  form?: URLSearchParams
  /** `json`: always (`{}` for no body); `auth-json`: only for a JSON media type. */
  json?: Record<string, unknown>
  /** The bytes read, to forward unchanged; undefined for `stream`. */
  raw?: Buffer
}

/** The request's media type, lower case, without parameters. */
export function mediaType(request: IncomingMessage): string | undefined {
  return request.headers['content-type']?.split(';')[0].trim().toLowerCase() || undefined
}

/** Flask's `request.is_json`: `application/json`, or any `application/*+json`. */
export function isJsonMediaType(contentType: string | undefined): boolean {
  return contentType === 'application/json' || (contentType?.startsWith('application/') === true && contentType.endsWith('+json'))
}

/** Reads (or, for `stream`, leaves alone) the body as the route's policy says. */
export async function readRequestBody(request: IncomingMessage, policy: BodyPolicy): Promise<RequestBody> {
  const contentType = mediaType(request)
  switch (policy) {
    case 'stream': {
      return {contentType}
    }

    case 'json': {
      const raw = await readBody(request, MAX_BYTES.json)
      return {contentType, json: parseJsonObject(raw), raw}
    }

    case 'raw': {
      return {contentType, raw: await readBody(request, MAX_BYTES.raw)}
    }

    case 'auth-json': {
      // As MLflow's auth handlers read it (Flask's get_json(silent=True), anything but an object
      // taken as `{}`): a body of another type is no body, and a JSON-typed one that is empty,
      // malformed or not an object has no fields, so DELETE does not fall back to the query.
      const raw = await readBody(request, MAX_BYTES['auth-json'])
      return {contentType, json: isJsonMediaType(contentType) ? parseLenientJsonObject(raw) : undefined, raw}
    }

    case 'form': {
      const raw = contentType === 'application/x-www-form-urlencoded' ? await readBody(request, MAX_BYTES.form) : Buffer.alloc(0)
      return {contentType, form: new URLSearchParams(raw.toString('utf8')), raw}
    }
  }
}

/**
 * The body, whole. serve reads every body it inspects as UTF-8; one declared in another charset
 * could be read otherwise by the upstream (or by anything between), so it is refused.
 */
export async function readBody(request: IncomingMessage, maxBytes: number): Promise<Buffer> {
  const chunks: Buffer[] = []
  let size = 0
  for await (const chunk of request) {
    size += (chunk as Buffer).length
    if (size > maxBytes) throw new ApiError('INVALID_PARAMETER_VALUE', `The request body is larger than ${maxBytes / 1024 / 1024} MiB.`)
    chunks.push(chunk as Buffer)
  }

  const charset = size > 0 ? declaredCharset(request.headers['content-type']) : undefined
  if (charset !== undefined && charset !== 'utf-8' && charset !== 'utf8') {
    throw new ApiError('BAD_REQUEST', `Refused a request body declared as charset=${charset}: send it as UTF-8.`)
  }

  return Buffer.concat(chunks)
}

/** The charset parameter of a Content-Type, lower case and unquoted, if there is one. */
export function declaredCharset(contentType: string | undefined): string | undefined {
  if (contentType === undefined) return undefined
  const values: string[] = []
  for (const parameter of contentType.split(';').slice(1)) {
    const equals = parameter.indexOf('=')
    if (equals === -1 || parameter.slice(0, equals).trim().toLowerCase() !== 'charset') continue
    values.push(
      parameter
        .slice(equals + 1)
        .trim()
        .replace(/^"(.*)"$/, '$1')
        .toLowerCase(),
    )
  }

  // Two charsets: whichever a reader picks, another may pick the other one.
  if (values.length > 1) return values.join(',')
  return values[0]
}

const UTF8 = new TextDecoder('utf-8', {fatal: true, ignoreBOM: true})

/**
 * A JSON object body, as MLflow's handlers parse it: empty is `{}`; anything but an object is
 * refused. Bytes Python's json reads differently are refused too (see jsonText).
 */
export function parseJsonObject(raw: Buffer): Record<string, unknown> {
  if (raw.length === 0) return {}
  let value: unknown
  try {
    value = JSON.parse(jsonText(raw))
  } catch (error) {
    if (error instanceof ApiError) throw error
    throw new ApiError('BAD_REQUEST', 'Malformed JSON in the request body.')
  }

  if (!isObject(value)) throw new ApiError('BAD_REQUEST', 'The request body must be a JSON object.')
  return value
}

/**
 * A JSON body as MLflow's auth handlers take it (Flask's `get_json(silent=True)`, then `{}` for
 * anything but an object): empty, malformed and non-object bodies have no fields, which the
 * handlers then refuse as missing. Bytes serve reads otherwise than Python are still refused.
 */
function parseLenientJsonObject(raw: Buffer): Record<string, unknown> {
  if (raw.length === 0) return {}
  const text = jsonText(raw)
  try {
    const value: unknown = JSON.parse(text)
    return isObject(value) ? value : {}
  } catch {
    return {}
  }
}

/**
 * The text of a JSON body. Flask reads a body that is not valid UTF-8 as no body at all, and a
 * byte-order mark, or a UTF-16/32 body, as text Node's decoder does not see: refused.
 */
function jsonText(raw: Buffer): string {
  if (raw[0] === 0xef && raw[1] === 0xbb && raw[2] === 0xbf) throw new ApiError('BAD_REQUEST', 'Refused a JSON body that starts with a byte-order mark.')
  try {
    return UTF8.decode(raw)
  } catch {
    throw new ApiError('BAD_REQUEST', 'Refused a JSON body that is not valid UTF-8.')
  }
}

function isObject(value: unknown): value is Record<string, unknown> {
  return value !== null && typeof value === 'object' && !Array.isArray(value)
}
