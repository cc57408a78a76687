/** Assertions the tests share. */
import assert from 'node:assert/strict'

import {UserError} from '../../src/core/errors.js'

/** Asserts that `body` throws (or rejects with) a UserError with this code whose message matches. */
export async function assertUserError(body: () => unknown, code: string, message?: RegExp): Promise<void> {
  await assert.rejects(
    async () => body(),
    (error: unknown) => {
      assert.ok(error instanceof UserError, `expected a UserError, got ${String(error)}`)
      assert.equal(error.code, code)
      if (message) assert.match(error.message, message)
      return true
    },
  )
}
