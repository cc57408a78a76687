/**
 * A request target's path without its query: what logs and records name (the query may carry
 * anything, a secret too), and what routing reads.
 */
import {type IncomingMessage} from 'node:http'

export function withoutQuery(target: string): string {
  const query = target.indexOf('?')
  return query < 0 ? target : target.slice(0, query)
}

export function pathOf(request: IncomingMessage): string {
  return withoutQuery(request.url ?? '/')
}

/**
 * The query's parameters as a URL parser reads them (`new URL(target, base).searchParams`). A query
 * of printable ASCII alone is read as it stands: the parser would only percent-encode a few of
 * its characters (", <, >, ') that reading decodes back, so parsing the whole URL (a cost on every
 * request) changes nothing. Any other query (spaces, controls, tabs the parser drops, non-ASCII)
 * goes through the URL parser itself. `target` is a path (and query) as routed: no fragment.
 */
export function queryParams(target: string): URLSearchParams {
  const start = target.indexOf('?')
  if (start < 0) return new URLSearchParams()
  for (let i = start + 1; i < target.length; i++) {
    const code = target.charCodeAt(i)
    if (code < 0x21 || code > 0x7e) return new URL(target, 'http://serve.invalid').searchParams
  }

  // With its '?': the constructor drops one leading '?', so a query that itself begins with one keeps it.
  return new URLSearchParams(target.slice(start))
}
