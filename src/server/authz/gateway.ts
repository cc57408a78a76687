/**
 * The AI gateway as MLflow 3.17's basic-auth app decides it, beyond what the route table states
 * field by field: its three resource types (endpoints route to model definitions, which hold a
 * secret) and the checks on where an endpoint logs its usage. What a non-admin's gateway answers
 * are stripped of is in answer-rewrite.ts, with every other answer rewrite.
 */
import {ApiError, permissionDenied} from '../responses.js'
import {type Exchange, type Json} from './exchange.js'
import {type GatewayType} from './route-table.js'

/** Where each gateway type's id is: the request field naming it, and the object a create answers with. */
export const GATEWAY_KINDS: Record<GatewayType, {answerKey: string; idField: string}> = {
  gateway_endpoint: {answerKey: 'endpoint', idField: 'endpoint_id'},
  gateway_model_definition: {answerKey: 'model_definition', idField: 'model_definition_id'},
  gateway_secret: {answerKey: 'secret', idField: 'secret_id'},
}

/** The id of what a gateway create made, from MLflow's answer. */
export function createdGatewayId(type: GatewayType, answer: Json | undefined): string | undefined {
  const id = (answer?.[GATEWAY_KINDS[type].answerKey] as Json | undefined)?.[GATEWAY_KINDS[type].idField]
  return typeof id === 'string' && id !== '' ? id : undefined
}

/**
 * A boolean field of the body as protobuf's JSON parser takes it: undefined when absent; anything
 * but a JSON boolean is refused here, as MLflow's parser refuses it.
 */
function flag(json: Json, name: string, camel: string): boolean | undefined {
  if (Object.hasOwn(json, name) && Object.hasOwn(json, camel))
    throw new ApiError('INVALID_PARAMETER_VALUE', `Field '${name}' is given twice, as '${name}' and '${camel}'.`)
  const value = Object.hasOwn(json, name) ? json[name] : json[camel]
  if (value === undefined || value === null) return undefined
  if (typeof value !== 'boolean') throw new ApiError('INVALID_PARAMETER_VALUE', `Field '${name}' must be true or false.`)
  return value
}

/**
 * An endpoint's usage tracking logs to the experiment it names, or to one MLflow creates: a DENY
 * on that experiment (or on every experiment, for the one to be made) vetoes it. A create tracks
 * usage unless told not to; an update only when it names an experiment, or turns tracking on for
 * an endpoint that has none yet.
 */
export async function checkEndpointExperiment(exchange: Exchange, operation: 'create' | 'update'): Promise<void> {
  const {access, json, params} = exchange
  const experimentId = params.optional('experiment_id') ?? ''
  const tracking = flag(json, 'usage_tracking', 'usageTracking')
  let vetoed: string | undefined
  if (experimentId !== '') vetoed = experimentId
  else if (operation === 'create' ? tracking !== false : tracking === true) {
    const attached = operation === 'update' ? await exchange.access.endpointExperiment(params.required('endpoint_id')) : undefined
    if (!attached) vetoed = '*'
  }

  if (vetoed !== undefined && !access.can('not_denied', 'experiment', vetoed)) throw permissionDenied()
}
