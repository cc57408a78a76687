/**
 * serve as a proxy: the real MLflow Python client works through it, large artifacts stream with
 * flat memory, acknowledged writes survive SIGKILL, two processes share a store, and an upstream
 * that goes away and comes back is survived.
 */
import assert from 'node:assert/strict'
import {createHash} from 'node:crypto'
import {createReadStream} from 'node:fs'
import {mkdtemp, open, readFile, stat, writeFile} from 'node:fs/promises'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {after, describe, it} from 'node:test'

import {startMlflowServer} from '../support/mlflow-server.js'
import {MLFLOW_VERSIONS, PINNED_VERSIONS} from '../support/mlflow-versions.js'
import {PythonClient} from '../support/python-client.js'
import {basicAuth} from '../support/rest.js'
import {startServe} from '../support/serve.js'
import {acquireServer, releaseServers, uniqueName} from '../support/servers.js'
import {readStoreFiles} from '../support/store-files.js'

after(releaseServers)

async function sha256(path: string): Promise<string> {
  const hash = createHash('sha256')
  for await (const chunk of createReadStream(path)) hash.update(chunk as Buffer)
  return hash.digest('hex')
}

/** Peak resident memory of a process so far, in MiB (Linux). */
async function peakRssMiB(pid: number): Promise<number> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8')
  return Number(/VmHWM:\s+(\d+) kB/.exec(status)![1]) / 1024
}

for (const version of PINNED_VERSIONS) {
  describe(`MlflowClient through serve (MLflow ${version})`, () => {
    it('tracks experiments, runs, metrics, params, artifacts and registered models as an admin', async () => {
      const upstream = await acquireServer(version, 'plain')
      const serve = await startServe({upstream: upstream.url})
      try {
        const work = await mkdtemp(join(tmpdir(), 'mlflowctl-artifacts-'))
        const artifact = join(work, 'notes.txt')
        await writeFile(artifact, 'hello through the proxy\n')
        const client = new PythonClient({credentials: serve.admin, trackingUri: serve.url, version})
        const name = uniqueName('proxied')
        const experimentId = await client.call<string>('tracking', 'create_experiment', name)
        const run = await client.call<{info: {run_id: string}}>('tracking', 'create_run', experimentId)
        const runId = run.info.run_id
        const model = uniqueName('proxied-model')
        const results = await client.batch([
          {args: [runId, 'loss', 0.25], client: 'tracking', method: 'log_metric'},
          {args: [runId, 'lr', '0.1'], client: 'tracking', method: 'log_param'},
          {args: [runId, artifact], client: 'tracking', method: 'log_artifact'},
          {args: [runId], client: 'tracking', method: 'list_artifacts'},
          {args: [runId, 'notes.txt', work], client: 'tracking', method: 'download_artifacts'},
          {args: [runId], client: 'tracking', method: 'get_run'},
          {args: [model], client: 'tracking', method: 'create_registered_model'},
          {args: [model, `runs:/${runId}/notes.txt`, runId], client: 'tracking', method: 'create_model_version'},
          {args: [`name='${model}'`], client: 'tracking', method: 'search_model_versions'},
          {client: 'tracking', kwargs: {filter_string: `name = '${name}'`}, method: 'search_experiments'},
        ])
        for (const result of results) assert.equal(result.error, undefined, JSON.stringify(result.error))
        assert.deepEqual(
          results[3].ok.map((file: {path: string}) => file.path),
          ['notes.txt'],
        )
        assert.equal(await readFile(results[4].ok, 'utf8'), 'hello through the proxy\n')
        assert.equal(results[5].ok.data.metrics.find((metric: {key: string}) => metric.key === 'loss').value, 0.25)
        assert.equal(results[8].ok.length, 1)
        assert.deepEqual(
          results[9].ok.map((experiment: {experiment_id: string}) => experiment.experiment_id),
          [experimentId],
        )

        const anonymous = await fetch(`${serve.url}/api/2.0/mlflow/experiments/get?experiment_id=${experimentId}`)
        assert.equal(anonymous.status, 401)
      } finally {
        await serve.stop()
      }
    })
  })
}

describe('serve streams large artifacts', () => {
  it('carries a 500 MB artifact up and down with flat memory', async () => {
    const version = MLFLOW_VERSIONS.latest
    const upstream = await acquireServer(version, 'plain')
    const serve = await startServe({upstream: upstream.url})
    try {
      const work = await mkdtemp(join(tmpdir(), 'mlflowctl-big-'))
      const big = join(work, 'big.bin')
      const file = await open(big, 'w')
      const block = Buffer.alloc(4 * 1024 * 1024)
      for (let i = 0; i < 125; i++) {
        block.writeUInt32LE(i, 0) // not all zeros, so a truncated or reordered copy is caught
        await file.write(block)
      }

      await file.close()
      const before = await peakRssMiB(serve.child.pid!)
      const client = new PythonClient({credentials: serve.admin, trackingUri: serve.url, version})
      const experimentId = await client.call<string>('tracking', 'create_experiment', uniqueName('big'))
      const runId = (await client.call<{info: {run_id: string}}>('tracking', 'create_run', experimentId)).info.run_id
      await client.call('tracking', 'log_artifact', runId, big)
      const downloaded = await client.call<string>('tracking', 'download_artifacts', runId, 'big.bin', join(work, 'down'))
      assert.equal((await stat(downloaded)).size, 500 * 1024 * 1024)
      assert.equal(await sha256(downloaded), await sha256(big))
      const peak = await peakRssMiB(serve.child.pid!)
      assert.ok(peak - before < 150, `serve's peak memory grew by ${(peak - before).toFixed(0)} MiB for a 500 MiB artifact`)
    } finally {
      await serve.stop()
    }
  })
})

describe('the store under serve', () => {
  it('keeps every write answered 200 when serve is killed with SIGKILL mid-burst', async () => {
    const upstream = await acquireServer(MLFLOW_VERSIONS.latest, 'plain')
    const serve = await startServe({upstream: upstream.url})
    const auth = basicAuth(serve.admin)
    const acknowledged: string[] = []
    const prefix = uniqueName('burst')
    const total = 8 * 40
    // A write that fails before the kill is a failure of serve's, not of the kill.
    let killed = false
    const failedBeforeKill: string[] = []
    // Eight concurrent lanes of sequential writes, so acknowledgements arrive steadily.
    let lanesDone = false
    const writes = Promise.all(
      Array.from({length: 8}, async (_, lane) => {
        for (let step = 0; step < 40; step++) {
          const i = lane * 40 + step
          const username = `${prefix}-${i}`
          try {
            const created = await fetch(`${serve.url}/api/2.0/mlflow/users/create`, {
              body: JSON.stringify({password: 'burst-password-1', username}),
              headers: {authorization: auth, 'content-type': 'application/json'},
              method: 'POST',
            })
            if (created.status !== 200) throw new Error(`users/create ${username} → ${created.status}`)
            const granted = await fetch(`${serve.url}/api/2.0/mlflow/experiments/permissions/create`, {
              body: JSON.stringify({experiment_id: String(i), permission: 'EDIT', username}),
              headers: {authorization: auth, 'content-type': 'application/json'},
              method: 'POST',
            })
            if (granted.status !== 200) throw new Error(`experiments/permissions/create ${username} → ${granted.status}`)
            acknowledged.push(username)
          } catch (error) {
            if (!killed) failedBeforeKill.push(String(error))
            return
          }
        }
      }),
    ).finally(() => {
      lanesDone = true
    })
    // Kill once a few writes are acknowledged, while the rest are still in flight (or once every
    // lane has stopped, so that early failures are reported rather than waited on forever).
    while (acknowledged.length < 20 && !lanesDone) await new Promise((resolve) => setTimeout(resolve, 10))
    killed = true
    serve.child.kill('SIGKILL')
    await writes
    assert.deepEqual(failedBeforeKill, [], 'writes failed before serve was killed')
    assert.ok(acknowledged.length < total, 'the kill landed before the burst finished')

    await readStoreFiles(serve.storePath)
    const restarted = await startServe({storePath: serve.storePath, upstream: upstream.url})
    try {
      for (const username of acknowledged) {
        const user = await fetch(`${restarted.url}/api/2.0/mlflow/users/get?username=${username}`, {headers: {authorization: auth}})
        assert.equal(user.status, 200, `${username} was acknowledged but is gone`)
        const grants = ((await user.json()) as {user: {experiment_permissions: unknown[]}}).user.experiment_permissions
        assert.equal(grants.length, 1, `${username}'s acknowledged permission is gone`)
      }
    } finally {
      await restarted.stop()
    }
  })

  it('two serve processes writing to one store lose nothing', async () => {
    const upstream = await acquireServer(MLFLOW_VERSIONS.latest, 'plain')
    const first = await startServe({upstream: upstream.url})
    const second = await startServe({env: {MLFLOW_AUTH_ADMIN_PASSWORD: first.admin.password}, storePath: first.storePath, upstream: upstream.url})
    try {
      const auth = basicAuth(first.admin)
      const prefix = uniqueName('shared')
      await Promise.all(
        [first, second].flatMap((serve, which) =>
          Array.from({length: 25}, async (_, i) => {
            const response = await fetch(`${serve.url}/api/2.0/mlflow/users/create`, {
              body: JSON.stringify({password: 'shared-password-1', username: `${prefix}-${which}-${i}`}),
              headers: {authorization: auth, 'content-type': 'application/json'},
              method: 'POST',
            })
            assert.equal(response.status, 200, await response.text())
          }),
        ),
      )
      const stored = (await readStoreFiles(first.storePath)) as unknown as {users: Array<{username: string}>}
      assert.equal(stored.users.filter((user) => user.username.startsWith(prefix)).length, 50)
      // Each process also sees the other's users, without a restart.
      for (const serve of [first, second]) {
        let seen = 0
        for (let attempt = 0; attempt < 100 && seen < 50; attempt++) {
          const list = (await (await fetch(`${serve.url}/api/2.0/mlflow/users/list`, {headers: {authorization: auth}})).json()) as {
            users: Array<{username: string}>
          }
          seen = list.users.filter((user) => user.username.startsWith(prefix)).length
          if (seen < 50) await new Promise((resolve) => setTimeout(resolve, 100))
        }

        assert.equal(seen, 50)
      }
    } finally {
      await Promise.all([first.stop(), second.stop()])
    }
  })
})

describe('serve when the upstream goes away', () => {
  it('answers 502/503 with MLflow JSON meanwhile, to admins and non-admins, and recovers by itself', async () => {
    const version = MLFLOW_VERSIONS.latest
    let upstream = await startMlflowServer({kind: 'plain', version})
    const port = Number(new URL(upstream.url).port)
    const serve = await startServe({upstream: upstream.url})
    const auth = basicAuth(serve.admin)
    const search = () => fetch(`${serve.url}/api/2.0/mlflow/experiments/search?max_results=1`, {headers: {authorization: auth}})
    // A non-admin's requests need serve's own calls to the upstream: a run's experiment, a refill.
    const alice = {password: 'alice-password-while-down', username: 'alice'}
    const asAlice = {authorization: basicAuth(alice), 'content-type': 'application/json'}
    const created = await fetch(`${serve.url}/api/2.0/mlflow/users/create`, {
      body: JSON.stringify(alice),
      headers: {authorization: auth, 'content-type': 'application/json'},
      method: 'POST',
    })
    assert.equal(created.status, 200)
    const nonAdmin = () => [
      fetch(`${serve.url}/api/2.0/mlflow/runs/get?run_id=${uniqueName('run').replaceAll('-', '')}`, {headers: asAlice}),
      fetch(`${serve.url}/api/2.0/mlflow/experiments/search`, {body: JSON.stringify({max_results: 5}), headers: asAlice, method: 'POST'}),
    ]
    try {
      assert.equal((await search()).status, 200)
      await upstream.stop()
      const during = await Promise.all([...Array.from({length: 20}, () => search()), ...nonAdmin()])
      for (const response of during) {
        assert.ok([502, 503].includes(response.status), `${response.url}: got ${response.status}`)
        assert.equal(((await response.json()) as {error_code: string}).error_code, 'TEMPORARILY_UNAVAILABLE')
      }

      upstream = await startMlflowServer({kind: 'plain', port, version})
      assert.equal((await search()).status, 200)
      const [unknownRun, searched] = await Promise.all(nonAdmin())
      // A run that does not exist answers like one alice cannot see.
      assert.equal(unknownRun.status, 403)
      assert.equal(searched.status, 200)
      assert.equal(serve.child.exitCode, null, 'serve is still running')
    } finally {
      await serve.stop()
      await upstream.stop()
    }
  })
})
