/**
 * `users export` against a scripted server whose users/list leaves is_admin out (as some do): each
 * user is asked with users/get, a few at a time rather than all at once.
 */
import assert from 'node:assert/strict'
import {createServer} from 'node:http'
import {test} from 'node:test'

import {DEFAULT_CONCURRENCY} from '../../src/policy/apply.js'
import {runCommand} from '../support/run-command.js'

test('users export: users/get for each user without is_admin, at most 8 in flight; CSV sorted by name', async () => {
  const names = Array.from({length: 40}, (_, n) => `user-${String(39 - n).padStart(2, '0')}`)
  let inFlight = 0
  let most = 0
  const server = createServer((request, response) => {
    const url = new URL(request.url!, 'http://x')
    const send = (body: unknown) => response.writeHead(200, {'content-type': 'application/json'}).end(JSON.stringify(body))
    if (url.pathname === '/api/2.0/mlflow/users/list') return send({users: names.map((username, id) => ({id, username}))})
    if (url.pathname !== '/api/2.0/mlflow/users/get') return response.writeHead(404).end()
    inFlight++
    most = Math.max(most, inFlight)
    const username = url.searchParams.get('username')!
    setTimeout(() => {
      inFlight--
      send({user: {id: names.indexOf(username), is_admin: username.endsWith('7'), username}})
    }, 20)
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  try {
    const url = `http://127.0.0.1:${(server.address() as {port: number}).port}`
    const result = await runCommand(['users', 'export'], {
      env: {MLFLOW_TRACKING_PASSWORD: 'pw', MLFLOW_TRACKING_URI: url, MLFLOW_TRACKING_USERNAME: 'admin'},
    })
    assert.equal(result.code, 0, result.stderr)
    const lines = result.stdout.trimEnd().split('\n')
    assert.equal(lines.length, 41)
    assert.deepEqual(lines.slice(0, 3), ['username,admin', 'user-00,false', 'user-01,false'])
    assert.ok(lines.includes('user-17,true') && lines.includes('user-18,false'))
    assert.ok(most > 1 && most <= DEFAULT_CONCURRENCY, `${most} users/get in flight at once`)
  } finally {
    server.close()
  }
})
