import { BUCKETS, parseConfig, STREAMS } from "@cadre/protocol";
import { jetstream, jetstreamManager } from "@nats-io/jetstream";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { z } from "zod";
import { ManualClock } from "./clock.js";
import { ensureInfrastructure } from "./infrastructure.js";
import { type CadreMetrics, createMetrics } from "./metrics.js";
import { connectNats, type NatsConnection } from "./nats.js";
import { type NatsServer, startNatsServer } from "./testing/nats-server.js";
import { type TxnFaultPoint, TxStore, type TxStoreOptions } from "./transactions.js";

const Value = z.object({ n: z.number().int() });

/** A promise that never settles: a writer stopped there does nothing more, as if killed. */
const forever = new Promise<void>(() => {});

/** Fresh metrics, and what they hold of aborts and of lost compare-and-sets. */
const txMetrics = () => {
  const metrics = createMetrics({ service: "tx-test", defaultMetrics: false });
  const aborted = async () => (await metrics.transactionsAborted.get()).values[0]?.value ?? 0;
  const conflicts = async () =>
    (await metrics.stateConflicts.get()).values.find((v) => v.labels.service === "tx-test")?.value ?? 0;
  return { metrics, aborted, conflicts };
};

describe("TxStore: multi-key transactions over a real JetStream KV bucket", () => {
  let server: NatsServer;
  let nc: NatsConnection;
  let prefix = 0;
  const store = async (opts: Partial<TxStoreOptions> = {}) =>
    new TxStore((await ensureInfrastructure(nc, parseConfig({}))).state, Value, { writer: "test", ...opts });

  beforeAll(async () => {
    server = await startNatsServer();
    nc = await connectNats(server.url, "transactions-test");
  });
  afterAll(async () => {
    await nc?.close();
    await server?.stop();
  });
  /** Each test works under its own key prefix of the shared state bucket. */
  const fresh = () => `wf${++prefix}.`;

  it("writes several keys at once and reads them back as one snapshot", async () => {
    const k = fresh();
    const s = await store();
    const done = await s.transact([`${k}a`, `${k}b`, `${k}c`], () => ({ [`${k}a`]: { n: 1 }, [`${k}b`]: { n: 2 } }));
    expect(done.keys).toEqual([`${k}a`, `${k}b`]);
    const snap = await s.read([`${k}a`, `${k}b`, `${k}c`]);
    expect([...snap.values()]).toEqual([{ n: 1 }, { n: 2 }, undefined]);
    // null deletes.
    await s.transact([`${k}a`, `${k}b`], () => ({ [`${k}a`]: null, [`${k}b`]: { n: 3 } }));
    expect(await s.get(`${k}a`)).toBeUndefined();
    expect(await s.get(`${k}b`)).toEqual({ n: 3 });
  });

  it("refuses to write a key it did not read, and reserved keys", async () => {
    const k = fresh();
    const s = await store();
    const err = await s.transact([`${k}a`], () => ({ [`${k}b`]: { n: 1 } })).catch((e) => e);
    expect(err.code).toBe("PROTOCOL_ERROR");
    expect(err.message).toContain("not among the keys it read");
    const reserved = await s.transact(["_txn.x"], () => ({})).catch((e) => e);
    expect(reserved.message).toContain("reserved for transaction records");
  });

  it("concurrent state modification: 10 parallel two-key updates, one wins each round, nothing lost", async () => {
    const k = fresh();
    const s = await store();
    const a = `${k}a`;
    const b = `${k}b`;
    // Each transaction moves one unit from a to b and counts itself: a lost update would show
    // as a + b != 1000 or a count below 10.
    await s.transact([a, b], () => ({ [a]: { n: 1000 }, [b]: { n: 0 } }));
    let runs = 0;
    await Promise.all(
      Array.from({ length: 10 }, () =>
        s.transact([a, b], (cur) => {
          runs++;
          return { [a]: { n: (cur.get(a)?.n ?? 0) - 1 }, [b]: { n: (cur.get(b)?.n ?? 0) + 1 } };
        }),
      ),
    );
    const snap = await s.read([a, b]);
    expect(snap.get(a)).toEqual({ n: 990 });
    expect(snap.get(b)).toEqual({ n: 10 });
    // Losers ran their function again: more runs than transactions.
    expect(runs).toBeGreaterThan(10);
  });

  it("aborts when a key it only read changed before its commit", async () => {
    const k = fresh();
    let bump: (() => Promise<unknown>) | undefined;
    let bumped = false;
    const { metrics, aborted, conflicts } = txMetrics();
    const s = await store({
      metrics,
      fault: async (point) => {
        // Between prepare and commit, another writer changes the key the transaction only read.
        if (point === "prepared" && !bumped) {
          bumped = true;
          await bump?.();
        }
      },
    });
    const other = await store();
    bump = () => other.transact([`${k}r`], () => ({ [`${k}r`]: { n: 5 } }));
    await other.transact([`${k}r`], () => ({ [`${k}r`]: { n: 1 } }));
    const seen: number[] = [];
    await s.transact([`${k}r`, `${k}w1`, `${k}w2`], (cur) => {
      const r = cur.get(`${k}r`)?.n ?? 0;
      seen.push(r);
      return { [`${k}w1`]: { n: r }, [`${k}w2`]: { n: r } };
    });
    // The first attempt read 1 and was aborted; the second read 5.
    expect(seen).toEqual([1, 5]);
    expect([...(await s.read([`${k}w1`, `${k}w2`])).values()]).toEqual([{ n: 5 }, { n: 5 }]);
    // One abort; a read-only key that moved is no lost compare-and-set (nothing was written to it).
    expect(await aborted()).toBe(1);
    expect(await conflicts()).toBe(0);
  });

  it("records an abort and the compare-and-set that caused it into the metrics it is given", async () => {
    const k = fresh();
    const [a, b] = [`${k}a`, `${k}b`];
    const { metrics, aborted, conflicts } = txMetrics();
    const other = await store();
    let bumped = false;
    const s = await store({
      metrics,
      fault: async (point, { key }) => {
        // Between preparing a and preparing b, another writer changes b: b's compare-and-set is lost.
        if (point === "prepared" && key === a && !bumped) {
          bumped = true;
          await other.transact([b], () => ({ [b]: { n: 7 } }));
        }
      },
    });
    const done = await s.transact([a, b], (cur) => {
      const n = (cur.get(b)?.n ?? 0) + 1;
      return { [a]: { n }, [b]: { n } };
    });
    expect(done.keys).toEqual([a, b]);
    expect([...(await s.read([a, b])).values()]).toEqual([{ n: 8 }, { n: 8 }]);
    expect(await conflicts()).toBe(1);
    expect(await aborted()).toBe(1);
    // A transaction that commits at once adds nothing.
    await s.transact([a, b], () => ({ [a]: { n: 1 }, [b]: { n: 1 } }));
    expect([await conflicts(), await aborted()]).toEqual([1, 1]);
  });

  describe("a writer that stops midway (its process killed) leaves all keys old or all new", () => {
    const stopAt = async (point: TxnFaultPoint, afterKeys: number, metrics?: CadreMetrics) => {
      const k = fresh();
      const clock = new ManualClock(1_000_000);
      const keys = [`${k}a`, `${k}b`, `${k}c`];
      const s = await store({ clock, txnTimeoutMs: 5000, ...(metrics ? { metrics } : {}) });
      await s.transact(keys, () => Object.fromEntries(keys.map((key) => [key, { n: 1 }])));
      let prepared = 0;
      let stopped!: () => void;
      const reached = new Promise<void>((r) => {
        stopped = r;
      });
      const dying = await store({
        clock,
        txnTimeoutMs: 5000,
        fault: async (at) => {
          if (at === "prepared") prepared++;
          if (at === point && (point === "committed" || prepared === afterKeys)) {
            stopped();
            await forever;
          }
        },
      });
      void dying.transact(keys, () => Object.fromEntries(keys.map((key) => [key, { n: 2 }])));
      await reached;
      return { s, keys, clock };
    };

    it("stopped after preparing 2 of 3 keys: readers see the old values; after its deadline it is aborted", async () => {
      const { metrics, aborted } = txMetrics();
      const { s, keys, clock } = await stopAt("prepared", 2, metrics);
      // Still within its deadline: undecided, so every reader sees the committed (old) values.
      expect([...(await s.read(keys)).values()]).toEqual([{ n: 1 }, { n: 1 }, { n: 1 }]);
      const raw = await s.kv.get(keys[0] as string);
      expect(new TextDecoder().decode(raw?.value)).toContain('"tx":');
      // A writer waits for the undecided transaction rather than overwrite its intents.
      const early = await s.transact(keys, () => ({}), { maxAttempts: 1 }).catch((e) => e);
      expect(early.code).toBe("CONCURRENT_MODIFICATION");
      // Past the deadline the next writer aborts it, removes the intents and goes on.
      expect(await aborted()).toBe(0);
      clock.advance(5001);
      await s.transact(keys, (cur) => ({ [keys[2] as string]: { n: (cur.get(keys[0] as string)?.n ?? 0) + 10 } }));
      // The reader that aborted the dead writer's transaction counted it, once for its three keys.
      expect(await aborted()).toBe(1);
      expect([...(await s.read(keys)).values()]).toEqual([{ n: 1 }, { n: 1 }, { n: 11 }]);
      for (const key of keys) expect(new TextDecoder().decode((await s.kv.get(key))?.value)).not.toContain('"tx":');
    });

    it("stopped after its commit point: readers see every new value and finish its work", async () => {
      const { s, keys } = await stopAt("committed", 0);
      expect(await s.get(keys[2] as string)).toEqual({ n: 2 });
      expect([...(await s.read(keys)).values()]).toEqual([{ n: 2 }, { n: 2 }, { n: 2 }]);
      for (const key of keys) expect(new TextDecoder().decode((await s.kv.get(key))?.value)).not.toContain('"tx":');
    });
  });

  it("rolls keys back to a checkpoint and replays the log forward, skipping what it is told to", async () => {
    const k = fresh();
    const s = await store();
    const js = jetstream(nc);
    const [a, b, c] = [`${k}a`, `${k}b`, `${k}c`];
    await s.transact([a, b], () => ({ [a]: { n: 1 }, [b]: { n: 1 } }));
    const checkpoint = await s.checkpoint(js, k);
    expect(checkpoint.values).toEqual({ [a]: { n: 1 }, [b]: { n: 1 } });
    const t2 = await s.transact([a], () => ({ [a]: { n: 2 } }));
    const t3 = await s.transact([b, c], () => ({ [b]: { n: 3 }, [c]: { n: 3 } }));
    const t4 = await s.transact([a], () => ({ [a]: { n: 4 } }));
    // A value changed behind Cadre's back: on replay it fails its checksum and is left out.
    const good = new TextDecoder().decode((await s.kv.get(a))?.value);
    const badSeq = await s.kv.put(a, good.replace('"n":4', '"n":9'));
    // Another workflow's keys are not touched.
    await s.transact(["other.x"], () => ({ "other.x": { n: 7 } }));

    const report = await s.rollback(js, STREAMS.stateLog, k, checkpoint.position, [t3.txid]);
    expect(report.replayed).toEqual([t2.txid, t4.txid]);
    expect(report.skipped).toEqual([t3.txid]);
    expect(report.invalid).toEqual([badSeq]);
    expect([...(await s.read([a, b, c])).values()]).toEqual([{ n: 4 }, { n: 1 }, undefined]);
    expect(await s.get("other.x")).toEqual({ n: 7 });

    // The rollback is itself a transaction in the log; a later checkpoint holds its outcome.
    const after = await s.checkpoint(js, k);
    expect(after.values).toEqual({ [a]: { n: 4 }, [b]: { n: 1 }, [c]: null });
    await s.transact([b], () => ({ [b]: { n: 5 } }));
    const undo = await s.rollback(js, STREAMS.stateLog, k, after.position);
    expect(undo.keys).toEqual([]);
    expect(undo.replayed).toHaveLength(1);
    expect(await s.checkpointsOf(k)).toEqual([checkpoint.position, after.position]);
    // Without replaying the one transaction after it, b goes back to 1.
    const back = await s.rollback(js, STREAMS.stateLog, k, after.position, undo.replayed);
    expect(back.keys).toEqual([b]);
    expect(await s.get(b)).toEqual({ n: 1 });
    // A position with no checkpoint is refused, naming it.
    const none = await s.rollback(js, STREAMS.stateLog, k, 3).catch((e) => e);
    expect(none.code).toBe("NOT_FOUND");
    expect(none.message).toContain('"3"');
  });

  it("rebuilds a key damaged past the bucket's history from the checkpoint and the log, and verifies it", async () => {
    const k = fresh();
    const corrupt: string[] = [];
    const s = await store({ onCorruption: (r) => corrupt.push(r.key) });
    const js = jetstream(nc);
    const a = `${k}a`;
    await s.transact([a], () => ({ [a]: { n: 1 } }));
    const checkpoint = await s.checkpoint(js, k);
    const t2 = await s.transact([a], () => ({ [a]: { n: 2 } }));
    // More damaged writes than the bucket keeps revisions (5): no good one is left to restore.
    const bad: number[] = [];
    for (let i = 0; i < 5; i++) bad.push(await s.kv.put(a, "not json"));
    const unreadable = await s.get(a).catch((e) => e);
    expect(unreadable.code).toBe("PROTOCOL_ERROR");
    expect(corrupt).toEqual([a]);

    const report = await s.rollback(js, STREAMS.stateLog, k, checkpoint.position);
    expect(report.cleared).toEqual([a]);
    expect(report.replayed).toEqual([t2.txid]);
    expect(report.invalid).toEqual(bad);
    expect(report.verified).toEqual({ keys: 1, mismatched: [] });
    expect(await s.get(a)).toEqual({ n: 2 });
  });

  it("enforces max_state_size_mb with STATE_LIMIT_EXCEEDED naming the setting", async () => {
    const k = fresh();
    const server2 = await startNatsServer();
    const nc2 = await connectNats(server2.url, "transactions-limit-test");
    try {
      const buckets = await ensureInfrastructure(
        nc2,
        parseConfig({ orchestration_limits: { max_state_size_mb: 0.01 } }),
      );
      const Text = z.object({ text: z.string() });
      const s = new TxStore(buckets.state, Text, { writer: "test" });
      await s.transact([`${k}small`], () => ({ [`${k}small`]: { text: "x".repeat(100) } }));
      const err = await s.transact([`${k}big`], () => ({ [`${k}big`]: { text: "x".repeat(20_000) } })).catch((e) => e);
      expect(err.code).toBe("STATE_LIMIT_EXCEEDED");
      expect(err.retryable).toBe(false);
      expect(err.message).toContain(`"${k}big"`);
      expect(err.message).toContain("max_state_size_mb");
      // Nothing was lost: the earlier value is still there.
      expect(await s.get(`${k}small`)).toEqual({ text: "x".repeat(100) });
      // The log keeps at most 4x the limit: once it no longer reaches back to a checkpoint, a
      // rollback to it is refused rather than done from a partial log.
      const js = jetstream(nc2);
      const counter = new TxStore(buckets.state, Value, { writer: "test" });
      const old = await counter.checkpoint(js, `${k}log.`);
      const jsm = await jetstreamManager(nc2);
      for (let i = 0; (await jsm.streams.info(STREAMS.stateLog)).state.first_seq <= old.position + 1; i++) {
        if (i > 5000) throw new Error("the log was never trimmed");
        await counter.transact([`${k}log.n`], () => ({ [`${k}log.n`]: { n: i } }));
      }
      const trimmed = await counter.rollback(js, STREAMS.stateLog, `${k}log.`, old.position).catch((e) => e);
      expect(trimmed.code).toBe("NOT_FOUND");
      expect(trimmed.message).toContain("trimmed");
      // Reads come from the bucket, never from its log: nats-server lets a mirror answer direct
      // gets, and this one no longer holds the checkpoint or the first value. (A run failed once
      // in the way that explains: a checkpoint just written "did not exist".)
      expect((await jsm.streams.info(`KV_${BUCKETS.state}`)).config.allow_direct).toBe(false);
      expect((await jsm.streams.info(STREAMS.stateLog)).config.mirror_direct).toBe(false);
      for (let i = 0; i < 20; i++) {
        expect(await s.get(`${k}small`)).toEqual({ text: "x".repeat(100) });
        expect((await counter.checkpointsOf(`${k}log.`)).length).toBe(1);
      }
      // The limit is the bucket's: a raised limit applies to the existing bucket.
      const raised = await ensureInfrastructure(nc2, parseConfig({ orchestration_limits: { max_state_size_mb: 1 } }));
      expect((await jsm.streams.info(STREAMS.stateLog)).config.max_bytes).toBe(4 * 1024 * 1024);
      const s2 = new TxStore(raised.state, Text, { writer: "test" });
      await s2.transact([`${k}big`], () => ({ [`${k}big`]: { text: "x".repeat(20_000) } }));
      expect((await s2.get(`${k}big`))?.text).toHaveLength(20_000);
    } finally {
      await nc2.close();
      await server2.stop();
    }
  });
});
