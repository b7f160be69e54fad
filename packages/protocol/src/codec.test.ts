import { pack } from "msgpackr";
import { describe, expect, it } from "vitest";
import { decode, decodeAs, encode, MAX_FRAME_BYTES, PROTOCOL_VERSION } from "./codec.js";
import { CircularDelegationError, TimeoutError } from "./errors.js";
import type { BodyInput } from "./operations.js";
import { thrown } from "./testing.js";

const task: BodyInput<"task"> = {
  taskId: "w1abc-r",
  workflowId: "w1abc",
  teamId: "software-team-0123456789",
  kind: "engineering-director",
  parentTaskId: null,
  chain: ["engineering-director"],
  depth: 0,
  idempotencyKey: "w1abc-r",
  input: { feature: "login" },
};

const result: BodyInput<"result"> = {
  taskId: "w1abc-r-0",
  workflowId: "w1abc",
  epoch: 2,
  attempt: 3,
  hostId: "host-1",
  actorId: "a-backend-1",
  status: "completed",
  output: { summary: "done", files: ["a.ts", "b.ts"] },
  startedAt: 1_700_000_000_000,
  finishedAt: 1_700_000_000_250,
};

const opts = { sender: "supervisor-1", cid: "w1abc-r", ts: 1_700_000_000_123 };

/** Packs an envelope by hand, bypassing encode's checks, as a foreign or broken peer would. */
function rawFrame(overrides: Record<string, unknown>): Uint8Array {
  return pack({ v: PROTOCOL_VERSION, type: "task", sender: "peer", cid: "c1", ts: 1, body: task, ...overrides });
}

describe("encode and decode", () => {
  it("round-trips a task envelope and applies the schema's defaults", () => {
    const msg = decode(encode("task", task, opts));
    expect(msg).toEqual({
      v: PROTOCOL_VERSION,
      type: "task",
      sender: "supervisor-1",
      cid: "w1abc-r",
      ts: 1_700_000_000_123,
      body: { ...task, priority: 0, deadline: null, epoch: 1 },
    });
  });

  it("keeps explicit values for fields that have defaults", () => {
    const body = { ...task, priority: 7, deadline: 1_700_000_999_000, epoch: 3 };
    expect(decode(encode("task", body, opts)).body).toEqual(body);
  });

  it("round-trips a completed task result with its output", () => {
    const msg = decode(encode("result", result, opts));
    expect(msg.type).toBe("result");
    expect(msg.body).toEqual(result);
  });

  it("round-trips a failed task result carrying a wire error", () => {
    const { output: _none, ...attempt } = result;
    const failed = { ...attempt, status: "failed" as const, error: new TimeoutError("task w1abc-r-0", 500).toWire() };
    expect(decode(encode("result", failed, opts)).body).toEqual(failed);
  });

  it("round-trips an error reply", () => {
    const error = new CircularDelegationError(["a", "b", "a"]).toWire();
    const msg = decode(encode("error", { error }, opts));
    expect(msg).toMatchObject({ type: "error", sender: "supervisor-1", body: { error } });
  });

  it("fills in an empty correlation id and the current time when they are not given", () => {
    const before = Date.now();
    const msg = decode(
      encode("heartbeat", { hostId: "h1", incarnation: "i1", seq: 0, actors: 0, busy: 0, load: 0 }, { sender: "h1" }),
    );
    expect(msg.cid).toBe("");
    expect(msg.ts).toBeGreaterThanOrEqual(before);
    expect(msg.ts).toBeLessThanOrEqual(Date.now());
  });

  it("refuses to encode a body that fails its schema, naming the type and the field", () => {
    const err = thrown(() => encode("task", { ...task, depth: -1 }, opts));
    expect(err.code).toBe("PROTOCOL_ERROR");
    expect(err.message).toMatch(/^cannot send "task": depth: /);
    expect(err.data).toMatchObject({ type: "task", issues: [{ path: "depth" }] });
  });

  it("refuses to encode a body with a missing field", () => {
    const { idempotencyKey: _missing, ...incomplete } = task;
    const err = thrown(() => encode("task", incomplete as BodyInput<"task">, opts));
    expect(err.code).toBe("PROTOCOL_ERROR");
    expect(err.message).toContain("idempotencyKey");
  });
});

describe("decodeAs", () => {
  it("returns the message when it has the expected type", () => {
    const msg = decodeAs(encode("result", result, opts), "result");
    expect(msg.body.attempt).toBe(3);
  });

  it("throws the typed error rebuilt from an error frame", () => {
    const frame = encode("error", { error: new CircularDelegationError(["a", "b", "c", "a"]).toWire() }, opts);
    const err = thrown(() => decodeAs(frame, "sup.delegate.ok"));
    expect(err).toBeInstanceOf(CircularDelegationError);
    expect(err.code).toBe("CIRCULAR_DELEGATION");
    expect(err.message).toContain("a > b > c > a");
    expect(err.data).toEqual({ chain: ["a", "b", "c", "a"] });
  });

  it("returns an error frame as a message when an error is what was asked for", () => {
    const error = new TimeoutError("status", 5000).toWire();
    expect(decodeAs(encode("error", { error }, opts), "error").body.error).toEqual(error);
  });

  it("throws PROTOCOL_ERROR naming both types when the frame has another type", () => {
    const err = thrown(() => decodeAs(encode("task", task, opts), "result"));
    expect(err.code).toBe("PROTOCOL_ERROR");
    expect(err.message).toBe('expected a "result" message, received "task"');
    expect(err.data).toEqual({ expected: "result", received: "task" });
  });
});

describe("decode rejects bad frames with typed errors", () => {
  it("rejects bytes that are not msgpack", () => {
    const err = thrown(() => decode(new Uint8Array([0xc1, 0xc1, 0xc1])));
    expect(err.code).toBe("PROTOCOL_ERROR");
    expect(err.message).toMatch(/^frame is not valid msgpack \(.+\)$/);
    expect(err.data).toEqual({ size: 3 });
    expect(err.cause).toBeInstanceOf(Error);
  });

  it("rejects a valid frame cut short at any length", () => {
    const frame = encode("task", task, opts);
    for (let n = 0; n < frame.byteLength; n++) {
      const err = thrown(() => decode(frame.subarray(0, n)));
      expect(err.code, `cut at ${n} bytes`).toBe("PROTOCOL_ERROR");
      expect(err.message, `cut at ${n} bytes`).toContain("not valid msgpack");
      expect(err.data).toEqual({ size: n });
    }
  });

  it("rejects a valid frame followed by extra bytes", () => {
    const frame = encode("task", task, opts);
    const padded = new Uint8Array(frame.byteLength + 1);
    padded.set(frame);
    padded[frame.byteLength] = 0x01;
    const err = thrown(() => decode(padded));
    expect(err.code).toBe("PROTOCOL_ERROR");
    expect(err.message).toContain("not valid msgpack");
  });

  it("rejects a frame larger than the given limit before parsing it", () => {
    const frame = encode("task", task, opts);
    const err = thrown(() => decode(frame, frame.byteLength - 1));
    expect(err.code).toBe("PROTOCOL_ERROR");
    expect(err.message).toBe(`frame of ${frame.byteLength} bytes exceeds the limit of ${frame.byteLength - 1}`);
    expect(err.data).toEqual({ size: frame.byteLength, limit: frame.byteLength - 1 });
  });

  it("accepts a frame exactly at the limit", () => {
    const frame = encode("task", task, opts);
    expect(decode(frame, frame.byteLength).type).toBe("task");
  });

  it("rejects a frame over the default 1 MiB limit", () => {
    const err = thrown(() => decode(new Uint8Array(MAX_FRAME_BYTES + 1)));
    expect(err.code).toBe("PROTOCOL_ERROR");
    expect(err.data).toEqual({ size: MAX_FRAME_BYTES + 1, limit: 1024 * 1024 });
  });

  it.each([
    ["a number", 42, "number"],
    ["a string", "task", "string"],
    ["an array", [1, "task", {}], "array"],
    ["nil", null, "null"],
  ])("rejects %s where a message envelope was expected", (_what, value, received) => {
    const err = thrown(() => decode(pack(value)));
    expect(err.code).toBe("PROTOCOL_ERROR");
    expect(err.message).toContain("frame is not a message envelope");
    expect(err.message).toContain(`received ${received}`);
    expect(err.data).toMatchObject({ received });
  });

  it("rejects an unknown message type, naming it", () => {
    const err = thrown(() => decode(rawFrame({ type: "task.cancel" })));
    expect(err.code).toBe("PROTOCOL_ERROR");
    expect(err.message).toBe('unknown message type "task.cancel"');
    expect(err.data).toEqual({ type: "task.cancel" });
  });

  it("does not take inherited property names such as toString for message types", () => {
    for (const type of ["toString", "__proto__", "constructor"]) {
      const err = thrown(() => decode(rawFrame({ type })));
      expect(err.code).toBe("PROTOCOL_ERROR");
      expect(err.message).toContain("unknown message type");
    }
  });

  it("rejects an envelope without a type", () => {
    const err = thrown(() => decode(rawFrame({ type: undefined })));
    expect(err.code).toBe("PROTOCOL_ERROR");
    expect(err.message).toContain("unknown message type");
  });

  it("rejects an envelope that lacks its sender", () => {
    const err = thrown(() => decode(rawFrame({ sender: undefined })));
    expect(err.code).toBe("PROTOCOL_ERROR");
    expect(err.message).toBe('"task" envelope lacks sender, cid or ts');
    expect(err.data).toEqual({ type: "task" });
  });

  it("rejects a body that fails its schema, naming the field", () => {
    const err = thrown(() => decode(rawFrame({ body: { ...task, depth: -1 } })));
    expect(err.code).toBe("PROTOCOL_ERROR");
    expect(err.message).toMatch(/^"task" body is invalid: depth: /);
    expect(err.data).toMatchObject({ type: "task", issues: [{ path: "depth" }] });
  });

  it("names nested fields of an invalid body with dotted paths", () => {
    const err = thrown(() =>
      decode(rawFrame({ type: "sup.delegate", body: { parent: { ...task, chain: [] }, subtasks: [] } })),
    );
    expect(err.code).toBe("PROTOCOL_ERROR");
    expect(err.message).toContain("parent.chain: ");
    expect(err.message).toContain("subtasks: ");
  });

  it("rejects another protocol version before looking at the rest", () => {
    const err = thrown(() => decode(rawFrame({ v: 2, type: "from-the-future" })));
    expect(err.code).toBe("PROTOCOL_VERSION_MISMATCH");
    expect(err.message).toContain("protocol version 2 is not supported (expected 1)");
    expect(err.message).toContain("run the same Cadre version on every service");
    expect(err.data).toEqual({ expected: 1, received: 2 });
  });

  it("treats a frame without a version as a version mismatch", () => {
    const err = thrown(() => decode(rawFrame({ v: undefined })));
    expect(err.code).toBe("PROTOCOL_VERSION_MISMATCH");
    expect(err.data).toEqual({ expected: 1, received: undefined });
  });
});

describe("bounds on ids, scopes and names, checked at encode and decode", () => {
  const longScope = "s".repeat(5000);
  const event = { type: "OUTBOX_REPLAYED", category: "host", scope: longScope, data: {} };

  it("refuses an event with a 5,000-character scope at encode: its subject would pass nats-server's control-line limit", () => {
    const err = thrown(() => encode("event", event, opts));
    expect(err.code).toBe("PROTOCOL_ERROR");
    expect(err.data).toMatchObject({ type: "event", issues: [{ path: "scope" }] });
  });

  it("refuses the same event packed by hand at decode, with a typed error", () => {
    const err = thrown(() => decode(rawFrame({ type: "event", body: event })));
    expect(err.code).toBe("PROTOCOL_ERROR");
    expect(err.message).toContain("scope");
    // The error does not echo the 5,000 characters.
    expect(err.message.length).toBeLessThan(500);
  });

  it("accepts a scope of 200 characters and refuses 201", () => {
    expect(decode(encode("event", { ...event, scope: "s".repeat(200) }, opts)).type).toBe("event");
    expect(thrown(() => encode("event", { ...event, scope: "s".repeat(201) }, opts)).code).toBe("PROTOCOL_ERROR");
  });

  it("refuses ids over 200 characters in any message, and an error code over 64", () => {
    expect(thrown(() => decode(rawFrame({ body: { ...task, workflowId: "w".repeat(201) } }))).data).toMatchObject({
      issues: [{ path: "workflowId" }],
    });
    expect(thrown(() => decode(rawFrame({ body: { ...task, idempotencyKey: "k".repeat(201) } }))).data).toMatchObject({
      issues: [{ path: "idempotencyKey" }],
    });
    const error = { error: { code: "C".repeat(65), message: "m" } };
    expect(thrown(() => decode(rawFrame({ type: "error", body: error }))).code).toBe("PROTOCOL_ERROR");
  });
});
