/**
 * Placement: which live host gets each new actor. Replicas of one kind go to distinct hosts
 * first (so losing a host never loses a kind), then to the least loaded host.
 */

/** A host that can take actors. */
export interface PlacementHost {
  hostId: string;
  /** Actors it runs now. */
  actors: number;
  maxActors: number;
}

/**
 * Chooses hosts for `count` new actors of one kind. `kindHosts` counts the actors of this kind
 * each host already runs. Returns host ids, one per new actor; fewer if every host is full.
 */
export function placeReplicas(
  hosts: readonly PlacementHost[],
  kindHosts: ReadonlyMap<string, number>,
  count: number,
): string[] {
  const load = new Map(hosts.map((h) => [h.hostId, h.actors]));
  const ofKind = new Map(kindHosts);
  const chosen: string[] = [];
  for (let i = 0; i < count; i++) {
    const candidates = hosts.filter((h) => (load.get(h.hostId) ?? 0) < h.maxActors);
    if (candidates.length === 0) break;
    candidates.sort(
      (a, b) =>
        (ofKind.get(a.hostId) ?? 0) - (ofKind.get(b.hostId) ?? 0) ||
        (load.get(a.hostId) ?? 0) - (load.get(b.hostId) ?? 0) ||
        a.hostId.localeCompare(b.hostId),
    );
    const pick = candidates[0] as PlacementHost;
    chosen.push(pick.hostId);
    load.set(pick.hostId, (load.get(pick.hostId) ?? 0) + 1);
    ofKind.set(pick.hostId, (ofKind.get(pick.hostId) ?? 0) + 1);
  }
  return chosen;
}
