/**
 * AGENT_POOL_FAILURE, seed 003's detection line for an agent pool failure: the monitor announces
 * it when the supervisor declares a host's actors lost. The supervisor's repair forgets the
 * actors of a host that stopped beating (or came back as a new incarnation) and announces each
 * ACTOR_LOST in one burst; the losses of one host are gathered until none came for
 * {@link POOL_FAILURE_SETTLE_MS}, then announced together. Its measured fields:
 *
 * - failed_agents: the actors of those ACTOR_LOST;
 * - affected_workflows: the workflows of the tasks they held (heldAtLoss over the events
 *   stream's task events: each actor's last TASK_STARTED not ended when it was lost; the read
 *   goes back one attempt's time limit, `tasks.attemptTimeoutMs`, and not before the actors
 *   were spawned when the monitor saw them spawned);
 * - failure_type: host_restarted when the host's HOST_UP (a new incarnation) came after the
 *   actor was spawned (causeOfLoss), else host_lost;
 * - impact: critical_path_blocked when a held task, still unfinished, lies on its workflow's
 *   longest unfinished chain (onLongestChain over `sup.debug.workflow`), else degraded;
 * - held_tasks, critical_tasks: how many tasks they held, and how many of those were critical.
 *
 * Bounded: at most {@link MAX_PENDING} actors wait per host and {@link MAX_REMEMBERED} spawn
 * times and hosts are remembered (the oldest forgotten first).
 */

import { type Config, type OpReply, subjects, type TypedEvent } from "@cadre/protocol";
import { type Clock, type Logger, type NatsConnection, readEventLog, SupervisorClient } from "@cadre/runtime";
import { MAX_TASK_EVENTS, taskWindowStart } from "./cascade.js";
import { causeOfLoss, type Held, heldAtLoss, onLongestChain } from "./cascade-rules.js";

/** Quiet time after a host's last ACTOR_LOST before its losses are announced. */
export const POOL_FAILURE_SETTLE_MS = 500;
/** Actors gathered per host at most (the event's list is bounded too). */
const MAX_PENDING = 1000;
/** Spawn times and host restarts remembered at most. */
const MAX_REMEMBERED = 10_000;

/** What the announcer needs of the monitor. */
export interface PoolFailureDeps {
  nc: NatsConnection;
  sender: string;
  config: Config;
  clock: Clock;
  logger: Logger;
  emit: (e: TypedEvent) => void;
}

interface Lost {
  actorId: string;
  at: number;
}

/** Sets `key` in a map that forgets its oldest entries past {@link MAX_REMEMBERED}. */
function remember<V>(m: Map<string, V>, key: string, value: V): void {
  m.delete(key);
  m.set(key, value);
  for (const k of m.keys()) {
    if (m.size <= MAX_REMEMBERED) break;
    m.delete(k);
  }
}

/** The reaction to the events the monitor hears: ACTOR_LOST in, AGENT_POOL_FAILURE out. */
export function poolFailureAlerts(d: PoolFailureDeps): (e: TypedEvent) => void {
  const pending = new Map<string, { lost: Lost[]; timer: unknown }>();
  const spawnedAt = new Map<string, number>();
  const ups = new Map<string, number[]>();
  const supervisor = new SupervisorClient(d.nc, { sender: d.sender, timeoutMs: d.config.requestTimeoutMs });

  const announce = async (hostId: string, lost: Lost[]): Promise<void> => {
    const failures = lost.map((l) => ({ actorId: l.actorId, at: l.at }));
    const { events } = await readEventLog(d.nc, {
      filter: subjects.eventsOf("task"),
      sinceMs: taskWindowStart(failures, spawnedAt, d.config.tasks.attemptTimeoutMs),
      max: MAX_TASK_EVENTS,
    });
    const held = lost.flatMap((l) => heldAtLoss(events, l.actorId, l.at) ?? []);
    const byWorkflow = new Map<string, Held[]>();
    for (const h of held) byWorkflow.set(h.workflowId, [...(byWorkflow.get(h.workflowId) ?? []), h]);
    let critical = 0;
    for (const [workflowId, tasks] of byWorkflow) {
      const tree: OpReply<"sup.debug.workflow"> | null = await supervisor
        .call("sup.debug.workflow", { workflowId })
        .catch(() => null);
      if (tree) critical += tasks.filter((t) => onLongestChain(tree.tasks, t.taskId)).length;
    }
    const restarted = lost.some(
      (l) =>
        causeOfLoss(ups.get(hostId) ?? [], spawnedAt.get(l.actorId), l.at, d.config.heartbeat.hostDeadAfterMs) ===
        "host_restarted",
    );
    for (const l of lost) spawnedAt.delete(l.actorId);
    d.emit({
      type: "AGENT_POOL_FAILURE",
      category: "coordination",
      scope: "agent_management",
      data: {
        failed_agents: lost.map((l) => l.actorId),
        affected_workflows: [...byWorkflow.keys()].slice(0, 1000),
        failure_type: restarted ? "host_restarted" : "host_lost",
        impact: critical > 0 ? "critical_path_blocked" : "degraded",
        hostId,
        held_tasks: held.length,
        critical_tasks: critical,
      },
    });
  };

  const fire = (hostId: string): void => {
    const p = pending.get(hostId);
    pending.delete(hostId);
    if (!p) return;
    announce(hostId, p.lost).catch((err) =>
      d.logger.warn({ err, hostId, actors: p.lost.length }, "AGENT_POOL_FAILURE not announced"),
    );
  };

  // Called from the monitor's subscription callback, which must never throw (nats.js would stop
  // delivering): nothing here does but the timers, and `announce` reports its own failures.
  return (e) => {
    const now = d.clock.now();
    if (e.type === "ACTOR_SPAWNED") remember(spawnedAt, e.scope, now);
    else if (e.type === "HOST_UP") remember(ups, e.scope, [...(ups.get(e.scope) ?? []), now].slice(-10));
    else if (e.type === "ACTOR_LOST") {
      const hostId = e.data.hostId;
      if (!pending.has(hostId) && pending.size >= MAX_REMEMBERED) return;
      const p = pending.get(hostId) ?? { lost: [], timer: undefined };
      if (p.lost.length < MAX_PENDING) p.lost.push({ actorId: e.scope, at: now });
      d.clock.clearTimeout(p.timer);
      p.timer = d.clock.setTimeout(() => fire(hostId), POOL_FAILURE_SETTLE_MS);
      pending.set(hostId, p);
    }
  };
}
