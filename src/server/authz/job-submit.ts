/**
 * A submit of a server-side job by function name (`POST /ajax-api/3.0/jobs/`, body
 * `{job_name, params, timeout}`), decided per function. MLflow 3.17 lets anyone logged in submit
 * any allowed function with any parameters: the job then runs with the server's identity on
 * whatever they name. serve lets a non-admin submit the two functions whose parameters it can
 * decide as it decides their dedicated routes (issues/invoke, the prompt optimization create),
 * read from the raw parameters; the others stay with admins:
 * - invoke_scorer, invoke_genai_evaluate, run_online_trace_scorer, run_online_session_scorer:
 *   their parameters carry serialized scorers, which the job executor deserializes and runs. The
 *   dedicated routes (scorer/invoke, genai/evaluate/invoke) first refuse a custom `@scorer` (its
 *   code is exec'd when deserialized) unless the operator allowed custom scorers, and third-party
 *   scorer options that choose the host the judge's LLM client connects to, check a registered
 *   scorer's stored version the same way, bind the traces to the experiment, and set the
 *   `username` gateway calls are made as to the caller. A submit by function name does none of
 *   that, and serve cannot repeat MLflow's Python reading of a scorer;
 * - a name serve does not know (MLflow's `_MLFLOW_ALLOWED_JOB_NAME_LIST` adds names): fail closed.
 * A parameter serve does not know, a required one missing, or one of the wrong type is refused
 * (400): the function would receive it, and serve decides on every one it passes. So is a
 * `timeout` other than none or a positive number of seconds up to a day (checkTimeout).
 */
import {ApiError, permissionDenied} from '../responses.js'
import {idsToLookUp} from './access.js'
import {type Exchange, type Json} from './exchange.js'
import {checkOptimizationInputs, gatewayEndpointName, isServerCredentialModel, SERVER_CREDENTIAL_PROVIDERS} from './prompt-optimization.js'
import {type Check} from './route-table.js'

type ParamType = 'object or null' | 'string or null' | 'string' | 'strings'

interface JobFunction {
  /** Each parameter the function takes, its JSON type, and whether MLflow requires it (no default). */
  params: Record<string, {required: boolean; type: ParamType}>
  /** The checks beyond the types: the route table's, then code (throws 400 or 403). */
  checks: Check[]
  special?: (exchange: Exchange, params: Json) => Promise<void>
}

const P = 'params.'
/**
 * EDIT on the experiment the job writes into, and on the existing run it writes into (through the
 * run's experiment; the run tier decides, so a deny there refuses, as on the dedicated creates).
 */
const WRITES_RUN: Check[] = [
  {need: 'update', on: {experiment: `${P}experiment_id`}},
  {need: 'update', on: {run: `${P}run_id`}},
]

/**
 * The providers whose server-side settings MLflow 3.17 takes from a gateway secret key by key
 * (`_CORE_PROVIDER_ENV_VARS`) including the base URL (OPENAI_API_BASE, AZURE_API_BASE): issues/invoke
 * with a `secret_id` sets only the keys the secret holds in the job's environment, over the
 * server's own. A secret holding an `api_base` (anyone may create one) and no `api_key` sends the
 * SERVER's key for that provider to the secret's host.
 */
const BASE_URL_PROVIDERS = new Set(['azure', 'openai'])

/**
 * issues/invoke for a non-admin: no `secret_id` with a provider whose base URL a secret can set.
 * serve could read the secret's keys first, but its owner can change them between that read and
 * MLflow's; a gateway endpoint (`endpoint_name`) names the same key and host with no mix.
 */
export function checkIssueInvoke({params}: Exchange): void {
  const provider = params.optional('provider')
  if (!params.optional('secret_id') || provider === undefined || !BASE_URL_PROVIDERS.has(provider.toLowerCase())) return
  throw new ApiError(
    'INVALID_PARAMETER_VALUE',
    `serve does not pass on a non-admin's 'secret_id' for provider ${JSON.stringify(provider)}: the job would complete the secret with the server's own credentials for that provider, wherever the secret's api_base points. Use a gateway endpoint ('endpoint_name') instead.`,
  )
}

/**
 * The judge model of an issue detection: `gateway:/<name>` needs USE on that endpoint (as
 * issues/invoke's endpoint_name); `<provider>:/<model>` runs on the server's credentials for that
 * provider, as issues/invoke given a provider and model (and no secret) does for whoever may run it,
 * so only the providers it accepts there; none: MLflow's default judge (an OpenAI model, on the server's credentials).
 */
async function checkJudgeModel({access}: Exchange, params: Json): Promise<void> {
  const model = params.model as string | null | undefined
  if (model === undefined || model === null) return
  const endpoint = gatewayEndpointName(model)
  if (endpoint !== undefined) {
    if (!(await access.canOnEndpointNamed('use', endpoint))) throw permissionDenied()
    return
  }

  if (!isServerCredentialModel(model))
    throw new ApiError(
      'INVALID_PARAMETER_VALUE',
      `Parameter 'params.model' must be gateway:/<endpoint> or <provider>:/<model> with one of the providers ${[...SERVER_CREDENTIAL_PROVIDERS].join(', ')} and no URL in the model, got ${JSON.stringify(model)}.`,
    )
}

/** The functions a non-admin may submit, with their parameters as MLflow 3.17's job functions declare them. */
const OPEN: Record<string, JobFunction> = {
  // genai/discovery/job.py: links the traces to the run, reads them, judges them with `model`
  // (assessments on each trace), writes issues into the experiment, and tags and ends the run.
  invoke_issue_detection: {
    checks: WRITES_RUN,
    params: {
      categories: {required: true, type: 'strings'},
      experiment_id: {required: true, type: 'string'},
      model: {required: false, type: 'string or null'},
      run_id: {required: true, type: 'string'},
      trace_ids: {required: true, type: 'strings'},
    },
    async special(exchange, params) {
      // READ on each trace, as issues/invoke; and as MLflow binds that route's traces to its
      // experiment, each must be in the experiment (the job writes assessments on them). A trace
      // that does not exist is refused like one the caller cannot see.
      const traceIds = idsToLookUp(params.trace_ids as string[], 'traces')
      if (traceIds.length === 0) throw new ApiError('INVALID_PARAMETER_VALUE', "Parameter 'params.trace_ids' must name at least one trace.")
      const experimentId = params.experiment_id as string
      for (const traceId of traceIds) {
        if ((await exchange.access.traceExperiment(traceId)) !== experimentId) throw permissionDenied()
      }

      if (!exchange.access.canOnTracesIn('read', experimentId)) throw permissionDenied()
      await checkJudgeModel(exchange, params)
    },
  },
  // genai/optimize/job.py: resumes the run, loads the prompt, the dataset, the scorers by name
  // and the optimizer's reflection model, and registers the optimized prompt.
  optimize_prompts: {
    checks: [...WRITES_RUN, {need: 'not_denied', on: {tier: 'scorer_version'}}, {need: 'read', on: {dataset: `${P}dataset_id`, optional: true}}],
    params: {
      dataset_id: {required: true, type: 'string'},
      experiment_id: {required: true, type: 'string'},
      optimizer_config: {required: true, type: 'object or null'},
      optimizer_type: {required: true, type: 'string'},
      prompt_uri: {required: true, type: 'string'},
      run_id: {required: true, type: 'string'},
      scorer_names: {required: true, type: 'strings'},
    },
    async special({access}, params) {
      const source = params.prompt_uri as string
      if (source === '') throw new ApiError('INVALID_PARAMETER_VALUE', "Parameter 'params.prompt_uri' must name a prompt.")
      await checkOptimizationInputs(access, {
        config: () => params.optimizer_config,
        configField: 'params.optimizer_config',
        experimentId: params.experiment_id as string,
        scorers: () => params.scorer_names as string[],
        source,
      })
    },
  },
}

/** Why each function MLflow 3.17 offers and serve does not open stays with admins. */
const SCORER_PAYLOAD = 'its parameters carry serialized scorers the job executor runs, unchecked on this route (job-submit.ts)'
export const ADMIN_ONLY_JOBS: Record<string, string> = {
  invoke_genai_evaluate: SCORER_PAYLOAD,
  invoke_scorer: SCORER_PAYLOAD,
  run_online_session_scorer: SCORER_PAYLOAD,
  run_online_trace_scorer: SCORER_PAYLOAD,
}

/** The job functions a non-admin may submit by name. */
export const OPEN_JOBS = Object.keys(OPEN)

function hasType(value: unknown, type: ParamType): boolean {
  switch (type) {
    case 'object or null': {
      return value === null || (typeof value === 'object' && !Array.isArray(value))
    }

    case 'string': {
      return typeof value === 'string'
    }

    case 'string or null': {
      return value === null || typeof value === 'string'
    }

    case 'strings': {
      return Array.isArray(value) && value.every((item) => typeof item === 'string')
    }
  }
}

/**
 * The longest run a non-admin's submit may ask for, in seconds. MLflow reads `timeout` as any float
 * (a string of digits, NaN and infinities too) and its executor kills the job once it has run that
 * long; none leaves the job the executor's configured default (MLFLOW_SERVER_JOB_DEFAULT_TIMEOUT,
 * an hour unless the operator set it), which a caller's own value replaces. Capped so that a
 * caller cannot hold a worker for days; admins are not.
 */
export const MAX_JOB_TIMEOUT_SECONDS = 86_400

/** Throws 400 unless a submit's `timeout` is absent, null, or a number of seconds above 0 and at most MAX_JOB_TIMEOUT_SECONDS. */
function checkTimeout(timeout: unknown): void {
  if (timeout === undefined || timeout === null) return
  if (typeof timeout === 'number' && Number.isFinite(timeout) && timeout > 0 && timeout <= MAX_JOB_TIMEOUT_SECONDS) return
  throw new ApiError(
    'INVALID_PARAMETER_VALUE',
    `Field 'timeout' must be null or a number of seconds above 0 and at most ${MAX_JOB_TIMEOUT_SECONDS} (serve's limit for a non-admin's job).`,
  )
}

/** Throws 403 unless a non-admin may submit this job, 400 when its parameters or timeout are not what serve decides on. */
export async function checkJobSubmit(exchange: Exchange): Promise<void> {
  const name: unknown = exchange.json.job_name
  if (typeof name !== 'string') throw new ApiError('INVALID_PARAMETER_VALUE', "Field 'job_name' must be a string.")
  const job = Object.hasOwn(OPEN, name) ? OPEN[name] : undefined
  if (!job) {
    const why = Object.hasOwn(ADMIN_ONLY_JOBS, name) ? ADMIN_ONLY_JOBS[name] : 'a job function serve does not know'
    throw permissionDenied({rule: `job ${JSON.stringify(name)} admins only: ${why}`})
  }

  const params: unknown = exchange.json.params
  if (params === null || typeof params !== 'object' || Array.isArray(params)) throw new ApiError('INVALID_PARAMETER_VALUE', "Field 'params' must be an object.")
  for (const [key, value] of Object.entries(params)) {
    const declared = Object.hasOwn(job.params, key) ? job.params[key] : undefined
    if (!declared) throw new ApiError('INVALID_PARAMETER_VALUE', `Job ${name} takes no parameter '${key}' (serve passes on only parameters it decides on).`)
    if (!hasType(value, declared.type))
      throw new ApiError(
        'INVALID_PARAMETER_VALUE',
        `Parameter 'params.${key}' of job ${name} must be ${declared.type === 'strings' ? 'a list of strings' : `a ${declared.type}`}.`,
      )
  }

  for (const [key, {required}] of Object.entries(job.params)) {
    if (required && !Object.hasOwn(params, key)) throw new ApiError('INVALID_PARAMETER_VALUE', `Missing parameter 'params.${key}' of job ${name}.`)
  }

  checkTimeout(exchange.json.timeout)

  await exchange.access.enforce(job.checks, exchange.params)
  await job.special?.(exchange, params as Json)
}
