/**
 * Inspection for operators (seed 003's `/debug`): the workflows, one workflow's task tree with
 * who holds each task and how long it spent in each stage, one task's record with every result
 * seen, and one actor's record with its live state from its host.
 *
 * Who holds a task, and since when, comes from the hosts' TASK_STARTED events and heartbeats
 * (the same view reassignment uses); the records themselves are the authority for the rest.
 */

import {
  type Config,
  NotFoundError,
  type OpReply,
  type OpRequest,
  type TaskRecord,
  type WorkflowControl,
  type WorkflowRecord,
} from "@cadre/protocol";
import { type Clock, call, listKeys, type NatsConnection, type StateStore } from "@cadre/runtime";
import type { Registry } from "./registry.js";
import { childrenOf, taskTree } from "./tree.js";

/** What a host said when one of its actors started a task. */
interface Start {
  hostId: string;
  actorId: string | null;
  attempt: number;
  epoch: number;
  at: number;
}

/** Dependencies of the {@link Inspector}. */
export interface InspectorDeps {
  nc: NatsConnection;
  config: Config;
  clock: Clock;
  sender: string;
  tasks: StateStore<TaskRecord>;
  workflows: StateStore<WorkflowRecord>;
  registry: Registry;
  control: (workflowId: string) => WorkflowControl | undefined;
  /** Which host runs a task now (holds it, admitted), if any. */
  holder: (taskId: string) => string | undefined;
}

/** Starts remembered at most (the oldest are forgotten first). */
const MAX_STARTS = 50_000;

/** Answers the read-only operations on workflows, tasks and actors. */
export class Inspector {
  private readonly starts = new Map<string, Start>();

  constructor(private readonly d: InspectorDeps) {}

  /** A host's TASK_STARTED. */
  started(taskId: string, s: Start): void {
    this.starts.delete(taskId);
    this.starts.set(taskId, s);
    if (this.starts.size > MAX_STARTS) this.starts.delete(this.starts.keys().next().value as string);
  }

  async status({ workflowId }: OpRequest<"sup.status">): Promise<OpReply<"sup.status">> {
    return { workflow: await this.workflow(workflowId), control: this.d.control(workflowId) ?? null };
  }

  /** Workflows, newest first; `paused` is a running workflow with a pause in force. */
  async list({ status, limit }: OpRequest<"sup.workflow.list">): Promise<OpReply<"sup.workflow.list">> {
    const out: OpReply<"sup.workflow.list">["workflows"] = [];
    // One token: the records (ids have no dots); the bucket's `after.*.*` keys are dependencies.ts's index.
    for (const key of await listKeys(this.d.workflows.kv, "*")) {
      const w = (await this.d.workflows.get(key))?.value;
      if (!w) continue;
      const control = this.d.control(w.workflowId) ?? null;
      const shown = w.status === "running" && control?.paused ? "paused" : w.status;
      if (status && status !== shown && !(status === "running" && shown === "paused")) continue;
      out.push({ ...w, control });
    }
    out.sort((a, b) => b.submittedAt - a.submittedAt);
    return { workflows: out.slice(0, limit) };
  }

  /** Running workflows of a team. */
  /** Running workflows per team, from one pass over the workflow records. */
  async runningByTeam(): Promise<Map<string, number>> {
    const counts = new Map<string, number>();
    for (const w of (await this.list({ status: "running", limit: 1000 })).workflows) {
      counts.set(w.teamId, (counts.get(w.teamId) ?? 0) + 1);
    }
    return counts;
  }

  async debugWorkflow({ workflowId }: OpRequest<"sup.debug.workflow">): Promise<OpReply<"sup.debug.workflow">> {
    const workflow = await this.workflow(workflowId);
    const control = this.d.control(workflowId) ?? null;
    const parked = new Set(control?.parked.map((p) => p.taskId));
    const tasks: OpReply<"sup.debug.workflow">["tasks"] = [];
    for await (const rec of taskTree(this.d.tasks, workflowId)) tasks.push(this.node(rec, parked));
    return { workflow, control, tasks };
  }

  async debugTask({ taskId }: OpRequest<"sup.debug.task">): Promise<OpReply<"sup.debug.task">> {
    const record = (await this.d.tasks.get(taskId))?.value;
    if (!record) throw new NotFoundError("task", taskId);
    return { record, holder: this.holderOf(record), children: await childrenOf(this.d.tasks, taskId) };
  }

  async debugActor({ actorId }: OpRequest<"sup.debug.actor">): Promise<OpReply<"sup.debug.actor">> {
    const record = this.d.registry.actor(actorId);
    if (!record) throw new NotFoundError("actor", actorId);
    const live = this.d.registry.isActorLive(record)
      ? await call(
          this.d.nc,
          "host.inspect",
          { actorId },
          {
            sender: this.d.sender,
            hostId: record.hostId,
            timeoutMs: this.d.config.requestTimeoutMs,
          },
        ).catch(() => null)
      : null;
    return { record, live };
  }

  private node(rec: TaskRecord, parked: Set<string>): OpReply<"sup.debug.workflow">["tasks"][number] {
    const id = rec.task.taskId;
    const start = this.starts.get(id);
    const holder = this.holderOf(rec);
    const startedAt = rec.applied?.startedAt ?? start?.at ?? null;
    const end = rec.finishedAt ?? (holder ? this.d.clock.now() : null);
    const status = rec.status !== "queued" ? rec.status : holder ? "running" : parked.has(id) ? "parked" : "queued";
    return {
      taskId: id,
      parentTaskId: rec.task.parentTaskId,
      kind: rec.task.kind,
      status,
      epoch: rec.task.epoch,
      attempts: rec.applied?.attempt ?? start?.attempt ?? 0,
      holder,
      createdAt: rec.createdAt,
      startedAt,
      finishedAt: rec.finishedAt,
      stages: {
        queuedMs: startedAt !== null ? Math.max(0, startedAt - rec.createdAt) : null,
        workingMs: startedAt !== null && end !== null ? Math.max(0, end - startedAt) : null,
        totalMs: rec.finishedAt !== null ? rec.finishedAt - rec.createdAt : null,
      },
      ...(rec.error ? { error: { code: rec.error.code, message: rec.error.message } } : {}),
      conflicts: rec.conflicts.length,
    };
  }

  /** Who holds a task now (running), or who ran the applied result (finished). */
  private holderOf(rec: TaskRecord): { hostId: string; actorId: string | null } | null {
    if (rec.applied) return { hostId: rec.applied.hostId, actorId: rec.applied.actorId };
    if (rec.status !== "queued") return null;
    const hostId = this.d.holder(rec.task.taskId);
    if (!hostId) return null;
    const s = this.starts.get(rec.task.taskId);
    return { hostId, actorId: s && s.hostId === hostId ? s.actorId : null };
  }

  private async workflow(workflowId: string): Promise<WorkflowRecord> {
    const w = (await this.d.workflows.get(workflowId))?.value;
    if (!w) throw new NotFoundError("workflow", workflowId);
    return w;
  }
}
