/**
 * Every route the installed MLflow serves (its Flask url map and its FastAPI routes, read from
 * each pinned version, never typed here) must be decided by serve's route table: a new MLflow
 * route the table does not know fails this test, so nobody forgets to decide it. (serve denies
 * such routes to non-admins meanwhile.)
 */
import assert from 'node:assert/strict'
import {execFile} from 'node:child_process'
import {describe, it} from 'node:test'
import {fileURLToPath} from 'node:url'
import {promisify} from 'node:util'

import {canonicalPath} from '../../src/server/authz/canonical-path.js'
import {lookupRoute} from '../../src/server/authz/route-table.js'
import {requireMlflow} from '../support/mlflow-install.js'
import {PINNED_VERSIONS} from '../support/mlflow-versions.js'

const DUMP = fileURLToPath(new URL('../support/py/dump_routes.py', import.meta.url))

interface MlflowRoute {
  methods: string[]
  path: string
  source: 'fastapi' | 'flask'
}

/** A concrete path for a route template: Flask `<x>`, `<path:x>` and FastAPI `{x}`, `{x:path}`. */
function samplePath(template: string): string {
  return template.replaceAll(
    /<(?:\w+:)?(\w+)>|\{(\w+)(?::\w+)?\}/g,
    (_, flask: string | undefined, fastapi: string | undefined) => `sample-${flask ?? fastapi}`,
  )
}

const dumps = new Map<string, Promise<MlflowRoute[]>>()

/** Importing MLflow's server takes seconds: one dump per version. */
function mlflowRoutes(version: string): Promise<MlflowRoute[]> {
  let dump = dumps.get(version)
  if (!dump) {
    dump = dumpRoutes(version)
    dumps.set(version, dump)
  }

  return dump
}

async function dumpRoutes(version: string): Promise<MlflowRoute[]> {
  const python = await requireMlflow(version)
  const {stdout} = await promisify(execFile)(python, [DUMP], {env: {...process.env, MLFLOW_SERVER_ENABLE_JOB_EXECUTION: 'false'}, maxBuffer: 16 * 1024 * 1024})
  return JSON.parse(stdout) as MlflowRoute[]
}

for (const version of PINNED_VERSIONS) {
  describe(`route coverage of MLflow ${version}`, () => {
    it('decides every Flask and FastAPI route under every prefix', async () => {
      const routes = await mlflowRoutes(version)
      // Sanity: the dump really is MLflow's whole surface, both frameworks.
      assert.ok(routes.some((route) => route.source === 'flask' && route.path === '/api/2.0/mlflow/runs/get'))
      assert.ok(routes.some((route) => route.source === 'fastapi' && route.path.startsWith('/gateway/')))
      assert.ok(routes.length > 300, `only ${routes.length} routes`)

      const undecided: string[] = []
      for (const route of routes) {
        const path = samplePath(route.path)
        for (const method of route.methods) {
          if (!lookupRoute(method, path)) undecided.push(`${method} ${route.path} (${route.source})`)
        }
      }

      assert.deepEqual(undecided, [], `routes MLflow ${version} serves that serve's route table does not decide`)
    })

    it('every route template has a canonical form serve accepts', async () => {
      const refused = (await mlflowRoutes(version)).map((route) => samplePath(route.path)).filter((path) => !canonicalPath(path).ok)
      assert.deepEqual(refused, [])
    })
  })
}

describe('route table', () => {
  it('does not know what MLflow does not serve', () => {
    assert.equal(lookupRoute('GET', '/api/2.0/mlflow/no-such-route'), undefined)
    assert.equal(lookupRoute('DELETE', '/api/2.0/mlflow/experiments/get'), undefined)
    // A route under a prefix MLflow does not serve it on is unknown too (twin-route bypasses).
    assert.equal(lookupRoute('GET', '/api/3.0/mlflow/experiments/get'), undefined)
    assert.equal(lookupRoute('GET', '/api/2.0/mlflow/experiments/get/'), undefined)
  })

  it('decides HEAD as GET and literal routes before patterns', () => {
    assert.deepEqual(lookupRoute('HEAD', '/api/2.0/mlflow/runs/get')?.rule, lookupRoute('GET', '/api/2.0/mlflow/runs/get')?.rule)
    assert.equal(lookupRoute('GET', '/api/3.0/mlflow/traces/get')?.template, '/api/3.0/mlflow/traces/get')
    assert.deepEqual(lookupRoute('GET', '/api/3.0/mlflow/traces/tr-1')?.pathParams, {trace_id: 'tr-1'})
    assert.deepEqual(lookupRoute('PUT', '/ajax-api/2.0/mlflow-artifacts/artifacts/1/abc/artifacts/x.txt')?.pathParams, {artifact_path: '1/abc/artifacts/x.txt'})
  })
})
