import assert from 'node:assert/strict'
import {describe, it} from 'node:test'

import {readModelVersionSource} from '../../src/server/authz/model-version-source.js'
import {ApiError} from '../../src/server/responses.js'

describe('readModelVersionSource', () => {
  it('reads what the upstream reads: runs, logged models, registered models, served artifacts', () => {
    assert.deepEqual(readModelVersionSource('runs:/abc123/model'), {kind: 'run', runId: 'abc123'})
    assert.deepEqual(readModelVersionSource('runs:/abc123'), {kind: 'run', runId: 'abc123'})
    assert.deepEqual(readModelVersionSource('models:/m-0123'), {kind: 'logged-model', modelId: 'm-0123'})
    assert.deepEqual(readModelVersionSource('models:/churn/3'), {kind: 'registered-model', name: 'churn'})
    assert.deepEqual(readModelVersionSource('models:/churn/Production'), {kind: 'registered-model', name: 'churn'})
    assert.deepEqual(readModelVersionSource('models:/ch@rn@champion'), {kind: 'registered-model', name: 'ch@rn'})
    assert.deepEqual(readModelVersionSource('mlflow-artifacts:/7/abc/artifacts/model'), {experimentId: '7', kind: 'experiment-artifacts'})
    assert.deepEqual(readModelVersionSource('http://tracking:5000/api/2.0/mlflow-artifacts/artifacts/7/abc/artifacts'), {
      experimentId: '7',
      kind: 'experiment-artifacts',
    })
    // MLflow drops the slashes after the route before reading the experiment.
    assert.deepEqual(readModelVersionSource('https://h/prefix/api/2.0/mlflow-artifacts/artifacts//7/abc'), {experimentId: '7', kind: 'experiment-artifacts'})
    // urlparse lower-cases the scheme.
    assert.deepEqual(readModelVersionSource('MLFLOW-ARTIFACTS:/7/abc'), {experimentId: '7', kind: 'experiment-artifacts'})
    assert.deepEqual(readModelVersionSource('RUNS:/abc'), {kind: 'run', runId: 'abc'})
  })

  it('leaves local paths to the upstream (inside the run or logged model given), and other stores to admins', () => {
    assert.deepEqual(readModelVersionSource('/srv/mlflow/artifacts/1/abc/artifacts'), {kind: 'local'})
    assert.deepEqual(readModelVersionSource('file:///srv/mlflow/artifacts/1/abc'), {kind: 'local'})
    assert.deepEqual(readModelVersionSource('s3://bucket/key'), {kind: 'other-store', scheme: 's3'})
    assert.deepEqual(readModelVersionSource('dbfs:/x'), {kind: 'other-store', scheme: 'dbfs'})
  })

  for (const [source, why] of [
    // The network location hides a path: MLflow reads /<other experiment>/…, a decoder reads the first.
    ['mlflow-artifacts://h%2F2/1/abc/artifacts', 'percent-encoding'],
    ['mlflow-artifacts://h%252F2/1/abc/artifacts', 'percent-encoding'],
    ['mlflow-artifacts://h/1/abc/artifacts', 'network location'],
    ['mlflow-artifacts:///1/abc/artifacts', 'network location'],
    ['mlflow-artifacts:1/abc/artifacts', 'network location'],
    ['runs://host/abc/model', 'network location'],
    ['models://host/m-1', 'network location'],
    // MLflow reads the first route, a greedy pattern the last.
    ['http://h/api/2.0/mlflow-artifacts/artifacts/1/abc/artifacts/api/2.0/mlflow-artifacts/artifacts/2/def/artifacts', 'exactly once'],
    ['http://h/x', 'exactly once'],
    ['http:/api/2.0/mlflow-artifacts/artifacts/1/abc', 'absolute URL'],
    ['http://h/api/2.0/mlflow-artifacts/artifacts/1/abc%2Fapi%2F2.0%2Fmlflow-artifacts%2Fartifacts%2F2', 'percent-encoding'],
    ['mlflow-artifacts:/1/abc/artifacts?x=/2', 'query'],
    ['mlflow-artifacts:/1/abc/artifacts#/2', 'fragment'],
    ['https://h/api/2.0/mlflow-artifacts/artifacts/1;x/abc', '; parameters'],
    ['mlflow-artifacts:/2/../1/abc', '\\.\\. segments'],
    ['mlflow-artifacts:/./1/abc', '\\. or \\.\\.'],
    ['runs:/abc/%2E%2E/%2E%2E/def', 'percent-encoding'],
    ['mlflow-artifacts:/1\t/abc', 'control'],
    [' mlflow-artifacts:/1/abc', 'white space'],
    ['mlflow-artifacts:/1\\abc', 'backslash'],
    ['mlflow-artifacts:/', 'no experiment'],
    ['mlflow-artifacts:/abc/1', 'no experiment'],
    ['models:/a/b/c', 'models:/'],
    ['models:/churn/', 'models:/'],
    ['models:/@champion', 'no registered model'],
    ['runs:/', 'no run'],
    ['relative/path', 'relative'],
  ]) {
    it(`refuses ${JSON.stringify(source)}`, () => {
      const reading = readModelVersionSource(source)
      assert.equal(reading.kind, 'refused', JSON.stringify(reading))
      assert.match((reading as {reason: string}).reason, new RegExp(why))
    })
  }

  it('refuses (400) an experiment id in the artifact path that int() would read but grants do not know', () => {
    for (const source of ['mlflow-artifacts:/01/abc', 'mlflow-artifacts:/\u0661/abc', 'http://h/api/2.0/mlflow-artifacts/artifacts/007/abc']) {
      assert.throws(
        () => readModelVersionSource(source),
        (error: unknown) => error instanceof ApiError && error.status === 400,
        source,
      )
    }
  })
})
