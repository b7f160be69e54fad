import { type CadreEvent, decodeAs, parseConfig, STREAMS } from "@cadre/protocol";
import { jetstreamManager } from "@nats-io/jetstream";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type BreakerTransition, createBreaker } from "./breaker.js";
import { ManualClock } from "./clock.js";
import { EventBus } from "./event-bus.js";
import { readEventLog } from "./events.js";
import { ensureInfrastructure } from "./infrastructure.js";
import { type CadreMetrics, createMetrics } from "./metrics.js";
import { connectNats, type NatsConnection } from "./nats.js";
import { type NatsServer, startNatsServer } from "./testing/index.js";

const event = (type: string, scope: string): CadreEvent => ({ type, category: "storm", scope, data: {} });
const roomy = { ratePerSec: 100, burst: 100, maxQueue: 100 };

type PriorityMetric = "eventsPublished" | "eventsDropped" | "eventQueueDepth";
/** The value of one of the bus's metrics for a priority (0 when the series does not exist). */
const busMetric = async (m: CadreMetrics, name: PriorityMetric, priority: "critical" | "normal") =>
  (await m[name].get()).values.find((v) => v.labels.priority === priority)?.value ?? 0;

describe("the event bus, on a real nats-server with the events stream", () => {
  let server: NatsServer;
  let nc: NatsConnection;
  let n = 0;
  beforeAll(async () => {
    server = await startNatsServer();
    nc = await connectNats(server.url, "bus-test");
    await ensureInfrastructure(nc, parseConfig({}));
  });
  afterAll(async () => {
    await nc?.close();
    await server?.stop();
  });

  /** A bus on a driven clock, and what a subscriber receives from its sources (counted by type). */
  function setup(opts: { ratePerSec: number; burst: number; maxQueue: number; metrics?: CadreMetrics }) {
    const clock = new ManualClock(0);
    const run = `r${++n}`;
    const received = new Map<string, number>();
    const sub = nc.subscribe("cadre.v1.evt.storm.*", {
      callback: (_err, m) => {
        const e = decodeAs(m.data, "event").body;
        if (e.scope.startsWith(`${run}-`)) received.set(e.type, (received.get(e.type) ?? 0) + 1);
      },
    });
    const bus = new EventBus({ nc, sender: `bus-${run}`, clock, critical: new Set(["IMPORTANT"]), ...opts });
    /** Real time for acknowledgements and deliveries, up to a deadline. */
    const until = async (what: string, ok: () => boolean) => {
      const end = Date.now() + 10_000;
      while (!ok()) {
        if (Date.now() > end) throw new Error(`timed out waiting for ${what}: ${JSON.stringify(bus.stats())}`);
        await new Promise((r) => setTimeout(r, 5));
      }
    };
    const got = (type: string) => received.get(type) ?? 0;
    return { clock, run, bus, sub, until, got };
  }

  it("stores every critical event of a process that restarts with the same sender within the duplicate window", async () => {
    const scope = `r${++n}-restart`;
    // Two incarnations of one service, one after the other, each sending three critical events.
    for (let i = 0; i < 2; i++) {
      const bus = new EventBus({
        nc,
        sender: "same-sender",
        critical: new Set(["IMPORTANT"]),
        ratePerSec: 100,
        burst: 100,
        maxQueue: 100,
      });
      for (let k = 0; k < 3; k++) bus.emit(event("IMPORTANT", scope));
      await bus.drained();
      bus.stop();
    }
    // Stored, whether the table knows the type (parsed) or not (this test's type: skipped).
    const log = await readEventLog(nc, { filter: `cadre.v1.evt.storm.${scope}` });
    expect(log.events.length + log.skipped, JSON.stringify(log.failures[0])).toBe(6);
  });

  it("is typed by the events table: an event of a known type must match its row; a bare envelope passes unchecked", () => {
    const bus = new EventBus({ nc, sender: "typed", critical: new Set(), maxQueue: 10, ratePerSec: 10, burst: 10 });
    bus.stop(); // Only the compiler's view matters here: nothing is sent.
    bus.emit({ type: "HOST_UP", category: "host", scope: "h1", data: { incarnation: "i1" } });
    bus.emit(event("NOISE", "h1"));
    // @ts-expect-error: a wrong field of a type in the table
    bus.emit({ type: "HOST_UP", category: "host", scope: "h1", data: { incarnaton: "i1" } });
    // @ts-expect-error: a literal type that is not in the table
    bus.emit({ type: "NOISE", category: "storm", scope: "h1", data: {} });
    expect(bus.stats().published).toBe(0);
  });

  it("event storm: 10x the rate limit for 10 s, critical events received 100%, memory bounded, drops counted", async () => {
    const { clock, run, bus, sub, until, got } = setup({ ratePerSec: 100, burst: 100, maxQueue: 500 });
    let noise = 0;
    let important = 0;
    for (let step = 0; step < 100; step++) {
      // Per 100 ms: 100 non-critical events from one source (1,000/s, ten times its rate) and
      // 5 critical ones from the same source (within their own rate).
      for (let i = 0; i < 100; i++, noise++) bus.emit(event("NOISE", `${run}-s1`));
      for (let i = 0; i < 5; i++, important++) bus.emit(event("IMPORTANT", `${run}-s1`));
      await until("acknowledgements", () => bus.stats().inFlight === 0);
      clock.advance(100);
    }
    await until("every critical event", () => got("IMPORTANT") === important);
    const s = bus.stats();
    // Shed: about the rate (100/s for 10 s, plus the burst) got through; every other one counted.
    expect(got("NOISE")).toBeLessThanOrEqual(100 * 10 + 100);
    expect(got("NOISE")).toBeGreaterThanOrEqual(100 * 10);
    expect(s.dropped).toBe(noise - got("NOISE"));
    expect(s.droppedByType).toEqual({ NOISE: noise - got("NOISE") });
    // Bounded: nothing waited beyond what was due; critical events never waited in bulk.
    expect(s.maxQueued).toBeLessThanOrEqual(5);
    expect(s.queued).toBe(0);
    sub.unsubscribe();
    bus.stop();
  });

  it("throttles a source that floods critical events instead of dropping them", async () => {
    const { clock, run, bus, sub, until, got } = setup({ ratePerSec: 100, burst: 100, maxQueue: 50 });
    for (let i = 0; i < 300; i++) bus.emit(event("IMPORTANT", `${run}-flood`));
    // The burst goes at once; the rest at the source's rate.
    await until("the burst", () => got("IMPORTANT") === 100 && bus.stats().inFlight === 0);
    expect(bus.stats()).toMatchObject({ throttled: 200, dropped: 0, queued: 200 });
    // Held back critical events fill the queue: a non-critical event now is shed.
    bus.emit(event("NOISE", `${run}-other`));
    expect(bus.stats().droppedByType).toEqual({ NOISE: 1 });
    clock.advance(1000);
    await until("a second's worth more", () => got("IMPORTANT") === 200 && bus.stats().inFlight === 0);
    clock.advance(1000);
    await until("all of them", () => got("IMPORTANT") === 300);
    expect(bus.stats()).toMatchObject({ queued: 0, dropped: 1, published: 300 });
    sub.unsubscribe();
    bus.stop();
  });

  it("records published, shed and queued events by priority into the metrics it is given", async () => {
    const metrics = createMetrics({ service: "bus-test", defaultMetrics: false });
    const { clock, run, bus, sub, until, got } = setup({ ratePerSec: 100, burst: 100, maxQueue: 50, metrics });
    // Both depth series exist from the start.
    expect([
      await busMetric(metrics, "eventQueueDepth", "critical"),
      await busMetric(metrics, "eventQueueDepth", "normal"),
    ]).toEqual([0, 0]);
    for (let i = 0; i < 3; i++) bus.emit(event("NOISE", `${run}-metrics-noise`));
    for (let i = 0; i < 150; i++) bus.emit(event("IMPORTANT", `${run}-metrics`));
    await until("the burst", () => got("IMPORTANT") === 100 && got("NOISE") === 3 && bus.stats().inFlight === 0);
    // 100 critical sent (the burst), 50 throttled in the queue; the noise went out at once.
    expect(await busMetric(metrics, "eventsPublished", "critical")).toBe(100);
    expect(await busMetric(metrics, "eventsPublished", "normal")).toBe(3);
    expect(await busMetric(metrics, "eventQueueDepth", "critical")).toBe(50);
    expect(await busMetric(metrics, "eventQueueDepth", "normal")).toBe(0);
    // The queue is full of held-back critical events: a non-critical one is shed.
    bus.emit(event("NOISE", `${run}-metrics-noise`));
    expect(await busMetric(metrics, "eventsDropped", "normal")).toBe(1);
    clock.advance(1000);
    await until("the throttled ones", () => got("IMPORTANT") === 150 && bus.stats().inFlight === 0);
    expect(await busMetric(metrics, "eventsPublished", "critical")).toBe(150);
    expect(await busMetric(metrics, "eventQueueDepth", "critical")).toBe(0);
    expect(await busMetric(metrics, "eventsDropped", "critical")).toBe(0);
    expect(bus.stats()).toMatchObject({ published: 153, dropped: 1, queued: 0 });
    sub.unsubscribe();
    bus.stop();
  });

  it("takes a stopped bus's queue out of the depth gauge (given up, not waiting)", async () => {
    const metrics = createMetrics({ service: "bus-test", defaultMetrics: false });
    const { run, bus, sub } = setup({ ratePerSec: 1, burst: 1, maxQueue: 50, metrics });
    // The first goes into flight; the next four are throttled and wait.
    for (let i = 0; i < 5; i++) bus.emit(event("IMPORTANT", `${run}-stop`));
    expect(bus.stats().queued).toBe(4);
    expect(await busMetric(metrics, "eventQueueDepth", "critical")).toBe(4);
    bus.stop();
    expect(await busMetric(metrics, "eventQueueDepth", "critical")).toBe(0);
    sub.unsubscribe();
  });

  it("stores a critical event emitted again under the id it was given once, even by another incarnation", async () => {
    const scope = `r${++n}-same-fact`;
    for (let i = 0; i < 2; i++) {
      const bus = new EventBus({ nc, sender: `fact-${i}`, critical: new Set(["IMPORTANT"]), ...roomy });
      bus.emit(event("IMPORTANT", scope), { id: `applied:${scope}` });
      bus.emit(event("IMPORTANT", scope), { id: `applied:${scope}` });
      bus.emit(event("IMPORTANT", scope));
      await bus.drained();
      bus.stop();
    }
    const log = await readEventLog(nc, { filter: `cadre.v1.evt.storm.${scope}` });
    // One for the fact with its id, and one for each emit with an id of its own.
    expect(log.events.length + log.skipped).toBe(3);
  });

  it("stores each critical event once in the events stream, with its own message id", async () => {
    const { run, bus, until } = setup({ ratePerSec: 1000, burst: 1000, maxQueue: 100 });
    for (let i = 0; i < 20; i++) bus.emit(event("IMPORTANT", `${run}-stored`));
    await until("acknowledgements", () => bus.stats().published === 20 && bus.stats().inFlight === 0);
    const { jetstreamManager } = await import("@nats-io/jetstream");
    const jsm = await jetstreamManager(nc);
    const info = await jsm.streams.info("CADRE_EVENTS", { subjects_filter: `cadre.v1.evt.storm.${run}-stored` });
    expect(info.state.subjects?.[`cadre.v1.evt.storm.${run}-stored`]).toBe(20);
    bus.stop();
  });
});

describe("events that cannot be published are dropped and counted, not retried", () => {
  let server: NatsServer;
  let nc: NatsConnection;
  const statuses: string[] = [];
  beforeAll(async () => {
    server = await startNatsServer();
    nc = await connectNats(server.url, "bus-unpublishable-test");
    void (async () => {
      for await (const s of nc.status()) statuses.push(s.type);
    })();
    // The events stream, but taking messages of at most 2 KiB: a bigger one is refused for good.
    const jsm = await jetstreamManager(nc);
    await jsm.streams.add({ name: STREAMS.events, subjects: ["cadre.v1.evt.>"], max_msg_size: 2048 });
  });
  afterAll(async () => {
    await nc?.close();
    await server?.stop();
  });

  let buses = 0;
  // Each bus its own sender: message ids are `<sender>:<seq>`, and a repeated one is de-duplicated.
  const bus = (metrics?: CadreMetrics) =>
    new EventBus({
      ...(metrics ? { metrics } : {}),
      nc,
      sender: `bus-bounds-${++buses}`,
      critical: new Set(["IMPORTANT"]),
      ratePerSec: 1000,
      burst: 1000,
      maxQueue: 100,
    });
  const stored = async (subject: string) => {
    const jsm = await jetstreamManager(nc);
    const info = await jsm.streams.info(STREAMS.events, { subjects_filter: subject });
    return info.state.subjects?.[subject] ?? 0;
  };
  const until = async (what: string, ok: () => boolean | Promise<boolean>) => {
    const end = Date.now() + 10_000;
    while (!(await ok())) {
      if (Date.now() > end) throw new Error(`timed out waiting for ${what}: ${JSON.stringify(statuses)}`);
      await new Promise((r) => setTimeout(r, 5));
    }
  };

  it("a critical event with a 5,000-character scope: refused before it is sent, the connection stays up", async () => {
    const b = bus();
    b.emit(event("IMPORTANT", "s".repeat(5000)));
    b.emit(event("NOISE", "s".repeat(5000)));
    expect(b.stats()).toMatchObject({ unpublishable: 2, queued: 0, inFlight: 0, published: 0 });
    // The bus goes on: the next critical event is stored, and the connection never dropped.
    b.emit(event("IMPORTANT", "after-long-scope"));
    await until("the next event stored", async () => (await stored("cadre.v1.evt.storm.after-long-scope")) === 1);
    expect(b.stats()).toMatchObject({ unpublishable: 2, published: 1, queued: 0, inFlight: 0 });
    expect(statuses.filter((s) => s === "disconnect" || s === "reconnect")).toEqual([]);
    b.stop();
  });

  it("counts unpublishable events as dropped in the metrics, by their priority", async () => {
    const metrics = createMetrics({ service: "bus-test", defaultMetrics: false });
    const b = bus(metrics);
    b.emit(event("IMPORTANT", "s".repeat(5000)));
    b.emit(event("IMPORTANT", "s".repeat(5000)));
    b.emit(event("NOISE", "s".repeat(5000)));
    b.emit({ ...event("IMPORTANT", "metrics-over-stream-limit"), data: { blob: "x".repeat(4096) } });
    await until("the refusal", () => b.stats().inFlight === 0 && b.stats().unpublishable === 4);
    expect(await busMetric(metrics, "eventsDropped", "critical")).toBe(3);
    expect(await busMetric(metrics, "eventsDropped", "normal")).toBe(1);
    expect(await busMetric(metrics, "eventsPublished", "critical")).toBe(0);
    expect(await busMetric(metrics, "eventQueueDepth", "critical")).toBe(0);
    b.stop();
  });

  it("a critical event whose frame is over the server's max_payload: dropped and counted", () => {
    const b = bus();
    const limit = nc.info?.max_payload ?? 0;
    b.emit({ ...event("IMPORTANT", "too-big"), data: { blob: "x".repeat(limit) } });
    expect(b.stats()).toMatchObject({ unpublishable: 1, queued: 0, inFlight: 0 });
    b.stop();
  });

  it("a critical event JetStream refuses for good (over the stream's max_msg_size): dropped once, never retried", async () => {
    const b = bus();
    b.emit({ ...event("IMPORTANT", "over-stream-limit"), data: { blob: "x".repeat(4096) } });
    await until("the refusal", () => b.stats().inFlight === 0 && b.stats().unpublishable === 1);
    // Nothing waits to be retried.
    expect(b.stats()).toMatchObject({ unpublishable: 1, queued: 0, published: 0 });
    expect(await stored("cadre.v1.evt.storm.over-stream-limit")).toBe(0);
    b.stop();
  });
});

describe("the event bus behind its event_publish breaker", () => {
  it("holds critical events while JetStream does not answer, sheds the others, and sends every critical one after", async () => {
    // A server without Cadre's streams: every acknowledged publish finds no responder.
    const server = await startNatsServer();
    const nc = await connectNats(server.url, "bus-breaker-test");
    try {
      const clock = new ManualClock(0);
      const transitions: BreakerTransition[] = [];
      const breaker = createBreaker({
        name: "event_publish",
        threshold: 3,
        firstResetMs: 1_000,
        resetTimeoutMs: 10_000,
        clock,
        onTransition: (t) => transitions.push(t),
      });
      const bus = new EventBus({
        nc,
        sender: "bus-breaker",
        clock,
        critical: new Set(["IMPORTANT"]),
        ratePerSec: 1000,
        burst: 1000,
        maxQueue: 100,
        breaker,
      });
      const until = async (what: string, ok: () => boolean | Promise<boolean>) => {
        const end = Date.now() + 10_000;
        while (!(await ok())) {
          if (Date.now() > end) throw new Error(`timed out waiting for ${what}: ${JSON.stringify(bus.stats())}`);
          await new Promise((r) => setTimeout(r, 5));
        }
      };
      for (let i = 0; i < 5; i++) bus.emit(event("IMPORTANT", "source"));
      await until("the circuit to open", () => breaker.state === "open" && bus.stats().inFlight === 0);
      expect(transitions.map((t) => t.to)).toEqual(["open"]);
      // Open: a non-critical event is shed at once, a critical one waits with the others.
      bus.emit(event("NOISE", "source"));
      bus.emit(event("IMPORTANT", "source"));
      await until("the refused publish back in the queue", () => bus.stats().inFlight === 0);
      expect(bus.stats()).toMatchObject({ dropped: 1, droppedByType: { NOISE: 1 }, queued: 6, published: 0 });

      // JetStream answers again: after the open time a trial publish closes the circuit and the
      // queue drains, every critical event stored once.
      await ensureInfrastructure(nc, parseConfig({}));
      const jsm = await jetstreamManager(nc);
      const stored = async () => (await jsm.streams.info(STREAMS.events)).state.messages;
      await until("every critical event stored", async () => {
        clock.advance(250);
        await new Promise((r) => setTimeout(r, 5));
        return bus.stats().queued === 0 && bus.stats().inFlight === 0 && (await stored()) === 6;
      });
      expect(transitions.map((t) => t.to)).toEqual(["open", "halfOpen", "closed"]);
      expect(bus.stats()).toMatchObject({ published: 6, dropped: 1 });
      bus.stop();
      breaker.stop();
    } finally {
      await nc.close();
      await server.stop();
    }
  });
});
