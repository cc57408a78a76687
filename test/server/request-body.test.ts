import assert from 'node:assert/strict'
import {type IncomingMessage} from 'node:http'
import {Readable} from 'node:stream'
import {describe, it} from 'node:test'

import {declaredCharset, parseJsonObject, readBody} from '../../src/server/request-body.js'
import {ApiError} from '../../src/server/responses.js'

const badRequest = (message: RegExp) => (error: unknown) => error instanceof ApiError && error.status === 400 && message.test(error.message)

describe('parseJsonObject', () => {
  it("parses a UTF-8 JSON object; empty is {}; a key given twice keeps the last, as Python's json", () => {
    assert.deepEqual(parseJsonObject(Buffer.from('{"name": "caf\u00E9 \u{1F600}"}')), {name: 'caf\u00E9 \u{1F600}'})
    assert.deepEqual(parseJsonObject(Buffer.alloc(0)), {})
    assert.deepEqual(parseJsonObject(Buffer.from('{"a": "1", "a": "2"}')), {a: '2'})
  })

  // Flask reads each of these as no body ({}) or as other text than Node's decoder would.
  for (const [what, bytes] of [
    ['an invalid byte', Buffer.concat([Buffer.from('{"run_id": "a'), Buffer.from([0xff]), Buffer.from('"}')])],
    ['a Latin-1 é', Buffer.from('{"name": "caf\u00E9"}', 'latin1')],
    ['an overlong /', Buffer.concat([Buffer.from('{"path": "a'), Buffer.from([0xc0, 0xaf]), Buffer.from('"}')])],
    ['an encoded surrogate', Buffer.concat([Buffer.from('{"name": "'), Buffer.from([0xed, 0xa0, 0x80]), Buffer.from('"}')])],
    ['a truncated sequence', Buffer.concat([Buffer.from('{"name": "'), Buffer.from([0xe2, 0x82]), Buffer.from('"}')])],
    ['UTF-16 with its byte-order mark', Buffer.concat([Buffer.from([0xff, 0xfe]), Buffer.from('{"name": "x"}', 'utf16le')])],
  ] as const) {
    it(`refuses a body with ${what}`, () => {
      assert.throws(() => parseJsonObject(bytes), badRequest(/not valid UTF-8/))
    })
  }

  it('refuses a UTF-8 byte-order mark, UTF-16 without one, and anything but an object', () => {
    assert.throws(() => parseJsonObject(Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from('{"name": "x"}')])), badRequest(/byte-order mark/))
    assert.throws(() => parseJsonObject(Buffer.from('{"name": "x"}', 'utf16le')), badRequest(/Malformed JSON/))
    assert.throws(() => parseJsonObject(Buffer.from('[1]')), badRequest(/JSON object/))
    assert.throws(() => parseJsonObject(Buffer.from('{"a": NaN}')), badRequest(/Malformed JSON/))
  })
})

describe('declaredCharset', () => {
  it('reads the charset parameter, lower case and unquoted', () => {
    assert.equal(declaredCharset(undefined), undefined)
    assert.equal(declaredCharset('application/json'), undefined)
    assert.equal(declaredCharset('application/json; charset=UTF-8'), 'utf-8')
    assert.equal(declaredCharset('application/json;CHARSET="latin1"'), 'latin1')
    assert.equal(declaredCharset('application/json; charset=utf-8; charset=latin1'), 'utf-8,latin1')
  })
})

describe('readBody', () => {
  const request = (body: string, contentType?: string) =>
    Object.assign(Readable.from([Buffer.from(body)]), {headers: contentType ? {'content-type': contentType} : {}}) as unknown as IncomingMessage

  it('reads a body declared as UTF-8 or without a charset', async () => {
    assert.equal((await readBody(request('{}', 'application/json; charset=utf-8'), 1024)).toString(), '{}')
    assert.equal((await readBody(request('{}', 'application/json;charset=UTF8'), 1024)).toString(), '{}')
    assert.equal((await readBody(request('{}', 'text/plain'), 1024)).toString(), '{}')
  })

  it('refuses a body declared in another charset, or in two', async () => {
    for (const contentType of ['application/json; charset=latin-1', 'application/json; charset=utf-16', 'application/json; charset=utf-8; charset=utf-16']) {
      await assert.rejects(readBody(request('{}', contentType), 1024), badRequest(/charset/), contentType)
    }
  })
})
