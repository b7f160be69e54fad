/**
 * `/workflow-recovery analyze-cascade-failure`: seed 003's agent pool failure, over what Cadre
 * records. It reads the events stream (actor, host and task events: runtime readEventLog) and
 * the supervisor (actors, hosts, running workflows, their task trees, stage times, the teams),
 * and computes, by the rules of cascade-rules.ts:
 *
 * - the failed actors of the window (`since_ms`): lost with their host (host_lost, or
 *   host_restarted when it came back as a new incarnation first), quarantined, retired; each
 *   with its team, kind, host, when, the task it held then, and the actor placed in its stead
 *   (protocol `inStead`);
 * - the hosts declared unreachable in the window or unreachable now;
 * - per workflow whose tasks they held: where each task is now (its status and holder in the
 *   tree, its reassignment), the chains waiting on it, its critical path, its impact, the
 *   workflows that wait for it (`after`);
 * - a recovery plan: per kind that lost actors, what to do (transfer_context when replacements
 *   run, place when replicas are missing and a host has room, free_capacity when none has); the
 *   order to resume the workflows in (resumeOrder); an estimate (estimate: the blocked chain's
 *   kinds' mean working time, added up; the longest of the workflows').
 *
 * RECOVERY_PLAN_GENERATED announces the plan when something failed in the window.
 */

import {
  type CascadeReply,
  type CascadeRequest,
  inStead,
  type OpReply,
  rootTaskId,
  subjects,
  toCadreError,
} from "@cadre/protocol";
import { type EventLog, readEventLog } from "@cadre/runtime";
import {
  chainOf,
  estimate,
  type Failure,
  failuresIn,
  type Held,
  heldAtLoss,
  onLongestChain,
  type ResumeRow,
  resumeOrder,
  workflowOf,
} from "./cascade-rules.js";
import { ask, criticalPath, type RunbookDeps } from "./resource-manager.js";

/** The most events of each category one analysis reads (it says `capped` when it hit one). */
export const MAX_ACTOR_EVENTS = 20_000;
export const MAX_TASK_EVENTS = 100_000;

type Tree = OpReply<"sup.debug.workflow">;
type Workflow = CascadeReply["workflows"][number];
type Row = NonNullable<Workflow["tasks"]>[number];

const EMPTY: EventLog = { events: [], skipped: 0, failures: [], capped: false };

/**
 * The task events that can show what the failed actors held: from the earliest failure back
 * by one attempt's time limit (an actor holds an attempt at most `tasks.attemptTimeoutMs`), and
 * not before the earliest of their spawns when every one's is known.
 */
export function taskWindowStart(
  failures: readonly { actorId: string; at: number }[],
  spawnedAt: ReadonlyMap<string, number>,
  attemptTimeoutMs: number,
): number {
  const first = Math.min(...failures.map((f) => f.at));
  const spawns = failures.map((f) => spawnedAt.get(f.actorId));
  const floor = spawns.every((t) => t !== undefined) ? Math.min(...(spawns as number[])) : 0;
  return Math.max(floor, first - attemptTimeoutMs - 1000);
}

/** The task a failure stopped: its own event's, or the actor's last unfinished start. */
function heldBy(f: Failure, tasks: EventLog): Held | null {
  if (f.cause === "host_lost" || f.cause === "host_restarted") return heldAtLoss(tasks.events, f.actorId, f.at);
  if (!f.named) return null;
  return { taskId: f.named, workflowId: workflowOf(f.named), kind: f.kind ?? "", startedAt: null, epoch: 0 };
}

export async function analyzeCascade(d: RunbookDeps, req: CascadeRequest): Promise<CascadeReply> {
  const at = d.clock.now();
  const since = at - req.since_ms;
  const hostDead = d.config.heartbeat.hostDeadAfterMs;
  const [actorLog, hostLog] = await Promise.all([
    readEventLog(d.nc, { filter: subjects.eventsOf("actor"), sinceMs: since, max: MAX_ACTOR_EVENTS }),
    readEventLog(d.nc, { filter: subjects.eventsOf("host"), sinceMs: since - 2 * hostDead, max: MAX_ACTOR_EVENTS }),
  ]);
  const merged = [...actorLog.events, ...hostLog.events].sort((a, b) => a.seq - b.seq);
  const failures = failuresIn(merged, hostDead).filter(
    (f) =>
      f.at >= since &&
      (req.failure_scope === "agent_pool_cascade" ||
        (req.failure_scope === "host_loss" ? f.cause.startsWith("host_") : f.cause === "quarantined")),
  );
  const spawnedAt = new Map(
    actorLog.events.flatMap((s) => (s.event.type === "ACTOR_SPAWNED" ? [[s.event.scope, s.at] as const] : [])),
  );
  const taskLog =
    failures.length > 0
      ? await readEventLog(d.nc, {
          filter: subjects.eventsOf("task"),
          sinceMs: taskWindowStart(failures, spawnedAt, d.config.tasks.attemptTimeoutMs),
          max: MAX_TASK_EVENTS,
        })
      : EMPTY;
  const [{ actors }, { hosts }, { workflows: running }, stages] = await Promise.all([
    ask(d, "sup.actor.list", {}),
    ask(d, "sup.host.list", {}),
    ask(d, "sup.workflow.list", { status: "running", limit: 1000 }),
    ask(d, "sup.perf.stages", {}),
  ]);
  const hostNow = new Map(hosts.map((h) => [h.hostId, h]));
  const liveHost = (id: string) => ["alive", "suspect"].includes(hostNow.get(id)?.state ?? "");
  const liveActors = actors.filter(
    (a) => a.status === "active" && liveHost(a.hostId) && hostNow.get(a.hostId)?.incarnation === a.incarnation,
  );
  const stead = inStead(liveActors, failures);
  const held = new Map(failures.map((f) => [f.actorId, heldBy(f, taskLog)]));
  const agents = failures.map(({ named: _named, ...f }) => ({
    ...f,
    taskId: held.get(f.actorId)?.taskId ?? null,
    replacement: stead.get(f.actorId) ?? null,
  }));

  // Per workflow whose tasks they held: the tree now, and what waits.
  const byWorkflow = new Map<string, { held: Held; by: string }[]>();
  for (const f of failures) {
    const h = held.get(f.actorId);
    if (h) byWorkflow.set(h.workflowId, [...(byWorkflow.get(h.workflowId) ?? []), { held: h, by: f.actorId }]);
  }
  const reassigned = new Map<string, { epoch: number; at: number; fromHostId: string }>();
  for (const { event: e, at: t } of taskLog.events) {
    if (e.type === "TASK_REASSIGNED")
      reassigned.set(e.data.taskId, { epoch: e.data.epoch, at: t, fromHostId: e.data.fromHostId });
  }
  const meanMs = new Map(
    stages.kinds.flatMap((k) => {
      const w = k.stages.find((s) => s.stage === "working");
      return w && w.count > 0 ? [[k.kind, (w.sumSeconds / w.count) * 1000] as const] : [];
    }),
  );
  const workflows: Workflow[] = [];
  const order: ResumeRow[] = [];
  const estimates = new Map<string, number | null>();
  const unmeasured = new Set<string>();
  for (const [workflowId, list] of byWorkflow) {
    const [tree, priority] = await Promise.all([
      ask(d, "sup.debug.workflow", { workflowId }).catch((err) => {
        if (toCadreError(err).code === "NOT_FOUND") return null;
        throw err;
      }),
      ask(d, "sup.debug.task", { taskId: rootTaskId(workflowId) })
        .then((t) => t.record.task.priority)
        .catch(() => 0),
    ]);
    if (!tree) continue;
    const row = workflowRow(tree, priority, list, { reassigned, running, liveHost }, req);
    workflows.push(row.workflow);
    // The longest blocked chain sets the workflow's estimate.
    const kindOf = new Map(tree.tasks.map((t) => [t.taskId, t.kind]));
    let best: { ms: number | null; length: number } = { ms: null, length: -1 };
    for (const c of row.chains) {
      const kinds = [...c.waiting, c.taskId].map((id) => kindOf.get(id) ?? "");
      const e = estimate(kinds, meanMs);
      for (const k of e.unmeasured) unmeasured.add(k);
      if (kinds.length > best.length || (kinds.length === best.length && (e.ms ?? 0) > (best.ms ?? 0)))
        best = { ms: e.ms, length: kinds.length };
    }
    estimates.set(workflowId, best.ms);
    if (tree.workflow.status === "running") {
      order.push({
        workflowId,
        priority,
        criticalPathLength: criticalPath(tree.tasks).length,
        waitsFor: tree.workflow.waitingFor ?? [],
      });
    }
  }
  // Workflows waiting for an affected one follow it (they start once it completes).
  for (const w of running) {
    if (order.some((o) => o.workflowId === w.workflowId)) continue;
    const waits = (w.waitingFor ?? []).filter((id) => byWorkflow.has(id));
    if (waits.length === 0) continue;
    const priority = await ask(d, "sup.debug.task", { taskId: w.rootTaskId })
      .then((t) => t.record.task.priority)
      .catch(() => 0);
    order.push({ workflowId: w.workflowId, priority, criticalPathLength: 0, waitsFor: waits });
  }
  const ordered = resumeOrder(order, req.recovery_prioritization);
  const recovery =
    failures.length === 0
      ? null
      : {
          strategy:
            req.recovery_prioritization === "dependency_aware"
              ? "dependency_aware_redistribution"
              : "priority_redistribution",
          replacements: await replacementPlan(d, failures, liveActors, stead, hosts),
          order: ordered.map((o) => ({ ...o, estimatedMs: estimates.get(o.workflowId) ?? null })),
          estimatedMs: maxOf([...estimates.values()]),
          basis:
            "per workflow, the mean working time of each kind on its longest blocked chain (the lost task and the unfinished tasks waiting on it), added up as if each ran once more in turn; the longest of the workflows'",
          unmeasured: [...unmeasured].filter((k) => k !== "").sort(),
        };
  if (recovery) {
    d.emit({
      type: "RECOVERY_PLAN_GENERATED",
      category: "coordination",
      scope: "dependency_recovery",
      data: {
        strategy: recovery.strategy,
        estimated_time_ms: recovery.estimatedMs,
        agents_lost: failures.length,
        agents_to_replace: recovery.replacements.reduce((n, r) => n + r.needed, 0),
        workflows: ordered.map((o) => o.workflowId).slice(0, 1000),
        workflow_continuity: workflows.some((w) => w.status === "failed" || w.status === "cancelled")
          ? "interrupted"
          : "maintained",
      },
    });
  }
  return {
    at,
    since,
    agents,
    hosts: hostRows(failures, hostLog, hostNow, since),
    workflows,
    recovery,
    capped: actorLog.capped || hostLog.capped || taskLog.capped,
  };
}

const maxOf = (values: (number | null)[]): number | null => {
  const known = values.filter((v): v is number => v !== null);
  return known.length > 0 ? Math.max(...known) : null;
};

/**
 * One affected workflow: its held tasks now, their chains, its critical path and dependents. A
 * tree's holder on a host that is not live is no holder: the supervisor's view of what hosts hold
 * lags their loss until it forgets them, and the task waits for a live actor (queued).
 */
function workflowRow(
  tree: Tree,
  priority: number,
  list: { held: Held; by: string }[],
  now: {
    reassigned: Map<string, { epoch: number; at: number; fromHostId: string }>;
    running: OpReply<"sup.workflow.list">["workflows"];
    liveHost: (hostId: string) => boolean;
  },
  req: CascadeRequest,
): { workflow: Workflow; chains: { taskId: string; waiting: string[]; under: string[] }[] } {
  const { reassigned, running, liveHost } = now;
  const nodes = new Map(tree.tasks.map((t) => [t.taskId, t]));
  const tasks: Row[] = list.map(({ held: h, by }) => {
    const n = nodes.get(h.taskId);
    const r = reassigned.get(h.taskId);
    const stale = n?.holder != null && !liveHost(n.holder.hostId);
    return {
      taskId: h.taskId,
      kind: n?.kind ?? h.kind,
      heldBy: by,
      startedAt: h.startedAt,
      status: stale && n?.status === "running" ? "queued" : (n?.status ?? "unknown"),
      holder: stale ? null : (n?.holder ?? null),
      epoch: n?.epoch ?? h.epoch,
      reassigned: r && r.epoch > h.epoch ? r : null,
      onCriticalPath: onLongestChain(tree.tasks, h.taskId),
    };
  });
  const unfinished = tasks.filter((t) => ["queued", "running", "parked"].includes(t.status));
  const chains = unfinished.map((t) => ({ taskId: t.taskId, ...chainOf(tree.tasks, t.taskId) }));
  const w = tree.workflow;
  const impact = unfinished.some((t) => t.onCriticalPath)
    ? "critical_path_blocked"
    : unfinished.length > 0
      ? "degraded"
      : "recovered";
  const workflow: Workflow = {
    workflowId: w.workflowId,
    team: w.teamName,
    status: w.status,
    priority,
    impact,
    heldTasks: tasks.map((t) => t.taskId),
    ...(req.impact_assessment === "comprehensive" ? { tasks } : {}),
    ...(req.dependency_analysis
      ? {
          chains,
          criticalPath: criticalPath(tree.tasks).map((t) => t.taskId),
          after: w.after ?? [],
          dependents: running.filter((x) => (x.waitingFor ?? []).includes(w.workflowId)).map((x) => x.workflowId),
        }
      : {}),
  };
  return { workflow, chains };
}

/** Per kind that lost actors: replicas now, those placed in the lost ones' stead, and what to do. */
async function replacementPlan(
  d: RunbookDeps,
  failures: readonly Failure[],
  liveActors: OpReply<"sup.actor.list">["actors"],
  stead: Map<string, string>,
  hosts: OpReply<"sup.host.list">["hosts"],
): Promise<NonNullable<CascadeReply["recovery"]>["replacements"]> {
  const kinds = new Map<string, { teamId: string; kind: string; lost: Failure[] }>();
  for (const f of failures) {
    if (!f.teamId || !f.kind) continue;
    const k = `${f.teamId}/${f.kind}`;
    kinds.set(k, { teamId: f.teamId, kind: f.kind, lost: [...(kinds.get(k)?.lost ?? []), f] });
  }
  const room = hosts.filter((h) => h.state === "alive" && !h.cordoned && h.maxActors > h.actors);
  const used = hosts.filter((h) => h.state === "alive").reduce((n, h) => n + h.actors, 0);
  const spare = d.config.orchestration_limits.max_concurrent_agents - used;
  const out = [];
  for (const { teamId, kind, lost } of kinds.values()) {
    const spec = (await d.team(teamId))?.kinds[kind];
    const live = liveActors.filter((a) => a.teamId === teamId && a.kindName === kind).length;
    const replicas = spec?.replicas ?? 0;
    const needed = Math.max(0, replicas - live);
    const fit = room.filter((h) => !spec?.hosts || spec.hosts.includes(h.hostId)).map((h) => h.hostId);
    out.push({
      teamId,
      kind,
      lost: lost.length,
      live,
      replicas,
      placed: lost.flatMap((f) => stead.get(f.actorId) ?? []),
      needed,
      hosts: fit,
      action:
        needed === 0
          ? ("transfer_context" as const)
          : fit.length > 0 && spare > 0
            ? ("place" as const)
            : ("free_capacity" as const),
    });
  }
  return out;
}

/** The hosts declared unreachable in the window, those unreachable now, and those that lost actors. */
function hostRows(
  failures: readonly Failure[],
  log: EventLog,
  now: Map<string, OpReply<"sup.host.list">["hosts"][number]>,
  since: number,
): CascadeReply["hosts"] {
  const rows = new Map<string, CascadeReply["hosts"][number]>();
  const row = (hostId: string) => {
    const r = rows.get(hostId) ?? {
      hostId,
      state: now.get(hostId)?.state ?? "forgotten",
      unreachableAt: null,
      healedAt: null,
      actorsLost: 0,
    };
    rows.set(hostId, r);
    return r;
  };
  for (const { event: e, at } of log.events) {
    if (at < since) continue;
    if (e.type === "HOST_UNREACHABLE") Object.assign(row(e.scope), { unreachableAt: at, healedAt: null });
    if (e.type === "HOST_HEALED" && rows.has(e.scope)) row(e.scope).healedAt = at;
  }
  for (const h of now.values()) if (h.state === "unreachable") row(h.hostId);
  for (const f of failures) if (f.hostId && f.cause.startsWith("host_")) row(f.hostId).actorsLost++;
  return [...rows.values()].sort((a, b) => a.hostId.localeCompare(b.hostId));
}
