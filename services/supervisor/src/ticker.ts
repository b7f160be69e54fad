/** Runs a step now and then every `ms` after each one ends, on a clock tests can drive. */

import type { Clock } from "@cadre/runtime";

export class Ticker {
  private timer: unknown;
  private stopped = false;
  private ticking: Promise<void> = Promise.resolve();

  constructor(
    private readonly clock: Clock,
    private readonly ms: number,
    private readonly step: () => Promise<void>,
  ) {}

  /** Steps now and then every `ms`; resolves when the first step is done. */
  start(): Promise<void> {
    const loop = () => {
      if (this.stopped) return;
      this.ticking = this.step().finally(() => {
        if (!this.stopped) this.timer = this.clock.setTimeout(loop, this.ms);
      });
    };
    loop();
    return this.ticking;
  }

  /** Stops stepping; resolves once a step under way has ended. */
  async stop(): Promise<void> {
    this.stopped = true;
    this.clock.clearTimeout(this.timer);
    await this.ticking;
  }
}
