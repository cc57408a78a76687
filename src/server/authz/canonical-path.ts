/**
 * The path a request is decided on. Werkzeug percent-decodes the path before routing, so serve
 * decides on the decoded path; spellings that other proxies or servers read differently (encoded
 * slashes, dot segments, doubled slashes, `;` parameters, backslashes) are refused rather than
 * guessed at (docs/mlflow-auth-contract.md, "Authorization bypass classes", non-canonical paths).
 */

export type CanonicalPath = {ok: false; reason: string} | {ok: true; path: string}

/** ASCII control characters: never part of a path or a resource name serve decides on. */
// eslint-disable-next-line no-control-regex -- control characters are what it looks for
export const CONTROL = /[\u0000-\u001F\u007F]/

/**
 * Whether a path is already canonical as it stands: no percent-encoding (so decoding changes
 * nothing), no backslash, `;` or control character, no empty segment but a trailing one, no dot
 * segment. Nearly every request's path is; one scan of it, with nothing allocated. Any other path
 * takes the full check below, which also says what is wrong with it.
 */
function isPlain(rawPath: string): boolean {
  let start = 1
  for (let i = 1; i <= rawPath.length; i++) {
    const code = i < rawPath.length ? rawPath.charCodeAt(i) : 47
    if (code === 47 /* / */) {
      const length = i - start
      if (length === 0 && i < rawPath.length) return false
      if (rawPath.charCodeAt(start) === 46 /* . */ && (length === 1 || (length === 2 && rawPath.charCodeAt(start + 1) === 46))) return false
      start = i + 1
    } else if (code < 32 || code === 127 || code === 37 /* % */ || code === 59 /* ; */ || code === 92 /* \ */) return false
  }

  return true
}

export function canonicalPath(rawPath: string): CanonicalPath {
  if (rawPath.startsWith('/') && isPlain(rawPath)) return {ok: true, path: rawPath}
  return decodedPath(rawPath)
}

/** The whole check, decoding each segment: what canonicalPath answers for every path (exported for the test that says so). */
export function decodedPath(rawPath: string): CanonicalPath {
  if (!rawPath.startsWith('/')) return {ok: false, reason: 'the request target must be a path starting with /'}
  if (rawPath.includes('\\')) return {ok: false, reason: 'backslashes are not allowed in paths'}
  if (rawPath.includes(';')) return {ok: false, reason: '; parameters are not allowed in paths'}
  const segments = rawPath.slice(1).split('/')
  const decoded: string[] = []
  for (const [index, segment] of segments.entries()) {
    // An empty segment is only allowed as the trailing slash some routes have (/ajax-api/3.0/jobs/).
    if (segment === '' && index < segments.length - 1) return {ok: false, reason: 'empty path segments (//) are not allowed'}
    let value: string
    try {
      value = decodeURIComponent(segment)
    } catch {
      return {ok: false, reason: 'the path has a malformed percent-encoding'}
    }

    if (value.includes('/') || value.includes('\\')) return {ok: false, reason: 'encoded slashes are not allowed in paths'}
    if (CONTROL.test(value)) return {ok: false, reason: 'control characters are not allowed in paths'}
    if (value === '.' || value === '..') return {ok: false, reason: 'dot segments are not allowed in paths'}
    decoded.push(value)
  }

  return {ok: true, path: `/${decoded.join('/')}`}
}
