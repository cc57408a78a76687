/**
 * MLflow 3.17's label schemas (the questions of a review) under its basic-auth app, one test body
 * against the real app and against serve: a schema is decided on its experiment, read with READ
 * there, created, changed and deleted with MANAGE. Every refused change is checked, as admin, not
 * to have happened.
 */
import assert from 'node:assert/strict'
import {after, before, describe, it} from 'node:test'

import {type AuthTarget, authTarget, targetTitle} from '../support/auth-target.js'
import {type Credentials} from '../support/mlflow-server.js'
import {MLFLOW_VERSIONS} from '../support/mlflow-versions.js'
import {type Json, restClient} from '../support/rest.js'
import {giveRoles} from '../support/roles.js'
import {releaseServers, uniqueName} from '../support/servers.js'

const SCHEMAS = '/api/3.0/mlflow/label-schemas'

const version = MLFLOW_VERSIONS.latest
for (const kind of ['basic-auth', 'serve'] as const) {
  describe(`label schema permissions on ${targetTitle(kind)} MLflow ${version}`, () => {
    let target: AuthTarget
    const user = (name: string) => ({password: `${name}-${uniqueName('pw')}`, username: uniqueName(`ls-${name}`)})
    // manager: MANAGE on the experiment; editor: EDIT; reader: the default (READ); denied: DENY.
    const [manager, editor, reader, denied] = [user('manager'), user('editor'), user('reader'), user('denied')]
    const {call, ok} = restClient(() => target.url)
    const admin = () => target.admin
    let experimentId: string
    const removals: Array<() => Promise<void>> = []

    before(async () => {
      target = await authTarget(version, kind, {users: [manager, editor, reader, denied]})
      experimentId = (await ok(admin(), 'POST', '/api/2.0/mlflow/experiments/create', {name: uniqueName('ls-exp')})).experiment_id
      const adminCall = (method: string, path: string, json: Record<string, unknown>) => ok(admin(), method, path, json)
      for (const [who, level] of [
        [manager, 'MANAGE'],
        [editor, 'EDIT'],
        [denied, 'DENY'],
      ] as const)
        removals.push(await giveRoles(adminCall, who.username, [[['experiment', experimentId, level]]]))
    })
    after(async () => {
      for (const remove of removals) await remove()
      await target?.stop()
      await releaseServers()
    })

    const schemaBody = (name: string) => ({
      experiment_id: experimentId,
      input: {pass_fail: {negative_label: 'no', positive_label: 'yes'}},
      instruction: 'first',
      name,
      type: 'FEEDBACK',
    })
    const listed = async (who: Credentials) =>
      ((await ok(who, 'GET', `${SCHEMAS}/list?experiment_id=${experimentId}`)).label_schemas as Json[] | undefined)?.map((schema) => schema.name) ?? []

    it('READ on the experiment reads a schema, MANAGE creates, changes and deletes it; a DENY hides it', async () => {
      const refusedName = uniqueName('refused')
      assert.equal((await call(editor, 'POST', `${SCHEMAS}/create`, schemaBody(refusedName))).status, 403)
      assert.equal((await call(denied, 'POST', `${SCHEMAS}/create`, schemaBody(refusedName))).status, 403)
      assert.ok(!(await listed(admin())).includes(refusedName), 'a refused create made the schema')

      const name = uniqueName('schema')
      const schema = (await ok(manager, 'POST', `${SCHEMAS}/create`, schemaBody(name))).label_schema as Json
      const id = schema.schema_id as string
      for (const who of [reader, editor]) {
        assert.equal(((await ok(who, 'GET', `${SCHEMAS}/get?schema_id=${id}`)).label_schema as Json).name, name)
        await ok(who, 'GET', `${SCHEMAS}/get-by-name?experiment_id=${experimentId}&name=${name}`)
        assert.ok((await listed(who)).includes(name))
      }

      assert.equal((await call(denied, 'GET', `${SCHEMAS}/get?schema_id=${id}`)).status, 403)
      assert.equal((await call(denied, 'GET', `${SCHEMAS}/get-by-name?experiment_id=${experimentId}&name=${name}`)).status, 403)
      assert.equal((await call(denied, 'GET', `${SCHEMAS}/list?experiment_id=${experimentId}`)).status, 403)

      assert.equal((await call(editor, 'PATCH', `${SCHEMAS}/update`, {instruction: 'changed', schema_id: id})).status, 403)
      assert.equal((await call(editor, 'DELETE', `${SCHEMAS}/delete`, {schema_id: id})).status, 403)
      assert.equal(((await ok(admin(), 'GET', `${SCHEMAS}/get?schema_id=${id}`)).label_schema as Json).instruction, 'first', 'a refused update changed it')

      await ok(manager, 'PATCH', `${SCHEMAS}/update`, {instruction: 'changed', schema_id: id})
      assert.equal(((await ok(reader, 'GET', `${SCHEMAS}/get?schema_id=${id}`)).label_schema as Json).instruction, 'changed')
      await ok(manager, 'DELETE', `${SCHEMAS}/delete`, {schema_id: id})
      assert.equal((await call(admin(), 'GET', `${SCHEMAS}/get?schema_id=${id}`)).status, 404)
      // A schema that does not exist: MLflow says so; serve answers as for one the caller may not see.
      assert.equal((await call(reader, 'GET', `${SCHEMAS}/get?schema_id=${uniqueName('no-such-schema')}`)).status, kind === 'serve' ? 403 : 404)
    })
  })
}
