/**
 * The after-effects stage: store changes that follow from a change MLflow made (the creator's
 * MANAGE, grants moved on a rename or removed on a delete); they run for admins too
 * (docs/mlflow-auth-contract.md, "After-request side effects").
 */
import {scorerResourceId} from '../../mlflow/resources.js'
import {type AuditSink} from '../audit.js'
import {type UpstreamResponse} from '../proxy.js'
import {withoutQuery} from '../request-path.js'
import {isJobId} from '../store/model.js'
import {type Store, type UserRecord} from '../store/store.js'
import {type Exchange, type Json, parseAnswer} from './exchange.js'
import {createdGatewayId, GATEWAY_KINDS} from './gateway.js'
import {mcpServerName} from './mcp.js'
import {isPromptTagged} from './resolver.js'
import {stampOwner} from './review-queues.js'
import {type AfterEffect, type GatewayType} from './route-table.js'

/** The gateway type a gateway after-effect (`grant-<type>-creator`, `delete-<type>-grants`) is about. */
const gatewayTypeOf = (effect: AfterEffect) => effect.replace(/^(?:delete|grant)-|-(?:creator|grants)$/g, '') as GatewayType

/** Row types whose pattern is a registered model's name. */
const NAMED_BY_MODEL_NAME = ['registered_model', 'prompt'] as const

/** What is missing when an after-effect could not be recorded, for the admin reading the log. */
const AFTER_EFFECT_MISSED: Record<AfterEffect, string> = {
  'delete-gateway_endpoint-grants': 'the grants on the deleted gateway endpoint were not removed',
  'delete-gateway_model_definition-grants': 'the grants on the deleted gateway model definition were not removed',
  'delete-gateway_secret-grants': 'the grants on the deleted gateway secret were not removed',
  'grant-gateway_endpoint-creator': 'its creator was not given MANAGE on the new gateway endpoint',
  'grant-gateway_model_definition-creator': 'its creator was not given MANAGE on the new gateway model definition',
  'grant-gateway_secret-creator': 'its creator was not given MANAGE on the new gateway secret',
  'delete-registered-model-grants': 'the grants on the deleted registered model were not removed (they would apply to a new model of that name: revoke them)',
  'delete-mcp-server-grants': 'the grants on the deleted MCP server were not removed (they would apply to a new server of that name: revoke them)',
  'grant-mcp-server-creator': 'its creator was not given MANAGE on the new MCP server',
  'grant-mcp-server-parent-creator': 'its creator was not given MANAGE on the MCP server made with its first version',
  'delete-scorer-grants': 'the grants on the deleted scorer were not removed (they would apply to a new scorer of that name: revoke them)',
  'grant-experiment-creator': 'its creator was not given MANAGE on the new experiment',
  'grant-registered-model-creator': 'its creator was not given MANAGE on the new registered model',
  'grant-scorer-creator': 'its creator was not given MANAGE on the new scorer',
  'record-job-creator': 'its creator was not recorded (only admins can read or cancel the job)',
  'rename-registered-model-grants':
    'the grants on the registered model were not moved to its new name (those left on the old name would apply to a new model of that name: revoke them)',
  'stamp-review-queue-owner': 'the new review queue has no owner (only managers of its experiment can change or delete it: name one with new_owner)',
}

/** A change to the store an after-effect made, as the audit log records it. */
interface AfterChange {
  operation: 'creator-grant' | 'grants-moved' | 'grants-removed' | 'job-creator'
  target: Record<string, unknown>
  values: Record<string, unknown>
}

async function grantManage(store: Store, user: UserRecord, resourceType: string, resourceId: string): Promise<AfterChange> {
  const grant = {permission: 'MANAGE', resourceId, resourceType, userId: user.id}
  if (store.getGrant(user.id, resourceType, resourceId)) await store.updateGrant(grant)
  else await store.createGrant(grant)
  return creatorGrant(user, resourceType, resourceId)
}

function creatorGrant(user: UserRecord, resourceType: string, resourceId: string): AfterChange {
  return {operation: 'creator-grant', target: {resource_id: resourceId, resource_type: resourceType, username: user.username}, values: {permission: 'MANAGE'}}
}

const grantsRemoved = (resourceType: string, resourceId: string): AfterChange => ({
  operation: 'grants-removed',
  target: {resource_id: resourceId, resource_type: resourceType},
  values: {},
})

/**
 * MLflow has made the change, so its answer is what the client gets even when the store cannot
 * record what follows from it: an error would say the change failed, and clients (MLflow's retry
 * on 5xx too) would repeat a create that then fails as "already exists". The store failing only
 * withholds access (a creator without MANAGE) or leaves grants for an admin to tidy, and the log
 * says which. Returns the answer for the client: MLflow's, or (a review queue's owner named) the
 * queue as it then is.
 */
export async function recordAfter(
  effect: AfterEffect,
  exchange: Exchange,
  answer: UpstreamResponse,
  store: Store,
  log: (message: string) => void,
  audit?: AuditSink,
): Promise<UpstreamResponse> {
  try {
    if (effect === 'stamp-review-queue-owner') return await stampOwner(exchange, answer)
    const change = await applyAfter(effect, exchange, answer, store)
    if (change && audit && exchange.origin) audit.record({...exchange.origin, event: 'change', user: exchange.user.username, ...change})
  } catch (error) {
    const {request, user} = exchange
    log(
      `error: ${request.method} ${withoutQuery(exchange.target)} by ${user.username}: MLflow made the change, but ${AFTER_EFFECT_MISSED[effect]}: ${(error as Error).message}`,
    )
  }

  return answer
}

/** Makes the store change; returns it, or undefined when there was none to make. */
async function applyAfter(
  effect: Exclude<AfterEffect, 'stamp-review-queue-owner'>,
  exchange: Exchange,
  answer: UpstreamResponse,
  store: Store,
): Promise<AfterChange | undefined> {
  const {params, user} = exchange
  const result = parseAnswer(answer)
  switch (effect) {
    case 'grant-experiment-creator': {
      const id = typeof result?.experiment_id === 'string' ? result.experiment_id : undefined
      return id ? grantManage(store, user, 'experiment', id) : undefined
    }

    // MLflow 3.17 grants the creator MANAGE in the namespace of what the answer says was made: a
    // prompt's creator holds the prompt (rows of `registered_model` do not decide on a prompt).
    case 'grant-registered-model-creator': {
      const made = result?.registered_model as Json | undefined
      const kind = isPromptTagged(made?.tags) ? 'prompt' : 'registered_model'
      return typeof made?.name === 'string' ? grantManage(store, user, kind, made.name) : undefined
    }

    // MLflow keeps prompts as registered models, and these routes serve both: the per-user rows of
    // either type follow the name (only one of them can hold it). Rows of roles an admin made name a
    // model by its name on purpose and stay, as in MLflow.
    case 'rename-registered-model-grants': {
      const [from, to] = [params.required('name'), params.required('new_name')]
      for (const type of NAMED_BY_MODEL_NAME) await store.renameResource(type, from, to)
      return {operation: 'grants-moved', target: {resource_id: from, resource_type: 'registered_model'}, values: {resource_id: to}}
    }

    case 'delete-registered-model-grants': {
      const name = params.required('name')
      for (const type of NAMED_BY_MODEL_NAME) await store.deleteGrantsForResource(type, name)
      return grantsRemoved('registered_model', name)
    }

    case 'grant-scorer-creator': {
      // Only the first version makes a creator; registering a new version of someone else's
      // scorer (EDIT on the experiment suffices) must not make its author MANAGE.
      if (result?.version !== undefined && String(result.version) !== '1') return undefined
      const id = scorerResourceId(params.required('experiment_id'), params.required('name'))
      if (store.getGrant(user.id, 'scorer', id)) return undefined
      await store.createGrant({permission: 'MANAGE', resourceId: id, resourceType: 'scorer', userId: user.id})
      return creatorGrant(user, 'scorer', id)
    }

    // Gateway ids are made by the server and never reused, but rows on a deleted one would still
    // be listed and counted: MLflow removes its users' own rows, and so does serve.
    case 'grant-gateway_endpoint-creator':
    case 'grant-gateway_model_definition-creator':
    case 'grant-gateway_secret-creator': {
      const type = gatewayTypeOf(effect)
      const id = createdGatewayId(type, result)
      return id ? grantManage(store, user, type, id) : undefined
    }

    case 'delete-gateway_endpoint-grants':
    case 'delete-gateway_model_definition-grants':
    case 'delete-gateway_secret-grants': {
      const type = gatewayTypeOf(effect)
      const id = params.required(GATEWAY_KINDS[type].idField)
      await store.deleteGrantsForResource(type, id)
      return grantsRemoved(type, id)
    }

    // MLflow gives an MCP server's creator MANAGE when a non-admin creates it (admins need no row),
    // named by the create's body; a version's server only when that version's request made it.
    case 'grant-mcp-server-creator': {
      const name = params.optional('name')
      return !user.isAdmin && name ? grantManage(store, user, 'mcp_server', name) : undefined
    }

    case 'grant-mcp-server-parent-creator': {
      return exchange.createdMcpServer === undefined ? undefined : grantManage(store, user, 'mcp_server', exchange.createdMcpServer)
    }

    // A server's name can be taken again once it is deleted: rows left on it would apply to the new one.
    case 'delete-mcp-server-grants': {
      const name = mcpServerName(params)
      await store.deleteGrantsForResource('mcp_server', name)
      return grantsRemoved('mcp_server', name)
    }

    // MLflow records a job's submitter in its job table only when it authenticates the caller
    // itself; behind serve it records none, so serve keeps who it was, by the job id answered.
    case 'record-job-creator': {
      // issues/invoke answers the job id; a prompt optimization job's create, the job.
      const jobId = result?.job_id ?? (result?.job as Json | undefined)?.job_id
      if (!isJobId(jobId)) return undefined
      await store.recordJobCreator(jobId, user.id)
      return {operation: 'job-creator', target: {job_id: jobId}, values: {username: user.username}}
    }

    case 'delete-scorer-grants': {
      // With a version, MLflow deletes that version only and the scorer stays: so do its grants.
      if (params.optional('version') !== undefined) return undefined
      const id = scorerResourceId(params.required('experiment_id'), params.required('name'))
      await store.deleteGrantsForResource('scorer', id)
      return grantsRemoved('scorer', id)
    }
  }
}
