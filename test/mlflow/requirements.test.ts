import assert from 'node:assert/strict'
import {test} from 'node:test'

import {type RoleRow} from '../../src/mlflow/rbac.js'
import {authorize, governing, listable, type Requirement, tier} from '../../src/mlflow/requirements.js'

const row = (resourceType: string, resourcePattern: string, permission: string, roleName = 'r'): RoleRow => ({
  permission,
  resourcePattern,
  resourceType,
  roleName,
})
const experiment = {resourceId: '7', resourceType: 'experiment'}
/** A run operation as MLflow 3.17 states it: READ on the experiment, the action on `run *`, falling back to the experiment. */
const onRun = (action: Requirement['action']): Requirement[] => [
  {...experiment, action: 'read'},
  {...tier('run'), action, fallback: [experiment]},
]

test('a sub-resource tier holding a row decides over its experiment, both ways', () => {
  const manage = row('experiment', '7', 'MANAGE')
  assert.equal(authorize([manage], onRun('delete'), 'NO_PERMISSIONS'), true)
  assert.equal(authorize([manage, row('run', '*', 'DENY', 'other')], onRun('read'), 'NO_PERMISSIONS'), false)
  // A READ on runs limits an experiment EDIT...
  assert.equal(authorize([row('experiment', '7', 'EDIT'), row('run', '*', 'READ')], onRun('update'), 'NO_PERMISSIONS'), false)
  assert.equal(authorize([row('experiment', '7', 'EDIT'), row('run', '*', 'READ')], onRun('read'), 'NO_PERMISSIONS'), true)
  // ...and a MANAGE on runs confers what the experiment alone would not, once the experiment can be read.
  assert.equal(authorize([row('experiment', '7', 'READ'), row('run', '*', 'MANAGE')], onRun('delete'), 'NO_PERMISSIONS'), true)
  assert.equal(authorize([row('run', '*', 'MANAGE')], onRun('delete'), 'NO_PERMISSIONS'), false)
})

test('a fallback rung may ask its own action; with no row anywhere the last rung asks it of the default', () => {
  const requirement: Requirement = {...tier('assessment'), action: 'delete', fallback: [{...experiment, action: 'update'}]}
  assert.deepEqual(governing([row('experiment', '7', 'EDIT')], requirement, 'READ'), {action: 'update', key: {...experiment, action: 'update'}, level: 'EDIT'})
  assert.equal(authorize([row('assessment', '*', 'EDIT')], [requirement], 'MANAGE'), true, 'a positive row is floored at the default')
  assert.equal(authorize([row('assessment', '*', 'EDIT')], [requirement], 'READ'), false)
  assert.deepEqual(governing([], requirement, 'EDIT'), {action: 'update', level: 'EDIT'})
})

test('not_denied is met by anything but a DENY, a default of NO_PERMISSIONS included', () => {
  const create: Requirement = {...tier('run'), action: 'not_denied'}
  assert.equal(authorize([], [create], 'NO_PERMISSIONS'), true)
  assert.equal(authorize([row('run', '*', 'READ')], [create], 'NO_PERMISSIONS'), true)
  assert.equal(authorize([row('run', '*', 'DENY')], [create], 'MANAGE'), false)
})

test('the workspace-admin row meets every requirement, DENY rows notwithstanding', () => {
  const rows = [row('workspace', '*', 'MANAGE', 'admins'), row('run', '*', 'DENY'), row('experiment', '7', 'DENY')]
  assert.equal(authorize(rows, [...onRun('manage'), {...tier('run'), action: 'not_denied'}], 'NO_PERMISSIONS'), true)
})

test('listings fall back to the workspace slot at any level; the row itself decides first', () => {
  assert.equal(listable([row('workspace', '*', 'USE')], 'experiment', '7', 'NO_PERMISSIONS'), true)
  assert.equal(listable([row('workspace', '*', 'USE'), row('experiment', '7', 'DENY')], 'experiment', '7', 'NO_PERMISSIONS'), false)
  assert.equal(listable([row('experiment', '*', 'READ'), row('experiment', '3', 'DENY')], 'experiment', '7', 'NO_PERMISSIONS'), true)
  assert.equal(listable([], 'experiment', '7', 'NO_PERMISSIONS'), false)
  assert.equal(listable([], 'experiment', '7', 'READ'), true)
})
