/**
 * Cadre's Prometheus metrics: one typed object per process holding every metric Cadre exposes,
 * in a registry of its own (never prom-client's global one, so several services started in one
 * test process do not collide). The health server serves it on `GET /metrics` (service.ts).
 *
 * Naming follows Prometheus: every name starts with `cadre_`, durations are in seconds
 * (`_seconds`), counters end in `_total`. Labels are bounded sets only (kind, team, host,
 * outcome, stage, priority, breaker, state, status, classification, hook, service, ...): never a
 * task, workflow or actor id, which would make one series per task.
 *
 *   const metrics = createMetrics({ service: "cadre-supervisor" });
 *   metrics.tasksStarted.inc({ kind: "coder" });
 *   const end = metrics.taskStageSeconds.startTimer({ kind: "coder", stage: "working" }); ... end();
 */

import { createRequire } from "node:module";
import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from "prom-client";
import type { BreakerState } from "./breaker.js";

/** The HTTP content type of {@link metricsText}'s output (Prometheus text format 0.0.4). */
export const METRICS_CONTENT_TYPE: string = Registry.PROMETHEUS_CONTENT_TYPE;

/** Prefix of every metric name, Cadre's own and the process's default metrics. */
export const METRICS_PREFIX = "cadre_";

/** The stages of a task `cadre_task_stage_seconds` times, as its `stage` label. */
export const TASK_STAGES = ["queued", "working", "waiting", "applying"] as const;
/** One of {@link TASK_STAGES}. */
export type TaskStage = (typeof TASK_STAGES)[number];

/** `outcome` of `cadre_tasks_completed_total`. */
export type TaskOutcome = "completed" | "failed";
/** `outcome` of `cadre_hook_runs_total`. */
export type HookRunOutcome = "ok" | "failed" | "timeout";

/** The value `cadre_circuit_state` takes for each breaker state: 0 closed, 1 half-open, 2 open. */
export const CIRCUIT_STATE_VALUE: Readonly<Record<BreakerState, number>> = { closed: 0, halfOpen: 1, open: 2 };

/**
 * Buckets of `cadre_task_stage_seconds`: 0.5 ms to 60 s, about three per decade (a stage can be
 * a sub-millisecond hand-off or a minute of model time).
 */
export const STAGE_BUCKETS: readonly number[] = [
  0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60,
];
/** Buckets of `cadre_delegation_depth`: every integer depth 0 to 10. */
export const DEPTH_BUCKETS: readonly number[] = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10];
/** Buckets of `cadre_heartbeat_gap_seconds`: around the 100 ms heartbeat up to a dead host (seconds). */
/** Buckets of `cadre_llm_request_seconds`: a local model's first token to a long answer. */
export const LLM_REQUEST_BUCKETS: readonly number[] = [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120];
export const HEARTBEAT_GAP_BUCKETS: readonly number[] = [0.05, 0.1, 0.15, 0.2, 0.3, 0.5, 1, 2, 3, 5, 10, 30];

/** Every metric of one Cadre process, each a named field, and the registry holding them. */
export interface CadreMetrics {
  /** The registry these metrics (and the default process metrics, unless turned off) belong to. */
  readonly registry: Registry;
  /**
   * The service these metrics belong to (`opts.service`): the `service` label components put on
   * what they record (`cadre_state_conflicts_total`), so they need not be told it twice.
   */
  readonly service: string;

  // --- counters ---
  /** `cadre_tasks_started_total{kind}`: tasks that started work on an actor. */
  readonly tasksStarted: Counter<"kind">;
  /** `cadre_tasks_completed_total{kind,outcome}`: tasks that finished, outcome completed or failed. */
  readonly tasksCompleted: Counter<"kind" | "outcome">;
  /** `cadre_tasks_retried_total{kind}`: task attempts retried after a failure or a redelivery. */
  readonly tasksRetried: Counter<"kind">;
  /** `cadre_tasks_reassigned_total{kind}`: tasks moved to another host (theirs died or was cut off). */
  readonly tasksReassigned: Counter<"kind">;
  /** `cadre_results_duplicate_total{kind}`: results received again for a task already settled the same way. */
  readonly resultsDuplicate: Counter<"kind">;
  /** `cadre_results_conflict_total{kind}`: results that contradict the result already recorded for the task. */
  readonly resultsConflict: Counter<"kind">;
  /** `cadre_results_rejected_total{reason}`: results refused (bad signature, unknown task, malformed...). */
  readonly resultsRejected: Counter<"reason">;
  /** `cadre_state_conflicts_total{service}`: compare-and-set writes retried because the record changed. */
  readonly stateConflicts: Counter<"service">;
  /** `cadre_transactions_aborted_total`: multi-record transactions aborted and rolled back. */
  readonly transactionsAborted: Counter;
  /** `cadre_events_published_total{priority}`: events published on the event bus. */
  readonly eventsPublished: Counter<"priority">;
  /** `cadre_events_dropped_total{priority}`: events dropped (queue full or shed) instead of published. */
  readonly eventsDropped: Counter<"priority">;
  /** `cadre_hook_runs_total{hook,outcome}`: hook runs, outcome ok, failed or timeout. */
  readonly hookRuns: Counter<"hook" | "outcome">;
  /** `cadre_outbox_replayed_total`: outbox entries replayed to NATS after a disconnection. */
  readonly outboxReplayed: Counter;
  /** `cadre_reconciliation_total{classification}`: records the reconciler examined, by what it found. */
  readonly reconciliation: Counter<"classification">;
  /** `cadre_threshold_actions_total{metric,action}`: actions taken because a watched metric crossed its threshold. */
  readonly thresholdActions: Counter<"metric" | "action">;
  /** `cadre_llm_tokens_total{direction,model}`: tokens of completed model calls, direction input or output. */
  readonly llmTokens: Counter<"direction" | "model">;
  /** `cadre_llm_cost_usd_total{model}`: cost of completed model calls at the provider's prices. */
  readonly llmCostUsd: Counter<"model">;
  /** `cadre_llm_calls_total{model,outcome}`: model calls, outcome ok, failed, refused (budget) or replayed (journal). */
  readonly llmCalls: Counter<"model" | "outcome">;

  // --- histograms ---
  /** `cadre_task_stage_seconds{kind,stage}`: time a task spent in a stage (queued, working, waiting, applying). */
  readonly taskStageSeconds: Histogram<"kind" | "stage">;
  /** `cadre_delegation_depth`: depth of each delegated task in its workflow's tree (the root is 0). */
  readonly delegationDepth: Histogram;
  /** `cadre_heartbeat_gap_seconds{host}`: time between two consecutive heartbeats received from a host. */
  readonly heartbeatGapSeconds: Histogram<"host">;
  /** `cadre_llm_request_seconds{model,outcome}`: time of one model call (the provider's answer, retries included). */
  readonly llmRequestSeconds: Histogram<"model" | "outcome">;

  // --- gauges ---
  /** `cadre_workflows{status}`: workflows currently in each status. */
  readonly workflows: Gauge<"status">;
  /** `cadre_actors_active`: actors running (idle or busy). */
  readonly actorsActive: Gauge;
  /** `cadre_actors_busy`: actors working on a task now. */
  readonly actorsBusy: Gauge;
  /** `cadre_actors_quarantined`: actors held out of placement after repeated failures. */
  readonly actorsQuarantined: Gauge;
  /** `cadre_event_queue_depth{priority}`: events waiting in the bus's queue to be published. */
  readonly eventQueueDepth: Gauge<"priority">;
  /** `cadre_hook_bypassed{hook}`: 1 while a hook is bypassed (failing too often), else 0. */
  readonly hookBypassed: Gauge<"hook">;
  /** `cadre_circuit_state{breaker}`: a circuit breaker's state, 0 closed, 1 half-open, 2 open ({@link CIRCUIT_STATE_VALUE}). */
  readonly circuitState: Gauge<"breaker">;
  /** `cadre_outbox_depth`: entries in the local outbox waiting to reach NATS. */
  readonly outboxDepth: Gauge;
  /** `cadre_service_info{service,version}`: always 1; names the service and its version. */
  readonly serviceInfo: Gauge<"service" | "version">;
}

/** Options of {@link createMetrics}. */
export interface CreateMetricsOptions {
  /** The service's name, e.g. `cadre-supervisor` (label of `cadre_service_info`). */
  service: string;
  /** The service's version for `cadre_service_info`; default: @cadre/runtime's package version. */
  version?: string;
  /** Registry to register into; default: a new one (never prom-client's global registry). */
  registry?: Registry;
  /** Also collect the process's default metrics (memory, CPU, event loop lag, GC), prefixed `cadre_`; default true. */
  defaultMetrics?: boolean;
  /**
   * Off: every metric is a no-op and the registry stays empty (what the benchmark compares
   * against). Default: off when the environment says `CADRE_METRICS=off`.
   */
  enabled?: boolean;
}

/** A metric that records nothing: every method a no-op, `get()` no values. */
const NOOP_METRIC: unknown = new Proxy(
  {},
  {
    get: (_t, p) => {
      if (p === "get") return async () => ({ values: [] });
      if (p === "startTimer") return () => () => 0;
      return () => undefined;
    },
  },
);

/** Metrics that cost nothing: an empty registry, every metric {@link NOOP_METRIC}. */
function disabledMetrics(service: string): CadreMetrics {
  const own: Record<string | symbol, unknown> = { registry: new Registry(), service };
  return new Proxy(own, { get: (t, p) => (p in t ? t[p] : NOOP_METRIC) }) as unknown as CadreMetrics;
}

/**
 * Creates every Cadre metric in a registry of its own (or `opts.registry`), sets
 * `cadre_service_info` to 1 and, unless `defaultMetrics: false`, collects the process's default
 * metrics there too. Call once per registry: registering the same names twice in one registry throws.
 */
export function createMetrics(opts: CreateMetricsOptions = { service: "cadre" }): CadreMetrics {
  if (!(opts.enabled ?? process.env.CADRE_METRICS !== "off")) return disabledMetrics(opts.service);
  const registry = opts.registry ?? new Registry();
  const registers = [registry];
  const counter = <L extends string = never>(name: string, help: string, labelNames: readonly L[] = []) =>
    new Counter<L>({ name: METRICS_PREFIX + name, help, labelNames, registers });
  const gauge = <L extends string = never>(name: string, help: string, labelNames: readonly L[] = []) =>
    new Gauge<L>({ name: METRICS_PREFIX + name, help, labelNames, registers });
  const histogram = <L extends string = never>(
    name: string,
    help: string,
    buckets: readonly number[],
    labelNames: readonly L[] = [],
  ) => new Histogram<L>({ name: METRICS_PREFIX + name, help, buckets: [...buckets], labelNames, registers });

  const metrics: CadreMetrics = {
    registry,
    service: opts.service,
    tasksStarted: counter("tasks_started_total", "Tasks that started work on an actor, by kind.", ["kind"]),
    tasksCompleted: counter(
      "tasks_completed_total",
      "Tasks that finished, by kind and outcome (completed or failed).",
      ["kind", "outcome"],
    ),
    tasksRetried: counter("tasks_retried_total", "Task attempts retried after a failure or a redelivery, by kind.", [
      "kind",
    ]),
    tasksReassigned: counter(
      "tasks_reassigned_total",
      "Tasks moved to another host because theirs died or was cut off, by kind.",
      ["kind"],
    ),
    resultsDuplicate: counter(
      "results_duplicate_total",
      "Results received again for a task already settled with the same result, by kind.",
      ["kind"],
    ),
    resultsConflict: counter(
      "results_conflict_total",
      "Results that contradict the result already recorded for their task, by kind.",
      ["kind"],
    ),
    resultsRejected: counter(
      "results_rejected_total",
      "Results refused (bad or missing signature, unknown task, malformed), by reason.",
      ["reason"],
    ),
    stateConflicts: counter(
      "state_conflicts_total",
      "Compare-and-set state writes retried because the record changed underneath, by service.",
      ["service"],
    ),
    transactionsAborted: counter("transactions_aborted_total", "Multi-record transactions aborted and rolled back."),
    eventsPublished: counter("events_published_total", "Events published on the event bus, by priority.", ["priority"]),
    eventsDropped: counter(
      "events_dropped_total",
      "Events dropped (queue full or shed) instead of published, by priority.",
      ["priority"],
    ),
    hookRuns: counter("hook_runs_total", "Hook runs, by hook and outcome (ok, failed or timeout).", [
      "hook",
      "outcome",
    ]),
    outboxReplayed: counter("outbox_replayed_total", "Outbox entries replayed to NATS after a disconnection."),
    reconciliation: counter("reconciliation_total", "Records the reconciler examined, by what it classified them as.", [
      "classification",
    ]),
    thresholdActions: counter(
      "threshold_actions_total",
      "Actions taken because a watched metric crossed its threshold, by metric and action.",
      ["metric", "action"],
    ),
    llmTokens: counter(
      "llm_tokens_total",
      "Tokens of completed model calls, by direction (input or output) and model.",
      ["direction", "model"],
    ),
    llmCostUsd: counter(
      "llm_cost_usd_total",
      "Cost in USD of completed model calls at the provider's prices, by model.",
      ["model"],
    ),
    llmCalls: counter(
      "llm_calls_total",
      "Model calls, by model and outcome (ok, failed, refused by a budget, replayed from the journal).",
      ["model", "outcome"],
    ),

    taskStageSeconds: histogram(
      "task_stage_seconds",
      "Seconds a task spent in a stage (queued, working, waiting or applying), by kind and stage.",
      STAGE_BUCKETS,
      ["kind", "stage"],
    ),
    delegationDepth: histogram(
      "delegation_depth",
      "Depth of each delegated task in its workflow's tree (the root task is 0).",
      DEPTH_BUCKETS,
    ),
    heartbeatGapSeconds: histogram(
      "heartbeat_gap_seconds",
      "Seconds between two consecutive heartbeats received from a host, by host.",
      HEARTBEAT_GAP_BUCKETS,
      ["host"],
    ),
    llmRequestSeconds: histogram(
      "llm_request_seconds",
      "Seconds of one model call (the provider's answer, the client's retries included), by model and outcome.",
      LLM_REQUEST_BUCKETS,
      ["model", "outcome"],
    ),

    workflows: gauge("workflows", "Workflows currently in each status.", ["status"]),
    actorsActive: gauge("actors_active", "Actors running, idle or busy."),
    actorsBusy: gauge("actors_busy", "Actors working on a task now."),
    actorsQuarantined: gauge("actors_quarantined", "Actors held out of placement after repeated failures."),
    eventQueueDepth: gauge(
      "event_queue_depth",
      "Events waiting in the event bus's queue to be published, by priority.",
      ["priority"],
    ),
    hookBypassed: gauge("hook_bypassed", "1 while a hook is bypassed because it fails too often, else 0; by hook.", [
      "hook",
    ]),
    circuitState: gauge("circuit_state", "State of a circuit breaker: 0 closed, 1 half-open, 2 open; by breaker.", [
      "breaker",
    ]),
    outboxDepth: gauge("outbox_depth", "Entries in the local outbox waiting to reach NATS."),
    serviceInfo: gauge("service_info", "Always 1; its labels name the service and its version.", [
      "service",
      "version",
    ]),
  };
  metrics.serviceInfo.set({ service: opts.service, version: opts.version ?? runtimeVersion() }, 1);
  if (opts.defaultMetrics !== false) collectDefaultMetrics({ register: registry, prefix: METRICS_PREFIX });
  return metrics;
}

/** The registry's metrics in the Prometheus text format ({@link METRICS_CONTENT_TYPE}). */
export function metricsText(metrics: Pick<CadreMetrics, "registry">): Promise<string> {
  return metrics.registry.metrics();
}

let version: string | undefined;
/** @cadre/runtime's version from its package.json (one level above both src/ and dist/). */
function runtimeVersion(): string {
  if (version === undefined) {
    try {
      version = String((createRequire(import.meta.url)("../package.json") as { version?: unknown }).version);
    } catch {
      version = "unknown";
    }
  }
  return version;
}
