/**
 * What nats-server itself (the installed one, 2.9.10 here) pays per (team, kind) consumer, the
 * part of the scale question the simulation cannot answer without NATS: a work-queue stream
 * shaped like CADRE_TASKS gets N durable pull consumers named and filtered as placer.ts creates
 * them, one after another. Measured: the time of each add as the count grows (2.9 checks a new
 * work-queue filter against every existing consumer: consumer.go, partitionUnique), the
 * server's resident memory and store directory per consumer, and how long the server takes to
 * restart and answer with them all. Writes test/results/sim/jetstream.json.
 *
 *   node test/dist/sim/jetstream-probe.js --consumers 10000
 */

import { type ChildProcess, execFileSync, spawn } from "node:child_process";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { createInterface } from "node:readline";
import { parseArgs } from "node:util";
import { STREAMS, subjects, taskConsumer } from "@cadre/protocol";
import { connectNats } from "@cadre/runtime";
import { startNatsServer } from "@cadre/runtime/testing";
import { AckPolicy, jetstreamManager, RetentionPolicy, StorageType } from "@nats-io/jetstream";
import { printTable } from "../bench/stats.js";
import { workspaceRoot } from "./internals.js";

const HELP = `Usage: node test/dist/sim/jetstream-probe.js [--consumers N] [--out FILE]

Creates N (team, kind) consumers on a CADRE_TASKS-shaped work-queue stream of a local
nats-server and measures add time, memory and restart time.

  --consumers N   consumers to create (100-1000000)  [10000]
  --out FILE      JSON output                        [test/results/sim/jetstream.json]
`;

function fail(message: string): never {
  process.stderr.write(`jetstream-probe: ${message}\nRun with --help for the options.\n`);
  process.exit(2);
}

let args: { consumers?: string; out?: string; help?: boolean };
try {
  args = parseArgs({
    options: { consumers: { type: "string" }, out: { type: "string" }, help: { type: "boolean" } },
    strict: true,
  }).values;
} catch (err) {
  fail((err as Error).message);
}
if (args.help) {
  process.stdout.write(HELP);
  process.exit(0);
}
const n = Number(args.consumers ?? 10_000);
if (!Number.isInteger(n) || n < 100 || n > 1_000_000)
  fail(`--consumers must be an integer from 100 to 1000000, got "${args.consumers}"`);
const out = args.out ?? join(workspaceRoot(), "test/results/sim/jetstream.json");
const log = (s: string) => process.stderr.write(`${s}\n`);

/** Resident memory of a process, bytes (Linux). */
const rss = (pid: number): number => {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
  return Number(m?.[1] ?? 0) * 1024;
};
const du = (dir: string): number => Number(execFileSync("du", ["-sb", dir], { encoding: "utf8" }).split("\t")[0]);

const dataDir = mkdtempSync(join(tmpdir(), "cadre-js-probe-"));
const server = await startNatsServer({ dataDir });
let restarted: { child: ChildProcess; url: string } | undefined;
try {
  let nc = await connectNats(server.url, "jetstream-probe");
  let jsm = await jetstreamManager(nc);
  await jsm.streams.add({
    name: STREAMS.tasks,
    subjects: [subjects.allTasks()],
    retention: RetentionPolicy.Workqueue,
    storage: StorageType.File,
  });
  const pid = server.process.pid ?? 0;
  const rss0 = rss(pid);
  const blocks: { consumers: number; msPerAdd: number; rssMb: number }[] = [];
  const block = Math.max(1, Math.floor(n / 10));
  const kinds = ["director", "lead", "backend", "frontend", "qa"];
  let t = performance.now();
  for (let i = 0; i < n; i++) {
    const team = `software-team-${Math.floor(i / kinds.length)}-0123456789`;
    const kind = kinds[i % kinds.length] as string;
    await jsm.consumers.add(STREAMS.tasks, {
      durable_name: taskConsumer(team, kind),
      ack_policy: AckPolicy.Explicit,
      ack_wait: 30_000 * 1_000_000,
      max_deliver: 5,
      filter_subject: subjects.task(team, kind),
    });
    if ((i + 1) % block === 0) {
      const now = performance.now();
      blocks.push({ consumers: i + 1, msPerAdd: (now - t) / block, rssMb: rss(pid) / 1048576 });
      log(`jetstream-probe: ${i + 1}/${n} consumers, ${((now - t) / block).toFixed(2)} ms per add`);
      t = performance.now();
    }
  }
  const rssPerConsumer = (rss(pid) - rss0) / n;
  const storePerConsumer = du(join(dataDir, "jetstream")) / n;
  await nc.close();
  await server.stop();
  // A restart recovers every consumer (2.9 checks each work-queue filter against the others
  // again) before it listens for clients: longer than startNatsServer's 10 s start limit.
  const restartS = await restartSeconds(dataDir);
  nc = await connectNats(restarted?.url ?? "", "jetstream-probe");
  jsm = await jetstreamManager(nc);
  const recovered = (await jsm.streams.info(STREAMS.tasks)).state.consumer_count;
  await nc.close();
  const result = {
    server: execFileSync("nats-server", ["--version"], { encoding: "utf8" }).trim(),
    consumers: n,
    blocks: blocks.map((b) => ({ ...b, msPerAdd: Math.round(b.msPerAdd * 100) / 100, rssMb: Math.round(b.rssMb) })),
    rssBytesPerConsumer: Math.round(rssPerConsumer),
    storeBytesPerConsumer: Math.round(storePerConsumer),
    restartS: Math.round(restartS * 10) / 10,
    recovered,
  };
  printTable([
    ["consumers", "ms per add (this block)", "server RSS MiB"],
    ...result.blocks.map((b) => [String(b.consumers), String(b.msPerAdd), String(b.rssMb)]),
  ]);
  printTable([
    ["figure", "value"],
    ["server", result.server],
    ["RSS per consumer", `${result.rssBytesPerConsumer} B`],
    ["store per consumer", `${result.storeBytesPerConsumer} B`],
    ["restart until all recovered", `${result.restartS} s (${recovered} consumers)`],
  ]);
  mkdirSync(dirname(out), { recursive: true });
  writeFileSync(out, `${JSON.stringify(result, null, 2)}\n`);
  log(`jetstream-probe: figures in ${out}`);
} finally {
  await server.stop().catch(() => {});
  const child = restarted?.child;
  if (child && child.exitCode === null && child.signalCode === null) {
    const exited = new Promise((r) => child.once("exit", r));
    child.kill("SIGTERM");
    await exited;
  }
  rmSync(dataDir, { recursive: true, force: true });
}

/** Starts nats-server on `dir` again and returns the seconds until it listens for clients. */
async function restartSeconds(dir: string): Promise<number> {
  const t = performance.now();
  const child = spawn("nats-server", ["-js", "-sd", dir, "-a", "127.0.0.1", "-p", "-1"], {
    stdio: ["ignore", "ignore", "pipe"],
  });
  const port = await new Promise<number>((resolve, reject) => {
    child.once("exit", () => reject(new Error("nats-server exited while recovering")));
    createInterface({ input: child.stderr }).on("line", (line) => {
      const m = /Listening for client connections on [^:]+:(\d+)/.exec(line);
      if (m?.[1]) resolve(Number(m[1]));
    });
  });
  restarted = { child, url: `nats://127.0.0.1:${port}` };
  return (performance.now() - t) / 1000;
}
