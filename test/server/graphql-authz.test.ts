import assert from 'node:assert/strict'
import {describe, it} from 'node:test'

import {parse, print} from 'graphql'

import {authorizeGraphql, type GraphqlAccess, type GraphqlDecision} from '../../src/server/authz/graphql.js'

/**
 * Experiments 1 and 2 readable, 3 not; runs r1 (exp 1), r2 (exp 2), r3 (exp 3); versions of model
 * "good" listed, of "secret" not, of "pr" only as a prompt's; `denied`: the tiers denied outright.
 */
function fakeAccess(denied: string[] = []): GraphqlAccess & {runLookups: string[]} {
  const readableExperiments = new Set(['1', '2'])
  const runs = new Map([
    ['r1', '1'],
    ['r2', '2'],
    ['r3', '3'],
  ])
  const runLookups: string[] = []
  return {
    canReadExperiment: (id) => readableExperiments.has(id),
    listsExperiment: (id) => readableExperiments.has(id),
    listsModelVersion: (name, kind) => name === 'good' || (kind === 'prompt' && name === 'pr'),
    tierDenied: (type) => denied.includes(type),
    async canReadRun(runId) {
      runLookups.push(runId)
      const experiment = runs.get(runId)
      return experiment !== undefined && readableExperiments.has(experiment)
    },
    runLookups,
  }
}

async function decide(request: {query: unknown; variables?: unknown; operationName?: unknown}, access = fakeAccess()): Promise<GraphqlDecision> {
  return authorizeGraphql(request, access)
}

async function allowed(request: {query: unknown; variables?: unknown; operationName?: unknown}, access = fakeAccess()) {
  const decision = await decide(request, access)
  if (!decision.allowed) assert.fail(`expected allowed, got ${decision.status}: ${decision.message}`)
  return decision
}

async function refused(request: {query: unknown; variables?: unknown; operationName?: unknown}, status: 400 | 403, pattern: RegExp, access = fakeAccess()) {
  const decision = await decide(request, access)
  assert.equal(decision.allowed, false, 'expected a refusal')
  if (decision.allowed) return
  assert.equal(decision.status, status, decision.message)
  assert.match(decision.message, pattern)
}

/**
 * A request forwarded with the root fields under `keys` withheld: each sent as `__typename` under
 * its key, answered null, as MLflow answers a field the caller may not read.
 */
async function withheld(request: {query: unknown; variables?: unknown; operationName?: unknown}, keys: string[], access = fakeAccess()) {
  const decision = await allowed(request, access)
  for (const key of keys) assert.match(decision.request.query, new RegExp(`\\b${key}: __typename\\b`), decision.request.query)
  const data = Object.fromEntries(keys.map((key) => [key, 'Query']))
  assert.deepEqual(decision.filterResponse({data, errors: null}), {data: Object.fromEntries(keys.map((key) => [key, null])), errors: null})
  return decision
}

const version = (name: string, v = '1') => ({__typename: 'MlflowModelVersion', name, version: v})

// The web UI's operations (MLflow 3.12/3.17 bundles), as Apollo sends them (it adds __typename).
const UI_GET_RUN = `query GetRun($data: MlflowGetRunInput!) @component(name: "MLflow.ExperimentRunTracking") {
  mlflowGetRun(input: $data) {
    apiError { helpUrl code message __typename }
    run {
      info { runName status runUuid experimentId artifactUri endTime lifecycleStage startTime userId __typename }
      experiment { experimentId name tags { key value __typename } artifactLocation lifecycleStage lastUpdateTime __typename }
      modelVersions { status version name source __typename }
      data { metrics { key value step timestamp __typename } params { key value __typename } tags { key value __typename } __typename }
      inputs { datasetInputs { dataset { digest name profile schema source sourceType __typename } tags { key value __typename } __typename } modelInputs { modelId __typename } __typename }
      outputs { modelOutputs { modelId step __typename } __typename }
      __typename
    }
    __typename
  }
}`
const UI_SEARCH_RUNS = `query SearchRuns($data: MlflowSearchRunsInput!) {
  mlflowSearchRuns(input: $data) {
    apiError { helpUrl code message __typename }
    runs {
      info { runName runUuid experimentId __typename }
      modelVersions { version name creationTimestamp status source __typename }
      __typename
    }
    __typename
  }
}`
const UI_METRICS = `query GetMetricHistoryBulkInterval($data: MlflowGetMetricHistoryBulkIntervalInput!)
  @component(name: "MLflow.ExperimentRunTracking") {
  mlflowGetMetricHistoryBulkInterval(input: $data) {
    __typename
    metrics { timestamp step runId key value __typename }
    apiError { code message __typename }
  }
}`
const UI_GET_EXPERIMENT = `query MlflowGetExperimentQuery($input: MlflowGetExperimentInput!) @component(name: "MLflow.ExperimentRunTracking") {
  mlflowGetExperiment(input: $input) {
    apiError { code message __typename }
    experiment { artifactLocation creationTime experimentId lastUpdateTime lifecycleStage name tags { key value __typename } __typename }
    __typename
  }
}`

describe('authorizeGraphql: the web UI keeps working', () => {
  it('GetRun on a readable run: forwarded verbatim, model versions of unreadable models removed', async () => {
    const request = {operationName: 'GetRun', query: UI_GET_RUN, variables: {data: {runId: 'r1'}}}
    const decision = await allowed(request)
    assert.deepEqual(decision.request, request)
    const body = {
      data: {mlflowGetRun: {apiError: null, run: {info: {runUuid: 'r1'}, modelVersions: [version('good'), version('secret'), version('good', '2')]}}},
      errors: null,
    }
    assert.deepEqual(decision.filterResponse(body), {
      data: {mlflowGetRun: {apiError: null, run: {info: {runUuid: 'r1'}, modelVersions: [version('good'), version('good', '2')]}}},
      errors: null,
    })
  })

  it('GetRun on an unreadable or unknown run is answered null', async () => {
    await withheld({operationName: 'GetRun', query: UI_GET_RUN, variables: {data: {runId: 'r3'}}}, ['mlflowGetRun'])
    await withheld({operationName: 'GetRun', query: UI_GET_RUN, variables: {data: {runId: 'nope'}}}, ['mlflowGetRun'])
  })

  it('SearchRuns: experiment ids narrowed in the variables, model versions filtered in every run', async () => {
    const variables = {data: {experimentIds: ['1', '3', '2'], maxResults: 10, orderBy: ['attributes.start_time DESC'], runViewType: 'ACTIVE_ONLY'}}
    const decision = await allowed({operationName: 'SearchRuns', query: UI_SEARCH_RUNS, variables})
    assert.equal(decision.request.query, UI_SEARCH_RUNS)
    assert.deepEqual(decision.request.variables, {data: {...variables.data, experimentIds: ['1', '2']}})
    assert.deepEqual(variables.data.experimentIds, ['1', '3', '2'], 'the caller’s variables are not mutated')
    const body = {
      data: {
        mlflowSearchRuns: {
          runs: [
            {info: {runUuid: 'r1'}, modelVersions: [version('secret'), version('good')]},
            {info: {runUuid: 'r2'}, modelVersions: null},
            {info: {runUuid: 'r4'}, modelVersions: [version('secret')]},
          ],
        },
      },
    }
    assert.deepEqual(decision.filterResponse(body), {
      data: {
        mlflowSearchRuns: {
          runs: [
            {info: {runUuid: 'r1'}, modelVersions: [version('good')]},
            {info: {runUuid: 'r2'}, modelVersions: null},
            {info: {runUuid: 'r4'}, modelVersions: []},
          ],
        },
      },
    })
  })

  it('SearchRuns over readable experiments only is forwarded unchanged; over none is answered null', async () => {
    const request = {query: UI_SEARCH_RUNS, variables: {data: {experimentIds: ['1', '2']}}}
    assert.deepEqual((await allowed(request)).request, request)
    await withheld({query: UI_SEARCH_RUNS, variables: {data: {experimentIds: ['3']}}}, ['mlflowSearchRuns'])
  })

  it('GetMetricHistoryBulkInterval needs READ on every run', async () => {
    const access = fakeAccess()
    await allowed({query: UI_METRICS, variables: {data: {metricKey: 'loss', runIds: ['r1', 'r2', 'r1']}}}, access)
    assert.deepEqual(access.runLookups, ['r1', 'r2'], 'each run is resolved once')
    await withheld({query: UI_METRICS, variables: {data: {metricKey: 'loss', runIds: ['r1', 'r3']}}}, ['mlflowGetMetricHistoryBulkInterval'])
  })

  it('MlflowGetExperimentQuery needs READ on the experiment', async () => {
    await allowed({query: UI_GET_EXPERIMENT, variables: {input: {experimentId: '2'}}})
    await withheld({query: UI_GET_EXPERIMENT, variables: {input: {experimentId: '3'}}}, ['mlflowGetExperiment'])
  })
})

describe('authorizeGraphql: request shape', () => {
  it('refuses a batch (JSON array) and non-object requests', async () => {
    const batch = [{query: '{ __typename }'}, {query: '{ __typename }'}]
    await refused(batch as never, 400, /batched/)
    await refused(null as never, 400, /batched/)
  })

  it('refuses a missing, empty or non-string query', async () => {
    await refused({query: undefined}, 400, /"query" string/)
    await refused({query: '  '}, 400, /"query" string/)
    await refused({query: ['{ __typename }']}, 400, /"query" string/)
  })

  it('refuses an unparsable document with the parser’s message', async () => {
    await refused({query: '{ mlflowGetRun(input: {runId: "r1"} { run { info { runId } } } }'}, 400, /^Invalid GraphQL document: Syntax Error/)
  })

  it('refuses variables that are not an object (MLflow passes them to Graphene as they came)', async () => {
    await refused({query: UI_GET_EXPERIMENT, variables: '{"input": {"experimentId": "1"}}'}, 400, /must be a JSON object/)
    await refused({query: UI_GET_EXPERIMENT, variables: ['x']}, 400, /must be a JSON object/)
    await refused({query: UI_GET_EXPERIMENT, variables: 5}, 400, /must be a JSON object/)
  })

  it('refuses a non-string operationName; null means none', async () => {
    await refused({operationName: 7, query: '{ __typename }'}, 400, /operationName/)
    const decision = await allowed({operationName: null, query: '{ __typename }', variables: null})
    assert.deepEqual(decision.request, {query: '{ __typename }'})
  })

  it('refuses type-system definitions and fragment-only documents', async () => {
    await refused({query: 'type Foo { a: String } query { __typename }'}, 400, /only operations and fragments/)
    await refused({query: 'fragment F on Query { __typename }'}, 400, /no operation/)
  })

  it('refuses a document too big or too complex to check cheaply', async () => {
    await refused({query: `{ ${'__typename '.repeat(10_001)} }`}, 400, /too complex/)
    await refused({query: `{ ${'a: __typename '.repeat(10_001)} }`}, 400, /Invalid GraphQL document: .*tokens/)
  })
})

describe('authorizeGraphql: choosing the operation', () => {
  const doc = `
    query Readable { mlflowGetExperiment(input: {experimentId: "1"}) { experiment { name } } }
    query Secret { mlflowGetExperiment(input: {experimentId: "3"}) { experiment { name } } }
    mutation Mut { testMutation(inputString: "x") { output } }`

  it('needs operationName when there are several operations, as graphql-js', async () => {
    await refused({query: doc}, 400, /Must provide operation name/)
  })

  it('checks only the operation named by operationName and forwards that name', async () => {
    const decision = await allowed({operationName: 'Readable', query: doc})
    assert.deepEqual(decision.request, {operationName: 'Readable', query: doc})
    await withheld({operationName: 'Secret', query: doc}, ['mlflowGetExperiment'])
    await refused({operationName: 'Mut', query: doc}, 403, /mutation operations are not allowed/)
  })

  it('refuses an unknown operationName, also against an anonymous operation', async () => {
    await refused({operationName: 'Nope', query: doc}, 400, /Unknown operation named "Nope"/)
    await refused({operationName: 'X', query: '{ __typename }'}, 400, /Unknown operation/)
    await refused({operationName: '', query: '{ __typename }'}, 400, /Unknown operation/)
  })

  it('refuses duplicate operation or fragment names rather than guessing', async () => {
    await refused({operationName: 'A', query: 'query A { __typename } query A { test { output } }'}, 400, /only one operation named "A"/)
    await refused({query: 'query { ...F } fragment F on Query { __typename } fragment F on Query { test { output } }'}, 400, /only one fragment named "F"/)
  })
})

describe('authorizeGraphql: operation types, root fields, introspection', () => {
  it('refuses mutations (MLflow has mlflowSearchRuns, mlflowSearchDatasets and testMutation there) and subscriptions', async () => {
    await refused({query: 'mutation { testMutation(inputString: "x") { output } }'}, 403, /mutation operations/)
    await refused({query: 'mutation { mlflowSearchDatasets(input: {experimentIds: ["1"]}) { datasetSummaries { name } } }'}, 403, /mutation operations/)
    await refused({query: 'mutation { mlflowSearchRuns(input: {experimentIds: ["1"]}) { runs { info { runId } } } }'}, 403, /mutation operations/)
    await refused({query: 'subscription { __typename }'}, 403, /subscription operations/)
  })

  it('allows __typename, refuses root fields off the allow-list, naming them', async () => {
    await allowed({query: '{ __typename t: __typename }'})
    await refused({query: '{ test(inputString: "hi") { output } }'}, 403, /GraphQL field test is not allowed/)
    await refused({query: '{ __typename constructor }'}, 403, /GraphQL field constructor is not allowed/)
  })

  it('refuses introspection, also aliased or inside fragments', async () => {
    await refused({query: '{ __schema { types { name } } }'}, 403, /introspection \(__schema\)/)
    await refused({query: '{ t: __type(name: "Query") { name } }'}, 403, /introspection \(__type\)/)
    await refused({query: 'query { ...I } fragment I on Query { ... on Query { __schema { queryType { name } } } }'}, 403, /introspection/)
  })

  it('follows named and inline fragments to the root fields', async () => {
    const decision = await withheld(
      {
        operationName: 'Q',
        query: 'query Q { ... on Query { ...F } } query Other { ...F } fragment F on Query { mlflowGetRun(input: {runId: "r3"}) { run { info { runId } } } }',
      },
      ['mlflowGetRun'],
    )
    // Only the operation run and the fragments it reaches are forwarded, the withheld field in them replaced.
    assert.equal(decision.request.query, print(parse('query Q { ... on Query { ...F } } fragment F on Query { mlflowGetRun: __typename }')))
    assert.equal(decision.request.operationName, 'Q')
    await allowed({query: 'query { ... on Query { ...F } } fragment F on Query { mlflowGetRun(input: {runId: "r1"}) { run { info { runId } } } }'})
  })

  it('refuses unknown fragments and survives fragment cycles', async () => {
    await refused({query: '{ ...Missing }'}, 400, /Unknown fragment "Missing"/)
    await allowed({query: 'query { ...A } fragment A on Query { __typename ...B } fragment B on Query { ...A }'})
  })

  it('keeps @skip/@include on a withheld field, so the upstream answers its key exactly when it would answer the field', async () => {
    const decision = await withheld({query: '{ mlflowGetRun(input: {runId: "r3"}) @skip(if: true) { run { info { runId } } } }'}, ['mlflowGetRun'])
    assert.match(decision.request.query, /mlflowGetRun: __typename @skip\(if: true\)/)
  })
})

describe('authorizeGraphql: single-id fields', () => {
  it('reads ids from literals, variables and variable defaults', async () => {
    await allowed({query: '{ mlflowGetExperiment(input: {experimentId: "1"}) { experiment { name } } }'})
    await withheld({query: '{ mlflowGetExperiment(input: {experimentId: "3"}) { experiment { name } } }'}, ['mlflowGetExperiment'])
    const unused = await withheld(
      {query: 'query($id: String) { mlflowGetExperiment(input: {experimentId: $id}) { experiment { name } } }', variables: {id: '3'}},
      ['mlflowGetExperiment'],
    )
    // Its variable, unused once the field is withheld, is dropped: an unused one makes the document invalid.
    assert.deepEqual(unused.request, {query: '{\n  mlflowGetExperiment: __typename\n}', variables: {}})
    await withheld({query: 'query($id: String = "3") { mlflowGetExperiment(input: {experimentId: $id}) { experiment { name } } }'}, ['mlflowGetExperiment'])
    await allowed({query: 'query($id: String = "3") { mlflowGetExperiment(input: {experimentId: $id}) { experiment { name } } }', variables: {id: '1'}})
    await withheld({query: 'query($in: MlflowGetExperimentInput = {experimentId: "3"}) { mlflowGetExperiment(input: $in) { experiment { name } } }'}, [
      'mlflowGetExperiment',
    ])
  })

  it('refuses experiment ids in any but their canonical spelling (400), which int() would read as a readable-looking other id', async () => {
    // Experiment 3 is unreadable: "03" must not be decided under the name "03", which no grant has.
    for (const id of ['03', ' 3', '+3', '3 ', '\u0663', '0_3']) {
      await refused(
        {query: 'query($id: String) { mlflowGetExperiment(input: {experimentId: $id}) { experiment { name } } }', variables: {id}},
        400,
        /decimal experiment ids/,
      )
      await refused(
        {query: 'query($ids: [String]) { mlflowSearchRuns(input: {experimentIds: $ids}) { runs { info { runId } } } }', variables: {ids: ['1', id]}},
        400,
        /decimal experiment ids/,
      )
      await refused(
        {query: `{ mlflowSearchRuns(input: {experimentIds: ["1", ${JSON.stringify(id)}]}) { runs { info { runId } } } }`},
        400,
        /decimal experiment ids/,
      )
    }
  })

  it('refuses a missing, null, empty or non-string id (400)', async () => {
    await refused({query: '{ mlflowGetExperiment { experiment { name } } }'}, 400, /needs input.experimentId/)
    await refused({query: '{ mlflowGetExperiment(input: null) { experiment { name } } }'}, 400, /needs input.experimentId/)
    await refused({query: '{ mlflowGetExperiment(input: {experimentId: ""}) { experiment { name } } }'}, 400, /needs input.experimentId/)
    await refused({query: 'query($id: String) { mlflowGetExperiment(input: {experimentId: $id}) { experiment { name } } }'}, 400, /needs input.experimentId/)
    await refused({query: '{ mlflowGetExperiment(input: {experimentId: 3}) { experiment { name } } }'}, 400, /must be a string/)
    await refused({query: '{ mlflowGetExperiment(input: "3") { experiment { name } } }'}, 400, /input must be an object/)
  })

  it('refuses undefined variables, repeated arguments and repeated input fields (400)', async () => {
    await refused({query: '{ mlflowGetExperiment(input: {experimentId: $id}) { experiment { name } } }', variables: {id: '1'}}, 400, /"\$id" is not defined/)
    await refused(
      {query: '{ mlflowGetExperiment(input: {experimentId: "1"}, input: {experimentId: "3"}) { experiment { name } } }'},
      400,
      /more than one "input"/,
    )
    await refused({query: '{ mlflowGetRun(input: {runId: "r1", runId: "r3"}) { run { info { runId } } } }'}, 400, /"runId" is given more than once/)
  })

  it('mlflowGetRun and mlflowListArtifacts take runId or runUuid; two different ids are refused', async () => {
    for (const field of ['mlflowGetRun', 'mlflowListArtifacts']) {
      const selection = field === 'mlflowGetRun' ? '{ run { info { runId } } }' : '{ files { path } }'
      await allowed({query: `{ ${field}(input: {runUuid: "r1"}) ${selection} }`})
      await allowed({query: `{ ${field}(input: {runId: "r1", runUuid: "r1"}) ${selection} }`})
      await allowed({query: `{ ${field}(input: {runId: "", runUuid: "r1"}) ${selection} }`})
      await withheld({query: `{ ${field}(input: {runUuid: "r3"}) ${selection} }`}, [field])
      await refused({query: `{ ${field}(input: {runId: "r1", runUuid: "r3"}) ${selection} }`}, 400, /two different runs/)
      await refused({query: `{ ${field}(input: {path: "x"}) ${selection} }`}, 400, /needs input.runId/)
    }
  })

  it('checks every alias and withholds the denied one only', async () => {
    const query = `{
      a: mlflowGetRun(input: {runId: "r1"}) { run { info { runId } } }
      b: mlflowGetRun(input: {runId: "r3"}) { run { info { runId } } }
    }`
    const decision = await withheld({query}, ['b'])
    assert.match(decision.request.query, /a: mlflowGetRun\(input: \{runId: "r1"\}\)/)
  })

  it('an input field named __proto__ is data, not a prototype', async () => {
    await refused({query: '{ mlflowGetExperiment(input: {__proto__: {experimentId: "1"}}) { experiment { name } } }'}, 400, /needs input.experimentId/)
  })
})

describe('authorizeGraphql: mlflowGetMetricHistoryBulkInterval', () => {
  it('treats a single id as a list of one (GraphQL list coercion)', async () => {
    await allowed({query: '{ mlflowGetMetricHistoryBulkInterval(input: {runIds: "r1", metricKey: "m"}) { metrics { value } } }'})
    await withheld({query: '{ mlflowGetMetricHistoryBulkInterval(input: {runIds: "r3", metricKey: "m"}) { metrics { value } } }'}, [
      'mlflowGetMetricHistoryBulkInterval',
    ])
  })

  it('resolves variables inside list literals', async () => {
    const query = 'query($a: String, $b: String) { mlflowGetMetricHistoryBulkInterval(input: {runIds: [$a, $b], metricKey: "m"}) { metrics { value } } }'
    await allowed({query, variables: {a: 'r1', b: 'r2'}})
    await withheld({query, variables: {a: 'r1', b: 'r3'}}, ['mlflowGetMetricHistoryBulkInterval'])
  })

  it('refuses no run ids, or non-string ones (400)', async () => {
    await refused({query: '{ mlflowGetMetricHistoryBulkInterval(input: {runIds: [], metricKey: "m"}) { metrics { value } } }'}, 400, /needs input.runIds/)
    await refused({query: '{ mlflowGetMetricHistoryBulkInterval(input: {metricKey: "m"}) { metrics { value } } }'}, 400, /needs input.runIds/)
    await refused(
      {query: '{ mlflowGetMetricHistoryBulkInterval(input: {runIds: ["r1", null], metricKey: "m"}) { metrics { value } } }'},
      400,
      /list of strings/,
    )
  })
})

describe('authorizeGraphql: search narrowing', () => {
  it('narrows a list given as its own variable', async () => {
    const query = 'query($ids: [String]) { mlflowSearchRuns(input: {experimentIds: $ids, maxResults: 5}) { runs { info { runId } } } }'
    const decision = await allowed({query, variables: {ids: ['3', '1'], unrelated: true}})
    assert.deepEqual(decision.request, {query, variables: {ids: ['1'], unrelated: true}})
  })

  it('narrows a variable default by providing the variable', async () => {
    const query = 'query($ids: [String] = ["1", "3"]) { mlflowSearchRuns(input: {experimentIds: $ids}) { runs { info { runId } } } }'
    const decision = await allowed({query})
    assert.deepEqual(decision.request, {query, variables: {ids: ['1']}})
    const inputDefault =
      'query($in: MlflowSearchRunsInput = {experimentIds: ["3", "2"], runViewType: ALL}) { mlflowSearchRuns(input: $in) { runs { info { runId } } } }'
    assert.deepEqual((await allowed({query: inputDefault})).request.variables, {in: {experimentIds: ['2'], runViewType: 'ALL'}})
  })

  it('rewrites a literal list by reprinting the document (other definitions kept)', async () => {
    const query = `query Q { mlflowSearchRuns(input: {experimentIds: ["1", "3", "2"], filter: "metrics.x > 1"}) { runs { info { runId } } } }
      query Other { __typename }`
    const decision = await allowed({operationName: 'Q', query})
    assert.equal(decision.request.query, print(parse(query.replace('"1", "3", "2"', '"1", "2"'))))
    assert.equal(decision.request.operationName, 'Q')
    assert.equal(decision.request.variables, undefined)
  })

  it('refuses a literal list whose unreadable items are variables (dropping them would leave unused variables)', async () => {
    const query = 'query($x: String) { mlflowSearchRuns(input: {experimentIds: ["1", $x]}) { runs { info { runId } } } }'
    await refused({query, variables: {x: '3'}}, 403, /pass only readable ids/)
    const ok = await allowed({query, variables: {x: '2'}})
    assert.equal(ok.request.query, query)
    const literalDropped = await allowed({
      query: 'query($x: String) { mlflowSearchRuns(input: {experimentIds: ["3", $x]}) { runs { info { runId } } } }',
      variables: {x: '2'},
    })
    assert.match(literalDropped.request.query, /experimentIds: \[\$x\]/)
  })

  it('answers null when nothing readable is left, refuses when nothing is given (400)', async () => {
    await withheld({query: '{ mlflowSearchRuns(input: {experimentIds: ["3"]}) { runs { info { runId } } } }'}, ['mlflowSearchRuns'])
    await withheld({query: '{ mlflowSearchRuns(input: {experimentIds: "3"}) { runs { info { runId } } } }'}, ['mlflowSearchRuns'])
    await refused({query: '{ mlflowSearchRuns(input: {experimentIds: []}) { runs { info { runId } } } }'}, 400, /needs input.experimentIds/)
    await refused({query: '{ mlflowSearchRuns { runs { info { runId } } } }'}, 400, /needs input.experimentIds/)
    await refused({query: '{ mlflowSearchRuns(input: {experimentIds: [1]}) { runs { info { runId } } } }'}, 400, /list of strings/)
  })

  it('narrows each alias; a shared variable is narrowed consistently', async () => {
    const query = `query($in: MlflowSearchRunsInput) {
      a: mlflowSearchRuns(input: $in) { runs { info { runId } } }
      b: mlflowSearchRuns(input: {experimentIds: ["2", "3"]}) { runs { info { runId } } }
    }`
    const decision = await allowed({query, variables: {in: {experimentIds: ['1', '3']}}})
    assert.deepEqual(decision.request.variables, {in: {experimentIds: ['1']}})
    assert.match(decision.request.query, /experimentIds: \["2"\]/)
  })

  it('applies the same rule to mlflowSearchDatasets as a query field', async () => {
    await withheld({query: '{ mlflowSearchDatasets(input: {experimentIds: ["3"]}) { datasetSummaries { name } } }'}, ['mlflowSearchDatasets'])
    const decision = await allowed({
      query: 'query($i: MlflowSearchDatasetsInput) { mlflowSearchDatasets(input: $i) { datasetSummaries { name } } }',
      variables: {i: {experimentIds: ['1', '3']}},
    })
    assert.deepEqual(decision.request.variables, {i: {experimentIds: ['1']}})
  })
})

describe('authorizeGraphql: model-version filtering', () => {
  it('filters mlflowSearchModelVersions by response key (field and name aliases, fragments)', async () => {
    const query = `query {
      found: mlflowSearchModelVersions(input: {filter: "name LIKE '%'"}) { mvs: modelVersions { ...V } nextPageToken }
    }
    fragment V on MlflowModelVersion { model: name version }`
    const decision = await allowed({query})
    const body = {
      data: {found: {mvs: [{model: 'good', version: '1'}, {model: 'secret', version: '1'}, {model: null, version: '9'}, {version: '8'}], nextPageToken: 't'}},
      errors: null,
    }
    assert.deepEqual(decision.filterResponse(body), {data: {found: {mvs: [{model: 'good', version: '1'}], nextPageToken: 't'}}, errors: null})
  })

  it('allows mlflowSearchModelVersions without input', async () => {
    const decision = await allowed({query: '{ mlflowSearchModelVersions { modelVersions { name } } }'})
    assert.deepEqual(decision.filterResponse({data: {mlflowSearchModelVersions: {modelVersions: [{name: 'secret'}]}}}), {
      data: {mlflowSearchModelVersions: {modelVersions: []}},
    })
  })

  it('refuses model versions selected without their name (cannot be filtered)', async () => {
    await refused({query: '{ mlflowSearchModelVersions { modelVersions { version } } }'}, 403, /mlflowSearchModelVersions.modelVersions must select "name"/)
    await refused({query: '{ r: mlflowGetRun(input: {runId: "r1"}) { run { mv: modelVersions { version } } } }'}, 403, /r.run.mv must select "name"/)
  })

  it('pools name keys of fields merged under one response key', async () => {
    const query = '{ mlflowGetRun(input: {runId: "r1"}) { run { modelVersions { version } ... on MlflowRunExtension { modelVersions { n: name } } } } }'
    const decision = await allowed({query})
    const body = {
      data: {
        mlflowGetRun: {
          run: {
            modelVersions: [
              {n: 'secret', version: '1'},
              {n: 'good', version: '2'},
            ],
          },
        },
      },
    }
    assert.deepEqual(decision.filterResponse(body), {data: {mlflowGetRun: {run: {modelVersions: [{n: 'good', version: '2'}]}}}})
  })

  it('filters nested run.modelVersions under several aliases of the run and of the list', async () => {
    const query = `{
      one: mlflowGetRun(input: {runId: "r1"}) { r: run { a: modelVersions { name } b: modelVersions { name version } } }
      two: mlflowGetRun(input: {runId: "r2"}) { ...RunFields }
    }
    fragment RunFields on MlflowGetRunResponse { run { modelVersions { name } } }`
    const decision = await allowed({query})
    const body = {
      data: {
        one: {
          r: {
            a: [{name: 'secret'}, {name: 'good'}],
            b: [
              {name: 'good', version: '1'},
              {name: 'secret', version: '2'},
            ],
          },
        },
        two: {run: {modelVersions: [{name: 'secret'}]}},
      },
    }
    assert.deepEqual(decision.filterResponse(body), {
      data: {one: {r: {a: [{name: 'good'}], b: [{name: 'good', version: '1'}]}}, two: {run: {modelVersions: []}}},
    })
  })

  it('leaves errors-only answers and null results alone, and drops a non-list where a list belongs', async () => {
    const decision = await allowed({query: '{ mlflowSearchModelVersions { modelVersions { name } } }'})
    const errorsOnly = {data: null, errors: ['boom']}
    assert.equal(decision.filterResponse(errorsOnly), errorsOnly)
    assert.deepEqual(decision.filterResponse({data: {mlflowSearchModelVersions: null}}), {data: {mlflowSearchModelVersions: null}})
    assert.deepEqual(decision.filterResponse({data: {mlflowSearchModelVersions: {modelVersions: {name: 'secret'}}}}), {
      data: {mlflowSearchModelVersions: {modelVersions: null}},
    })
    assert.equal(decision.filterResponse('not json'), 'not json')
  })

  it('does not touch a response without model-version lists', async () => {
    const decision = await allowed({query: '{ mlflowGetExperiment(input: {experimentId: "1"}) { experiment { name } } }'})
    const body = {data: {mlflowGetExperiment: {experiment: {name: 'x'}}}}
    assert.equal(decision.filterResponse(body), body)
  })
})

describe('authorizeGraphql: what a denied tier withholds, as MLflow clears it', () => {
  it('blanks a run\'s logged models under a denied logged_model tier: lists [], ids "", under every alias and fragment', async () => {
    const query = `{
      r: mlflowGetRun(input: {runId: "r1"}) { run { i: inputs { modelInputs { modelId } } ...Out data { metrics { key m: modelId } } } }
      s: mlflowSearchRuns(input: {experimentIds: ["1"]}) { runs { inputs { modelInputs { modelId } } } }
    }
    fragment Out on MlflowRunExtension { outputs { modelOutputs { modelId step } } }`
    const answer = (modelInputs: unknown, modelOutputs: unknown, modelId: unknown) => ({
      data: {
        r: {run: {data: {metrics: [{key: 'acc', m: modelId}]}, i: {modelInputs}, outputs: {modelOutputs}}},
        s: {runs: [{inputs: {modelInputs}}, {inputs: null}]},
      },
      errors: null,
    })
    const full = answer([{modelId: 'm-1'}], [{modelId: 'm-1', step: '0'}], 'm-1')
    assert.deepEqual((await allowed({query}, fakeAccess(['logged_model']))).filterResponse(structuredClone(full)), answer([], [], ''))
    // Another tier denied withholds nothing of these.
    assert.deepEqual((await allowed({query}, fakeAccess(['run']))).filterResponse(structuredClone(full)), full)
  })

  it("blanks a version's run under a denied run tier and its logged model under a denied logged_model tier, nested in runs too", async () => {
    const query = `{
      v: mlflowSearchModelVersions(input: {filter: "name = 'good'"}) { modelVersions { name runId link: runLink modelId modelParams { name } } }
      r: mlflowGetRun(input: {runId: "r1"}) { run { modelVersions { name runId modelMetrics { key } } } }
    }`
    const version = {link: 'l', modelId: 'm-1', modelParams: [{name: 'p'}], name: 'good', runId: 'r1'}
    const body = () => ({data: {r: {run: {modelVersions: [{modelMetrics: [{key: 'k'}], name: 'good', runId: 'r1'}]}}, v: {modelVersions: [version]}}})
    assert.deepEqual((await allowed({query}, fakeAccess(['run']))).filterResponse(body()), {
      data: {r: {run: {modelVersions: [{modelMetrics: [{key: 'k'}], name: 'good', runId: ''}]}}, v: {modelVersions: [{...version, link: '', runId: ''}]}},
    })
    assert.deepEqual((await allowed({query}, fakeAccess(['logged_model']))).filterResponse(body()), {
      data: {r: {run: {modelVersions: [{modelMetrics: [], name: 'good', runId: 'r1'}]}}, v: {modelVersions: [{...version, modelId: '', modelParams: []}]}},
    })
  })

  it('answers a version search filtering on run_id null under a denied run tier', async () => {
    const query = `{ v: mlflowSearchModelVersions(input: {filter: "run_id = 'r1'"}) { modelVersions { name } } }`
    await withheld({query}, ['v'], fakeAccess(['run']))
  })

  it('judges a version by its tags when a search may list prompts; without tags it must be listable as either', async () => {
    const prompts = `mlflowSearchModelVersions(input: {filter: "tags.\`mlflow.prompt.is_prompt\` = 'true'"})`
    const marked = (name: string, value: string) => ({name, t: [{k: 'mlflow.prompt.is_prompt', v: value}]})
    const tagged = await allowed({query: `{ s: ${prompts} { modelVersions { name t: tags { k: key v: value } } } }`})
    assert.deepEqual(tagged.filterResponse({data: {s: {modelVersions: [marked('pr', 'True'), marked('pr', 'false'), marked('good', 'true')]}}}), {
      data: {s: {modelVersions: [marked('pr', 'True'), marked('good', 'true')]}},
    })
    const untagged = await allowed({query: `{ s: ${prompts} { modelVersions { name } } }`})
    assert.deepEqual(untagged.filterResponse({data: {s: {modelVersions: [{name: 'pr'}, {name: 'good'}]}}}), {data: {s: {modelVersions: [{name: 'good'}]}}})
    // Without the marker in the filter MLflow lists no prompt's version: a registered model's rows decide.
    const models = await allowed({query: '{ s: mlflowSearchModelVersions { modelVersions { name } } }'})
    assert.deepEqual(models.filterResponse({data: {s: {modelVersions: [{name: 'pr'}, {name: 'good'}]}}}), {data: {s: {modelVersions: [{name: 'good'}]}}})
  })
})
