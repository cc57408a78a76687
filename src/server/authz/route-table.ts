/**
 * Every route MLflow's tracking server serves, and what a non-admin needs to call it. This is the
 * one place serve's authorization is decided; a route missing here is denied to non-admins.
 *
 * The decisions follow MLflow's basic-auth app (docs/mlflow-auth-contract.md, "Route permissions"):
 * experiments, runs, logged models, traces, metrics and artifacts need a capability on the
 * experiment; registered models, versions, aliases and tags on the registered model (by name);
 * scorers on the scorer; the AI gateway on its secrets, model definitions and endpoints; MCP
 * servers on the server and its version tier; evaluation datasets on every experiment they are
 * linked to; review queues on their tier in the experiment and what the caller is to the queue;
 * label schemas and issues on their experiment; a prompt optimization job's create and search on
 * its experiment and what its configuration names; a job submitted by function name per function,
 * one job by its submitter. Families MLflow gates with rules serve does not keep (webhooks,
 * workspaces, the assistant but what every UI page reads) are admin only.
 *
 * The same table holds what serve answers itself (`answer`): MLflow's basic-auth REST API and its
 * sign-up page, so one lookup routes every request.
 *
 * Field names are MLflow's proto names. They are read as MLflow reads them (see request-params.ts):
 * from the query for GET, from the JSON body otherwise, unless the rule says `params: 'query'`;
 * `path.x` is the path parameter `<x>`.
 */

import {LEGACY_PERMISSION_ENDPOINTS, RESOURCE_TYPES} from '../../mlflow/resources.js'
import {type QueueRelation} from './review-queues.js'
import {type AuthOperation, type BodyPolicy, type Check, type GatewayType, type Resource, type RouteRule} from './route-rule.js'

export type {AfterEffect, AuthOperation, BodyPolicy, Capability, Check, GatewayType, LocalAnswer, Need, Resource, RouteRule} from './route-rule.js'

const API2 = ['/api/2.0', '/ajax-api/2.0']
const API3 = ['/api/3.0', '/ajax-api/3.0']
const API23 = [...API2, ...API3]
const AJAX2 = ['/ajax-api/2.0']
const AJAX3 = ['/ajax-api/3.0']
/** Routes MLflow mounts at the root, outside the API prefixes. */
const ROOT = ['']

const read = (on: Resource): Check[] => [{need: 'read', on}]
const update = (on: Resource): Check[] => [{need: 'update', on}]
const remove = (on: Resource): Check[] => [{need: 'delete', on}]
const experiment = (field = 'experiment_id'): Resource => ({experiment: field})
const run = (field = 'run_id'): Resource => ({run: field})
const loggedModel = (field = 'path.model_id'): Resource => ({loggedModel: field})
const trace = (field: string): Resource => ({trace: field})
const model = (field = 'name'): Resource => ({registeredModel: field})
/** A version of the registered model or prompt named in `name` (or its versions as a whole, see Resource). */
const versions = (how: 'alias' | 'artifact' | 'cascade' | 'read' | 'version'): Resource => ({registeredModel: 'name', versions: how})
/** What a create in an experiment needs: EDIT there, and the tier it creates in not denied. */
const createIn = (tierType: string, on: Resource = experiment()): Check[] => [...update(on), {need: 'not_denied', on: {tier: tierType}}]
const scorer: Resource = {scorer: {experiment: 'experiment_id', name: 'name'}}
/** The traces of the experiments listed in `field`, and what its filter or order may select on. */
const traceSearch = (field: string): Resource => ({experiments: field, of: 'trace', tiersIf: 'filtered'})
const use = (on: Resource): Check[] => [{need: 'use', on}]
const manage = (on: Resource): Check[] => [{need: 'manage', on}]
const labelSchema: Resource = {labelSchema: 'schema_id'}
interface GatewayField {
  field?: string
  name?: string
  optional?: boolean
}
const gateway =
  (type: GatewayType, idField: string) =>
  ({field = idField, name, optional}: GatewayField = {}): Resource => ({gateway: type, id: field, name, optional})
const gatewaySecret = gateway('gateway_secret', 'secret_id')
const gatewayEndpoint = gateway('gateway_endpoint', 'endpoint_id')
const gatewayModelDefinition = gateway('gateway_model_definition', 'model_definition_id')
/** The gateway endpoint an invocation names (by name only). */
const invoked = (nameField: string): Resource => ({gateway: 'gateway_endpoint', name: nameField})
/** The OpenAI- and Anthropic-style gateway routes, which name the endpoint in the body's `model`. */
const PASSTHROUGH_INVOCATIONS = [
  '/gateway/openai/v1/chat/completions',
  '/gateway/openai/v1/embeddings',
  '/gateway/openai/v1/responses',
  '/gateway/anthropic/v1/messages',
  '/gateway/typesafe/v1/systemone',
]
const GUARDRAIL_SCORERS =
  'admin only: these answers carry the scorer a guardrail runs, which MLflow withholds from a caller who may not read it; serve does not strip them'
/** An MCP server by the `<namespace>/<slug>` of its path, and its version tier (the server READ, the tier deciding). */
const mcpServer: Resource = {mcpServer: 'path'}
const mcpVersions: Resource = {mcpServer: 'path', versions: true}
const MCP = '/mlflow/mcp-servers'
const MCP_SERVER = `${MCP}/<namespace>/<slug>`
/** An evaluation dataset by the id in its path. */
const DATASET = '/mlflow/datasets/<dataset_id>'
const dataset: Resource = {dataset: 'path.dataset_id'}
/**
 * Submitting a job by function name (MLflow 3.17: anyone logged in, any allowed function, any
 * parameters). serve decides it per function (job-submit.ts): issue detection and prompt
 * optimization as their dedicated routes, read from the raw parameters (a parameter serve does not
 * know, missing or of the wrong type: 400); the four scorer functions and any name serve does not
 * know stay with admins.
 */
const JOB_SUBMIT =
  'per job function (job-submit.ts): invoke_issue_detection and optimize_prompts as their dedicated routes; invoke_scorer, invoke_genai_evaluate, run_online_trace_scorer and run_online_session_scorer admins only, as their parameters carry serialized scorers the job executor runs (custom @scorer code when the operator allows custom scorers, third-party options that pick the host the judge connects to), which MLflow validates only on its dedicated routes and serve cannot; an unknown function admins only'
const JOBS = 'admin only: as MLflow, no route of its job API'
/**
 * One prompt optimization job: MLflow 3.17 keys its rule for it (the experiment's READ, EDIT to
 * cancel, MANAGE to delete) by the route's template, which no request path equals.
 */
const OPTIMIZATION_JOB = 'admin only, as MLflow 3.17: its rule for one job is never found, and its fail-closed default refuses non-admins'
/** A review queue by the `queue_id` of the request, and what the caller must be to it. */
const queue = (relation?: QueueRelation): Resource => ({relation, reviewQueue: 'queue_id'})

type Entry = [methods: string, path: string, prefixes: readonly string[], rule: RouteRule]

/** An auth API operation: any user who logged in reaches it, and the handler decides from the store. */
const auth = (operation: AuthOperation): RouteRule => ({access: 'authenticated', answer: operation, body: 'auth-json'})

/** The per-resource permission endpoints of MLflow up to 3.12, each `<path>/{create,get,update,delete}`. */
const LEGACY_PERMISSION_ROUTES: Entry[] = RESOURCE_TYPES.flatMap((type) => {
  const {path, prefix} = LEGACY_PERMISSION_ENDPOINTS[type]
  return [
    ['POST', `${path}/create`, [prefix], auth(`permissions/${type}/create`)],
    ['GET', `${path}/get`, [prefix], auth(`permissions/${type}/get`)],
    ['PATCH', `${path}/update`, [prefix], auth(`permissions/${type}/update`)],
    ['DELETE', `${path}/delete`, [prefix], auth(`permissions/${type}/delete`)],
  ] satisfies Entry[]
})

/**
 * [methods, path after the prefix, prefixes, rule]. `<x>` matches one path segment, `<path:x>` the
 * rest of the path, as in Flask. Literal paths win over patterns.
 */
const ENTRIES: Entry[] = [
  // serve's own answers. The auth REST API (auth-api.ts). As Flask routes them, a GET route also
  // takes HEAD, every path takes OPTIONS, and another method on these paths is answered 405.
  ['POST', '/mlflow/users/create', API2, auth('users/create')],
  ['GET', '/mlflow/users/get', API2, auth('users/get')],
  ['PATCH', '/mlflow/users/update-password', API2, auth('users/update-password')],
  ['PATCH', '/mlflow/users/update-admin', API2, auth('users/update-admin')],
  ['DELETE', '/mlflow/users/delete', API2, auth('users/delete')],
  ['GET', '/mlflow/users/list', API2, auth('users/list')],
  ['GET', '/mlflow/users/current', API2, auth('users/current')],
  ...LEGACY_PERMISSION_ROUTES,
  ['POST', '/mlflow/users/permissions/grant', API3, auth('grants/grant')],
  ['POST', '/mlflow/users/permissions/revoke', API3, auth('grants/revoke')],
  ['GET', '/mlflow/users/permissions/get', API3, auth('grants/get')],
  ['GET', '/mlflow/users/permissions/list', API3, auth('grants/list')],
  ['GET', '/mlflow/users/current/permissions', API3, auth('users/current/permissions')],
  // serve's own access tokens (MLflow has no token API): under mlflowctl/, a path MLflow does not use.
  ['POST', '/mlflowctl/tokens/create', API2, auth('tokens/create')],
  ['GET', '/mlflowctl/tokens/list', API2, auth('tokens/list')],
  ['DELETE', '/mlflowctl/tokens/revoke', API2, auth('tokens/revoke')],
  // Roles (MLflow 3.14+): each handler decides who (admins, and administrators of the role's workspace).
  ['POST', '/mlflow/roles/create', API3, auth('roles/create')],
  ['GET', '/mlflow/roles/get', API3, auth('roles/get')],
  ['GET', '/mlflow/roles/list', API3, auth('roles/list')],
  ['PATCH', '/mlflow/roles/update', API3, auth('roles/update')],
  ['DELETE', '/mlflow/roles/delete', API3, auth('roles/delete')],
  ['POST', '/mlflow/roles/permissions/add', API3, auth('roles/permissions/add')],
  ['DELETE', '/mlflow/roles/permissions/remove', API3, auth('roles/permissions/remove')],
  ['GET', '/mlflow/roles/permissions/list', API3, auth('roles/permissions/list')],
  ['PATCH', '/mlflow/roles/permissions/update', API3, auth('roles/permissions/update')],
  ['POST', '/mlflow/roles/assign', API3, auth('roles/assign')],
  ['DELETE', '/mlflow/roles/unassign', API3, auth('roles/unassign')],
  ['GET', '/mlflow/roles/users/list', API3, auth('roles/users/list')],
  ['GET', '/mlflow/users/roles/list', API3, auth('users/roles/list')],
  // MLflow's sign-up page and the form it posts, admins only.
  ['GET HEAD', '/signup', ROOT, {access: 'admin', answer: 'signup-form'}],
  ['POST', '/mlflow/users/create-ui', ['/api/2.0'], {access: 'admin', answer: 'signup-submit', body: 'form'}],

  // Public, as MLflow's is_unprotected_route.
  ['GET', '/health', ROOT, {access: 'public'}],
  ['GET', '/static-files/<path:path>', ROOT, {access: 'public'}],
  ['GET', '/favicon.ico', ROOT, {access: 'public'}],
  // serve's own liveness and readiness, for load balancers and orchestrators: at paths MLflow never
  // routes (/-/), answered by serve, and they say nothing about users or data (health.ts).
  ['GET HEAD', '/-/live', ROOT, {access: 'public', answer: 'live', why: "serve's liveness: nothing but whether it answers"}],
  ['GET HEAD', '/-/ready', ROOT, {access: 'public', answer: 'ready', why: "serve's readiness: which part (store, upstream) is not ready, nothing more"}],
  // The UI shell and server facts: any user who logged in.
  ['GET', '/', ROOT, {access: 'authenticated', why: 'the web UI shell; data comes from the routes below'}],
  ['GET', '/build/<path:filename>', ROOT, {access: 'authenticated', why: 'UI assets'}],
  ['GET', '/version', ROOT, {access: 'authenticated'}],
  ['GET', '/mlflow/server-info', API3, {access: 'authenticated'}],
  ['GET POST', '/mlflow/ui-telemetry', AJAX3, {access: 'authenticated'}],

  // Experiments.
  [
    'POST',
    '/mlflow/experiments/create',
    API2,
    {access: [{need: 'not_denied', on: {tier: 'experiment'}}], after: 'grant-experiment-creator', special: 'experiment-artifact-location'},
  ],
  ['GET', '/mlflow/experiments/get', API2, {access: read(experiment())}],
  ['GET', '/mlflow/experiments/get-by-name', API2, {access: read({experimentName: 'experiment_name'})}],
  // Deleting an experiment reaches everything in it: each tier it holds may veto.
  ['POST', '/mlflow/experiments/delete', API2, {access: remove({cascade: true, experiment: 'experiment_id'})}],
  ['POST', '/mlflow/experiments/restore', API2, {access: remove({cascade: true, experiment: 'experiment_id'})}],
  ['POST', '/mlflow/experiments/update', API2, {access: update(experiment())}],
  ['POST', '/mlflow/experiments/set-experiment-tag', API2, {access: update(experiment())}],
  ['POST', '/mlflow/experiments/delete-experiment-tag', API2, {access: update(experiment())}],
  ['GET POST', '/mlflow/experiments/search', API2, {access: 'authenticated', filter: 'experiments'}],
  ['GET POST', '/mlflow/experiments/search-datasets', AJAX2, {access: read({experiments: 'experiment_ids'})}],
  // MLflow registers this one without the slash after the prefix ("/api/2.0mlflow/…").
  ['GET POST', 'mlflow/experiments/search-datasets', API2, {access: read({experiments: 'experiment_ids'})}],

  // Runs, metrics, run artifacts.
  ['POST', '/mlflow/runs/create', API2, {access: createIn('run')}],
  ['POST', '/mlflow/runs/create-promptlab-run', AJAX2, {access: createIn('run')}],
  ['GET', '/mlflow/runs/get', API2, {access: read(run()), rewrite: 'run'}],
  ['POST', '/mlflow/runs/update', API2, {access: update(run())}],
  ['POST', '/mlflow/runs/delete', API2, {access: remove(run())}],
  ['POST', '/mlflow/runs/restore', API2, {access: remove(run())}],
  ['POST', '/mlflow/runs/log-metric', API2, {access: [...update(run()), {need: 'update', on: {loggedModel: 'model_id', optional: true}}]}],
  ['POST', '/mlflow/runs/log-batch', API2, {access: [...update(run()), {need: 'update', on: {loggedModels: 'metrics[].model_id'}}]}],
  ['POST', '/mlflow/runs/log-model', API2, {access: update(run())}],
  ['POST', '/mlflow/runs/log-parameter', API2, {access: update(run())}],
  ['POST', '/mlflow/runs/set-tag', API2, {access: update(run())}],
  ['POST', '/mlflow/runs/delete-tag', API2, {access: update(run())}],
  ['POST', '/mlflow/runs/log-inputs', API2, {access: [...update(run()), {need: 'update', on: {loggedModels: 'models[].model_id'}}]}],
  ['POST', '/mlflow/runs/outputs', API2, {access: [...update(run()), {need: 'update', on: {loggedModels: 'models[].model_id'}}]}],
  ['POST', '/mlflow/runs/search', API2, {access: 'authenticated', filter: 'runs', rewrite: 'runs'}],
  ['GET', '/mlflow/metrics/get-history', API2, {access: read(run()), rewrite: 'metric-history'}],
  ['GET', '/mlflow/metrics/get-history-bulk', AJAX2, {access: read({runs: 'run_id'})}],
  ['GET', '/mlflow/metrics/get-history-bulk-interval', API2, {access: read({runs: 'run_ids'})}],
  ['GET', '/mlflow/artifacts/list', API2, {access: read(run())}],
  ['POST', '/mlflow/artifacts/presigned-download-url', API2, {access: read(run())}],
  ['POST', '/mlflow/artifacts/presigned-upload-url', API2, {access: [...update(run()), {need: 'update', on: {loggedModel: 'model_id', optional: true}}]}],
  ['GET', '/get-artifact', ROOT, {access: read(run())}],
  ['POST', '/mlflow/upload-artifact', AJAX2, {access: update(run()), params: 'query'}],

  // Artifacts served by the tracking server (--serve-artifacts): the path starts with the experiment id.
  ['GET', '/mlflow-artifacts/artifacts', API2, {access: read({artifactPath: 'path'}), rewrite: 'artifact-list'}],
  ['GET', '/mlflow-artifacts/artifacts/<path:artifact_path>', API2, {access: read({artifactPath: 'path.artifact_path'})}],
  ['PUT', '/mlflow-artifacts/artifacts/<path:artifact_path>', API2, {access: update({artifactPath: 'path.artifact_path'}), params: 'query'}],
  // MLflow 2.12.1+: deleting an artifact needs MANAGE (EDIT could delete before, #11308).
  ['DELETE', '/mlflow-artifacts/artifacts/<path:artifact_path>', API2, {access: [{need: 'manage', on: {artifactPath: 'path.artifact_path'}}], params: 'query'}],
  ['POST', '/mlflow-artifacts/mpu/create/<path:artifact_path>', API2, {access: update({artifactPath: 'path.artifact_path'}), params: 'query'}],
  ['POST', '/mlflow-artifacts/mpu/complete/<path:artifact_path>', API2, {access: update({artifactPath: 'path.artifact_path'}), params: 'query'}],
  ['POST', '/mlflow-artifacts/mpu/abort/<path:artifact_path>', API2, {access: update({artifactPath: 'path.artifact_path'}), params: 'query'}],
  ['GET', '/mlflow-artifacts/presigned/<path:artifact_path>', API2, {access: read({artifactPath: 'path.artifact_path'})}],

  // Registered models, versions, aliases, tags: keyed by the model's name.
  [
    'POST',
    '/mlflow/registered-models/create',
    API2,
    {access: [{need: 'not_denied', on: {newRegisteredModel: 'name'}}], after: 'grant-registered-model-creator'},
  ],
  ['GET', '/mlflow/registered-models/get', API2, {access: read(model()), rewrite: 'registered-model'}],
  ['POST', '/mlflow/registered-models/rename', API2, {access: update(model()), after: 'rename-registered-model-grants', rewrite: 'registered-model'}],
  ['PATCH', '/mlflow/registered-models/update', API2, {access: update(model()), rewrite: 'registered-model'}],
  ['DELETE', '/mlflow/registered-models/delete', API2, {access: remove(versions('cascade')), after: 'delete-registered-model-grants'}],
  ['GET', '/mlflow/registered-models/search', API2, {access: 'authenticated', filter: 'registered-models', rewrite: 'registered-models'}],
  ['GET POST', '/mlflow/registered-models/get-latest-versions', API2, {access: read(versions('read')), rewrite: 'model-versions'}],
  ['POST', '/mlflow/registered-models/set-tag', API2, {access: update(model())}],
  ['DELETE', '/mlflow/registered-models/delete-tag', API2, {access: update(model())}],
  ['POST', '/mlflow/registered-models/alias', API2, {access: update(versions('alias'))}],
  ['DELETE', '/mlflow/registered-models/alias', API2, {access: remove(versions('alias'))}],
  ['GET', '/mlflow/registered-models/alias', API2, {access: read(versions('read')), rewrite: 'model-version'}],
  ['POST', '/mlflow/model-versions/create', API2, {access: update(versions('read')), rewrite: 'model-version', special: 'model-version-source'}],
  ['GET', '/mlflow/model-versions/get', API2, {access: read(versions('read')), rewrite: 'model-version'}],
  ['GET', '/mlflow/model-versions/get-download-uri', API2, {access: read(versions('read'))}],
  ['PATCH', '/mlflow/model-versions/update', API2, {access: update(versions('version')), rewrite: 'model-version'}],
  ['POST', '/mlflow/model-versions/transition-stage', API2, {access: update(versions('version')), rewrite: 'model-version'}],
  ['DELETE', '/mlflow/model-versions/delete', API2, {access: remove(versions('version'))}],
  ['POST', '/mlflow/model-versions/set-tag', API2, {access: update(versions('version'))}],
  // MLflow asks MANAGE here although set-tag needs only EDIT; kept so both servers agree.
  ['DELETE', '/mlflow/model-versions/delete-tag', API2, {access: remove(versions('version'))}],
  ['GET', '/mlflow/model-versions/search', API2, {access: 'authenticated', filter: 'model-versions', rewrite: 'model-versions'}],
  ['GET', '/model-versions/get-artifact', ROOT, {access: read(versions('artifact'))}],

  // Logged models (3.0+): the experiment they belong to.
  [
    'POST',
    '/mlflow/logged-models',
    API2,
    {access: [...createIn('logged_model'), {need: 'read', on: {optional: true, run: 'source_run_id'}}], rewrite: 'logged-model'},
  ],
  ['GET', '/mlflow/logged-models/<model_id>', API2, {access: read(loggedModel()), rewrite: 'logged-model'}],
  // MLflow finalizes the model named in the body, not the one in the path: both are checked.
  [
    'PATCH',
    '/mlflow/logged-models/<model_id>',
    API2,
    {access: [...update(loggedModel()), {need: 'update', on: {loggedModel: 'model_id', optional: true}}], rewrite: 'logged-model'},
  ],
  ['DELETE', '/mlflow/logged-models/<model_id>', API2, {access: remove(loggedModel())}],
  ['PATCH', '/mlflow/logged-models/<model_id>/tags', API2, {access: update(loggedModel()), rewrite: 'logged-model'}],
  ['DELETE', '/mlflow/logged-models/<model_id>/tags/<tag_key>', API2, {access: remove(loggedModel())}],
  ['POST', '/mlflow/logged-models/<model_id>/params', API2, {access: update(loggedModel())}],
  ['GET', '/mlflow/logged-models/<model_id>/artifacts/directories', API2, {access: read(loggedModel())}],
  ['GET', '/mlflow/logged-models/<model_id>/artifacts/files', AJAX2, {access: read(loggedModel())}],
  ['POST', '/mlflow/logged-models/search', API2, {access: 'authenticated', filter: 'logged-models', rewrite: 'logged-models'}],

  // Scorers (3.7+).
  ['POST', '/mlflow/scorers/register', API3, {access: [...createIn('scorer_version'), {need: 'not_denied', on: scorer}], after: 'grant-scorer-creator'}],
  ['GET', '/mlflow/scorers/list', API3, {access: read(experiment()), rewrite: 'scorers'}],
  ['GET', '/mlflow/scorers/get', API3, {access: read(scorer)}],
  ['GET', '/mlflow/scorers/versions', API3, {access: read(scorer)}],
  ['DELETE', '/mlflow/scorers/delete', API3, {access: remove(scorer), after: 'delete-scorer-grants'}],
  // Online scoring: a scorer's configuration is its experiment's (EDIT to set it); a listing by
  // scorer ids is refused whole when one configuration is in an experiment the caller cannot read.
  ['PUT', '/mlflow/scorers/online-config', API3, {access: update(experiment())}],
  ['GET', '/mlflow/scorers/online-configs', API3, {access: 'authenticated', rewrite: 'online-scoring-configs'}],
  ['POST', '/mlflow/scorer/invoke', AJAX3, {access: 'admin', why: "runs judges with the server's model credentials"}],
  ['POST', '/mlflow/genai/evaluate/invoke', AJAX3, {access: 'admin', why: "runs judges with the server's model credentials"}],

  // Traces and assessments: the trace's experiment.
  ['POST', '/mlflow/traces', API2, {access: createIn('trace'), rewrite: 'trace-info-v2', special: 'trace-body'}],
  // A v3 start naming an existing trace id would move that trace into the caller's experiment.
  [
    'POST',
    '/mlflow/traces',
    API3,
    {
      access: [
        ...createIn('trace', experiment('trace.trace_info.trace_location.mlflow_experiment.experiment_id')),
        // Assessments sent with a trace are created with it: their tier may veto (MLflow asks
        // only when some are sent; serve on every v3 start, stricter).
        {need: 'not_denied', on: {tier: 'assessment'}},
        {need: 'update', on: {ifExists: true, trace: 'trace.trace_info.trace_id'}},
      ],
      rewrite: 'trace-v3-start',
      special: 'trace-body',
    },
  ],
  ['PATCH', '/mlflow/traces/<request_id>', API2, {access: update(trace('path.request_id')), rewrite: 'trace-info-v2', special: 'trace-body'}],
  ['GET', '/mlflow/traces/<request_id>/info', API2, {access: read(trace('path.request_id')), rewrite: 'trace-info-v2'}],
  ['PATCH DELETE', '/mlflow/traces/<request_id>/tags', API2, {access: update(trace('path.request_id')), special: 'trace-body'}],
  ['GET', '/mlflow/traces', API2, {access: read(traceSearch('experiment_ids')), rewrite: 'traces-v2'}],
  // v3 trace reads carry the trace's assessments, withheld from the answer when their tier does not give READ.
  ['GET', '/mlflow/traces/<trace_id>', API3, {access: read(trace('path.trace_id')), rewrite: 'trace-v3'}],
  ['GET', '/mlflow/traces/get', API3, {access: read(trace('trace_id')), rewrite: 'trace-v3'}],
  ['PATCH DELETE', '/mlflow/traces/<trace_id>/tags', API3, {access: update(trace('path.trace_id')), special: 'trace-body'}],
  [
    'POST',
    '/mlflow/traces/<trace_id>/assessments',
    API3,
    {
      access: [
        {need: 'update', on: {assessmentsOf: 'path.trace_id', create: true}},
        {need: 'update', on: {optional: true, trace: 'assessment.trace_id'}},
      ],
      special: 'assessment-overrides',
    },
  ],
  ['GET', '/mlflow/traces/<trace_id>/assessments/<assessment_id>', API3, {access: read({assessmentsOf: 'path.trace_id'})}],
  [
    'PATCH',
    '/mlflow/traces/<trace_id>/assessments/<assessment_id>',
    API3,
    {
      access: [
        {need: 'update', on: {assessmentsOf: 'path.trace_id'}},
        {need: 'update', on: {optional: true, trace: 'assessment.trace_id'}},
      ],
      special: 'assessment-overrides',
    },
  ],
  ['DELETE', '/mlflow/traces/<trace_id>/assessments/<assessment_id>', API3, {access: remove({assessmentsOf: 'path.trace_id'})}],
  ['GET', '/mlflow/traces/batchGet', API3, {access: read({traces: 'trace_ids'}), rewrite: 'traces-v3'}],
  ['POST', '/mlflow/traces/batchGetInfos', API3, {access: read({traces: 'trace_ids'}), rewrite: 'trace-infos-v3'}],
  ['POST', '/mlflow/traces/search', API3, {access: read(traceSearch('locations[].mlflow_experiment.experiment_id')), rewrite: 'traces-v3'}],
  ['POST', '/mlflow/traces/calculate-filter-correlation', API3, {access: read(traceSearch('experiment_ids'))}],
  ['POST', '/mlflow/traces/metrics', API3, {access: read({experiments: 'experiment_ids', of: 'trace', tiersIf: 'assessments-view'})}],
  // The experiment's traces and their assessments; request_ids must belong to it, which the store checks.
  ['POST', '/mlflow/traces/delete-traces', API23, {access: remove({tracesOf: 'experiment_id'})}],
  ['POST', '/mlflow/traces/link-prompts', API2, {access: update(trace('trace_id'))}],
  ['POST', '/mlflow/traces/link-to-run', API2, {access: [...update(run()), {need: 'read', on: {traces: 'trace_ids'}}]}],
  ['GET', '/mlflow/get-trace-artifact', [...AJAX2, ...AJAX3], {access: read(trace('request_id'))}],
  ['GET', '/mlflow/get-online-trace-details', API2, {access: 'admin', why: 'Databricks inference tables'}],
  ['GET', '/mlflow/unified-traces', API2, {access: 'admin', why: 'Databricks inference tables'}],

  // The AI gateway (3.10+): secrets (provider keys), model definitions (a provider's model with a
  // secret, used with USE on it), endpoints (routing to model definitions, used with USE on them).
  // Creators get MANAGE; deletes remove the rows on what they delete; answers are stripped of what
  // a DENY hides (gateway.ts).
  ['POST', '/mlflow/gateway/secrets/create', API3, {access: [{need: 'not_denied', on: {tier: 'gateway_secret'}}], after: 'grant-gateway_secret-creator'}],
  ['GET', '/mlflow/gateway/secrets/get', API3, {access: read(gatewaySecret())}],
  ['POST', '/mlflow/gateway/secrets/update', API3, {access: update(gatewaySecret())}],
  ['DELETE', '/mlflow/gateway/secrets/delete', API3, {access: remove(gatewaySecret()), after: 'delete-gateway_secret-grants'}],
  ['GET', '/mlflow/gateway/secrets/list', API3, {access: 'authenticated', rewrite: 'gateway-secrets'}],
  ['GET', '/mlflow/gateway/secrets/config', AJAX3, {access: 'authenticated', rewrite: 'gateway-secrets-config'}],
  ['GET', '/mlflow/gateway/supported-providers', AJAX3, {access: 'authenticated', why: 'static lists for the gateway UI'}],
  ['GET', '/mlflow/gateway/supported-models', AJAX3, {access: 'authenticated', why: 'static lists for the gateway UI'}],
  ['GET', '/mlflow/gateway/provider-config', AJAX3, {access: 'authenticated', why: 'static lists for the gateway UI'}],
  [
    'POST',
    '/mlflow/gateway/model-definitions/create',
    API3,
    {
      access: [
        {need: 'not_denied', on: {tier: 'gateway_model_definition'}},
        {need: 'use', on: gatewaySecret({optional: true})},
      ],
      after: 'grant-gateway_model_definition-creator',
    },
  ],
  ['GET', '/mlflow/gateway/model-definitions/get', API3, {access: read(gatewayModelDefinition()), rewrite: 'gateway-model-definition'}],
  [
    'POST',
    '/mlflow/gateway/model-definitions/update',
    API3,
    {access: [...update(gatewayModelDefinition()), {need: 'use', on: gatewaySecret({optional: true})}], rewrite: 'gateway-model-definition'},
  ],
  ['DELETE', '/mlflow/gateway/model-definitions/delete', API3, {access: remove(gatewayModelDefinition()), after: 'delete-gateway_model_definition-grants'}],
  // The secret_id selector is checked as MLflow does: it may not name a denied secret.
  [
    'GET',
    '/mlflow/gateway/model-definitions/list',
    API3,
    {access: [{need: 'not_denied', on: gatewaySecret({optional: true})}], rewrite: 'gateway-model-definitions'},
  ],
  [
    'POST',
    '/mlflow/gateway/endpoints/create',
    API3,
    {
      access: [
        {need: 'use', on: {gatewayModelDefinitions: 'model_configs[].model_definition_id'}},
        {need: 'not_denied', on: {tier: 'gateway_endpoint'}},
      ],
      after: 'grant-gateway_endpoint-creator',
      rewrite: 'gateway-endpoint',
      special: 'gateway-endpoint-create',
    },
  ],
  ['GET', '/mlflow/gateway/endpoints/get', API3, {access: read(gatewayEndpoint({name: 'name'})), rewrite: 'gateway-endpoint'}],
  [
    'POST',
    '/mlflow/gateway/endpoints/update',
    API3,
    {
      access: [...update(gatewayEndpoint()), {need: 'use', on: {gatewayModelDefinitions: 'model_configs[].model_definition_id'}}],
      rewrite: 'gateway-endpoint',
      special: 'gateway-endpoint-update',
    },
  ],
  ['DELETE', '/mlflow/gateway/endpoints/delete', API3, {access: remove(gatewayEndpoint()), after: 'delete-gateway_endpoint-grants'}],
  // MLflow's handler ignores this listing's secret_id selector, so it is not checked.
  ['GET', '/mlflow/gateway/endpoints/list', API3, {access: 'authenticated', rewrite: 'gateway-endpoints'}],
  [
    'POST',
    '/mlflow/gateway/endpoints/models/attach',
    API3,
    {
      access: [...update(gatewayEndpoint()), {need: 'use', on: gatewayModelDefinition({field: 'model_config.model_definition_id', optional: true})}],
      rewrite: 'gateway-endpoint-mapping',
    },
  ],
  [
    'POST',
    '/mlflow/gateway/endpoints/models/detach',
    API3,
    {access: [...update(gatewayEndpoint()), {need: 'not_denied', on: gatewayModelDefinition({optional: true})}]},
  ],
  ['POST', '/mlflow/gateway/endpoints/bindings/create', API3, {access: update(gatewayEndpoint())}],
  ['DELETE', '/mlflow/gateway/endpoints/bindings/delete', API3, {access: update(gatewayEndpoint())}],
  // Without an endpoint it lists every endpoint's bindings: MLflow keeps that to admins; serve
  // asks non-admins for the endpoint_id (400 without).
  ['GET', '/mlflow/gateway/endpoints/bindings/list', API3, {access: read(gatewayEndpoint())}],
  ['POST', '/mlflow/gateway/endpoints/set-tag', API3, {access: update(gatewayEndpoint())}],
  ['DELETE', '/mlflow/gateway/endpoints/delete-tag', API3, {access: update(gatewayEndpoint())}],
  // Budget policies: any user reads them, admins write them (as MLflow).
  ['POST', '/mlflow/gateway/budgets/create', API3, {access: 'admin', why: 'as MLflow'}],
  ['POST', '/mlflow/gateway/budgets/update', API3, {access: 'admin', why: 'as MLflow'}],
  ['DELETE', '/mlflow/gateway/budgets/delete', API3, {access: 'admin', why: 'as MLflow'}],
  ['GET', '/mlflow/gateway/budgets/get', API3, {access: 'authenticated', why: 'as MLflow'}],
  ['GET', '/mlflow/gateway/budgets/list', API3, {access: 'authenticated', why: 'as MLflow'}],
  ['GET', '/mlflow/gateway/budgets/windows', API3, {access: 'authenticated', why: 'as MLflow'}],
  // Guardrails on their own are MLflow's admin-only routes.
  ['POST', '/mlflow/gateway/guardrails/create', API3, {access: 'admin', why: 'as MLflow'}],
  ['GET', '/mlflow/gateway/guardrails/get', API3, {access: 'admin', why: 'as MLflow'}],
  ['GET', '/mlflow/gateway/guardrails/list', API3, {access: 'admin', why: 'as MLflow'}],
  ['DELETE', '/mlflow/gateway/guardrails/delete', API3, {access: 'admin', why: 'as MLflow'}],
  // Guardrails on an endpoint carry the scorer they run, which MLflow withholds when the caller may
  // not read it; serve does not strip these answers yet.
  ['POST', '/mlflow/gateway/guardrails/add-to-endpoint', API3, {access: 'admin', why: GUARDRAIL_SCORERS}],
  ['DELETE', '/mlflow/gateway/guardrails/remove-from-endpoint', API3, {access: 'admin', why: GUARDRAIL_SCORERS}],
  ['GET', '/mlflow/gateway/guardrails/list-for-endpoint', API3, {access: 'admin', why: GUARDRAIL_SCORERS}],
  ['PATCH', '/mlflow/gateway/guardrails/update-config', API3, {access: 'admin', why: GUARDRAIL_SCORERS}],
  // Invocations: USE on the endpoint, named in the path or (OpenAI-style routes) the body's `model`.
  ['POST', '/gateway/<endpoint_name>/mlflow/invocations', ROOT, {access: use(invoked('path.endpoint_name'))}],
  ...['/gateway/mlflow/v1/chat/completions', ...PASSTHROUGH_INVOCATIONS].map((path): Entry => ['POST', path, ROOT, {access: use(invoked('model'))}]),
  ['POST', '/gateway/gemini/v1beta/models/<endpoint_name>:generateContent', ROOT, {access: use(invoked('path.endpoint_name'))}],
  ['POST', '/gateway/gemini/v1beta/models/<endpoint_name>:streamGenerateContent', ROOT, {access: use(invoked('path.endpoint_name'))}],
  ['POST', '/gateway/proxy/<endpoint_name>/<path:path>', ROOT, {access: use(invoked('path.endpoint_name'))}],
  ['GET', '/gateway/mlflow/v1/models', ROOT, {access: 'authenticated', rewrite: 'gateway-invocable-models'}],
  // MLflow finds no endpoint name on this route and refuses every non-admin (400).
  ['POST', '/gateway/openai/v1/responses/compact', ROOT, {access: 'admin', why: 'as MLflow: it names no endpoint MLflow can check'}],

  // MCP servers (3.16+), named `<namespace>/<slug>`: the server decides what is done to it, its
  // version tier (`mcp_server_version *`) what is done to or through its versions. The creator of a
  // server gets MANAGE (non-admins, as MLflow); deleting it removes the rows on it. Listings keep
  // the servers the caller may read, and every answer withholds the version an access endpoint
  // points at when the version tier is denied (mcp.ts).
  ['POST', MCP, API3, {access: [{need: 'not_denied', on: {mcpServer: 'body'}}], after: 'grant-mcp-server-creator'}],
  ['GET', MCP, API3, {access: 'authenticated', filter: 'mcp-servers'}],
  ['GET', `${MCP}/endpoints`, API3, {access: 'authenticated', filter: 'mcp-access-endpoints', special: 'mcp-version-selected'}],
  ['GET', MCP_SERVER, API3, {access: read(mcpServer), rewrite: 'mcp-server'}],
  ['PATCH', MCP_SERVER, API3, {access: update(mcpServer), rewrite: 'mcp-server'}],
  ['DELETE', MCP_SERVER, API3, {access: [...remove(mcpServer), ...remove(mcpVersions)], after: 'delete-mcp-server-grants'}],
  ['GET', `${MCP_SERVER}/versions`, API3, {access: read(mcpVersions)}],
  // A version of a server that does not exist yet creates the server too (mcp.ts decides which).
  [
    'POST',
    `${MCP_SERVER}/versions`,
    API3,
    {access: 'authenticated', after: 'grant-mcp-server-parent-creator', special: 'mcp-version-create', why: 'decided by the special check'},
  ],
  ['GET', `${MCP_SERVER}/versions/<version>`, API3, {access: read(mcpVersions)}],
  ['PATCH', `${MCP_SERVER}/versions/<version>`, API3, {access: update(mcpVersions)}],
  ['DELETE', `${MCP_SERVER}/versions/<version>`, API3, {access: remove(mcpVersions)}],
  ['POST', `${MCP_SERVER}/versions/<version>/tags`, API3, {access: update(mcpVersions)}],
  ['DELETE', `${MCP_SERVER}/versions/<version>/tags/<path:key>`, API3, {access: remove(mcpVersions)}],
  ['GET', `${MCP_SERVER}/endpoints`, API3, {access: read(mcpServer), rewrite: 'mcp-endpoints', special: 'mcp-version-selected'}],
  ['POST', `${MCP_SERVER}/endpoints`, API3, {access: update(mcpServer), rewrite: 'mcp-endpoint', special: 'mcp-version-selected'}],
  ['GET', `${MCP_SERVER}/endpoints/<endpoint_id>`, API3, {access: read(mcpServer), rewrite: 'mcp-endpoint', special: 'mcp-version-selected'}],
  ['PATCH', `${MCP_SERVER}/endpoints/<endpoint_id>`, API3, {access: update(mcpServer), rewrite: 'mcp-endpoint', special: 'mcp-version-selected'}],
  ['DELETE', `${MCP_SERVER}/endpoints/<endpoint_id>`, API3, {access: [...remove(mcpServer), ...remove(mcpVersions)]}],
  ['POST', `${MCP_SERVER}/tags`, API3, {access: update(mcpServer)}],
  ['DELETE', `${MCP_SERVER}/tags/<path:key>`, API3, {access: [...remove(mcpServer), ...remove(mcpVersions)]}],
  // An alias is the server's (the action is on it) and discloses the version it names (READ there).
  // Its body is not read: its `version` is an MCP version string, not a number.
  ['POST', `${MCP_SERVER}/aliases`, API3, {access: [...update(mcpServer), ...read(mcpVersions)], body: 'stream'}],
  ['GET', `${MCP_SERVER}/aliases/<path:alias>`, API3, {access: [...read(mcpServer), ...read(mcpVersions)]}],
  ['DELETE', `${MCP_SERVER}/aliases/<path:alias>`, API3, {access: [...remove(mcpServer), ...read(mcpVersions)]}],
  [
    'GET POST PUT PATCH DELETE',
    `${MCP}/<path:rest>`,
    API3,
    {access: 'admin', why: 'admin only: an MCP server is named <namespace>/<slug>; any other path names no server MLflow can hold'},
  ],

  // Evaluation datasets (MLflow 3.17's rules): a dataset is decided on every experiment it is linked
  // to (linked to none: denied); a create, a search or a new link on each experiment it names. Only
  // the path decides the routes on one dataset: their bodies are streamed.
  ['POST', '/mlflow/datasets/create', API3, {access: update({experiments: 'experiment_ids'})}],
  ['GET POST', '/mlflow/datasets/search', API3, {access: read({experiments: 'experiment_ids'})}],
  ['GET', DATASET, API3, {access: read(dataset)}],
  ['DELETE', DATASET, API3, {access: remove(dataset), body: 'stream'}],
  ['PATCH', `${DATASET}/tags`, API3, {access: update(dataset), body: 'stream'}],
  ['DELETE', `${DATASET}/tags/<key>`, API3, {access: update(dataset), body: 'stream'}],
  ['GET', `${DATASET}/records`, API3, {access: read(dataset)}],
  ['POST', `${DATASET}/records`, API3, {access: update(dataset), body: 'stream'}],
  ['DELETE', `${DATASET}/records`, API3, {access: update(dataset), body: 'stream'}],
  ['GET', `${DATASET}/experiment-ids`, API3, {access: read(dataset)}],
  // A new link needs EDIT on the experiments it adds too, so no one links an experiment they do not control.
  ['POST', `${DATASET}/add-experiments`, API3, {access: [...update(dataset), ...update({experiments: 'experiment_ids'})]}],
  ['POST', `${DATASET}/remove-experiments`, API3, {access: update(dataset), body: 'stream'}],
  ['GET POST PUT PATCH DELETE', '/mlflow/datasets/<path:rest>', API3, {access: 'admin', why: 'as MLflow: a path under datasets/ that names no route'}],

  // OTLP trace ingest: a trace create in the experiment of the `x-mlflow-experiment-id` header, as
  // MLflow 3.17 decides it; what the spans name besides (existing traces, trace tags, the run of
  // `x-mlflow-run-id`) is checked too (otlp.ts).
  ['POST', '/v1/traces', ROOT, {access: createIn('trace', {experiment: 'header.x-mlflow-experiment-id'}), body: 'raw', special: 'otlp-export'}],
  // Review queues (3.17+): a queue is in an experiment and decided on its `review_queue` tier (the
  // experiment READ, the tier deciding), and on what the caller is to the queue: its owner (who made
  // it: serve names them in MLflow after the create), one of its users, or neither
  // (review-queues.ts). A custom queue may not take a user's name; a review is its reviewer's.
  ['POST', '/mlflow/review-queues/create', API3, {access: createIn('review_queue'), after: 'stamp-review-queue-owner', handlerRule: 'review-queue-name'}],
  ['POST', '/mlflow/review-queues/get-or-create-user', API3, {access: createIn('review_queue')}],
  ['GET', '/mlflow/review-queues/get', API3, {access: [{need: 'read', on: queue('viewer')}]}],
  [
    'GET',
    '/mlflow/review-queues/get-by-name',
    API3,
    {access: [{need: 'read', on: {relation: 'viewer', reviewQueue: {experiment: 'experiment_id', name: 'name'}}}]},
  ],
  // Every queue for EDIT on the tier, else the caller's own (review-queues.ts).
  ['GET', '/mlflow/review-queues/list', API3, {access: read(experiment()), rewrite: 'review-queues'}],
  [
    'POST',
    '/mlflow/review-queues/update',
    API3,
    {access: [{need: 'update', on: {managerOnly: 'new_owner', relation: 'owner', reviewQueue: 'queue_id'}}], handlerRule: 'review-queue-name'},
  ],
  ['POST', '/mlflow/review-queues/delete', API3, {access: update(queue('custom-owner'))}],
  ['POST', '/mlflow/review-queues/items/add', API3, {access: update(queue())}],
  ['POST', '/mlflow/review-queues/items/remove', API3, {access: update(queue('custom-owner'))}],
  ['GET', '/mlflow/review-queues/items/list', API3, {access: [{need: 'read', on: queue('viewer')}]}],
  ['POST', '/mlflow/review-queues/items/set-status', API3, {access: update(queue('member')), handlerRule: 'reviewer'}],

  // Label schemas (3.17+, the questions of a review): decided on their experiment, managed by its managers.
  ['POST', '/mlflow/label-schemas/create', API3, {access: manage(experiment())}],
  ['GET', '/mlflow/label-schemas/get', API3, {access: read(labelSchema)}],
  ['GET', '/mlflow/label-schemas/get-by-name', API3, {access: read(experiment())}],
  ['GET', '/mlflow/label-schemas/list', API3, {access: read(experiment())}],
  ['PATCH', '/mlflow/label-schemas/update', API3, {access: manage(labelSchema)}],
  ['DELETE', '/mlflow/label-schemas/delete', API3, {access: manage(labelSchema)}],

  // Issues (found in an experiment's traces): decided on their experiment; the run an issue names
  // is withheld when `run *` is denied. Detection runs an LLM over traces as a job that makes a run:
  // EDIT on the experiment and `run *` not denied, READ on every trace (MLflow 3.17's handler
  // binds them to the experiment, older ones do not), USE on the secret or endpoint it would use;
  // no secret for openai or azure, whose base URL a secret sets over the server's key (job-submit.ts).
  ['POST', '/mlflow/issues', API3, {access: update(experiment()), rewrite: 'issue'}],
  ['POST', '/mlflow/issues/search', API3, {access: read(experiment()), rewrite: 'issues', special: 'issue-search'}],
  ['GET', '/mlflow/issues/<issue_id>', API3, {access: read({issue: 'path.issue_id'}), rewrite: 'issue'}],
  ['PATCH', '/mlflow/issues/<issue_id>', API3, {access: update({issue: 'path.issue_id'}), rewrite: 'issue'}],
  [
    'POST',
    '/mlflow/issues/invoke',
    AJAX3,
    {
      access: [
        ...createIn('run'),
        ...read({traces: 'trace_ids'}),
        ...use(gatewaySecret({optional: true})),
        ...use({gateway: 'gateway_endpoint', name: 'endpoint_name', optional: true}),
      ],
      after: 'record-job-creator',
      special: 'issue-invoke',
    },
  ],

  // Prompt optimization jobs (MLflow 3.17's rules): a search READ on the experiment; a create EDIT
  // there, as it makes a run in it, and it hands a worker what the configuration names, loaded with
  // no caller identity (MLflow: none of it denied; serve, as the worker uses each): EDIT on the
  // prompt it registers a new version of, READ on the scorers, USE on the reflection model's
  // gateway endpoint (prompt-optimization.ts), and READ on the dataset (MLflow does not check it).
  // One job (read, cancel, delete): admins, as MLflow 3.17 decides in effect.
  [
    'POST',
    '/mlflow/prompt-optimization/jobs',
    API3,
    {
      access: [...createIn('run'), {need: 'not_denied', on: {tier: 'scorer_version'}}, {need: 'read', on: {dataset: 'config.dataset_id', optional: true}}],
      special: 'prompt-optimization-create',
      after: 'record-job-creator',
    },
  ],
  ['GET POST', '/mlflow/prompt-optimization/jobs/search', API3, {access: read(experiment())}],
  ['GET POST PUT PATCH DELETE', '/mlflow/prompt-optimization/jobs/<path:rest>', API3, {access: 'admin', why: OPTIMIZATION_JOB}],
  [
    'GET POST PUT PATCH DELETE',
    '/mlflow/prompt-optimization/<path:rest>',
    API3,
    {access: 'admin', why: 'as MLflow: a path under prompt-optimization/ that names no route'},
  ],

  // GraphQL: MLflow's field-level checks (graphql.ts).
  ['GET POST', '/graphql', ROOT, {access: 'authenticated', filter: 'graphql'}],

  // Families serve leaves to admins.
  ['GET POST', '/mlflow/gateway-proxy', AJAX2, {access: 'admin', why: "forwards to the deployments server with the server's credentials"}],
  // Demo data: MLflow 3.17 lets anyone logged in generate it and admins delete it. Generating
  // writes runs, traces, issues and tags into whatever experiment is named "MLflow Demo", and
  // registers prompts named mlflow-demo…, checking no permission on them: serve keeps it to admins.
  [
    'GET POST PUT PATCH DELETE',
    '/mlflow/demo/<path:rest>',
    AJAX3,
    {access: 'admin', why: 'writes into the experiment and prompts of fixed demo names, whoever may edit them (MLflow: generate anyone, delete admins)'},
  ],
  // Server-side jobs (MLflow 3.17's rules): a job has no experiment, so who submitted it is the
  // boundary. serve records the submitter when MLflow accepts a submit (a plain MLflow records
  // none); one job (read, cancel): its recorded submitter (job-owner; unknown: 403, as MLflow);
  // a search (one unpaged list): the caller's own jobs. A submit: per job function (JOB_SUBMIT).
  ['POST', '/jobs/', AJAX3, {access: 'authenticated', after: 'record-job-creator', special: 'job-submit', why: JOB_SUBMIT}],
  ['GET PUT PATCH DELETE', '/jobs/', AJAX3, {access: 'admin', why: JOBS}],
  ['POST', '/jobs/search', AJAX3, {access: 'authenticated', body: 'json', rewrite: 'jobs'}],
  ['GET', '/jobs/<job_id>', AJAX3, {access: 'authenticated', special: 'job-owner'}],
  ['PATCH', '/jobs/cancel/<job_id>', AJAX3, {access: 'authenticated', special: 'job-owner'}],
  ['GET', '/mlflow/jobs/<job_id>', AJAX3, {access: 'authenticated', special: 'job-owner'}],
  ['PATCH', '/mlflow/jobs/cancel/<job_id>', AJAX3, {access: 'authenticated', special: 'job-owner'}],
  ['GET POST PUT PATCH DELETE', '/mlflow/jobs/<path:rest>', AJAX3, {access: 'admin', why: JOBS}],
  ['GET POST PUT PATCH DELETE', '/jobs/<path:rest>', AJAX3, {access: 'admin', why: JOBS}],
  ['GET POST PUT PATCH DELETE', '/mlflow/webhooks', API2, {access: 'admin', why: 'as MLflow 3.11.1+'}],
  ['GET POST PUT PATCH DELETE', '/mlflow/webhooks/<path:rest>', API2, {access: 'admin', why: 'as MLflow 3.11.1+'}],
  ['GET POST PUT PATCH DELETE', '/mlflow/workspaces', API3, {access: 'admin', why: 'as MLflow'}],
  ['GET POST PUT PATCH DELETE', '/mlflow/workspaces/<path:rest>', API3, {access: 'admin', why: 'as MLflow'}],
  // The web UI reads these two on every page, for anyone logged in, as MLflow lets it (MLflow
  // itself leaves out API keys, and project locations for callers not on its host).
  ['GET', '/mlflow/assistant/config', AJAX3, {access: 'authenticated', why: 'read by every page of the web UI'}],
  ['GET', '/mlflow/assistant/providers', AJAX3, {access: 'authenticated', why: 'read by every page of the web UI'}],
  [
    'GET POST PUT PATCH DELETE',
    '/mlflow/assistant/<path:rest>',
    AJAX3,
    {
      access: 'local-clients',
      why: "runs an LLM agent with the server's credentials: MLflow lets anyone logged in use it, from its own host only (remote clients only with MLFLOW_ENABLE_REMOTE_ASSISTANT, which serve cannot see: admins)",
    },
  ],
]

export interface RouteMatch {
  pathParams: Record<string, string>
  /** The entry's rule, with its body policy always set. */
  rule: RouteRule & {body: BodyPolicy}
  /** The route's template, e.g. `/api/2.0/mlflow/logged-models/<model_id>`, for messages. */
  template: string
}

interface PatternRoute {
  methods: Set<string>
  names: string[]
  regex: RegExp
  rule: RouteMatch['rule']
  template: string
}

/** Routes serve answers itself, by exact method. */
const localRoutes = new Map<string, {rule: RouteMatch['rule']; template: string}>()
/** Paths of the auth API, with the methods each takes: another method there is 405, not an unknown route. */
const strictPaths = new Map<string, string[]>()
const literalRoutes = new Map<string, {rule: RouteMatch['rule']; template: string}>()
const patternRoutes: PatternRoute[] = []
// MLflow's auth hook denies a non-admin any method its table does not list for the path, before
// Flask's routing answers: only admins see the 405, OPTIONS and HEAD answers.
const METHOD_NOT_ALLOWED: RouteMatch['rule'] = {access: 'admin', answer: 'method-not-allowed', body: 'stream'}
const OPTIONS: RouteMatch['rule'] = {access: 'admin', answer: 'options', body: 'stream'}

/** A rule's body policy: read as JSON when a field of the body decides or changes something. */
function withBodyPolicy(rule: RouteRule): RouteMatch['rule'] {
  const needsFields =
    Array.isArray(rule.access) || rule.filter !== undefined || rule.after !== undefined || rule.special !== undefined || rule.handlerRule !== undefined
  return Object.freeze({...rule, body: rule.body ?? (rule.params !== 'query' && needsFields ? 'json' : 'stream')})
}

function addLiteral(routes: Map<string, {rule: RouteMatch['rule']; template: string}>, key: string, value: {rule: RouteMatch['rule']; template: string}): void {
  if (localRoutes.has(key) || literalRoutes.has(key)) throw new Error(`route table: ${key} listed twice`)
  routes.set(key, value)
}

function patternRoute(methods: string, template: string, rule: RouteMatch['rule']): PatternRoute {
  const names: string[] = []
  const source = template
    .split(/(<(?:path:)?\w+>)/)
    .map((part) => {
      const param = /^<(path:)?(\w+)>$/.exec(part)
      if (!param) return part.replaceAll(/[.*+?^${}()|[\]\\]/g, String.raw`\$&`)
      names.push(param[2])
      return param[1] ? '(.+)' : '([^/]+)'
    })
    .join('')
  return {methods: new Set(methods.split(' ')), names, regex: new RegExp(`^${source}$`), rule, template}
}

for (const [methods, path, prefixes, entryRule] of ENTRIES) {
  const rule = withBodyPolicy(entryRule)
  for (const prefix of prefixes) {
    const template = prefix + path
    if (rule.body === 'auth-json') {
      // Flask adds HEAD to a GET route (MLflow then reads its parameters from the empty body).
      addLiteral(localRoutes, `${methods} ${template}`, {rule, template})
      if (methods === 'GET') addLiteral(localRoutes, `HEAD ${template}`, {rule: {...rule, access: 'admin'}, template})
      strictPaths.set(template, [...(strictPaths.get(template) ?? []), ...(methods === 'GET' ? ['GET', 'HEAD'] : [methods])])
    } else if (rule.answer !== undefined) {
      for (const method of methods.split(' ')) addLiteral(localRoutes, `${method} ${template}`, {rule, template})
    } else if (template.includes('<')) {
      patternRoutes.push(patternRoute(methods, template, rule))
    } else {
      for (const method of methods.split(' ')) addLiteral(literalRoutes, `${method} ${template}`, {rule, template})
    }
  }
}

/** The methods an auth API path takes, as Flask lists them in `Allow`. */
export function allowedMethods(path: string): string {
  return [...(strictPaths.get(path) ?? []), 'OPTIONS'].join(', ')
}

/**
 * The rule for a request, or undefined when the table does not know it (denied to non-admins).
 * `path` is canonical (see canonical-path.ts) and without serve's static prefix. Routes serve
 * answers itself match their exact method; the others decide HEAD as GET, as Flask dispatches it.
 */
export function lookupRoute(method: string, path: string): RouteMatch | undefined {
  const local = localRoutes.get(`${method} ${path}`)
  if (local) return {pathParams: {}, ...local}
  if (strictPaths.has(path)) return {pathParams: {}, rule: method === 'OPTIONS' ? OPTIONS : METHOD_NOT_ALLOWED, template: path}
  const verb = method === 'HEAD' ? 'GET' : method
  const literal = literalRoutes.get(`${verb} ${path}`)
  if (literal) return {pathParams: {}, ...literal}
  for (const route of patternRoutes) {
    if (!route.methods.has(verb)) continue
    const match = route.regex.exec(path)
    if (match) return {pathParams: Object.fromEntries(route.names.map((name, index) => [name, match[index + 1]])), rule: route.rule, template: route.template}
  }

  return undefined
}
