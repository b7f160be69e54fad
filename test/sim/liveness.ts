/**
 * The liveness phase: N hosts beat for K simulated minutes, each listing the tasks its busy
 * actors hold (a task lasts `taskMs` on average, so lists change and are sent as hosts send
 * them: on a change and every tenth beat); a few hosts are killed in the middle. Checked: each
 * killed host is declared unreachable no later than one check after its phi crossed
 * `unreachablePhi` (computed from its own detector at that moment) and before
 * `hostDeadAfterMs` of silence; no live host is ever suspected.
 */

import type { Config } from "@cadre/protocol";
import type { LivenessEvent } from "@cadre/runtime";
import { SimCluster, type SimHost } from "./cluster.js";
import type { Internals } from "./internals.js";

/** Options of {@link runLiveness}. */
export interface LivenessOptions {
  config: Config;
  hosts: number;
  /** Actors per host (the agents spread over the hosts). */
  actorsPerHost: number;
  minutes: number;
  kills: number;
  jitterMs: number;
  /** Share of each host's actors holding a task at any time. */
  busy: number;
  /** Mean task duration. */
  taskMs: number;
  seed: number;
  progress: (line: string) => void;
  /** Heap in use after a full collection (simulation.ts). */
  heap: () => number;
}

/** What happened to one killed host. */
export interface KilledHost {
  hostId: string;
  /** Simulated ms from the start. */
  killedAtMs: number;
  /** From the kill to HOST_SUSPECTED / HOST_UNREACHABLE; null when never. */
  suspectedAfterMs: number | null;
  unreachableAfterMs: number | null;
  /** Silence (since its last heartbeat arrived) when declared unreachable. */
  silenceMs: number | null;
  /** The latest silence allowed: phi reaches unreachablePhi, plus one check interval. */
  boundSilenceMs: number | null;
  withinBounds: boolean;
}

/** The liveness phase's figures. */
export interface LivenessResult {
  hosts: number;
  simulatedMs: number;
  wallMs: number;
  heartbeats: number;
  /** The supervisor's handling of one heartbeat (decode, proof checks, registry, detector), mean. */
  usPerHeartbeat: number;
  /** One detector check over every host, mean, and how many ran. */
  usPerCheck: number;
  checks: number;
  /** The supervisor's liveness work per simulated second, as a share of one core. */
  coreShare: number;
  /** A host's beat (status, encode, publish), mean. */
  hostUsPerBeat: number;
  heartbeatBytes: { mean: number; min: number; max: number };
  fanIn: { messagesPerSec: number; bytesPerSec: number };
  killed: KilledHost[];
  falseSuspicions: number;
  falselySuspected: string[];
  /** Hosts the registry forgot (killed ones, after their retention). */
  forgotten: number;
  heldPerHost: number;
  /** Heap grown by the running cluster per host: the supervisor's state and the hosts' (their held lists). */
  heapBytesPerHost: number;
}

/** Runs the phase. */
export async function runLiveness(x: Internals, o: LivenessOptions): Promise<LivenessResult> {
  const { config } = o;
  const heapBefore = o.heap();
  const interval = config.heartbeat.intervalMs;
  const heldPerHost = Math.round(o.busy * o.actorsPerHost);
  const endProbability = Math.min(1, interval / o.taskMs);
  const events: (LivenessEvent & { boundSilenceMs?: number })[] = [];
  const cluster: SimCluster = new SimCluster(x, {
    config,
    hosts: o.hosts,
    maxActors: Math.max(config.host.maxActors, o.actorsPerHost),
    seed: o.seed,
    jitterMs: o.jitterMs,
    beforeBeat: (h) => {
      // Tasks end and others start: the list changes (the host sends it when it does).
      for (let i = 0; i < h.held.length; i++) {
        if (cluster.rng() < endProbability) h.held[i] = cluster.heldTask(h.hostId);
      }
    },
    onLiveness: (e) => {
      if (e.type !== "unreachable") return void events.push(e);
      events.push({
        ...e,
        boundSilenceMs: crossing(cluster, e, config.heartbeat.unreachablePhi) + cluster.checkIntervalMs,
      });
    },
  });
  await cluster.start(o.actorsPerHost);
  for (const h of cluster.hosts) h.held = Array.from({ length: heldPerHost }, () => cluster.heldTask(h.hostId));

  const totalMs = o.minutes * 60_000;
  // Kills between a quarter and three quarters of the run, after the detector's window filled
  // (15 s) and at least 10 s before the end.
  const victims = pick(cluster, Math.min(o.kills, o.hosts - 1));
  const killAt = new Map<string, number>();
  for (const v of victims) {
    const at = Math.min(totalMs - 10_000, Math.max(15_000, totalMs * (0.25 + 0.5 * cluster.rng())));
    killAt.set(v.hostId, at);
    cluster.scheduler.at(cluster.clock.now() + at, () => cluster.kill(v));
  }
  const started = cluster.clock.now();
  const wall = performance.now();
  const reportEvery = 30_000;
  for (let done = 0; done < totalMs; done += reportEvery) {
    await cluster.run(Math.min(reportEvery, totalMs - done));
    const b = cluster.beats;
    o.progress(
      `liveness: ${Math.round((done + reportEvery) / 1000)}/${totalMs / 1000} s simulated, ${b.count} heartbeats, ${(
        (b.ms * 1000) / Math.max(1, b.count)
      ).toFixed(1)} us each, ${((performance.now() - wall) / 1000).toFixed(0)} s`,
    );
  }
  const wallMs = performance.now() - wall;
  const heapBytesPerHost = Math.round(Math.max(0, o.heap() - heapBefore) / o.hosts);

  const killed = victims.map((v): KilledHost => {
    const at = killAt.get(v.hostId) ?? 0;
    const mine = events.filter((e) => e.hostId === v.hostId && e.at - started >= at);
    const s = mine.find((e) => e.type === "suspected");
    const u = mine.find((e) => e.type === "unreachable");
    const bound = u?.boundSilenceMs ?? null;
    return {
      hostId: v.hostId,
      killedAtMs: Math.round(at),
      suspectedAfterMs: s ? round1(s.at - started - at) : null,
      unreachableAfterMs: u ? round1(u.at - started - at) : null,
      silenceMs: u ? round1(u.silenceMs) : null,
      boundSilenceMs: bound === null ? null : round1(bound),
      withinBounds:
        !!u && bound !== null && u.silenceMs <= bound + 1e-6 && u.silenceMs <= config.heartbeat.hostDeadAfterMs,
    };
  });
  // Any suspicion of a host that was alive at the time, killed hosts before their kill included.
  const falsely = events.filter(
    (e) => e.type !== "healed" && e.at - started < (killAt.get(e.hostId) ?? Number.POSITIVE_INFINITY),
  );
  const b = cluster.beats;
  const t = cluster.timers;
  const seconds = totalMs / 1000;
  return {
    hosts: o.hosts,
    simulatedMs: totalMs,
    wallMs: Math.round(wallMs),
    heartbeats: b.count,
    usPerHeartbeat: round1((b.ms * 1000) / Math.max(1, b.count)),
    usPerCheck: round1((t.checkMs * 1000) / Math.max(1, t.checks)),
    checks: t.checks,
    coreShare: Math.round(((b.ms + t.checkMs) / 1000 / seconds) * 1000) / 1000,
    hostUsPerBeat: round1((t.hostMs * 1000) / Math.max(1, t.hostBeats)),
    heartbeatBytes: { mean: Math.round(b.bytes / Math.max(1, b.count)), min: b.minBytes, max: b.maxBytes },
    fanIn: { messagesPerSec: Math.round(b.count / seconds), bytesPerSec: Math.round(b.bytes / seconds) },
    killed,
    falseSuspicions: falsely.length,
    falselySuspected: [...new Set(falsely.map((e) => e.hostId))],
    forgotten: cluster.forgotten,
    heldPerHost,
    heapBytesPerHost,
  };
}

/** Silence at which the host's phi reaches `phi`, from its detector as it is now (0.5 ms steps, up to a minute). */
function crossing(cluster: SimCluster, e: LivenessEvent, phi: number): number {
  for (let s = 0; s <= 60_000; s += 0.5) {
    if ((cluster.registry.detector.phi(e.hostId, e.lastHeartbeatAt + s) ?? 0) >= phi) return s;
  }
  return Number.POSITIVE_INFINITY;
}

function pick(cluster: SimCluster, n: number): SimHost[] {
  const pool = [...cluster.hosts];
  const out: SimHost[] = [];
  while (out.length < n && pool.length > 0)
    out.push(pool.splice(Math.floor(cluster.rng() * pool.length), 1)[0] as SimHost);
  return out;
}

const round1 = (v: number): number => Math.round(v * 10) / 10;
