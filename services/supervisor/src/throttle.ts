/**
 * Admission throttle: while it holds, the supervisor refuses new workflows submitted below a
 * priority (THROTTLED, retryable, saying until when), so the work already running can finish.
 * The monitor sets it when a metric whose action is `throttle` crosses its threshold and renews
 * it every interval while the metric stays over; it lifts it when the metric clears. It lives in
 * memory: a supervisor taking over gets it from the monitor's next renewal, and a throttle
 * nobody renews runs out by itself.
 *
 * Submits are answered by every supervisor holding a partition, so the lease holder, which the
 * monitor's request reaches, writes each setting to the registry (THROTTLE_KEY) before it
 * answers, and every supervisor follows the key's updates (not its last value: a throttle from
 * before a start would be applied for a full period again). The window: a submit another
 * supervisor answers within one watch delivery of the answer is admitted.
 */

import { messages, type OpReplyInput, type OpRequest, ThrottledError, type TypedEvent } from "@cadre/protocol";
import { type Clock, type Logger, safeJson } from "@cadre/runtime";
import type { KV } from "@nats-io/kv";

/** The registry key holding the lease holder's last throttle setting. */
export const THROTTLE_KEY = "admission.throttle";

/** The throttle of one supervisor. */
export class AdmissionThrottle {
  private current: { belowPriority: number; untilMs: number; reason: string } | undefined;
  private timer: unknown;
  private watch?: { stop(): void };

  constructor(private readonly d: { clock: Clock; emit: (e: TypedEvent) => void; kv?: KV; logger?: Logger }) {}

  /** The monitor's setting, at the lease holder: set here, then told to the other supervisors. */
  async command(req: OpRequest<"sup.admission.throttle">): Promise<OpReplyInput<"sup.admission.throttle">> {
    const reply = this.set(req);
    await this.d.kv?.put(THROTTLE_KEY, JSON.stringify(req));
    return reply;
  }

  /** Follows the lease holder's settings (every supervisor). */
  async follow(): Promise<void> {
    if (!this.d.kv) return;
    const w = await this.d.kv.watch({ key: THROTTLE_KEY, include: "updates" });
    this.watch = w;
    void (async () => {
      for await (const e of w) {
        if (e.operation !== "PUT") continue;
        const r = messages["sup.admission.throttle"].safeParse(safeJson(e.string()));
        if (r.success) this.set(r.data);
        else this.d.logger?.warn({ key: e.key }, "admission throttle setting does not parse; ignored");
      }
    })().catch((err) => this.d.logger?.error({ err }, "admission throttle watch stopped"));
  }

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
    this.watch?.stop();
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
