/**
 * The perms commands' kinds, '*' and DENY against a scripted server: answers of unified servers
 * older than a feature (MLflow 3.13–3.16, not installed here: their words are those of their
 * permissions.py), and what is refused before any request. Real MLflow 3.12 and 3.17 are in
 * test/interop/perms-kinds.test.ts.
 */
import assert from 'node:assert/strict'
import {type ServerResponse} from 'node:http'
import {after, before, beforeEach, describe, it} from 'node:test'

import {ExitCode} from '../../src/core/errors.js'
import {type Handler, json, scriptedServer, type TestServer} from '../support/recorder.js'
import {runCommand} from '../support/run-command.js'

const invalid = (response: ServerResponse, message: string) => json(response, 400, {error_code: 'INVALID_PARAMETER_VALUE', message})

/** MLflow 3.14's validation: no mcp_server, no tiers, no DENY. */
const OLD_TYPES = "('experiment', 'gateway_endpoint', 'gateway_model_definition', 'gateway_secret', 'prompt', 'registered_model', 'scorer', 'workspace')"
const OLD_LEVELS = "('READ', 'USE', 'EDIT', 'MANAGE', 'NO_PERMISSIONS')"

describe('perms kinds, * and DENY against a scripted server', () => {
  let server: TestServer
  let url: string
  let routes: Record<string, Handler>
  let seen: string[]

  before(async () => {
    server = await scriptedServer((request, path) => {
      seen.push(`${request.method} ${path}`)
      return routes[`${request.method} ${path}`]
    })
    url = server.url
  })

  after(() => server.close())

  beforeEach(() => {
    routes = {}
    seen = []
  })

  const run = (args: string[]) =>
    runCommand([...args, '--json'], {
      env: {MLFLOW_HTTP_REQUEST_MAX_RETRIES: '0', MLFLOW_TRACKING_PASSWORD: 'pw', MLFLOW_TRACKING_URI: url, MLFLOW_TRACKING_USERNAME: 'admin'},
    })

  /** A unified server of MLflow 3.14: it validates as its permissions.py does, and stores nothing. */
  function olderUnifiedServer(): void {
    routes['GET /api/3.0/mlflow/users/permissions/list'] = (_request, response) => json(response, 200, {is_admin: false, permissions: []})
    routes['POST /api/3.0/mlflow/users/permissions/grant'] = (_request, response, body) => {
      const {permission, resource_type: type} = JSON.parse(body) as {permission: string; resource_type: string}
      if (!OLD_LEVELS.includes(`'${permission}'`)) invalid(response, `Invalid permission '${permission}'. Valid permissions are: ${OLD_LEVELS}`)
      else if (permission === 'NO_PERMISSIONS')
        invalid(
          response,
          `Invalid permission 'NO_PERMISSIONS' for resource_type='${type}'. Resource-level grants accept only: ('EDIT', 'MANAGE', 'READ', 'USE').`,
        )
      else if (!OLD_TYPES.includes(`'${type}'`)) invalid(response, `Invalid resource type '${type}'. Valid resource types are: ${OLD_TYPES}`)
      else json(response, 200, {})
    }
  }

  it('an unknown resource type or DENY from a unified server older than the feature: exit 8 naming the release', async () => {
    olderUnifiedServer()
    const cases: Array<[string[], string, string]> = [
      [['mcp-server', 'docs-search'], 'READ', 'This server does not take permissions on MCP servers: MLflow added them in 3.15.'],
      [['trace', '*'], 'EDIT', 'This server does not take permissions on traces: MLflow added them in 3.17.'],
      [['gateway-endpoint', 'e-1'], 'DENY', 'This server does not take DENY: MLflow added it in 3.17.'],
    ]
    for (const [target, level, message] of cases) {
      const result = await run(['perms', 'grant', ...target, '--user', 'alice', '--permission', level])
      assert.equal(result.code, ExitCode.Unsupported, `${target.join(' ')}: ${result.stdout}${result.stderr}`)
      assert.deepEqual(JSON.parse(result.stdout).error, {code: 'UNSUPPORTED', exit: ExitCode.Unsupported, message})
    }

    // The same server's other refusals stay what they are.
    const other = await run(['perms', 'grant', 'gateway-secret', 's-1', '--user', 'alice', '--permission', 'NO_PERMISSIONS'])
    assert.equal(other.code, ExitCode.Usage)
  })

  it("a pattern a kind cannot take is refused before any request: an id on a tier, '*' as one experiment's scorers, an empty name", async () => {
    const cases: Array<[string[], RegExp]> = [
      [['run', 'a1b2c3'], /MLflow grants runs only all at once: give '\*', not "a1b2c3"/],
      [['model-version', '3'], /MLflow grants model versions only all at once/],
      [['scorer', '42', '*'], /no pattern for all scorers of one experiment/],
      [['prompt', ' '], /The prompt name is empty/],
    ]
    for (const [target, message] of cases) {
      const result = await run(['perms', 'grant', ...target, '--user', 'alice', '--permission', 'READ'])
      assert.equal(result.code, ExitCode.Usage, target.join(' '))
      assert.match(JSON.parse(result.stdout).error.message, message)
    }

    assert.deepEqual(seen, [])
  })

  it("'*' needs no lookup: the grant goes out with resource_id '*'", async () => {
    let sent: unknown
    routes['POST /api/3.0/mlflow/users/permissions/grant'] = (_request, response, body) => {
      sent = JSON.parse(body)
      json(response, 200, {})
    }

    const result = await run(['perms', 'grant', 'scorer', '*', '--user', 'alice', '--permission', 'use'])
    assert.equal(result.code, 0, result.stderr)
    assert.deepEqual(sent, {permission: 'USE', resource_id: '*', resource_type: 'scorer', username: 'alice'})
    assert.deepEqual(JSON.parse(result.stdout).resource, {id: '*', kind: 'scorer'})
    assert.deepEqual(seen, ['POST /api/3.0/mlflow/users/permissions/grant'])
  })

  it("perms list groups rows by kind (known kinds in order, unknown ones last), '*' first, ids as numbers, own rows before roles'", async () => {
    const row = (resource_type: string, resource_pattern: string, role_name = '__user_2__') => ({
      permission: 'READ',
      resource_pattern,
      resource_type,
      role_id: 1,
      role_name,
    })
    routes['GET /api/3.0/mlflow/users/permissions/list'] = (_request, response) =>
      json(response, 200, {
        is_admin: false,
        permissions: [
          row('trace', '*'),
          row('some_future_type', 'x'),
          row('experiment', '10'),
          row('prompt', 'summarize', 'reviewers'),
          row('experiment', '9'),
          row('prompt', 'summarize'),
          row('registered_model', 'churn'),
          row('experiment', '*'),
          row('mcp_server', 'docs'),
        ],
      })
    routes['GET /api/2.0/mlflow/experiments/get'] = (_request, response) => json(response, 404, {error_code: 'RESOURCE_DOES_NOT_EXIST', message: 'gone'})

    const result = await run(['perms', 'list', '--user', 'alice'])
    assert.equal(result.code, 0, result.stderr)
    assert.deepEqual(
      JSON.parse(result.stdout).permissions.map((entry: {kind: string; resource: string; via: string}) => `${entry.kind} ${entry.resource} ${entry.via}`),
      [
        'experiment * direct',
        'experiment 9 direct',
        'experiment 10 direct',
        'model churn direct',
        'prompt summarize direct',
        'prompt summarize role reviewers',
        'mcp-server docs direct',
        'trace * direct',
        'some_future_type x direct',
      ],
    )
  })
})
