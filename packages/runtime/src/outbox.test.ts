import { appendFileSync, mkdtempSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { rejection } from "@cadre/protocol/testing";
import { describe, expect, it } from "vitest";
import { ManualClock } from "./clock.js";
import { type CadreMetrics, createMetrics } from "./metrics.js";
import { Outbox, type OutboxRecord } from "./outbox.js";

const dir = () => mkdtempSync(join(tmpdir(), "cadre-outbox-"));
const entry = (i: number) => ({
  subject: `cadre.v1.result.w${i % 7}`,
  key: `w-r-${i}:1:1`,
  data: new TextEncoder().encode(`result ${i}`),
});
const text = (r: OutboxRecord) => new TextDecoder().decode(r.data);

/** Replays everything at once (no rate limit to speak of) and returns what was sent. */
async function drain(box: Outbox): Promise<OutboxRecord[]> {
  const sent: OutboxRecord[] = [];
  await box.replay(async (r) => void sent.push(r), { ratePerSecond: 1e9 });
  return sent;
}

describe("Outbox", () => {
  it("replays 1,000 entries in the order they were appended, then is empty", async () => {
    const path = join(dir(), "outbox.log");
    const box = await Outbox.open({ path, maxBytes: 10_000_000 });
    for (let i = 0; i < 1000; i++) await box.append(entry(i));
    expect(box.size().records).toBe(1000);
    const sent = await drain(box);
    expect(sent.map(text)).toEqual(Array.from({ length: 1000 }, (_, i) => `result ${i}`));
    expect(sent.map((r) => r.key)).toEqual(Array.from({ length: 1000 }, (_, i) => `w-r-${i}:1:1`));
    expect(box.size()).toEqual({ records: 0, bytes: 0 });
    expect(statSync(path).size).toBe(0);
    await box.close();
  });

  it("keeps what it accepted across a restart", async () => {
    const path = join(dir(), "outbox.log");
    const a = await Outbox.open({ path, maxBytes: 1_000_000 });
    for (let i = 0; i < 10; i++) await a.append(entry(i));
    await a.close();
    const b = await Outbox.open({ path, maxBytes: 1_000_000 });
    expect(b.openReport).toEqual({ records: 10, tornBytes: 0 });
    expect((await drain(b)).map(text)).toEqual(Array.from({ length: 10 }, (_, i) => `result ${i}`));
    await b.append(entry(99));
    await b.close();
    const c = await Outbox.open({ path, maxBytes: 1_000_000 });
    const sent = await drain(c);
    expect(sent.map(text)).toEqual(["result 99"]);
    expect(sent[0]?.seq).toBe(11); // sequence numbers go on after a replay and a restart
    await c.close();
  });

  it("cuts off a torn last record and keeps every record before it", async () => {
    const path = join(dir(), "outbox.log");
    const a = await Outbox.open({ path, maxBytes: 1_000_000 });
    for (let i = 0; i < 5; i++) await a.append(entry(i));
    await a.close();
    const good = statSync(path).size;
    const whole = readFileSync(path);
    // A crash in the middle of writing a sixth: its header and part of its payload.
    appendFileSync(path, whole.subarray(0, 20));
    const b = await Outbox.open({ path, maxBytes: 1_000_000 });
    expect(b.openReport).toEqual({ records: 5, tornBytes: 20 });
    expect(statSync(path).size).toBe(good);
    expect((await drain(b)).map(text)).toEqual(["result 0", "result 1", "result 2", "result 3", "result 4"]);
    await b.close();
  });

  it("refuses to open when a record in the middle is damaged, instead of dropping what follows", async () => {
    const path = join(dir(), "outbox.log");
    const a = await Outbox.open({ path, maxBytes: 1_000_000 });
    for (let i = 0; i < 3; i++) await a.append(entry(i));
    await a.close();
    const bytes = readFileSync(path);
    bytes[14] = (bytes[14] ?? 0) ^ 0xff; // a payload byte of the first record
    writeFileSync(path, bytes);
    const err = await rejection(Outbox.open({ path, maxBytes: 1_000_000 }));
    expect(err.code).toBe("OUTBOX_CORRUPT");
    expect(err.data).toMatchObject({ offset: 0, reason: "checksum mismatch" });
  });

  it("rejects with OUTBOX_FULL past maxBytes and keeps everything it had", async () => {
    const path = join(dir(), "outbox.log");
    const box = await Outbox.open({ path, maxBytes: 400 });
    let accepted = 0;
    const err = await rejection(
      (async () => {
        for (let i = 0; ; i++) {
          await box.append(entry(i));
          accepted++;
        }
      })(),
    );
    expect(err.code).toBe("OUTBOX_FULL");
    expect(err.retryable).toBe(true);
    expect(err.data).toMatchObject({ maxBytes: 400, records: accepted });
    expect(err.message).toContain("host.outbox.maxBytes");
    expect(accepted).toBeGreaterThan(0);
    expect((await drain(box)).map(text)).toEqual(Array.from({ length: accepted }, (_, i) => `result ${i}`));
    await box.close();
  });

  it("replays at the bounded rate: 1,000 entries at 100/s take 10 s of the clock", async () => {
    const box = await Outbox.open({ path: join(dir(), "outbox.log"), maxBytes: 10_000_000, fsync: false });
    for (let i = 0; i < 1000; i++) await box.append(entry(i));
    const clock = new ManualClock(0);
    const times: number[] = [];
    let finished = false;
    const done = box
      .replay(async () => void times.push(clock.now()), { ratePerSecond: 100, clock })
      .finally(() => {
        finished = true;
      });
    // Time moves only while the replay waits on the clock (not while it writes its progress).
    while (!finished) {
      if (clock.pending > 0) clock.advance(10);
      else await new Promise((r) => setImmediate(r));
    }
    expect(await done).toBe(1000);
    expect(times[0]).toBe(0);
    expect(times[999]).toBe(9990);
    expect(Math.min(...times.slice(1).map((t, i) => t - (times[i] ?? 0)))).toBeGreaterThanOrEqual(10);
    await box.close();
  });

  it("stops at the first failed send and resumes from that entry next time", async () => {
    const box = await Outbox.open({ path: join(dir(), "outbox.log"), maxBytes: 1_000_000 });
    for (let i = 0; i < 5; i++) await box.append(entry(i));
    const sent: string[] = [];
    const err = await box
      .replay(
        async (r) => {
          if (text(r) === "result 2") throw new Error("disconnected");
          sent.push(text(r));
        },
        { ratePerSecond: 1e9 },
      )
      .catch((e: Error) => e);
    expect((err as Error).message).toBe("disconnected");
    expect(sent).toEqual(["result 0", "result 1"]);
    expect(box.size().records).toBe(3);
    expect((await drain(box)).map(text)).toEqual(["result 2", "result 3", "result 4"]);
    await box.close();
  });

  it("after a crash mid-replay resends at most the entry that was in flight", async () => {
    const path = join(dir(), "outbox.log");
    const a = await Outbox.open({ path, maxBytes: 1_000_000 });
    for (let i = 0; i < 5; i++) await a.append(entry(i));
    // The process dies while sending the third: the first two are recorded as sent.
    await a
      .replay(
        async (r) => {
          if (text(r) === "result 2") throw new Error("killed");
        },
        { ratePerSecond: 1e9 },
      )
      .catch(() => {});
    await a.close();
    const b = await Outbox.open({ path, maxBytes: 1_000_000 });
    expect((await drain(b)).map(text)).toEqual(["result 2", "result 3", "result 4"]);
    await b.close();
  });

  it("keeps cadre_outbox_depth current and counts replayed records into the metrics it is given", async () => {
    const metrics = createMetrics({ service: "outbox-test", defaultMetrics: false });
    const depth = async (m: CadreMetrics) => (await m.outboxDepth.get()).values[0]?.value;
    const replayed = async (m: CadreMetrics) => (await m.outboxReplayed.get()).values[0]?.value;
    const path = join(dir(), "outbox.log");
    const a = await Outbox.open({ path, maxBytes: 1_000_000, metrics });
    expect(await depth(metrics)).toBe(0);
    for (let i = 0; i < 5; i++) await a.append(entry(i));
    expect(await depth(metrics)).toBe(5);
    // A replay stopped by a failed send: the two sent are counted, three still wait.
    const depthsSeen: (number | undefined)[] = [];
    await a
      .replay(
        async (r) => {
          depthsSeen.push(await depth(metrics));
          if (text(r) === "result 2") throw new Error("disconnected");
        },
        { ratePerSecond: 1e9 },
      )
      .catch(() => {});
    expect(depthsSeen).toEqual([5, 4, 3]);
    expect([await depth(metrics), await replayed(metrics)]).toEqual([3, 2]);
    await a.close();

    // A restart reports what it found waiting; replaying it all empties the gauge.
    const fresh = createMetrics({ service: "outbox-test", defaultMetrics: false });
    const b = await Outbox.open({ path, maxBytes: 1_000_000, metrics: fresh });
    expect(await depth(fresh)).toBe(3);
    await b.append(entry(5));
    expect(await depth(fresh)).toBe(4);
    expect(await drain(b)).toHaveLength(4);
    expect([await depth(fresh), await replayed(fresh)]).toEqual([0, 4]);
    await b.close();
  });
});
