/**
 * A real Prometheus scrapes Cadre's metrics: an HTTP server in this process serves a
 * `createMetrics` registry on 127.0.0.1, Prometheus scrapes it every second, and the value
 * the query API returns is the one the counter holds.
 */

import { createServer, type Server } from "node:http";
import { type CadreMetrics, createMetrics, METRICS_CONTENT_TYPE, metricsText } from "@cadre/runtime";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { until } from "../helpers/client.js";
import { startPrometheus, type TestPrometheus } from "../helpers/prometheus.js";

describe("Prometheus scraping a Cadre registry", () => {
  let metrics: CadreMetrics;
  let server: Server;
  let prometheus: TestPrometheus | undefined;
  let target: string;

  beforeAll(async () => {
    metrics = createMetrics({ service: "prometheus-test" });
    metrics.tasksStarted.inc({ kind: "x" }, 7);
    server = createServer((req, res) => {
      if (req.url?.split("?")[0] !== "/metrics") {
        res.writeHead(404).end();
        return;
      }
      void metricsText(metrics).then((text) => {
        res.writeHead(200, { "content-type": METRICS_CONTENT_TYPE });
        res.end(text);
      });
    });
    await new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      server.listen(0, "127.0.0.1", () => resolve());
    });
    const address = server.address();
    if (address === null || typeof address === "string") throw new Error("no TCP address");
    target = `127.0.0.1:${address.port}`;
    prometheus = await startPrometheus({ targets: [target], scrapeIntervalMs: 1000 });
  });

  afterAll(async () => {
    await prometheus?.stop();
    await new Promise((resolve) => server?.close(resolve));
  });

  it("reports the target up and the counter's value", async () => {
    const p = prometheus as TestPrometheus;
    const up = await p.waitForTargetsUp(20_000);
    expect(up.map((t) => [t.scrapeUrl, t.health])).toEqual([[`http://${target}/metrics`, "up"]]);
    // The scrape that marked the target up stored the samples; poll in case the query runs first.
    const value = await until(
      'cadre_tasks_started_total{kind="x"} in Prometheus',
      () => p.query('cadre_tasks_started_total{kind="x"}'),
      10_000,
    );
    expect(value).toBe(7);
    expect(await p.query('cadre_service_info{service="prometheus-test"}')).toBe(1);
    expect(await p.query('up{job="cadre"}')).toBe(1);
    // Default process metrics come along under the same prefix.
    expect(await p.query("cadre_process_resident_memory_bytes")).toBeGreaterThan(0);
    expect(await p.query('cadre_tasks_started_total{kind="nope"}')).toBeUndefined();
  });
});
