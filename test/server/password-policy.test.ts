/**
 * The password policy: the rule itself (length as Python counts it, the username, a list of
 * refused passwords compared case-insensitively), its settings (never below MLflow's 12), and
 * serve applying it to users/create, users/update-password and the /signup form, with errors that
 * name the rule and never echo the password. Also serve's refusal to demote its last admin.
 */
import assert from 'node:assert/strict'
import {mkdtemp, writeFile} from 'node:fs/promises'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {after, before, describe, test} from 'node:test'

import {UserError} from '../../src/core/errors.js'
import {loadPasswordPolicy, parseRefusedPasswords, passwordProblem} from '../../src/mlflow/password-policy.js'
import {call, parseJson, type Pipeline, type PipelineAnswer, startPipeline} from '../support/serve-pipeline.js'

const REFUSED = '# leaked in 2024\nCorrectHorseBatteryStaple\n\n  hunter2hunter2hunter2  \n#a comment too\n'

describe('the password policy', () => {
  test('length as Python counts it, the username, refused passwords case-insensitively', async () => {
    const policy = {minLength: 14, refused: parseRefusedPasswords(REFUSED)}
    assert.deepEqual([...policy.refused].sort(), ['correcthorsebatterystaple', 'hunter2hunter2hunter2'])
    assert.equal(passwordProblem(policy, 'thirteen-char'), 'Password must be at least 14 characters.')
    // 14 characters, one of them outside the BMP (two UTF-16 units): long enough.
    assert.equal(passwordProblem(policy, 'thirteen-char😀'), undefined)
    assert.equal(
      passwordProblem(policy, 'HUNTER2hunter2Hunter2'),
      'Password is on the list of refused passwords (too common or known to be leaked); choose another.',
    )
    assert.equal(passwordProblem(policy, 'correcthorsebatterystaple', 'bob'), passwordProblem(policy, 'hunter2hunter2hunter2'))
    assert.equal(passwordProblem(policy, 'Alice-The-Admin', 'alice-the-admin'), 'Password must not be the username.')
    assert.equal(passwordProblem(policy, 'alice-the-admin-2', 'alice-the-admin'), undefined)
  })

  test('settings: never below 12, a list that cannot be read is an error', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'mlflowctl-policy-'))
    const file = join(dir, 'refused.txt')
    await writeFile(file, REFUSED)
    assert.deepEqual(await loadPasswordPolicy({}), {minLength: 12, refused: new Set()})
    const loaded = await loadPasswordPolicy({minLength: 16, refusedFile: file})
    assert.equal(loaded.minLength, 16)
    assert.ok(loaded.refused.has('hunter2hunter2hunter2'))
    for (const minLength of [11, 0, 2000])
      await assert.rejects(
        loadPasswordPolicy({minLength}),
        (error: unknown) => error instanceof UserError && error.exit === 2 && /between 12 and 1024/.test(error.message),
      )
    await assert.rejects(loadPasswordPolicy({refusedFile: join(dir, 'missing.txt')}), (error: unknown) => error instanceof UserError && error.exit === 2)
  })
})

describe('serve applies the policy, and keeps its last admin', () => {
  let pipeline: Pipeline
  const alice = {password: 'alice-first-password', username: 'alice'}
  before(async () => {
    const dir = await mkdtemp(join(tmpdir(), 'mlflowctl-policy-'))
    const refusedPasswordsFile = join(dir, 'refused.txt')
    await writeFile(refusedPasswordsFile, REFUSED)
    pipeline = await startPipeline({serve: {passwordMinLength: 16, refusedPasswordsFile}})
    await pipeline.createUser(alice)
  })
  after(async () => {
    await pipeline?.close()
  })

  const refused = (answer: PipelineAnswer, message: RegExp, password: string) => {
    assert.equal(answer.status, 400, answer.body)
    assert.equal(parseJson(answer).error_code, 'INVALID_PARAMETER_VALUE')
    assert.match(String(parseJson(answer).message), message)
    assert.ok(!answer.body.includes(password), 'the password is not echoed')
  }

  test('users/create: too short, refused, the username; a good one is taken', async () => {
    const create = (username: string, password: string) =>
      call(pipeline.url, 'POST', '/api/2.0/mlflow/users/create', {body: {password, username}, credentials: pipeline.admin})
    refused(await create('bob', 'fifteen-chars-1'), /at least 16 characters/, 'fifteen-chars-1')
    refused(await create('bob', 'CorrectHorseBatteryStaple'), /list of refused passwords/, 'CorrectHorseBatteryStaple')
    refused(await create('bob-the-builder-x', 'BOB-the-builder-x'), /must not be the username/, 'BOB-the-builder-x')
    assert.equal((await create('bob', 'bob-has-a-good-password')).status, 200)
  })

  test('users/update-password, by an admin and by the user', async () => {
    const update = (who: {password: string; username: string}, body: Record<string, unknown>) =>
      call(pipeline.url, 'PATCH', '/api/2.0/mlflow/users/update-password', {body: {username: 'alice', ...body}, credentials: who})
    refused(await update(pipeline.admin, {password: 'Hunter2Hunter2hunter2'}), /list of refused passwords/, 'Hunter2Hunter2hunter2')
    refused(await update(alice, {current_password: alice.password, password: 'short-but-12'}), /at least 16 characters/, 'short-but-12')
    assert.equal((await update(alice, {current_password: alice.password, password: 'alice-second-password'})).status, 200)
  })

  test('the /signup form', async () => {
    const page = await call(pipeline.url, 'GET', '/signup', {credentials: pipeline.admin})
    assert.match(page.body, /name="password"[^>]* minlength="16"/, 'the form states the minimum')
    const token = /name="csrf_token" value="([^"]+)"/.exec(page.body)![1]
    const cookie = String(page.headers['set-cookie']).split(';')[0]
    const submit = (username: string, password: string) =>
      call(pipeline.url, 'POST', '/api/2.0/mlflow/users/create-ui', {
        body: new URLSearchParams({csrf_token: token, password, username}).toString(),
        credentials: pipeline.admin,
        headers: {cookie, 'content-type': 'application/x-www-form-urlencoded'},
      })
    const answer = await submit('carol', 'correcthorsebatterystaple')
    assert.notEqual(answer.status, 200)
    assert.match(answer.body, /list of refused passwords/)
    assert.ok(!answer.body.includes('correcthorsebatterystaple'))
    assert.equal((await submit('carol', 'carol-has-a-good-password')).status, 200)
  })

  test('the last admin cannot demote themself (400); with a second admin, they can', async () => {
    const demote = (who: {password: string; username: string}, username: string) =>
      call(pipeline.url, 'PATCH', '/api/2.0/mlflow/users/update-admin', {body: {is_admin: false, username}, credentials: who})
    const answer = await demote(pipeline.admin, 'admin')
    assert.equal(answer.status, 400, answer.body)
    assert.equal(parseJson(answer).error_code, 'INVALID_PARAMETER_VALUE')
    assert.match(String(parseJson(answer).message), /admin is the last admin/)
    const promote = await call(pipeline.url, 'PATCH', '/api/2.0/mlflow/users/update-admin', {
      body: {is_admin: true, username: 'bob'},
      credentials: pipeline.admin,
    })
    assert.equal(promote.status, 200, promote.body)
    assert.equal((await demote(pipeline.admin, 'admin')).status, 200)
    const bob = {password: 'bob-has-a-good-password', username: 'bob'}
    assert.equal((await demote(bob, 'bob')).status, 400)
  })
})
