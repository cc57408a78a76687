/** A loopback HTTP(S) server for client tests that records every request it answers. */
import {createServer, type IncomingMessage, type Server, type ServerResponse} from 'node:http'

export interface Seen {
  body: string
  headers: IncomingMessage['headers']
  method: string
  url: string
}

/** Answers one request, once its whole body is in; `attempt` counts requests from 1. */
export type Handler = (request: IncomingMessage, response: ServerResponse, body: string, attempt: number) => void

export interface TestServer {
  close(): Promise<void>
  seen: Seen[]
  url: string
}

/** Starts `server` (node:http or node:https) on a free loopback port, answering with `handler`. */
export async function listen(server: Server, handler: Handler, scheme: 'http' | 'https'): Promise<TestServer> {
  const seen: Seen[] = []
  server.on('request', (request: IncomingMessage, response: ServerResponse) => {
    const chunks: Buffer[] = []
    request.on('data', (chunk: Buffer) => chunks.push(chunk))
    request.on('end', () => {
      const body = Buffer.concat(chunks).toString('utf8')
      seen.push({body, headers: request.headers, method: request.method!, url: request.url!})
      handler(request, response, body, seen.length)
    })
  })
  await new Promise<void>((resolve) => {
    server.listen(0, '127.0.0.1', resolve)
  })
  const {port} = server.address() as {port: number}
  return {
    async close() {
      server.closeAllConnections()
      await new Promise((resolve) => {
        server.close(resolve)
      })
    },
    seen,
    url: `${scheme}://127.0.0.1:${port}`,
  }
}

export function json(response: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  response.writeHead(status, {'content-type': 'application/json', ...headers}).end(JSON.stringify(body))
}

/**
 * A scripted server for command tests on loopback: `route` picks each request's handler by its
 * method and path (without the query), and may note the request; one it has no handler for gets
 * the HTML 404 of a server without that endpoint.
 */
export function scriptedServer(route: (request: IncomingMessage, path: string) => Handler | undefined): Promise<TestServer> {
  return listen(
    createServer(),
    (request, response, body, attempt) => {
      const handler = route(request, new URL(request.url!, 'http://x').pathname)
      if (handler) handler(request, response, body, attempt)
      else response.writeHead(404, {'content-type': 'text/html'}).end('<!doctype html><title>404 Not Found</title>')
    },
    'http',
  )
}
