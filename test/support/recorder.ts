/** A loopback HTTP(S) server for client tests that records every request it answers. */
import {type IncomingMessage, type Server, type ServerResponse} from 'node:http'

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
