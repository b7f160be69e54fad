/**
 * Workflows that wait for other workflows (a submit's `after`). A waiting workflow exists at
 * once: its record is running with `waitingFor` non-empty and its root task is recorded, queued,
 * but not published. Each awaited dependency has an index key in the workflows bucket,
 * `after.<dependency>.<dependent>`, so a workflow that ends finds its dependents without a scan
 * of the records. Whenever one ends (its root's result applied, or a cancel), each dependent is
 * *settled*:
 *
 * - every workflow it waits for completed: its root task is published (JetStream
 *   de-duplicates on the task id, so publishing twice starts it once), then `waitingFor` is
 *   emptied (WORKFLOW_RELEASED). Publishing first means a supervisor that dies between the two
 *   leaves a workflow still marked waiting, which the next one releases again: never one marked
 *   released whose root was not published. Pause and cap controls apply from there as to any
 *   workflow (its host asks admission);
 * - one of them failed, was cancelled or no longer exists: it can never start, so it fails at
 *   once with DEPENDENCY_FAILED naming that one (its root ends cancelled: it never ran) and
 *   its own dependents are settled in turn;
 * - otherwise `waitingFor` shrinks to those still unfinished.
 *
 * A new active supervisor settles every dependent the index names ({@link Dependencies.sweep}),
 * so a release lost to a failover (between a dependency's end and the release) happens then.
 * Settling is idempotent: it reads the records, which are the authority, and writes by
 * compare-and-set. Index keys go once the dependent no longer waits for that dependency; the
 * key of a submit that died before its record was written stays until the bucket's TTL.
 */

import {
  type DependencyOutcome,
  dependencyFailed,
  NotFoundError,
  type TaskRecord,
  type TypedEvent,
  type WorkflowRecord,
} from "@cadre/protocol";
import { type Clock, KeyedSerial, type Logger, listKeys, type StateStore } from "@cadre/runtime";
import type { JetStreamClient } from "@nats-io/jetstream";
import { publishTask } from "./reassign.js";

/** The index key saying `dependent` waits for `dependency` (two subject tokens after `after`). */
export const afterKey = (dependency: string, dependent: string): string => `after.${dependency}.${dependent}`;

/** The dependent an index key names. */
const dependentOf = (key: string): string => key.slice(key.lastIndexOf(".") + 1);
/** The dependency an index key names. */
const dependencyOf = (key: string): string => key.split(".")[1] ?? "";

/** What settling a waiting workflow does, from the statuses of those it waits for. */
export type Decision =
  | { kind: "release" }
  | { kind: "wait"; remaining: string[] }
  | { kind: "fail"; dependency: string; outcome: DependencyOutcome };

/**
 * The rule: the first (in `waitingFor` order) that failed, was cancelled or is missing fails
 * the dependent; else, with every one completed, it is released; else it waits for the rest.
 */
export function decide(
  waitingFor: readonly string[],
  statusOf: (workflowId: string) => WorkflowRecord["status"] | undefined,
): Decision {
  const remaining: string[] = [];
  for (const id of waitingFor) {
    const s = statusOf(id);
    if (s === undefined) return { kind: "fail", dependency: id, outcome: "missing" };
    if (s === "failed" || s === "cancelled") return { kind: "fail", dependency: id, outcome: s };
    if (s === "running") remaining.push(id);
  }
  return remaining.length === 0 ? { kind: "release" } : { kind: "wait", remaining };
}

/** Dependencies of {@link Dependencies}. */
export interface DependenciesDeps {
  workflows: StateStore<WorkflowRecord>;
  tasks: StateStore<TaskRecord>;
  js: JetStreamClient;
  sender: string;
  /** Derives task tokens (runtime authenticity.ts); absent in an anonymous deployment. */
  taskKey?: Buffer | undefined;
  clock: Clock;
  logger: Logger;
  emit: (event: TypedEvent) => void;
  /** A workflow failed here ended: its controls have nothing left to govern (controls.ts `ended`). */
  ended: (workflowId: string) => void;
}

/** Waiting workflows: their index, their release and their failure. */
export class Dependencies {
  /** One settle at a time per dependent (a dependency's end and a sweep can meet). */
  private readonly chains = new KeyedSerial();
  /**
   * Workflows known to have dependents in the index (from submits and the last sweep): only
   * their end lists index keys, so a workflow nobody waits for costs nothing when it ends.
   */
  private readonly awaited = new Set<string>();
  /** A settle failed (NATS away): the next {@link sweepIfOwed} goes over the whole index. */
  private owed = false;
  private watch?: { stop(): void };

  constructor(private readonly d: DependenciesDeps) {}

  /**
   * Follows the index (every supervisor): a dependency ends where its partition is held, which
   * need not be where its dependent was submitted, so each supervisor learns of every index key
   * written. The window left: a key that reaches the dependency's holder after that holder
   * applied the dependency's end, which itself came after the submit's own settle found the
   * dependency running, two round trips after the key was written.
   */
  async follow(): Promise<void> {
    const w = await this.d.workflows.kv.watch({ key: afterKey("*", "*") });
    this.watch = w;
    void (async () => {
      for await (const e of w) if (e.operation === "PUT") this.awaited.add(dependencyOf(e.key));
    })().catch((err) => this.d.logger.error({ err }, "dependency index watch stopped"));
  }

  stop(): void {
    this.watch?.stop();
  }

  /**
   * A submit's `after`, checked before anything is created: every workflow named must exist
   * (NOT_FOUND naming the first that does not). Returns those not completed yet, in order.
   */
  async check(after: readonly string[]): Promise<string[]> {
    const records = await Promise.all(after.map(async (id) => [id, (await this.d.workflows.get(id))?.value] as const));
    const missing = records.find(([, w]) => !w);
    if (missing) throw new NotFoundError("workflow named in after", missing[0]);
    return records.filter(([, w]) => w?.status !== "completed").map(([id]) => id);
  }

  /** Writes the index keys of a workflow about to be recorded as waiting (before its record, see the top). */
  async index(workflowId: string, awaited: readonly string[]): Promise<void> {
    const at = JSON.stringify({ at: this.d.clock.now() });
    for (const dep of awaited) this.awaited.add(dep);
    await Promise.all(awaited.map((dep) => this.d.workflows.kv.put(afterKey(dep, workflowId), at)));
  }

  /**
   * A waiting workflow was recorded (with its root task): announced, then settled once, for a
   * dependency that ended between the check and the index. The workflow exists by now, so a
   * failed settle does not fail the submit (a retried submit would make a second workflow): it
   * leaves the sweep owed.
   */
  async waiting(w: WorkflowRecord): Promise<void> {
    this.d.emit({
      type: "WORKFLOW_WAITING",
      category: "workflow",
      scope: w.workflowId,
      data: { after: w.after ?? [], waitingFor: w.waitingFor ?? [] },
    });
    await this.settle(w.workflowId).catch((err) => {
      this.owed = true;
      this.d.logger.warn({ err, workflowId: w.workflowId }, "waiting workflow not settled yet; the next sweep will");
    });
  }

  /**
   * A workflow ended (completed, failed or cancelled): its dependents are settled, in the
   * background. A failure is logged and leaves the sweep owed. (Its own index keys, if it was
   * cancelled while waiting, go when their dependency ends and settles it.)
   */
  finished(workflowId: string): void {
    if (!this.awaited.delete(workflowId)) return;
    this.settleDependents(workflowId).catch((err) => {
      this.owed = true;
      this.d.logger.warn({ err, workflowId }, "dependents of a finished workflow not settled yet; the next sweep will");
    });
  }

  /**
   * Settles every dependent the index names: what a new active supervisor does, so a release
   * or a failure its predecessor did not get to happens now. Returns the dependents settled.
   */
  async sweep(): Promise<number> {
    this.owed = false;
    try {
      const keys = await listKeys(this.d.workflows.kv, "after.>");
      // Known before any is settled: a dependency that ends from now on settles its dependents
      // itself; one that ended before is seen ended by the settle. (Added to what the watch
      // brought, not in its place: a key written during the listing may be in the watch alone.)
      for (const k of keys) this.awaited.add(dependencyOf(k));
      const dependents = new Set(keys.map(dependentOf));
      for (const id of dependents) await this.settle(id);
      return dependents.size;
    } catch (err) {
      this.owed = true;
      throw err;
    }
  }

  /** {@link sweep}, when a settle failed since the last one (called from the repair timer). */
  sweepIfOwed(): void {
    if (!this.owed) return;
    this.sweep().catch((err) => this.d.logger.warn({ err }, "workflow dependency sweep failed; will try again"));
  }

  private async settleDependents(workflowId: string): Promise<void> {
    for (const key of await listKeys(this.d.workflows.kv, afterKey(workflowId, "*"))) {
      await this.settle(dependentOf(key));
    }
  }

  /** Settles one workflow (see the top), one at a time per workflow. */
  settle(workflowId: string): Promise<void> {
    return this.chains.run(workflowId, () => this.settleNow(workflowId));
  }

  private async settleNow(workflowId: string): Promise<void> {
    const w = (await this.d.workflows.get(workflowId))?.value;
    // No record: a submit still under way (it settles itself), or one that died (its keys expire).
    if (!w) return;
    const waitingFor = w.waitingFor ?? [];
    if (w.status !== "running" || waitingFor.length === 0) return this.unindex(w, w.after ?? []);
    const statuses = new Map<string, WorkflowRecord["status"] | undefined>();
    await Promise.all(waitingFor.map(async (id) => statuses.set(id, (await this.d.workflows.get(id))?.value.status)));
    const decision = decide(waitingFor, (id) => statuses.get(id));
    if (decision.kind === "release") return this.release(w);
    if (decision.kind === "fail") return this.fail(w, decision.dependency, decision.outcome);
    if (decision.remaining.length === waitingFor.length) return;
    const remaining = decision.remaining;
    await this.d.workflows.modify(workflowId, (x) =>
      x?.status === "running" && (x.waitingFor?.length ?? 0) > remaining.length
        ? { ...x, waitingFor: remaining }
        : undefined,
    );
    await this.unindex(
      w,
      waitingFor.filter((id) => !remaining.includes(id)),
    );
  }

  /** Publishes the root task (if still queued), then marks the workflow released. */
  private async release(w: WorkflowRecord): Promise<void> {
    const root = (await this.d.tasks.get(w.rootTaskId))?.value;
    if (root?.status === "queued") await publishTask(this.d.js, this.d.sender, root.task, this.d.taskKey);
    let released = false;
    await this.d.workflows.modify(w.workflowId, (x) => {
      released = x?.status === "running" && (x.waitingFor?.length ?? 0) > 0;
      return released && x ? { ...x, waitingFor: [] } : undefined;
    });
    if (released) {
      this.d.emit({
        type: "WORKFLOW_RELEASED",
        category: "workflow",
        scope: w.workflowId,
        data: { after: w.after ?? [], waitedMs: this.d.clock.now() - w.submittedAt },
      });
      this.d.logger.info({ workflowId: w.workflowId, after: w.after }, "waiting workflow released");
    }
    await this.unindex(w, w.after ?? []);
  }

  /** Fails a workflow that can never start: its root ends cancelled, its dependents follow. */
  private async fail(w: WorkflowRecord, dependency: string, outcome: DependencyOutcome): Promise<void> {
    const at = this.d.clock.now();
    const error = dependencyFailed(dependency, outcome);
    let rootCancelled = false;
    await this.d.tasks.modify(w.rootTaskId, (r) => {
      rootCancelled = r?.status === "queued";
      return rootCancelled && r ? { ...r, status: "cancelled", finishedAt: at, error } : undefined;
    });
    let failed = false;
    const done = await this.d.workflows.modify(w.workflowId, (x) => {
      failed = x?.status === "running" && (x.waitingFor?.length ?? 0) > 0;
      if (!failed || !x) return undefined;
      const tasks = { ...x.tasks, cancelled: x.tasks.cancelled + (rootCancelled ? 1 : 0) };
      return { ...x, status: "failed", finishedAt: at, error, tasks, waitingFor: [] };
    });
    await this.unindex(w, w.after ?? []);
    if (!failed || !done) return;
    this.d.emit({
      type: "WORKFLOW_FAILED",
      category: "workflow",
      scope: w.workflowId,
      data: { tasks: done.value.tasks, ms: at - w.submittedAt, error },
    });
    this.d.logger.info(
      { workflowId: w.workflowId, dependency, outcome },
      "waiting workflow failed: a dependency cannot complete",
    );
    this.d.ended(w.workflowId);
    // Its own dependents can never start either (settled after this settle, in their own turn).
    this.finished(w.workflowId);
  }

  private async unindex(w: WorkflowRecord, dependencies: readonly string[]): Promise<void> {
    await Promise.all(dependencies.map((dep) => this.d.workflows.kv.delete(afterKey(dep, w.workflowId))));
  }
}
