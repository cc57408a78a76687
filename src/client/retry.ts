/**
 * MLflow's retry policy, as its Python client gets it from urllib3's Retry: which answers are
 * retried, how long to wait before each retry (the backoff formula, or the server's Retry-After),
 * and what each retry is announced as. http.ts hands these to ky, which runs the retry loop.
 */
import type {RetrySettings} from './connection.js'

export interface RetryEvent {
  /** Seconds waited before the retry. */
  delaySeconds: number
  /** Whether the wait came from the server's Retry-After header or from the backoff formula. */
  delaySource: 'backoff' | 'retry-after'
  method: string
  path: string
  /** What failed: `HTTP 503`, `timeout`, or the connection error. */
  reason: string
  /** 1 for the first retry. */
  retry: number
  status?: number
}

/** MLflow's _TRANSIENT_FAILURE_RESPONSE_CODES. */
export const RETRY_STATUSES = new Set([408, 429, 500, 502, 503, 504])
/** urllib3 Retry.RETRY_AFTER_STATUS_CODES: retried too when they carry Retry-After. */
export const RETRY_AFTER_STATUSES = new Set([413, 429, 503])
/** urllib3 DEFAULT_BACKOFF_MAX and DEFAULT_RETRY_AFTER_MAX, seconds. */
const BACKOFF_MAX = 120
const RETRY_AFTER_MAX = 21_600
/** urllib3 Retry.get_backoff_time: before retry n, 0 if n ≤ 1, else factor·2^(n−1) + jitter, capped. */
export function backoffSeconds(retry: number, factor: number, jitter: number, random: () => number = Math.random): number {
  if (retry <= 1) return 0
  let value = factor * 2 ** (retry - 1)
  if (jitter !== 0) value += random() * jitter
  return Math.max(0, Math.min(BACKOFF_MAX, value))
}

/** Retry-After as seconds (delta or HTTP date), as urllib3 parses it; undefined when unusable. */
export function parseRetryAfter(value: string, now: number = Date.now()): number | undefined {
  let seconds: number
  if (/^\s*\d+\s*$/.test(value)) {
    seconds = Number(value.trim())
  } else {
    const date = Date.parse(value)
    if (Number.isNaN(date)) return undefined
    seconds = (date - now) / 1000
  }

  return Math.min(Math.max(seconds, 0), RETRY_AFTER_MAX)
}

/** The wait before one retry, and why the retry happens. */
export interface RetryWait {
  reason: string
  seconds: number
  source: 'backoff' | 'retry-after'
  status?: number
}

/**
 * urllib3's decision for an answer before retry `retry` (1-based): undefined when it is not
 * retried. A positive Retry-After (when respected) sets the wait on any retried status, else the
 * backoff formula does.
 */
export function waitForAnswer(status: number, retryAfter: null | string, retry: number, settings: RetrySettings): RetryWait | undefined {
  const {backoffFactor, backoffJitter, respectRetryAfter} = settings
  const retryable = RETRY_STATUSES.has(status) || (respectRetryAfter && retryAfter !== null && RETRY_AFTER_STATUSES.has(status))
  if (!retryable) return undefined
  const after = respectRetryAfter && retryAfter !== null ? parseRetryAfter(retryAfter) : undefined
  if (after !== undefined && after > 0) return {reason: `HTTP ${status}`, seconds: after, source: 'retry-after', status}
  return {reason: `HTTP ${status}`, seconds: backoffSeconds(retry, backoffFactor, backoffJitter), source: 'backoff', status}
}

/** A connection failure that is retried waits by the backoff formula. */
export function waitForFailure(reason: string, retry: number, settings: RetrySettings): RetryWait {
  return {reason, seconds: backoffSeconds(retry, settings.backoffFactor, settings.backoffJitter), source: 'backoff'}
}
