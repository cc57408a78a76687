/**
 * access.ts's explanations over a fake role API: the cases the interop test cannot set up on one
 * server (a default above a row's level, a workspace-admin row, a server that disagrees) and how
 * default_permission is learned.
 */
import assert from 'node:assert/strict'
import {test} from 'node:test'

import {accessOf} from '../../src/api/access.js'
import {type EffectivePermission, type RolesApi, type UserPermissionRow, type UserPermissions} from '../../src/api/roles-api.js'
import {MlflowApiError} from '../../src/client/http.js'
import {ExitCode} from '../../src/core/errors.js'

const row = (role: string, type: string, pattern: string, permission: string, workspace = 'default'): UserPermissionRow => ({
  permission,
  resource_pattern: pattern,
  resource_type: type,
  role_id: 1,
  role_name: role,
  workspace,
})

/** A role API answering from tables; `server` is what users/permissions/get says, `probes` records its calls. */
function fakeApi(users: Record<string, UserPermissions>, server: (username: string, type: string, id: string) => string) {
  const probes: string[] = []
  const api = {
    async effectivePermission(username: string, type: string, id: string): Promise<EffectivePermission> {
      probes.push(`${username} ${type} ${id}`)
      if (type === 'prompt') {
        throw new MlflowApiError('INVALID_PARAMETER_VALUE: unknown type', {
          code: 'INVALID_PARAMETER_VALUE',
          endpointMissing: false,
          errorCode: 'INVALID_PARAMETER_VALUE',
          exit: ExitCode.Usage,
          method: 'GET',
          path: '/x',
          status: 400,
        })
      }

      const permission = server(username, type, id)
      return {allowed: permission !== 'DENY' && permission !== 'NO_PERMISSIONS', permission}
    },
    async userPermissions(username: string): Promise<UserPermissions> {
      return users[username]
    },
  }
  return {api: api as unknown as RolesApi, probes}
}

const target = {resourceId: '7', resourceType: 'experiment'}

test('a row below default_permission is raised to it, and says so', async () => {
  const {api} = fakeApi(
    {carol: {is_admin: false, permissions: [row('viewers', 'experiment', '7', 'READ')]}, dave: {is_admin: false, permissions: []}},
    (username) => (username === 'carol' ? 'EDIT' : 'EDIT'),
  )
  const {defaultPermission, verdicts} = await accessOf(api, ['carol', 'dave'], target)
  assert.equal(defaultPermission, 'EDIT')
  assert.equal(verdicts[0].permission, 'EDIT')
  assert.equal(verdicts[0].floored, true)
  assert.equal(verdicts[0].source, 'role')
  assert.match(verdicts[0].reason, /raised to the server's default_permission \(EDIT\)/)
  assert.equal(verdicts[1].source, 'default')
})

test("a workspace-admin row gives MANAGE over a DENY; other workspaces' rows do not apply", async () => {
  const {api} = fakeApi(
    {
      erin: {is_admin: false, permissions: [row('blocked', 'experiment', '7', 'DENY'), row('ws-admins', 'workspace', '*', 'MANAGE')]},
      frank: {is_admin: false, permissions: [row('elsewhere', 'experiment', '*', 'EDIT', 'team-b')]},
    },
    (username, type) => (username === 'erin' && type === 'experiment' ? 'MANAGE' : 'READ'),
  )
  const {verdicts} = await accessOf(api, ['erin', 'frank'], target)
  assert.deepEqual(
    verdicts.map((verdict) => [verdict.permission, verdict.source]),
    [
      ['MANAGE', 'workspace-admin'],
      ['READ', 'default'],
    ],
  )
})

test('where the server resolves another level, its level is shown, with source "server"', async () => {
  const {api} = fakeApi(
    {gina: {is_admin: false, permissions: [row('__user_9__', 'experiment', '7', 'EDIT')]}, hal: {is_admin: false, permissions: []}},
    (username) => (username === 'gina' ? 'NO_PERMISSIONS' : 'READ'),
  )
  const [gina] = (await accessOf(api, ['gina', 'hal'], target)).verdicts
  assert.equal(gina.permission, 'NO_PERMISSIONS')
  assert.equal(gina.server_permission, 'NO_PERMISSIONS')
  assert.equal(gina.agrees, false)
  assert.equal(gina.source, 'server')
  assert.match(gina.reason, /the rows listed give EDIT \(own grant/)
})

test("default_permission is probed on a type the user has no row of, skipping workspace admins and types the server refuses, else with the caller's help", async () => {
  const {api, probes} = fakeApi(
    {
      admin: {is_admin: true, permissions: []},
      ivan: {is_admin: false, permissions: [row('ws', 'workspace', '*', 'MANAGE')]},
      judy: {is_admin: false, permissions: [row('r', 'experiment', '*', 'READ'), row('r', 'registered_model', '*', 'READ')]},
    },
    () => 'USE',
  )
  const {defaultPermission, verdicts} = await accessOf(api, ['ivan', 'judy'], target, async () => ['admin'])
  assert.equal(defaultPermission, 'USE')
  // ivan is a workspace admin (MANAGE everywhere, no default to see); judy has experiment and
  // model rows, and this server refuses prompts; then the caller, with no rows at all.
  assert.deepEqual(probes.slice(0, 2), ['judy prompt 0', 'admin experiment 7'])
  assert.equal(verdicts.length, 2)
})
