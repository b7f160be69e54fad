/**
 * Context transfer (`sup.actor.transfer`, for seed 003's `/workflow-recovery transfer-context`):
 * a failed actor's context (its task history, and its persisted snapshot when something kept
 * one) goes to a live actor of the same team and kind, which adopts it at runtime (`host.actor`
 * adopt: its behaviour sees a replacement from then on, as a quarantine's replacement does), or,
 * when no actor stands in for it, to a new actor spawned with it (as quarantine.ts spawns a
 * replacement). The monitor gathers the context (it reads the checkpoints, the actor's host and
 * the events stream); the supervisor, which alone writes the registry, chooses the receiver,
 * delivers it and records it: `replaces` on the receiver's record, `replacedBy` on the failed
 * one's when it still has one, and with `keep` the context as `checkpoint.<failed actor>` so it
 * can be given again should the receiver fail in turn. CONTEXT_TRANSFERRED says what was done.
 */

import {
  type ActorRecord,
  type ActorSpec,
  type ActorTransferRequest,
  type Config,
  inStead,
  NotFoundError,
  type OpReply,
  ProtocolError,
  ResourceExhaustedError,
  randomId,
  type TypedEvent,
  UnavailableError,
} from "@cadre/protocol";
import { call, type Logger, type NatsConnection } from "@cadre/runtime";
import { placeReplicas } from "./placement.js";
import { planSpawn } from "./quota.js";
import type { Registry } from "./registry.js";

/** Dependencies of {@link ContextTransfer}. */
export interface TransferDeps {
  nc: NatsConnection;
  registry: Registry;
  config: Config;
  logger: Logger;
  sender: string;
  emit: (event: TypedEvent) => void;
  /** Starts actors on a host and records them (the supervisor's placement). */
  spawnOn: (hostId: string, incarnation: string | undefined, actors: ActorSpec[], priority: number) => Promise<void>;
  /** Whether a host is cordoned (no new actors). */
  cordoned: (hostId: string) => boolean;
}

type Reply = OpReply<"sup.actor.transfer">;

/** Gives failed actors' contexts to live ones; one transfer at a time. */
export class ContextTransfer {
  private last: Promise<unknown> = Promise.resolve();

  constructor(private readonly d: TransferDeps) {}

  /**
   * One at a time: two transfers of one kind must not both choose the same actor placed in a
   * stead (the first records `replaces` on it, which the second then sees).
   */
  transfer(req: ActorTransferRequest): Promise<Reply> {
    const next = this.last.catch(() => {}).then(() => this.run(req));
    this.last = next;
    return next;
  }

  private async run(req: ActorTransferRequest): Promise<Reply> {
    const { fromActorId: from, teamId, kind } = req;
    const { registry } = this.d;
    const failed = registry.actor(from);
    if (failed && (failed.teamId !== teamId || failed.kindName !== kind)) {
      throw new ProtocolError(
        `actor ${from} is of kind "${failed.kindName}" of team ${failed.teamId}, not "${kind}" of ${teamId}: give its own team and kind`,
        { fromActorId: from },
      );
    }
    if (failed && failed.status === "active" && registry.isActorLive(failed)) {
      throw new ProtocolError(
        `actor ${from} is active on live host ${failed.hostId}: only a failed actor's context (lost with its host, quarantined or retired) is transferred`,
        { fromActorId: from },
      );
    }
    const team = await registry.team(teamId);
    const spec = team?.kinds[kind];
    if (!team || !spec) throw new NotFoundError(`kind of team ${teamId}`, kind);
    const live = registry.actorsOf(teamId, kind).filter((a) => a.actorId !== from && registry.isActorLive(a));
    const target = req.toActorId
      ? this.named(req.toActorId, from, teamId, kind, live)
      : this.actorOf(inStead(live, [{ actorId: from, teamId, kind, at: req.lostAt }]).get(from));

    let toActorId: string;
    let hostId: string;
    let history: string[];
    if (target) {
      const reply = await call(
        this.d.nc,
        "host.actor",
        { op: "adopt", actorId: target.actorId, context: req.context },
        { sender: this.d.sender, hostId: target.hostId, timeoutMs: this.d.config.requestTimeoutMs },
      );
      ({ actorId: toActorId, hostId } = target);
      history = reply.history ?? req.context.history;
      const now = registry.actor(toActorId);
      if (now) await registry.putActor({ ...now, replaces: from });
    } else {
      ({ toActorId, hostId } = await this.spawnWith(req, team.priority, spec));
      history = req.context.history;
    }
    const before = registry.actor(from);
    if (before) await registry.putActor({ ...before, replacedBy: toActorId });
    if (req.keep) await registry.putCheckpoint(from, req.context);
    this.d.emit({
      type: "CONTEXT_TRANSFERRED",
      category: "actor",
      scope: from,
      data: {
        fromActorId: from,
        toActorId,
        hostId,
        teamId,
        kind,
        history: req.context.history.length,
        snapshot: req.context.snapshot !== undefined,
        created: !target,
        kept: req.keep,
      },
    });
    this.d.logger.info({ from, to: toActorId, hostId, tasks: req.context.history.length }, "context transferred");
    return { fromActorId: from, toActorId, hostId, created: !target, history, kept: req.keep };
  }

  private actorOf(id: string | undefined): ActorRecord | undefined {
    return id === undefined ? undefined : this.d.registry.actor(id);
  }

  /** The replacement an operator named: a live, active actor of the failed one's team and kind. */
  private named(id: string, from: string, teamId: string, kind: string, live: ActorRecord[]): ActorRecord {
    const to = this.d.registry.actor(id);
    if (!to) throw new NotFoundError("actor", id);
    const others = live.filter((a) => a.status === "active").map((a) => a.actorId);
    const offer = others.length > 0 ? ` (live ones: ${others.join(", ")})` : "";
    if (to.teamId !== teamId || to.kindName !== kind) {
      throw new ProtocolError(
        `replacement ${id} is of kind "${to.kindName}" of team ${to.teamId}, but ${from} was of kind "${kind}" of team ${teamId}: name an actor of that kind${offer}, or none for the one placed in its stead`,
        { toActorId: id, kind: to.kindName, wanted: kind },
      );
    }
    if (to.actorId === from) throw new ProtocolError(`${from} cannot replace itself: name another actor${offer}`);
    if (to.status !== "active") {
      throw new ProtocolError(`replacement ${id} is quarantined: name an active actor${offer}`, { toActorId: id });
    }
    if (!this.d.registry.isActorLive(to)) {
      throw new UnavailableError(`replacement ${id}'s host ${to.hostId} is not live: name another actor${offer}`, {
        toActorId: id,
      });
    }
    return to;
  }

  /**
   * No actor stands in for the failed one: a new one is spawned with the context, on the live,
   * uncordoned host the placement rule prefers (replicas of a kind on distinct hosts first).
   * Within the quotas and without preempting anyone: past them it is refused.
   */
  private async spawnWith(
    req: ActorTransferRequest,
    priority: number,
    kind: ActorSpec["kind"],
  ): Promise<{ toActorId: string; hostId: string }> {
    const { registry, config } = this.d;
    const active = registry.allActors().filter((a) => a.status === "active" && registry.isActorLive(a));
    const victims = planSpawn({
      teamId: req.teamId,
      priority,
      need: 1,
      actors: active,
      maxPerTeam: config.orchestration_limits.max_agents_per_orchestrator,
      maxGlobal: config.orchestration_limits.max_concurrent_agents,
    });
    if (victims.length > 0) {
      throw new ResourceExhaustedError(
        "concurrent agents (max_concurrent_agents) for a new replacement",
        config.orchestration_limits.max_concurrent_agents,
        active.length,
        { fix: "free a slot (emergency-reallocation, or retire an actor) or name a live actor as the replacement" },
      );
    }
    const hosts = (await registry.liveHosts()).filter(
      (h) => !this.d.cordoned(h.hostId) && (!kind.hosts || kind.hosts.includes(h.hostId)),
    );
    const ofKind = new Map<string, number>();
    for (const a of registry.actorsOf(req.teamId, req.kind)) ofKind.set(a.hostId, (ofKind.get(a.hostId) ?? 0) + 1);
    const [hostId] = placeReplicas(hosts, ofKind, 1);
    const host = hosts.find((h) => h.hostId === hostId);
    if (!hostId || !host) {
      throw new UnavailableError(
        `no live, uncordoned agent-host has room for a replacement of kind "${req.kind}": start one, free a slot, or name a live actor as the replacement`,
      );
    }
    const toActorId = `${req.kind}-${randomId(8)}`;
    await this.d.spawnOn(
      hostId,
      host.incarnation,
      [{ actorId: toActorId, teamId: req.teamId, kindName: req.kind, kind, inherit: req.context }],
      priority,
    );
    return { toActorId, hostId };
  }
}
