/**
 * The monitor's watch over the cluster: every `monitor.intervalMs` it computes the six metrics
 * from the services' reports (cluster.ts), runs each through its threshold with hysteresis and
 * cooldown (thresholds.ts), acts on every transition (actions.ts), and feeds three series to
 * the trend detector (trend.ts):
 *
 *   task_latency   mean working time of the tasks applied in the interval (rising: degradation)
 *   throughput     tasks applied per second in an interval with work (falling: degradation)
 *   heap:<service> each service's heap (rising: MEMORY_TREND)
 *
 * A significant trend is announced as PERFORMANCE_DEGRADATION_DETECTED or MEMORY_TREND with its
 * Theil-Sen slope, the change over the window, the window and the Mann-Kendall confidence.
 */

import {
  type Config,
  METRIC_NAMES,
  type MetricAction,
  type OpReplyInput,
  type ServiceReport,
  type TypedEvent,
} from "@cadre/protocol";
import type { Logger } from "@cadre/runtime";
import type { Actions } from "./actions.js";
import { type ClusterMetrics, ClusterView } from "./cluster.js";
import { HISTORY_SAMPLES, type MetricHistory, type TrendSeries } from "./dashboard/snapshot.js";
import { ThresholdTracker } from "./thresholds.js";
import { TrendDetector, type TrendFinding } from "./trend.js";

/** Dependencies of {@link Watch}. */
export interface WatchDeps {
  config: Config;
  logger: Logger;
  emit: (event: TypedEvent) => void;
  actions: (view: ClusterView) => Actions;
}

export class Watch {
  readonly view: ClusterView;
  private readonly tracker: ThresholdTracker<MetricAction>;
  private readonly trends: TrendDetector;
  private readonly actions: Actions;
  private last: ClusterMetrics | undefined;
  /** The last {@link HISTORY_SAMPLES} ticks' metrics, oldest first (the dashboard's charts). */
  private readonly samples: { at: number; metrics: ClusterMetrics }[] = [];
  private previousWork: { at: number; tasksApplied: number; workingSeconds: number } | undefined;

  constructor(private readonly d: WatchDeps) {
    const m = d.config.monitor;
    // A service is current while it has reported within three intervals.
    this.view = new ClusterView({ windowMs: m.windowMs, staleMs: 3 * m.intervalMs });
    this.tracker = new ThresholdTracker(m.metrics);
    this.trends = new TrendDetector(m.trend);
    this.actions = d.actions(this.view);
  }

  add(report: ServiceReport): void {
    this.view.add(report);
  }

  /** One interval: metrics, thresholds, actions, trends. */
  async tick(now: number): Promise<void> {
    const metrics = this.view.metrics(now);
    this.last = metrics;
    this.samples.push({ at: now, metrics });
    if (this.samples.length > HISTORY_SAMPLES) this.samples.shift();
    for (const name of METRIC_NAMES) {
      const t = this.tracker.observe(name, metrics[name], now);
      if (t) await this.actions.transition(t);
    }
    await this.actions.hold();
    this.trend(now);
  }

  /** The six metrics over the last ticks, oldest first. */
  history(): MetricHistory {
    const values: MetricHistory["values"] = {};
    for (const name of METRIC_NAMES) {
      values[name] = this.samples.map((s) => s.metrics[name as keyof ClusterMetrics] ?? null);
    }
    return { at: this.samples.map((s) => s.at), values };
  }

  /** The trend detector's series as it holds them now (task_latency, throughput, heap:<service>). */
  trendSeries(): TrendSeries[] {
    return this.trends.windowsNow().map((w) => ({
      series: w.series,
      at: w.points.map((p) => p.t),
      values: w.points.map((p) => p.v),
    }));
  }

  /** The services' current reports. */
  reports(now: number): ServiceReport[] {
    return this.view.sources(now);
  }

  /** What `cadre monitor` shows (mon.status). */
  status(now: number): OpReplyInput<"mon.status"> {
    return {
      metrics: this.tracker.state(now).map((s) => ({
        metric: s.metric,
        value: this.last?.[s.metric as keyof ClusterMetrics] ?? null,
        threshold: s.threshold,
        clear: s.clear,
        action: s.action,
        state: s.state,
        since: s.since ?? null,
      })),
      sources: this.view.sources(now).map((r) => ({ service: r.service, id: r.id, at: r.at })),
    };
  }

  private trend(now: number): void {
    const work = this.view.work(now);
    const prev = this.previousWork;
    this.previousWork = { at: now, ...work };
    if (prev) {
      const applied = work.tasksApplied - prev.tasksApplied;
      const working = work.workingSeconds - prev.workingSeconds;
      // Counters went down: a supervisor restarted or another took over; start again.
      if (applied > 0 && working >= 0 && now > prev.at) {
        this.found(this.trends.add("task_latency", now, working / applied), "increasing");
        this.found(this.trends.add("throughput", now, (applied * 1000) / (now - prev.at)), "decreasing");
      }
    }
    for (const h of this.view.heaps(now)) {
      const f = this.trends.add(`heap:${h.source}`, h.at, h.bytes);
      if (f?.direction !== "increasing") continue;
      this.d.emit({
        type: "MEMORY_TREND",
        category: "performance",
        scope: "trend_analysis",
        data: { ...this.trendData(f), service: h.source, bytesPerMinute: f.slopePerSecond * 60 },
      });
    }
  }

  /** A latency rise or a throughput fall is a degradation; the other directions are not. */
  private found(f: TrendFinding | undefined, bad: "increasing" | "decreasing"): void {
    if (!f || f.direction !== bad) return;
    this.d.emit({
      type: "PERFORMANCE_DEGRADATION_DETECTED",
      category: "performance",
      scope: "trend_analysis",
      data: this.trendData(f),
    });
    this.d.logger.warn(this.trendData(f), `performance degradation: ${f.series} ${f.direction}`);
  }

  private trendData(f: TrendFinding) {
    return {
      series: f.series,
      direction: f.direction,
      slopePerSecond: f.slopePerSecond,
      relativeChange: f.relativeChange,
      windowMs: f.windowMs,
      confidence: f.confidence,
      samples: f.samples,
    };
  }
}
