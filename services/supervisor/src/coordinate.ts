/**
 * Where a partition's work meets the whole cluster's. Results are applied by the holder of the
 * workflow's partition (partitions.ts), but some of what an applied result means lives with the
 * lease holder, which keeps the cluster's in-memory state: the caps' running sets and parked
 * tasks (controls.ts), the wait-for graph (resources.ts), the reconciliation tally (tally.ts)
 * and quarantine, which spawns replacements through placement; a delegation's waits and the
 * placement of its kinds likewise. So the partition holder hands those over: in-process when it holds the lease itself, else as `sup.coordinate`, retried
 * until the lease holder answers (the result is acked only after; see ResultStream). What is
 * the workflow's alone, its dependents' release, stays with the partition holder.
 *
 * Everything handed over is idempotent at the lease holder (a slot or a resource freed twice,
 * a workflow ended twice), so a result applied again after a failed hand-over (its outcome
 * then `reprocessed`) only repeats it. A hand-over lost with a dying lease holder is what the
 * next one rebuilds on taking over (running sets from the hosts' heartbeats, seedRunning).
 */

import { type CoordinateRequest, type QuarantineReason, rootTaskId, type TaskResult } from "@cadre/protocol";
import { type Clock, call, type Logger, type NatsConnection, retry } from "@cadre/runtime";
import type { WorkflowControls } from "./controls.js";
import type { Dependencies } from "./dependencies.js";
import type { ResourceManager } from "./resources.js";
import type { ApplyOutcome } from "./results.js";
import type { ReconciliationTally } from "./tally.js";

/** Dependencies of the {@link Coordination}. */
export interface CoordinationDeps {
  nc: NatsConnection;
  sender: string;
  clock: Clock;
  logger: Logger;
  requestTimeoutMs: number;
  /** Whether this supervisor holds the lease. */
  active: () => boolean;
  resources: () => ResourceManager;
  controls: () => WorkflowControls;
  tally: () => ReconciliationTally;
  dependencies: () => Dependencies;
  quarantine: (actorId: string, reason: QuarantineReason) => Promise<void>;
  /** Places the team's kinds whose actors were passivated (or preempted), now. */
  demand: (teamId: string, kinds: string[]) => Promise<void>;
}

/** Whether a result settled its task (now or, seen again, before). */
const settles = (o: ApplyOutcome | CoordinateRequest["kind"]): boolean => o === "applied" || o === "reprocessed";

export class Coordination {
  /** Hand-overs sent to another supervisor (the lease holder) since start. */
  forwarded = 0;

  constructor(private readonly d: CoordinationDeps) {}

  /** The partition holder's side, after it applied or classified a result. */
  async applied(result: TaskResult, outcome: ApplyOutcome, replayBatch: string | undefined): Promise<void> {
    const root = result.taskId === rootTaskId(result.workflowId);
    // Seen again too: the supervisor that applied it may have died before releasing.
    if (settles(outcome) && root) this.d.dependencies().finished(result.workflowId);
    await this.send({
      kind: "applied",
      taskId: result.taskId,
      workflowId: result.workflowId,
      outcome,
      root,
      ...(replayBatch === undefined ? {} : { replay: { hostId: result.hostId, batch: replayBatch } }),
    });
  }

  /** An actor whose response broke its kind's schema, quarantined by the lease holder. */
  quarantine(actorId: string, reason: QuarantineReason): Promise<void> {
    return this.send({ kind: "quarantine", actorId, reason });
  }

  /**
   * A delegation served here (the workflow's partition's holder): its parent waits for the
   * subtasks created now, and their kinds are placed if passivated, by the lease holder.
   */
  delegated(parentTaskId: string, teamId: string, created: string[], kinds: string[]): Promise<void> {
    return this.send({ kind: "delegated", parentTaskId, teamId, created, kinds });
  }

  /** The lease holder's side (sup.coordinate, or in-process). */
  async handle(req: CoordinateRequest): Promise<{ done: true }> {
    if (req.kind === "quarantine") {
      await this.d.quarantine(req.actorId, req.reason);
      return { done: true };
    }
    if (req.kind === "delegated") {
      // Idempotent too: an edge recorded twice is one edge, a kind placed is placed once.
      this.d.resources().waitsOn(req.parentTaskId, req.created);
      await this.d.demand(req.teamId, req.kinds);
      return { done: true };
    }
    // A finished task holds nothing and nobody waits for it any more; its cap slot frees.
    if (settles(req.outcome)) this.d.resources().release(req.taskId);
    this.d.controls().finished(req.taskId);
    if (settles(req.outcome) && req.root) this.d.controls().ended(req.workflowId);
    if (req.replay) this.d.tally().classified(req.replay.hostId, req.replay.batch, req.outcome);
    return { done: true };
  }

  private async send(req: CoordinateRequest): Promise<void> {
    if (this.d.active()) {
      await this.handle(req);
      return;
    }
    this.forwarded++;
    // Asked again while the lease moves (no supervisor serves for up to the lease's TTL): held
    // for longer, the caller gives the result back to the stream to be applied again.
    await retry(
      async () => {
        if (this.d.active()) return this.handle(req);
        return call(this.d.nc, "sup.coordinate", req, {
          sender: this.d.sender,
          timeoutMs: this.d.requestTimeoutMs,
        });
      },
      { maxAttempts: 8, baseMs: 100, maxMs: 1000, isRetryable: () => true, clock: this.d.clock },
    );
  }
}
