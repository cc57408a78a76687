import assert from 'node:assert/strict'
import {test} from 'node:test'

import {UserError} from '../../src/core/errors.js'
import {parsePolicy, type Resolver} from '../../src/policy/file.js'
import {type AccessPolicy} from '../../src/policy/model.js'
import {fakeResolver, LEGACY_FEATURES} from './fake-resolver.js'

const server = () => fakeResolver({experiments: {'1': 'My experiment', '2': 'Other'}, models: ['churn'], prompts: ['summarize']})

const read = (text: string, resolver: Resolver = server()) => parsePolicy(text, resolver, 'access.yaml')

/** The UserError a file gets: its exit code, code and message lines. */
async function refused(text: string, resolver: Resolver = server()): Promise<{code: string; exit: number; lines: string[]}> {
  try {
    await read(text, resolver)
  } catch (error) {
    assert.ok(error instanceof UserError, String(error))
    const lines = error.message.split('\n')
    return {code: error.code, exit: error.exit, lines: lines.length > 1 ? lines.slice(1) : lines}
  }

  assert.fail('the file was accepted')
}

const grants = (policy: AccessPolicy, user: string) =>
  [...policy.users.get(user)!.grants.values()].map(
    (grant) => `${grant.target.kind} ${grant.target.pattern} (${grant.target.label}) ${grant.level} @${grant.origin?.line}`,
  )

test('a valid file: users, grants by name and id, scorer forms, roles and their members, resources merged', async () => {
  const policy = await read(`version: 1
users:
  - name: alice
    admin: true
    password: {env: ALICE_PW}
    grants:
      - {experiment: My experiment, permission: EDIT}
      - {experiment_id: "2", permission: READ}
      - {model: churn, permission: READ}
      - {prompt: summarize, permission: READ}
      - {scorer: relevance, experiment: My experiment, permission: READ}
      - {scorer: a/b c, experiment_id: "2", permission: EDIT}
      - {experiment_id: "99", permission: READ}
  - name: bob
    grants:
      - {scorer: "*", permission: READ}
      - {run: "*", permission: DENY}
      - {gateway-endpoint: ep-1, permission: USE}
roles:
  - name: readers
    description: Read every experiment
    grants:
      - {experiment: "*", permission: READ}
      - {workspace: "*", permission: USE}
    members: [alice, bob]
  - name: readers
    workspace: team
resources:
  - model: churn
    grants: {bob: EDIT}
`)
  const alice = policy.users.get('alice')!
  assert.equal(alice.admin, true)
  assert.deepEqual(alice.password, {env: 'ALICE_PW'})
  assert.deepEqual(alice.origin, {line: 3})
  assert.deepEqual(grants(policy, 'alice'), [
    'experiment 1 (My experiment) EDIT @7',
    'experiment 2 (Other) READ @8',
    'model churn (churn) READ @9',
    'prompt summarize (summarize) READ @10',
    'scorer 1/relevance (My experiment/relevance) READ @11',
    // MLflow quotes the scorer's name in the resource id, as Python's quote(safe='').
    'scorer 2/a%2Fb%20c (Other/a/b c) EDIT @12',
    // An id no experiment has: kept (it is what MLflow stores), labelled by the id.
    'experiment 99 (99) READ @13',
  ])
  assert.equal(policy.users.get('bob')!.admin, false)
  assert.deepEqual(grants(policy, 'bob'), [
    'scorer * (*) READ @16',
    'run * (*) DENY @17',
    'gateway-endpoint ep-1 (ep-1) USE @18',
    'model churn (churn) EDIT @30',
  ])
  const readers = policy.roles.get('default\u0000readers')!
  assert.equal(readers.description, 'Read every experiment')
  assert.deepEqual([...readers.members], ['alice', 'bob'])
  assert.deepEqual(
    [...readers.rows.values()].map((row) => `${row.target.kind} ${row.target.pattern} ${row.level}`),
    ['experiment * READ', 'workspace * USE'],
  )
  const team = policy.roles.get('team\u0000readers')!
  assert.equal(team.description, null)
  assert.equal(team.rows.size, 0)
})

test('schema errors are reported together, each with its line, exit 2, and nothing is looked up', async () => {
  const resolver = server()
  const result = await refused(
    `version: 1
users:
  - name: alice
    grants:
      - {experiment: My experiment, permission: REED}
      - {experimnt: x, permission: READ}
      - {run: "5", permission: READ}
      - {experiment: 2024, permission: READ}
  - admin: true
  - name: bob
    password: {env: BOB, stdin: true}
`,
    resolver,
  )
  assert.equal(result.exit, 2)
  assert.equal(result.code, 'USAGE_ERROR')
  assert.deepEqual(result.lines, [
    'access.yaml:5: "permission" must be one of READ, USE, EDIT, MANAGE, NO_PERMISSIONS, DENY, not "REED"',
    'access.yaml:6: unknown key "experimnt"; did you mean "experiment"?',
    'access.yaml:7: "run" must be "*", not "5"',
    'access.yaml:8: "experiment" must be a string (quote it)',
    'access.yaml:9: missing "name"',
    'access.yaml:11: "password" takes exactly one of env, stdin, generate',
  ])
  assert.deepEqual(resolver.asked, [])
})

test('YAML syntax errors and a wrong version carry their line', async () => {
  const syntax = await refused('version: 1\nusers:\n  - name: [alice\n')
  assert.equal(syntax.exit, 2)
  assert.match(syntax.lines[0], /^access\.yaml:\d+: YAML: /)
  const keys = await refused('version: 1\nversion: 1\n')
  assert.match(keys.lines[0], /^access\.yaml:2: YAML: Map keys must be unique/)
  assert.deepEqual((await refused('version: 2\n')).lines, ['access.yaml:1: "version" must be 1, not 2'])
  assert.deepEqual((await refused('users: []\n')).lines, ['access.yaml:1: missing "version"'])
})

test('duplicates: a user twice, a role twice, one target twice in a user or through resources, with both lines', async () => {
  const result = await refused(`version: 1
users:
  - name: alice
    grants:
      - {experiment: My experiment, permission: READ}
      - {experiment_id: "1", permission: EDIT}
  - name: bob
    grants:
      - {model: churn, permission: READ}
  - name: alice
roles:
  - name: r
  - name: r
    workspace: default
resources:
  - model: churn
    grants: {bob: EDIT}
`)
  assert.equal(result.exit, 2)
  assert.deepEqual(result.lines, [
    'access.yaml:10: user alice is listed twice (also on line 3)',
    'access.yaml:13: role r (workspace default) is listed twice (also on line 12)',
  ])
  // The same experiment by name and by id only shows once names are resolved.
  const targets = await refused(`version: 1
users:
  - name: alice
    grants:
      - {experiment: My experiment, permission: READ}
      - {experiment_id: "1", permission: EDIT}
  - name: bob
    grants:
      - {model: churn, permission: READ}
resources:
  - model: churn
    grants: {bob: EDIT}
`)
  assert.deepEqual(targets.lines, [
    'access.yaml:6: user alice has two grants on experiment "My experiment" (1) (also on line 5)',
    'access.yaml:12: user bob has two grants on registered model "churn" (also on line 9)',
  ])
})

test('members and resources must name listed users; a member twice is refused', async () => {
  const result = await refused(`version: 1
users:
  - name: alice
roles:
  - name: r
    members:
      - alice
      - carol
      - alice
resources:
  - experiment: My experiment
    grants:
      alice: READ
      dave: EDIT
`)
  assert.deepEqual(result.lines, [
    'access.yaml:8: role r: member carol is not listed under users',
    'access.yaml:9: role r: member alice is listed twice',
    'access.yaml:14: user dave is not listed under users',
  ])
})

test("kind and level rules: MLflow's own refusals, with lines", async () => {
  const result = await refused(`version: 1
users:
  - name: alice
    grants:
      - {workspace: "*", permission: USE}
      - {experiment: My experiment}
roles:
  - name: r
    grants:
      - {workspace: "*", permission: READ}
      - {experiment: "*", model: churn, permission: READ}
      - {scorer: relevance, permission: READ}
      - {scorer: "*", experiment: My experiment, permission: READ}
      - {permission: READ}
`)
  assert.equal(result.exit, 2)
  assert.deepEqual(result.lines, ['access.yaml:6: missing "permission"'])
  const semantic = await refused(`version: 1
users:
  - name: alice
    grants:
      - {workspace: "*", permission: USE}
roles:
  - name: r
    grants:
      - {workspace: "*", permission: READ}
      - {experiment: "*", model: churn, permission: READ}
      - {scorer: relevance, permission: READ}
      - {scorer: "*", experiment: My experiment, permission: READ}
      - {permission: READ}
      - {scorer: x, experiment: "*", permission: READ}
`)
  assert.deepEqual(semantic.lines, [
    'access.yaml:5: user alice: the workspace slot is for roles: a user is given it through a role',
    "access.yaml:9: role r: Invalid permission 'READ' for resource_type='workspace'. Workspace-wide grants accept only: ('MANAGE', 'USE').",
    'access.yaml:10: one item names one resource, not "experiment" and "model"',
    'access.yaml:11: scorer "relevance" needs its experiment: "experiment" (a name) or "experiment_id", one of them',
    'access.yaml:12: "scorer: *" is every scorer of every experiment: give no experiment with it',
    'access.yaml:13: name what the grant is on with one of: experiment, model, prompt, scorer, gateway-secret, gateway-endpoint, gateway-model-definition, mcp-server, run, trace, assessment, logged-model, review-queue, model-version, prompt-version, scorer-version, mcp-server-version, workspace, experiment_id',
    'access.yaml:14: a scorer is in one experiment: give its name or id, not "*" (use "scorer: *" alone for every scorer)',
  ])
})

test('NO_PERMISSIONS: refused where the server withholds by absence (3.17), taken by MLflow 3.12', async () => {
  const text = `version: 1
users:
  - name: alice
    grants:
      - {experiment: My experiment, permission: NO_PERMISSIONS}
roles:
  - name: r
    grants:
      - {experiment: "*", permission: NO_PERMISSIONS}
`
  const result = await refused(text)
  assert.deepEqual(result.lines, [
    "access.yaml:5: user alice: Invalid permission 'NO_PERMISSIONS' for resource_type='experiment'. Resource-level grants accept only: ('DENY', 'EDIT', 'MANAGE', 'READ', 'USE').",
    "access.yaml:9: role r: Invalid permission 'NO_PERMISSIONS' for resource_type='experiment'. Resource-level grants accept only: ('DENY', 'EDIT', 'MANAGE', 'READ', 'USE').",
  ])
  const legacy = await read(text, fakeResolver({experiments: {'1': 'My experiment'}, features: LEGACY_FEATURES}))
  assert.equal([...legacy.users.get('alice')!.grants.values()][0].level, 'NO_PERMISSIONS')
})

test('features the server lacks: exit 8 with the release that added them, before any lookup', async () => {
  const resolver = fakeResolver({experiments: {'1': 'My experiment'}, features: LEGACY_FEATURES, models: ['churn']})
  const result = await refused(
    `version: 1
users:
  - name: alice
    grants:
      - {experiment: "*", permission: READ}
      - {model: churn, permission: DENY}
      - {prompt: summarize, permission: READ}
      - {gateway-secret: s1, permission: READ}
roles:
  - name: r
    grants:
      - {experiment: "*", permission: READ}
      - {gateway-secret: s1, permission: READ}
      - {mcp-server: m, permission: READ}
      - {trace: "*", permission: READ}
`,
    resolver,
  )
  assert.equal(result.exit, 8)
  assert.equal(result.code, 'UNSUPPORTED')
  assert.deepEqual(result.lines, [
    'access.yaml:5: user alice: this server does not take "*" for all experiments in a user\'s grants: MLflow added it in 3.13 (a role can hold it)',
    'access.yaml:6: user alice: this server does not take DENY: MLflow added it in 3.17',
    'access.yaml:7: user alice: this server does not take permissions on prompts: MLflow added them in 3.13',
    'access.yaml:8: user alice: this server does not take permissions on gateway secrets: MLflow added them in 3.13',
    'access.yaml:14: role r: this server does not take permissions on MCP servers: MLflow added them in 3.15',
    'access.yaml:15: role r: this server does not take permissions on traces: MLflow added them in 3.17',
  ])
  assert.deepEqual(resolver.asked, [])
  const noRoles = await refused('version: 1\nroles:\n  - name: r\n', fakeResolver({features: []}))
  assert.equal(noRoles.exit, 8)
  assert.deepEqual(noRoles.lines, ['access.yaml:2: this server does not offer roles: MLflow added them to its basic-auth app in 3.12'])
})

test('names that do not resolve: an unknown experiment, registered model or prompt, each with its line', async () => {
  const result = await refused(`version: 1
users:
  - name: alice
    grants:
      - {experiment: Nobody made this, permission: READ}
      - {model: nomodel, permission: READ}
      - {prompt: noprompt, permission: READ}
      - {scorer: s, experiment: Missing too, permission: READ}
      - {experiment: "2024", permission: READ}
`)
  assert.equal(result.exit, 2)
  assert.deepEqual(result.lines, [
    'access.yaml:5: there is no experiment named "Nobody made this"',
    'access.yaml:6: there is no registered model named "nomodel"',
    'access.yaml:7: there is no prompt named "noprompt"',
    'access.yaml:8: there is no experiment named "Missing too"',
    'access.yaml:9: there is no experiment named "2024" (for an experiment id, use "experiment_id")',
  ])
})
