/**
 * Admission throttle: while it holds, the supervisor refuses new workflows submitted below a
 * priority (THROTTLED, retryable, saying until when), so the work already running can finish.
 * The monitor sets it when a metric whose action is `throttle` crosses its threshold and renews
 * it every interval while the metric stays over; it lifts it when the metric clears. It lives in
 * memory: a supervisor taking over gets it from the monitor's next renewal, and a throttle
 * nobody renews runs out by itself.
 */

import { type OpReplyInput, type OpRequest, ThrottledError, type TypedEvent } from "@cadre/protocol";
import type { Clock } from "@cadre/runtime";

/** The throttle of the active supervisor. */
export class AdmissionThrottle {
  private current: { belowPriority: number; untilMs: number; reason: string } | undefined;
  private timer: unknown;

  constructor(private readonly d: { clock: Clock; emit: (e: TypedEvent) => void }) {}

  /** Sets, renews or (forMs 0) lifts the throttle. */
  set(req: OpRequest<"sup.admission.throttle">): OpReplyInput<"sup.admission.throttle"> {
    const now = this.d.clock.now();
    if (req.forMs === 0) {
      this.lift(req.reason || "lifted");
      return { belowPriority: req.belowPriority, untilMs: null };
    }
    const untilMs = now + req.forMs;
    const changed = this.current?.belowPriority !== req.belowPriority;
    this.current = { belowPriority: req.belowPriority, untilMs, reason: req.reason };
    this.d.clock.clearTimeout(this.timer);
    this.timer = this.d.clock.setTimeout(() => this.lift("ran out: not renewed"), req.forMs);
    // A renewal is quiet; a new throttle (or a new priority) is announced.
    if (changed) {
      this.d.emit({
        type: "ADMISSION_THROTTLED",
        category: "supervisor",
        scope: "admission",
        data: { belowPriority: req.belowPriority, untilMs, reason: req.reason },
      });
    }
    return { belowPriority: req.belowPriority, untilMs };
  }

  /** Refuses a workflow of this priority while the throttle holds (THROTTLED). */
  check(priority: number): void {
    const t = this.current;
    if (t && this.d.clock.now() < t.untilMs && priority < t.belowPriority) {
      throw new ThrottledError(t.belowPriority, t.untilMs, t.reason);
    }
  }

  stop(): void {
    this.d.clock.clearTimeout(this.timer);
    this.current = undefined;
  }

  private lift(reason: string): void {
    if (!this.current) return;
    this.current = undefined;
    this.d.clock.clearTimeout(this.timer);
    this.d.emit({ type: "ADMISSION_RESTORED", category: "supervisor", scope: "admission", data: { reason } });
  }
}
