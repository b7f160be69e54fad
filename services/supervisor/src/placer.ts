/**
 * Placement: which host runs which actors. A team's kinds get their JetStream consumers and
 * `replicas` live actors each, spread over the live hosts with room (placement.ts), never on a
 * cordoned host or one whose spawn circuit is open while others can take the share. Quotas
 * (quota.ts) refuse past a team's own limit and, at the cluster's, preempt lower-priority
 * actors, sparing the actors reserved for guaranteed workflows.
 */

import {
  type ActorSpec,
  type Config,
  ResourceExhaustedError,
  randomId,
  STREAMS,
  subjects,
  type Team,
  type TypedEvent,
  taskConsumer,
  UnavailableError,
} from "@cadre/protocol";
import { type Breakers, type Clock, call, type Logger, type NatsConnection } from "@cadre/runtime";
import { AckPolicy, type JetStreamManager } from "@nats-io/jetstream";
import { placeReplicas } from "./placement.js";
import type { Quarantine } from "./quarantine.js";
import { planSpawn, type QuotaActor } from "./quota.js";
import type { Registry } from "./registry.js";

const nanos = (ms: number): number => ms * 1_000_000;

/** Dependencies of the {@link Placer}. */
export interface PlacerDeps {
  nc: NatsConnection;
  jsm: JetStreamManager;
  config: Config;
  clock: Clock;
  logger: Logger;
  sender: string;
  registry: Registry;
  breakers: Breakers;
  quarantine: () => Quarantine;
  emit: (event: TypedEvent) => void;
  /** Whether a host is cordoned (no new actors). */
  cordoned: (hostId: string) => boolean;
  /** Actors reserved per team by guaranteed workflows (spared by preemption). */
  guarantees: () => Map<string, number>;
  /**
   * At the cluster's limit: passivates up to `need` idle actors (kinds without demand, of any
   * team but `forTeam`) and says how many went (lifecycle.ts).
   */
  reclaimIdle: (need: number, forTeam: string) => Promise<number>;
}

/** Places actors; one placement at a time per team. */
export class Placer {
  private readonly placing = new Map<string, Promise<void>>();
  private readonly placed = new Set<string>();

  constructor(private readonly d: PlacerDeps) {}

  /**
   * Makes sure each kind of the team (or only `kinds`) has its consumer and `replicas` live
   * actors. Once the whole team is placed it is checked again only when forced (the repair and
   * lifecycle sweeps, a replacement after quarantine).
   */
  ensurePlaced(tid: string, team: Team, force = false, kinds?: string[]): Promise<void> {
    if (!force && this.placed.has(tid)) return Promise.resolve();
    const prev = this.placing.get(tid) ?? Promise.resolve();
    const next = prev
      .catch(() => {})
      .then(() => this.place(tid, team, kinds))
      .then(() => {
        if (!kinds) this.placed.add(tid);
      });
    this.placing.set(tid, next);
    void next
      .finally(() => {
        if (this.placing.get(tid) === next) this.placing.delete(tid);
      })
      .catch(() => {});
    return next;
  }

  /** Places a kind that has work but no live actor, in the background. */
  demand(tid: string, team: Team, kind: string): void {
    if (this.liveOf(tid, kind) > 0) return;
    this.ensurePlaced(tid, team, true, [kind]).catch((err) =>
      this.d.logger.info(
        { err, teamId: tid, kind },
        "kind with queued work not placed yet; the lifecycle sweep tries again",
      ),
    );
  }

  /** Live, active actors of a kind. */
  liveOf(tid: string, kind: string): number {
    return this.d.registry.actorsOf(tid, kind).filter((a) => a.status === "active" && this.d.registry.isActorLive(a))
      .length;
  }

  /** A team (some of whose actors were passivated or retired) is placed in full at its next submit. */
  forget(tid: string): void {
    this.placed.delete(tid);
  }

  /** Forgets every placement (this supervisor stood by). */
  clear(): void {
    this.placed.clear();
  }

  /**
   * Places the team's missing actors. Nothing is written before the placement is known to be
   * possible: hosts are chosen and the quotas checked first (a refusal leaves no consumer and no
   * team record behind); then, for a team seen for the first time, its record; its consumers
   * (so the hosts find them when their actors start: host.ts refuses a spawn for a kind that has
   * none); preemptions; and the spawns. If that fails for a new team before any of its actors
   * started, its consumers and record are removed again. (A host's spawn is all or none; once
   * some actors run, the team exists, and the repair sweep or the next submit places the rest.)
   */
  private async place(tid: string, team: Team, only?: string[]): Promise<void> {
    const known = (await this.d.registry.team(tid)) !== undefined;
    const plan = await this.plan(tid, team, only);
    if (!known) await this.d.registry.putTeam(tid, team);
    const consumers: string[] = [];
    const spawned: string[] = [];
    try {
      for (const [kindName, kind] of Object.entries(team.kinds)) {
        await this.d.jsm.consumers.add(STREAMS.tasks, {
          durable_name: taskConsumer(tid, kindName),
          ack_policy: AckPolicy.Explicit,
          ack_wait: nanos(this.d.config.tasks.ackWaitMs),
          // A kind's own retry attempts, or the cluster's.
          max_deliver: kind.retry?.attempts ?? this.d.config.tasks.maxDeliver,
          filter_subject: subjects.task(tid, kindName),
        });
        consumers.push(kindName);
      }
      for (const v of plan.victims)
        await this.d.quarantine().preempt(v.actorId, { teamId: tid, priority: team.priority });
      const outcomes = await Promise.allSettled(
        [...plan.byHost].map(async ([hostId, actors]) => {
          await this.spawnOn(hostId, plan.incarnations.get(hostId), actors, team.priority);
          spawned.push(...actors.map((a) => a.actorId));
        }),
      );
      const failed = outcomes.find((o): o is PromiseRejectedResult => o.status === "rejected");
      if (failed) throw failed.reason;
    } catch (err) {
      if (!known && spawned.length === 0) await this.rollBack(tid, consumers);
      throw err;
    }
  }

  /**
   * Which hosts get the team's missing actors, and whom the quotas preempt for them. Writes
   * nothing: throws UNAVAILABLE (no host can take them) or RESOURCE_EXHAUSTED (a quota) first.
   * At the cluster's limit, idle actors of other teams are passivated to make room.
   */
  private async plan(
    tid: string,
    team: Team,
    only?: string[],
  ): Promise<{ byHost: Map<string, ActorSpec[]>; incarnations: Map<string, string>; victims: QuotaActor[] }> {
    const alive = (await this.d.registry.liveHosts()).filter((h) => !this.d.cordoned(h.hostId));
    if (alive.length === 0) {
      throw new UnavailableError(
        "no agent-host is alive and uncordoned; start one (cadre-agent-host) or uncordon one, and submit again",
      );
    }
    // A host whose spawn circuit is open is skipped while others can take its share.
    const reachable = alive.filter((h) => !this.d.breakers.isOpen("agent_spawn", h.hostId));
    const hosts = reachable.length > 0 ? reachable : alive;
    const byHost = new Map<string, ActorSpec[]>();
    const incarnations = new Map(hosts.map((h) => [h.hostId, h.incarnation]));
    const load = hosts.map((h) => ({ hostId: h.hostId, actors: h.actors, maxActors: h.maxActors }));
    for (const [kindName, kind] of Object.entries(team.kinds)) {
      if (only && !only.includes(kindName)) continue;
      // A quarantined actor is not a replica: its replacement is.
      const live = this.d.registry
        .actorsOf(tid, kindName)
        .filter((a) => a.status === "active" && this.d.registry.isActorLive(a));
      const need = kind.replicas - live.length;
      if (need <= 0) continue;
      const kindHosts = new Map<string, number>();
      for (const a of live) kindHosts.set(a.hostId, (kindHosts.get(a.hostId) ?? 0) + 1);
      const allowed = kind.hosts ? load.filter((h) => kind.hosts?.includes(h.hostId)) : load;
      const chosen = placeReplicas(allowed, kindHosts, need);
      if (chosen.length === 0 && live.length === 0) {
        throw new UnavailableError(
          `no live agent-host can take actors of kind "${kindName}"${kind.hosts ? ` (allowed hosts: ${kind.hosts.join(", ")})` : ""}; start one or free capacity`,
        );
      }
      for (const hostId of chosen) {
        const spec: ActorSpec = { actorId: `${kindName}-${randomId(8)}`, teamId: tid, kindName, kind };
        byHost.set(hostId, [...(byHost.get(hostId) ?? []), spec]);
        const h = load.find((x) => x.hostId === hostId);
        if (h) h.actors++;
      }
    }
    // Quotas: refused past the team's own limit; at the cluster's, lower-priority actors make room.
    const limits = this.d.config.orchestration_limits;
    const need = [...byHost.values()].reduce((n, a) => n + a.length, 0);
    const plan = () =>
      planSpawn({
        teamId: tid,
        priority: team.priority,
        need,
        actors: this.d.registry.allActors().filter((a) => a.status === "active" && this.d.registry.isActorLive(a)),
        maxPerTeam: limits.max_agents_per_orchestrator,
        maxGlobal: limits.max_concurrent_agents,
        reserved: this.d.guarantees(),
      });
    let victims: QuotaActor[];
    try {
      victims = plan();
    } catch (err) {
      // The cluster is full: idle actors (no work queued for their kind) make room first.
      if (
        !(err instanceof ResourceExhaustedError) ||
        err.data.resource === undefined ||
        !String(err.data.resource).includes("max_concurrent_agents")
      )
        throw err;
      if ((await this.d.reclaimIdle(need, tid)) === 0) throw err;
      victims = plan();
    }
    return { byHost, incarnations, victims };
  }

  /**
   * The first placement of a new team failed and none of its actors started: its consumers are
   * deleted and its record removed, so a refused submit leaves nothing behind.
   */
  private async rollBack(tid: string, kinds: string[]): Promise<void> {
    for (const kind of kinds) {
      await this.d.jsm.consumers.delete(STREAMS.tasks, taskConsumer(tid, kind)).catch(() => false);
    }
    await this.d.registry
      .removeTeam(tid)
      .catch((err) => this.d.logger.warn({ err, teamId: tid }, "record of a refused team not removed"));
    this.d.logger.info({ teamId: tid, consumers: kinds.length }, "refused new team rolled back");
  }

  /** Asks a host to start actors and records them (with what a replacement inherited). */
  async spawnOn(hostId: string, incarnation: string | undefined, actors: ActorSpec[], priority: number): Promise<void> {
    // One breaker per host: a host whose control endpoint keeps failing is left out of placement
    // (see place) until a trial spawn succeeds, and the others are not held up by it.
    await this.d.breakers
      .get("agent_spawn", hostId)
      .call(() =>
        call(
          this.d.nc,
          "host.spawn",
          { actors },
          { sender: this.d.sender, hostId, timeoutMs: this.d.config.requestTimeoutMs },
        ),
      );
    const now = this.d.clock.now();
    for (const a of actors) {
      await this.d.registry.putActor({
        actorId: a.actorId,
        teamId: a.teamId,
        kindName: a.kindName,
        hostId,
        incarnation: incarnation ?? "",
        spawnedAt: now,
        priority,
        status: "active",
        ...(a.inherit ? { replaces: a.inherit.fromActorId } : {}),
      });
      this.d.emit({
        type: "ACTOR_SPAWNED",
        category: "actor",
        scope: a.actorId,
        data: {
          hostId,
          teamId: a.teamId,
          kind: a.kindName,
          ...(a.inherit ? { replaces: a.inherit.fromActorId, inheritedTasks: a.inherit.history.length } : {}),
        },
      });
    }
  }

  /** Re-places actors that were on hosts that stopped sending heartbeats. */
  async repair(startedAt: number): Promise<void> {
    // Right after a start, silence only means heartbeats have not arrived yet.
    if (this.d.clock.now() - startedAt < this.d.config.heartbeat.hostDeadAfterMs * 2) return;
    const dead = this.d.registry.deadActors();
    if (dead.length === 0) return;
    const teams = new Set(dead.map((a) => a.teamId));
    const kinds = new Map<string, Set<string>>();
    for (const a of dead) {
      await this.d.registry.removeActor(a.actorId);
      kinds.set(a.teamId, (kinds.get(a.teamId) ?? new Set()).add(a.kindName));
      this.d.emit({
        type: "ACTOR_LOST",
        category: "actor",
        scope: a.actorId,
        data: { hostId: a.hostId, kind: a.kindName, teamId: a.teamId },
      });
    }
    for (const tid of teams) {
      const team = await this.d.registry.team(tid);
      if (!team) continue;
      try {
        // Only the kinds that lost actors: a passivated kind stays passivated.
        await this.ensurePlaced(tid, team, true, [...(kinds.get(tid) ?? [])]);
      } catch (err) {
        this.d.logger.warn({ err, teamId: tid }, "could not re-place actors yet");
      }
    }
  }
}
