/**
 * The operator actions' HTTP checks (token, content type, size, body) and which supervisor
 * operation each action calls, on a loopback HTTP server with a stand-in NATS connection that
 * records requests and answers as the supervisor would. The real cluster is in
 * test/integration/dashboard-actions.test.ts.
 */

import { createServer, request, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { decode, encode, parseConfig } from "@cadre/protocol";
import { createLogger, type NatsConnection } from "@cadre/runtime";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { actionsToken, DASHBOARD_CANCEL_REASON, MAX_ACTION_BODY_BYTES, OperatorActions } from "./actions.js";

const TOKEN = "s3cret-token-for-the-test";

/** A NATS connection that records each request and answers with `answer` (a reply body or an error). */
function fakeNats() {
  const seen: { subject: string; type: string; body: unknown }[] = [];
  let answer: { body: unknown } | { error: { code: string; message: string } } = { body: {} };
  const nc = {
    info: undefined,
    request: async (subject: string, data: Uint8Array) => {
      const m = decode(data);
      seen.push({ subject, type: m.type, body: m.body });
      if ("error" in answer) return { data: encode("error", { error: answer.error }, { sender: "sup" }) };
      return { data: encode(`${m.type}.ok` as never, answer.body as never, { sender: "sup" }) };
    },
  };
  return {
    nc: nc as unknown as NatsConnection,
    seen,
    answer: (a: typeof answer) => {
      answer = a;
    },
  };
}

const control = (workflowId: string, paused: boolean) => ({
  workflowId,
  teamId: "t1",
  paused,
  yielding: false,
  cancelled: null,
  maxAgents: null,
  guarantee: 0,
  parked: [],
  updatedAt: 1,
});

describe("operator actions over HTTP", () => {
  const nats = fakeNats();
  const logs: string[] = [];
  let server: Server;
  let url: string;

  beforeAll(async () => {
    const logger = createLogger("actions-test", "info", { write: (s: string) => void logs.push(s) });
    const actions = new OperatorActions({
      nc: nats.nc,
      token: TOKEN,
      sender: "mon-dashboard",
      timeoutMs: 1000,
      logger,
    });
    server = createServer((req, res) => void actions.handle(req, res));
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/dashboard/api/action`;
  });
  afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));
  beforeEach(() => {
    nats.seen.length = 0;
    logs.length = 0;
  });

  const post = (body: string, headers: Record<string, string> = {}) =>
    fetch(url, {
      method: "POST",
      headers: { "content-type": "application/json", authorization: `Bearer ${TOKEN}`, ...headers },
      body,
    });
  const errorOf = async (r: Response) => ((await r.json()) as { error: { code: string; message: string } }).error;

  it("refuses a request without the token, or with a wrong one, before reading it", async () => {
    for (const authorization of ["", "Bearer", "Bearer wrong", `Basic ${TOKEN}`, `Bearer ${TOKEN}x`]) {
      const r = await post(JSON.stringify({ op: "pause", workflowId: "w1" }), { authorization });
      expect(r.status, authorization).toBe(401);
      expect(r.headers.get("www-authenticate")).toContain("Bearer");
      expect(await errorOf(r)).toEqual({
        code: "PERMISSION_DENIED",
        message: "operator actions need the header authorization: Bearer <token>",
      });
    }
    expect(nats.seen).toEqual([]);
  });

  it("refuses a body that is not application/json (415), naming the type received", async () => {
    const r = await post("op=pause", { "content-type": "application/x-www-form-urlencoded" });
    expect(r.status).toBe(415);
    expect((await errorOf(r)).message).toContain(
      "content-type: application/json (got application/x-www-form-urlencoded)",
    );
    nats.answer({ body: { control: control("w1", false) } });
    const charset = await post(JSON.stringify({ op: "resume", workflowId: "w1" }), {
      "content-type": "Application/JSON; charset=utf-8",
    });
    expect(charset.status).toBe(200);
  });

  it("refuses a body over 4 KiB (413), by its declared length or as it streams", async () => {
    const big = JSON.stringify({ op: "cancel", workflowId: "w1", reason: "x".repeat(MAX_ACTION_BODY_BYTES) });
    const r = await post(big);
    expect(r.status).toBe(413);
    expect(await errorOf(r)).toEqual({ code: "PROTOCOL_ERROR", message: "an action body is at most 4096 bytes" });
    // Chunked (no Content-Length): reading stops past the limit.
    const streamed = await new Promise<{ status: number; body: string }>((resolve, reject) => {
      const req = request(url, {
        method: "POST",
        headers: { "content-type": "application/json", authorization: `Bearer ${TOKEN}` },
      });
      req.on("response", (res) => {
        let body = "";
        res.on("data", (c) => {
          body += c;
        });
        res.on("end", () => resolve({ status: res.statusCode ?? 0, body }));
      });
      req.on("error", reject);
      req.write(big.slice(0, 3000));
      req.end(big.slice(3000));
    });
    expect(streamed.status).toBe(413);
    expect(streamed.body).toContain("at most 4096 bytes");
    expect(nats.seen).toEqual([]);
  });

  it("refuses a body that is not JSON or not an action with 400, naming the bad field", async () => {
    const cases: [string, string][] = [
      ["{op:", "the body is not JSON"],
      [JSON.stringify([]), "(body): "],
      [JSON.stringify({ op: "reboot", workflowId: "w1" }), "op: Invalid option"],
      [JSON.stringify({ op: "pause" }), "workflowId: pause needs workflowId"],
      [
        JSON.stringify({ op: "release", workflowId: "w1" }),
        "actorId: release needs actorId; workflowId: release takes no workflowId",
      ],
      [JSON.stringify({ op: "pause", workflowId: "w1", reason: "r" }), "reason: pause takes no reason"],
      [JSON.stringify({ op: "pause", workflowId: "no spaces" }), "workflowId: ids use"],
      [JSON.stringify({ op: "pause", workflowId: "w1", now: true }), 'Unrecognized key: "now"'],
    ];
    for (const [body, message] of cases) {
      const r = await post(body);
      expect(r.status, body).toBe(400);
      const e = await errorOf(r);
      expect(e.code).toBe("PROTOCOL_ERROR");
      expect(e.message, body).toContain(message);
    }
    expect(nats.seen).toEqual([]);
  });

  it("calls the supervisor operation of each action and answers {ok, op, result}", async () => {
    nats.answer({ body: { control: control("w1", true) } });
    const r = await post(JSON.stringify({ op: "pause", workflowId: "w1" }));
    expect(r.status).toBe(200);
    expect(await r.json()).toEqual({ ok: true, op: "pause", result: { control: control("w1", true) } });
    nats.answer({ body: { control: control("w1", false), cancelled: [] } });
    await post(JSON.stringify({ op: "cancel", workflowId: "w1" }));
    await post(JSON.stringify({ op: "cancel", workflowId: "w1", reason: "runaway" }));
    nats.answer({ body: { workflowId: "w1", frozen: true } });
    await post(JSON.stringify({ op: "freeze", workflowId: "w1" }));
    await post(JSON.stringify({ op: "unfreeze", workflowId: "w1" }));
    nats.answer({ body: { actors: [] } });
    await post(JSON.stringify({ op: "release", actorId: "a1" }));
    await post(JSON.stringify({ op: "retire", actorId: "a1" }));
    expect(nats.seen.map((s) => [s.subject.split(".").slice(-3).join("."), s.type, s.body])).toEqual([
      ["sup.workflow.pause", "sup.workflow.pause", { workflowId: "w1", now: false }],
      ["sup.workflow.cancel", "sup.workflow.cancel", { workflowId: "w1", reason: DASHBOARD_CANCEL_REASON }],
      ["sup.workflow.cancel", "sup.workflow.cancel", { workflowId: "w1", reason: "runaway" }],
      [expect.any(String), "sup.freeze", { workflowId: "w1", frozen: true }],
      [expect.any(String), "sup.freeze", { workflowId: "w1", frozen: false }],
      [expect.any(String), "sup.quarantine", { op: "release", actorId: "a1" }],
      [expect.any(String), "sup.quarantine", { op: "retire", actorId: "a1" }],
    ]);
    const logged = logs.map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(logged[0]).toMatchObject({ level: 30, op: "pause", workflowId: "w1", msg: "dashboard action: pause" });
    expect(logged.find((l) => l.op === "release")).toMatchObject({ actorId: "a1" });
    expect(logs.join("\n")).not.toContain(TOKEN);
  });

  it("answers the supervisor's error with its code and an HTTP status to match", async () => {
    const cases: [string, number][] = [
      ["NOT_FOUND", 404],
      ["PERMISSION_DENIED", 403],
      ["INVALID_CONFIG", 409],
      ["UNAVAILABLE", 503],
      ["INTERNAL", 500],
    ];
    for (const [code, status] of cases) {
      nats.answer({ error: { code, message: `said ${code}` } });
      const r = await post(JSON.stringify({ op: "resume", workflowId: "w1" }));
      expect(r.status, code).toBe(status);
      expect(await errorOf(r)).toEqual({ code, message: `said ${code}` });
    }
  });
});

describe("actionsToken", () => {
  const config = (monitor: unknown, extra: Record<string, unknown> = {}) =>
    parseConfig({ monitor: { dashboard: { actions: monitor } }, ...extra });

  it("is undefined while actions are off, whatever the environment", () => {
    expect(actionsToken(config({}), { CADRE_DASHBOARD_TOKEN: "t" })).toBeUndefined();
  });

  it("reads the token from the configured variable", () => {
    expect(actionsToken(config({ enabled: true }), { CADRE_DASHBOARD_TOKEN: "t1" })).toBe("t1");
    expect(actionsToken(config({ enabled: true, tokenEnv: "DASH" }), { DASH: "t2" })).toBe("t2");
  });

  it("refuses an empty token and, with security on, missing operator credentials, saying what to set", () => {
    let err: unknown;
    try {
      actionsToken(config({ enabled: true }, { natsCredentials: "/s/identities/monitor.nk" }), {
        CADRE_DASHBOARD_TOKEN: " ",
      });
    } catch (e) {
      err = e;
    }
    expect(err).toMatchObject({ name: "InvalidConfigError", code: "INVALID_CONFIG" });
    const message = (err as Error).message;
    expect(message).toContain(
      "monitor.dashboard.actions.tokenEnv: the environment variable CADRE_DASHBOARD_TOKEN is empty",
    );
    expect(message).toContain("monitor.dashboard.actions.credentials: the monitor runs with natsCredentials");
    expect(message).toContain("identities/operator.nk");
    expect(() =>
      actionsToken(
        config({ enabled: true, credentials: "/s/identities/operator.nk" }, { natsCredentials: "/s/m.nk" }),
        {
          CADRE_DASHBOARD_TOKEN: "t",
        },
      ),
    ).not.toThrow();
  });
});
