/**
 * `pnpm bench`: in one run against one nats-server, raw NATS request-reply (a responder in
 * another process) and Cadre's no-op delegation, director on host-1 > agent on host-2, through
 * the whole path (submit, policy, schemas, JetStream tasks and results, KV state). Both are
 * measured sequentially (p50/p99) and with 64 in flight (throughput), and the ratio printed.
 * Cadre is measured three times, each on a fresh stack: with metrics and tracing off, metrics
 * on, and both on (spans exported to a stand-in OTLP receiver), so the cost of observing shows.
 */

import { spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import { connectNats } from "@cadre/runtime";
import { startNatsServer } from "@cadre/runtime/testing";
import { startOtlpReceiver } from "../helpers/otlp.js";
import { cadreDelegation, IN_FLIGHT, type Measurement, measure } from "./cadre-delegation.js";
import { printTable, quantile } from "./stats.js";

const SECONDS = Number(process.env.BENCH_SECONDS ?? 5);
const log = (s: string) => process.stderr.write(`${s}\n`);
const phases = { seconds: SECONDS, log };

const server = await startNatsServer();
const dir = mkdtempSync(join(tmpdir(), "cadre-bench-"));
try {
  // --- raw request-reply --------------------------------------------------------------------
  log("raw request-reply: starting responder");
  const responder = spawn(process.execPath, [fileURLToPath(new URL("./responder.js", import.meta.url)), server.url], {
    stdio: ["ignore", "pipe", "inherit"],
  });
  const ready = responder.stdout;
  if (!ready) throw new Error("the responder has no standard output");
  await new Promise<void>((resolve) => createInterface({ input: ready }).once("line", () => resolve()));
  const nc = await connectNats(server.url, "bench");
  const payload = new Uint8Array(200);
  const echo = () => nc.request("bench.echo", payload, { timeout: 5000 });
  const { lat: rawLat, rate: rawRate } = await measure("raw request-reply", echo, phases);
  responder.kill("SIGTERM");

  // --- Cadre delegation, observed three ways -----------------------------------------------
  const cadre = cadreDelegation(nc, server.url, dir, phases);
  // Tracing exports to a stand-in OTLP/HTTP receiver in this process (every span sent, as to a collector).
  const receiver = await startOtlpReceiver();
  const configs = [
    { name: "metrics and tracing off", env: { CADRE_METRICS: "off" } },
    { name: "metrics on", env: {} },
    { name: "metrics and tracing on", env: { OTEL_EXPORTER_OTLP_ENDPOINT: receiver.url } },
  ];
  const results: ({ name: string } & Measurement)[] = [];
  for (const cfg of configs) results.push({ name: cfg.name, ...(await cadre.run(cfg.name, cfg.env)) });
  cadre.close();
  const spans = receiver.spans.length;
  await receiver.stop();
  await nc.close();

  const f = (n: number, d = 2) => n.toFixed(d);
  const [off] = results;
  if (!off) throw new Error("no baseline");
  const rows = [
    ["measure", "raw NATS request-reply", ...results.map((r) => `Cadre, ${r.name}`), "Cadre (off) / raw"],
    [
      "sequential p50 (ms)",
      f(quantile(rawLat, 0.5), 3),
      ...results.map((r) => f(quantile(r.lat, 0.5))),
      `${f(quantile(off.lat, 0.5) / quantile(rawLat, 0.5), 1)}x`,
    ],
    [
      "sequential p99 (ms)",
      f(quantile(rawLat, 0.99), 3),
      ...results.map((r) => f(quantile(r.lat, 0.99))),
      `${f(quantile(off.lat, 0.99) / quantile(rawLat, 0.99), 1)}x`,
    ],
    [
      `${IN_FLIGHT} in flight (per s)`,
      f(rawRate, 0),
      ...results.map((r) => f(r.rate, 0)),
      `${f(off.rate / rawRate, 3)}x`,
    ],
    ["throughput / off", "-", ...results.map((r) => `${f(r.rate / off.rate, 3)}x`), "-"],
  ];
  printTable(rows);
  process.stdout.write(
    `\nraw: ${rawLat.length} sequential requests, 200-byte payload, responder in another process.\n` +
      `cadre: each workflow is submit > director (host-1) plans and delegates > agent (host-2) > results ` +
      `applied > director aggregates > workflow completed. Observation off: CADRE_METRICS=off and no ` +
      `OTEL_EXPORTER_OTLP_ENDPOINT; tracing on: every span exported to a stand-in OTLP/HTTP receiver ` +
      `(${spans} spans received). The cost of observing should stay within 10% of the throughput with both off.\n`,
  );
} finally {
  await server.stop();
  rmSync(dir, { recursive: true, force: true });
}
