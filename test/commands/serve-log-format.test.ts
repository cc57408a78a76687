/**
 * serve's log format when none is asked for: JSON lines when stderr is not a terminal (a service
 * manager, a container, a pipe to a collector), plain lines on a terminal. The JSON lines carry
 * msg, level and time, and never a password or an Authorization header.
 */
import assert from 'node:assert/strict'
import {once} from 'node:events'
import {createServer, type Server} from 'node:http'
import {after, before, describe, it} from 'node:test'

import {defaultLogFormat} from '../../src/server/logger.js'
import {basicAuth} from '../support/serve-pipeline.js'
import {startServe} from '../support/serve.js'

const WRONG_PASSWORD = 'a-wrong-password-that-must-not-be-logged'

let upstream: Server
let upstreamUrl: string

before(async () => {
  upstream = createServer((_request, response) => response.writeHead(200, {'content-type': 'application/json'}).end('{}'))
  upstream.listen(0, '127.0.0.1')
  await once(upstream, 'listening')
  upstreamUrl = `http://127.0.0.1:${(upstream.address() as {port: number}).port}`
})

after(async () => {
  upstream.closeAllConnections()
  await new Promise((resolve) => {
    upstream.close(resolve)
  })
})

/** Waits for serve's stderr to hold `text`. */
async function waitFor(output: () => string, text: string): Promise<void> {
  for (let i = 0; i < 400 && !output().includes(text); i++) await new Promise((resolve) => setTimeout(resolve, 25))
  assert.ok(output().includes(text), `no "${text}" in serve's log:\n${output()}`)
}

describe('serve: the default log format', () => {
  it('is pretty on a terminal and JSON otherwise', () => {
    assert.equal(defaultLogFormat({isTTY: true}), 'pretty')
    assert.equal(defaultLogFormat({isTTY: false}), 'json')
    assert.equal(defaultLogFormat({}), 'json')
  })

  it('without a terminal: one JSON object per line (msg, level, time), never a password or an Authorization header', async () => {
    // Two failed logins lock the address: a warning about logins, from a request path.
    const serve = await startServe({env: {MLFLOWCTL_LOG_FORMAT: undefined}, extraArgs: ['--lockout-per-address', '2'], upstream: upstreamUrl})
    const adminLogin = basicAuth(serve.admin)
    const wrongLogin = basicAuth({password: WRONG_PASSWORD, username: 'admin'})
    try {
      const used = await fetch(`${serve.url}/api/2.0/mlflow/users/current`, {headers: {authorization: adminLogin}})
      assert.equal(used.status, 200)
      await used.text()
      for (let i = 0; i < 2; i++) {
        const wrong = await fetch(`${serve.url}/api/2.0/mlflow/users/current`, {headers: {authorization: wrongLogin}})
        assert.equal(wrong.status, 401)
        await wrong.text()
      }

      await waitFor(serve.output, 'failed logins from 127.0.0.1')
    } finally {
      assert.equal(await serve.stop(), 0)
    }

    const text = serve.output()
    const lines = text.split('\n').filter(Boolean)
    const parsed = lines.map((line) => {
      assert.doesNotThrow(() => JSON.parse(line), `not a JSON line: ${line}`)
      return JSON.parse(line) as Record<string, unknown>
    })
    for (const line of parsed) {
      assert.equal(typeof line.msg, 'string', JSON.stringify(line))
      assert.ok(['info', 'warn', 'error'].includes(String(line.level)), JSON.stringify(line))
      assert.ok(!Number.isNaN(Date.parse(String(line.time))), JSON.stringify(line))
    }

    const listening = parsed.find((line) => String(line.msg).startsWith('mlflowctl serve listening on http://127.0.0.1:'))
    assert.equal(listening?.level, 'info', text)
    // The level is a field: the message has no "warning: " of its own.
    const warned = parsed.find((line) => String(line.msg).startsWith('2 failed logins from 127.0.0.1'))
    assert.equal(warned?.level, 'warn', text)
    for (const secret of [serve.admin.password, WRONG_PASSWORD, adminLogin.slice('Basic '.length), wrongLogin.slice('Basic '.length)])
      assert.ok(!text.includes(secret), `serve's log holds a secret: ${text}`)
  })
})
