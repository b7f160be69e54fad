import {
  CadreError,
  CircularDelegationError,
  decodeAs,
  endpointName,
  InternalError,
  NotFoundError,
  operationSubject,
  operationsOf,
  ProtocolError,
  randomId,
  SUPERVISOR_QUEUE,
  UnavailableError,
} from "@cadre/protocol";
import { errorSamples, rejection, taskEnvelope } from "@cadre/protocol/testing";
import { type ServiceInfo, Svcm } from "@nats-io/services";
import { pack } from "msgpackr";
import { afterAll, beforeAll, describe, expect, expectTypeOf, it } from "vitest";
import { CircuitOpenError } from "./breaker.js";
import * as runtime from "./index.js";
import { createLogger } from "./logger.js";
import { connectNats, type NatsConnection } from "./nats.js";
import { call, OperationServer, type OperationServerOptions } from "./operations.js";
import { OutboxCorruptError, OutboxFullError } from "./outbox.js";
import { type NatsServer, startNatsServer } from "./testing/index.js";

const logger = createLogger("operations-test", "silent");
const caller = { sender: "test-client", timeoutMs: 2000 };
const admit = { taskId: "w1-r-0", workflowId: "w1", epoch: 1, kind: "backend-engineer" };

let server: NatsServer;
let nc: NatsConnection;
beforeAll(async () => {
  server = await startNatsServer();
  nc = await connectNats(server.url, "operations-test");
});
afterAll(async () => {
  await nc?.close();
  await server?.stop();
});

/** Starts an operation server for one test; stop it when done. */
function startServer(opts: Partial<OperationServerOptions> = {}): Promise<OperationServer> {
  return OperationServer.start(nc, {
    name: `cadre-test-${randomId(6)}`,
    id: `svc-${randomId(6)}`,
    description: "operations test",
    logger,
    ...opts,
  });
}

/** Serves `sup.task.admit` with a handler that throws `err`, and returns what a caller gets. */
async function callFailing(err: unknown): Promise<CadreError> {
  const srv = await startServer();
  srv.serve("sup.task.admit", async () => {
    throw err;
  });
  try {
    return await rejection(call(nc, "sup.task.admit", admit, caller));
  } finally {
    await srv.stop();
  }
}

describe("call and OperationServer: replies", () => {
  it("returns the typed reply, parsed with the operation's schema", async () => {
    const srv = await startServer();
    const seen: unknown[] = [];
    srv.serve("sup.task.admit", async (body, meta) => {
      seen.push({ body, sender: meta.sender, cid: meta.cid });
      return { decision: "parked" };
    });
    try {
      const reply = await call(nc, "sup.task.admit", admit, { ...caller, cid: "c-1" });
      expectTypeOf(reply.decision).toEqualTypeOf<"run" | "parked" | "cancelled">();
      expect(reply).toEqual({ decision: "parked" });
      expect(seen).toEqual([{ body: admit, sender: "test-client", cid: "c-1" }]);
    } finally {
      await srv.stop();
    }
  });

  it("answers a host operation on that host's subject only", async () => {
    const srv = await startServer({ hostId: "host-a" });
    srv.serve("host.task", async (body) => ({ taskId: body.taskId, held: true, epoch: 2 }));
    try {
      const reply = await call(nc, "host.task", { op: "stop", taskId: "w1-r-0" }, { ...caller, hostId: "host-a" });
      expect(reply).toEqual({ taskId: "w1-r-0", held: true, epoch: 2 });
      const elsewhere = await rejection(
        call(nc, "host.task", { op: "stop", taskId: "w1-r-0" }, { ...caller, hostId: "host-b" }),
      );
      expect(elsewhere.code).toBe("UNAVAILABLE");
    } finally {
      await srv.stop();
    }
  });
});

describe("call and OperationServer: errors", () => {
  it("rebuilds a typed error reply as its class", async () => {
    const e = await callFailing(new CircularDelegationError(["a", "b", "a"]));
    expect(e).toBeInstanceOf(CircularDelegationError);
    expect(e.code).toBe("CIRCULAR_DELEGATION");
    expect((e as CircularDelegationError).chain).toEqual(["a", "b", "a"]);
    expect(e.retryable).toBe(false);
  });

  it("rebuilds an open circuit as CircuitOpenError, retryable (not INTERNAL, which ended the task)", async () => {
    const e = await callFailing(new CircuitOpenError("state_update", 1500));
    expect(e).toBeInstanceOf(CircuitOpenError);
    expect(e.code).toBe("CIRCUIT_OPEN");
    expect(e.retryable).toBe(true);
    expect(e.data).toEqual({ breaker: "state_update", retryInMs: 1500 });
  });

  it("answers NATS failing under the handler (a stream electing a leader) with UNAVAILABLE, retryable", async () => {
    const noResponders = Object.assign(new Error("no responders: '$KV.cadre_tasks.x'"), { name: "NoRespondersError" });
    const e = await callFailing(new Error("jetstream is not enabled", { cause: noResponders }));
    expect(e.code).toBe("UNAVAILABLE");
    expect(e.retryable).toBe(true);
    expect(e.message).toContain("jetstream is not enabled");
  });

  it("never sends an error reply over the payload limit: the message is trimmed, data that would not fit is dropped", async () => {
    const limit = nc.info?.max_payload ?? 0;
    // What a handler might echo: a value bigger than a frame, in its message and in its data.
    const e = await callFailing(new NotFoundError("workflow", "w".repeat(limit + 10)));
    expect(e).toBeInstanceOf(NotFoundError);
    expect(e.code).toBe("NOT_FOUND");
    expect(e.message.length).toBeLessThanOrEqual(2000);
    expect(e.message).toMatch(/^workflow "w+$/);
    // The data (which held the whole id) did not fit and was left out.
    expect(JSON.stringify(e.data).length).toBeLessThan(100);
    // A small error keeps its data.
    const small = await callFailing(new NotFoundError("workflow", "w1"));
    expect(small.data).toEqual({ what: "workflow", id: "w1" });
  });

  it("answers anything else with INTERNAL, not retryable", async () => {
    const e = await callFailing(new TypeError("x is undefined"));
    expect(e).toBeInstanceOf(InternalError);
    expect(e.retryable).toBe(false);
    expect(e.message).toBe("x is undefined");
  });

  it("answers a request body that fails the schema with PROTOCOL_ERROR naming the field, and the service error headers", async () => {
    const srv = await startServer();
    let called = false;
    srv.serve("sup.task.admit", async () => {
      called = true;
      return { decision: "run" };
    });
    try {
      const frame = pack({
        v: 1,
        type: "sup.task.admit",
        sender: "x",
        cid: "c-2",
        ts: Date.now(),
        body: { ...admit, epoch: 0 },
      });
      const reply = await nc.request(operationSubject("sup.task.admit"), frame, { timeout: 2000 });
      expect(reply.headers?.get("Nats-Service-Error-Code")).toBe("400");
      const err = await rejection(Promise.resolve().then(() => decodeAs(reply.data, "sup.task.admit.ok")));
      expect(err).toBeInstanceOf(ProtocolError);
      expect(err.code).toBe("PROTOCOL_ERROR");
      expect(err.retryable).toBe(false);
      expect(err.message).toContain('"sup.task.admit" body is invalid: epoch');
      expect(called).toBe(false);
    } finally {
      await srv.stop();
    }
  });

  it("answers a frame that is not msgpack with PROTOCOL_ERROR and keeps serving", async () => {
    const srv = await startServer();
    srv.serve("sup.task.admit", async () => ({ decision: "run" }));
    try {
      const reply = await nc.request(operationSubject("sup.task.admit"), new Uint8Array([0xc1, 0xc1]), {
        timeout: 2000,
      });
      const err = await rejection(Promise.resolve().then(() => decodeAs(reply.data, "sup.task.admit.ok")));
      expect(err.code).toBe("PROTOCOL_ERROR");
      expect(await call(nc, "sup.task.admit", admit, caller)).toEqual({ decision: "run" });
    } finally {
      await srv.stop();
    }
  });

  it("makes no responder an UNAVAILABLE error, retryable, naming the operation and the subject", async () => {
    const e = await rejection(call(nc, "host.inspect", { actorId: "a1" }, { ...caller, hostId: "nobody" }));
    expect(e).toBeInstanceOf(UnavailableError);
    expect(e.retryable).toBe(true);
    expect(e.message).toContain("nothing answers host.inspect on cadre.v1.host.nobody.inspect");
    expect(e.data).toEqual({ subject: "cadre.v1.host.nobody.inspect" });
  });

  it("refuses a request over the server's max_payload with a ProtocolError naming the limit, without sending it", async () => {
    const limit = nc.info?.max_payload;
    expect(limit).toBeGreaterThan(0);
    const blob = "x".repeat((limit ?? 0) + 1);
    const e = await rejection(
      call(
        nc,
        "sup.delegate",
        { parent: taskEnvelope(), subtasks: [{ kind: "qa-engineer", input: { blob } }] },
        { ...caller, partition: 0 },
      ),
    );
    expect(e).toBeInstanceOf(ProtocolError);
    expect(e.retryable).toBe(false);
    expect(e.message).toContain(`over the NATS server's max_payload of ${limit} bytes`);
    expect(e.data).toMatchObject({ operation: "sup.delegate", limit });
  });
});

describe("PartitionServer", () => {
  const delegation = (partition: number) =>
    call(
      nc,
      "sup.delegate",
      { parent: taskEnvelope(), subtasks: [{ kind: "qa-engineer", input: {} }] },
      { ...caller, partition },
    );

  it("answers a partition's operations from take to give, and no other partition's", async () => {
    const ps = new runtime.PartitionServer(nc, { id: "sup-p", logger });
    const seen: number[] = [];
    ps.handle({
      "sup.delegate": async (body) => {
        seen.push(body.subtasks.length);
        return { taskIds: ["t-1"], existing: [] };
      },
    });
    try {
      ps.take(2);
      ps.take(5);
      ps.take(2);
      expect(ps.held).toEqual([2, 5]);
      const reply = await delegation(2);
      expect(reply).toEqual({ taskIds: ["t-1"], existing: [] });
      await delegation(5);
      expect(seen).toEqual([1, 1]);
      // Held by nobody: nothing answers, which the caller retries (UNAVAILABLE).
      const none = await rejection(delegation(3));
      expect(none).toBeInstanceOf(UnavailableError);
      expect(none.message).toContain("cadre.v1.sup.part.3.delegate");
      ps.give(2);
      expect(ps.held).toEqual([5]);
      expect(await rejection(delegation(2))).toBeInstanceOf(UnavailableError);
    } finally {
      ps.stop();
    }
    expect(ps.held).toEqual([]);
  });

  it("answers a failing handler or a bad body with the typed error and the service error headers", async () => {
    const ps = new runtime.PartitionServer(nc, { id: "sup-p", logger });
    ps.handle({
      "sup.delegate": async () => {
        throw new CircularDelegationError(["a", "b", "a"]);
      },
    });
    ps.take(0);
    try {
      const e = await rejection(delegation(0));
      expect(e).toBeInstanceOf(CircularDelegationError);
      const frame = pack({ v: 1, type: "sup.delegate", sender: "x", cid: "c", ts: Date.now(), body: { subtasks: [] } });
      const reply = await nc.request(operationSubject("sup.delegate", 0), frame, { timeout: 2000 });
      expect(reply.headers?.get("Nats-Service-Error-Code")).toBe("400");
      expect(await rejection(Promise.resolve().then(() => decodeAs(reply.data, "sup.delegate.ok")))).toBeInstanceOf(
        ProtocolError,
      );
    } finally {
      ps.stop();
    }
  });
});

/** One instance of every error class in the workspace (protocol's and the runtime's). */
const samples: CadreError[] = [
  ...errorSamples,
  new CircuitOpenError("spawn", 250),
  new OutboxFullError("/var/lib/cadre/outbox.log", 1024, 1000, 3),
  new OutboxCorruptError("/var/lib/cadre/outbox.log", 4096, "bad checksum"),
];

describe("every error class in the workspace crosses an operation as itself", () => {
  it("registers every error class the runtime exports", () => {
    const exported = Object.values(runtime as Record<string, unknown>).filter(
      (v: unknown): v is typeof CadreError => typeof v === "function" && v.prototype instanceof CadreError,
    );
    expect(exported).toEqual(expect.arrayContaining([CircuitOpenError, OutboxFullError, OutboxCorruptError]));
    const registered = CadreError.registered();
    for (const cls of exported) expect(registered, cls.name).toContain(cls);
  });

  it("has a sample of every registered class", () => {
    expect(new Set(samples.map((s) => s.constructor))).toEqual(new Set(CadreError.registered()));
  });

  // Enumerated from the registry: a class registered without a sample or a faithful rebuild fails.
  for (const cls of CadreError.registered()) {
    it(`${cls.name} comes back with its class, code, retryable flag and message`, async () => {
      const original = samples.find((s) => s.constructor === cls);
      if (!original) throw new Error(`no sample for ${cls.name}`);
      const e = await callFailing(original);
      expect(e).toBeInstanceOf(cls);
      expect(e.code).toBe(cls.code);
      expect(e.retryable).toBe(original.retryable);
      expect(e.message).toBe(original.message);
      expect(e.data).toEqual(original.data);
    });
  }
});

describe("OperationServer: discovery", () => {
  let sup: OperationServer;
  let host: OperationServer;
  const supName = `cadre-supervisor-${randomId(6)}`;
  const hostName = `cadre-agent-host-${randomId(6)}`;
  beforeAll(async () => {
    sup = await startServer({ name: supName, id: "sup-1", description: "supervisor" });
    for (const op of operationsOf("supervisor")) sup.serve(op, async () => ({}) as never);
    host = await startServer({ name: hostName, id: "host-1", hostId: "host-1", description: "agent-host" });
    for (const op of operationsOf("agent-host")) host.serve(op, async () => ({}) as never);
  });
  afterAll(async () => {
    await sup?.stop();
    await host?.stop();
  });

  async function info(name: string): Promise<ServiceInfo[]> {
    const found: ServiceInfo[] = [];
    for await (const i of await new Svcm(nc as never).client().info(name)) found.push(i);
    return found;
  }

  it("lists the supervisor with every supervisor operation as an endpoint in $SRV.INFO", async () => {
    const [svc, ...more] = await info(supName);
    expect(more).toHaveLength(0);
    expect(svc?.name).toBe(supName);
    expect(svc?.description).toBe("supervisor");
    expect(svc?.metadata).toMatchObject({ id: "sup-1" });
    const endpoints = svc?.endpoints ?? [];
    expect(endpoints.map((e) => e.name).sort()).toEqual(operationsOf("supervisor").map(endpointName).sort());
    for (const op of operationsOf("supervisor")) {
      const e = endpoints.find((x) => x.name === endpointName(op));
      // A partitioned operation served by the service: every partition's.
      expect(e?.subject, op).toBe(operationSubject(op, "*"));
      expect(e?.queue_group, op).toBe(SUPERVISOR_QUEUE);
      expect(e?.metadata, op).toMatchObject({ operation: op });
    }
  });

  it("lists a host with its host's subjects in $SRV.INFO", async () => {
    const [svc] = await info(hostName);
    expect(svc?.metadata).toMatchObject({ id: "host-1", hostId: "host-1" });
    const endpoints = svc?.endpoints ?? [];
    expect(endpoints.map((e) => e.name).sort()).toEqual(operationsOf("agent-host").map(endpointName).sort());
    for (const e of endpoints) expect(e.subject).toMatch(/^cadre\.v1\.host\.host-1\./);
  });

  it("answers $SRV.PING for both services", async () => {
    const pinged: string[] = [];
    for await (const p of await new Svcm(nc as never).client().ping()) pinged.push(p.name);
    expect(pinged).toEqual(expect.arrayContaining([supName, hostName]));
  });
});
