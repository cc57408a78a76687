/**
 * MLflow 3.17's server-side jobs behind serve, against a fake MLflow that answers as its job API
 * does (and, like a plain MLflow, records no creator): serve records who submitted each job and
 * decides one job's read and cancel, and a search, on that record.
 */
import assert from 'node:assert/strict'
import {after, before, describe, it} from 'node:test'

import {answerJson, call, type Pipeline, parseJson, startPipeline, type Who} from '../support/serve-pipeline.js'

const JOBS = '/ajax-api/3.0/jobs'
const alice: Who = {password: 'alice-password-long-enough', username: 'alice'}
const bob: Who = {password: 'bob-password-long-enough', username: 'bob'}

let pipeline: Pipeline
const submitted: string[] = []

/** The fake job API: ids job-1, job-2, …; a search lists every job, with no creator (a plain MLflow's). */
function fakeJobs(): void {
  pipeline.upstream.handle((request, response) => {
    // The Flask routes under /mlflow/jobs/ answer one job as the job API does.
    const path = request.url.pathname.replace('/ajax-api/3.0/mlflow/jobs/', `${JOBS}/`)
    if (request.method === 'POST' && path === `${JOBS}/`) {
      const jobId = `job-${submitted.length + 1}`
      submitted.push(jobId)
      answerJson(response, 200, {creator: null, job_id: jobId, status: 'PENDING'})
    } else if (request.method === 'POST' && path === `${JOBS}/search`) {
      answerJson(response, 200, {jobs: submitted.map((jobId) => ({creator: null, job_id: jobId}))})
    } else if (request.method === 'GET' && path.startsWith(`${JOBS}/`)) {
      answerJson(response, 200, {job_id: path.slice(JOBS.length + 1)})
    } else if (request.method === 'PATCH' && path.startsWith(`${JOBS}/cancel/`)) {
      answerJson(response, 200, {job_id: path.slice(`${JOBS}/cancel/`.length), status: 'CANCELED'})
    }
  })
}

async function setAdmin(who: Who, isAdmin: boolean): Promise<void> {
  const answer = await call(pipeline.url, 'PATCH', '/api/2.0/mlflow/users/update-admin', {
    body: {is_admin: isAdmin, username: who.username},
    credentials: pipeline.admin,
  })
  assert.equal(answer.status, 200, answer.body)
}

async function submit(who: Who): Promise<string> {
  const answer = await call(pipeline.url, 'POST', `${JOBS}/`, {body: {job_name: 'invoke_scorer', params: {}}, credentials: who})
  assert.equal(answer.status, 200, answer.body)
  return parseJson(answer).job_id as string
}

const searched = async (who: Who) => {
  const answer = await call(pipeline.url, 'POST', `${JOBS}/search`, {body: {}, credentials: who})
  assert.equal(answer.status, 200, answer.body)
  return (parseJson(answer).jobs as {job_id: string}[]).map((job) => job.job_id)
}

describe('server-side jobs', () => {
  let aliceJob: string
  let adminJob: string

  before(async () => {
    pipeline = await startPipeline()
    fakeJobs()
    await pipeline.createUser(alice)
    await pipeline.createUser(bob)
    // alice submits while an admin (only admins may), then is an ordinary user: the record stays hers.
    await setAdmin(alice, true)
    aliceJob = await submit(alice)
    await setAdmin(alice, false)
    adminJob = await submit(pipeline.admin)
  })

  after(() => pipeline.close())

  it('keeps submitting the scorer functions and unknown ones to admins (job-submit.test.ts: the others): nothing reaches MLflow', async () => {
    const before = pipeline.upstream.seen.length
    for (const name of ['invoke_scorer', 'run_online_trace_scorer', 'no_such_function']) {
      const answer = await call(pipeline.url, 'POST', `${JOBS}/`, {body: {job_name: name, params: {experiment_id: '0'}}, credentials: bob})
      assert.equal(answer.status, 403, name)
    }

    assert.equal(pipeline.upstream.seen.length, before)
  })

  it("lets a job's submitter read and cancel it, on both of MLflow's paths", async () => {
    for (const path of [`${JOBS}/${aliceJob}`, `/ajax-api/3.0/mlflow/jobs/${aliceJob}`]) {
      const answer = await call(pipeline.url, 'GET', path, {credentials: alice})
      assert.equal(answer.status, 200, path)
      assert.equal(parseJson(answer).job_id, aliceJob)
    }

    for (const path of [`${JOBS}/cancel/${aliceJob}`, `/ajax-api/3.0/mlflow/jobs/cancel/${aliceJob}`]) {
      assert.equal((await call(pipeline.url, 'PATCH', path, {credentials: alice})).status, 200, path)
    }
  })

  it("refuses anyone else's job, and a job serve has no record of (403, as MLflow), before MLflow sees it", async () => {
    const before = pipeline.upstream.seen.length
    const refused: [Who, string, string][] = [
      [bob, 'GET', `${JOBS}/${aliceJob}`],
      [bob, 'PATCH', `${JOBS}/cancel/${aliceJob}`],
      [bob, 'GET', `/ajax-api/3.0/mlflow/jobs/${aliceJob}`],
      [bob, 'PATCH', `/ajax-api/3.0/mlflow/jobs/cancel/${aliceJob}`],
      [alice, 'GET', `${JOBS}/${adminJob}`],
      [alice, 'PATCH', `${JOBS}/cancel/${adminJob}`],
      [alice, 'GET', `${JOBS}/job-unknown`],
      [alice, 'GET', `${JOBS}/search`],
      [alice, 'DELETE', `${JOBS}/${aliceJob}`],
    ]
    for (const [who, method, path] of refused) {
      assert.equal((await call(pipeline.url, method, path, {credentials: who})).status, 403, `${who.username} ${method} ${path}`)
    }

    assert.equal(pipeline.upstream.seen.length, before)
  })

  it("narrows a search to the caller's own jobs; admins see all", async () => {
    assert.deepEqual(await searched(alice), [aliceJob])
    assert.deepEqual(await searched(bob), [])
    assert.deepEqual(await searched(pipeline.admin), [aliceJob, adminJob])
  })

  it("lets admins read and cancel anyone's job", async () => {
    assert.equal((await call(pipeline.url, 'GET', `${JOBS}/${aliceJob}`, {credentials: pipeline.admin})).status, 200)
    assert.equal((await call(pipeline.url, 'PATCH', `${JOBS}/cancel/${aliceJob}`, {credentials: pipeline.admin})).status, 200)
  })

  it('refuses a search answer without a list of jobs rather than pass it on', async () => {
    pipeline.upstream.handle((request, response) => answerJson(response, 200, {job_ids: submitted}))
    try {
      assert.equal((await call(pipeline.url, 'POST', `${JOBS}/search`, {body: {}, credentials: alice})).status, 502)
    } finally {
      fakeJobs()
    }
  })

  it("forgets a user's jobs with the user: a new user of that name gets none of them", async () => {
    const carol: Who = {password: 'carol-password-long-enough', username: 'carol'}
    await pipeline.createUser(carol)
    await setAdmin(carol, true)
    const carolJob = await submit(carol)
    await setAdmin(carol, false)
    assert.deepEqual(await searched(carol), [carolJob])
    const deleted = await call(pipeline.url, 'DELETE', '/api/2.0/mlflow/users/delete', {body: {username: 'carol'}, credentials: pipeline.admin})
    assert.equal(deleted.status, 200, deleted.body)
    await pipeline.createUser(carol)
    assert.deepEqual(await searched(carol), [])
    assert.equal((await call(pipeline.url, 'GET', `${JOBS}/${carolJob}`, {credentials: carol})).status, 403)
  })
})
