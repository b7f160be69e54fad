/**
 * A provider's requests- and tokens-per-minute, shared by every host: one token bucket per
 * provider in the `cadre_llm` bucket (`rate.<provider>`), taken from by compare-and-set. Each
 * call takes one request and its worst case in tokens; when the bucket has not enough, the call
 * waits until the refill would cover it and tries again. What a call did not use is given back
 * once its usage is known.
 *
 * The bucket refills continuously at the limit per minute, up to `burst` of a minute's worth.
 * Refill is reckoned on the wall clock of whoever takes: hosts must keep their clocks in step
 * (NTP), or a fast one takes early.
 */

import { llmKeys, type RateBucket, RateBucketSchema } from "@cadre/protocol";
import { type Clock, StateStore, sleep } from "@cadre/runtime";
import type { KV } from "@nats-io/kv";

/** A provider's limits (`llm.providers.<name>.limits`). */
export interface ProviderLimits {
  requestsPerMinute?: number | undefined;
  tokensPerMinute?: number | undefined;
  burst: number;
}

/** The shared bucket of one provider. */
export class SharedLimiter {
  private readonly store: StateStore<RateBucket>;
  private readonly key: string;

  constructor(
    kv: KV,
    provider: string,
    private readonly limits: ProviderLimits,
    private readonly d: { clock: Clock; now: () => number },
  ) {
    this.store = new StateStore(kv, RateBucketSchema, "provider limit");
    this.key = llmKeys.rate(provider);
  }

  /** The most the bucket holds, per dimension (Infinity when not limited). */
  private capacity(): { requests: number; tokens: number } {
    const { requestsPerMinute: rpm, tokensPerMinute: tpm, burst } = this.limits;
    return { requests: rpm ? Math.max(1, rpm * burst) : Infinity, tokens: tpm ? Math.max(1, tpm * burst) : Infinity };
  }

  /** The bucket refilled to `now`. */
  private refilled(b: RateBucket | undefined, now: number): RateBucket {
    const cap = this.capacity();
    if (!b) return { requests: finite(cap.requests), tokens: finite(cap.tokens), at: now };
    const elapsed = Math.max(0, now - b.at);
    const { requestsPerMinute: rpm = 0, tokensPerMinute: tpm = 0 } = this.limits;
    return {
      requests: Math.min(finite(cap.requests), b.requests + (elapsed * rpm) / 60_000),
      tokens: Math.min(finite(cap.tokens), b.tokens + (elapsed * tpm) / 60_000),
      at: now,
    };
  }

  /**
   * Takes one request and `tokens` (capped at the bucket's size, so a call larger than the
   * burst still goes, once the bucket is full), waiting for the refill when it must.
   */
  async take(tokens: number, signal?: AbortSignal): Promise<void> {
    const cap = this.capacity();
    const { requestsPerMinute: rpm, tokensPerMinute: tpm } = this.limits;
    const want = { requests: rpm ? 1 : 0, tokens: tpm ? Math.min(tokens, cap.tokens) : 0 };
    for (;;) {
      signal?.throwIfAborted();
      let waitMs = 0;
      await this.store.modify(this.key, (current) => {
        const b = this.refilled(current, this.d.now());
        waitMs = Math.max(
          this.deficitMs(want.requests - b.requests, this.limits.requestsPerMinute),
          this.deficitMs(want.tokens - b.tokens, this.limits.tokensPerMinute),
        );
        if (waitMs > 0) return undefined;
        return { ...b, requests: b.requests - want.requests, tokens: b.tokens - want.tokens };
      });
      if (waitMs === 0) return;
      await sleep(this.d.clock, Math.ceil(waitMs), signal);
    }
  }

  /** Gives back tokens a call took but did not use. */
  async giveBack(tokens: number): Promise<void> {
    if (!this.limits.tokensPerMinute || tokens <= 0) return;
    await this.store.modify(this.key, (current) => {
      const b = this.refilled(current, this.d.now());
      return { ...b, tokens: Math.min(finite(this.capacity().tokens), b.tokens + tokens) };
    });
  }

  /** How long the refill takes to cover `missing` at `perMinute`. */
  private deficitMs(missing: number, perMinute: number | undefined): number {
    if (!perMinute || missing <= 1e-9) return 0;
    return (missing * 60_000) / perMinute;
  }
}

/** A dimension without a limit is stored as 0 and never read. */
const finite = (n: number): number => (Number.isFinite(n) ? n : 0);
