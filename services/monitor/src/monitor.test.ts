import { encode, parseConfig, subjects } from "@cadre/protocol";
import { connectNats, createLogger, type NatsConnection } from "@cadre/runtime";
import { type NatsServer, startNatsServer } from "@cadre/runtime/testing";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Monitor } from "./monitor.js";

async function until(what: string, ok: () => boolean): Promise<void> {
  const end = Date.now() + 10_000;
  while (!ok()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

describe("the monitor, on a real nats-server", () => {
  let server: NatsServer;
  let nc: NatsConnection;
  let monitor: Monitor;
  const lines: string[] = [];
  beforeAll(async () => {
    server = await startNatsServer();
    nc = await connectNats(server.url, "monitor-test");
    monitor = await Monitor.start({
      config: parseConfig({ natsUrl: server.url }),
      logger: createLogger("monitor-test", "silent"),
      onEventLine: (line) => lines.push(line),
    });
  });
  afterAll(async () => {
    await monitor?.stop();
    await nc?.close();
    await server?.stop();
  });

  it("logs each event that parses by the table as its line; skips and counts the others", async () => {
    const send = (category: string, scope: string, type: string, data: Record<string, unknown>) =>
      nc.publish(subjects.event(category, scope), encode("event", { type, category, scope, data }, { sender: "t" }));
    send("host", "h1", "HOST_FROM_THE_FUTURE", {});
    send("host", "h1", "HOST_UP", { incarnation: 7 });
    nc.publish(subjects.event("host", "h1"), new TextEncoder().encode("not a frame"));
    send("host", "h1", "HOST_UP", { incarnation: "i1" });
    await until("the valid event", () => lines.length === 1);
    await nc.flush();
    expect(lines).toEqual(['HOST_UP:host:h1:{"incarnation":"i1"}']);
    await until("the skipped ones counted", () => monitor.skippedEvents === 3);
  });
});
