/**
 * `users demote` and `users delete` never take the last admin a server lists, also on a server
 * without a guard of its own (MLflow's basic-auth app): exit 2 LAST_ADMIN before any change. Where
 * the server cannot tell them (no users/list, no admin flags in it), the request goes to the server.
 * Against a scripted local server (real HTTP on loopback).
 */
import assert from 'node:assert/strict'
import {after, before, beforeEach, describe, it} from 'node:test'

import {ExitCode} from '../../src/core/errors.js'
import {json, scriptedServer, type TestServer} from '../support/recorder.js'
import {runCommand} from '../support/run-command.js'

describe('users demote and delete keep the last admin', () => {
  let server: TestServer
  let url: string
  let users: unknown
  let seen: string[]

  before(async () => {
    server = await scriptedServer((request, path) => {
      seen.push(`${request.method} ${path}`)
      return (_request, response) => {
        if (path === '/api/2.0/mlflow/users/list' && users !== undefined) json(response, 200, {users})
        else if (path === '/api/2.0/mlflow/users/update-admin' || path === '/api/2.0/mlflow/users/delete') json(response, 200, {})
        else json(response, 404, {error_code: 'ENDPOINT_NOT_FOUND', message: 'no such endpoint'})
      }
    })
    url = server.url
  })

  after(() => server.close())

  beforeEach(() => {
    seen = []
  })

  const env = {MLFLOW_HTTP_REQUEST_MAX_RETRIES: '0', MLFLOW_TRACKING_PASSWORD: 'root-password-1', MLFLOW_TRACKING_USERNAME: 'root'}
  const run = (args: string[]) => runCommand([...args, '--yes', '--json'], {env: {...env, MLFLOW_TRACKING_URI: url}})

  it('refuses to demote or delete the only admin listed, sending no change', async () => {
    users = [
      {id: 1, is_admin: true, username: 'root'},
      {id: 2, is_admin: false, username: 'alice'},
    ]
    for (const command of [
      ['users', 'demote', 'root'],
      ['users', 'delete', 'root'],
    ]) {
      const result = await run(command)
      assert.equal(result.code, ExitCode.Usage, result.stderr)
      const {error} = JSON.parse(result.stdout)
      assert.equal(error.code, 'LAST_ADMIN')
      assert.match(error.message, /root is the last admin/)
    }

    assert.deepEqual(seen, ['GET /api/2.0/mlflow/users/list', 'GET /api/2.0/mlflow/users/list'])
  })

  it('goes ahead with another admin listed, a non-admin target, or no list to tell from', async () => {
    users = [
      {id: 1, is_admin: true, username: 'root'},
      {id: 2, is_admin: true, username: 'alice'},
    ]
    assert.equal((await run(['users', 'demote', 'root'])).code, 0)
    users = [
      {id: 1, is_admin: true, username: 'root'},
      {id: 2, is_admin: false, username: 'alice'},
    ]
    assert.equal((await run(['users', 'delete', 'alice'])).code, 0)
    users = [{id: 1, username: 'root'}]
    assert.equal((await run(['users', 'demote', 'root'])).code, 0)
    users = undefined
    assert.equal((await run(['users', 'demote', 'root'])).code, 0)
    assert.deepEqual(
      seen.filter((request) => !request.endsWith('/users/list')),
      [
        'PATCH /api/2.0/mlflow/users/update-admin',
        'DELETE /api/2.0/mlflow/users/delete',
        'PATCH /api/2.0/mlflow/users/update-admin',
        'PATCH /api/2.0/mlflow/users/update-admin',
      ],
    )
  })
})
