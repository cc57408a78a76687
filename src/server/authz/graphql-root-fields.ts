/**
 * The root fields a non-admin may query through `/graphql` (graphql.ts), and the check of each:
 * the ids a field reads are resolved and checked, search fields have `experimentIds` narrowed to
 * the readable ones, and the model-version lists an answer will carry are recorded for filtering.
 */
import {type FieldNode, Kind, type ListValueNode, type SelectionSetNode} from 'graphql'

import {isCanonicalId} from '../../mlflow/resources.js'
import {SIBLING_FIELDS, type SiblingField} from './answer-rewrite.js'
import {idInRange, MAX_ID} from './request-params.js'
import {
  collectFields,
  type DocumentScope,
  forbidden,
  inputObject,
  invalid,
  label,
  responseKey,
  singleArgument,
  stringInput,
  stringList,
} from './graphql-document.js'

export interface GraphqlAccess {
  canReadExperiment(experimentId: string): boolean
  /**
   * Whether a search lists an experiment (its own rows, else the workspace slot, else the
   * default), with none of `vetoTiers` denied.
   */
  listsExperiment(experimentId: string, vetoTiers: readonly string[]): boolean
  /** Resolves the run's experiment through the upstream; false for an unknown run. */
  canReadRun(runId: string): Promise<boolean>
  /**
   * Whether a search shows a version of this registered model or prompt: the entry listable (its
   * own rows, else the workspace slot, else the default) and its version tier not denied.
   */
  listsModelVersion(name: string, kind: 'prompt' | 'registered_model'): boolean
  /** Whether a tier is denied outright: a field naming a resource of it is withheld, a filter on it refused. */
  tierDenied(type: string): boolean
}

/** A model-version list in the answer, by its response-key path, and where each version says what it is. */
export interface ModelVersionList {
  /** Response keys of the version's `name`. */
  nameKeys: Set<string>
  path: string[]
  /**
   * Whether the list may hold prompt versions: MLflow's searches leave them out unless the filter
   * asks for the prompt marker. Then a version is a prompt's when its tags say so, and one whose
   * tags the answer does not carry must be listable as either.
   */
  promptsPossible: boolean
  /** Response keys of the version's `tags`, and of each tag's `key` and `value`. */
  tags: {keys: Set<string>; list: Set<string>; values: Set<string>}
}

/** What checking the root fields produced: variable and query rewrites, response filters. */
export interface Context extends DocumentScope {
  access: GraphqlAccess
  /** Whole variable values replaced in the forwarded request (narrowed experiment ids). */
  variableOverrides: Map<string, unknown>
  /** Literal lists replaced in the forwarded document (narrowed experiment ids). */
  listRewrites: Map<ListValueNode, ListValueNode>
  /** Model-version lists to filter, keyed by their response-key path. */
  modelVersionLists: Map<string, ModelVersionList>
  /** Fields naming a resource of another tier, by response-key path: blanked when that tier is denied. */
  siblingPaths: Map<string, {path: string[]; tier: string}>
  runChecks: Map<string, Promise<boolean>>
  /** Root fields the caller may not read: answered null, as MLflow does. */
  withheld: Set<FieldNode>
}

/** Checks every root field of the operation, recording in `context` what the forwarded request and the answer need. */
export async function checkRootFields(selectionSet: SelectionSetNode, context: Context): Promise<void> {
  for (const field of collectFields(selectionSet, context)) {
    const name = field.name.value
    if (name === '__typename') continue
    if (name === '__schema' || name === '__type') throw forbidden(`GraphQL introspection (${name}) is reserved to admins.`)
    const check = ROOT_FIELDS.get(name)
    if (!check) throw forbidden(`GraphQL field ${name} is not allowed.`)
    // Sequential on purpose: the run lookups are memoized and most queries have one root field.
    if (!(await check(field, context))) context.withheld.add(field)
  }

  for (const {nameKeys, path} of context.modelVersionLists.values()) {
    // Without the model name in the answer the versions cannot be filtered.
    if (nameKeys.size === 0)
      throw forbidden(`GraphQL field ${path.join('.')} must select "name" so that versions of unreadable registered models can be filtered out.`)
  }
}

/** Whether the caller may read the field; false: it is answered null. Throws when the request is refused whole. */
type RootCheck = (field: FieldNode, context: Context) => Promise<boolean>

/** The tag marking a registered model or version as a prompt's. */
const PROMPT_MARKER = 'mlflow.prompt.is_prompt'

/** The root fields a non-admin may query (MLflow's protected fields); anything else is refused. */
const ROOT_FIELDS = new Map<string, RootCheck>([
  [
    'mlflowGetExperiment',
    async (field, context) => {
      const experimentId = stringInput(field, context, 'experimentId')
      if (experimentId === undefined) throw invalid(`GraphQL field ${label(field)} needs input.experimentId.`)
      checkExperimentIds([experimentId], field, 'experimentId')
      return context.access.canReadExperiment(experimentId)
    },
  ],
  ['mlflowGetMetricHistoryBulkInterval', checkRunList],
  [
    'mlflowGetRun',
    async (field, context) => {
      if (!(await checkOneRun(field, context))) return false
      addSiblings(field, ['run'], SIBLING_FIELDS.run, context)
      addModelVersionLists(field, ['run', 'modelVersions'], context, false)
      return true
    },
  ],
  ['mlflowListArtifacts', checkOneRun],
  // Only a Mutation field in MLflow 3.12–3.17 (so unreachable while mutations are refused); kept
  // so that a query field of that name, should MLflow add one, is narrowed like search runs.
  ['mlflowSearchDatasets', async (field, context) => narrowExperimentIds(field, context, [])],
  [
    'mlflowSearchModelVersions',
    async (field, context) => {
      // A filter on run_id selects versions by run, which a denied run tier forbids; serve does
      // not parse the filter: any mention counts, as does any mention of the prompt marker.
      const filter = inputObject(field, context)?.filter
      if (typeof filter === 'string' && filter.includes('run_id') && context.access.tierDenied('run')) return false
      const promptsPossible = filter !== undefined && (typeof filter !== 'string' || filter.includes(PROMPT_MARKER))
      addModelVersionLists(field, ['modelVersions'], context, promptsPossible)
      return true
    },
  ],
  [
    'mlflowSearchRuns',
    async (field, context) => {
      // Runs are listed only while the run tier is not denied.
      if (!narrowExperimentIds(field, context, ['run'])) return false
      addSiblings(field, ['runs'], SIBLING_FIELDS.run, context)
      addModelVersionLists(field, ['runs', 'modelVersions'], context, false)
      return true
    },
  ],
])

/**
 * MLflow's resolvers read experiment ids with int(), which takes other spellings ("06", " 6",
 * non-ASCII digits) than the one grants are kept under: those are refused.
 */
function checkExperimentIds(ids: string[], field: FieldNode, key: string): void {
  const odd = ids.find((id) => !isCanonicalId(id) || !idInRange(id))
  if (odd !== undefined)
    throw invalid(
      `GraphQL field ${label(field)}: input.${key} must be decimal experiment ids without sign, spaces or leading zeros, at most ${MAX_ID}, got ${JSON.stringify(odd)}.`,
    )
}

/** mlflowGetRun, mlflowListArtifacts: READ on the run (its experiment and tier), input.runId or input.runUuid. */
async function checkOneRun(field: FieldNode, context: Context): Promise<boolean> {
  const runId = stringInput(field, context, 'runId')
  const runUuid = stringInput(field, context, 'runUuid')
  // MLflow uses `run_id or run_uuid`; two different ids are refused rather than second-guessed.
  if (runId !== undefined && runUuid !== undefined && runId !== runUuid)
    throw invalid(`GraphQL field ${label(field)} names two different runs (runId and runUuid).`)
  const run = runId ?? runUuid
  if (run === undefined) throw invalid(`GraphQL field ${label(field)} needs input.runId.`)
  return canReadRun(run, context)
}

/** mlflowGetMetricHistoryBulkInterval: READ on every run of input.runIds. */
async function checkRunList(field: FieldNode, context: Context): Promise<boolean> {
  const runIds = stringList(inputObject(field, context)?.runIds, field, 'runIds')
  if (runIds.length === 0) throw invalid(`GraphQL field ${label(field)} needs input.runIds.`)
  for (const runId of runIds) {
    if (!(await canReadRun(runId, context))) return false
  }

  return true
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
 * mlflowSearchRuns, mlflowSearchDatasets: input.experimentIds reduced to the listable ones (none
 * left → false, the field answered null). The forwarded request carries the reduced list: in the variables when the list
 * (or the whole input) is a variable, else in the document's literal list, reprinted. A literal
 * list whose unreadable items are variables is refused: dropping them would leave unused
 * variables, which make the document invalid.
 */
function narrowExperimentIds(field: FieldNode, context: Context, vetoTiers: readonly string[]): boolean {
  const input = inputObject(field, context)
  const experimentIds = stringList(input?.experimentIds, field, 'experimentIds')
  if (experimentIds.length === 0) throw invalid(`GraphQL field ${label(field)} needs input.experimentIds.`)
  checkExperimentIds(experimentIds, field, 'experimentIds')
  const listable = (id: string) => context.access.listsExperiment(id, vetoTiers)
  const readable = experimentIds.filter((id) => listable(id))
  if (readable.length === 0) return false
  if (readable.length === experimentIds.length) return true

  // Some are unreadable (so the value is a list of at least two): find where it was written.
  const inputNode = singleArgument(field, 'input')!.value
  if (inputNode.kind === Kind.VARIABLE) {
    context.variableOverrides.set(inputNode.name.value, {...input, experimentIds: readable})
    return true
  }

  const listNode = inputNode.kind === Kind.OBJECT ? inputNode.fields.find((f) => f.name.value === 'experimentIds')?.value : undefined
  if (listNode?.kind === Kind.VARIABLE) {
    context.variableOverrides.set(listNode.name.value, readable)
  } else if (listNode?.kind === Kind.LIST) {
    const kept = listNode.values.filter((_item, index) => listable(experimentIds[index]))
    if (listNode.values.some((item) => item.kind !== Kind.STRING && !kept.includes(item))) {
      throw forbidden(
        `GraphQL field ${label(field)}: cannot read some of experiments ${experimentIds.join(', ')}; pass only readable ids, or the list as one variable.`,
      )
    }

    context.listRewrites.set(listNode, {...listNode, values: kept})
  } else {
    // Cannot happen for a valid document; fail closed.
    throw invalid(`GraphQL field ${label(field)}: cannot narrow input.experimentIds.`)
  }

  return true
}

/** The fields reached from `field` by following `schemaPath` (field names, aliases and fragments resolved), with their response-key paths. */
function follow(field: FieldNode, schemaPath: readonly string[], context: Context, from = [responseKey(field)]): Array<{node: FieldNode; path: string[]}> {
  let frontier = [{node: field, path: from}]
  for (const name of schemaPath) {
    frontier = frontier.flatMap(({node, path}) => fieldsNamed(node, name, context).map((child) => ({node: child, path: [...path, responseKey(child)]})))
  }

  return frontier
}

/** GraphQL's name of one of MLflow's proto fields (graphene's camel case). */
const camel = (name: string): string => name.replaceAll(/_([a-z\d])/g, (_match, letter: string) => letter.toUpperCase())

/**
 * Records where the entities under `field` at `schemaPath` carry the sibling `fields`, so that the
 * answer has them blanked when their tier is denied, as MLflow clears them.
 */
function addSiblings(field: FieldNode, schemaPath: readonly string[], fields: readonly SiblingField[], context: Context, from?: string[]): void {
  for (const entity of follow(field, schemaPath, context, from)) {
    for (const sibling of fields) {
      for (const {path} of follow(entity.node, sibling.path.map(camel), context, entity.path)) {
        context.siblingPaths.set(JSON.stringify(path), {path, tier: sibling.tier})
      }
    }
  }
}

/**
 * Records the model-version lists under `field` found by following `schemaPath`, so that
 * filterResponse removes versions the caller may not list and blanks what the kept ones name of
 * a denied tier.
 */
function addModelVersionLists(field: FieldNode, schemaPath: string[], context: Context, promptsPossible: boolean): void {
  // Fields with one response key merge in the answer, so their keys are pooled.
  for (const {node, path} of follow(field, schemaPath, context)) {
    const key = JSON.stringify(path)
    const list = context.modelVersionLists.get(key) ?? {
      nameKeys: new Set<string>(),
      path,
      promptsPossible,
      tags: {keys: new Set<string>(), list: new Set<string>(), values: new Set<string>()},
    }
    for (const name of fieldsNamed(node, 'name', context)) list.nameKeys.add(responseKey(name))
    for (const tags of fieldsNamed(node, 'tags', context)) {
      list.tags.list.add(responseKey(tags))
      for (const tagKey of fieldsNamed(tags, 'key', context)) list.tags.keys.add(responseKey(tagKey))
      for (const value of fieldsNamed(tags, 'value', context)) list.tags.values.add(responseKey(value))
    }

    context.modelVersionLists.set(key, list)
    addSiblings(node, [], SIBLING_FIELDS.modelVersion, context, path)
  }
}

function fieldsNamed(field: FieldNode, name: string, context: Context): FieldNode[] {
  return collectFields(field.selectionSet, context).filter((child) => child.name.value === name)
}
