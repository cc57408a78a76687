/**
 * serve's request handling: the path made canonical, public routes, authentication, the auth API,
 * and everything else decided by the route table and passed to the upstream MLflow server.
 */
import {type IncomingMessage, type ServerResponse} from 'node:http'

import {type AuthCall, AuthApi} from './auth-api.js'
import {Authenticator, parseBasicAuthorization} from './authn.js'
import {canonicalPath} from './authz/canonical-path.js'
import {Gate} from './authz/gate.js'
import {lookupRoute} from './authz/route-table.js'
import {LEGACY_DEFAULT_ADMIN_PASSWORD, type ServeConfig} from './config.js'
import {type Upstream} from './proxy.js'
import {parseJsonObject, readBody} from './request-body.js'
import {ApiError, errorAnswer, PlainError, permissionDenied, sendError, sendJson, sendText, sendUnauthenticated} from './responses.js'
import {alertPage, checkCsrf, signupPage} from './signup.js'
import {type Store, type UserRecord} from './store/store.js'

export interface AppOptions {
  config: ServeConfig
  /** Status and warnings; never given a password, hash or Authorization header. */
  log: (message: string) => void
  store: Store
  upstream: Upstream
}

const MAX_AUTH_BODY = 1024 * 1024
const API_PATH = /^(\/(?:api|ajax-api)\/\d+\.\d+)(\/mlflow\/.*)$/

function mediaType(request: IncomingMessage): string | undefined {
  return request.headers['content-type']?.split(';')[0].trim().toLowerCase() || undefined
}

export function createApp(options: AppOptions): (request: IncomingMessage, response: ServerResponse) => void {
  const {config, log, store, upstream} = options
  const authenticator = new Authenticator(store)
  const api = new AuthApi({defaultPermission: config.defaultPermission, store})
  const gate = new Gate({defaultPermission: config.defaultPermission, log, store, upstream})
  const staticPrefix = config.staticPrefix

  async function handleApi(request: IncomingMessage, response: ServerResponse, user: UserRecord, handler: (call: AuthCall) => Promise<unknown>, url: URL): Promise<void> {
    const raw = await readBody(request, MAX_AUTH_BODY)
    const contentType = mediaType(request)
    const body = raw.length > 0 && contentType === 'application/json' ? parseJsonObject(raw) : undefined
    sendJson(response, 200, await handler({body, contentType, method: request.method!, query: url.searchParams, user}))
  }

  async function handleSignup(request: IncomingMessage, response: ServerResponse, user: UserRecord, path: string): Promise<boolean> {
    if (path === '/signup' && (request.method === 'GET' || request.method === 'HEAD')) {
      if (!user.isAdmin) throw permissionDenied()
      const page = signupPage(config.secretKey, '/api/2.0/mlflow/users/create-ui')
      response.setHeader('set-cookie', page.cookie)
      sendText(response, 200, page.html)
      return true
    }

    if (path === '/api/2.0/mlflow/users/create-ui' && request.method === 'POST') {
      if (!user.isAdmin) throw permissionDenied()
      // As Flask-WTF, the CSRF token is checked first (from the form, else the X-CSRFToken header).
      const isForm = mediaType(request) === 'application/x-www-form-urlencoded'
      const form = new URLSearchParams(isForm ? (await readBody(request, MAX_AUTH_BODY)).toString('utf8') : '')
      const headerToken = request.headers['x-csrftoken']
      checkCsrf(config.secretKey, request.headers.cookie, form.get('csrf_token') ?? (typeof headerToken === 'string' ? headerToken : undefined))
      if (!isForm) throw new PlainError(400, 'Invalid content type. Must be application/x-www-form-urlencoded')
      const username = form.get('username') ?? ''
      const password = form.get('password') ?? ''
      if (!username || !password) throw new PlainError(400, 'Username and password cannot be empty.')
      if (store.getUser(username)) {
        sendText(response, 200, alertPage(`Username has already been taken: ${username}`, '/signup'))
        return true
      }

      const call: AuthCall = {body: {password, username}, contentType: 'application/json', method: 'POST', query: new URLSearchParams(), user}
      const created = api.match('/api/2.0', '/mlflow/users/create', 'POST')
      if (typeof created !== 'function') throw new Error('users/create route missing')
      await created(call)
      sendText(response, 200, alertPage(`Successfully signed up user: ${username}`, '/'))
      return true
    }

    return false
  }

  async function handle(request: IncomingMessage, response: ServerResponse): Promise<void> {
    const target = request.url ?? '/'
    // A fragment never belongs in a request; URL parsers drop it, MLflow's server keeps it in the
    // query, so the two would read different parameters.
    if (target.includes('#')) throw new ApiError('BAD_REQUEST', 'Refused a request target with a # in it.')
    const canonical = canonicalPath(target.split('?', 1)[0])
    if (!canonical.ok) throw new ApiError('BAD_REQUEST', `Refused an unusual request path: ${canonical.reason}.`)
    // Under MLflow's --static-prefix every route, the auth API's too, sits below the prefix.
    const path = !staticPrefix ? canonical.path : canonical.path.startsWith(`${staticPrefix}/`) ? canonical.path.slice(staticPrefix.length) : undefined
    const match = path === undefined ? undefined : lookupRoute(request.method ?? 'GET', path)
    if (match?.rule.access === 'public') {
      await upstream.forward(request, response)
      return
    }

    const credentials = parseBasicAuthorization(request.headers.authorization)
    const user = await authenticator.authenticate(credentials)
    if (!user) {
      sendUnauthenticated(response)
      return
    }

    if (user.isAdmin && credentials!.password === LEGACY_DEFAULT_ADMIN_PASSWORD) {
      log(`warning: admin "${user.username}" still uses the default password; change it: mlflowctl users update-password ${user.username}`)
    }

    if (path !== undefined) {
      if (await handleSignup(request, response, user, path)) return
      const apiPath = API_PATH.exec(path)
      if (apiPath) {
        const handler = api.match(apiPath[1], apiPath[2], request.method ?? 'GET')
        if (handler === 'method-not-allowed') {
          sendText(response, 405, 'Method Not Allowed')
          return
        }

        if (handler) {
          await handleApi(request, response, user, handler, new URL(target, 'http://serve.invalid'))
          return
        }
      }
    }

    await gate.handle(request, response, user, match, target)
  }

  return (request, response) => {
    handle(request, response).catch((error: unknown) => {
      // A client that left while its body was read: nobody to answer, nothing to report.
      if (response.destroyed && (error as NodeJS.ErrnoException | undefined)?.code === 'ECONNRESET') return
      const answer = errorAnswer(error)
      if (answer.log) log(`error: ${request.method} ${request.url?.split('?')[0]}: ${answer.log}`)
      if (response.headersSent) response.destroy()
      else sendError(response, answer)
    })
  }
}
