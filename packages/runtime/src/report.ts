/**
 * Service reports: every service publishes, every `monitor.intervalMs`, what the monitor needs
 * from it to compute the cluster's six metrics (ServiceReportSchema), read from the service's
 * own metrics so there is one source for `/metrics` and for the monitor. Core NATS, at most
 * once: a lost report only makes the monitor's next difference span two intervals.
 */

import { getHeapStatistics } from "node:v8";
import { encode, type ServiceReport, subjects } from "@cadre/protocol";
import type { Clock } from "./clock.js";
import type { Logger } from "./logger.js";
import type { CadreMetrics } from "./metrics.js";
import type { NatsConnection } from "./nats.js";

type Values = { labels: Partial<Record<string, string | number>>; value: number; metricName?: string }[];

const valuesOf = async (m: { get(): Promise<{ values: Values }> | { values: Values } }): Promise<Values> =>
  (await m.get()).values;

const total = (v: Values): number => v.reduce((a, x) => a + x.value, 0);

/** The report of a service now, from its metrics and its process. */
export async function buildReport(
  metrics: CadreMetrics,
  who: { service: ServiceReport["service"]; id: string; incarnation: string; now: number },
): Promise<ServiceReport> {
  const mem = process.memoryUsage();
  const hooks = new Map<string, { hook: string; runs: number; failures: number; bypassed: boolean }>();
  for (const v of await valuesOf(metrics.hookRuns)) {
    const hook = String(v.labels.hook);
    const h = hooks.get(hook) ?? { hook, runs: 0, failures: 0, bypassed: false };
    h.runs += v.value;
    if (v.labels.outcome !== "ok") h.failures += v.value;
    hooks.set(hook, h);
  }
  for (const v of await valuesOf(metrics.hookBypassed)) {
    const h = hooks.get(String(v.labels.hook));
    if (h) h.bypassed = v.value > 0;
  }
  // Cumulative buckets (le=0, 1, ... 10, +Inf) into counts per depth.
  const buckets = (await valuesOf(metrics.delegationDepth))
    .filter((v) => v.metricName?.endsWith("_bucket"))
    .map((v) => v.value);
  const delegationDepths = buckets.map((c, i) => c - (i > 0 ? (buckets[i - 1] ?? 0) : 0)).slice(0, 12);
  const working = (await valuesOf(metrics.taskStageSeconds)).filter((v) => v.labels.stage === "working");
  return {
    service: who.service,
    id: who.id,
    incarnation: who.incarnation,
    at: who.now,
    heapUsedBytes: mem.heapUsed,
    heapLimitBytes: getHeapStatistics().heap_size_limit,
    rssBytes: mem.rss,
    eventQueueDepth: total(await valuesOf(metrics.eventQueueDepth)),
    stateConflicts: total(await valuesOf(metrics.stateConflicts)),
    actors: total(await valuesOf(metrics.actorsActive)),
    busy: total(await valuesOf(metrics.actorsBusy)),
    hooks: [...hooks.values()].slice(0, 100),
    delegationDepths,
    tasksApplied: total(working.filter((v) => v.metricName?.endsWith("_count"))),
    workingSeconds: total(working.filter((v) => v.metricName?.endsWith("_sum"))),
  };
}

/** Publishes a service's report every `intervalMs` until stopped. */
export class Reporter {
  private timer: unknown;
  private stopped = false;

  constructor(
    private readonly o: {
      nc: NatsConnection;
      metrics: CadreMetrics;
      service: ServiceReport["service"];
      id: string;
      incarnation: string;
      intervalMs: number;
      clock: Clock;
      logger: Logger;
    },
  ) {}

  start(): this {
    const tick = () => {
      if (this.stopped) return;
      void this.publish().finally(() => {
        if (!this.stopped) this.timer = this.o.clock.setTimeout(tick, this.o.intervalMs);
      });
    };
    this.timer = this.o.clock.setTimeout(tick, 0);
    return this;
  }

  /** Publishes one report now. */
  async publish(): Promise<void> {
    const { nc, metrics, service, id, incarnation, clock } = this.o;
    try {
      const report = await buildReport(metrics, { service, id, incarnation, now: clock.now() });
      if (nc.isClosed()) return;
      nc.publish(subjects.report(service, id), encode("report", report, { sender: id }));
    } catch (err) {
      this.o.logger.debug({ err }, "report not published");
    }
  }

  stop(): void {
    this.stopped = true;
    this.o.clock.clearTimeout(this.timer);
  }
}
