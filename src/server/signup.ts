/**
 * MLflow's HTML sign-up flow (docs/mlflow-auth-contract.md, "Sign-up page and CSRF"): GET /signup
 * renders a form, POST /api/2.0/mlflow/users/create-ui creates the user. Admins only. The form
 * carries a CSRF token tied to a cookie (double submit, HMAC-signed with the server secret), as
 * Flask-WTF does for MLflow.
 */
import {createHmac, randomBytes, timingSafeEqual} from 'node:crypto'

import {PlainError} from './responses.js'

const COOKIE = 'mlflowctl_csrf'

function sign(secret: Buffer, nonce: string): string {
  return createHmac('sha256', secret).update(`csrf:${nonce}`).digest('base64url')
}

function escapeHtml(text: string): string {
  return text.replaceAll(/[&<>"']/g, (char) => `&#${char.charCodeAt(0)};`)
}

/** The form; `minLength` is the password policy's, so the browser says so before posting. */
export function signupPage(secret: Buffer, formAction: string, minLength = 12): {cookie: string; html: string} {
  const nonce = randomBytes(18).toString('base64url')
  const token = `${nonce}.${sign(secret, nonce)}`
  const html = `<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>MLflow sign up</title>
<style>body{font-family:sans-serif;display:flex;justify-content:center;margin-top:10vh}form{display:flex;flex-direction:column;gap:.6em;width:18em}input{padding:.4em}</style>
</head><body>
<form method="post" action="${escapeHtml(formAction)}">
<h2>Create a user</h2>
<input type="hidden" name="csrf_token" value="${token}">
<input type="text" name="username" placeholder="Username" minlength="4" required>
<input type="password" name="password" placeholder="Password" minlength="${minLength}" required>
<input type="submit" value="Sign up">
</form></body></html>`
  return {cookie: `${COOKIE}=${nonce}; Path=/; HttpOnly; SameSite=Strict`, html}
}

/** Throws MLflow's 400 unless the form's token matches the cookie it was issued with. */
export function checkCsrf(secret: Buffer, cookieHeader: string | undefined, token: string | undefined): void {
  if (!token) throw new PlainError(400, 'The CSRF token is missing.')
  const cookieNonce = cookieHeader
    ?.split(';')
    .map((part) => part.trim().split('='))
    .find(([name]) => name === COOKIE)?.[1]
  const [nonce, signature] = token.split('.')
  const expected = nonce ? sign(secret, nonce) : ''
  const valid = Boolean(
    nonce && signature && cookieNonce === nonce && signature.length === expected.length && timingSafeEqual(Buffer.from(signature), Buffer.from(expected)),
  )
  if (!valid) throw new PlainError(400, 'The CSRF token is invalid.')
}

/** The page MLflow answers a form post with: an alert, then a redirect. */
export function alertPage(message: string, location: string): string {
  return `<!DOCTYPE html><html><body><script>alert(${JSON.stringify(message).replaceAll('<', '\\u003c')});window.location.href=${JSON.stringify(location).replaceAll('<', '\\u003c')};</script></body></html>`
}
