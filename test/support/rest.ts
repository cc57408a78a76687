import assert from 'node:assert/strict'

import {type Credentials} from './mlflow-server.js'

export function basicAuth({password, username}: Credentials): string {
  return `Basic ${Buffer.from(`${username}:${password}`).toString('base64')}`
}

/** Parsed JSON whose shape the test asserts on (MLflow's answers, a command's --json output). */
// eslint-disable-next-line @typescript-eslint/no-explicit-any -- the assertions are the type check
export type Json = Record<string, any>

export interface RestAnswer {
  json(): Json
  status: number
  text: string
}

/**
 * MLflow's REST API as a given user, for tests: `call` returns any answer, `ok` insists on 200
 * and returns the JSON. A string body is sent raw (artifact uploads), anything else as JSON.
 * `baseUrl` is read at each call, so it may be set in a `before` hook.
 */
export function restClient(baseUrl: () => string) {
  async function call(who: Credentials, method: string, path: string, body?: unknown): Promise<RestAnswer> {
    const raw = typeof body === 'string'
    const response = await fetch(baseUrl() + path, {
      body: body === undefined ? undefined : raw ? body : JSON.stringify(body),
      headers: {authorization: basicAuth(who), 'content-type': raw ? 'application/octet-stream' : 'application/json'},
      method,
    })
    const text = await response.text()
    return {json: () => JSON.parse(text), status: response.status, text}
  }

  async function ok(who: Credentials, method: string, path: string, body?: unknown): Promise<Json> {
    const answer = await call(who, method, path, body)
    assert.equal(answer.status, 200, `${who.username} ${method} ${path}: ${answer.text}`)
    return answer.text ? answer.json() : {}
  }

  return {call, ok}
}
