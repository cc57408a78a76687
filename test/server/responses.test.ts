/** errorAnswer: the one mapping from whatever a request's handling throws to serve's answer and log line. */
import assert from 'node:assert/strict'
import {describe, it} from 'node:test'

import {UpstreamError} from '../../src/server/proxy.js'
import {ApiError, errorAnswer, PlainError} from '../../src/server/responses.js'
import {StoreError, StoreFileError, StoreUnavailableError} from '../../src/server/store/store.js'

describe('errorAnswer', () => {
  it("answers the caller's mistakes and refusals as MLflow does, and logs nothing for them", () => {
    assert.deepEqual(errorAnswer(new ApiError('RESOURCE_DOES_NOT_EXIST', 'gone')), {
      body: {error_class: 'RESOURCE_NOT_FOUND', error_code: 'RESOURCE_DOES_NOT_EXIST', message: 'gone', sqlstate: 'KAM00'},
      status: 404,
    })
    assert.deepEqual(errorAnswer(new PlainError(403, 'Permission denied')), {body: 'Permission denied', status: 403})
    assert.deepEqual(errorAnswer(new StoreError('RESOURCE_ALREADY_EXISTS', 'taken')), {
      body: {error_class: 'RESOURCE_ALREADY_EXISTS', error_code: 'RESOURCE_ALREADY_EXISTS', message: 'taken', sqlstate: 'KAM00'},
      status: 400,
    })
  })

  it("adds MLflow 3.17's error_class and sqlstate for each code, and neither for a code MLflow classifies not", () => {
    const classified = (code: string) => {
      const {body} = errorAnswer(new ApiError(code, 'x'))
      return typeof body === 'string' ? body : [body.error_class, body.sqlstate]
    }

    assert.deepEqual(classified('INVALID_PARAMETER_VALUE'), ['INVALID_PARAMETER_VALUE', 'KAM00'])
    assert.deepEqual(classified('BAD_REQUEST'), ['INVALID_PARAMETER_VALUE', 'KAM00'])
    assert.deepEqual(classified('PERMISSION_DENIED'), ['PERMISSION_DENIED', 'KAM00'])
    assert.deepEqual(classified('ENDPOINT_NOT_FOUND'), ['RESOURCE_NOT_FOUND', 'KAM00'])
    assert.deepEqual(classified('TEMPORARILY_UNAVAILABLE'), ['CLIENT_INTERNAL_ERROR', 'XXM00'])
    assert.deepEqual(classified('DEADLINE_EXCEEDED'), [undefined, undefined])
  })

  it("answers upstream failures with their 502/503/504 and MLflow's code for each, and logs them", () => {
    for (const [status, code] of [
      [502, 'TEMPORARILY_UNAVAILABLE'],
      [503, 'TEMPORARILY_UNAVAILABLE'],
      [504, 'DEADLINE_EXCEEDED'],
    ] as const) {
      assert.deepEqual(errorAnswer(new UpstreamError(`failed ${status}`, status)), {
        body: {error_code: code, message: `failed ${status}`},
        log: `failed ${status}`,
        status,
      })
    }
  })

  it('answers a store that cannot be written 503 without naming its file, and logs why', () => {
    const answer = errorAnswer(
      new StoreFileError('/srv/auth.json', 'Cannot lock the auth store /srv/auth.json: busy. Nothing was changed.', {problem: 'locked'}),
    )
    assert.equal(answer.status, 503)
    assert.deepEqual(answer.body, {
      error_code: 'TEMPORARILY_UNAVAILABLE',
      message: 'The auth store of mlflowctl serve cannot be written right now; nothing was changed. Its log says why.',
    })
    assert.equal(answer.log, 'Cannot lock the auth store /srv/auth.json: busy. Nothing was changed.')
  })

  it('answers a store whose database is out of reach 503, and logs why', () => {
    assert.deepEqual(errorAnswer(new StoreUnavailableError('the database at db.internal does not answer')), {
      body: {
        error_code: 'TEMPORARILY_UNAVAILABLE',
        message: 'The auth store of mlflowctl serve cannot take changes right now; this one was not made. Its log says why.',
      },
      log: 'the database at db.internal does not answer',
      status: 503,
    })
  })

  it('answers anything else 500 with a fixed message, and logs it as a bug', () => {
    for (const error of [new TypeError('x is not a function'), 'a thrown string', undefined]) {
      const answer = errorAnswer(error)
      assert.equal(answer.status, 500)
      assert.deepEqual(answer.body, {error_code: 'INTERNAL_ERROR', message: 'Internal error in mlflowctl serve.'})
      assert.match(answer.log ?? '', /a bug in mlflowctl serve/)
    }

    assert.equal(errorAnswer(new TypeError('x is not a function')).log, 'x is not a function (a bug in mlflowctl serve)')
  })
})
