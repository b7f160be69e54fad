/**
 * Pulls tasks of one kind of one team for this host: it asks JetStream for exactly as many
 * tasks as the host has idle actors of that kind, so a task never waits in a host's buffer
 * while another host has a free actor.
 */

import { type Logger, PULL_OPTIONS } from "@cadre/runtime";
import type { Consumer, ConsumerMessages, JsMsg } from "@nats-io/jetstream";

/** What the puller needs from its host. */
export interface PullerHost {
  idleCount(teamId: string, kind: string): number;
  dispatch(teamId: string, kind: string, msg: JsMsg): void;
}

/** A fetch loop for one (team, kind) consumer. */
export class KindPuller {
  private stopped = false;
  private dirty = true;
  private waker: (() => void) | undefined;
  private current: ConsumerMessages | undefined;
  private loop: Promise<void> | undefined;

  constructor(
    private readonly host: PullerHost,
    readonly teamId: string,
    readonly kind: string,
    private readonly consumer: Consumer,
    private readonly logger: Logger,
  ) {}

  /** Starts pulling. */
  start(): void {
    this.loop = this.run();
  }

  /** Tells the puller an actor became idle. */
  wake(): void {
    this.dirty = true;
    this.waker?.();
  }

  /** Stops pulling; tasks not yet dispatched return to JetStream when their ack wait ends. */
  async stop(): Promise<void> {
    this.stopped = true;
    this.current?.stop();
    this.waker?.();
    await this.loop;
  }

  private async run(): Promise<void> {
    while (!this.stopped) {
      const idle = this.host.idleCount(this.teamId, this.kind);
      if (idle === 0) {
        if (!this.dirty) await new Promise<void>((r) => (this.waker = r));
        this.waker = undefined;
        this.dirty = false;
        continue;
      }
      try {
        this.current = await this.consumer.fetch({ ...PULL_OPTIONS, max_messages: idle });
        for await (const m of this.current) this.host.dispatch(this.teamId, this.kind, m);
      } catch (err) {
        if (this.stopped) break;
        this.logger.warn({ err, teamId: this.teamId, kind: this.kind }, "task pull failed; pulling again");
        await new Promise((r) => setTimeout(r, 500).unref());
      } finally {
        this.current = undefined;
      }
    }
  }
}
