/**
 * The supervisor lease: one supervisor acts, the others stand by. The lease is a KV record
 * renewed by compare-and-set. A standby never compares clocks with the holder: it watches the
 * record's revision and takes over, again by compare-and-set, when the revision has not moved
 * for `leaseTtlMs` on its own clock. The holder steps down as soon as a renewal loses the
 * compare-and-set (someone took over) or when it has not renewed for `leaseTtlMs` itself (it
 * cannot reach NATS, so a standby may be taking over); its late writes to task and workflow
 * records are then fenced by their own revision checks.
 */

import { ConcurrentModificationError, type LeaseRecord } from "@cadre/protocol";
import type { Clock, Logger, StateStore } from "@cadre/runtime";
import { Ticker } from "./ticker.js";

export const LEASE_KEY = "supervisor.lease";

export interface LeaseOptions {
  store: StateStore<LeaseRecord>;
  id: string;
  ttlMs: number;
  renewMs: number;
  clock: Clock;
  logger: Logger;
  /** Called when this supervisor becomes the active one. */
  onAcquire: (lease: LeaseRecord, previous: LeaseRecord | undefined) => void | Promise<void>;
  /** Called when it stops being the active one. */
  onLose: (reason: string) => void | Promise<void>;
}

export class LeaseKeeper {
  private held: { revision: number; term: number } | undefined;
  private lastRenewedAt = 0;
  private observed: { revision: number; since: number } | undefined;
  private readonly ticker: Ticker;

  constructor(private readonly o: LeaseOptions) {
    this.ticker = new Ticker(o.clock, o.renewMs, () => this.tick());
  }

  get active(): boolean {
    return this.held !== undefined;
  }

  /** Ticks now and then every `renewMs` on the clock; resolves when the first tick is done. */
  start(): Promise<void> {
    return this.ticker.start();
  }

  /** Stops ticking; an active holder gives the lease up so a standby need not wait for the TTL. */
  async stop(): Promise<void> {
    await this.ticker.stop();
    if (this.held) {
      const held = this.held;
      this.held = undefined;
      try {
        const cur = await this.o.store.get(LEASE_KEY);
        if (cur && cur.revision === held.revision) await this.o.store.kv.delete(LEASE_KEY);
      } catch (err) {
        this.o.logger.warn({ err }, "could not release the supervisor lease; a standby takes over after its TTL");
      }
    }
  }

  /** One step: renew if held, else take over if absent or lapsed. Exposed for tests. */
  async tick(): Promise<void> {
    const now = this.o.clock.now();
    try {
      if (this.held) {
        await this.renew(now);
        return;
      }
      const cur = await this.o.store.get(LEASE_KEY);
      if (!cur) {
        await this.take(now, undefined, undefined);
        return;
      }
      // Our own id: this process restarted after dying with the lease (ids are unique per
      // supervisor), so nobody else acts and there is no need to wait out the TTL.
      if (cur.value.holder === this.o.id) {
        await this.take(now, cur.value, cur.revision);
        return;
      }
      if (!this.observed || this.observed.revision !== cur.revision) {
        this.observed = { revision: cur.revision, since: now };
        return;
      }
      if (now - this.observed.since >= this.o.ttlMs) await this.take(now, cur.value, cur.revision);
    } catch (err) {
      if (err instanceof ConcurrentModificationError) {
        if (this.held) await this.lose("another supervisor took the lease");
        return; // Another standby was faster; keep watching.
      }
      this.o.logger.warn({ err }, "supervisor lease step failed");
      if (this.held && now - this.lastRenewedAt >= this.o.ttlMs) {
        await this.lose(`lease not renewed for ${now - this.lastRenewedAt} ms`);
      }
    }
  }

  private async renew(now: number): Promise<void> {
    const held = this.held;
    if (!held) return;
    const revision = await this.o.store.update(
      LEASE_KEY,
      { holder: this.o.id, term: held.term, renewedAt: now },
      held.revision,
    );
    this.held = { revision, term: held.term };
    this.lastRenewedAt = now;
  }

  private async take(now: number, previous: LeaseRecord | undefined, revision: number | undefined): Promise<void> {
    const lease: LeaseRecord = { holder: this.o.id, term: (previous?.term ?? 0) + 1, renewedAt: now };
    const rev =
      revision === undefined
        ? await this.o.store.create(LEASE_KEY, lease)
        : await this.o.store.update(LEASE_KEY, lease, revision);
    this.held = { revision: rev, term: lease.term };
    this.lastRenewedAt = now;
    this.observed = undefined;
    this.o.logger.info({ term: lease.term, previous: previous?.holder ?? null }, "supervisor lease acquired: active");
    try {
      await this.o.onAcquire(lease, previous);
    } catch (err) {
      // Half-active is the worst state (holding the lease, not serving): undo what was done
      // and let the next tick take the lease again (it is ours, so at once) and retry.
      this.o.logger.warn({ err }, "activation failed; retrying");
      await this.lose(`activation failed: ${(err as Error).message}`);
    }
  }

  private async lose(reason: string): Promise<void> {
    this.held = undefined;
    this.observed = undefined;
    this.o.logger.warn({ reason }, "supervisor lease lost: standing by");
    await this.o.onLose(reason);
  }
}
