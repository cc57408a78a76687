/**
 * What MLflow 3.17 withholds from a non-admin's answer that the route itself let through
 * (docs/mlflow-auth-contract.md, "Answers rewritten"): the ids of a denied tier that an answer
 * carries beside what was asked for (a run's logged models, a version's run and logged model, a
 * logged model's source run, a trace's run and logged model, an issue's source run), versions of a registered model the
 * version tier withholds, assessments of a trace whose assessment tier denies reading, run folders
 * of an experiment's artifact root, scorers the caller cannot read, and of the AI gateway the rows
 * of a listing the caller cannot read and the model definitions and secrets a DENY hides inside an
 * endpoint or definition they may read; MCP servers' allowed actions and the versions their tier
 * withholds; online scoring configurations (refused whole); review queues the caller is not assigned to, for a reader below EDIT. Each function changes the parsed answer in place and says
 * whether it changed anything; sendRewritten is the one entry point for a route's answer.
 */
import {scorerResourceId} from '../../mlflow/resources.js'
import {UpstreamError, type UpstreamResponse} from '../proxy.js'
import {permissionDenied, sendJson} from '../responses.js'
import {type Access} from './access.js'
import {type Exchange, type Json, parseAnswer, relay} from './exchange.js'
import {redactMcp} from './mcp.js'
import {isPromptTagged} from './resolver.js'
import {listedQueues} from './review-queues.js'
import {type GatewayType} from './route-rule.js'

/** How the answer of a route is rewritten; named after what the answer carries. */
export type AnswerRewrite =
  | 'artifact-list'
  | 'gateway-endpoint'
  | 'gateway-endpoint-mapping'
  | 'gateway-endpoints'
  | 'gateway-invocable-models'
  | 'gateway-model-definition'
  | 'gateway-model-definitions'
  | 'gateway-secrets'
  | 'gateway-secrets-config'
  | 'issue'
  | 'issues'
  | 'jobs'
  | 'logged-model'
  | 'logged-models'
  | 'mcp-endpoint'
  | 'mcp-endpoints'
  | 'mcp-server'
  | 'metric-history'
  | 'model-version'
  | 'model-versions'
  | 'online-scoring-configs'
  | 'registered-model'
  | 'registered-models'
  | 'review-queues'
  | 'run'
  | 'runs'
  | 'scorers'
  | 'trace-info-v2'
  | 'trace-infos-v3'
  | 'trace-v3'
  | 'trace-v3-start'
  | 'traces-v2'
  | 'traces-v3'

/** What a rewrite needs besides the answer: the caller's access, and the request's artifact path or experiment. */
export interface RewriteContext {
  access: Access
  /** The listed directory, for `artifact-list`. */
  artifactPath?: string
  /** The experiment listed, for `review-queues`. */
  experimentId?: string
}

const isObject = (value: unknown): value is Json => typeof value === 'object' && value !== null && !Array.isArray(value)
const objects = (value: unknown): Json[] => (Array.isArray(value) ? value.filter((item) => isObject(item)) : [])
const object = (value: unknown): Json | undefined => (isObject(value) ? value : undefined)
const text = (value: unknown): string | undefined => (typeof value === 'string' && value !== '' ? value : undefined)

/** A tier MLflow strips ids of when it is denied outright (`(type, *, DENY)`); nothing else counts. */
export const tierDenied = (access: Pick<Access, 'can'>, type: string): boolean => !access.can('not_denied', type, '*')

/** Deletes `keys` of `holder` that are present; whether any was. */
function clear(holder: Json | undefined, keys: readonly string[]): boolean {
  let cleared = false
  for (const key of keys) {
    if (holder && Object.hasOwn(holder, key)) {
      delete holder[key]
      cleared = true
    }
  }

  return cleared
}

/** A field of an entity that names a resource of another tier: withheld when that tier is denied. */
export interface SiblingField {
  /** MLflow's field names from the entity down; a list on the way is entered item by item. */
  path: readonly string[]
  tier: string
}

/**
 * What MLflow withholds of each entity beside it, for REST answers (the key deleted) and GraphQL
 * answers (the field blanked, graphql-forward.ts) alike.
 */
export const SIBLING_FIELDS = {
  /** The run an issue was found in. */
  issue: [{path: ['source_run_id'], tier: 'run'}],
  /** A logged model's source run and its metrics' runs. */
  loggedModel: [
    {path: ['info', 'source_run_id'], tier: 'run'},
    {path: ['data', 'metrics', 'run_id'], tier: 'run'},
  ],
  /** A version's run and logged model. */
  modelVersion: [
    {path: ['run_id'], tier: 'run'},
    {path: ['run_link'], tier: 'run'},
    {path: ['model_id'], tier: 'logged_model'},
    {path: ['model_params'], tier: 'logged_model'},
    {path: ['model_metrics'], tier: 'logged_model'},
  ],
  /** A run's logged models: its model inputs and outputs, its metrics' model ids. */
  run: [
    {path: ['inputs', 'model_inputs'], tier: 'logged_model'},
    {path: ['outputs', 'model_outputs'], tier: 'logged_model'},
    {path: ['data', 'metrics', 'model_id'], tier: 'logged_model'},
  ],
} as const satisfies Record<string, readonly SiblingField[]>

/** Deletes the field at `path` (lists on the way entered item by item); whether any was there. */
function deleteAt(value: unknown, path: readonly string[]): boolean {
  if (Array.isArray(value)) return value.map((item) => deleteAt(item, path)).some(Boolean)
  if (!isObject(value)) return false
  const [key, ...rest] = path
  return rest.length > 0 ? deleteAt(value[key], rest) : clear(value, [key])
}

/** The fields of `entities` that name a resource of a denied tier, deleted. */
function withholdSiblings(entities: Json[], fields: readonly SiblingField[], access: Access): boolean {
  let changed = false
  for (const {path, tier} of fields) {
    if (entities.length === 0 || !tierDenied(access, tier)) continue
    for (const entity of entities) changed = deleteAt(entity, path) || changed
  }

  return changed
}

const runModelLinks = (runs: Json[], access: Access): boolean => withholdSiblings(runs, SIBLING_FIELDS.run, access)
const versionSiblings = (versions: Json[], access: Access): boolean => withholdSiblings(versions, SIBLING_FIELDS.modelVersion, access)
const loggedModelRuns = (models: Json[], access: Access): boolean => withholdSiblings(models, SIBLING_FIELDS.loggedModel, access)

/** The versions embedded in registered models: gone where the caller may not list the model with its versions, the rest without denied siblings. */
function latestVersions(models: Json[], access: Access): boolean {
  let changed = false
  const kept: Json[] = []
  for (const model of models) {
    if (!Object.hasOwn(model, 'latest_versions')) continue
    const kind = isPromptTagged(model.tags) ? 'prompt' : 'registered_model'
    if (typeof model.name === 'string' && access.listsRegistryEntry(model.name, kind, true)) {
      kept.push(...objects(model.latest_versions))
    } else {
      delete model.latest_versions
      changed = true
    }
  }

  return versionSiblings(kept, access) || changed
}

/** Trace metadata keys naming another resource, by the tier it is in. */
const TRACE_METADATA_SIBLINGS: Record<string, string> = {'mlflow.modelId': 'logged_model', 'mlflow.sourceRun': 'run'}

/**
 * Metadata naming a run or logged model whose tier is denied: v3 keeps it as a map, v2 as a list
 * of `{key, value}`.
 */
function traceMetadata(holders: Array<{list?: unknown; map?: unknown}>, access: Access): boolean {
  const strip = Object.entries(TRACE_METADATA_SIBLINGS)
    .filter(([, type]) => tierDenied(access, type))
    .map(([key]) => key)
  if (strip.length === 0) return false
  let changed = false
  for (const {list, map} of holders) {
    if (isObject(map)) changed = clear(map, strip) || changed
    if (Array.isArray(list)) {
      for (let index = list.length - 1; index >= 0; index--) {
        const entry: unknown = list[index]
        if (isObject(entry) && strip.includes(entry.key as string)) {
          list.splice(index, 1)
          changed = true
        }
      }
    }
  }

  return changed
}

/**
 * A v3 trace's assessments, gone when the assessment tier (falling back to the trace's
 * experiment) does not give READ; an answer that does not say the experiment keeps none.
 */
function assessments(infos: Json[], access: Access): boolean {
  let changed = false
  for (const info of infos) {
    if (!Object.hasOwn(info, 'assessments')) continue
    const experimentId = object(object(object(info.trace_location)?.mlflow_experiment))?.experiment_id
    const readable =
      typeof experimentId === 'string' &&
      access.meets([{action: 'read', fallback: [{resourceId: experimentId, resourceType: 'experiment'}], resourceId: '*', resourceType: 'assessment'}])
    if (!readable) {
      delete info.assessments
      changed = true
    }
  }

  return changed
}

/** What a v3 trace info carries that MLflow withholds: assessments, and metadata naming denied tiers. */
const traceInfosV3 = (infos: Json[], access: Access): boolean =>
  // Both run: the second must not be skipped when the first changed something.
  [
    assessments(infos, access),
    traceMetadata(
      infos.map((info) => ({map: info.trace_metadata})),
      access,
    ),
  ].some(Boolean)

/** An MLflow run id, as a folder of an experiment's artifact root. */
const RUN_FOLDER = /^[\da-f]{32}$/

/**
 * An experiment's artifact root lists one folder per run: withheld when reading runs there is
 * denied (the `run` tier, falling back to the experiment), as reading one of them would be.
 */
function artifactList(answer: Json, {access, artifactPath}: RewriteContext): boolean {
  const segments = (artifactPath ?? '').split('/').filter(Boolean)
  if (segments.length !== 1) return false
  const experiment = {resourceId: segments[0], resourceType: 'experiment'}
  if (
    access.meets([
      {...experiment, action: 'read'},
      {action: 'read', fallback: [experiment], resourceId: '*', resourceType: 'run'},
    ])
  )
    return false
  const files = objects(answer.files)
  const kept = files.filter((file) => !(typeof file.path === 'string' && RUN_FOLDER.test(file.path)))
  if (kept.length === files.length) return false
  if (kept.length > 0) answer.files = kept
  else delete answer.files
  return true
}

/** Scorers listed: those of an experiment the caller may list, that it may list itself, while the scorer-version tier is not denied. */
function scorers(answer: Json, access: Access): boolean {
  const list = objects(answer.scorers)
  if (list.length === 0) return false
  const versionsDenied = tierDenied(access, 'scorer_version')
  const kept = list.filter((scorer) => {
    if (versionsDenied) return false
    const experimentId = typeof scorer.experiment_id === 'number' ? String(scorer.experiment_id) : scorer.experiment_id
    if (typeof experimentId !== 'string' || typeof scorer.scorer_name !== 'string') return false
    return access.lists('experiment', experimentId) && access.lists('scorer', scorerResourceId(experimentId, scorer.scorer_name))
  })
  if (kept.length === list.length) return false
  if (kept.length > 0) answer.scorers = kept
  else delete answer.scorers
  return true
}

/**
 * The rows of the list under `key` that `keep` keeps; none left: the key goes, as MLflow's JSON
 * leaves out an empty list. Anything but a list there cannot be read row by row, so it goes too.
 */
function keepRows(answer: Json, key: string, keep: (row: Json) => boolean): boolean {
  if (!Object.hasOwn(answer, key)) return false
  const rows = answer[key]
  const kept = objects(rows).filter((row) => keep(row))
  if (Array.isArray(rows) && kept.length === rows.length) return false
  if (kept.length > 0) answer[key] = kept
  else delete answer[key]
  return true
}

/** Gateway rows the caller may list (their own rows, else the workspace slot, else the default). */
const gatewayRow =
  (access: Access, type: GatewayType, idField: string) =>
  (row: Json): boolean => {
    const id = text(row[idField])
    return id !== undefined && access.lists(type, id)
  }

/** A model definition without the secret a DENY hides from the caller (its id and name). */
function withholdSecret(access: Access, definition: Json): boolean {
  const secretId = text(definition.secret_id)
  if (secretId === undefined || access.can('not_denied', 'gateway_secret', secretId)) return false
  return clear(definition, ['secret_id', 'secret_name'])
}

/**
 * An endpoint's model mappings without the model definitions and secrets a DENY hides from the
 * caller: a denied definition goes whole, a denied secret leaves its definition without the
 * secret's id and name.
 */
function withholdMappings(access: Access, mappings: Json[]): boolean {
  let changed = false
  for (const mapping of mappings) {
    const definition = object(mapping.model_definition)
    const definitionId = text(mapping.model_definition_id) ?? text(definition?.model_definition_id)
    if (definitionId !== undefined && !access.can('not_denied', 'gateway_model_definition', definitionId)) {
      changed = clear(mapping, ['model_definition', 'model_definition_id']) || changed
    } else if (definition) {
      changed = withholdSecret(access, definition) || changed
    }
  }

  return changed
}

/** The endpoints the caller may invoke (USE), listed by name as the invocation routes take them (an OpenAI-style list, kept as a list). */
async function invocableModels(answer: Json, access: Access): Promise<boolean> {
  const ids = await access.gatewayEndpointIds()
  const models = objects(answer.data)
  answer.data = models.filter((model) => {
    const id = ids.get(String(model.id))
    return id !== undefined && access.can('use', 'gateway_endpoint', id)
  })
  return true
}

/** Rewrites `answer` in place for this caller; whether anything changed. */
export async function rewriteAnswer(how: AnswerRewrite, answer: Json, context: RewriteContext): Promise<boolean> {
  const {access} = context
  switch (how) {
    case 'gateway-endpoint': {
      return withholdMappings(access, objects(object(answer.endpoint)?.model_mappings))
    }

    case 'review-queues': {
      return listedQueues(answer, access, context.experimentId!)
    }

    case 'gateway-endpoint-mapping': {
      return withholdMappings(access, objects([answer.mapping]))
    }

    case 'gateway-endpoints': {
      const changed = keepRows(answer, 'endpoints', gatewayRow(access, 'gateway_endpoint', 'endpoint_id'))
      return (
        objects(answer.endpoints)
          .map((endpoint) => withholdMappings(access, objects(endpoint.model_mappings)))
          .some(Boolean) || changed
      )
    }

    case 'gateway-model-definition': {
      const definition = object(answer.model_definition)
      return definition !== undefined && withholdSecret(access, definition)
    }

    case 'gateway-model-definitions': {
      const changed = keepRows(answer, 'model_definitions', gatewayRow(access, 'gateway_model_definition', 'model_definition_id'))
      return (
        objects(answer.model_definitions)
          .map((definition) => withholdSecret(access, definition))
          .some(Boolean) || changed
      )
    }

    case 'gateway-secrets': {
      return keepRows(answer, 'secrets', gatewayRow(access, 'gateway_secret', 'secret_id'))
    }

    case 'gateway-secrets-config': {
      // Whether secrets are encrypted with the default passphrase is the server's security
      // posture: MLflow shows it to admins only.
      return clear(answer, ['using_default_passphrase'])
    }

    case 'gateway-invocable-models': {
      return invocableModels(answer, access)
    }

    case 'mcp-endpoint':
    case 'mcp-endpoints':
    case 'mcp-server': {
      redactMcp(how, access, answer)
      return true
    }

    // MLflow refuses a listing of online scoring configurations whole when one is in an
    // experiment the caller cannot read.
    case 'online-scoring-configs': {
      for (const config of objects(answer.configs))
        if (typeof config.experiment_id !== 'string' || !access.canReadExperiment(config.experiment_id)) throw permissionDenied()
      return false
    }

    case 'run': {
      return runModelLinks(objects([answer.run]), access)
    }

    case 'runs': {
      return runModelLinks(objects(answer.runs), access)
    }

    case 'metric-history': {
      return withholdSiblings(objects(answer.metrics), [{path: ['model_id'], tier: 'logged_model'}], access)
    }

    case 'logged-model': {
      return loggedModelRuns(objects([answer.model]), access)
    }

    case 'issue': {
      return withholdSiblings(objects([answer.issue]), SIBLING_FIELDS.issue, access)
    }

    case 'issues': {
      return withholdSiblings(objects(answer.issues), SIBLING_FIELDS.issue, access)
    }

    case 'logged-models': {
      return loggedModelRuns(objects(answer.models), access)
    }

    case 'model-version': {
      return versionSiblings(objects([answer.model_version]), access)
    }

    case 'model-versions': {
      return versionSiblings(objects(answer.model_versions), access)
    }

    case 'registered-model': {
      return latestVersions(objects([answer.registered_model]), access)
    }

    case 'registered-models': {
      return latestVersions(objects(answer.registered_models), access)
    }

    case 'trace-info-v2': {
      return traceMetadata([{list: object(answer.trace_info)?.request_metadata}], access)
    }

    case 'traces-v2': {
      return traceMetadata(
        objects(answer.traces).map((info) => ({list: info.request_metadata})),
        access,
      )
    }

    case 'trace-v3': {
      return traceInfosV3(objects([object(answer.trace)?.trace_info]), access)
    }

    case 'trace-v3-start': {
      // The caller sent this trace: only what it names beside itself is withheld.
      return traceMetadata([{map: object(object(answer.trace)?.trace_info)?.trace_metadata}], access)
    }

    case 'trace-infos-v3': {
      return traceInfosV3(objects(answer.trace_infos), access)
    }

    case 'traces-v3': {
      // A search lists trace infos; a batch get lists traces, each with its info.
      const traces = objects(answer.traces)
      return traceInfosV3(
        traces.map((trace) => object(trace.trace_info) ?? trace),
        access,
      )
    }

    case 'artifact-list': {
      return artifactList(answer, context)
    }

    case 'scorers': {
      return scorers(answer, access)
    }

    case 'jobs': {
      return ownJobs(answer, access)
    }
  }
}

/**
 * A job search (MLflow's answer is the whole list, unpaged): the caller's own jobs only, those
 * serve recorded them submitting. An answer without a list of jobs is refused rather than passed on.
 */
function ownJobs(answer: Json, access: Access): boolean {
  if (!Array.isArray(answer.jobs))
    throw new UpstreamError("The MLflow server answered a job search without a list of jobs, so serve cannot keep it to the caller's own.", 502)
  const all = answer.jobs as unknown[]
  const own = all.filter((job) => isObject(job) && typeof job.job_id === 'string' && access.ownsJob(job.job_id))
  answer.jobs = own
  return own.length !== all.length
}

/**
 * A successful upstream answer as the JSON object serve reads to rewrite or filter it; undefined
 * for a failure (passed on as it came). A success that is not a JSON object cannot be checked for
 * what the caller may not see, so it is not passed on: the upstream's answer is broken (502).
 */
export function readAnswer(answer: UpstreamResponse): Json | undefined {
  if (answer.status !== 200) return undefined
  const body = parseAnswer(answer)
  if (!body) throw new UpstreamError('The MLflow server answered with something serve cannot read, so it cannot withhold what the caller may not see.', 502)
  return body
}

/**
 * The upstream's answer as this caller may see it: a successful one rewritten (passed on as it
 * came when nothing is withheld), a failure as it came.
 */
export async function sendRewritten(exchange: Exchange, answer: UpstreamResponse, how: AnswerRewrite): Promise<void> {
  const {access, params, response} = exchange
  const body = readAnswer(answer)
  const context: RewriteContext = {
    access,
    artifactPath: how === 'artifact-list' ? params.optional('path') : undefined,
    experimentId: how === 'review-queues' ? params.required('experiment_id') : undefined,
  }
  if (body && (await rewriteAnswer(how, body, context))) sendJson(response, 200, body)
  else relay(response, answer)
}
