/**
 * The host's heartbeat: a core publish every `intervalMs` from a timer of its own, apart from
 * the work path (only a blocked event loop can delay it, which is what it should reveal). The
 * list of tasks held goes out when it changed and on every tenth beat.
 */

import os from "node:os";
import { encode, type HeldTask, subjects } from "@cadre/protocol";
import type { Clock, Logger, NatsConnection } from "@cadre/runtime";

/** What a beat says about the host at the time it is sent. */
export interface HostStatus {
  actors: number;
  held: HeldTask[];
  eventQueue: number;
  circuits: Record<string, "open" | "halfOpen">;
}

/** Options of {@link Heartbeat}. */
export interface HeartbeatOptions {
  nc: NatsConnection;
  hostId: string;
  incarnation: string;
  intervalMs: number;
  clock: Clock;
  logger: Logger;
  status: () => HostStatus;
}

/** Sends heartbeats until stopped. */
export class Heartbeat {
  private seq = 0;
  /** The held-task list as last sent, to send it only when it changed (and every 10th beat). */
  private lastHeld = "";
  private timer: unknown;
  private running = false;

  constructor(private readonly o: HeartbeatOptions) {}

  /** Sends one beat now and then one every interval. */
  start(): void {
    this.running = true;
    this.tick();
  }

  stop(): void {
    this.running = false;
    this.o.clock.clearTimeout(this.timer);
  }

  /** Sends one beat; a beat that cannot be sent (connection down) is skipped. */
  beat(): void {
    const { held, actors, eventQueue, circuits } = this.o.status();
    const heldKey = held.map((t) => `${t.taskId}:${t.epoch}`).join(",");
    const sendHeld = heldKey !== this.lastHeld || this.seq % 10 === 0;
    this.lastHeld = heldKey;
    try {
      this.o.nc.publish(
        subjects.heartbeat(this.o.hostId),
        encode(
          "heartbeat",
          {
            hostId: this.o.hostId,
            incarnation: this.o.incarnation,
            seq: this.seq++,
            actors,
            busy: held.length,
            load: (os.loadavg()[0] ?? 0) / Math.max(1, os.availableParallelism()),
            heapUsedMb: Math.round(process.memoryUsage().heapUsed / 104_857.6) / 10,
            eventQueue,
            circuits,
            ...(sendHeld ? { held } : {}),
          },
          { sender: this.o.hostId },
        ),
      );
    } catch (err) {
      this.o.logger.debug({ err }, "heartbeat not sent");
    }
  }

  private tick(): void {
    if (!this.running) return;
    this.beat();
    this.timer = this.o.clock.setTimeout(() => this.tick(), this.o.intervalMs);
  }
}
