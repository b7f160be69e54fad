/**
 * Seed 003's communication failure, announced by the monitor from what the supervisor and the
 * hosts announce (the monitor's events subscription feeds {@link NetworkAnnouncer.onEvent}):
 *
 * - COMMUNICATION_FAILURE, `collectMs` after a HOST_UNREACHABLE (the supervisor's repair, which
 *   forgets the host's actors and announces each ACTOR_LOST, runs right after it; the window
 *   gathers them). Its measured fields:
 *   - affected_agents: the host's actors, the union of those the supervisor still lists on it
 *     (sup.actor.list, asked at once: the repair may not have run), those lost with it
 *     (ACTOR_LOST naming the host, within `collectMs` either side) and those running a task there;
 *   - held_tasks: the tasks the host held as the monitor last knew when it was declared
 *     unreachable: TASK_STARTED on it not yet finished (TASK_COMPLETED/FAILED), stopped
 *     (TASK_ATTEMPT_FAILED/STOPPED) or moved (TASK_REASSIGNED from it), the incident report's
 *     rule (services/monitor/src/incident/faults-work.ts); tasks started before the monitor did are
 *     not known;
 *   - held_share: held / (held + the busy actors of the other live hosts, by their last
 *     heartbeats): the share of the work in flight that now waits for reassignment;
 *   - coordination_impact, by {@link coordinationImpact}: none (no actor, no task), minor (actors
 *     but no task: only placement changes), moderate (tasks held, under half the work in flight),
 *     severe (half of it or more);
 *   - auto_recovery, what the supervisor does: tasks_reassigned (held tasks are published again
 *     with a new epoch `tasks.reassignGraceMs` after the detection unless the host is heard from
 *     first; its actors are placed again), actors_replaced (no task held: only the actors),
 *     none.
 * - NETWORK_RECOVERY_COMPLETED, after that host's HOST_HEALED, once its replay is classified:
 *   as soon as a RECONCILIATION_REPORT of it has arrived (since the failure) and every batch its
 *   OUTBOX_REPLAYED announced has one; with no replay announced within `settleMs` of the heal,
 *   with reconciliation null (nothing was replayed: its outbox was empty); with a replay
 *   announced but not every report in within `reportWaitMs`, with what arrived (complete false).
 *   recovery_time_ms runs from HOST_UNREACHABLE to HOST_HEALED as the monitor received them;
 *   outage_ms is the heal's silence (the failure detector's, from the last heartbeat before
 *   the cut); tasks_reassigned and actors_replaced count the TASK_REASSIGNED from it and the
 *   ACTOR_LOST of it in between; connectivity_restored_percent is, of the hosts that were
 *   unreachable at some point during this one's outage (itself included), the share heard again.
 *
 * A heal of a host the monitor did not see declared unreachable (it started later) is not
 * announced. Everything is bounded: hosts with an open failure, tasks followed, lost actors kept.
 */

import type { Config, TypedEvent } from "@cadre/protocol";
import { type Clock, type Logger, type NatsConnection, SupervisorClient } from "@cadre/runtime";

/** How long after HOST_UNREACHABLE the ACTOR_LOST of its repair are gathered. @default 500 */
export const COLLECT_MS = 500;
/** How long after a heal a replay must be announced, else none is expected. @default 5000 */
export const SETTLE_MS = 5000;
/** The longest wait for a replay's reports after a heal (the tally's own quiet time is 30 s). @default 35000 */
export const REPORT_WAIT_MS = 35_000;
/** The most tasks followed (held by some host), and hosts with an open failure. */
const MAX_TASKS = 100_000;
const MAX_HOSTS = 1000;
/** The most ids one event lists (its schema's bound). */
const MAX_LISTED = 1000;

type Impact = "none" | "minor" | "moderate" | "severe";
type Reconciliation = NonNullable<TypedEvent<"NETWORK_RECOVERY_COMPLETED">["data"]["reconciliation"]>;

/** The rule of coordination_impact (see the module's comment). */
export function coordinationImpact(agents: number, held: number, heldShare: number): Impact {
  if (held === 0) return agents === 0 ? "none" : "minor";
  return heldShare >= 0.5 ? "severe" : "moderate";
}

/** held / (held + busy elsewhere), 0 when nothing runs anywhere; rounded to 0.001. */
export function heldShare(held: number, busyElsewhere: number): number {
  const all = held + Math.max(0, busyElsewhere);
  return all > 0 ? Math.round((held / all) * 1000) / 1000 : 0;
}

/** {@link NetworkDeps.actorsOn} over NATS: sup.actor.list of the active supervisor, as `sender`. */
export function actorsOnHost(nc: NatsConnection, sender: string, timeoutMs: number): NetworkDeps["actorsOn"] {
  const supervisor = new SupervisorClient(nc, { sender, timeoutMs });
  return async (hostId) => (await supervisor.call("sup.actor.list", { hostId })).actors;
}

/** What {@link NetworkAnnouncer} needs of the monitor. */
export interface NetworkDeps {
  config: Pick<Config, "tasks">;
  clock: Clock;
  logger: Logger;
  emit: (event: TypedEvent) => void;
  /** The hosts the monitor hears, with their busy actors by their last heartbeat. */
  hosts(): readonly { hostId: string; busy: number; silent: boolean }[];
  /** The actors the supervisor lists on a host (sup.actor.list). */
  actorsOn(hostId: string): Promise<{ actorId: string; kindName: string }[]>;
  collectMs?: number;
  settleMs?: number;
  reportWaitMs?: number;
}

interface Failure {
  hostId: string;
  at: number;
  silenceMs: number;
  held: string[];
  agents: Map<string, string>;
  /** Hosts unreachable at some point during this outage, itself included. */
  peers: Set<string>;
  announced: boolean;
  collectTimer: unknown;
  reassigned: number;
  /** The actors lost with it (ACTOR_LOST), from `collectMs` before the detection to the heal. */
  lost: Set<string>;
  reports: TypedEvent<"RECONCILIATION_REPORT">["data"][];
  replays: Set<string>;
  healed?: { at: number; outageMs: number; settleTimer: unknown; waitTimer: unknown };
}

/** Announces COMMUNICATION_FAILURE and NETWORK_RECOVERY_COMPLETED (see the module's comment). */
export class NetworkAnnouncer {
  /** taskId → where it runs, by TASK_STARTED, until it finished, stopped or moved. */
  private readonly holders = new Map<string, { hostId: string; actorId: string; kind: string }>();
  /** Recent ACTOR_LOST, by host (kept 2 × collectMs). */
  private readonly lostActors = new Map<string, { actorId: string; kind: string; at: number }[]>();
  private readonly failures = new Map<string, Failure>();
  private readonly collectMs: number;
  private readonly settleMs: number;
  private readonly reportWaitMs: number;

  constructor(private readonly d: NetworkDeps) {
    this.collectMs = d.collectMs ?? COLLECT_MS;
    this.settleMs = d.settleMs ?? SETTLE_MS;
    this.reportWaitMs = d.reportWaitMs ?? REPORT_WAIT_MS;
  }

  /** Hosts with a failure announced or being gathered, not yet recovered. */
  get open(): string[] {
    return [...this.failures.keys()];
  }

  /** One event of the stream, as the monitor parsed it. Never throws (it runs in a subscription's callback). */
  onEvent(e: TypedEvent): void {
    try {
      this.follow(e);
    } catch (err) {
      this.d.logger.error({ err, type: e.type }, "network announcement failed");
    }
  }

  private follow(e: TypedEvent): void {
    switch (e.type) {
      case "TASK_STARTED":
        this.holders.delete(e.data.taskId);
        this.holders.set(e.data.taskId, { hostId: e.data.hostId, actorId: e.data.actorId, kind: e.data.kind });
        if (this.holders.size > MAX_TASKS) this.holders.delete(this.holders.keys().next().value as string);
        return;
      case "TASK_COMPLETED":
      case "TASK_FAILED":
        this.holders.delete(e.data.taskId);
        return;
      case "TASK_ATTEMPT_FAILED":
      case "TASK_ATTEMPT_STOPPED":
        if (this.holders.get(e.data.taskId)?.hostId === e.data.hostId) this.holders.delete(e.data.taskId);
        return;
      case "TASK_REASSIGNED": {
        if (this.holders.get(e.data.taskId)?.hostId === e.data.fromHostId) this.holders.delete(e.data.taskId);
        const f = this.failures.get(e.data.fromHostId);
        if (f && !f.healed) f.reassigned++;
        return;
      }
      case "ACTOR_LOST":
        this.actorLost(e.data.hostId, e.scope, e.data.kind);
        return;
      case "HOST_UNREACHABLE":
        this.unreachable(e.scope, e.data.silenceMs);
        return;
      case "HOST_HEALED":
        this.healed(e.scope, e.data.silenceMs);
        return;
      case "OUTBOX_REPLAYED":
        this.failures.get(e.data.hostId)?.replays.add(e.data.batch);
        this.settle(e.data.hostId);
        return;
      case "RECONCILIATION_REPORT":
        this.failures.get(e.data.hostId)?.reports.push(e.data);
        this.settle(e.data.hostId);
        return;
      default:
        return;
    }
  }

  /** Drops every timer (the monitor stopped); nothing more is announced. */
  stop(): void {
    for (const f of this.failures.values()) this.clearTimers(f);
    this.failures.clear();
  }

  private actorLost(hostId: string, actorId: string, kind: string): void {
    const now = this.d.clock.now();
    const recent = (this.lostActors.get(hostId) ?? []).filter((a) => now - a.at <= 2 * this.collectMs);
    recent.push({ actorId, kind, at: now });
    this.lostActors.set(hostId, recent.slice(-MAX_LISTED));
    if (this.lostActors.size > MAX_HOSTS) this.lostActors.delete(this.lostActors.keys().next().value as string);
    const f = this.failures.get(hostId);
    if (!f || f.healed) return;
    f.lost.add(actorId);
    if (!f.announced) f.agents.set(actorId, kind);
  }

  private unreachable(hostId: string, silenceMs: number): void {
    const prev = this.failures.get(hostId);
    if (prev) {
      // Declared unreachable again without a heal the monitor heard: the older one is superseded.
      this.clearTimers(prev);
      this.failures.delete(hostId);
    }
    if (this.failures.size >= MAX_HOSTS) {
      this.d.logger.warn({ hostId, open: this.failures.size }, "too many unreachable hosts followed; not announced");
      return;
    }
    const now = this.d.clock.now();
    const agents = new Map<string, string>();
    const held: string[] = [];
    for (const [taskId, h] of this.holders) {
      if (h.hostId !== hostId) continue;
      held.push(taskId);
      agents.set(h.actorId, h.kind);
    }
    const lost = new Set<string>();
    for (const a of this.lostActors.get(hostId) ?? []) {
      if (now - a.at > this.collectMs) continue;
      agents.set(a.actorId, a.kind);
      lost.add(a.actorId);
    }
    const f: Failure = {
      hostId,
      at: now,
      silenceMs,
      held: held.sort(),
      agents,
      peers: new Set([hostId, ...this.failures.keys()]),
      announced: false,
      collectTimer: undefined,
      reassigned: 0,
      lost,
      reports: [],
      replays: new Set(),
    };
    for (const other of this.failures.values()) other.peers.add(hostId);
    this.failures.set(hostId, f);
    this.d
      .actorsOn(hostId)
      .then((listed) => {
        if (f.announced) return;
        for (const a of listed) f.agents.set(a.actorId, a.kindName);
      })
      .catch((err: unknown) =>
        this.d.logger.warn({ err, hostId }, "the supervisor's actors of an unreachable host not read"),
      );
    f.collectTimer = this.d.clock.setTimeout(() => this.announceFailure(f), this.collectMs);
  }

  private announceFailure(f: Failure): void {
    if (f.announced || this.failures.get(f.hostId) !== f) return;
    f.announced = true;
    this.d.clock.clearTimeout(f.collectTimer);
    const busyElsewhere = this.d
      .hosts()
      .filter((h) => h.hostId !== f.hostId && !h.silent && !this.failures.has(h.hostId))
      .reduce((a, h) => a + h.busy, 0);
    const share = heldShare(f.held.length, busyElsewhere);
    const agents = [...f.agents.keys()].sort();
    const auto = f.held.length > 0 ? "tasks_reassigned" : agents.length > 0 ? "actors_replaced" : "none";
    const data = {
      failure_type: "host_unreachable" as const,
      host_id: f.hostId,
      affected_agents: agents.slice(0, MAX_LISTED),
      affected_kinds: [...new Set(f.agents.values())].sort().slice(0, MAX_LISTED),
      held_tasks: f.held.slice(0, MAX_LISTED),
      held_task_count: f.held.length,
      held_share: share,
      coordination_impact: coordinationImpact(agents.length, f.held.length, share),
      auto_recovery: auto,
      reassign_grace_ms: this.d.config.tasks.reassignGraceMs,
      silence_ms: f.silenceMs,
    } satisfies TypedEvent<"COMMUNICATION_FAILURE">["data"];
    this.d.emit({ type: "COMMUNICATION_FAILURE", category: "network", scope: "agent_coordination", data });
    this.d.logger.warn(data, `communication failure: host ${f.hostId} unreachable`);
  }

  private healed(hostId: string, outageMs: number): void {
    const f = this.failures.get(hostId);
    if (!f || f.healed) return;
    // Healed within the gathering window: the failure is announced first, with what it has.
    this.announceFailure(f);
    const now = this.d.clock.now();
    f.healed = {
      at: now,
      outageMs,
      settleTimer: this.d.clock.setTimeout(() => this.settle(hostId, "settled"), this.settleMs),
      waitTimer: this.d.clock.setTimeout(() => this.settle(hostId, "waited"), this.reportWaitMs),
    };
    this.settle(hostId);
  }

  /**
   * Announces a healed host's recovery once its replay is classified, or `settleMs` after the
   * heal when no replay was announced, or `reportWaitMs` after it whatever came.
   */
  private settle(hostId: string, timer?: "settled" | "waited"): void {
    const f = this.failures.get(hostId);
    if (!f?.healed) return;
    const reported = new Set(f.reports.map((r) => r.batch));
    const classified = f.reports.length > 0 && [...f.replays].every((b) => reported.has(b));
    const nothingCame = timer === "settled" && f.replays.size === 0 && f.reports.length === 0;
    if (!classified && !nothingCame && timer !== "waited") return;
    this.recovered(f, f.healed);
  }

  private recovered(f: Failure, healed: NonNullable<Failure["healed"]>): void {
    this.clearTimers(f);
    this.failures.delete(f.hostId);
    const still = [...f.peers].filter((h) => this.failures.has(h)).sort();
    const data = {
      host_id: f.hostId,
      recovery_time_ms: healed.at - f.at,
      outage_ms: healed.outageMs,
      connectivity_restored: true,
      connectivity_restored_percent: Math.round((1000 * (f.peers.size - still.length)) / f.peers.size) / 10,
      still_unreachable: still.slice(0, MAX_LISTED),
      tasks_reassigned: f.reassigned,
      actors_replaced: f.lost.size,
      reconciliation: sumReports(f.reports, f.replays),
    } satisfies TypedEvent<"NETWORK_RECOVERY_COMPLETED">["data"];
    this.d.emit({ type: "NETWORK_RECOVERY_COMPLETED", category: "network", scope: "restoration", data });
    this.d.logger.info(data, `network recovery completed: host ${f.hostId} heard again`);
  }

  private clearTimers(f: Failure): void {
    this.d.clock.clearTimeout(f.collectTimer);
    this.d.clock.clearTimeout(f.healed?.settleTimer);
    this.d.clock.clearTimeout(f.healed?.waitTimer);
  }
}

/** The reports summed; complete when each is and every announced replay has one; null when none came. */
function sumReports(
  reports: readonly TypedEvent<"RECONCILIATION_REPORT">["data"][],
  replays: ReadonlySet<string>,
): Reconciliation | null {
  if (reports.length === 0) return null;
  const reported = new Set(reports.map((r) => r.batch));
  const sum = (k: "applied" | "duplicate" | "conflict" | "invalid" | "orphan" | "total") =>
    reports.reduce((a, r) => a + r[k], 0);
  return {
    batches: reported.size,
    applied: sum("applied"),
    duplicate: sum("duplicate"),
    conflict: sum("conflict"),
    invalid: sum("invalid"),
    orphan: sum("orphan"),
    total: sum("total"),
    complete: reports.every((r) => r.complete) && [...replays].every((b) => reported.has(b)),
  };
}
