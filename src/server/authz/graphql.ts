/**
 * Authorization of MLflow's GraphQL endpoint (`/graphql`) for non-admins
 * (docs/mlflow-auth-contract.md, "GraphQL").
 *
 * MLflow 3.8+ checks a handful of root fields in a Graphene middleware. This module reproduces
 * those checks in front of the upstream, from the parsed document alone, and fails closed:
 *
 * - the document must parse and name one executable `query` operation (mutations — MLflow's
 *   `Mutation` type has `mlflowSearchRuns`, `mlflowSearchDatasets` and `testMutation` — and
 *   subscriptions are refused);
 * - its root fields (fragments followed) must be on an allow-list; introspection is refused;
 * - the ids a field reads are resolved from literals, variables or variable defaults and checked;
 *   search fields have their `experimentIds` narrowed to the readable ones, as MLflow does;
 * - model versions of unreadable registered models are removed from the upstream's answer.
 *
 * Difference from MLflow: MLflow resolves a denied field to `null` (HTTP 200, no error) and runs the
 * rest of the query; here one denied field refuses the whole request (status 403), which is simpler
 * and leaks nothing. Malformed or ambiguous requests are refused with status 400. The upstream still
 * validates the forwarded document against its schema; nothing here needs the schema, so new MLflow
 * fields on result types keep working without changes.
 */
import {
  type DocumentNode,
  type FieldNode,
  type FragmentDefinitionNode,
  GraphQLError,
  Kind,
  type ListValueNode,
  type OperationDefinitionNode,
  OperationTypeNode,
  parse,
  print,
  type SelectionSetNode,
  type ValueNode,
  type VariableDefinitionNode,
  visit,
} from 'graphql'

import {isCanonicalId} from '../../mlflow/resources.js'

export interface GraphqlAccess {
  canReadExperiment(experimentId: string): boolean
  /** Resolves the run's experiment through the upstream; false for an unknown run. */
  canReadRun(runId: string): Promise<boolean>
  canReadRegisteredModel(name: string): boolean
}

/** What is forwarded upstream (as a JSON body). */
export interface GraphqlRequest {
  query: string
  variables?: Record<string, unknown>
  operationName?: string
}

export type GraphqlDecision =
  | {
      allowed: false
      /** 400: malformed, invalid or ambiguous request; 403: permission denied. */
      status: 400 | 403
      message: string
    }
  | {
      allowed: true
      /** The request to forward: the same query, variables possibly narrowed. */
      request: GraphqlRequest
      /** Filters the upstream's JSON answer for this caller (model versions of unreadable models removed). */
      filterResponse(body: unknown): unknown
    }

/**
 * Decides whether a non-admin may send this GraphQL request (`request` is the decoded JSON body,
 * which is all MLflow reads). Exceptions thrown by `access` propagate.
 */
export async function authorizeGraphql(
  request: {query: unknown; variables?: unknown; operationName?: unknown},
  access: GraphqlAccess,
): Promise<GraphqlDecision> {
  try {
    return await decide(request, access)
  } catch (error) {
    if (error instanceof Refusal) return {allowed: false, message: error.message, status: error.status}
    throw error
  }
}

/** Bounds on the work a hostile document can cause here (MLflow's own limit is 1000 selections). */
const MAX_TOKENS = 20_000
const MAX_SELECTIONS_VISITED = 10_000

class Refusal extends Error {
  constructor(
    readonly status: 400 | 403,
    message: string,
  ) {
    super(message)
  }
}

const invalid = (message: string): Refusal => new Refusal(400, message)
const forbidden = (message: string): Refusal => new Refusal(403, `Permission denied: ${message}`)

type Json = Record<string, unknown>

const isObject = (value: unknown): value is Json => typeof value === 'object' && value !== null && !Array.isArray(value)

/** What checking the root fields produced: variable and query rewrites, response filters. */
interface Context {
  access: GraphqlAccess
  fragments: Map<string, FragmentDefinitionNode>
  variableDefinitions: Map<string, VariableDefinitionNode>
  variables: Json
  /** Whole variable values replaced in the forwarded request (narrowed experiment ids). */
  variableOverrides: Map<string, unknown>
  /** Literal lists replaced in the forwarded document (narrowed experiment ids). */
  listRewrites: Map<ListValueNode, ListValueNode>
  /** Model-version lists to filter, keyed by their response-key path. */
  modelVersionLists: Map<string, {path: string[]; nameKeys: Set<string>}>
  runChecks: Map<string, Promise<boolean>>
  selectionsVisited: number
}

async function decide(request: unknown, access: GraphqlAccess): Promise<GraphqlDecision> {
  // A JSON array is a batch of operations: MLflow does not support it (its handler fails on it).
  if (!isObject(request)) throw invalid('A GraphQL request must be one object with a "query"; batched requests are not supported.')
  const {operationName, query} = request
  if (typeof query !== 'string' || query.trim() === '') throw invalid('The GraphQL request must have a "query" string.')
  if (operationName !== undefined && operationName !== null && typeof operationName !== 'string') throw invalid('"operationName" must be a string.')
  const variables = decodeVariables(request.variables)

  let document: DocumentNode
  try {
    document = parse(query, {maxTokens: MAX_TOKENS})
  } catch (error) {
    if (error instanceof GraphQLError) throw invalid(`Invalid GraphQL document: ${error.message}`)
    throw error
  }

  const operation = selectOperation(document, operationName ?? undefined)
  if (operation.operation !== OperationTypeNode.QUERY) throw forbidden(`GraphQL ${operation.operation} operations are not allowed.`)

  const context: Context = {
    access,
    fragments: fragmentsOf(document),
    listRewrites: new Map(),
    modelVersionLists: new Map(),
    runChecks: new Map(),
    selectionsVisited: 0,
    variableDefinitions: new Map((operation.variableDefinitions ?? []).map((definition) => [definition.variable.name.value, definition])),
    variableOverrides: new Map(),
    variables: variables ?? {},
  }

  for (const field of collectFields(operation.selectionSet, context)) {
    const name = field.name.value
    if (name === '__typename') continue
    if (name === '__schema' || name === '__type') throw forbidden(`GraphQL introspection (${name}) is reserved to admins.`)
    const check = ROOT_FIELDS.get(name)
    if (!check) throw forbidden(`GraphQL field ${name} is not allowed.`)
    // Sequential on purpose: the run lookups are memoized and most queries have one root field.
    await check(field, context)
  }

  for (const {nameKeys, path} of context.modelVersionLists.values()) {
    // Without the model name in the answer the versions cannot be filtered.
    if (nameKeys.size === 0) throw forbidden(`GraphQL field ${path.join('.')} must select "name" so that versions of unreadable registered models can be filtered out.`)
  }

  return {
    allowed: true,
    filterResponse: (body) => filterModelVersions(body, context),
    request: forwardedRequest({document, operationName: operationName ?? undefined, query, variables}, context),
  }
}

/** MLflow hands `variables` to Graphene as they came: an object, or nothing. */
function decodeVariables(raw: unknown): Json | undefined {
  if (raw === undefined || raw === null) return undefined
  if (!isObject(raw)) throw invalid('"variables" must be a JSON object.')
  return raw
}

/** The operation graphql-js would execute: the only one, or the one named by operationName. */
function selectOperation(document: DocumentNode, operationName: string | undefined): OperationDefinitionNode {
  const operations: OperationDefinitionNode[] = []
  for (const definition of document.definitions) {
    if (definition.kind === Kind.OPERATION_DEFINITION) operations.push(definition)
    // Type-system definitions are not executable: the upstream would refuse the document.
    else if (definition.kind !== Kind.FRAGMENT_DEFINITION) throw invalid('Invalid GraphQL document: only operations and fragments are allowed.')
  }

  if (operationName === undefined) {
    if (operations.length === 0) throw invalid('The GraphQL document contains no operation.')
    if (operations.length > 1) throw invalid('Must provide operation name if query contains multiple operations.')
    return operations[0]
  }

  // Duplicate names are invalid GraphQL; refuse rather than guess which one the upstream runs.
  const named = operations.filter((operation) => operation.name?.value === operationName)
  if (named.length === 0) throw invalid(`Unknown operation named "${operationName}".`)
  if (named.length > 1) throw invalid(`There can be only one operation named "${operationName}".`)
  return named[0]
}

function fragmentsOf(document: DocumentNode): Map<string, FragmentDefinitionNode> {
  const fragments = new Map<string, FragmentDefinitionNode>()
  for (const definition of document.definitions) {
    if (definition.kind !== Kind.FRAGMENT_DEFINITION) continue
    if (fragments.has(definition.name.value)) throw invalid(`There can be only one fragment named "${definition.name.value}".`)
    fragments.set(definition.name.value, definition)
  }

  return fragments
}

/**
 * The fields of a selection set with inline fragments and fragment spreads flattened, as
 * graphql-js's collectFields (each fragment once per level, which also stops cycles). Type
 * conditions and @skip/@include are ignored: checking a field that may not run is only stricter.
 */
function collectFields(selectionSet: SelectionSetNode | undefined, context: Context, fields: FieldNode[] = [], spread = new Set<string>()): FieldNode[] {
  for (const selection of selectionSet?.selections ?? []) {
    if (++context.selectionsVisited > MAX_SELECTIONS_VISITED) throw invalid('The GraphQL document is too complex.')
    if (selection.kind === Kind.FIELD) fields.push(selection)
    else if (selection.kind === Kind.INLINE_FRAGMENT) collectFields(selection.selectionSet, context, fields, spread)
    else {
      const name = selection.name.value
      if (spread.has(name)) continue
      spread.add(name)
      const fragment = context.fragments.get(name)
      if (!fragment) throw invalid(`Unknown fragment "${name}".`)
      collectFields(fragment.selectionSet, context, fields, spread)
    }
  }

  return fields
}

/** The key a field has in the response: its alias, else its name. */
const responseKey = (field: FieldNode): string => field.alias?.value ?? field.name.value

/** How a field is named in messages: `mlflowGetRun`, or `mlflowGetRun (as "a")` when aliased. */
const label = (field: FieldNode): string => (field.alias ? `${field.name.value} (as "${field.alias.value}")` : field.name.value)

type RootCheck = (field: FieldNode, context: Context) => Promise<void>

/** The root fields a non-admin may query (MLflow's protected fields); anything else is refused. */
const ROOT_FIELDS = new Map<string, RootCheck>([
  [
    'mlflowGetExperiment',
    async (field, context) => {
      const experimentId = stringInput(field, context, 'experimentId')
      if (experimentId === undefined) throw invalid(`GraphQL field ${label(field)} needs input.experimentId.`)
      checkExperimentIds([experimentId], field, 'experimentId')
      if (!context.access.canReadExperiment(experimentId)) throw forbidden(`GraphQL field ${label(field)}: cannot read experiment ${experimentId}.`)
    },
  ],
  ['mlflowGetMetricHistoryBulkInterval', checkRunList],
  [
    'mlflowGetRun',
    async (field, context) => {
      await checkOneRun(field, context)
      addModelVersionLists(field, ['run', 'modelVersions'], context)
    },
  ],
  ['mlflowListArtifacts', checkOneRun],
  // Only a Mutation field in MLflow 3.12–3.17 (so unreachable while mutations are refused); kept
  // so that a query field of that name, should MLflow add one, is narrowed like search runs.
  ['mlflowSearchDatasets', narrowExperimentIds],
  ['mlflowSearchModelVersions', async (field, context) => addModelVersionLists(field, ['modelVersions'], context)],
  [
    'mlflowSearchRuns',
    async (field, context) => {
      await narrowExperimentIds(field, context)
      addModelVersionLists(field, ['runs', 'modelVersions'], context)
    },
  ],
])

/**
 * MLflow's resolvers read experiment ids with int(), which takes other spellings ("06", " 6",
 * non-ASCII digits) than the one grants are kept under: those are refused.
 */
function checkExperimentIds(ids: string[], field: FieldNode, key: string): void {
  const odd = ids.find((id) => !isCanonicalId(id))
  if (odd !== undefined) throw invalid(`GraphQL field ${label(field)}: input.${key} must be decimal experiment ids without sign, spaces or leading zeros, got ${JSON.stringify(odd)}.`)
}

/** mlflowGetRun, mlflowListArtifacts: READ on the experiment of input.runId (or input.runUuid). */
async function checkOneRun(field: FieldNode, context: Context): Promise<void> {
  const runId = stringInput(field, context, 'runId')
  const runUuid = stringInput(field, context, 'runUuid')
  // MLflow uses `run_id or run_uuid`; two different ids are refused rather than second-guessed.
  if (runId !== undefined && runUuid !== undefined && runId !== runUuid) throw invalid(`GraphQL field ${label(field)} names two different runs (runId and runUuid).`)
  const run = runId ?? runUuid
  if (run === undefined) throw invalid(`GraphQL field ${label(field)} needs input.runId.`)
  if (!(await canReadRun(run, context))) throw forbidden(`GraphQL field ${label(field)}: cannot read run ${run}.`)
}

/** mlflowGetMetricHistoryBulkInterval: READ on every run of input.runIds. */
async function checkRunList(field: FieldNode, context: Context): Promise<void> {
  const runIds = stringList(inputObject(field, context)?.runIds, field, 'runIds')
  if (runIds.length === 0) throw invalid(`GraphQL field ${label(field)} needs input.runIds.`)
  for (const runId of runIds) {
    if (!(await canReadRun(runId, context))) throw forbidden(`GraphQL field ${label(field)}: cannot read run ${runId}.`)
  }
}

function canReadRun(runId: string, context: Context): Promise<boolean> {
  let check = context.runChecks.get(runId)
  if (!check) {
    check = context.access.canReadRun(runId)
    context.runChecks.set(runId, check)
  }

  return check
}

/**
 * mlflowSearchRuns, mlflowSearchDatasets: input.experimentIds reduced to the readable ones (none
 * left → refused). The forwarded request carries the reduced list: in the variables when the list
 * (or the whole input) is a variable, else in the document's literal list, reprinted. A literal
 * list whose unreadable items are variables is refused: dropping them would leave unused
 * variables, which make the document invalid.
 */
async function narrowExperimentIds(field: FieldNode, context: Context): Promise<void> {
  const input = inputObject(field, context)
  const experimentIds = stringList(input?.experimentIds, field, 'experimentIds')
  if (experimentIds.length === 0) throw invalid(`GraphQL field ${label(field)} needs input.experimentIds.`)
  checkExperimentIds(experimentIds, field, 'experimentIds')
  const readable = experimentIds.filter((id) => context.access.canReadExperiment(id))
  if (readable.length === 0) throw forbidden(`GraphQL field ${label(field)}: cannot read any of experiments ${experimentIds.join(', ')}.`)
  if (readable.length === experimentIds.length) return

  // Some are unreadable (so the value is a list of at least two): find where it was written.
  const inputNode = singleArgument(field, 'input')!.value
  if (inputNode.kind === Kind.VARIABLE) {
    context.variableOverrides.set(inputNode.name.value, {...input, experimentIds: readable})
    return
  }

  const listNode = inputNode.kind === Kind.OBJECT ? inputNode.fields.find((f) => f.name.value === 'experimentIds')?.value : undefined
  if (listNode?.kind === Kind.VARIABLE) {
    context.variableOverrides.set(listNode.name.value, readable)
  } else if (listNode?.kind === Kind.LIST) {
    const kept = listNode.values.filter((_item, index) => context.access.canReadExperiment(experimentIds[index]))
    if (listNode.values.some((item) => item.kind !== Kind.STRING && !kept.includes(item))) {
      throw forbidden(`GraphQL field ${label(field)}: cannot read some of experiments ${experimentIds.join(', ')}; pass only readable ids, or the list as one variable.`)
    }

    context.listRewrites.set(listNode, {...listNode, values: kept})
  } else {
    // Cannot happen for a valid document; fail closed.
    throw invalid(`GraphQL field ${label(field)}: cannot narrow input.experimentIds.`)
  }
}

/**
 * Records the model-version lists under `field` found by following `schemaPath` (field names,
 * aliases and fragments resolved) so that filterResponse removes versions of unreadable models.
 */
function addModelVersionLists(field: FieldNode, schemaPath: string[], context: Context): void {
  let frontier = [{node: field, path: [responseKey(field)]}]
  for (const name of schemaPath) {
    frontier = frontier.flatMap(({node, path}) => fieldsNamed(node, name, context).map((child) => ({node: child, path: [...path, responseKey(child)]})))
  }

  // Fields with one response key merge in the answer, so their `name` keys are pooled.
  for (const {node, path} of frontier) {
    const key = JSON.stringify(path)
    const list = context.modelVersionLists.get(key) ?? {nameKeys: new Set<string>(), path}
    for (const name of fieldsNamed(node, 'name', context)) list.nameKeys.add(responseKey(name))
    context.modelVersionLists.set(key, list)
  }
}

function fieldsNamed(field: FieldNode, name: string, context: Context): FieldNode[] {
  return collectFields(field.selectionSet, context).filter((child) => child.name.value === name)
}

function filterModelVersions(body: unknown, context: Context): unknown {
  if (!isObject(body) || !isObject(body.data) || context.modelVersionLists.size === 0) return body
  let data: unknown = body.data
  for (const {nameKeys, path} of context.modelVersionLists.values()) {
    const readable = (version: unknown): boolean => {
      if (!isObject(version)) return false
      const names = [...nameKeys].map((key) => version[key]).filter((name) => typeof name === 'string')
      return names.length > 0 && names.every((name) => context.access.canReadRegisteredModel(name))
    }

    data = filterAt(data, path, readable)
  }

  return {...body, data}
}

/** Copies `value` with the list at `path` filtered; lists met on the way (search results) are mapped. */
function filterAt(value: unknown, path: readonly string[], keep: (item: unknown) => boolean): unknown {
  if (Array.isArray(value)) return value.map((item) => filterAt(item, path, keep))
  if (!isObject(value) || !Object.hasOwn(value, path[0])) return value
  const [key, ...rest] = path
  const child = value[key]
  // Anything but a list where the versions should be is dropped (cannot happen from MLflow).
  const filtered = rest.length > 0 ? filterAt(child, rest, keep) : Array.isArray(child) ? child.filter(keep) : null
  return {...value, [key]: filtered}
}

function forwardedRequest(
  original: {document: DocumentNode; operationName: string | undefined; query: string; variables: Json | undefined},
  context: Context,
): GraphqlRequest {
  const {document, operationName, variables} = original
  // The document is reprinted only when a literal list was narrowed; otherwise forwarded verbatim.
  const query =
    context.listRewrites.size === 0
      ? original.query
      : print(visit(document, {ListValue: (node) => context.listRewrites.get(node)}))
  const forwardedVariables = context.variableOverrides.size === 0 ? variables : {...variables, ...Object.fromEntries(context.variableOverrides)}
  return {
    query,
    ...(forwardedVariables === undefined ? {} : {variables: forwardedVariables}),
    ...(operationName === undefined ? {} : {operationName}),
  }
}

function singleArgument(field: FieldNode, name: string): {value: ValueNode} | undefined {
  const matching = (field.arguments ?? []).filter((argument) => argument.name.value === name)
  if (matching.length > 1) throw invalid(`GraphQL field ${label(field)} has more than one "${name}" argument.`)
  return matching[0]
}

/** The field's `input` argument, resolved (undefined when absent or null). */
function inputObject(field: FieldNode, context: Context): Json | undefined {
  const argument = singleArgument(field, 'input')
  const input = argument ? valueOf(argument.value, context) : undefined
  if (input === undefined || input === null) return undefined
  if (!isObject(input)) throw invalid(`GraphQL field ${label(field)}: input must be an object.`)
  return input
}

/** A String input field; absent, null and '' are undefined (MLflow treats them as not given). */
function stringInput(field: FieldNode, context: Context, key: string): string | undefined {
  const value = inputObject(field, context)?.[key]
  if (value === undefined || value === null || value === '') return undefined
  if (typeof value !== 'string') throw invalid(`GraphQL field ${label(field)}: input.${key} must be a string.`)
  return value
}

/** A [String] input field; a single value counts as a list of one, as GraphQL input coercion does. */
function stringList(value: unknown, field: FieldNode, key: string): string[] {
  if (value === undefined || value === null) return []
  const list = Array.isArray(value) ? value : [value]
  if (!list.every((item) => typeof item === 'string')) throw invalid(`GraphQL field ${label(field)}: input.${key} must be a list of strings.`)
  return list as string[]
}

/** The JS value of an argument value, variables resolved (provided value, else the default). */
function valueOf(node: ValueNode, context: Context): unknown {
  switch (node.kind) {
    case Kind.VARIABLE: {
      const name = node.name.value
      const definition = context.variableDefinitions.get(name)
      if (!definition) throw invalid(`Variable "$${name}" is not defined by the operation.`)
      if (Object.hasOwn(context.variables, name)) return context.variables[name]
      return definition.defaultValue ? valueOf(definition.defaultValue, context) : undefined
    }

    case Kind.STRING:
    case Kind.ENUM: {
      return node.value
    }

    case Kind.INT:
    case Kind.FLOAT: {
      return Number(node.value)
    }

    case Kind.BOOLEAN: {
      return node.value
    }

    case Kind.NULL: {
      return null
    }

    case Kind.LIST: {
      return node.values.map((item) => valueOf(item, context))
    }

    case Kind.OBJECT: {
      // Own properties only, so that a field named __proto__ is data, not a prototype.
      const object: Json = {}
      for (const objectField of node.fields) {
        const name = objectField.name.value
        if (Object.hasOwn(object, name)) throw invalid(`Input field "${name}" is given more than once.`)
        Object.defineProperty(object, name, {configurable: true, enumerable: true, value: valueOf(objectField.value, context), writable: true})
      }

      return object
    }
  }
}
