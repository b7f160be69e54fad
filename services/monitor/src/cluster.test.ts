import type { ServiceReport } from "@cadre/protocol";
import { describe, expect, it } from "vitest";
import { ClusterView, percentile } from "./cluster.js";

const MiB = 1024 * 1024;

function report(fields: Partial<ServiceReport> & Pick<ServiceReport, "service" | "id" | "at">): ServiceReport {
  return {
    incarnation: "i1",
    heapUsedBytes: 10 * MiB,
    heapLimitBytes: 100 * MiB,
    rssBytes: 50 * MiB,
    eventQueueDepth: 0,
    stateConflicts: 0,
    actors: 0,
    busy: 0,
    hooks: [],
    delegationDepths: [],
    tasksApplied: 0,
    workingSeconds: 0,
    ...fields,
  };
}

describe("ClusterView", () => {
  it("is undefined with no reports, 0 where nothing happened", () => {
    const v = new ClusterView({ windowMs: 60_000, staleMs: 15_000 });
    expect(Object.values(v.metrics(0)).every((x) => x === undefined)).toBe(true);
    v.add(report({ service: "agent-host", id: "h1", at: 1000 }));
    expect(v.metrics(1000)).toEqual({
      state_conflicts_per_minute: 0,
      delegation_depth_p99: 0,
      active_agents_count: 0,
      event_queue_depth: 0,
      memory_usage_percent: 10,
      hook_failure_rate: 0,
    });
  });

  it("turns cumulative counters into rates over the window, summed over services", () => {
    const v = new ClusterView({ windowMs: 60_000, staleMs: 15_000 });
    // host 1: 10 conflicts in 30 s (20/min); the supervisor: 5 in 30 s (10/min).
    v.add(report({ service: "agent-host", id: "h1", at: 0, stateConflicts: 100 }));
    v.add(report({ service: "agent-host", id: "h1", at: 30_000, stateConflicts: 110, actors: 7, eventQueueDepth: 3 }));
    v.add(report({ service: "supervisor", id: "s1", at: 0, stateConflicts: 0 }));
    v.add(
      report({
        service: "supervisor",
        id: "s1",
        at: 30_000,
        stateConflicts: 5,
        eventQueueDepth: 4,
        heapUsedBytes: 90 * MiB,
      }),
    );
    const m = v.metrics(30_000);
    expect(m.state_conflicts_per_minute).toBeCloseTo(30);
    expect(m.active_agents_count).toBe(7);
    expect(m.event_queue_depth).toBe(7);
    expect(m.memory_usage_percent).toBeCloseTo(90);
  });

  it("forgets what is older than the window, keeping one report to span it", () => {
    const v = new ClusterView({ windowMs: 10_000, staleMs: 15_000 });
    v.add(report({ service: "agent-host", id: "h1", at: 0, stateConflicts: 0 }));
    v.add(report({ service: "agent-host", id: "h1", at: 5_000, stateConflicts: 100 }));
    v.add(report({ service: "agent-host", id: "h1", at: 20_000, stateConflicts: 100 }));
    v.add(report({ service: "agent-host", id: "h1", at: 25_000, stateConflicts: 100 }));
    // The burst between 0 and 5 s has left the 10 s window: the difference now spans 5 s to 25 s.
    expect(v.metrics(25_000).state_conflicts_per_minute).toBe(0);
  });

  it("computes the depth percentile and hook failure rates from differences", () => {
    const v = new ClusterView({ windowMs: 60_000, staleMs: 15_000 });
    v.add(report({ service: "supervisor", id: "s1", at: 0, delegationDepths: [0, 50] }));
    // 98 subtasks at depth 1, 1 at depth 2, 1 at depth 4 since.
    v.add(report({ service: "supervisor", id: "s1", at: 10_000, delegationDepths: [0, 148, 1, 0, 1] }));
    v.add(
      report({
        service: "agent-host",
        id: "h1",
        at: 0,
        hooks: [{ hook: "audit", runs: 10, failures: 0, bypassed: false }],
      }),
    );
    v.add(
      report({
        service: "agent-host",
        id: "h1",
        at: 10_000,
        hooks: [
          { hook: "audit", runs: 30, failures: 5, bypassed: false },
          { hook: "lint", runs: 10, failures: 0, bypassed: false },
        ],
      }),
    );
    const m = v.metrics(10_000);
    expect(m.delegation_depth_p99).toBe(2);
    expect(m.hook_failure_rate).toBeCloseTo(5 / 30);
    expect(v.hookRates(10_000).get("audit")?.rate).toBeCloseTo(0.25);
    expect(v.hookRates(10_000).get("lint")?.rate).toBe(0);
  });

  it("drops a silent service, and starts a restarted one's series again", () => {
    const v = new ClusterView({ windowMs: 60_000, staleMs: 15_000 });
    v.add(report({ service: "agent-host", id: "h1", at: 0, actors: 3, stateConflicts: 500 }));
    v.add(report({ service: "agent-host", id: "h2", at: 0, actors: 4 }));
    v.add(report({ service: "agent-host", id: "h1", at: 10_000, actors: 3, stateConflicts: 600 }));
    expect(v.metrics(16_000).active_agents_count).toBe(3);
    expect(v.sources(16_000).map((r) => r.id)).toEqual(["h1"]);
    // Restarted: counters from 0 again; not a negative rate, a new series.
    v.add(report({ service: "agent-host", id: "h1", at: 20_000, incarnation: "i2", stateConflicts: 2 }));
    expect(v.metrics(20_000).state_conflicts_per_minute).toBe(0);
  });
});

describe("percentile", () => {
  it("finds the value at a quantile of counts per value", () => {
    expect(percentile([], 0.99)).toBeUndefined();
    expect(percentile([0, 0, 0], 0.5)).toBeUndefined();
    expect(percentile([1, 1, 1, 1], 0.5)).toBe(1);
    expect(percentile([0, 99, 0, 1], 0.99)).toBe(1);
    expect(percentile([0, 98, 0, 2], 0.99)).toBe(3);
  });
});
