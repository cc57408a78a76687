/**
 * serve's Prometheus metrics (docs/operations.md, "Metrics"): one registry per serve, so two
 * serves in one process (tests) never mix their counts. Every label takes a bounded set of values:
 * a route family is the route table's template (or `unknown`), never a raw path, and no label ever
 * holds a user name, an address or a resource id.
 *
 * The other parts of serve report through the small methods below; the features that count
 * lockouts and token logins call `lockout()` and `tokenAuthentication()`.
 */
import {collectDefaultMetrics, Counter, Histogram, type Metric, Registry} from 'prom-client'

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

/** prom-client's default buckets, which the per-request histograms have always used. */
const DEFAULT_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10]

/** One line of a metric's exposition, as prom-client's registry takes it. */
interface SeriesValue {
  labels: Record<string, number | string>
  metricName: string
  value: number
}

/**
 * A histogram with one label, counted in plain arrays and handed to the registry only when it is
 * read: prom-client hashes the label object on every observation, which shows in serve's CPU per
 * request. The exposition is the one prom-client's Histogram writes (series in the order first
 * seen, cumulative buckets, +Inf, _sum, _count).
 */
class TallyHistogram {
  readonly aggregator = 'sum'
  readonly type = 'histogram'
  private readonly series = new Map<string, {buckets: number[]; count: number; sum: number}>()

  constructor(
    readonly name: string,
    readonly help: string,
    private readonly label: string,
    private readonly bounds = DEFAULT_BUCKETS,
  ) {}

  observe(value: string, seconds: number): void {
    if (!Number.isFinite(seconds)) throw new TypeError(`Value is not a valid number: ${seconds}`)
    let series = this.series.get(value)
    if (!series) {
      series = {buckets: this.bounds.map(() => 0), count: 0, sum: 0}
      this.series.set(value, series)
    }

    series.sum += seconds
    series.count += 1
    const {bounds} = this
    for (let i = 0; i < bounds.length; i++) {
      if (seconds <= bounds[i]) {
        series.buckets[i]++
        break
      }
    }
  }

  /** prom-client's metric object (labels as its Histogram.get() gives them). */
  get(): {aggregator: string; help: string; name: string; type: string; values: SeriesValue[]} {
    const values: SeriesValue[] = []
    const bucket = `${this.name}_bucket`
    for (const [value, {buckets, count, sum}] of this.series) {
      let total = 0
      for (const [i, le] of this.bounds.entries()) {
        total += buckets[i]
        values.push({labels: {le, [this.label]: value}, metricName: bucket, value: total})
      }

      values.push(
        {labels: {le: '+Inf', [this.label]: value}, metricName: bucket, value: count},
        {labels: {[this.label]: value}, metricName: `${this.name}_sum`, value: sum},
        {labels: {[this.label]: value}, metricName: `${this.name}_count`, value: count},
      )
    }

    return {aggregator: this.aggregator, help: this.help, name: this.name, type: this.type, values}
  }

  /** Into the registry, in the place a Histogram created now would take. */
  register(registry: Registry): void {
    registry.registerMetric(this as unknown as Metric)
  }
}

export class ServeMetrics {
  readonly registry = new Registry()
  private readonly cacheLookups: Counter<'result'>
  private readonly lockouts: Counter
  private readonly logLinesDropped: Counter<'log'>
  private readonly logLinesFailed: Counter<'log'>
  private readonly requestDuration: TallyHistogram
  private readonly requests: Counter<'decision' | 'family' | 'method' | 'status'>
  /**
   * The requests counted since the last read, by their labels joined: the counter gets them when
   * it is read (its collect), so no label object is hashed per request.
   */
  private readonly requestTallies = new Map<string, {count: number; labels: {decision: Decision; family: string; method: string; status: string}}>()
  /** Credential lookups since the last read: hits, misses. */
  private readonly lookupTallies = [0, 0]
  private readonly storeWrites: Histogram<'outcome'>
  private readonly tokenLogins: Counter<'result'>
  private readonly upstreamLatency: TallyHistogram

  constructor() {
    const registers = [this.registry]
    this.requests = new Counter({
      collect: () => {
        for (const tally of this.requestTallies.values()) {
          if (tally.count === 0) continue
          this.requests.inc(tally.labels, tally.count)
          tally.count = 0
        }
      },
      help: 'Requests answered, by route family (route table template), method, status and decision.',
      labelNames: ['family', 'method', 'status', 'decision'],
      name: 'mlflowctl_requests_total',
      registers,
    })
    this.requestDuration = new TallyHistogram('mlflowctl_request_duration_seconds', 'Time from a request to the end of its answer, by decision.', 'decision')
    this.requestDuration.register(this.registry)
    this.upstreamLatency = new TallyHistogram(
      'mlflowctl_upstream_latency_seconds',
      "Time from sending a request to MLflow to its answer's head; outcome: answered, or failed (no answer).",
      'outcome',
    )
    this.upstreamLatency.register(this.registry)
    this.cacheLookups = new Counter({
      collect: () => {
        const [hits, misses] = this.lookupTallies
        if (hits > 0) this.cacheLookups.inc({result: 'hit'}, hits)
        if (misses > 0) this.cacheLookups.inc({result: 'miss'}, misses)
        this.lookupTallies[0] = 0
        this.lookupTallies[1] = 0
      },
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
    const key = `${decision} ${family} ${method} ${status}`
    const tally = this.requestTallies.get(key)
    if (tally) tally.count++
    else this.requestTallies.set(key, {count: 1, labels: {decision, family, method, status: String(status)}})
    this.requestDuration.observe(decision, seconds)
  }

  upstream(seconds: number, answered: boolean): void {
    this.upstreamLatency.observe(answered ? 'answered' : 'failed', seconds)
  }

  credentialLookup(hit: boolean): void {
    this.lookupTallies[hit ? 0 : 1]++
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
