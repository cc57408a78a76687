/**
 * Starting and stopping `mlflowctl serve`: settings, the store, the admin bootstrap, the HTTP
 * server. Plain module: the command only parses flags and prints.
 */
import {createServer, type Server} from 'node:http'
import {type AddressInfo} from 'node:net'

import {ExitCode, UserError} from '../lib/errors.js'
import {createApp} from './app.js'
import {loadServeConfig} from './config.js'
import {hashPassword} from './passwords.js'
import {createUpstream} from './proxy.js'
import {JsonFileStore} from './store/json-store.js'

export interface ServeOptions {
  configPath?: string
  env: NodeJS.ProcessEnv
  host: string
  log: (message: string) => void
  port: number
  proxyTo: URL
  staticPrefix?: string
  storePath: string
}

export interface RunningServe {
  close(): Promise<void>
  storeLocation: string
  url: string
}

export async function startServe(options: ServeOptions): Promise<RunningServe> {
  const {log} = options
  const config = await loadServeConfig({configPath: options.configPath, env: options.env, host: options.host, staticPrefix: options.staticPrefix})
  for (const warning of config.warnings) log(`warning: ${warning}`)
  const store = await JsonFileStore.open(options.storePath, {onError: (error: Error) => log(`error: auth store: ${error.message}`)})
  try {
    const {admin} = config
    if (!store.getUser(admin.username)) {
      await store.createUser({isAdmin: true, passwordHash: await hashPassword(admin.password), username: admin.username})
      log(`Created admin user "${admin.username}". Change its password soon: mlflowctl users update-password ${admin.username}`)
    }

    if (admin.passwordIsDefault) {
      log(`warning: no admin password is configured; admin "${admin.username}" was created with MLflow's old default "password1234", accepted only because serve listens on loopback. Set MLFLOW_AUTH_ADMIN_PASSWORD.`)
    }

    const upstream = createUpstream({upstream: options.proxyTo})
    const server = createServer({keepAliveTimeout: 65_000, requestTimeout: 0}, createApp({config, log, store, upstream}))
    await listen(server, options.host, options.port)
    const address = server.address() as AddressInfo
    const host = address.family === 'IPv6' ? `[${address.address}]` : address.address
    let closing: Promise<void> | undefined
    return {
      close() {
        // Stop accepting, let in-flight requests finish, then make sure every write is on disk.
        closing ??= (async () => {
          await new Promise<void>((resolve) => {
            server.close(() => resolve())
            server.closeIdleConnections()
          })
          await upstream.close()
          await store.close()
        })()
        return closing
      },
      storeLocation: store.location,
      url: `http://${host}:${address.port}`,
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
