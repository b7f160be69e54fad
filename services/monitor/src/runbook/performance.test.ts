/**
 * The pure parts of `/performance-monitor` (performance.ts): durations, sensitivity levels, the
 * regression watch, the findings' rules, the stage ranking and the busiest host; and the
 * post-emergency watch itself on a driven clock.
 */

import {
  ComprehensiveRequestSchema,
  formatIssues,
  PostEmergencyRequestSchema,
  parseConfig,
  parseDuration,
  SENSITIVITY,
  type TrendRow,
  type TypedEvent,
} from "@cadre/protocol";
import { ManualClock } from "@cadre/runtime";
import { describe, expect, it } from "vitest";
import {
  busiestHost,
  FINDING_RULES,
  type FindingsInput,
  findings,
  HOST_LOAD_LIMIT,
  LOOK_EVERY_MS,
  MAX_WATCHES,
  type MetricState,
  postEmergencyMonitoring,
  RegressionWatch,
  rankStages,
  regressionLevel,
  STAGE_SHARE_LIMIT,
  watchedMetrics,
} from "./performance.js";
import type { RunbookDeps } from "./resource-manager.js";

const metric = (name: string, value: number | null, threshold: number, state: MetricState["state"] = "ok") => ({
  metric: name,
  value,
  threshold,
  clear: threshold * 0.9,
  action: "alert",
  state,
  since: null,
});

const host = (hostId: string, over: Partial<FindingsInput["hosts"][number]> = {}) => ({
  hostId,
  state: "alive",
  load: 0.2,
  actors: 3,
  busy: 1,
  maxActors: 10,
  cordoned: false,
  ...over,
});

const issuesOf = (r: { success: boolean; error?: { issues: unknown[] } }) =>
  formatIssues((r.error?.issues ?? []) as never).map((i) => `${i.path}: ${i.message}`);

describe("parseDuration", () => {
  it.each([
    ["2h", 7_200_000],
    ["30m", 1_800_000],
    ["90s", 90_000],
    ["500ms", 500],
    ["1.5h", 5_400_000],
    [" 2s ", 2000],
    [5000, 5000],
  ] as const)("reads %j as %d ms", (v, ms) => {
    expect(parseDuration(v)).toBe(ms);
  });

  it.each(["2", "2d", "1h30m", "", "h", "-5s", "2 h", "abc", 0, -1, 1.5, Number.NaN, null, undefined, {}, "0s"])(
    "refuses %j",
    (v) => {
      expect(() => parseDuration(v)).toThrow(RangeError);
    },
  );
});

describe("the post-emergency request", () => {
  it("takes the seed's example, the duration in ms, and defaults to high sensitivity", () => {
    const seed = PostEmergencyRequestSchema.parse({
      monitoring_duration: "2h",
      alert_sensitivity: "high",
      metrics_focus: ["resource_stability", "performance_regression", "early_warning_indicators"],
      auto_optimization: false,
    });
    expect(seed.monitoring_duration).toBe(7_200_000);
    expect(PostEmergencyRequestSchema.parse({ monitoring_duration: 2000 })).toEqual({
      monitoring_duration: 2000,
      alert_sensitivity: "high",
    });
  });

  it("refuses a bad, too short or too long duration, naming the field", () => {
    for (const monitoring_duration of ["soon", "500ms", "25h", 999, -3]) {
      const r = PostEmergencyRequestSchema.safeParse({ monitoring_duration });
      expect(r.success, String(monitoring_duration)).toBe(false);
      expect(issuesOf(r)[0]).toMatch(/^monitoring_duration: /);
    }
    expect(issuesOf(PostEmergencyRequestSchema.safeParse({}))[0]).toMatch(/^monitoring_duration: /);
  });

  it("refuses auto_optimization: true with why, and unknown fields by name", () => {
    const auto = PostEmergencyRequestSchema.safeParse({ monitoring_duration: "1s", auto_optimization: true });
    expect(issuesOf(auto)).toEqual([expect.stringMatching(/^auto_optimization: Cadre does not optimise on its own/)]);
    const extra = PostEmergencyRequestSchema.safeParse({ monitoring_duration: "1s", optimise: "please" });
    expect(issuesOf(extra)[0]).toContain('"optimise"');
    expect(PostEmergencyRequestSchema.safeParse({ monitoring_duration: "1s", alert_sensitivity: "max" }).success).toBe(
      false,
    );
  });

  it("comprehensive-analysis takes the seed's fields, its time_horizon as ms", () => {
    const r = ComprehensiveRequestSchema.parse({
      analysis_scope: "system_wide_degradation",
      time_horizon: "6h",
      correlation_analysis: true,
      bottleneck_identification: true,
      optimization_opportunities: true,
    });
    expect(r.time_horizon).toBe(21_600_000);
    expect(ComprehensiveRequestSchema.parse(undefined)).toEqual({
      bottleneck_identification: true,
      optimization_opportunities: true,
    });
    expect(issuesOf(ComprehensiveRequestSchema.safeParse({ time_horizon: "forever" }))[0]).toMatch(/^time_horizon: /);
  });
});

describe("sensitivity", () => {
  it("high passes at 50% of the threshold, medium at 75%, low at the threshold", () => {
    expect(SENSITIVITY).toEqual({ high: 0.5, medium: 0.75, low: 1 });
    expect(regressionLevel(80, "high")).toBe(40);
    expect(regressionLevel(80, "medium")).toBe(60);
    expect(regressionLevel(80, "low")).toBe(80);
  });

  it("watches the metrics metrics_focus names, else all six; echoes the rest", () => {
    expect(watchedMetrics(["resource_stability", "memory_usage_percent", "event_queue_depth"])).toEqual({
      metrics: ["event_queue_depth", "memory_usage_percent"],
      notes: ["resource_stability"],
    });
    expect(watchedMetrics(["performance_regression"]).metrics).toHaveLength(6);
    expect(watchedMetrics(undefined)).toEqual({ metrics: expect.arrayContaining(["hook_failure_rate"]), notes: [] });
  });
});

describe("RegressionWatch", () => {
  it("counts a value strictly above threshold × share, with its peak, times and samples", () => {
    const w = new RegressionWatch(["active_agents_count", "memory_usage_percent"], "high");
    w.observe([metric("active_agents_count", 5, 10), metric("memory_usage_percent", 30, 80)], 0); // at the level: not over
    w.observe([metric("active_agents_count", 6, 10), metric("memory_usage_percent", null, 80)], 100);
    w.observe([metric("active_agents_count", 8, 10), metric("memory_usage_percent", 39, 80)], 200);
    w.observe([metric("active_agents_count", 4, 10), metric("memory_usage_percent", 41, 80)], 300);
    expect(w.samples).toBe(4);
    expect(w.regressions()).toEqual([
      {
        metric: "active_agents_count",
        threshold: 10,
        level: 5,
        peak: 8,
        firstSeenAt: 100,
        lastSeenAt: 200,
        samplesOver: 2,
        atStart: false,
        crossed: false,
      },
      {
        metric: "memory_usage_percent",
        threshold: 80,
        level: 40,
        peak: 41,
        firstSeenAt: 300,
        lastSeenAt: 300,
        samplesOver: 1,
        atStart: false,
        crossed: false,
      },
    ]);
  });

  it("marks a metric over at the first sample, and one the monitor saw cross; ignores unwatched ones", () => {
    const w = new RegressionWatch(["event_queue_depth"], "low");
    w.observe([metric("event_queue_depth", 9000, 8000, "pending"), metric("hook_failure_rate", 1, 0.1)], 0);
    w.observe([metric("event_queue_depth", 8500, 8000, "crossed")], 100);
    const [r, ...rest] = w.regressions();
    expect(rest).toEqual([]);
    expect(r).toMatchObject({ metric: "event_queue_depth", level: 8000, peak: 9000, atStart: true, crossed: true });
    // Medium: 75%; the same value is no regression at low.
    const m = new RegressionWatch(["event_queue_depth"], "medium");
    m.observe([metric("event_queue_depth", 7000, 8000)], 0);
    const l = new RegressionWatch(["event_queue_depth"], "low");
    l.observe([metric("event_queue_depth", 7000, 8000)], 0);
    expect(m.regressions()).toHaveLength(1);
    expect(l.regressions()).toHaveLength(0);
  });
});

describe("findings", () => {
  const base: FindingsInput = {
    metrics: [],
    kinds: [],
    hosts: [],
    services: [],
    trends: [],
    memoryThreshold: 80,
    suggest: true,
  };
  const stages = (kind: string, figures: [string, number, number][]) =>
    rankStages({
      kinds: [
        {
          kind,
          stages: figures.map(([stage, count, sumSeconds]) => ({
            stage: stage as "queued",
            count,
            sumSeconds,
            p50Seconds: null,
            p95Seconds: 1,
          })),
        },
      ],
    });

  it("nothing to find in a quiet cluster", () => {
    expect(
      findings({
        ...base,
        metrics: [metric("memory_usage_percent", 10, 80), metric("event_queue_depth", 9000, 8000, "cooling")],
        hosts: [host("h1", { load: HOST_LOAD_LIMIT })],
        services: [{ service: "agent-host", id: "h1", heapUsedBytes: 80, heapLimitBytes: 100 }],
        kinds: stages("worker", [
          ["queued", 2, 1],
          ["working", 2, 1],
        ]),
      }),
    ).toEqual([]);
  });

  it("a metric crossed is critical, pending a warning; each carries the monitor's action and a suggestion", () => {
    const f = findings({
      ...base,
      metrics: [
        metric("memory_usage_percent", 90, 80, "pending"),
        metric("state_conflicts_per_minute", 7, 5, "crossed"),
      ],
    });
    expect(f.map((x) => [x.rule, x.severity, x.subject, x.value, x.limit])).toEqual([
      ["metric_crossed", "critical", "state_conflicts_per_minute", 7, 5],
      ["metric_pending", "warning", "memory_usage_percent", 90, 80],
    ]);
    expect(f[0]?.message).toContain("the monitor's action: alert");
    expect(f[1]?.suggestion).toContain("emergency-cleanup");
  });

  it(`a stage over ${STAGE_SHARE_LIMIT * 100}% of a kind's time: warning, or info when it is the work itself`, () => {
    const f = findings({
      ...base,
      kinds: [
        ...stages("worker", [
          ["queued", 4, 6],
          ["working", 4, 3.9],
          ["applying", 4, 0.1],
        ]),
        ...stages("lead", [
          ["queued", 1, 0.1],
          ["working", 1, 9.9],
        ]),
        // Exactly half is not over half.
        ...stages("even", [
          ["queued", 1, 1],
          ["working", 1, 1],
        ]),
      ],
    });
    expect(f.map((x) => [x.rule, x.severity, x.subject, x.value])).toEqual([
      ["stage_bottleneck", "warning", "worker/queued", 0.6],
      ["stage_bottleneck", "info", "lead/working", 0.99],
    ]);
    expect(f[0]?.suggestion).toContain("more replicas of worker");
  });

  it("a loaded host, an unreachable or suspect one, a heap over the memory threshold, a trend", () => {
    const trend: TrendRow = {
      type: "MEMORY_TREND",
      series: "heap:agent-host/h1",
      direction: "increasing",
      slopePerSecond: 1000,
      relativeChange: 0.25,
      confidence: 0.99,
      windowMs: 150_000,
      at: 5,
      count: 2,
    };
    const f = findings({
      ...base,
      hosts: [host("h1", { load: 0.95 }), host("h2", { state: "unreachable" }), host("h3", { state: "suspect" })],
      services: [
        { service: "agent-host", id: "h1", heapUsedBytes: 81, heapLimitBytes: 100 },
        { service: "supervisor", id: "s1", heapUsedBytes: 10, heapLimitBytes: 100 },
      ],
      trends: [trend],
      suggest: false,
    });
    expect(f.map((x) => [x.rule, x.severity, x.subject])).toEqual([
      ["host_unhealthy", "critical", "h2"],
      ["heap_high", "warning", "agent-host/h1"],
      ["host_loaded", "warning", "h1"],
      ["host_unhealthy", "warning", "h3"],
      ["trend", "warning", "heap:agent-host/h1"],
    ]);
    expect(f.every((x) => x.suggestion === undefined)).toBe(true);
    expect(f[4]?.message).toContain("rose 25%");
  });

  it("every rule is documented", () => {
    expect(Object.keys(FINDING_RULES).sort()).toEqual(
      [
        "heap_high",
        "host_loaded",
        "host_unhealthy",
        "metric_crossed",
        "metric_pending",
        "stage_bottleneck",
        "trend",
      ].sort(),
    );
  });
});

describe("rankStages and busiestHost", () => {
  it("per kind the largest share first; kinds ranked by the seconds their bottleneck holds", () => {
    const ranked = rankStages({
      kinds: [
        {
          kind: "a",
          stages: [
            { stage: "queued", count: 2, sumSeconds: 1, p50Seconds: 0.5, p95Seconds: 1 },
            { stage: "working", count: 2, sumSeconds: 3, p50Seconds: 1, p95Seconds: 2.5 },
          ],
        },
        { kind: "b", stages: [{ stage: "queued", count: 1, sumSeconds: 5, p50Seconds: 5, p95Seconds: 5 }] },
        { kind: "c", stages: [{ stage: "working", count: 0, sumSeconds: 0, p50Seconds: null, p95Seconds: null }] },
      ],
    });
    expect(ranked.map((k) => [k.kind, k.bottleneck, k.share, k.bottleneckSeconds, k.totalSeconds])).toEqual([
      ["b", "queued", 1, 5, 5],
      ["a", "working", 0.75, 3, 4],
      ["c", null, 0, 0, 0],
    ]);
    expect(ranked[1]?.stages).toEqual([
      { stage: "working", count: 2, sumSeconds: 3, share: 0.75, meanSeconds: 1.5, p50Seconds: 1, p95Seconds: 2.5 },
      { stage: "queued", count: 2, sumSeconds: 1, share: 0.25, meanSeconds: 0.5, p50Seconds: 0.5, p95Seconds: 1 },
    ]);
  });

  it("the busiest host: most busy actors among the live, then the higher load, then the id", () => {
    expect(busiestHost([])).toBeNull();
    expect(busiestHost([host("h1", { state: "unreachable", busy: 9 })])).toBeNull();
    expect(
      busiestHost([host("h1", { busy: 2, load: 0.1 }), host("h2", { busy: 2, load: 0.5 }), host("h3", { busy: 1 })])
        ?.hostId,
    ).toBe("h2");
    expect(busiestHost([host("h2", { busy: 2 }), host("h1", { busy: 2 })])?.hostId).toBe("h1");
    expect(busiestHost([host("h1", { busy: 3, load: 0.1 }), host("h2", { busy: 1, load: 0.9 })])?.hostId).toBe("h1");
  });
});

describe("postEmergencyMonitoring, on a driven clock", () => {
  function deps(values: () => MetricState[]) {
    const clock = new ManualClock(1_000);
    const emitted: TypedEvent[] = [];
    const d: RunbookDeps = {
      nc: undefined as never,
      sender: "test",
      config: parseConfig({}),
      clock,
      emit: (e) => emitted.push(e),
      status: () => ({ metrics: values(), sources: [] }),
      reports: () => [],
      team: async () => undefined,
    };
    return { d, clock, emitted };
  }
  const flush = () => new Promise((r) => setImmediate(r));
  async function drive<T>(clock: ManualClock, p: Promise<T>): Promise<T> {
    let done = false;
    void p.then(
      () => {
        done = true;
      },
      () => {
        done = true;
      },
    );
    for (let i = 0; i < 10_000 && !done; i++) {
      await flush();
      // Small steps: a sample runs when its timer is due, not at the end of a coarse step.
      if (!done) clock.advance(10);
    }
    return p;
  }

  it("samples every 100 ms for the duration, reports the regressions and announces start and end", async () => {
    let agents = 1;
    const { d, clock, emitted } = deps(() => [
      metric("active_agents_count", agents, 10),
      metric("hook_failure_rate", 0, 0.1),
    ]);
    const p = postEmergencyMonitoring(d, {
      monitoring_duration: 1000,
      alert_sensitivity: "high",
      metrics_focus: ["resource_stability"],
    });
    // The third sample on sees 6 agents: over 50% of 10.
    clock.advance(0);
    await flush();
    clock.advance(LOOK_EVERY_MS);
    await flush();
    agents = 6;
    const r = await drive(clock, p);
    expect(r.ms).toBeGreaterThanOrEqual(1000);
    expect(r.samples).toBe(11);
    expect(r.health).toBe("regressed");
    expect(r.focus).toEqual(["resource_stability"]);
    expect(r.regressions).toEqual([
      {
        metric: "active_agents_count",
        threshold: 10,
        level: 5,
        peak: 6,
        firstSeenAt: 1_200,
        lastSeenAt: 2_000,
        samplesOver: 9,
        atStart: false,
        crossed: false,
      },
    ]);
    expect(emitted.map((e) => [e.type, e.category, e.scope])).toEqual([
      ["POST_EMERGENCY_MONITORING_STARTED", "performance", "post_emergency_monitoring"],
      ["POST_EMERGENCY_MONITORING_COMPLETED", "performance", "post_emergency_monitoring"],
    ]);
    expect(emitted[0]?.data).toMatchObject({
      monitoring_duration_ms: 1000,
      alert_sensitivity: "high",
      sensitivity_share: 0.5,
    });
    expect(emitted[1]?.data).toEqual({
      monitoring_time_ms: 1000,
      samples: 11,
      regressions: 1,
      regressed_metrics: ["active_agents_count"],
      system_health: "regressed",
    });
  });

  it(`runs at most ${MAX_WATCHES} watches at once; the next is refused until one ends`, async () => {
    const { d, clock } = deps(() => [metric("active_agents_count", 1, 10)]);
    const req = { monitoring_duration: 1000, alert_sensitivity: "low" as const };
    const running = Array.from({ length: MAX_WATCHES }, () => postEmergencyMonitoring(d, req));
    await expect(postEmergencyMonitoring(d, req)).rejects.toMatchObject({ code: "RESOURCE_EXHAUSTED" });
    const done = await drive(clock, Promise.all(running));
    expect(done.map((r) => r.health)).toEqual(new Array(MAX_WATCHES).fill("stable"));
    const again = await drive(clock, postEmergencyMonitoring(d, req));
    expect(again.samples).toBe(11);
    // A duration that is not a whole number of periods ends at the duration, not a period later.
    const odd = await drive(clock, postEmergencyMonitoring(d, { ...req, monitoring_duration: 1050 }));
    expect([odd.ms, odd.samples]).toEqual([1050, 12]);
  });
});
