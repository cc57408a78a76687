import {type AnswerRewrite} from './answer-rewrite.js'
import {type QueueRelation} from './review-queues.js'

/**
 * What one route-table entry says about a request: who may make it (access), how its body is read
 * (body), and what serve does besides forwarding it (a filter on the answer, an effect after it, or
 * an answer of serve's own). The table itself is route-table.ts.
 */

export type Capability = 'delete' | 'manage' | 'read' | 'update' | 'use'
/** A capability, or `not_denied`: a veto only, met by any level but DENY (what a create may not be denied). */
export type Need = Capability | 'not_denied'

/**
 * A resource a check is made on, and the request field(s) naming it. Each becomes MLflow 3.17's
 * requirements on the caller's role rows (access.ts): a run, logged model or trace is addressed
 * through its experiment (READ there) and decided on its tier (`run *`, …), falling back to the
 * experiment when the caller holds no row on the tier.
 */
export type Resource =
  /** One experiment by id (the field may also be `header.<name>`). `cascade`: a delete reaches every tier it holds. */
  | {cascade?: boolean; experiment: string}
  /** One experiment by name, resolved through the upstream. */
  | {experimentName: string}
  /**
   * Every experiment in a list field; the list must not be empty. `of: 'trace'`: the traces in
   * each (their tier decides); `tiersIf`: when the search may select on assessments, runs or
   * logged models (a filter or order given, or the assessments view), those tiers decide too.
   */
  | {experiments: string; of?: 'trace'; tiersIf?: 'assessments-view' | 'filtered'}
  /** The experiment id leading an mlflow-artifacts path (`<experiment id>/<run id>/artifacts/…`), and the tier the rest names. */
  | {artifactPath: string}
  /** A run's experiment; `run_id` falls back to `run_uuid` as in MLflow. `optional`: only when the field is given. */
  | {optional?: boolean; run: string}
  | {runs: string}
  /** A logged model's experiment. `optional`: the check applies only when the field is given. */
  | {loggedModel: string; optional?: boolean}
  | {loggedModels: string}
  /** A trace's experiment. `ifExists`: the check applies only to a trace that exists. */
  | {ifExists?: boolean; optional?: boolean; trace: string}
  | {traces: string}
  /** Every trace (and its assessments) of the experiment in the field: delete-traces. */
  | {tracesOf: string}
  /** The assessments of the trace in the field; `create`: a new one. */
  | {assessmentsOf: string; create?: boolean}
  /**
   * An evaluation dataset by id: every experiment it is linked to must allow the action, and a
   * dataset linked to none (or that does not exist) is denied. Looked up at each request: links change.
   * `optional`: the check applies only when the field is given.
   */
  | {dataset: string; optional?: boolean}
  /** A sub-resource tier as a whole (`run *`, …): with `not_denied`, what a create may not be denied. */
  | {tier: string}
  /**
   * A registered model or prompt by name, decided in the namespace the stored entity is in.
   * `versions`: the operation reaches its versions (`read`: a version read; `version`: an
   * operation on one version; `alias`: an alias, which must name a readable version; `cascade`:
   * every version, on delete; `artifact`: a version's files).
   */
  | {registeredModel: string; versions?: 'alias' | 'artifact' | 'cascade' | 'read' | 'version'}
  /** The registered model or prompt a create makes (by name; which one from the request's tags). */
  | {newRegisteredModel: string}
  /** A scorer; `read` and `delete` reach its versions (`delete` with a `version` deletes that one only). */
  | {scorer: {experiment: string; name: string}}
  /**
   * An AI gateway secret, endpoint or model definition, by the id in `id`, and/or (endpoints) the
   * name in `name`, looked up through the upstream (a name naming nothing is denied). Both given:
   * both are checked. `optional`: no check when neither is given.
   */
  | {gateway: GatewayType; id?: string; name?: string; optional?: boolean}
  /** Every gateway model definition a list field names (an endpoint's model configs). */
  | {gatewayModelDefinitions: string}
  /**
   * An MCP server, named by the path's `<namespace>/<slug>`, or (`body`) by the `name` a create
   * sends (`*` without one). `versions`: its version tier carries the action, falling back to the
   * server, which must be readable.
   */
  | {mcpServer: 'body' | 'path'; versions?: boolean}
  /**
   * A review queue, by the id in the field or by experiment and name, decided on the queue tier of
   * its experiment (`need`) and what the caller is to the queue (`relation`, review-queues.ts).
   * `managerOnly`: a body field that, given, asks MANAGE (a new owner). A queue that does not
   * exist is denied.
   */
  | {managerOnly?: string; relation?: QueueRelation; reviewQueue: string | {experiment: string; name: string}}
  /** A label schema by the id in the field, decided on its experiment (looked up; one that does not exist is denied). */
  | {labelSchema: string}
  /** An issue by the id in the field, decided on its experiment (looked up; one that does not exist is denied). */
  | {issue: string}

/** The AI gateway's resource types, as MLflow's role rows name them. */
export type GatewayType = 'gateway_endpoint' | 'gateway_model_definition' | 'gateway_secret'

export interface Check {
  need: Need
  on: Resource
}

export type Access =
  /** No login at all: health checks and the UI's static files, as in MLflow. */
  | 'public'
  /** Any authenticated user. */
  | 'authenticated'
  /**
   * Any authenticated user whose client address is loopback; admins from anywhere. For routes
   * MLflow lets only local clients use, judging locality from the client address it is given.
   */
  | 'local-clients'
  | 'admin'
  | Check[]

/**
 * What serve does to the answer of a non-admin's request, or to its body before
 * (docs/mlflow-auth-contract.md, "Search filtering and refill", and "GraphQL").
 */
export type ResponseFilter =
  'experiments' | 'graphql' | 'logged-models' | 'mcp-access-endpoints' | 'mcp-servers' | 'model-versions' | 'registered-models' | 'runs'

/**
 * Store changes after the upstream accepted the request, and the owner a review queue's create
 * records in MLflow; they run for admins too (docs/mlflow-auth-contract.md, "After-request side
 * effects").
 */
export type AfterEffect =
  | `delete-${GatewayType}-grants`
  | `grant-${GatewayType}-creator`
  | 'delete-registered-model-grants'
  | 'delete-mcp-server-grants'
  | 'delete-scorer-grants'
  | 'grant-experiment-creator'
  | 'grant-mcp-server-creator'
  | 'grant-mcp-server-parent-creator'
  | 'grant-registered-model-creator'
  | 'grant-scorer-creator'
  | 'record-job-creator'
  | 'rename-registered-model-grants'
  | 'stamp-review-queue-owner'

/**
 * The operations of MLflow's basic-auth REST API, which serve answers itself (auth-api.ts): users,
 * the per-resource permission endpoints of MLflow up to 3.12 (`permissions/<resource type>/<verb>`),
 * the unified grants of 3.13+, and the roles of 3.14+.
 */
export type AuthOperation =
  | 'grants/get'
  | 'grants/grant'
  | 'grants/list'
  | 'grants/revoke'
  | 'roles/assign'
  | 'roles/create'
  | 'roles/delete'
  | 'roles/get'
  | 'roles/list'
  | 'roles/permissions/add'
  | 'roles/permissions/list'
  | 'roles/permissions/remove'
  | 'roles/permissions/update'
  | 'roles/unassign'
  | 'roles/update'
  | 'roles/users/list'
  | 'tokens/create'
  | 'tokens/list'
  | 'tokens/revoke'
  | 'users/create'
  | 'users/current'
  | 'users/current/permissions'
  | 'users/delete'
  | 'users/get'
  | 'users/list'
  | 'users/roles/list'
  | 'users/update-admin'
  | 'users/update-password'
  | `permissions/${'experiment' | 'registered_model' | 'scorer'}/${'create' | 'delete' | 'get' | 'update'}`

/**
 * A request serve answers without the upstream: an auth API operation, the sign-up form and its
 * submission, and on a path of the auth API Flask's own answers: OPTIONS (the methods allowed), or
 * 405 for a method it does not serve there; and serve's own liveness and readiness (health.ts).
 */
export type LocalAnswer = AuthOperation | 'live' | 'method-not-allowed' | 'options' | 'ready' | 'signup-form' | 'signup-submit'

/**
 * How a request's body is read, when serve needs it:
 * - `stream`: never read; forwarded as it comes (uploads, and routes decided from the query or
 *   path alone);
 * - `json`: read whole (up to 64 MiB) and parsed as the JSON object MLflow's handler will parse;
 *   forwarded as the same bytes, or a narrowed copy;
 * - `auth-json`: the auth API's: read whole (up to 1 MiB), parsed only when declared
 *   application/json, as Flask's `request.json`;
 * - `form`: the sign-up form: read (up to 1 MiB) only when url-encoded;
 * - `raw`: read whole (up to 64 MiB) and left to the special check that decodes it (OTLP); forwarded as the same bytes.
 */
export type BodyPolicy = 'auth-json' | 'form' | 'json' | 'raw' | 'stream'

export interface RouteRule {
  access: Access
  after?: AfterEffect
  /** serve answers the request itself; the upstream never sees it. */
  answer?: LocalAnswer
  /** Default: `json` when a check, filter, after-effect or special check reads a field and the fields come from the body, else `stream`. */
  body?: BodyPolicy
  filter?: ResponseFilter
  /** Fields come from the query even on POST/PUT: the body is data (uploads). */
  params?: 'query'
  /** What MLflow withholds from a non-admin's answer the route let through, after any after-effect (answer-rewrite.ts). */
  rewrite?: AnswerRewrite
  /**
   * Checks on what a request asks the server to read later, which need code rather than a field
   * name (docs/mlflow-auth-contract.md, "Authorization bypass classes", file and URL inputs):
   * model-version sources, an experiment's artifact_location, trace tags that say where a trace's
   * data lives, an assessment that overrides another trace's.
   */
  special?:
    | 'assessment-overrides'
    | 'experiment-artifact-location'
    | 'gateway-endpoint-create'
    | 'gateway-endpoint-update'
    | 'issue-invoke'
    | 'issue-search'
    | 'job-owner'
    | 'job-submit'
    | 'mcp-version-create'
    | 'mcp-version-selected'
    | 'model-version-source'
    | 'otlp-export'
    | 'prompt-optimization-create'
    | 'trace-body'
  /**
   * A rule MLflow's handlers apply to every caller, admins included, from the authenticated user
   * a plain MLflow behind serve never sees (review-queues.ts): a custom queue's name may not be a
   * user's; a review is attributed to its reviewer.
   */
  handlerRule?: 'review-queue-name' | 'reviewer'
  /** Why a route is admin only or open to everyone, for the reader of this table. */
  why?: string
}
