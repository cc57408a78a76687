/**
 * The few tracking-server lookups the perms commands need: whether an experiment, registered
 * model or prompt exists, and an experiment's name for its id (and back). Permission calls live in auth-api.
 */
import {MlflowApiError, type MlflowHttp} from '../client/http.js'
import {ExitCode, UserError} from '../core/errors.js'

const LOOKUPS_AT_ONCE = 8

export interface Experiment {
  id: string
  name: string
}

/** What a lookup by id found: the experiment, none (404), or nothing we may know (403). */
export type ExperimentLookup = {experiment: Experiment; found: true} | {found: false} | {found: undefined}

function isMissing(error: unknown): boolean {
  return error instanceof MlflowApiError && error.errorCode === 'RESOURCE_DOES_NOT_EXIST'
}

export class TrackingApi {
  constructor(private readonly http: MlflowHttp) {}

  async experimentById(id: string): Promise<ExperimentLookup> {
    try {
      const {experiment} = await this.http.get<{experiment: {experiment_id: string; name: string}}>('/api/2.0/mlflow/experiments/get', {experiment_id: id})
      return {experiment: {id: experiment.experiment_id, name: experiment.name}, found: true}
    } catch (error) {
      if (isMissing(error)) return {found: false}
      // Whoever may not read the experiment cannot learn whether it exists: the server decides.
      if (error instanceof MlflowApiError && error.status === 403) return {found: undefined}
      throw error
    }
  }

  async experimentByName(name: string): Promise<Experiment> {
    try {
      const {experiment} = await this.http.get<{experiment: {experiment_id: string; name: string}}>('/api/2.0/mlflow/experiments/get-by-name', {
        experiment_name: name,
      })
      return {id: experiment.experiment_id, name: experiment.name}
    } catch (error) {
      if (!isMissing(error)) throw error
      throw new UserError(`There is no experiment named "${name}"`, {
        cause: error,
        code: 'RESOURCE_DOES_NOT_EXIST',
        exit: ExitCode.NotFound,
        hint: /^\d+$/.test(name) ? `To give the experiment by id, pass --id ${name} (or the id alone as the argument).` : undefined,
        status: (error as MlflowApiError).status,
      })
    }
  }

  /** False only when the server says the model does not exist; a 403 leaves the decision to the server. */
  async registeredModelExists(name: string): Promise<boolean> {
    try {
      await this.http.get('/api/2.0/mlflow/registered-models/get', {name})
      return true
    } catch (error) {
      if (isMissing(error)) return false
      if (error instanceof MlflowApiError && error.status === 403) return true
      throw error
    }
  }

  /**
   * Whether `name` is a prompt: MLflow keeps prompts as registered models tagged as such. False
   * only when the server says there is no such model or it is not a prompt; a 403 leaves the
   * decision to the server.
   */
  async promptExists(name: string): Promise<boolean> {
    try {
      const {registered_model: model} = await this.http.get<{registered_model?: {tags?: Array<{key: string; value: string}>}}>(
        '/api/2.0/mlflow/registered-models/get',
        {name},
      )
      return (model?.tags ?? []).some((tag) => tag.key === 'mlflow.prompt.is_prompt' && tag.value === 'true')
    } catch (error) {
      if (isMissing(error)) return false
      if (error instanceof MlflowApiError && error.status === 403) return true
      throw error
    }
  }

  /** Names of the experiments that exist and are readable, a few lookups at a time; the rest are left out. */
  async experimentNames(ids: string[]): Promise<Map<string, string>> {
    const names = new Map<string, string>()
    const unique = [...new Set(ids)]
    for (let start = 0; start < unique.length; start += LOOKUPS_AT_ONCE) {
      await Promise.all(
        unique.slice(start, start + LOOKUPS_AT_ONCE).map(async (id) => {
          // A name is only shown beside the id: a failed lookup must not fail the listing.
          const lookup = await this.experimentById(id).catch(() => undefined)
          if (lookup?.found) names.set(id, lookup.experiment.name)
        }),
      )
    }

    return names
  }
}
