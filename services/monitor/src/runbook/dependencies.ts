/**
 * `/coordination-hub dependency-analysis`: the graph of workflows that wait for workflows (a
 * submit's `after`, supervisor dependencies.ts), read from the supervisor (`sup.workflow.list`,
 * `sup.status` for the finished ones named, `sup.debug.task` for each root's priority and
 * `sup.debug.workflow` for each unfinished one's task tree). What it computes, by rule:
 *
 * - which workflows: every running one (waiting and paused included), or the ones named and the
 *   running ones that wait for them, transitively; then, transitively, every workflow those
 *   wait for, finished or missing (at most {@link MAX_GRAPH});
 * - per workflow: its status (`waiting` while some of its `after` have not completed), its
 *   root's priority, progress (tasks finished of those created) and its critical path (the
 *   resource manager's: the longest chain of unfinished tasks from the root);
 * - edges, one per `after` entry: satisfied (completed), awaited, or broken (failed,
 *   cancelled, missing);
 * - order: topological, dependencies first; of the workflows free at one step, the higher
 *   priority first, then the earlier submitted, then by id (Kahn's algorithm with that choice);
 *   a submit names only workflows that exist, so the graph has no cycle (were one to appear, its
 *   members would follow the rest, in the same order);
 * - blocked: each unfinished workflow that waits, directly or through unfinished ones, for a
 *   broken one; the nearest such (breadth first) and the unfinished ones between. The
 *   supervisor fails such a workflow as soon as it sees the dependency end, so this lists what
 *   it has not got to yet;
 * - longest chain: the longest path of unfinished workflows along the edges, of paths as long
 *   the one with more tasks on its workflows' critical paths, then the first in `order`.
 */

import {
  DEPENDENCY_FOCUS,
  type DependencyAnalysisReply,
  type DependencyAnalysisRequest,
  type DependencyNode,
  type DependencyStatus,
  NotFoundError,
  type OpReply,
  toCadreError,
} from "@cadre/protocol";
import { ask, criticalPath, type RunbookDeps } from "./resource-manager.js";

/** The most workflows one analysis takes in (each costs a few supervisor calls). */
export const MAX_GRAPH = 1000;

type Listed = OpReply<"sup.workflow.list">["workflows"][number];
type Edge = DependencyAnalysisReply["edges"][number];

/** What the graph rules need of a workflow. */
export interface GraphNode {
  workflowId: string;
  status: DependencyStatus;
  priority: number | null;
  submittedAt: number | null;
  after: readonly string[];
  /** Tasks on its critical path. */
  critical: number;
}

const BROKEN = new Set<DependencyStatus>(["failed", "cancelled", "missing"]);
const FINISHED = new Set<DependencyStatus>(["completed", "failed", "cancelled", "missing"]);
export const unfinished = (s: DependencyStatus): boolean => !FINISHED.has(s);

/** The edges, the order, the blocked ones and the longest chain (the rules at the top). */
export function dependencyGraph(
  nodes: readonly GraphNode[],
): Pick<DependencyAnalysisReply, "edges" | "order" | "blocked" | "longestChain"> {
  const byId = new Map(nodes.map((n) => [n.workflowId, n]));
  const edges: Edge[] = [];
  for (const n of nodes) {
    for (const dep of n.after) {
      const s = byId.get(dep)?.status ?? "missing";
      edges.push({
        dependency: dep,
        dependent: n.workflowId,
        state: s === "completed" ? "satisfied" : BROKEN.has(s) ? "broken" : "awaited",
      });
    }
  }
  const order = topological(nodes);
  const position = new Map(order.map((id, i) => [id, i]));

  const blocked: DependencyAnalysisReply["blocked"] = [];
  for (const n of nodes) {
    if (!unfinished(n.status)) continue;
    const found = nearestBroken(n, byId);
    if (found) blocked.push({ workflowId: n.workflowId, ...found });
  }

  // Longest path of unfinished workflows, in topological order (each one's dependencies first).
  const best = new Map<string, { path: string[]; critical: number }>();
  let top: { path: string[]; critical: number } = { path: [], critical: 0 };
  for (const id of order) {
    const n = byId.get(id);
    if (!n || !unfinished(n.status)) continue;
    let prev: { path: string[]; critical: number } = { path: [], critical: 0 };
    for (const dep of n.after) {
      const p = best.get(dep);
      if (p && longer(p, prev)) prev = p;
    }
    const mine = { path: [...prev.path, id], critical: prev.critical + n.critical };
    best.set(id, mine);
    if (longer(mine, top)) top = mine;
  }
  blocked.sort((a, b) => (position.get(a.workflowId) ?? 0) - (position.get(b.workflowId) ?? 0));
  return {
    edges,
    order,
    blocked,
    longestChain: { workflows: top.path, length: top.path.length, criticalTasks: top.critical },
  };
}

/** Strictly longer, or as long with more critical tasks: ties keep the first found. */
const longer = (a: { path: string[]; critical: number }, b: { path: string[]; critical: number }): boolean =>
  a.path.length > b.path.length || (a.path.length === b.path.length && a.critical > b.critical);

/** Dependencies first; of those free at one step, higher priority, earlier submitted, then id. */
function topological(nodes: readonly GraphNode[]): string[] {
  const ids = new Set(nodes.map((n) => n.workflowId));
  const pending = new Map(nodes.map((n) => [n.workflowId, new Set(n.after.filter((d) => ids.has(d)))]));
  const first = (a: GraphNode, b: GraphNode): number =>
    (b.priority ?? Number.NEGATIVE_INFINITY) - (a.priority ?? Number.NEGATIVE_INFINITY) ||
    (a.submittedAt ?? Number.NEGATIVE_INFINITY) - (b.submittedAt ?? Number.NEGATIVE_INFINITY) ||
    a.workflowId.localeCompare(b.workflowId);
  const order: string[] = [];
  const left = [...nodes];
  while (left.length > 0) {
    const ready = left.filter((n) => pending.get(n.workflowId)?.size === 0).sort(first);
    // Only a cycle leaves none ready: its members follow, in the same order.
    const next = ready[0] ?? [...left].sort(first)[0];
    if (!next) break;
    order.push(next.workflowId);
    left.splice(left.indexOf(next), 1);
    for (const p of pending.values()) p.delete(next.workflowId);
  }
  return order;
}

/** The broken workflow nearest to `n` along its dependencies, through unfinished ones only. */
function nearestBroken(
  n: GraphNode,
  byId: Map<string, GraphNode>,
): { by: string; byStatus: "failed" | "cancelled" | "missing"; through: string[] } | undefined {
  const via = new Map<string, string | null>([[n.workflowId, null]]);
  const queue = [n.workflowId];
  for (let id = queue.shift(); id !== undefined; id = queue.shift()) {
    for (const dep of byId.get(id)?.after ?? []) {
      if (via.has(dep)) continue;
      via.set(dep, id);
      const s = byId.get(dep)?.status ?? "missing";
      if (s === "failed" || s === "cancelled" || s === "missing") {
        const through: string[] = [];
        for (let at = id; at !== n.workflowId; at = via.get(at) ?? n.workflowId) through.unshift(at);
        return { by: dep, byStatus: s, through };
      }
      if (unfinished(s)) queue.push(dep);
    }
  }
  return undefined;
}

/** A record as the supervisor answers it (listed, or from sup.status), or null when missing. */
type Known = { record: Listed } | null;

/** The shown status: waiting while it awaits some of its after, paused by its control. */
function statusOf(k: Known): DependencyStatus {
  if (!k) return "missing";
  const w = k.record;
  if (w.status !== "running") return w.status;
  if ((w.waitingFor?.length ?? 0) > 0) return "waiting";
  return w.control?.paused ? "paused" : "running";
}

/** A workflow's record and control, or null when the supervisor has none (NOT_FOUND). */
async function lookUp(d: RunbookDeps, workflowId: string): Promise<Known> {
  try {
    const { workflow, control } = await ask(d, "sup.status", { workflowId });
    return { record: { ...workflow, control } };
  } catch (err) {
    if (toCadreError(err).code === "NOT_FOUND") return null;
    throw err;
  }
}

/** The workflows to analyse (the rules at the top), with what the supervisor holds of each. */
async function gather(d: RunbookDeps, named: readonly string[] | undefined): Promise<Map<string, Known>> {
  const { workflows: running } = await ask(d, "sup.workflow.list", { status: "running", limit: MAX_GRAPH });
  const known = new Map<string, Known>(running.map((w) => [w.workflowId, { record: w }]));
  const graph = new Map<string, Known>();
  if (named) {
    for (const id of named) {
      const k = known.get(id) ?? (await lookUp(d, id));
      if (!k) throw new NotFoundError("workflow", id);
      graph.set(id, k);
    }
    // The running ones that wait for these, transitively.
    for (let grew = true; grew; ) {
      grew = false;
      for (const w of running) {
        if (graph.has(w.workflowId) || !(w.after ?? []).some((dep) => graph.has(dep))) continue;
        graph.set(w.workflowId, { record: w });
        grew = true;
      }
    }
  } else {
    for (const [id, k] of known) graph.set(id, k);
  }
  // What they wait for, transitively, whatever its status.
  const queue = [...graph.keys()];
  for (let id = queue.shift(); id !== undefined && graph.size < MAX_GRAPH; id = queue.shift()) {
    for (const dep of graph.get(id)?.record.after ?? []) {
      if (graph.has(dep) || graph.size >= MAX_GRAPH) continue;
      graph.set(dep, known.get(dep) ?? (await lookUp(d, dep)));
      queue.push(dep);
    }
  }
  return graph;
}

/** One workflow's row: priority from its root task, critical path from its tree when unfinished. */
async function row(d: RunbookDeps, workflowId: string, k: Known): Promise<DependencyNode> {
  const status = statusOf(k);
  const empty = { length: 0, tasks: [], kinds: [] };
  if (!k) {
    const none = { team: null, priority: null, submittedAt: null, after: [], waitingFor: [] };
    return { workflowId, status, ...none, progress: { done: 0, total: 0 }, criticalPath: empty };
  }
  const w = k.record;
  const [root, tree] = await Promise.all([
    ask(d, "sup.debug.task", { taskId: w.rootTaskId }).catch(() => null),
    unfinished(status) ? ask(d, "sup.debug.workflow", { workflowId }) : null,
  ]);
  const path = tree ? criticalPath(tree.tasks) : [];
  const t = w.tasks;
  return {
    workflowId,
    team: w.teamName,
    status,
    priority: root?.record.task.priority ?? null,
    submittedAt: w.submittedAt,
    after: w.after ?? [],
    waitingFor: w.status === "running" ? (w.waitingFor ?? []) : [],
    progress: { done: t.completed + t.failed + t.cancelled, total: t.total },
    criticalPath: { length: path.length, tasks: path.map((n) => n.taskId), kinds: path.map((n) => n.kind) },
    ...(w.error ? { error: { code: w.error.code, message: w.error.message.slice(0, 1000) } } : {}),
  };
}

export async function dependencyAnalysis(
  d: RunbookDeps,
  req: DependencyAnalysisRequest,
): Promise<DependencyAnalysisReply> {
  const at = d.clock.now();
  const ignored = (req.focus ?? [])
    .filter((f) => !(DEPENDENCY_FOCUS as readonly string[]).includes(f))
    .map((f) => `focus ${f} (not an analysis Cadre makes; it computes ${DEPENDENCY_FOCUS.join(" and ")})`);
  const graph = await gather(d, req.workflows);
  const workflows = await Promise.all([...graph].map(([id, k]) => row(d, id, k)));
  const computed = dependencyGraph(
    workflows.map((w) => ({
      workflowId: w.workflowId,
      status: w.status,
      priority: w.priority,
      submittedAt: w.submittedAt,
      after: w.after,
      critical: w.criticalPath.length,
    })),
  );
  const position = new Map(computed.order.map((id, i) => [id, i]));
  workflows.sort((a, b) => (position.get(a.workflowId) ?? 0) - (position.get(b.workflowId) ?? 0));
  return { at, scope: req.scope ?? null, workflows, ...computed, ignored };
}
