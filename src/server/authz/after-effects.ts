/**
 * The after-effects stage: store changes that follow from a change MLflow made (the creator's
 * MANAGE, grants moved on a rename or removed on a delete); they run for admins too
 * (docs/mlflow-auth-contract.md, "After-request side effects").
 */
import {scorerResourceId} from '../../mlflow/resources.js'
import {type UpstreamResponse} from '../proxy.js'
import {type Store, type UserRecord} from '../store/store.js'
import {type Exchange, type Json, parseAnswer} from './exchange.js'
import {createdGatewayId, GATEWAY_KINDS} from './gateway.js'
import {mcpServerName} from './mcp.js'
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
  'rename-registered-model-grants':
    'the grants on the registered model were not moved to its new name (those left on the old name would apply to a new model of that name: revoke them)',
  'stamp-review-queue-owner': 'the new review queue has no owner (only managers of its experiment can change or delete it: name one with new_owner)',
}

async function grantManage(store: Store, user: UserRecord, resourceType: string, resourceId: string): Promise<void> {
  const grant = {permission: 'MANAGE', resourceId, resourceType, userId: user.id}
  if (store.getGrant(user.id, resourceType, resourceId)) await store.updateGrant(grant)
  else await store.createGrant(grant)
}

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
): Promise<UpstreamResponse> {
  try {
    if (effect === 'stamp-review-queue-owner') return await stampOwner(exchange, answer)
    await applyAfter(effect, exchange, answer, store)
  } catch (error) {
    const {request, user} = exchange
    log(
      `error: ${request.method} ${exchange.target.split('?', 1)[0]} by ${user.username}: MLflow made the change, but ${AFTER_EFFECT_MISSED[effect]}: ${(error as Error).message}`,
    )
  }

  return answer
}

async function applyAfter(effect: Exclude<AfterEffect, 'stamp-review-queue-owner'>, exchange: Exchange, answer: UpstreamResponse, store: Store): Promise<void> {
  const {params, user} = exchange
  const result = parseAnswer(answer)
  switch (effect) {
    case 'grant-experiment-creator': {
      const id = typeof result?.experiment_id === 'string' ? result.experiment_id : undefined
      if (id) await grantManage(store, user, 'experiment', id)
      return
    }

    case 'grant-registered-model-creator': {
      const name = (result?.registered_model as Json | undefined)?.name
      if (typeof name === 'string') await grantManage(store, user, 'registered_model', name)
      return
    }

    // MLflow keeps prompts as registered models, and these routes serve both: the per-user rows of
    // either type follow the name (only one of them can hold it). Rows of roles an admin made name a
    // model by its name on purpose and stay, as in MLflow.
    case 'rename-registered-model-grants': {
      const [from, to] = [params.required('name'), params.required('new_name')]
      for (const type of NAMED_BY_MODEL_NAME) await store.renameResource(type, from, to)
      return
    }

    case 'delete-registered-model-grants': {
      const name = params.required('name')
      for (const type of NAMED_BY_MODEL_NAME) await store.deleteGrantsForResource(type, name)
      return
    }

    case 'grant-scorer-creator': {
      // Only the first version makes a creator; registering a new version of someone else's
      // scorer (EDIT on the experiment suffices) must not make its author MANAGE.
      if (result?.version !== undefined && String(result.version) !== '1') return
      const id = scorerResourceId(params.required('experiment_id'), params.required('name'))
      if (!store.getGrant(user.id, 'scorer', id)) await store.createGrant({permission: 'MANAGE', resourceId: id, resourceType: 'scorer', userId: user.id})
      return
    }

    // Gateway ids are made by the server and never reused, but rows on a deleted one would still
    // be listed and counted: MLflow removes its users' own rows, and so does serve.
    case 'grant-gateway_endpoint-creator':
    case 'grant-gateway_model_definition-creator':
    case 'grant-gateway_secret-creator': {
      const type = gatewayTypeOf(effect)
      const id = createdGatewayId(type, result)
      if (id) await grantManage(store, user, type, id)
      return
    }

    case 'delete-gateway_endpoint-grants':
    case 'delete-gateway_model_definition-grants':
    case 'delete-gateway_secret-grants': {
      const type = gatewayTypeOf(effect)
      await store.deleteGrantsForResource(type, params.required(GATEWAY_KINDS[type].idField))
      return
    }

    // MLflow gives an MCP server's creator MANAGE when a non-admin creates it (admins need no row),
    // named by the create's body; a version's server only when that version's request made it.
    case 'grant-mcp-server-creator': {
      const name = params.optional('name')
      if (!user.isAdmin && name) await grantManage(store, user, 'mcp_server', name)
      return
    }

    case 'grant-mcp-server-parent-creator': {
      if (exchange.createdMcpServer !== undefined) await grantManage(store, user, 'mcp_server', exchange.createdMcpServer)
      return
    }

    // A server's name can be taken again once it is deleted: rows left on it would apply to the new one.
    case 'delete-mcp-server-grants': {
      await store.deleteGrantsForResource('mcp_server', mcpServerName(params))
      return
    }

    case 'delete-scorer-grants': {
      // With a version, MLflow deletes that version only and the scorer stays: so do its grants.
      if (params.optional('version') !== undefined) return
      await store.deleteGrantsForResource('scorer', scorerResourceId(params.required('experiment_id'), params.required('name')))
    }
  }
}
