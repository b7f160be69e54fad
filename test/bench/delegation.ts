/**
 * `pnpm bench`: in one run against one nats-server, raw NATS request-reply (a responder in
 * another process) and Cadre's no-op delegation, director on host-1 > agent on host-2, through
 * the whole path (submit, policy, schemas, JetStream tasks and results, KV state). Both are
 * measured sequentially (p50/p99) and with 64 in flight (throughput), and the ratio printed.
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

  // --- Cadre delegation ---------------------------------------------------------------------
  log("cadre: starting supervisor and two agent-hosts");
  const configFile = join(dir, "config.json");
  // 128 actors: past the seed's default limits (10 per team, 50 in all).
  const limits = { max_agents_per_orchestrator: 1000, max_concurrent_agents: 1000 };
  writeFileSync(configFile, JSON.stringify({ logLevel: "warn", orchestration_limits: limits }));
  const stack = await startStack({ natsUrl: server.url, hosts: 2, monitor: false, configFile });
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
  await sequential(workflow, 1000);
  log(`cadre: sequential ${SECONDS} s`);
  const cadreLat = await sequential(workflow, SECONDS * 1000);
  log(`cadre: ${IN_FLIGHT} in flight ${SECONDS} s`);
  const cadreRate = await throughput(workflow, IN_FLIGHT, SECONDS * 1000);
  await stack.stop();
  await nc.close();

  const f = (n: number, d = 2) => n.toFixed(d);
  const rows = [
    ["measure", "raw NATS request-reply", "Cadre director > agent (one delegation)", "Cadre / raw"],
    [
      "sequential p50 (ms)",
      f(quantile(rawLat, 0.5), 3),
      f(quantile(cadreLat, 0.5)),
      `${f(quantile(cadreLat, 0.5) / quantile(rawLat, 0.5), 1)}x`,
    ],
    [
      "sequential p99 (ms)",
      f(quantile(rawLat, 0.99), 3),
      f(quantile(cadreLat, 0.99)),
      `${f(quantile(cadreLat, 0.99) / quantile(rawLat, 0.99), 1)}x`,
    ],
    [`${IN_FLIGHT} in flight (per s)`, f(rawRate, 0), f(cadreRate, 0), `${f(cadreRate / rawRate, 3)}x`],
  ];
  printTable(rows);
  process.stdout.write(
    `\nraw: ${rawLat.length} sequential requests, 200-byte payload, responder in another process.\n` +
      `cadre: ${cadreLat.length} sequential workflows; each is submit > director (host-1) plans and delegates > ` +
      `agent (host-2) > results applied > director aggregates > workflow completed.\n`,
  );
} finally {
  await server.stop();
  rmSync(dir, { recursive: true, force: true });
}
