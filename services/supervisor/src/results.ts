/**
 * Applying results. The first valid result of a task wins: it is written to the task record
 * with a compare-and-set, so two results racing (a stalled host and its replacement) cannot
 * both win; every later result is recorded as a duplicate and never applied. Applying is
 * idempotent: a result seen again after a crash (the same result id) only redoes the
 * notifications and repairs the workflow's counts from the task records, never the application.
 */

import {
  addUsage,
  ConcurrentModificationError,
  type Config,
  encode,
  InvalidAgentResponseError,
  type QuarantineReason,
  resultMessageId,
  subjects,
  type TaskRecord,
  type TaskResult,
  type TypedEvent,
  validateOutput,
  type WorkflowRecord,
  ZERO_USAGE,
} from "@cadre/protocol";
import {
  type CadreMetrics,
  type CallJournal,
  type EmitOptions,
  type Logger,
  type NatsConnection,
  retry,
  type StateStore,
} from "@cadre/runtime";
import type { JetStreamClient } from "@nats-io/jetstream";
import { ResponseStats } from "./anomaly.js";
import { publishTask } from "./reassign.js";
import type { Registry } from "./registry.js";
import { taskTree } from "./tree.js";

/** What applying one result did. */
export type ApplyOutcome = "applied" | "duplicate" | "conflict" | "retried" | "reprocessed" | "orphan";

/** Dependencies of the applier. */
export interface ResultApplierDeps {
  nc: NatsConnection;
  js: JetStreamClient;
  tasks: StateStore<TaskRecord>;
  workflows: StateStore<WorkflowRecord>;
  registry: Registry;
  config: Config;
  logger: Logger;
  sender: string;
  /** Derives task tokens (runtime authenticity.ts); absent in an anonymous deployment. */
  taskKey?: Buffer | undefined;
  /** Times the stages of each task whose result is applied (cadre_task_stage_seconds). */
  metrics?: CadreMetrics;
  /** The supervisor's clock, for the waiting and applying stages. @default Date.now */
  now?: () => number;
  /** With an id: the applied result's announcement, the same id each time it is made (see announce). */
  emit: (event: TypedEvent, opts?: EmitOptions) => void;
  /** Quarantines an actor whose response broke its kind's schema (see quarantine.ts). */
  quarantine: (actorId: string, reason: QuarantineReason) => Promise<void>;
  /** Model calls' journal: forgotten for a task retried for a broken answer, so the retry asks anew. */
  journal?: CallJournal;
}

/** Applies task results to task records, parents and workflows. */
export class ResultApplier {
  private readonly stats: ResponseStats;

  constructor(private readonly d: ResultApplierDeps) {
    this.stats = new ResponseStats({
      z: d.config.quarantine.anomalyZ,
      minSamples: d.config.quarantine.anomalyMinSamples,
    });
  }

  /**
   * Applies one result; retries the compare-and-set when another writer got there first.
   * `redelivered`: the stream delivered this message before, and whoever took it did not finish
   * (a step failed, or the supervisor died), maybe before announcing it.
   */
  apply(result: TaskResult, opts: { redelivered?: boolean } = {}): Promise<ApplyOutcome> {
    return retry(() => this.applyOnce(result, opts.redelivered ?? false), {
      maxAttempts: 20,
      isRetryable: (e) => e instanceof ConcurrentModificationError,
    });
  }

  private async applyOnce(raw: TaskResult, redelivered: boolean): Promise<ApplyOutcome> {
    const began = this.now();
    const resultId = resultMessageId(raw.taskId, raw.epoch, raw.attempt);
    const current = await this.d.tasks.get(raw.taskId);
    if (!current) {
      this.d.logger.warn({ taskId: raw.taskId, resultId }, "result for an unknown task ignored");
      return "orphan";
    }
    const rec = current.value;
    // Seen again after the supervisor retried the task for it (it stopped before acking).
    if (rec.invalid.some((i) => i.resultId === resultId)) return "retried";
    if (raw.epoch < rec.task.epoch) return this.conflict(raw, resultId, current.value, current.revision);
    if (rec.status !== "queued") {
      if (rec.applied?.resultId === resultId) {
        // Seen again: the supervisor died after applying it (or a step after it failed), maybe
        // before counting or announcing it. Announced again only when this is that delivery
        // again: a copy stored twice (a host's outbox replaying what had reached the stream) is
        // a new message, and the first copy's announcement was made.
        if (redelivered) this.announce(rec);
        this.afterApply(rec);
        await this.recount(rec.task.workflowId);
        await this.countOnWorkflow(rec, false);
        return "reprocessed";
      }
      if (rec.duplicates.includes(resultId)) {
        await this.recount(rec.task.workflowId);
      } else {
        const next = { ...rec, duplicates: [...rec.duplicates, resultId].slice(-100) };
        await this.d.tasks.update(raw.taskId, next, current.revision);
        await this.countOne(rec.task.workflowId, "duplicates");
        this.d.emit({
          type: "RESULT_DUPLICATE",
          category: "task",
          scope: rec.task.workflowId,
          data: {
            taskId: raw.taskId,
            kind: rec.task.kind,
            resultId,
            appliedResultId: rec.applied?.resultId ?? null,
            hostId: raw.hostId,
          },
        });
      }
      return "duplicate";
    }

    const { result, issues } = await this.checkOutput(rec, raw);
    let invalid = rec.invalid;
    if (issues.length > 0) {
      // The receiving side's check failed: the actor is quarantined (before the retry is
      // published, so it cannot take the retry itself) and the task tried again elsewhere.
      await this.d.quarantine(raw.actorId, { taskId: raw.taskId, resultId, issues, at: raw.finishedAt });
      invalid = [...rec.invalid, { resultId, actorId: raw.actorId, hostId: raw.hostId, issues }].slice(-20);
      if (invalid.length < this.d.config.quarantine.maxAttempts) {
        const task = { ...rec.task, epoch: rec.task.epoch + 1 };
        // A model's journaled answer would only be replayed: the retry must call it again.
        await this.d.journal?.forget(raw.taskId);
        await publishTask(this.d.js, this.d.sender, task, this.d.taskKey);
        await this.d.tasks.update(raw.taskId, { ...rec, task, invalid }, current.revision);
        this.d.emit({
          type: "TASK_REASSIGNED",
          category: "task",
          scope: rec.task.workflowId,
          data: {
            taskId: task.taskId,
            kind: task.kind,
            fromHostId: raw.hostId,
            actorId: raw.actorId,
            epoch: task.epoch,
            reason: "invalid-response",
          },
        });
        return "retried";
      }
      // Attempts exhausted: the delegator gets INVALID_AGENT_RESPONSE with the issues.
    }
    const next: TaskRecord = {
      ...rec,
      invalid,
      // A result of a newer epoch than the record's: the reassignment published it, then the
      // supervisor stopped before raising the record's epoch. Its epoch is the current one.
      task: raw.epoch > rec.task.epoch ? { ...rec.task, epoch: raw.epoch } : rec.task,
      status: result.status,
      finishedAt: result.finishedAt,
      ...(result.status === "completed" ? { output: result.output } : { error: result.error }),
      ...(raw.usage ? { usage: raw.usage } : {}),
      applied: {
        resultId,
        epoch: result.epoch,
        attempt: result.attempt,
        startedAt: result.startedAt,
        hostId: result.hostId,
        actorId: result.actorId,
      },
    };
    await this.d.tasks.update(raw.taskId, next, current.revision);
    this.timeStages(rec, result, began);
    // Announced once the record holds it, before anything that can fail: a count refused
    // while NATS elects leaders sends the result back as "reprocessed", which announces again.
    this.announce(next);
    // The parent can go on as soon as the task record holds the result; the counts follow.
    this.afterApply(next);
    if (result.status === "completed") this.judge(rec, result, resultId);
    await this.countOnWorkflow(next, true);
    return "applied";
  }

  /**
   * TASK_COMPLETED or TASK_FAILED for the result a task record holds. Made when it is applied,
   * and again when its message comes back unfinished, under a message id of its own
   * (`applied:<resultId>`): a supervisor that stopped, or failed a later step, before its
   * announcement was stored makes it again, and the events stream stores it once (the
   * announcement was lost that way while a NATS node's loss refused the count after the record
   * write: 57 of 201 in one chaos run).
   */
  private announce(rec: TaskRecord): void {
    const a = rec.applied;
    if (!a || (rec.status !== "completed" && rec.status !== "failed")) return;
    this.d.emit(
      {
        type: rec.status === "completed" ? "TASK_COMPLETED" : "TASK_FAILED",
        category: "task",
        scope: rec.task.workflowId,
        data: {
          taskId: rec.task.taskId,
          kind: rec.task.kind,
          resultId: a.resultId,
          attempt: a.attempt,
          hostId: a.hostId,
          ...(rec.error ? { code: rec.error.code } : {}),
        },
      },
      { id: `applied:${a.resultId}` },
    );
  }

  private now(): number {
    return this.d.now?.() ?? Date.now();
  }

  /**
   * A task's time in each stage: queued (created to its attempt's start, on the host's clock),
   * working (the attempt), waiting (finished to this supervisor taking its result up) and
   * applying (taking it up to the record written). Hosts and supervisor on one machine share a
   * clock; across machines queued and waiting include their skew (clamped at 0).
   */
  private timeStages(rec: TaskRecord, result: TaskResult, began: number): void {
    const m = this.d.metrics;
    if (!m) return;
    const kind = rec.task.kind;
    const s = (ms: number) => Math.max(0, ms) / 1000;
    m.taskStageSeconds.observe({ kind, stage: "queued" }, s(result.startedAt - rec.createdAt));
    m.taskStageSeconds.observe({ kind, stage: "working" }, s(result.finishedAt - result.startedAt));
    m.taskStageSeconds.observe({ kind, stage: "waiting" }, s(began - result.finishedAt));
    m.taskStageSeconds.observe({ kind, stage: "applying" }, s(this.now() - began));
  }

  /** Adds one to a count on the workflow (a recorded duplicate or conflict). */
  private async countOne(workflowId: string, count: "duplicates" | "conflicts"): Promise<void> {
    await this.d.workflows.modify(workflowId, (w) =>
      w ? { ...w, tasks: { ...w.tasks, [count]: w.tasks[count] + 1 } } : undefined,
    );
  }

  /** Flags a valid response far from its kind's usual size or latency (see anomaly.ts). */
  private judge(rec: TaskRecord, result: TaskResult, resultId: string): void {
    const bytes = JSON.stringify(result.output ?? null).length;
    const latencyMs = result.finishedAt - result.startedAt;
    for (const a of this.stats.observe(`${rec.task.teamId}/${rec.task.kind}`, { bytes, latencyMs })) {
      this.d.emit({
        type: "RESPONSE_ANOMALY",
        category: "task",
        scope: rec.task.workflowId,
        data: {
          taskId: rec.task.taskId,
          kind: rec.task.kind,
          resultId,
          actorId: result.actorId,
          hostId: result.hostId,
          metric: a.metric,
          value: a.value,
          mean: Math.round(a.mean),
          sd: Math.round(a.sd),
          z: Math.round(a.z * 10) / 10,
        },
      });
    }
  }

  /**
   * A result of an epoch the task was taken away from (reassigned after its host was judged
   * lost): recorded on the task beside whatever the current epoch produces, counted, announced,
   * never applied. Recording twice is avoided by its result id.
   */
  private async conflict(raw: TaskResult, resultId: string, rec: TaskRecord, revision: number): Promise<ApplyOutcome> {
    if (!rec.conflicts.some((c) => c.resultId === resultId)) {
      const conflict = {
        resultId,
        epoch: raw.epoch,
        hostId: raw.hostId,
        status: raw.status,
        finishedAt: raw.finishedAt,
        ...(raw.output !== undefined ? { output: raw.output } : {}),
        ...(raw.error ? { error: raw.error } : {}),
      };
      await this.d.tasks.update(raw.taskId, { ...rec, conflicts: [...rec.conflicts, conflict].slice(-20) }, revision);
      await this.countOne(rec.task.workflowId, "conflicts");
      this.d.emit({
        type: "RESULT_CONFLICT",
        category: "task",
        scope: rec.task.workflowId,
        data: {
          taskId: raw.taskId,
          kind: rec.task.kind,
          resultId,
          epoch: raw.epoch,
          currentEpoch: rec.task.epoch,
          hostId: raw.hostId,
          status: raw.status,
          // The current epoch's outcome, when it is in already (otherwise it is applied later).
          applied: rec.applied
            ? { resultId: rec.applied.resultId, status: rec.status, hostId: rec.applied.hostId }
            : null,
        },
      });
    }
    return "conflict";
  }

  /**
   * When the root finishes every task of the workflow has finished, so the counts must add up
   * (completed + failed = total, counting the root). If they do not, a crash left them short:
   * recount from the records before the workflow is marked finished.
   */
  private async repairIfInconsistent(root: TaskRecord, rootNotYetCounted: boolean): Promise<boolean> {
    const w = (await this.d.workflows.get(root.task.workflowId))?.value;
    if (w?.status !== "running") return false;
    const finished = w.tasks.completed + w.tasks.failed + (rootNotYetCounted ? 1 : 0);
    if (finished === w.tasks.total) return false;
    await this.recount(root.task.workflowId);
    return true;
  }

  /**
   * Re-derives a workflow's counts from its task records, which are the authority. Needed when
   * the supervisor died between writing a task record and the workflow's counts: a result seen
   * again, or a root finishing with counts that do not add up (tree.ts walks the records).
   * Counts only grow, so each is raised to what the records show; a concurrent writer's
   * increment is never undone.
   */
  private async recount(workflowId: string): Promise<WorkflowRecord["tasks"]> {
    const seen = { total: 0, completed: 0, failed: 0, retried: 0, duplicates: 0, conflicts: 0, cancelled: 0 };
    for await (const rec of taskTree(this.d.tasks, workflowId)) {
      seen.total++;
      if (rec.status === "completed") seen.completed++;
      if (rec.status === "failed") seen.failed++;
      if (rec.status === "cancelled") seen.cancelled++;
      if ((rec.applied?.attempt ?? 1) > 1 || (rec.applied?.epoch ?? 1) > 1) seen.retried++;
      seen.duplicates += rec.duplicates.length;
      seen.conflicts += rec.conflicts.length;
    }
    let before: WorkflowRecord["tasks"] | undefined;
    const after = await this.d.workflows.modify(workflowId, (w) => {
      before = undefined;
      if (!w) return undefined;
      const t = w.tasks;
      const tasks = {
        total: Math.max(t.total, seen.total),
        completed: Math.max(t.completed, seen.completed),
        failed: Math.max(t.failed, seen.failed),
        retried: Math.max(t.retried, seen.retried),
        duplicates: Math.max(t.duplicates, seen.duplicates),
        conflicts: Math.max(t.conflicts, seen.conflicts),
        cancelled: Math.max(t.cancelled, seen.cancelled),
      };
      if ((Object.keys(tasks) as (keyof typeof tasks)[]).every((k) => tasks[k] === t[k])) return undefined;
      before = t;
      return { ...w, tasks };
    });
    if (before) {
      this.d.logger.warn(
        { workflowId, before, after: after?.value.tasks },
        "workflow counts repaired from task records",
      );
    }
    return after?.value.tasks ?? seen;
  }

  /**
   * The receiving side validates every response against the kind's schema. A response that
   * breaks it becomes a failure with the issues (applied only once the attempts run out).
   */
  private async checkOutput(
    rec: TaskRecord,
    result: TaskResult,
  ): Promise<{ result: TaskResult; issues: { path: string; message: string }[] }> {
    if (result.status !== "completed") return { result, issues: [] };
    const team = await this.d.registry.team(rec.task.teamId);
    const kind = team?.kinds[rec.task.kind];
    if (!kind) return { result, issues: [] };
    const issues = validateOutput(kind, result.output);
    if (issues.length === 0) return { result, issues };
    const { output: _dropped, ...rest } = result;
    const error = new InvalidAgentResponseError(rec.task.kind, issues).toWire();
    return { result: { ...rest, status: "failed", error }, issues };
  }

  /**
   * Counts the applied result on its workflow and finishes the workflow when it is the root's.
   * Re-processing (count false) only finishes: the counts were written with the first pass, or
   * repaired by {@link recount} if the supervisor died between the two writes.
   */
  private async countOnWorkflow(rec: TaskRecord, first: boolean): Promise<void> {
    const isRoot = rec.task.parentTaskId === null;
    if (!first && !isRoot) return;
    // A recount includes the root's record (written before this), so it is not added again.
    const count = first && !(isRoot && (await this.repairIfInconsistent(rec, first)));
    const retried = (rec.applied?.attempt ?? 1) > 1 || (rec.applied?.epoch ?? 1) > 1 ? 1 : 0;
    let finished = false;
    const updated = await this.d.workflows.modify(rec.task.workflowId, (w) => {
      finished = false;
      if (!w || (!count && w.status !== "running")) return undefined;
      const tasks = !count
        ? w.tasks
        : {
            ...w.tasks,
            completed: w.tasks.completed + (rec.status === "completed" ? 1 : 0),
            failed: w.tasks.failed + (rec.status === "failed" ? 1 : 0),
            retried: w.tasks.retried + retried,
          };
      const usage = count && rec.usage ? { usage: addUsage(w.usage ?? ZERO_USAGE, rec.usage) } : {};
      if (!isRoot || w.status !== "running") return { ...w, tasks, ...usage };
      finished = true;
      return {
        ...w,
        tasks,
        ...usage,
        status: rec.status === "completed" ? "completed" : "failed",
        finishedAt: rec.finishedAt,
        ...(rec.status === "completed" ? { output: rec.output } : { error: rec.error }),
      };
    });
    if (finished && updated) {
      const w = updated.value;
      this.d.emit({
        type: w.status === "completed" ? "WORKFLOW_COMPLETED" : "WORKFLOW_FAILED",
        category: "workflow",
        scope: w.workflowId,
        data: { tasks: w.tasks, ms: (w.finishedAt ?? 0) - w.submittedAt, ...(w.error ? { error: w.error } : {}) },
      });
    }
  }

  /** Tells the holder of the parent task that this child finished (lossy; the parent re-reads KV too). */
  private afterApply(rec: TaskRecord): void {
    const parent = rec.task.parentTaskId;
    if (parent === null) return;
    this.d.nc.publish(
      subjects.child(parent),
      encode("child.done", { parentTaskId: parent, record: rec }, { sender: this.d.sender, cid: rec.task.workflowId }),
    );
  }
}
