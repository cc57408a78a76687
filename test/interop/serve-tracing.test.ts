/**
 * MLflow tracing through serve with the real Python client as a non-admin: `@mlflow.trace` logs
 * a trace into the user's experiment (v3 start, span upload through mlflow-artifacts), the owner
 * searches and reads it, and a user the owner hid the experiment from can do neither.
 */
import assert from 'node:assert/strict'
import {execFile} from 'node:child_process'
import {after, before, describe, it} from 'node:test'
import {promisify} from 'node:util'

import {requireMlflow} from '../support/mlflow-install.js'
import {PINNED_VERSIONS} from '../support/mlflow-versions.js'
import {type Json} from '../support/rest.js'
import {type RunningServe, startServe} from '../support/serve.js'
import {acquireServer, releaseServers, uniqueName} from '../support/servers.js'

const SCRIPT = `
import json, sys, mlflow
from mlflow.exceptions import MlflowException
action, experiment = sys.argv[1], sys.argv[2]
def attempt(call):
    try:
        return {"ok": call()}
    except MlflowException as error:
        return {"error": error.error_code}
if action == "log":
    mlflow.set_experiment(experiment)
    @mlflow.trace(name="secret-span")
    def double(x):
        return x * 2
    double(21)
    mlflow.flush_trace_async_logging()
    experiment_id = mlflow.get_experiment_by_name(experiment).experiment_id
    print(json.dumps({"experiment_id": experiment_id}))
else:
    experiment_id, trace_id = sys.argv[3], sys.argv[4] if len(sys.argv) > 4 else None
    found = attempt(lambda: [t.info.trace_id for t in mlflow.search_traces(locations=[experiment_id], return_type="list")])
    read = attempt(lambda: [s.name for s in mlflow.MlflowClient().get_trace(trace_id).data.spans]) if trace_id else None
    print(json.dumps({"search": found, "get": read}))
`

async function python(version: string, user: {password: string; username: string}, url: string, args: string[]): Promise<Json> {
  const {stdout} = await promisify(execFile)(await requireMlflow(version), ['-c', SCRIPT, ...args], {
    env: {...process.env, MLFLOW_TRACKING_PASSWORD: user.password, MLFLOW_TRACKING_URI: url, MLFLOW_TRACKING_USERNAME: user.username},
  })
  return JSON.parse(stdout.trim().split('\n').at(-1)!)
}

for (const version of PINNED_VERSIONS) {
  describe(`tracing through serve (MLflow ${version})`, () => {
    let serve: RunningServe
    const owner = {password: `owner-${uniqueName('pw')}`, username: uniqueName('tracer')}
    const other = {password: `other-${uniqueName('pw')}`, username: uniqueName('other')}
    const admin = () => `Basic ${Buffer.from(`${serve.admin.username}:${serve.admin.password}`).toString('base64')}`
    const post = async (path: string, auth: string, body: unknown) => {
      const response = await fetch(serve.url + path, {
        body: JSON.stringify(body),
        headers: {authorization: auth, 'content-type': 'application/json'},
        method: 'POST',
      })
      assert.equal(response.status, 200, `${path}: ${await response.text()}`)
    }

    before(async () => {
      serve = await startServe({upstream: (await acquireServer(version, 'plain')).url})
      for (const user of [owner, other]) await post('/api/2.0/mlflow/users/create', admin(), user)
    })
    after(async () => {
      await serve?.stop()
      await releaseServers()
    })

    it('a non-admin traces into their experiment; a user it is hidden from cannot search or read it', async () => {
      const experiment = uniqueName('traces')
      const {experiment_id: experimentId} = await python(version, owner, serve.url, ['log', experiment])
      const mine = await python(version, owner, serve.url, ['read', experiment, experimentId])
      assert.equal(mine.search.ok.length, 1, JSON.stringify(mine))
      const [traceId] = mine.search.ok
      assert.deepEqual((await python(version, owner, serve.url, ['read', experiment, experimentId, traceId])).get, {ok: ['secret-span']})

      const ownerAuth = `Basic ${Buffer.from(`${owner.username}:${owner.password}`).toString('base64')}`
      await post('/api/2.0/mlflow/experiments/permissions/create', ownerAuth, {
        experiment_id: experimentId,
        permission: 'NO_PERMISSIONS',
        username: other.username,
      })
      const theirs = await python(version, other, serve.url, ['read', experiment, experimentId, traceId])
      assert.deepEqual(theirs, {get: {error: 'PERMISSION_DENIED'}, search: {error: 'PERMISSION_DENIED'}})
    })
  })
}
