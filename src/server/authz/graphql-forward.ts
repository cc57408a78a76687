/**
 * What a non-admin's GraphQL request becomes on its way through serve (graphql.ts): the request
 * forwarded (narrowed experiment ids in its variables or reprinted document), and the upstream's
 * answer with the model versions of unreadable registered models removed.
 */
import {
  type ASTNode,
  type DefinitionNode,
  type DocumentNode,
  type FieldNode,
  type FragmentDefinitionNode,
  Kind,
  type OperationDefinitionNode,
  print,
  visit,
} from 'graphql'

import {isObject, type Json, responseKey} from './graphql-document.js'
import {type Context, type ModelVersionList} from './graphql-root-fields.js'
import {isPromptTagged} from './resolver.js'

/** What is forwarded upstream (as a JSON body). */
export interface GraphqlRequest {
  query: string
  variables?: Record<string, unknown>
  operationName?: string
}

/** The request to forward: the client's own query and variables, unless narrowing rewrote them. */
export function forwardedRequest(
  original: {document: DocumentNode; operation: OperationDefinitionNode; operationName: string | undefined; query: string; variables: Json | undefined},
  context: Context,
): GraphqlRequest {
  const {document, operationName, variables} = original
  let forwardedVariables = context.variableOverrides.size === 0 ? variables : {...variables, ...Object.fromEntries(context.variableOverrides)}
  let query = original.query
  if (context.withheld.size > 0) {
    const pruned = withoutWithheld(document, original.operation, context)
    query = print(pruned.document)
    if (forwardedVariables !== undefined)
      forwardedVariables = Object.fromEntries(Object.entries(forwardedVariables).filter(([name]) => pruned.variables.has(name)))
  } else if (context.listRewrites.size > 0) {
    // Reprinted only when a literal list was narrowed; otherwise forwarded verbatim.
    query = print(visit(document, {ListValue: (node) => context.listRewrites.get(node)}))
  }

  return {
    query,
    ...(forwardedVariables === undefined ? {} : {variables: forwardedVariables}),
    ...(operationName === undefined ? {} : {operationName}),
  }
}

/**
 * The document with each withheld root field replaced by `__typename` under its response key
 * (its directives kept, so the upstream answers the key exactly when it would have answered the
 * field), literal lists narrowed, and only what the operation still uses: the operation itself,
 * the fragments it reaches, the variables it still reads (an unused one makes the document invalid).
 */
function withoutWithheld(document: DocumentNode, operation: OperationDefinitionNode, context: Context): {document: DocumentNode; variables: Set<string>} {
  const placeholder = (field: FieldNode): FieldNode => ({
    alias: {kind: Kind.NAME, value: responseKey(field)},
    directives: field.directives,
    kind: Kind.FIELD,
    name: {kind: Kind.NAME, value: '__typename'},
  })
  const rewritten = visit(document, {
    Field: (node) => (context.withheld.has(node) ? placeholder(node) : undefined),
    ListValue: (node) => context.listRewrites.get(node),
  })
  const index = document.definitions.indexOf(operation)
  const chosen = rewritten.definitions[index] as OperationDefinitionNode
  const fragments = new Map<string, FragmentDefinitionNode>()
  for (const definition of rewritten.definitions) if (definition.kind === Kind.FRAGMENT_DEFINITION) fragments.set(definition.name.value, definition)

  // The fragments reached from the operation, and the variables read anywhere in them.
  const used = new Set<string>()
  const reached = new Set<string>()
  const pending: ASTNode[] = [chosen]
  while (pending.length > 0) {
    visit(pending.pop()!, {
      FragmentSpread(node) {
        const fragment = fragments.get(node.name.value)
        if (fragment && !reached.has(node.name.value)) {
          reached.add(node.name.value)
          pending.push(fragment)
        }
      },
      Variable(node) {
        used.add(node.name.value)
      },
      // A definition names its variable without reading it.
      VariableDefinition: () => false,
    })
  }

  const operationKept: OperationDefinitionNode = {
    ...chosen,
    variableDefinitions: chosen.variableDefinitions?.filter((definition) => used.has(definition.variable.name.value)),
  }
  const definitions: DefinitionNode[] = [operationKept, ...[...fragments.values()].filter((fragment) => reached.has(fragment.name.value))]
  const variables = new Set((operationKept.variableDefinitions ?? []).map((definition) => definition.variable.name.value))
  return {document: {...rewritten, definitions}, variables}
}

/** The answer with each withheld root field `null`, as MLflow answers a field the caller may not read. */
export function withholdFields(body: unknown, context: Context): unknown {
  if (context.withheld.size === 0 || !isObject(body) || !isObject(body.data)) return body
  const data: Json = {...body.data}
  for (const field of context.withheld) {
    const key = responseKey(field)
    if (Object.hasOwn(data, key)) data[key] = null
  }

  return {...body, data}
}

/** The prompt marker a version's tags carry in the answer, read through the query's response keys; undefined when the answer does not say. */
function versionKind(version: Json, list: ModelVersionList): 'prompt' | 'registered_model' | undefined {
  const [keyKey] = list.tags.keys
  const [valueKey] = list.tags.values
  if (keyKey === undefined || valueKey === undefined) return undefined
  for (const tagsKey of list.tags.list) {
    const tags = version[tagsKey]
    if (Array.isArray(tags)) {
      const asStored = tags.filter((tag) => isObject(tag)).map((tag) => ({key: tag[keyKey], value: tag[valueKey]}))
      return isPromptTagged(asStored) ? 'prompt' : 'registered_model'
    }
  }

  return undefined
}

/**
 * The upstream's answer for this caller: versions it may not list removed (a prompt's by prompt
 * rows, a model's by registered-model rows, the version tier vetoing), as MLflow filters them.
 */
export function filterModelVersions(body: unknown, context: Context): unknown {
  if (!isObject(body) || !isObject(body.data) || context.modelVersionLists.size === 0) return body
  let data: unknown = body.data
  for (const list of context.modelVersionLists.values()) {
    const readable = (version: unknown): boolean => {
      if (!isObject(version)) return false
      const names = [...list.nameKeys].map((key) => version[key]).filter((name) => typeof name === 'string')
      const kind = versionKind(version, list)
      // A version that may be either kind, without tags to tell, must be listable as both.
      const kinds = kind ? [kind] : list.promptsPossible ? (['prompt', 'registered_model'] as const) : (['registered_model'] as const)
      return names.length > 0 && names.every((name) => kinds.every((each) => context.access.listsModelVersion(name, each)))
    }

    data = mapAt(data, list.path, (child) => (Array.isArray(child) ? child.filter(readable) : null))
  }

  return {...body, data}
}

/**
 * The answer with each field naming a resource of a denied tier blanked as MLflow clears it: the
 * field stays (GraphQL answers what was asked), empty: a list `[]`, a string `""`, anything else
 * `null`.
 */
export function blankSiblings(body: unknown, context: Context): unknown {
  const denied = [...context.siblingPaths.values()].filter(({tier}) => context.access.tierDenied(tier))
  if (denied.length === 0 || !isObject(body) || !isObject(body.data)) return body
  let data: unknown = body.data
  for (const {path} of denied) {
    data = mapAt(data, path, (value) => (Array.isArray(value) ? [] : typeof value === 'string' ? '' : null))
  }

  return {...body, data}
}

/** Copies `value` with `change` applied to what is at `path`; lists met on the way (search results) are mapped. */
function mapAt(value: unknown, path: readonly string[], change: (child: unknown) => unknown): unknown {
  if (Array.isArray(value)) return value.map((item) => mapAt(item, path, change))
  if (!isObject(value) || !Object.hasOwn(value, path[0])) return value
  const [key, ...rest] = path
  const child = value[key]
  return {...value, [key]: rest.length > 0 ? mapAt(child, rest, change) : change(child)}
}
