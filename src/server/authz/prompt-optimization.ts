/**
 * A prompt optimization job's create, beyond what the route table states (EDIT on the experiment,
 * `run *` and `scorer_version *` not denied, READ on the dataset): the job's worker runs with no
 * caller identity and loads what free-form fields of the request name, so each is read here the
 * way the worker reads it. MLflow 3.17 asks only that none be denied to the caller, which with a
 * default of NO_PERMISSIONS passes a caller with no grant at all; serve asks what the worker does
 * with each: EDIT on the source prompt (by URI or by name; its versions not denied), as the worker
 * reads its template into the caller's run and registers the optimized template as a new version
 * of that same prompt (the name it loaded); READ on each scorer by name in the experiment (a name
 * the worker does not find among its built-in scorers loads and runs the scorer of that name
 * registered there); USE on the gateway endpoint of the optimizer's reflection model, which the
 * worker calls (issue detection asks USE of its judge's endpoint too). A value serve cannot read
 * as the worker would is refused. The optimizer configuration reaches the reflection model's call
 * and GEPA as keyword arguments: a non-admin may set only the keys listed here (checkOptimizerConfig).
 */
import {scorerResourceId} from '../../mlflow/resources.js'
import {ApiError, permissionDenied} from '../responses.js'
import {type Access} from './access.js'
import {type Exchange} from './exchange.js'
import {canonicalId} from './request-params.js'

const PROMPTS_SCHEME = 'prompts:/'

/**
 * Control characters (Python's URL parser drops tabs and line breaks anywhere, and its `strip()`
 * takes C1 controls for white space) and `?` (the parser cuts a query off a prompt URI, and off
 * the `prompts:/<name>@latest` a bare name becomes): the name checked and the name loaded could differ.
 */
// eslint-disable-next-line no-control-regex -- control characters are what it looks for
const UNREADABLE = /[\u0000-\u001F\u007F-\u009F?]/

/**
 * Every prompt name the source could resolve to, as MLflow reads it; [] when it names none MLflow
 * can identify (MLflow then refuses). A `prompts:/` URI names one prompt: `<name>/<version>` or
 * `<name>@<alias>`, the name before the last `@`. A bare name is loaded as `prompts:/<name>@latest`,
 * so an `@` in it is part of the name; the part before the last `@` counts too, as a caller
 * writing `name@alias` plausibly meant that prompt.
 */
export function sourcePromptNames(uri: string): string[] {
  if (UNREADABLE.test(uri))
    throw new ApiError(
      'INVALID_PARAMETER_VALUE',
      `The source prompt URI ${JSON.stringify(uri)} holds a control character or a '?', which serve does not pass on.`,
    )
  if (uri.startsWith(PROMPTS_SCHEME)) {
    const path = uri.slice(PROMPTS_SCHEME.length)
    // `prompts://…` would be read as a network location, `prompts:/<id>` (one part, no alias) as a model id: no name.
    const parts = path.split('/')
    if (path.startsWith('/') || parts.length > 2 || parts[0].trim() === '') return []
    if (parts.length === 2) return /^\d+$/.test(parts[1]) ? [parts[0]] : []
    const at = path.lastIndexOf('@')
    if (at < 0 || path.slice(at + 1).trim() === '') return []
    const name = path.slice(0, at)
    return name === '' ? [] : [name]
  }

  if (!uri.includes('@')) return [uri]
  const beforeAlias = uri.slice(0, uri.lastIndexOf('@'))
  return beforeAlias === '' ? [] : [uri, beforeAlias]
}

/**
 * The optimizer configuration as MLflow's handler reads `optimizer_config_json`: undefined when
 * there is none (MLflow passes an empty one on as none). A configuration that is not JSON is
 * refused (MLflow refuses it too).
 */
export function parseOptimizerConfig(configJson: string | undefined): unknown {
  if (!configJson) return undefined
  try {
    return JSON.parse(configJson)
  } catch {
    throw new ApiError('INVALID_PARAMETER_VALUE', "The optimizer configuration ('optimizer_config_json') is not valid JSON.")
  }
}

/** The gateway endpoint the optimizer's reflection model names (`gateway:/<name>`), as MLflow reads the configuration: undefined when it names none. */
export function reflectionEndpoint(configJson: string | undefined): string | undefined {
  return configReflectionEndpoint(parseOptimizerConfig(configJson))
}

function configReflectionEndpoint(config: unknown): string | undefined {
  const model = isObject(config) ? config.reflection_model : undefined
  return typeof model === 'string' ? gatewayEndpointName(model) : undefined
}

function isObject(value: unknown): value is Record<string, unknown> {
  return value !== null && typeof value === 'object' && !Array.isArray(value)
}

type Kind = 'boolean' | 'integer' | 'number' | 'object or null' | 'positive integer' | 'string' | 'string or list of strings'

/**
 * What a non-admin's optimizer configuration may set, key by key: the keys MLflow 3.17's
 * `_create_optimizer` reads (GEPA: reflection_model, max_metric_calls, display_progress_bar,
 * gepa_kwargs; MetaPrompt: reflection_model, lm_kwargs, guidelines). A key it ignores today is
 * refused too: a later MLflow could read it.
 */
const OPTIMIZER_CONFIG: Record<string, Kind> = {
  display_progress_bar: 'boolean',
  gepa_kwargs: 'object or null',
  guidelines: 'string',
  lm_kwargs: 'object or null',
  max_metric_calls: 'positive integer',
  reflection_model: 'string',
}

/**
 * MetaPrompt's `lm_kwargs` are spread over the keyword arguments of the reflection model's call
 * (`litellm.completion`, or the body the gateway fallback sends), after the ones MLflow sets: any
 * key there can choose the host (`api_base`, `base_url`, `model_list`, `custom_llm_provider`…) the
 * server's provider key is sent to, add headers, callbacks or a different model. Only sampling
 * parameters pass. `n` is left out: the optimizer reads one choice, more only cost the server.
 */
const LM_KWARGS: Record<string, Kind> = {
  frequency_penalty: 'number',
  max_completion_tokens: 'positive integer',
  max_tokens: 'positive integer',
  presence_penalty: 'number',
  reasoning_effort: 'string',
  seed: 'integer',
  stop: 'string or list of strings',
  temperature: 'number',
  top_k: 'positive integer',
  top_p: 'number',
}

/**
 * GEPA's `gepa_kwargs` are passed to `gepa.optimize`, under the ones MLflow sets. Left out: `run_dir`
 * (a directory on the server that GEPA writes to, and whose saved state it loads with pickle),
 * `mlflow_tracking_uri` and `mlflow_experiment_name` (the job's tracking sent to a server the
 * caller picks), `use_wandb`, `wandb_api_key`, `wandb_init_kwargs` (uploads to W&B, a host in the
 * init options), `use_cloudpickle`, and the ones that take Python objects or a second model
 * (`logger`, `callbacks`, `stop_callbacks`, `task_lm`, `evaluator`, `valset`…). What passes are
 * the search's own settings, which name nothing outside the job.
 */
const GEPA_KWARGS: Record<string, Kind> = {
  batch_sampler: 'string',
  cache_evaluation: 'boolean',
  candidate_selection_strategy: 'string',
  frontier_type: 'string',
  max_merge_invocations: 'integer',
  merge_val_overlap_floor: 'integer',
  module_selector: 'string',
  perfect_score: 'number',
  raise_on_exception: 'boolean',
  reflection_minibatch_size: 'positive integer',
  reflection_prompt_template: 'string',
  seed: 'integer',
  skip_perfect_score: 'boolean',
  track_best_outputs: 'boolean',
  use_merge: 'boolean',
  val_evaluation_policy: 'string',
}

const NESTED: Record<string, Record<string, Kind>> = {gepa_kwargs: GEPA_KWARGS, lm_kwargs: LM_KWARGS}

function hasKind(value: unknown, kind: Kind): boolean {
  switch (kind) {
    case 'boolean': {
      return typeof value === 'boolean'
    }

    case 'integer': {
      return Number.isSafeInteger(value)
    }

    case 'number': {
      return typeof value === 'number' && Number.isFinite(value)
    }

    case 'object or null': {
      return value === null || isObject(value)
    }

    case 'positive integer': {
      return Number.isSafeInteger(value) && (value as number) > 0
    }

    case 'string': {
      return typeof value === 'string'
    }

    case 'string or list of strings': {
      return typeof value === 'string' || (Array.isArray(value) && value.every((each) => typeof each === 'string'))
    }
  }
}

/**
 * Throws 400 unless a non-admin's optimizer configuration (none, or a JSON object) sets only keys
 * serve lets through, each of its type. `field` names where the request carries it. The error
 * names the key, never its value.
 */
export function checkOptimizerConfig(config: unknown, field: string): void {
  if (config === undefined || config === null) return
  if (!isObject(config)) throw new ApiError('INVALID_PARAMETER_VALUE', `The optimizer configuration ('${field}') must be a JSON object.`)
  const check = (object: Record<string, unknown>, allowed: Record<string, Kind>, path: string) => {
    for (const [key, value] of Object.entries(object)) {
      const name = `${path}${key}`
      const kind = Object.hasOwn(allowed, key) ? allowed[key] : undefined
      if (!kind)
        throw new ApiError(
          'INVALID_PARAMETER_VALUE',
          `The optimizer configuration ('${field}') may not set ${JSON.stringify(name)}: serve lets a non-admin set only ${Object.keys(allowed).join(', ')}${path ? ` in ${path.slice(0, -1)}` : ''}.`,
        )
      if (!hasKind(value, kind))
        throw new ApiError(
          'INVALID_PARAMETER_VALUE',
          `The optimizer configuration's ${JSON.stringify(name)} ('${field}') must be ${kind === 'integer' ? 'an integer' : `a ${kind}`}.`,
        )
      if (Object.hasOwn(NESTED, key) && value !== null) check(value as Record<string, unknown>, NESTED[key], `${name}.`)
    }
  }

  check(config, OPTIMIZER_CONFIG, '')
  const model = config.reflection_model
  if (typeof model === 'string' && gatewayEndpointName(model) === undefined && !isServerCredentialModel(model))
    throw new ApiError(
      'INVALID_PARAMETER_VALUE',
      `The optimizer configuration's "reflection_model" ('${field}') must be gateway:/<endpoint> or <provider>:/<model> with one of the providers ${[...SERVER_CREDENTIAL_PROVIDERS].join(', ')} and no URL in the model.`,
    )
}

/**
 * The providers MLflow 3.17 runs a judge or reflection model with on the server's own credentials
 * when given `<provider>:/<model>` (its `_CORE_PROVIDER_ENV_VARS`): each names only a model. Others
 * LiteLLM knows take a URL in the model name (`huggingface/https://host…` sends the server's
 * Hugging Face key there) or reach the server's own network (`ollama`).
 */
export const SERVER_CREDENTIAL_PROVIDERS = new Set([
  'anthropic',
  'azure',
  'bedrock',
  'deepseek',
  'gemini',
  'groq',
  'mistral',
  'openai',
  'openrouter',
  'togetherai',
  'typesafe',
  'xai',
])

/** `<provider>:/<model>` of a provider above, naming a model and no URL (split as MLflow splits it, at the first `:/`). */
export function isServerCredentialModel(model: string): boolean {
  const separator = model.indexOf(':/')
  const name = separator < 0 ? '' : model.slice(separator + 2).replace(/^\/+/, '')
  return SERVER_CREDENTIAL_PROVIDERS.has(model.slice(0, separator)) && name !== '' && !name.includes('://')
}

/**
 * The gateway endpoint a model URI names, as MLflow's judges read `<provider>:/<model>` (split at
 * the first `:/`, leading slashes of the model dropped): undefined when its provider is not `gateway`.
 */
export function gatewayEndpointName(model: string): string | undefined {
  const separator = model.indexOf(':/')
  if (separator < 0 || model.slice(0, separator) !== 'gateway') return undefined
  return model.slice(separator + 2).replace(/^\/+/, '') || undefined
}

/** Throws 403 unless the caller may use what the create's configuration names (checkOptimizationInputs). */
export async function checkOptimizationCreate({access, params}: Exchange): Promise<void> {
  await checkOptimizationInputs(access, {
    experimentId: canonicalId(params.required('experiment_id'), 'experiment_id'),
    source: params.optional('source_prompt_uri') ?? '',
    // Read once the prompt is decided: a caller the prompt refuses gets 403, never a 400 about the rest.
    scorers: () => params.values('config.scorers[]'),
    config: () => parseOptimizerConfig(params.optional('config.optimizer_config_json')),
    configField: 'config.optimizer_config_json',
  })
}

export interface OptimizationInputs {
  /** The optimizer configuration as the worker gets it (undefined or null: none). */
  config: () => unknown
  /** Where the request carries the configuration, for errors. */
  configField: string
  experimentId: string
  scorers: () => string[]
  /** The source prompt's URI or name ('' none). */
  source: string
}

/**
 * Throws 403 unless the caller may do what an optimization job does with what it names: EDIT on
 * the source prompt (every name it could resolve to; `prompt_version *` not denied), as the worker
 * reads it and registers a new version of it; READ on each scorer by name in the experiment; USE
 * on the reflection model's endpoint. And throws 400 unless the optimizer configuration sets only
 * what serve lets a non-admin set (checkOptimizerConfig: the keys that would send the server's
 * provider key elsewhere, or reach the server's disk or another tracking server, stay with admins).
 * Shared by the dedicated create and a submit of `optimize_prompts` by function name (job-submit.ts).
 */
export async function checkOptimizationInputs(access: Access, {config, configField, experimentId, scorers, source}: OptimizationInputs): Promise<void> {
  if (source !== '') {
    const names = sourcePromptNames(source)
    if (names.length === 0) throw new ApiError('PERMISSION_DENIED', `Permission denied: the source prompt URI ${JSON.stringify(source)} names no prompt.`)
    if (!access.can('not_denied', 'prompt_version', '*')) throw permissionDenied()
    for (const name of names) if (!access.can('update', 'prompt', name)) throw permissionDenied()
  }

  // Built-in scorers are code, not stored resources, but serve does not know which names MLflow
  // builds in: every name is checked as a registered scorer.
  for (const name of scorers()) {
    if (!access.can('read', 'scorer', scorerResourceId(experimentId, name))) throw permissionDenied()
  }

  const optimizerConfig = config()
  checkOptimizerConfig(optimizerConfig, configField)
  const endpointName = configReflectionEndpoint(optimizerConfig)
  if (endpointName !== undefined && !(await access.canOnEndpointNamed('use', endpointName))) throw permissionDenied()
}
