/** Reading a request body serve must see whole (JSON to decide on, forms), with a size cap. */
import {type IncomingMessage} from 'node:http'

import {ApiError} from './responses.js'

export async function readBody(request: IncomingMessage, maxBytes: number): Promise<Buffer> {
  const chunks: Buffer[] = []
  let size = 0
  for await (const chunk of request) {
    size += (chunk as Buffer).length
    if (size > maxBytes) throw new ApiError('INVALID_PARAMETER_VALUE', `The request body is larger than ${maxBytes / 1024 / 1024} MiB.`)
    chunks.push(chunk as Buffer)
  }

  return Buffer.concat(chunks)
}

/** A JSON object body, as MLflow's handlers parse it: empty is `{}`; anything but an object is refused. */
export function parseJsonObject(raw: Buffer): Record<string, unknown> {
  if (raw.length === 0) return {}
  let value: unknown
  try {
    value = JSON.parse(raw.toString('utf8'))
  } catch {
    throw new ApiError('BAD_REQUEST', 'Malformed JSON in the request body.')
  }

  if (value === null || typeof value !== 'object' || Array.isArray(value)) throw new ApiError('BAD_REQUEST', 'The request body must be a JSON object.')
  return value as Record<string, unknown>
}
