/**
 * What a non-admin's GraphQL request becomes on its way through serve (graphql.ts): the request
 * forwarded (narrowed experiment ids in its variables or reprinted document), and the upstream's
 * answer with the model versions of unreadable registered models removed.
 */
import {type DocumentNode, print, visit} from 'graphql'

import {isObject, type Json} from './graphql-document.js'
import {type Context} from './graphql-root-fields.js'

/** What is forwarded upstream (as a JSON body). */
export interface GraphqlRequest {
  query: string
  variables?: Record<string, unknown>
  operationName?: string
}

/** The request to forward: the client's own query and variables, unless narrowing rewrote them. */
export function forwardedRequest(
  original: {document: DocumentNode; operationName: string | undefined; query: string; variables: Json | undefined},
  context: Context,
): GraphqlRequest {
  const {document, operationName, variables} = original
  // The document is reprinted only when a literal list was narrowed; otherwise forwarded verbatim.
  const query = context.listRewrites.size === 0 ? original.query : print(visit(document, {ListValue: (node) => context.listRewrites.get(node)}))
  const forwardedVariables = context.variableOverrides.size === 0 ? variables : {...variables, ...Object.fromEntries(context.variableOverrides)}
  return {
    query,
    ...(forwardedVariables === undefined ? {} : {variables: forwardedVariables}),
    ...(operationName === undefined ? {} : {operationName}),
  }
}

/** The upstream's answer for this caller: versions of registered models it cannot read removed. */
export function filterModelVersions(body: unknown, context: Context): unknown {
  if (!isObject(body) || !isObject(body.data) || context.modelVersionLists.size === 0) return body
  let data: unknown = body.data
  for (const {nameKeys, path} of context.modelVersionLists.values()) {
    const readable = (version: unknown): boolean => {
      if (!isObject(version)) return false
      const names = [...nameKeys].map((key) => version[key]).filter((name) => typeof name === 'string')
      return names.length > 0 && names.every((name) => context.access.canReadRegisteredModel(name))
    }

    data = filterAt(data, path, readable)
  }

  return {...body, data}
}

/** Copies `value` with the list at `path` filtered; lists met on the way (search results) are mapped. */
function filterAt(value: unknown, path: readonly string[], keep: (item: unknown) => boolean): unknown {
  if (Array.isArray(value)) return value.map((item) => filterAt(item, path, keep))
  if (!isObject(value) || !Object.hasOwn(value, path[0])) return value
  const [key, ...rest] = path
  const child = value[key]
  // Anything but a list where the versions should be is dropped (cannot happen from MLflow).
  const filtered = rest.length > 0 ? filterAt(child, rest, keep) : Array.isArray(child) ? child.filter(keep) : null
  return {...value, [key]: filtered}
}
