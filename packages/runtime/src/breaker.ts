/**
 * A circuit breaker: after repeated failures of a dependency it stops calling it for a while and
 * fails fast, then lets one trial call through to learn whether the dependency recovered. One
 * mechanism for agent spawn, state updates, event publishing, delegation and hooks.
 *
 * The states live in an XState machine (closed → open → halfOpen → closed | open) so the rules
 * are in one table; the open → halfOpen timeout runs on the injected {@link Clock}, so tests move
 * time with a ManualClock. Two trip rules, as in Resilience4j: a count of consecutive failures,
 * and optionally a failure rate over a sliding window of recent calls (hooks use the rate).
 */

import { CadreError } from "@cadre/protocol";
import { assign, createActor, setup } from "xstate";
import { isRetryable } from "./backoff.js";
import { type Clock, systemClock } from "./clock.js";

/** Where a breaker stands: calls flow, fail fast, or one trial call is allowed. */
export type BreakerState = "closed" | "open" | "halfOpen";

/** A state change, reported to `onTransition` (and later published on the bus). */
export interface BreakerTransition {
  breaker: string;
  from: BreakerState;
  to: BreakerState;
  /** Clock time of the change. */
  at: number;
  /** Consecutive failures counted since the last success. */
  failures: number;
}

/** Opens the circuit when the share of failures among recent calls is too high. */
export interface FailureRateRule {
  /** Opens when failures / samples is strictly greater than this (0..1). */
  threshold: number;
  /** How many of the latest calls are kept. */
  window: number;
  /** Fewer samples than this never open the circuit: one early failure is not a rate. */
  minSamples: number;
}

/** Options of {@link createBreaker}. */
export interface BreakerOptions {
  /** Names the breaker in errors and transitions, e.g. `state_update`. */
  name: string;
  /** Consecutive failures that open the circuit. */
  threshold: number;
  /** How long the circuit stays open before a trial call is allowed. */
  resetTimeoutMs: number;
  /** @default systemClock */
  clock?: Clock;
  /**
   * Called synchronously on every state change. It must not throw: publish asynchronously and
   * handle errors there.
   */
  onTransition?: (transition: BreakerTransition) => void;
  /**
   * Which errors count against the dependency. A non-retryable error (a validation error) is the
   * caller's fault and says nothing about the dependency's health.
   * @default reads `err.retryable`, like {@link isRetryable}
   */
  isFailure?: (err: unknown) => boolean;
  /** A second trip rule on the failure rate; absent, only consecutive failures count. */
  failureRate?: FailureRateRule;
}

/** A running breaker. */
export interface Breaker {
  readonly name: string;
  readonly state: BreakerState;
  /**
   * Runs `fn` unless the circuit is open; then rejects at once with {@link CircuitOpenError}
   * without calling it. In halfOpen only one call (the trial) runs at a time.
   */
  call<T>(fn: () => Promise<T>): Promise<T>;
  /** Stops the machine and its timer; later calls throw. */
  stop(): void;
}

/** The call was refused because the circuit is open: the dependency failed too often lately. */
export class CircuitOpenError extends CadreError {
  static readonly code = "CIRCUIT_OPEN";
  constructor(breaker: string, retryInMs: number, options?: ErrorOptions) {
    super(
      CircuitOpenError.code,
      `circuit "${breaker}" is open after repeated failures, so the call was not made; retry in ${retryInMs} ms`,
      { retryable: true, data: { breaker, retryInMs }, ...options },
    );
  }
}

/** The breaker settings from the edge-case analysis, by breaker name. */
export const DEFAULT_BREAKERS = Object.freeze({
  agent_spawn: Object.freeze({ threshold: 10, resetTimeoutMs: 60_000 }),
  state_update: Object.freeze({ threshold: 5, resetTimeoutMs: 30_000 }),
  event_publish: Object.freeze({ threshold: 100, resetTimeoutMs: 10_000 }),
  delegation: Object.freeze({ threshold: 5, resetTimeoutMs: 120_000 }),
});

/** Names of the default breakers. */
export type DefaultBreakerName = keyof typeof DEFAULT_BREAKERS;

interface BreakerConfig {
  threshold: number;
  resetTimeoutMs: number;
  failureRate: FailureRateRule | undefined;
}

interface BreakerContext {
  config: BreakerConfig;
  failures: number;
  /** Latest outcomes, true for a failure; kept only with a failure-rate rule. */
  outcomes: boolean[];
}

type BreakerEvent =
  | { type: "SUCCESS" }
  | { type: "FAILURE" }
  | { type: "TRIAL" }
  | { type: "TRIAL_SUCCESS" }
  | { type: "TRIAL_FAILURE" }
  | { type: "TRIAL_ABORT" };

function recorded(ctx: BreakerContext, failed: boolean): boolean[] {
  const rule = ctx.config.failureRate;
  if (!rule) return ctx.outcomes;
  const next = [...ctx.outcomes, failed];
  return next.length > rule.window ? next.slice(next.length - rule.window) : next;
}

/** Whether one more failure opens the circuit. Pure: it runs as a guard before the failure is recorded. */
function tripsOnFailure(ctx: BreakerContext): boolean {
  if (ctx.failures + 1 >= ctx.config.threshold) return true;
  const rule = ctx.config.failureRate;
  if (!rule) return false;
  const outcomes = recorded(ctx, true);
  if (outcomes.length < rule.minSamples) return false;
  return outcomes.filter(Boolean).length / outcomes.length > rule.threshold;
}

const breakerMachine = setup({
  types: {} as { context: BreakerContext; events: BreakerEvent; input: BreakerConfig },
  delays: { resetTimeout: ({ context }) => context.config.resetTimeoutMs },
  guards: { tripsOnFailure: ({ context }) => tripsOnFailure(context) },
  actions: {
    recordSuccess: assign(({ context }) => ({ failures: 0, outcomes: recorded(context, false) })),
    recordFailure: assign(({ context }) => ({ failures: context.failures + 1, outcomes: recorded(context, true) })),
    // A recovered dependency starts with a clean record, or the old rate would reopen it at once.
    forget: assign({ failures: 0, outcomes: [] }),
  },
}).createMachine({
  id: "breaker",
  context: ({ input }) => ({ config: input, failures: 0, outcomes: [] }),
  initial: "closed",
  states: {
    closed: {
      on: {
        SUCCESS: { actions: "recordSuccess" },
        FAILURE: [{ guard: "tripsOnFailure", target: "open", actions: "recordFailure" }, { actions: "recordFailure" }],
      },
    },
    // Entering open (again) starts a fresh timer.
    open: { after: { resetTimeout: "halfOpen" } },
    halfOpen: {
      initial: "idle",
      states: {
        idle: { on: { TRIAL: "probing" } },
        probing: {
          on: {
            TRIAL_SUCCESS: { target: "#breaker.closed", actions: "forget" },
            TRIAL_FAILURE: { target: "#breaker.open", actions: "recordFailure" },
            // The trial failed by the caller's fault: no verdict, the next call is the trial.
            TRIAL_ABORT: "idle",
          },
        },
      },
    },
  },
});

/** Creates and starts a breaker. */
export function createBreaker(opts: BreakerOptions): Breaker {
  const { name, threshold, resetTimeoutMs } = opts;
  if (!(threshold >= 1)) throw new RangeError(`breaker "${name}": threshold must be at least 1, got ${threshold}`);
  if (!(resetTimeoutMs >= 0)) {
    throw new RangeError(`breaker "${name}": resetTimeoutMs must be 0 or more, got ${resetTimeoutMs}`);
  }
  const rule = opts.failureRate;
  if (rule && !(rule.threshold >= 0 && rule.threshold < 1 && rule.window >= 1 && rule.minSamples >= 1)) {
    throw new RangeError(`breaker "${name}": failureRate needs 0 <= threshold < 1, window >= 1 and minSamples >= 1`);
  }
  const clock = opts.clock ?? systemClock;
  const isFailure = opts.isFailure ?? isRetryable;

  const actor = createActor(breakerMachine, {
    input: { threshold, resetTimeoutMs, failureRate: rule },
    // Arrow functions: XState must not call our clock's methods with another `this`.
    clock: { setTimeout: (fn, ms) => clock.setTimeout(fn, ms), clearTimeout: (id) => clock.clearTimeout(id) },
  });

  let state: BreakerState = "closed";
  let openedAt = clock.now();
  actor.subscribe((snap) => {
    const to: BreakerState = snap.matches("open") ? "open" : snap.matches("halfOpen") ? "halfOpen" : "closed";
    if (to === state) return;
    const from = state;
    state = to;
    if (to === "open") openedAt = clock.now();
    opts.onTransition?.({ breaker: name, from, to, at: clock.now(), failures: snap.context.failures });
  });
  actor.start();

  const active = (): boolean => actor.getSnapshot().status === "active";
  const send = (event: BreakerEvent): void => {
    // A call that outlives stop() must not poke a stopped actor.
    if (active()) actor.send(event);
  };

  async function settle<T>(fn: () => Promise<T>, trial: boolean): Promise<T> {
    let result: T;
    try {
      result = await fn();
    } catch (err) {
      if (isFailure(err)) send({ type: trial ? "TRIAL_FAILURE" : "FAILURE" });
      else if (trial) send({ type: "TRIAL_ABORT" });
      throw err;
    }
    send({ type: trial ? "TRIAL_SUCCESS" : "SUCCESS" });
    return result;
  }

  return {
    name,
    get state() {
      return state;
    },
    // Not async: the state check and the TRIAL claim must happen in the same tick as the call.
    call<T>(fn: () => Promise<T>): Promise<T> {
      if (!active()) return Promise.reject(new Error(`breaker "${name}" is stopped`));
      const snap = actor.getSnapshot();
      if (snap.matches("open")) {
        return Promise.reject(new CircuitOpenError(name, Math.max(0, openedAt + resetTimeoutMs - clock.now())));
      }
      if (snap.matches("halfOpen")) {
        // Another call is the trial; its outcome decides, so there is nothing to wait for.
        if (!snap.matches({ halfOpen: "idle" })) return Promise.reject(new CircuitOpenError(name, 0));
        actor.send({ type: "TRIAL" });
        return settle(fn, true);
      }
      return settle(fn, false);
    },
    stop() {
      actor.stop();
    },
  };
}
