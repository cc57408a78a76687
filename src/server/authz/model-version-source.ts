/**
 * What a model version's `source` names, read the way the upstream MLflow server reads it when it
 * later serves the version's artifacts: Python's urlparse on the raw string (the scheme lower-cased,
 * nothing percent-decoded), `runs:/<run id>/…`, `models:/<logged model id>` or
 * `models:/<name>/<version>` / `models:/<name>@<alias>`, an `mlflow-artifacts:/<experiment id>/…`
 * path, or an http(s) URL whose path is split at its `/api/2.0/mlflow-artifacts/artifacts/` route.
 *
 * A source that other readers could take for something else is refused outright rather than
 * guessed at: percent-encodings (MLflow's checks decode them, its artifact lookup does not), a
 * network location on `mlflow-artifacts:`, `runs:` or `models:` (urlparse drops it, the path
 * then starts elsewhere), a second `mlflow-artifacts` route in a URL (MLflow reads the first),
 * query strings, fragments and `;` parameters, `.`/`..` segments, control characters, backslashes.
 */
import {artifactPathExperiment} from './access.js'
import {CONTROL} from './canonical-path.js'

export type SourceReading =
  /** The artifacts served by the tracking server under this experiment. */
  | {experimentId: string; kind: 'experiment-artifacts'}
  /** A local path or file: URI; the upstream requires it inside the run or logged model given with it. */
  | {kind: 'local'}
  | {kind: 'logged-model'; modelId: string}
  /** Another store (s3://, gs://, …) the server would read with its own credentials. */
  | {kind: 'other-store'; scheme: string}
  | {kind: 'refused'; reason: string}
  | {kind: 'registered-model'; name: string}
  | {kind: 'run'; runId: string}

const ARTIFACTS_ROUTE = '/api/2.0/mlflow-artifacts/artifacts/'

export function readModelVersionSource(source: string): SourceReading {
  const refused = (reason: string): SourceReading => ({kind: 'refused', reason})
  if (CONTROL.test(source)) return refused('it contains control characters')
  if (source !== source.trim()) return refused('it starts or ends with white space')
  if (source.includes('\\')) return refused('it contains a backslash')
  if (/%[\dA-Fa-f]{2}/.test(source)) return refused('it contains a percent-encoding')
  if (source.split('/').some((segment) => segment === '.' || segment === '..')) return refused('it contains . or .. segments')

  // urlparse's scheme: the text before the first colon when it is made of scheme characters.
  const scheme = /^([A-Za-z][\d+.A-Za-z-]*):/.exec(source)
  if (!scheme) return source.startsWith('/') ? {kind: 'local'} : refused('it is a relative path')
  const name = scheme[1].toLowerCase()
  const rest = source.slice(scheme[0].length)
  if (name === 'file') return {kind: 'local'}
  if (!['http', 'https', 'mlflow-artifacts', 'models', 'runs'].includes(name)) return {kind: 'other-store', scheme: name}
  if (/[#;?]/.test(rest)) return refused('it contains a query, a fragment or ; parameters')

  if (name === 'http' || name === 'https') {
    if (!rest.startsWith('//')) return refused(`an ${name} source must be an absolute URL`)
    const slash = rest.indexOf('/', 2)
    const path = slash === -1 ? '' : rest.slice(slash)
    const parts = path.split(ARTIFACTS_ROUTE)
    if (parts.length !== 2) return refused(`an ${name} source must contain the route ${ARTIFACTS_ROUTE} exactly once`)
    return servedArtifacts(parts[1])
  }

  if (!rest.startsWith('/') || rest.startsWith('//')) return refused(`a ${name}: source must be ${name}:/ followed by a path, without a network location`)
  const path = rest.slice(1)
  if (name === 'mlflow-artifacts') return servedArtifacts(path)
  if (name === 'runs') {
    const runId = path.split('/', 1)[0]
    return runId === '' ? refused('it names no run') : {kind: 'run', runId}
  }

  const parts = path.split('/')
  if (parts.length > 2 || parts.some((part) => part.trim() === ''))
    return refused('a models:/ source must be models:/<model id>, models:/<name>/<version> or models:/<name>@<alias>')
  if (parts.length === 2) return {kind: 'registered-model', name: parts[0]}
  const at = path.lastIndexOf('@')
  if (at !== -1)
    return at === 0 || at === path.length - 1 ? refused('it names no registered model or alias') : {kind: 'registered-model', name: path.slice(0, at)}
  return {kind: 'logged-model', modelId: path}
}

/** The root of served artifacts (leading slashes dropped, as MLflow does): its experiment. */
function servedArtifacts(path: string): SourceReading {
  const experimentId = artifactPathExperiment(path.replace(/^\/+/, ''))
  return experimentId === undefined ? {kind: 'refused', reason: 'it names no experiment'} : {experimentId, kind: 'experiment-artifacts'}
}
