/**
 * Workflow controls: data protection (freeze), pause and resume, cancel, a cap on concurrent
 * agent attempts and a guarantee of actors. Each control lives in the registry bucket
 * (`frozen.<id>`, `control.<id>`), followed by a KV watch on every supervisor, so a standby
 * that takes over enforces what its predecessor was told; hosts follow `control.<id>` too.
 *
 * How a control reaches the work: a host that is handed a task of a controlled workflow asks
 * `sup.task.admit` before an actor starts it (tasks of other workflows pay nothing). A paused
 * workflow's tasks, and a capped workflow's agent tasks past the cap, are *parked*: the host
 * acks the message and the task is listed on the control record; resuming (or a slot freeing
 * under the cap) publishes it again at a new epoch, the same step a reassignment takes, so a
 * late result of the old epoch can only be a conflict. A cancelled workflow's tasks end
 * `cancelled`; the hosts holding its running attempts are told to stop them and drop their
 * messages; a late result finds the task finished and is recorded as a duplicate, never applied.
 */

import {
  type Config,
  InvalidConfigError,
  NotFoundError,
  type OpReply,
  type OpRequest,
  type TaskRecord,
  type TypedEvent,
  type WorkflowControl,
  WorkflowControlSchema,
  type WorkflowRecord,
} from "@cadre/protocol";
import { type Clock, controlKey, frozenKey, KeyedSerial, type Logger, type StateStore, safeJson } from "@cadre/runtime";
import type { JetStreamClient } from "@nats-io/jetstream";
import type { KV } from "@nats-io/kv";
import { reissue } from "./reassign.js";
import { taskTree, workflowOf } from "./tree.js";

/** A task an actor holds, by host (from heartbeats and TASK_STARTED; see reassign.ts). */
export interface Holding {
  hostId: string;
  taskId: string;
  epoch: number;
}

/** Dependencies of {@link WorkflowControls}. */
export interface ControlsDeps {
  kv: KV;
  tasks: StateStore<TaskRecord>;
  workflows: StateStore<WorkflowRecord>;
  js: JetStreamClient;
  config: Config;
  clock: Clock;
  logger: Logger;
  sender: string;
  /** Derives task tokens (runtime authenticity.ts); absent in an anonymous deployment. */
  taskKey?: Buffer | undefined;
  emit: (event: TypedEvent) => void;
  /** What the hosts' actors hold now. */
  holdings: () => Holding[];
  /** Tells a host to stop a running attempt or give its task back. */
  taskOnHost: (hostId: string, body: OpRequest<"host.task">) => Promise<OpReply<"host.task">>;
  /** A kind's role, to tell agents (capped) from directors and leads (never capped). */
  role: (teamId: string, kind: string) => Promise<string | undefined>;
  /** Lets go of what a task holds or waits for (resources.ts). */
  release: (taskId: string) => void;
}

/** The controls of every workflow, and admission against them. */
export class WorkflowControls {
  private readonly frozen = new Set<string>();
  private readonly controls = new Map<string, WorkflowControl>();
  /** The KV revision each control in `controls` was read or written at: the watch never goes back. */
  private readonly revisions = new Map<string, number>();
  /** Agent attempts admitted under a cap and not finished, per workflow. */
  private readonly running = new Map<string, Set<string>>();
  /** One change at a time per workflow. */
  private readonly chains = new KeyedSerial();
  private watches: { stop(): void }[] = [];

  constructor(private readonly d: ControlsDeps) {}

  /** Starts following the registry (every supervisor, standbys too). */
  async follow(): Promise<void> {
    const frozen = await this.d.kv.watch({ key: frozenKey(">") });
    const controls = await this.d.kv.watch({ key: controlKey(">") });
    this.watches = [frozen, controls];
    void (async () => {
      for await (const e of frozen) {
        const id = e.key.slice(frozenKey("").length);
        if (e.operation === "PUT") this.frozen.add(id);
        else this.frozen.delete(id);
      }
    })().catch((err) => this.d.logger.error({ err }, "frozen-workflow watch stopped"));
    void (async () => {
      for await (const e of controls) {
        const id = e.key.slice(controlKey("").length);
        // This supervisor's own writes are in the map already; an older revision arriving late
        // must not undo them (a task parked since would be forgotten).
        if (e.revision <= (this.revisions.get(id) ?? 0)) continue;
        this.revisions.set(id, e.revision);
        if (e.operation !== "PUT") {
          this.controls.delete(id);
          continue;
        }
        const parsed = WorkflowControlSchema.safeParse(safeJson(e.string()));
        if (parsed.success) this.controls.set(id, parsed.data);
        else this.d.logger.warn({ key: e.key, issues: parsed.error.issues }, "unreadable workflow control ignored");
      }
    })().catch((err) => this.d.logger.error({ err }, "workflow-control watch stopped"));
  }

  stop(): void {
    for (const w of this.watches) w.stop();
  }

  isFrozen(workflowId: string): boolean {
    return this.frozen.has(workflowId);
  }

  get(workflowId: string): WorkflowControl | undefined {
    return this.controls.get(workflowId);
  }

  /** Actors reserved per team by the guarantees of its running workflows. */
  guarantees(): Map<string, number> {
    const m = new Map<string, number>();
    for (const c of this.controls.values()) {
      if (c.guarantee > 0 && !c.cancelled) m.set(c.teamId, (m.get(c.teamId) ?? 0) + c.guarantee);
    }
    return m;
  }

  /** A new active supervisor counts the capped workflows' agent attempts that hosts already hold. */
  async seedRunning(): Promise<void> {
    this.running.clear();
    for (const wf of new Set(this.d.holdings().map((h) => workflowOf(h.taskId)))) {
      if (this.controls.get(wf)?.maxAgents) await this.countHeld(wf);
    }
  }

  /** The workflow's attempts that hosts hold now, agents only (what a cap counts). */
  private async heldAgents(workflowId: string): Promise<Holding[]> {
    const c = this.controls.get(workflowId);
    // A parked task holds no slot, even while a heartbeat sent before it was parked still lists
    // it: counted, a cap set right after a pause was full of parked tasks and released none of
    // them, and the workflow never moved again (a CI run of the cap test).
    const parked = new Set(c?.parked.map((p) => p.taskId));
    const out: Holding[] = [];
    for (const h of this.d.holdings().filter((x) => workflowOf(x.taskId) === workflowId && !parked.has(x.taskId))) {
      if (c && (await this.agentAttempt(c, h.taskId))) out.push(h);
    }
    return out;
  }

  /** Whether the task is an agent's and unfinished (a heartbeat can still list an attempt whose result is in). */
  private async agentAttempt(c: WorkflowControl, taskId: string): Promise<boolean> {
    const rec = (await this.d.tasks.get(taskId))?.value;
    return rec?.status === "queued" && (await this.d.role(c.teamId, rec.task.kind)) === "agent";
  }

  /** Tells the host holding an attempt to give it back; what it gave back, or undefined. */
  private async yieldAttempt(h: Holding): Promise<{ taskId: string; epoch: number } | undefined> {
    const r = await this.d
      .taskOnHost(h.hostId, { op: "yield", taskId: h.taskId, reason: "workflow paused" })
      .catch((err) => {
        this.d.logger.warn({ err, taskId: h.taskId, hostId: h.hostId }, "running attempt not yielded; it finishes");
        return undefined;
      });
    return r?.held ? { taskId: h.taskId, epoch: r.epoch ?? h.epoch } : undefined;
  }

  /**
   * An attempt started (its TASK_STARTED, on the active supervisor). In a workflow paused with
   * `now`, an agent's attempt gives its task back and is parked: its host started it before it
   * heard of the pause, or this supervisor heard of its start only after pausing. Without this,
   * such an attempt of a workflow paused right after its submit ran to the end (a CI run of the
   * dependency test).
   */
  started(h: Holding): void {
    const wf = workflowOf(h.taskId);
    if (!this.controls.get(wf)?.yielding) return;
    void this.serial(wf, async () => {
      const c = this.controls.get(wf);
      if (!c?.paused || !c.yielding || c.parked.some((p) => p.taskId === h.taskId)) return;
      if (!(await this.agentAttempt(c, h.taskId))) return;
      const y = await this.yieldAttempt(h);
      if (!y) return;
      await this.modifyId(wf, (x) => ({ ...x, parked: addParked(x.parked, [y]) }));
      this.runningOf(wf).delete(y.taskId);
      this.d.emit({ type: "TASK_PARKED", category: "task", scope: wf, data: { ...y, paused: true } });
    }).catch((err) => this.d.logger.warn({ err, taskId: h.taskId }, "attempt of a paused workflow not yielded"));
  }

  /** Counts the held agent attempts as running under the cap. */
  private async countHeld(workflowId: string): Promise<void> {
    this.running.delete(workflowId);
    for (const h of await this.heldAgents(workflowId)) this.runningOf(workflowId).add(h.taskId);
  }

  // --- operations ------------------------------------------------------------------------

  async freeze({ workflowId, frozen }: OpRequest<"sup.freeze">): Promise<OpReply<"sup.freeze">> {
    await this.workflow(workflowId);
    if (frozen) {
      await this.d.kv.put(frozenKey(workflowId), JSON.stringify({ by: this.d.sender, at: this.d.clock.now() }));
      this.frozen.add(workflowId);
    } else {
      await this.d.kv.delete(frozenKey(workflowId));
      this.frozen.delete(workflowId);
    }
    this.d.emit({
      type: frozen ? "WORKFLOW_FROZEN" : "WORKFLOW_UNFROZEN",
      category: "workflow",
      scope: workflowId,
      data: { workflowId },
    });
    return { workflowId, frozen };
  }

  /** Pauses: tasks are parked instead of started; with `now`, running attempts give theirs back. */
  pause({ workflowId, now }: OpRequest<"sup.workflow.pause">): Promise<OpReply<"sup.workflow.pause">> {
    // Refused at once when not running (nothing waits behind other changes for that answer);
    // checked again in turn.
    return this.serialIfRunning(workflowId, "paused", async () => {
      const w = await this.running_(workflowId, "paused");
      let control = await this.modify(w, (c) => ({ ...c, paused: true, yielding: c.yielding || now }));
      const yielded: { taskId: string; epoch: number }[] = [];
      if (now) {
        // Agents give their attempts back; a director waiting for its children keeps waiting
        // (they are parked, and it needs nothing else). Attempts started later: see started().
        for (const h of await this.heldAgents(workflowId)) {
          const y = await this.yieldAttempt(h);
          if (y) yielded.push(y);
        }
        if (yielded.length > 0) {
          control = await this.modify(w, (c) => ({ ...c, parked: addParked(c.parked, yielded) }));
          for (const y of yielded) this.runningOf(workflowId).delete(y.taskId);
        }
      }
      this.d.emit({
        type: "WORKFLOW_PAUSED",
        category: "workflow",
        scope: workflowId,
        data: { now, yielded: yielded.length },
      });
      return { control };
    });
  }

  resume({ workflowId }: OpRequest<"sup.workflow.resume">): Promise<OpReply<"sup.workflow.resume">> {
    // Refused at once when not running (nothing waits behind other changes for that answer);
    // checked again in turn.
    return this.serialIfRunning(workflowId, "resumed", async () => {
      const w = await this.running_(workflowId, "resumed");
      await this.modify(w, (c) => ({ ...c, paused: false, yielding: false }));
      const released = await this.unpark(workflowId);
      this.d.emit({ type: "WORKFLOW_RESUMED", category: "workflow", scope: workflowId, data: { released } });
      return { control: this.controlOrThrow(workflowId) };
    });
  }

  limit({ workflowId, agents, guarantee }: OpRequest<"sup.workflow.limit">): Promise<OpReply<"sup.workflow.limit">> {
    // Refused at once when not running (nothing waits behind other changes for that answer);
    // checked again in turn.
    return this.serialIfRunning(workflowId, "limited", async () => {
      const w = await this.running_(workflowId, "limited");
      const control = await this.modify(w, (c) => ({
        ...c,
        ...(agents !== undefined ? { maxAgents: agents } : {}),
        ...(guarantee !== undefined ? { guarantee } : {}),
      }));
      // Agent attempts already running count against a new cap (hosts hold them).
      await this.countHeld(workflowId);
      const released = await this.unpark(workflowId);
      this.d.emit({
        type: "WORKFLOW_LIMITED",
        category: "workflow",
        scope: workflowId,
        data: { maxAgents: control.maxAgents, guarantee: control.guarantee, released },
      });
      return { control: this.controlOrThrow(workflowId) };
    });
  }

  /** Ends every unfinished task `cancelled`, stops the running attempts, ends the workflow. */
  cancel({ workflowId, reason }: OpRequest<"sup.workflow.cancel">): Promise<OpReply<"sup.workflow.cancel">> {
    // Refused at once when not running (nothing waits behind other changes for that answer);
    // checked again in turn.
    return this.serialIfRunning(workflowId, "cancelled", async () => {
      const w = await this.running_(workflowId, "cancelled");
      const at = this.d.clock.now();
      // First the control: hosts drop the workflow's queued messages from now on.
      const control = await this.modify(w, (c) => ({ ...c, cancelled: { reason, at }, parked: [] }));
      const error = { code: "CANCELLED", message: `cancelled: ${reason}`, data: { reason } };
      const cancelled: string[] = [];
      for await (const rec of taskTree(this.d.tasks, workflowId)) {
        if (rec.status !== "queued") continue;
        let changed = false;
        await this.d.tasks.modify(rec.task.taskId, (r) => {
          changed = r?.status === "queued";
          return changed && r ? { ...r, status: "cancelled", finishedAt: at, error } : undefined;
        });
        if (changed) cancelled.push(rec.task.taskId);
        this.d.release(rec.task.taskId);
      }
      for (const h of this.d.holdings().filter((x) => workflowOf(x.taskId) === workflowId)) {
        await this.d
          .taskOnHost(h.hostId, { op: "stop", taskId: h.taskId, reason })
          .catch((err) =>
            this.d.logger.warn(
              { err, taskId: h.taskId, hostId: h.hostId },
              "running attempt not stopped; its result will be a duplicate",
            ),
          );
      }
      this.running.delete(workflowId);
      const done = await this.d.workflows.modify(workflowId, (x) =>
        x && x.status === "running"
          ? {
              ...x,
              status: "cancelled",
              finishedAt: at,
              error,
              tasks: { ...x.tasks, cancelled: x.tasks.cancelled + cancelled.length },
            }
          : undefined,
      );
      this.d.emit({
        type: "WORKFLOW_CANCELLED",
        category: "workflow",
        scope: workflowId,
        data: { reason, cancelled: cancelled.length, tasks: done?.value.tasks ?? w.tasks },
      });
      return { control, cancelled };
    });
  }

  /** A host asks whether a task of a controlled workflow may start now. */
  admit({ taskId, workflowId, epoch, kind }: OpRequest<"sup.task.admit">): Promise<OpReply<"sup.task.admit">> {
    // No control: run, at once (no need to wait behind this workflow's changes).
    if (!this.controls.has(workflowId)) return Promise.resolve({ decision: "run" as const });
    return this.serial(workflowId, async () => {
      const c = this.controls.get(workflowId);
      if (!c) return { decision: "run" as const };
      if (c.cancelled) return { decision: "cancelled" as const };
      const park = async () => {
        await this.modifyId(workflowId, (x) => ({ ...x, parked: addParked(x.parked, [{ taskId, epoch }]) }));
        this.d.emit({
          type: "TASK_PARKED",
          category: "task",
          scope: workflowId,
          data: { taskId, epoch, paused: c.paused },
        });
        return { decision: "parked" as const };
      };
      if (c.paused) return park();
      if (c.maxAgents !== null && (await this.d.role(c.teamId, kind)) === "agent") {
        const running = this.runningOf(workflowId);
        if (!running.has(taskId) && running.size >= c.maxAgents) return park();
        running.add(taskId);
      }
      return { decision: "run" as const };
    });
  }

  /**
   * The workflow finished (its root's result was applied): its control has nothing left to
   * govern and is deleted, so its guarantee stops reserving actors. A cancelled workflow's
   * control stays (until the registry's age limit) so hosts keep dropping its leftover tasks.
   */
  ended(workflowId: string): void {
    this.running.delete(workflowId);
    const c = this.controls.get(workflowId);
    if (!c || c.cancelled) return;
    void this.serial(workflowId, async () => {
      this.controls.delete(workflowId);
      await this.d.kv.delete(controlKey(workflowId));
    }).catch((err) => this.d.logger.warn({ err, workflowId }, "control of a finished workflow not deleted"));
  }

  /** An attempt of a task ended (its result was applied, or it was reassigned): a slot frees. */
  finished(taskId: string): void {
    const wf = workflowOf(taskId);
    const running = this.running.get(wf);
    if (!running?.delete(taskId)) return;
    void this.serial(wf, () => this.unpark(wf)).catch((err) =>
      this.d.logger.warn({ err, workflowId: wf }, "parked tasks not released yet"),
    );
  }

  // --- internals -------------------------------------------------------------------------

  /**
   * Publishes parked tasks again at a new epoch: all of them when nothing caps the workflow,
   * else as many agent tasks as the cap has room for (directors and leads are never capped).
   */
  private async unpark(workflowId: string): Promise<number> {
    const c = this.controls.get(workflowId);
    if (!c || c.paused || c.cancelled || c.parked.length === 0) return 0;
    let room = c.maxAgents === null ? Number.POSITIVE_INFINITY : c.maxAgents - this.runningOf(workflowId).size;
    const out: string[] = [];
    for (const p of c.parked) {
      const rec = (await this.d.tasks.get(p.taskId))?.value;
      if (rec?.status !== "queued") {
        out.push(p.taskId);
        continue;
      }
      const capped = c.maxAgents !== null && (await this.d.role(c.teamId, rec.task.kind)) === "agent";
      if (capped && room <= 0) continue;
      if (await reissue(this.d, p.taskId, p.epoch)) {
        if (capped) room--;
        this.d.emit({
          type: "TASK_UNPARKED",
          category: "task",
          scope: workflowId,
          data: { taskId: p.taskId, epoch: p.epoch + 1 },
        });
      }
      out.push(p.taskId);
    }
    if (out.length > 0)
      await this.modifyId(workflowId, (x) => ({ ...x, parked: x.parked.filter((p) => !out.includes(p.taskId)) }));
    return out.length;
  }

  private runningOf(workflowId: string): Set<string> {
    let s = this.running.get(workflowId);
    if (!s) {
      s = new Set();
      this.running.set(workflowId, s);
    }
    return s;
  }

  /** {@link serial}, after a first check (outside the queue) that the workflow runs. */
  private async serialIfRunning<T>(workflowId: string, what: string, fn: () => Promise<T>): Promise<T> {
    await this.running_(workflowId, what);
    return this.serial(workflowId, fn);
  }

  private serial<T>(workflowId: string, fn: () => Promise<T>): Promise<T> {
    return this.chains.run(workflowId, fn);
  }

  private async workflow(workflowId: string): Promise<WorkflowRecord> {
    const w = (await this.d.workflows.get(workflowId))?.value;
    if (!w) throw new NotFoundError("workflow", workflowId);
    return w;
  }

  /** The workflow, which must still be running for the control to mean anything. */
  private async running_(workflowId: string, what: string): Promise<WorkflowRecord> {
    const w = await this.workflow(workflowId);
    if (w.status !== "running") {
      throw new InvalidConfigError(`workflow ${workflowId}`, [
        { path: "status", message: `it is ${w.status}; only a running workflow can be ${what}` },
      ]);
    }
    return w;
  }

  private controlOrThrow(workflowId: string): WorkflowControl {
    const c = this.controls.get(workflowId);
    if (!c) throw new NotFoundError("workflow control", workflowId);
    return c;
  }

  private modify(w: WorkflowRecord, fn: (c: WorkflowControl) => WorkflowControl): Promise<WorkflowControl> {
    return this.modifyId(w.workflowId, fn, w.teamId);
  }

  /** Compare-and-set of the control record (another supervisor may write it after a failover). */
  private async modifyId(
    workflowId: string,
    fn: (c: WorkflowControl) => WorkflowControl,
    teamId?: string,
  ): Promise<WorkflowControl> {
    const key = controlKey(workflowId);
    for (let attempt = 1; ; attempt++) {
      const e = await this.d.kv.get(key);
      const current = e?.operation === "PUT" ? WorkflowControlSchema.safeParse(safeJson(e.string())).data : undefined;
      const base =
        current ??
        WorkflowControlSchema.parse({
          workflowId,
          teamId: teamId ?? (await this.workflow(workflowId)).teamId,
          updatedAt: 0,
        });
      const next = WorkflowControlSchema.parse({ ...fn(base), updatedAt: this.d.clock.now() });
      try {
        const revision =
          e && e.operation === "PUT"
            ? await this.d.kv.update(key, JSON.stringify(next), e.revision)
            : await this.d.kv.create(key, JSON.stringify(next));
        this.controls.set(workflowId, next);
        this.revisions.set(workflowId, Math.max(revision, this.revisions.get(workflowId) ?? 0));
        return next;
      } catch (err) {
        if (attempt >= 5) throw err;
      }
    }
  }
}

function addParked(list: WorkflowControl["parked"], add: WorkflowControl["parked"]): WorkflowControl["parked"] {
  const ids = new Set(add.map((p) => p.taskId));
  return [...list.filter((p) => !ids.has(p.taskId)), ...add];
}
