/**
 * `pnpm bench`, second part: failure detection and reconciliation, with Cadre's default
 * detector settings, against one nats-server on this machine.
 *
 * 1. Detection: an agent-host is started, heard for 30 heartbeats, then killed with SIGKILL;
 *    the time from the kill to HOST_UNREACHABLE, over several runs (median, min, max).
 * 2. Reconciliation rate: a host behind a TCP proxy holds 1,000 tasks, is cut off, finishes
 *    them into its outbox, and is let back; the supervisor classifies every replayed result.
 *    The host's replay rate bound is lifted for this (`host.outbox.replayRatePerSec`, 500/s by
 *    default, keeps a healed host from flooding the cluster), so the figure is the supervisor's.
 * 3. False suspicions: both cores saturated by busy loops for 30 s while workflows keep
 *    running; Cadre's HOST_SUSPECTED and HOST_UNREACHABLE events are counted, and beside them,
 *    from the same heartbeats as this process received them, what a fixed timeout of three
 *    heartbeat intervals (a "missed 3 beats" detector) would have flagged.
 */

import { spawn } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { availableParallelism, tmpdir } from "node:os";
import { join } from "node:path";
import { startStack } from "@cadre/cli";
import { decodeAs, parseConfig, type TeamInput } from "@cadre/protocol";
import { connectNats } from "@cadre/runtime";
import { startNatsServer } from "@cadre/runtime/testing";
import { cadreClient, recordEvents, until } from "../helpers/client.js";
import { startProxy } from "../helpers/proxy.js";
import { printTable, quantile } from "./stats.js";

const KILLS = Number(process.env.BENCH_KILLS ?? 7);
const OFFLINE_TASKS = 4 * Math.ceil(Number(process.env.BENCH_OFFLINE_TASKS ?? 1000) / 4);
const SATURATE_S = Number(process.env.BENCH_SATURATE_SECONDS ?? 30);
const log = (s: string) => process.stderr.write(`${s}\n`);
const defaults = parseConfig({});

const server = await startNatsServer();
const dir = mkdtempSync(join(tmpdir(), "cadre-bench-partition-"));
const proxy = await startProxy(server.port);
const configFile = join(dir, "config.json");
writeFileSync(
  configFile,
  JSON.stringify({
    logLevel: "info",
    // 1,000 actors for the offline part: past the seed's default limits (10 per team, 50 in all).
    orchestration_limits: { max_agents_per_orchestrator: 5000, max_concurrent_agents: 5000 },
    host: { maxActors: OFFLINE_TASKS + 100, outbox: { dir: join(dir, "outbox"), replayRatePerSec: 1_000_000 } },
  }),
);
const hostLines = new Map<string, string[]>();
/** The largest outbox size each host has logged. */
const outboxRecords = new Map<string, number>();
const stack = await startStack({
  natsUrl: server.url,
  hosts: 1,
  monitor: false,
  configFile,
  logDir: join(dir, "logs"),
  onLine: (service, line) => {
    const n = /"outboxRecords":(\d+)/.exec(line)?.[1];
    if (n) outboxRecords.set(service, Math.max(outboxRecords.get(service) ?? 0, Number(n)));
    const l = hostLines.get(service) ?? [];
    l.push(line);
    if (l.length > 200) l.shift();
    hostLines.set(service, l);
  },
});
const nc = await connectNats(server.url, "bench-partition");
const client = cadreClient(nc);
const rec = recordEvents(nc);
const eventAt = (type: string, scope: string, after: number) =>
  rec.events.find((e) => e.event.type === type && e.event.scope === scope && e.at >= after);

/** Arrival times of each host's heartbeats, as this process hears them. */
const beats = new Map<string, number[]>();
nc.subscribe("cadre.v1.hb.*", {
  callback: (_err, m) => {
    const hostId = decodeAs(m.data, "heartbeat").body.hostId;
    const b = beats.get(hostId) ?? [];
    b.push(Date.now());
    beats.set(hostId, b);
  },
});

let finished = false;
try {
  // --- 1. detection after kill -9 -------------------------------------------------------------
  const detections: number[] = [];
  const sinceLastBeat: number[] = [];
  for (let i = 1; i <= KILLS; i++) {
    const hostId = `victim-${i}`;
    const p = await stack.startHost(hostId);
    await until(`30 heartbeats from ${hostId}`, () => (beats.get(hostId)?.length ?? 0) >= 30, 20_000);
    const killedAt = Date.now();
    await p.kill("SIGKILL");
    const e = await until(
      `${hostId} declared unreachable`,
      () => eventAt("HOST_UNREACHABLE", hostId, killedAt),
      20_000,
    );
    detections.push(e.at - killedAt);
    sinceLastBeat.push(e.at - (beats.get(hostId)?.at(-1) ?? killedAt));
    log(`detection ${i}/${KILLS}: ${e.at - killedAt} ms after the kill (phi ${e.event.data.phi})`);
  }

  // --- 2. reconciliation rate -----------------------------------------------------------------
  log(`reconciliation: ${OFFLINE_TASKS} tasks on a host behind a proxy`);
  await stack.startHost("host-p", { natsUrl: proxy.url });
  await until("the proxied host heard", () => (beats.get("host-p")?.length ?? 0) >= 10, 20_000);
  // Four kinds of a quarter each (a kind has at most 256 replicas).
  const quarter = Math.ceil(OFFLINE_TASKS / 4);
  const kinds: TeamInput["kinds"] = {
    lead: {
      role: "director",
      hosts: ["host-1"],
      behaviour: {
        type: "script",
        delegate: [0, 1, 2, 3].map((k) => ({ kind: `w${k}`, count: quarter })),
        output: { done: true },
      },
    },
  };
  for (let k = 0; k < 4; k++) {
    // Long enough that none finishes before the cut, even on a slow run.
    kinds[`w${k}`] = {
      role: "agent",
      replicas: quarter,
      hosts: ["host-p"],
      behaviour: { type: "script", sleepMs: 8000, output: { ok: true } },
    };
  }
  const offlineTeam: TeamInput = { name: "bench-offline", root: "lead", kinds };
  const workflowId = await client.submit(offlineTeam);
  const startedOnP = () =>
    rec.events.filter((e) => e.event.type === "TASK_STARTED" && e.event.data.hostId === "host-p").length;
  await until(`${OFFLINE_TASKS} tasks started`, () => startedOnP() >= OFFLINE_TASKS, 60_000);
  proxy.cut();
  const cutAt = Date.now();
  log("reconciliation: host cut off; waiting for its outbox to fill");
  const queued = () => outboxRecords.get("host-p") === OFFLINE_TASKS;
  await until("every result in the outbox", queued, 60_000).catch((err: Error) => {
    throw new Error(`${err.message} (${outboxRecords.get("host-p") ?? 0} of ${OFFLINE_TASKS})`);
  });
  const healedAt = Date.now();
  proxy.heal();
  const report = await until(
    "the reconciliation report",
    () => eventAt("RECONCILIATION_REPORT", "host-p", healedAt),
    120_000,
  );
  const replayed = eventAt("OUTBOX_REPLAYED", "host-p", healedAt);
  const w = await client.wait(workflowId, 60_000);
  const r = report.event.data;
  const classifiedMs = Number(r.ms);
  log(`reconciliation: ${JSON.stringify(r)}; workflow ${w.status}; cut ${healedAt - cutAt} ms`);

  // --- 3. false suspicions with both cores saturated --------------------------------------------
  const cores = availableParallelism();
  log(`saturation: ${cores} busy loops for ${SATURATE_S} s, workflows running meanwhile`);
  const loadTeam: TeamInput = {
    name: "bench-load",
    root: "lead",
    kinds: {
      lead: {
        role: "director",
        replicas: 2,
        behaviour: { type: "script", delegate: [{ kind: "worker", count: 20 }] },
      },
      worker: { role: "agent", replicas: 10, behaviour: { type: "script", sleepMs: [10, 50] } },
    },
  };
  const burnStart = Date.now();
  const burnEnd = burnStart + SATURATE_S * 1000;
  const burners = Array.from({ length: cores }, () => {
    const b = spawn(process.execPath, ["-e", `const end = ${burnEnd}; while (Date.now() < end) {}`], {
      stdio: "ignore",
    });
    return new Promise((resolve) => b.once("exit", resolve));
  });
  let workflows = 0;
  while (Date.now() < burnEnd) {
    const id = await client.submit(loadTeam);
    await client.wait(id, 60_000);
    workflows++;
  }
  await Promise.all(burners);
  const during = (type: string) =>
    rec.events.filter((e) => e.event.type === type && e.at >= burnStart && e.at <= burnEnd + 1000).length;
  const suspected = during("HOST_SUSPECTED");
  const unreachable = during("HOST_UNREACHABLE");
  const interval = defaults.heartbeat.intervalMs;
  let fixedTimeoutFlags = 0;
  let maxGap = 0;
  for (const [hostId, times] of beats) {
    if (hostId.startsWith("victim-")) continue;
    const inWindow = times.filter((t) => t >= burnStart && t <= burnEnd);
    for (let i = 1; i < inWindow.length; i++) {
      const gap = (inWindow[i] as number) - (inWindow[i - 1] as number);
      maxGap = Math.max(maxGap, gap);
      if (gap > 3 * interval) fixedTimeoutFlags++;
    }
  }
  rec.stop();

  const f = (n: number) => n.toFixed(0);
  const rows = [
    ["measure", "Cadre (default settings)", "for comparison"],
    [
      `detection after kill -9 (ms), median of ${KILLS}`,
      `${f(quantile(detections, 0.5))} (min ${f(Math.min(...detections))}, max ${f(Math.max(...detections))})`,
      "Akka ~3000-4000, Dapr ~3000, Orleans ~15000, Moleculer ~30000 (their published defaults)",
    ],
    [
      "from the last heartbeat heard to unreachable (ms), median",
      f(quantile(sinceLastBeat, 0.5)),
      `heartbeat every ${interval} ms`,
    ],
    [
      `reconciliation of ${r.replayed} replayed results (results/s)`,
      `${f((Number(r.total) / Math.max(1, classifiedMs)) * 1000)} (${r.total} in ${classifiedMs} ms)`,
      `host replay bound ${defaults.host.outbox.replayRatePerSec}/s by default; heal to report ${report.at - healedAt} ms`,
    ],
    [
      `false suspicions, ${cores} cores saturated ${SATURATE_S} s`,
      `${suspected} suspected, ${unreachable} unreachable`,
      `a fixed ${3 * interval} ms timeout would have fired ${fixedTimeoutFlags} times (longest gap ${maxGap} ms)`,
    ],
  ];
  printTable(rows);
  process.stdout.write(
    `\nreconciliation report: ${JSON.stringify(r)}; host replay took ${replayed?.event.data.ms} ms.\n` +
      `saturation: ${workflows} workflows of 21 tasks completed during the ${SATURATE_S} s.\n`,
  );
  finished = true;
} finally {
  rec.stop();
  await nc.close();
  await stack.stop();
  await proxy.close();
  await server.stop();
  // Kept when the run failed: the services' logs are in it.
  if (finished) rmSync(dir, { recursive: true, force: true });
  else log(`logs kept in ${dir}/logs`);
}
