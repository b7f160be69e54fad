import { describe, expect, it } from "vitest";
import { parseConfig } from "./config.js";
import { CircularDelegationError, DelegationDepthExceededError } from "./errors.js";
import { checkDelegation } from "./policy.js";
import { thrown } from "./testing.js";

/** A chain of `n` distinct kinds, k0 (the root) to k{n-1}. */
const kinds = (n: number): string[] => Array.from({ length: n }, (_, i) => `k${i}`);

describe("checkDelegation", () => {
  it("returns the chain extended with the target", () => {
    expect(checkDelegation(["engineering-director"], "backend-lead", 5)).toEqual([
      "engineering-director",
      "backend-lead",
    ]);
  });

  it("leaves the given chain unchanged", () => {
    const chain = Object.freeze(["a", "b"]);
    const next = checkDelegation(chain, "c", 5);
    expect(chain).toEqual(["a", "b"]);
    expect(next).not.toBe(chain);
  });

  it("refuses a delegation that closes a cycle a > b > c > a, carrying the chain", () => {
    const err = thrown(() => checkDelegation(["a", "b", "c"], "a", 5));
    expect(err).toBeInstanceOf(CircularDelegationError);
    expect(err.code).toBe("CIRCULAR_DELEGATION");
    expect(err.retryable).toBe(false);
    expect(err.data).toEqual({ chain: ["a", "b", "c", "a"] });
    expect((err as CircularDelegationError).chain).toEqual(["a", "b", "c", "a"]);
    expect(err.message).toContain('delegation to "a" closes a cycle');
    expect(err.message).toContain("a > b > c > a");
  });

  it("refuses a kind delegating to itself", () => {
    const err = thrown(() => checkDelegation(["a"], "a", 5));
    expect(err.code).toBe("CIRCULAR_DELEGATION");
    expect(err.data).toEqual({ chain: ["a", "a"] });
  });

  it("refuses a cycle back to a kind in the middle of the chain", () => {
    const err = thrown(() => checkDelegation(["a", "b", "c"], "b", 5));
    expect(err.code).toBe("CIRCULAR_DELEGATION");
    expect(err.message).toContain("a > b > c > b");
  });

  it("allows depth 5 with a limit of 5", () => {
    const next = checkDelegation(kinds(5), "k5", 5);
    expect(next).toEqual(kinds(6));
    expect(next.length - 1).toBe(5);
  });

  it("refuses depth 6 with a limit of 5, carrying the depth, the limit and the chain", () => {
    const err = thrown(() => checkDelegation(kinds(6), "k6", 5));
    expect(err).toBeInstanceOf(DelegationDepthExceededError);
    expect(err.code).toBe("DELEGATION_DEPTH_EXCEEDED");
    expect(err.retryable).toBe(false);
    expect(err.data).toEqual({ chain: kinds(7), depth: 6, limit: 5 });
    expect((err as DelegationDepthExceededError).chain).toEqual(kinds(7));
    expect(err.message).toContain("delegation depth 6 exceeds max_delegation_depth 5");
    expect(err.message).toContain("k0 > k1 > k2 > k3 > k4 > k5 > k6");
  });

  it("reports a cycle rather than the depth when a delegation is both too deep and circular", () => {
    const err = thrown(() => checkDelegation(kinds(6), "k0", 5));
    expect(err.code).toBe("CIRCULAR_DELEGATION");
  });

  it("with a limit of 1, lets the root delegate once and refuses the next level", () => {
    expect(checkDelegation(["root"], "lead", 1)).toEqual(["root", "lead"]);
    expect(thrown(() => checkDelegation(["root", "lead"], "agent", 1)).code).toBe("DELEGATION_DEPTH_EXCEEDED");
  });

  it("with the default configuration, allows depth 5 and refuses depth 6 as the seed prescribes", () => {
    const limit = parseConfig({}).orchestration_limits.max_delegation_depth;
    expect(checkDelegation(kinds(5), "k5", limit)).toHaveLength(6);
    expect(thrown(() => checkDelegation(kinds(6), "k6", limit)).data).toMatchObject({ depth: 6, limit: 5 });
  });
});
