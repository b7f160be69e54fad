import type { Server } from "node:http";
import { Counter, Gauge, Histogram, Registry } from "prom-client";
import { afterEach, describe, expect, it } from "vitest";
import { createLogger } from "./logger.js";
import {
  type CadreMetrics,
  createMetrics,
  DEPTH_BUCKETS,
  METRICS_CONTENT_TYPE,
  metricsText,
  STAGE_BUCKETS,
} from "./metrics.js";
import { serveHealth } from "./service.js";

type AnyMetric = Counter<string> | Gauge<string> | Histogram<string>;

/** Cadre's own metrics (every field but the registry and the service name), with the names and labels they were made with. */
function ownMetrics(m: CadreMetrics): { field: string; name: string; labelNames: string[]; metric: AnyMetric }[] {
  return Object.entries(m)
    .filter(([field]) => field !== "registry" && field !== "service")
    .map(([field, metric]) => {
      const { name, labelNames } = metric as unknown as { name: string; labelNames?: string[] };
      return { field, name, labelNames: labelNames ?? [], metric: metric as AnyMetric };
    });
}

const ID_LIKE = /^(task|workflow|actor|run|request|message|txn|transaction)(_?id)?$|id$/i;

describe("createMetrics", () => {
  it("names every metric cadre_*, counters *_total, and labels nothing by id", () => {
    const m = createMetrics({ service: "test", defaultMetrics: false });
    const own = ownMetrics(m);
    expect(own.length).toBeGreaterThanOrEqual(27);
    for (const { field, name, labelNames, metric } of own) {
      expect(name, field).toMatch(/^cadre_[a-z_]+$/);
      if (metric instanceof Counter) expect(name, field).toMatch(/_total$/);
      else expect(name, field).not.toMatch(/_total$/);
      for (const label of labelNames) {
        expect(label, `${name} label ${label}`).not.toMatch(ID_LIKE);
        expect(label, `${name} label ${label}`).toMatch(/^[a-z]+$/);
      }
    }
    // Exactly the registry's contents: nothing registered that is not a field, nor the reverse.
    expect(
      m.registry
        .getMetricsAsArray()
        .map((x) => x.name)
        .sort(),
    ).toEqual(own.map((x) => x.name).sort());
  });

  it("has the names, types, labels and buckets the dashboards expect", async () => {
    const m = createMetrics({ service: "test", defaultMetrics: false });
    const byName = new Map(ownMetrics(m).map((x) => [x.name, x]));
    const expected: [string, "counter" | "gauge" | "histogram", string[]][] = [
      ["cadre_tasks_started_total", "counter", ["kind"]],
      ["cadre_tasks_completed_total", "counter", ["kind", "outcome"]],
      ["cadre_tasks_retried_total", "counter", ["kind"]],
      ["cadre_tasks_reassigned_total", "counter", ["kind"]],
      ["cadre_results_duplicate_total", "counter", ["kind"]],
      ["cadre_results_conflict_total", "counter", ["kind"]],
      ["cadre_results_rejected_total", "counter", ["reason"]],
      ["cadre_state_conflicts_total", "counter", ["service"]],
      ["cadre_transactions_aborted_total", "counter", []],
      ["cadre_events_published_total", "counter", ["priority"]],
      ["cadre_events_dropped_total", "counter", ["priority"]],
      ["cadre_hook_runs_total", "counter", ["hook", "outcome"]],
      ["cadre_outbox_replayed_total", "counter", []],
      ["cadre_reconciliation_total", "counter", ["classification"]],
      ["cadre_threshold_actions_total", "counter", ["metric", "action"]],
      ["cadre_llm_tokens_total", "counter", ["direction", "model"]],
      ["cadre_llm_cost_usd_total", "counter", ["model"]],
      ["cadre_llm_calls_total", "counter", ["model", "outcome"]],
      ["cadre_task_stage_seconds", "histogram", ["kind", "stage"]],
      ["cadre_delegation_depth", "histogram", []],
      ["cadre_heartbeat_gap_seconds", "histogram", ["host"]],
      ["cadre_llm_request_seconds", "histogram", ["model", "outcome"]],
      ["cadre_workflows", "gauge", ["status"]],
      ["cadre_actors_active", "gauge", []],
      ["cadre_actors_busy", "gauge", []],
      ["cadre_actors_quarantined", "gauge", []],
      ["cadre_event_queue_depth", "gauge", ["priority"]],
      ["cadre_hook_bypassed", "gauge", ["hook"]],
      ["cadre_circuit_state", "gauge", ["breaker"]],
      ["cadre_outbox_depth", "gauge", []],
      ["cadre_service_info", "gauge", ["service", "version"]],
    ];
    for (const [name, type, labels] of expected) {
      const found = byName.get(name);
      expect(found, name).toBeDefined();
      const cls = { counter: Counter, gauge: Gauge, histogram: Histogram }[type];
      expect(found?.metric, name).toBeInstanceOf(cls);
      expect(found?.labelNames, name).toEqual(labels);
    }
    expect(STAGE_BUCKETS[0]).toBe(0.0005);
    expect(STAGE_BUCKETS.at(-1)).toBe(60);
    m.taskStageSeconds.observe({ kind: "k", stage: "working" }, 0.003);
    m.delegationDepth.observe(3);
    const text = await metricsText(m);
    expect(text).toContain('cadre_task_stage_seconds_bucket{le="0.005",kind="k",stage="working"} 1');
    for (const le of DEPTH_BUCKETS)
      expect(text).toContain(`cadre_delegation_depth_bucket{le="${le}"} ${le >= 3 ? 1 : 0}`);
    expect(text).toMatch(/^cadre_service_info\{service="test",version="[^"]+"\} 1$/m);
  });

  it("turned off, records nothing and costs a no-op call (the benchmark's baseline)", async () => {
    const m = createMetrics({ service: "off", enabled: false });
    m.tasksStarted.inc({ kind: "coder" }, 7);
    m.taskStageSeconds.observe({ kind: "coder", stage: "working" }, 1);
    m.actorsActive.set(3);
    expect(m.taskStageSeconds.startTimer()()).toBe(0);
    expect((await m.tasksStarted.get()).values).toEqual([]);
    expect(m.service).toBe("off");
    expect((await metricsText(m)).trim()).toBe("");
  });

  it("shows an incremented counter in the text", async () => {
    const m = createMetrics({ service: "test", defaultMetrics: false });
    m.tasksStarted.inc({ kind: "coder" }, 7);
    m.tasksCompleted.inc({ kind: "coder", outcome: "failed" });
    m.transactionsAborted.inc();
    const text = await metricsText(m);
    expect(text).toContain("# HELP cadre_tasks_started_total ");
    expect(text).toContain("# TYPE cadre_tasks_started_total counter");
    expect(text).toMatch(/^cadre_tasks_started_total\{kind="coder"\} 7$/m);
    expect(text).toMatch(/^cadre_tasks_completed_total\{kind="coder",outcome="failed"\} 1$/m);
    expect(text).toMatch(/^cadre_transactions_aborted_total 1$/m);
  });

  it("collects the process's default metrics, prefixed cadre_, unless turned off", async () => {
    const m = createMetrics({ service: "test" });
    const text = await metricsText(m);
    expect(text).toMatch(/^cadre_process_resident_memory_bytes \d/m);
    expect(text).toContain("# TYPE cadre_nodejs_eventloop_lag_seconds gauge");
    expect(text).toContain("# TYPE cadre_nodejs_gc_duration_seconds histogram");
    for (const x of m.registry.getMetricsAsArray()) expect(x.name).toMatch(/^cadre_[a-z0-9_]+$/);
    const off = await metricsText(createMetrics({ service: "test", defaultMetrics: false }));
    expect(off).not.toContain("cadre_process_");
  });

  it("keeps two sets of metrics in one process apart (a registry each)", async () => {
    const a = createMetrics({ service: "a" });
    const b = createMetrics({ service: "b" });
    expect(a.registry).not.toBe(b.registry);
    expect([a.service, b.service]).toEqual(["a", "b"]);
    a.tasksStarted.inc({ kind: "x" }, 2);
    b.tasksStarted.inc({ kind: "x" }, 5);
    expect(await metricsText(a)).toMatch(/^cadre_tasks_started_total\{kind="x"\} 2$/m);
    expect(await metricsText(b)).toMatch(/^cadre_tasks_started_total\{kind="x"\} 5$/m);
    expect(await metricsText(b)).toMatch(/^cadre_service_info\{service="b",/m);
  });

  it("registers into a given registry, and refuses to register twice there", async () => {
    const registry = new Registry();
    const m = createMetrics({ service: "test", registry, defaultMetrics: false, version: "9.9.9" });
    expect(m.registry).toBe(registry);
    expect(await registry.metrics()).toContain('cadre_service_info{service="test",version="9.9.9"} 1');
    expect(() => createMetrics({ service: "again", registry, defaultMetrics: false })).toThrow(/already/);
  });
});

describe("the health server", () => {
  const servers: Server[] = [];
  afterEach(async () => {
    await Promise.all(servers.splice(0).map((s) => new Promise((r) => s.close(r))));
  });
  const logger = createLogger("metrics-test", "silent");
  const start = async (running: Parameters<typeof serveHealth>[1]) => {
    const server = await serveHealth(0, running, logger, "127.0.0.1");
    servers.push(server);
    const address = server.address();
    if (address === null || typeof address === "string") throw new Error("no TCP address");
    expect(address.address).toBe("127.0.0.1");
    return `http://127.0.0.1:${address.port}`;
  };

  it("answers /metrics with the registry's text, and /healthz as before", async () => {
    const metrics = createMetrics({ service: "test", defaultMetrics: false });
    metrics.tasksStarted.inc({ kind: "x" }, 3);
    const url = await start({ metrics, healthy: () => true });
    const res = await fetch(`${url}/metrics`);
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toBe(METRICS_CONTENT_TYPE);
    expect(METRICS_CONTENT_TYPE).toMatch(/^text\/plain; version=0\.0\.4/);
    expect(await res.text()).toMatch(/^cadre_tasks_started_total\{kind="x"\} 3$/m);
    // Each scrape reads the current values.
    metrics.tasksStarted.inc({ kind: "x" });
    expect(await (await fetch(`${url}/metrics?x=1`)).text()).toMatch(/^cadre_tasks_started_total\{kind="x"\} 4$/m);
    const health = await fetch(`${url}/healthz`);
    expect([health.status, await health.text()]).toEqual([200, "ok\n"]);
    expect((await fetch(`${url}/other`)).status).toBe(404);
  });

  it("answers /metrics 404 when the service has no metrics, and /healthz 503 when unhealthy", async () => {
    const url = await start({ healthy: () => false });
    const res = await fetch(`${url}/metrics`);
    expect([res.status, await res.text()]).toEqual([404, "not found\n"]);
    const health = await fetch(`${url}/healthz`);
    expect([health.status, await health.text()]).toEqual([503, "unhealthy\n"]);
  });
});
