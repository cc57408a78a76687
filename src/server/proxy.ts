/**
 * Forwarding to the upstream MLflow tracking server for `mlflowctl serve`
 * (docs/mlflow-auth-contract.md, "Forwarding to the upstream"): a keep-alive connection pool,
 * bodies streamed both ways (never buffered), and headers cleaned so that the upstream only hears
 * what the proxy vouches for.
 *
 * Built on undici's connection pool (Node's own HTTP client underneath fetch, faster than
 * node:http's for this), in small modules under upstream/: the pool and failure reporting (pool.ts,
 * errors.ts), the headers both ways (headers.ts), a forward as named passes (forward.ts), and
 * serve's own buffered calls (request.ts).
 */
import {type IncomingMessage, type ServerResponse} from 'node:http'

import {forward, type ForwardOptions} from './upstream/forward.js'
import {UpstreamPool, type UpstreamOptions} from './upstream/pool.js'
import {request, type RequestOptions, type UpstreamResponse} from './upstream/request.js'

export {type MlflowErrorBody, UpstreamError, type UpstreamFailureStatus} from './upstream/errors.js'
export {framingProblem, type ForwardOptions, READ_AHEAD_BYTES} from './upstream/forward.js'
export {IDENTITY_HEADER, isHopByHop} from './upstream/headers.js'
export {type UpstreamOptions, type UpstreamTlsOptions} from './upstream/pool.js'
export {type RequestOptions, type UpstreamResponse} from './upstream/request.js'

export interface Upstream {
  /** Destroys pooled and in-use connections; later calls answer 503 (forward) or reject (request). */
  close(): Promise<void>
  /**
   * Streams the client's request to the upstream and the answer back. Never rejects: failures
   * become a 400/502/503/504 JSON answer, or a destroyed client socket once the answer has started.
   * Resolves when the exchange is over. An `Expect: 100-continue` is the HTTP server's to answer
   * (Node does it before 'request' unless the server listens for 'checkContinue'); it is not
   * passed on, since the body is streamed straight away.
   */
  forward(req: IncomingMessage, res: ServerResponse, options?: ForwardOptions): Promise<void>
  /** serve's own calls to the upstream, on the same pool; any status resolves, failures reject with UpstreamError. */
  request(method: string, pathAndQuery: string, options?: RequestOptions): Promise<UpstreamResponse>
  /** The upstream as shown in messages: origin and path prefix, never credentials. */
  readonly url: string
}

export function createUpstream(options: UpstreamOptions): Upstream {
  const pool = new UpstreamPool(options)
  return {
    close: () => pool.close(),
    forward: (req, res, forwardOptions) => forward(pool, req, res, forwardOptions),
    request: (method, pathAndQuery, requestOptions) => request(pool, method, pathAndQuery, requestOptions),
    url: pool.url,
  }
}
