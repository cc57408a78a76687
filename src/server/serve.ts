/**
 * Starting and stopping `mlflowctl serve`: settings, the store, the admin bootstrap, the HTTP(S)
 * server. Plain module: the command only parses flags and prints.
 */
import {type IncomingMessage, type ServerOptions, type ServerResponse} from 'node:http'
import {type AddressInfo, type Server} from 'node:net'

import {ExitCode, UserError} from '../core/errors.js'
import {AccessLog} from './access-log.js'
import {createApp, type RequestRecord} from './app.js'
import {AuditLog, type AuditStats, type FailureLimits, userLabel} from './audit.js'
import {ClientAddresses} from './client-address.js'
import {ClientWatch, type ClientTimeouts, DEFAULT_CLIENT_TIMEOUTS, serverTimeoutOptions} from './connections.js'
import {LEGACY_DEFAULT_ADMIN_PASSWORD, loadServeConfig, type ServeConfig} from './config.js'
import {type CredentialCheckOptions} from './credential-check.js'
import {Health} from './health.js'
import {describeLockout, Lockout, type LockoutEvent} from './lockout.js'
import {ClientLimiter, type ClientLimits, DEFAULT_CLIENT_LIMITS, refuseTunnels, serverLimitOptions} from './limits.js'
import {type LineDestination} from './bounded-write.js'
import {ServeMetrics} from './metrics.js'
import {type ListenAddress, type OpsEndpoint, startingHealth, startOpsEndpoint} from './ops-endpoint.js'
import {hashPassword, verifyPassword} from './passwords.js'
import {createUpstream, type Upstream} from './proxy.js'
import {openAdapter, storeUserError} from './store/open.js'
import {type Store, StoreError} from './store/store.js'
import {type Listener, prepareListener, type TlsFiles} from './tls.js'
import {TokenCheck} from './tokens.js'

export interface ServeOptions {
  /** One JSON line per request (access-log.ts); none by default. */
  accessLog?: LineDestination
  /** The audit log: a file (appended to, created 0600), or '-' for standard output; none when undefined. */
  auditLog?: string
  /** How the audit log summarises failed logins (window, keys followed); the defaults suit production. */
  auditFailures?: FailureLimits
  /** Bounds on password verification: derivations at once, queue, wait before 429. */
  credentialCheck?: CredentialCheckOptions
  /** Header, body-idle and keep-alive timeouts for clients; each defaults to DEFAULT_CLIENT_TIMEOUTS. */
  clientTimeouts?: Partial<ClientTimeouts>
  /** Connections overall and per client, header bytes and fields; each defaults to DEFAULT_CLIENT_LIMITS. */
  clientLimits?: Partial<ClientLimits>
  configPath?: string
  env: NodeJS.ProcessEnv
  host: string
  /** Strict-Transport-Security for HTTPS answers; 'off' for none. */
  hsts?: string
  /** Plain HTTP beyond loopback, on the operator's word. */
  insecureHttp?: boolean
  log: (message: string) => void
  /** Where Prometheus metrics and the health checks are served apart from clients; none by default. */
  metricsAddress?: ListenAddress
  /** The shortest new password taken (at least MLflow's 12). */
  passwordMinLength?: number
  port: number
  proxyTo: URL
  /** The readiness probe of MLflow: reuse an answer this long (default 1 000 ms), wait this long for one (default 2 000 ms). */
  readiness?: {intervalMs?: number; timeoutMs?: number}
  /** A file of passwords refused for new passwords, one per line. */
  refusedPasswordsFile?: string
  staticPrefix?: string
  /** How long another process's lock on the store counts as live (the start waits up to three times this); default 10 s. */
  storeLockStaleMs?: number
  /** A PostgreSQL store out of reach: how long decisions go on from the last known state; default 60 000 ms. */
  storeMaxStaleMs?: number
  /** A JSON file, or a PostgreSQL URL (`postgresql://…`). */
  storePath: string
  /** How long a stop waits for requests still being handled after their connections closed; default DEFAULT_STOP_GRACE_MS. */
  stopGraceMs?: number
  /** HTTPS: certificate and key files, and optionally a CA that client certificates must chain to. */
  tls?: Partial<TlsFiles>
  /** Comma-separated addresses and networks of reverse proxies whose X-Forwarded-* are believed. */
  trustedProxies?: string
  /** How long the upstream may take to answer before the client gets a 504; default 120 000 ms. */
  upstreamTimeoutMs?: number
}

export interface RunningServe {
  /** Lines written to the audit log and lines lost; undefined without one. */
  auditStats(): AuditStats | undefined
  close(): Promise<void>
  /** serve's metrics, also for the features that count lockouts and token logins. */
  metrics: ServeMetrics
  /** Where /metrics is served, with --metrics-address. */
  metricsUrl?: string
  /** Opens the audit log file again by its path (after a rotation); resolves to a line for the log. */
  reopenAuditLog(): Promise<string | undefined>
  /** The failed-login counts (stats() for metrics); undefined when turned off. */
  lockout?: Lockout
  /** Re-reads the TLS files for new connections; resolves to a description of the certificate now served. */
  reloadTls(): Promise<string>
  storeLocation: string
  /** Whether serve speaks HTTPS, so has a certificate to reload. */
  tls: boolean
  /** One line on the certificate served, for the log (HTTPS only). */
  tlsSummary?: string
  url: string
}

/** Its promise, when it returns one, settles when the handling is over (a stop waits for it). */
type Handler = (request: IncomingMessage, response: ServerResponse) => Promise<void> | void

/**
 * How long a stop waits, once every connection is closed, for requests still being handled (a
 * client that left while its change was being written): their audit lines come before the log closes.
 */
export const DEFAULT_STOP_GRACE_MS = 10_000

export async function startServe(options: ServeOptions): Promise<RunningServe> {
  const {log} = options
  // Before anything is read or created: a listener serve may not use stops the start here.
  const listener = await prepareListener({host: options.host, hsts: options.hsts, insecureHttp: options.insecureHttp, tls: options.tls})
  const clients = ClientAddresses.parse(options.trustedProxies)
  for (const warning of listener.warnings) log(`warning: ${warning}`)
  const config = await loadServeConfig({
    configPath: options.configPath,
    env: options.env,
    host: options.host,
    passwordMinLength: options.passwordMinLength,
    refusedPasswordsFile: options.refusedPasswordsFile,
    staticPrefix: options.staticPrefix,
  })
  for (const warning of config.warnings) log(`warning: ${warning}`)
  const metrics = new ServeMetrics()
  // Before the port: a start whose audit log cannot be written records nothing, so serves nothing.
  const audit =
    options.auditLog === undefined
      ? undefined
      : await AuditLog.open(options.auditLog, log, {
          failures: options.auditFailures,
          onDrop: () => metrics.logLineDropped('audit'),
          onFail: () => metrics.logLineFailed('audit'),
        })
  try {
    return await startServing(options, {audit, clients, config, listener, metrics})
  } catch (error) {
    await audit?.close()
    throw error
  }
}

/** The start after the checks that create nothing: upstream, ports, store, app. */
async function startServing(
  options: ServeOptions,
  parts: {audit?: AuditLog; clients: ClientAddresses; config: ServeConfig; listener: Listener; metrics: ServeMetrics},
): Promise<RunningServe> {
  const {audit, clients, config, listener, metrics} = parts
  const {log} = options
  const upstream = openUpstream(options, clients, metrics)
  const timeouts = {...DEFAULT_CLIENT_TIMEOUTS, ...options.clientTimeouts}
  const limits = {...DEFAULT_CLIENT_LIMITS, ...options.clientLimits}
  const front = createFront(listener, clients, {
    limiter: new ClientLimiter(limits, clients, log),
    serverOptions: {...serverTimeoutOptions(timeouts), ...serverLimitOptions(limits)},
    watch: new ClientWatch(timeouts, log),
  })
  // The ports first: a start that fails there must not have created the store or the admin.
  await bind(front.server, options, upstream)
  // Until the store is open, the operations address answers "not ready".
  let health: Health | undefined
  const ops = await bindOps(options, metrics, () => health, front, upstream)
  const store = await openStore(options, config, metrics, front, async () => {
    await ops?.close()
    await upstream.close()
  })
  health = new Health({...options.readiness, healthPath: `${config.staticPrefix}/health`, store, upstream})
  const accessLog = options.accessLog && new AccessLog(options.accessLog, {log, onDrop: () => metrics.logLineDropped('access')})
  const observe = (record: RequestRecord) => {
    metrics.request(record)
    accessLog?.write(record, clients.resolve(record.request).address)
  }

  // A username locked that is no user's may be a password typed in the wrong field: logged as its digest.
  const label = (username: string) => userLabel(username, store.getUser(username) !== undefined)
  const lockout = createLockout(options.credentialCheck, log, label, (event) => {
    metrics.lockout()
    const until = new Date(Date.now() + event.lockMs).toISOString()
    audit?.record({client: event.address, event: 'auth.lockout', failures: event.failures, reason: event.scope, until, user: event.username})
  })
  const credentialCheck = {...options.credentialCheck, lockout, onLookup: (hit: boolean) => metrics.credentialLookup(hit)}
  const tokenCheck = new TokenCheck(store, {onCheck: (result) => metrics.tokenAuthentication(result), onError: (error) => log(`warning: ${error.message}`)})
  front.attach(createApp({audit, clients, config, credentialCheck, health, log, observe, store, tokenCheck, upstream}))
  const graceMs = options.stopGraceMs ?? DEFAULT_STOP_GRACE_MS
  return running({audit, front, graceMs, listener, lockout: lockout || undefined, log, metrics, ops, store, tokenCheck, upstream})
}

/**
 * The failed-login counts (none when turned off), each lock that begins logged and recorded (the
 * address, the username as `label` shows it, never a password) and then passed to the caller's hook.
 */
function createLockout(
  options: CredentialCheckOptions | undefined,
  log: (message: string) => void,
  label: (username: string) => string,
  record: (event: LockoutEvent) => void,
): false | Lockout {
  const given = options?.lockout
  if (given === false || given instanceof Lockout) return given
  const onLockout = given?.onLockout
  return new Lockout({
    ...given,
    onLockout(event) {
      const shown = event.username === undefined ? event : {...event, username: label(event.username)}
      log(describeLockout(shown))
      record(shown)
      onLockout?.(event)
    },
  })
}

/** The operations address, when asked for; a start that fails here undoes the main port. */
async function bindOps(
  options: ServeOptions,
  metrics: ServeMetrics,
  health: () => Health | undefined,
  front: Front,
  upstream: Upstream,
): Promise<OpsEndpoint | undefined> {
  if (!options.metricsAddress) return undefined
  metrics.collectProcessMetrics()
  try {
    return await startOpsEndpoint(options.metricsAddress, metrics, startingHealth(health))
  } catch (error) {
    await front.abort()
    await upstream.close()
    throw error
  }
}

function openUpstream(options: ServeOptions, clients: ClientAddresses, metrics: ServeMetrics): Upstream {
  try {
    return createUpstream({
      client: (request) => clients.resolve(request),
      onLatency: (seconds, answered) => metrics.upstream(seconds, answered),
      // A streamed forward answers its client itself; its failures reach the log only here.
      onError: (error, request) => options.log(`error: ${request.method} ${request.path}: ${error.message}`),
      responseTimeoutMs: options.upstreamTimeoutMs,
      upstream: options.proxyTo,
    })
  } catch (error) {
    throw new UserError(`--proxy-to ${options.proxyTo.href}: ${(error as Error).message}`, {code: 'BAD_UPSTREAM', exit: ExitCode.Usage})
  }
}

/** The HTTP(S) server and what its connections need through start and stop. */
interface Front {
  /** Hands the requests that waited, and every later one, to the app. */
  attach(app: Handler): void
  /** A failed start: drops the requests that waited and closes every connection now. */
  abort(): Promise<void>
  server: Server
  /** Waits up to `ms` for the requests still being handled; resolves to how many are left. */
  settle(ms: number): Promise<number>
  /** Stops accepting; in-flight requests finish, and their connections close after them. */
  stop(): Promise<void>
}

/** What the front enforces on its clients: timeouts (watch, and Node's options) and limits. */
interface Guards {
  limiter: ClientLimiter
  serverOptions: ServerOptions
  watch: ClientWatch
}

function createFront(listener: Listener, clients: ClientAddresses, guards: Guards): Front {
  const {limiter, watch} = guards
  // Until the store and the admin are ready, requests wait (accepted connections, nothing decided).
  let app: Handler | undefined
  const early: Array<[IncomingMessage, ServerResponse]> = []
  // Responses not finished yet, so that stopping can close their keep-alive connections.
  const inFlight = new Set<ServerResponse>()
  // Handlers not finished yet: one may go on after its connection closed (a client that left),
  // and what it records must reach the audit log before that closes.
  const handling = new Set<Promise<void>>()
  const run = (handler: Handler, request: IncomingMessage, response: ServerResponse) => {
    const handled = handler(request, response)
    if (!handled) return
    const tracked = handled.then(
      () => {},
      () => {},
    )
    handling.add(tracked)
    void tracked.then(() => handling.delete(tracked))
  }

  let stopping = false
  const {hsts} = listener
  const server = listener.createServer(guards.serverOptions, (request, response) => {
    watch.track(request, response)
    if (stopping) response.setHeader('Connection', 'close')
    if (hsts && clients.resolve(request).protocol === 'https') response.setHeader('Strict-Transport-Security', hsts)
    inFlight.add(response)
    response.once('close', () => {
      inFlight.delete(response)
      // The connection is idle now; while stopping, it must not be kept for a next request
      // (server.close waits for every connection, and a client's pool keeps it open until the
      // keep-alive timeout).
      if (stopping) setImmediate(() => server.closeIdleConnections())
    })
    // Refused (too many header fields, or requests in flight from one client): answered already.
    if (!limiter.admit(request, response)) return
    if (app) run(app, request, response)
    else early.push([request, response])
  })
  watch.attach(server)
  limiter.attach(server)
  refuseTunnels(server)

  return {
    attach(ready) {
      app = ready
      for (const [request, response] of early.splice(0)) run(ready, request, response)
    },
    async abort() {
      for (const [, response] of early.splice(0)) response.destroy()
      await new Promise<void>((resolve) => {
        server.close(() => resolve())
        server.closeAllConnections()
      })
    },
    server,
    async settle(ms) {
      if (handling.size === 0) return 0
      let timer: NodeJS.Timeout | undefined
      const bound = new Promise<void>((resolve) => {
        timer = setTimeout(resolve, ms)
      })
      await Promise.race([Promise.all(handling), bound])
      clearTimeout(timer)
      return handling.size
    },
    async stop() {
      stopping = true
      // Answers not yet begun tell their clients the connection ends with them.
      for (const response of inFlight) if (!response.headersSent) response.setHeader('Connection', 'close')
      await new Promise<void>((resolve) => {
        server.close(() => resolve())
        server.closeIdleConnections()
      })
    },
  }
}

async function bind(server: Server, options: ServeOptions, upstream: Upstream): Promise<void> {
  try {
    await listen(server, options.host, options.port)
  } catch (error) {
    await upstream.close()
    throw error
  }
}

/** Opens the store and bootstraps the admin; when either fails, undoes the start so far. */
async function openStore(options: ServeOptions, config: ServeConfig, metrics: ServeMetrics, front: Front, undo: () => Promise<void>): Promise<Store> {
  let store: Store | undefined
  const onError = (error: Error) => options.log(`error: auth store: ${error.message}`)
  const onWrite = (seconds: number, ok: boolean) => metrics.storeWrite(seconds, ok)
  try {
    store = await openAdapter(options.storePath, {
      json: {lockStaleMs: options.storeLockStaleMs, onError, onWrite},
      postgres: {maxStaleMs: options.storeMaxStaleMs, onError, onWrite},
    })
    await bootstrapAdmin(store, config, options.log)
    return store
  } catch (error) {
    await front.abort()
    await undo()
    await store?.close()
    throw storeUserError(error)
  }
}

/** The handle the command keeps: where serve listens, what to print, and how to reload and stop it. */
function running(parts: {
  audit?: AuditLog
  front: Front
  graceMs: number
  listener: Listener
  lockout?: Lockout
  log: (message: string) => void
  metrics: ServeMetrics
  ops?: OpsEndpoint
  store: Store
  tokenCheck: TokenCheck
  upstream: Upstream
}): RunningServe {
  const {audit, front, graceMs, listener, lockout, log, metrics, ops, store, tokenCheck, upstream} = parts
  const address = front.server.address() as AddressInfo
  const host = address.family === 'IPv6' ? `[${address.address}]` : address.address
  let closing: Promise<void> | undefined
  return {
    auditStats: () => audit?.stats(),
    close() {
      // Stop accepting, let in-flight requests finish, then make sure every write is on disk.
      closing ??= (async () => {
        await front.stop()
        // A request whose client left may still be writing its change: its line comes before the log closes.
        const left = await front.settle(graceMs)
        if (left > 0)
          log(
            `warning: stopping with ${left} requests still being handled after ${graceMs / 1000} s; what they would record in the audit log is lost, and counted (mlflowctl_log_lines_failed_total{log="audit"})`,
          )
        await ops?.close()
        await upstream.close()
        // The tokens' last uses since the last write, so a clean stop loses none.
        tokenCheck.stop()
        await tokenCheck.flush()
        try {
          await store.close()
        } finally {
          // Last: the requests that finished above may still have recorded lines.
          await audit?.close()
        }
      })()
      return closing
    },
    lockout,
    metrics,
    metricsUrl: ops?.url,
    reopenAuditLog: async () => audit?.reopen(),
    reloadTls: () => listener.reload(),
    storeLocation: store.location,
    tls: listener.protocol === 'https',
    tlsSummary: listener.tlsSummary,
    url: `${listener.protocol}://${host}:${address.port}`,
  }
}

/** Creates the admin on a first start, and replaces MLflow's old default password when another is configured. */
async function bootstrapAdmin(store: Store, config: ServeConfig, log: (message: string) => void): Promise<void> {
  const {admin} = config
  let existing = store.getUser(admin.username)
  // Whether the bootstrap admin is left with the old public default password.
  let usesDefault = false
  if (!existing) {
    try {
      await store.createUser({isAdmin: true, passwordHash: await hashPassword(admin.password), username: admin.username})
      log(`Created admin user "${admin.username}". Change its password soon: mlflowctl users update-password ${admin.username}`)
      usesDefault = admin.passwordIsDefault
    } catch (error) {
      // Another replica on the same database created it first: from here on it is an existing admin.
      if (!(error instanceof StoreError && error.code === 'RESOURCE_ALREADY_EXISTS')) throw error
      existing = store.getUser(admin.username)!
    }
  }

  if (existing && (await verifyPassword(existing.passwordHash, LEGACY_DEFAULT_ADMIN_PASSWORD))) {
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
    log(
      `warning: admin "${admin.username}" has MLflow's old default password "password1234", as no other admin password is configured; it is accepted only because serve listens on loopback. Set MLFLOW_AUTH_ADMIN_PASSWORD (it replaces the default at the next start), or change it now: mlflowctl users update-password ${admin.username}`,
    )
  }
}

function listen(server: Server, host: string, port: number): Promise<void> {
  return new Promise((resolve, reject) => {
    server.once('error', (error: NodeJS.ErrnoException) => {
      reject(
        error.code === 'EADDRINUSE'
          ? new UserError(`Port ${port} on ${host} is already in use; nothing was started or created.`, {
              code: 'PORT_IN_USE',
              exit: ExitCode.InUse,
              hint: 'Stop what listens there, or pass another --port.',
            })
          : new UserError(`Cannot listen on ${host} port ${port}: ${error.message}; nothing was started or created.`, {
              cause: error,
              code: 'CANNOT_LISTEN',
              exit: ExitCode.Usage,
              hint: 'Pass a --host address of this machine and a --port you may use.',
            }),
      )
    })
    server.listen(port, host, () => resolve())
  })
}
