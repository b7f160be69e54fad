/**
 * Quotas on actors (the seed's limits): `max_agents_per_orchestrator` per team (a team is one
 * orchestrator's agents) and `max_concurrent_agents` over the whole cluster. Placing a team's
 * actors past its own limit fails; at the cluster's limit, actors of lower-priority teams are
 * preempted to make room (lowest priority first, then the youngest), never an actor of equal or
 * higher priority. Quarantined actors count against neither: they take no work. A guarantee
 * (`reserved`) holds capacity for a team: up to that many of its actors are spared, whatever
 * the priority of the team asking, and the part of it the team has not filled yet is not
 * handed to others.
 */

import { ResourceExhaustedError } from "@cadre/protocol";

/** An actor as the quota sees it. */
export interface QuotaActor {
  actorId: string;
  teamId: string;
  priority: number;
  spawnedAt: number;
}

/** What placing `need` more actors for a team asks of the quota. */
export interface QuotaRequest {
  teamId: string;
  priority: number;
  need: number;
  /** Every live, active actor in the cluster. */
  actors: readonly QuotaActor[];
  maxPerTeam: number;
  maxGlobal: number;
  /**
   * Actors reserved per team by its guaranteed workflows (`cadre workflow limit --guarantee`):
   * that many of the team's actors are never preempted, and other teams may not take the room
   * the team has yet to fill. @default none
   */
  reserved?: ReadonlyMap<string, number>;
}

/**
 * The actors to preempt so that `need` more fit (none when there is room). Throws
 * RESOURCE_EXHAUSTED (not retryable: waiting does not free actors) with the limit and the count
 * when the team's own limit would be passed, or when too few lower-priority actors exist.
 */
export function planSpawn(r: QuotaRequest): QuotaActor[] {
  if (r.need <= 0) return [];
  const mine = r.actors.filter((a) => a.teamId === r.teamId).length;
  if (mine + r.need > r.maxPerTeam) {
    throw new ResourceExhaustedError(
      `agents of team ${r.teamId} (max_agents_per_orchestrator, ${r.need} more wanted)`,
      r.maxPerTeam,
      mine,
      { retryable: false, fix: "lower the team's replicas or raise max_agents_per_orchestrator" },
    );
  }
  // Room held for other teams' guarantees that they have not filled yet.
  let held = 0;
  const spared = new Set<string>();
  for (const [team, n] of r.reserved ?? []) {
    const theirs = r.actors.filter((a) => a.teamId === team).sort((a, b) => a.spawnedAt - b.spawnedAt);
    for (const a of theirs.slice(0, n)) spared.add(a.actorId);
    if (team !== r.teamId) held += Math.max(0, n - theirs.length);
  }
  const over = r.actors.length + held + r.need - r.maxGlobal;
  if (over <= 0) return [];
  const lower = r.actors
    .filter((a) => a.priority < r.priority && !spared.has(a.actorId))
    .sort((a, b) => a.priority - b.priority || b.spawnedAt - a.spawnedAt || (a.actorId < b.actorId ? 1 : -1));
  if (lower.length < over) {
    throw new ResourceExhaustedError(
      `concurrent agents (max_concurrent_agents, ${r.need} more wanted at priority ${r.priority})`,
      r.maxGlobal,
      r.actors.length,
      {
        retryable: false,
        fix: `only ${lower.length} belong to lower-priority teams and could be preempted${spared.size > 0 ? ` (${spared.size} are reserved by guarantees)` : ""}; raise max_concurrent_agents, retire actors, or give the team a higher priority`,
      },
    );
  }
  return lower.slice(0, over);
}
