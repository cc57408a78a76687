/**
 * `store create-admin` and `store reset-password` refuse what their write would refuse before
 * anything is asked (no confirmation, no password typed in vain), and the refusal changes nothing.
 * On a JSON file store, without a terminal and without --yes: a check that came after the
 * confirmation would end in CONFIRMATION_REQUIRED instead.
 */
import assert from 'node:assert/strict'
import {mkdtemp, readFile} from 'node:fs/promises'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {before, describe, it} from 'node:test'

import {runCommand} from '../support/run-command.js'
import {ExitCode} from '../../src/core/errors.js'
import {JsonFileStore} from '../../src/server/store/json-store.js'

describe('store create-admin and reset-password refuse before asking', () => {
  let location: string
  let content: string

  before(async () => {
    location = join(await mkdtemp(join(tmpdir(), 'mlflowctl-break-glass-cli-')), 'auth.json')
    const store = await JsonFileStore.open(location, {watch: false})
    await store.createUser({isAdmin: true, passwordHash: 'scrypt:32768:8:1$salt$00', username: 'admin'})
    await store.createUser({isAdmin: false, passwordHash: '', username: 'ci-bot'})
    await store.close()
    content = await readFile(location, 'utf8')
  })

  const refused = async (args: string[], exit: number, message: RegExp) => {
    const result = await runCommand(['store', ...args, '--store', location])
    assert.equal(result.code, exit, result.stderr)
    assert.match(result.stderr, message)
    assert.doesNotMatch(result.stderr, /confirmation/i)
    assert.equal(await readFile(location, 'utf8'), content)
  }

  it('reset-password of a service account', () => refused(['reset-password', 'ci-bot'], ExitCode.Usage, /ci-bot is a service account/))

  it('reset-password of a user the store does not hold', () => refused(['reset-password', 'nobody'], ExitCode.NotFound, /username=nobody not found/))

  it('create-admin of a user the store holds', () => refused(['create-admin', 'admin'], ExitCode.AlreadyExists, /username=admin\) already exists/))
})
