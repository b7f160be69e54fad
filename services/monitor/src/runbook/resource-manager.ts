/**
 * `/resource-manager`: seed 003's first incident, resource exhaustion, over what Cadre measures
 * and controls. The analysis reads the supervisor (hosts, workflows and their task trees,
 * teams, stage times) and the services' reports (heap); the reallocation acts through the
 * supervisor's workflow controls (pause, cap, guarantee). What each computes:
 *
 * - utilization: actors placed (each takes a slot of `max_concurrent_agents`) and busy, over the
 *   cluster's capacity (`max_concurrent_agents`, or the live hosts' `maxActors` if fewer); per host the 1-minute load over its CPUs and its heap over its
 *   limit; per running workflow its priority, running agent and coordinator tasks, queued,
 *   parked, cap and guarantee;
 * - exhausted: actors placed at 95% of the capacity or more (no team can get another agent), memory past the monitor's memory threshold, CPU at 90%;
 * - reallocation: every running workflow below the highest priority, lowest first, with the agents
 *   pausing it frees at once (its running agent tasks);
 * - critical path (for `maintain_critical_path`): the longest chain of unfinished tasks from the
 *   root; the cap never goes below the agent tasks of it that run now.
 */

import {
  bottlenecks,
  type Config,
  NotFoundError,
  type OpReply,
  type OpReplyInput,
  type OpRequestInput,
  type ReallocationRequest,
  type ServiceReport,
  type Team,
  type TypedEvent,
  type UtilizationReply,
} from "@cadre/protocol";
import { type Clock, type LeaseHolderOperationName, type NatsConnection, SupervisorClient } from "@cadre/runtime";

/** What the runbook commands need of the monitor. */
export interface RunbookDeps {
  nc: NatsConnection;
  sender: string;
  config: Config;
  clock: Clock;
  emit: (event: TypedEvent) => void;
  /** The monitor's six metrics with their thresholds and states (mon.status). */
  status(): OpReplyInput<"mon.status">;
  /** The services' current reports. */
  reports(): ServiceReport[];
  /** A team's definition (the registry's record), for its kinds' roles. */
  team(teamId: string): Promise<Team | undefined>;
}

/** One call to a supervisor operation, as the monitor. */
export function ask<N extends LeaseHolderOperationName>(
  d: RunbookDeps,
  op: N,
  body: OpRequestInput<N>,
): Promise<OpReply<N>> {
  return new SupervisorClient(d.nc, { sender: d.sender, timeoutMs: d.config.requestTimeoutMs }).call(op, body);
}

type Tree = OpReply<"sup.debug.workflow">;
type Node = Tree["tasks"][number];

/** A running workflow with its tree and priority. */
interface Running {
  tree: Tree;
  priority: number;
  roles: Map<string, string>;
}

const pct = (part: number, whole: number): number => (whole > 0 ? Math.round((part / whole) * 1000) / 10 : 0);

/** The running workflows, their trees, priorities and the roles of their kinds. */
async function running(d: RunbookDeps): Promise<Running[]> {
  const { workflows } = await ask(d, "sup.workflow.list", { status: "running", limit: 1000 });
  return Promise.all(
    workflows.map(async (w) => {
      const [tree, root, team] = await Promise.all([
        ask(d, "sup.debug.workflow", { workflowId: w.workflowId }),
        ask(d, "sup.debug.task", { taskId: w.rootTaskId }),
        d.team(w.teamId),
      ]);
      const roles = new Map(Object.entries(team?.kinds ?? {}).map(([name, k]) => [name, k.role as string]));
      return { tree, priority: root.record.task.priority, roles };
    }),
  );
}

const isAgent = (r: Running, n: Node): boolean => r.roles.get(n.kind) === "agent";

/**
 * The longest chain of unfinished tasks from the root. Of chains as long, the one with more
 * tasks running now (their agents are what a cap keeps), then the first.
 */
export function criticalPath(tasks: readonly Node[]): Node[] {
  const open = (n: Node) => n.status !== "completed" && n.status !== "failed" && n.status !== "cancelled";
  const children = new Map<string | null, Node[]>();
  for (const t of tasks) children.set(t.parentTaskId, [...(children.get(t.parentTaskId) ?? []), t]);
  const runs = (p: Node[]) => p.filter((t) => t.status === "running").length;
  const longest = (n: Node): Node[] => {
    let best: Node[] = [];
    for (const c of children.get(n.taskId) ?? []) {
      if (!open(c)) continue;
      const p = longest(c);
      if (p.length > best.length || (p.length === best.length && runs(p) > runs(best))) best = p;
    }
    return [n, ...best];
  };
  const root = (children.get(null) ?? [])[0];
  return root && open(root) ? longest(root) : [];
}

/** emergency-analysis and analyze-utilization. */
export async function analyze(d: RunbookDeps): Promise<UtilizationReply> {
  const now = d.clock.now();
  const [{ hosts }, flows, stages] = await Promise.all([
    ask(d, "sup.host.list", {}),
    running(d),
    ask(d, "sup.perf.stages", {}),
  ]);
  const reports = new Map(d.reports().map((r) => [`${r.service}:${r.id}`, r]));
  const live = hosts.filter((h) => h.state === "alive" || h.state === "suspect");
  const hostRows = hosts.map((h) => {
    const r = reports.get(`agent-host:${h.hostId}`);
    return {
      hostId: h.hostId,
      state: h.state,
      cpuPercent: Math.round(h.load * 1000) / 10,
      memoryPercent: r ? pct(r.heapUsedBytes, r.heapLimitBytes) : null,
      actors: h.actors,
      busy: h.busy,
      maxActors: h.maxActors,
    };
  });
  const capacity = Math.min(
    d.config.orchestration_limits.max_concurrent_agents,
    live.reduce((a, h) => a + h.maxActors, 0),
  );
  const busy = live.reduce((a, h) => a + h.busy, 0);
  const placed = live.reduce((a, h) => a + h.actors, 0);
  const workflows = flows
    .map((f) => {
      const w = f.tree.workflow;
      const c = f.tree.control;
      const runningNodes = f.tree.tasks.filter((t) => t.status === "running");
      const agents = runningNodes.filter((t) => isAgent(f, t)).length;
      return {
        workflowId: w.workflowId,
        team: w.teamName,
        priority: f.priority,
        paused: c?.paused ?? false,
        runningAgents: agents,
        runningCoordinators: runningNodes.length - agents,
        queued: f.tree.tasks.filter((t) => t.status === "queued").length,
        parked: f.tree.tasks.filter((t) => t.status === "parked").length,
        cap: c?.maxAgents ?? null,
        guarantee: c?.guarantee ?? 0,
        yieldable: { agents },
      };
    })
    .sort((a, b) => b.priority - a.priority);
  const top = Math.max(Number.NEGATIVE_INFINITY, ...workflows.map((w) => w.priority));
  const memoryValues = hostRows.flatMap((h) => (h.memoryPercent === null ? [] : [h.memoryPercent]));
  const memoryPercent = memoryValues.length > 0 ? Math.max(...memoryValues) : null;
  const cpuPercent = Math.max(0, ...hostRows.map((h) => h.cpuPercent));
  const agentsPercent = pct(placed, capacity);
  const exhausted: UtilizationReply["exhausted"] = [];
  if (agentsPercent >= 95) exhausted.push("agent_pool");
  if (memoryPercent !== null && memoryPercent >= d.config.monitor.metrics.memory_usage_percent.threshold)
    exhausted.push("memory");
  if (cpuPercent >= 90) exhausted.push("cpu");
  return {
    at: now,
    utilization: { agents: { placed, busy, capacity, percent: agentsPercent }, cpuPercent, memoryPercent },
    exhausted,
    hosts: hostRows,
    workflows,
    bottlenecks: bottlenecks(stages).map((k) => ({
      kind: k.kind,
      stage: k.bottleneck,
      share: Math.round((k.stages[0]?.share ?? 0) * 1000) / 1000,
      tasks: k.tasks,
    })),
    reallocation: workflows
      .filter((w) => w.priority < top && !w.paused)
      .sort((a, b) => a.priority - b.priority)
      .map((w) => ({ workflowId: w.workflowId, priority: w.priority, agents: w.yieldable.agents })),
  };
}

/** emergency-analysis: the analysis, and RESOURCE_EXHAUSTION when something is exhausted. */
export async function emergencyAnalysis(d: RunbookDeps): Promise<UtilizationReply> {
  const a = await analyze(d);
  if (a.exhausted.length > 0) {
    d.emit({
      type: "RESOURCE_EXHAUSTION",
      category: "system",
      scope: "global",
      data: {
        error_type: a.exhausted.join("_and_"),
        severity: a.exhausted.includes("agent_pool") ? "critical" : "high",
        affected_workflows: a.workflows.map((w) => w.workflowId),
        system_utilization: {
          cpu: a.utilization.cpuPercent,
          memory: a.utilization.memoryPercent ?? 0,
          agents: `${a.utilization.agents.placed}/${a.utilization.agents.capacity}`,
        },
      },
    });
  }
  return a;
}

/** agent-pool-assessment: agents per kind and where replacements could go. */
export async function agentPool(d: RunbookDeps): Promise<OpReplyInput<"mon.resource-manager.agent-pool-assessment">> {
  const [{ actors }, { hosts }, flows] = await Promise.all([
    ask(d, "sup.actor.list", {}),
    ask(d, "sup.host.list", {}),
    running(d),
  ]);
  // Busy: the actors holding a running task of some workflow now.
  const busyActors = new Set(
    flows.flatMap((f) =>
      f.tree.tasks.flatMap((t) => (t.status === "running" && t.holder?.actorId ? [t.holder.actorId] : [])),
    ),
  );
  const roleOf = new Map(flows.map((f) => [f.tree.workflow.teamId, f.roles]));
  const kinds = new Map<
    string,
    { teamId: string; kind: string; role: string; actors: number; busy: number; quarantined: number }
  >();
  for (const a of actors) {
    const key = `${a.teamId}/${a.kindName}`;
    const role = roleOf.get(a.teamId)?.get(a.kindName) ?? (await d.team(a.teamId))?.kinds[a.kindName]?.role ?? "";
    const k = kinds.get(key) ?? { teamId: a.teamId, kind: a.kindName, role, actors: 0, busy: 0, quarantined: 0 };
    k.actors++;
    if (a.status === "quarantined") k.quarantined++;
    else if (busyActors.has(a.actorId)) k.busy++;
    kinds.set(key, k);
  }
  const live = hosts.filter((h) => h.state === "alive" && !h.cordoned);
  const used = live.reduce((a, h) => a + h.actors, 0);
  return {
    at: d.clock.now(),
    kinds: [...kinds.values()].map((k) => ({ ...k, available: k.actors - k.quarantined - k.busy })),
    hosts: hosts.map((h) => ({
      hostId: h.hostId,
      state: h.state,
      free: Math.max(0, h.maxActors - h.actors),
      cordoned: h.cordoned,
    })),
    spare: {
      cluster: Math.max(0, d.config.orchestration_limits.max_concurrent_agents - used),
      hosts: live.reduce((a, h) => a + Math.max(0, h.maxActors - h.actors), 0),
    },
  };
}

/** emergency-reallocation: the seed's three actions, over pause, cap and guarantee. */
export async function reallocate(
  d: RunbookDeps,
  req: ReallocationRequest,
): Promise<OpReplyInput<"mon.resource-manager.emergency-reallocation">> {
  const began = d.clock.now();
  const flows = await running(d);
  const byId = new Map(flows.map((f) => [f.tree.workflow.workflowId, f]));
  const top = Math.max(...flows.map((f) => f.priority));
  const runningAgents = (f: Running) => f.tree.tasks.filter((t) => t.status === "running" && isAgent(f, t));
  const of = (id: string) => {
    const f = byId.get(id);
    if (!f) throw new NotFoundError("running workflow", id);
    return f;
  };
  // Every named workflow must be running: a refusal changes nothing.
  for (const a of req.actions) for (const id of a.affected ?? []) of(id);
  d.emit({
    type: "EMERGENCY_RESPONSE_ACTIVATED",
    category: "system",
    scope: "resource_management",
    data: {
      response_level: "critical",
      strategy: req.strategy ?? "triage",
      actions: req.actions.map((a) => a.action),
      affected_workflows: new Set(req.actions.flatMap((a) => a.affected ?? [])).size,
    },
  });
  const out: OpReplyInput<"mon.resource-manager.emergency-reallocation">["actions"] = [];
  let freed = 0;
  for (const a of req.actions) {
    const ignored: string[] = [];
    const rows: OpReplyInput<"mon.resource-manager.emergency-reallocation">["actions"][number]["workflows"] = [];
    if (a.action === "pause_low_priority_workflows") {
      if (a.resource_recovery) ignored.push("resource_recovery (an expectation: what was freed is measured)");
      const ids = a.affected ?? flows.filter((f) => f.priority < top).map((f) => f.tree.workflow.workflowId);
      for (const id of ids) {
        of(id);
        // `now`: running agent attempts give their tasks back (parked), so their agents are free
        // at once; what was freed is what the pause parked.
        const { control } = await ask(d, "sup.workflow.pause", { workflowId: id, now: true });
        const before = new Set(byId.get(id)?.tree.control?.parked.map((p) => p.taskId));
        const agents = control.parked.filter((p) => !before.has(p.taskId)).length;
        rows.push({ workflowId: id, done: "paused", agents });
        freed += agents;
      }
    } else if (a.action === "reduce_resource_allocation") {
      if (a.reduction.memory_gb !== undefined) ignored.push("reduction.memory_gb (memory is not metered per workflow)");
      for (const id of a.affected) {
        const f = of(id);
        const now = runningAgents(f);
        const onPath = a.maintain_critical_path
          ? criticalPath(f.tree.tasks).filter((t) => t.status === "running" && isAgent(f, t))
          : [];
        const current = f.tree.control?.maxAgents ?? now.length;
        const cap = Math.max(1, onPath.length, current - (a.reduction.agents ?? 0));
        await ask(d, "sup.workflow.limit", { workflowId: id, agents: cap });
        rows.push({
          workflowId: id,
          done: `capped at ${cap} agent${cap === 1 ? "" : "s"}`,
          agents: Math.max(0, now.length - cap),
          cap,
          criticalPath: criticalPath(f.tree.tasks).map((t) => t.taskId),
        });
        freed += Math.max(0, now.length - cap);
      }
    } else {
      const g = a.resource_guarantee;
      if (g.cpu !== undefined) ignored.push("resource_guarantee.cpu (CPU is not metered per workflow)");
      if (g.memory_gb !== undefined) ignored.push("resource_guarantee.memory_gb (memory is not metered per workflow)");
      if (a.optimization) ignored.push(`optimization "${a.optimization}" (the guarantee is what Cadre does)`);
      for (const id of a.affected) {
        const f = of(id);
        const demand = f.tree.tasks.filter(
          (t) => isAgent(f, t) && (t.status === "running" || t.status === "queued" || t.status === "parked"),
        ).length;
        const guarantee = g.agents ?? Math.max(1, demand);
        await ask(d, "sup.workflow.limit", { workflowId: id, guarantee });
        rows.push({
          workflowId: id,
          done: `guaranteed ${guarantee} agent${guarantee === 1 ? "" : "s"}`,
          agents: 0,
          guarantee,
        });
      }
    }
    out.push({ action: a.action, workflows: rows, ignored });
  }
  const ms = d.clock.now() - began;
  d.emit({
    type: "EMERGENCY_RESPONSE_COMPLETED",
    category: "system",
    scope: "resource_management",
    data: {
      recovery_time_ms: ms,
      agents_freed: freed,
      workflows_affected: new Set(out.flatMap((a) => a.workflows.map((w) => w.workflowId))).size,
    },
  });
  return { ms, actions: out, freed: { agents: freed } };
}
