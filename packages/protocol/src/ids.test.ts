import { describe, expect, it } from "vitest";
import { isToken, newWorkflowId, randomId } from "./index.js";

describe("randomId", () => {
  it("gives ids of the length asked, in base 36, different across refills of the pool", () => {
    // 2,000 ids of 12 characters draw well over one 4,096-byte pool.
    const ids = Array.from({ length: 2000 }, () => randomId(12));
    for (const id of ids) expect(id).toMatch(/^[0-9a-z]{12}$/);
    expect(new Set(ids).size).toBe(ids.length);
    expect(randomId(40)).toHaveLength(40);
    expect(isToken(newWorkflowId())).toBe(true);
  });

  it("uses every character about equally often (no bias toward the first four)", () => {
    const counts = new Map<string, number>();
    for (const c of randomId(36 * 2000)) counts.set(c, (counts.get(c) ?? 0) + 1);
    expect(counts.size).toBe(36);
    // 2,000 expected each (standard deviation 44; the bounds are over 5 of them); the modulo
    // bias of 256 % 36 would give each of "0".."3" about 2,250.
    for (const n of counts.values()) {
      expect(n).toBeGreaterThan(1770);
      expect(n).toBeLessThan(2230);
    }
  });
});
