/**
 * The hardened setup MLflow's docs recommend, default_permission = NO_PERMISSIONS with creators
 * getting MANAGE: one test body against MLflow's basic-auth app (started with that setting) and
 * serve (given it in basic_auth.ini), both versions. Also MLflow's own artifact-proxy test: listing
 * by `?path=` is allowed to the owner and refused to others.
 */
import assert from 'node:assert/strict'
import {after, before, describe, it} from 'node:test'

import {type AuthTarget, authTarget, targetTitle} from '../support/auth-target.js'
import {type Credentials} from '../support/mlflow-server.js'
import {PINNED_VERSIONS} from '../support/mlflow-versions.js'
import {restClient} from '../support/rest.js'
import {releaseServers, uniqueName} from '../support/servers.js'

for (const version of PINNED_VERSIONS) {
  for (const kind of ['basic-auth', 'serve'] as const) {
    describe(`default_permission NO_PERMISSIONS on ${targetTitle(kind)} MLflow ${version}`, () => {
      let target: AuthTarget
      const owner = {password: `owner-${uniqueName('pw')}`, username: uniqueName('owner')}
      const other = {password: `other-${uniqueName('pw')}`, username: uniqueName('other')}
      const {call, ok} = restClient(() => target.url)

      before(async () => {
        target = await authTarget(version, kind, {defaultPermission: 'NO_PERMISSIONS', users: [owner, other]})
      })
      after(async () => {
        await target?.stop()
        await releaseServers()
      })

      it('creators see what they make, nobody else does', async () => {
        const prefix = uniqueName('deny')
        const {experiment_id: experimentId} = await ok(owner, 'POST', '/api/2.0/mlflow/experiments/create', {name: `${prefix}-owner`})
        await ok(owner, 'GET', `/api/2.0/mlflow/experiments/get?experiment_id=${experimentId}`)
        assert.equal((await call(other, 'GET', `/api/2.0/mlflow/experiments/get?experiment_id=${experimentId}`)).status, 403)
        assert.equal((await call(other, 'GET', `/api/2.0/mlflow/experiments/get-by-name?experiment_name=${prefix}-owner`)).status, 403)
        // A name nobody has: 404, so mlflow.set_experiment goes on to create it.
        const missing = await call(other, 'GET', `/api/2.0/mlflow/experiments/get-by-name?experiment_name=${prefix}-nobody`)
        assert.equal(missing.status, 404)
        assert.equal(missing.json().error_code, 'RESOURCE_DOES_NOT_EXIST')

        const {experiment_id: otherExperimentId} = await ok(other, 'POST', '/api/2.0/mlflow/experiments/create', {name: `${prefix}-nobody`})
        await ok(other, 'GET', `/api/2.0/mlflow/experiments/get-by-name?experiment_name=${prefix}-nobody`)
        const search = async (who: Credentials) =>
          ((await ok(who, 'POST', '/api/2.0/mlflow/experiments/search', {filter: `name LIKE '${prefix}%'`, max_results: 10})).experiments ?? [])
            .map((experiment: {experiment_id: string}) => experiment.experiment_id)
            .sort()
        assert.deepEqual(await search(owner), [experimentId])
        assert.deepEqual(await search(other), [otherExperimentId])
        assert.deepEqual(await search(target.admin), [experimentId, otherExperimentId].sort())
      })

      it("lists proxied artifacts by ?path= for the owner only, and refuses others' uploads", async () => {
        const {experiment_id: experimentId} = await ok(owner, 'POST', '/api/2.0/mlflow/experiments/create', {name: uniqueName('deny-artifacts')})
        const {run} = await ok(owner, 'POST', '/api/2.0/mlflow/runs/create', {experiment_id: experimentId})
        const dir = `${experimentId}/${run.info.run_id}/artifacts`
        await ok(owner, 'PUT', `/api/2.0/mlflow-artifacts/artifacts/${dir}/a.txt`, 'owner data')
        const listed = await ok(owner, 'GET', `/api/2.0/mlflow-artifacts/artifacts?path=${dir}`)
        assert.deepEqual(
          listed.files.map((file: {path: string}) => file.path),
          ['a.txt'],
        )
        assert.equal((await call(other, 'GET', `/api/2.0/mlflow-artifacts/artifacts?path=${dir}`)).status, 403)
        assert.equal((await call(other, 'GET', `/api/2.0/mlflow-artifacts/artifacts/${dir}/a.txt`)).status, 403)
        assert.equal((await call(other, 'PUT', `/ajax-api/2.0/mlflow-artifacts/artifacts/${dir}/b.txt`, 'other data')).status, 403)
        assert.equal((await call(other, 'PUT', `/api/2.0/mlflow-artifacts/artifacts/${dir}/123`, 'other data')).status, 403)
        const after = await ok(owner, 'GET', `/api/2.0/mlflow-artifacts/artifacts?path=${dir}`)
        assert.deepEqual(
          after.files.map((file: {path: string}) => file.path),
          ['a.txt'],
        )
      })
    })
  }
}
