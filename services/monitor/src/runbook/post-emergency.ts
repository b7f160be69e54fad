/**
 * `/performance-monitor post-emergency-monitoring`: a watch of the monitor's metrics for a given
 * time at a raised sensitivity (what counts as a regression: see {@link regressionLevel}), with
 * its events, answered with the regressions when it ends. The rules are in performance.ts's
 * header; at most {@link MAX_WATCHES} watches run at once.
 */

import {
  type ClusterMetricName,
  METRIC_NAMES,
  type PostEmergencyReply,
  type PostEmergencyRequest,
  type Regression,
  ResourceExhaustedError,
  SENSITIVITY,
} from "@cadre/protocol";
import { sleep } from "@cadre/runtime";
import type { MetricState } from "./performance.js";
import type { RunbookDeps } from "./resource-manager.js";

/** How often the runbook's waits (this watch, gradual-resumption's health) read the monitor's metrics. */
export const LOOK_EVERY_MS = 100;
/** Post-emergency watches at once; one more is refused (RESOURCE_EXHAUSTED) until one ends. */
export const MAX_WATCHES = 2;

/**
 * The metrics a post-emergency watch looks at: the entries of `metrics_focus` that name one of
 * the six (in the table's order); none named, all six. The other entries are notes, echoed.
 */
export function watchedMetrics(focus: readonly string[] | undefined): {
  metrics: ClusterMetricName[];
  notes: string[];
} {
  const named = new Set((focus ?? []).filter((f): f is ClusterMetricName => METRIC_NAMES.includes(f as never)));
  return {
    metrics: named.size > 0 ? METRIC_NAMES.filter((m) => named.has(m)) : [...METRIC_NAMES],
    notes: (focus ?? []).filter((f) => !named.has(f as ClusterMetricName)),
  };
}

/** The level a metric's value must pass to count as a regression: its threshold × the sensitivity's share. */
export function regressionLevel(threshold: number, sensitivity: keyof typeof SENSITIVITY): number {
  return threshold * SENSITIVITY[sensitivity];
}

/**
 * The regressions of a post-emergency watch, from the metrics it is shown sample by sample: a
 * watched metric whose value is above (strictly) {@link regressionLevel} of its threshold at a
 * sample has regressed. Unknown values (no service reporting) count as nothing.
 */
export class RegressionWatch {
  private readonly seen = new Map<string, Regression>();
  private taken = 0;
  private readonly watched: ReadonlySet<string>;

  constructor(
    metrics: readonly ClusterMetricName[],
    private readonly sensitivity: keyof typeof SENSITIVITY,
  ) {
    this.watched = new Set(metrics);
  }

  /** One sample: the metrics as mon.status gives them, at `at`. */
  observe(metrics: readonly MetricState[], at: number): void {
    this.taken++;
    for (const m of metrics) {
      if (!this.watched.has(m.metric) || m.value === null || m.value === undefined) continue;
      const level = regressionLevel(m.threshold, this.sensitivity);
      const r = this.seen.get(m.metric);
      if (r && m.state === "crossed") r.crossed = true;
      if (!(m.value > level)) continue;
      if (!r) {
        this.seen.set(m.metric, {
          metric: m.metric,
          threshold: m.threshold,
          level,
          peak: m.value,
          firstSeenAt: at,
          lastSeenAt: at,
          samplesOver: 1,
          atStart: this.taken === 1,
          crossed: m.state === "crossed",
        });
        continue;
      }
      r.peak = Math.max(r.peak, m.value);
      r.lastSeenAt = at;
      r.samplesOver++;
      // The threshold may be reconfigured while watching: report the level last passed.
      r.threshold = m.threshold;
      r.level = level;
    }
  }

  get samples(): number {
    return this.taken;
  }

  /** The regressions seen, the first seen first. */
  regressions(): Regression[] {
    return [...this.seen.values()]
      .map((r) => ({ ...r }))
      .sort((a, b) => a.firstSeenAt - b.firstSeenAt || a.metric.localeCompare(b.metric));
  }
}

/** Watches running now, per monitor. */
const watching = new WeakMap<RunbookDeps, number>();

/** post-emergency-monitoring: the watch, its events and its regressions. */
export async function postEmergencyMonitoring(d: RunbookDeps, req: PostEmergencyRequest): Promise<PostEmergencyReply> {
  const running = watching.get(d) ?? 0;
  if (running >= MAX_WATCHES) {
    throw new ResourceExhaustedError("post-emergency watches running at once", MAX_WATCHES, running, {
      fix: "wait for one to end (each ends after its monitoring_duration)",
    });
  }
  watching.set(d, running + 1);
  try {
    const sensitivity = req.alert_sensitivity;
    const { metrics, notes } = watchedMetrics(req.metrics_focus);
    const watch = new RegressionWatch(metrics, sensitivity);
    const durationMs = req.monitoring_duration;
    d.emit({
      type: "POST_EMERGENCY_MONITORING_STARTED",
      category: "performance",
      scope: "post_emergency_monitoring",
      data: {
        monitoring_duration_ms: durationMs,
        alert_sensitivity: sensitivity,
        sensitivity_share: SENSITIVITY[sensitivity],
        metrics_watched: metrics,
        metrics_focus: notes,
      },
    });
    const startedAt = d.clock.now();
    for (;;) {
      const now = d.clock.now();
      watch.observe(d.status().metrics, now);
      const elapsed = now - startedAt;
      if (elapsed >= durationMs) break;
      await sleep(d.clock, Math.min(LOOK_EVERY_MS, durationMs - elapsed));
    }
    const endedAt = d.clock.now();
    const regressions = watch.regressions();
    const health = regressions.length > 0 ? "regressed" : "stable";
    d.emit({
      type: "POST_EMERGENCY_MONITORING_COMPLETED",
      category: "performance",
      scope: "post_emergency_monitoring",
      data: {
        monitoring_time_ms: endedAt - startedAt,
        samples: watch.samples,
        regressions: regressions.length,
        regressed_metrics: regressions.map((r) => r.metric),
        system_health: health,
      },
    });
    return {
      startedAt,
      endedAt,
      ms: endedAt - startedAt,
      durationMs,
      sensitivity: { level: sensitivity, share: SENSITIVITY[sensitivity] },
      metrics,
      focus: notes,
      samples: watch.samples,
      regressions,
      health,
      auto_optimization: false,
    };
  } finally {
    watching.set(d, (watching.get(d) ?? 1) - 1);
  }
}
