import assert from 'node:assert/strict'
import {test} from 'node:test'

import {parsePolicy} from '../../src/policy/file.js'
import {type AccessPolicy, type Grant, type PolicyKind, roleKey, type RolePolicy, targetKey, type UserPolicy} from '../../src/policy/model.js'
import {writePolicy} from '../../src/policy/write-file.js'
import {fakeResolver} from './fake-resolver.js'

const EXPERIMENTS = {'1': 'My experiment', '12': '2024', '3': 'a: tricky # name', '7': 'Other'}

const grant = (kind: PolicyKind, pattern: string, level: string, label = pattern): Grant => ({level, target: {kind, label, pattern}})

function user(name: string, admin: boolean, grants: Grant[]): UserPolicy {
  return {admin, grants: new Map(grants.map((item) => [targetKey(item.target), item])), name}
}

function role(name: string, rows: Grant[], members: string[], options: {description?: string; workspace?: string} = {}): RolePolicy {
  return {
    description: options.description ?? null,
    members: new Set(members),
    name,
    rows: new Map(rows.map((item) => [targetKey(item.target), item])),
    workspace: options.workspace ?? 'default',
  }
}

function policy(users: UserPolicy[], roles: RolePolicy[]): AccessPolicy {
  return {roles: new Map(roles.map((item) => [roleKey(item), item])), users: new Map(users.map((item) => [item.name, item]))}
}

/** A server's state, as readServerState gives it (labels from the server, no origins). */
function sample(reverse = false): AccessPolicy {
  const order = <T>(items: T[]) => (reverse ? [...items].reverse() : items)
  return policy(
    order([
      user(
        'zoe',
        false,
        order([
          grant('model', 'churn', 'READ'),
          grant('experiment', '7', 'EDIT', 'Other'),
          grant('experiment', '*', 'READ'),
          grant('experiment', '1', 'MANAGE', 'My experiment'),
          grant('experiment', '12', 'READ', '2024'),
          grant('experiment', '3', 'READ', 'a: tricky # name'),
          // No experiment has id 99 any more: written by id.
          grant('experiment', '99', 'READ', '99'),
          grant('scorer', '1/a%2Fb%20c', 'EDIT', 'My experiment/a/b c'),
          grant('scorer', '99/s', 'READ', '99/s'),
          grant('scorer', '*', 'READ'),
          grant('run', '*', 'DENY'),
          grant('gateway-endpoint', 'ep-2', 'USE'),
          grant('prompt', 'summarize', 'READ'),
        ]),
      ),
      user('admin', true, []),
      user('alice', false, [grant('mcp-server', 'tools', 'USE')]),
    ]),
    order([
      role('writers', [grant('experiment', '7', 'EDIT', 'Other')], order(['zoe', 'alice'])),
      role('readers', order([grant('workspace', '*', 'USE'), grant('experiment', '*', 'READ'), grant('model', 'churn', 'DENY')]), ['alice'], {
        description: 'Read every experiment',
      }),
      role('readers', [], [], {workspace: 'team'}),
    ]),
  )
}

function withoutOrigins(value: AccessPolicy): AccessPolicy {
  const strip = (grants: Map<string, Grant>) => new Map([...grants].map(([key, item]) => [key, {level: item.level, target: item.target}]))
  return policy(
    [...value.users.values()].map((item) => ({admin: item.admin, grants: strip(item.grants), name: item.name})),
    [...value.roles.values()].map((item) => ({
      ...role(item.name, [], [...item.members], {workspace: item.workspace}),
      description: item.description,
      rows: strip(item.rows),
    })),
  )
}

const resolver = () => fakeResolver({experiments: EXPERIMENTS, models: ['churn'], prompts: ['summarize']})

test('round trip: reading what was written gives the same policy', async () => {
  const state = sample()
  const text = writePolicy(state)
  const read = await parsePolicy(text, resolver(), 'export.yaml')
  assert.deepEqual(withoutOrigins(read), state)
})

// Labels sort by code unit (digits, then capitals, then lower case), the same on every machine.
test('stable output: the order things were read in does not matter, and the layout is fixed', () => {
  const text = writePolicy(sample())
  assert.equal(writePolicy(sample(true)), text)
  assert.equal(
    text,
    `version: 1
users:
  - name: admin
    admin: true
  - name: alice
    grants:
      - {mcp-server: tools, permission: USE}
  - name: zoe
    grants:
      - {experiment: "*", permission: READ}
      - {experiment: "2024", permission: READ}
      - {experiment_id: "99", permission: READ}
      - {experiment: My experiment, permission: MANAGE}
      - {experiment: Other, permission: EDIT}
      - {experiment: "a: tricky # name", permission: READ}
      - {model: churn, permission: READ}
      - {prompt: summarize, permission: READ}
      - {scorer: "*", permission: READ}
      - {scorer: s, experiment_id: "99", permission: READ}
      - {scorer: a/b c, experiment: My experiment, permission: EDIT}
      - {gateway-endpoint: ep-2, permission: USE}
      - {run: "*", permission: DENY}
roles:
  - name: readers
    description: Read every experiment
    grants:
      - {experiment: "*", permission: READ}
      - {model: churn, permission: DENY}
      - {workspace: "*", permission: USE}
    members: [alice]
  - name: writers
    grants:
      - {experiment: Other, permission: EDIT}
    members: [alice, zoe]
  - name: readers
    workspace: team
`,
  )
})

test('filters: --kind keeps those grants and rows, --user that user and the roles they hold', () => {
  const byKind = writePolicy(sample(), {kinds: ['model']})
  assert.match(byKind, /- \{model: churn, permission: READ\}/)
  assert.doesNotMatch(byKind, /\{(experiment|workspace|scorer|run)/)
  assert.match(byKind, /- \{model: churn, permission: DENY\}/)
  const byUser = writePolicy(sample(), {user: 'alice'})
  assert.equal(
    byUser,
    `version: 1
users:
  - name: alice
    grants:
      - {mcp-server: tools, permission: USE}
roles:
  - name: readers
    description: Read every experiment
    grants:
      - {experiment: "*", permission: READ}
      - {model: churn, permission: DENY}
      - {workspace: "*", permission: USE}
    members: [alice]
  - name: writers
    grants:
      - {experiment: Other, permission: EDIT}
    members: [alice]
`,
  )
})
