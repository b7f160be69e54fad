import { type Body, decodeAs, type HeldTask, subjects } from "@cadre/protocol";
import { ManualClock } from "@cadre/runtime";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Heartbeat } from "./heartbeat.js";
import { type NatsFixture, natsFixture, quietLogger } from "./testing.js";

describe("heartbeats, on a real nats-server and a driven clock", () => {
  let fx: NatsFixture;
  beforeAll(async () => {
    fx = await natsFixture();
  });
  afterAll(async () => {
    await fx?.stop();
  });

  it("beats at once and every interval, listing held tasks when they changed and on every tenth beat", async () => {
    const clock = new ManualClock(0);
    let held: HeldTask[] = [];
    const beats: Body<"heartbeat">[] = [];
    const sub = fx.nc.subscribe(subjects.heartbeat("hb-1"), {
      callback: (_err, m) => {
        beats.push(decodeAs(m.data, "heartbeat").body);
      },
    });
    const hb = new Heartbeat({
      nc: fx.nc,
      hostId: "hb-1",
      incarnation: "inc-1",
      intervalMs: 100,
      clock,
      logger: quietLogger,
      status: () => ({ actors: 3, held, eventQueue: 7, circuits: { delegation: "open" } }),
    });
    try {
      hb.start();
      clock.advance(99);
      await fx.nc.flush();
      expect(beats.map((b) => b.seq)).toEqual([0]);
      expect(beats[0]).toMatchObject({
        hostId: "hb-1",
        incarnation: "inc-1",
        actors: 3,
        busy: 0,
        eventQueue: 7,
        held: [],
      });
      expect(beats[0]?.circuits).toEqual({ delegation: "open" });

      held = [{ taskId: "w1-r", epoch: 1, seq: 4 }];
      clock.advance(1);
      clock.advance(100);
      await fx.nc.flush();
      expect(beats.map((b) => b.seq)).toEqual([0, 1, 2]);
      // Changed at beat 1: listed; unchanged at beat 2: left out.
      expect(beats[1]).toMatchObject({ busy: 1, held });
      expect(beats[2]?.held).toBeUndefined();
      expect(beats[2]?.busy).toBe(1);

      clock.advance(800);
      await fx.nc.flush();
      expect(beats.at(-1)?.seq).toBe(10);
      expect(beats.at(-1)?.held).toEqual(held);
      expect(beats.slice(3, -1).every((b) => b.held === undefined)).toBe(true);

      hb.stop();
      expect(clock.pending).toBe(0);
      clock.advance(1000);
      await fx.nc.flush();
      expect(beats).toHaveLength(11);
    } finally {
      hb.stop();
      sub.unsubscribe();
    }
  });
});
