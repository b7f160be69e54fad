import { encode } from "@cadre/protocol";
import { describe, expect, it } from "vitest";
import { Follower, type FollowerDeps } from "./follow.js";

/** readEvent uses only the throttled log of its dependencies. */
function follower() {
  const logged: string[] = [];
  const noisy: FollowerDeps["noisy"] = (_level, kind) => {
    logged.push(kind);
  };
  return { f: new Follower({ noisy } as FollowerDeps), logged };
}

const started = {
  type: "TASK_STARTED",
  category: "task",
  scope: "w1",
  data: { taskId: "w1-r", epoch: 1, seq: 1, kind: "worker", attempt: 1, hostId: "host-1", actorId: "a1" },
} as const;
const completed = {
  type: "TASK_COMPLETED",
  category: "task",
  scope: "w1",
  data: { taskId: "w1-r", kind: "worker", resultId: "res-1", attempt: 1, hostId: "host-1" },
} as const;

describe("Follower.readEvent", () => {
  it("parses an event of the type asked for", () => {
    const { f } = follower();
    const r = f.readEvent(encode("event", started, { sender: "host-1", ts: 5 }), "TASK_STARTED");
    expect(r?.event).toMatchObject({ type: "TASK_STARTED", data: { taskId: "w1-r", hostId: "host-1" } });
    expect(r?.ts).toBe(5);
  });

  it("leaves an event of another type undecoded and uncounted, also when its bytes are not a frame", () => {
    const { f, logged } = follower();
    expect(f.readEvent(encode("event", completed, { sender: "sup" }), "TASK_STARTED")).toBeUndefined();
    expect(f.readEvent(new TextEncoder().encode("not msgpack, no type name"), "TASK_STARTED")).toBeUndefined();
    expect({ skipped: f.skipped, logged }).toEqual({ skipped: 0, logged: [] });
  });

  it("gives nothing for an event of another type whose fields hold the type's name", () => {
    const { f } = follower();
    const mentions = { ...completed, data: { ...completed.data, kind: "TASK_STARTED" } };
    expect(f.readEvent(encode("event", mentions, { sender: "sup" }), "TASK_STARTED")).toBeUndefined();
    expect(f.skipped).toBe(0);
  });

  it("counts and logs a frame that names the type but does not decode", () => {
    const { f, logged } = follower();
    expect(f.readEvent(new TextEncoder().encode("garbage TASK_STARTED garbage"), "TASK_STARTED")).toBeUndefined();
    expect(f.skipped).toBe(1);
    expect(logged).toEqual(["undecodable event skipped"]);
  });

  it("looks for the type's name inside a view of a larger buffer, not before or after it", () => {
    const { f } = follower();
    const te = new TextEncoder();
    const big = new Uint8Array(64);
    big.set(te.encode("TASK_STARTED"), 0);
    big.set(te.encode("junk"), 20);
    big.set(te.encode("TASK_STARTED"), 40);
    expect(f.readEvent(big.subarray(20, 24), "TASK_STARTED")).toBeUndefined();
    // Not looked at as a frame: the name is only outside the view.
    expect(f.skipped).toBe(0);
    const frame = encode("event", started, { sender: "host-1" });
    const inner = new Uint8Array(frame.byteLength + 8);
    inner.set(frame, 4);
    expect(f.readEvent(inner.subarray(4, 4 + frame.byteLength), "TASK_STARTED")?.event.type).toBe("TASK_STARTED");
  });
});
