/**
 * The monitor's `cleanup` action on one host (memory over its threshold): stops the pullers of
 * kinds the host no longer runs an actor of, runs a full garbage collection if the host's own heap
 * is over the memory rule's clear level, and says what that freed (CLEANUP_REPORTED). A full
 * collection stops the host for a moment: at most one per CLEANUP_EVERY_MS; a request sooner
 * gets the last one's report.
 */

import { getHeapStatistics } from "node:v8";
import type { OpReplyInput, TypedEvent } from "@cadre/protocol";
import type { Clock, Logger } from "@cadre/runtime";

/** The shortest time between two cleanups (each runs a full garbage collection). */
export const CLEANUP_EVERY_MS = 10_000;

/**
 * A full garbage collection, where node exposes one (`--expose-gc`: `cadre up` and the images
 * start the services with it). False where it does not.
 */
function fullGc(): boolean {
  const gc = (globalThis as { gc?: () => void }).gc;
  if (typeof gc !== "function") return false;
  gc();
  return true;
}

type Reply = OpReplyInput<"host.cleanup">;

export class HostCleanup {
  private last?: { at: number; reply: Reply };

  constructor(
    private readonly d: {
      hostId: string;
      clock: Clock;
      logger: Logger;
      emit: (event: TypedEvent) => void;
      /** The memory rule's clear level (percent of the heap limit). */
      clearPercent: number;
      /** Stops the pullers of kinds no actor of this host runs; their names. */
      releaseIdlePullers: () => string[];
    },
  ) {}

  run(): Reply {
    const now = this.d.clock.now();
    if (this.last && now - this.last.at < CLEANUP_EVERY_MS) return this.last.reply;
    const heapBeforeBytes = process.memoryUsage().heapUsed;
    const released = this.d.releaseIdlePullers();
    // A full collection pauses the host: only when its own heap is over the memory rule's clear level.
    const percent = (100 * heapBeforeBytes) / getHeapStatistics().heap_size_limit;
    const gc = percent > this.d.clearPercent && fullGc();
    const heapAfterBytes = process.memoryUsage().heapUsed;
    const reply = {
      heapBeforeBytes,
      heapAfterBytes,
      freedBytes: Math.max(0, heapBeforeBytes - heapAfterBytes),
      gc,
      released: released.slice(0, 20),
    };
    this.last = { at: now, reply };
    this.d.emit({
      type: "CLEANUP_REPORTED",
      category: "monitor",
      scope: "memory_usage_percent",
      data: { hostId: this.d.hostId, ...reply },
    });
    this.d.logger.info(reply, "cleanup done");
    return reply;
  }
}
