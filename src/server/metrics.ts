/**
 * serve's Prometheus metrics (docs/operations.md, "Metrics"): one registry per serve, so two
 * serves in one process (tests) never mix their counts. Every label takes a bounded set of values:
 * a route family is the route table's template (or `unknown`), never a raw path, and no label ever
 * holds a user name, an address or a resource id.
 *
 * The other parts of serve report through the small methods below; the features that count
 * lockouts and token logins call `lockout()` and `tokenAuthentication()`.
 */
import {collectDefaultMetrics, Counter, Histogram, Registry} from 'prom-client'

/**
 * What serve did with a request:
 * - `public`: a route that needs no login (MLflow's /health and static files, serve's /-/live and /-/ready);
 * - `unauthenticated`: no valid credentials (401);
 * - `allow`: decided and forwarded to MLflow (whatever MLflow then answered);
 * - `deny`: refused by a permission check (403);
 * - `local`: answered by serve itself (the auth API, the sign-up page);
 * - `invalid`: refused before any decision (an odd path, a GET with a body, …);
 * - `unavailable`: not decided now (the store out of reach, password checks busy);
 * - `error`: serve failed (500).
 */
export type Decision = 'allow' | 'deny' | 'error' | 'invalid' | 'local' | 'public' | 'unauthenticated' | 'unavailable'

/** How a token login ended; the token feature reports each one. */
export type TokenResult = 'expired' | 'rejected' | 'verified'

export interface RequestObservation {
  decision: Decision
  /** The route table's template, or `unknown`. */
  family: string
  method: string
  seconds: number
  status: number
}

/** The methods a request may carry as a label; any other is `other`, so a client cannot add series. */
const METHODS = new Set(['DELETE', 'GET', 'HEAD', 'OPTIONS', 'PATCH', 'POST', 'PUT'])

export class ServeMetrics {
  readonly registry = new Registry()
  private readonly cacheLookups: Counter<'result'>
  private readonly lockouts: Counter
  private readonly logLinesDropped: Counter<'log'>
  private readonly logLinesFailed: Counter<'log'>
  private readonly requestDuration: Histogram<'decision'>
  private readonly requests: Counter<'decision' | 'family' | 'method' | 'status'>
  private readonly storeWrites: Histogram<'outcome'>
  private readonly tokenLogins: Counter<'result'>
  private readonly upstreamLatency: Histogram<'outcome'>

  constructor() {
    const registers = [this.registry]
    this.requests = new Counter({
      help: 'Requests answered, by route family (route table template), method, status and decision.',
      labelNames: ['family', 'method', 'status', 'decision'],
      name: 'mlflowctl_requests_total',
      registers,
    })
    this.requestDuration = new Histogram({
      help: 'Time from a request to the end of its answer, by decision.',
      labelNames: ['decision'],
      name: 'mlflowctl_request_duration_seconds',
      registers,
    })
    this.upstreamLatency = new Histogram({
      help: "Time from sending a request to MLflow to its answer's head; outcome: answered, or failed (no answer).",
      labelNames: ['outcome'],
      name: 'mlflowctl_upstream_latency_seconds',
      registers,
    })
    this.cacheLookups = new Counter({
      help: 'Credential checks by whether they were answered from memory (hit) or needed a password derivation (miss).',
      labelNames: ['result'],
      name: 'mlflowctl_credential_cache_lookups_total',
      registers,
    })
    this.storeWrites = new Histogram({
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
      help: 'Time for a change of the auth store to be durable (JSON file or PostgreSQL), by outcome.',
      labelNames: ['outcome'],
      name: 'mlflowctl_store_write_duration_seconds',
      registers,
    })
    this.lockouts = new Counter({
      help: 'Accounts or clients locked out after repeated wrong passwords.',
      name: 'mlflowctl_lockouts_total',
      registers,
    })
    this.tokenLogins = new Counter({
      help: 'Logins with an access token, by result.',
      labelNames: ['result'],
      name: 'mlflowctl_token_authentications_total',
      registers,
    })
    this.logLinesDropped = new Counter({
      help: 'Lines of the access log or the audit log dropped because their destination could not keep up (a slow disk, a blocked pipe).',
      labelNames: ['log'],
      name: 'mlflowctl_log_lines_dropped_total',
      registers,
    })
    this.logLinesFailed = new Counter({
      help: 'Lines of the audit log lost because they could not be written: a write failed (a full disk, a closed pipe), or the line came after the log was closed at a stop.',
      labelNames: ['log'],
      name: 'mlflowctl_log_lines_failed_total',
      registers,
    })
    // Series that exist from the start read 0 rather than absent, so a rate() works from the first scrape.
    for (const result of ['hit', 'miss']) this.cacheLookups.inc({result}, 0)
    for (const result of ['expired', 'rejected', 'verified'] satisfies TokenResult[]) this.tokenLogins.inc({result}, 0)
    for (const log of ['access', 'audit']) this.logLinesDropped.inc({log}, 0)
    this.logLinesFailed.inc({log: 'audit'}, 0)
  }

  /** Node's process metrics (CPU, memory, event loop, handles), once the metrics are exposed. */
  collectProcessMetrics(): void {
    collectDefaultMetrics({prefix: 'mlflowctl_', register: this.registry})
  }

  request(observation: RequestObservation): void {
    const {decision, family, seconds, status} = observation
    const method = METHODS.has(observation.method) ? observation.method : 'other'
    this.requests.inc({decision, family, method, status: String(status)})
    this.requestDuration.observe({decision}, seconds)
  }

  upstream(seconds: number, answered: boolean): void {
    this.upstreamLatency.observe({outcome: answered ? 'answered' : 'failed'}, seconds)
  }

  credentialLookup(hit: boolean): void {
    this.cacheLookups.inc({result: hit ? 'hit' : 'miss'})
  }

  storeWrite(seconds: number, ok: boolean): void {
    this.storeWrites.observe({outcome: ok ? 'ok' : 'failed'}, seconds)
  }

  /** For the lockout feature: one account or client locked out. */
  lockout(): void {
    this.lockouts.inc()
  }

  /** A line of the access log or the audit log dropped: its destination could not keep up. */
  logLineDropped(log: 'access' | 'audit'): void {
    this.logLinesDropped.inc({log})
  }

  /** A line of the audit log lost: its write failed, or it came after the log was closed. */
  logLineFailed(log: 'audit'): void {
    this.logLinesFailed.inc({log})
  }

  /** For the token feature: one token login and how it ended. */
  tokenAuthentication(result: TokenResult): void {
    this.tokenLogins.inc({result})
  }

  /** The exposition text and its content type. */
  async exposition(): Promise<{body: string; contentType: string}> {
    return {body: await this.registry.metrics(), contentType: this.registry.contentType}
  }
}
