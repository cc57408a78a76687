/**
 * Reading a GraphQL request for its authorization (graphql.ts): the JSON envelope, the document
 * and the operation graphql-js would execute, the fields of a selection set with fragments
 * followed, and the values of a field's `input` argument with variables resolved. Anything
 * malformed or ambiguous is refused with status 400; the Refusal the GraphQL modules throw is here.
 */
import {
  type DocumentNode,
  type FieldNode,
  type FragmentDefinitionNode,
  GraphQLError,
  Kind,
  type OperationDefinitionNode,
  parse,
  type SelectionSetNode,
  type ValueNode,
  type VariableDefinitionNode,
} from 'graphql'

/** Bounds on the work a hostile document can cause here (MLflow's own limit is 1000 selections). */
const MAX_TOKENS = 20_000
const MAX_SELECTIONS_VISITED = 10_000

/** Why a request is refused; authorizeGraphql turns it into the decision. */
export class Refusal extends Error {
  constructor(
    readonly status: 400 | 403,
    message: string,
  ) {
    super(message)
  }
}

export const invalid = (message: string): Refusal => new Refusal(400, message)
export const forbidden = (message: string): Refusal => new Refusal(403, `Permission denied: ${message}`)

export type Json = Record<string, unknown>

export const isObject = (value: unknown): value is Json => typeof value === 'object' && value !== null && !Array.isArray(value)

/** What reading fields and argument values needs from the document and the request. */
export interface DocumentScope {
  fragments: Map<string, FragmentDefinitionNode>
  variableDefinitions: Map<string, VariableDefinitionNode>
  variables: Json
  selectionsVisited: number
}

/** A request read: its document parsed, and the operation to run. */
export interface ReadRequest {
  document: DocumentNode
  operation: OperationDefinitionNode
  operationName: string | undefined
  query: string
  variables: Json | undefined
}

/** The envelope checked (one object, a query string, variables an object), the document parsed and its operation chosen. */
export function readRequest(request: unknown): ReadRequest {
  // A JSON array is a batch of operations: MLflow does not support it (its handler fails on it).
  if (!isObject(request)) throw invalid('A GraphQL request must be one object with a "query"; batched requests are not supported.')
  const {operationName, query} = request
  if (typeof query !== 'string' || query.trim() === '') throw invalid('The GraphQL request must have a "query" string.')
  if (operationName !== undefined && operationName !== null && typeof operationName !== 'string') throw invalid('"operationName" must be a string.')
  const variables = decodeVariables(request.variables)

  let document: DocumentNode
  try {
    document = parse(query, {maxTokens: MAX_TOKENS})
  } catch (error) {
    if (error instanceof GraphQLError) throw invalid(`Invalid GraphQL document: ${error.message}`)
    throw error
  }

  const operation = selectOperation(document, operationName ?? undefined)
  return {document, operation, operationName: operationName ?? undefined, query, variables}
}

/** The scope the operation's fields are read in (fragments, variables and their definitions). */
export function scopeOf({document, operation, variables}: ReadRequest): DocumentScope {
  return {
    fragments: fragmentsOf(document),
    selectionsVisited: 0,
    variableDefinitions: new Map((operation.variableDefinitions ?? []).map((definition) => [definition.variable.name.value, definition])),
    variables: variables ?? {},
  }
}

/** MLflow hands `variables` to Graphene as they came: an object, or nothing. */
function decodeVariables(raw: unknown): Json | undefined {
  if (raw === undefined || raw === null) return undefined
  if (!isObject(raw)) throw invalid('"variables" must be a JSON object.')
  return raw
}

/** The operation graphql-js would execute: the only one, or the one named by operationName. */
function selectOperation(document: DocumentNode, operationName: string | undefined): OperationDefinitionNode {
  const operations: OperationDefinitionNode[] = []
  for (const definition of document.definitions) {
    if (definition.kind === Kind.OPERATION_DEFINITION) operations.push(definition)
    // Type-system definitions are not executable: the upstream would refuse the document.
    else if (definition.kind !== Kind.FRAGMENT_DEFINITION) throw invalid('Invalid GraphQL document: only operations and fragments are allowed.')
  }

  if (operationName === undefined) {
    if (operations.length === 0) throw invalid('The GraphQL document contains no operation.')
    if (operations.length > 1) throw invalid('Must provide operation name if query contains multiple operations.')
    return operations[0]
  }

  // Duplicate names are invalid GraphQL; refuse rather than guess which one the upstream runs.
  const named = operations.filter((operation) => operation.name?.value === operationName)
  if (named.length === 0) throw invalid(`Unknown operation named "${operationName}".`)
  if (named.length > 1) throw invalid(`There can be only one operation named "${operationName}".`)
  return named[0]
}

function fragmentsOf(document: DocumentNode): Map<string, FragmentDefinitionNode> {
  const fragments = new Map<string, FragmentDefinitionNode>()
  for (const definition of document.definitions) {
    if (definition.kind !== Kind.FRAGMENT_DEFINITION) continue
    if (fragments.has(definition.name.value)) throw invalid(`There can be only one fragment named "${definition.name.value}".`)
    fragments.set(definition.name.value, definition)
  }

  return fragments
}

/**
 * The fields of a selection set with inline fragments and fragment spreads flattened, as
 * graphql-js's collectFields (each fragment once per level, which also stops cycles). Type
 * conditions and @skip/@include are ignored: checking a field that may not run is only stricter.
 */
export function collectFields(
  selectionSet: SelectionSetNode | undefined,
  context: DocumentScope,
  fields: FieldNode[] = [],
  spread = new Set<string>(),
): FieldNode[] {
  for (const selection of selectionSet?.selections ?? []) {
    if (++context.selectionsVisited > MAX_SELECTIONS_VISITED) throw invalid('The GraphQL document is too complex.')
    if (selection.kind === Kind.FIELD) fields.push(selection)
    else if (selection.kind === Kind.INLINE_FRAGMENT) collectFields(selection.selectionSet, context, fields, spread)
    else {
      const name = selection.name.value
      if (spread.has(name)) continue
      spread.add(name)
      const fragment = context.fragments.get(name)
      if (!fragment) throw invalid(`Unknown fragment "${name}".`)
      collectFields(fragment.selectionSet, context, fields, spread)
    }
  }

  return fields
}

/** The key a field has in the response: its alias, else its name. */
export const responseKey = (field: FieldNode): string => field.alias?.value ?? field.name.value

/** How a field is named in messages: `mlflowGetRun`, or `mlflowGetRun (as "a")` when aliased. */
export const label = (field: FieldNode): string => (field.alias ? `${field.name.value} (as "${field.alias.value}")` : field.name.value)

export function singleArgument(field: FieldNode, name: string): {value: ValueNode} | undefined {
  const matching = (field.arguments ?? []).filter((argument) => argument.name.value === name)
  if (matching.length > 1) throw invalid(`GraphQL field ${label(field)} has more than one "${name}" argument.`)
  return matching[0]
}

/** The field's `input` argument, resolved (undefined when absent or null). */
export function inputObject(field: FieldNode, context: DocumentScope): Json | undefined {
  const argument = singleArgument(field, 'input')
  const input = argument ? valueOf(argument.value, context) : undefined
  if (input === undefined || input === null) return undefined
  if (!isObject(input)) throw invalid(`GraphQL field ${label(field)}: input must be an object.`)
  return input
}

/** A String input field; absent, null and '' are undefined (MLflow treats them as not given). */
export function stringInput(field: FieldNode, context: DocumentScope, key: string): string | undefined {
  const value = inputObject(field, context)?.[key]
  if (value === undefined || value === null || value === '') return undefined
  if (typeof value !== 'string') throw invalid(`GraphQL field ${label(field)}: input.${key} must be a string.`)
  return value
}

/** A [String] input field; a single value counts as a list of one, as GraphQL input coercion does. */
export function stringList(value: unknown, field: FieldNode, key: string): string[] {
  if (value === undefined || value === null) return []
  const list = Array.isArray(value) ? value : [value]
  if (!list.every((item) => typeof item === 'string')) throw invalid(`GraphQL field ${label(field)}: input.${key} must be a list of strings.`)
  return list as string[]
}

/** The JS value of an argument value, variables resolved (provided value, else the default). */
function valueOf(node: ValueNode, context: DocumentScope): unknown {
  switch (node.kind) {
    case Kind.VARIABLE: {
      const name = node.name.value
      const definition = context.variableDefinitions.get(name)
      if (!definition) throw invalid(`Variable "$${name}" is not defined by the operation.`)
      if (Object.hasOwn(context.variables, name)) return context.variables[name]
      return definition.defaultValue ? valueOf(definition.defaultValue, context) : undefined
    }

    case Kind.STRING:
    case Kind.ENUM: {
      return node.value
    }

    case Kind.INT:
    case Kind.FLOAT: {
      return Number(node.value)
    }

    case Kind.BOOLEAN: {
      return node.value
    }

    case Kind.NULL: {
      return null
    }

    case Kind.LIST: {
      return node.values.map((item) => valueOf(item, context))
    }

    case Kind.OBJECT: {
      // Own properties only, so that a field named __proto__ is data, not a prototype.
      const object: Json = {}
      for (const objectField of node.fields) {
        const name = objectField.name.value
        if (Object.hasOwn(object, name)) throw invalid(`Input field "${name}" is given more than once.`)
        Object.defineProperty(object, name, {configurable: true, enumerable: true, value: valueOf(objectField.value, context), writable: true})
      }

      return object
    }
  }
}
