/**
 * MLflow 3.17's MCP server registry under its basic-auth app, one test body against the real app
 * and against serve: a server is its creator's to manage, read by others at the default
 * permission; its versions are decided on the version tier; a version of a server that does not
 * exist creates it for its creator; listings keep what the caller may read (refilled to the page
 * size); a denied version tier hides the version an access endpoint serves; deleting a server
 * removes the rows on it. Every refused change is checked, as admin, not to have happened.
 */
import assert from 'node:assert/strict'
import {after, before, describe, it} from 'node:test'

import {type AuthTarget, authTarget, targetTitle} from '../support/auth-target.js'
import {type Credentials} from '../support/mlflow-server.js'
import {MLFLOW_VERSIONS} from '../support/mlflow-versions.js'
import {type Json, restClient} from '../support/rest.js'
import {type RowSpec, withRole as withRoleOf} from '../support/roles.js'
import {releaseServers, uniqueName} from '../support/servers.js'

const MCP = '/api/3.0/mlflow/mcp-servers'

const version = MLFLOW_VERSIONS.latest
for (const kind of ['basic-auth', 'serve'] as const) {
  describe(`MCP server permissions on ${targetTitle(kind)} MLflow ${version}`, () => {
    let target: AuthTarget
    const owner = {password: `owner-${uniqueName('pw')}`, username: uniqueName('mcp-owner')}
    const other = {password: `other-${uniqueName('pw')}`, username: uniqueName('mcp-other')}
    const {call, ok} = restClient(() => target.url)
    const admin = () => target.admin

    before(async () => {
      target = await authTarget(version, kind, {users: [owner, other]})
    })
    after(async () => {
      await target?.stop()
      await releaseServers()
    })

    /** `body` run while `other` holds a role with these rows (resource type, pattern, level). */
    const withRole = (rows: RowSpec[], body: () => Promise<void>) =>
      withRoleOf((method, path, json) => ok(admin(), method, path, json), other.username, rows, body)

    const ownRows = async (who: Credentials, name: string) =>
      ((await ok(who, 'GET', '/api/3.0/mlflow/users/current/permissions')).permissions as Json[]).filter(
        (row) => row.resource_type === 'mcp_server' && row.resource_pattern === name,
      )
    /** A fresh server name: `<namespace>/<slug>`. */
    const serverName = () => `com.example/${uniqueName('srv').toLowerCase()}`
    const createServer = (who: Credentials, name: string) => ok(who, 'POST', MCP, {description: 'first', name})
    const versionBody = (name: string, serverVersion = '1.0.0') => ({server_json: {description: 'an MCP server', name, version: serverVersion}})
    const listed = async (who: Credentials, query = '') => ((await ok(who, 'GET', `${MCP}${query}`)).mcp_servers as Json[]).map((server) => server.name)
    const exists = async (name: string) => (await call(admin(), 'GET', `${MCP}/${name}`)).status === 200

    it('a server: the creator manages, others read, a DENY hides, refused changes change nothing, delete takes the rows', async () => {
      const name = serverName()
      await createServer(owner, name)
      assert.equal((await ownRows(owner, name))[0]?.permission, 'MANAGE')
      assert.deepEqual((await ok(owner, 'GET', `${MCP}/${name}`)).allowed_actions, ['USE', 'UPDATE', 'DELETE', 'MANAGE'])

      // default_permission READ: another user reads, but neither updates nor deletes.
      assert.deepEqual((await ok(other, 'GET', `${MCP}/${name}`)).allowed_actions, [])
      assert.ok((await listed(other)).includes(name))
      assert.equal((await call(other, 'PATCH', `${MCP}/${name}`, {description: 'changed'})).status, 403)
      assert.equal((await call(other, 'POST', `${MCP}/${name}/tags`, {key: 'k', value: 'v'})).status, 403)
      assert.equal((await call(other, 'DELETE', `${MCP}/${name}`)).status, 403)
      const seen = await ok(admin(), 'GET', `${MCP}/${name}`)
      assert.equal(seen.description, 'first', 'a refused update changed the server')
      assert.deepEqual(seen.tags ?? {}, {}, 'a refused tag was set')

      await withRole([['mcp_server', name, 'DENY']], async () => {
        assert.equal((await call(other, 'GET', `${MCP}/${name}`)).status, 403)
        assert.ok(!(await listed(other)).includes(name))
      })
      await withRole([['mcp_server', name, 'EDIT']], async () => {
        await ok(other, 'PATCH', `${MCP}/${name}`, {description: 'edited'})
        assert.equal((await call(other, 'DELETE', `${MCP}/${name}`)).status, 403)
        assert.ok(await exists(name), 'a refused delete removed the server')
      })

      // A DENY on every server vetoes a create of one, and nothing is made.
      const vetoed = serverName()
      await withRole([['mcp_server', '*', 'DENY']], async () => {
        assert.equal((await call(other, 'POST', MCP, {name: vetoed})).status, 403)
      })
      assert.ok(!(await exists(vetoed)), 'a refused create made the server')

      await ok(owner, 'DELETE', `${MCP}/${name}`)
      assert.deepEqual(await ownRows(owner, name), [], 'the creator kept rows on the deleted server')
    })

    it('versions: the version tier decides, a new version needs EDIT on the server, and a DENY hides the version an endpoint serves', async () => {
      const name = serverName()
      await createServer(owner, name)
      await ok(owner, 'POST', `${MCP}/${name}/versions`, versionBody(name))
      const endpoint = await ok(owner, 'POST', `${MCP}/${name}/endpoints`, {server_version: '1.0.0', url: 'https://mcp.example.com/mcp'})
      assert.equal(endpoint.server_version, '1.0.0')

      // READ on the server: its versions read, not added to.
      assert.equal((await call(other, 'GET', `${MCP}/${name}/versions/1.0.0`)).status, 200)
      assert.equal((await call(other, 'POST', `${MCP}/${name}/versions`, versionBody(name, '2.0.0'))).status, 403)
      assert.equal((await call(other, 'DELETE', `${MCP}/${name}/versions/1.0.0`)).status, 403)
      const versions = (await ok(admin(), 'GET', `${MCP}/${name}/versions`)).mcp_server_versions as Json[]
      assert.deepEqual(
        versions.map((row) => row.version),
        ['1.0.0'],
        'a refused version create or delete changed the versions',
      )

      await withRole([['mcp_server_version', '*', 'DENY']], async () => {
        assert.equal((await call(other, 'GET', `${MCP}/${name}/versions/1.0.0`)).status, 403)
        assert.equal((await call(other, 'GET', `${MCP}/${name}/versions`)).status, 403)
        assert.equal((await call(other, 'GET', `${MCP}/${name}/endpoints?server_version=1.0.0`)).status, 403)
        // The endpoint is listed, without the version it serves.
        const seen = (await ok(other, 'GET', `${MCP}/${name}/endpoints/${endpoint.id}`)) as Json
        assert.equal(seen.id, endpoint.id)
        assert.equal(seen.server_version, null)
        const across = ((await ok(other, 'GET', `${MCP}/endpoints`)).mcp_access_endpoints as Json[]).find((row) => row.id === endpoint.id)
        assert.equal(across?.server_version, null)
      })
      // EDIT on the server adds versions; a version-tier DENY still vetoes that.
      await withRole([['mcp_server', name, 'EDIT']], async () => {
        await ok(other, 'POST', `${MCP}/${name}/versions`, versionBody(name, '2.0.0'))
        const manage = (await ownRows(other, name)).filter((row) => row.permission === 'MANAGE')
        assert.deepEqual(manage, [], 'adding a version to a server made its author MANAGE')
      })
      await withRole(
        [
          ['mcp_server', name, 'EDIT'],
          ['mcp_server_version', '*', 'DENY'],
        ],
        async () => {
          assert.equal((await call(other, 'POST', `${MCP}/${name}/versions`, versionBody(name, '3.0.0'))).status, 403)
        },
      )
      const after = ((await ok(admin(), 'GET', `${MCP}/${name}/versions`)).mcp_server_versions as Json[]).map((row) => row.version).sort()
      assert.deepEqual(after, ['1.0.0', '2.0.0'])
    })

    it('a version of a server that does not exist creates it for its author; a refused one makes nothing', async () => {
      const name = serverName()
      await ok(other, 'POST', `${MCP}/${name}/versions`, versionBody(name))
      assert.ok(await exists(name))
      assert.equal((await ownRows(other, name))[0]?.permission, 'MANAGE')

      // The body naming another server: refused, and no server is made.
      const mismatched = serverName()
      assert.equal((await call(other, 'POST', `${MCP}/${mismatched}/versions`, versionBody(serverName()))).status, 400)
      assert.ok(!(await exists(mismatched)), 'a refused version create made its server')
      // A body MLflow refuses once the server would be made (an unknown status): no server is left.
      const failing = serverName()
      assert.equal((await call(other, 'POST', `${MCP}/${failing}/versions`, {...versionBody(failing), status: 'no-such-status'})).status, 400)
      assert.ok(!(await exists(failing)), 'a failed version create left its server')
      // A DENY on every server vetoes it.
      const vetoed = serverName()
      await withRole([['mcp_server', '*', 'DENY']], async () => {
        assert.equal((await call(other, 'POST', `${MCP}/${vetoed}/versions`, versionBody(vetoed))).status, 403)
      })
      assert.ok(!(await exists(vetoed)), 'a refused version create made its server')
      assert.deepEqual(await ownRows(other, vetoed), [])
    })

    it('the listing keeps the servers the caller may read, refilled to the page size', async () => {
      // Named so that the hidden one comes first in name order.
      const prefix = serverName()
      const [hidden, shown] = [`${prefix}-a`, `${prefix}-b`]
      await createServer(owner, hidden)
      await createServer(owner, shown)
      await withRole([['mcp_server', hidden, 'DENY']], async () => {
        const filter = `?filter_string=${encodeURIComponent(`name LIKE '${prefix}-%'`)}`
        assert.deepEqual(await listed(owner, filter).then((names) => names.sort()), [hidden, shown].sort())
        const page = await ok(other, 'GET', `${MCP}${filter}&max_results=1&order_by=${encodeURIComponent('name ASC')}`)
        assert.deepEqual(
          (page.mcp_servers as Json[]).map((server) => server.name),
          [shown],
        )
        assert.ok(!(await listed(other)).includes(hidden))
      })
    })
  })
}
