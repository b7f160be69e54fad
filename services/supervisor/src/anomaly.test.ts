import { mulberry32 } from "@cadre/runtime";
import { describe, expect, it } from "vitest";
import { ResponseStats } from "./anomaly.js";

/** 30 ordinary responses: about 1,000 bytes and 200 ms, jittered. */
function trained() {
  const s = new ResponseStats({ z: 4, minSamples: 30 });
  const rng = mulberry32(3);
  for (let i = 0; i < 30; i++) {
    expect(
      s.observe("coder", { bytes: 1000 + Math.round(rng() * 200), latencyMs: 200 + Math.round(rng() * 40) }),
    ).toEqual([]);
  }
  return s;
}

describe("response anomalies (running mean and deviation per kind)", () => {
  it("flags a response ten times the usual size, with the evidence", () => {
    const [a, ...rest] = trained().observe("coder", { bytes: 10_000, latencyMs: 210 });
    expect(rest).toEqual([]);
    expect(a).toMatchObject({ metric: "bytes", value: 10_000 });
    expect(a?.mean).toBeGreaterThan(1000);
    expect(a?.mean).toBeLessThan(1200);
    expect(a?.z).toBeGreaterThan(4);
  });

  it("flags a response far slower than usual, and one suspiciously small", () => {
    const s = trained();
    expect(s.observe("coder", { bytes: 1100, latencyMs: 5000 }).map((a) => a.metric)).toEqual(["latencyMs"]);
    expect(s.observe("coder", { bytes: 2, latencyMs: 210 })[0]?.z).toBeLessThan(-4);
  });

  it("does not flag ordinary variation", () => {
    const s = trained();
    expect(s.observe("coder", { bytes: 1250, latencyMs: 250 })).toEqual([]);
  });

  it("judges nothing before minSamples responses of the kind, and keeps kinds apart", () => {
    const s = trained();
    expect(s.observe("reviewer", { bytes: 1_000_000, latencyMs: 1 })).toEqual([]);
    expect(s.observe("coder", { bytes: 1_000_000, latencyMs: 210 })).toHaveLength(1);
  });

  it("does not flag small differences in a kind whose answers are all alike (deviation floored at 10% of the mean)", () => {
    const s = new ResponseStats({ z: 4, minSamples: 30 });
    for (let i = 0; i < 30; i++) s.observe("fixed", { bytes: 500, latencyMs: 100 });
    expect(s.observe("fixed", { bytes: 540, latencyMs: 130 })).toEqual([]);
    expect(s.observe("fixed", { bytes: 900, latencyMs: 100 }).map((a) => a.metric)).toEqual(["bytes"]);
  });
});
