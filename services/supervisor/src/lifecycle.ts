/**
 * The lifecycle of actors, teams and hosts, as Orleans and Dapr deactivate idle actors and
 * Kubernetes cordons and drains nodes.
 *
 * The active supervisor sweeps every `lifecycle.sweepMs`. For each kind of each team on record
 * it reads the kind's consumer: tasks waiting or delivered and not yet acknowledged are its
 * *demand*.
 * - A kind with demand and no live actor is placed (after a passivation, or a preemption that
 *   took its only actor). At the cluster's limit, idle actors (of kinds without demand, any
 *   team) are passivated to make the room: capacity goes to work that exists.
 * - A kind without demand for `lifecycle.passivateAfterMs` has its actors passivated: stopped
 *   on their hosts (a checkpoint of what each knew is kept) and forgotten; work arriving later
 *   places the kind again.
 * - A team with no actors and no demand for `session_timeout_hours` is forgotten with its
 *   consumers.
 * Hosts can be cordoned (no new actors; `cordon.<hostId>` in the registry, followed by a
 * watch so a standby knows) and drained (cordoned, then its actors replaced elsewhere and
 * retired: the task each held goes back to the queue and is taken by the replacement).
 */

import {
  type ActorRecord,
  type Config,
  type Heartbeat,
  NotFoundError,
  type OpReply,
  type OpRequest,
  ResourceExhaustedError,
  STREAMS,
  type TypedEvent,
  taskConsumer,
} from "@cadre/protocol";
import { type Clock, call, type Liveness, type Logger, type NatsConnection } from "@cadre/runtime";
import type { JetStreamManager } from "@nats-io/jetstream";
import type { KV } from "@nats-io/kv";
import type { Placer } from "./placer.js";
import type { Registry } from "./registry.js";

/** Dependencies of {@link Lifecycle}. */
export interface LifecycleDeps {
  nc: NatsConnection;
  jsm: JetStreamManager;
  kv: KV;
  config: Config;
  clock: Clock;
  logger: Logger;
  sender: string;
  registry: Registry;
  placer: Placer;
  emit: (event: TypedEvent) => void;
  /** Liveness state of a host from the failure detector (undefined: never heard from). */
  hostState: (hostId: string) => Liveness | undefined;
}

/** Why an actor is stopped: the event that says so and what it adds to the actor's fields. */
type ActorStop =
  | ["ACTOR_PASSIVATED", { idleMs: number } | { reason: string; forTeam: string }]
  | ["ACTOR_RETIRED", { reason: string }];

const cordonKey = (hostId: string) => `cordon.${hostId}`;

/** Passivation, demand placement, team retirement, cordon and drain. */
export class Lifecycle {
  private readonly cordoned = new Set<string>();
  /** When each `<team>/<kind>` last had demand (this supervisor's view; reset at activation). */
  private readonly lastDemand = new Map<string, number>();
  /** Each `<team>/<kind>`'s demand at the last sweep. */
  private readonly demandNow = new Map<string, number>();
  private readonly beats = new Map<string, Heartbeat>();
  private timer: unknown;
  private sweeping = false;
  private watch?: { stop(): void };

  constructor(private readonly d: LifecycleDeps) {}

  /** Follows the cordoned hosts (every supervisor). */
  async follow(): Promise<void> {
    const w = await this.d.kv.watch({ key: cordonKey("*") });
    this.watch = w;
    void (async () => {
      for await (const e of w) {
        const id = e.key.slice(cordonKey("").length);
        if (e.operation === "PUT") this.cordoned.add(id);
        else this.cordoned.delete(id);
      }
    })().catch((err) => this.d.logger.error({ err }, "cordon watch stopped"));
  }

  isCordoned(hostId: string): boolean {
    return this.cordoned.has(hostId);
  }

  /** The latest heartbeat of each host (for `host list`). */
  heard(hb: Heartbeat): void {
    this.beats.set(hb.hostId, hb);
  }

  /** The registry forgot the host (registry.ts prune): its last heartbeat goes too. */
  forget(hostId: string): void {
    this.beats.delete(hostId);
  }

  /** Starts sweeping (the active supervisor). Every kind's idle time counts from now. */
  start(): void {
    this.lastDemand.clear();
    this.demandNow.clear();
    const tick = () => {
      this.timer = this.d.clock.setTimeout(() => {
        void this.sweep()
          .catch((err) => this.d.logger.warn({ err }, "lifecycle sweep failed; will try again"))
          .finally(tick);
      }, this.d.config.lifecycle.sweepMs);
    };
    tick();
  }

  /** Stops sweeping (the supervisor stood by); the cordons are still followed. */
  stop(): void {
    this.d.clock.clearTimeout(this.timer);
    this.timer = undefined;
  }

  /** Stops following the cordons too (the supervisor stops). */
  close(): void {
    this.stop();
    this.watch?.stop();
  }

  /** One sweep (exposed for tests). */
  async sweep(): Promise<void> {
    if (this.sweeping) return;
    this.sweeping = true;
    try {
      const now = this.d.clock.now();
      const sessionMs = this.d.config.orchestration_limits.session_timeout_hours * 3_600_000;
      for (const tid of await this.d.registry.teamIds()) {
        const team = await this.d.registry.team(tid);
        if (!team) continue;
        let teamIdleSince = 0;
        for (const kind of Object.keys(team.kinds)) {
          const key = `${tid}/${kind}`;
          const demand = await this.demandOf(tid, kind);
          this.demandNow.set(key, demand);
          if (!this.lastDemand.has(key) || demand > 0) this.lastDemand.set(key, now);
          const since = this.lastDemand.get(key) ?? now;
          teamIdleSince = Math.max(teamIdleSince, since);
          const actors = this.d.registry.actorsOf(tid, kind).filter((a) => a.status === "active");
          if (demand > 0 && this.d.placer.liveOf(tid, kind) === 0) {
            await this.placeForDemand(tid, kind).catch((err) =>
              this.d.logger.info(
                { err, teamId: tid, kind },
                "kind with queued work not placed yet; next sweep tries again",
              ),
            );
          } else if (demand === 0 && actors.length > 0 && now - since >= this.d.config.lifecycle.passivateAfterMs) {
            for (const a of actors) await this.stopActor(a, "ACTOR_PASSIVATED", { idleMs: now - since });
            this.d.placer.forget(tid);
          }
        }
        const hasActors = this.d.registry.allActors().some((a) => a.teamId === tid);
        if (!hasActors && now - teamIdleSince >= sessionMs) await this.forgetTeam(tid, "TEAM_FORGOTTEN");
      }
    } finally {
      this.sweeping = false;
    }
  }

  /** Tasks of a kind waiting or being worked on. */
  private async demandOf(tid: string, kind: string): Promise<number> {
    try {
      const info = await this.d.jsm.consumers.info(STREAMS.tasks, taskConsumer(tid, kind));
      return info.num_pending + info.num_ack_pending;
    } catch {
      return 0; // No consumer (yet, or any more): nothing can be waiting on it.
    }
  }

  /** Places a kind with queued work (at the cluster's limit, idle actors make room: see reclaimIdle). */
  private async placeForDemand(tid: string, kind: string): Promise<void> {
    const team = await this.d.registry.team(tid);
    if (team) await this.d.placer.ensurePlaced(tid, team, true, [kind]);
  }

  /**
   * Passivates up to `need` idle actors, of kinds that had no demand at the last sweep, longest
   * idle first, never of `forTeam`: capacity goes to work that exists. Returns how many went.
   */
  async reclaimIdle(need: number, forTeam: string): Promise<number> {
    const idle = this.d.registry
      .allActors()
      .filter(
        (a) => a.status === "active" && a.teamId !== forTeam && this.demandNow.get(`${a.teamId}/${a.kindName}`) === 0,
      )
      .sort(
        (a, b) =>
          (this.lastDemand.get(`${a.teamId}/${a.kindName}`) ?? 0) -
          (this.lastDemand.get(`${b.teamId}/${b.kindName}`) ?? 0),
      )
      .slice(0, need);
    for (const a of idle) {
      await this.stopActor(a, "ACTOR_PASSIVATED", { reason: "room for queued work", forTeam });
      this.d.placer.forget(a.teamId);
    }
    return idle.length;
  }

  /** Stops an actor on its host (if it answers) and forgets it; its checkpoint is kept. */
  private async stopActor(a: ActorRecord, ...[type, why]: ActorStop): Promise<string | undefined> {
    let requeued: string | undefined;
    if (this.d.registry.isActorLive(a)) {
      const reply = await call(
        this.d.nc,
        "host.actor",
        { op: "retire", actorId: a.actorId },
        { sender: this.d.sender, hostId: a.hostId, timeoutMs: this.d.config.requestTimeoutMs },
      );
      if (reply.context) await this.d.registry.putCheckpoint(a.actorId, reply.context);
      requeued = reply.requeued;
    }
    await this.d.registry.removeActor(a.actorId);
    const data = {
      actorId: a.actorId,
      hostId: a.hostId,
      teamId: a.teamId,
      kind: a.kindName,
      requeued: requeued ?? null,
    };
    const scope = a.actorId;
    // One branch per type, so each event's data is checked against its own row of the table.
    this.d.emit(
      type === "ACTOR_RETIRED"
        ? { type, category: "actor", scope, data: { ...data, ...why } }
        : { type, category: "actor", scope, data: { ...data, ...why } },
    );
    return requeued;
  }

  private async forgetTeam(tid: string, type: "TEAM_FORGOTTEN" | "TEAM_RETIRED"): Promise<string[]> {
    const stopped: string[] = [];
    for (const a of this.d.registry.allActors().filter((x) => x.teamId === tid)) {
      await this.stopActor(a, "ACTOR_RETIRED", { reason: "team retired" });
      stopped.push(a.actorId);
    }
    const team = await this.d.registry.team(tid);
    for (const kind of Object.keys(team?.kinds ?? {})) {
      await this.d.jsm.consumers.delete(STREAMS.tasks, taskConsumer(tid, kind)).catch(() => false);
      this.lastDemand.delete(`${tid}/${kind}`);
      this.demandNow.delete(`${tid}/${kind}`);
    }
    await this.d.registry.removeTeam(tid);
    this.d.placer.forget(tid);
    this.d.emit({
      type,
      category: "team",
      scope: tid,
      data: { teamId: tid, name: team?.name ?? null, actors: stopped.length },
    });
    return stopped;
  }

  // --- operations ------------------------------------------------------------------------

  async teamList(running: ReadonlyMap<string, number>): Promise<OpReply<"sup.team.list">> {
    const teams = [];
    for (const tid of await this.d.registry.teamIds()) {
      const team = await this.d.registry.team(tid);
      if (!team) continue;
      const kinds = Object.keys(team.kinds);
      const last = Math.max(0, ...kinds.map((k) => this.lastDemand.get(`${tid}/${k}`) ?? 0));
      teams.push({
        teamId: tid,
        name: team.name,
        priority: team.priority,
        kinds,
        actors: this.d.registry.allActors().filter((a) => a.teamId === tid).length,
        running: running.get(tid) ?? 0,
        lastActiveAt: last > 0 ? last : null,
      });
    }
    return { teams };
  }

  async teamRetire(
    { teamId, force }: OpRequest<"sup.team.retire">,
    running: number,
  ): Promise<OpReply<"sup.team.retire">> {
    if (!(await this.d.registry.team(teamId))) throw new NotFoundError("team", teamId);
    if (running > 0 && !force) {
      throw new ResourceExhaustedError(`running workflows of team ${teamId}`, 0, running, {
        retryable: false,
        fix: "cancel them first, or retire with --force (their tasks then wait for actors that never come back)",
      });
    }
    return { teamId, actors: await this.forgetTeam(teamId, "TEAM_RETIRED") };
  }

  actorList({ teamId, hostId }: OpRequest<"sup.actor.list">): OpReply<"sup.actor.list"> {
    return {
      actors: this.d.registry
        .allActors()
        .filter((a) => (!teamId || a.teamId === teamId) && (!hostId || a.hostId === hostId)),
    };
  }

  async actorRetire({ actorId }: OpRequest<"sup.actor.retire">): Promise<OpReply<"sup.actor.retire">> {
    const a = this.d.registry.actor(actorId);
    if (!a) throw new NotFoundError("actor", actorId);
    const requeued = await this.stopActor(a, "ACTOR_RETIRED", { reason: "operator" });
    this.d.placer.forget(a.teamId);
    return { actorId, ...(requeued ? { requeued } : {}) };
  }

  async hostList(): Promise<OpReply<"sup.host.list">> {
    const hosts = [];
    for (const h of this.d.registry.seenHosts()) hosts.push(await this.summary(h.hostId));
    return { hosts };
  }

  async cordon({ hostId, cordoned }: OpRequest<"sup.host.cordon">): Promise<OpReply<"sup.host.cordon">> {
    if (!(await this.d.registry.hostRecord(hostId))) throw new NotFoundError("agent-host", hostId);
    if (cordoned) {
      await this.d.kv.put(cordonKey(hostId), JSON.stringify({ by: this.d.sender, at: this.d.clock.now() }));
      this.cordoned.add(hostId);
    } else {
      await this.d.kv.delete(cordonKey(hostId));
      this.cordoned.delete(hostId);
    }
    this.d.emit({
      type: cordoned ? "HOST_CORDONED" : "HOST_UNCORDONED",
      category: "host",
      scope: hostId,
      data: { hostId },
    });
    return this.summary(hostId);
  }

  /** Cordons the host, places replacements of its actors elsewhere, then retires them. */
  async drain({ hostId }: OpRequest<"sup.host.drain">): Promise<OpReply<"sup.host.drain">> {
    await this.cordon({ hostId, cordoned: true });
    const leaving = this.d.registry.allActors().filter((a) => a.hostId === hostId);
    const before = new Set(this.d.registry.allActors().map((a) => a.actorId));
    // Forgotten first, so placement counts them missing and puts replacements on other hosts.
    for (const a of leaving) await this.d.registry.removeActor(a.actorId);
    for (const tid of new Set(leaving.map((a) => a.teamId))) {
      const team = await this.d.registry.team(tid);
      const kinds = [...new Set(leaving.filter((a) => a.teamId === tid).map((a) => a.kindName))];
      if (team) await this.d.placer.ensurePlaced(tid, team, true, kinds);
    }
    const added = this.d.registry.allActors().filter((a) => !before.has(a.actorId));
    const moved: { from: string; to: string }[] = [];
    const requeued: string[] = [];
    for (const a of leaving) {
      const to = added.find(
        (x) => x.teamId === a.teamId && x.kindName === a.kindName && !moved.some((m) => m.to === x.actorId),
      );
      if (to) moved.push({ from: a.actorId, to: to.actorId });
      const reply = await call(
        this.d.nc,
        "host.actor",
        { op: "retire", actorId: a.actorId },
        { sender: this.d.sender, hostId, timeoutMs: this.d.config.requestTimeoutMs },
      ).catch((err) => {
        this.d.logger.warn(
          { err, actorId: a.actorId },
          "drained actor did not answer; its task comes back after its ack wait",
        );
        return undefined;
      });
      if (reply?.context) await this.d.registry.putCheckpoint(a.actorId, reply.context);
      if (reply?.requeued) requeued.push(reply.requeued);
    }
    this.d.emit({
      type: "HOST_DRAINED",
      category: "host",
      scope: hostId,
      data: { hostId, moved: moved.length, requeued: requeued.length },
    });
    return { hostId, moved, requeued };
  }

  private async summary(hostId: string): Promise<OpReply<"sup.host.cordon">> {
    const seen = this.d.registry.seenHosts().find((h) => h.hostId === hostId);
    const rec = await this.d.registry.hostRecord(hostId);
    const hb = this.beats.get(hostId);
    return {
      hostId,
      incarnation: seen?.incarnation ?? rec?.incarnation ?? "unknown",
      state: seen ? summaryState(this.d.hostState(hostId)) : "unknown",
      lastHeartbeatAt: seen?.lastSeen ?? null,
      actors: hb?.actors ?? seen?.actors ?? 0,
      busy: hb?.busy ?? seen?.busy ?? 0,
      maxActors: rec?.maxActors ?? 1,
      load: hb?.load ?? 0,
      ...(hb?.heapUsedMb !== undefined ? { heapUsedMb: hb.heapUsedMb } : {}),
      cordoned: this.cordoned.has(hostId),
      circuits: hb?.circuits ?? {},
    };
  }
}

/** The detector's word for a host's state, in the host summary's terms (`suspected` is `suspect` there). */
function summaryState(s: Liveness | undefined): OpReply<"sup.host.list">["hosts"][number]["state"] {
  return s === "suspected" ? "suspect" : (s ?? "unknown");
}
