/**
 * The break-glass store commands' logic on a JSON file store: a service account keeps having no
 * password (as serve's API refuses to give it one), and the refusal changes nothing.
 */
import assert from 'node:assert/strict'
import {mkdtemp, readFile} from 'node:fs/promises'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {test} from 'node:test'

import {UserError} from '../../src/core/errors.js'
import {MLFLOW_PASSWORD_POLICY} from '../../src/mlflow/password-policy.js'
import {resetPassword} from '../../src/server/store/break-glass.js'
import {JsonFileStore} from '../../src/server/store/json-store.js'

test('store reset-password refuses a service account and leaves the store as it was', async () => {
  const location = join(await mkdtemp(join(tmpdir(), 'mlflowctl-break-glass-')), 'auth.json')
  const store = await JsonFileStore.open(location, {watch: false})
  await store.createUser({isAdmin: true, passwordHash: 'scrypt:32768:8:1$salt$00', username: 'admin'})
  await store.createUser({isAdmin: false, passwordHash: '', username: 'ci-bot'})
  await store.close()
  const before = await readFile(location, 'utf8')

  await assert.rejects(
    resetPassword({location, password: 'a-long-new-password', policy: MLFLOW_PASSWORD_POLICY, username: 'ci-bot'}),
    (error: unknown) => error instanceof UserError && /service account/.test(error.message),
  )
  assert.equal(await readFile(location, 'utf8'), before)
  const after = await JsonFileStore.open(location, {watch: false})
  assert.equal(after.getUser('ci-bot')?.passwordHash, '')
  await after.close()
})
