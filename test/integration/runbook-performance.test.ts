/**
 * Seed 003's `/performance-monitor` commands on a real stack, as an operator types them
 * (`cadre performance-monitor <operation> '<json>' --json`): the bottlenecks of a workflow that
 * ran, the comprehensive analysis with its findings, and a post-emergency watch with its events.
 *
 * Two thresholds are set so that what the commands must find is known: memory_usage_percent at
 * 0.1% (every service's heap is above it: the metric crosses, each heap is a finding; its action,
 * a cleanup, frees nothing this test needs) and active_agents_count at 5 (the team's three
 * actors: above 50% of it, a regression at high sensitivity; below 100%, none at low).
 */

import { METRIC_NAMES, type OpReply } from "@cadre/protocol";
import { call } from "@cadre/runtime";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { fanTeam, fastConfig, recordEvents, startCluster, type TestCluster, until } from "../helpers/cluster.js";

type Bottlenecks = OpReply<"mon.performance-monitor.bottleneck-analysis">;
type Analysis = OpReply<"mon.performance-monitor.comprehensive-analysis">;
type Watch = OpReply<"mon.performance-monitor.post-emergency-monitoring">;

/** The fan's workers: TASKS tasks of SLEEP_MS each, on two replicas (a lead and two workers: three actors). */
const TASKS = 8;
const SLEEP_MS = 200;
const ACTORS = 3;

describe("/performance-monitor on a real stack", () => {
  let c: TestCluster;
  let workflowId: string;

  beforeAll(async () => {
    c = await startCluster({
      hosts: 2,
      monitor: true,
      config: {
        ...fastConfig,
        monitor: {
          intervalMs: 250,
          windowMs: 5000,
          metrics: { memory_usage_percent: { threshold: 0.1 }, active_agents_count: { threshold: 5 } },
        },
      },
    });
    workflowId = await c.submit(fanTeam("perf-fan", TASKS, SLEEP_MS));
    const w = await c.wait(workflowId, 30_000);
    expect(w.status, c.tail()).toBe("completed");
    // The monitor has every service's report, the team's actors counted, and memory crossed.
    await until(
      "the monitor's metrics known, the team's actors counted, memory crossed",
      async () => {
        const { metrics } = await call(c.nc, "mon.status", {}, { sender: "test", timeoutMs: 5000 });
        const by = new Map(metrics.map((m) => [m.metric, m]));
        return (
          metrics.every((m) => m.value !== null) &&
          by.get("active_agents_count")?.value === ACTORS &&
          by.get("memory_usage_percent")?.state === "crossed"
        );
      },
      20_000,
    );
  }, 90_000);
  afterAll(async () => {
    await c?.stop();
  });

  const json = <T>(...args: string[]): T => JSON.parse(c.cli(...args, "--json")) as T;
  /** The exit status and standard error of a command that must fail. */
  const failing = (...args: string[]): { status: number; stderr: string } => {
    try {
      c.cli(...args);
    } catch (err) {
      const e = err as { status: number; stderr: string };
      return { status: e.status, stderr: String(e.stderr) };
    }
    throw new Error(`cadre ${args.join(" ")} succeeded`);
  };

  it("bottleneck-analysis names the workers' stage holding the largest share, ranked, and the busiest host", () => {
    const b = json<Bottlenecks>(
      "performance-monitor",
      "bottleneck-analysis",
      JSON.stringify({ scope: "system_wide", focus: ["cpu_bottlenecks", "memory_bottlenecks"] }),
    );
    expect(b.asked).toEqual({
      scope: "system_wide",
      focus: ["cpu_bottlenecks", "memory_bottlenecks"],
      analysis_scope: null,
    });
    const worker = b.kinds.find((k) => k.kind === "worker");
    expect(worker, JSON.stringify(b.kinds)).toBeDefined();
    if (!worker) return;
    expect(["queued", "working", "waiting", "applying"]).toContain(worker.bottleneck);
    expect(worker.tasks).toBe(TASKS);
    // The bottleneck is the stage with the largest share, first; the shares cover the kind's time.
    expect(worker.stages[0]?.stage).toBe(worker.bottleneck);
    expect(worker.share).toBe(Math.max(...worker.stages.map((s) => s.share)));
    expect(worker.stages.reduce((a, s) => a + s.share, 0)).toBeCloseTo(1, 2);
    const working = worker.stages.find((s) => s.stage === "working");
    expect(working?.count).toBe(TASKS);
    expect(working?.meanSeconds).toBeGreaterThanOrEqual(SLEEP_MS / 1000);
    expect(working?.p95Seconds).toBeGreaterThanOrEqual(SLEEP_MS / 1000);
    // Ranked by the seconds each kind's bottleneck holds.
    const held = b.kinds.map((k) => k.bottleneckSeconds);
    expect(held).toEqual([...held].sort((x, y) => y - x));
    expect(b.kinds.map((k) => k.kind)).toContain("lead");
    expect(b.hosts).toHaveLength(2);
    expect(b.hosts.map((h) => h.hostId)).toContain(b.busiestHost?.hostId);
  });

  it("comprehensive-analysis gives the six metrics, heaps, bottlenecks, hosts and the findings their rules make", () => {
    const a = json<Analysis>(
      "performance-monitor",
      "comprehensive-analysis",
      JSON.stringify({
        analysis_scope: "system_wide_degradation",
        time_horizon: "6h",
        correlation_analysis: true,
        bottleneck_identification: true,
        optimization_opportunities: true,
      }),
    );
    expect(a.metrics.map((m) => m.metric).sort()).toEqual([...METRIC_NAMES].sort());
    for (const m of a.metrics) expect(m.value, m.metric).not.toBeNull();
    const memory = a.metrics.find((m) => m.metric === "memory_usage_percent");
    expect(memory).toMatchObject({ threshold: 0.1, state: "crossed" });
    expect(a.metrics.find((m) => m.metric === "active_agents_count")).toMatchObject({ value: ACTORS, threshold: 5 });
    expect(a.trends.horizonMs).toBe(6 * 3_600_000);
    expect(a.trends.error).toBeUndefined();
    // Every service reporting: the supervisor, both hosts, the monitor; heap and RSS each.
    expect(a.services.map((s) => s.service).sort()).toEqual(["agent-host", "agent-host", "monitor", "supervisor"]);
    for (const s of a.services) {
      expect(s.rssBytes).toBeGreaterThan(0);
      expect(s.heapPercent).toBeCloseTo((100 * s.heapUsedBytes) / s.heapLimitBytes, 2);
    }
    expect(a.bottlenecks?.map((k) => k.kind)).toContain("worker");
    expect(a.hosts).toHaveLength(2);
    // The rules: memory crossed (critical, first), and every service's heap above 0.1%.
    const crossed = a.findings.filter((f) => f.rule === "metric_crossed");
    expect(crossed).toEqual([
      expect.objectContaining({ severity: "critical", subject: "memory_usage_percent", limit: 0.1 }),
    ]);
    expect(crossed[0]?.suggestion).toContain("emergency-cleanup");
    const heaps = a.findings.filter((f) => f.rule === "heap_high").map((f) => f.subject);
    expect(heaps.sort()).toEqual(a.services.map((s) => `${s.service}/${s.id}`).sort());
    // active_agents_count is below its threshold: no finding of it.
    expect(a.findings.some((f) => f.subject === "active_agents_count")).toBe(false);
    const order = { critical: 0, warning: 1, info: 2 } as const;
    const severities = a.findings.map((f) => order[f.severity]);
    expect(severities).toEqual([...severities].sort((x, y) => x - y));
    expect(a.ignored).toEqual([expect.stringMatching(/^correlation_analysis/)]);
  });

  it("emergency-assessment is comprehensive-analysis with the seed's scope and focus", () => {
    const a = json<Analysis>(
      "performance-monitor",
      "emergency-assessment",
      JSON.stringify({ scope: "system_health_critical", focus: ["immediate_optimizations", "emergency_scaling"] }),
    );
    expect(a.asked).toEqual({
      analysis_scope: null,
      scope: "system_health_critical",
      focus: ["immediate_optimizations", "emergency_scaling"],
    });
    expect(a.metrics).toHaveLength(6);
    expect(a.trends.horizonMs).toBe(3_600_000);
    expect(a.findings.map((f) => f.rule)).toContain("metric_crossed");
  });

  it("the seed's subagents examples run the performance commands in the fan-out", () => {
    const report = JSON.parse(
      c.cli(
        "subagents",
        JSON.stringify({ phase: "emergency_analysis", priority: "critical" }),
        JSON.stringify([
          {
            command: "/performance-monitor",
            operation: "emergency-assessment",
            scope: "system_health_critical",
            focus: ["immediate_optimizations", "emergency_scaling"],
          },
          {
            command: "/performance-monitor",
            operation: "bottleneck-analysis",
            scope: "system_wide",
            focus: ["cpu_bottlenecks", "memory_bottlenecks", "io_bottlenecks", "network_bottlenecks"],
          },
        ]),
        "--emergency",
      ),
    ) as { commands: { operation: string; status: string; result?: Record<string, unknown> }[] };
    expect(report.commands.map((x) => [x.operation, x.status])).toEqual([
      ["emergency-assessment", "ok"],
      ["bottleneck-analysis", "ok"],
    ]);
    expect(report.commands[0]?.result).toHaveProperty("findings");
    expect(report.commands[1]?.result).toHaveProperty("busiestHost");
  });

  it("post-emergency-monitoring watches for its duration at high sensitivity, reports the regression and announces start and end", async () => {
    const rec = recordEvents(c.nc);
    // The subscription reaches the server before the command runs (cli() blocks this process).
    await c.nc.flush();
    const began = Date.now();
    const w = json<Watch>(
      "performance-monitor",
      "post-emergency-monitoring",
      JSON.stringify({
        monitoring_duration: "2s",
        alert_sensitivity: "high",
        metrics_focus: ["active_agents_count", "resource_stability"],
        auto_optimization: false,
      }),
      "--timeout",
      "30",
    );
    const took = Date.now() - began;
    expect(took).toBeGreaterThanOrEqual(2000);
    expect(w.durationMs).toBe(2000);
    expect(w.ms).toBeGreaterThanOrEqual(2000);
    expect(w.endedAt - w.startedAt).toBe(w.ms);
    expect(w.samples).toBeGreaterThan(0);
    expect(w.sensitivity).toEqual({ level: "high", share: 0.5 });
    expect(w.metrics).toEqual(["active_agents_count"]);
    expect(w.focus).toEqual(["resource_stability"]);
    // Three actors, over 50% of 5: regressed from the first sample, never crossed.
    expect(w.regressions).toEqual([
      expect.objectContaining({
        metric: "active_agents_count",
        threshold: 5,
        level: 2.5,
        peak: ACTORS,
        atStart: true,
        crossed: false,
        samplesOver: w.samples,
      }),
    ]);
    expect(w.health).toBe("regressed");

    const started = await until("POST_EMERGENCY_MONITORING_STARTED", () =>
      rec.events.find((e) => e.event.type === "POST_EMERGENCY_MONITORING_STARTED"),
    );
    expect(started.event).toMatchObject({ category: "performance", scope: "post_emergency_monitoring" });
    expect(started.event.data).toEqual({
      monitoring_duration_ms: 2000,
      alert_sensitivity: "high",
      sensitivity_share: 0.5,
      metrics_watched: ["active_agents_count"],
      metrics_focus: ["resource_stability"],
    });
    const completed = await until("POST_EMERGENCY_MONITORING_COMPLETED", () =>
      rec.events.find((e) => e.event.type === "POST_EMERGENCY_MONITORING_COMPLETED"),
    );
    expect(completed.event.data).toEqual({
      monitoring_time_ms: w.ms,
      samples: w.samples,
      regressions: 1,
      regressed_metrics: ["active_agents_count"],
      system_health: "regressed",
    });
    rec.stop();
  });

  it("at low sensitivity the same cluster is stable: three actors stay below the threshold of 5", () => {
    const w = json<Watch>(
      "performance-monitor",
      "post-emergency-monitoring",
      JSON.stringify({ monitoring_duration: 1000, alert_sensitivity: "low", metrics_focus: ["active_agents_count"] }),
      "--timeout",
      "30",
    );
    expect(w.ms).toBeGreaterThanOrEqual(1000);
    expect(w.samples).toBeGreaterThan(0);
    expect(w.regressions).toEqual([]);
    expect(w.health).toBe("stable");
  });

  it("refuses an unknown field, a bad duration and auto_optimization by name, exit 2", () => {
    const unknown = failing(
      "performance-monitor",
      "post-emergency-monitoring",
      JSON.stringify({ monitoring_duration: "2s", alert_threshold: "high" }),
    );
    expect(unknown.status).toBe(2);
    expect(unknown.stderr).toContain("alert_threshold");
    const duration = failing(
      "performance-monitor",
      "post-emergency-monitoring",
      JSON.stringify({ monitoring_duration: "2d" }),
    );
    expect(duration.status).toBe(2);
    expect(duration.stderr).toContain("monitoring_duration");
    const auto = failing(
      "performance-monitor",
      "post-emergency-monitoring",
      JSON.stringify({ monitoring_duration: "2s", auto_optimization: true }),
    );
    expect(auto.status).toBe(2);
    expect(auto.stderr).toContain("auto_optimization");
    expect(auto.stderr).toContain("does not optimise");
    const analysis = failing("performance-monitor", "bottleneck-analysis", JSON.stringify({ depth: "deep" }));
    expect(analysis.status).toBe(2);
    expect(analysis.stderr).toContain("depth");
  });
});
