/**
 * Starting and stopping `mlflowctl serve`: settings, the store, the admin bootstrap, the HTTP(S)
 * server. Plain module: the command only parses flags and prints.
 */
import {type Server, type ServerResponse} from 'node:http'
import {type AddressInfo} from 'node:net'

import {ExitCode, UserError} from '../lib/errors.js'
import {createApp} from './app.js'
import {ClientAddresses} from './client-address.js'
import {LEGACY_DEFAULT_ADMIN_PASSWORD, loadServeConfig} from './config.js'
import {hashPassword, verifyPassword} from './passwords.js'
import {createUpstream} from './proxy.js'
import {JsonFileStore} from './store/json-store.js'
import {prepareListener, type TlsFiles} from './tls.js'

export interface ServeOptions {
  configPath?: string
  env: NodeJS.ProcessEnv
  host: string
  /** Strict-Transport-Security for HTTPS answers; 'off' for none. */
  hsts?: string
  /** Plain HTTP beyond loopback, on the operator's word. */
  insecureHttp?: boolean
  log: (message: string) => void
  port: number
  proxyTo: URL
  staticPrefix?: string
  storePath: string
  /** HTTPS: certificate and key files, and optionally a CA that client certificates must chain to. */
  tls?: Partial<TlsFiles>
  /** Comma-separated addresses and networks of reverse proxies whose X-Forwarded-* are believed. */
  trustedProxies?: string
}

export interface RunningServe {
  close(): Promise<void>
  /** Re-reads the TLS files for new connections; resolves to a description of the certificate now served. */
  reloadTls(): Promise<string>
  storeLocation: string
  /** Whether serve speaks HTTPS, so has a certificate to reload. */
  tls: boolean
  /** One line on the certificate served, for the log (HTTPS only). */
  tlsSummary?: string
  url: string
}

export async function startServe(options: ServeOptions): Promise<RunningServe> {
  const {log} = options
  // Before anything is read or created: a listener serve may not use stops the start here.
  const listener = await prepareListener({host: options.host, hsts: options.hsts, insecureHttp: options.insecureHttp, tls: options.tls})
  const clients = ClientAddresses.parse(options.trustedProxies)
  for (const warning of listener.warnings) log(`warning: ${warning}`)
  const config = await loadServeConfig({configPath: options.configPath, env: options.env, host: options.host, staticPrefix: options.staticPrefix})
  for (const warning of config.warnings) log(`warning: ${warning}`)
  const store = await JsonFileStore.open(options.storePath, {onError: (error: Error) => log(`error: auth store: ${error.message}`)})
  try {
    const {admin} = config
    const existing = store.getUser(admin.username)
    // Whether the bootstrap admin is left with the old public default password.
    let usesDefault = false
    if (!existing) {
      await store.createUser({isAdmin: true, passwordHash: await hashPassword(admin.password), username: admin.username})
      log(`Created admin user "${admin.username}". Change its password soon: mlflowctl users update-password ${admin.username}`)
      usesDefault = admin.passwordIsDefault
    } else if (await verifyPassword(existing.passwordHash, LEGACY_DEFAULT_ADMIN_PASSWORD)) {
      // An existing user is otherwise never changed. But a configured password replaces the old
      // public default (as MLflow 3.16.1+), so setting MLFLOW_AUTH_ADMIN_PASSWORD after a first start
      // without one, as the warning below says, takes effect.
      if (admin.passwordIsDefault) usesDefault = true
      else {
        await store.updateUser(admin.username, {passwordHash: await hashPassword(admin.password)})
        log(`Replaced MLflow's old default password of "${admin.username}" with the configured admin password.`)
      }
    }

    if (usesDefault) {
      log(`warning: admin "${admin.username}" has MLflow's old default password "password1234", as no other admin password is configured; it is accepted only because serve listens on loopback. Set MLFLOW_AUTH_ADMIN_PASSWORD (it replaces the default at the next start), or change it now: mlflowctl users update-password ${admin.username}`)
    }

    const upstream = createUpstream({client: (request) => clients.resolve(request), upstream: options.proxyTo})
    const app = createApp({config, log, store, upstream})
    // Responses not finished yet, so that stopping can close their keep-alive connections.
    const inFlight = new Set<ServerResponse>()
    let stopping = false
    const {hsts} = listener
    const server = listener.createServer({keepAliveTimeout: 65_000, requestTimeout: 0}, (request, response) => {
      if (stopping) response.setHeader('Connection', 'close')
      if (hsts && clients.resolve(request).protocol === 'https') response.setHeader('Strict-Transport-Security', hsts)
      inFlight.add(response)
      response.once('close', () => {
        inFlight.delete(response)
        // The connection is idle now; while stopping, it must not be kept for a next request
        // (server.close waits for every connection, and a client's pool keeps it open until the
        // 65 s keep-alive timeout).
        if (stopping) setImmediate(() => server.closeIdleConnections())
      })
      app(request, response)
    })
    await listen(server, options.host, options.port)
    const address = server.address() as AddressInfo
    const host = address.family === 'IPv6' ? `[${address.address}]` : address.address
    let closing: Promise<void> | undefined
    return {
      close() {
        // Stop accepting, let in-flight requests finish, then make sure every write is on disk.
        closing ??= (async () => {
          stopping = true
          // Answers not yet begun tell their clients the connection ends with them.
          for (const response of inFlight) if (!response.headersSent) response.setHeader('Connection', 'close')
          await new Promise<void>((resolve) => {
            server.close(() => resolve())
            server.closeIdleConnections()
          })
          await upstream.close()
          await store.close()
        })()
        return closing
      },
      reloadTls: () => listener.reload(),
      storeLocation: store.location,
      tls: listener.protocol === 'https',
      tlsSummary: listener.tlsSummary,
      url: `${listener.protocol}://${host}:${address.port}`,
    }
  } catch (error) {
    await store.close()
    throw error
  }
}

function listen(server: Server, host: string, port: number): Promise<void> {
  return new Promise((resolve, reject) => {
    server.once('error', (error: NodeJS.ErrnoException) => {
      reject(
        error.code === 'EADDRINUSE'
          ? new UserError(`Port ${port} on ${host} is already in use`, {code: 'PORT_IN_USE', exit: ExitCode.Usage, hint: 'Pass another --port.'})
          : error,
      )
    })
    server.listen(port, host, () => resolve())
  })
}
