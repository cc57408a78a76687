/**
 * Access as code at size: a policy of 200 users, 20 roles and 2,000 grants applied to serve (in
 * front of a stub upstream: serve's auth API asks the upstream nothing for these grants, which are
 * on gateway endpoints by id and need no name lookup). Reports the plan time on the empty server,
 * the apply time, and the plan time once the server matches. Each through the built CLI, as a
 * user runs it (Node's start-up included). Not a test: nothing passes or fails on a figure.
 *   BENCH_JSON: where to write the figures for test/bench/run.ts
 */
import {spawn} from 'node:child_process'
import {mkdtemp, writeFile} from 'node:fs/promises'
import {tmpdir} from 'node:os'
import {join} from 'node:path'

import {CLI, cliEnv} from '../support/cli.js'
import {type Json} from '../support/rest.js'
import {startServe} from '../support/serve.js'
import {startStubUpstream} from '../support/stub-upstream.js'

const USERS = 200
const ROLES = 20
const GRANTS_PER_USER = 10
const LEVELS = ['READ', 'USE', 'EDIT', 'MANAGE']

function policyText(): string {
  const name = (n: number) => `user-${String(n).padStart(3, '0')}`
  const users = Array.from({length: USERS}, (_, n) => {
    const grants = Array.from({length: GRANTS_PER_USER}, (_, g) => `      - {gateway-endpoint: ge-${n * GRANTS_PER_USER + g}, permission: ${LEVELS[g % 4]}}\n`)
    return `  - name: ${name(n)}\n    password: {generate: true}\n    grants:\n${grants.join('')}`
  })
  const roles = Array.from({length: ROLES}, (_, r) => {
    const members = Array.from({length: USERS / ROLES}, (_, m) => name(r * (USERS / ROLES) + m))
    return `  - name: role-${r}\n    grants:\n      - {experiment: "*", permission: READ}\n      - {gateway-endpoint: shared-${r}, permission: USE}\n    members: [${members.join(', ')}]\n`
  })
  return `version: 1\nusers:\n${users.join('')}roles:\n${roles.join('')}`
}

/** The built CLI in its own process; its --json document (a few MB for this policy: no buffer limit). */
async function run(args: string[], env: NodeJS.ProcessEnv): Promise<Json> {
  const child = spawn(process.execPath, [CLI, ...args], {
    env: cliEnv(await mkdtemp(join(tmpdir(), 'mlflowctl-home-')), env),
    stdio: ['ignore', 'pipe', 'inherit'],
  })
  const chunks: Buffer[] = []
  child.stdout.on('data', (chunk: Buffer) => chunks.push(chunk))
  const code = await new Promise<null | number>((resolve) => child.once('exit', resolve))
  if (code !== 0) throw new Error(`mlflowctl ${args[0]} exited ${code}`)
  return JSON.parse(Buffer.concat(chunks).toString('utf8')) as Json
}

const upstream = await startStubUpstream()
const serve = await startServe({upstream: upstream.url})
const figures: Array<{label: string; value: string}> = []
try {
  const file = join(await mkdtemp(join(tmpdir(), 'mlflowctl-bench-policy-')), 'access.yaml')
  await writeFile(file, policyText())
  const env = {MLFLOW_TRACKING_PASSWORD: serve.admin.password, MLFLOW_TRACKING_URI: serve.url, MLFLOW_TRACKING_USERNAME: serve.admin.username}
  const timed = async (label: string, args: string[]) => {
    const began = performance.now()
    const json = await run(args, env)
    const seconds = (performance.now() - began) / 1000
    figures.push({label, value: `${seconds.toFixed(2)} s`})
    console.error(`policy: ${label}: ${seconds.toFixed(2)} s`)
    return json
  }

  const first = await timed('plan, empty server', ['plan', '-f', file, '--json'])
  const applied = await timed(`apply (${first.changes.length} changes, 8 at a time)`, ['apply', '-f', file, '--yes', '--json'])
  if (applied.not_applied.length > 0) throw new Error(`apply left ${applied.not_applied.length} changes`)
  const again = await timed('plan, server matches', ['plan', '-f', file, '--json'])
  if (again.changes.length > 0) throw new Error(`plan after apply lists ${again.changes.length} changes`)
} finally {
  await serve.stop()
  await upstream.close()
}

if (process.env.BENCH_JSON)
  await writeFile(process.env.BENCH_JSON, JSON.stringify({figures, policy: {grants: USERS * GRANTS_PER_USER, roles: ROLES, users: USERS}}))
