/**
 * serve speaks MLflow's basic-auth REST API: one scenario of MLflow's own Python auth client,
 * run against the real basic-auth server of the legacy pinned version and against serve (in front
 * of a plain MLflow server of the same version); both must give the same answers.
 */
import assert from 'node:assert/strict'
import {after, before, describe, it} from 'node:test'

import {type Credentials} from '../support/mlflow-server.js'
import {MLFLOW_VERSIONS} from '../support/mlflow-versions.js'
import {type CallResult, type PythonCall, PythonClient} from '../support/python-client.js'
import {type RunningServe, startServe} from '../support/serve.js'
import {acquireServer, releaseServers, uniqueName} from '../support/servers.js'

const version = MLFLOW_VERSIONS.legacy

/** What the scenario observes, with what legitimately differs between two servers (ids, DB error text) taken out. */
function normalize(results: CallResult[]): unknown[] {
  const scrub = (value: unknown): unknown => {
    if (Array.isArray(value)) return value.map(scrub).sort((a, b) => JSON.stringify(a).localeCompare(JSON.stringify(b)))
    if (value && typeof value === 'object') {
      return Object.fromEntries(
        Object.entries(value).map(([key, inner]) => [key, key === 'id' || key === 'user_id' ? '<id>' : key === 'password_hash' ? '<hash>' : scrub(inner)]),
      )
    }

    return value
  }

  return results.map((result) => (result.error ? {error: result.error.error_code ?? `HTTP ${result.error.status}`} : {ok: scrub(result.ok)}))
}

interface Names {
  alice: string
  bob: string
  eve: string
  experiment: string
  model: string
  nobody: string
}

/** The same names on both servers (each has its own user store), new ones for every run. */
function freshNames(): Names {
  return {
    alice: uniqueName('alice'),
    bob: uniqueName('bob'),
    eve: uniqueName('eve'),
    experiment: String(900_000 + Math.floor(Math.random() * 99_999)),
    model: uniqueName('model'),
    nobody: uniqueName('nobody'),
  }
}

async function classicScenario(url: string, admin: Credentials, {alice, bob, eve, experiment, model, nobody}: Names): Promise<unknown[]> {
  const password = 'alice-password-1'
  const asAdmin = new PythonClient({credentials: admin, trackingUri: url, version})
  const call = (method: string, ...args: unknown[]): PythonCall => ({args, client: 'auth', method})
  const adminResults = await asAdmin.batch([
    call('create_user', alice, password),
    call('create_user', alice, password),
    call('create_user', bob, 'short'),
    call('create_user', bob, 'bob-password-123'),
    call('get_user', alice),
    call('get_user', nobody),
    call('update_user_admin', alice, true),
    call('get_user', alice),
    call('update_user_admin', alice, false),
    call('update_user_admin', nobody, true),
    call('create_experiment_permission', experiment, alice, 'READ'),
    call('create_experiment_permission', experiment, alice, 'READ'),
    call('create_experiment_permission', experiment, alice, 'OWNER'),
    call('create_experiment_permission', experiment, nobody, 'READ'),
    call('get_experiment_permission', experiment, alice),
    call('update_experiment_permission', experiment, alice, 'EDIT'),
    call('get_experiment_permission', experiment, alice),
    call('update_experiment_permission', `${experiment}1`, alice, 'EDIT'),
    call('create_registered_model_permission', model, alice, 'MANAGE'),
    call('create_registered_model_permission', model, alice, 'MANAGE'),
    call('get_registered_model_permission', model, alice),
    call('update_registered_model_permission', model, alice, 'READ'),
    call('get_registered_model_permission', model, alice),
    call('get_registered_model_permission', `${model}-x`, alice),
    call('create_scorer_permission', experiment, 'relevance', alice, 'EDIT'),
    call('get_scorer_permission', experiment, 'relevance', alice),
    call('update_scorer_permission', experiment, 'relevance', alice, 'MANAGE'),
    call('get_scorer_permission', experiment, 'relevance', alice),
    call('get_user', alice),
    call('delete_scorer_permission', experiment, 'relevance', alice),
    call('get_scorer_permission', experiment, 'relevance', alice),
    call('delete_registered_model_permission', model, alice),
    call('delete_registered_model_permission', model, alice),
    call('delete_experiment_permission', experiment, alice),
    call('get_experiment_permission', experiment, alice),
    call('update_user_password', alice, `${password}-new`),
    call('delete_user', bob),
    call('get_user', bob),
    call('delete_user', bob),
  ])
  const asAlice = new PythonClient({credentials: {password: `${password}-new`, username: alice}, trackingUri: url, version})
  const aliceResults = await asAlice.batch([
    call('get_user', alice),
    call('get_user', admin.username),
    call('create_user', eve, 'eve-password-123'),
    call('update_user_admin', alice, true),
    call('create_experiment_permission', experiment, alice, 'MANAGE'),
  ])
  const stale = new PythonClient({credentials: {password, username: alice}, trackingUri: url, version})
  const staleResults = await stale.batch([call('get_user', alice)])
  return normalize([...adminResults, ...aliceResults, ...staleResults])
}

after(releaseServers)

describe(`serve and MLflow ${version}'s basic-auth app answer the classic auth client alike`, () => {
  let serve: RunningServe
  before(async () => {
    const upstream = await acquireServer(version, 'plain')
    serve = await startServe({upstream: upstream.url})
  })
  after(async () => serve?.stop())

  it('gives the same results and error codes for every method of the classic client', async () => {
    const real = await acquireServer(version, 'basic-auth')
    const names = freshNames()
    const expected = await classicScenario(real.url, real.admin!, names)
    const actual = await classicScenario(serve.url, serve.admin, names)
    // The scenario must exercise both successes and failures, or the comparison proves little.
    assert.ok(expected.filter((row) => (row as {error?: string}).error).length >= 10)
    assert.deepEqual(actual, expected)
  })
})
