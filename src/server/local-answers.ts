/**
 * The answer stage for requests serve answers itself, never the upstream: MLflow's basic-auth REST
 * API (auth-api.ts), its sign-up page and form (signup.ts), and 405 on an auth API path with a
 * method it does not serve. The route table says which (`answer`) and how the body is read.
 */
import {type IncomingMessage, type ServerResponse} from 'node:http'

import {type AuditOrigin} from './audit.js'
import {AuthApi, type AuthApiOptions} from './auth-api.js'
import {allowedMethods, type RouteMatch} from './authz/route-table.js'
import {type ServeConfig} from './config.js'
import {readRequestBody, type RequestBody} from './request-body.js'
import {PlainError, permissionDenied, sendJson, sendText} from './responses.js'
import {alertPage, checkCsrf, signupPage} from './signup.js'
import {type Store, type UserRecord} from './store/store.js'

const SIGNUP_FORM_ACTION = '/api/2.0/mlflow/users/create-ui'
/** Werkzeug's page for a 405, as MLflow's basic-auth app sends it. */
const METHOD_NOT_ALLOWED_PAGE =
  '<!doctype html>\n<html lang=en>\n<title>405 Method Not Allowed</title>\n<h1>Method Not Allowed</h1>\n<p>The method is not allowed for the requested URL.</p>\n'

/** `origin`: the request as the audit log names it (changes made are recorded there). */
export type LocalAnswerer = (
  request: IncomingMessage,
  response: ServerResponse,
  user: UserRecord,
  match: RouteMatch,
  url: URL,
  origin?: AuditOrigin,
) => Promise<void>

export function createLocalAnswerer(config: ServeConfig, store: Store, extra: Pick<AuthApiOptions, 'audit' | 'tokenLastUse'> = {}): LocalAnswerer {
  const api = new AuthApi({defaultPermission: config.defaultPermission, passwordPolicy: config.passwordPolicy, store, ...extra})

  /** As Flask-WTF: the CSRF token is checked first (from the form, else the X-CSRFToken header), then the form. */
  async function submitSignup(request: IncomingMessage, response: ServerResponse, user: UserRecord, body: RequestBody, origin?: AuditOrigin): Promise<void> {
    const form = body.form ?? new URLSearchParams()
    const headerToken = request.headers['x-csrftoken']
    checkCsrf(config.secretKey, request.headers.cookie, form.get('csrf_token') ?? (typeof headerToken === 'string' ? headerToken : undefined))
    if (body.contentType !== 'application/x-www-form-urlencoded') throw new PlainError(400, 'Invalid content type. Must be application/x-www-form-urlencoded')
    const username = form.get('username') ?? ''
    const password = form.get('password') ?? ''
    if (!username || !password) throw new PlainError(400, 'Username and password cannot be empty.')
    if (store.getUser(username)) {
      sendText(response, 200, alertPage(`Username has already been taken: ${username}`, '/signup'))
      return
    }

    await api.call('users/create', {body: {password, username}, contentType: 'application/json', method: 'POST', origin, query: new URLSearchParams(), user})
    sendText(response, 200, alertPage(`Successfully signed up user: ${username}`, '/'))
  }

  return async (request, response, user, match, url, origin) => {
    const {answer, access, body: policy} = match.rule
    if (access === 'admin' && !user.isAdmin) throw permissionDenied({rule: 'admin-only route'})
    if (answer === 'method-not-allowed' || answer === 'options') {
      response.setHeader('allow', allowedMethods(match.template))
      if (answer === 'options') {
        response.writeHead(204, {'content-type': 'text/html; charset=utf-8'}).end()
        return
      }

      sendText(response, 405, METHOD_NOT_ALLOWED_PAGE)
      return
    }

    const body = await readRequestBody(request, policy)
    switch (answer) {
      case 'signup-form': {
        const page = signupPage(config.secretKey, SIGNUP_FORM_ACTION, config.passwordPolicy.minLength)
        response.setHeader('set-cookie', page.cookie)
        sendText(response, 200, page.html)
        return
      }

      case 'signup-submit': {
        await submitSignup(request, response, user, body, origin)
        return
      }

      // Public: the pipeline answers them before any login (app.ts).
      case 'live':
      case 'ready':
      case undefined: {
        throw new Error(`route ${match.template} has no answer here`)
      }

      default: {
        sendJson(
          response,
          200,
          // A HEAD's parameters are read from its (empty) body, as MLflow reads them.
          await api.call(answer, {body: body.json, contentType: body.contentType, method: request.method!, origin, query: url.searchParams, user}),
        )
      }
    }
  }
}
