/**
 * Seed 003's performance degradation on a real stack with the monitor: a team whose worker slows
 * over time (the script behaviour's `sleepGrowthMs`: each attempt of its one actor sleeps GROWTH_MS
 * longer than the one before) runs its workflow again and again, one at a time, so each task is
 * the worker's work and nothing queues behind it. The monitor's task_latency series (the mean
 * working time of the tasks applied in each interval, watch.ts) rises; its trend detector
 * announces PERFORMANCE_DEGRADATION_DETECTED, and `/performance-monitor bottleneck-analysis`
 * names the worker's working stage as its bottleneck.
 *
 * The monitor is tuned so the detection fits in a test: it samples every 200 ms (the services
 * report at that pace too) and judges windows of 8 samples (the schema's least), at the default
 * 95% Mann-Kendall confidence and 10% change over the window.
 */

import { isParseFailure, type OpReply, parseEvent, type TaskRecord, type TeamInput } from "@cadre/protocol";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { fastConfig, recordEvents, startCluster, type TestCluster, until } from "../helpers/cluster.js";

type Bottlenecks = OpReply<"mon.performance-monitor.bottleneck-analysis">;
type Analysis = OpReply<"mon.performance-monitor.comprehensive-analysis">;

const RUNS = 16;
const BASE_MS = 100;
const GROWTH_MS = 50;
const WINDOW = 8;

const team: TeamInput = {
  name: "slowing",
  root: "lead",
  kinds: {
    lead: {
      role: "director",
      replicas: 1,
      behaviour: { type: "script", delegate: [{ kind: "worker" }], output: { done: "{{children}}" } },
    },
    worker: {
      role: "agent",
      replicas: 1,
      behaviour: { type: "script", sleepMs: BASE_MS, sleepGrowthMs: GROWTH_MS, output: { ok: true } },
    },
  },
};

/** The data of a PERFORMANCE_DEGRADATION_DETECTED of task_latency, or undefined for any other event. */
function latencyDegradation(raw: Parameters<typeof parseEvent>[0]) {
  const e = parseEvent(raw);
  if (isParseFailure(e) || e.type !== "PERFORMANCE_DEGRADATION_DETECTED") return undefined;
  return e.data.series === "task_latency" ? e.data : undefined;
}

/** The median of the differences between consecutive values. */
const medianStep = (xs: number[]): number => {
  const steps = xs.slice(1).map((x, i) => x - (xs[i] as number));
  const sorted = steps.sort((a, b) => a - b);
  return sorted[sorted.length >> 1] as number;
};

describe("a worker that slows over time: degradation detected, its working stage the bottleneck", () => {
  let c: TestCluster;
  let rec: ReturnType<typeof recordEvents> | undefined;
  const workers: TaskRecord[] = [];

  beforeAll(async () => {
    c = await startCluster({
      hosts: 1,
      monitor: true,
      config: {
        ...fastConfig,
        monitor: { intervalMs: 200, trend: { windowSize: WINDOW, minConfidence: 0.95, minRelativeSlope: 0.1 } },
      },
    });
    rec = recordEvents(c.nc);
    // One workflow at a time: the worker's one actor takes each task as it comes.
    for (let i = 0; i < RUNS; i++) {
      const id = await c.submit(team, { run: i });
      const w = await c.wait(id, 30_000);
      expect(w.status, c.tail()).toBe("completed");
      const worker = (await c.taskRecords(id)).find((r) => r.task.kind === "worker");
      if (!worker) throw new Error(`no worker task in ${id}`);
      workers.push(worker);
    }
  }, 120_000);
  afterAll(async () => {
    rec?.stop();
    await c?.stop();
  });

  const json = <T>(...args: string[]): T => JSON.parse(c.cli(...args, "--json")) as T;
  /** Each worker task's time, start of its attempt to its result applied (ms), in the order run. */
  const times = () => workers.map((r) => (r.finishedAt ?? 0) - (r.applied?.startedAt ?? 0));

  it("runs each task of the one worker actor GROWTH_MS longer than the one before", () => {
    expect(new Set(workers.map((r) => r.applied?.actorId)).size).toBe(1);
    const t = times();
    // The sleep is a floor (the rest is the result's way to the supervisor); the step is the growth.
    for (const [k, ms] of t.entries())
      expect(ms, `task ${k}: ${t.join(", ")}`).toBeGreaterThanOrEqual(BASE_MS + k * GROWTH_MS);
    expect(Math.abs(medianStep(t) - GROWTH_MS), t.join(", ")).toBeLessThan(10);
  });

  it("announces PERFORMANCE_DEGRADATION_DETECTED of task_latency, with the rise over its window", async () => {
    const events = rec?.events ?? [];
    const found = await until(
      "PERFORMANCE_DEGRADATION_DETECTED of task_latency",
      () => events.find((e) => latencyDegradation(e.event) !== undefined),
      20_000,
    ).catch((err: Error) => {
      throw new Error(`${err.message}\n${c.tail()}`);
    });
    const d = latencyDegradation(found.event);
    if (!d) throw new Error("not a degradation of task_latency");
    expect(d).toMatchObject({ series: "task_latency", direction: "increasing", samples: WINDOW });
    expect(d.confidence).toBeGreaterThanOrEqual(0.95);
    expect(d.relativeChange).toBeGreaterThanOrEqual(0.1);
    expect(d.slopePerSecond).toBeGreaterThan(0);
    // The rise over the window against the injected growth: each worker task whose result was
    // applied in the window added GROWTH_MS to the latency (its lead's time carries it too).
    const riseMs = d.slopePerSecond * d.windowMs;
    const inWindow = workers.filter(
      (r) => (r.finishedAt ?? 0) >= found.at - d.windowMs && (r.finishedAt ?? 0) <= found.at,
    );
    expect(inWindow.length).toBeGreaterThanOrEqual(2);
    expect(riseMs).toBeGreaterThan(0.5 * GROWTH_MS * (inWindow.length - 1));
    expect(riseMs).toBeLessThan(1.5 * GROWTH_MS * (inWindow.length + 1));
    process.stdout.write(
      `degradation: task_latency +${Math.round(riseMs)} ms over ${d.windowMs} ms (${inWindow.length} worker tasks in it, ` +
        `${GROWTH_MS} ms each), relative ${d.relativeChange.toFixed(3)}, confidence ${d.confidence.toFixed(4)}; ` +
        `worker times ${times().join(", ")}\n`,
    );
  });

  it("bottleneck-analysis names the worker's working stage, with the figures of the slowdown", () => {
    const b = json<Bottlenecks>(
      "performance-monitor",
      "bottleneck-analysis",
      JSON.stringify({ scope: "system_wide", focus: ["cpu_bottlenecks"] }),
    );
    const worker = b.kinds.find((k) => k.kind === "worker");
    expect(worker, JSON.stringify(b.kinds)).toBeDefined();
    if (!worker) return;
    expect(worker).toMatchObject({ bottleneck: "working", tasks: RUNS });
    expect(worker.share).toBeGreaterThan(0.5);
    const working = worker.stages.find((s) => s.stage === "working");
    expect(working?.count).toBe(RUNS);
    // The mean of BASE_MS + k × GROWTH_MS over k = 0..RUNS-1, as a floor; the rest is overhead.
    const meanSleep = (BASE_MS + (GROWTH_MS * (RUNS - 1)) / 2) / 1000;
    expect(working?.meanSeconds).toBeGreaterThanOrEqual(meanSleep);
    expect(working?.meanSeconds).toBeLessThan(meanSleep + 0.1);
    expect(working?.sumSeconds).toBeCloseTo(worker.bottleneckSeconds, 3);
  });

  it("comprehensive-analysis lists the trend and makes it a finding", () => {
    const a = json<Analysis>(
      "performance-monitor",
      "comprehensive-analysis",
      JSON.stringify({
        analysis_scope: "system_wide_degradation",
        time_horizon: "1h",
        bottleneck_identification: true,
      }),
    );
    const trend = a.trends.series.find(
      (t) => t.type === "PERFORMANCE_DEGRADATION_DETECTED" && t.series === "task_latency",
    );
    expect(trend, JSON.stringify(a.trends)).toMatchObject({ direction: "increasing" });
    expect(a.findings).toContainEqual(expect.objectContaining({ rule: "trend", subject: "task_latency" }));
    expect(a.bottlenecks?.find((k) => k.kind === "worker")?.bottleneck).toBe("working");
  });
});
