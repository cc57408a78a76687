/**
 * Scorers (MLflow 3.7+) as MLflow's basic-auth app decides them, one test body against the real
 * app and against serve, both versions: the creator gets MANAGE (so only they can delete), READ
 * reads but cannot delete, and deleting a scorer removes every grant on it, so re-registering the
 * name does not hand old grants back.
 */
import assert from 'node:assert/strict'
import {execFile} from 'node:child_process'
import {after, before, describe, it} from 'node:test'
import {promisify} from 'node:util'

import {type AuthTarget, authTarget, targetTitle} from '../support/auth-target.js'
import {requireMlflow} from '../support/mlflow-install.js'
import {type Credentials} from '../support/mlflow-server.js'
import {MLFLOW_VERSIONS, PINNED_VERSIONS} from '../support/mlflow-versions.js'
import {restClient} from '../support/rest.js'
import {releaseServers, uniqueName} from '../support/servers.js'

/** MLflow's serialization of a built-in judge, made by the installed MLflow itself. */
async function serializedScorer(version: string, name: string): Promise<string> {
  const script = 'import json, sys\nfrom mlflow.genai.scorers import Safety\nprint(json.dumps(Safety(name=sys.argv[1]).model_dump()))'
  const {stdout} = await promisify(execFile)(await requireMlflow(version), ['-W', 'ignore', '-c', script, name])
  return stdout.trim()
}

for (const version of PINNED_VERSIONS) {
  for (const kind of ['basic-auth', 'serve'] as const) {
    describe(`scorer permissions on ${targetTitle(kind)} MLflow ${version}`, () => {
      let target: AuthTarget
      const owner = {password: `owner-${uniqueName('pw')}`, username: uniqueName('scorer-owner')}
      const reader = {password: `reader-${uniqueName('pw')}`, username: uniqueName('scorer-reader')}
      const {call, ok} = restClient(() => target.url)

      /** Each generation's own grant API: per-scorer endpoints up to 3.12, unified grants after. */
      const grantScorer = (who: Credentials, experimentId: string, name: string, username: string, permission: string) =>
        version === MLFLOW_VERSIONS.legacy
          ? ok(who, 'POST', '/api/3.0/mlflow/scorers/permissions/create', {experiment_id: experimentId, permission, scorer_name: name, username})
          : ok(who, 'POST', '/api/3.0/mlflow/users/permissions/grant', {
              permission,
              resource_id: `${experimentId}/${encodeURIComponent(name)}`,
              resource_type: 'scorer',
              username,
            })

      before(async () => {
        target = await authTarget(version, kind, {users: [owner, reader]})
      })
      after(async () => {
        await target?.stop()
        await releaseServers()
      })

      it('creator MANAGE, READ cannot delete, delete removes every grant', async () => {
        const {experiment_id: experimentId} = await ok(owner, 'POST', '/api/2.0/mlflow/experiments/create', {name: uniqueName('scorers')})
        const name = `judge ${uniqueName('s')}`
        const register = async () =>
          ok(owner, 'POST', '/api/3.0/mlflow/scorers/register', {experiment_id: experimentId, name, serialized_scorer: await serializedScorer(version, name)})
        const get = (who: Credentials) => call(who, 'GET', `/api/3.0/mlflow/scorers/get?experiment_id=${experimentId}&name=${encodeURIComponent(name)}`)
        const remove = (who: Credentials) => call(who, 'DELETE', '/api/3.0/mlflow/scorers/delete', {experiment_id: experimentId, name})

        await register()
        // default_permission READ: others read, but deleting needs MANAGE.
        assert.equal((await get(reader)).status, 200)
        assert.equal((await remove(reader)).status, 403)
        // Registering needs EDIT on the experiment.
        assert.equal(
          (
            await call(reader, 'POST', '/api/3.0/mlflow/scorers/register', {
              experiment_id: experimentId,
              name: `${name} 2`,
              serialized_scorer: await serializedScorer(version, `${name} 2`),
            })
          ).status,
          403,
        )

        // A MANAGE grant lets the reader delete…
        await grantScorer(owner, experimentId, name, reader.username, 'MANAGE')
        assert.equal((await remove(reader)).status, 200)
        assert.equal((await get(owner)).status, 404)

        // …and the delete took every grant on the scorer with it: after the owner registers the
        // name again (becoming its MANAGE holder again), the reader is back to READ.
        await register()
        assert.equal((await get(reader)).status, 200)
        assert.equal((await remove(reader)).status, 403)
        assert.equal((await remove(owner)).status, 200)
      })

      it('deleting one version keeps the scorer and every grant on it; deleting the scorer removes them', async () => {
        const {experiment_id: experimentId} = await ok(owner, 'POST', '/api/2.0/mlflow/experiments/create', {name: uniqueName('scorer-versions')})
        const name = `judge ${uniqueName('v')}`
        const register = async () =>
          ok(owner, 'POST', '/api/3.0/mlflow/scorers/register', {experiment_id: experimentId, name, serialized_scorer: await serializedScorer(version, name)})
        const versions = async () =>
          (
            (await ok(owner, 'GET', `/api/3.0/mlflow/scorers/versions?experiment_id=${experimentId}&name=${encodeURIComponent(name)}`)).scorers as Array<{
              scorer_version: number
            }>
          )
            .map((scorer) => scorer.scorer_version)
            .sort()
        const remove = (who: Credentials, body: Record<string, unknown> = {}) =>
          call(who, 'DELETE', '/api/3.0/mlflow/scorers/delete', {experiment_id: experimentId, name, ...body})
        await register()
        await register()
        await grantScorer(owner, experimentId, name, reader.username, 'MANAGE')
        assert.deepEqual(await versions(), [1, 2])

        // The reader's MANAGE deletes version 1; the scorer stays, with version 2.
        assert.equal((await remove(reader, {version: 1})).status, 200)
        assert.deepEqual(await versions(), [2])
        const readerDeletesAgain = await remove(reader, {version: '2'})
        const ownerDeletes = await remove(owner, {version: 2})
        if (kind === 'serve') {
          // Both grants survived the version's deletion: the reader deletes version 2 as well, and
          // the owner (creator, MANAGE) could have.
          assert.equal(readerDeletesAgain.status, 200, readerDeletesAgain.text)
          assert.equal(ownerDeletes.status, 404, ownerDeletes.text)
        } else {
          // MLflow's after-request hook drops every grant on the scorer whatever the version:
          // the reader is back to READ, and so is the scorer's creator.
          assert.equal(readerDeletesAgain.status, 403, readerDeletesAgain.text)
          assert.equal(ownerDeletes.status, 403, ownerDeletes.text)
          return
        }

        // With every version gone MLflow keeps the scorer (it drops it only when deleted without a
        // version), and serve its grants: the next registration is version 1 of that scorer, which
        // the reader may still delete whole, and that takes every grant with it.
        await register()
        assert.deepEqual(await versions(), [1])
        assert.equal((await remove(reader)).status, 200)
        await register()
        assert.equal((await remove(reader)).status, 403)
        assert.equal((await remove(owner)).status, 200)
      })
    })
  }
}
