/**
 * The reconciliation tally: counts how each result a host replayed from its outbox was
 * classified and reports the counts (RECONCILIATION_REPORT) once the whole replay is classified.
 *
 * Every replayed result carries `<batch>:<count>` in a header, and the host's OUTBOX_REPLAYED
 * says how many of them JetStream had already (de-duplicated, so never delivered here:
 * duplicates too). applied: the task was still waiting for it; duplicate: it had finished
 * already (another host redid it, or the same result came twice); conflict: superseded by a
 * newer epoch (the task was reassigned while the host was cut off; see reassign.ts); invalid:
 * it broke the kind's schema (its actor quarantined, the task retried); orphan: no such task.
 * Should the rest never come, a partial report goes out after `quietMs` of quiet.
 */

import type { TypedEvent } from "@cadre/protocol";
import type { Clock } from "@cadre/runtime";
import type { ApplyOutcome } from "./results.js";

interface Batch {
  hostId: string;
  applied: number;
  duplicate: number;
  conflict: number;
  invalid: number;
  orphan: number;
  deduplicated: number;
  since: number;
  timer: unknown;
}

/** Dependencies of the {@link ReconciliationTally}. */
export interface TallyDeps {
  clock: Clock;
  emit: (event: TypedEvent) => void;
  /** @default 30000 */
  quietMs?: number;
}

/** Counts replayed results per batch and reports each batch once. */
export class ReconciliationTally {
  private readonly batches = new Map<string, Batch>();

  constructor(private readonly d: TallyDeps) {}

  /** One replayed result was classified. */
  classified(hostId: string, batch: string, outcome: ApplyOutcome): void {
    this.add(hostId, batch, outcome, undefined);
  }

  /** The host said how many of its batch JetStream de-duplicated (they never arrive here). */
  deduplicated(hostId: string, batch: string, count: number): void {
    this.add(hostId, batch, undefined, count);
  }

  /** Batches not reported yet. */
  get open(): number {
    return this.batches.size;
  }

  /** Drops the pending timers (the supervisor stopped). */
  stop(): void {
    for (const b of this.batches.values()) this.d.clock.clearTimeout(b.timer);
    this.batches.clear();
  }

  private add(
    hostId: string,
    batch: string,
    outcome: ApplyOutcome | undefined,
    deduplicated: number | undefined,
  ): void {
    const count = Number(batch.split(":")[1]);
    const r: Batch = this.batches.get(batch) ?? {
      hostId,
      applied: 0,
      duplicate: 0,
      conflict: 0,
      invalid: 0,
      orphan: 0,
      deduplicated: 0,
      since: this.d.clock.now(),
      timer: undefined,
    };
    this.batches.set(batch, r);
    if (outcome === "applied") r.applied++;
    else if (outcome === "orphan") r.orphan++;
    else if (outcome === "conflict") r.conflict++;
    else if (outcome === "retried") r.invalid++;
    else if (outcome !== undefined) r.duplicate++;
    if (deduplicated !== undefined) r.deduplicated = deduplicated;
    const classified = r.applied + r.duplicate + r.conflict + r.invalid + r.orphan + r.deduplicated;
    if (r.timer !== undefined) this.d.clock.clearTimeout(r.timer);
    if (Number.isFinite(count) && classified >= count) {
      this.report(batch, r, count, true);
      return;
    }
    r.timer = this.d.clock.setTimeout(() => this.report(batch, r, count, false), this.d.quietMs ?? 30_000);
  }

  private report(batch: string, r: Batch, count: number, complete: boolean): void {
    this.batches.delete(batch);
    const counts = {
      applied: r.applied,
      duplicate: r.duplicate + r.deduplicated,
      conflict: r.conflict,
      invalid: r.invalid,
      orphan: r.orphan,
    };
    this.d.emit({
      type: "RECONCILIATION_REPORT",
      category: "host",
      scope: r.hostId,
      data: {
        hostId: r.hostId,
        batch,
        ...counts,
        total: counts.applied + counts.duplicate + counts.conflict + counts.invalid + counts.orphan,
        replayed: Number.isFinite(count) ? count : null,
        complete,
        ms: this.d.clock.now() - r.since,
      },
    });
  }
}
