/**
 * serve's own liveness and readiness (docs/operations.md, "Health"): live while the process
 * answers; ready while its store is in step and may decide, and MLflow answers its /health. Both
 * answers are public, so they say which part is not ready and nothing more (the log has the why).
 */
import {type ServerResponse} from 'node:http'

import {type Upstream} from './proxy.js'
import {sendJson} from './responses.js'
import {type Store} from './store/store.js'

export interface ReadinessOptions {
  /** MLflow's health route, below its static prefix. */
  healthPath: string
  /** An upstream answer is reused for this long, so a flood of readiness checks sends MLflow at most one probe per interval; default 1 000 ms. */
  intervalMs?: number
  store: Store
  /** How long the probe waits for MLflow; default 2 000 ms. */
  timeoutMs?: number
  upstream: Upstream
}

export interface Readiness {
  checks: {store: 'not ready' | 'ok'; upstream: 'ok' | 'unreachable'}
  ready: boolean
}

/** Whether MLflow answered its health check, asked at most once per interval; concurrent callers share one probe. */
export class UpstreamProbe {
  private last: {at: number; ok: boolean} | undefined
  private pending: Promise<boolean> | undefined

  constructor(
    private readonly upstream: Upstream,
    private readonly path: string,
    private readonly intervalMs: number,
    private readonly timeoutMs: number,
  ) {}

  check(): Promise<boolean> {
    if (this.last && Date.now() - this.last.at < this.intervalMs) return Promise.resolve(this.last.ok)
    this.pending ??= this.upstream
      .request('GET', this.path, {maxResponseBytes: 64 * 1024, timeoutMs: this.timeoutMs})
      .then(
        (answer) => answer.status === 200,
        () => false,
      )
      .then((ok) => {
        this.last = {at: Date.now(), ok}
        this.pending = undefined
        return ok
      })
    return this.pending
  }
}

export class Health {
  private readonly probe: UpstreamProbe

  constructor(private readonly options: ReadinessOptions) {
    this.probe = new UpstreamProbe(options.upstream, options.healthPath, options.intervalMs ?? 1000, options.timeoutMs ?? 2000)
  }

  async readiness(): Promise<Readiness> {
    const health = this.options.store.health()
    const store = health.ready && health.decide ? 'ok' : 'not ready'
    const upstream = (await this.probe.check()) ? 'ok' : 'unreachable'
    return {checks: {store, upstream}, ready: store === 'ok' && upstream === 'ok'}
  }

  /** Answers a liveness or readiness check: 200 when live or ready, else 503; never cached by anyone between. */
  async answer(kind: 'live' | 'ready', response: ServerResponse): Promise<void> {
    const headers = {'cache-control': 'no-store'}
    if (kind === 'live') {
      sendJson(response, 200, {status: 'live'}, headers)
      return
    }

    const {checks, ready} = await this.readiness()
    sendJson(response, ready ? 200 : 503, {checks, status: ready ? 'ready' : 'not ready'}, ready ? headers : {...headers, 'retry-after': '1'})
  }
}
