/** Exponential backoff with full jitter, on a clock. */

import { type Clock, sleep, systemClock } from "./clock.js";

/** Backoff settings. */
export interface BackoffOptions {
  /** First delay's ceiling. @default 5 */
  baseMs?: number;
  /** Largest delay. @default 1000 */
  maxMs?: number;
  /** @default Math.random */
  random?: () => number;
}

/** The delay before retry number `attempt` (1-based): uniform in [0, min(max, base * 2^(attempt-1))]. */
export function backoffDelay(attempt: number, opts: BackoffOptions = {}): number {
  const base = opts.baseMs ?? 5;
  const max = opts.maxMs ?? 1000;
  const ceiling = Math.min(max, base * 2 ** Math.max(0, attempt - 1));
  return Math.floor((opts.random ?? Math.random)() * ceiling);
}

/** Options of {@link retry}. */
export interface RetryOptions extends BackoffOptions {
  /** @default 10 */
  maxAttempts?: number;
  /** @default systemClock */
  clock?: Clock;
  /** Which errors are worth another attempt. @default reads `err.retryable` */
  isRetryable?: (err: unknown) => boolean;
  signal?: AbortSignal;
}

/** Whether an error says it may succeed if tried again. */
export const isRetryable = (err: unknown): boolean =>
  typeof err === "object" && err !== null && (err as { retryable?: unknown }).retryable === true;

/** An open circuit says when it lets a trial through: trying before that is a wasted attempt. */
function reopensIn(err: unknown): number {
  const e = err as { code?: unknown; data?: { retryInMs?: unknown } };
  return e?.code === "CIRCUIT_OPEN" && typeof e.data?.retryInMs === "number" ? e.data.retryInMs : 0;
}

/**
 * Runs `fn` until it succeeds, a non-retryable error is thrown, or the attempts run out. After
 * CIRCUIT_OPEN it waits at least until the circuit allows a trial.
 */
export async function retry<T>(fn: (attempt: number) => Promise<T>, opts: RetryOptions = {}): Promise<T> {
  const maxAttempts = opts.maxAttempts ?? 10;
  const check = opts.isRetryable ?? isRetryable;
  for (let attempt = 1; ; attempt++) {
    try {
      return await fn(attempt);
    } catch (err) {
      if (attempt >= maxAttempts || !check(err)) throw err;
      await sleep(opts.clock ?? systemClock, Math.max(backoffDelay(attempt, opts), reopensIn(err)), opts.signal);
    }
  }
}
