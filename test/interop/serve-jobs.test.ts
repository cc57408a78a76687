/**
 * MLflow 3.17's server-side jobs (`/ajax-api/3.0/jobs/…`, and one job under `mlflow/jobs/`), one
 * test body against MLflow's own basic-auth app and against serve in front of a plain MLflow that
 * runs jobs (it records no creator there: serve records it). alice creates a prompt optimization
 * job, which MLflow runs as a job, and the admin submits one by function name: one job is read and
 * cancelled by its creator alone (and admins), a search lists the caller's own jobs. Behind serve a
 * refused request reaches MLflow not at all (its access log). A non-admin submits issue detection
 * and prompt optimization by function name (serve: with the grants their dedicated routes need,
 * EDIT on the prompt an optimization registers a new version of among them); serve refuses the
 * rest, and the scorer functions, where MLflow lets anyone logged in.
 */
import assert from 'node:assert/strict'
import {readFile} from 'node:fs/promises'
import {after, before, describe, it} from 'node:test'

import {type AuthTarget, type AuthTargetKind, authTarget, targetTitle} from '../support/auth-target.js'
import {type Credentials} from '../support/mlflow-server.js'
import {MLFLOW_VERSIONS} from '../support/mlflow-versions.js'
import {type Json, restClient} from '../support/rest.js'
import {giveRoles} from '../support/roles.js'
import {releaseServers, uniqueName} from '../support/servers.js'

const JOBS = '/ajax-api/3.0/jobs'
const FLASK_JOBS = '/ajax-api/3.0/mlflow/jobs'

const targets: AuthTargetKind[] = ['basic-auth', 'serve']
for (const kind of targets) {
  describe(`server-side jobs on ${targetTitle(kind)} MLflow ${MLFLOW_VERSIONS.latest}`, () => {
    let target: AuthTarget
    const user = (name: string) => ({password: `${name}-${uniqueName('pw')}`, username: uniqueName(`jobs-${name}`)})
    const [alice, bob] = [user('alice'), user('bob')]
    const {call, ok} = restClient(() => target.url)
    const admin = () => target.admin
    const serve = kind === 'serve'
    let experimentId: string
    /** A run and a trace in alice's experiment; another experiment (the default, READ, for her) with its own. */
    let runId: string
    let traceId: string
    let otherRunId: string
    let otherTraceId: string
    let otherExperimentId: string
    /** A prompt alice may edit (serve asks it of an optimization, which registers a new version of its source prompt). */
    const alicePrompt = uniqueName('jobs-alice-prompt')
    let aliceJob: string
    let adminJob: string

    /** A job MLflow accepts by function name; its worker fails it fast (no such run or prompt). */
    const submitBody = () => ({
      job_name: 'optimize_prompts',
      params: {
        dataset_id: '',
        experiment_id: experimentId,
        optimizer_config: null,
        optimizer_type: 'gepa',
        prompt_uri: `prompts:/${uniqueName('jobs-prompt')}/1`,
        run_id: 'no-such-run',
        scorer_names: [],
      },
    })
    const searched = async (who: Credentials) => ((await ok(who, 'POST', `${JOBS}/search`, {})).jobs as Json[]).map((job) => job.job_id as string)

    /** MLflow's access-log lines for reads and cancels of alice's and the admin's jobs (what reached it). */
    const upstreamLines = async () => {
      const line = new RegExp(`"(GET|PATCH) \\S*/jobs/(cancel/)?(${aliceJob}|${adminJob}) HTTP/`)
      return (await readFile(target.upstream!.logPath, 'utf8')).split('\n').filter((each) => line.test(each)).length
    }

    before(async () => {
      target = await authTarget(MLFLOW_VERSIONS.latest, kind, {env: {MLFLOW_SERVER_ENABLE_JOB_EXECUTION: 'true'}, users: [alice, bob]})
      experimentId = (await ok(admin(), 'POST', '/api/2.0/mlflow/experiments/create', {name: uniqueName('jobs-exp')})).experiment_id
      await ok(admin(), 'POST', '/api/3.0/mlflow/users/permissions/grant', {
        permission: 'EDIT',
        resource_id: experimentId,
        resource_type: 'experiment',
        username: alice.username,
      })
      await giveRoles((method, path, json) => ok(admin(), method, path, json), alice.username, [[['prompt', alicePrompt, 'EDIT']]])
      const created = await ok(alice, 'POST', '/api/3.0/mlflow/prompt-optimization/jobs', {
        config: {optimizer_type: 'OPTIMIZER_TYPE_GEPA', scorers: []},
        experiment_id: experimentId,
        source_prompt_uri: `prompts:/${alicePrompt}/1`,
      })
      aliceJob = created.job.job_id
      adminJob = (await ok(admin(), 'POST', `${JOBS}/`, submitBody())).job_id
      assert.ok(aliceJob && adminJob)
      otherExperimentId = (await ok(admin(), 'POST', '/api/2.0/mlflow/experiments/create', {name: uniqueName('jobs-other')})).experiment_id
      ;[runId, traceId] = await runAndTrace(experimentId)
      ;[otherRunId, otherTraceId] = await runAndTrace(otherExperimentId)
    })

    async function runAndTrace(inExperiment: string): Promise<[string, string]> {
      const run = ((await ok(admin(), 'POST', '/api/2.0/mlflow/runs/create', {experiment_id: inExperiment})).run as Json).info.run_id as string
      const trace = `tr-${uniqueName('t').replaceAll(/[^a-z\d]/g, '')}`
      await ok(admin(), 'POST', '/api/3.0/mlflow/traces', {
        trace: {
          trace_info: {
            request_time: '2024-01-01T00:00:00Z',
            state: 'OK',
            trace_id: trace,
            trace_location: {mlflow_experiment: {experiment_id: inExperiment}, type: 'MLFLOW_EXPERIMENT'},
          },
        },
      })
      return [run, trace]
    }

    /** A prompt optimization job alice may submit (her run, her prompt); its worker fails it fast (the prompt has no version). */
    const optimization = (params: Json = {}) => ({
      ...submitBody(),
      params: {...submitBody().params, prompt_uri: `prompts:/${alicePrompt}/1`, run_id: runId, ...params},
    })
    /** An issue detection job alice may submit; the job fails later for want of an LLM (no key on the server). */
    const detection = (params: Json = {}) => ({
      job_name: 'invoke_issue_detection',
      params: {categories: ['quality'], experiment_id: experimentId, model: 'openai:/gpt-4o-mini', run_id: runId, trace_ids: [traceId], ...params},
    })
    after(async () => {
      await target?.stop()
      await releaseServers()
    })

    it("refuses anyone else's job (403), before MLflow sees the request", async () => {
      const before = serve ? await upstreamLines() : 0
      for (const path of [`${JOBS}/${aliceJob}`, `${FLASK_JOBS}/${aliceJob}`]) assert.equal((await call(bob, 'GET', path)).status, 403, path)
      for (const path of [`${JOBS}/cancel/${aliceJob}`, `${FLASK_JOBS}/cancel/${aliceJob}`]) assert.equal((await call(bob, 'PATCH', path)).status, 403, path)
      assert.equal((await call(alice, 'GET', `${JOBS}/${adminJob}`)).status, 403)
      assert.equal((await call(alice, 'PATCH', `${JOBS}/cancel/${adminJob}`)).status, 403)
      assert.equal((await call(bob, 'GET', `${JOBS}/${uniqueName('no-such-job')}`)).status, 403)

      // The admin's two reads are forwarded after those requests: once their lines are in MLflow's
      // log, any refused request that had been forwarded would be there too.
      assert.notEqual((await ok(admin(), 'GET', `${JOBS}/${aliceJob}`)).status, 'CANCELED', "a refused cancel cancelled alice's job")
      assert.notEqual((await ok(admin(), 'GET', `${JOBS}/${adminJob}`)).status, 'CANCELED', "a refused cancel cancelled the admin's job")
      if (serve) {
        for (let waited = 0; (await upstreamLines()) < before + 2 && waited < 100; waited++) await new Promise((resolve) => setTimeout(resolve, 100))
        assert.equal(await upstreamLines(), before + 2, 'refused requests reached MLflow')
      }
    })

    it("narrows a search to the caller's own jobs; admins see all", async () => {
      const own = await searched(alice)
      assert.ok(own.includes(aliceJob), `alice's search: ${own}`)
      assert.ok(!own.includes(adminJob), `alice's search: ${own}`)
      const others = await searched(bob)
      assert.ok(!others.includes(aliceJob) && !others.includes(adminJob), `bob's search: ${others}`)
      const all = await searched(admin())
      assert.ok(all.includes(aliceJob) && all.includes(adminJob), `the admin's search: ${all}`)
    })

    it("lets the creator read and cancel her own job, on both of MLflow's paths", async () => {
      const read = await call(alice, 'GET', `${JOBS}/${aliceJob}`)
      assert.equal(read.status, 200, read.text)
      assert.equal(read.json().job_id, aliceJob)
      // The Flask route answers the job's state only.
      const state = await call(alice, 'GET', `${FLASK_JOBS}/${aliceJob}`)
      assert.equal(state.status, 200, state.text)
      assert.equal(typeof state.json().status, 'string', state.text)

      // MLflow cancels it, or (once its worker has failed it) refuses to change a finished job:
      // either way the answer is MLflow's.
      const cancel = await call(alice, 'PATCH', `${JOBS}/cancel/${aliceJob}`)
      if (cancel.status === 200) assert.equal(cancel.json().status, 'CANCELED')
      else assert.match(cancel.text, /already finalized/, `${cancel.status}: ${cancel.text}`)
    })

    it(
      serve ? 'refuses a submit by function name without the grants it needs (MLflow: anyone logged in)' : 'lets anyone logged in submit by function name',
      async () => {
        const answer = await call(bob, 'POST', `${JOBS}/`, submitBody())
        assert.equal(answer.status, serve ? 403 : 200, answer.text)
        const jobs = await searched(admin())
        assert.equal(jobs.length, serve ? 2 : 3, "jobs after bob's submit")
      },
    )

    it('lets a non-admin with the grants submit issue detection and prompt optimization by function name; the job is hers alone', async () => {
      for (const body of [detection(), optimization()]) {
        const submitted = await call(alice, 'POST', `${JOBS}/`, body)
        assert.equal(submitted.status, 200, submitted.text)
        const jobId = submitted.json().job_id as string
        assert.equal(submitted.json().job_name, body.job_name)
        assert.equal((await call(bob, 'GET', `${JOBS}/${jobId}`)).status, 403)
        assert.equal((await call(bob, 'PATCH', `${JOBS}/cancel/${jobId}`)).status, 403)
        const read = await call(alice, 'GET', `${JOBS}/${jobId}`)
        assert.equal(read.status, 200, read.text)
        assert.equal(read.json().job_id, jobId)
        const cancel = await call(alice, 'PATCH', `${JOBS}/cancel/${jobId}`)
        if (cancel.status === 200) assert.equal(cancel.json().status, 'CANCELED')
        else assert.match(cancel.text, /already finalized/, `${cancel.status}: ${cancel.text}`)
      }
    })

    // MLflow accepts each of these from anyone logged in (the test above for bob's submit). Each
    // lacks one permission alone.
    if (serve)
      it('refuses a submit without EDIT on the experiment, the run or the source prompt, or with a trace elsewhere, and the scorer functions (403): MLflow gets no job', async () => {
        const before = (await searched(admin())).length
        for (const body of [
          // READ (the default) on the other experiment, its trace there: only EDIT on it is missing.
          detection({experiment_id: otherExperimentId, trace_ids: [otherTraceId]}),
          detection({run_id: otherRunId}),
          detection({trace_ids: [traceId, otherTraceId]}),
          // READ (the default) on another prompt: the job would register a new version of it.
          optimization({prompt_uri: `prompts:/${uniqueName('jobs-other-prompt')}/1`}),
          {job_name: 'invoke_scorer', params: {experiment_id: experimentId, serialized_scorer: '{}', trace_ids: [traceId]}},
        ]) {
          const answer = await call(alice, 'POST', `${JOBS}/`, body)
          assert.equal(answer.status, 403, `${JSON.stringify(body)}: ${answer.text}`)
        }

        assert.equal((await searched(admin())).length, before, 'a refused submit made a job')
      })
  })
}
