/**
 * Reassignment: the tasks a lost host held are given to other hosts with a new epoch.
 *
 * Every host lists the tasks its actors hold in its heartbeats (with each task message's stream
 * sequence), and says so at once when an actor starts one (TASK_STARTED carries the epoch and
 * sequence): a heartbeat's list is up to one interval old, and a short task started after it
 * would otherwise be missed. When the failure detector declares a host unreachable and it stays so for
 * `tasks.reassignGraceMs`, or when it comes back as a new incarnation (the old process is
 * certainly gone), each task it held that is still queued and that no live host now holds is
 * reassigned:
 *
 * 1. the envelope is published again with epoch + 1 (its own message id, so a retry publishes once);
 * 2. the task record's epoch is raised by compare-and-set (only if still queued at the old epoch);
 * 3. the old message is deleted from the stream, so JetStream never redelivers the old epoch.
 *
 * Publishing first means a crash between the steps leaves at worst an extra run whose result is
 * a duplicate, never a record at a new epoch that no message carries. From then on the old
 * holder's result, whenever it arrives (replayed from its outbox after a partition, or sent by a
 * host that was only stalled), is a conflict: recorded beside the applied one, never applied
 * (results.ts). Without this, a lost host's tasks would wait for JetStream's ack wait (30 s by
 * default) and whichever result came first would win.
 */

import {
  type Config,
  encode,
  HEADERS,
  type Heartbeat,
  type HeldTask,
  STREAMS,
  subjects,
  type TaskEnvelope,
  type TaskRecord,
  type TypedEvent,
  taskMessageId,
} from "@cadre/protocol";
import {
  activeContext,
  type Clock,
  type Context,
  extractContext,
  headers,
  heldProof,
  injectContext,
  type Logger,
  type MsgHdrs,
  SPAN_ATTR,
  type StateStore,
  sameProof,
  taskToken,
  tracingEnabled,
  withSpan,
} from "@cadre/runtime";
import type { JetStreamClient, JetStreamManager } from "@nats-io/jetstream";
import { workflowOf } from "./tree.js";

/**
 * Publishes a task (a new epoch of it) on the tasks stream, under a message id per epoch, so
 * publishing the same epoch again (a retried reassignment) sends it once.
 */
export async function publishTask(
  js: JetStreamClient,
  sender: string,
  task: TaskEnvelope,
  taskKey: Buffer | undefined,
): Promise<void> {
  let hdrs: MsgHdrs | undefined;
  if (taskKey) {
    // The token proves holding (runtime authenticity.ts): only deliveries of this epoch carry it.
    hdrs = headers();
    hdrs.set(HEADERS.taskToken, taskToken(taskKey, task.taskId, task.epoch));
  }
  // The trace context of the span publishing it (the submit or delegate request's; a
  // reassignment's when it is one): the attempt's span is its child (runtime tracing.ts).
  hdrs = injectContext(hdrs);
  await js.publish(subjects.task(task.teamId, task.kind), encode("task", task, { sender, cid: task.workflowId }), {
    msgID: taskMessageId(task.idempotencyKey, task.epoch),
    headers: hdrs,
  });
}

/**
 * Whether a host proves it holds a task at an epoch (runtime authenticity.ts): a heartbeat's
 * held entry or a TASK_STARTED. Always, in an anonymous deployment (no key).
 */
export function provesHolding(taskKey: Buffer | undefined, hostId: string, t: HeldTask): boolean {
  if (!taskKey) return true;
  return sameProof(t.proof, heldProof(taskToken(taskKey, t.taskId, t.epoch), t.taskId, t.epoch, hostId));
}

/**
 * Issues a queued task again at the next epoch: publishes it, then raises the record's epoch by
 * compare-and-set (only if still queued at `epoch`). False when there was nothing to do.
 * Publishing first means a crash between the steps leaves at worst an extra run whose result
 * is a duplicate, never a record at an epoch no message carries.
 */
export async function reissue(
  d: { js: JetStreamClient; tasks: StateStore<TaskRecord>; sender: string; taskKey?: Buffer | undefined },
  taskId: string,
  epoch: number,
): Promise<TaskEnvelope | undefined> {
  const open = (rec: TaskRecord | undefined): rec is TaskRecord => rec?.status === "queued" && rec.task.epoch === epoch;
  const current = (await d.tasks.get(taskId))?.value;
  if (!open(current)) return undefined;
  const task = { ...current.task, epoch: epoch + 1 };
  await publishTask(d.js, d.sender, task, d.taskKey);
  let raised = false;
  await d.tasks.modify(taskId, (rec) => {
    raised = open(rec);
    return raised && rec ? { ...rec, task } : undefined;
  });
  return raised ? task : undefined;
}

/** Dependencies of the {@link Reassigner}. */
export interface ReassignerDeps {
  js: JetStreamClient;
  jsm: JetStreamManager;
  tasks: StateStore<TaskRecord>;
  config: Config;
  clock: Clock;
  logger: Logger;
  sender: string;
  /** Derives task tokens (runtime authenticity.ts); absent in an anonymous deployment. */
  taskKey?: Buffer | undefined;
  emit: (event: TypedEvent) => void;
  /** Whether this supervisor acts (standbys follow heartbeats but reassign nothing). */
  active: () => boolean;
  /** Whether the detector still judges the host unreachable. */
  unreachable: (hostId: string) => boolean;
  /**
   * Whether a workflow is in data protection mode: its tasks are not reassigned (a new epoch is
   * a state change); JetStream redelivers them after their ack wait at the same epoch.
   */
  frozen: (workflowId: string) => boolean;
  /** A task moved to a new epoch: its old attempt is over. */
  reassigned?: (taskId: string) => void;
}

/** Records reassigned at once. */
const CONCURRENCY = 16;

interface Holding {
  incarnation: string;
  held: HeldTask[];
}

/** Follows what every host holds and reassigns what a lost host held. */
export class Reassigner {
  private readonly holdings_ = new Map<string, Holding>();
  private readonly timers = new Map<string, unknown>();
  private readonly running = new Set<Promise<void>>();

  constructor(private readonly d: ReassignerDeps) {}

  /** A heartbeat: its held list (when present) replaces the host's. A new incarnation's predecessor is gone. */
  heard(hb: Heartbeat): void {
    const prev = this.holdings_.get(hb.hostId);
    if (prev && prev.incarnation !== hb.incarnation && prev.held.length > 0) {
      this.track(this.reassign(hb.hostId, prev.held, "restarted"));
    }
    if (hb.held !== undefined || !prev || prev.incarnation !== hb.incarnation) {
      this.holdings_.set(hb.hostId, { incarnation: hb.incarnation, held: hb.held ?? [] });
    }
  }

  /** A host's actor started a task (TASK_STARTED): held from now, until the next list says otherwise. */
  started(hostId: string, task: HeldTask): void {
    const h = this.holdings_.get(hostId);
    // Not heard from yet: its first heartbeat will list the task.
    if (!h) return;
    h.held = [...h.held.filter((t) => t.taskId !== task.taskId), task];
  }

  /** The detector declared the host unreachable: reassign after the grace period unless it heals. */
  lost(hostId: string): void {
    if (this.timers.has(hostId)) return;
    const timer = this.d.clock.setTimeout(() => {
      this.timers.delete(hostId);
      const h = this.holdings_.get(hostId);
      if (!h || !this.d.unreachable(hostId)) return;
      this.track(this.reassign(hostId, h.held, "unreachable"));
    }, this.d.config.tasks.reassignGraceMs);
    this.timers.set(hostId, timer);
  }

  /** The host was heard from again in time: nothing moves. */
  healed(hostId: string): void {
    const t = this.timers.get(hostId);
    if (t === undefined) return;
    this.d.clock.clearTimeout(t);
    this.timers.delete(hostId);
  }

  /** The registry forgot the host (registry.ts prune): so does this. */
  forget(hostId: string): void {
    this.holdings_.delete(hostId);
    this.d.clock.clearTimeout(this.timers.get(hostId));
    this.timers.delete(hostId);
  }

  /** Every task the hosts' actors hold now, with its holder. */
  holdings(): { hostId: string; taskId: string; epoch: number; admitting: boolean }[] {
    return [...this.holdings_.entries()].flatMap(([hostId, h]) =>
      h.held.map((t) => ({ hostId, taskId: t.taskId, epoch: t.epoch, admitting: t.admitting === true })),
    );
  }

  /** Resolves when every reassignment under way has finished. */
  async idle(): Promise<void> {
    while (this.running.size > 0) await Promise.all(this.running);
  }

  private track(p: Promise<void>): void {
    this.running.add(p);
    void p.finally(() => this.running.delete(p));
  }

  /** Stops the pending grace timers. */
  stop(): void {
    for (const t of this.timers.values()) this.d.clock.clearTimeout(t);
    this.timers.clear();
  }

  private async reassign(hostId: string, held: HeldTask[], reason: "unreachable" | "restarted"): Promise<void> {
    if (!this.d.active() || held.length === 0) return;
    // A task another host has since taken (JetStream redelivered it after its ack wait) is theirs.
    const elsewhere = new Set<string>();
    for (const [other, h] of this.holdings_) {
      if (other === hostId) continue;
      for (const t of h.held) elsewhere.add(t.taskId);
    }
    const todo = held.filter((t) => !elsewhere.has(t.taskId));
    let moved = 0;
    for (let i = 0; i < todo.length; i += CONCURRENCY) {
      const done = await Promise.all(todo.slice(i, i + CONCURRENCY).map((t) => this.reassignOne(hostId, t, reason)));
      moved += done.filter(Boolean).length;
    }
    this.d.logger.info({ hostId, reason, held: held.length, reassigned: moved }, "tasks of a lost host reassigned");
  }

  /** The trace context of a task message still in the stream (the active one when tracing is off, or it is gone). */
  private async traceOf(seq: number): Promise<Context> {
    if (!tracingEnabled()) return activeContext();
    try {
      const sm = await this.d.jsm.streams.getMessage(STREAMS.tasks, { seq });
      return extractContext(sm?.header);
    } catch {
      return activeContext();
    }
  }

  /** Reassigns one task; false when there was nothing to do (finished, or already reassigned). */
  private async reassignOne(hostId: string, held: HeldTask, reason: string): Promise<boolean> {
    // Still waiting for a result, at the epoch the lost host was given.
    try {
      if (this.d.frozen(workflowOf(held.taskId))) return false;
      // The new epoch stays in the task's trace: a span under the old message's traceparent
      // publishes it (only read when tracing is on).
      const task = await withSpan(
        "cadre.task.reassign",
        {
          [SPAN_ATTR.taskId]: held.taskId,
          [SPAN_ATTR.workflowId]: workflowOf(held.taskId),
          [SPAN_ATTR.epoch]: held.epoch + 1,
          "cadre.reassign.from_host": hostId,
          "cadre.reassign.reason": reason,
        },
        () => reissue(this.d, held.taskId, held.epoch),
        { parent: await this.traceOf(held.seq) },
      );
      if (!task) return false;
      try {
        await this.d.jsm.streams.deleteMessage(STREAMS.tasks, held.seq);
      } catch (err) {
        // Acked meanwhile (a work queue removes acked messages), or deleted by an earlier attempt.
        this.d.logger.debug({ err, taskId: held.taskId, seq: held.seq }, "old task message already gone");
      }
      this.d.reassigned?.(task.taskId);
      this.d.emit({
        type: "TASK_REASSIGNED",
        category: "task",
        scope: task.workflowId,
        data: { taskId: task.taskId, kind: task.kind, fromHostId: hostId, epoch: task.epoch, reason },
      });
      return true;
    } catch (err) {
      // JetStream's ack wait is the fallback: the task is redelivered in the old epoch.
      this.d.logger.warn({ err, taskId: held.taskId, hostId }, "task not reassigned; JetStream will redeliver it");
      return false;
    }
  }
}
