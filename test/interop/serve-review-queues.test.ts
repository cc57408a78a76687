/**
 * MLflow 3.17's review queues under its basic-auth app, one test body against the real app and
 * against serve: a queue lives in an experiment and is decided on its `review_queue` tier and on
 * what the caller is to the queue (its owner, the user who made it; one of its assigned users;
 * neither). The listing shows every queue to EDIT, a reader's own to a reader; a custom queue may
 * not take a user's name (admins included); a review is attributed to its reviewer whatever the
 * client says. Every refused change is checked, as admin, not to have happened.
 */
import assert from 'node:assert/strict'
import {after, before, describe, it} from 'node:test'

import {type AuthTarget, authTarget, targetTitle} from '../support/auth-target.js'
import {type Credentials} from '../support/mlflow-server.js'
import {MLFLOW_VERSIONS} from '../support/mlflow-versions.js'
import {type Json, restClient} from '../support/rest.js'
import {giveRoles, type RowSpec} from '../support/roles.js'
import {releaseServers, uniqueName} from '../support/servers.js'
import {newTrace} from '../support/traces.js'

const QUEUES = '/api/3.0/mlflow/review-queues'

const version = MLFLOW_VERSIONS.latest
for (const kind of ['basic-auth', 'serve'] as const) {
  describe(`review queue permissions on ${targetTitle(kind)} MLflow ${version}`, () => {
    let target: AuthTarget
    const user = (name: string) => ({password: `${name}-${uniqueName('pw')}`, username: uniqueName(`rq-${name}`)})
    // owner: EDIT, makes the queues; editor: EDIT, neither owner nor assigned; member: assigned; reader: READ only.
    const [owner, editor, member, reader] = [user('owner'), user('editor'), user('member'), user('reader')]
    const {call, ok} = restClient(() => target.url)
    const admin = () => target.admin
    let experimentId: string
    const removals: Array<() => Promise<void>> = []

    const give = async (who: Credentials, rows: RowSpec[]) => giveRoles((method, path, json) => ok(admin(), method, path, json), who.username, [rows])

    before(async () => {
      target = await authTarget(version, kind, {users: [owner, editor, member, reader]})
      experimentId = (await ok(admin(), 'POST', '/api/2.0/mlflow/experiments/create', {name: uniqueName('rq-exp')})).experiment_id
      for (const who of [owner, editor]) removals.push(await give(who, [['experiment', experimentId, 'EDIT']]))
    })
    after(async () => {
      for (const remove of removals) await remove()
      await target?.stop()
      await releaseServers()
    })

    /** `body` run while `who` holds a role with these rows. */
    async function withRole(who: Credentials, rows: RowSpec[], body: () => Promise<void>): Promise<void> {
      const remove = await give(who, rows)
      try {
        await body()
      } finally {
        await remove()
      }
    }

    const createQueue = async (who: Credentials, users: string[] = [member.username]) =>
      (await ok(who, 'POST', `${QUEUES}/create`, {experiment_id: experimentId, name: uniqueName('queue'), queue_type: 'CUSTOM', users})).review_queue as Json
    const asAdmin = async (queueId: string) => (await ok(admin(), 'GET', `${QUEUES}/get?queue_id=${queueId}`)).review_queue as Json
    const listed = async (who: Credentials) =>
      ((await ok(who, 'GET', `${QUEUES}/list?experiment_id=${experimentId}`)).review_queues as Json[] | undefined)?.map((queue) => queue.queue_id) ?? []
    const trace = () => newTrace((method, path, body) => ok(admin(), method, path, body), experimentId)

    const items = async (queueId: string) => (await ok(admin(), 'GET', `${QUEUES}/items/list?queue_id=${queueId}`)).items as Json[] | undefined

    it('a queue is its creator’s: the owner (EDIT) and managers change it, assigned users read it, others with EDIT only list it', async () => {
      const queue = await createQueue(owner)
      const id = queue.queue_id as string
      assert.equal(queue.created_by, owner.username, 'the creator is the owner')
      assert.equal((await asAdmin(id)).created_by, owner.username)

      // The owner reads and changes it; an assigned user reads it; an EDITor who is neither may not.
      await ok(owner, 'GET', `${QUEUES}/get?queue_id=${id}`)
      await ok(owner, 'POST', `${QUEUES}/update`, {name: uniqueName('renamed'), queue_id: id})
      await ok(member, 'GET', `${QUEUES}/get?queue_id=${id}`)
      await ok(member, 'GET', `${QUEUES}/items/list?queue_id=${id}`)
      assert.equal((await call(editor, 'GET', `${QUEUES}/get?queue_id=${id}`)).status, 403)
      assert.equal((await call(editor, 'GET', `${QUEUES}/items/list?queue_id=${id}`)).status, 403)
      assert.equal((await call(reader, 'GET', `${QUEUES}/get?queue_id=${id}`)).status, 403)
      const before = await asAdmin(id)
      assert.equal((await call(editor, 'POST', `${QUEUES}/update`, {name: uniqueName('taken'), queue_id: id})).status, 403)
      assert.equal((await call(member, 'POST', `${QUEUES}/update`, {name: uniqueName('taken'), queue_id: id})).status, 403)
      // Only a manager gives a queue a new owner, not its owner.
      assert.equal((await call(owner, 'POST', `${QUEUES}/update`, {new_owner: editor.username, queue_id: id})).status, 403)
      assert.equal((await call(editor, 'POST', `${QUEUES}/delete`, {queue_id: id})).status, 403)
      assert.deepEqual(await asAdmin(id), before, 'a refused update or delete changed the queue')

      // The listing: every queue for EDIT on the experiment, the assigned ones for a reader.
      assert.ok((await listed(editor)).includes(id))
      assert.ok((await listed(member)).includes(id))
      assert.ok(!(await listed(reader)).includes(id))
      // A DENY on the queue tier: nothing listed, nothing opened, although the experiment is readable.
      await withRole(owner, [['review_queue', '*', 'DENY']], async () => {
        assert.deepEqual(await listed(owner), [])
        assert.equal((await call(owner, 'GET', `${QUEUES}/get?queue_id=${id}`)).status, 403)
        assert.equal((await call(owner, 'POST', `${QUEUES}/delete`, {queue_id: id})).status, 403)
      })
      // MANAGE on the experiment: any queue, a new owner included.
      await withRole(editor, [['experiment', experimentId, 'MANAGE']], async () => {
        await ok(editor, 'GET', `${QUEUES}/get?queue_id=${id}`)
        await ok(editor, 'POST', `${QUEUES}/update`, {new_owner: editor.username, queue_id: id})
      })
      assert.equal((await asAdmin(id)).created_by, editor.username)
      // No longer the owner: the first creator may not delete it; the new owner may.
      assert.equal((await call(owner, 'POST', `${QUEUES}/delete`, {queue_id: id})).status, 403)
      await ok(editor, 'POST', `${QUEUES}/delete`, {queue_id: id})
      assert.equal((await call(admin(), 'GET', `${QUEUES}/get?queue_id=${id}`)).status, 404)
    })

    it('a queue by name: the same rule; a DENY on the tier vetoes creating one', async () => {
      const queue = await createQueue(owner)
      const byName = (who: Credentials) => call(who, 'GET', `${QUEUES}/get-by-name?experiment_id=${experimentId}&name=${encodeURIComponent(queue.name)}`)
      assert.equal((await byName(owner)).status, 200)
      assert.equal((await byName(member)).status, 200)
      assert.equal((await byName(editor)).status, 403)
      assert.equal((await byName(reader)).status, 403)

      const vetoed = uniqueName('vetoed')
      await withRole(editor, [['review_queue', '*', 'DENY']], async () => {
        const refused = await call(editor, 'POST', `${QUEUES}/create`, {experiment_id: experimentId, name: vetoed, queue_type: 'CUSTOM'})
        assert.equal(refused.status, 403)
      })
      assert.equal((await call(reader, 'POST', `${QUEUES}/create`, {experiment_id: experimentId, name: vetoed, queue_type: 'CUSTOM'})).status, 403)
      const made = await call(admin(), 'GET', `${QUEUES}/get-by-name?experiment_id=${experimentId}&name=${vetoed}`)
      assert.equal(made.status, 404, 'a refused create made the queue')
    })

    it('a custom queue may not take a user’s name, in any case, not even from an admin', async () => {
      for (const who of [owner, admin()]) {
        const refused = await call(who, 'POST', `${QUEUES}/create`, {experiment_id: experimentId, name: reader.username.toUpperCase(), queue_type: 'CUSTOM'})
        assert.equal(refused.status, 400, refused.text)
        assert.equal(refused.json().error_code, 'INVALID_PARAMETER_VALUE')
      }

      const made = await call(admin(), 'GET', `${QUEUES}/get-by-name?experiment_id=${experimentId}&name=${reader.username}`)
      assert.equal(made.status, 404, 'a refused create made the queue')
      const queue = await createQueue(owner)
      const renamed = await call(owner, 'POST', `${QUEUES}/update`, {name: ` ${reader.username} `, queue_id: queue.queue_id})
      assert.equal(renamed.status, 400, renamed.text)
      assert.equal((await asAdmin(queue.queue_id)).name, queue.name)
    })

    it('items: any EDITor adds, the owner removes, an assigned EDITor reviews, attributed to them', async () => {
      const queue = await createQueue(owner)
      const id = queue.queue_id as string
      const [first, second] = [await trace(), await trace()]
      assert.equal((await call(reader, 'POST', `${QUEUES}/items/add`, {item_ids: [first], queue_id: id})).status, 403)
      assert.deepEqual(await items(id), undefined, 'a refused add added an item')
      await ok(editor, 'POST', `${QUEUES}/items/add`, {item_ids: [first, second], queue_id: id})

      // Reviewing needs EDIT and a place among the queue's users.
      const review = {completed_by: editor.username, item_id: first, queue_id: id, status: 'COMPLETE'}
      assert.equal((await call(member, 'POST', `${QUEUES}/items/set-status`, review)).status, 403)
      assert.equal((await call(editor, 'POST', `${QUEUES}/items/set-status`, review)).status, 403)
      assert.ok(
        (await items(id))?.every((item) => item.status === 'PENDING'),
        'a refused review changed an item',
      )
      await withRole(member, [['experiment', experimentId, 'EDIT']], async () => {
        const reviewed = (await ok(member, 'POST', `${QUEUES}/items/set-status`, review)).item as Json
        assert.equal(reviewed.completed_by, member.username, 'the review is attributed to its reviewer, not to whom the client names')
      })

      // Removing items is the owner's (or a manager's), not any EDITor's.
      assert.equal((await call(editor, 'POST', `${QUEUES}/items/remove`, {item_ids: [second], queue_id: id})).status, 403)
      assert.equal((await items(id))?.length, 2, 'a refused remove removed an item')
      await ok(owner, 'POST', `${QUEUES}/items/remove`, {item_ids: [second], queue_id: id})
      assert.deepEqual(
        (await items(id))?.map((item) => item.item_id),
        [first],
      )
    })
  })
}
