/**
 * `node test/dist/bench/flow.js [workflows] [--in-flight <k>] [--supervisors <s>] [--partitions <p>] [--cpu-prof <dir>]`: what one workflow costs in NATS messages, by kind.
 * A sniffer connection subscribes to every subject (`>`, on an anonymous stack) while N
 * director > agent workflows run one after another, and counts each message once by what it
 * is: a KV read or write of which bucket, a JetStream publish, pull or ack of which stream, an
 * operation request, a reply, an event of which category. Heartbeats and the services' reports
 * are time-driven, not per workflow, and are left out. The counts are the profile of the
 * critical path's round trips: every request is one (its reply is counted beside it).
 *
 * It also prints each process's CPU time per workflow over the measured workflows (utime +
 * stime from /proc: the supervisor, the hosts, nats-server, and this process, which holds the
 * client and the sniffer): where a workflow's cost is, hop by hop, without a profiler's overhead.
 *
 * With `--in-flight <k>` the workflows run k at a time (64 is the throughput benchmarks' load; the
 * director and the agent get k replicas) and the figure is workflows per second.
 * With `--supervisors <s>` s supervisors run, sharing the partitions (measured once each holds its
 * share): the CPU table then says what each supervisor spends per workflow, and so how far the
 * supervisors' ceiling moves when they are the bottleneck (one core each / the busiest one's ms).
 * `--partitions <p>` sets supervisor.partitions (the first supervisor's id is random, so with few
 * partitions the rule may give the second none: 16 makes that rare).
 * With `--cpu-prof <dir>` every service writes a V8 CPU profile there when it stops
 * (`<service>.cpuprofile`, warm-up included); `node test/dist/bench/cpu-summary.js <dir>` prints
 * where each spent its time.
 */

import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { startStack } from "@cadre/cli";
import { BUCKETS, PARTITIONS_KEY, PartitionTableSchema } from "@cadre/protocol";
import { connectNats } from "@cadre/runtime";
import { startNatsServer } from "@cadre/runtime/testing";
import { Kvm } from "@nats-io/kv";
import { benchConfig, directorAgentTeam, workflowRunner } from "./cadre-delegation.js";
import { printTable, processCpuMs, quantile } from "./stats.js";

const args = process.argv.slice(2);
/** Takes `--name <value>` out of the arguments. */
const option = (name: string): string | undefined => {
  const at = args.indexOf(name);
  return at >= 0 ? (args.splice(at, 2)[1] ?? "") : undefined;
};
const cpuProfileDir = option("--cpu-prof");
const inFlight = Number(option("--in-flight") ?? 1);
const supervisors = Number(option("--supervisors") ?? 1);
const partitions = option("--partitions");
const N = Number(args[0] ?? 200);
if (
  !Number.isInteger(N) ||
  N < 1 ||
  cpuProfileDir === "" ||
  !Number.isInteger(inFlight) ||
  inFlight < 1 ||
  !Number.isInteger(supervisors) ||
  supervisors < 1 ||
  (partitions !== undefined && !/^[1-9][0-9]*$/.test(partitions)) ||
  args.length > 1
) {
  process.stderr.write(
    `usage: node test/dist/bench/flow.js [workflows] [--in-flight <k>] [--supervisors <s>] [--partitions <p>] [--cpu-prof <dir>]  (workflows, k, s and p whole numbers >= 1, got ${process.argv.slice(2).join(" ")})\n`,
  );
  process.exit(2);
}
const log = (s: string) => process.stderr.write(`${s}\n`);

/** What a message is, from its subject. */
export function kindOf(subject: string): string | undefined {
  const t = subject.split(".");
  if (t[0] === "_INBOX") return "reply (to a request)";
  if (subject.startsWith("$JS.API.DIRECT.GET.KV_")) return `kv read ${t[4]?.slice(3)}`;
  if (subject.startsWith("$JS.API.STREAM.MSG.GET.KV_")) return `kv read ${t[5]?.slice(3)}`;
  if (t[0] === "$KV") return `kv write ${t[1]}`;
  if (subject.startsWith("$JS.API.CONSUMER.MSG.NEXT.")) return `pull ${t[5]}`;
  if (t[0] === "$JS" && t[1] === "ACK") return `ack ${t[2]}`;
  if (t[0] === "$JS" && t[1] === "FC") return "flow control";
  if (subject.startsWith("$JS.EVENT.")) return undefined; // advisories
  if (t[0] === "$JS" && t[1] === "API") return `jetstream api ${t.slice(2, 4).join(".")}`;
  if (t[0] === "$SRV") return undefined; // discovery
  if (t[0] === "cadre" && t[1] === "v1") {
    if (t[2] === "hb" || t[2] === "report") return undefined;
    if (t[2] === "evt") return `event ${t[3]}`;
    if (t[2] === "task") return "task publish";
    if (t[2] === "result") return "result publish";
    if (t[2] === "child") return "child notice";
    return `request ${t.slice(2, 5).join(".")}`;
  }
  return subject.split(".").slice(0, 3).join(".");
}

// 2k actors (k in flight).
const configFile = benchConfig(
  mkdtempSync(join(tmpdir(), "cadre-flow-")),
  partitions ? { supervisor: { partitions: Number(partitions) } } : {},
);

const server = await startNatsServer();
try {
  const stack = await startStack({
    natsUrl: server.url,
    hosts: 2,
    monitor: false,
    env: { CADRE_METRICS: "off", CADRE_LOG_LEVEL: "warn" },
    configFile,
    ...(cpuProfileDir ? { cpuProfileDir } : {}),
  });
  const nc = await connectNats(server.url, "bench-client");
  for (let i = 2; i <= supervisors; i++) await stack.startSupervisor(`supervisor-${i}`);
  if (supervisors > 1) {
    // Measured once every supervisor holds its share (a newcomer takes it after a lease TTL).
    const registry = await new Kvm(nc).open(BUCKETS.registry);
    for (const deadline = Date.now() + 30_000; ; ) {
      const e = await registry.get(PARTITIONS_KEY);
      const t = e?.operation === "PUT" ? PartitionTableSchema.parse(e.json()) : undefined;
      if (t?.members.length === supervisors && t.members.every((m) => t.owners.includes(m))) {
        log(`partitions: ${t.owners.map((o, p) => `${p}:${o}`).join(" ")}`);
        break;
      }
      if (Date.now() > deadline) throw new Error(`the ${supervisors} supervisors did not share the partitions in 30 s`);
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  const sniffer = await connectNats(server.url, "bench-sniffer");
  const team = directorAgentTeam("flow", inFlight);
  const { workflow } = workflowRunner(nc, team);
  for (let i = 0; i < 20; i++) await workflow(); // warm: the team placed, the actors spawned
  await sniffer.flush();
  const counts = new Map<string, number>();
  let counting = true;
  /** While set, every message seen with its arrival time: one workflow's timeline. */
  let timeline: { at: number; kind: string; subject: string }[] | undefined;
  sniffer.subscribe(">", {
    callback: (_e, m) => {
      const k = kindOf(m.subject);
      timeline?.push({ at: performance.now(), kind: k ?? "(not per workflow)", subject: m.subject });
      if (!counting) return;
      if (k) counts.set(k, (counts.get(k) ?? 0) + 1);
    },
  });
  await sniffer.flush();
  log(`flow: ${N} workflows, ${inFlight} at a time`);
  const lat: number[] = [];
  const pids = new Map<string, number | undefined>([
    ...[...stack.processes].map(([name, p]) => [name, p.child.pid] as const),
    ["nats-server", server.process.pid],
    ["client + sniffer (this process)", process.pid],
  ]);
  const cpuBefore = new Map([...pids].map(([name, pid]) => [name, processCpuMs(pid)]));
  let next = 0;
  const began = performance.now();
  await Promise.all(
    Array.from({ length: inFlight }, async () => {
      while (next++ < N) {
        const t0 = performance.now();
        await workflow();
        lat.push(performance.now() - t0);
      }
    }),
  );
  const perSecond = (N / (performance.now() - began)) * 1000;
  const cpu = [...pids].map(([name, pid]) => [name, (processCpuMs(pid) - (cpuBefore.get(name) ?? 0)) / N] as const);
  // Whatever the last workflow set off after its completion event (counts written behind).
  await new Promise((r) => setTimeout(r, 500));
  counting = false;
  const rows = [...counts].sort((a, b) => b[1] - a[1]);
  const total = rows.reduce((s, [, n]) => s + n, 0);
  printTable([
    ["message", "per workflow"],
    ...rows.map(([k, n]) => [k, (n / N).toFixed(2)]),
    ["all", (total / N).toFixed(2)],
  ]);
  process.stdout.write("\n");
  printTable([
    ["process", "CPU ms per workflow"],
    ...cpu.map(([name, ms]) => [name, ms.toFixed(2)]),
    ["all", cpu.reduce((a, [, ms]) => a + ms, 0).toFixed(2)],
  ]);
  const requests = rows.filter(([k]) => k.startsWith("reply")).reduce((s, [, n]) => s + n, 0);
  process.stdout.write(
    `\n${N} workflows (director on host-1 > agent on host-2, metrics off), ${inFlight} at a time: p50 ${quantile(lat, 0.5).toFixed(2)} ms, ${perSecond.toFixed(0)} workflows/s, ` +
      `${(requests / N).toFixed(1)} replies per workflow (each a request's round trip; a JetStream publish's ack is one).\n`,
  );

  // One more, timed message by message: where a workflow's time goes between the services.
  await new Promise((r) => setTimeout(r, 500));
  timeline = [];
  const t0 = performance.now();
  await workflow();
  const took = performance.now() - t0;
  const seen = timeline.filter((x) => x.kind !== "(not per workflow)");
  timeline = undefined;
  let prev = t0;
  process.stdout.write(
    `\none workflow, message by message (${took.toFixed(2)} ms; + is the gap since the previous):\n`,
  );
  printTable([
    ["at ms", "+ ms", "message", "subject"],
    ...seen.map((x) => {
      const row = [(x.at - t0).toFixed(2), (x.at - prev).toFixed(2), x.kind, x.subject.slice(0, 60)];
      prev = x.at;
      return row;
    }),
  ]);
  await sniffer.close();
  await nc.close();
  await stack.stop();
} finally {
  await server.stop();
}
