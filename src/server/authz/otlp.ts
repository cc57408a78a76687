/**
 * OTLP trace ingest (`POST /v1/traces`): what its body names besides the experiment of its
 * `x-mlflow-experiment-id` header. MLflow decides on that header alone, yet writes each span into
 * the trace of its trace id wherever that trace lives (an existing trace of another experiment
 * included), stores a root span's `mlflow.traceTag.<key>` attributes as trace tags (the tags
 * that say where a trace's data lives included), and links the traces to the run of an
 * `x-mlflow-run-id` header. So serve reads the trace ids and attribute keys of every span, as
 * MLflow's handler reads them (protobuf, or OTLP JSON; gzip or deflate), for the route's special
 * check (special-checks.ts) to decide on.
 */
import {gunzipSync, inflateRawSync, inflateSync} from 'node:zlib'

import {ApiError} from '../responses.js'

/** What a decompressed body may grow to (the compressed one is capped as any body serve reads). */
const MAX_INFLATED_BYTES = 64 * 1024 * 1024
/** Each existing trace costs a lookup on the upstream: a batch naming more is refused. */
export const MAX_OTLP_TRACES = 1000

/** The spans of an OTLP export as serve checks them: MLflow's trace id of each, and its attribute keys. */
export interface OtlpSpans {
  attributeKeys: string[]
  traceIds: Set<string>
}

const refused = (message: string) => new ApiError('BAD_REQUEST', `Invalid OpenTelemetry export: ${message}`)

/** The spans of an export body, as MLflow reads it; a body it would read otherwise, or not at all, is refused (400). */
export function readOtlpExport(raw: Buffer, contentType: string | undefined, contentEncoding: string | string[] | undefined): OtlpSpans {
  const media = contentType?.split(';')[0].trim().toLowerCase()
  if (media !== 'application/x-protobuf' && media !== 'application/json') throw refused('the Content-Type must be application/x-protobuf or application/json.')
  const body = inflate(raw, contentEncoding)
  return media === 'application/json' ? readJsonExport(body) : readProtobufExport(body)
}

function inflate(raw: Buffer, contentEncoding: string | string[] | undefined): Buffer {
  if (Array.isArray(contentEncoding)) throw refused('one Content-Encoding at most.')
  const encoding = contentEncoding?.toLowerCase()
  if (!encoding) return raw
  const options = {maxOutputLength: MAX_INFLATED_BYTES}
  try {
    if (encoding === 'gzip') return gunzipSync(raw, options)
    if (encoding === 'deflate') {
      // zlib-wrapped, or the raw deflate stream some clients send, as MLflow tries both.
      try {
        return inflateSync(raw, options)
      } catch {
        return inflateRawSync(raw, options)
      }
    }
  } catch {
    throw refused(`the ${encoding} body could not be decompressed (or is larger than ${MAX_INFLATED_BYTES / 1024 / 1024} MiB decompressed).`)
  }

  throw refused(`unsupported Content-Encoding ${JSON.stringify(contentEncoding)}.`)
}

/** MLflow's id of the trace an OTLP trace id names: `tr-` and the id as a number, in hex, at least 32 digits. */
function mlflowTraceId(bytes: Uint8Array): string | undefined {
  if (bytes.length === 0) return undefined
  const hex = Buffer.from(bytes).toString('hex')
  return `tr-${BigInt(`0x${hex}`).toString(16).padStart(32, '0')}`
}

// OTLP JSON. MLflow turns the hex ids of `resourceSpans[].scopeSpans[].spans[]` into the base64
// protobuf's JSON parser reads, which also takes the snake_case names, without that conversion:
// those are refused rather than read both ways.
const SNAKE_CASE = ['resource_spans', 'scope_spans', 'trace_id', 'span_id', 'parent_span_id']

function readJsonExport(body: Buffer): OtlpSpans {
  let export_: unknown
  try {
    export_ = JSON.parse(new TextDecoder('utf-8', {fatal: true}).decode(body))
  } catch {
    throw refused('malformed JSON.')
  }

  const spans: OtlpSpans = {attributeKeys: [], traceIds: new Set()}
  for (const resourceSpans of list(object(export_, 'the body'), 'resourceSpans')) {
    for (const scopeSpans of list(object(resourceSpans, 'resourceSpans[]'), 'scopeSpans')) {
      for (const span of list(object(scopeSpans, 'scopeSpans[]'), 'spans')) {
        const fields = object(span, 'spans[]')
        const traceId = fields.traceId
        if (traceId !== undefined && traceId !== null && traceId !== '') {
          if (typeof traceId !== 'string') throw refused('a traceId must be a hex string.')
          const hex = traceId.replaceAll(/[\t\n\v\f\r ]/g, '')
          if (!/^(?:[\da-f]{2})+$/i.test(hex)) throw refused(`the traceId ${JSON.stringify(traceId)} is not hex.`)
          spans.traceIds.add(mlflowTraceId(Buffer.from(hex, 'hex'))!)
        }

        for (const attribute of list(fields, 'attributes')) {
          const key = object(attribute, 'attributes[]').key
          if (typeof key === 'string') spans.attributeKeys.push(key)
        }
      }
    }
  }

  return spans
}

function object(value: unknown, where: string): Record<string, unknown> {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) throw refused(`${where} must be an object.`)
  const snake = SNAKE_CASE.find((name) => name in value)
  if (snake) throw refused(`write ${snake} in OTLP's camelCase.`)
  return value as Record<string, unknown>
}

function list(fields: Record<string, unknown>, name: string): unknown[] {
  const value = fields[name]
  if (value === undefined || value === null) return []
  if (!Array.isArray(value)) throw refused(`${name} must be a list.`)
  return value
}

// Protobuf. Only the path to each span's trace id and attribute keys is read:
// ExportTraceServiceRequest.resource_spans (1) → ResourceSpans.scope_spans (2) → ScopeSpans.spans (2)
// → Span.trace_id (1, bytes; the last one counts) and Span.attributes (9) → KeyValue.key (1).
const LENGTH_DELIMITED = 2

function readProtobufExport(body: Buffer): OtlpSpans {
  const spans: OtlpSpans = {attributeKeys: [], traceIds: new Set()}
  for (const resourceSpans of embedded(body, 1)) {
    for (const scopeSpans of embedded(resourceSpans, 2)) {
      for (const span of embedded(scopeSpans, 2)) {
        const traceId = embedded(span, 1).at(-1)
        const id = traceId === undefined ? undefined : mlflowTraceId(traceId)
        if (id !== undefined) spans.traceIds.add(id)
        for (const attribute of embedded(span, 9)) {
          for (const key of embedded(attribute, 1)) spans.attributeKeys.push(utf8(key))
        }
      }
    }
  }

  return spans
}

/** Every value of one length-delimited field of a message, in order; the message is read whole, so a malformed one is refused. */
function embedded(message: Uint8Array, wanted: number): Uint8Array[] {
  const values: Uint8Array[] = []
  let offset = 0
  const varint = (): bigint => {
    let value = 0n
    for (let shift = 0n; shift < 70n; shift += 7n) {
      if (offset >= message.length) throw refused('truncated protobuf.')
      const byte = message[offset++]
      value |= BigInt(byte & 0x7f) << shift
      if (byte < 0x80) return value
    }

    throw refused('malformed protobuf varint.')
  }

  const skip = (bytes: number) => {
    if (offset + bytes > message.length) throw refused('truncated protobuf.')
    offset += bytes
  }

  while (offset < message.length) {
    const tag = varint()
    const field = Number(tag >> 3n)
    const wire = Number(tag & 7n)
    if (field === 0) throw refused('a protobuf field numbered 0.')
    // A field serve reads, sent with another wire type, is one protobuf would keep aside as unknown.
    if (field === wanted && wire !== LENGTH_DELIMITED) throw refused(`protobuf field ${field} with wire type ${wire}.`)
    switch (wire) {
      case 0: {
        varint()
        break
      }

      case 1: {
        skip(8)
        break
      }

      case LENGTH_DELIMITED: {
        const length = varint()
        if (length > BigInt(message.length - offset)) throw refused('truncated protobuf.')
        const start = offset
        skip(Number(length))
        if (field === wanted) values.push(message.subarray(start, offset))
        break
      }

      case 5: {
        skip(4)
        break
      }

      default: {
        throw refused(`protobuf wire type ${wire}.`)
      }
    }
  }

  return values
}

function utf8(bytes: Uint8Array): string {
  try {
    return new TextDecoder('utf-8', {fatal: true}).decode(bytes)
  } catch {
    throw refused('a span attribute key that is not UTF-8.')
  }
}
