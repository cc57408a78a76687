/**
 * MLflow 3.17's online scoring configurations under its basic-auth app, one test body against the
 * real app and against serve: a scorer's configuration is set with EDIT on its experiment, and
 * read by scorer ids only when every configuration asked for is in an experiment the caller can
 * read. A refused change is checked, as admin, not to have happened.
 */
import assert from 'node:assert/strict'
import {execFile} from 'node:child_process'
import {after, before, describe, it} from 'node:test'
import {promisify} from 'node:util'

import {type AuthTarget, authTarget, targetTitle} from '../support/auth-target.js'
import {requireMlflow} from '../support/mlflow-install.js'
import {MLFLOW_VERSIONS} from '../support/mlflow-versions.js'
import {restClient} from '../support/rest.js'
import {releaseServers, uniqueName} from '../support/servers.js'

/** MLflow's serialization of a built-in judge, made by the installed MLflow itself. */
async function serializedScorer(version: string, name: string): Promise<string> {
  const script = 'import json, sys\nfrom mlflow.genai.scorers import Safety\nprint(json.dumps(Safety(name=sys.argv[1]).model_dump()))'
  const {stdout} = await promisify(execFile)(await requireMlflow(version), ['-W', 'ignore', '-c', script, name])
  return stdout.trim()
}

const version = MLFLOW_VERSIONS.latest
for (const kind of ['basic-auth', 'serve'] as const) {
  describe(`online scoring permissions on ${targetTitle(kind)} MLflow ${version}`, () => {
    let target: AuthTarget
    const owner = {password: `owner-${uniqueName('pw')}`, username: uniqueName('scoring-owner')}
    const other = {password: `other-${uniqueName('pw')}`, username: uniqueName('scoring-other')}
    const {call, ok} = restClient(() => target.url)

    before(async () => {
      target = await authTarget(version, kind, {users: [owner, other]})
    })
    after(async () => {
      await target?.stop()
      await releaseServers()
    })

    it('EDIT on the experiment sets a configuration; reading one needs READ on its experiment', async () => {
      const {experiment_id: experimentId} = await ok(owner, 'POST', '/api/2.0/mlflow/experiments/create', {name: uniqueName('online')})
      const name = `judge-${uniqueName('s')}`
      await ok(owner, 'POST', '/api/3.0/mlflow/scorers/register', {experiment_id: experimentId, name, serialized_scorer: await serializedScorer(version, name)})
      const set = (who: typeof owner, sampleRate: number) =>
        call(who, 'PUT', '/api/3.0/mlflow/scorers/online-config', {experiment_id: experimentId, name, sample_rate: sampleRate})
      const {config} = (await set(owner, 0)).json()
      const configs = `/api/3.0/mlflow/scorers/online-configs?scorer_ids=${encodeURIComponent(config.scorer_id)}`

      // default_permission READ: another user reads the configuration, but cannot set it.
      assert.equal((await set(other, 0.5)).status, 403)
      const seen = (await ok(target.admin, 'GET', configs)).configs
      assert.equal(seen[0].sample_rate, 0, 'a refused update changed the configuration')
      assert.deepEqual(
        (await ok(other, 'GET', configs)).configs.map((row: {scorer_id: string}) => row.scorer_id),
        [config.scorer_id],
      )

      // A DENY on the experiment hides its configurations.
      await ok(target.admin, 'POST', '/api/3.0/mlflow/users/permissions/grant', {
        permission: 'DENY',
        resource_id: experimentId,
        resource_type: 'experiment',
        username: other.username,
      })
      assert.equal((await call(other, 'GET', configs)).status, 403)

      // EDIT sets it.
      await ok(target.admin, 'POST', '/api/3.0/mlflow/users/permissions/revoke', {
        resource_id: experimentId,
        resource_type: 'experiment',
        username: other.username,
      })
      await ok(target.admin, 'POST', '/api/3.0/mlflow/users/permissions/grant', {
        permission: 'EDIT',
        resource_id: experimentId,
        resource_type: 'experiment',
        username: other.username,
      })
      assert.equal((await set(other, 0)).status, 200)
    })
  })
}
