/**
 * Checks on what a request asks the server to read or write later, which need code rather than a
 * field name (the route table's `special`; docs/mlflow-auth-contract.md, "Authorization bypass
 * classes", file and URL inputs). Non-admins only.
 */
import {ApiError, permissionDenied} from '../responses.js'
import {type Access} from './access.js'
import {type Exchange, type Json} from './exchange.js'
import {checkEndpointExperiment} from './gateway.js'
import {checkIssueInvoke, checkJobSubmit} from './job-submit.js'
import {checkVersionCreate, checkVersionSelected} from './mcp.js'
import {readModelVersionSource} from './model-version-source.js'
import {MAX_OTLP_TRACES, readOtlpExport} from './otlp.js'
import {checkOptimizationCreate} from './prompt-optimization.js'
import {promptMarker} from './resolver.js'

/** The route's special check, if it has one; throws MLflow's refusal. */
export async function checkSpecial(exchange: Exchange): Promise<void> {
  switch (exchange.match.rule.special) {
    // A job has no experiment: who submitted it is the boundary, as in MLflow 3.17. A job serve
    // has no record of (unknown, or submitted past serve) is refused, as MLflow refuses a job
    // without a creator or that does not exist.
    case 'job-owner': {
      const jobId = exchange.params.required('path.job_id')
      if (!exchange.access.ownsJob(jobId)) throw permissionDenied()
      return
    }

    // A submit by function name: decided per function (job-submit.ts).
    case 'job-submit': {
      await checkJobSubmit(exchange)
      return
    }

    case 'model-version-source': {
      await checkModelVersionSource(exchange)
      return
    }

    case 'experiment-artifact-location': {
      if (exchange.params.optional('artifact_location')) {
        throw new ApiError(
          'PERMISSION_DENIED',
          "Permission denied: only admins can choose an experiment's artifact_location (the server would write and read there for its runs).",
        )
      }

      return
    }

    case 'trace-body': {
      checkTraceBody(exchange.json)
      return
    }

    case 'gateway-endpoint-create': {
      await checkEndpointExperiment(exchange, 'create')
      return
    }

    case 'gateway-endpoint-update': {
      await checkEndpointExperiment(exchange, 'update')
      return
    }

    case 'mcp-version-create': {
      await checkVersionCreate(exchange)
      return
    }

    case 'mcp-version-selected': {
      checkVersionSelected(exchange)
      return
    }

    case 'otlp-export': {
      await checkOtlpExport(exchange)
      return
    }

    // MLflow parses the filter to see whether it selects on an issue's run; serve does not parse
    // the filter grammar: any mention counts.
    case 'issue-search': {
      const filter = exchange.params.optional('filter_string') ?? ''
      if (filter.includes('source_run_id') && !exchange.access.can('not_denied', 'run', '*')) throw permissionDenied()
      return
    }

    case 'issue-invoke': {
      checkIssueInvoke(exchange)
      return
    }

    case 'prompt-optimization-create': {
      await checkOptimizationCreate(exchange)
      return
    }

    case 'assessment-overrides': {
      await checkAssessmentOverride(exchange)
      return
    }

    case undefined: {
      return
    }
  }
}

/**
 * A model version's `source` is read by the server on the caller's behalf (get-artifact,
 * get-download-uri), so it must not name what the caller cannot read
 * (docs/mlflow-auth-contract.md, "Authorization bypass classes", file and URL inputs): the run
 * and logged model it names, the experiment of a served-artifact path, the registered model of a
 * models:/name/version URI. A local path is accepted with a readable run_id or model_id, in whose
 * artifact directory MLflow itself requires it to lie. Other stores (s3://, gs://, …) the server
 * would read with its own credentials: admins only.
 */
async function checkModelVersionSource({access, params}: Exchange): Promise<void> {
  const marker = promptMarker(params.tags('tags'))
  if (marker !== undefined && !(await access.canCreateVersionMarked(params.required('name'), marker))) throw permissionDenied()
  const runId = params.optional('run_id')
  const modelId = params.optional('model_id')
  if (runId && !(await access.canOnRun('read', runId))) throw permissionDenied()
  if (modelId && !(await access.canOnLoggedModel('read', modelId))) throw permissionDenied()
  const source = params.optional('source')
  if (source && !(await sourceReadable(source, access, Boolean(runId || modelId)))) {
    throw new ApiError(
      'PERMISSION_DENIED',
      `Permission denied for model version source ${source}: it must be a runs:/, models:/ or mlflow-artifacts URI of something you can read, or a local path inside the run or logged model given.`,
    )
  }
}

/**
 * An assessment that overrides another marks that one invalid: it must be an assessment of the
 * same trace (which the route's checks already cover), never one of another trace.
 */
async function checkAssessmentOverride({params, upstream, user}: Exchange): Promise<void> {
  const overrides = params.optional('assessment.overrides')
  if (!overrides) return
  const traceId = params.required('path.trace_id')
  const answer = await upstream.request('GET', `/api/3.0/mlflow/traces/${encodeURIComponent(traceId)}/assessments/${encodeURIComponent(overrides)}`, {
    identity: user.username,
  })
  if (answer.status !== 200) throw new ApiError('PERMISSION_DENIED', `Permission denied: assessment ${overrides} is not an assessment of trace ${traceId}.`)
}

/** Whether the caller may read what `source` names, as the upstream will read it (model-version-source.ts). */
async function sourceReadable(source: string, access: Access, hasOwner: boolean): Promise<boolean> {
  const reading = readModelVersionSource(source)
  switch (reading.kind) {
    case 'run': {
      return access.canOnRun('read', reading.runId)
    }

    case 'logged-model': {
      return access.canOnLoggedModel('read', reading.modelId)
    }

    case 'registered-model': {
      return access.canReadRegisteredModel(reading.name)
    }

    case 'experiment-artifacts': {
      return access.canReadExperiment(reading.experimentId)
    }

    case 'local': {
      return hasOwner
    }

    case 'refused': {
      throw new ApiError('INVALID_PARAMETER_VALUE', `Refused model version source ${JSON.stringify(source)}: ${reading.reason}.`)
    }

    case 'other-store': {
      return false
    }
  }
}

/** Trace tags that tell MLflow where a trace's data lives: set by the server, never by a caller. */
const LOCATION_TAG = /^mlflow\.(artifactLocation|trace\.\w*Location)$/i

/**
 * Refuses location tags in a trace tag request, a v2 start or end (tags[]), or a v3 start (tag and
 * metadata maps); and, in a v3 start, assessments that name another trace or override another
 * assessment (MLflow would write them where the caller has no right).
 */
function checkTraceBody(body: Json): void {
  const traceInfo = ((body.trace as Json | undefined)?.trace_info ?? (body.trace as Json | undefined)?.traceInfo) as Json | undefined
  const keys = [
    body.key,
    ...(Array.isArray(body.tags) ? body.tags.map((tag: unknown) => (tag as Json | null)?.key) : []),
    ...Object.keys((traceInfo?.tags as Json | undefined) ?? {}),
    ...Object.keys(((traceInfo?.trace_metadata ?? traceInfo?.traceMetadata) as Json | undefined) ?? {}),
  ]
  const refused = keys.find((key) => typeof key === 'string' && LOCATION_TAG.test(key))
  if (refused)
    throw new ApiError('PERMISSION_DENIED', `Permission denied: the trace tag ${refused} says where the trace's data lives and is set by the server.`)
  const traceId = traceInfo?.trace_id ?? traceInfo?.traceId
  for (const assessment of Array.isArray(traceInfo?.assessments) ? (traceInfo.assessments as unknown[]) : []) {
    const item = (assessment ?? {}) as Json
    const named = item.trace_id ?? item.traceId
    if ((named !== undefined && named !== traceId) || item.overrides !== undefined) {
      throw new ApiError('PERMISSION_DENIED', 'Permission denied: assessments sent with a trace must belong to it and override nothing.')
    }
  }
}

const TRACE_TAG_PREFIX = 'mlflow.traceTag.'

/**
 * What an OTLP export writes beyond new traces in the experiment of its header (otlp.ts): spans
 * into existing traces, wherever they are (EDIT on each), trace tags from span attributes (never
 * the location tags), and links of its traces to the run of an `x-mlflow-run-id` header (EDIT on
 * the run, as linking traces to a run asks).
 */
async function checkOtlpExport({access, body = Buffer.alloc(0), params, request}: Exchange): Promise<void> {
  const spans = readOtlpExport(body, request.headers['content-type'], request.headers['content-encoding'])
  const tag = spans.attributeKeys.find((key) => key.startsWith(TRACE_TAG_PREFIX) && LOCATION_TAG.test(key.slice(TRACE_TAG_PREFIX.length)))
  if (tag)
    throw new ApiError(
      'PERMISSION_DENIED',
      `Permission denied: the span attribute ${tag} sets a trace tag that says where the trace's data lives, which the server sets.`,
    )
  // Each existing trace costs a lookup on the upstream.
  if (spans.traceIds.size > MAX_OTLP_TRACES)
    throw new ApiError('BAD_REQUEST', `Invalid OpenTelemetry export: more than ${MAX_OTLP_TRACES} traces in one request; send them in smaller batches.`)
  for (const traceId of spans.traceIds) {
    if (!(await access.canOnTraceIfExists('update', traceId))) throw permissionDenied()
  }

  const runId = params.optional('header.x-mlflow-run-id')
  if (runId && !(await access.canOnRun('update', runId))) throw permissionDenied()
}
