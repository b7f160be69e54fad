/**
 * What the monitor does when a cluster metric crosses its threshold (thresholds.ts decides
 * when; the configuration says which action). Every crossing and clearing is announced:
 * THRESHOLD_CROSSED / THRESHOLD_CLEARED (critical) for every action but `warn`, whose events are
 * THRESHOLD_WARNING / THRESHOLD_WARNING_CLEARED (not critical). Then:
 *
 *   alert     nothing more: the critical event is the alert;
 *   warn      nothing more;
 *   throttle  the supervisor refuses new workflows below `monitor.throttle.belowPriority`
 *             (sup.admission.throttle for `holdMs`, renewed every interval while it holds,
 *             lifted when the metric clears);
 *   scale     SCALE_REQUESTED with the deficit, and `monitor.scale.command` run (its exit code
 *             in the event; `CADRE_SCALE_METRIC`, `_VALUE`, `_DEFICIT` in its environment);
 *   cleanup   every live host releases what it can (host.cleanup; each reports CLEANUP_REPORTED),
 *             and so does a host that starts reporting while the metric stays over;
 *   bypass    every hook whose failure rate across the hosts is over the threshold is bypassed on
 *             every host (host.hooks.bypass) for `monitor.bypass.forMs`.
 */

import type { ClusterMetricName, Config, MetricAction, TypedEvent } from "@cadre/protocol";
import { type CadreMetrics, call, type Logger, type NatsConnection, runShell } from "@cadre/runtime";
import type { Transition } from "./thresholds.js";

/** Dependencies of {@link Actions}. */
export interface ActionDeps {
  nc: NatsConnection;
  config: Config;
  logger: Logger;
  metrics: CadreMetrics;
  sender: string;
  emit: (event: TypedEvent) => void;
  /** Hosts reporting now. */
  hosts: () => string[];
  /** Each hook's failure rate across the hosts now. */
  hookRates: () => Map<string, { rate: number }>;
  /** The scale command (flag over configuration). */
  scaleCommand: string | undefined;
}

/** Carries out the actions of threshold transitions. */
export class Actions {
  /** Metrics whose throttle holds now (renewed every interval). */
  private readonly throttling = new Set<ClusterMetricName>();
  /** Metrics over their cleanup threshold, with the hosts cleaned up during this crossing. */
  private readonly cleaning = new Map<ClusterMetricName, { reason: string; done: Set<string> }>();

  constructor(private readonly d: ActionDeps) {}

  /** A metric crossed or cleared: announce it, then act. */
  async transition(t: Transition<MetricAction>): Promise<void> {
    const data = { metric: t.metric, value: t.value, threshold: t.threshold, clear: t.clear, action: t.action };
    const warn = t.action === "warn";
    const type =
      t.kind === "crossed"
        ? warn
          ? "THRESHOLD_WARNING"
          : "THRESHOLD_CROSSED"
        : warn
          ? "THRESHOLD_WARNING_CLEARED"
          : "THRESHOLD_CLEARED";
    this.d.emit({ type, category: "monitor", scope: t.metric, data });
    this.d.logger.warn(
      data,
      `${t.metric} ${t.kind} (${t.value} against ${t.kind === "crossed" ? t.threshold : t.clear})`,
    );
    if (t.kind === "crossed") this.d.metrics.thresholdActions.inc({ metric: t.metric, action: t.action });
    const metric = t.metric as ClusterMetricName;
    try {
      if (t.kind === "crossed") await this.act(metric, t);
      else await this.undo(metric, t);
    } catch (err) {
      this.d.logger.error({ err, metric, action: t.action }, "threshold action failed");
    }
  }

  /** Every interval: renews what holds while a metric stays over (the throttle, cleanup of new hosts). */
  async hold(): Promise<void> {
    for (const metric of this.throttling) {
      await this.throttle(metric, this.d.config.monitor.throttle.holdMs).catch(() => {});
    }
    for (const c of this.cleaning.values()) await this.cleanup(c);
  }

  /** Asks every host not asked yet during this crossing to clean up. */
  private async cleanup(c: { reason: string; done: Set<string> }): Promise<void> {
    const todo = this.d.hosts().filter((h) => !c.done.has(h));
    for (const h of todo) c.done.add(h);
    await Promise.allSettled(
      todo.map((hostId) => call(this.d.nc, "host.cleanup", { reason: c.reason }, this.opts(hostId))),
    );
  }

  private async act(metric: ClusterMetricName, t: Transition<MetricAction>): Promise<void> {
    switch (t.action) {
      case "throttle":
        this.throttling.add(metric);
        await this.throttle(
          metric,
          this.d.config.monitor.throttle.holdMs,
          `${metric} ${round(t.value)} over ${t.threshold}`,
        );
        return;
      case "scale":
        await this.scale(metric, t);
        return;
      case "cleanup": {
        const c = { reason: `${metric} ${round(t.value)} over ${t.threshold}`, done: new Set<string>() };
        this.cleaning.set(metric, c);
        await this.cleanup(c);
        return;
      }
      case "bypass": {
        const forMs = this.d.config.monitor.bypass.forMs;
        const over = [...this.d.hookRates()].filter(([, r]) => r.rate > t.threshold);
        await Promise.allSettled(
          over.flatMap(([hook, r]) =>
            this.d
              .hosts()
              .map((hostId) =>
                call(
                  this.d.nc,
                  "host.hooks.bypass",
                  { hook, forMs, failureRate: Math.min(1, r.rate) },
                  this.opts(hostId),
                ),
              ),
          ),
        );
        return;
      }
      default:
        return;
    }
  }

  private async undo(metric: ClusterMetricName, t: Transition<MetricAction>): Promise<void> {
    this.cleaning.delete(metric);
    if (t.action === "throttle" && this.throttling.delete(metric)) {
      await this.throttle(metric, 0, `${metric} cleared at ${round(t.value)}`);
    }
  }

  private throttle(metric: ClusterMetricName, forMs: number, reason = `${metric} over its threshold`) {
    return call(
      this.d.nc,
      "sup.admission.throttle",
      { belowPriority: this.d.config.monitor.throttle.belowPriority, forMs, reason },
      { sender: this.d.sender, timeoutMs: this.d.config.requestTimeoutMs },
    );
  }

  private async scale(metric: ClusterMetricName, t: Transition<MetricAction>): Promise<void> {
    const command = this.d.scaleCommand ?? null;
    let exitCode: number | null = null;
    if (command) {
      const out = await runShell({
        command,
        stdin: "",
        timeoutMs: 60_000,
        env: {
          CADRE_SCALE_METRIC: metric,
          CADRE_SCALE_VALUE: String(t.value),
          CADRE_SCALE_DEFICIT: String(t.value - t.threshold),
        },
      });
      exitCode = out.type === "exit" ? out.code : null;
      if (out.type !== "exit" || out.code !== 0)
        this.d.logger.warn({ command, outcome: out.type, exitCode }, "scale command failed");
    }
    this.d.emit({
      type: "SCALE_REQUESTED",
      category: "monitor",
      scope: metric,
      data: { metric, value: t.value, threshold: t.threshold, deficit: t.value - t.threshold, command, exitCode },
    });
  }

  private opts(hostId: string) {
    return { sender: this.d.sender, hostId, timeoutMs: this.d.config.requestTimeoutMs };
  }
}

const round = (v: number): number => Math.round(v * 1000) / 1000;
