/**
 * `/performance-monitor`: seed 003's performance commands over what the monitor measures (its six
 * metrics and the services' reports), what it announced (its trend findings, in the events
 * stream) and what the supervisor measures (each kind's time per task stage, the hosts' load).
 * What each computes:
 *
 * - comprehensive-analysis (emergency-assessment is the same operation under the seed's other
 *   name): the six metrics with value, threshold and state (mon.status); the trends the monitor
 *   announced within `time_horizon` (PERFORMANCE_DEGRADATION_DETECTED and MEMORY_TREND read back
 *   from the events stream: the latest of each series, and how many); each service's heap and
 *   RSS (its last report); the stage bottlenecks (below); the hosts' load; and the findings, each
 *   from one rule of {@link FINDING_RULES}, critical first. With `optimization_opportunities`
 *   each finding carries a suggestion (a fixed text per rule and stage or metric: what an
 *   operator could do, never something Cadre does by itself). `correlation_analysis` computes
 *   nothing and says so in `ignored`.
 * - bottleneck-analysis: per kind, its stages (queued, working, waiting, applying: sup.perf.stages,
 *   since the active supervisor started) with each one's share of the kind's time, mean and p95;
 *   the stage with the largest share is the kind's bottleneck; kinds are ranked by the seconds
 *   their bottleneck holds (where the most time goes first). The busiest host: the live host with
 *   the most busy actors, then the higher load, then the lower id.
 * - post-emergency-monitoring (post-emergency.ts): reads the monitor's metrics every 100 ms of its
 *   clock for `monitoring_duration`, and counts a metric as regressed when its value passes
 *   (strictly) its threshold × the sensitivity's share (SENSITIVITY: high 50%, medium 75%, low
 *   100%); when the duration ends it answers with each regression (peak, the level it passed,
 *   first and last seen, samples over it, whether it was over already at the first sample and
 *   whether the monitor saw it cross) and the samples taken. POST_EMERGENCY_MONITORING_STARTED
 *   and _COMPLETED announce it. `auto_optimization: true` is refused by the request's schema:
 *   Cadre does not optimise on its own here. At most 2 watches run at once.
 */

import {
  type BottleneckReply,
  type BottleneckRequest,
  bottlenecks,
  type ClusterMetricName,
  type ComprehensiveReply,
  type ComprehensiveRequest,
  DEFAULT_HORIZON_MS,
  type Finding,
  type KindStages,
  type OpReply,
  type OpReplyInput,
  type ServiceReport,
  subjects,
  type TrendRow,
} from "@cadre/protocol";
import { readEventLog } from "@cadre/runtime";
import { ask, type RunbookDeps } from "./resource-manager.js";

/** A stage holding more than this share of a kind's time is a finding (stage_bottleneck). */
export const STAGE_SHARE_LIMIT = 0.5;
/** A host whose 1-minute load over its CPUs is above this is a finding (host_loaded). */
export const HOST_LOAD_LIMIT = 0.9;
/** The most trend events comprehensive-analysis reads back (the monitor announces a few an hour). */
const MAX_TREND_EVENTS = 10_000;

/**
 * The rules of comprehensive-analysis' findings, each with what it tests. The limits are the
 * monitor's own (its thresholds) or the constants above.
 */
export const FINDING_RULES = {
  metric_crossed: "a metric the monitor holds crossed: its value passed its threshold (critical)",
  metric_pending: "a metric above its threshold, waiting out its hold time (forMs) before it crosses (warning)",
  stage_bottleneck: `one stage holds more than ${STAGE_SHARE_LIMIT * 100}% of a kind's task time (working: info, the time is the work itself; queued, waiting, applying: warning)`,
  host_loaded: `a live host's 1-minute load over its CPUs is above ${HOST_LOAD_LIMIT} (warning)`,
  host_unhealthy: "a host is not alive: suspect or unknown (warning), unreachable (critical)",
  heap_high: "a service's heap is above the memory_usage_percent threshold, of its heap limit (warning)",
  trend:
    "the monitor announced a trend within the horizon: latency rising, throughput falling or a heap growing (warning)",
} as const satisfies Record<Finding["rule"], string>;

type Stages = OpReply<"sup.perf.stages">;
type Host = OpReply<"sup.host.list">["hosts"][number];
type HostRow = BottleneckReply["hosts"][number];
/** A metric as mon.status gives it. */
export type MetricState = OpReplyInput<"mon.status">["metrics"][number];

const r3 = (x: number): number => Math.round(x * 1000) / 1000;
/** A fraction as a percent, to 0.1. */
const pct = (x: number): number => Math.round(x * 1000) / 10;
/** A measured value for a message: at most three decimals. */
const shown = (x: number | null | undefined): string => (typeof x === "number" ? String(r3(x)) : "unknown");

// --- pure parts ------------------------------------------------------------------------------

/** Each kind's stages with shares, means and p95, the bottleneck first; kinds ranked by its seconds. */
export function rankStages(reply: Stages): KindStages[] {
  return bottlenecks(reply)
    .map((k) => {
      const top = k.stages[0];
      return {
        kind: k.kind,
        bottleneck: top && top.sumSeconds > 0 ? top.stage : null,
        share: r3(top?.share ?? 0),
        bottleneckSeconds: r3(top?.sumSeconds ?? 0),
        totalSeconds: r3(k.stages.reduce((a, s) => a + s.sumSeconds, 0)),
        tasks: k.tasks,
        stages: k.stages.map((s) => ({
          stage: s.stage,
          count: s.count,
          sumSeconds: r3(s.sumSeconds),
          share: r3(s.share),
          meanSeconds: r3(s.meanSeconds),
          p50Seconds: s.p50Seconds,
          p95Seconds: s.p95Seconds,
        })),
      };
    })
    .sort((a, b) => b.bottleneckSeconds - a.bottleneckSeconds || a.kind.localeCompare(b.kind));
}

/** A host as the replies show it. */
export function hostRow(h: Host): HostRow {
  return {
    hostId: h.hostId,
    state: h.state,
    load: r3(h.load),
    actors: h.actors,
    busy: h.busy,
    maxActors: h.maxActors,
    cordoned: h.cordoned,
  };
}

/** The live (alive or suspect) host with the most busy actors, then the higher load, then the lower id. */
export function busiestHost(hosts: readonly HostRow[]): HostRow | null {
  const live = hosts.filter((h) => h.state === "alive" || h.state === "suspect");
  return [...live].sort((a, b) => b.busy - a.busy || b.load - a.load || a.hostId.localeCompare(b.hostId))[0] ?? null;
}

/** What a metric's crossing suggests an operator look at. */
const METRIC_HINTS: Record<ClusterMetricName, string> = {
  state_conflicts_per_minute: "writers contend for the same state keys: spread them, or run fewer workflows at once",
  delegation_depth_p99: "delegation chains run deep: look at the teams' kinds that delegate to each other",
  active_agents_count:
    "the agent pool is large: pause or cap low-priority workflows (resource-manager emergency-reallocation)",
  event_queue_depth: "the services hold events back: publishing lags emitting; look at NATS, or add capacity",
  memory_usage_percent: "free memory: coordination-hub emergency-cleanup, or the monitor's cleanup action",
  hook_failure_rate: "a hook fails often: fix it, or let the monitor's bypass action skip it",
};

const STAGE_HINTS: Record<string, (kind: string) => string> = {
  queued: (k) => `${k}'s tasks wait for an agent: more replicas of ${k}, or fewer workflows competing for it`,
  working: (k) => `the time is ${k}'s work itself: a faster behaviour or model, or smaller tasks`,
  waiting: () => "finished results wait for the supervisor to take them up: its load, or NATS",
  applying: () => "the supervisor's writes of results are slow: the state store's latency",
};

/** What {@link findings} reads. */
export interface FindingsInput {
  metrics: readonly MetricState[];
  /** null: bottlenecks not asked for. */
  kinds: readonly KindStages[] | null;
  hosts: readonly HostRow[];
  services: readonly Pick<ServiceReport, "service" | "id" | "heapUsedBytes" | "heapLimitBytes">[];
  trends: readonly TrendRow[];
  /** memory_usage_percent's threshold, in percent. */
  memoryThreshold: number;
  /** Whether each finding carries a suggestion. */
  suggest: boolean;
}

const SEVERITY_ORDER = { critical: 0, warning: 1, info: 2 } as const;

/** The findings of comprehensive-analysis, one per rule that holds ({@link FINDING_RULES}), critical first. */
export function findings(i: FindingsInput): Finding[] {
  const out: (Finding & { hint: string })[] = [];
  for (const m of i.metrics) {
    if (m.state !== "crossed" && m.state !== "pending") continue;
    const hint = METRIC_HINTS[m.metric as ClusterMetricName] ?? "";
    out.push({
      rule: m.state === "crossed" ? "metric_crossed" : "metric_pending",
      severity: m.state === "crossed" ? "critical" : "warning",
      subject: m.metric,
      value: m.value ?? null,
      limit: m.threshold,
      message: `${m.metric} is ${shown(m.value)}, above its threshold ${m.threshold} (${m.state}; the monitor's action: ${m.action})`,
      hint,
    });
  }
  for (const k of i.kinds ?? []) {
    if (k.bottleneck === null || !(k.share > STAGE_SHARE_LIMIT)) continue;
    out.push({
      rule: "stage_bottleneck",
      severity: k.bottleneck === "working" ? "info" : "warning",
      subject: `${k.kind}/${k.bottleneck}`,
      value: k.share,
      limit: STAGE_SHARE_LIMIT,
      message: `${k.kind}: ${k.bottleneck} holds ${pct(k.share)}% of its tasks' time (${k.bottleneckSeconds} s of ${k.totalSeconds} s, ${k.tasks} tasks)`,
      hint: STAGE_HINTS[k.bottleneck]?.(k.kind) ?? "",
    });
  }
  for (const h of i.hosts) {
    if (h.state !== "alive") {
      out.push({
        rule: "host_unhealthy",
        severity: h.state === "unreachable" ? "critical" : "warning",
        subject: h.hostId,
        value: null,
        limit: null,
        message: `host ${h.hostId} is ${h.state} (${h.busy} of its ${h.actors} actors busy)`,
        hint: "its tasks are given to other actors once it is declared dead; bring it back or drain it",
      });
    } else if (h.load > HOST_LOAD_LIMIT) {
      out.push({
        rule: "host_loaded",
        severity: "warning",
        subject: h.hostId,
        value: h.load,
        limit: HOST_LOAD_LIMIT,
        message: `host ${h.hostId}'s load is ${h.load} of its CPUs (${h.busy} of ${h.actors} actors busy)`,
        hint: "move actors off it (cadre host cordon, host drain) or add a host",
      });
    }
  }
  for (const s of i.services) {
    // Compared unrounded, as the monitor's memory_usage_percent is.
    const percent = (100 * s.heapUsedBytes) / s.heapLimitBytes;
    if (!(percent > i.memoryThreshold)) continue;
    out.push({
      rule: "heap_high",
      severity: "warning",
      subject: `${s.service}/${s.id}`,
      value: r3(percent),
      limit: i.memoryThreshold,
      message: `${s.service} ${s.id}'s heap is ${shown(percent)}% of its limit, above ${i.memoryThreshold}%`,
      hint: "free memory: coordination-hub emergency-cleanup (host.cleanup), or restart the service",
    });
  }
  for (const t of i.trends) {
    const memory = t.type === "MEMORY_TREND";
    out.push({
      rule: "trend",
      severity: "warning",
      subject: t.series,
      value: r3(t.relativeChange),
      limit: null,
      message: `${t.series} ${t.direction === "increasing" ? "rose" : "fell"} ${pct(Math.abs(t.relativeChange))}% over ${Math.round(t.windowMs / 1000)} s (confidence ${r3(t.confidence)}; announced ${t.count} time${t.count === 1 ? "" : "s"})`,
      hint: memory
        ? "the heap keeps growing: a leak, or a cache without a bound; watch it with post-emergency-monitoring"
        : "a drift, not yet a crossing: bottleneck-analysis names the stage the time goes to",
    });
  }
  return out
    .sort(
      (a, b) =>
        SEVERITY_ORDER[a.severity] - SEVERITY_ORDER[b.severity] ||
        a.rule.localeCompare(b.rule) ||
        a.subject.localeCompare(b.subject),
    )
    .map(({ hint, ...f }) => (i.suggest && hint ? { ...f, suggestion: hint } : f));
}

// --- the operations --------------------------------------------------------------------------

/**
 * The trends the monitor announced since `since` (ms since the epoch): the events stream's
 * PERFORMANCE_DEGRADATION_DETECTED and MEMORY_TREND, the latest of each type and series with
 * how many there were, newest first (runtime readEventLog: an ordered consumer from that time).
 */
export async function trendsSince(d: RunbookDeps, since: number): Promise<TrendRow[]> {
  const { events } = await readEventLog(d.nc, {
    filter: subjects.eventsOf("performance"),
    sinceMs: since,
    max: MAX_TREND_EVENTS,
  });
  const latest = new Map<string, TrendRow>();
  for (const { event: e, at } of events) {
    if (e.type !== "PERFORMANCE_DEGRADATION_DETECTED" && e.type !== "MEMORY_TREND") continue;
    const key = `${e.type}:${e.data.series}`;
    latest.set(key, {
      type: e.type,
      series: e.data.series,
      direction: e.data.direction,
      slopePerSecond: e.data.slopePerSecond,
      relativeChange: e.data.relativeChange,
      confidence: e.data.confidence,
      windowMs: e.data.windowMs,
      at,
      count: (latest.get(key)?.count ?? 0) + 1,
    });
  }
  return [...latest.values()].sort((a, b) => b.at - a.at || a.series.localeCompare(b.series));
}

/** comprehensive-analysis and emergency-assessment. */
export async function comprehensiveAnalysis(d: RunbookDeps, req: ComprehensiveRequest): Promise<ComprehensiveReply> {
  const at = d.clock.now();
  const horizonMs = req.time_horizon ?? DEFAULT_HORIZON_MS;
  const [{ hosts }, stages, trends] = await Promise.all([
    ask(d, "sup.host.list", {}),
    req.bottleneck_identification ? ask(d, "sup.perf.stages", {}) : Promise.resolve(null),
    trendsSince(d, at - horizonMs).then(
      (series) => ({ series }),
      (err: unknown) => ({ series: [] as TrendRow[], error: `the events stream was not read: ${String(err)}` }),
    ),
  ]);
  const metrics = d.status().metrics.map((m) => ({ ...m, value: m.value ?? null, since: m.since ?? null }));
  const services = d.reports().map((r) => ({
    service: r.service,
    id: r.id,
    at: r.at,
    heapUsedBytes: r.heapUsedBytes,
    heapLimitBytes: r.heapLimitBytes,
    heapPercent: r3((100 * r.heapUsedBytes) / r.heapLimitBytes),
    rssBytes: r.rssBytes,
  }));
  const kinds = stages ? rankStages(stages) : null;
  const hostRows = hosts.map(hostRow);
  const ignored: string[] = [];
  if (req.correlation_analysis) {
    ignored.push("correlation_analysis (no correlation statistic is computed; each finding names its source)");
  }
  return {
    at,
    asked: { analysis_scope: req.analysis_scope ?? null, scope: req.scope ?? null, focus: req.focus ?? [] },
    metrics,
    trends: { horizonMs, series: trends.series, ...("error" in trends ? { error: trends.error } : {}) },
    services,
    bottlenecks: kinds,
    hosts: hostRows,
    findings: findings({
      metrics,
      kinds,
      hosts: hostRows,
      services,
      trends: trends.series,
      memoryThreshold: d.config.monitor.metrics.memory_usage_percent.threshold,
      suggest: req.optimization_opportunities,
    }),
    ignored,
  };
}

/** bottleneck-analysis. */
export async function bottleneckAnalysis(d: RunbookDeps, req: BottleneckRequest): Promise<BottleneckReply> {
  const [stages, { hosts }] = await Promise.all([ask(d, "sup.perf.stages", {}), ask(d, "sup.host.list", {})]);
  const hostRows = hosts.map(hostRow);
  return {
    at: d.clock.now(),
    asked: { scope: req.scope ?? null, focus: req.focus ?? [], analysis_scope: req.analysis_scope ?? null },
    kinds: rankStages(stages),
    busiestHost: busiestHost(hostRows),
    hosts: hostRows,
  };
}

export {
  LOOK_EVERY_MS,
  MAX_WATCHES,
  postEmergencyMonitoring,
  RegressionWatch,
  regressionLevel,
  watchedMetrics,
} from "./post-emergency.js";
