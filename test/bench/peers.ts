/**
 * `pnpm bench`, the peers: in one run on this machine, one durable director > agent workflow
 * done three ways, each with a client and two worker processes:
 * - the bare JetStream floor of Cadre's message flow (peer-jetstream.ts),
 * - BullMQ 6's FlowProducer, a parent with one child, on a redis-server of its own with an
 *   append-only file fsynced every second (peer-bullmq.ts, peer-redis.ts),
 * - Cadre itself, measured exactly as delegation.ts measures it with metrics and tracing off
 *   (cadre-delegation.ts).
 * Each is measured sequentially (p50/p99) and with 64 in flight (workflows/s); the table gives
 * the ratios issue 17's goals are stated in, and the figures go to test/results/bench/peers.json.
 * Compare only figures from one run: the machine drifts between runs.
 */

import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { cpus, tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { connectNats } from "@cadre/runtime";
import { startNatsServer } from "@cadre/runtime/testing";
import { cadreDelegation, IN_FLIGHT, type Measurement } from "./cadre-delegation.js";
import { measureBullMQ } from "./peer-bullmq.js";
import { measureJetStreamFloor } from "./peer-jetstream.js";
import { startRedisServer } from "./peer-redis.js";
import { printTable, quantile } from "./stats.js";

const SECONDS = Number(process.env.BENCH_SECONDS ?? 5);
const log = (s: string) => process.stderr.write(`${s}\n`);
const phases = { seconds: SECONDS, log };
const BULLMQ_VERSION: string = createRequire(import.meta.url)("bullmq/package.json").version;
const OUT = fileURLToPath(new URL("../../results/bench/peers.json", import.meta.url));

const server = await startNatsServer();
const redis = await startRedisServer().catch(async (err) => {
  await server.stop();
  throw err;
});
// An exception or an interrupted run leaves no redis-server or data directory behind.
process.once("exit", () => redis.kill());
const dir = mkdtempSync(join(tmpdir(), "cadre-bench-"));
try {
  log(`redis-server on ${redis.host}:${redis.port} (appendonly yes, appendfsync everysec, no save)`);
  const floor = await measureJetStreamFloor(server.url, phases);
  const bullmq = await measureBullMQ(redis.host, redis.port, phases);
  const nc = await connectNats(server.url, "bench");
  const cadreBench = cadreDelegation(nc, server.url, dir, phases);
  const cadre = await cadreBench.run("metrics and tracing off", { CADRE_METRICS: "off" });
  cadreBench.close();
  await nc.close();

  const summary = (m: Measurement) => ({
    sequentialP50Ms: quantile(m.lat, 0.5),
    sequentialP99Ms: quantile(m.lat, 0.99),
    sequentialCount: m.lat.length,
    inFlightPerSecond: m.rate,
    inFlightCpuMsPerWorkflow: m.cpuMsPerCall,
  });
  const systems = {
    jetstreamFloor: summary(floor),
    bullmq: {
      ...summary(bullmq),
      redisUsedMemoryBytes: bullmq.redisUsedMemoryBytes,
      redisKeys: bullmq.redisKeys,
    },
    cadre: summary(cadre),
  };
  const goal = (name: string, ratio: number, op: ">=" | "<=", target: number) => ({
    name,
    ratio,
    target: `${op} ${target}x`,
    met: op === ">=" ? ratio >= target : ratio <= target,
  });
  const goals = [
    goal(
      `Cadre ${IN_FLIGHT} in flight / BullMQ`,
      systems.cadre.inFlightPerSecond / systems.bullmq.inFlightPerSecond,
      ">=",
      2,
    ),
    goal("Cadre sequential p50 / BullMQ", systems.cadre.sequentialP50Ms / systems.bullmq.sequentialP50Ms, "<=", 1),
    goal(
      "Cadre sequential p50 / JetStream floor",
      systems.cadre.sequentialP50Ms / systems.jetstreamFloor.sequentialP50Ms,
      "<=",
      3,
    ),
  ];

  const f = (n: number, d = 2) => n.toFixed(d);
  const row = (name: string, s: ReturnType<typeof summary>) => [
    name,
    f(s.sequentialP50Ms),
    f(s.sequentialP99Ms),
    f(s.inFlightPerSecond, 0),
    f(s.inFlightCpuMsPerWorkflow),
  ];
  printTable([
    [
      "system",
      "sequential p50 (ms)",
      "sequential p99 (ms)",
      `${IN_FLIGHT} in flight (workflows/s)`,
      "machine CPU per workflow (ms)",
    ],
    row("JetStream floor (same flow: 4 durable publishes, 4 acked pulls, no state)", systems.jetstreamFloor),
    row("BullMQ 6 FlowProducer, parent + one child, redis AOF everysec", systems.bullmq),
    row("Cadre (delegation.js, metrics and tracing off)", systems.cadre),
  ]);
  printTable([
    ["goal (issue 17)", "ratio", "target", "met"],
    ...goals.map((g) => [g.name, `${f(g.ratio)}x`, g.target, g.met ? "yes" : "no"]),
  ]);
  const cost = (s: ReturnType<typeof summary>) =>
    f(s.inFlightCpuMsPerWorkflow / systems.bullmq.inFlightCpuMsPerWorkflow);
  process.stdout.write(
    `\nCPU a workflow costs the machine at ${IN_FLIGHT} in flight (every process: clients, workers, servers), ` +
      `against BullMQ's: JetStream floor ${cost(systems.jetstreamFloor)}x, Cadre ${cost(systems.cadre)}x.\n`,
  );
  process.stdout.write(
    `\nOne run, ${SECONDS} s phases after a 1 s warm-up, ${cpus().length} cores; each system has a client and two ` +
      `worker processes. JetStream floor: one file-storage work-queue stream, the client pulls the workflow's ` +
      `result with a durable pull consumer and acks it. BullMQ ${BULLMQ_VERSION}: a Worker per queue (concurrency ${IN_FLIGHT}), ` +
      `jobs kept by count (1,000 per queue); redis held ${bullmq.redisKeys} keys, ` +
      `${f(bullmq.redisUsedMemoryBytes / 1048576, 1)} MiB at the end. Cadre: submit > director (host-1) > ` +
      `agent (host-2) > results applied > director aggregates > workflow completed.\n`,
  );
  mkdirSync(dirname(OUT), { recursive: true });
  writeFileSync(
    OUT,
    `${JSON.stringify(
      {
        at: new Date().toISOString(),
        bullmq: BULLMQ_VERSION,
        seconds: SECONDS,
        inFlight: IN_FLIGHT,
        cores: cpus().length,
        systems,
        goals,
      },
      null,
      2,
    )}\n`,
  );
  log(`wrote ${OUT}`);
} finally {
  rmSync(dir, { recursive: true, force: true });
  await redis.stop();
  await server.stop();
}
