/**
 * MLflow 3.17's evaluation datasets under its basic-auth app, one test body against the real app
 * and against serve: a dataset is decided on every experiment it is linked to (READ to read it,
 * EDIT to change it, MANAGE to delete it; linked to none or not there: refused), a create or a
 * search on every experiment it names, a new link on the experiments it adds too. Every refused
 * change is checked, as admin, not to have happened. (MLflow 3.12 has the routes but no rule for
 * them: everyone may do everything there, so only 3.17 is compared.)
 */
import assert from 'node:assert/strict'
import {after, before, describe, it} from 'node:test'

import {type AuthTarget, authTarget, targetTitle} from '../support/auth-target.js'
import {MLFLOW_VERSIONS} from '../support/mlflow-versions.js'
import {restClient} from '../support/rest.js'
import {releaseServers, uniqueName} from '../support/servers.js'

const DATASETS = '/api/3.0/mlflow/datasets'

const version = MLFLOW_VERSIONS.latest
for (const kind of ['basic-auth', 'serve'] as const) {
  describe(`evaluation dataset permissions on ${targetTitle(kind)} MLflow ${version}`, () => {
    let target: AuthTarget
    const owner = {password: `owner-${uniqueName('pw')}`, username: uniqueName('ds-owner')}
    const other = {password: `other-${uniqueName('pw')}`, username: uniqueName('ds-other')}
    const {call, ok} = restClient(() => target.url)
    const admin = (method: string, path: string, body?: unknown) => ok(target.admin, method, path, body)
    const grant = (experimentId: string, permission: string) =>
      admin('POST', '/api/3.0/mlflow/users/permissions/grant', {permission, resource_id: experimentId, resource_type: 'experiment', username: other.username})
    const revoke = (experimentId: string) =>
      admin('POST', '/api/3.0/mlflow/users/permissions/revoke', {resource_id: experimentId, resource_type: 'experiment', username: other.username})
    const experiment = async (who: typeof owner) =>
      (await ok(who, 'POST', '/api/2.0/mlflow/experiments/create', {name: uniqueName('ds-exp')})).experiment_id as string
    const create = async (who: typeof owner, experimentIds: string[]) =>
      (await ok(who, 'POST', `${DATASETS}/create`, {experiment_ids: experimentIds, name: uniqueName('ds')})).dataset.dataset_id as string
    const linked = async (datasetId: string) => ((await admin('GET', `${DATASETS}/${datasetId}/experiment-ids`)).experiment_ids ?? []).sort()
    const records = async (datasetId: string) => JSON.parse((await admin('GET', `${DATASETS}/${datasetId}/records`)).records) as unknown[]
    const searched = async (who: typeof owner, experimentId: string) => {
      const answer = await call(who, 'POST', `${DATASETS}/search`, {experiment_ids: [experimentId]})
      return answer.status === 200 ? (answer.json().datasets ?? []).map((row: {dataset_id: string}) => row.dataset_id) : answer.status
    }

    before(async () => {
      target = await authTarget(version, kind, {users: [owner, other]})
    })
    after(async () => {
      await target?.stop()
      await releaseServers()
    })

    it('a create needs EDIT on every experiment named (none named: refused); a search READ on every one', async () => {
      const mine = await experiment(owner)
      const name = uniqueName('ds-refused')
      // default_permission READ: the other user reads the experiment but cannot create in it.
      assert.equal((await call(other, 'POST', `${DATASETS}/create`, {experiment_ids: [mine], name})).status, 403)
      const theirs = await experiment(other)
      assert.equal((await call(other, 'POST', `${DATASETS}/create`, {experiment_ids: [theirs, mine], name})).status, 403)
      // No experiment at all: MLflow refuses (403), serve asks for one (400).
      assert.ok([400, 403].includes((await call(other, 'POST', `${DATASETS}/create`, {name})).status))
      assert.ok([400, 403].includes((await call(other, 'POST', `${DATASETS}/search`, {})).status))
      assert.deepEqual(await searched(target.admin, theirs), [], 'a refused create made a dataset')
      assert.deepEqual(await searched(target.admin, mine), [], 'a refused create made a dataset')

      const datasetId = await create(owner, [mine])
      assert.deepEqual(await searched(other, mine), [datasetId])
      await grant(mine, 'DENY')
      try {
        assert.equal(await searched(other, mine), 403)
        assert.equal((await call(other, 'GET', `${DATASETS}/search?experiment_ids=${theirs}&experiment_ids=${mine}`)).status, 403)
      } finally {
        await revoke(mine)
      }

      await grant(mine, 'EDIT')
      try {
        assert.equal((await call(other, 'POST', `${DATASETS}/create`, {experiment_ids: [theirs, mine], name})).status, 200)
      } finally {
        await revoke(mine)
      }
    })

    it("a dataset's reads need READ, changes EDIT, its delete MANAGE, on the experiment it is linked to", async () => {
      const mine = await experiment(owner)
      const datasetId = await create(owner, [mine])
      const row = JSON.stringify([{expectations: {answer: 'b'}, inputs: {question: 'a'}}])
      await ok(owner, 'POST', `${DATASETS}/${datasetId}/records`, {records: row})
      const [{dataset_record_id: recordId}] = (await records(datasetId)) as Array<{dataset_record_id: string}>
      await ok(owner, 'PATCH', `${DATASETS}/${datasetId}/tags`, {tags: JSON.stringify({stage: 'kept'})})
      const reads = [`${DATASETS}/${datasetId}`, `${DATASETS}/${datasetId}/records`, `${DATASETS}/${datasetId}/experiment-ids`]
      const changes: Array<[string, string, unknown]> = [
        ['PATCH', `${DATASETS}/${datasetId}/tags`, {tags: JSON.stringify({stage: 'changed'})}],
        ['DELETE', `${DATASETS}/${datasetId}/tags/stage`, undefined],
        ['POST', `${DATASETS}/${datasetId}/records`, {records: JSON.stringify([{inputs: {question: 'added'}}])}],
        ['DELETE', `${DATASETS}/${datasetId}/records`, {dataset_record_ids: [recordId]}],
        ['POST', `${DATASETS}/${datasetId}/remove-experiments`, {experiment_ids: [mine]}],
      ]
      const unchanged = async () => {
        const {dataset} = await admin('GET', `${DATASETS}/${datasetId}`)
        assert.deepEqual(JSON.parse(dataset.tags), {stage: 'kept'}, 'a refused change reached the tags')
        assert.deepEqual((await records(datasetId)).length, 1, 'a refused change reached the records')
        assert.deepEqual(await linked(datasetId), [mine], 'a refused change reached the links')
      }

      // READ (the default): reads, nothing else.
      for (const path of reads) assert.equal((await call(other, 'GET', path)).status, 200, path)
      for (const [method, path, body] of changes) assert.equal((await call(other, method, path, body)).status, 403, `${method} ${path}`)
      assert.equal((await call(other, 'DELETE', `${DATASETS}/${datasetId}`)).status, 403)
      await unchanged()

      // DENY: not even a read, and nothing of the dataset in the answer.
      await grant(mine, 'DENY')
      for (const path of reads) {
        const answer = await call(other, 'GET', path)
        assert.equal(answer.status, 403, path)
        assert.ok(!answer.text.includes('question'), `${path} leaked a record`)
      }

      await revoke(mine)

      // EDIT: changes, but not the delete.
      await grant(mine, 'EDIT')
      assert.equal((await call(other, 'PATCH', `${DATASETS}/${datasetId}/tags`, {tags: JSON.stringify({stage: 'edited'})})).status, 200)
      assert.equal((await call(other, 'POST', `${DATASETS}/${datasetId}/records`, {records: row})).status, 200)
      assert.equal((await call(other, 'DELETE', `${DATASETS}/${datasetId}`)).status, 403)
      assert.equal((await admin('GET', `${DATASETS}/${datasetId}`)).dataset.dataset_id, datasetId, 'a refused delete removed the dataset')
      await revoke(mine)

      await grant(mine, 'MANAGE')
      assert.equal((await call(other, 'DELETE', `${DATASETS}/${datasetId}`)).status, 200)
      await revoke(mine)
      assert.deepEqual(await searched(target.admin, mine), [])
    })

    it('links: every linked experiment decides; a new link needs EDIT on what it adds; linked to none or no such dataset: refused', async () => {
      const mine = await experiment(owner)
      const theirs = await experiment(other)
      const datasetId = await create(owner, [mine])

      // The other user controls their own experiment, but may not link it to a dataset of an
      // experiment they only read; nor may the owner link an experiment they only read.
      assert.equal((await call(other, 'POST', `${DATASETS}/${datasetId}/add-experiments`, {experiment_ids: [theirs]})).status, 403)
      assert.equal((await call(owner, 'POST', `${DATASETS}/${datasetId}/add-experiments`, {experiment_ids: [theirs]})).status, 403)
      assert.deepEqual(await linked(datasetId), [mine], 'a refused add-experiments linked')

      // Linked to both (the other user made theirs: MANAGE there): READ on both reads it; a change
      // needs EDIT on both.
      await admin('POST', `${DATASETS}/${datasetId}/add-experiments`, {experiment_ids: [theirs]})
      assert.equal((await call(other, 'GET', `${DATASETS}/${datasetId}`)).status, 200)
      assert.equal((await call(other, 'PATCH', `${DATASETS}/${datasetId}/tags`, {tags: JSON.stringify({stage: 'x'})})).status, 403)
      assert.equal((await call(other, 'POST', `${DATASETS}/${datasetId}/remove-experiments`, {experiment_ids: [mine]})).status, 403)
      assert.deepEqual(await linked(datasetId), [mine, theirs].sort(), 'a refused remove-experiments unlinked')
      await grant(mine, 'DENY')
      assert.equal((await call(other, 'GET', `${DATASETS}/${datasetId}`)).status, 403, 'a DENY on one linked experiment hides the dataset')
      await revoke(mine)

      // Unlinking needs EDIT on every experiment linked, even to unlink one's own: the owner only
      // reads the other's experiment; the other user, given EDIT on the owner's, may.
      assert.equal((await call(owner, 'POST', `${DATASETS}/${datasetId}/remove-experiments`, {experiment_ids: [mine]})).status, 403)
      await grant(mine, 'EDIT')
      assert.equal((await call(other, 'POST', `${DATASETS}/${datasetId}/remove-experiments`, {experiment_ids: [theirs]})).status, 200)
      await revoke(mine)
      assert.deepEqual(await linked(datasetId), [mine])

      // Linked to nothing: only admins reach it.
      await ok(owner, 'POST', `${DATASETS}/${datasetId}/remove-experiments`, {experiment_ids: [mine]})
      assert.deepEqual(await linked(datasetId), [])
      assert.equal((await call(owner, 'GET', `${DATASETS}/${datasetId}`)).status, 403)
      assert.equal((await admin('GET', `${DATASETS}/${datasetId}`)).dataset.dataset_id, datasetId)

      // A dataset that does not exist answers as one the caller may not see; so does a path under
      // datasets/ that names no route.
      assert.equal((await call(owner, 'GET', `${DATASETS}/d-${'0'.repeat(32)}`)).status, 403)
      assert.equal((await call(owner, 'GET', `${DATASETS}/${datasetId}/nothing-here`)).status, 403)
    })
  })
}
