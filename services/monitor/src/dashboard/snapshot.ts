/**
 * What the dashboard shows each second: the cluster's hosts (the supervisor's `sup.host.list`),
 * the services whose reports are current and the six metrics (the monitor's own status), and
 * the newest workflows (`sup.workflow.list`, with each team's priority from `sup.team.list`).
 * Every reply is parsed by `call()` with its operation's schema; a source that fails is named
 * in `errors` and the rest is still shown.
 */

import { type OpReply, type OpReplyInput, toCadreError } from "@cadre/protocol";
import { call, type NatsConnection } from "@cadre/runtime";

/** How many workflows a snapshot carries (newest first). */
export const SNAPSHOT_WORKFLOWS = 50;

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

/** What the stream sends as its `snapshot` message. */
export interface Snapshot {
  at: number;
  /** The monitor's own NATS connection. */
  nats: { connected: boolean };
  hosts: HostRow[];
  services: OpReplyInput<"mon.status">["sources"];
  metrics: OpReplyInput<"mon.status">["metrics"];
  workflows: WorkflowRow[];
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
  /** The last phi heard per host (HOST_SUSPECTED, HOST_UNREACHABLE, HOST_HEALED). */
  phi(hostId: string): number | null;
}

/** Reads every source at once; one failing does not hide the others. */
export async function takeSnapshot(s: SnapshotSources): Promise<Snapshot> {
  const opts = { sender: s.sender, timeoutMs: s.timeoutMs };
  const [hosts, workflows, teams] = await Promise.allSettled([
    call(s.nc, "sup.host.list", {}, opts),
    call(s.nc, "sup.workflow.list", { limit: SNAPSHOT_WORKFLOWS }, opts),
    call(s.nc, "sup.team.list", {}, opts),
  ]);
  const errors: Snapshot["errors"] = [];
  const value = <T>(source: string, r: PromiseSettledResult<T>): T | undefined => {
    if (r.status === "fulfilled") return r.value;
    errors.push({ source, message: toCadreError(r.reason).message });
    return undefined;
  };
  const status = s.status();
  const priorities = new Map((value("sup.team.list", teams)?.teams ?? []).map((t) => [t.teamId, t.priority]));
  return {
    at: s.now(),
    nats: { connected: s.connected() },
    hosts: (value("sup.host.list", hosts)?.hosts ?? []).map((h) => hostRow(h, s.phi(h.hostId))),
    services: status.sources,
    metrics: status.metrics,
    workflows: (value("sup.workflow.list", workflows)?.workflows ?? []).map((w) =>
      workflowRow(w, priorities.get(w.teamId) ?? null),
    ),
    errors,
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
