/**
 * `pnpm bench`: in one run against one nats-server, raw NATS request-reply (a responder in
 * another process) and Cadre's no-op delegation, director on host-1 > agent on host-2, through
 * the whole path (submit, policy, schemas, JetStream tasks and results, KV state). Both are
 * measured sequentially (p50/p99) and with 64 in flight (throughput), and the ratio printed.
 * Cadre is measured three times, each on a fresh stack: with metrics and tracing off, metrics
 * on, and both on (spans exported to a stand-in OTLP receiver), so the cost of observing shows.
 */

import { spawn } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import { startStack, submitWorkflow } from "@cadre/cli";
import { decodeAs, parseTeam, type Team } from "@cadre/protocol";
import { connectNats } from "@cadre/runtime";
import { startNatsServer } from "@cadre/runtime/testing";
import { startOtlpReceiver } from "../helpers/otlp.js";
import { printTable, quantile, sequential, throughput } from "./stats.js";

const SECONDS = Number(process.env.BENCH_SECONDS ?? 5);
const IN_FLIGHT = 64;
const log = (s: string) => process.stderr.write(`${s}\n`);

const server = await startNatsServer();
const dir = mkdtempSync(join(tmpdir(), "cadre-bench-"));
try {
  // --- raw request-reply --------------------------------------------------------------------
  log("raw request-reply: starting responder");
  const responder = spawn(process.execPath, [fileURLToPath(new URL("./responder.js", import.meta.url)), server.url], {
    stdio: ["ignore", "pipe", "inherit"],
  });
  await new Promise<void>((resolve) => createInterface({ input: responder.stdout! }).once("line", () => resolve()));
  const nc = await connectNats(server.url, "bench");
  const payload = new Uint8Array(200);
  const echo = () => nc.request("bench.echo", payload, { timeout: 5000 });
  await sequential(echo, 1000);
  log(`raw request-reply: sequential ${SECONDS} s`);
  const rawLat = await sequential(echo, SECONDS * 1000);
  log(`raw request-reply: ${IN_FLIGHT} in flight ${SECONDS} s`);
  const rawRate = await throughput(echo, IN_FLIGHT, SECONDS * 1000);
  responder.kill("SIGTERM");

  // --- Cadre delegation, observed three ways -----------------------------------------------
  // 128 actors: past the seed's default limits (10 per team, 50 in all).
  const configFile = join(dir, "config.json");
  const limits = { max_agents_per_orchestrator: 1000, max_concurrent_agents: 1000 };
  writeFileSync(configFile, JSON.stringify({ logLevel: "warn", orchestration_limits: limits }));
  const team: Team = parseTeam({
    name: "bench",
    root: "director",
    kinds: {
      director: {
        role: "director",
        replicas: IN_FLIGHT,
        hosts: ["host-1"],
        behaviour: { type: "script", delegate: [{ kind: "noop" }] },
      },
      noop: { role: "agent", replicas: IN_FLIGHT, hosts: ["host-2"], behaviour: { type: "script" } },
    },
  });
  const waiting = new Map<string, () => void>();
  nc.subscribe("cadre.v1.evt.workflow.*", {
    callback: (_e, m) => {
      const e = decodeAs(m.data, "event").body;
      if (e.type === "WORKFLOW_COMPLETED" || e.type === "WORKFLOW_FAILED") {
        waiting.get(e.scope)?.();
        waiting.delete(e.scope);
      }
    },
  });
  const workflow = async () => {
    let done!: () => void;
    const finished = new Promise<void>((r) => (done = r));
    const { workflowId } = await submitWorkflow(nc, { team });
    waiting.set(workflowId, done);
    await finished;
  };
  // Tracing exports to a stand-in OTLP/HTTP receiver in this process (every span sent, as to a collector).
  const receiver = await startOtlpReceiver();
  const configs = [
    { name: "metrics and tracing off", env: { CADRE_METRICS: "off" } },
    { name: "metrics on", env: {} },
    { name: "metrics and tracing on", env: { OTEL_EXPORTER_OTLP_ENDPOINT: receiver.url } },
  ];
  const results: { name: string; lat: number[]; rate: number }[] = [];
  for (const cfg of configs) {
    log(`cadre (${cfg.name}): starting supervisor and two agent-hosts`);
    const stack = await startStack({ natsUrl: server.url, hosts: 2, monitor: false, configFile, env: cfg.env });
    await sequential(workflow, 1000);
    log(`cadre (${cfg.name}): sequential ${SECONDS} s`);
    const lat = await sequential(workflow, SECONDS * 1000);
    log(`cadre (${cfg.name}): ${IN_FLIGHT} in flight ${SECONDS} s`);
    const rate = await throughput(workflow, IN_FLIGHT, SECONDS * 1000);
    await stack.stop();
    results.push({ name: cfg.name, lat, rate });
  }
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
