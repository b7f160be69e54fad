import { BUCKETS } from "@cadre/protocol";
import { jetstreamManager } from "@nats-io/jetstream";
import { Kvm } from "@nats-io/kv";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { z } from "zod";
import { type Breaker, createBreaker } from "./breaker.js";
import { ManualClock } from "./clock.js";
import { type CadreMetrics, createMetrics } from "./metrics.js";
import { connectNats, type NatsConnection } from "./nats.js";
import { type CorruptionReport, StateStore } from "./state-store.js";
import { type NatsServer, startNatsServer } from "./testing/nats-server.js";

const Counter = z.object({ n: z.number().int() });

/** Resolves once `probe` answers something, polling every 10 ms; throws after 5 s. */
async function until(probe: () => Promise<unknown>): Promise<void> {
  const end = Date.now() + 5000;
  while (!(await probe())) {
    if (Date.now() > end) throw new Error("the condition did not hold within 5 s");
    await new Promise((r) => setTimeout(r, 10));
  }
}

describe("StateStore over a real JetStream KV bucket", () => {
  let server: NatsServer;
  let nc: NatsConnection;
  let bucket = 0;
  const store = async (conn = nc, name = `${BUCKETS.workflows}_t${++bucket}`) =>
    new StateStore(await new Kvm(conn).create(name, { history: 5 }), Counter, "counter");

  beforeAll(async () => {
    server = await startNatsServer();
    nc = await connectNats(server.url, "state-store-test");
  });
  afterAll(async () => {
    await nc?.close();
    await server?.stop();
  });

  it("refuses an update at a stale revision with CONCURRENT_MODIFICATION naming the key", async () => {
    const s = await store();
    const rev = await s.create("k", { n: 1 });
    await s.update("k", { n: 2 }, rev);
    const err = await s.update("k", { n: 3 }, rev).catch((e) => e);
    expect(err.code).toBe("CONCURRENT_MODIFICATION");
    expect(err.retryable).toBe(true);
    expect(err.message).toContain('state key "k" changed since revision');
    expect((await s.get("k"))?.value).toEqual({ n: 2 });
  });

  it("with a cache, reads a key from the bucket while a write to it is not yet acknowledged here", async () => {
    const kv = await new Kvm(nc).create(`${BUCKETS.workflows}_t${++bucket}`, { history: 5 });
    // A breaker that holds each write's acknowledgement until released: stored, not yet known here.
    const held: (() => void)[] = [];
    const breaker = {
      call: async <R>(fn: () => Promise<R>): Promise<R> => {
        const r = await fn();
        await new Promise<void>((resolve) => held.push(resolve));
        return r;
      },
    } as unknown as Breaker;
    const release = async () => {
      await until(async () => held.length > 0);
      held.shift()?.();
    };
    const cached = new StateStore(kv, Counter, "counter", { cacheEntries: 2, breaker });
    const first = cached.create("k", { n: 1 });
    await release();
    const rev = await first;
    expect(await cached.get("k")).toEqual({ value: { n: 1 }, revision: rev });
    const second = cached.update("k", { n: 2 }, rev);
    // Stored (another process could be reading it), its acknowledgement still held here.
    await until(async () => held.length > 0);
    expect(await cached.get("k")).toEqual({ value: { n: 2 }, revision: rev + 1 });
    await release();
    expect((await cached.get("k"))?.revision).toBe(await second);
  });

  it("caches only the keys setCaching accepts, and forgets those it stops accepting", async () => {
    const kv = await new Kvm(nc).create(`${BUCKETS.workflows}_t${++bucket}`, { history: 5 });
    const cached = new StateStore(kv, Counter, "counter", { cacheEntries: 10 });
    const other = new StateStore(kv, Counter, "counter");
    cached.setCaching((key) => key.startsWith("mine"));
    const [mine, theirs] = [await cached.create("mine-1", { n: 1 }), await cached.create("theirs-1", { n: 1 })];
    await other.update("mine-1", { n: 2 }, mine);
    await other.update("theirs-1", { n: 2 }, theirs);
    // Accepted: answered from the cache (the other writer's change not seen); the other, read through.
    expect((await cached.get("mine-1"))?.value).toEqual({ n: 1 });
    expect((await cached.get("theirs-1"))?.value).toEqual({ n: 2 });
    // No longer accepted: forgotten at once, read through from now on.
    cached.setCaching((key) => key.startsWith("theirs"));
    expect((await cached.get("mine-1"))?.value).toEqual({ n: 2 });
    expect((await cached.get("theirs-1"))?.value).toEqual({ n: 2 });
    await other.update("theirs-1", { n: 3 }, (await other.get("theirs-1"))?.revision ?? 0);
    expect((await cached.get("theirs-1"))?.value).toEqual({ n: 2 });
    cached.setCaching(false);
    expect((await cached.get("theirs-1"))?.value).toEqual({ n: 3 });
  });

  it("with a cache, reads back its own writes; another writer's change fails the next compare-and-set, which forgets the key", async () => {
    const kv = await new Kvm(nc).create(`${BUCKETS.workflows}_t${++bucket}`, { history: 5 });
    const cached = new StateStore(kv, Counter, "counter", { cacheEntries: 2 });
    const other = new StateStore(kv, Counter, "counter");
    const rev = await cached.create("k", { n: 1 });
    await other.update("k", { n: 5 }, rev);
    // Its own write, from the cache (the other writer's is not seen yet)...
    expect(await cached.get("k")).toEqual({ value: { n: 1 }, revision: rev });
    // ...until its compare-and-set at that revision fails; then it reads the stored value.
    const err = await cached.update("k", { n: 2 }, rev).catch((e) => e);
    expect(err.code).toBe("CONCURRENT_MODIFICATION");
    expect((await cached.get("k"))?.value).toEqual({ n: 5 });
    // modify goes through the same path: it commits on the fresh read.
    expect((await cached.modify("k", (c) => ({ n: (c?.n ?? 0) + 1 })))?.value).toEqual({ n: 6 });
    expect((await other.get("k"))?.value).toEqual({ n: 6 });
    // At most cacheEntries keys are kept (the least recently used goes); forgetAll empties it.
    await cached.create("a", { n: 1 });
    await cached.create("b", { n: 1 });
    await other.update("k", { n: 9 }, (await other.get("k"))?.revision ?? 0);
    expect((await cached.get("k"))?.value).toEqual({ n: 9 });
    await other.update("b", { n: 7 }, (await other.get("b"))?.revision ?? 0);
    cached.forgetAll();
    expect((await cached.get("b"))?.value).toEqual({ n: 7 });
  });

  it("counts every lost compare-and-set in cadre_state_conflicts_total, labelled with the metrics' service", async () => {
    const metrics = createMetrics({ service: "cadre-test", defaultMetrics: false });
    const conflicts = async (m: CadreMetrics) =>
      (await m.stateConflicts.get()).values.find((v) => v.labels.service === "cadre-test")?.value ?? 0;
    const kv = await new Kvm(nc).create(`${BUCKETS.workflows}_t${++bucket}`, { history: 5 });
    const s = new StateStore(kv, Counter, "counter", { metrics });
    const rev = await s.create("k", { n: 1 });
    await s.update("k", { n: 2 }, rev);
    expect(await conflicts(metrics)).toBe(0);
    // Two writers at the same revision: the second loses.
    await expect(s.update("k", { n: 3 }, rev)).rejects.toMatchObject({ code: "CONCURRENT_MODIFICATION" });
    expect(await conflicts(metrics)).toBe(1);
    // A create of a key that exists is a lost compare-and-set too (at revision 0).
    await expect(s.create("k", { n: 9 })).rejects.toMatchObject({ code: "CONCURRENT_MODIFICATION" });
    expect(await conflicts(metrics)).toBe(2);
    // modify retries its lost attempt: counted once, and the write still commits. Another
    // writer gets in between modify's first read and its compare-and-set.
    const other = new StateStore(kv, Counter, "counter");
    let interfered = false;
    const racy = new Proxy(kv, {
      get: (target, prop, receiver) =>
        prop === "update" && !interfered
          ? async (...args: Parameters<typeof kv.update>) => {
              interfered = true;
              await other.put("k", { n: 100 });
              return target.update(...args);
            }
          : Reflect.get(target, prop, receiver),
    });
    const r = new StateStore(racy, Counter, "counter", { metrics });
    let calls = 0;
    const after = await r.modify("k", (v) => {
      calls++;
      return { n: (v?.n ?? 0) + 1 };
    });
    expect([after?.value.n, calls]).toEqual([101, 2]);
    expect(await conflicts(metrics)).toBe(3);
    // Unconditional writes never conflict.
    await s.put("k", { n: 0 });
    expect(await conflicts(metrics)).toBe(3);
  });

  it("detects a value whose bytes were changed in KV directly, and restores the last good revision", async () => {
    const kv = await new Kvm(nc).create(`${BUCKETS.workflows}_t${++bucket}`, { history: 5 });
    const reports: CorruptionReport[] = [];
    const s = new StateStore(kv, Counter, "counter", { onCorruption: (r) => reports.push(r) });
    await s.create("k", { n: 1 });
    const good = await s.update("k", { n: 2 }, (await s.get("k"))?.revision ?? 0);
    // Stored as {"n":2,"_crc":...}: flip the 2 to a 7, keeping the checksum.
    const bytes = new TextDecoder().decode((await kv.get("k"))?.value);
    expect(bytes).toMatch(/^\{"n":2,"_crc":\d+\}$/);
    const bad = await kv.put("k", bytes.replace('"n":2', '"n":7'));

    const read = await s.get("k");
    expect(read?.value).toEqual({ n: 2 });
    expect(reports).toEqual([
      expect.objectContaining({ key: "k", revision: bad, restoredFrom: good, restoredAs: read?.revision }),
    ]);
    expect(reports[0]?.reason).toContain("fails its checksum");
    // Written back: the next read is clean and reports nothing.
    expect((await s.get("k"))?.value).toEqual({ n: 2 });
    expect(reports).toHaveLength(1);
  });

  it("fails the read when no revision in the history is good", async () => {
    const kv = await new Kvm(nc).create(`${BUCKETS.workflows}_t${++bucket}`, { history: 5 });
    const reports: CorruptionReport[] = [];
    const s = new StateStore(kv, Counter, "counter", { onCorruption: (r) => reports.push(r) });
    await kv.put("k", '{"n":1,"_crc":1}');
    const err = await s.get("k").catch((e) => e);
    expect(err.code).toBe("PROTOCOL_ERROR");
    expect(reports).toEqual([expect.objectContaining({ key: "k", restoredFrom: null, restoredAs: null })]);
  });

  it("refuses to create a key that exists", async () => {
    const s = await store();
    await s.create("k", { n: 1 });
    await expect(s.create("k", { n: 2 })).rejects.toMatchObject({ code: "CONCURRENT_MODIFICATION" });
  });

  it("refuses to store a value that breaks its schema", async () => {
    const s = await store();
    await expect(s.put("k", { n: 1.5 })).rejects.toMatchObject({ code: "PROTOCOL_ERROR" });
  });

  it("concurrent state modification: ten writers on their own connections each increment one key 200 times, ending at exactly 2000", async () => {
    const name = `counter_${Date.now()}`;
    await new Kvm(nc).create(name, { history: 5 });
    const conns = await Promise.all(Array.from({ length: 10 }, (_, i) => connectNats(server.url, `writer-${i}`)));
    try {
      const stores = await Promise.all(
        conns.map(async (c) => new StateStore(await new Kvm(c).open(name), Counter, "counter")),
      );
      await Promise.all(
        stores.map(async (s) => {
          for (let i = 0; i < 200; i++) await s.modify("count", (v) => ({ n: (v?.n ?? 0) + 1 }));
        }),
      );
      const final = await stores[0]?.get("count");
      expect(final?.value.n).toBe(2000);
    } finally {
      await Promise.all(conns.map((c) => c.close()));
    }
  });

  it("writes through the state_update breaker: lost compare-and-sets do not open it, a missing stream does", async () => {
    const name = `${BUCKETS.workflows}_t${++bucket}`;
    const kv = await new Kvm(nc).create(name, { history: 5 });
    const clock = new ManualClock(0);
    const breaker = createBreaker({
      name: "state_update",
      threshold: 2,
      resetTimeoutMs: 30_000,
      firstResetMs: 1_000,
      clock,
    });
    const s = new StateStore(kv, Counter, "counter", { breaker });
    const rev = await s.create("k", { n: 1 });
    await s.update("k", { n: 2 }, rev);
    for (let i = 0; i < 5; i++) {
      await expect(s.update("k", { n: 3 }, rev)).rejects.toMatchObject({ code: "CONCURRENT_MODIFICATION" });
    }
    expect(breaker.state).toBe("closed");

    // The bucket's stream is gone: writes find no responder; two of them open the circuit and
    // the third fails fast without reaching NATS.
    const jsm = await jetstreamManager(nc);
    await jsm.streams.delete(`KV_${name}`);
    for (let i = 0; i < 2; i++) await expect(s.put("k", { n: 4 })).rejects.toBeDefined();
    expect(breaker.state).toBe("open");
    const fast = await s.put("k", { n: 4 }).catch((e) => e);
    expect(fast.code).toBe("CIRCUIT_OPEN");
    expect(fast.data.retryInMs).toBe(1_000);

    // Back: after the open time one trial write goes through and closes it.
    const again = new StateStore(await new Kvm(nc).create(name, { history: 5 }), Counter, "counter", { breaker });
    clock.advance(1_000);
    expect(breaker.state).toBe("halfOpen");
    await again.put("k", { n: 5 });
    expect(breaker.state).toBe("closed");
    expect((await again.get("k"))?.value).toEqual({ n: 5 });
    breaker.stop();
  });
});
