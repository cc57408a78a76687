/**
 * Which experiment a run, logged model or trace belongs to, and an experiment's id from its name:
 * asked of the upstream MLflow server where MLflow's own auth layer asks its tracking store, on
 * serve's connection pool. Runs, logged models, issues and label schemas get server-made ids and never
 * change experiment, so those answers are kept (bounded); trace ids and names are not.
 */
import {type Upstream, UpstreamError} from '../proxy.js'

const MAX_CACHED = 200_000

type Lookup = (id: string) => Promise<string | undefined>

export class ResourceResolver {
  readonly issueExperiment: Lookup
  readonly labelSchemaExperiment: Lookup
  readonly loggedModelExperiment: Lookup
  readonly runExperiment: Lookup
  readonly traceExperiment: Lookup
  private readonly cache = new Map<string, string>()
  private readonly inFlight = new Map<string, Promise<string | undefined>>()

  constructor(private readonly upstream: Upstream) {
    this.runExperiment = this.cached('run', async (id) => {
      const body = await this.get(`/api/2.0/mlflow/runs/get?run_id=${encodeURIComponent(id)}`)
      return pick(body, 'run', 'info', 'experiment_id')
    })
    this.loggedModelExperiment = this.cached('logged_model', async (id) => {
      const body = await this.get(`/api/2.0/mlflow/logged-models/${encodeURIComponent(id)}`)
      return pick(body, 'model', 'info', 'experiment_id')
    })
    this.issueExperiment = this.cached('issue', async (id) => {
      const body = await this.get(`/api/3.0/mlflow/issues/${encodeURIComponent(id)}`)
      return pick(body, 'issue', 'experiment_id')
    })
    this.labelSchemaExperiment = this.cached('label_schema', async (id) => {
      const body = await this.get(`/api/3.0/mlflow/label-schemas/get?schema_id=${encodeURIComponent(id)}`)
      return pick(body, 'label_schema', 'experiment_id')
    })
    // Not cached: a trace id is chosen by the client, and a trace can be deleted and made again
    // (or, on some MLflow versions, moved) under the same id.
    this.traceExperiment = async (id) => {
      const v3 = await this.get(`/api/3.0/mlflow/traces/${encodeURIComponent(id)}`)
      if (v3) return pick(v3, 'trace', 'trace_info', 'trace_location', 'mlflow_experiment', 'experiment_id')
      const v2 = await this.get(`/api/2.0/mlflow/traces/${encodeURIComponent(id)}/info`)
      return pick(v2, 'trace_info', 'experiment_id')
    }
  }

  /**
   * Whether the registered model of this name is a prompt (MLflow keeps prompts as registered
   * models tagged `mlflow.prompt.is_prompt`), read from the stored entity, never the request;
   * undefined when it does not exist. Not cached: the tag can be changed.
   */
  async registeredModelKind(name: string): Promise<'prompt' | 'registered_model' | undefined> {
    const body = await this.get(`/api/2.0/mlflow/registered-models/get?name=${encodeURIComponent(name)}`)
    const model = (body as {registered_model?: {tags?: unknown}} | undefined)?.registered_model
    if (!model || typeof model !== 'object') return undefined
    return isPromptTagged(model.tags) ? 'prompt' : 'registered_model'
  }

  /** A gateway endpoint's id from its name, as MLflow looks it up; undefined when none has it. Not cached: names can be changed. */
  async gatewayEndpointIdByName(name: string): Promise<string | undefined> {
    return pick(await this.get(`/api/3.0/mlflow/gateway/endpoints/get?name=${encodeURIComponent(name)}`), 'endpoint', 'endpoint_id')
  }

  /** The experiment a gateway endpoint logs its usage to, '' when none; undefined when the endpoint does not exist. */
  async gatewayEndpointExperiment(id: string): Promise<string | undefined> {
    const body = await this.get(`/api/3.0/mlflow/gateway/endpoints/get?endpoint_id=${encodeURIComponent(id)}`)
    const endpoint = (body as {endpoint?: {experiment_id?: unknown}} | undefined)?.endpoint
    if (!endpoint || typeof endpoint !== 'object') return undefined
    return typeof endpoint.experiment_id === 'string' ? endpoint.experiment_id : ''
  }

  /** Every gateway endpoint's id by its name (the gateway's model listing names endpoints by name). */
  async gatewayEndpointIds(): Promise<Map<string, string>> {
    const body = await this.get('/api/3.0/mlflow/gateway/endpoints/list')
    const endpoints = (body as {endpoints?: unknown} | undefined)?.endpoints
    const ids = new Map<string, string>()
    for (const endpoint of Array.isArray(endpoints) ? endpoints : []) {
      const [name, id] = [pick(endpoint, 'name'), pick(endpoint, 'endpoint_id')]
      if (name !== undefined && id !== undefined) ids.set(name, id)
    }

    return ids
  }

  /** Whether an MCP server of this name (`<namespace>/<slug>`) exists. Not cached: servers come and go. */
  async mcpServerExists(name: string): Promise<boolean> {
    const path = name
      .split('/')
      .map((segment) => encodeURIComponent(segment))
      .join('/')
    return (await this.get(`/api/3.0/mlflow/mcp-servers/${path}`)) !== undefined
  }

  /**
   * The experiments an evaluation dataset is linked to ([] for a dataset linked to none, and for
   * one that does not exist: MLflow answers both alike). Not cached: links are added and removed.
   */
  async datasetExperiments(id: string): Promise<string[]> {
    const body = await this.get(`/api/3.0/mlflow/datasets/${encodeURIComponent(id)}/experiment-ids`)
    const ids = (body as {experiment_ids?: unknown} | undefined)?.experiment_ids
    if (ids === undefined) return []
    if (!Array.isArray(ids) || !ids.every((experimentId) => typeof experimentId === 'string'))
      throw new UpstreamError('The MLflow server answered a lookup needed to authorize this request with malformed JSON.', 502)
    return ids
  }

  /** A review queue (MLflow's `review_queue`), or undefined when there is none. Not cached: its users and owner change. */
  async reviewQueue(queueId: string): Promise<unknown> {
    return member(await this.get(`/api/3.0/mlflow/review-queues/get?queue_id=${encodeURIComponent(queueId)}`), 'review_queue')
  }

  /** A review queue by its experiment and name, or undefined when there is none. */
  async reviewQueueByName(experimentId: string, name: string): Promise<unknown> {
    const query = `experiment_id=${encodeURIComponent(experimentId)}&name=${encodeURIComponent(name)}`
    return member(await this.get(`/api/3.0/mlflow/review-queues/get-by-name?${query}`), 'review_queue')
  }

  async experimentIdByName(name: string): Promise<string | undefined> {
    const body = await this.get(`/api/2.0/mlflow/experiments/get-by-name?experiment_name=${encodeURIComponent(name)}`)
    return pick(body, 'experiment', 'experiment_id')
  }

  private cached(kind: string, lookup: Lookup): Lookup {
    return (id) => {
      const key = `${kind}\u0000${id}`
      const known = this.cache.get(key)
      if (known !== undefined) return Promise.resolve(known)
      let pending = this.inFlight.get(key)
      if (!pending) {
        pending = lookup(id).then((experimentId) => {
          if (experimentId !== undefined) {
            if (this.cache.size >= MAX_CACHED) this.cache.delete(this.cache.keys().next().value!)
            this.cache.set(key, experimentId)
          }

          return experimentId
        })
        pending.finally(() => this.inFlight.delete(key)).catch(() => {})
        this.inFlight.set(key, pending)
      }

      return pending
    }
  }

  /** The upstream's JSON answer; undefined when it says the resource does not exist. */
  private async get(path: string): Promise<unknown> {
    const response = await this.upstream.request('GET', path, {maxResponseBytes: 16 * 1024 * 1024})
    if (response.status === 404 || response.status === 400) return undefined
    if (response.status !== 200) {
      // An upstream that says it is unavailable or timed out is passed on as such; any other failure is a broken answer.
      const status = response.status === 503 || response.status === 504 ? response.status : 502
      throw new UpstreamError(`The MLflow server answered ${response.status} to a lookup needed to authorize this request.`, status)
    }

    try {
      return JSON.parse(response.body.toString('utf8'))
    } catch {
      throw new UpstreamError('The MLflow server answered a lookup needed to authorize this request with malformed JSON.', 502)
    }
  }
}

const IS_PROMPT_TAG = 'mlflow.prompt.is_prompt'

/**
 * Whether a registered model's or version's tags (MLflow's JSON: a list of `{key, value}`) mark it
 * a prompt: the last such tag, `true` in any case (MLflow's reading).
 */
export function isPromptTagged(tags: unknown): boolean {
  let value: unknown
  for (const tag of Array.isArray(tags) ? tags : []) {
    if (tag && typeof tag === 'object' && (tag as {key?: unknown}).key === IS_PROMPT_TAG) value = (tag as {value?: unknown}).value
  }

  return typeof value === 'string' && value.toLowerCase() === 'true'
}

/** The prompt marker a request's tags assert: true, false, or undefined when they carry none. */
export function promptMarker(tags: unknown): boolean | undefined {
  const marked = Array.isArray(tags) && tags.some((tag) => tag && typeof tag === 'object' && (tag as {key?: unknown}).key === IS_PROMPT_TAG)
  return marked ? isPromptTagged(tags) : undefined
}

/** A member of a JSON object, of any type. */
function member(value: unknown, key: string): unknown {
  return value && typeof value === 'object' ? (value as Record<string, unknown>)[key] : undefined
}

function pick(value: unknown, ...path: string[]): string | undefined {
  let current = value
  for (const key of path) {
    if (!current || typeof current !== 'object') return undefined
    current = (current as Record<string, unknown>)[key]
  }

  return typeof current === 'string' && current !== '' ? current : undefined
}
