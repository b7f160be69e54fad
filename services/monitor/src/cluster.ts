/**
 * The cluster as the services' reports show it (runtime report.ts), and the seed's six metrics
 * computed from it. Per service it keeps the reports of the last `windowMs`; rates are
 * differences between a service's newest report and its oldest in the window, so they say how
 * fast something happened lately, not since the start. A service that has not reported for
 * `staleMs` no longer counts; a new incarnation (a restart) starts its series again.
 *
 *   state_conflicts_per_minute  compare-and-set conflicts of every service, per minute
 *   delegation_depth_p99        the 99th percentile of the depths of the subtasks created
 *   active_agents_count         actors on the hosts now
 *   event_queue_depth           events every service's bus holds back now
 *   memory_usage_percent        the fullest service's heap, of its limit
 *   hook_failure_rate           hook runs that failed or timed out, of all runs, on the hosts
 */

import type { ClusterMetricName, ServiceReport } from "@cadre/protocol";

/**
 * The six metrics; undefined only while no service reports. Nothing happening is 0: no
 * conflicts, no subtasks (depth 0), no hook runs (no failures), so a metric that was over its
 * threshold clears once the activity that raised it stops.
 */
export type ClusterMetrics = Record<ClusterMetricName, number | undefined>;

const sourceOf = (r: ServiceReport): string => `${r.service}/${r.id}`;

/** Reports per service over a window, and the metrics they give. */
export class ClusterView {
  private readonly series = new Map<string, ServiceReport[]>();

  constructor(private readonly o: { windowMs: number; staleMs: number }) {}

  add(r: ServiceReport): void {
    const key = sourceOf(r);
    let s = this.series.get(key) ?? [];
    const last = s.at(-1);
    if (last && (last.incarnation !== r.incarnation || r.at < last.at)) s = [];
    s.push(r);
    // Keep one report older than the window, so a difference spans the whole window.
    while (s.length > 2 && (s[1]?.at ?? 0) <= r.at - this.o.windowMs) s.shift();
    this.series.set(key, s);
  }

  /** Services whose reports are current at `now`, newest report each. */
  sources(now: number): ServiceReport[] {
    const out: ServiceReport[] = [];
    for (const [key, s] of this.series) {
      const last = s.at(-1);
      if (!last) continue;
      if (now - last.at > this.o.staleMs) {
        this.series.delete(key);
        continue;
      }
      out.push(last);
    }
    return out;
  }

  /** The six metrics at `now`. */
  metrics(now: number): ClusterMetrics {
    const live = this.sources(now).map((r) => this.series.get(sourceOf(r)) ?? []);
    const first = (s: ServiceReport[]) => s[0] as ServiceReport;
    const last = (s: ServiceReport[]) => s.at(-1) as ServiceReport;
    const spanned = live.filter((s) => s.length >= 2 && last(s).at > first(s).at);
    const hosts = live.filter((s) => last(s).service === "agent-host");

    let conflicts: number | undefined = live.length > 0 ? 0 : undefined;
    for (const s of spanned) {
      const perMinute = ((last(s).stateConflicts - first(s).stateConflicts) * 60_000) / (last(s).at - first(s).at);
      conflicts = (conflicts ?? 0) + Math.max(0, perMinute);
    }

    const depths: number[] = [];
    for (const s of spanned) {
      const a = first(s).delegationDepths;
      last(s).delegationDepths.forEach((n, d) => {
        depths[d] = (depths[d] ?? 0) + Math.max(0, n - (a[d] ?? 0));
      });
    }

    const rates = this.hookRates(now);
    let runs = 0;
    let failures = 0;
    for (const r of rates.values()) {
      runs += r.runs;
      failures += r.failures;
    }

    return {
      state_conflicts_per_minute: conflicts,
      delegation_depth_p99: percentile(depths, 0.99) ?? (live.length > 0 ? 0 : undefined),
      active_agents_count: hosts.length > 0 ? hosts.reduce((a, s) => a + last(s).actors, 0) : undefined,
      event_queue_depth: live.length > 0 ? live.reduce((a, s) => a + last(s).eventQueueDepth, 0) : undefined,
      memory_usage_percent:
        live.length > 0
          ? Math.max(...live.map((s) => (100 * last(s).heapUsedBytes) / last(s).heapLimitBytes))
          : undefined,
      hook_failure_rate: runs > 0 ? failures / runs : live.length > 0 ? 0 : undefined,
    };
  }

  /** Each hook's runs and failures over the window, summed over the hosts, and its rate. */
  hookRates(now: number): Map<string, { runs: number; failures: number; rate: number }> {
    const out = new Map<string, { runs: number; failures: number; rate: number }>();
    for (const r of this.sources(now)) {
      const s = this.series.get(sourceOf(r)) ?? [];
      const before = new Map((s.length >= 2 ? (s[0]?.hooks ?? []) : []).map((h) => [h.hook, h]));
      for (const h of r.hooks) {
        const b = before.get(h.hook);
        const o = out.get(h.hook) ?? { runs: 0, failures: 0, rate: 0 };
        o.runs += Math.max(0, h.runs - (b?.runs ?? 0));
        o.failures += Math.max(0, h.failures - (b?.failures ?? 0));
        o.rate = o.runs > 0 ? o.failures / o.runs : 0;
        out.set(h.hook, o);
      }
    }
    return out;
  }

  /** The services' heaps now, for the memory trend. */
  heaps(now: number): { source: string; bytes: number; at: number }[] {
    return this.sources(now).map((r) => ({ source: sourceOf(r), bytes: r.heapUsedBytes, at: r.at }));
  }

  /** The supervisors' applied tasks and working seconds (cumulative), for latency and throughput trends. */
  work(now: number): { tasksApplied: number; workingSeconds: number } {
    let tasksApplied = 0;
    let workingSeconds = 0;
    for (const r of this.sources(now)) {
      tasksApplied += r.tasksApplied;
      workingSeconds += r.workingSeconds;
    }
    return { tasksApplied, workingSeconds };
  }
}

/** The value at quantile q of a histogram given as counts per integer value (undefined: empty). */
export function percentile(counts: readonly number[], q: number): number | undefined {
  const total = counts.reduce((a, n) => a + (n ?? 0), 0);
  if (total === 0) return undefined;
  const rank = Math.ceil(q * total);
  let seen = 0;
  for (let v = 0; v < counts.length; v++) {
    seen += counts[v] ?? 0;
    if (seen >= rank) return v;
  }
  return counts.length - 1;
}
