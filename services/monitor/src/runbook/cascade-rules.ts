/**
 * The rules of the agent pool failure commands (cascade.ts, transfer.ts, announce-pool.ts), as
 * pure functions over what the events stream and the supervisor's task trees say:
 *
 * - {@link failuresIn}: the failed actors of a window of actor events;
 * - {@link causeOfLoss}: whether an actor lost with its host saw the host restart first;
 * - {@link heldAtLoss}: the task an actor held when it failed, from its TASK_STARTED events;
 * - {@link rebuildHistory}: an actor's task history from its TASK_STARTED events;
 * - {@link chainOf}, {@link onLongestChain}: what waits for a task, and whether it lies on its
 *   workflow's longest unfinished chain;
 * - {@link estimate}, {@link resumeOrder}: the recovery plan's estimate and order.
 */

import type { FailedAgent, OpReply } from "@cadre/protocol";
import type { StoredEvent } from "@cadre/runtime";
import { criticalPath } from "./resource-manager.js";

type Node = OpReply<"sup.debug.workflow">["tasks"][number];
/**
 * A failure before {@link heldAtLoss} and the placement rule fill in the rest. `named`: the task
 * its own event names (a quarantine's bad response, a retirement's requeued task).
 */
export type Failure = Omit<FailedAgent, "taskId" | "replacement"> & { named?: string | null };

/** The workflow a task belongs to (its id's first segment: ids.ts). */
export const workflowOf = (taskId: string): string => taskId.slice(0, Math.max(0, taskId.indexOf("-")));

/**
 * When a host is declared dead (ACTOR_LOST) after it came back under a new incarnation: its
 * HOST_UP (the supervisor announces one per new incarnation) arrived after the actor was
 * spawned and before the loss. `since`: the actor's ACTOR_SPAWNED time when known; without it,
 * a HOST_UP within two host-dead times before the loss counts (the repair follows a restart
 * that closely).
 */
export function causeOfLoss(
  hostUps: readonly number[],
  since: number | undefined,
  lostAt: number,
  hostDeadAfterMs: number,
): "host_lost" | "host_restarted" {
  const from = since ?? lostAt - 2 * hostDeadAfterMs;
  return hostUps.some((t) => t > from && t <= lostAt) ? "host_restarted" : "host_lost";
}

/**
 * The failed actors of a window of events (actor and host categories, oldest first): each
 * actor's last ACTOR_LOST, AGENT_QUARANTINED, ACTOR_RETIRED or AGENT_RETIRED, with its team,
 * kind and host from that event or its ACTOR_SPAWNED. An actor released after its quarantine
 * (AGENT_RELEASED) is not failed any more.
 */
export function failuresIn(events: readonly StoredEvent[], hostDeadAfterMs: number): Failure[] {
  const spawned = new Map<string, { at: number; teamId: string; kind: string; hostId: string }>();
  const ups = new Map<string, number[]>();
  const out = new Map<string, Failure>();
  for (const { event: e, at } of events) {
    switch (e.type) {
      case "ACTOR_SPAWNED":
        spawned.set(e.scope, { at, teamId: e.data.teamId, kind: e.data.kind, hostId: e.data.hostId });
        break;
      case "HOST_UP":
        ups.set(e.scope, [...(ups.get(e.scope) ?? []), at]);
        break;
      case "ACTOR_LOST": {
        const s = spawned.get(e.scope);
        const cause = causeOfLoss(ups.get(e.data.hostId) ?? [], s?.at, at, hostDeadAfterMs);
        out.set(e.scope, {
          actorId: e.scope,
          teamId: e.data.teamId ?? s?.teamId ?? null,
          kind: e.data.kind,
          hostId: e.data.hostId,
          cause,
          at,
        });
        break;
      }
      case "AGENT_QUARANTINED":
        out.set(e.scope, {
          actorId: e.scope,
          teamId: e.data.teamId,
          kind: e.data.kind,
          hostId: e.data.hostId,
          cause: "quarantined",
          at,
          named: e.data.taskId,
        });
        break;
      case "ACTOR_RETIRED":
      case "AGENT_RETIRED": {
        const s = spawned.get(e.scope);
        const teamId = "teamId" in e.data ? e.data.teamId : (s?.teamId ?? null);
        const named = "requeued" in e.data ? e.data.requeued : null;
        out.set(e.scope, {
          actorId: e.scope,
          teamId,
          kind: e.data.kind,
          hostId: e.data.hostId,
          cause: "retired",
          at,
          named,
        });
        break;
      }
      case "AGENT_RELEASED":
        out.delete(e.scope);
        break;
    }
  }
  return [...out.values()].sort((a, b) => a.at - b.at || a.actorId.localeCompare(b.actorId));
}

/** The task a failed actor held, as its TASK_STARTED said. */
export interface Held {
  taskId: string;
  workflowId: string;
  kind: string;
  /** Its TASK_STARTED's time (null: known from the failure's own event, not a start). */
  startedAt: number | null;
  epoch: number;
}

/**
 * The task an actor held when it failed at `at`: its last TASK_STARTED before then, unless
 * that attempt had ended by then (the task's TASK_COMPLETED or TASK_FAILED, its
 * TASK_ATTEMPT_STOPPED by the actor, or a TASK_ATTEMPT_FAILED of that attempt on its host).
 * An actor holds one attempt at a time, so its last start is the only candidate. `events`:
 * the task events of a window that begins before the attempt could have started, oldest first.
 */
export function heldAtLoss(events: readonly StoredEvent[], actorId: string, at: number): Held | null {
  let last: StoredEvent | undefined;
  for (const s of events) {
    if (s.at > at) break;
    if (s.event.type === "TASK_STARTED" && s.event.data.actorId === actorId) last = s;
  }
  if (last?.event.type !== "TASK_STARTED") return null;
  const start = last.event;
  for (const { event: e, at: t } of events) {
    if (t < last.at || t > at || e.type === "TASK_STARTED") continue;
    if (!("taskId" in e.data) || e.data.taskId !== start.data.taskId) continue;
    if (e.type === "TASK_COMPLETED" || e.type === "TASK_FAILED") return null;
    if (e.type === "TASK_ATTEMPT_STOPPED" && e.data.actorId === actorId) return null;
    if (
      e.type === "TASK_ATTEMPT_FAILED" &&
      e.data.hostId === start.data.hostId &&
      e.data.attempt === start.data.attempt
    )
      return null;
  }
  return {
    taskId: start.data.taskId,
    workflowId: start.scope,
    kind: start.data.kind,
    startedAt: last.at,
    epoch: start.data.epoch,
  };
}

/**
 * An actor's task history as the events stream still has it: the tasks of its TASK_STARTED
 * events (every attempt it began, admitted), latest first, each once, at most 50 (what a
 * replacement inherits: InheritedContextSchema). What it did before the stream's first event,
 * or what it kept in its machine's context beyond the task ids, is not rebuilt.
 */
export function rebuildHistory(events: readonly StoredEvent[], actorId: string): string[] {
  const out: string[] = [];
  for (let i = events.length - 1; i >= 0 && out.length < 50; i--) {
    const e = events[i]?.event;
    if (e?.type === "TASK_STARTED" && e.data.actorId === actorId && !out.includes(e.data.taskId))
      out.push(e.data.taskId);
  }
  return out;
}

const open = (n: Node): boolean => n.status !== "completed" && n.status !== "failed" && n.status !== "cancelled";

/**
 * What cannot finish before a task does: its unfinished ancestors, the root first (each waits
 * for its children), and its unfinished descendants (their outcomes go to it once it runs
 * again: delegation is idempotent, a re-run finds its children).
 */
export function chainOf(tasks: readonly Node[], taskId: string): { waiting: string[]; under: string[] } {
  const byId = new Map(tasks.map((t) => [t.taskId, t]));
  const waiting: string[] = [];
  for (let p = byId.get(taskId)?.parentTaskId; p; p = byId.get(p)?.parentTaskId) {
    const n = byId.get(p);
    if (n && open(n)) waiting.unshift(p);
  }
  const children = new Map<string, Node[]>();
  for (const t of tasks) {
    if (t.parentTaskId) children.set(t.parentTaskId, [...(children.get(t.parentTaskId) ?? []), t]);
  }
  const under: string[] = [];
  const queue = [...(children.get(taskId) ?? [])];
  for (let n = queue.shift(); n; n = queue.shift()) {
    if (open(n)) under.push(n.taskId);
    queue.push(...(children.get(n.taskId) ?? []));
  }
  return { waiting, under };
}

/**
 * Whether an unfinished task lies on one of its workflow's longest unfinished chains (from the
 * root, through unfinished tasks only: {@link criticalPath}): the chain from the root to it and
 * on down its longest unfinished branch is as long as the critical path. Of chains as long,
 * `criticalPath` names one; each of them holds the workflow back as much.
 */
export function onLongestChain(tasks: readonly Node[], taskId: string): boolean {
  const byId = new Map(tasks.map((t) => [t.taskId, t]));
  const node = byId.get(taskId);
  if (!node || !open(node)) return false;
  let above = 0;
  for (let p = node.parentTaskId; p; p = byId.get(p)?.parentTaskId ?? null) {
    const n = byId.get(p);
    if (!n || !open(n)) return false;
    above++;
  }
  const children = new Map<string, Node[]>();
  for (const t of tasks) {
    if (t.parentTaskId) children.set(t.parentTaskId, [...(children.get(t.parentTaskId) ?? []), t]);
  }
  const depth = (n: Node): number =>
    1 + Math.max(0, ...(children.get(n.taskId) ?? []).filter(open).map((c) => depth(c)));
  return above + depth(node) === criticalPath(tasks).length;
}

/**
 * The estimate of a blocked chain: each of its tasks' kinds' mean working time (start to
 * result, from the supervisor's stage histogram), added up, as if each task ran once more, one
 * after another: an upper bound (the tasks above a lost one are running already and only wait;
 * a director's working time includes its children's). Null when none of its kinds has been
 * measured yet; those unmeasured count as 0 and are listed.
 */
export function estimate(
  kinds: readonly string[],
  meanMs: ReadonlyMap<string, number>,
): { ms: number | null; unmeasured: string[] } {
  const unmeasured = [...new Set(kinds.filter((k) => !meanMs.has(k)))];
  if (kinds.length === 0 || unmeasured.length === new Set(kinds).size) return { ms: null, unmeasured };
  return { ms: Math.round(kinds.reduce((a, k) => a + (meanMs.get(k) ?? 0), 0)), unmeasured };
}

/** One affected workflow as the resume order sees it. */
export interface ResumeRow {
  workflowId: string;
  priority: number;
  criticalPathLength: number;
  /** Of the affected workflows, those it waits for (its `waitingFor`). */
  waitsFor: string[];
}

/**
 * The order to resume affected workflows in. `priority`: higher priority first, then the longer
 * critical path (more left to do), then the id. `dependency_aware`: a workflow comes after
 * every affected workflow it waits for (a topological order), and a workflow others wait for
 * takes the highest priority of those waiting on it, directly or not (what unblocks urgent work
 * is urgent); ties as for `priority`. A cycle, which submit's `after` cannot make, is broken by
 * the same ties.
 */
export function resumeOrder<R extends ResumeRow>(rows: readonly R[], rule: "dependency_aware" | "priority"): R[] {
  const ids = new Set(rows.map((r) => r.workflowId));
  const effective = new Map(rows.map((r) => [r.workflowId, r.priority]));
  if (rule === "dependency_aware") {
    for (let pass = 0; pass < rows.length; pass++) {
      for (const r of rows) {
        for (const w of r.waitsFor) {
          if (!ids.has(w)) continue;
          effective.set(w, Math.max(effective.get(w) ?? 0, effective.get(r.workflowId) ?? 0));
        }
      }
    }
  }
  const p = (r: R) => effective.get(r.workflowId) ?? r.priority;
  const sorted = [...rows].sort(
    (a, b) => p(b) - p(a) || b.criticalPathLength - a.criticalPathLength || a.workflowId.localeCompare(b.workflowId),
  );
  if (rule === "priority") return sorted;
  const done = new Set<string>();
  const out: R[] = [];
  while (out.length < sorted.length) {
    const ready = sorted.find((r) => !done.has(r.workflowId) && r.waitsFor.every((w) => !ids.has(w) || done.has(w)));
    const next = ready ?? sorted.find((r) => !done.has(r.workflowId));
    if (!next) break;
    done.add(next.workflowId);
    out.push(next);
  }
  return out;
}
