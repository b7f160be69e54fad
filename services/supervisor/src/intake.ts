/**
 * Intake: workflows submitted and subtasks delegated. A submit reaches any supervisor holding a
 * partition, and its workflow is created in one it holds (routes.ts SHARED_OPERATIONS); a
 * delegation, the holder of its workflow's partition (sup.delegate is partitioned). A submit
 * records the workflow and its root task and publishes it (one with `after` waits for those
 * workflows: dependencies.ts); a delegation checks every subtask against the policy (depth,
 * cycle, the team's kinds) before creating any, so a refused delegation starts nothing.
 * Both are idempotent: a task record is created only if absent and its message carries the
 * task id as its JetStream message id, so a retried delegation publishes once.
 */

import {
  ConcurrentModificationError,
  type Config,
  checkDelegation,
  childTaskId,
  teamId as computeTeamId,
  isToken,
  MAX_TOKEN_LENGTH,
  NotFoundError,
  newWorkflowId,
  type OpReplyInput,
  type OpRequest,
  ProtocolError,
  partitionOf,
  rootTaskId,
  type TaskEnvelope,
  type TaskRecord,
  type Team,
  type TypedEvent,
  toCadreError,
  UnavailableError,
  type WorkflowRecord,
} from "@cadre/protocol";
import type { Budgets, CadreMetrics, Clock, Logger, StateStore } from "@cadre/runtime";
import type { JetStreamClient } from "@nats-io/jetstream";
import type { WorkflowControls } from "./controls.js";
import type { Dependencies } from "./dependencies.js";
import { publishTask } from "./reassign.js";
import type { Registry } from "./registry.js";
import type { AdmissionThrottle } from "./throttle.js";

/** Dependencies of {@link Intake}. */
export interface IntakeDeps {
  config: Config;
  clock: Clock;
  logger: Logger;
  sender: string;
  /** Derives task tokens (runtime authenticity.ts); absent in an anonymous deployment. */
  taskKey?: Buffer | undefined;
  /** Records the depth of each subtask created. */
  metrics?: CadreMetrics;
  /** Refuses new workflows below a priority while the monitor throttles admission. */
  throttle?: AdmissionThrottle;
  js: JetStreamClient;
  tasks: StateStore<TaskRecord>;
  workflows: StateStore<WorkflowRecord>;
  registry: Registry;
  /** Places a submitted team's missing actors: the lease holder's placer, here or by hand-over. */
  place: (teamId: string, team: Team) => Promise<void>;
  /** The partitions this supervisor holds: a submit's workflow is created in one of them. */
  held: () => readonly number[];
  controls: WorkflowControls;
  /** What a delegation means for the wait-for graph and placement, told to the lease holder. */
  delegated: (parentTaskId: string, teamId: string, created: string[], kinds: string[]) => Promise<void>;
  /** The ledgers of workflows' budgets (a submit with a budget opens its ledger). */
  budgets: Budgets;
  /** Workflows that wait for others (a submit's `after`). */
  dependencies: Dependencies;
  emit: (event: TypedEvent) => void;
}

/** Accepts submits and delegations. */
export class Intake {
  constructor(private readonly d: IntakeDeps) {}

  async submit(body: OpRequest<"sup.submit">): Promise<OpReplyInput<"sup.submit">> {
    // Before anything is placed: a throttled submit leaves nothing behind.
    this.d.throttle?.check(body.priority);
    // Before anything is placed too: an unknown workflow in `after` is NOT_FOUND, naming it.
    const after = body.after ?? [];
    const awaited = after.length > 0 ? await this.d.dependencies.check(after) : [];
    const team = body.team;
    const tid = computeTeamId(team);
    // The placer records a new team once its placement is known to pass the quotas (and takes
    // the record back if its first placement fails): a refused submit leaves nothing behind.
    await this.d.place(tid, team);
    const workflowId = this.newWorkflowId();
    const taskId = rootTaskId(workflowId);
    const now = this.d.clock.now();
    const task: TaskEnvelope = {
      taskId,
      workflowId,
      teamId: tid,
      kind: team.root,
      parentTaskId: null,
      chain: [team.root],
      depth: 0,
      priority: body.priority,
      deadline: null,
      idempotencyKey: taskId,
      epoch: 1,
      partition: partitionOf(workflowId, this.d.config.supervisor.partitions),
      input: body.input ?? team.input,
    };
    const budget = body.budget ?? team.budget;
    // Before the root task exists: no model call of the workflow can go uncounted.
    if (budget) await this.d.budgets.open(workflowId, budget);
    // A waiting workflow: its index keys, then its root task recorded but not published, then
    // its record, so whoever finds the record finds the root and whoever settles it finds it.
    if (awaited.length > 0) {
      await this.d.dependencies.index(workflowId, awaited);
      await this.record(task, now);
    }
    const record: WorkflowRecord = {
      workflowId,
      teamId: tid,
      teamName: team.name,
      rootTaskId: taskId,
      status: "running",
      submittedAt: now,
      finishedAt: null,
      tasks: { total: 1, completed: 0, failed: 0, retried: 0, duplicates: 0, conflicts: 0, cancelled: 0 },
      ...(budget ? { budget } : {}),
      ...(after.length > 0 ? { after, waitingFor: awaited } : {}),
    };
    if (awaited.length > 0) {
      await this.d.workflows.create(workflowId, record);
    } else {
      // The two records side by side (one round trip, not two), then the task: its result can
      // only come once both exist. (A crash between leaves a record nobody published.)
      await Promise.all([this.d.workflows.create(workflowId, record), this.record(task, now)]);
      await publishTask(this.d.js, this.d.sender, task, this.d.taskKey);
    }
    this.d.emit({
      type: "WORKFLOW_SUBMITTED",
      category: "workflow",
      scope: workflowId,
      data: { team: team.name, teamId: tid, root: team.root },
    });
    this.d.logger.info(
      { workflowId, teamId: tid, ...(awaited.length > 0 ? { waitingFor: awaited } : {}) },
      "workflow submitted",
    );
    if (awaited.length > 0) await this.d.dependencies.waiting(record);
    return { workflowId, rootTaskId: taskId, teamId: tid };
  }

  /**
   * An id in a partition held here (about P / held draws), so this supervisor, which writes the
   * workflow's first records, is also the one that applies its results and caches its records.
   * Holding none (the partitions just moved away) or all, any id: records are written by
   * compare-and-set wherever they are, so another partition's holder finds them as written.
   */
  private newWorkflowId(): string {
    const P = this.d.config.supervisor.partitions;
    const held = this.d.held();
    if (held.length === 0 || held.length === P) return newWorkflowId();
    for (let i = 0; i < 20 * P; i++) {
      const id = newWorkflowId();
      if (held.includes(partitionOf(id, P))) return id;
    }
    return newWorkflowId();
  }

  async delegate(body: OpRequest<"sup.delegate">): Promise<OpReplyInput<"sup.delegate">> {
    const parent = body.parent;
    const wf = parent.workflowId;
    if (this.d.controls.isFrozen(wf)) {
      throw new UnavailableError(
        `workflow ${wf} is frozen (data protection mode): its subtasks are created once it is unfrozen`,
        { workflowId: wf, frozen: true },
      );
    }
    const cancelled = this.d.controls.get(wf)?.cancelled;
    if (cancelled) {
      throw new NotFoundError(`running workflow (it was cancelled: ${cancelled.reason})`, wf);
    }
    const team = await this.d.registry.team(parent.teamId);
    if (!team) throw new NotFoundError("team", parent.teamId);
    const now = this.d.clock.now();
    const children = body.subtasks.map((sub, i) => this.child(team, parent, sub, body.offset + i));
    const recorded = await Promise.all(children.map((c) => this.record(c, now)));
    const created = recorded.map((r) => r === "created");
    const added = created.filter(Boolean).length;
    // Published (again, if a retried delegation found them queued: JetStream de-duplicates on
    // the id) while the workflow counts them: one round trip. A crash between leaves the total
    // short, which the root's result finds and repairs from the task records (results.ts).
    await Promise.all([
      ...children
        .filter((_, i) => recorded[i] !== "finished")
        .map((c) => publishTask(this.d.js, this.d.sender, c, this.d.taskKey)),
      added > 0 &&
        this.d.workflows.modify(wf, (w) =>
          w ? { ...w, tasks: { ...w.tasks, total: w.tasks.total + added } } : undefined,
        ),
    ]);
    for (const [i, c] of children.entries()) if (created[i]) this.d.metrics?.delegationDepth.observe(c.depth);
    // The director now waits for its new subtasks (wait-for graph, see resources.ts), and a kind
    // whose actors were passivated (or preempted) is placed again now, not at the next sweep:
    // both the lease holder's (coordinate.ts).
    await this.d.delegated(
      parent.taskId,
      parent.teamId,
      children.filter((_, i) => created[i]).map((c) => c.taskId),
      [...new Set(children.map((c) => c.kind))],
    );
    return {
      taskIds: children.map((c) => c.taskId),
      existing: children.filter((_, i) => !created[i]).map((c) => c.taskId),
    };
  }

  /** One subtask's envelope, after the policy check (which announces a refusal). */
  private child(
    team: Team,
    parent: TaskEnvelope,
    sub: OpRequest<"sup.delegate">["subtasks"][number],
    i: number,
  ): TaskEnvelope {
    if (!(sub.kind in team.kinds)) throw new NotFoundError(`kind of team ${team.name}`, sub.kind);
    let chain: string[];
    try {
      chain = checkDelegation(parent.chain, sub.kind, this.d.config.orchestration_limits.max_delegation_depth);
    } catch (err) {
      const e = toCadreError(err);
      this.d.emit({
        type: "DELEGATION_REFUSED",
        category: "delegation",
        scope: parent.workflowId,
        data: { code: e.code, parentTaskId: parent.taskId, ...e.data },
      });
      throw e;
    }
    const taskId = childTaskId(parent.taskId, i);
    // Ids grow with depth: one past the bound would be refused by every reader (checked before
    // any subtask is created, like the policy).
    if (!isToken(taskId)) {
      throw new ProtocolError(
        `subtask id of ${parent.taskId} would be ${taskId.length} characters, over the limit of ${MAX_TOKEN_LENGTH}; delegate less deep`,
        { parentTaskId: parent.taskId, length: taskId.length, limit: MAX_TOKEN_LENGTH },
      );
    }
    return {
      taskId,
      workflowId: parent.workflowId,
      teamId: parent.teamId,
      kind: sub.kind,
      parentTaskId: parent.taskId,
      chain,
      depth: chain.length - 1,
      priority: sub.priority ?? parent.priority,
      deadline: parent.deadline,
      idempotencyKey: taskId,
      epoch: 1,
      ...(parent.partition === undefined ? {} : { partition: parent.partition }),
      input: sub.input,
    };
  }

  /**
   * Records a task, if absent (create-if-absent: a delegation retried after a crash records
   * nothing twice). Says whether it was created now, was there and still queued (to be published
   * again: JetStream de-duplicates on the task id), or was there and past queued.
   */
  private async record(task: TaskEnvelope, now: number): Promise<"created" | "queued" | "finished"> {
    try {
      await this.d.tasks.create(task.taskId, {
        task,
        status: "queued",
        createdAt: now,
        finishedAt: null,
        applied: null,
        duplicates: [],
        conflicts: [],
        invalid: [],
      });
      return "created";
    } catch (err) {
      if (!(err instanceof ConcurrentModificationError)) throw err;
      const existing = await this.d.tasks.get(task.taskId);
      return existing && existing.value.status !== "queued" ? "finished" : "queued";
    }
  }
}
