/**
 * Requests that serve and the upstream MLflow could read differently, found in a security review:
 * experiment ids in spellings Python's int() reads but grants are not kept under, model-version
 * sources whose network location or second artifact route hides another experiment, and JSON
 * bodies Flask reads as no body at all. A user the owner denied tries each against serve in front
 * of a plain MLflow, and the same request against MLflow's own basic-auth app: serve refuses (400)
 * and changes nothing; what MLflow does is recorded, its gaps asserted as such.
 */
import assert from 'node:assert/strict'
import {randomBytes} from 'node:crypto'
import {after, before, describe, it} from 'node:test'

import {type AuthTarget, authTarget, type AuthTargetKind, targetTitle} from '../support/auth-target.js'
import {type Credentials, randomSecret} from '../support/mlflow-server.js'
import {MLFLOW_VERSIONS, PINNED_VERSIONS} from '../support/mlflow-versions.js'
import {type Answer, assertNoSecrets, closeRawAgent, describeAnswer, malloryOwn, ok, q, send, type Send} from '../support/raw-http.js'
import {type Json} from '../support/rest.js'
import {releaseServers, uniqueName} from '../support/servers.js'

after(releaseServers)
after(closeRawAgent)

interface World {
  artifact: string
  experimentId: string
  experimentName: string
  mallory: Credentials
  malloryExperimentId: string
  malloryModel: string
  malloryRunId: string
  owner: Credentials
  paramValue: string
  runId: string
  secrets: string[]
}

/** Each generation's own grant API: per-resource endpoints up to 3.12, unified grants after. */
function denyExperiment(target: AuthTarget, version: string, owner: Credentials, experimentId: string, username: string): Promise<Json> {
  return version === MLFLOW_VERSIONS.legacy
    ? ok(
        send(target.url, owner, 'POST', '/api/2.0/mlflow/experiments/permissions/create', {
          body: {experiment_id: experimentId, permission: 'NO_PERMISSIONS', username},
        }),
        'deny mallory the experiment',
      )
    : ok(
        send(target.url, owner, 'POST', '/api/3.0/mlflow/users/permissions/grant', {
          body: {permission: 'DENY', resource_id: experimentId, resource_type: 'experiment', username},
        }),
        'deny mallory the experiment',
      )
}

async function setUp(target: AuthTarget, version: string): Promise<World> {
  const owner = {password: `owner-${randomSecret()}`, username: uniqueName('owner')}
  const mallory = {password: `mallory-${randomSecret()}`, username: uniqueName('mallory')}
  for (const user of [owner, mallory]) await ok(send(target.url, target.admin, 'POST', '/api/2.0/mlflow/users/create', {body: user}), `create ${user.username}`)
  const o = (method: string, path: string, options?: Send) => send(target.url, owner, method, path, options)
  const m = (method: string, path: string, options?: Send) => send(target.url, mallory, method, path, options)
  const tag = randomBytes(6).toString('hex')
  const experimentName = `secret-experiment-${tag}`
  const experimentId = (await ok(o('POST', '/api/2.0/mlflow/experiments/create', {body: {name: experimentName}}), 'create experiment')).experiment_id as string
  const runId = (await ok(o('POST', '/api/2.0/mlflow/runs/create', {body: {experiment_id: experimentId}}), 'create run')).run.info.run_id as string
  const paramValue = `secret-param-${tag}`
  await ok(o('POST', '/api/2.0/mlflow/runs/log-parameter', {body: {key: 'p', run_id: runId, value: paramValue}}), 'log param')
  const artifact = `TOP-SECRET-ARTIFACT-${tag}`
  await ok(
    o('PUT', `/api/2.0/mlflow-artifacts/artifacts/${experimentId}/${runId}/artifacts/secret.txt`, {body: artifact, contentType: 'application/octet-stream'}),
    'upload artifact',
  )
  await denyExperiment(target, version, owner, experimentId, mallory.username)

  return {
    artifact,
    experimentId,
    experimentName,
    mallory,
    ...(await malloryOwn(m)),
    owner,
    paramValue,
    runId,
    secrets: [experimentName, runId, paramValue, artifact],
  }
}

/** What the owner sees of their experiment: compared before and after each of mallory's writes. */
async function ownerView(target: AuthTarget, w: World): Promise<Json> {
  const o = (method: string, path: string, options?: Send) => ok(send(target.url, w.owner, method, path, options), `owner ${path}`)
  const experiment = (await o('GET', `/api/2.0/mlflow/experiments/get?${q({experiment_id: w.experimentId})}`)).experiment as Json
  return {
    experiment: {...experiment, last_update_time: undefined},
    loggedModels: await o('POST', '/api/2.0/mlflow/logged-models/search', {body: {experiment_ids: [w.experimentId]}}),
    runs: await o('POST', '/api/2.0/mlflow/runs/search', {body: {experiment_ids: [w.experimentId]}}),
  }
}

/** Other spellings of an experiment id that Python's int() reads as the same experiment. */
function spellings(id: string): string[] {
  const arabicIndic = [...id].map((digit) => String.fromCodePoint(0x06_60 + Number(digit))).join('')
  return [`0${id}`, ` ${id}`, `+${id}`, `${id} `, arabicIndic, `0_${id}`]
}

/** Experiment-id requests of mallory's, by name, for one spelling of the owner's experiment id. */
function idRequests(w: World, id: string): Record<string, {method: string; options?: Send; path: string; write?: true}> {
  const graphql = (query: string, variables: Json) => ({method: 'POST', options: {body: {query, variables}}, path: '/graphql'})
  return {
    'GET experiments/get': {method: 'GET', path: `/api/2.0/mlflow/experiments/get?${q({experiment_id: id})}`},
    'POST runs/search': {method: 'POST', options: {body: {experiment_ids: [w.malloryExperimentId, id]}}, path: '/api/2.0/mlflow/runs/search'},
    'POST logged-models/search': {method: 'POST', options: {body: {experiment_ids: [id]}}, path: '/api/2.0/mlflow/logged-models/search'},
    'GET traces': {method: 'GET', path: `/api/2.0/mlflow/traces?${q({experiment_ids: id})}`},
    'GET scorers/list': {method: 'GET', path: `/api/3.0/mlflow/scorers/list?${q({experiment_id: id})}`},
    'GraphQL mlflowGetExperiment': graphql('query($id: String) { mlflowGetExperiment(input: {experimentId: $id}) { experiment { name } } }', {id}),
    'GraphQL mlflowSearchRuns': graphql(
      'query($ids: [String]) { mlflowSearchRuns(input: {experimentIds: $ids}) { runs { info { runId } data { params { value } } } } }',
      {ids: [id]},
    ),
    'GET mlflow-artifacts (path)': {method: 'GET', path: `/api/2.0/mlflow-artifacts/artifacts/${encodeURIComponent(id)}/${w.runId}/artifacts/secret.txt`},
    'GET mlflow-artifacts (list)': {method: 'GET', path: `/api/2.0/mlflow-artifacts/artifacts?${q({path: `${id}/${w.runId}/artifacts`})}`},
    'POST runs/create': {method: 'POST', options: {body: {experiment_id: id}}, path: '/api/2.0/mlflow/runs/create', write: true},
    'POST experiments/set-experiment-tag': {
      method: 'POST',
      options: {body: {experiment_id: id, key: 'pwned', value: 'yes'}},
      path: '/api/2.0/mlflow/experiments/set-experiment-tag',
      write: true,
    },
    'POST logged-models': {method: 'POST', options: {body: {experiment_id: id, name: 'pwned'}}, path: '/api/2.0/mlflow/logged-models', write: true},
  }
}

/**
 * Through which of those requests MLflow's basic-auth app shows mallory the owner's data, by
 * version: its permission check looks the spelling up as a string, misses the owner's deny and
 * falls back to default_permission (READ), while its store reads the id with int(). MLflow 3.12
 * also serves `mlflow-artifacts/artifacts/%201/<run>/…` (a leading space: its `^(\d+)/` finds no
 * experiment, and the file is found under experiment 1). The trace and scorer lists of the
 * owner's experiment are empty here, so those show nothing; READ does not reach the writes.
 */
const MLFLOW_ID_LEAKS: Record<string, string[]> = {
  [MLFLOW_VERSIONS.latest]: ['GET experiments/get', 'GraphQL mlflowGetExperiment', 'GraphQL mlflowSearchRuns', 'POST runs/search'],
  [MLFLOW_VERSIONS.legacy]: [
    'GET experiments/get',
    'GET mlflow-artifacts (path)',
    'GraphQL mlflowGetExperiment',
    'GraphQL mlflowSearchRuns',
    'POST runs/search',
  ],
}

/** Sources of mallory's own making: each is read by MLflow 3.12 as the owner's run artifacts. */
function crossSources(w: World): Array<{run_id?: string; source: string}> {
  const {experimentId: exp, malloryExperimentId: mine, malloryRunId: mineRun, runId: run} = w
  const route = '/api/2.0/mlflow-artifacts/artifacts'
  return [
    // An encoded / in the network location: decoded, the path starts with mallory's experiment.
    {source: `mlflow-artifacts://h%2F${mine}/${exp}/${run}/artifacts`},
    {run_id: mineRun, source: `mlflow-artifacts://h%2F${mine}/${exp}/${run}/artifacts`},
    {source: `mlflow-artifacts://h%2f${mine}%2F/${exp}/${run}/artifacts`},
    {run_id: mineRun, source: `mlflow-artifacts://h%252F${mine}/${exp}/${run}/artifacts`},
    // Two artifact routes: MLflow reads the first, a greedy pattern the last.
    {source: `http://h${route}/${exp}/${run}/artifacts${route}/${mine}/${mineRun}/artifacts`},
    {run_id: mineRun, source: `https://h${route}/${exp}/${run}/artifacts${route}/${mine}/${mineRun}/artifacts`},
  ]
}

for (const version of PINNED_VERSIONS) {
  for (const kind of ['basic-auth', 'serve'] as AuthTargetKind[]) {
    describe(`ids, sources and bodies as the upstream reads them, on ${targetTitle(kind)} MLflow ${version}`, () => {
      let target: AuthTarget
      let w: World
      const mallory = (method: string, path: string, options?: Send) => send(target.url, w.mallory, method, path, options)

      before(async () => {
        target = await authTarget(version, kind)
        w = await setUp(target, version)
        const seen =
          JSON.stringify(await ownerView(target, w)) +
          (await send(target.url, w.owner, 'GET', `/api/2.0/mlflow-artifacts/artifacts/${w.experimentId}/${w.runId}/artifacts/secret.txt`)).text
        for (const secret of w.secrets) assert.ok(seen.includes(secret), `the owner's view lacks ${secret}`)
        assert.equal(
          (await mallory('GET', `/api/2.0/mlflow/experiments/get?${q({experiment_id: w.experimentId})}`)).status,
          403,
          'mallory is denied the experiment',
        )
      })
      after(async () => {
        await target?.stop()
      })

      it("experiment ids: other spellings of the owner's experiment id are refused (400) and change nothing", async () => {
        const leaks = new Set<string>()
        const writes = new Set<string>()
        for (const id of spellings(w.experimentId)) {
          for (const [name, {method, options, path, write}] of Object.entries(idRequests(w, id))) {
            const before = write ? await ownerView(target, w) : undefined
            const answer = await mallory(method, path, options)
            const leaked = w.secrets.some((secret) => !answer.sent.includes(secret) && answer.text.includes(secret))
            const changed = write ? JSON.stringify(await ownerView(target, w)) !== JSON.stringify(before) : false
            if (kind === 'serve') {
              assert.equal(answer.status, 400, `${name} ${JSON.stringify(id)}: ${describeAnswer(answer)}`)
              assert.ok(!leaked && !changed, `${name} ${JSON.stringify(id)}: leaked ${leaked}, changed ${changed}: ${describeAnswer(answer)}`)
            }

            if (leaked) leaks.add(name)
            if (changed) writes.add(name)
          }
        }

        if (kind === 'basic-auth') {
          assert.deepEqual([...leaks].sort(), MLFLOW_ID_LEAKS[version], "the requests through which MLflow leaks the owner's experiment")
          assert.deepEqual([...writes], [], "the requests through which MLflow changes the owner's experiment")
        }

        // The canonical id is still decided as before: denied.
        for (const {method, options, path} of Object.values(idRequests(w, w.experimentId))) {
          const answer = await mallory(method, path, options)
          assertNoSecrets(w, answer)
        }
      })

      it('experiment ids: a grant under another spelling is refused by serve (MLflow stores it, and it never applies)', async () => {
        const spelled = `0${w.malloryExperimentId}`
        const legacy = await send(target.url, target.admin, 'POST', '/api/2.0/mlflow/experiments/permissions/create', {
          body: {experiment_id: spelled, permission: 'READ', username: w.owner.username},
        })
        const unified = await send(target.url, target.admin, 'POST', '/api/3.0/mlflow/users/permissions/grant', {
          body: {permission: 'READ', resource_id: spelled, resource_type: 'experiment', username: w.owner.username},
        })
        const scorer = await send(target.url, target.admin, 'POST', '/api/3.0/mlflow/users/permissions/grant', {
          body: {permission: 'READ', resource_id: `${spelled}/judge`, resource_type: 'scorer', username: w.owner.username},
        })
        if (kind === 'serve') {
          for (const answer of [legacy, unified, scorer]) {
            assert.equal(answer.status, 400, describeAnswer(answer))
            assert.match(answer.text, /must be a decimal number/, describeAnswer(answer))
          }

          const grants = (await ok(send(target.url, target.admin, 'GET', `/api/2.0/mlflow/users/get?${q({username: w.owner.username})}`), 'users/get')).user
            .experiment_permissions as Json[]
          assert.ok(!grants.some((grant) => grant.experiment_id === spelled), JSON.stringify(grants))
        } else if (version === MLFLOW_VERSIONS.legacy) {
          // MLflow 3.12 stores a grant under "0<id>", which no request for the experiment finds.
          assert.equal(legacy.status, 200, describeAnswer(legacy))
          assert.equal(unified.status, 404, describeAnswer(unified))
        } else {
          assert.equal(legacy.status, 404, describeAnswer(legacy))
          assert.equal(unified.status, 200, describeAnswer(unified))
          assert.equal(scorer.status, 200, describeAnswer(scorer))
        }
      })

      it("model-version sources: a network location or a second artifact route cannot point mallory's version at the owner's artifacts", async () => {
        const created: string[] = []
        const leaks: string[] = []
        for (const body of crossSources(w)) {
          const answer = await mallory('POST', '/api/2.0/mlflow/model-versions/create', {body: {name: w.malloryModel, ...body}})
          assertNoSecrets(w, {...answer, sent: `${answer.sent} ${w.runId}`})
          if (kind === 'serve') {
            assert.equal(answer.status, 400, describeAnswer(answer))
            assert.match(answer.text, /Refused model version source/, describeAnswer(answer))
          }

          if (answer.status !== 200) continue
          created.push(body.source)
          const versionNumber = answer.json!.model_version.version as string
          const artifact = await mallory('GET', `/model-versions/get-artifact?${q({name: w.malloryModel, path: 'secret.txt', version: versionNumber})}`)
          if (artifact.text.includes(w.artifact)) leaks.push(body.source)
        }

        const versions = await mallory('GET', `/api/2.0/mlflow/model-versions/search?${q({filter: `name = '${w.malloryModel}'`})}`)
        assert.equal(versions.status, 200, describeAnswer(versions))
        const made = (versions.json?.model_versions ?? []) as Json[]
        if (kind === 'serve' || version !== MLFLOW_VERSIONS.legacy) {
          assert.deepEqual(created, [])
          assert.deepEqual(made, [], "no model version was created in mallory's model")
        } else {
          // MLflow 3.12 checks no source: every one is accepted, and it serves the owner's artifact
          // through each (the path after the network location; the first of two routes).
          assert.deepEqual(
            created,
            crossSources(w).map((body) => body.source),
          )
          assert.deepEqual(
            leaks.sort(),
            crossSources(w)
              .map((body) => body.source)
              .sort(),
            "MLflow 3.12 serves the other experiment's artifact through these sources",
          )
        }

        // A source mallory may read is still accepted.
        const fine = await mallory('POST', '/api/2.0/mlflow/model-versions/create', {
          body: {name: w.malloryModel, run_id: w.malloryRunId, source: `mlflow-artifacts:/${w.malloryExperimentId}/${w.malloryRunId}/artifacts`},
        })
        assert.equal(fine.status, 200, describeAnswer(fine))
      })

      it('JSON bodies: bytes Flask reads as no body, or as other text, are refused before anything is decided', async () => {
        const tagOf = async () => {
          const run = await ok(mallory('GET', `/api/2.0/mlflow/runs/get?${q({run_id: w.malloryRunId})}`), 'mallory reads her run')
          return ((run.run.data.tags ?? []) as Json[]).find((tag) => tag.key === 'k')?.value as string | undefined
        }

        const setTag = (runId: string, value: Buffer) => Buffer.concat([Buffer.from(`{"run_id": "${runId}", "key": "k", "value": "`), value, Buffer.from('"}')])
        const bodies: Array<[what: string, bytes: Buffer, contentType: string]> = [
          ['an invalid byte', setTag(w.malloryRunId, Buffer.from([0x76, 0xff])), 'application/json'],
          ['an encoded surrogate', setTag(w.malloryRunId, Buffer.from([0xed, 0xa0, 0x80])), 'application/json'],
          ['Latin-1 declared as such', setTag(w.malloryRunId, Buffer.from('caf\u00E9', 'latin1')), 'application/json; charset=latin-1'],
          ['ASCII declared as UTF-16', setTag(w.malloryRunId, Buffer.from('utf16')), 'application/json; charset=utf-16'],
          ['a byte-order mark', Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), setTag(w.malloryRunId, Buffer.from('bom'))]), 'application/json'],
          [
            'UTF-16 with its byte-order mark',
            Buffer.concat([Buffer.from([0xff, 0xfe]), Buffer.from(setTag(w.malloryRunId, Buffer.from('utf16le')).toString(), 'utf16le')]),
            'application/json',
          ],
          // Naming the owner's run: no reader may take it for a body about mallory's.
          ["an invalid byte, on the owner's run", setTag(w.runId, Buffer.from([0x76, 0xff])), 'application/json'],
        ]
        // How the upstream took each: a 400 for a body it read as none at all (missing fields, or
        // max_results 0), another 400, or the tag it set.
        const outcome = async (answer: Answer) => {
          if (answer.status === 200) return `set ${JSON.stringify(await tagOf())}`
          return `${answer.status} ${/Missing value|Invalid value 0 for parameter 'max_results'/.test(answer.json?.message ?? '') ? 'read as no body' : 'refused'}`
        }

        const outcomes: Record<string, string> = {}
        for (const [what, bytes, contentType] of bodies) {
          const answer = await mallory('POST', '/api/2.0/mlflow/runs/set-tag', {body: bytes, contentType})
          assertNoSecrets(w, answer)
          if (kind === 'serve') {
            assert.equal(answer.status, 400, `${what}: ${describeAnswer(answer)}`)
            assert.equal(answer.json?.error_code, 'BAD_REQUEST', `${what}: ${describeAnswer(answer)}`)
            assert.match(answer.json?.message, /UTF-8|byte-order mark|charset/, `${what}: ${describeAnswer(answer)}`)
          }

          outcomes[what] = await outcome(answer)
        }

        // A search Flask reads as `{}` instead of the filter serve would decide on.
        const search = await mallory('POST', '/api/2.0/mlflow/experiments/search', {
          body: Buffer.from([...Buffer.from('{"max_results": 5, "filter": "name = \'x'), 0xff, ...Buffer.from('\'"}')]),
          contentType: 'application/json',
        })
        assertNoSecrets(w, search)
        outcomes['a search with an invalid byte'] = await outcome(search)
        if (kind === 'serve') {
          assert.equal(search.status, 400, describeAnswer(search))
          assert.equal(search.json?.error_code, 'BAD_REQUEST', describeAnswer(search))
        } else {
          // MLflow, recorded: invalid UTF-8 is read as no body at all (3.12's auth layer refuses
          // it first where it reads the body itself), a value with an encoded surrogate is stored
          // empty, a byte-order mark and UTF-16 are decoded, and the charset parameter is ignored.
          const noBody = version === MLFLOW_VERSIONS.legacy ? '400 refused' : '400 read as no body'
          assert.deepEqual(outcomes, {
            'a byte-order mark': 'set "bom"',
            'a search with an invalid byte': '400 read as no body',
            'an encoded surrogate': 'set ""',
            'an invalid byte': noBody,
            "an invalid byte, on the owner's run": noBody,
            'ASCII declared as UTF-16': 'set "utf16"',
            'Latin-1 declared as such': noBody,
            'UTF-16 with its byte-order mark': 'set "utf16le"',
          })
        }

        // UTF-8, declared or not, and a key given twice (both sides keep the last) are read alike.
        const good = await mallory('POST', '/api/2.0/mlflow/runs/set-tag', {
          body: setTag(w.malloryRunId, Buffer.from('caf\u00E9')),
          contentType: 'application/json; charset=UTF-8',
        })
        assert.equal(good.status, 200, describeAnswer(good))
        assert.equal(await tagOf(), 'caf\u00E9')
        const twice = await mallory('POST', '/api/2.0/mlflow/runs/set-tag', {
          body: `{"run_id": "${w.malloryRunId}", "key": "k", "value": "first", "value": "second"}`,
          contentType: 'application/json',
        })
        assert.equal(twice.status, 200, describeAnswer(twice))
        assert.equal(await tagOf(), 'second')
      })
    })
  }
}
