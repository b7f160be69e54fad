import { CircularDelegationError, randomId } from "@cadre/protocol";
import { rejection } from "@cadre/protocol/testing";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createLogger } from "./logger.js";
import { connectNats, type NatsConnection, request, serve } from "./nats.js";
import { type NatsServer, startNatsServer } from "./testing/index.js";

const logger = createLogger("nats-test", "silent");

describe("serve: what a failing handler answers", () => {
  let server: NatsServer;
  let nc: NatsConnection;
  beforeAll(async () => {
    server = await startNatsServer();
    nc = await connectNats(server.url, "nats-test");
  });
  afterAll(async () => {
    await nc?.close();
    await server?.stop();
  });

  /** Serves `sup.status` with a handler that throws `err`, and returns what a caller gets. */
  async function callFailing(err: unknown) {
    const subject = `test.${randomId(6)}`;
    const sub = serve(nc, {
      subject,
      requestType: "sup.status",
      replyType: "sup.status.ok",
      sender: "t",
      logger,
      handler: async () => {
        throw err;
      },
    });
    try {
      return await rejection(
        request(nc, subject, "sup.status", { workflowId: "w1" }, "sup.status.ok", { sender: "c", timeoutMs: 2000 }),
      );
    } finally {
      sub.unsubscribe();
    }
  }

  it("a Cadre error as itself", async () => {
    const e = await callFailing(new CircularDelegationError(["a", "b", "a"]));
    expect(e.code).toBe("CIRCULAR_DELEGATION");
  });

  it("NATS failing under the handler (a stream electing a leader) as UNAVAILABLE, retryable", async () => {
    const noResponders = Object.assign(new Error("no responders: '$KV.cadre_tasks.x'"), { name: "NoRespondersError" });
    const e = await callFailing(new Error("jetstream is not enabled", { cause: noResponders }));
    expect(e.code).toBe("UNAVAILABLE");
    expect(e.retryable).toBe(true);
    expect(e.message).toContain("jetstream is not enabled");
  });

  it("anything else as INTERNAL, not retryable", async () => {
    const e = await callFailing(new TypeError("x is undefined"));
    expect(e.code).toBe("INTERNAL");
    expect(e.retryable).toBe(false);
  });
});

describe("request: what a caller gets when nothing answers", () => {
  let server: NatsServer;
  let nc: NatsConnection;
  beforeAll(async () => {
    server = await startNatsServer();
    nc = await connectNats(server.url, "nats-test-request");
  });
  afterAll(async () => {
    await nc?.close();
    await server?.stop();
  });

  it("no responders: UNAVAILABLE, retryable, naming the subject (not INTERNAL, which ended a workflow)", async () => {
    const e = await rejection(
      request(nc, "test.nobody.home", "sup.status", { workflowId: "w1" }, "sup.status.ok", {
        sender: "c",
        timeoutMs: 2000,
      }),
    );
    expect(e.code).toBe("UNAVAILABLE");
    expect(e.retryable).toBe(true);
    expect(e.message).toContain("nothing answers on test.nobody.home");
  });
});
