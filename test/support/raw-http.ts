/**
 * Raw HTTP for the bypass tests: paths are sent byte for byte (fetch and URL normalise `..`,
 * `%2e`, `//`), a GET may carry a body, and answers are checked for secrets the caller did not
 * send themself.
 */
import assert from 'node:assert/strict'
import {Agent, type IncomingHttpHeaders, request as httpRequest} from 'node:http'

import {type Credentials} from './mlflow-server.js'
import {basicAuth, type Json} from './rest.js'
import {uniqueName} from './servers.js'

const agent = new Agent({keepAlive: true, maxSockets: 16})

/** Closes the kept-alive connections (call in an after hook of each file that sends). */
export function closeRawAgent(): void {
  agent.destroy()
}

export interface Answer {
  body: Buffer
  headers: IncomingHttpHeaders
  /** The JSON answer, or undefined when it is not JSON. */
  json: Json | undefined
  /** Method, path and body as sent, for messages and to tell echoed input from leaks. */
  sent: string
  status: number
  text: string
}

export interface Send {
  /** A Buffer or string is sent as it is; anything else as JSON (content-type application/json unless given). */
  body?: unknown
  /** The content-type header; null sends none (default: application/json for a JSON body). */
  contentType?: null | string
  headers?: Record<string, string>
}

/** One request, the path sent byte for byte as given. */
export function send(base: string, who: Credentials | undefined, method: string, path: string, options: Send = {}): Promise<Answer> {
  const url = new URL(base)
  let payload: Buffer | undefined
  let contentType: null | string | undefined = options.contentType
  if (Buffer.isBuffer(options.body)) payload = options.body
  else if (typeof options.body === 'string') payload = Buffer.from(options.body)
  else if (options.body !== undefined) {
    payload = Buffer.from(JSON.stringify(options.body))
    if (contentType === undefined) contentType = 'application/json'
  }

  const headers: Record<string, string> = {...options.headers}
  if (who) headers.authorization = basicAuth(who)
  if (contentType) headers['content-type'] = contentType
  if (payload) headers['content-length'] = String(payload.length)
  const sent = `${method} ${path}${payload ? ` ${payload.toString('utf8')}` : ''}`
  return new Promise((resolve, reject) => {
    const request = httpRequest({agent, headers, host: url.hostname, method, path, port: url.port}, (response) => {
      const chunks: Buffer[] = []
      response.on('data', (chunk: Buffer) => chunks.push(chunk))
      response.on('error', reject)
      response.on('end', () => {
        const body = Buffer.concat(chunks)
        const text = body.toString('utf8')
        let json: Json | undefined
        try {
          const value: unknown = JSON.parse(text)
          json = value && typeof value === 'object' ? (value as Json) : undefined
        } catch {}

        resolve({body, headers: response.headers, json, sent, status: response.statusCode!, text})
      })
    })
    request.on('error', reject)
    request.end(payload)
  })
}

export const q = (params: Record<string, string | string[]>) => {
  const search = new URLSearchParams()
  for (const [name, value] of Object.entries(params)) for (const item of Array.isArray(value) ? value : [value]) search.append(name, item)
  return search.toString()
}

export const describeAnswer = (answer: Answer) => `${answer.sent.slice(0, 300)} → ${answer.status} ${answer.text.slice(0, 400)}`

export async function ok(answer: Promise<Answer> | Answer, what: string): Promise<Json> {
  const result = await answer
  assert.equal(result.status, 200, `${what}: ${describeAnswer(result)}`)
  return result.json ?? {}
}

/** What mallory (the attacker, through `as`) makes of her own to aim requests with: an experiment, a run in it, a registered model. */
export async function malloryOwn(
  as: (method: string, path: string, options?: Send) => Promise<Answer>,
): Promise<{malloryExperimentId: string; malloryModel: string; malloryRunId: string}> {
  const malloryExperimentId = (
    await ok(as('POST', '/api/2.0/mlflow/experiments/create', {body: {name: uniqueName('mallory-experiment')}}), 'mallory creates an experiment')
  ).experiment_id as string
  const malloryRunId = (await ok(as('POST', '/api/2.0/mlflow/runs/create', {body: {experiment_id: malloryExperimentId}}), 'mallory creates a run')).run.info
    .run_id as string
  const malloryModel = uniqueName('mallory-model')
  await ok(as('POST', '/api/2.0/mlflow/registered-models/create', {body: {name: malloryModel}}), 'mallory creates a model')
  return {malloryExperimentId, malloryModel, malloryRunId}
}

/** A 4xx (exactly `status` when given) that carries none of the secrets (the owner's data) the caller did not send themself. */
export function assertNoLeak(w: {secrets: string[]}, answer: Answer, status?: number | number[]): void {
  const expected = status === undefined ? undefined : Array.isArray(status) ? status : [status]
  if (expected) assert.ok(expected.includes(answer.status), `expected ${expected.join(' or ')}: ${describeAnswer(answer)}`)
  else assert.ok(answer.status >= 400 && answer.status < 500, `expected a 4xx: ${describeAnswer(answer)}`)
  for (const secret of w.secrets) {
    if (answer.sent.includes(secret)) continue
    assert.ok(!answer.text.includes(secret), `the answer leaks ${secret}: ${describeAnswer(answer)}`)
  }
}

/** The answer carries none of the secrets (the owner's data) the caller did not send themself, whatever its status. */
export function assertNoSecrets(w: {secrets: string[]}, answer: Answer): void {
  for (const secret of w.secrets) {
    if (answer.sent.includes(secret)) continue
    assert.ok(!answer.text.includes(secret), `the answer leaks ${secret}: ${describeAnswer(answer)}`)
  }
}
