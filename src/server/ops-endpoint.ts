/**
 * serve's operations address (`--metrics-address`): its own small HTTP server, apart from the one
 * clients use, with Prometheus metrics at /metrics and the same liveness and readiness as the main
 * port (/-/live, /-/ready). It answers nothing else and asks for no login: it holds counts by route
 * family, never a user, a path or a secret.
 */
import {createServer, type Server} from 'node:http'
import {type AddressInfo} from 'node:net'

import {ExitCode, UserError} from '../core/errors.js'
import {type Health} from './health.js'
import {type ServeMetrics} from './metrics.js'
import {pathOf} from './request-path.js'
import {sendJson} from './responses.js'

export interface ListenAddress {
  host: string
  port: number
}

/** `PORT`, `HOST:PORT` or `[IPv6]:PORT`; a bare port listens on loopback only. */
export function parseListenAddress(value: string, flag = '--metrics-address'): ListenAddress {
  const match = /^(?:(\[[0-9a-fA-F:.]+\]|[^:[\]]+):)?(\d{1,5})$/.exec(value.trim())
  const port = match ? Number(match[2]) : Number.NaN
  if (!match || port > 65_535) {
    throw new UserError(`${flag} ${value} is not an address to listen on`, {
      code: 'BAD_ADDRESS',
      exit: ExitCode.Usage,
      hint: 'Give PORT (on 127.0.0.1), HOST:PORT or [IPv6]:PORT, e.g. 127.0.0.1:9464.',
    })
  }

  return {host: match[1]?.replace(/^\[|\]$/g, '') ?? '127.0.0.1', port}
}

/**
 * The operations address's health before the store is open (then: `health()`'s): live, and not
 * ready yet. Like every health answer, never cached by anyone between.
 */
export function startingHealth(health: () => Pick<Health, 'answer'> | undefined): Pick<Health, 'answer'> {
  return {
    async answer(kind, response) {
      const ready = health()
      const headers = {'cache-control': 'no-store'}
      if (ready) await ready.answer(kind, response)
      else if (kind === 'live') sendJson(response, 200, {status: 'live'}, headers)
      else sendJson(response, 503, {status: 'starting'}, {...headers, 'retry-after': '1'})
    },
  }
}

export interface OpsEndpoint {
  close(): Promise<void>
  url: string
}

export async function startOpsEndpoint(address: ListenAddress, metrics: ServeMetrics, health: Pick<Health, 'answer'>): Promise<OpsEndpoint> {
  const server: Server = createServer((request, response) => {
    const path = pathOf(request)
    const method = request.method ?? 'GET'
    const answer = async () => {
      if (method !== 'GET' && method !== 'HEAD') {
        sendJson(response, 405, {error_code: 'BAD_REQUEST', message: 'Only GET and HEAD are served here.'}, {allow: 'GET, HEAD'})
        return
      }

      if (path === '/metrics') {
        const {body, contentType} = await metrics.exposition()
        response.writeHead(200, {'cache-control': 'no-store', 'content-length': Buffer.byteLength(body), 'content-type': contentType}).end(body)
      } else if (path === '/-/live' || path === '/-/ready') {
        await health.answer(path === '/-/live' ? 'live' : 'ready', response)
      } else {
        sendJson(response, 404, {error_code: 'ENDPOINT_NOT_FOUND', message: 'Not found: this address serves /metrics, /-/live and /-/ready.'})
      }
    }

    answer().catch((error: unknown) => {
      if (response.headersSent) response.destroy()
      else sendJson(response, 500, {error_code: 'INTERNAL_ERROR', message: `metrics: ${(error as Error).message}`})
    })
  })
  await new Promise<void>((resolve, reject) => {
    server.once('error', (error: NodeJS.ErrnoException) =>
      reject(
        new UserError(`Cannot listen on ${address.host} port ${address.port} for metrics: ${error.message}; nothing was started or created.`, {
          cause: error,
          code: error.code === 'EADDRINUSE' ? 'PORT_IN_USE' : 'CANNOT_LISTEN',
          exit: error.code === 'EADDRINUSE' ? ExitCode.InUse : ExitCode.Usage,
          hint: 'Pass another --metrics-address.',
        }),
      ),
    )
    server.listen(address.port, address.host, () => resolve())
  })
  const bound = server.address() as AddressInfo
  const host = bound.family === 'IPv6' ? `[${bound.address}]` : bound.address
  return {
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve())
        server.closeAllConnections()
      }),
    url: `http://${host}:${bound.port}`,
  }
}
