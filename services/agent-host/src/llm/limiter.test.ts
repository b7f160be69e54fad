import { BUCKETS } from "@cadre/protocol";
import { ManualClock } from "@cadre/runtime";
import { startTwoHosts, type TwoHosts } from "@cadre/runtime/testing";
import type { KV } from "@nats-io/kv";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { until } from "../testing.js";
import { type ProviderLimits, SharedLimiter } from "./limiter.js";

/** A take, and whether it has finished (resolved or rejected). */
const track = (p: Promise<void>) => {
  const t = { done: false, error: undefined as unknown, promise: p };
  p.then(
    () => {
      t.done = true;
    },
    (err) => {
      t.done = true;
      t.error = err;
    },
  );
  return t;
};

/** Awaits a take that must now finish (after the clock was advanced past its wait). */
async function finishes(t: ReturnType<typeof track>): Promise<void> {
  await until("the take to finish", () => t.done, 5_000);
  await t.promise;
}

/** Awaits a take that must go at once: it fails as soon as the take sleeps on the clock instead. */
async function goesAtOnce(clock: ManualClock, p: Promise<void>): Promise<void> {
  const t = track(p);
  await until("the take to finish or to sleep", () => t.done || clock.pending > 0);
  expect(clock.pending, "the take waited for the refill").toBe(0);
  await p;
}

/** Starts a take that must wait: resolves once it sleeps on the clock, still unfinished. */
async function waits(clock: ManualClock, p: Promise<void>) {
  const t = track(p);
  await until("the take to finish or to sleep", () => t.done || clock.pending > 0);
  expect(t.done, "the take went without waiting").toBe(false);
  expect(clock.pending).toBe(1);
  return t;
}

describe("SharedLimiter: a provider's token bucket in a real JetStream KV bucket, on a driven clock", () => {
  /** Two connections: two hosts calling the same provider. */
  let hosts: TwoHosts;
  const buckets = (): Promise<[KV, KV]> => hosts.bucket(BUCKETS.llm);
  /** A limiter whose wall clock is the driven clock: advancing it moves both its sleeps and `now`. */
  const limiter = (kv: KV, clock: ManualClock, limits: ProviderLimits, provider = "openai") =>
    new SharedLimiter(kv, provider, limits, { clock, now: () => clock.now() });
  /** One request, refilled every 100 ms. */
  const ONE_PER_100MS: ProviderLimits = { requestsPerMinute: 600, burst: 1 / 600 };
  /** 100 tokens, refilled at 1 token per 10 ms. */
  const HUNDRED_TOKENS: ProviderLimits = { tokensPerMinute: 6_000, burst: 1 / 60 };

  beforeAll(async () => {
    hosts = await startTwoHosts("limiter-test");
  });
  afterAll(async () => {
    await hosts?.stop();
  });

  it("lets the first request go at once and makes the next wait 100 ms of driven time for the refill", async () => {
    const [kv] = await buckets();
    const clock = new ManualClock(1_000_000);
    const l = limiter(kv, clock, ONE_PER_100MS);
    await goesAtOnce(clock, l.take(0));
    const second = await waits(clock, l.take(0));
    clock.advance(99);
    await hosts.nc1.flush();
    expect(second.done).toBe(false);
    clock.advance(1);
    await finishes(second);
    expect(clock.pending).toBe(0);
    // The refill was taken: the next waits again.
    const third = await waits(clock, l.take(0));
    clock.advance(100);
    await finishes(third);
  });

  it("shares one bucket between hosts calling the same provider, and none between providers", async () => {
    const [kv1, kv2] = await buckets();
    const clock = new ManualClock(5_000);
    const host1 = limiter(kv1, clock, ONE_PER_100MS);
    const host2 = limiter(kv2, clock, ONE_PER_100MS);
    await goesAtOnce(clock, host1.take(0));
    // host2 never took: it waits only because host1 emptied the shared bucket.
    const second = await waits(clock, host2.take(0));
    // Another provider's bucket is full.
    const elsewhere = new ManualClock(5_000);
    await goesAtOnce(elsewhere, limiter(kv2, elsewhere, ONE_PER_100MS, "anthropic").take(0));
    clock.advance(99);
    await hosts.nc2.flush();
    expect(second.done).toBe(false);
    clock.advance(1);
    await finishes(second);
    // And host1 now finds it empty again.
    const third = await waits(clock, host1.take(0));
    clock.advance(100);
    await finishes(third);
  });

  it("makes a take larger than the tokens left wait for the refill", async () => {
    const [kv] = await buckets();
    const clock = new ManualClock(0);
    const l = limiter(kv, clock, HUNDRED_TOKENS);
    await goesAtOnce(clock, l.take(80));
    // 20 left; 50 wanted: 30 missing, refilled in 300 ms.
    const t = await waits(clock, l.take(50));
    clock.advance(299);
    await hosts.nc1.flush();
    expect(t.done).toBe(false);
    clock.advance(1);
    await finishes(t);
    // A take larger than the whole bucket goes once the bucket is full (it takes all of it).
    const big = await waits(clock, l.take(500));
    clock.advance(1_000);
    await finishes(big);
    const after = await waits(clock, l.take(1));
    clock.advance(10);
    await finishes(after);
  });

  it("takes back what giveBack returns, so a following take does not wait, but never past the bucket's size", async () => {
    const [kv1, kv2] = await buckets();
    const clock = new ManualClock(0);
    const l = limiter(kv1, clock, HUNDRED_TOKENS);
    await goesAtOnce(clock, l.take(80));
    // The call used 20 of its 80: another host's limiter gives the 60 back to the shared bucket.
    await limiter(kv2, clock, HUNDRED_TOKENS).giveBack(60);
    await goesAtOnce(clock, l.take(50));
    // 30 left: 40 waits.
    const short = await waits(clock, l.take(40));
    clock.advance(100);
    await finishes(short);
    // Giving back more than the bucket holds fills it, no more: 100 go, then 1 waits 10 ms.
    await l.giveBack(1_000);
    await goesAtOnce(clock, l.take(100));
    const t = await waits(clock, l.take(1));
    clock.advance(9);
    await hosts.nc1.flush();
    expect(t.done).toBe(false);
    clock.advance(1);
    await finishes(t);
  });

  it("never waits on a dimension without a limit", async () => {
    const [kv] = await buckets();
    const clock = new ManualClock(0);
    // Requests limited (600 a minute, a minute's burst), tokens not.
    const requestsOnly = limiter(kv, clock, { requestsPerMinute: 600, burst: 1 }, "requests-only");
    for (let i = 0; i < 5; i++) await goesAtOnce(clock, requestsOnly.take(10_000_000));
    // Tokens limited (one a minute's burst of 100), requests not: many small calls go.
    const tokensOnly = limiter(kv, clock, HUNDRED_TOKENS, "tokens-only");
    for (let i = 0; i < 20; i++) await goesAtOnce(clock, tokensOnly.take(5));
    // The tokens are what it waits on.
    const t = await waits(clock, tokensOnly.take(5));
    clock.advance(50);
    await finishes(t);
    // Neither limited.
    const none = limiter(kv, clock, { burst: 1 }, "unlimited");
    for (let i = 0; i < 20; i++) await goesAtOnce(clock, none.take(10_000_000));
  });

  it("rejects a take whose signal aborts, before or while it waits, without taking from the bucket", async () => {
    const [kv] = await buckets();
    const clock = new ManualClock(0);
    const l = limiter(kv, clock, ONE_PER_100MS);
    const reason = new Error("the task was cancelled");
    await expect(l.take(0, AbortSignal.abort(reason))).rejects.toBe(reason);
    // The aborted take took nothing: the one request is still there.
    await goesAtOnce(clock, l.take(0));

    const controller = new AbortController();
    const t = await waits(clock, l.take(0, controller.signal));
    controller.abort(reason);
    await until("the aborted take to finish", () => t.done, 5_000);
    expect(t.error).toBe(reason);
    expect(clock.pending).toBe(0);
    // The refill is there for the next take, not spent by the aborted one.
    clock.advance(100);
    await goesAtOnce(clock, l.take(0));
  });
});
