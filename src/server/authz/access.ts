/**
 * Whether a non-admin may make a request: every check of its route must pass
 * (docs/mlflow-auth-contract.md, "Permission model" and "Route permissions").
 * Runs, logged models and traces are decided on their experiment; one serve cannot resolve (it
 * does not exist) is denied, so an unknown id answers like an existing one the caller cannot see.
 * An experiment id checked here is refused (400) in any but its canonical spelling, whatever the
 * field is called (see isCanonicalId).
 */
import {capabilities, type Capabilities} from '../../mlflow/permissions.js'
import {scorerResourceId} from '../../mlflow/resources.js'
import {effectiveLevel} from '../permissions.js'
import {ApiError, permissionDenied} from '../responses.js'
import {type Store, type UserRecord} from '../store/store.js'
import {isCanonicalId} from '../../mlflow/resources.js'
import {canonicalId, type RequestParams} from './request-params.js'
import {type ResourceResolver} from './resolver.js'
import {type Capability, type Check} from './route-table.js'

export interface AccessContext {
  defaultPermission: string
  resolver: ResourceResolver
  store: Store
  user: UserRecord
}

const CAPABILITY: Record<Capability, keyof Capabilities> = {delete: 'canDelete', manage: 'canManage', read: 'canRead', update: 'canUpdate', use: 'canUse'}

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

export class Access {
  constructor(private readonly context: AccessContext) {}

  can(need: Capability, resourceType: string, resourceId: string): boolean {
    const {defaultPermission, store, user} = this.context
    return capabilities(effectiveLevel(store, user, resourceType, resourceId, defaultPermission))[CAPABILITY[need]]
  }

  canReadExperiment(experimentId: string): boolean {
    return this.can('read', 'experiment', experimentId)
  }

  canReadRegisteredModel(name: string): boolean {
    return this.can('read', 'registered_model', name)
  }

  async canOnRun(need: Capability, runId: string): Promise<boolean> {
    const experimentId = await this.context.resolver.runExperiment(runId)
    return experimentId !== undefined && this.can(need, 'experiment', experimentId)
  }

  async canOnLoggedModel(need: Capability, modelId: string): Promise<boolean> {
    const experimentId = await this.context.resolver.loggedModelExperiment(modelId)
    return experimentId !== undefined && this.can(need, 'experiment', experimentId)
  }

  /** Throws 403 unless every check passes, 400 when a field they need is missing or malformed. */
  async enforce(checks: Check[], params: RequestParams): Promise<void> {
    for (const check of checks) {
      if (!(await this.passes(check, params))) throw permissionDenied()
    }
  }

  private async passes({need, on}: Check, params: RequestParams): Promise<boolean> {
    const {resolver} = this.context
    const onExperiment = (id: string | undefined) => id !== undefined && this.can(need, 'experiment', id)
    const every = async (ids: string[], test: (id: string) => Promise<boolean> | boolean) => {
      for (const id of ids) {
        if (!(await test(id))) return false
      }

      return true
    }

    const nonEmpty = (field: string) => {
      const ids = params.values(field)
      if (ids.length === 0) throw new ApiError('INVALID_PARAMETER_VALUE', `The request must name at least one ${field.replace(/^.*\./, '').replace('[]', '')}.`)
      return ids
    }

    if ('experiment' in on) return onExperiment(canonicalId(params.required(on.experiment), on.experiment))
    if ('experimentName' in on) {
      const name = params.required(on.experimentName)
      const id = await resolver.experimentIdByName(name)
      // As MLflow's auth layer: answered here, not forwarded, so an experiment created meanwhile
      // cannot slip through undecided. Clients rely on this 404 (mlflow.set_experiment creates).
      if (id === undefined) throw new ApiError('RESOURCE_DOES_NOT_EXIST', `Could not find experiment with name ${name}`)
      return onExperiment(id)
    }

    if ('experiments' in on)
      return every(
        nonEmpty(on.experiments).map((id) => canonicalId(id, on.experiments)),
        onExperiment,
      )
    if ('artifactPath' in on) {
      const path = params.optional(on.artifactPath)
      // No experiment id in the path (the artifact root, `.`): MLflow falls back to the default
      // permission there, which lets anyone enumerate experiments; serve denies.
      return onExperiment(path === undefined ? undefined : artifactPathExperiment(path))
    }

    if ('run' in on) return this.canOnRun(need, params.runId(on.run))
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
      return on.ifExists && experimentId === undefined ? true : onExperiment(experimentId)
    }

    if ('traces' in on) return every(nonEmpty(on.traces), async (id) => onExperiment(await resolver.traceExperiment(id)))
    if ('registeredModel' in on) return this.can(need, 'registered_model', params.required(on.registeredModel))
    return this.can(need, 'scorer', scorerResourceId(canonicalId(params.required(on.scorer.experiment), on.scorer.experiment), params.required(on.scorer.name)))
  }
}
