/**
 * The hook runner: user hooks registered per event run isolated (a worker thread per JS module
 * run, a process group per command run) with a timeout each, so one bad hook cannot stall or
 * crash the host. A failing critical hook stops the action it guards; a failing non-critical
 * hook is logged, counted and skipped. A hook that fails too often is bypassed for a while, then
 * given one trial run: the circuit breaker of `../breaker.ts` with its failure-rate rule.
 *
 * What a failed hook says (a module's error message, a command's stderr tail) ends up in logs,
 * in HOOK_FAILED's message and data, and in the outcomes hosts log: it is redacted here, once
 * for both kinds of hook (`../redact.ts`).
 */

import { isAbsolute } from "node:path";
import {
  type Breaker,
  type BreakerState,
  type BreakerTransition,
  CircuitOpenError,
  createBreaker,
} from "../breaker.js";
import { type Clock, systemClock } from "../clock.js";
import type { CadreMetrics, HookRunOutcome } from "../metrics.js";
import { redact } from "../redact.js";
import { runCommandHook } from "./command-hook.js";
import { HookAttemptError, HookFailedError, type HookFailureReason } from "./errors.js";
import { type HookEvent, isHookEvent } from "./events.js";
import { runModuleHook } from "./module-hook.js";

/**
 * Outcomes kept per hook for its failure rate. 20 runs: long enough that a rate of 0.1 means
 * something (2 failures), short enough that a hook that broke recently is noticed within a
 * couple of dozen tasks rather than after hundreds of old successes.
 */
export const HOOK_FAILURE_WINDOW = 20;
/**
 * Runs needed before the rate can bypass a hook. 10: with the default threshold of 0.1 a single
 * failure never bypasses (1 in 10 is not above 0.1), two failures in the first ten do.
 */
export const HOOK_MIN_SAMPLES = 10;

/** A hook to register. Exactly one of `module` and `command`. */
export interface HookDefinition {
  /** Unique among the runner's hooks; names it in logs, stats and errors. */
  name: string;
  event: HookEvent;
  /** Absolute path of an ES module whose default export is `async (payload) => result`. */
  module?: string;
  /** A shell command: payload JSON on stdin, result on stdout (JSON, else `{ stdout }`). */
  command?: string;
  /** Whether a failure of this hook must stop the action it guards. */
  critical: boolean;
  /** @default 5000 */
  timeoutMs?: number;
}

/** How one hook fared in one run. */
export type HookStatus = "ok" | "failed" | "timeout" | "bypassed";

/** One hook's part of a {@link HookRunReport}. */
export interface HookOutcome {
  hook: string;
  critical: boolean;
  status: HookStatus;
  /** The hook's result, when `status` is "ok". */
  result?: unknown;
  /** What went wrong, otherwise (secret-looking values redacted). */
  error?: string;
  durationMs: number;
}

/** What running the hooks of one event did, hook by hook in registration order. */
export interface HookRunReport {
  event: HookEvent;
  outcomes: HookOutcome[];
  /** Hooks that failed or timed out. */
  failed: number;
  bypassed: number;
}

/** Counters of one hook since registration. */
export interface HookStats {
  /** Runs started (bypassed ones are not runs). */
  runs: number;
  /** Failed runs, timeouts included. */
  failures: number;
  timeouts: number;
  /** Runs skipped because the hook was bypassed. */
  bypassed: number;
  /** closed: runs normally; open: bypassed; halfOpen: the next run is a trial. */
  state: BreakerState;
}

/** Where warnings go; a pino logger fits. */
export interface HookLogger {
  warn(obj: Record<string, unknown>, msg: string): void;
}

/** Options of {@link HookRunner}. */
export interface HookRunnerOptions {
  /** Drives hook timeouts and the bypass timer. @default systemClock */
  clock?: Clock;
  logger?: HookLogger;
  /** Failure rate above which a hook is bypassed (seed: `hook_failure_rate`). @default 0.1 */
  failureRateThreshold?: number;
  /** How long a bypassed hook is skipped before one trial run. @default 30000 */
  bypassRetryMs?: number;
  /** Called when a hook is bypassed, tried or restored. Must not throw. */
  onTransition?: (transition: BreakerTransition) => void;
  /**
   * The process's metrics: each run in `cadre_hook_runs_total{hook,outcome}` (ok, failed or
   * timeout; a bypassed hook is not run, so not counted there) and `cadre_hook_bypassed{hook}`,
   * 0 from registration, 1 from the moment the hook is bypassed until a trial run restores it.
   * `hook` is the hook's configured name. Absent, nothing is recorded.
   */
  metrics?: CadreMetrics;
}

interface RegisteredHook {
  def: HookDefinition & { timeoutMs: number };
  breaker: Breaker;
  stats: Omit<HookStats, "state">;
  /** Bypassed until then by {@link HookRunner.bypass} (0: not). */
  forcedUntil: number;
  forcedTimer?: unknown;
}

const DEFAULT_TIMEOUT_MS = 5000;

/** Runs the hooks registered for an event, each isolated and bounded in time. */
export class HookRunner {
  private readonly clock: Clock;
  private readonly hooks: RegisteredHook[] = [];
  private readonly failureRateThreshold: number;
  private readonly bypassRetryMs: number;

  constructor(private readonly opts: HookRunnerOptions = {}) {
    this.clock = opts.clock ?? systemClock;
    this.failureRateThreshold = opts.failureRateThreshold ?? 0.1;
    this.bypassRetryMs = opts.bypassRetryMs ?? 30_000;
  }

  /** Adds a hook. Throws a TypeError for an unusable definition, so a bad config fails at start-up. */
  register(def: HookDefinition): void {
    const { name } = def;
    if (!name) throw new TypeError("a hook needs a name");
    if (this.hooks.some((h) => h.def.name === name)) throw new TypeError(`hook "${name}" is already registered`);
    if (!isHookEvent(def.event)) throw new TypeError(`hook "${name}": unknown event "${String(def.event)}"`);
    if ((def.module === undefined) === (def.command === undefined)) {
      throw new TypeError(`hook "${name}": give exactly one of module and command`);
    }
    if (def.module !== undefined && !isAbsolute(def.module)) {
      throw new TypeError(`hook "${name}": module must be an absolute path, got "${def.module}"`);
    }
    const timeoutMs = def.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    if (!(timeoutMs > 0)) throw new TypeError(`hook "${name}": timeoutMs must be positive, got ${timeoutMs}`);

    const breaker = createBreaker({
      name: `hook:${name}`,
      // Only the rate decides: a window full of failures is far above any rate threshold anyway.
      threshold: Number.POSITIVE_INFINITY,
      resetTimeoutMs: this.bypassRetryMs,
      clock: this.clock,
      // Whatever a hook throws is the hook's failure; there is no "caller's fault" here.
      isFailure: () => true,
      failureRate: {
        threshold: this.failureRateThreshold,
        window: HOOK_FAILURE_WINDOW,
        minSamples: HOOK_MIN_SAMPLES,
      },
      onTransition: (t) => {
        // Half-open is still bypassed: only the one trial run goes through, the others are skipped.
        this.opts.metrics?.hookBypassed.set({ hook: name }, t.to === "closed" ? 0 : 1);
        if (t.to === "open") {
          this.opts.logger?.warn(
            { hook: name, from: t.from, retryInMs: this.bypassRetryMs },
            "hook fails too often; bypassing it until a trial run succeeds",
          );
        }
        this.opts.onTransition?.(t);
      },
    });
    this.hooks.push({
      def: { ...def, timeoutMs },
      breaker,
      stats: { runs: 0, failures: 0, timeouts: 0, bypassed: 0 },
      forcedUntil: 0,
    });
    this.opts.metrics?.hookBypassed.set({ hook: name }, 0);
  }

  /**
   * Runs every hook of `event` at once and waits for all of them (each is bounded by its
   * timeout). Resolves with the report; rejects with {@link HookFailedError} when a critical
   * hook failed, timed out or is bypassed (the first such hook in registration order).
   */
  async run(event: HookEvent, payload: unknown): Promise<HookRunReport> {
    const hooks = this.hooks.filter((h) => h.def.event === event);
    const outcomes = await Promise.all(hooks.map((h) => this.runOne(h, event, payload)));
    const report: HookRunReport = {
      event,
      outcomes,
      failed: outcomes.filter((o) => o.status === "failed" || o.status === "timeout").length,
      bypassed: outcomes.filter((o) => o.status === "bypassed").length,
    };
    const fatal = outcomes.find((o) => o.critical && o.status !== "ok");
    if (fatal) {
      const reason: HookFailureReason = fatal.status === "failed" ? "error" : (fatal.status as HookFailureReason);
      throw new HookFailedError(fatal.hook, event, reason, fatal.error ?? "");
    }
    return report;
  }

  /**
   * Bypasses a hook for `forMs` whatever its own failure rate says: the monitor's `bypass`
   * action, when the hook fails too often across the cluster. False for an unknown hook.
   */
  bypass(name: string, forMs: number): boolean {
    const hook = this.hooks.find((h) => h.def.name === name);
    if (!hook) return false;
    hook.forcedUntil = this.clock.now() + forMs;
    this.opts.metrics?.hookBypassed.set({ hook: name }, 1);
    this.clock.clearTimeout(hook.forcedTimer);
    hook.forcedTimer = this.clock.setTimeout(() => {
      hook.forcedUntil = 0;
      this.opts.metrics?.hookBypassed.set({ hook: name }, hook.breaker.state === "closed" ? 0 : 1);
    }, forMs);
    return true;
  }

  /** Counters per hook name. */
  stats(): Record<string, HookStats> {
    return Object.fromEntries(this.hooks.map((h) => [h.def.name, { ...h.stats, state: h.breaker.state }]));
  }

  /** Stops the bypass timers. Runs in flight finish on their own timeouts. */
  stop(): void {
    for (const h of this.hooks) {
      h.breaker.stop();
      this.clock.clearTimeout(h.forcedTimer);
    }
  }

  private async runOne(hook: RegisteredHook, event: HookEvent, payload: unknown): Promise<HookOutcome> {
    const { name, critical } = hook.def;
    const start = this.clock.now();
    const outcome = (status: HookStatus, extra: Partial<HookOutcome>): HookOutcome => ({
      hook: name,
      critical,
      status,
      ...extra,
      durationMs: this.clock.now() - start,
    });
    if (this.clock.now() < hook.forcedUntil) {
      hook.stats.bypassed++;
      return outcome("bypassed", { error: `hook ${name} is bypassed cluster-wide for now (it fails too often)` });
    }
    try {
      const result = await hook.breaker.call(() => {
        hook.stats.runs++;
        return this.execute(hook.def, event, payload);
      });
      this.counted(name, "ok");
      return outcome("ok", { result });
    } catch (err) {
      if (err instanceof CircuitOpenError) {
        hook.stats.bypassed++;
        return outcome("bypassed", { error: err.message });
      }
      const reason = err instanceof HookAttemptError ? err.reason : "error";
      const message = redact(err instanceof Error ? err.message : String(err));
      hook.stats.failures++;
      if (reason === "timeout") hook.stats.timeouts++;
      this.counted(name, reason === "timeout" ? "timeout" : "failed");
      if (!critical) {
        this.opts.logger?.warn(
          { hook: name, event, reason, err: message },
          "non-critical hook failed; going on without it",
        );
      }
      return outcome(reason === "timeout" ? "timeout" : "failed", { error: message });
    }
  }

  /** One run of a hook in `cadre_hook_runs_total`. */
  private counted(hook: string, outcome: HookRunOutcome): void {
    this.opts.metrics?.hookRuns.inc({ hook, outcome });
  }

  private execute(def: RegisteredHook["def"], event: HookEvent, payload: unknown): Promise<unknown> {
    const { timeoutMs } = def;
    if (def.module !== undefined) return runModuleHook({ path: def.module, payload, timeoutMs, clock: this.clock });
    return runCommandHook({
      command: def.command ?? "",
      payload,
      timeoutMs,
      clock: this.clock,
      env: { CADRE_HOOK: def.name, CADRE_HOOK_EVENT: event },
    });
  }
}
