/**
 * The targets an incident report judges each fault by: seed 000's recovery matrix, its circuit
 * breakers' timeouts and the metrics its monitoring names, each row citing the seed's line; and
 * the judging itself ({@link meets}, {@link judge}). What is measured against them: faults.ts.
 */

import type { Fault } from "./report.js";

/** Where the targets come from (in /work/shared, the project's seeds). */
export const SEED_000 = "seeds/000_c4c521c85f6376de.txt";

/**
 * A target time. The seed writes `< 15s`, `Immediate` and `On heal`: "Immediate" is read as at
 * most {@link IMMEDIATE_MS} (the seed gives no number; 1 s is the tightest bound it writes, `< 1s`);
 * "On heal" is met by recovering at all, whenever that is.
 */
export type Bound =
  | { readonly kind: "within"; readonly ms: number; readonly text: string }
  | { readonly kind: "immediate"; readonly text: "Immediate" }
  | { readonly kind: "on-heal"; readonly text: "On heal" };

/** What "Immediate" allows. */
export const IMMEDIATE_MS = 1000;

const within = (ms: number, text: string): Bound => ({ kind: "within", ms, text });
const IMMEDIATE: Bound = { kind: "immediate", text: "Immediate" };
const ON_HEAL: Bound = { kind: "on-heal", text: "On heal" };

/** A row of the targets: the seed's failure type, its detection and recovery targets, and the line. */
export interface Target {
  readonly case: string;
  /** Null: the seed gives none (its breaker table gives a count of failures, not a time). */
  readonly detect: Bound | null;
  readonly recover: Bound;
  /** `seeds/000_c4c521c85f6376de.txt:262`. */
  readonly source: string;
}

const row = (c: string, detect: Bound | null, recover: Bound, line: number): Target => ({
  case: c,
  detect,
  recover,
  source: `${SEED_000}:${line}`,
});

/**
 * Seed 000's "Automatic Recovery Matrix" (lines 251-262: failure type, detection time, recovery
 * time), one row per failure type, as written there.
 */
export const RECOVERY_MATRIX = {
  "concurrent-conflicts": row("Concurrent Conflicts", within(1000, "< 1s"), within(5000, "< 5s"), 253),
  "state-corruption": row("State Corruption", within(10_000, "< 10s"), within(30_000, "< 30s"), 254),
  "delegation-loops": row("Delegation Loops", within(5000, "< 5s"), IMMEDIATE, 255),
  "resource-exhaustion": row("Resource Exhaustion", within(30_000, "< 30s"), within(60_000, "< 60s"), 256),
  "hook-failures": row("Hook Failures", IMMEDIATE, within(10_000, "< 10s"), 257),
  "event-saturation": row("Event Saturation", within(10_000, "< 10s"), within(30_000, "< 30s"), 258),
  deadlocks: row("Deadlocks", within(60_000, "< 60s"), within(120_000, "< 120s"), 259),
  "memory-leaks": row("Memory Leaks", within(300_000, "< 5min"), within(600_000, "< 10min"), 260),
  "byzantine-agents": row("Byzantine Agents", within(30_000, "< 30s"), within(60_000, "< 60s"), 261),
  "network-partition": row("Network Partition", within(15_000, "< 15s"), ON_HEAL, 262),
} as const satisfies Record<string, Target>;

export type MatrixCase = keyof typeof RECOVERY_MATRIX;

/**
 * Seed 000's circuit breakers (lines 214-218, `CircuitBreaker(threshold=10, timeout=60)`): the
 * timeout, how long a breaker stays open before a trial, is the recovery target of its
 * CIRCUIT_OPENED. `llm_provider` is Cadre's own (not in the seed): no target.
 */
export const BREAKER_TARGETS = {
  agent_spawn: row("Circuit breaker agent_spawn", null, within(60_000, "< 60s (timeout=60)"), 215),
  state_update: row("Circuit breaker state_update", null, within(30_000, "< 30s (timeout=30)"), 216),
  event_publish: row("Circuit breaker event_publish", null, within(10_000, "< 10s (timeout=10)"), 217),
  delegation: row("Circuit breaker delegation", null, within(120_000, "< 120s (timeout=120)"), 218),
} as const satisfies Record<string, Target>;

/**
 * Which row a THRESHOLD_CROSSED of each of the seed's metrics (lines 238-245) is judged by: the
 * row whose "Detection" line names that monitoring (lines 18, 58, 77, 97, 121, 155).
 */
export const METRIC_CASES: Readonly<Record<string, MatrixCase>> = {
  state_conflicts_per_minute: "concurrent-conflicts",
  delegation_depth_p99: "delegation-loops",
  active_agents_count: "resource-exhaustion",
  event_queue_depth: "event-saturation",
  memory_usage_percent: "memory-leaks",
  hook_failure_rate: "hook-failures",
};

/** A row of the matrix as a fault's target, named by its case. */
export const matrixRow = (c: MatrixCase): Target & { row: string } => ({ ...RECOVERY_MATRIX[c], row: c });

/** Whether a measured time meets a bound (the seed's `<` is strict). */
export function meets(ms: number, b: Bound): boolean {
  if (b.kind === "on-heal") return true;
  if (b.kind === "immediate") return ms <= IMMEDIATE_MS;
  return ms < b.ms;
}

/** Sets a fault's detection, recovery and overall verdicts from its measured times and target. */
export function judge(f: Fault): void {
  const t = f.target;
  f.detect = !t?.detect
    ? "no target"
    : f.detectMs === null
      ? "unmeasured"
      : meets(f.detectMs, t.detect)
        ? "met"
        : "missed";
  f.recover = f.recoverMs === null ? "open" : !t ? "no target" : meets(f.recoverMs, t.recover) ? "met" : "missed";
  if (f.recover === "open") f.verdict = "open";
  else if (f.detect === "missed" || f.recover === "missed") f.verdict = "missed";
  else if (f.detect === "met" || f.recover === "met") f.verdict = "met";
  else f.verdict = "no target";
}
