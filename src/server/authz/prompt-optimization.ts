/**
 * A prompt optimization job's create, beyond what the route table states (EDIT on the experiment,
 * `run *` and `scorer_version *` not denied, READ on the dataset): the job's worker runs with no
 * caller identity and loads what free-form fields of the request name, so each is read here the
 * way the worker reads it, and none may be denied to the caller, as MLflow 3.17 decides: the source
 * prompt (by URI or by name; its versions), the scorers (a name the worker does not find among its
 * built-in scorers loads the scorer of that name registered in the experiment), and the gateway
 * endpoint of the optimizer's reflection model. A value serve cannot read as the worker would is
 * refused.
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
 * The gateway endpoint the optimizer's reflection model names (`gateway:/<name>`), as MLflow reads
 * the configuration: undefined when it names none. A configuration that is not JSON serve can read
 * is refused (MLflow refuses one that is not JSON at all).
 */
export function reflectionEndpoint(configJson: string | undefined): string | undefined {
  if (!configJson) return undefined
  let config: unknown
  try {
    config = JSON.parse(configJson)
  } catch {
    throw new ApiError('INVALID_PARAMETER_VALUE', "The optimizer configuration ('optimizer_config_json') is not valid JSON.")
  }

  const model = config && typeof config === 'object' && !Array.isArray(config) ? (config as Record<string, unknown>).reflection_model : undefined
  return typeof model === 'string' ? gatewayEndpointName(model) : undefined
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

/** Throws 403 unless nothing the create's configuration names is denied to the caller. */
export async function checkOptimizationCreate({access, params}: Exchange): Promise<void> {
  await checkOptimizationInputs(access, {
    experimentId: canonicalId(params.required('experiment_id'), 'experiment_id'),
    source: params.optional('source_prompt_uri') ?? '',
    // Read once the prompt is decided: a caller the prompt refuses gets 403, never a 400 about the rest.
    scorers: () => params.values('config.scorers[]'),
    endpoint: () => reflectionEndpoint(params.optional('config.optimizer_config_json')),
  })
}

export interface OptimizationInputs {
  /** The reflection model's gateway endpoint, if it names one. */
  endpoint: () => string | undefined
  experimentId: string
  scorers: () => string[]
  /** The source prompt's URI or name ('' none). */
  source: string
}

/**
 * Throws 403 unless nothing an optimization job loads is denied to the caller: the source prompt
 * (and its versions), each scorer by name in the experiment, the reflection model's endpoint.
 * Shared by the dedicated create and a submit of `optimize_prompts` by function name (job-submit.ts).
 */
export async function checkOptimizationInputs(access: Access, {endpoint, experimentId, scorers, source}: OptimizationInputs): Promise<void> {
  if (source !== '') {
    const names = sourcePromptNames(source)
    if (names.length === 0) throw new ApiError('PERMISSION_DENIED', `Permission denied: the source prompt URI ${JSON.stringify(source)} names no prompt.`)
    if (!access.can('not_denied', 'prompt_version', '*')) throw permissionDenied()
    for (const name of names) if (!access.can('not_denied', 'prompt', name)) throw permissionDenied()
  }

  // Built-in scorers are code, not stored resources, but serve does not know which names MLflow
  // builds in: every name is checked as a registered scorer (stricter only for a deny on one of them).
  for (const name of scorers()) {
    if (!access.can('not_denied', 'scorer', scorerResourceId(experimentId, name))) throw permissionDenied()
  }

  const endpointName = endpoint()
  if (endpointName !== undefined && !(await access.canOnEndpointNamed('not_denied', endpointName))) throw permissionDenied()
}
