import { describe, expect, it } from "vitest";
import { decodeAs, encode } from "./codec.js";
import * as errorsModule from "./errors.js";
import {
  BehaviourFailedError,
  CadreError,
  CircularDelegationError,
  ConcurrentModificationError,
  DeadlockVictimError,
  DelegationDepthExceededError,
  type ErrorClass,
  errorClasses,
  formatIssues,
  fromWire,
  HookFailedError,
  InternalError,
  InvalidAgentResponseError,
  NotFoundError,
  ProtocolError,
  ProtocolVersionMismatchError,
  ResourceExhaustedError,
  ThrottledError,
  TimeoutError,
  toCadreError,
  UnavailableError,
} from "./errors.js";
import { errorSamples as samples, thrown } from "./testing.js";

function sampleOf(cls: ErrorClass): CadreError {
  const found = samples.find((e) => e.constructor === cls);
  if (!found) throw new Error(`no sample for ${cls.name}`);
  return found;
}

/** Sends `err` as an error reply frame and returns what the caller's decodeAs throws. */
const overTheWire = (err: CadreError): CadreError =>
  thrown(() => decodeAs(encode("error", { error: err.toWire() }, { sender: "s1", cid: "c1" }), "sup.status.ok"));

const retryable = new Set<ErrorClass>([
  ConcurrentModificationError,
  ResourceExhaustedError,
  InvalidAgentResponseError,
  BehaviourFailedError,
  TimeoutError,
  DeadlockVictimError,
  HookFailedError,
  ThrottledError,
  UnavailableError,
]);

describe("error classes", () => {
  it("the samples cover every class in errorClasses exactly once", () => {
    expect(samples.map((e) => e.constructor)).toEqual([...errorClasses]);
  });

  it("registers every class of this package, and every error class it exports is one of them", () => {
    expect(CadreError.registered()).toEqual([...errorClasses]);
    const exported = Object.values(errorsModule).filter(
      (v: unknown): v is ErrorClass => typeof v === "function" && v.prototype instanceof CadreError,
    );
    expect(exported.length).toBeGreaterThan(0);
    expect(new Set(exported)).toEqual(new Set(CadreError.registered()));
  });

  it("every class has its own distinct code", () => {
    expect(new Set(errorClasses.map((c) => c.code)).size).toBe(errorClasses.length);
  });

  it("refuses a second class under a code already taken", () => {
    class Impostor extends CadreError {
      static readonly code = ProtocolError.code;
    }
    expect(() => CadreError.register(Impostor, (w) => new Impostor(w.code, w.message))).toThrow(
      "error code PROTOCOL_ERROR of Impostor is already used by ProtocolError",
    );
    expect(fromWire(new ProtocolError("x").toWire())).toBeInstanceOf(ProtocolError);
  });

  // Enumerated from the registry: a class registered without a sample, or whose rebuild loses
  // its class, code, retryable flag or message, fails here.
  for (const cls of CadreError.registered()) {
    it(`${cls.name} round-trips through an error frame with its class, code, retryable flag and message`, () => {
      const original = sampleOf(cls);
      const rebuilt = overTheWire(original);
      expect(rebuilt).toBeInstanceOf(cls);
      expect(rebuilt.code).toBe(cls.code);
      expect(rebuilt.retryable).toBe(original.retryable);
      expect(rebuilt.message).toBe(original.message);
      expect(rebuilt.data).toEqual(original.data);
    });
  }

  for (const cls of errorClasses) {
    it(`${cls.name} has the class name as its name and the static code as its code`, () => {
      const err = sampleOf(cls);
      expect(err).toBeInstanceOf(cls);
      expect(err).toBeInstanceOf(CadreError);
      expect(err).toBeInstanceOf(Error);
      expect(err.name).toBe(cls.name);
      expect(err.code).toBe(cls.code);
      expect(err.stack).toContain(cls.name);
    });

    it(`${cls.name} is ${retryable.has(cls) ? "retryable" : "not retryable"}`, () => {
      expect(sampleOf(cls).retryable).toBe(retryable.has(cls));
    });

    it(`${cls.name} comes back from its wire form as the same class with the same code, message and data`, () => {
      const original = sampleOf(cls);
      const wire = JSON.parse(JSON.stringify(original.toWire()));
      const rebuilt = fromWire(wire);
      expect(rebuilt).toBeInstanceOf(cls);
      expect(rebuilt.name).toBe(cls.name);
      expect(rebuilt.code).toBe(original.code);
      expect(rebuilt.message).toBe(original.message);
      expect(rebuilt.data).toEqual(original.data);
      expect(rebuilt.retryable).toBe(original.retryable);
    });
  }
});

describe("messages say what happened and what to do", () => {
  it("a delegation cycle names the closing kind and the whole chain", () => {
    const err = new CircularDelegationError(["a", "b", "a"]);
    expect(err.message).toBe(
      'delegation to "a" closes a cycle (chain: a > b > a); change the team so no kind delegates back to one of its delegators',
    );
    expect(err.chain).toEqual(["a", "b", "a"]);
  });

  it("an exceeded depth gives the depth, the limit and the chain", () => {
    const err = new DelegationDepthExceededError(["a", "b", "c"], 2, 1);
    expect(err.message).toBe(
      "delegation depth 2 exceeds max_delegation_depth 1 (chain: a > b > c); flatten the team or raise the limit",
    );
    expect(err.data).toEqual({ chain: ["a", "b", "c"], depth: 2, limit: 1 });
  });

  it("an exhausted resource gives the count and the limit", () => {
    const err = new ResourceExhaustedError("concurrent agents", 50, 50);
    expect(err.message).toBe(
      "concurrent agents is at its limit (50 of 50); wait for work to finish or raise the limit",
    );
    expect(err.data).toEqual({ resource: "concurrent agents", limit: 50, count: 50, retryable: true });
  });

  it("an exhaustion waiting cannot lift stays not retryable across the wire, with its advice", () => {
    const err = new ResourceExhaustedError("agents of team t", 2, 2, { retryable: false, fix: "lower the replicas" });
    const back = fromWire(err.toWire());
    expect(back.retryable).toBe(false);
    expect(back.message).toBe("agents of team t is at its limit (2 of 2); lower the replicas");
  });

  it("an invalid agent response lists each bad field, with (root) for the whole output", () => {
    const err = new InvalidAgentResponseError("qa", [
      { path: "", message: "expected object" },
      { path: "a.b", message: "required" },
    ]);
    expect(err.message).toBe('output of kind "qa" does not match its schema: (root): expected object; a.b: required');
  });

  it("a concurrent modification tells the caller to read again", () => {
    const err = new ConcurrentModificationError("tasks.w1-r", 4);
    expect(err.message).toBe('state key "tasks.w1-r" changed since revision 4; read it again and retry');
    expect(err.data).toEqual({ key: "tasks.w1-r", expectedRevision: 4 });
  });
});

describe("fromWire", () => {
  it("puts the retryable flag on the wire", () => {
    expect(new TimeoutError("x", 1).toWire()).toEqual({
      code: "TIMEOUT",
      message: "x did not finish within 1 ms",
      data: { what: "x", timeoutMs: 1 },
      retryable: true,
    });
    expect(new NotFoundError("workflow", "w1").toWire().retryable).toBe(false);
  });

  it("keeps the message as it was sent even when the class would word it differently", () => {
    const err = fromWire({
      code: "TIMEOUT",
      message: "attempt 3 ran out of time",
      data: { what: "attempt", timeoutMs: 10 },
    });
    expect(err).toBeInstanceOf(TimeoutError);
    expect(err.message).toBe("attempt 3 ran out of time");
    expect(err.retryable).toBe(true);
  });

  it("turns an unknown code into INTERNAL that keeps the message, the data and the original code", () => {
    const err = fromWire({ code: "RATE_LIMITED", message: "slow down", data: { perSecond: 5 } });
    expect(err).toBeInstanceOf(InternalError);
    expect(err.code).toBe("INTERNAL");
    expect(err.message).toBe("slow down");
    expect(err.data).toEqual({ perSecond: 5, originalCode: "RATE_LIMITED" });
    expect(err.retryable).toBe(false);
  });

  it("keeps the sender's retryable flag for an unknown code", () => {
    const err = fromWire({ code: "RATE_LIMITED", message: "slow down", data: {}, retryable: true });
    expect(err).toBeInstanceOf(InternalError);
    expect(err.code).toBe("INTERNAL");
    expect(err.retryable).toBe(true);
    expect(err.data).toEqual({ originalCode: "RATE_LIMITED" });
  });

  it("keeps the sender's retryable flag for an unknown code through an error frame", () => {
    const frame = encode(
      "error",
      { error: { code: "NEW_IN_V2", message: "try later", data: { n: 1 }, retryable: true } },
      { sender: "s1" },
    );
    const err = thrown(() => decodeAs(frame, "sup.status.ok"));
    expect(err).toBeInstanceOf(InternalError);
    expect(err.retryable).toBe(true);
    expect(err.message).toBe("try later");
    expect(err.data).toEqual({ n: 1, originalCode: "NEW_IN_V2" });
  });

  it("keeps the sender's retryable flag for a known code when it differs from the class's", () => {
    const err = fromWire({ ...new NotFoundError("workflow", "w1").toWire(), retryable: true });
    expect(err).toBeInstanceOf(NotFoundError);
    expect(err.retryable).toBe(true);
  });

  it("takes the class's retryable flag when an older sender sent none", () => {
    const { retryable: _r, ...old } = new TimeoutError("attempt", 10).toWire();
    expect(fromWire(old).retryable).toBe(true);
  });

  it("turns an unknown code without data into INTERNAL with the original code", () => {
    const err = fromWire({ code: "NEW_IN_V2", message: "something new" });
    expect(err.code).toBe("INTERNAL");
    expect(err.data).toEqual({ originalCode: "NEW_IN_V2" });
  });

  it("rebuilds the structured fields of a delegation error, not only its data", () => {
    const err = fromWire(new CircularDelegationError(["x", "y", "x"]).toWire());
    expect(err).toBeInstanceOf(CircularDelegationError);
    expect((err as CircularDelegationError).chain).toEqual(["x", "y", "x"]);
  });

  it("rebuilds a version mismatch with its expected and received versions", () => {
    const err = fromWire(new ProtocolVersionMismatchError(1, 3).toWire()) as ProtocolVersionMismatchError;
    expect(err.expected).toBe(1);
    expect(err.received).toBe(3);
  });
});

describe("toCadreError", () => {
  it("turns a plain Error into INTERNAL with the same message and the error as cause", () => {
    const cause = new Error("socket hang up");
    const err = toCadreError(cause);
    expect(err).toBeInstanceOf(InternalError);
    expect(err.code).toBe("INTERNAL");
    expect(err.message).toBe("socket hang up");
    expect(err.cause).toBe(cause);
    expect(err.retryable).toBe(false);
  });

  it("turns a thrown non-error value into INTERNAL with its text", () => {
    const err = toCadreError("nope");
    expect(err.code).toBe("INTERNAL");
    expect(err.message).toBe("nope");
    expect(err.cause).toBe("nope");
  });

  it("returns a CadreError unchanged", () => {
    const original = new NotFoundError("workflow", "w1");
    expect(toCadreError(original)).toBe(original);
  });

  it("rebuilds an error-shaped object with a known code, as sent by another copy of the package", () => {
    const foreign = {
      code: "CONCURRENT_MODIFICATION",
      message: "lost the race",
      data: { key: "k", expectedRevision: 2 },
    };
    const err = toCadreError(foreign);
    expect(err).toBeInstanceOf(ConcurrentModificationError);
    expect(err.message).toBe("lost the race");
    expect(err.retryable).toBe(true);
  });

  it("wraps a Node system error, whose code Cadre does not know, as INTERNAL", () => {
    const sys = Object.assign(new Error("connect ECONNREFUSED 127.0.0.1:4222"), { code: "ECONNREFUSED" });
    const err = toCadreError(sys);
    expect(err.code).toBe("INTERNAL");
    expect(err.message).toBe("connect ECONNREFUSED 127.0.0.1:4222");
    expect(err.cause).toBe(sys);
  });
});

describe("error options", () => {
  it("keeps the cause given to a class that accepts options", () => {
    const cause = new RangeError("bad offset");
    expect(new ProtocolError("frame is not valid msgpack", {}, { cause }).cause).toBe(cause);
    expect(new BehaviourFailedError("crashed", {}, { cause }).cause).toBe(cause);
  });

  it("has no cause when none was given", () => {
    expect("cause" in new InternalError("x")).toBe(false);
  });
});

describe("formatIssues", () => {
  it("joins each issue's path with dots and keeps its message", () => {
    expect(
      formatIssues([
        { path: ["kinds", "backend", "behaviour", "delegate", 0, "kind"], message: "unknown kind" },
        { path: [], message: "bad root" },
      ]),
    ).toEqual([
      { path: "kinds.backend.behaviour.delegate.0.kind", message: "unknown kind" },
      { path: "", message: "bad root" },
    ]);
  });
});
