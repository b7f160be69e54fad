/**
 * Where a partition's work meets the whole cluster's. Results are applied by the holder of the
 * workflow's partition (partitions.ts), but some of what an applied result means lives with the
 * lease holder, which keeps the cluster's in-memory state: the caps' running sets and parked
 * tasks (controls.ts), the wait-for graph (resources.ts), the reconciliation tally (tally.ts)
 * and quarantine, which spawns replacements through placement; a delegation's waits and the
 * placement of its kinds likewise. So the partition holder hands those over: in-process when
 * it holds the lease itself, else as `sup.coordinate` (hand-overs that queued while the last
 * request was answered go together in the next), retried until the lease holder answers (the
 * result is acked only after; see ResultStream). What is the workflow's alone, its dependents'
 * release, stays with the partition holder.
 *
 * Everything handed over is idempotent at the lease holder (a slot or a resource freed twice,
 * a workflow ended twice), so a result applied again after a failed hand-over (its outcome
 * then `reprocessed`) only repeats it. A hand-over lost with a dying lease holder is what the
 * next one rebuilds on taking over (running sets from the hosts' heartbeats, seedRunning).
 */

import {
  type CoordinateRequest,
  type Handover,
  MAX_HANDOVERS,
  type QuarantineReason,
  rootTaskId,
  type TaskResult,
  type Team,
} from "@cadre/protocol";
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
  /** Places a submitted team's missing actors, as the lease holder's own submit does (placer.ts). */
  place: (teamId: string, team: Team) => Promise<void>;
}

/** The most teams a supervisor remembers having had placed by the lease holder. */
const MAX_KNOWN_TEAMS = 10_000;

/** Whether a result settled its task (now or, seen again, before). */
const settles = (o: ApplyOutcome): boolean => o === "applied" || o === "reprocessed";

export class Coordination {
  /** Hand-overs sent to another supervisor (the lease holder) since start. */
  forwarded = 0;
  /** The sup.coordinate requests that carried them. */
  requests = 0;
  private readonly queue: { c: Handover; resolve: () => void; reject: (err: unknown) => void }[] = [];
  private sending = false;
  /** Teams the lease holder placed for a submit served here (see {@link submitted}). */
  private readonly known = new Set<string>();

  constructor(private readonly d: CoordinationDeps) {}

  /**
   * A submit served here, before its workflow is recorded: its team placed as the lease
   * holder's own submit would place it. A team's first submit here sends the team, alone and
   * awaited (a refusal, such as a quota's, is the submit's own error); later ones only ask, with
   * the other hand-overs, that its root kind be placed if none of its actors runs (a delegation
   * asks the same for its kinds), which covers a team whose actors were passivated since.
   */
  async submitted(teamId: string, team: Team): Promise<void> {
    if (this.d.active()) return this.d.place(teamId, team);
    if (this.known.has(teamId)) return this.send({ kind: "submitted", teamId, root: team.root });
    this.forwarded++;
    this.requests++;
    // Retried only when the error says so (the lease moving): a refusal is the submit's.
    await retry(() => this.request([{ kind: "submitted", teamId, root: team.root, team }]), {
      maxAttempts: 4,
      baseMs: 100,
      maxMs: 1000,
      clock: this.d.clock,
    });
    if (this.known.size >= MAX_KNOWN_TEAMS) this.known.clear();
    this.known.add(teamId);
  }

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

  /** The lease holder's side: a sup.coordinate request's hand-overs, in order. */
  async handle(req: CoordinateRequest): Promise<{ done: true }> {
    for (const item of req.items) await this.one(item);
    return { done: true };
  }

  /** One hand-over, at the lease holder (from a request, or in-process). */
  private async one(c: Handover): Promise<void> {
    if (c.kind === "quarantine") {
      await this.d.quarantine(c.actorId, c.reason);
      return;
    }
    if (c.kind === "submitted") {
      if (c.team) await this.d.place(c.teamId, c.team);
      else await this.d.demand(c.teamId, [c.root]);
      return;
    }
    if (c.kind === "delegated") {
      // Idempotent too: an edge recorded twice is one edge, a kind placed is placed once.
      this.d.resources().waitsOn(c.parentTaskId, c.created);
      await this.d.demand(c.teamId, c.kinds);
      return;
    }
    // A finished task holds nothing and nobody waits for it any more; its cap slot frees.
    if (settles(c.outcome)) this.d.resources().release(c.taskId);
    this.d.controls().finished(c.taskId);
    if (settles(c.outcome) && c.root) this.d.controls().ended(c.workflowId);
    if (c.replay) this.d.tally().classified(c.replay.hostId, c.replay.batch, c.outcome);
  }

  /**
   * Hands one over: at once when this supervisor holds the lease, else queued for the next
   * request. One request is in flight at a time; what queues meanwhile goes in the next, so
   * under load the lease holder answers one request for many hand-overs, and when idle a
   * hand-over waits for nothing.
   */
  private send(c: Handover): Promise<void> {
    if (this.d.active()) return this.one(c);
    this.forwarded++;
    return new Promise((resolve, reject) => {
      this.queue.push({ c, resolve, reject });
      this.flush();
    });
  }

  /** One sup.coordinate request to the lease holder. */
  private async request(items: Handover[]): Promise<void> {
    await call(this.d.nc, "sup.coordinate", { items }, { sender: this.d.sender, timeoutMs: this.d.requestTimeoutMs });
  }

  private flush(): void {
    if (this.sending || this.queue.length === 0) return;
    const batch = this.queue.splice(0, MAX_HANDOVERS);
    this.sending = true;
    this.requests++;
    // Asked again while the lease moves (no supervisor serves for up to the lease's TTL): held
    // for longer, each caller gives its result back to the stream to be applied again.
    retry(
      async () => {
        if (this.d.active()) {
          for (const b of batch) await this.one(b.c);
          return;
        }
        await this.request(batch.map((b) => b.c));
      },
      { maxAttempts: 8, baseMs: 100, maxMs: 1000, isRetryable: () => true, clock: this.d.clock },
    )
      .then(
        () => {
          for (const b of batch) b.resolve();
        },
        (err: unknown) => {
          for (const b of batch) b.reject(err);
        },
      )
      .finally(() => {
        this.sending = false;
        this.flush();
      });
  }
}
