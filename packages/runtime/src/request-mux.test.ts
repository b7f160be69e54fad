import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { jetstream, jetstreamManager } from "@nats-io/jetstream";
import { NoRespondersError, PermissionViolationError, RequestError, TimeoutError } from "@nats-io/nats-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { connectNats, type NatsConnection } from "./nats.js";
import { type NatsServer, startNatsServer } from "./testing/index.js";

const enc = new TextEncoder();
const dec = new TextDecoder();

/** A request's failure, or a test failure if it succeeded. */
async function failure(p: Promise<unknown>): Promise<Error> {
  try {
    await p;
  } catch (err) {
    return err as Error;
  }
  throw new Error("expected the request to fail");
}

describe("requests over one inbox (request-mux.ts), on a real nats-server", () => {
  let server: NatsServer;
  let limited: NatsServer;
  let nc: NatsConnection;
  const dir = mkdtempSync(join(tmpdir(), "cadre-mux-"));

  beforeAll(async () => {
    server = await startNatsServer();
    // A user who may not publish on forbidden.>: the server refuses, the request fails at once.
    const conf = join(dir, "limited.conf");
    writeFileSync(
      conf,
      'authorization { users = [ { user: "u", password: "p", permissions: { publish: { deny: ["forbidden.>"] }, subscribe: { allow: [">"] } } } ] }\n',
    );
    limited = await startNatsServer({ configFile: conf });
    nc = await connectNats(server.url, "mux-test");
    nc.subscribe("echo", { callback: (_e, m) => void m.respond(m.data) });
    nc.subscribe("late", { callback: (_e, m) => void setTimeout(() => m.respond(m.data), 300) });
    await nc.flush();
  });
  afterAll(async () => {
    await nc?.close();
    await server?.stop();
    await limited?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it("answers each of many concurrent requests with its own reply", async () => {
    const replies = await Promise.all(
      Array.from({ length: 500 }, (_, i) => nc.request("echo", enc.encode(String(i)), { timeout: 5000 })),
    );
    expect(replies.map((m) => dec.decode(m.data))).toEqual(Array.from({ length: 500 }, (_, i) => String(i)));
  });

  it("fails with TimeoutError when no reply comes in time, and ignores the reply that comes later", async () => {
    const err = await failure(nc.request("late", enc.encode("x"), { timeout: 50 }));
    expect(err).toBeInstanceOf(TimeoutError);
    // The late reply finds nothing pending; the next request is answered normally.
    expect(dec.decode((await nc.request("echo", enc.encode("after"), { timeout: 5000 })).data)).toBe("after");
  });

  it("fails with a RequestError caused by NoRespondersError when nobody listens", async () => {
    const err = await failure(nc.request("nobody.here", enc.encode("x"), { timeout: 5000 }));
    expect(err).toBeInstanceOf(RequestError);
    expect((err as RequestError).isNoResponders()).toBe(true);
    expect(err.cause).toBeInstanceOf(NoRespondersError);
  });

  it("fails with the server's PermissionViolationError for a refused subject", async () => {
    const u = new URL(limited.url);
    const lc = await connectNats(`nats://u:p@127.0.0.1:${u.port}`, "mux-limited");
    try {
      const err = await failure(lc.request("forbidden.x", enc.encode("x"), { timeout: 10_000 }));
      expect(err).toBeInstanceOf(RequestError);
      expect(err.cause).toBeInstanceOf(PermissionViolationError);
    } finally {
      await lc.close();
    }
  });

  it("carries JetStream's publishes and KV-style expectations (a wrong last sequence is the server's error)", async () => {
    const jsm = await jetstreamManager(nc);
    await jsm.streams.add({ name: "MUX", subjects: ["mux.>"] });
    const js = jetstream(nc);
    const ack = await js.publish("mux.a", enc.encode("1"));
    expect(ack).toMatchObject({ stream: "MUX", seq: 1 });
    const err = await failure(js.publish("mux.a", enc.encode("2"), { expect: { lastSubjectSequence: 7 } }));
    expect(err.message).toMatch(/wrong last sequence/);
  });

  it("fails what is pending when the connection closes", async () => {
    const c = await connectNats(server.url, "mux-closing");
    c.subscribe("never", { callback: () => {} });
    await c.flush();
    const pending = failure(c.request("never", enc.encode("x"), { timeout: 10_000 }));
    await c.close();
    const err = await pending;
    expect(err).toBeInstanceOf(RequestError);
    expect(err.message).toMatch(/connection closed/);
  });
});
