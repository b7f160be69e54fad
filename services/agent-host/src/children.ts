/**
 * A director attempt's children: the subscription to their notices (opened before the first
 * delegation), re-reads of children whose notice was missed (a restart, a reconnect, children
 * an earlier attempt created that finished already), and each child's outcome, once: handed to
 * the actor's machine and to whoever waits for that child (an llm director's tool call).
 */

import { decodeAs, subjects, type TaskRecord } from "@cadre/protocol";
import type { Logger, NatsConnection, Subscription } from "@cadre/runtime";
import type { ChildOutcome } from "./behaviours/index.js";

/** KV reads in flight at once when a director re-reads its children. */
const RECHECK_CONCURRENCY = 16;

export class ChildWatch {
  private sub?: Subscription;
  private readonly ids: string[] = [];
  private readonly outcomes = new Map<string, ChildOutcome>();
  private readonly waiters = new Map<string, ((c: ChildOutcome) => void)[]>();
  private closed = false;

  constructor(
    private readonly d: {
      nc: NatsConnection;
      logger: Logger;
      parentTaskId: string;
      /** Reads a child's record (a missed notice). */
      readTask(taskId: string): Promise<TaskRecord | undefined>;
      /** Each child's outcome, once. */
      onChild(child: ChildOutcome): void;
    },
  ) {}

  /** Subscribes to the children's notices (before the delegation, so none is missed). */
  listen(): void {
    if (this.closed || this.sub) return;
    this.sub = this.d.nc.subscribe(subjects.child(this.d.parentTaskId), {
      callback: (_err, m) => {
        let record: TaskRecord;
        try {
          record = decodeAs(m.data, "child.done").body.record;
        } catch (err) {
          this.d.logger.warn({ err }, "bad child notice ignored");
          return;
        }
        this.seen(record);
      },
    });
  }

  /** Children the supervisor created for this attempt (in order; again after a retried delegation). */
  add(taskIds: string[]): void {
    for (const id of taskIds) if (!this.ids.includes(id)) this.ids.push(id);
  }

  /** The outcome of a child once it has one; rejects when `signal` aborts first. */
  outcome(taskId: string, signal: AbortSignal): Promise<ChildOutcome> {
    const known = this.outcomes.get(taskId);
    if (known) return Promise.resolve(known);
    return new Promise((resolve, reject) => {
      const onAbort = () => reject(signal.reason);
      if (signal.aborted) return onAbort();
      signal.addEventListener("abort", onAbort, { once: true });
      const list = this.waiters.get(taskId) ?? [];
      list.push((c) => {
        signal.removeEventListener("abort", onAbort);
        resolve(c);
      });
      this.waiters.set(taskId, list);
    });
  }

  /** Reads children that finished but whose notice this host missed. */
  async recheck(): Promise<void> {
    const missing = this.ids.filter((id) => !this.outcomes.has(id));
    // A few reads at a time: a director of 1,000 children must not fire 1,000 requests at once
    // at a server that has just come back.
    for (let i = 0; i < missing.length && !this.closed; i += RECHECK_CONCURRENCY) {
      await Promise.all(
        missing.slice(i, i + RECHECK_CONCURRENCY).map(async (id) => {
          try {
            const rec = await this.d.readTask(id);
            if (rec) this.seen(rec);
          } catch (err) {
            this.d.logger.debug({ err, taskId: id }, "child not read");
          }
        }),
      );
    }
  }

  close(): void {
    this.closed = true;
    this.sub?.unsubscribe();
  }

  private seen(rec: TaskRecord): void {
    if (this.closed || rec.status === "queued" || rec.task.parentTaskId !== this.d.parentTaskId) return;
    const taskId = rec.task.taskId;
    if (this.outcomes.has(taskId)) return;
    const child: ChildOutcome = {
      taskId,
      kind: rec.task.kind,
      // A cancelled child: its workflow is ending, and its director is being stopped too.
      status: rec.status === "completed" ? "completed" : "failed",
      ...(rec.output !== undefined ? { output: rec.output } : {}),
      ...(rec.error ? { error: rec.error } : {}),
    };
    this.outcomes.set(taskId, child);
    this.d.onChild(child);
    for (const w of this.waiters.get(taskId) ?? []) w(child);
    this.waiters.delete(taskId);
  }
}
