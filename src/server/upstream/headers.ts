/**
 * The headers of a forward, both ways: hop-by-hop headers dropped, every header a server behind a
 * proxy might take as "who is calling" stripped from the client's request, and the proxy's own
 * (Host, X-Forwarded-*, the authenticated user) set.
 */
import {type IncomingMessage, type OutgoingHttpHeaders, type ServerResponse} from 'node:http'

import {type Client} from '../client-address.js'

/** The body a forward sends: the caller's buffer, the client's stream with its framing, or nothing. */
export type Body =
  | {data: Buffer; kind: 'buffer'}
  /** `head`: the start of the body, already read from the client; the rest follows from its stream. */
  | {framing: OutgoingHttpHeaders; head?: Buffer[]; kind: 'stream'}
  | {kind: 'none'}

/** The header that carries the authenticated user to the upstream. */
export const IDENTITY_HEADER = 'X-Forwarded-User'

// RFC 9110 §7.6.1 hop-by-hop headers, plus those clients still send (Proxy-Connection, HTTP2-Settings).
const HOP_BY_HOP = new Set(['connection', 'http2-settings', 'keep-alive', 'te', 'trailer', 'transfer-encoding', 'upgrade'])

// Headers a server behind a proxy might take as "who is calling" or "from where": the client must
// never be able to choose them. A deny list cannot be complete, hence the prefixes.
const IDENTITY_HEADERS = new Set([
  'cf-access-authenticated-user-email',
  'cf-access-jwt-assertion',
  'forwarded',
  'remote-user',
  'x-access-token',
  'x-auth-user',
  'x-client-ip',
  'x-credential-identifier',
  'x-email',
  'x-goog-iap-jwt-assertion',
  'x-groups',
  'x-id-token',
  'x-jwt-assertion',
  'x-mlflow-user',
  'x-mlflow-username',
  'x-real-ip',
  'x-user',
  'x-user-email',
  'x-user-groups',
  'x-user-id',
  'x-user-name',
  'x-userinfo',
  'x-username',
])
const IDENTITY_PREFIXES = [
  'x-amzn-oidc-',
  'x-auth-request-',
  'x-authenticated-',
  'x-consumer-',
  'x-forwarded-', // also X-Forwarded-User/-Email/-Groups/-Access-Token (oauth2-proxy)
  'x-goog-authenticated-user-',
  'x-ms-client-principal',
  'x-remote-',
  'x-webauth-',
]

// Replaced by the proxy (Host, framing) or not passed on (credentials, Expect: we stream at once).
const REPLACED_REQUEST_HEADERS = new Set(['authorization', 'content-length', 'expect', 'host'])

export function isHopByHop(name: string): boolean {
  return HOP_BY_HOP.has(name) || name.startsWith('proxy-')
}

function isIdentityHeader(name: string): boolean {
  return IDENTITY_HEADERS.has(name) || IDENTITY_PREFIXES.some((prefix) => name.startsWith(prefix))
}

/** Names listed in Connection are hop-by-hop too; never the framing one, which is re-derived anyway. */
function connectionTokens(value: string | string[] | undefined): Set<string> {
  const text = Array.isArray(value) ? value.join(',') : (value ?? '')
  const tokens = new Set(
    text
      .split(',')
      .map((token) => token.trim().toLowerCase())
      .filter(Boolean),
  )
  tokens.delete('content-length')
  return tokens
}

/** Header lines from rawHeaders, keeping the first spelling and every value (e.g. several Set-Cookie). */
function collectHeaders(rawHeaders: string[], keep: (name: string) => boolean): Map<string, {name: string; values: string[]}> {
  const headers = new Map<string, {name: string; values: string[]}>()
  for (let i = 0; i < rawHeaders.length; i += 2) {
    const name = rawHeaders[i]!
    const lower = name.toLowerCase()
    if (!keep(lower)) continue
    const entry = headers.get(lower)
    if (entry) entry.values.push(rawHeaders[i + 1]!)
    else headers.set(lower, {name, values: [rawHeaders[i + 1]!]})
  }

  return headers
}

/** Header values must be latin1 without controls; other usernames are percent-encoded. */
export function headerSafe(value: string): string {
  return /^[\u0021-\u0024\u0026-\u007E]+$/.test(value) ? value : encodeURIComponent(value)
}

export function requestHeaders(req: IncomingMessage, client: Client, host: string, body: Body, identity: string | undefined): OutgoingHttpHeaders {
  const dropped = connectionTokens(req.headers.connection)
  const kept = collectHeaders(
    req.rawHeaders,
    (name) => !isHopByHop(name) && !dropped.has(name) && !isIdentityHeader(name) && !REPLACED_REQUEST_HEADERS.has(name),
  )
  // MLflow ≥ 3.5 refuses Host headers it does not know: send the upstream's own.
  const headers: OutgoingHttpHeaders = {Host: host}
  for (const {name, values} of kept.values()) headers[name] = values.length === 1 ? values[0] : values
  if (client.address) headers['X-Forwarded-For'] = client.address
  headers['X-Forwarded-Proto'] = client.protocol
  if (req.headers.host) headers['X-Forwarded-Host'] = req.headers.host
  if (identity !== undefined) headers[IDENTITY_HEADER] = headerSafe(identity)
  if (body.kind === 'buffer') headers['Content-Length'] = String(body.data.length)
  else if (body.kind === 'stream') Object.assign(headers, body.framing)
  return headers
}

export function copyResponseHead(upstream: IncomingMessage, res: ServerResponse): void {
  const dropped = connectionTokens(upstream.headers.connection)
  const headers = collectHeaders(upstream.rawHeaders, (name) => !isHopByHop(name) && !dropped.has(name))
  res.statusCode = upstream.statusCode!
  if (upstream.statusMessage) res.statusMessage = upstream.statusMessage
  for (const {name, values} of headers.values()) res.setHeader(name, values.length === 1 ? values[0]! : values)
}
