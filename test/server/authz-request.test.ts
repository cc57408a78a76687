import assert from 'node:assert/strict'
import {describe, it} from 'node:test'

import {artifactPathExperiment} from '../../src/server/authz/access.js'
import {canonicalPath, decodedPath} from '../../src/server/authz/canonical-path.js'
import {isCanonicalId} from '../../src/mlflow/resources.js'
import {RequestParams} from '../../src/server/authz/request-params.js'
import {queryParams, withoutQuery} from '../../src/server/request-path.js'
import {ApiError} from '../../src/server/responses.js'

describe('canonicalPath', () => {
  it('decodes percent-encoding as Werkzeug does before routing', () => {
    assert.deepEqual(canonicalPath('/api/2.0/mlflow/%65xperiments/get'), {ok: true, path: '/api/2.0/mlflow/experiments/get'})
    assert.deepEqual(canonicalPath('/api/2.0/mlflow-artifacts/artifacts/1/r/artifacts/a%20b.txt'), {
      ok: true,
      path: '/api/2.0/mlflow-artifacts/artifacts/1/r/artifacts/a b.txt',
    })
    assert.deepEqual(canonicalPath('/'), {ok: true, path: '/'})
    assert.deepEqual(canonicalPath('/ajax-api/3.0/jobs/'), {ok: true, path: '/ajax-api/3.0/jobs/'})
  })

  for (const [raw, why] of [
    ['/api/2.0/mlflow//experiments/get', 'empty'],
    ['//api/2.0/mlflow/experiments/get', 'empty'],
    ['/api/2.0/mlflow/experiments%2Fget', 'encoded slashes'],
    ['/api/2.0/mlflow/experiments%5cget', 'encoded slashes'],
    ['/static-files/../api/2.0/mlflow/runs/get', 'dot segments'],
    ['/static-files/%2e%2e/api/2.0/mlflow/runs/get', 'dot segments'],
    ['/api/2.0/mlflow/./runs/get', 'dot segments'],
    ['/api/2.0/mlflow/runs/get;x=1', '; parameters'],
    ['/api/2.0/mlflow/runs\\get', 'backslashes'],
    ['/api/2.0/mlflow/runs/%E0%A4%A', 'malformed'],
    ['/api/2.0/mlflow/runs/%00get', 'control'],
    ['http://evil/api/2.0/mlflow/runs/get', 'starting with /'],
  ]) {
    it(`refuses ${raw}`, () => {
      const result = canonicalPath(raw)
      assert.equal(result.ok, false)
      assert.match((result as {reason: string}).reason, new RegExp(why))
    })
  }
})

describe('canonicalPath on every short path', () => {
  it('answers as the full check does, whatever the path holds (dots, slashes, %, ;, \\, controls, non-ASCII)', () => {
    const parts = ['a', '.', '/', '%', '%2e', '%2F', '%41', ';', '\\', '\u0001', '\u007F', '\t', 'é', '..', ' ', '?']
    let paths = ['/']
    let checked = 0
    for (let length = 0; length < 4; length++) {
      for (const path of paths) {
        assert.deepEqual(canonicalPath(path), decodedPath(path), JSON.stringify(path))
        checked++
      }

      paths = paths.flatMap((path) => parts.map((part) => path + part))
    }

    assert.equal(checked, 1 + 16 + 256 + 4096)
    for (const path of ['', 'a', '/api/2.0/mlflow/experiments/get', '/ajax-api/3.0/jobs/', '/a/.b/c..', '/a/b./..c/'])
      assert.deepEqual(canonicalPath(path), decodedPath(path), path)
  })
})

describe('queryParams and withoutQuery', () => {
  it("read a target's query as the URL parser does, whatever its characters", () => {
    const parts = [
      'a',
      '=',
      '&',
      '+',
      '%',
      '%2',
      '%41',
      '%22',
      '%C3%A9',
      '"',
      "'",
      '<',
      '>',
      ' ',
      '\t',
      '\n',
      '\u0001',
      '\u007F',
      'é',
      '\u00FF',
      '?',
      '/',
      '%zz',
      '[]',
    ]
    let queries = ['']
    let checked = 0
    for (let length = 0; length < 3; length++) {
      for (const query of queries) {
        for (const target of [`/api/2.0/mlflow/runs/search?${query}`, `/x?experiment_id=1&${query}=${query}`, `/x${query}`]) {
          const expected = [...new URL(target, 'http://serve.invalid').searchParams]
          assert.deepEqual([...queryParams(target)], expected, JSON.stringify(target))
          assert.equal(withoutQuery(target), target.split('?', 1)[0])
          checked++
        }
      }

      queries = queries.flatMap((query) => parts.map((part) => query + part))
    }

    assert.equal(checked, 3 * (1 + 24 + 576))
  })
})

describe('RequestParams', () => {
  const body = (json: Record<string, unknown>, pathParams = {}) =>
    new RequestParams('body', new URLSearchParams('experiment_id=9'), json, pathParams, {'x-mlflow-experiment-id': '4'})
  const query = (search: string) => new RequestParams('query', new URLSearchParams(search), {experiment_id: '9'}, {}, {})
  const refused = (run: () => unknown, message: RegExp) =>
    assert.throws(run, (error: unknown) => error instanceof ApiError && error.status === 400 && message.test(error.message))

  it('reads the body for non-GET and the query for GET, never the other', () => {
    assert.equal(body({experiment_id: '1'}).required('experiment_id'), '1')
    assert.equal(query('experiment_id=2').required('experiment_id'), '2')
    assert.equal(body({}).optional('experiment_id'), undefined)
  })

  it('accepts the camelCase JSON name, refuses a body naming a field both ways', () => {
    assert.equal(body({experimentId: '3'}).required('experiment_id'), '3')
    refused(() => body({experiment_id: '3', experimentId: '4'}).required('experiment_id'), /given twice/)
    // MLflow reads only proto names from a query string.
    assert.equal(query('experimentId=3').optional('experiment_id'), undefined)
  })

  it('refuses a single-valued field given twice and missing required fields', () => {
    refused(() => query('experiment_id=1&experiment_id=2').required('experiment_id'), /more than once/)
    refused(() => body({}).required('experiment_id'), /Missing value for required parameter 'experiment_id'/)
    refused(() => body({experiment_id: ''}).required('experiment_id'), /Missing value/)
    refused(() => body({experiment_id: {$ne: 1}}).required('experiment_id'), /must be a string/)
    refused(() => body({experiment_id: true}).required('experiment_id'), /must be a string/)
    assert.equal(body({experiment_id: 5}).required('experiment_id'), '5')
  })

  it('falls back from run_id to run_uuid, and refuses two different runs', () => {
    assert.equal(body({run_uuid: 'r1'}).runId('run_id'), 'r1')
    assert.equal(body({run_id: 'r1', run_uuid: 'r1'}).runId('run_id'), 'r1')
    refused(() => body({run_id: 'r1', run_uuid: 'r2'}).runId('run_id'), /different runs/)
    refused(() => body({runId: 'r1', run_id: 'r2'}).runId('run_id'), /given twice/)
    refused(() => body({}).runId('run_id'), /run_id/)
  })

  it('walks nested fields and lists, in either spelling', () => {
    const params = body({locations: [{mlflowExperiment: {experimentId: '1'}}, {mlflow_experiment: {experiment_id: '2'}}, {type: 'other'}]})
    assert.deepEqual(params.values('locations[].mlflow_experiment.experiment_id'), ['1', '2'])
    assert.deepEqual(body({metrics: [{model_id: 'm-1'}, {key: 'x'}]}).values('metrics[].model_id'), ['m-1'])
    assert.deepEqual(body({experiment_ids: ['1', '2']}).values('experiment_ids'), ['1', '2'])
    refused(() => body({locations: {experiment_id: '1'}}).values('locations[].experiment_id'), /must be a list/)
  })

  it('reads path parameters and headers', () => {
    assert.equal(body({}, {model_id: 'm-9'}).required('path.model_id'), 'm-9')
    assert.equal(body({}).required('header.x-mlflow-experiment-id'), '4')
  })

  it('refuses experiment ids and versions in any but their canonical spelling, wherever the field sits', () => {
    const odd = ['06', ' 6', '+6', '6 ', '-6', '\u0666', '0_6', '6.0', '0x6']
    for (const id of odd) {
      refused(() => body({experiment_id: id}).required('experiment_id'), /experiment_id' must be a decimal number/)
      refused(() => body({experimentIds: ['1', id]}).values('experiment_ids'), /experiment_ids' must be a decimal number/)
      refused(
        () => body({locations: [{mlflow_experiment: {experiment_id: id}}]}).values('locations[].mlflow_experiment.experiment_id'),
        /must be a decimal number/,
      )
      refused(() => query(`experiment_ids=1&experiment_ids=${encodeURIComponent(id)}`).values('experiment_ids'), /must be a decimal number/)
      refused(() => body({version: id}).optional('version'), /version' must be a decimal number/)
    }

    assert.deepEqual(body({experiment_ids: ['0', '6', '1234567890']}).values('experiment_ids'), ['0', '6', '1234567890'])
    assert.equal(body({version: 2}).optional('version'), '2')
    // Other fields are not ids.
    assert.equal(body({name: '06'}).required('name'), '06')
  })
})

describe('isCanonicalId and artifactPathExperiment', () => {
  it('accepts one spelling per number', () => {
    for (const id of ['0', '7', '10', '987654321']) assert.ok(isCanonicalId(id), id)
    for (const id of ['', '00', '07', ' 7', '7 ', '+7', '-7', '7_0', '\u0667', '\uFF17', '7\n']) assert.ok(!isCanonicalId(id), JSON.stringify(id))
  })

  it('reads the experiment leading an artifact path; other digit spellings are refused, other paths have none', () => {
    assert.equal(artifactPathExperiment('7/abc/artifacts/x'), '7')
    assert.equal(artifactPathExperiment('7'), '7')
    for (const path of ['', '.', 'abc/7', '/7/abc', '7a/abc', '7__0', '_7']) assert.equal(artifactPathExperiment(path), undefined, path)
    for (const path of ['07/abc', '\u0667/abc', '\u0967', '00', '+7/abc', ' 7/abc', '7 /abc', '-7', '7_0/abc']) {
      assert.throws(
        () => artifactPathExperiment(path),
        (error: unknown) => error instanceof ApiError && error.status === 400 && /experiment id in decimal/.test(error.message),
        path,
      )
    }
  })
})
