import assert from 'node:assert/strict'
import {test} from 'node:test'

import {diff, planJson, renderPlan, summaryLine} from '../../src/policy/plan.js'
import {exp, policy, target} from './fixtures.js'

const server = () =>
  policy(
    {
      admin: {admin: true},
      alice: {
        grants: [
          [exp('1', 'Churn'), 'READ'],
          [target('model', 'churn'), 'EDIT'],
        ],
      },
      bob: {grants: [[exp('2'), 'MANAGE']]},
      carol: {grants: [[exp('1', 'Churn'), 'READ']]},
    },
    {
      old: {members: ['bob']},
      readers: {
        description: 'reads',
        members: ['alice', 'bob'],
        rows: [
          [exp('*'), 'READ'],
          [target('model', '*'), 'READ'],
        ],
      },
    },
  )

const file = () =>
  policy(
    {
      alice: {
        admin: true,
        grants: [
          [exp('1', 'Churn'), 'EDIT'],
          [target('prompt', 'summarize'), 'READ'],
        ],
      },
      bob: {grants: [[exp('2'), 'MANAGE']]},
      dave: {grants: [[exp('*'), 'DENY']], password: {env: 'DAVE_PW'}},
    },
    {
      readers: {
        description: 'reads everything',
        members: ['alice', 'dave'],
        rows: [
          [exp('*'), 'READ'],
          [target('run', '*'), 'DENY'],
        ],
      },
      writers: {members: ['bob'], rows: [[exp('2'), 'EDIT']]},
    },
  )

test('diff: every kind of change, per user then per role, and what the file does not describe is unmanaged', () => {
  const plan = diff(file(), server(), {prune: false})
  assert.equal(
    renderPlan(plan),
    [
      'user alice',
      '  ~ admin false → true',
      '  ~ experiment "Churn" (1): READ → EDIT',
      '  + prompt "summarize": READ',
      'user dave',
      '  + create user (password from $DAVE_PW)',
      '  + all experiments (*): DENY',
      'role readers',
      '  ~ description "reads" → "reads everything"',
      '  + all runs (*): DENY',
      '  + member dave',
      'role writers',
      '  + create role',
      '  + experiment "exp 2" (2): EDIT',
      '  + member bob',
      '',
      'Unmanaged (on the server, not in the file; --prune removes them):',
      '  user alice: registered model "churn": EDIT',
      '  user carol: experiment "Churn" (1): READ',
      '  role old',
      '  role readers: all registered models (*): READ',
      '  role readers: member bob',
      '',
      'Plan: 8 to add, 3 to change, 0 to remove; 5 unmanaged',
    ].join('\n'),
  )
})

test('diff --prune: the unmanaged become removals, users are never removed', () => {
  const plan = diff(file(), server(), {prune: true})
  assert.deepEqual(plan.unmanaged, [])
  const removals = plan.changes.filter((change) => change.action === 'remove').map((change) => planJson({changes: [change], unmanaged: []}).changes[0])
  assert.deepEqual(removals, [
    {
      action: 'remove',
      from: 'EDIT',
      resource: {kind: 'model', label: 'churn', pattern: 'churn', resource_type: 'registered_model'},
      user: 'alice',
      what: 'grant',
    },
    {action: 'remove', from: 'READ', resource: {kind: 'experiment', label: 'Churn', pattern: '1', resource_type: 'experiment'}, user: 'carol', what: 'grant'},
    {action: 'remove', role: {name: 'old', workspace: 'default'}, what: 'role'},
    {
      action: 'remove',
      from: 'READ',
      resource: {kind: 'model', label: '*', pattern: '*', resource_type: 'registered_model'},
      role: {name: 'readers', workspace: 'default'},
      what: 'row',
    },
    {action: 'remove', role: {name: 'readers', workspace: 'default'}, user: 'bob', what: 'member'},
  ])
  assert.equal(summaryLine(plan), 'Plan: 8 to add, 3 to change, 5 to remove; 0 unmanaged')
})

test('diff of a policy with itself is empty; a description left out of the file is not managed', () => {
  const same = diff(server(), server(), {prune: true})
  assert.deepEqual(same, {changes: [], unmanaged: []})
  assert.match(renderPlan(same), /^No changes: the server matches the file\.\n\nPlan: 0 to add, 0 to change, 0 to remove; 0 unmanaged$/)
  const withoutDescription = server()
  withoutDescription.roles.get('default\u0000readers')!.description = null
  assert.deepEqual(diff(withoutDescription, server(), {prune: true}).changes, [])
})

test('planJson: stable field names, a created user says where the password comes from but never holds one', () => {
  const json = planJson(diff(file(), server(), {prune: false}))
  assert.deepEqual(json.summary, {add: 8, change: 3, remove: 0, unmanaged: 5})
  assert.deepEqual(json.changes[3], {action: 'add', password: 'env', user: 'dave', what: 'user'})
  assert.deepEqual(json.changes[0], {action: 'change', from: false, to: true, user: 'alice', what: 'admin'})
  assert.deepEqual(json.changes[8], {action: 'add', role: {name: 'writers', workspace: 'default'}, to: null, what: 'role'})
  assert.deepEqual(json.unmanaged[2], {role: {name: 'old', workspace: 'default'}, what: 'role'})
  assert.doesNotMatch(JSON.stringify(json), /DAVE_PW/)
})

test('unmanaged MANAGE grants on one resource are marked as what MLflow gives a creator; others are not', () => {
  const actual = policy({
    admin: {
      admin: true,
      grants: [
        [exp('7', 'made by admin'), 'MANAGE'],
        [target('model', 'churn'), 'MANAGE'],
        [exp('*'), 'MANAGE'],
        [target('prompt', 'summarize'), 'EDIT'],
      ],
    },
  })
  const unmanaged = renderPlan(diff(policy({}), actual, {prune: false}))
    .split('\n')
    .filter((line) => line.startsWith('  user admin'))
  assert.deepEqual(unmanaged, [
    '  user admin: all experiments (*): MANAGE',
    '  user admin: experiment "made by admin" (7): MANAGE (as MLflow gives its creator)',
    '  user admin: registered model "churn": MANAGE (as MLflow gives its creator)',
    '  user admin: prompt "summarize": EDIT',
  ])
})

test('--prune marks the removal of a creator-like grant where it happens', () => {
  const actual = policy({
    admin: {
      admin: true,
      grants: [
        [exp('7', 'made by admin'), 'MANAGE'],
        [exp('*'), 'MANAGE'],
      ],
    },
  })
  const lines = renderPlan(diff(policy({}), actual, {prune: true}))
    .split('\n')
    .filter((line) => line.startsWith('  - '))
  assert.deepEqual(lines, ['  - all experiments (*): MANAGE', '  - experiment "made by admin" (7): MANAGE (as MLflow gives its creator)'])
})

test('a created admin is created, then promoted', () => {
  const plan = diff(policy({eve: {admin: true, password: {generate: true}}}), policy({}), {prune: false})
  assert.equal(renderPlan(plan).split('\n').slice(0, 3).join('\n'), 'user eve\n  + create user (generated password)\n  ~ admin false → true')
})
