/**
 * `pnpm bench`, third part: a soak. Two agent-hosts under steady load (a 21-task workflow at a
 * time, 8 in flight) for SOAK_SECONDS (default 60); each host's V8 heap in use is read from its
 * heartbeats. Printed per host and per sixth of the run: the lowest and highest heap seen, and
 * the trend (least squares, MiB per minute) of the lowest values over the second half beside
 * the workflows done. The heap saws with each collection; a leak raises its floor, so a flat
 * host's floor trend stays near zero while the work goes on.
 */

import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { startStack } from "@cadre/cli";
import { decodeAs, type TeamInput } from "@cadre/protocol";
import { connectNats } from "@cadre/runtime";
import { startNatsServer } from "@cadre/runtime/testing";
import { cadreClient } from "../helpers/client.js";
import { printTable } from "./stats.js";

const SECONDS = Number(process.env.SOAK_SECONDS ?? 60);
const IN_FLIGHT = 8;
const log = (s: string) => process.stderr.write(`${s}\n`);

const team: TeamInput = {
  name: "soak",
  root: "lead",
  kinds: {
    lead: { role: "director", replicas: 8, behaviour: { type: "script", delegate: [{ kind: "worker", count: 20 }] } },
    worker: {
      role: "agent",
      replicas: 16,
      behaviour: { type: "script", sleepMs: [5, 20], output: { n: "{{task.id}}", pad: "x".repeat(2000) } },
    },
  },
};

/** Least-squares slope of (t seconds, v) points, per minute. */
function slopePerMinute(points: { t: number; v: number }[]): number {
  const n = points.length;
  if (n < 2) return Number.NaN;
  const mt = points.reduce((a, p) => a + p.t, 0) / n;
  const mv = points.reduce((a, p) => a + p.v, 0) / n;
  let num = 0;
  let den = 0;
  for (const p of points) {
    num += (p.t - mt) * (p.v - mv);
    den += (p.t - mt) ** 2;
  }
  return (num / den) * 60;
}

const server = await startNatsServer();
const dir = mkdtempSync(join(tmpdir(), "cadre-soak-"));
try {
  const configFile = join(dir, "config.json");
  writeFileSync(
    configFile,
    JSON.stringify({
      logLevel: "warn",
      host: { outbox: { dir: join(dir, "outbox") } },
      orchestration_limits: { max_agents_per_orchestrator: 100, max_concurrent_agents: 100 },
    }),
  );
  const stack = await startStack({ natsUrl: server.url, hosts: 2, monitor: false, configFile });
  const nc = await connectNats(server.url, "bench-soak");
  const client = cadreClient(nc);
  const heap = new Map<string, { t: number; v: number }[]>();
  const start = Date.now();
  nc.subscribe("cadre.v1.hb.*", {
    callback: (_err, m) => {
      const hb = decodeAs(m.data, "heartbeat").body;
      if (hb.heapUsedMb === undefined) return;
      const series = heap.get(hb.hostId) ?? [];
      series.push({ t: (Date.now() - start) / 1000, v: hb.heapUsedMb });
      heap.set(hb.hostId, series);
    },
  });

  log(`soak: ${SECONDS} s of 21-task workflows, ${IN_FLIGHT} in flight, on two hosts`);
  let done = 0;
  const end = start + SECONDS * 1000;
  const progress = setInterval(
    () => log(`soak: ${Math.round((Date.now() - start) / 1000)} s, ${done} workflows`),
    10_000,
  );
  await Promise.all(
    Array.from({ length: IN_FLIGHT }, async () => {
      while (Date.now() < end) {
        const id = await client.submit(team);
        await client.wait(id, 60_000);
        done++;
      }
    }),
  );
  clearInterval(progress);
  await stack.stop();
  await nc.close();

  // The heap saws up and down with each collection; what a leak raises is the floor. Per
  // window of a sixth of the run: the lowest and highest heap seen, and the trend of the floors.
  const hosts = [...heap.keys()].sort();
  const windows = Array.from({ length: 6 }, (_, i) => [(SECONDS * i) / 6, (SECONDS * (i + 1)) / 6] as const);
  const inWindow = (h: string, [a, b]: readonly [number, number]) =>
    (heap.get(h) ?? []).filter((p) => p.t >= a && p.t < b).map((p) => p.v);
  const floors = (h: string) =>
    windows.map((w) => ({ t: (w[0] + w[1]) / 2, v: Math.min(...inWindow(h, w)) })).filter((p) => Number.isFinite(p.v));
  const rows = [
    ["window (s)", ...hosts.map((h) => `${h} heap min-max (MiB)`)],
    ...windows.map((w) => [
      `${Math.round(w[0])}-${Math.round(w[1])}`,
      ...hosts.map((h) => {
        const v = inWindow(h, w);
        return v.length === 0 ? "-" : `${Math.min(...v).toFixed(1)}-${Math.max(...v).toFixed(1)}`;
      }),
    ]),
    [
      "floor trend, 2nd half (MiB/min)",
      ...hosts.map((h) => slopePerMinute(floors(h).filter((p) => p.t >= SECONDS / 2)).toFixed(2)),
    ],
  ];
  printTable(rows);
  process.stdout.write(
    `\nsoak: ${done} workflows (${done * 21} tasks, ${(done / SECONDS).toFixed(1)} workflows/s) in ${SECONDS} s.\n`,
  );
} finally {
  await server.stop();
  rmSync(dir, { recursive: true, force: true });
}
