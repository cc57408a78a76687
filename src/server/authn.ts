/**
 * Who is calling: HTTP Basic, read as Werkzeug reads it, or a Bearer access token (tokens.ts). The
 * credentials are checked against the store by credential-check.ts and tokens.ts.
 */

export interface BasicCredentials {
  password: string
  username: string
}

// One decoder for every request: decode() without {stream: true} keeps no state between calls.
const UTF8 = new TextDecoder('utf-8', {fatal: true})

/**
 * `Bearer <token>` (the scheme in any case, as RFC 9110 has it): the token's text, or undefined when
 * the header is not a Bearer one. What the text is, is the token check's to judge.
 */
export function parseBearerToken(header: string | undefined): string | undefined {
  if (!header) return undefined
  const match = /^bearer +(\S+) *$/i.exec(header)
  if (match) return match[1]
  // A Bearer header with no token, or more than one word: a token no one holds.
  return /^bearer(?: |$)/i.test(header) ? '' : undefined
}

/** Werkzeug: `Basic base64(user:pass)`, UTF-8, split at the first colon; anything else is no credentials. */
export function parseBasicAuthorization(header: string | undefined): BasicCredentials | undefined {
  if (!header) return undefined
  const match = /^basic +([A-Za-z0-9+/]+=*) *$/i.exec(header)
  if (!match) return undefined
  let decoded: string
  try {
    decoded = UTF8.decode(Buffer.from(match[1], 'base64'))
  } catch {
    return undefined
  }

  const colon = decoded.indexOf(':')
  if (colon < 0) return undefined
  return {password: decoded.slice(colon + 1), username: decoded.slice(0, colon)}
}
