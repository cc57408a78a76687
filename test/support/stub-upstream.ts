/** A stand-in upstream on loopback that answers every request `200 {}` once its body is read. */
import {once} from 'node:events'
import {createServer} from 'node:http'

export async function startStubUpstream(): Promise<{close: () => Promise<void>; url: string}> {
  const server = createServer((request, response) => {
    request.resume()
    request.on('end', () => response.writeHead(200, {'content-type': 'application/json'}).end('{}'))
  })
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  return {
    close() {
      server.closeAllConnections()
      return new Promise((resolve) => server.close(() => resolve()))
    },
    url: `http://127.0.0.1:${(server.address() as {port: number}).port}`,
  }
}
