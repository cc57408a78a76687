/**
 * MLflow's own auth tests for logged models and bulk metric history (from MLflow's tests/server/auth/test_auth.py), one body against
 * MLflow's basic-auth app and serve, both versions: logged-model reads, updates and deletes follow
 * the experiment's permission, logged-model search across experiments shows only readable ones,
 * get-history-bulk-interval needs READ on every run, and GraphQL needs a login.
 */
import assert from 'node:assert/strict'
import {after, before, describe, it} from 'node:test'

import {type AuthTarget, authTarget, targetTitle} from '../support/auth-target.js'
import {type Credentials} from '../support/mlflow-server.js'
import {MLFLOW_VERSIONS, PINNED_VERSIONS} from '../support/mlflow-versions.js'
import {type Json, restClient} from '../support/rest.js'
import {releaseServers, uniqueName} from '../support/servers.js'

for (const version of PINNED_VERSIONS) {
  for (const kind of ['basic-auth', 'serve'] as const) {
    describe(`logged models and bulk metrics on ${targetTitle(kind)} MLflow ${version}`, () => {
      let target: AuthTarget
      const owner = {password: `owner-${uniqueName('pw')}`, username: uniqueName('lm-owner')}
      const reader = {password: `reader-${uniqueName('pw')}`, username: uniqueName('lm-reader')}
      const {call, ok} = restClient(() => target.url)
      const legacy = version === MLFLOW_VERSIONS.legacy
      /** Each generation's own grant API; hiding is NO_PERMISSIONS up to 3.12, DENY after. */
      const grantExperiment = (experimentId: string, username: string, permission: 'EDIT' | 'HIDE') =>
        legacy
          ? ok(owner, 'POST', '/api/2.0/mlflow/experiments/permissions/create', {
              experiment_id: experimentId,
              permission: permission === 'HIDE' ? 'NO_PERMISSIONS' : permission,
              username,
            })
          : ok(owner, 'POST', '/api/3.0/mlflow/users/permissions/grant', {
              permission: permission === 'HIDE' ? 'DENY' : permission,
              resource_id: experimentId,
              resource_type: 'experiment',
              username,
            })

      before(async () => {
        target = await authTarget(version, kind, {users: [owner, reader]})
      })
      after(async () => {
        await target?.stop()
        await releaseServers()
      })

      const expectStatus = async (answer: Promise<{status: number; text: string}>, status: number, what: string) => {
        const {status: actual, text} = await answer
        assert.equal(actual, status, `${what}: ${text.slice(0, 300)}`)
      }

      it('logged models follow their experiment: READ reads, EDIT updates, only MANAGE deletes; search shows the readable ones', async () => {
        const experiment = async () => (await ok(owner, 'POST', '/api/2.0/mlflow/experiments/create', {name: uniqueName('lm')})).experiment_id as string
        const [open, hidden] = [await experiment(), await experiment()]
        const loggedModel = async (experimentId: string) =>
          (await ok(owner, 'POST', '/api/2.0/mlflow/logged-models', {experiment_id: experimentId, name: uniqueName('model')})).model.info.model_id as string
        const [visible, secret] = [await loggedModel(open), await loggedModel(hidden)]
        await grantExperiment(hidden, reader.username, 'HIDE')

        await expectStatus(call(reader, 'GET', `/api/2.0/mlflow/logged-models/${visible}`), 200, 'READ gets a logged model')
        await expectStatus(call(reader, 'GET', `/api/2.0/mlflow/logged-models/${secret}`), 403, 'a hidden logged model')
        const setTag = () => call(reader, 'PATCH', `/api/2.0/mlflow/logged-models/${visible}/tags`, {tags: [{key: 'k', value: 'v'}]})
        await expectStatus(setTag(), 403, 'READ sets a tag')
        await grantExperiment(open, reader.username, 'EDIT')
        await expectStatus(setTag(), 200, 'EDIT sets a tag')
        // MLflow 3.12's validator reads a DELETE's JSON body even here (400 without one): send {}.
        await expectStatus(call(reader, 'DELETE', `/api/2.0/mlflow/logged-models/${visible}`, {}), 403, 'EDIT deletes')

        const search = async (who: Credentials) =>
          ((await ok(who, 'POST', '/api/2.0/mlflow/logged-models/search', {experiment_ids: [open, hidden]})).models ?? [])
            .map((model: Json) => model.info.model_id)
            .sort()
        assert.deepEqual(await search(reader), [visible])
        assert.deepEqual(await search(owner), [visible, secret].sort())
        await expectStatus(call(owner, 'DELETE', `/api/2.0/mlflow/logged-models/${visible}`, {}), 200, 'the creator deletes')
      })

      it('get-history-bulk-interval needs READ on every run; GraphQL needs a login', async () => {
        const experiment = async () => (await ok(owner, 'POST', '/api/2.0/mlflow/experiments/create', {name: uniqueName('bulk')})).experiment_id as string
        const [open, hidden] = [await experiment(), await experiment()]
        const run = async (experimentId: string) => {
          const runId = (await ok(owner, 'POST', '/api/2.0/mlflow/runs/create', {experiment_id: experimentId})).run.info.run_id as string
          await ok(owner, 'POST', '/api/2.0/mlflow/runs/log-metric', {key: 'loss', run_id: runId, step: 0, timestamp: Date.now(), value: 0.25})
          return runId
        }

        const [readable, unreadable] = [await run(open), await run(hidden)]
        await grantExperiment(hidden, reader.username, 'HIDE')
        const bulk = (...runIds: string[]) =>
          call(
            reader,
            'GET',
            `/ajax-api/2.0/mlflow/metrics/get-history-bulk-interval?${runIds.map((id) => `run_ids=${id}`).join('&')}&metric_key=loss&max_results=10`,
          )
        const mine = await bulk(readable)
        assert.equal(mine.status, 200, mine.text)
        assert.equal(mine.json().metrics[0].value, 0.25)
        assert.equal((await bulk(readable, unreadable)).status, 403)
        assert.equal((await bulk(unreadable)).status, 403)

        const anonymous = await fetch(`${target.url}/graphql`, {
          body: JSON.stringify({query: '{ __typename }'}),
          headers: {'content-type': 'application/json'},
          method: 'POST',
        })
        assert.equal(anonymous.status, 401)
      })
    })
  }
}
