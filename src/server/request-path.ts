/**
 * A request target's path without its query: what logs and records name (the query may carry
 * anything, a secret too), and what routing reads.
 */
import {type IncomingMessage} from 'node:http'

export function withoutQuery(target: string): string {
  return target.split('?', 1)[0]
}

export function pathOf(request: IncomingMessage): string {
  return withoutQuery(request.url ?? '/')
}
