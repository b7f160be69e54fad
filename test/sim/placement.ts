/**
 * The placement phase: teams (the demo team, examples/software-team.yaml: five kinds, two
 * replicas each, ten agents, max_agents_per_orchestrator's default) are placed by the
 * supervisor's own `Placer` on N hosts, `batch` teams at once each heartbeat interval (submits
 * arriving concurrently), the hosts reporting their new actor counts in their next beats as real
 * hosts do. The placer's NATS calls go to fakes: consumer creation is recorded, `host.spawn` is
 * decoded with the real codec and answered like host.ts (all or none, room under
 * `host.maxActors`), KV reads and writes are counted. Stops when every team is placed or after
 * `budgetMs` of wall time, and fits the time per team against the actors already placed. One
 * lifecycle sweep is timed on the way (sweep.ts).
 */

import { readFileSync } from "node:fs";
import { join } from "node:path";
import { type Config, decodeAs, encode, ResourceExhaustedError, type Team, TeamSchema, teamId } from "@cadre/protocol";
import { Breakers } from "@cadre/runtime";
import { parse } from "yaml";
import type { PlacerDeps } from "../../services/supervisor/src/placer.js";
import { SimCluster, type SimHost, unavailable } from "./cluster.js";
import { type Internals, workspaceRoot } from "./internals.js";
import { type SweepTime, timeSweep } from "./sweep.js";

/** Options of {@link runPlacement}. */
export interface PlacementOptions {
  config: Config;
  hosts: number;
  agents: number;
  /** Teams submitted at once, every heartbeat interval. */
  batch: number;
  budgetMs: number;
  /** One lifecycle sweep is timed once this many agents are placed (or at the end). */
  sweepAtAgents: number;
  seed: number;
  progress: (line: string) => void;
}

/** One batch as measured. */
export interface Batch {
  actorsBefore: number;
  teams: number;
  ms: number;
}

/** The placement phase's figures. */
export interface PlacementResult {
  teamsWanted: number;
  agentsWanted: number;
  agentsPerTeam: number;
  teamsPlaced: number;
  agentsPlaced: number;
  wallMs: number;
  finished: boolean;
  /** Mean over all batches; and over the first and the last tenth of them. */
  usPerActor: { mean: number; first: number; last: number };
  /**
   * Fit of ms per team = a + b * actorsBefore over the batches (medians of ten bins, so a
   * collection's pause does not tilt it), and the whole wanted count by it (Σ over the teams).
   */
  fit: { aMs: number; bMsPerActor: number; r2: number };
  totalS: number;
  /** Per team placed: KV reads and writes, consumers created, spawn requests. */
  perTeam: { kvGets: number; kvPuts: number; consumers: number; spawnRequests: number; spawnBytes: number };
  refusals: Record<string, number>;
  /** Host load at the end: fewest and most actors on one host. */
  spread: { min: number; max: number };
  /** One lifecycle sweep over the teams placed by then (sweep.ts). */
  sweep: SweepTime;
  batches: Batch[];
  cluster: SimCluster;
}

/** The demo team, named `name`. */
export function demoTeam(name: string): Team {
  const raw = parse(readFileSync(join(workspaceRoot(), "examples/software-team.yaml"), "utf8"));
  return TeamSchema.parse({ ...raw, name });
}

/** Runs the phase; the cluster is returned for the component timings and the record sizes. */
export async function runPlacement(x: Internals, o: PlacementOptions): Promise<PlacementResult> {
  const { config } = o;
  const template = demoTeam("sim");
  const agentsPerTeam = Object.values(template.kinds).reduce((n, k) => n + k.replicas, 0);
  const teamsWanted = Math.max(1, Math.floor(o.agents / agentsPerTeam));
  const byId = new Map<string, SimHost>();
  const spawns = { requests: 0, bytes: 0 };
  const cluster: SimCluster = new SimCluster(x, {
    config,
    hosts: o.hosts,
    maxActors: config.host.maxActors,
    seed: o.seed,
    jitterMs: 10,
    responder: (subject, data) => {
      spawns.requests++;
      spawns.bytes += data.byteLength;
      const req = decodeAs(data, "host.spawn");
      const hostId = subject.split(".")[3] ?? "";
      const host = byId.get(hostId);
      const n = req.body.actors.length;
      if (!host || host.actors + n > host.maxActors) {
        const err = new ResourceExhaustedError(`actors on host ${hostId}`, host?.maxActors ?? 0, host?.actors ?? 0);
        return encode("error", { error: err.toWire() }, { sender: hostId, cid: req.cid });
      }
      host.actors += n;
      return encode(
        "host.spawn.ok",
        { actorIds: req.body.actors.map((a) => a.actorId) },
        { sender: hostId, cid: req.cid },
      );
    },
  });
  await cluster.start(0);
  for (const h of cluster.hosts) byId.set(h.hostId, h);
  const consumers = new Set<string>();
  const jsm = {
    consumers: {
      add: async (_stream: string, cfg: { durable_name: string }) => void consumers.add(cfg.durable_name),
      delete: async (_stream: string, name: string) => consumers.delete(name),
    },
  };
  const placer = new x.Placer({
    nc: cluster.nats as unknown as PlacerDeps["nc"],
    jsm: jsm as unknown as PlacerDeps["jsm"],
    config,
    clock: cluster.clock,
    logger: cluster.logger,
    sender: "supervisor-sim",
    registry: cluster.registry,
    breakers: new Breakers(config.breakers, { source: "supervisor-sim", clock: cluster.clock }),
    quarantine: () => unavailable("preemption (max_concurrent_agents is the wanted count)"),
    emit: cluster.emit,
    cordoned: () => false,
    guarantees: () => new Map(),
    reclaimIdle: async () => 0,
  });
  // Warm: every host heard from, its detector window filled a little.
  await cluster.run(2 * config.heartbeat.hostDeadAfterMs);

  const teams = Array.from({ length: teamsWanted }, (_, i) => {
    const team = { ...template, name: `software-team-${i}` };
    return { tid: teamId(team), team };
  });
  const kv0 = { ...cluster.registryKv.counts };
  const batches: Batch[] = [];
  const refusals: Record<string, number> = {};
  let retry: typeof teams = [];
  let next = 0;
  let placed = 0;
  let sweep: SweepTime | undefined;
  const wall = performance.now();
  let lastReport = wall;
  while ((next < teams.length || retry.length > 0) && performance.now() - wall < o.budgetMs) {
    const take = [...retry, ...teams.slice(next, next + Math.max(0, o.batch - retry.length))];
    next += take.length - retry.length;
    const actorsBefore = cluster.registry.allActors().length;
    const t = performance.now();
    const outcomes = await Promise.allSettled(take.map((p) => placer.ensurePlaced(p.tid, p.team, retry.includes(p))));
    batches.push({ actorsBefore, teams: take.length, ms: performance.now() - t });
    retry = [];
    for (const [i, r] of outcomes.entries()) {
      if (r.status === "fulfilled") {
        placed++;
        continue;
      }
      const code = (r.reason as { code?: string }).code ?? "ERROR";
      refusals[code] = (refusals[code] ?? 0) + 1;
      retry.push(take[i] as (typeof teams)[number]);
    }
    await cluster.run(config.heartbeat.intervalMs, config.heartbeat.intervalMs);
    if (!sweep && cluster.registry.allActors().length >= o.sweepAtAgents) sweep = await timeSweep(x, cluster);
    if (performance.now() - lastReport > 5000) {
      lastReport = performance.now();
      const agents = cluster.registry.allActors().length;
      o.progress(
        `placement: ${agents}/${teamsWanted * agentsPerTeam} agents, ${((lastReport - wall) / 1000).toFixed(0)} s, ` +
          `${(((batches.at(-1)?.ms ?? 0) * 1000) / Math.max(1, (batches.at(-1)?.teams ?? 1) * agentsPerTeam)).toFixed(0)} us per actor now`,
      );
    }
  }
  const wallMs = performance.now() - wall;
  sweep ??= await timeSweep(x, cluster);
  const agentsPlaced = cluster.registry.allActors().length;
  const perActor = (bs: Batch[]) =>
    (bs.reduce((n, b) => n + b.ms, 0) * 1000) / Math.max(1, bs.reduce((n, b) => n + b.teams, 0) * agentsPerTeam);
  const tenth = Math.max(1, Math.floor(batches.length / 10));
  const fit = fitLine(binned(batches));
  const T = teamsWanted;
  const totalMs = T * fit.aMs + Math.max(0, fit.bMsPerActor) * agentsPerTeam * ((T * (T - 1)) / 2);
  const kv = cluster.registryKv.counts;
  const loads = cluster.hosts.map((h) => h.actors);
  return {
    teamsWanted,
    agentsWanted: teamsWanted * agentsPerTeam,
    agentsPerTeam,
    teamsPlaced: placed,
    agentsPlaced,
    wallMs: Math.round(wallMs),
    finished: placed === teamsWanted,
    usPerActor: {
      mean: round1(perActor(batches)),
      first: round1(perActor(batches.slice(0, tenth))),
      last: round1(perActor(batches.slice(-tenth))),
    },
    fit,
    totalS: Math.round(totalMs / 100) / 10,
    perTeam: {
      kvGets: round1((kv.gets - kv0.gets) / Math.max(1, placed)),
      kvPuts: round1((kv.puts - kv0.puts) / Math.max(1, placed)),
      consumers: round1(consumers.size / Math.max(1, placed)),
      spawnRequests: round1(spawns.requests / Math.max(1, placed)),
      spawnBytes: Math.round(spawns.bytes / Math.max(1, spawns.requests)),
    },
    refusals,
    spread: { min: Math.min(...loads), max: Math.max(...loads) },
    sweep,
    batches,
    cluster,
  };
}

/** (actors before, ms per team) medians of ten equal runs of batches. */
function binned(batches: Batch[]): { x: number; y: number }[] {
  const size = Math.max(1, Math.ceil(batches.length / 10));
  const out: { x: number; y: number }[] = [];
  for (let i = 0; i < batches.length; i += size) {
    const bin = batches.slice(i, i + size);
    const ys = bin.map((b) => b.ms / b.teams).sort((a, b) => a - b);
    out.push({ x: bin.reduce((n, b) => n + b.actorsBefore, 0) / bin.length, y: ys[Math.floor(ys.length / 2)] ?? 0 });
  }
  return out;
}

/** Least squares y = a + b x, with R². */
function fitLine(points: { x: number; y: number }[]): { aMs: number; bMsPerActor: number; r2: number } {
  const n = points.length;
  if (n < 2) return { aMs: points[0]?.y ?? 0, bMsPerActor: 0, r2: 0 };
  const mx = points.reduce((s, p) => s + p.x, 0) / n;
  const my = points.reduce((s, p) => s + p.y, 0) / n;
  let sxy = 0;
  let sxx = 0;
  let syy = 0;
  for (const p of points) {
    sxy += (p.x - mx) * (p.y - my);
    sxx += (p.x - mx) ** 2;
    syy += (p.y - my) ** 2;
  }
  const b = sxx === 0 ? 0 : sxy / sxx;
  const a = my - b * mx;
  const r2 = sxx === 0 || syy === 0 ? 0 : (sxy * sxy) / (sxx * syy);
  return { aMs: Math.round(a * 1000) / 1000, bMsPerActor: b, r2: Math.round(r2 * 1000) / 1000 };
}

const round1 = (v: number): number => Math.round(v * 10) / 10;
