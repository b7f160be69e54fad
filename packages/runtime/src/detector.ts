/**
 * Failure detection from heartbeats: a phi-accrual detector per host (Hayashibara et al., as
 * Akka implements it) and a tracker that turns its verdicts into events, once per transition.
 *
 * phi is -log10 of the probability that a heartbeat this late is still coming, given the
 * inter-arrival times seen so far (a normal distribution over a sliding window, its mean raised
 * by `acceptablePauseMs`, its deviation at least `minStdDevMs`). It adapts: a host whose
 * heartbeats grow irregular (a saturated CPU) gets a wider distribution and is suspected later.
 *
 * Defaults, with heartbeats every 100 ms: mean 100 + pause 200 = 300 ms, deviation 50 ms (the
 * floor, for regular beats). phi reaches 1 (suspected) about 365 ms after the last heartbeat,
 * and 8 (unreachable) about 580 ms after it: a dead host is declared unreachable well within
 * 1 s. A pause of 200 ms more than usual (a GC, a busy loop) raises phi only to about 0.3.
 */

import type { Clock } from "./clock.js";

export interface PhiAccrualOptions {
  /** Inter-arrival times kept. @default 100 */
  windowSize?: number;
  /** Floor of the standard deviation, so perfectly regular beats do not make phi explode. @default 50 */
  minStdDevMs?: number;
  /** Lateness tolerated on top of the mean before phi rises much. @default 200 */
  acceptablePauseMs?: number;
  /** Assumed interval until real ones are measured. @default 100 */
  firstIntervalMs?: number;
}

/** The suspicion level of one monitored process. */
export class PhiAccrualDetector {
  private readonly intervals: number[] = [];
  private sum = 0;
  private sumSq = 0;
  private last: number | undefined;
  private readonly windowSize: number;
  private readonly minStdDevMs: number;
  private readonly acceptablePauseMs: number;

  constructor(opts: PhiAccrualOptions = {}) {
    this.windowSize = opts.windowSize ?? 100;
    this.minStdDevMs = opts.minStdDevMs ?? 50;
    this.acceptablePauseMs = opts.acceptablePauseMs ?? 200;
    const first = opts.firstIntervalMs ?? 100;
    // Seeded as Akka does: two samples around the first estimate.
    this.add(first - first / 4);
    this.add(first + first / 4);
  }

  /** When the last heartbeat arrived (undefined before the first). */
  get lastHeartbeatAt(): number | undefined {
    return this.last;
  }

  heartbeat(at: number): void {
    if (this.last !== undefined && at > this.last) this.add(at - this.last);
    this.last = at;
  }

  /** Restarts the silence from `at` without taking the gap as a sample (see HostLiveness.resume). */
  rebase(at: number): void {
    if (this.last !== undefined) this.last = at;
  }

  /** phi at `at`: 0 before the first heartbeat. */
  phi(at: number): number {
    if (this.last === undefined) return 0;
    const n = this.intervals.length;
    const mean = this.sum / n;
    const variance = Math.max(0, this.sumSq / n - mean * mean);
    const std = Math.max(Math.sqrt(variance), this.minStdDevMs);
    return phiOf(at - this.last, mean + this.acceptablePauseMs, std);
  }

  private add(interval: number): void {
    this.intervals.push(interval);
    this.sum += interval;
    this.sumSq += interval * interval;
    if (this.intervals.length > this.windowSize) {
      const old = this.intervals.shift() ?? 0;
      this.sum -= old;
      this.sumSq -= old * old;
    }
  }
}

/** -log10 of the normal tail beyond `elapsed` (Akka's logistic approximation of the CDF). */
export function phiOf(elapsed: number, mean: number, std: number): number {
  const y = (elapsed - mean) / std;
  const e = Math.exp(-y * (1.5976 + 0.070566 * y * y));
  const p = elapsed > mean ? e / (1 + e) : 1 - 1 / (1 + e);
  return -Math.log10(Math.max(p, Number.MIN_VALUE));
}

/** What the tracker says about a host. */
export type Liveness = "alive" | "suspected" | "unreachable";

/** A change of a host's liveness, with the evidence. */
export interface LivenessEvent {
  type: "suspected" | "unreachable" | "healed";
  hostId: string;
  at: number;
  lastHeartbeatAt: number;
  silenceMs: number;
  phi: number;
}

export interface HostLivenessOptions extends PhiAccrualOptions {
  clock: Clock;
  /** @default 1 */
  suspectPhi?: number;
  /** @default 8 */
  unreachablePhi?: number;
  onEvent: (e: LivenessEvent) => void;
}

/**
 * Tracks every host heard from. `check()` (run on a timer by the owner, or by `start`) emits
 * suspected and unreachable when phi crosses the thresholds, and healed when a suspected or
 * unreachable host is heard from again, each exactly once per transition.
 */
export class HostLiveness {
  private readonly hosts = new Map<string, { detector: PhiAccrualDetector; state: Liveness }>();
  private timer: unknown;
  private paused = false;
  private readonly suspectPhi: number;
  private readonly unreachablePhi: number;

  constructor(private readonly o: HostLivenessOptions) {
    this.suspectPhi = o.suspectPhi ?? 1;
    this.unreachablePhi = o.unreachablePhi ?? 8;
  }

  heartbeat(hostId: string, at = this.o.clock.now()): void {
    let h = this.hosts.get(hostId);
    if (!h) {
      h = { detector: new PhiAccrualDetector(this.o), state: "alive" };
      this.hosts.set(hostId, h);
    }
    const phi = h.detector.phi(at);
    const lastHeartbeatAt = h.detector.lastHeartbeatAt ?? at;
    h.detector.heartbeat(at);
    if (h.state !== "alive") {
      h.state = "alive";
      this.o.onEvent({ type: "healed", hostId, at, lastHeartbeatAt, silenceMs: at - lastHeartbeatAt, phi });
    }
  }

  /**
   * While the observer itself is cut off from the hosts (its own NATS connection is down),
   * silence says nothing about them: checks stop until `resume`.
   */
  pause(): void {
    this.paused = true;
  }

  /** Checks again, counting each host's silence from now, not from before the pause. */
  resume(at = this.o.clock.now()): void {
    for (const h of this.hosts.values()) h.detector.rebase(at);
    this.paused = false;
  }

  check(at = this.o.clock.now()): void {
    if (this.paused) return;
    for (const [hostId, h] of this.hosts) {
      const phi = h.detector.phi(at);
      const next: Liveness =
        phi >= this.unreachablePhi ? "unreachable" : phi >= this.suspectPhi ? "suspected" : h.state;
      if (next === h.state || (h.state === "unreachable" && next === "suspected")) continue;
      // A host can go straight from alive to unreachable (a check was late): say both.
      if (h.state === "alive" && next === "unreachable") this.emit("suspected", hostId, h, at, phi);
      h.state = next;
      this.emit(next === "unreachable" ? "unreachable" : "suspected", hostId, h, at, phi);
    }
  }

  state(hostId: string): Liveness | undefined {
    return this.hosts.get(hostId)?.state;
  }

  phi(hostId: string, at = this.o.clock.now()): number | undefined {
    return this.hosts.get(hostId)?.detector.phi(at);
  }

  /** A host that left cleanly: no longer watched. */
  forget(hostId: string): void {
    this.hosts.delete(hostId);
  }

  /**
   * Runs `check` every `intervalMs` on the clock. A round that runs later than
   * `acceptablePauseMs` is skipped: this process itself was stalled (GC, CPU starvation), the
   * heartbeats that arrived meanwhile still wait unread in its socket, and judging silence now
   * would suspect every host for the observer's own pause. The next round judges, after they
   * are read.
   */
  start(intervalMs: number): void {
    const tolerance = this.o.acceptablePauseMs ?? 200;
    let due = this.o.clock.now() + intervalMs;
    const loop = () => {
      const now = this.o.clock.now();
      if (now - due <= tolerance) this.check(now);
      due = now + intervalMs;
      this.timer = this.o.clock.setTimeout(loop, intervalMs);
    };
    this.timer = this.o.clock.setTimeout(loop, intervalMs);
  }

  stop(): void {
    this.o.clock.clearTimeout(this.timer);
  }

  private emit(
    type: "suspected" | "unreachable",
    hostId: string,
    h: { detector: PhiAccrualDetector },
    at: number,
    phi: number,
  ): void {
    const last = h.detector.lastHeartbeatAt ?? at;
    this.o.onEvent({ type, hostId, at, lastHeartbeatAt: last, silenceMs: at - last, phi });
  }
}
