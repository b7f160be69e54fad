/**
 * Where one team's placement spends its time, measured on the registry as the placement phase
 * left it (every placed actor known): the parts `Placer.plan` runs per team, each timed alone
 * with the supervisor's own code. `liveHosts` reads every live host's record (one KV get each,
 * in turn); the scans walk every actor record the registry holds (`actorsOf` once per kind, the
 * quota's `planSpawn` over `allActors` filtered by liveness once per team); `placeReplicas`
 * sorts the hosts with room once per replica.
 */

import type { PlacementHost } from "../../services/supervisor/src/placement.js";
import type { SimCluster } from "./cluster.js";
import type { Internals } from "./internals.js";

/** Microseconds each part takes, at `actors` actors on `hosts` hosts. */
export interface ComponentTimes {
  actors: number;
  hosts: number;
  /** One `registry.liveHosts()` call (the KV gets are in-memory here). */
  liveHostsUs: number;
  /** `actorsOf` for each of the team's kinds plus the quota's `planSpawn` over the live actors, per team. */
  scansUs: number;
  /** `placeReplicas` for each kind of one team (its replicas), per team. */
  placeReplicasUs: number;
}

const timed = async (reps: number, fn: () => unknown): Promise<number> => {
  await fn();
  const t = performance.now();
  for (let i = 0; i < reps; i++) await fn();
  return Math.round(((performance.now() - t) * 1000) / reps);
};

/** Times the parts for one team of kinds `kinds` with `replicas` each. */
export async function timeComponents(
  x: Internals,
  cluster: SimCluster,
  tid: string,
  kinds: string[],
  replicas: number,
): Promise<ComponentTimes> {
  const { registry } = cluster;
  const hosts: PlacementHost[] = cluster.hosts
    .filter((h) => h.alive)
    .map((h) => ({ hostId: h.hostId, actors: h.actors, maxActors: h.maxActors }));
  const liveHostsUs = await timed(5, () => registry.liveHosts());
  const limits = cluster.config.orchestration_limits;
  const scansUs = await timed(5, () => {
    for (const k of kinds) registry.actorsOf(tid, k).filter((a) => a.status === "active" && registry.isActorLive(a));
    return x.planSpawn({
      teamId: tid,
      priority: 0,
      need: kinds.length * replicas,
      actors: registry.allActors().filter((a) => a.status === "active" && registry.isActorLive(a)),
      maxPerTeam: limits.max_agents_per_orchestrator,
      // Room for one more team: the path of a placement that fits.
      maxGlobal: Math.max(limits.max_concurrent_agents, registry.allActors().length + kinds.length * replicas),
      reserved: new Map(),
    });
  });
  const placeReplicasUs = await timed(20, () => {
    for (const _ of kinds) x.placeReplicas(hosts, new Map(), replicas);
  });
  return { actors: registry.allActors().length, hosts: hosts.length, liveHostsUs, scansUs, placeReplicasUs };
}
