/**
 * serve's decisions on the rows of several roles (MLflow 3.17's semantics), through the whole
 * pipeline in front of a fake MLflow: a DENY in one role beats a grant in another, `*` rows,
 * sub-resource tiers over their experiment, prompts apart from registered models, vetoes on
 * creates, and the default floor. The roles are made through serve's own role API, so the
 * decisions are on what its store keeps. Such scenarios run against MLflow itself in
 * test/interop/serve-role-decisions.test.ts.
 */
import assert from 'node:assert/strict'
import {mkdtemp, writeFile} from 'node:fs/promises'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {after, before, describe, it} from 'node:test'

import {giveRoles, type RowSpec} from '../support/roles.js'
import {answerJson, call, type Pipeline, parseJson, type SeenRequest, startPipeline, type Who} from '../support/serve-pipeline.js'

const PROMPT_TAG = [{key: 'mlflow.prompt.is_prompt', value: 'true'}]

/** A fake MLflow with experiments 1–3, run r1 in experiment 1, registered model `m` and prompt `p`. */
function fakeMlflow(request: SeenRequest, response: Parameters<typeof answerJson>[0]): void {
  const {pathname, searchParams} = request.url
  if (pathname === '/api/2.0/mlflow/runs/get') {
    if (searchParams.get('run_id') === 'r1') answerJson(response, 200, {run: {info: {experiment_id: '1', run_id: 'r1'}}})
    return
  }

  if (pathname === '/api/2.0/mlflow/registered-models/get') {
    const name = searchParams.get('name')
    if (name === 'm' || name === 'p') answerJson(response, 200, {registered_model: {name, tags: name === 'p' ? PROMPT_TAG : []}})
    return
  }

  if (pathname === '/api/2.0/mlflow/registered-models/search') {
    answerJson(response, 200, {registered_models: [{name: 'm'}, {name: 'p', tags: PROMPT_TAG}]})
    return
  }

  if (pathname === '/api/2.0/mlflow/experiments/search') {
    answerJson(response, 200, {experiments: [{experiment_id: '1'}, {experiment_id: '2'}, {experiment_id: '3'}]})
    return
  }

  if (pathname === '/api/2.0/mlflow/experiments/create') {
    answerJson(response, 200, {experiment_id: '9'})
    return
  }

  answerJson(response, 200, {})
}

/** The roles `who` holds beyond their own grants: each call replaces those of the last one. */
function roleHolder(pipeline: () => Pipeline, who: Who): (...roles: RowSpec[][]) => Promise<void> {
  let remove = async () => {}
  const admin = async (method: string, path: string, body: Record<string, unknown>) => {
    const answer = await call(pipeline().url, method, path, {body, credentials: pipeline().admin})
    if (answer.status !== 200) throw new Error(`${method} ${path}: ${answer.status} ${answer.body}`)
    return parseJson(answer)
  }

  return async (...roles) => {
    await remove()
    remove = await giveRoles(admin, who.username, roles)
  }
}

async function startWith(defaultPermission: string): Promise<Pipeline> {
  const ini = join(await mkdtemp(join(tmpdir(), 'mlflowctl-roles-')), 'basic_auth.ini')
  await writeFile(ini, `[mlflow]\ndefault_permission = ${defaultPermission}\n`)
  return startPipeline({handler: fakeMlflow, serve: {configPath: ini}})
}

describe('serve decides on the rows of every role a user holds (default NO_PERMISSIONS)', () => {
  let pipeline: Pipeline
  const who: Who = {password: 'a password for the roles test', username: 'alice'}
  const holdRoles = roleHolder(() => pipeline, who)
  const status = async (method: string, path: string, body?: unknown) => (await call(pipeline.url, method, path, {body, credentials: who})).status

  before(async () => {
    pipeline = await startWith('NO_PERMISSIONS')
    await pipeline.createUser(who, {'1': 'MANAGE'})
  })
  after(() => pipeline.close())

  it('a DENY row in another role beats the MANAGE the user was granted', async () => {
    await holdRoles([['experiment', '1', 'DENY']])
    assert.equal(await status('GET', '/api/2.0/mlflow/experiments/get?experiment_id=1'), 403)
    await holdRoles()
    assert.equal(await status('GET', '/api/2.0/mlflow/experiments/get?experiment_id=1'), 200)
  })

  it('a `*` row reaches every experiment; a DENY on one id hides it, also from searches', async () => {
    await holdRoles([['experiment', '*', 'READ']], [['experiment', '2', 'DENY']])
    assert.equal(await status('GET', '/api/2.0/mlflow/experiments/get?experiment_id=3'), 200)
    assert.equal(await status('GET', '/api/2.0/mlflow/experiments/get?experiment_id=2'), 403)
    assert.equal(await status('POST', '/api/2.0/mlflow/experiments/update', {experiment_id: '3', new_name: 'x'}), 403)
    const search = await call(pipeline.url, 'POST', '/api/2.0/mlflow/experiments/search', {body: {max_results: 10}, credentials: who})
    assert.deepEqual(parseJson(search).experiments, [{experiment_id: '1'}, {experiment_id: '3'}])
  })

  it('the run tier decides run routes over the experiment: a DENY vetoes MANAGE, a READ limits it', async () => {
    await holdRoles([['run', '*', 'DENY']])
    assert.equal(await status('GET', '/api/2.0/mlflow/runs/get?run_id=r1'), 403)
    assert.equal(await status('GET', '/api/2.0/mlflow/experiments/get?experiment_id=1'), 200)
    await holdRoles([['run', '*', 'READ']])
    assert.equal(await status('GET', '/api/2.0/mlflow/runs/get?run_id=r1'), 200)
    assert.equal(await status('POST', '/api/2.0/mlflow/runs/update', {run_id: 'r1', status: 'FINISHED'}), 403)
    // Deleting the experiment reaches its runs: a run tier that cannot delete withholds it.
    assert.equal(await status('POST', '/api/2.0/mlflow/experiments/delete', {experiment_id: '1'}), 403)
    assert.equal(await status('POST', '/api/2.0/mlflow/runs/create', {experiment_id: '1'}), 200)
    await holdRoles([['run', '*', 'DENY']])
    assert.equal(await status('POST', '/api/2.0/mlflow/runs/create', {experiment_id: '1'}), 403)
    await holdRoles()
    assert.equal(await status('POST', '/api/2.0/mlflow/experiments/delete', {experiment_id: '1'}), 200)
  })

  it('a prompt is decided on `prompt` rows, a registered model on `registered_model` rows', async () => {
    const names = async () =>
      (
        parseJson(await call(pipeline.url, 'GET', '/api/2.0/mlflow/registered-models/search', {credentials: who})).registered_models as Array<{name: string}>
      ).map((model) => model.name)
    await holdRoles([['registered_model', '*', 'READ']])
    assert.equal(await status('GET', '/api/2.0/mlflow/registered-models/get?name=m'), 200)
    assert.equal(await status('GET', '/api/2.0/mlflow/registered-models/get?name=p'), 403)
    assert.deepEqual(await names(), ['m'])
    await holdRoles([['prompt', 'p', 'READ']])
    assert.equal(await status('GET', '/api/2.0/mlflow/registered-models/get?name=p'), 200)
    assert.equal(await status('GET', '/api/2.0/mlflow/registered-models/get?name=m'), 403)
    assert.deepEqual(await names(), ['p'])
    // The version tier of prompts vetoes reading a prompt's versions, not the prompt.
    await holdRoles([
      ['prompt', 'p', 'READ'],
      ['prompt_version', '*', 'DENY'],
    ])
    assert.equal(await status('GET', '/api/2.0/mlflow/model-versions/get?name=p&version=1'), 403)
    assert.equal(await status('GET', '/api/2.0/mlflow/registered-models/get?name=p'), 200)
    await holdRoles()
  })

  it('a DENY on a type vetoes creating one, whatever else the user holds', async () => {
    await holdRoles([['experiment', '*', 'DENY']])
    assert.equal(await status('POST', '/api/2.0/mlflow/experiments/create', {name: 'new'}), 403)
    await holdRoles([['registered_model', 'churn', 'DENY']])
    assert.equal(await status('POST', '/api/2.0/mlflow/registered-models/create', {name: 'churn'}), 403)
    // A prompt of that name is another namespace.
    assert.equal(await status('POST', '/api/2.0/mlflow/registered-models/create', {name: 'churn', tags: PROMPT_TAG}), 200)
    await holdRoles()
  })
})

describe('a positive row never resolves below default_permission', () => {
  let pipeline: Pipeline
  const who: Who = {password: 'a password for the floor test', username: 'floored'}
  before(async () => {
    pipeline = await startWith('EDIT')
    await pipeline.createUser(who, {'1': 'READ', '2': 'NO_PERMISSIONS'})
  })
  after(() => pipeline.close())

  it('a READ grant under a default of EDIT gives EDIT; NO_PERMISSIONS still hides', async () => {
    const update = (experimentId: string) =>
      call(pipeline.url, 'POST', '/api/2.0/mlflow/experiments/update', {body: {experiment_id: experimentId, new_name: 'x'}, credentials: who})
    assert.equal((await update('1')).status, 200)
    assert.equal((await update('2')).status, 403)
  })
})

describe("a registry entry's creator is its MANAGE in the namespace of what was made", () => {
  let pipeline: Pipeline
  const who: Who = {password: 'a password for the creator test', username: 'maker'}
  // The fake keeps what was created, as MLflow answers it: the entity with its tags.
  const made = new Map<string, unknown[]>()
  before(async () => {
    const ini = join(await mkdtemp(join(tmpdir(), 'mlflowctl-roles-')), 'basic_auth.ini')
    await writeFile(ini, '[mlflow]\ndefault_permission = NO_PERMISSIONS\n')
    pipeline = await startPipeline({
      handler: (request, response) => {
        const {pathname, searchParams} = request.url
        if (pathname === '/api/2.0/mlflow/registered-models/create') {
          const {name, tags = []} = JSON.parse(request.body.toString()) as {name: string; tags?: unknown[]}
          made.set(name, tags)
          answerJson(response, 200, {registered_model: {name, tags}})
        } else if (pathname === '/api/2.0/mlflow/registered-models/get') {
          const name = searchParams.get('name') ?? ''
          if (made.has(name)) answerJson(response, 200, {registered_model: {name, tags: made.get(name)}})
          else answerJson(response, 404, {error_code: 'RESOURCE_DOES_NOT_EXIST', message: 'not found'})
        } else answerJson(response, 200, {})
      },
      serve: {configPath: ini},
    })
    await pipeline.createUser(who)
  })
  after(() => pipeline.close())

  it('the creator of a prompt may edit it, as the creator of a model may edit the model (MLflow grants MANAGE on the prompt)', async () => {
    const post = (path: string, body: unknown, method = 'POST') => call(pipeline.url, method, path, {body, credentials: who})
    for (const [name, tags] of [
      ['my-prompt', PROMPT_TAG],
      ['my-model', []],
    ] as const) {
      assert.equal((await post('/api/2.0/mlflow/registered-models/create', {name, tags})).status, 200, name)
      assert.equal((await post('/api/2.0/mlflow/registered-models/update', {description: 'd', name}, 'PATCH')).status, 200, name)
    }
  })
})
