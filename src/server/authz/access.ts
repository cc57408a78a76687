/**
 * Whether a non-admin may make a request: every check of its route must pass
 * (docs/mlflow-auth-contract.md, "Permission model" and "Route permissions"). Each check becomes
 * MLflow 3.17's requirements on the caller's role rows (docs/mlflow-rbac.md, "Requirements"):
 * runs, logged models, traces and assessments are addressed through their experiment (READ
 * there) and decided on their tier, which falls back to the experiment; versions on their
 * registered model or prompt, the same way. A run, logged model or trace serve cannot resolve (it
 * does not exist) is denied, so an unknown id answers like an existing one the caller cannot see.
 * An experiment id checked here is refused (400) in any but its canonical spelling, whatever the
 * field is called (see isCanonicalId).
 */
import {isGrantLevel, isPermissionLevel, type Level} from '../../mlflow/permissions.js'
import {describeRoleRow, foldRows, type RoleRow} from '../../mlflow/rbac.js'
import {type Action, authorize, governing, type Key, listable, type Requirement, requirementMet, tier} from '../../mlflow/requirements.js'
import {isCanonicalId, scorerResourceId} from '../../mlflow/resources.js'
import {ApiError, type Denial, missingParameter, permissionDenied} from '../responses.js'
import {type Store, type UserRecord} from '../store/store.js'
import {mcpServerName} from './mcp.js'
import {canonicalId, type RequestParams} from './request-params.js'
import {promptMarker, type ResourceResolver} from './resolver.js'
import {queueAllows, queueFacts, type ReviewQueueFacts} from './review-queues.js'
import {type Check, type GatewayType, type Need} from './route-table.js'

export interface AccessContext {
  defaultPermission: string
  resolver: ResourceResolver
  store: Store
  user: UserRecord
}

/** What an experiment's delete reaches: every tier held in it (soft-deleted with it, or destroyed by `mlflow gc`). */
const EXPERIMENT_CASCADE_TIERS = ['run', 'trace', 'logged_model', 'assessment', 'review_queue', 'scorer', 'scorer_version']
/** The tiers a trace search can select or sort on (its filter grammar reaches assessments, a trace's run and logged model). */
const TRACE_SEARCH_TIERS = ['assessment', 'run', 'logged_model']
/** At most this many distinct ids of runs, traces or logged models looked up for one request. */
const MAX_IDS_CHECKED = 1000
/** Fields of the trace searches that select or sort rows. */
const TRACE_SEARCH_FIELDS = ['filter', 'filter_string1', 'filter_string2', 'base_filter', 'order_by']

/**
 * The ids a request lists, each once, for lookups in MLflow; 400 beyond MAX_IDS_CHECKED, so one
 * request cannot make serve send MLflow thousands of lookups. `what` names them in the error.
 */
export function idsToLookUp(ids: readonly string[], what: string): string[] {
  const distinct = [...new Set(ids)]
  if (distinct.length > MAX_IDS_CHECKED)
    throw new ApiError('INVALID_PARAMETER_VALUE', `The request names more than ${MAX_IDS_CHECKED} ${what} to check; send them in smaller batches.`)
  return distinct
}

const experimentKey = (experimentId: string): Key => ({resourceId: experimentId, resourceType: 'experiment'})

/**
 * An operation on a sub-resource of an experiment (a run, a trace, a logged model): READ on the
 * experiment addresses it; the tier decides the action, else the experiment (with
 * `fallbackAction` when the experiment rung asks another action than the tier).
 */
function inExperiment(experimentId: string, tierType: string, action: Action, fallbackAction?: Action): Requirement[] {
  return [
    {...experimentKey(experimentId), action: 'read'},
    {...tier(tierType), action, fallback: [{...experimentKey(experimentId), action: fallbackAction}]},
  ]
}

/** The version tier of a registered model or a prompt. */
function versionTier(kind: 'prompt' | 'registered_model'): Key {
  return tier(kind === 'prompt' ? 'prompt_version' : 'registered_model_version')
}

/**
 * The experiment id leading an mlflow-artifacts path (`<id>/…`, or the bare id), as MLflow's
 * `^(\d+)/`; undefined when the path does not start with one. A leading segment Python's int()
 * would read as a number in another spelling ("07", "+7", " 7", non-ASCII digits, which `\d` also
 * matches) is refused (400) rather than decided under a name no grant has.
 */
export function artifactPathExperiment(path: string): string | undefined {
  const first = path.split('/', 1)[0]
  if (isCanonicalId(first)) return canonicalId(first, 'experiment id of the artifact path')
  if (/^\s*[+-]?\p{Nd}+(?:_\p{Nd}+)*\s*$/u.test(first))
    throw new ApiError(
      'INVALID_PARAMETER_VALUE',
      `The artifact path must start with an experiment id in decimal without sign, spaces or leading zeros, got ${JSON.stringify(first)}.`,
    )
  return undefined
}

/**
 * The tiers an mlflow-artifacts path below `<experiment id>/` belongs to, as MLflow 3.17 judges
 * it: `models/…` a logged model's, `traces/…` a trace's, `<run id>/…` a run's; a file of the
 * experiment itself none. A delete removes a whole subtree, so it is judged on every tier the
 * subtree can hold.
 */
export function artifactPathTiers(path: string, recursive: boolean): string[] {
  const segments = path.split('/').filter(Boolean).slice(1)
  if (segments.length === 0) return recursive ? ['run', 'trace', 'logged_model'] : []
  if (segments[0] === 'models') return ['logged_model']
  if (segments[0] === 'traces') return ['trace']
  if (segments[1] === 'artifacts' || /^[\da-f]{32}$/.test(segments[0])) return ['run']
  return recursive ? ['run'] : []
}

export class Access {
  /** The requirements of the last check that failed; explained only when a refusal is recorded. */
  private failed: readonly Requirement[] | undefined
  private rowCache: readonly RoleRow[] | undefined

  constructor(private readonly context: AccessContext) {}

  /** Every row of every role the caller holds, read once per request. */
  private get rows(): readonly RoleRow[] {
    this.rowCache ??= this.context.store.rowsOf(this.context.user.id)
    return this.rowCache
  }

  /** Whether serve recorded the caller as the submitter of MLflow's job `jobId`. */
  ownsJob(jobId: string): boolean {
    return this.context.store.getJobCreator(jobId) === this.context.user.id
  }

  /** The caller's user name. */
  get username(): string {
    return this.context.user.username
  }

  private get defaultLevel(): Level {
    const level = this.context.defaultPermission
    return isPermissionLevel(level) || isGrantLevel(level) ? level : 'NO_PERMISSIONS'
  }

  /** Whether the caller's rows meet every requirement. */
  meets(requirements: readonly Requirement[]): boolean {
    const met = authorize(this.rows, requirements, this.defaultLevel)
    if (!met) this.failed = requirements
    return met
  }

  /**
   * Why the last failed check failed, for the audit log: the first requirement not met, the
   * resource whose rows (or the default) decided it, those rows, the level and what was needed.
   * Undefined when no level refused (e.g. a resource that does not exist).
   */
  lastDenial(): Denial | undefined {
    const {defaultLevel, failed, rows} = this
    const unmet = failed?.find((requirement) => !requirementMet(rows, requirement, defaultLevel))
    if (!unmet) return undefined
    const decided = governing(rows, unmet, defaultLevel)
    const key = decided.key ?? [unmet, ...(unmet.fallback ?? [])].at(-1)!
    const base = {level: decided.level, need: decided.action, resource: {id: key.resourceId, type: key.resourceType}}
    const fold = decided.key && foldRows(rows, key.resourceType, key.resourceId)
    if (!fold) return {...base, rule: `default_permission (${decided.level})`}
    const why = fold.rows.map((row) => describeRoleRow(row)).join('; ')
    return {...base, rule: fold.level === decided.level ? why : `${why}, raised to default_permission (${decided.level})`}
  }

  /** `need` on one resource by its own rows, else the default (an experiment, a registered model, a scorer). */
  can(need: Need, resourceType: string, resourceId: string): boolean {
    return this.meets([{action: need, resourceId, resourceType}])
  }

  canReadExperiment(experimentId: string): boolean {
    return this.can('read', 'experiment', experimentId)
  }

  /**
   * Whether a listing shows this row (MLflow's read predicate for searches: the row's own rows,
   * else the workspace slot, else the default), and no tier the listing leads to is denied.
   */
  lists(resourceType: string, resourceId: string, vetoTiers: readonly string[] = []): boolean {
    if (!vetoTiers.every((type) => this.can('not_denied', type, '*'))) return false
    return listable(this.rows, resourceType, resourceId, this.defaultLevel)
  }

  /** Whether a registry search shows an entry: a prompt by `prompt` rows, a model by `registered_model` rows. */
  listsRegistryEntry(name: string, kind: 'prompt' | 'registered_model', withVersions = false): boolean {
    return this.lists(kind, name, withVersions ? [versionTier(kind).resourceType] : [])
  }

  /** READ on a registered model or prompt, in the namespace of the stored entity. */
  async canReadRegisteredModel(name: string): Promise<boolean> {
    const kind = (await this.context.resolver.registeredModelKind(name)) ?? 'registered_model'
    return this.can('read', kind, name)
  }

  /**
   * A new version whose tags mark it a prompt's (or not) while its registered model is the other
   * kind becomes a version of that other kind: that version tier may veto it too.
   */
  async canCreateVersionMarked(name: string, prompt: boolean): Promise<boolean> {
    const stored = await this.context.resolver.registeredModelKind(name)
    const asserted = prompt ? 'prompt' : 'registered_model'
    return stored === undefined || stored === asserted || this.can('not_denied', versionTier(asserted).resourceType, '*')
  }

  async canOnRun(need: Need, runId: string): Promise<boolean> {
    const experimentId = await this.context.resolver.runExperiment(runId)
    return experimentId !== undefined && this.meets(inExperiment(experimentId, 'run', need))
  }

  async canOnLoggedModel(need: Need, modelId: string): Promise<boolean> {
    const experimentId = await this.context.resolver.loggedModelExperiment(modelId)
    return experimentId !== undefined && this.meets(inExperiment(experimentId, 'logged_model', need))
  }

  async canOnTrace(need: Need, traceId: string): Promise<boolean> {
    const experimentId = await this.context.resolver.traceExperiment(traceId)
    return experimentId !== undefined && this.meets(inExperiment(experimentId, 'trace', need))
  }

  /** `need` on traces known to be in this experiment. */
  canOnTracesIn(need: Need, experimentId: string): boolean {
    return this.meets(inExperiment(experimentId, 'trace', need))
  }

  /** `need` on a trace when a trace of this id exists; true when none does (a new trace is the route's to decide). */
  async canOnTraceIfExists(need: Need, traceId: string): Promise<boolean> {
    const experimentId = await this.context.resolver.traceExperiment(traceId)
    return experimentId === undefined || this.meets(inExperiment(experimentId, 'trace', need))
  }

  /** The experiment a trace is in, through the upstream; undefined when there is no such trace. */
  traceExperiment(traceId: string): Promise<string | undefined> {
    return this.context.resolver.traceExperiment(traceId)
  }

  /** The experiment a gateway endpoint logs usage to ('' none, undefined no such endpoint), through the upstream. */
  endpointExperiment(endpointId: string): Promise<string | undefined> {
    return this.context.resolver.gatewayEndpointExperiment(endpointId)
  }

  /** `need` on the review queues of an experiment: READ there addresses them, the queue tier decides, falling back to the experiment. */
  canInReviewQueues(need: Need, experimentId: string): boolean {
    return this.meets(inExperiment(experimentId, 'review_queue', need))
  }

  /** A review queue by id, through the upstream; undefined when there is none. */
  async reviewQueue(queueId: string): Promise<ReviewQueueFacts | undefined> {
    return queueFacts(await this.context.resolver.reviewQueue(queueId))
  }

  /** Whether an MCP server of this name exists, through the upstream. */
  mcpServerExists(name: string): Promise<boolean> {
    return this.context.resolver.mcpServerExists(name)
  }

  /** `need` on the gateway endpoint of this name, looked up as MLflow looks it up; a name naming none is denied. */
  async canOnEndpointNamed(need: Need, name: string): Promise<boolean> {
    const id = await this.context.resolver.gatewayEndpointIdByName(name)
    return id !== undefined && this.can(need, 'gateway_endpoint', id)
  }

  /** Every gateway endpoint's id by name, through the upstream. */
  gatewayEndpointIds(): Promise<Map<string, string>> {
    return this.context.resolver.gatewayEndpointIds()
  }

  /**
   * An operation on or through an MCP server's versions: READ on the server addresses them (a
   * separate requirement, so a version-tier row cannot get past a DENY on the server); the version
   * tier decides, falling back to the server.
   */
  canOnMcpVersions(need: Need, serverName: string): boolean {
    const server: Key = {resourceId: serverName, resourceType: 'mcp_server'}
    return this.meets([
      {...server, action: 'read'},
      {...tier('mcp_server_version'), action: need, fallback: [server]},
    ])
  }

  /** Throws 403 unless every check passes, 400 when a field they need is missing or malformed. */
  async enforce(checks: Check[], params: RequestParams): Promise<void> {
    for (const check of checks) {
      this.failed = undefined
      if (!(await this.passes(check, params))) {
        const {need, on} = check
        const rule = `check ${need} on ${Object.keys(on)[0]}: what the request names was not found or cannot be decided (refused like what the caller cannot see)`
        throw permissionDenied(this.lastDenial() ?? {need, rule})
      }
    }

    // The checks that follow (special checks, filters) explain their own refusals.
    this.failed = undefined
  }

  private async passes({need, on}: Check, params: RequestParams): Promise<boolean> {
    const {resolver} = this.context
    // Each id may cost a lookup in MLflow: once per distinct id, and a bounded number of them, so
    // one request cannot make serve send MLflow thousands of lookups (docs/mlflow-auth-contract.md).
    const every = async (ids: string[], test: (id: string) => Promise<boolean> | boolean) => {
      for (const id of idsToLookUp(ids, 'resources')) {
        if (!(await test(id))) return false
      }

      return true
    }

    const nonEmpty = (field: string) => {
      const ids = params.values(field)
      if (ids.length === 0) throw new ApiError('INVALID_PARAMETER_VALUE', `The request must name at least one ${field.replace(/^.*\./, '').replace('[]', '')}.`)
      return ids
    }

    if ('experiment' in on) {
      const id = canonicalId(params.required(on.experiment), on.experiment)
      if (!on.cascade) return this.can(need, 'experiment', id)
      return this.meets([
        {...experimentKey(id), action: need},
        ...EXPERIMENT_CASCADE_TIERS.map((type): Requirement => ({...tier(type), action: need, fallback: [experimentKey(id)]})),
      ])
    }

    if ('experimentName' in on) {
      const name = params.required(on.experimentName)
      const id = await resolver.experimentIdByName(name)
      // As MLflow's auth layer: answered here, not forwarded, so an experiment created meanwhile
      // cannot slip through undecided. Clients rely on this 404 (mlflow.set_experiment creates).
      if (id === undefined) throw new ApiError('RESOURCE_DOES_NOT_EXIST', `Could not find experiment with name ${name}`)
      return this.can(need, 'experiment', id)
    }

    if ('experiments' in on) {
      const ids = [...new Set(nonEmpty(on.experiments).map((id) => canonicalId(id, on.experiments)))]
      if (on.of === undefined) return ids.every((id) => this.can(need, 'experiment', id))
      const tiers = this.searchTiers(on.tiersIf, params)
      return this.meets(
        ids.flatMap((id) => [
          ...inExperiment(id, on.of!, need),
          ...tiers.map((type): Requirement => ({...tier(type), action: need, fallback: [experimentKey(id)]})),
        ]),
      )
    }

    if ('artifactPath' in on) {
      const path = params.optional(on.artifactPath)
      // No experiment id in the path (the artifact root, `.`): MLflow falls back to the default
      // permission there, which lets anyone enumerate experiments; serve denies.
      const id = path === undefined ? undefined : artifactPathExperiment(path)
      if (id === undefined) return false
      const tiers = artifactPathTiers(path!, need === 'manage')
      if (tiers.length === 0) return this.can(need, 'experiment', id)
      return this.meets([
        {...experimentKey(id), action: 'read'},
        ...tiers.map((type): Requirement => ({...tier(type), action: need, fallback: [experimentKey(id)]})),
      ])
    }

    if ('run' in on) {
      if (on.optional) {
        const id = params.optional(on.run)
        return id === undefined || id === '' || this.canOnRun(need, id)
      }

      return this.canOnRun(need, params.runId(on.run))
    }

    if ('runs' in on) return every(nonEmpty(on.runs), (id) => this.canOnRun(need, id))
    if ('loggedModel' in on) {
      const id = on.optional ? params.optional(on.loggedModel) : params.required(on.loggedModel)
      if (id === undefined || id === '') return true
      return this.canOnLoggedModel(need, id)
    }

    if ('loggedModels' in on) return every(params.values(on.loggedModels), (id) => this.canOnLoggedModel(need, id))
    if ('trace' in on) {
      const id = on.optional || on.ifExists ? params.optional(on.trace) : params.required(on.trace)
      if (id === undefined || id === '') return true
      const experimentId = await resolver.traceExperiment(id)
      if (experimentId === undefined) return Boolean(on.ifExists)
      return this.meets(inExperiment(experimentId, 'trace', need))
    }

    if ('traces' in on) return every(nonEmpty(on.traces), (id) => this.canOnTrace(need, id))
    if ('tracesOf' in on) {
      // Deleting traces destroys their assessments too; the tier may confer it, the experiment's
      // own rung asks what the route asked before tiers existed (delete, and update for assessments).
      const id = canonicalId(params.required(on.tracesOf), on.tracesOf)
      return this.meets([
        {...experimentKey(id), action: 'read'},
        {...tier('trace'), action: need, fallback: [{...experimentKey(id), action: need}]},
        {...tier('assessment'), action: need, fallback: [{...experimentKey(id), action: 'update'}]},
      ])
    }

    if ('assessmentsOf' in on) return this.canOnAssessments(need, params.required(on.assessmentsOf), Boolean(on.create))
    if ('dataset' in on) {
      const id = on.optional ? params.optional(on.dataset) : params.required(on.dataset)
      if (id === undefined || id === '') return true
      const experimentIds = await resolver.datasetExperiments(id)
      return experimentIds.length > 0 && experimentIds.every((id) => this.can(need, 'experiment', id))
    }

    if ('tier' in on) return this.can(need, on.tier, '*')
    if ('registeredModel' in on) return this.passesRegistered(need, params.required(on.registeredModel), on.versions)
    if ('newRegisteredModel' in on) {
      // A create has no stored entity yet: the tags it sends are the ones MLflow will store.
      const kind = promptMarker(params.tags('tags')) ? 'prompt' : 'registered_model'
      return this.can(need, kind, params.required(on.newRegisteredModel))
    }

    if ('mcpServer' in on) {
      const name = on.mcpServer === 'path' ? mcpServerName(params) : params.optional('name') || '*'
      return on.versions ? this.canOnMcpVersions(need, name) : this.can(need, 'mcp_server', name)
    }

    if ('reviewQueue' in on) {
      const named = on.reviewQueue
      const queue =
        typeof named === 'string'
          ? await this.reviewQueue(params.required(named))
          : queueFacts(await resolver.reviewQueueByName(canonicalId(params.required(named.experiment), named.experiment), params.required(named.name)))
      if (queue === undefined) return false
      const managerOnly = on.managerOnly !== undefined && params.optional(on.managerOnly) !== undefined
      return queueAllows(this, queue, need === 'read' ? 'read' : 'update', on.relation, managerOnly)
    }

    if ('labelSchema' in on || 'issue' in on) {
      const experimentId =
        'issue' in on ? await resolver.issueExperiment(params.required(on.issue)) : await resolver.labelSchemaExperiment(params.required(on.labelSchema))
      return experimentId !== undefined && this.can(need, 'experiment', experimentId)
    }

    if ('gateway' in on) return this.passesGateway(need, on, params)
    if ('gatewayModelDefinitions' in on)
      return params.values(on.gatewayModelDefinitions).every((id) => id === '' || this.can(need, 'gateway_model_definition', id))
    const experimentId = canonicalId(params.required(on.scorer.experiment), on.scorer.experiment)
    const scorer: Key = {resourceId: scorerResourceId(experimentId, params.required(on.scorer.name)), resourceType: 'scorer'}
    if (need === 'read')
      return this.meets([
        {...scorer, action: 'read'},
        {...tier('scorer_version'), action: 'not_denied', fallback: [scorer]},
      ])
    if (need === 'delete') {
      // With a version, only that version goes: the scorer is addressed (READ), its version tier deletes.
      const oneVersion = params.optional('version') !== undefined
      return this.meets([
        {...scorer, action: oneVersion ? 'read' : 'delete'},
        {...tier('scorer_version'), action: 'delete', fallback: [scorer]},
      ])
    }

    return this.can(need, scorer.resourceType, scorer.resourceId)
  }

  /**
   * Assessments of a trace: addressed through the trace (READ on its experiment and its tier);
   * the assessment tier decides, falling back to the experiment, where a delete asks only what
   * it asked before tiers existed (update). A create is MLflow's disjunction: the experiment or
   * the trace tier confers the write, the assessment tier can only veto it.
   */
  private async canOnAssessments(need: Need, traceId: string, create: boolean): Promise<boolean> {
    const experimentId = await this.context.resolver.traceExperiment(traceId)
    if (experimentId === undefined) return false
    const experiment = experimentKey(experimentId)
    const addressing: Requirement[] = [
      {...experiment, action: 'read'},
      {...tier('trace'), action: 'read', fallback: [experiment]},
    ]
    if (create) {
      if (!this.meets([...addressing, {...tier('assessment'), action: 'not_denied'}])) return false
      return this.can(need, 'experiment', experimentId) || this.can(need, 'trace', '*')
    }

    const fallbackAction = need === 'delete' ? 'update' : need
    return this.meets([...addressing, {...tier('assessment'), action: need, fallback: [{...experiment, action: fallbackAction}]}])
  }

  /**
   * A gateway resource by id, or by name as MLflow looks it up: without workspaces MLflow decides
   * on the caller's rows for the id alone (an id naming nothing gets the default, and the handler
   * answers 404). A name naming nothing is denied; a request giving both is decided on both.
   */
  private async passesGateway(need: Need, on: {gateway: GatewayType; id?: string; name?: string; optional?: boolean}, params: RequestParams): Promise<boolean> {
    const id = on.id === undefined ? undefined : params.optional(on.id)
    const name = on.name === undefined ? undefined : params.optional(on.name)
    const ids = id ? [id] : []
    if (name) {
      if (on.gateway !== 'gateway_endpoint') throw new TypeError('route table: only gateway endpoints are looked up by name')
      const named = await this.context.resolver.gatewayEndpointIdByName(name)
      if (named === undefined) return false
      ids.push(named)
    }

    if (ids.length === 0) {
      if (on.optional) return true
      throw missingParameter(on.id ?? on.name ?? 'id')
    }

    return ids.every((resourceId) => this.can(need, on.gateway, resourceId))
  }

  /** Registered models and prompts (one registry, told apart by a tag on the stored entity), and their versions. */
  private async passesRegistered(need: Need, name: string, versions: 'alias' | 'artifact' | 'cascade' | 'read' | 'version' | undefined): Promise<boolean> {
    const stored = await this.context.resolver.registeredModelKind(name)
    const kind = stored ?? 'registered_model'
    const container: Key = {resourceId: name, resourceType: kind}
    const versionKey = versionTier(kind)
    // An operation reaching versions denies a model that does not exist, as MLflow (no existence oracle).
    if (versions !== undefined && stored === undefined) return false
    switch (versions) {
      case undefined: {
        return this.can(need, kind, name)
      }

      case 'read': {
        return this.meets([
          {...container, action: need},
          {...versionKey, action: 'not_denied'},
        ])
      }

      case 'version': {
        return this.meets([
          {...container, action: 'read'},
          {...versionKey, action: need, fallback: [container]},
        ])
      }

      case 'alias': {
        return this.meets([
          {...container, action: need},
          {...versionKey, action: 'read', fallback: [container]},
        ])
      }

      case 'cascade': {
        return this.meets([
          {...container, action: need},
          {...versionKey, action: need, fallback: [container]},
        ])
      }

      case 'artifact': {
        // MLflow admits a version's files on the `registered_model` rows of the name even for a
        // prompt, then lets the version tier of what it really is veto.
        return this.meets([
          {action: need, resourceId: name, resourceType: 'registered_model'},
          {...versionKey, action: 'not_denied', fallback: [container]},
        ])
      }
    }
  }

  /** Tiers a trace search reaches besides traces, when it may select or sort on them. */
  private searchTiers(when: 'assessments-view' | 'filtered' | undefined, params: RequestParams): string[] {
    // The view by name or by its proto number, as MLflow's JSON parser takes either.
    if (when === 'assessments-view') return ['ASSESSMENTS', '3'].includes(params.optional('view_type') ?? '') ? ['assessment'] : []
    // MLflow parses the filter to see which tiers it names; serve does not parse MLflow's trace
    // filter grammar, so any filter or order counts as naming all of them (stricter).
    if (when === 'filtered') return TRACE_SEARCH_FIELDS.some((field) => params.values(field).some((value) => value !== '')) ? TRACE_SEARCH_TIERS : []
    return []
  }
}
