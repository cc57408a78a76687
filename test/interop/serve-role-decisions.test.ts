/**
 * Decisions on the rows of several roles, against MLflow 3.17.2's basic-auth app and against
 * serve (in this process) in front of a plain 3.17.2, with the same requests: both get the same
 * roles through their role API. Each scenario asserts the statuses MLflow answers, then that serve
 * answers the same.
 */
import assert from 'node:assert/strict'
import {mkdtemp} from 'node:fs/promises'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {after, before, describe, it} from 'node:test'

import {type RunningServe, startServe} from '../../src/server/serve.js'
import {type Credentials} from '../support/mlflow-server.js'
import {MLFLOW_VERSIONS} from '../support/mlflow-versions.js'
import {restClient} from '../support/rest.js'
import {giveRoles, type RowSpec} from '../support/roles.js'
import {acquireServer, releaseServers, uniqueName} from '../support/servers.js'

const version = MLFLOW_VERSIONS.latest
const PROMPT_TAGS = [{key: 'mlflow.prompt.is_prompt', value: 'true'}]

/** What the admin made on one side: ids differ between the two servers. */
interface World {
  experiment: string
  model: string
  prompt: string
  run: string
}

interface Side {
  admin: Credentials
  /** Gives the user these roles (each a list of [type, pattern, level]) for the duration of `body`. */
  withRoles(roles: RowSpec[][], body: () => Promise<void>): Promise<void>
  url: string
  world: World
}

type Request = [method: string, path: (world: World) => string, body?: (world: World) => unknown]

interface Scenario {
  /** The user's own grant on the experiment, if any. */
  grant?: string
  requests: Array<[Request, number]>
  roles: (world: World) => RowSpec[][]
  title: string
}

/** Side.withRoles on a server: real roles through its role API, deleted afterwards. */
function rolesOn(side: {admin: Credentials; url: string}, username: string): Side['withRoles'] {
  const {ok} = restClient(() => side.url)
  return async (roles, body) => {
    const remove = await giveRoles((method, path, payload) => ok(side.admin, method, path, payload), username, roles)
    try {
      await body()
    } finally {
      await remove()
    }
  }
}

const get = (path: (world: World) => string): Request => ['GET', path]
const post = (path: string, body: (world: World) => unknown): Request => ['POST', () => path, body]

const SCENARIOS: Scenario[] = [
  {
    grant: 'MANAGE',
    requests: [[get((w) => `/api/2.0/mlflow/experiments/get?experiment_id=${w.experiment}`), 403]],
    roles: (w) => [[['experiment', '*', 'MANAGE']], [['experiment', w.experiment, 'DENY']]],
    title: 'a DENY in one role beats MANAGE from the user and from another role',
  },
  {
    grant: 'MANAGE',
    requests: [
      [get((w) => `/api/2.0/mlflow/runs/get?run_id=${w.run}`), 403],
      [get((w) => `/api/2.0/mlflow/experiments/get?experiment_id=${w.experiment}`), 200],
    ],
    roles: () => [[['run', '*', 'DENY']]],
    title: 'a run * DENY denies run routes despite MANAGE on the experiment',
  },
  {
    grant: 'MANAGE',
    requests: [
      [get((w) => `/api/2.0/mlflow/runs/get?run_id=${w.run}`), 200],
      [post('/api/2.0/mlflow/runs/set-tag', (w) => ({key: 'k', run_id: w.run, value: 'v'})), 403],
      [post('/api/2.0/mlflow/experiments/delete', (w) => ({experiment_id: w.experiment})), 403],
      [post('/api/2.0/mlflow/runs/create', (w) => ({experiment_id: w.experiment})), 200],
    ],
    roles: () => [[['run', '*', 'READ']]],
    title: 'a run * READ limits an experiment MANAGE on runs and on the experiment delete',
  },
  {
    requests: [
      [get((w) => `/api/2.0/mlflow/registered-models/get?name=${w.model}`), 403],
      [get((w) => `/api/2.0/mlflow/registered-models/get?name=${w.prompt}`), 200],
    ],
    roles: () => [[['registered_model', '*', 'DENY']]],
    title: 'registered_model rows do not decide prompts',
  },
  {
    requests: [
      [get((w) => `/api/2.0/mlflow/registered-models/get?name=${w.prompt}`), 403],
      [get((w) => `/api/2.0/mlflow/registered-models/get?name=${w.model}`), 200],
      [post('/api/2.0/mlflow/registered-models/create', () => ({name: uniqueName('created'), tags: PROMPT_TAGS})), 403],
      [post('/api/2.0/mlflow/registered-models/create', () => ({name: uniqueName('created')})), 200],
    ],
    roles: (w) => [[['prompt', w.prompt, 'DENY']], [['prompt', '*', 'DENY']]],
    title: 'prompt rows decide prompts, and veto creating one',
  },
  {
    grant: 'MANAGE',
    requests: [
      [post('/api/2.0/mlflow/experiments/create', () => ({name: uniqueName('created')})), 403],
      [get((w) => `/api/2.0/mlflow/experiments/get?experiment_id=${w.experiment}`), 403],
    ],
    roles: () => [[['experiment', '*', 'DENY']]],
    title: 'an experiment * DENY vetoes creating experiments, and reaches every id, granted ones included',
  },
  {
    requests: [
      [get((w) => `/api/2.0/mlflow/experiments/get?experiment_id=${w.experiment}`), 200],
      [post('/api/2.0/mlflow/experiments/update', (w) => ({experiment_id: w.experiment, new_name: uniqueName('renamed')})), 200],
    ],
    roles: (w) => [[['experiment', w.experiment, 'READ']], [['experiment', '*', 'EDIT']]],
    title: 'rows of several roles on one experiment fold to the highest',
  },
]

async function makeWorld(url: string, admin: Credentials): Promise<World> {
  const {ok} = restClient(() => url)
  const experiment = (await ok(admin, 'POST', '/api/2.0/mlflow/experiments/create', {name: uniqueName('roles')})).experiment_id as string
  const run = (await ok(admin, 'POST', '/api/2.0/mlflow/runs/create', {experiment_id: experiment})).run.info.run_id as string
  const model = uniqueName('model')
  await ok(admin, 'POST', '/api/2.0/mlflow/registered-models/create', {name: model})
  const prompt = uniqueName('prompt')
  await ok(admin, 'POST', '/api/2.0/mlflow/registered-models/create', {name: prompt, tags: PROMPT_TAGS})
  return {experiment, model, prompt, run}
}

describe(`decisions on the rows of several roles: serve and MLflow ${version} answer alike`, () => {
  const user = {password: `roles-${uniqueName('pw')}`, username: uniqueName('roles-user')}
  let mlflow: Side
  let serve: Side
  let running: RunningServe | undefined

  before(async () => {
    const basicAuth = await acquireServer(version, 'basic-auth')
    const plain = await acquireServer(version, 'plain')
    const admin = {password: 'admin-password-for-the-roles-test', username: 'admin'}
    running = await startServe({
      env: {MLFLOW_AUTH_ADMIN_PASSWORD: admin.password},
      host: '127.0.0.1',
      log() {},
      port: 0,
      proxyTo: new URL(plain.url),
      storePath: join(await mkdtemp(join(tmpdir(), 'mlflowctl-roles-')), 'auth.json'),
    })
    const sides = [
      {admin: basicAuth.admin!, url: basicAuth.url},
      {admin, url: running.url},
    ]
    for (const side of sides) await restClient(() => side.url).ok(side.admin, 'POST', '/api/2.0/mlflow/users/create', user)
    mlflow = {...sides[0], withRoles: rolesOn(sides[0], user.username), world: await makeWorld(basicAuth.url, basicAuth.admin!)}
    serve = {...sides[1], withRoles: rolesOn(sides[1], user.username), world: await makeWorld(running.url, admin)}
  })
  after(async () => {
    await running?.close()
    await releaseServers()
  })

  for (const scenario of SCENARIOS) {
    it(scenario.title, async () => {
      for (const side of [mlflow, serve]) {
        const {call, ok} = restClient(() => side.url)
        const grant = {permission: scenario.grant, resource_id: side.world.experiment, resource_type: 'experiment', username: user.username}
        if (scenario.grant) await ok(side.admin, 'POST', '/api/3.0/mlflow/users/permissions/grant', grant)
        try {
          await side.withRoles(scenario.roles(side.world), async () => {
            for (const [[method, path, body], expected] of scenario.requests) {
              const answer = await call(user, method, path(side.world), body?.(side.world))
              assert.equal(answer.status, expected, `${side === mlflow ? 'MLflow' : 'serve'}: ${method} ${path(side.world)}: ${answer.text.slice(0, 200)}`)
            }
          })
        } finally {
          if (scenario.grant) await ok(side.admin, 'POST', '/api/3.0/mlflow/users/permissions/revoke', {...grant, permission: undefined})
        }
      }
    })
  }
})
