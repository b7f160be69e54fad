import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  type CadreEvent,
  decodeAs,
  HEADERS,
  randomId,
  resultMessageId,
  STREAMS,
  subjects,
  type TaskResult,
  type TypedEvent,
} from "@cadre/protocol";
import { ManualClock } from "@cadre/runtime";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ResultSink } from "./result-sink.js";
import { type NatsFixture, natsFixture, quietLogger, until } from "./testing.js";

describe("the result sink, on a real nats-server and a driven clock", () => {
  let fx: NatsFixture;
  let dir: string;
  beforeAll(async () => {
    fx = await natsFixture();
    dir = mkdtempSync(join(tmpdir(), "cadre-sink-"));
  });
  afterAll(async () => {
    await fx?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  /** A sink of a fresh host id, connected, with the events it publishes through the bus. */
  async function setup(opts: { hostId?: string; replayRatePerSec?: number } = {}) {
    const hostId = opts.hostId ?? `h-${randomId(6)}`;
    const clock = new ManualClock(5_000);
    const published: CadreEvent[] = [];
    const sink = await ResultSink.open({
      hostId,
      dir,
      maxBytes: 1 << 20,
      replayRatePerSec: opts.replayRatePerSec ?? 1000,
      requestTimeoutMs: 2000,
      clock,
      logger: quietLogger,
      fsync: false,
    });
    sink.connect({ nc: fx.nc, js: fx.js, publishEvent: (e) => published.push(e) });
    return { hostId, clock, sink, published };
  }

  const result = (hostId: string, n: number): TaskResult => ({
    taskId: `w-${hostId}-r-${n}`,
    workflowId: `w-${hostId}`,
    epoch: 1,
    attempt: 1,
    hostId,
    actorId: "a1",
    status: "completed",
    output: { n },
    startedAt: 1,
    finishedAt: 2,
  });

  /** The results stream's messages of one workflow, decoded, with their replay header. */
  async function stored(workflowId: string) {
    const out: { msgId: string | undefined; replay: string | undefined; result: TaskResult }[] = [];
    const info = await fx.jsm.streams.info(STREAMS.results);
    for (let seq = info.state.first_seq; seq <= info.state.last_seq; seq++) {
      const m = await fx.jsm.streams.getMessage(STREAMS.results, { seq }).catch(() => null);
      if (!m || m.subject !== subjects.result(0, workflowId)) continue;
      out.push({
        msgId: m.header?.get("Nats-Msg-Id") || undefined,
        replay: m.header?.get(HEADERS.replay) || undefined,
        result: decodeAs(m.data, "result").body,
      });
    }
    return out;
  }

  it("publishes a result straight to JetStream while online, under its attempt's message id", async () => {
    const s = await setup();
    const r = result(s.hostId, 0);
    expect(await s.sink.store(r)).toBe("published");
    const got = await stored(r.workflowId);
    expect(got).toEqual([{ msgId: resultMessageId(r.taskId, 1, 1), replay: undefined, result: r }]);
    expect(s.sink.waiting()).toBe(0);
    await s.sink.close();
  });

  it("keeps results and events in its outboxes while cut off and replays them, in order, at the rate, when back", async () => {
    const s = await setup({ replayRatePerSec: 10 });
    s.sink.disconnected();
    expect(s.sink.state()).toBe("offline");
    const results = [0, 1, 2].map((n) => result(s.hostId, n));
    for (const r of results) expect(await s.sink.store(r)).toBe("outbox");
    s.sink.emit({
      type: "TASK_ATTEMPT_FAILED",
      category: "task",
      scope: results[0]?.workflowId ?? "",
      data: { taskId: "t", attempt: 1, code: "BEHAVIOUR_FAILED", message: "m", retryInMs: 5, hostId: s.hostId },
    });
    await until("the event in its outbox", () => s.sink.waiting() === 4);
    expect(s.published).toEqual([]);
    expect(await stored(results[0]?.workflowId ?? "")).toEqual([]);

    s.sink.reconnected();
    // The first record goes at once; each next one 100 ms (10/s) of the driven clock later.
    await until("the first replayed record", async () => (await stored(results[0]?.workflowId ?? "")).length === 1);
    for (const sent of [2, 3]) {
      s.clock.advance(100);
      await until(`replayed record ${sent}`, async () => (await stored(results[0]?.workflowId ?? "")).length === sent);
    }
    await until("the replay done", () => s.sink.replays() === 1 && s.sink.state() === "online");
    const got = await stored(results[0]?.workflowId ?? "");
    expect(got.map((g) => g.result)).toEqual(results.map((r) => ({ ...r, offline: true })));
    // Every replayed result names its batch and how many it holds.
    const batch = got[0]?.replay;
    expect(batch).toMatch(/^[A-Za-z0-9_-]+:3$/);
    expect(got.every((g) => g.replay === batch)).toBe(true);
    expect(got.map((g) => g.msgId)).toEqual(results.map((r) => resultMessageId(r.taskId, 1, 1)));
    expect(s.published.find((e) => e.type === "OUTBOX_REPLAYED")).toMatchObject({
      scope: s.hostId,
      data: { hostId: s.hostId, batch, replayed: 3, deduplicated: 0 },
    });
    expect(s.sink.waiting()).toBe(0);
    await s.sink.close();
  });

  it("replays what a previous run left in its outbox as soon as it connects, counting what JetStream had", async () => {
    const hostId = `h-${randomId(6)}`;
    const first = await setup({ hostId });
    const r = result(hostId, 0);
    first.sink.disconnected();
    await first.sink.store(r);
    // The same result reached JetStream before the host died (a lost publish ack).
    await fx.js.publish(subjects.result(0, r.workflowId), new Uint8Array([1]), {
      msgID: resultMessageId(r.taskId, 1, 1),
    });
    await first.sink.close();

    const second = await setup({ hostId });
    await until("the replay on start", () => second.sink.replays() === 1);
    expect(second.published.find((e) => e.type === "OUTBOX_REPLAYED")).toMatchObject({
      data: { replayed: 1, deduplicated: 1 },
    });
    expect(second.sink.waiting()).toBe(0);
    await second.sink.close();
  });

  it("publishes events through the bus while online and after the replay", async () => {
    const s = await setup();
    const e: TypedEvent = {
      type: "TASK_STARTED",
      category: "task",
      scope: "w1",
      data: { taskId: "w1-r", epoch: 1, seq: 1, kind: "k", attempt: 1, hostId: s.hostId, actorId: "a1" },
    };
    s.sink.emit(e);
    expect(s.published).toEqual([e]);
    await s.sink.close();
  });
});
