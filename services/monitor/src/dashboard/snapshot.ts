/**
 * What the dashboard shows each second: the cluster's hosts (the supervisor's `sup.host.list`),
 * the services whose reports are current, the six metrics with their recent samples and the
 * trend series (the monitor's own watch), the newest workflows (`sup.workflow.list`, with each
 * team's priority from `sup.team.list`), quarantined actors, the wait-for graph, and what the
 * monitor kept of the events it heard (deadlocks, preemptions, trends, actions). Every few
 * seconds also the supervisors (`$SRV.INFO`: active or standby) and each kind's stage times.
 * Every reply is parsed by `call()` with its operation's schema; a source that fails is named
 * in `errors` and the rest is still shown.
 */

import { type KindStages, type OpReply, type OpReplyInput, toCadreError } from "@cadre/protocol";
import { call, discoverServices, type NatsConnection } from "@cadre/runtime";
import { rankStages } from "../runbook/performance.js";

/** How many workflows a snapshot carries (newest first). */
export const SNAPSHOT_WORKFLOWS = 50;
/** How many monitor intervals of metric samples a snapshot carries. */
export const HISTORY_SAMPLES = 120;
/** How many events of each kind {@link RecentEvents} keeps. */
export const RECENT_KEPT = 20;

/** One host row. `phi` is the failure detector's value in its last HOST_* event, if any. */
export interface HostRow {
  hostId: string;
  state: "alive" | "suspect" | "unreachable" | "unknown";
  lastHeartbeatAt: number | null;
  load: number;
  actors: number;
  busy: number;
  maxActors: number;
  heapUsedMb: number | null;
  cordoned: boolean;
  circuits: Record<string, string>;
  phi: number | null;
}

/** One workflow row; `status` is `paused` or `waiting` when its control or dependencies say so. */
export interface WorkflowRow {
  workflowId: string;
  teamName: string;
  status: string;
  priority: number | null;
  submittedAt: number;
  finishedAt: number | null;
  tasks: { total: number; completed: number; failed: number; cancelled: number };
  tokens: number | null;
  costUsd: number | null;
}

/** One supervisor, as its NATS micro-service registration says ($SRV.INFO cadre-supervisor). */
export interface SupervisorRow {
  id: string;
  role: "active" | "standby" | "unknown";
}

/** The monitor's metric samples, oldest first: `at[i]` is when `values[metric][i]` was taken. */
export interface MetricHistory {
  at: number[];
  values: Record<string, (number | null)[]>;
}

/** One series the trend detector follows (task_latency, throughput, heap:<service>), oldest first. */
export interface TrendSeries {
  series: string;
  at: number[];
  values: number[];
}

/** A quarantined actor and why (the response that broke its kind's schema). */
export interface QuarantinedRow {
  actorId: string;
  kindName: string;
  teamId: string;
  hostId: string;
  taskId: string | null;
  at: number | null;
  issues: { path: string; message: string }[];
  replacedBy: string | null;
}

/** One event line as the stream sends it; `class` is the incident report's (fault, detection, action, recovery, command, routine). */
export interface EventLine {
  at: number;
  type: string;
  category: string;
  scope: string;
  class: string;
  line: string;
  data: unknown;
}

/**
 * The events the dashboard's views are drawn from, newest first: deadlocks resolved (cycle,
 * victim), preemptions, trends found (PERFORMANCE_DEGRADATION_DETECTED, MEMORY_TREND) and the
 * actions taken (events of class action or command: by Cadre itself, or by operators).
 */
export interface RecentEvents {
  deadlocks: EventLine[];
  preemptions: EventLine[];
  trends: EventLine[];
  actions: EventLine[];
}

/** What the stream sends as its `snapshot` message. */
export interface Snapshot {
  at: number;
  /** The monitor's own NATS connection. */
  nats: { connected: boolean };
  hosts: HostRow[];
  supervisors: SupervisorRow[];
  services: OpReplyInput<"mon.status">["sources"];
  metrics: OpReplyInput<"mon.status">["metrics"];
  /** The six metrics over the last {@link HISTORY_SAMPLES} monitor intervals. */
  history: MetricHistory;
  trends: TrendSeries[];
  /** Each kind's time per task stage, worst bottleneck first (sup.perf.stages, ranked as bottleneck-analysis ranks it). */
  bottlenecks: KindStages[];
  quarantined: QuarantinedRow[];
  /** The wait-for graph now (sup.waits). */
  waits: OpReplyInput<"sup.waits">;
  workflows: WorkflowRow[];
  /** What the monitor kept of the events it heard, newest first (at most {@link RECENT_KEPT} each). */
  recent: RecentEvents;
  /** Whether this dashboard offers operator actions (monitor.dashboard.actions). */
  actions: boolean;
  /** Sources that could not be read this time, with why. */
  errors: { source: string; message: string }[];
}

/** What {@link takeSnapshot} reads from. */
export interface SnapshotSources {
  nc: NatsConnection;
  sender: string;
  timeoutMs: number;
  now(): number;
  connected(): boolean;
  status(): OpReplyInput<"mon.status">;
  history(): MetricHistory;
  trends(): TrendSeries[];
  recent(): RecentEvents;
  actions: boolean;
  /** The last phi heard per host (HOST_SUSPECTED, HOST_UNREACHABLE, HOST_HEALED). */
  phi(hostId: string): number | null;
  /** Sources that change slowly, read at most every {@link SLOW_EVERY_MS} (slowSources). */
  slow(): Promise<SlowSources>;
}

/** How often the slow sources (supervisor discovery, stage times) are read again. */
export const SLOW_EVERY_MS = 5000;
/** How long supervisor discovery waits for `$SRV.INFO` answers. */
const DISCOVERY_WAIT_MS = 300;

/** The supervisors (discovered) and each kind's stage times: read every few seconds, not every second. */
export interface SlowSources {
  supervisors: SupervisorRow[];
  bottlenecks: KindStages[];
  errors: Snapshot["errors"];
}

/** Reads the slow sources at most every {@link SLOW_EVERY_MS}; callers meanwhile get the last reading. */
export function slowSources(nc: NatsConnection, opts: { sender: string; timeoutMs: number }, now: () => number) {
  let last: { at: number; value: Promise<SlowSources> } | undefined;
  const read = async (): Promise<SlowSources> => {
    const [found, stages] = await Promise.allSettled([
      discoverServices(nc, "cadre-supervisor", DISCOVERY_WAIT_MS),
      call(nc, "sup.perf.stages", {}, opts),
    ]);
    const errors: Snapshot["errors"] = [];
    const supervisors: SupervisorRow[] =
      found.status === "fulfilled"
        ? found.value
            .map((i) => ({ id: i.id, role: roleOf(i.metadata?.role) }))
            .sort((a, b) => a.role.localeCompare(b.role) || a.id.localeCompare(b.id))
        : [];
    if (found.status === "rejected") errors.push({ source: "$SRV.INFO", message: toCadreError(found.reason).message });
    if (stages.status === "rejected") {
      errors.push({ source: "sup.perf.stages", message: toCadreError(stages.reason).message });
    }
    return { supervisors, bottlenecks: stages.status === "fulfilled" ? rankStages(stages.value) : [], errors };
  };
  return (): Promise<SlowSources> => {
    const t = now();
    if (!last || t - last.at >= SLOW_EVERY_MS) last = { at: t, value: read() };
    return last.value;
  };
}

const roleOf = (role: string | undefined): SupervisorRow["role"] =>
  role === "active" || role === "standby" ? role : "unknown";

/** Reads every source at once; one failing does not hide the others. */
export async function takeSnapshot(s: SnapshotSources): Promise<Snapshot> {
  const opts = { sender: s.sender, timeoutMs: s.timeoutMs };
  const [hosts, workflows, teams, quarantined, waits, slow] = await Promise.allSettled([
    call(s.nc, "sup.host.list", {}, opts),
    call(s.nc, "sup.workflow.list", { limit: SNAPSHOT_WORKFLOWS }, opts),
    call(s.nc, "sup.team.list", {}, opts),
    call(s.nc, "sup.quarantine.list", {}, opts),
    call(s.nc, "sup.waits", {}, opts),
    s.slow(),
  ]);
  const errors: Snapshot["errors"] = [];
  const value = <T>(source: string, r: PromiseSettledResult<T>): T | undefined => {
    if (r.status === "fulfilled") return r.value;
    errors.push({ source, message: toCadreError(r.reason).message });
    return undefined;
  };
  const status = s.status();
  const priorities = new Map((value("sup.team.list", teams)?.teams ?? []).map((t) => [t.teamId, t.priority]));
  const slowNow = value("slow sources", slow);
  errors.push(...(slowNow?.errors ?? []));
  return {
    at: s.now(),
    nats: { connected: s.connected() },
    hosts: (value("sup.host.list", hosts)?.hosts ?? []).map((h) => hostRow(h, s.phi(h.hostId))),
    supervisors: slowNow?.supervisors ?? [],
    services: status.sources,
    metrics: status.metrics,
    history: s.history(),
    trends: s.trends(),
    bottlenecks: slowNow?.bottlenecks ?? [],
    quarantined: (value("sup.quarantine.list", quarantined)?.actors ?? []).map(quarantinedRow),
    waits: value("sup.waits", waits) ?? { holders: {}, waiting: [], edges: [] },
    workflows: (value("sup.workflow.list", workflows)?.workflows ?? []).map((w) =>
      workflowRow(w, priorities.get(w.teamId) ?? null),
    ),
    recent: s.recent(),
    actions: s.actions,
    errors,
  };
}

function quarantinedRow(a: OpReply<"sup.quarantine.list">["actors"][number]): QuarantinedRow {
  return {
    actorId: a.actorId,
    kindName: a.kindName,
    teamId: a.teamId,
    hostId: a.hostId,
    taskId: a.quarantine?.taskId ?? null,
    at: a.quarantine?.at ?? null,
    issues: a.quarantine?.issues ?? [],
    replacedBy: a.replacedBy ?? null,
  };
}

function hostRow(h: OpReply<"sup.host.list">["hosts"][number], phi: number | null): HostRow {
  return {
    hostId: h.hostId,
    state: h.state,
    lastHeartbeatAt: h.lastHeartbeatAt,
    load: h.load,
    actors: h.actors,
    busy: h.busy,
    maxActors: h.maxActors,
    heapUsedMb: h.heapUsedMb ?? null,
    cordoned: h.cordoned,
    circuits: h.circuits,
    phi,
  };
}

function workflowRow(w: OpReply<"sup.workflow.list">["workflows"][number], priority: number | null): WorkflowRow {
  const status =
    w.status === "running" && w.control?.paused
      ? "paused"
      : w.status === "running" && (w.waitingFor?.length ?? 0) > 0
        ? "waiting"
        : w.status;
  return {
    workflowId: w.workflowId,
    teamName: w.teamName,
    status,
    priority,
    submittedAt: w.submittedAt,
    finishedAt: w.finishedAt,
    tasks: { total: w.tasks.total, completed: w.tasks.completed, failed: w.tasks.failed, cancelled: w.tasks.cancelled },
    tokens: w.usage ? w.usage.inputTokens + w.usage.outputTokens : null,
    costUsd: w.usage ? w.usage.costUsd : null,
  };
}
