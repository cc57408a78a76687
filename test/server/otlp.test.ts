import assert from 'node:assert/strict'
import {describe, it} from 'node:test'
import {deflateRawSync, deflateSync, gzipSync} from 'node:zlib'

import {readOtlpExport} from '../../src/server/authz/otlp.js'
import {ApiError} from '../../src/server/responses.js'
import {message} from '../support/protobuf.js'

const PROTOBUF = 'application/x-protobuf'

const field = message
/** An export of one resource, one scope, these spans (each already encoded). */
const exportOf = (...spans: Buffer[]) => field(1, field(2, Buffer.concat(spans.map((span) => field(2, span)))))
const attribute = (key: string) => field(9, field(1, Buffer.from(key)))

const ID = '0123456789abcdef0123456789abcdef'
const refused = (error: unknown) => error instanceof ApiError && error.status === 400

describe('readOtlpExport', () => {
  it("reads every span's trace id as MLflow names it, and its attribute keys (protobuf)", () => {
    const spans = readOtlpExport(
      exportOf(
        Buffer.concat([field(1, Buffer.from(ID, 'hex')), field(5, Buffer.from('root')), attribute('mlflow.traceTag.team')]),
        field(1, Buffer.from('01', 'hex')),
      ),
      PROTOBUF,
      undefined,
    )
    assert.deepEqual([...spans.traceIds], [`tr-${ID}`, `tr-${'0'.repeat(31)}1`])
    assert.deepEqual(spans.attributeKeys, ['mlflow.traceTag.team'])
  })

  it('takes the last trace id of a span, as protobuf does, and skips a span without one (MLflow refuses it)', () => {
    const other = 'ff'.repeat(16)
    const spans = readOtlpExport(
      exportOf(Buffer.concat([field(1, Buffer.from(ID, 'hex')), field(1, Buffer.from(other, 'hex'))]), field(5, Buffer.from('x'))),
      PROTOBUF,
      undefined,
    )
    assert.deepEqual([...spans.traceIds], [`tr-${other}`])
  })

  it('reads OTLP JSON (hex ids), gzip and deflate (zlib or raw) bodies', () => {
    const json = JSON.stringify({resourceSpans: [{scopeSpans: [{spans: [{attributes: [{key: 'k', value: {stringValue: 'v'}}], spanId: 'aa', traceId: ID}]}]}]})
    assert.deepEqual([...readOtlpExport(Buffer.from(json), 'application/json; charset=utf-8', undefined).traceIds], [`tr-${ID}`])
    const body = exportOf(field(1, Buffer.from(ID, 'hex')))
    for (const [encoding, compressed] of [
      ['gzip', gzipSync(body)],
      ['deflate', deflateSync(body)],
      ['DEFLATE', deflateRawSync(body)],
    ] as const) {
      assert.deepEqual([...readOtlpExport(compressed, PROTOBUF, encoding).traceIds], [`tr-${ID}`], encoding)
    }
  })

  it('refuses (400) what MLflow reads otherwise or not at all', () => {
    const body = exportOf(field(1, Buffer.from(ID, 'hex')))
    assert.throws(() => readOtlpExport(body, 'text/plain', undefined), refused)
    assert.throws(() => readOtlpExport(body, undefined, undefined), refused)
    assert.throws(() => readOtlpExport(body, PROTOBUF, 'br'), refused)
    assert.throws(() => readOtlpExport(body, PROTOBUF, 'gzip'), refused)
    // Truncated, a field serve reads with another wire type, a group.
    assert.throws(() => readOtlpExport(body.subarray(0, body.length - 1), PROTOBUF, undefined), refused)
    assert.throws(() => readOtlpExport(Buffer.from([0x08, 0x01]), PROTOBUF, undefined), refused)
    assert.throws(() => readOtlpExport(Buffer.from([0x0b]), PROTOBUF, undefined), refused)
    // JSON: snake_case names (which MLflow reads as base64 ids), ids that are not hex, not objects.
    const snake = {resource_spans: [{scopeSpans: [{spans: [{traceId: ID}]}]}]}
    assert.throws(() => readOtlpExport(Buffer.from(JSON.stringify(snake)), 'application/json', undefined), refused)
    const snakeId = {resourceSpans: [{scopeSpans: [{spans: [{trace_id: 'ASNFZ4mrze8BI0VniavN7w=='}]}]}]}
    assert.throws(() => readOtlpExport(Buffer.from(JSON.stringify(snakeId)), 'application/json', undefined), refused)
    const notHex = {resourceSpans: [{scopeSpans: [{spans: [{traceId: 'xyz'}]}]}]}
    assert.throws(() => readOtlpExport(Buffer.from(JSON.stringify(notHex)), 'application/json', undefined), refused)
    assert.throws(() => readOtlpExport(Buffer.from('[]'), 'application/json', undefined), refused)
    assert.throws(() => readOtlpExport(Buffer.from('{'), 'application/json', undefined), refused)
  })
})
