/**
 * MLflow 3.17's issues (found in an experiment's traces) under its basic-auth app, one test body
 * against the real app and against serve: an issue is decided on its experiment (READ to read and
 * search, EDIT to create and change); the run it names is withheld, and a search selecting on it
 * refused, when `run *` is denied; detection needs EDIT on the experiment. MLflow 3.12 leaves
 * issues ungated, so the same body runs there against serve only. Every refused change is checked,
 * as admin, not to have happened.
 */
import assert from 'node:assert/strict'
import {after, before, describe, it} from 'node:test'

import {type AuthTarget, type AuthTargetKind, authTarget, targetTitle} from '../support/auth-target.js'
import {type Credentials} from '../support/mlflow-server.js'
import {MLFLOW_VERSIONS} from '../support/mlflow-versions.js'
import {type Json, restClient} from '../support/rest.js'
import {giveRoles, type RowSpec} from '../support/roles.js'
import {releaseServers, uniqueName} from '../support/servers.js'
import {newTrace} from '../support/traces.js'

const ISSUES = '/api/3.0/mlflow/issues'

const targets: Array<[string, AuthTargetKind]> = [
  [MLFLOW_VERSIONS.latest, 'basic-auth'],
  [MLFLOW_VERSIONS.latest, 'serve'],
  [MLFLOW_VERSIONS.legacy, 'serve'],
]
for (const [version, kind] of targets) {
  describe(`issue permissions on ${targetTitle(kind)} MLflow ${version}`, () => {
    let target: AuthTarget
    const user = (name: string) => ({password: `${name}-${uniqueName('pw')}`, username: uniqueName(`is-${name}`)})
    // editor: EDIT on the experiment; reader: the default (READ); denied: DENY on the experiment.
    const [editor, reader, denied] = [user('editor'), user('reader'), user('denied')]
    const {call, ok} = restClient(() => target.url)
    const admin = () => target.admin
    let experimentId: string
    let runId: string
    const removals: Array<() => Promise<void>> = []
    const give = async (who: Credentials, rows: RowSpec[]) => giveRoles((method, path, json) => ok(admin(), method, path, json), who.username, [rows])

    before(async () => {
      target = await authTarget(version, kind, {users: [editor, reader, denied]})
      experimentId = (await ok(admin(), 'POST', '/api/2.0/mlflow/experiments/create', {name: uniqueName('is-exp')})).experiment_id
      runId = ((await ok(admin(), 'POST', '/api/2.0/mlflow/runs/create', {experiment_id: experimentId})).run as Json).info.run_id
      removals.push(await give(editor, [['experiment', experimentId, 'EDIT']]), await give(denied, [['experiment', experimentId, 'DENY']]))
    })
    after(async () => {
      for (const remove of removals) await remove()
      await target?.stop()
      await releaseServers()
    })

    const issueBody = (name: string) => ({description: 'found', experiment_id: experimentId, name, source_run_id: runId})
    const search = (who: Credentials, filter?: string) => call(who, 'POST', `${ISSUES}/search`, {experiment_id: experimentId, filter_string: filter})
    const searched = async (who: Credentials) => ((await search(who)).json().issues as Json[] | undefined) ?? []

    it('READ on the experiment reads and searches issues, EDIT creates and changes them, a DENY hides them', async () => {
      const refusedName = uniqueName('refused')
      assert.equal((await call(reader, 'POST', ISSUES, issueBody(refusedName))).status, 403)
      assert.equal((await call(denied, 'POST', ISSUES, issueBody(refusedName))).status, 403)
      assert.ok(!(await searched(admin())).some((issue) => issue.name === refusedName), 'a refused create made the issue')

      const issue = (await ok(editor, 'POST', ISSUES, issueBody(uniqueName('issue')))).issue as Json
      const id = issue.issue_id as string
      const read = (await ok(reader, 'GET', `${ISSUES}/${id}`)).issue as Json
      assert.equal(read.source_run_id, runId)
      assert.ok((await searched(reader)).some((row) => row.issue_id === id))
      assert.equal((await call(denied, 'GET', `${ISSUES}/${id}`)).status, 403)
      assert.equal((await search(denied)).status, 403)

      assert.equal((await call(reader, 'PATCH', `${ISSUES}/${id}`, {issue_id: id, name: 'changed'})).status, 403)
      assert.equal(((await ok(admin(), 'GET', `${ISSUES}/${id}`)).issue as Json).name, issue.name, 'a refused update changed the issue')
      await ok(editor, 'PATCH', `${ISSUES}/${id}`, {issue_id: id, name: 'changed'})
      assert.equal(((await ok(reader, 'GET', `${ISSUES}/${id}`)).issue as Json).name, 'changed')
      // An issue that does not exist answers as one the caller may not read.
      assert.equal((await call(reader, 'GET', `${ISSUES}/${uniqueName('no-such-issue')}`)).status, 403)
    })

    it('a denied run tier withholds the run an issue names and refuses a search selecting on it', async () => {
      const issue = (await ok(editor, 'POST', ISSUES, issueBody(uniqueName('issue')))).issue as Json
      const id = issue.issue_id as string
      const remove = await give(reader, [['run', '*', 'DENY']])
      try {
        const read = (await ok(reader, 'GET', `${ISSUES}/${id}`)).issue as Json
        assert.equal(read.issue_id, id)
        assert.equal(read.source_run_id, undefined)
        const row = (await searched(reader)).find((found) => found.issue_id === id)
        assert.ok(row, 'the issue is listed')
        assert.equal(row.source_run_id, undefined)
        assert.equal((await search(reader, `source_run_id = '${runId}'`)).status, 403)
      } finally {
        await remove()
      }

      const found = (await search(reader, `source_run_id = '${runId}'`)).json().issues as Json[]
      assert.ok(found.some((row) => row.issue_id === id && row.source_run_id === runId))
    })

    it('detection needs EDIT on the experiment', async () => {
      const traceId = await newTrace((method, path, body) => ok(admin(), method, path, body), experimentId)
      const body = {categories: ['quality'], experiment_id: experimentId, model: 'gpt-4o', provider: 'openai', trace_ids: [traceId]}
      const runs = async () => ((await ok(admin(), 'POST', '/api/2.0/mlflow/runs/search', {experiment_ids: [experimentId]})).runs as Json[]).length
      const before = await runs()
      assert.equal((await call(reader, 'POST', '/ajax-api/3.0/mlflow/issues/invoke', body)).status, 403)
      assert.equal((await call(denied, 'POST', '/ajax-api/3.0/mlflow/issues/invoke', body)).status, 403)
      assert.equal(await runs(), before, 'a refused detection made a run')
      // An EDITor gets past authorization to MLflow's own refusal: no credentials for the provider
      // (3.17), or no job execution on this server (3.12).
      const decided = await call(editor, 'POST', '/ajax-api/3.0/mlflow/issues/invoke', body)
      assert.ok([400, 500].includes(decided.status), decided.text)
      assert.notEqual(decided.json().error_code, 'PERMISSION_DENIED')
    })
  })
}
