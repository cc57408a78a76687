/**
 * The headers of a forward, both ways: hop-by-hop headers dropped, every header a server behind a
 * proxy might take as "who is calling" stripped from the client's request, and the proxy's own
 * (Host, X-Forwarded-*, the authenticated user) set.
 */
import {type IncomingHttpHeaders, type IncomingMessage} from 'node:http'

import {type Client} from '../client-address.js'

/**
 * The body a forward sends: the caller's buffer, the client's stream, or nothing. A stream with a
 * `length` goes out with that Content-Length; without, chunked, on a connection closed after it.
 */
export type Body =
  | {data: Buffer; kind: 'buffer'}
  /** `head`: the start of the body, already read from the client; the rest follows from its stream. */
  | {head?: Buffer[]; kind: 'stream'; length?: string}
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

/**
 * Whether a request header may reach the upstream (Connection's own list aside), by its name as
 * the client spelled it. Clients send the same few names again and again, so the verdicts are
 * kept; a bounded number, as the names are the client's to choose.
 */
const verdicts = new Map<string, boolean>()
const MAX_VERDICTS = 1000

function passesOn(name: string): boolean {
  let verdict = verdicts.get(name)
  if (verdict === undefined) {
    const lower = name.toLowerCase()
    verdict = !isHopByHop(lower) && !REPLACED_REQUEST_HEADERS.has(lower) && !isIdentityHeader(lower)
    if (verdicts.size >= MAX_VERDICTS) verdicts.clear()
    verdicts.set(name, verdict)
  }

  return verdict
}

/**
 * The headers that say how a body is read: serve reads bodies by them, so Connection may not take
 * them away from the upstream (which would then read the same bytes differently). The length is
 * re-derived anyway.
 */
const BODY_HEADERS = ['content-length', 'content-type', 'content-encoding']

/**
 * Connection values already read: clients and upstreams send the same one or two short values on
 * every message. Short ones only, and a bounded number of them, as the values are theirs to
 * choose. The sets are shared: never changed.
 */
const connectionLists = new Map<string, ReadonlySet<string>>()
const MAX_CONNECTION_LISTS = 1000
const MAX_REMEMBERED_LIST = 100

/** Names listed in Connection are hop-by-hop too; never those of the body. */
function connectionTokens(value: string | string[] | undefined): ReadonlySet<string> {
  const text = Array.isArray(value) ? value.join(',') : (value ?? '')
  let tokens = connectionLists.get(text)
  if (tokens === undefined) {
    const names = new Set(
      text
        .split(',')
        .map((token) => token.trim().toLowerCase())
        .filter(Boolean),
    )
    for (const name of BODY_HEADERS) names.delete(name)
    if (text.length > MAX_REMEMBERED_LIST) return names
    if (connectionLists.size >= MAX_CONNECTION_LISTS) connectionLists.clear()
    connectionLists.set(text, names)
    tokens = names
  }

  return tokens
}

/** Header values must be latin1 without controls; other usernames are percent-encoded. */
export function headerSafe(value: string): string {
  return /^[\u0021-\u0024\u0026-\u007E]+$/.test(value) ? value : encodeURIComponent(value)
}

/**
 * The request's headers for the upstream, as undici takes them (name, value, name, value…), every
 * line in the client's spelling and order. Host and the framing are undici's to write: Host as the
 * upstream's own (MLflow ≥ 3.5 refuses Host headers it does not know), the length from the body.
 */
export function requestHeaders(req: IncomingMessage, client: Client, body: Body, identity: string | undefined): string[] {
  const dropped = req.headers.connection === undefined ? undefined : connectionTokens(req.headers.connection)
  const raw = req.rawHeaders
  const headers: string[] = []
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i]!
    if (!passesOn(name) || dropped?.has(name.toLowerCase())) continue
    headers.push(name, raw[i + 1]!)
  }

  if (client.address) headers.push('X-Forwarded-For', client.address)
  headers.push('X-Forwarded-Proto', client.protocol)
  if (req.headers.host) headers.push('X-Forwarded-Host', req.headers.host)
  if (identity !== undefined) headers.push(IDENTITY_HEADER, headerSafe(identity))
  if (body.kind === 'stream' && body.length !== undefined) headers.push('Content-Length', body.length)
  return headers
}

/**
 * The upstream's answer head as the client gets it (writeHead's flat form, every Set-Cookie line
 * kept): its hop-by-hop headers, and those its Connection names, dropped. `rawHeaders` as undici
 * gives them (latin1 bytes, name then value).
 */
export function responseHead(rawHeaders: Buffer[]): string[] {
  const lines: string[] = []
  const connection: string[] = []
  for (let i = 0; i < rawHeaders.length; i += 2) {
    const name = rawHeaders[i]!.toString('latin1')
    const value = rawHeaders[i + 1]!.toString('latin1')
    const lower = name.toLowerCase()
    if (lower === 'connection') connection.push(value)
    else if (!isHopByHop(lower)) lines.push(name, value)
  }

  if (connection.length === 0) return lines
  const dropped = connectionTokens(connection)
  const kept: string[] = []
  for (let i = 0; i < lines.length; i += 2) if (!dropped.has(lines[i]!.toLowerCase())) kept.push(lines[i]!, lines[i + 1]!)
  return kept
}

/** undici's raw header lines as Node's IncomingHttpHeaders: lower-case names, Set-Cookie a list, other repeats joined. */
export function headersObject(rawHeaders: Buffer[]): IncomingHttpHeaders {
  const headers: IncomingHttpHeaders = {}
  for (let i = 0; i < rawHeaders.length; i += 2) {
    const name = rawHeaders[i]!.toString('latin1').toLowerCase()
    const value = rawHeaders[i + 1]!.toString('latin1')
    const previous = headers[name]
    if (name === 'set-cookie') headers['set-cookie'] = [...(headers['set-cookie'] ?? []), value]
    else headers[name] = previous === undefined ? value : `${String(previous)}, ${value}`
  }

  return headers
}
