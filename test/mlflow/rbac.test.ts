import assert from 'node:assert/strict'
import {test} from 'node:test'

import {decide, foldRows, isUserRoleName, patternMatches, type RoleRow, rowProblem, userRoleName} from '../../src/mlflow/rbac.js'

const row = (resourceType: string, resourcePattern: string, permission: string, roleName = 'r'): RoleRow => ({
  permission,
  resourcePattern,
  resourceType,
  roleName,
})

test('patterns: ids only on containers, * everywhere, unknown types match nothing', () => {
  assert.equal(patternMatches('7', 'experiment', '7'), true)
  assert.equal(patternMatches('7', 'experiment', '8'), false)
  assert.equal(patternMatches('*', 'experiment', '8'), true)
  assert.equal(patternMatches('*', 'run', 'abc'), true)
  assert.equal(patternMatches('abc', 'run', 'abc'), false)
  assert.equal(patternMatches('*', 'nonsense', 'x'), false)
})

test('fold: DENY from any role wins, else the highest level, and the deciding rows are named', () => {
  const rows = [row('experiment', '*', 'READ', 'a'), row('experiment', '7', 'EDIT', 'b'), row('experiment', '7', 'EDIT', 'c')]
  assert.deepEqual(foldRows(rows, 'experiment', '7'), {level: 'EDIT', rows: [rows[1], rows[2]]})
  assert.deepEqual(foldRows(rows, 'experiment', '8'), {level: 'READ', rows: [rows[0]]})
  const deny = row('experiment', '*', 'DENY', 'd')
  assert.deepEqual(foldRows([...rows, deny], 'experiment', '7'), {level: 'DENY', rows: [deny]})
  assert.equal(foldRows(rows, 'registered_model', '7'), undefined)
})

test('decide: first tier with a row decides (a deny is not rescued by the parent), default floors positive levels', () => {
  const tiers = [
    {resourceId: 'r1', resourceType: 'run'},
    {resourceId: '7', resourceType: 'experiment'},
  ]
  assert.deepEqual(decide([row('experiment', '7', 'MANAGE')], tiers, 'READ').level, 'MANAGE')
  assert.deepEqual(decide([row('run', '*', 'DENY'), row('experiment', '7', 'MANAGE')], tiers, 'READ').level, 'DENY')
  assert.deepEqual(decide([row('run', '*', 'READ'), row('experiment', '7', 'MANAGE')], tiers, 'NO_PERMISSIONS').level, 'READ')
  assert.deepEqual(decide([row('experiment', '7', 'READ')], tiers, 'EDIT').level, 'EDIT')
  assert.deepEqual(decide([], tiers, 'USE'), {level: 'USE', source: 'default'})
  const admin = row('workspace', '*', 'MANAGE')
  assert.deepEqual(decide([row('experiment', '7', 'DENY'), admin], tiers, 'READ'), {level: 'MANAGE', rows: [admin], source: 'workspace-admin'})
})

test("rows MLflow refuses get MLflow's message", () => {
  assert.equal(
    rowProblem('experiment', '1', 'NO_PERMISSIONS'),
    "Invalid permission 'NO_PERMISSIONS' for resource_type='experiment'. Resource-level grants accept only: ('DENY', 'EDIT', 'MANAGE', 'READ', 'USE').",
  )
  assert.equal(
    rowProblem('workspace', '*', 'READ'),
    "Invalid permission 'READ' for resource_type='workspace'. Workspace-wide grants accept only: ('MANAGE', 'USE').",
  )
  assert.equal(
    rowProblem('run', 'abc', 'READ'),
    "Invalid resource_pattern 'abc' for resource_type='run'. This resource type supports only wildcard ('*') grants.",
  )
  assert.match(rowProblem('experiments', '1', 'READ') ?? '', /^Invalid resource type 'experiments'\. Valid resource types are: \('assessment', 'experiment', /)
  assert.match(
    rowProblem('experiment', '1', 'ALL') ?? '',
    /^Invalid permission 'ALL'\. Valid permissions are: \('READ', 'USE', 'EDIT', 'MANAGE', 'NO_PERMISSIONS', 'DENY'\)$/,
  )
  assert.equal(rowProblem('experiment', '1', 'READ'), undefined)
})

test('per-user role names', () => {
  assert.equal(userRoleName(12), '__user_12__')
  assert.equal(isUserRoleName('__user_12__'), true)
  assert.equal(isUserRoleName('__user_x__'), false)
})
