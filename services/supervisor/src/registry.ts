/**
 * The registry: which hosts are alive (from their heartbeats), which actors run where (KV,
 * so a restarted supervisor knows), and the teams actors were spawned for.
 *
 * Hosts are remembered from their heartbeats, so anyone who can publish one could fill the
 * memory with hosts that do not exist: {@link Registry.prune} forgets a host silent for
 * `heartbeat.hostDeadAfterMs` that never registered (no `host.<id>` record of the incarnation
 * it beat with), and a registered one silent for {@link deadHostRetentionMs} (long enough for
 * its actors to be re-placed and its tasks reassigned, by this supervisor or a standby taking
 * over; `cadre host list` shows it as unreachable until then).
 */

import {
  type ActorRecord,
  ActorRecordSchema,
  type Config,
  type Heartbeat,
  type HostRecord,
  HostRecordSchema,
  type Team,
  TeamSchema,
} from "@cadre/protocol";
import { type Clock, HostLiveness, type LivenessEvent, listKeys, StateStore } from "@cadre/runtime";
import type { KV } from "@nats-io/kv";

/** How long a registered host that stopped beating is remembered: 10 dead times, at least a minute. */
export const deadHostRetentionMs = (config: Config): number => Math.max(60_000, 10 * config.heartbeat.hostDeadAfterMs);

interface HostSeen {
  incarnation: string;
  lastSeen: number;
  actors: number;
  busy: number;
}

/** Registry of hosts, actors and teams. */
export class Registry {
  private readonly hosts: StateStore<HostRecord>;
  private readonly actorStore: StateStore<ActorRecord>;
  private readonly teamStore: StateStore<Team>;
  private readonly liveness = new Map<string, HostSeen>();
  private readonly actors = new Map<string, ActorRecord>();
  private readonly teams = new Map<string, Team>();
  /** The supervisor is cut off from NATS: silence says nothing, nothing is forgotten. */
  private observerAway = false;

  /** Phi-accrual failure detection per host, fed by heartbeats. */
  readonly detector: HostLiveness;

  constructor(
    private readonly kv: KV,
    private readonly config: Config,
    private readonly clock: Clock,
    onLiveness: (e: LivenessEvent) => void = () => {},
  ) {
    const hb = config.heartbeat;
    this.detector = new HostLiveness({
      clock,
      suspectPhi: hb.suspectPhi,
      unreachablePhi: hb.unreachablePhi,
      acceptablePauseMs: hb.acceptablePauseMs,
      minStdDevMs: hb.minStdDevMs,
      firstIntervalMs: hb.intervalMs,
      onEvent: onLiveness,
    });
    this.hosts = new StateStore(kv, HostRecordSchema, "host record");
    this.actorStore = new StateStore(kv, ActorRecordSchema, "actor record");
    this.teamStore = new StateStore(kv, TeamSchema, "team");
  }

  /** Loads actor records written by an earlier supervisor. */
  async load(): Promise<void> {
    for (const key of await listKeys(this.kv, "actor.*")) {
      const rec = await this.actorStore.get(key);
      if (rec) this.actors.set(rec.value.actorId, rec.value);
    }
  }

  /** Records a heartbeat. Returns true when the host is new or restarted (a new incarnation). */
  heartbeat(hb: Heartbeat): boolean {
    const prev = this.liveness.get(hb.hostId);
    this.detector.heartbeat(hb.hostId);
    this.liveness.set(hb.hostId, {
      incarnation: hb.incarnation,
      lastSeen: this.clock.now(),
      actors: hb.actors,
      busy: hb.busy,
    });
    return !prev || prev.incarnation !== hb.incarnation;
  }

  /** The supervisor lost its own connection: hosts' silence means nothing until it is back. */
  observerDisconnected(): void {
    this.observerAway = true;
    this.detector.pause();
  }

  /** Back: every host's silence counts from now. */
  observerReconnected(): void {
    this.observerAway = false;
    const now = this.clock.now();
    for (const l of this.liveness.values()) l.lastSeen = now;
    this.detector.resume(now);
  }

  /** Not declared unreachable by the detector, and heard from within `heartbeat.hostDeadAfterMs`. */
  private alive(hostId: string, l: HostSeen): boolean {
    return (
      this.clock.now() - l.lastSeen <= this.config.heartbeat.hostDeadAfterMs &&
      this.detector.state(hostId) !== "unreachable"
    );
  }

  /**
   * Forgets hosts silent past `heartbeat.hostDeadAfterMs` that never registered (no host record
   * of the incarnation they beat with: a heartbeat alone, from a process that is not a host),
   * and registered hosts silent past {@link deadHostRetentionMs}. Returns the ids forgotten, so
   * the supervisor drops what else it keeps per host. Nothing while the supervisor itself is cut
   * off from NATS (their silence is its own).
   */
  async prune(): Promise<string[]> {
    if (this.observerAway) return [];
    const now = this.clock.now();
    const dead = this.config.heartbeat.hostDeadAfterMs;
    const gone: string[] = [];
    for (const [hostId, l] of [...this.liveness]) {
      const silence = now - l.lastSeen;
      if (silence <= dead) continue;
      let forget = silence > deadHostRetentionMs(this.config);
      if (!forget) {
        const rec = await this.hosts.get(`host.${hostId}`).catch(() => "unknown" as const);
        if (rec === "unknown") continue;
        forget = rec?.value.incarnation !== l.incarnation;
      }
      // Heard again while the record was read: it stays.
      if (!forget || this.liveness.get(hostId) !== l) continue;
      this.liveness.delete(hostId);
      this.detector.forget(hostId);
      gone.push(hostId);
    }
    return gone;
  }

  /** Hosts the detector has declared unreachable. */
  unreachableHosts(): string[] {
    return [...this.liveness.keys()].filter((h) => this.detector.state(h) === "unreachable");
  }

  /** Live hosts, with their records. */
  async liveHosts(): Promise<(HostRecord & { actors: number })[]> {
    const out: (HostRecord & { actors: number })[] = [];
    for (const [hostId, l] of this.liveness) {
      if (!this.alive(hostId, l)) continue;
      const rec = await this.hosts.get(`host.${hostId}`);
      if (rec && rec.value.incarnation === l.incarnation) out.push({ ...rec.value, actors: l.actors });
    }
    return out;
  }

  /** Whether an actor's host is alive and still the incarnation that spawned it. */
  isActorLive(a: ActorRecord): boolean {
    const l = this.liveness.get(a.hostId);
    return !!l && l.incarnation === a.incarnation && this.alive(a.hostId, l);
  }

  /** Actors of one kind of one team. */
  actorsOf(teamId: string, kindName: string): ActorRecord[] {
    return [...this.actors.values()].filter((a) => a.teamId === teamId && a.kindName === kindName);
  }

  /** Actors whose host stopped sending heartbeats or restarted. */
  deadActors(): ActorRecord[] {
    return [...this.actors.values()].filter((a) => !this.isActorLive(a));
  }

  /** Records a spawned actor, or a change to one (quarantined, released, replaced). */
  async putActor(rec: ActorRecord): Promise<void> {
    await this.actorStore.put(`actor.${rec.actorId}`, rec);
    this.actors.set(rec.actorId, rec);
  }

  /** Keeps what a preempted actor knew (its persisted snapshot and task history). */
  async putCheckpoint(actorId: string, context: unknown): Promise<void> {
    await this.kv.put(`checkpoint.${actorId}`, JSON.stringify(context));
  }

  /** One actor's record, if this supervisor knows it. */
  actor(actorId: string): ActorRecord | undefined {
    return this.actors.get(actorId);
  }

  /** Every actor record this supervisor knows. */
  allActors(): ActorRecord[] {
    return [...this.actors.values()];
  }

  /** Forgets an actor whose host is gone. */
  async removeActor(actorId: string): Promise<void> {
    this.actors.delete(actorId);
    await this.kv.delete(`actor.${actorId}`);
  }

  /** Stores a team definition under its id. */
  async putTeam(id: string, team: Team): Promise<void> {
    if (this.teams.has(id)) return;
    await this.teamStore.put(`team.${id}`, team);
    this.teams.set(id, team);
  }

  /** Ids of every team on record. */
  async teamIds(): Promise<string[]> {
    const ids: string[] = [];
    for (const k of await listKeys(this.kv, "team.*")) ids.push(k.slice("team.".length));
    return ids;
  }

  /** Forgets a team (its actors are gone). */
  async removeTeam(id: string): Promise<void> {
    this.teams.delete(id);
    await this.kv.delete(`team.${id}`);
  }

  /** Every host heard from, with what its last heartbeat said. */
  seenHosts(): { hostId: string; incarnation: string; lastSeen: number; actors: number; busy: number }[] {
    return [...this.liveness].map(([hostId, l]) => ({ hostId, ...l }));
  }

  /** A host's record, as it registered. */
  async hostRecord(hostId: string): Promise<HostRecord | undefined> {
    return (await this.hosts.get(`host.${hostId}`))?.value;
  }

  /** A team definition by id (from KV if this supervisor has not seen it). */
  async team(id: string): Promise<Team | undefined> {
    const cached = this.teams.get(id);
    if (cached) return cached;
    const rec = await this.teamStore.get(`team.${id}`);
    if (rec) this.teams.set(id, rec.value);
    return rec?.value;
  }
}
