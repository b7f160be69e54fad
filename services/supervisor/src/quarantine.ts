/**
 * Quarantine: an actor whose response broke its kind's output schema (checked on arrival, in
 * results.ts) takes no more tasks. Its host moves it to its machine's `quarantined` state and
 * hands back what it knew (the tasks it took and its persisted XState snapshot); a replacement
 * of the same kind is spawned with that context, on another host when one can take it; the
 * task is retried (a new epoch) by results.ts. Operators list quarantined actors with the
 * reason, and release them (back to work) or retire them (stopped and forgotten).
 */

import {
  type ActorRecord,
  type ActorSpec,
  type Config,
  NotFoundError,
  type QuarantineReason,
  randomId,
  type TypedEvent,
} from "@cadre/protocol";
import { call, type Logger, type NatsConnection } from "@cadre/runtime";
import { placeReplicas } from "./placement.js";
import type { Registry } from "./registry.js";

/** Dependencies of {@link Quarantine}. */
export interface QuarantineDeps {
  nc: NatsConnection;
  registry: Registry;
  config: Config;
  logger: Logger;
  sender: string;
  emit: (event: TypedEvent) => void;
  /** Starts actors on a host and records them (the supervisor's placement). */
  spawnOn: (hostId: string, incarnation: string | undefined, actors: ActorSpec[], priority: number) => Promise<void>;
  /** Places a team's missing replicas again (after an operator retired one). */
  replenish: (teamId: string) => Promise<void>;
}

/** Quarantines actors, replaces them, and serves the operators' commands. */
export class Quarantine {
  /** Quarantines under way, by actor: a second bad response waits for the first to finish. */
  private readonly pending = new Map<string, Promise<void>>();

  constructor(private readonly d: QuarantineDeps) {}

  /**
   * Quarantines the actor (once) and spawns its replacement. Failures are logged, not thrown:
   * the task is retried either way, and a host that cannot be reached is handled as lost.
   */
  quarantine(actorId: string, reason: QuarantineReason): Promise<void> {
    const running = this.pending.get(actorId);
    if (running) return running;
    const p = this.run(actorId, reason)
      .catch((err) => this.d.logger.error({ err, actorId }, "quarantine incomplete"))
      .finally(() => this.pending.delete(actorId));
    this.pending.set(actorId, p);
    return p;
  }

  private async run(actorId: string, reason: QuarantineReason): Promise<void> {
    const rec = this.d.registry.actor(actorId);
    if (!rec || rec.status === "quarantined") return;
    await this.d.registry.putActor({ ...rec, status: "quarantined", quarantine: reason });
    const reply = await this.onHost(rec, "quarantine");
    const replacement = await this.replace(rec, reply.context ?? { fromActorId: actorId, history: [] });
    this.d.emit({
      type: "AGENT_QUARANTINED",
      category: "actor",
      scope: actorId,
      data: {
        actorId,
        hostId: rec.hostId,
        teamId: rec.teamId,
        kind: rec.kindName,
        taskId: reason.taskId,
        issues: reason.issues,
        replacement,
      },
    });
  }

  /** Asks the actor's host to quarantine, release or retire it. */
  private onHost(rec: ActorRecord, op: "quarantine" | "release" | "retire") {
    return call(
      this.d.nc,
      "host.actor",
      { op, actorId: rec.actorId },
      { sender: this.d.sender, hostId: rec.hostId, timeoutMs: this.d.config.requestTimeoutMs },
    );
  }

  /** Spawns one actor of the kind with the quarantined actor's context; another host first. */
  private async replace(rec: ActorRecord, inherit: ActorSpec["inherit"]): Promise<string | null> {
    const team = await this.d.registry.team(rec.teamId);
    const kind = team?.kinds[rec.kindName];
    if (!kind) return null;
    const hosts = (await this.d.registry.liveHosts()).filter((h) => !kind.hosts || kind.hosts.includes(h.hostId));
    // Replicas of the kind on distinct hosts first; the quarantined actor still counts on its
    // host, so another host is preferred when one has room.
    const ofKind = new Map<string, number>();
    for (const a of this.d.registry.actorsOf(rec.teamId, rec.kindName)) {
      if (a.status === "active" || a.actorId === rec.actorId) ofKind.set(a.hostId, (ofKind.get(a.hostId) ?? 0) + 1);
    }
    const [hostId] = placeReplicas(hosts, ofKind, 1);
    const host = hosts.find((h) => h.hostId === hostId);
    if (!hostId || !host) {
      this.d.logger.warn({ actorId: rec.actorId, kind: rec.kindName }, "no host can take a replacement now");
      return null;
    }
    const actorId = `${rec.kindName}-${randomId(8)}`;
    await this.d.spawnOn(
      hostId,
      host.incarnation,
      [{ actorId, teamId: rec.teamId, kindName: rec.kindName, kind, ...(inherit ? { inherit } : {}) }],
      rec.priority,
    );
    const now = this.d.registry.actor(rec.actorId);
    if (now) await this.d.registry.putActor({ ...now, replacedBy: actorId });
    return actorId;
  }

  /**
   * Preempts an actor to make room for a higher-priority team (quota.ts): its host gives the
   * task it held back to the queue and stops it; its snapshot is kept as a checkpoint
   * (`checkpoint.<actorId>` in the registry bucket) and it is forgotten. AGENT_PREEMPTED says
   * who made room for whom.
   */
  async preempt(actorId: string, by: { teamId: string; priority: number }): Promise<void> {
    const rec = this.d.registry.actor(actorId);
    if (!rec) return;
    const reply = await this.onHost(rec, "retire");
    if (reply.context) await this.d.registry.putCheckpoint(actorId, reply.context);
    await this.d.registry.removeActor(actorId);
    this.d.emit({
      type: "AGENT_PREEMPTED",
      category: "actor",
      scope: actorId,
      data: {
        actorId,
        hostId: rec.hostId,
        teamId: rec.teamId,
        kind: rec.kindName,
        priority: rec.priority,
        byTeam: by.teamId,
        byPriority: by.priority,
        requeued: reply.requeued ?? null,
      },
    });
  }

  /** The operators' commands: list the quarantined actors, release one, or retire one. */
  async command(op: "list" | "release" | "retire", actorId?: string): Promise<ActorRecord[]> {
    if (op !== "list") {
      const rec = actorId ? this.d.registry.actor(actorId) : undefined;
      if (rec?.status !== "quarantined") throw new NotFoundError("quarantined actor", actorId ?? "(none given)");
      await this.onHost(rec, op);
      if (op === "release") {
        const { quarantine: _reason, ...rest } = rec;
        await this.d.registry.putActor({ ...rest, status: "active" });
      } else {
        await this.d.registry.removeActor(rec.actorId);
        // A kind left short (its replacement could not be placed) gets its replicas back.
        await this.d
          .replenish(rec.teamId)
          .catch((err) =>
            this.d.logger.warn({ err, teamId: rec.teamId }, "replicas not placed again after a retirement"),
          );
      }
      this.d.emit({
        type: op === "release" ? "AGENT_RELEASED" : "AGENT_RETIRED",
        category: "actor",
        scope: rec.actorId,
        data: { actorId: rec.actorId, hostId: rec.hostId, kind: rec.kindName },
      });
    }
    return this.d.registry.allActors().filter((a) => a.status === "quarantined");
  }
}
