import {
  CircularDelegationError,
  ConcurrentModificationError,
  fromWire,
  InternalError,
  InvalidConfigError,
  NotFoundError,
  ProtocolError,
  ResourceExhaustedError,
  StateLimitError,
  TimeoutError,
  UnavailableError,
} from "@cadre/protocol";
import { describe, expect, it } from "vitest";
import { changing, EXIT, EXIT_HELP, exitCodeOf, intAtLeast } from "./common.js";

describe("the exit code of an error", () => {
  it.each([
    ["a bad team file", new InvalidConfigError("team file t.yaml", [{ path: "name", message: "bad" }]), EXIT.badInput],
    ["a request over max_payload", new ProtocolError("over the NATS server's max_payload"), EXIT.badInput],
    ["something that does not exist", new NotFoundError("workflow", "w1"), EXIT.badInput],
    ["a team that delegates in a cycle", new CircularDelegationError(["a", "b", "a"]), EXIT.badInput],
    ["nothing answering", new UnavailableError("nothing answers sup.status"), EXIT.unavailable],
    ["no answer in time", new TimeoutError("workflow w1", 1000), EXIT.unavailable],
    ["a quota", new ResourceExhaustedError("agents of team t", 10, 10), EXIT.refused],
    ["a concurrent change", new ConcurrentModificationError("control.w1", 3), EXIT.refused],
    ["a state limit", new StateLimitError("state", "w1.k", "max_state_size_mb"), EXIT.refused],
    [
      "a frozen workflow",
      new UnavailableError("workflow w1 is frozen (data protection mode): its state changes wait until it is unfrozen"),
      EXIT.refused,
    ],
    ["an internal error", new InternalError("boom"), EXIT.internal],
    ["anything else thrown", new Error("boom"), EXIT.internal],
  ])("%s", (_what, err, code) => {
    expect(exitCodeOf(err)).toBe(code);
  });

  it("maps a code this CLI does not know by the sender's code, else by whether it is retryable", () => {
    expect(exitCodeOf(fromWire({ code: "RESOURCE_EXHAUSTED", message: "full", data: {} }))).toBe(EXIT.refused);
    const unknown = fromWire({ code: "SOMETHING_NEW", message: "later", retryable: true });
    expect(exitCodeOf(unknown)).toBe(EXIT.unavailable);
    expect(exitCodeOf(fromWire({ code: "SOMETHING_NEW", message: "never", retryable: false }))).toBe(EXIT.internal);
  });

  it("every code is in the help, and every code mapped is named there", () => {
    for (const n of Object.values(EXIT)) expect(EXIT_HELP).toContain(`\n  ${n}  `);
    for (const code of ["INVALID_CONFIG", "PROTOCOL_ERROR", "NOT_FOUND", "UNAVAILABLE", "RESOURCE_EXHAUSTED"]) {
      expect(EXIT_HELP).toContain(code);
    }
    expect(EXIT_HELP).toContain("CONCURRENT_MODIFICATION");
  });
});

describe("changing", () => {
  it("tries again while a concurrent change gets in the way", async () => {
    let calls = 0;
    const r = await changing(async () => {
      calls++;
      if (calls < 3) throw new ConcurrentModificationError("control.w1", calls);
      return "done";
    });
    expect(r).toBe("done");
    expect(calls).toBe(3);
  });

  it("gives up after its attempts, with the conflict (exit 4)", async () => {
    let calls = 0;
    const err = await changing(async () => {
      calls++;
      throw new ConcurrentModificationError("control.w1", calls);
    }).catch((e: unknown) => e);
    expect(calls).toBe(4);
    expect(exitCodeOf(err)).toBe(EXIT.refused);
  });

  it("does not try again after any other error", async () => {
    let calls = 0;
    await expect(
      changing(async () => {
        calls++;
        throw new UnavailableError("nothing answers");
      }),
    ).rejects.toThrow("nothing answers");
    expect(calls).toBe(1);
  });
});

describe("intAtLeast", () => {
  it("accepts whole numbers in range and refuses the rest", () => {
    expect(intAtLeast(1, 1000)("7")).toBe(7);
    for (const bad of ["0", "1001", "1.5", "-2", "x", ""])
      expect(() => intAtLeast(1, 1000)(bad)).toThrow("from 1 to 1000");
  });
});
