/**
 * serve's request pipeline (docs/architecture.md, "A request through serve"), one named stage
 * after another: canonicalise the target → route it (one table, route-table.ts) → authenticate
 * the caller → answer it here (local-answers.ts) or decide, forward and record the after-effects
 * (authz/gate.ts). Whatever a stage throws becomes MLflow's error answer in one place.
 */
import {type IncomingMessage, type ServerResponse} from 'node:http'

import {parseBasicAuthorization} from './authn.js'
import {canonicalPath} from './authz/canonical-path.js'
import {Gate, refuseWorkspace} from './authz/gate.js'
import {lookupRoute, type RouteMatch} from './authz/route-table.js'
import {LEGACY_DEFAULT_ADMIN_PASSWORD, type ServeConfig} from './config.js'
import {CredentialCheck, type CredentialCheckOptions} from './credential-check.js'
import {createLocalAnswerer} from './local-answers.js'
import {type Upstream} from './proxy.js'
import {ApiError, errorAnswer, sendError, sendJson, sendUnauthenticated} from './responses.js'
import {type Store, type UserRecord} from './store/store.js'

export interface AppOptions {
  config: ServeConfig
  /** Bounds on password verification (concurrency, queue, wait). */
  credentialCheck?: CredentialCheckOptions
  /** Status and warnings; never given a password, hash or Authorization header. */
  log: (message: string) => void
  store: Store
  upstream: Upstream
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
  const canonical = canonicalPath(target.split('?', 1)[0])
  if (!canonical.ok) throw new ApiError('BAD_REQUEST', `Refused an unusual request path: ${canonical.reason}.`)
  const path = !staticPrefix ? canonical.path : canonical.path.startsWith(`${staticPrefix}/`) ? canonical.path.slice(staticPrefix.length) : undefined
  return {match: path === undefined ? undefined : lookupRoute(request.method ?? 'GET', path), target}
}

export function createApp(options: AppOptions): (request: IncomingMessage, response: ServerResponse) => void {
  const {config, log, store, upstream} = options
  const credentialCheck = new CredentialCheck(store, options.credentialCheck)
  const answerLocally = createLocalAnswerer(config, store)
  const gate = new Gate({defaultPermission: config.defaultPermission, log, store, upstream})

  /** The caller; undefined when the credentials are missing or wrong; 'busy' when they cannot be checked now. */
  async function authenticate(request: IncomingMessage): Promise<'busy' | undefined | UserRecord> {
    const credentials = parseBasicAuthorization(request.headers.authorization)
    const result = await credentialCheck.check(credentials)
    if (result.kind !== 'verified') return result.kind === 'busy' ? 'busy' : undefined
    const {user} = result
    if (user.isAdmin && credentials!.password === LEGACY_DEFAULT_ADMIN_PASSWORD) {
      log(`warning: admin "${user.username}" still uses the default password; change it: mlflowctl users update-password ${user.username}`)
    }

    return user
  }

  async function handle(request: IncomingMessage, response: ServerResponse): Promise<void> {
    const {match, target} = routeRequest(request, config.staticPrefix)
    // In memory: a store that follows a database says whether it is in step, and whether its state is fresh enough to decide from.
    const health = store.health()
    if (match?.rule.access === 'public') {
      // Not ready (its database away): a load balancer's health check sends clients to another replica.
      if (!health.ready && match.template === '/health') {
        sendJson(response, 503, {error_code: 'TEMPORARILY_UNAVAILABLE', message: `mlflowctl serve is not ready: ${health.problem}.`}, {'retry-after': '1'})
        return
      }

      refuseWorkspace(request)
      await upstream.forward(request, response)
      return
    }

    // Fail closed: a state too old to trust decides nothing, not even who the caller is. (The store
    // logs once when this begins and when it ends, not per request.)
    if (!health.decide) {
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

    const user = await authenticate(request)
    if (user === 'busy') {
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
      sendUnauthenticated(response)
      return
    }

    if (match?.rule.answer) await answerLocally(request, response, user, match, new URL(target, 'http://serve.invalid'))
    else await gate.handle(request, response, user, match, target)
  }

  /** Every failure answered the same way: MLflow's error, or a cut connection once the answer began. */
  function fail(request: IncomingMessage, response: ServerResponse, error: unknown): void {
    // A client that left while its body was read: nobody to answer, nothing to report.
    if (response.destroyed && (error as NodeJS.ErrnoException | undefined)?.code === 'ECONNRESET') return
    const answer = errorAnswer(error)
    if (answer.log) log(`error: ${request.method} ${request.url?.split('?')[0]}: ${answer.log}`)
    if (response.headersSent) response.destroy()
    else sendError(response, answer)
  }

  return (request, response) => {
    handle(request, response).catch((error: unknown) => fail(request, response, error))
  }
}
