/**
 * Metrics on a real stack: every service serves `/metrics` on its health port; after a
 * workflow the counters add up to the workflow's own counts, the stage and depth histograms
 * hold one observation per task, and a real Prometheus (Debian's, test/helpers/prometheus.ts)
 * scraping the stack returns the same completed-task count through its query API.
 */

import { METRIC_NAMES } from "@cadre/protocol";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { fanTeam, startCluster, type TestCluster, until } from "../helpers/cluster.js";
import { startPrometheus, type TestPrometheus } from "../helpers/prometheus.js";

/** One sample of the text format: name, labels, value. */
interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

/** Parses Prometheus's text format (what prom-client writes: no escapes in our label values). */
function parse(text: string): Sample[] {
  const out: Sample[] = [];
  for (const line of text.split("\n")) {
    if (line === "" || line.startsWith("#")) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!m) throw new Error(`not a sample line: ${line}`);
    const labels: Record<string, string> = {};
    for (const l of (m[2] ?? "").matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="([^"]*)"/g)) labels[l[1] ?? ""] = l[2] ?? "";
    out.push({ name: m[1] ?? "", labels, value: Number(m[3]) });
  }
  return out;
}

/** The sum of a metric's samples whose labels include `where`. */
const sum = (samples: Sample[], name: string, where: Record<string, string> = {}): number =>
  samples
    .filter((s) => s.name === name && Object.entries(where).every(([k, v]) => s.labels[k] === v))
    .reduce((a, s) => a + s.value, 0);

describe("metrics of every service", () => {
  let c: TestCluster;
  let prometheus: TestPrometheus | undefined;
  const scrape = async (name: string): Promise<Sample[]> => {
    const port = c.stack.processes.get(name)?.healthPort;
    const res = await fetch(`http://127.0.0.1:${port}/metrics`);
    expect(res.status, name).toBe(200);
    expect(res.headers.get("content-type")).toContain("text/plain");
    return parse(await res.text());
  };

  beforeAll(async () => {
    c = await startCluster({ hosts: 2, monitor: true });
  }, 60_000);
  afterAll(async () => {
    await prometheus?.stop();
    await c?.stop();
  });

  it("count a workflow's tasks as the workflow does, on each service's /metrics and in Prometheus", async () => {
    const w = await c.wait(await c.submit(fanTeam("metrics-fan", 12, 5)));
    expect(w.status).toBe("completed");
    const total = w.tasks.total;
    expect(total).toBe(13);

    const sup = await scrape("supervisor");
    const hosts = [...(await scrape("host-1")), ...(await scrape("host-2"))];
    const monitor = await scrape("monitor");
    // Every service reports the process's own metrics and who it is.
    for (const s of [sup, hosts, monitor]) {
      expect(sum(s, "cadre_process_resident_memory_bytes")).toBeGreaterThan(0);
      expect(sum(s, "cadre_service_info")).toBeGreaterThan(0);
    }
    // Started on the hosts, finished on the supervisor: each task once (no retries here).
    expect(sum(hosts, "cadre_tasks_started_total")).toBe(total);
    expect(sum(hosts, "cadre_tasks_started_total", { kind: "worker" })).toBe(12);
    expect(sum(sup, "cadre_tasks_completed_total", { outcome: "completed" })).toBe(w.tasks.completed);
    expect(sum(sup, "cadre_tasks_completed_total", { outcome: "failed" })).toBe(0);
    expect(sum(sup, "cadre_results_duplicate_total")).toBe(w.tasks.duplicates);
    // One observation per applied task in every stage, and one depth per subtask created.
    for (const stage of ["queued", "working", "waiting", "applying"]) {
      expect(sum(sup, "cadre_task_stage_seconds_count", { stage }), stage).toBe(total);
    }
    expect(sum(sup, "cadre_task_stage_seconds_sum", { stage: "working", kind: "worker" })).toBeGreaterThanOrEqual(
      (12 * 5) / 1000,
    );
    expect(sum(sup, "cadre_delegation_depth_count")).toBe(12);
    expect(sum(sup, "cadre_delegation_depth_sum")).toBe(12);
    expect(sum(sup, "cadre_workflows", { status: "completed" })).toBe(1);
    expect(sum(sup, "cadre_workflows", { status: "running" })).toBe(0);
    expect(sum(sup, "cadre_heartbeat_gap_seconds_count")).toBeGreaterThan(0);
    expect(sum(hosts, "cadre_actors_active")).toBeGreaterThanOrEqual(2);

    // A real Prometheus scraping the three kinds of service agrees.
    const targets = [...c.stack.processes.values()].map((p) => `127.0.0.1:${p.healthPort}`);
    prometheus = await startPrometheus({ targets, scrapeIntervalMs: 1000 });
    const up = await prometheus.waitForTargetsUp(30_000);
    expect(up).toHaveLength(targets.length);
    const p = prometheus;
    const completed = await until(
      "Prometheus has the completed count",
      async () => {
        const v = await p.query('sum(cadre_tasks_completed_total{outcome="completed"})');
        return v === w.tasks.completed ? v : undefined;
      },
      30_000,
    );
    expect(completed).toBe(w.tasks.completed);
    expect(await p.query("sum(cadre_tasks_started_total)")).toBe(total);
  });

  it("name each kind's bottleneck stage (cadre perf bottlenecks) and show the monitor's six (cadre monitor)", async () => {
    const { kinds } = JSON.parse(c.cli("perf", "bottlenecks", "--json")) as {
      kinds: { kind: string; bottleneck: string; tasks: number; stages: { stage: string; share: number }[] }[];
    };
    expect(kinds.map((k) => k.kind)).toEqual(["lead", "worker"]);
    for (const k of kinds) {
      expect(k.stages.map((s) => s.stage).sort()).toEqual(["applying", "queued", "waiting", "working"]);
      expect(k.stages.reduce((a, s) => a + s.share, 0)).toBeCloseTo(1, 5);
      // The named stage holds the largest share.
      expect(k.bottleneck).toBe([...k.stages].sort((a, b) => b.share - a.share)[0]?.stage);
    }
    expect(kinds.find((k) => k.kind === "worker")?.tasks).toBe(12);
    // The lead waits for its twelve children: its working stage holds most of its time.
    expect(kinds.find((k) => k.kind === "lead")?.bottleneck).toBe("working");
    const text = c.cli("perf", "bottlenecks");
    expect(text).toMatch(/^worker\s+\w+\s+\d+%\s+12\s/m);

    const monitor = await until("the monitor has metrics", () => {
      const m = JSON.parse(c.cli("monitor", "--json")) as { metrics: { metric: string; value: number | null }[] };
      return m.metrics.every((x) => x.value !== null) ? m : undefined;
    });
    expect(monitor.metrics.map((m) => m.metric)).toEqual([...METRIC_NAMES]);
    expect(c.cli("monitor")).toMatch(/^active_agents_count\s+\d+\s+45\s+40\.5\s+throttle\s+ok/m);
  });
});
