import { encode, parseConfig, subjects } from "@cadre/protocol";
import { jetstream } from "@nats-io/jetstream";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { readEventLog, readEvents } from "./events.js";
import { ensureInfrastructure } from "./infrastructure.js";
import { connectNats, type NatsConnection } from "./nats.js";
import { type NatsServer, startNatsServer } from "./testing/index.js";

describe("readEventLog, on a real nats-server with the events stream", () => {
  let server: NatsServer;
  let nc: NatsConnection;
  beforeAll(async () => {
    server = await startNatsServer();
    nc = await connectNats(server.url, "events-test");
    await ensureInfrastructure(nc, parseConfig({}));
  });
  afterAll(async () => {
    await nc?.close();
    await server?.stop();
  });

  it("parses every stored event by the table; what does not decode or parse is skipped and counted", async () => {
    const js = jetstream(nc);
    const put = (category: string, scope: string, type: string, data: Record<string, unknown>) =>
      js.publish(subjects.event(category, scope), encode("event", { type, category, scope, data }, { sender: "t" }));
    await put("host", "h1", "HOST_UP", { incarnation: "i1" });
    await put("host", "h1", "HOST_FROM_THE_FUTURE", { anything: true });
    await put("host", "h1", "OUTBOX_REPLAYED", { hostId: "h1", batch: "b:1", replayed: "one", deduplicated: 0, ms: 1 });
    await js.publish(subjects.event("host", "h1"), new TextEncoder().encode("not a frame"));
    await put("task", "w1", "TASK_PARKED", { taskId: "w1-r", epoch: 1, paused: true });

    const all = await readEventLog(nc);
    expect(all.events.map((e) => e.event.type)).toEqual(["HOST_UP", "TASK_PARKED"]);
    expect(all.events.map((e) => e.sender)).toEqual(["t", "t"]);
    expect(all.events[0]?.seq).toBeLessThan(Number(all.events[1]?.seq));
    expect(all.capped).toBe(false);
    expect(all.skipped).toBe(3);
    expect(all.failures.map((f) => f.reason)).toEqual(["unknown-type", "invalid", "undecodable"]);
    expect(all.failures[1]).toMatchObject({ issues: [{ path: "data.replayed" }] });

    const host = await readEventLog(nc, subjects.eventsOf("host"));
    expect(host.events.map((e) => e.event.type)).toEqual(["HOST_UP"]);
    expect(host.skipped).toBe(3);

    // A window of stream time, and a cap.
    const first = Number(all.events[0]?.at);
    const last = Number(all.events[1]?.at);
    expect((await readEventLog(nc, { sinceMs: last + 60_000 })).events).toEqual([]);
    expect((await readEventLog(nc, { sinceMs: first - 1, untilMs: last })).events).toHaveLength(2);
    const capped = await readEventLog(nc, { max: 1 });
    expect(capped.capped).toBe(true);
    expect(capped.events.length + capped.skipped).toBe(1);

    // The plain list, as existing callers use it: the warning gives the count.
    const warned: unknown[] = [];
    const logger = { warn: (o: unknown) => warned.push(o) } as unknown as Parameters<typeof readEvents>[2];
    expect((await readEvents(nc, subjects.eventsOf("task"), logger)).map((e) => e.type)).toEqual(["TASK_PARKED"]);
    expect(warned).toEqual([]);
    expect(await readEvents(nc, undefined, logger)).toHaveLength(2);
    expect(warned).toMatchObject([{ skipped: 3 }]);
  });
});
