/**
 * The AI gateway as MLflow 3.17's basic-auth app decides it, beyond what the route table states
 * field by field: its three resource types (endpoints route to model definitions, which hold a
 * secret), the checks on where an endpoint logs its usage, and what a non-admin's answers are
 * stripped of (rows of a listing the caller cannot read, and the model definitions and secrets a
 * DENY hides inside an endpoint or definition they may read).
 */
import {UpstreamError, type UpstreamResponse} from '../proxy.js'
import {ApiError, permissionDenied} from '../responses.js'
import {type Access} from './access.js'
import {type Exchange, type Json, parseAnswer} from './exchange.js'
import {redactMcp} from './mcp.js'
import {type GatewayType, type Redaction} from './route-table.js'

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

const isObject = (value: unknown): value is Json => value !== null && typeof value === 'object' && !Array.isArray(value)
const objects = (value: unknown): Json[] => (Array.isArray(value) ? value.filter((item) => isObject(item)) : [])
const text = (value: unknown): string | undefined => (typeof value === 'string' && value !== '' ? value : undefined)

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

/**
 * An endpoint's model mappings without the model definitions and secrets a DENY hides from the
 * caller: a denied definition goes whole, a denied secret leaves its definition without the
 * secret's id and name. Changes the mappings in place.
 */
function withholdMappings(access: Access, mappings: Json[]): void {
  for (const mapping of mappings) {
    const definition = isObject(mapping.model_definition) ? mapping.model_definition : undefined
    const definitionId = text(mapping.model_definition_id) ?? text(definition?.model_definition_id)
    if (definitionId !== undefined && !access.can('not_denied', 'gateway_model_definition', definitionId)) {
      delete mapping.model_definition
      delete mapping.model_definition_id
      continue
    }

    if (definition) withholdSecret(access, definition)
  }
}

/** A model definition without the secret a DENY hides from the caller (its id and name). */
function withholdSecret(access: Access, definition: Json): void {
  const secretId = text(definition.secret_id)
  if (secretId !== undefined && !access.can('not_denied', 'gateway_secret', secretId)) {
    delete definition.secret_id
    delete definition.secret_name
  }
}

/** Keeps the rows of a listing the caller may read (their own rows, else the workspace slot, else the default). */
function keepReadable(access: Access, rows: unknown, type: GatewayType, idField: string): Json[] {
  return objects(rows).filter((row) => {
    const id = text(row[idField])
    return id !== undefined && access.lists(type, id)
  })
}

/**
 * The answer, stripped for a non-admin as MLflow 3.17 strips it (the AI gateway here, MCP servers
 * in mcp.ts); an answer that is not MLflow's JSON is refused.
 */
export async function redactAnswer(redaction: Redaction, exchange: Exchange, answer: UpstreamResponse): Promise<UpstreamResponse> {
  if (answer.status !== 200) return answer
  const body = parseAnswer(answer)
  if (!body) throw new UpstreamError('The MLflow server answered with something serve cannot check for what the caller may see.', 502)
  const {access} = exchange
  switch (redaction) {
    case 'gateway-endpoint': {
      if (isObject(body.endpoint)) withholdMappings(access, objects(body.endpoint.model_mappings))
      break
    }

    case 'gateway-endpoint-mapping': {
      if (isObject(body.mapping)) withholdMappings(access, [body.mapping])
      break
    }

    case 'gateway-endpoints': {
      body.endpoints = keepReadable(access, body.endpoints, 'gateway_endpoint', 'endpoint_id')
      for (const endpoint of body.endpoints as Json[]) withholdMappings(access, objects(endpoint.model_mappings))
      break
    }

    case 'gateway-model-definition': {
      if (isObject(body.model_definition)) withholdSecret(access, body.model_definition)
      break
    }

    case 'gateway-model-definitions': {
      body.model_definitions = keepReadable(access, body.model_definitions, 'gateway_model_definition', 'model_definition_id')
      for (const definition of body.model_definitions as Json[]) withholdSecret(access, definition)
      break
    }

    case 'gateway-secrets': {
      body.secrets = keepReadable(access, body.secrets, 'gateway_secret', 'secret_id')
      break
    }

    case 'gateway-secrets-config': {
      // Whether secrets are encrypted with the default passphrase is the server's security
      // posture: MLflow shows it to admins only.
      delete body.using_default_passphrase
      break
    }

    case 'mcp-endpoint':
    case 'mcp-endpoints':
    case 'mcp-server': {
      redactMcp(redaction, access, body)
      break
    }

    // Not the gateway's, but an answer checked the same way: MLflow refuses a listing of online
    // scoring configurations whole when one is in an experiment the caller cannot read.
    case 'online-scoring-configs': {
      for (const config of objects(body.configs))
        if (typeof config.experiment_id !== 'string' || !access.canReadExperiment(config.experiment_id)) throw permissionDenied()
      return answer
    }

    case 'gateway-invocable-models': {
      // The endpoints the caller may invoke (USE), listed by name as the invocation routes take them.
      const ids = await exchange.access.gatewayEndpointIds()
      body.data = objects(body.data).filter((model) => {
        const id = ids.get(String(model.id))
        return id !== undefined && access.can('use', 'gateway_endpoint', id)
      })
      break
    }
  }

  const data = Buffer.from(JSON.stringify(body))
  return {...answer, body: data}
}
