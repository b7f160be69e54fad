/**
 * `pnpm sim`: the scale simulation from the command line. Runs simulation.ts, prints its
 * figures as a table on stdout (progress on stderr) and writes them all as JSON to
 * test/results/sim/scale.json (or --out). Bad arguments exit 2 with what to fix; a killed host
 * not detected within its bounds, or a live host suspected, exits 1.
 *
 *   node test/dist/sim/scale.js --hosts 1000 --agents 1000000 --minutes 3
 */

import { mkdirSync, writeFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { parseArgs } from "node:util";
import { printTable } from "../bench/stats.js";
import { workspaceRoot } from "./internals.js";
import { runScaleSimulation, type ScaleResult } from "./simulation.js";

const HELP = `Usage: node test/dist/sim/scale.js [options]

Runs Cadre's failure detector and placement code at scale on a driven clock (no NATS).

  --hosts N               simulated agent-hosts (2-100000)              [1000]
  --agents M              agents to place, in teams of 10 (10-10000000) [1000000]
  --minutes K             simulated minutes of heartbeats (0.5-120)     [3]
  --kills N               hosts killed during the heartbeats            [5]
  --busy F                share of each host's actors holding a task    [0.01]
  --jitter-ms MS          how late a host's heartbeat timer may run     [10]
  --batch N               teams submitted at once per heartbeat interval [100]
  --placement-budget-s S  wall seconds placement may take, then it extrapolates [120]
  --seed N                seed of the simulated randomness              [17]
  --out FILE              JSON output                                   [test/results/sim/scale.json]
  --help                  this text
`;

/** Bad input: said on stderr with the help hint, exit 2. */
function fail(message: string): never {
  process.stderr.write(`scale: ${message}\nRun with --help for the options.\n`);
  process.exit(2);
}

function num(name: string, raw: string | undefined, def: number, min: number, max: number, integer = true): number {
  if (raw === undefined) return def;
  const v = Number(raw);
  if (raw.trim() === "" || !Number.isFinite(v) || (integer && !Number.isInteger(v)) || v < min || v > max) {
    fail(`--${name} must be ${integer ? "an integer" : "a number"} from ${min} to ${max}, got "${raw}"`);
  }
  return v;
}

const names = [
  "hosts",
  "agents",
  "minutes",
  "kills",
  "busy",
  "jitter-ms",
  "batch",
  "placement-budget-s",
  "seed",
  "out",
];
let values: Record<string, string | boolean | undefined>;
try {
  values = parseArgs({
    options: {
      ...Object.fromEntries(names.map((k) => [k, { type: "string" as const }])),
      help: { type: "boolean" as const },
    },
    strict: true,
    allowPositionals: false,
  }).values as Record<string, string | boolean | undefined>;
} catch (err) {
  fail((err as Error).message);
}
if (values.help) {
  process.stdout.write(HELP);
  process.exit(0);
}
const s = (k: string) => values[k] as string | undefined;
const hosts = num("hosts", s("hosts"), 1000, 2, 100_000);
const opts = {
  hosts,
  agents: num("agents", s("agents"), 1_000_000, 10, 10_000_000),
  minutes: num("minutes", s("minutes"), 3, 0.5, 120, false),
  kills: num("kills", s("kills"), 5, 0, hosts - 1),
  busy: num("busy", s("busy"), 0.01, 0, 1, false),
  jitterMs: num("jitter-ms", s("jitter-ms"), 10, 0, 1000, false),
  batch: num("batch", s("batch"), 100, 1, 100_000),
  placementBudgetMs: num("placement-budget-s", s("placement-budget-s"), 120, 1, 86_400, false) * 1000,
  seed: num("seed", s("seed"), 17, 0, 2 ** 31),
};
const out = s("out") ? resolve(s("out") as string) : join(workspaceRoot(), "test/results/sim/scale.json");

const log = (line: string) => process.stderr.write(`${line}\n`);
log(`scale: ${opts.hosts} hosts, ${opts.agents} agents, ${opts.minutes} simulated minutes`);
const r = await runScaleSimulation({ ...opts, progress: log });
printTable(rows(r));
mkdirSync(dirname(out), { recursive: true });
writeFileSync(out, `${JSON.stringify(r, null, 2)}\n`);
log(`scale: done in ${(r.totalWallMs / 1000).toFixed(1)} s; figures in ${out}`);
const ok = r.liveness.falseSuspicions === 0 && r.liveness.killed.every((k) => k.withinBounds);
if (!ok) log("scale: a killed host was not detected in bounds, or a live host was suspected (see the table)");
process.exit(ok ? 0 : 1);

/** The table: figure, value, how it was obtained. */
function rows(r: ScaleResult): string[][] {
  const l = r.liveness;
  const p = r.placement;
  const c = r.components;
  const fmt = (n: number) => n.toLocaleString("en-US");
  const kills = l.killed
    .map((k) => `${k.hostId}: ${k.unreachableAfterMs ?? "never"} ms (bound ${k.boundSilenceMs ?? "-"})`)
    .join("; ");
  const kv = r.sizes.kv;
  return [
    ["figure", "value", "how"],
    [
      "hosts / simulated time",
      `${fmt(l.hosts)} / ${l.simulatedMs / 60_000} min`,
      `wall ${(l.wallMs / 1000).toFixed(1)} s`,
    ],
    [
      "heartbeats processed",
      fmt(l.heartbeats),
      `${l.heldPerHost} held tasks per host, interval ${r.config.heartbeatIntervalMs} ms`,
    ],
    ["supervisor us per heartbeat", String(l.usPerHeartbeat), "decode, proofs, registry, detector (Follower)"],
    ["detector check of all hosts", `${l.usPerCheck} us`, `${fmt(l.checks)} checks (HostLiveness.check)`],
    ["liveness share of one core", `${(l.coreShare * 100).toFixed(1)} %`, "heartbeats + checks per simulated second"],
    ["host us per beat sent", String(l.hostUsPerBeat), "agent-host Heartbeat.beat (encode included)"],
    [
      "heartbeat size (mean/min/max)",
      `${l.heartbeatBytes.mean} / ${l.heartbeatBytes.min} / ${l.heartbeatBytes.max} B`,
      "real codec",
    ],
    [
      "heartbeat size by held tasks",
      Object.entries(r.sizes.heartbeat)
        .map(([n, b]) => `${n}: ${b} B`)
        .join(", "),
      "real codec",
    ],
    [
      "supervisor us per heartbeat by held",
      r.heartbeatCosts.map((h) => `${h.held}: ${h.followedUs}`).join(", "),
      `of it proofs: ${r.heartbeatCosts.map((h) => `${h.held}: ${h.proofsUs}`).join(", ")}`,
    ],
    [
      "fan-in per supervisor",
      `${fmt(l.fanIn.messagesPerSec)} msg/s, ${fmt(Math.round(l.fanIn.bytesPerSec / 1024))} KiB/s`,
      "measured in the run",
    ],
    ["killed hosts unreachable after", kills || "none killed", "from the kill; bound = phi crossing + 1 check"],
    [
      "killed detected in bounds",
      `${l.killed.filter((k) => k.withinBounds).length}/${l.killed.length}`,
      `and under hostDeadAfterMs ${r.config.hostDeadAfterMs} ms`,
    ],
    ["false suspicions", String(l.falseSuspicions), l.falselySuspected.slice(0, 5).join(", ") || "none"],
    ["hosts forgotten by prune", String(l.forgotten), "killed hosts past their retention"],
    [
      "agents placed",
      `${fmt(p.agentsPlaced)} of ${fmt(p.agentsWanted)}`,
      `${fmt(p.teamsPlaced)} teams in ${(p.wallMs / 1000).toFixed(1)} s${p.finished ? "" : " (budget reached)"}`,
    ],
    [
      "placement us per actor",
      `${p.usPerActor.mean} (first tenth ${p.usPerActor.first}, last ${p.usPerActor.last})`,
      "Placer.ensurePlaced, batches of concurrent teams",
    ],
    [
      "per-team ms fit",
      `${p.fit.aMs} + ${(p.fit.bMsPerActor * 1000).toFixed(4)} x (actors / 1000)`,
      `R^2 ${p.fit.r2}${p.fit.bMsPerActor < 0 ? " (negative slope: counted as 0)" : ""}`,
    ],
    [
      "placement of all wanted",
      `${fmt(p.totalS)} s (${(p.totalS / 3600).toFixed(1)} h) of CPU`,
      p.finished ? "sum of the fit over the run" : "extrapolated by the fit to every team",
    ],
    ["per team: KV gets / puts", `${p.perTeam.kvGets} / ${p.perTeam.kvPuts}`, "sequential round trips on NATS"],
    [
      "per team: consumers / spawns",
      `${p.perTeam.consumers} / ${p.perTeam.spawnRequests} (${p.perTeam.spawnBytes} B each)`,
      "consumer adds, host.spawn requests",
    ],
    [
      "host load min/max",
      `${p.spread.min} / ${p.spread.max}`,
      `maxActors ${r.config.hostMaxActors} (default ${r.config.defaultHostMaxActors})`,
    ],
    [
      "one lifecycle sweep",
      `${fmt(p.sweep.ms)} ms`,
      `${fmt(p.sweep.teams)} teams, ${fmt(p.sweep.actors)} actors, ${fmt(p.sweep.consumerInfos)} consumer infos (Lifecycle.sweep)`,
    ],
    ["refused placements", JSON.stringify(p.refusals), "retried in the next batch"],
    [
      `parts at ${fmt(c.actors)} actors`,
      `liveHosts ${c.liveHostsUs} us, scans ${c.scansUs} us, placeReplicas ${c.placeReplicasUs} us`,
      "per team, each timed alone",
    ],
    [
      "KV record bytes (value)",
      `host ${kv.host.valueBytes}, actor ${kv.actor.valueBytes}, team ${kv.team.valueBytes}, task ${kv.task.valueBytes}, workflow ${kv.workflow.valueBytes}`,
      "StateStore JSON with _crc",
    ],
    ["message bytes", `task ${r.sizes.messages.task}, result ${r.sizes.messages.result}`, "real codec, no headers"],
    [
      "heap",
      `${fmt(l.heapBytesPerHost)} B per host (liveness), ${fmt(r.memory.placementHeapBytesPerActor)} B per actor`,
      `of which fake KV ${r.memory.kvBytesPerActor} B per actor`,
    ],
  ];
}
