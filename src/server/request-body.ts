/** Reading a request body serve must see whole (JSON to decide on, forms), with a size cap. */
import {type IncomingMessage} from 'node:http'

import {ApiError} from './responses.js'

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
    values.push(parameter.slice(equals + 1).trim().replace(/^"(.*)"$/, '$1').toLowerCase())
  }

  // Two charsets: whichever a reader picks, another may pick the other one.
  if (values.length > 1) return values.join(',')
  return values[0]
}

const UTF8 = new TextDecoder('utf-8', {fatal: true, ignoreBOM: true})

/**
 * A JSON object body, as MLflow's handlers parse it: empty is `{}`; anything but an object is
 * refused. Bytes Python's json reads differently are refused too: Flask reads a body that is not
 * valid UTF-8 as no body at all (`{}`), and a byte-order mark, or a UTF-16/32 body, as text
 * Node's decoder does not see.
 */
export function parseJsonObject(raw: Buffer): Record<string, unknown> {
  if (raw.length === 0) return {}
  if (raw[0] === 0xEF && raw[1] === 0xBB && raw[2] === 0xBF) throw new ApiError('BAD_REQUEST', 'Refused a JSON body that starts with a byte-order mark.')
  let text: string
  try {
    text = UTF8.decode(raw)
  } catch {
    throw new ApiError('BAD_REQUEST', 'Refused a JSON body that is not valid UTF-8.')
  }

  let value: unknown
  try {
    value = JSON.parse(text)
  } catch {
    throw new ApiError('BAD_REQUEST', 'Malformed JSON in the request body.')
  }

  if (value === null || typeof value !== 'object' || Array.isArray(value)) throw new ApiError('BAD_REQUEST', 'The request body must be a JSON object.')
  return value as Record<string, unknown>
}
