/**
 * serve's request pipeline (docs/architecture.md, "A request through serve"), one named stage
 * after another: canonicalise the target → route it (one table, route-table.ts) → authenticate
 * the caller → answer it here (local-answers.ts) or decide, forward and record the after-effects
 * (authz/gate.ts). Whatever a stage throws becomes MLflow's error answer in one place.
 */
import {type IncomingMessage, type ServerResponse} from 'node:http'

import {type AuditOrigin, type AuditSink, type AuthFailure, NO_AUDIT, userLabel} from './audit.js'
import {type BasicCredentials, parseBasicAuthorization, parseBearerToken} from './authn.js'
import {canonicalPath} from './authz/canonical-path.js'
import {Gate, refuseWorkspace} from './authz/gate.js'
import {lookupRoute, type RouteMatch} from './authz/route-table.js'
import {ClientAddresses} from './client-address.js'
import {LEGACY_DEFAULT_ADMIN_PASSWORD, type ServeConfig} from './config.js'
import {CredentialCheck, type CredentialCheckOptions} from './credential-check.js'
import {type Health} from './health.js'
import {type LockoutRefusal} from './lockout.js'
import {createLocalAnswerer} from './local-answers.js'
import {type Decision} from './metrics.js'
import {type Upstream} from './proxy.js'
import {pathOf, withoutQuery} from './request-path.js'
import {ApiError, errorAnswer, PermissionDenied, sendError, sendJson, sendUnauthenticated} from './responses.js'
import {type Store, type UserRecord} from './store/store.js'
import {type TokenCheck} from './tokens.js'

export interface AppOptions {
  /** Where failed logins, changes and refusals are recorded; none by default. */
  audit?: AuditSink
  /** Who the client is (trusted proxies honoured); default: the socket's peer, no proxy trusted. */
  clients?: ClientAddresses
  config: ServeConfig
  /** Bounds on password verification (concurrency, queue, wait) and on failed logins (lockout). */
  credentialCheck?: CredentialCheckOptions
  /** serve's own liveness and readiness answers (/-/live, /-/ready). */
  health: Health
  /** Status and warnings; never given a password, hash or Authorization header. */
  log: (message: string) => void
  /** Told about each request once its answer is over (or cut off): metrics and the access log. */
  observe?: (record: RequestRecord) => void
  store: Store
  /** Bearer tokens' check (the caller keeps it, to write the last uses at stop). */
  tokenCheck: TokenCheck
  upstream: Upstream
}

/** One request as metrics and the access log see it: never its query, credentials or headers. */
export interface RequestRecord {
  /** Bytes written to the connection for this answer, its head included (nginx's $bytes_sent). */
  bytes: number
  decision: Decision
  /** The route table's template, or `unknown`. */
  family: string
  method: string
  /** The path as sent, without its query (which may carry anything). */
  path: string
  request: IncomingMessage
  seconds: number
  /** 0 when the connection closed before an answer began. */
  status: number
  /** The authenticated user, if the request got that far. */
  user?: string
}

/** What the stages learn about a request, for its record. */
interface Outcome {
  decision?: Decision
  family: string
  user?: string
}

/** The decision behind a failure's status; a local answer's own 4xx (a user not found) stays local. */
function failureDecision(status: number, before: Decision | undefined): Decision {
  if (status === 401) return 'unauthenticated'
  if (status === 403) return 'deny'
  if (status === 429 || status === 503) return 'unavailable'
  if (status >= 500) return 'error'
  return before === 'local' ? 'local' : 'invalid'
}

interface Routed {
  /** The route, or undefined when the table does not know the path (or it is outside the static prefix). */
  match: RouteMatch | undefined
  /** Path and query as the client sent them. */
  target: string
}

/**
 * Canonicalise and route: a target that other readers could take for another path is refused
 * before anything is decided on it. Under MLflow's --static-prefix every route, the auth API's
 * too, sits below the prefix.
 */
export function routeRequest(request: IncomingMessage, staticPrefix: string): Routed {
  const target = request.url ?? '/'
  // A fragment never belongs in a request; URL parsers drop it, MLflow's server keeps it in the
  // query, so the two would read different parameters.
  if (target.includes('#')) throw new ApiError('BAD_REQUEST', 'Refused a request target with a # in it.')
  const canonical = canonicalPath(withoutQuery(target))
  if (!canonical.ok) throw new ApiError('BAD_REQUEST', `Refused an unusual request path: ${canonical.reason}.`)
  const path = !staticPrefix ? canonical.path : canonical.path.startsWith(`${staticPrefix}/`) ? canonical.path.slice(staticPrefix.length) : undefined
  return {match: path === undefined ? undefined : lookupRoute(request.method ?? 'GET', path), target}
}

/**
 * The request handler; its promise settles when the handling is over, which may be after the
 * answer (a client that left does not stop what the request set going), so that a stop can wait
 * for the lines it records.
 */
export function createApp(options: AppOptions): (request: IncomingMessage, response: ServerResponse) => Promise<void> {
  const {config, health, log, observe, store, tokenCheck, upstream} = options
  const audit = options.audit ?? NO_AUDIT
  const clients = options.clients ?? ClientAddresses.none()
  const clientAddress = (request: IncomingMessage) => clients.resolve(request).address
  const credentialCheck = new CredentialCheck(store, options.credentialCheck)
  const answerLocally = createLocalAnswerer(config, store, {audit, tokenLastUse: (id) => tokenCheck.pendingLastUse(id)})
  const gate = new Gate({audit, clients, defaultPermission: config.defaultPermission, log, store, upstream})

  /** The request as the audit log names it: the path without its query. */
  function origin(request: IncomingMessage): AuditOrigin {
    return {client: clientAddress(request), method: request.method ?? 'GET', path: pathOf(request)}
  }

  /**
   * Why credentials were refused, for the audit log (never the client's answer). A name that is
   * no user's may be a password typed in the wrong field: only its digest is written.
   */
  function failure(request: IncomingMessage, credentials: BasicCredentials | undefined): {reason: AuthFailure; user?: string} {
    if (!request.headers.authorization) return {reason: 'no-credentials'}
    if (!credentials?.username) return {reason: 'malformed'}
    const known = store.getUser(credentials.username) !== undefined
    return {reason: known ? 'wrong-password' : 'unknown-user', user: userLabel(credentials.username, known)}
  }

  /**
   * The caller (`bearer`: the request's Bearer token, if it sent one); undefined when the
   * credentials are missing or wrong (recorded); 'busy' when they cannot be checked now; a refusal
   * when there were too many failed logins.
   */
  async function authenticate(request: IncomingMessage, bearer: string | undefined): Promise<'busy' | LockoutRefusal | undefined | UserRecord> {
    // A token is a digest and a lookup: it never waits behind password derivations. A valid one
    // passes even from a locked address (256 random bits are not guessed: a lock protects nothing
    // there, and a neighbour's bad token must not stop a job). Wrong ones count as failed logins of
    // the client's address (there is no username to count them under).
    if (bearer !== undefined) {
      const checked = tokenCheck.check(bearer)
      if (checked.kind === 'verified') return checked.user
      const address = clientAddress(request)
      const refused = credentialCheck.lockout?.refusal(address)
      if (refused) return refused
      // Recorded before it is counted: a lock it sets off comes after it in the audit log.
      audit.record({...origin(request), event: 'auth.failed', reason: 'invalid-token'})
      credentialCheck.lockout?.failed(address)
      return undefined
    }

    const credentials = parseBasicAuthorization(request.headers.authorization)
    const result = await credentialCheck.check(credentials, clientAddress(request))
    if (result.kind === 'busy') return 'busy'
    if (result.kind === 'locked') return {retryAfterSeconds: result.retryAfterSeconds, scope: result.scope}
    if (result.kind !== 'verified') {
      audit.record({...origin(request), event: 'auth.failed', ...failure(request, credentials)})
      return undefined
    }

    const {user} = result
    if (user.isAdmin && credentials!.password === LEGACY_DEFAULT_ADMIN_PASSWORD) {
      log(`warning: admin "${user.username}" still uses the default password; change it: mlflowctl users update-password ${user.username}`)
    }

    return user
  }

  async function handle(request: IncomingMessage, response: ServerResponse, outcome: Outcome): Promise<void> {
    const {match, target} = routeRequest(request, config.staticPrefix)
    outcome.family = match?.template ?? 'unknown'
    // In memory: a store that follows a database says whether it is in step, and whether its state is fresh enough to decide from.
    const state = store.health()
    if (match?.rule.access === 'public') {
      outcome.decision = 'public'
      if (match.rule.answer === 'live' || match.rule.answer === 'ready') {
        await health.answer(match.rule.answer, response)
        return
      }

      // Not ready (its database away): a load balancer's health check sends clients to another replica.
      if (!state.ready && match.template === '/health') {
        sendJson(response, 503, {error_code: 'TEMPORARILY_UNAVAILABLE', message: `mlflowctl serve is not ready: ${state.problem}.`}, {'retry-after': '1'})
        return
      }

      refuseWorkspace(request)
      await upstream.forward(request, response)
      return
    }

    // Fail closed: a state too old to trust decides nothing, not even who the caller is. (The store
    // logs once when this begins and when it ends, not per request.)
    if (!state.decide) {
      outcome.decision = 'unavailable'
      sendJson(
        response,
        503,
        {
          error_code: 'TEMPORARILY_UNAVAILABLE',
          message: 'mlflowctl serve cannot check permissions right now: its auth store is out of reach. Its log says why.',
        },
        {'retry-after': '5'},
      )
      return
    }

    const bearer = parseBearerToken(request.headers.authorization)
    const user = await authenticate(request, bearer)
    if (user === 'busy') {
      outcome.decision = 'unavailable'
      // MLflow's clients retry a 429 after the time it names.
      sendJson(
        response,
        429,
        {error_code: 'REQUEST_LIMIT_EXCEEDED', message: 'mlflowctl serve is busy checking passwords; try again shortly.'},
        {'retry-after': '1'},
      )
      return
    }

    if (!user) {
      outcome.decision = 'unauthenticated'
      sendUnauthenticated(response)
      return
    }

    if ('retryAfterSeconds' in user) {
      outcome.decision = 'unauthenticated'
      // Nothing was checked; the same answer whether the user exists or not.
      const from = user.scope === 'address' ? 'from this address' : 'for this user from this address'
      sendJson(
        response,
        429,
        {error_code: 'REQUEST_LIMIT_EXCEEDED', message: `Too many failed logins ${from}; try again in ${user.retryAfterSeconds} seconds.`},
        {'retry-after': String(user.retryAfterSeconds)},
      )
      return
    }

    outcome.user = user.username
    // Refusals throw, and fail() records them as such.
    outcome.decision = match?.rule.answer ? 'local' : 'allow'
    try {
      // A token that could mint tokens would outlive its own expiry and revocation (a leaked
      // short-lived token made permanent): new tokens need a password login.
      if (match?.rule.answer === 'tokens/create' && bearer !== undefined)
        throw new ApiError('PERMISSION_DENIED', 'An access token cannot create tokens: log in with a password, or ask an admin.')
      if (match?.rule.answer)
        await answerLocally(request, response, user, match, new URL(target, 'http://serve.invalid'), options.audit ? origin(request) : undefined)
      // Without an audit log, no per-request cost for it.
      else await gate.handle(request, response, user, match, target, options.audit ? origin(request) : undefined)
    } catch (error) {
      // Every 403 serve decides on is refused here, with what refused it; MLflow's own 403s are relayed, not recorded.
      if (error instanceof PermissionDenied || (error instanceof ApiError && error.status === 403)) {
        // A refusal with MLflow's JSON error says why in its message (serve's words, about the request's own fields).
        const denial = error instanceof PermissionDenied ? (error.denial ?? {rule: 'refused by serve'}) : {rule: error.message}
        audit.record({...origin(request), event: 'request.denied', user: user.username, ...denial})
      }

      throw error
    }
  }

  /** Every failure answered the same way: MLflow's error, or a cut connection once the answer began. */
  function fail(request: IncomingMessage, response: ServerResponse, error: unknown, outcome: Outcome): void {
    // A client that left while its body was read: nobody to answer, nothing to report.
    if (response.destroyed && (error as NodeJS.ErrnoException | undefined)?.code === 'ECONNRESET') return
    const answer = errorAnswer(error)
    outcome.decision = failureDecision(answer.status, outcome.decision)
    if (answer.log) log(`error: ${request.method} ${pathOf(request)}: ${answer.log}`)
    if (response.headersSent) response.destroy()
    else sendError(response, answer)
  }

  /** Reports the request once its answer is over, however it ended. */
  function watch(request: IncomingMessage, response: ServerResponse, outcome: Outcome): void {
    if (!observe) return
    const started = process.hrtime.bigint()
    const {socket} = request
    const written = socket.bytesWritten
    response.once('close', () => {
      try {
        observe({
          bytes: socket.bytesWritten - written,
          decision: outcome.decision ?? 'invalid',
          family: outcome.family,
          method: request.method ?? 'GET',
          path: pathOf(request),
          request,
          seconds: Number(process.hrtime.bigint() - started) / 1e9,
          status: response.headersSent ? response.statusCode : 0,
          user: outcome.user,
        })
      } catch (error) {
        // Metrics or a log that fail must not break serving.
        log(`error: recording a request: ${(error as Error).message}`)
      }
    })
  }

  return (request, response) => {
    const outcome: Outcome = {family: 'unknown'}
    watch(request, response, outcome)
    return handle(request, response, outcome).catch((error: unknown) => fail(request, response, error, outcome))
  }
}
