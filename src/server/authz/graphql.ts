/**
 * Authorization of MLflow's GraphQL endpoint (`/graphql`) for non-admins
 * (docs/mlflow-auth-contract.md, "GraphQL").
 *
 * MLflow 3.8+ checks a handful of root fields in a Graphene middleware. This module reproduces
 * those checks in front of the upstream, from the parsed document alone, and fails closed:
 *
 * - the document must parse and name one executable `query` operation (mutations — MLflow's
 *   `Mutation` type has `mlflowSearchRuns`, `mlflowSearchDatasets` and `testMutation` — and
 *   subscriptions are refused);
 * - its root fields (fragments followed) must be on an allow-list; introspection is refused;
 * - the ids a field reads are resolved from literals, variables or variable defaults and checked;
 *   search fields have their `experimentIds` narrowed to the readable ones, as MLflow does;
 * - model versions the caller may not list are removed from the upstream's answer, and what the
 *   answer names of a denied tier (a run's logged models, a version's run) is blanked, as MLflow does;
 * - a root field the caller may not read is answered `null` (HTTP 200, no error), as MLflow does:
 *   it is forwarded as `__typename` under the same response key and with the same directives (so
 *   it is answered exactly when MLflow would answer it), its arguments and selections dropped, and
 *   serve puts `null` in its place. Nothing of it reaches the upstream but its response key.
 *
 * Malformed or ambiguous requests are refused with status 400. The upstream still
 * validates the forwarded document against its schema; nothing here needs the schema, so new MLflow
 * fields on result types keep working without changes.
 *
 * The steps live beside this module: reading the request (graphql-document.ts), checking the root
 * fields (graphql-root-fields.ts), the request forwarded and the answer filtered (graphql-forward.ts).
 */
import {OperationTypeNode} from 'graphql'

import {forbidden, readRequest, Refusal, scopeOf} from './graphql-document.js'
import {blankSiblings, filterModelVersions, forwardedRequest, type GraphqlRequest, withholdFields} from './graphql-forward.js'
import {checkRootFields, type Context, type GraphqlAccess} from './graphql-root-fields.js'

export type {GraphqlRequest} from './graphql-forward.js'
export type {GraphqlAccess} from './graphql-root-fields.js'

export type GraphqlDecision =
  | {
      allowed: false
      /** 400: malformed, invalid or ambiguous request; 403: permission denied. */
      status: 400 | 403
      message: string
    }
  | {
      allowed: true
      /** The request to forward: the same query, variables possibly narrowed. */
      request: GraphqlRequest
      /** Filters the upstream's JSON answer for this caller (versions it may not list removed, ids of denied tiers blanked). */
      filterResponse(body: unknown): unknown
    }

/**
 * Decides whether a non-admin may send this GraphQL request (`request` is the decoded JSON body,
 * which is all MLflow reads). Exceptions thrown by `access` propagate.
 */
export async function authorizeGraphql(
  request: {query: unknown; variables?: unknown; operationName?: unknown},
  access: GraphqlAccess,
): Promise<GraphqlDecision> {
  try {
    return await decide(request, access)
  } catch (error) {
    if (error instanceof Refusal) return {allowed: false, message: error.message, status: error.status}
    throw error
  }
}

async function decide(request: unknown, access: GraphqlAccess): Promise<GraphqlDecision> {
  const read = readRequest(request)
  const {operation} = read
  if (operation.operation !== OperationTypeNode.QUERY) throw forbidden(`GraphQL ${operation.operation} operations are not allowed.`)

  const context: Context = {
    ...scopeOf(read),
    access,
    listRewrites: new Map(),
    modelVersionLists: new Map(),
    siblingPaths: new Map(),
    runChecks: new Map(),
    variableOverrides: new Map(),
    withheld: new Set(),
  }
  await checkRootFields(operation.selectionSet, context)

  return {
    allowed: true,
    filterResponse: (body) => withholdFields(blankSiblings(filterModelVersions(body, context), context), context),
    request: forwardedRequest(read, context),
  }
}
