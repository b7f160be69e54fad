/**
 * Admission of tasks of controlled workflows. The supervisor keeps each controlled workflow's
 * controls (pause, cancel, agent cap) in the registry bucket under `control.<workflowId>`; the
 * host follows them all with one KV watch. A task whose workflow has no control starts with no
 * request at all; one whose workflow is cancelled is dropped; any other asks the supervisor
 * (`sup.task.admit`) whether it may start now.
 */

import { type Holding, type TaskEnvelope, type WorkflowControl, WorkflowControlSchema } from "@cadre/protocol";
import { call, controlKey, isTransient, type Logger, listKeys, type NatsConnection, retry } from "@cadre/runtime";
import type { KV } from "@nats-io/kv";

/**
 * What to do with a task before its actor starts it: `run` it; `parked` (ack it: the
 * supervisor re-publishes it later at a new epoch); `cancelled` (term it: it never runs).
 */
export type Admission = "run" | "parked" | "cancelled";

/** Options of {@link WorkflowControls.start}. */
export interface WorkflowControlsOptions {
  nc: NatsConnection;
  /** The registry bucket. */
  registry: KV;
  hostId: string;
  requestTimeoutMs: number;
  logger: Logger;
}

const PREFIX = controlKey("");

/** The controls of every controlled workflow, as the registry has them, and admission. */
export class WorkflowControls {
  private readonly controls = new Map<string, WorkflowControl>();
  private watch?: AsyncIterable<unknown> & { stop(): void };
  private stopped = false;

  private constructor(private readonly o: WorkflowControlsOptions) {}

  /**
   * Loads the controls there are now, then follows their changes. Started before any task is
   * pulled, so no task of a workflow controlled before the host started slips through.
   */
  static async start(o: WorkflowControlsOptions): Promise<WorkflowControls> {
    const c = new WorkflowControls(o);
    await retry(() => c.load(), { isRetryable: isTransient, maxAttempts: 10, baseMs: 50, maxMs: 1000 });
    await c.follow();
    return c;
  }

  /** The control of a workflow, if it has one. */
  get(workflowId: string): WorkflowControl | undefined {
    return this.controls.get(workflowId);
  }

  /** Number of controlled workflows known. */
  get size(): number {
    return this.controls.size;
  }

  /**
   * Decides a task's admission. No control: `run`, with no request. Cancelled: `cancelled`,
   * with no request. Otherwise the supervisor's answer; rejects (UNAVAILABLE) when it does not
   * answer, and the caller gives the task back to come again after a backoff.
   */
  async admit(task: TaskEnvelope, holding: { holding?: Holding } = {}): Promise<Admission> {
    const control = this.controls.get(task.workflowId);
    if (!control) return "run";
    if (control.cancelled) return "cancelled";
    const { decision } = await call(
      this.o.nc,
      "sup.task.admit",
      { taskId: task.taskId, workflowId: task.workflowId, epoch: task.epoch, kind: task.kind, ...holding },
      { sender: this.o.hostId, cid: task.workflowId, timeoutMs: this.o.requestTimeoutMs },
    );
    return decision;
  }

  /** Stops following the controls. */
  stop(): void {
    this.stopped = true;
    this.watch?.stop();
  }

  /** Applies one registry entry: a PUT sets or replaces a control, a DEL or PURGE removes it. */
  apply(key: string, operation: "PUT" | "DEL" | "PURGE", value: () => unknown): void {
    if (!key.startsWith(PREFIX)) return;
    const workflowId = key.slice(PREFIX.length);
    if (operation !== "PUT") {
      this.controls.delete(workflowId);
      return;
    }
    let parsed: ReturnType<typeof WorkflowControlSchema.safeParse>;
    try {
      parsed = WorkflowControlSchema.safeParse(value());
    } catch (err) {
      this.o.logger.warn({ err, key }, "workflow control is not JSON; ignored");
      return;
    }
    if (!parsed.success || parsed.data.workflowId !== workflowId) {
      const issues = parsed.success ? [{ path: "workflowId", message: "differs from the key" }] : parsed.error.issues;
      this.o.logger.warn({ key, issues }, "workflow control does not parse; ignored");
      return;
    }
    this.controls.set(workflowId, parsed.data);
  }

  private async load(): Promise<void> {
    for (const k of await listKeys(this.o.registry, controlKey(">"))) {
      const e = await this.o.registry.get(k);
      if (e) this.apply(e.key, e.operation, () => e.json());
    }
  }

  private async follow(): Promise<void> {
    const watch = await this.o.registry.watch({ key: controlKey(">") });
    this.watch = watch;
    void (async () => {
      for await (const e of watch) this.apply(e.key, e.operation, () => e.json());
    })().catch((err) => {
      if (!this.stopped) this.o.logger.error({ err }, "workflow control watch stopped");
    });
  }
}
