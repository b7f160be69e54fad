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

import { CadreError, type Config, type TypedEvent } from "@cadre/protocol";
import { assign, createActor, setup } from "xstate";
import { type Clock, systemClock } from "./clock.js";
import type { Logger } from "./logger.js";
import { type CadreMetrics, CIRCUIT_STATE_VALUE } from "./metrics.js";
import { isTransportFailure } from "./nats.js";

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
  /** On a change to open: how long it stays open before a trial call. */
  openForMs?: number;
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
  /**
   * The longest the circuit stays open before a trial call is allowed. The first opening lasts
   * `firstResetMs`; each failed trial doubles it, up to this.
   */
  resetTimeoutMs: number;
  /** How long the first opening lasts. @default resetTimeoutMs (a fixed open time) */
  firstResetMs?: number;
  /** @default systemClock */
  clock?: Clock;
  /**
   * Called synchronously on every state change. It must not throw: publish asynchronously and
   * handle errors there.
   */
  onTransition?: (transition: BreakerTransition) => void;
  /**
   * Which errors count against the dependency.
   * @default {@link isDependencyFailure}
   */
  isFailure?: (err: unknown) => boolean;
  /** A second trip rule on the failure rate; absent, only consecutive failures count. */
  failureRate?: FailureRateRule;
  /**
   * The process's metrics: `cadre_circuit_state{breaker=name}` is set at creation (closed, 0) and
   * on every state change ({@link CIRCUIT_STATE_VALUE}), so a dashboard sees the breaker before it
   * first trips. Absent, nothing is recorded.
   */
  metrics?: CadreMetrics;
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
CadreError.register(
  CircuitOpenError,
  (w) => new CircuitOpenError(String(w.data?.breaker ?? ""), Number(w.data?.retryInMs ?? 0)),
);

/**
 * Errors that say the dependency answered and is healthy, only busy or contended: a lost
 * compare-and-set, a quota, a deadlock victim, or another breaker that is open. Retryable, but
 * no evidence against the dependency.
 */
const CONTENTION = new Set(["CONCURRENT_MODIFICATION", "RESOURCE_EXHAUSTED", "DEADLOCK_VICTIM", "CIRCUIT_OPEN"]);

/**
 * The default failure rule: the dependency gave no answer (a NATS timeout, no responders, a
 * connection error, anywhere in the cause chain). An error the caller caused (not retryable) and
 * contention never count; nor does an error *reply*, since whoever sent it is up - a supervisor
 * answering UNAVAILABLE for a frozen workflow is healthy.
 */
export function isDependencyFailure(err: unknown): boolean {
  const e = err as { code?: unknown; retryable?: unknown };
  if (e instanceof CadreError && !e.retryable) return false;
  if (typeof e?.code === "string" && CONTENTION.has(e.code)) return false;
  return isTransportFailure(err);
}

/** The names of the breakers Cadre's services use. */
export type BreakerName = "agent_spawn" | "state_update" | "event_publish" | "delegation" | "llm_provider";

interface BreakerConfig {
  threshold: number;
  resetTimeoutMs: number;
  firstResetMs: number;
  failureRate: FailureRateRule | undefined;
}

interface BreakerContext {
  config: BreakerConfig;
  /** Openings since the circuit last closed: each failed trial doubles the open time. */
  opens: number;
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

/** How long the current opening lasts: doubling from the first, capped. */
function openFor(ctx: BreakerContext): number {
  const { firstResetMs, resetTimeoutMs } = ctx.config;
  return Math.min(resetTimeoutMs, firstResetMs * 2 ** Math.max(0, ctx.opens - 1));
}

const breakerMachine = setup({
  types: {} as { context: BreakerContext; events: BreakerEvent; input: BreakerConfig },
  delays: { resetTimeout: ({ context }) => openFor(context) },
  guards: { tripsOnFailure: ({ context }) => tripsOnFailure(context) },
  actions: {
    recordSuccess: assign(({ context }) => ({ failures: 0, outcomes: recorded(context, false) })),
    recordFailure: assign(({ context }) => ({ failures: context.failures + 1, outcomes: recorded(context, true) })),
    // A recovered dependency starts with a clean record, or the old rate would reopen it at once.
    forget: assign({ failures: 0, outcomes: [], opens: 0 }),
    countOpening: assign(({ context }) => ({ opens: context.opens + 1 })),
  },
}).createMachine({
  id: "breaker",
  context: ({ input }) => ({ config: input, opens: 0, failures: 0, outcomes: [] }),
  initial: "closed",
  states: {
    closed: {
      on: {
        SUCCESS: { actions: "recordSuccess" },
        FAILURE: [{ guard: "tripsOnFailure", target: "open", actions: "recordFailure" }, { actions: "recordFailure" }],
      },
    },
    // Entering open (again) starts a fresh timer, longer each time.
    open: { entry: "countOpening", after: { resetTimeout: "halfOpen" } },
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
  const firstResetMs = Math.min(opts.firstResetMs ?? resetTimeoutMs, resetTimeoutMs);
  if (!(threshold >= 1)) throw new RangeError(`breaker "${name}": threshold must be at least 1, got ${threshold}`);
  if (!(resetTimeoutMs >= 0)) {
    throw new RangeError(`breaker "${name}": resetTimeoutMs must be 0 or more, got ${resetTimeoutMs}`);
  }
  const rule = opts.failureRate;
  if (rule && !(rule.threshold >= 0 && rule.threshold < 1 && rule.window >= 1 && rule.minSamples >= 1)) {
    throw new RangeError(`breaker "${name}": failureRate needs 0 <= threshold < 1, window >= 1 and minSamples >= 1`);
  }
  const clock = opts.clock ?? systemClock;
  const isFailure = opts.isFailure ?? isDependencyFailure;

  const actor = createActor(breakerMachine, {
    input: { threshold, resetTimeoutMs, firstResetMs, failureRate: rule },
    // Arrow functions: XState must not call our clock's methods with another `this`.
    clock: { setTimeout: (fn, ms) => clock.setTimeout(fn, ms), clearTimeout: (id) => clock.clearTimeout(id) },
  });

  let state: BreakerState = "closed";
  let reopenAt = clock.now();
  actor.subscribe((snap) => {
    const to: BreakerState = snap.matches("open") ? "open" : snap.matches("halfOpen") ? "halfOpen" : "closed";
    if (to === state) return;
    const from = state;
    state = to;
    opts.metrics?.circuitState.set({ breaker: name }, CIRCUIT_STATE_VALUE[to]);
    const t: BreakerTransition = { breaker: name, from, to, at: clock.now(), failures: snap.context.failures };
    if (to === "open") {
      t.openForMs = openFor(snap.context);
      reopenAt = clock.now() + t.openForMs;
    }
    opts.onTransition?.(t);
  });
  actor.start();
  opts.metrics?.circuitState.set({ breaker: name }, CIRCUIT_STATE_VALUE[state]);

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
        return Promise.reject(new CircuitOpenError(name, Math.max(0, reopenAt - clock.now())));
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

/**
 * The breakers of one service, made on first use: one per name, or one per (name, key) for a
 * dependency that is several (agent_spawn is kept per host: one host's broken control endpoint
 * must not stop placement on the others).
 */
export class Breakers {
  private readonly made = new Map<string, Breaker>();

  /**
   * Every change of any of them is logged (warn) and published as an event naming `source`
   * (see {@link breakerEvent}). With `metrics`, each one's state is in `cadre_circuit_state`,
   * labelled with its id (`agent_spawn:<host>` for a per-host one).
   */
  constructor(
    private readonly settings: Config["breakers"],
    private readonly opts: {
      source: string;
      clock?: Clock;
      logger?: Logger;
      emit?: (event: CircuitEvent) => void;
      metrics?: CadreMetrics;
    },
  ) {}

  /** The breaker of `name` (and `key`), made on first use; `isFailure` applies when it is made. */
  get(name: BreakerName, key = "", isFailure?: (err: unknown) => boolean): Breaker {
    const id = key ? `${name}:${key}` : name;
    let b = this.made.get(id);
    if (!b) {
      b = createBreaker({
        name: id,
        ...this.settings[name],
        ...(isFailure ? { isFailure } : {}),
        ...(this.opts.clock ? { clock: this.opts.clock } : {}),
        ...(this.opts.metrics ? { metrics: this.opts.metrics } : {}),
        onTransition: (t) => {
          this.opts.logger?.warn({ ...t, key }, `circuit ${t.breaker}: ${t.from} -> ${t.to}`);
          this.opts.emit?.(breakerEvent({ ...t, key }, this.opts.source));
        },
      });
      this.made.set(id, b);
    }
    return b;
  }

  /** Whether a breaker exists and is open (an unknown key is closed). */
  isOpen(name: BreakerName, key = ""): boolean {
    return this.made.get(key ? `${name}:${key}` : name)?.state === "open";
  }

  /** The breakers that are not closed (what a heartbeat carries). */
  notClosed(): Record<string, "open" | "halfOpen"> {
    const out: Record<string, "open" | "halfOpen"> = {};
    for (const [id, b] of this.made) if (b.state !== "closed") out[id] = b.state;
    return out;
  }

  stop(): void {
    for (const b of this.made.values()) b.stop();
    this.made.clear();
  }
}

/** What a breaker's change is on the bus. */
export type CircuitEvent = TypedEvent<"CIRCUIT_OPENED" | "CIRCUIT_HALF_OPEN" | "CIRCUIT_CLOSED">;

/** A breaker's change as an event on the bus: CIRCUIT_OPENED, CIRCUIT_HALF_OPEN or CIRCUIT_CLOSED. */
export function breakerEvent(t: BreakerTransition & { key?: string }, source: string): CircuitEvent {
  const type = t.to === "open" ? "CIRCUIT_OPENED" : t.to === "halfOpen" ? "CIRCUIT_HALF_OPEN" : "CIRCUIT_CLOSED";
  return {
    type,
    category: "breaker",
    scope: t.breaker.split(":")[0] ?? t.breaker,
    data: {
      breaker: t.breaker,
      key: t.key ?? "",
      source,
      from: t.from,
      to: t.to,
      failures: t.failures,
      ...(t.openForMs !== undefined ? { openForMs: t.openForMs } : {}),
    },
  };
}
