import { mulberry32 } from "@cadre/runtime";
import { describe, expect, it } from "vitest";
import { erf, mannKendall, median, TrendDetector, type TrendFinding, theilSen } from "./trend.js";

/** Multiplicative noise uniform in ±5%. */
const noise5 = (rand: () => number) => 1 + 0.1 * (rand() - 0.5);

const OPTIONS = { windowSize: 30, minConfidence: 0.95, minRelativeSlope: 0.1 };
const STEP_MS = 5000;

/** Feeds `values` to `series` one per STEP_MS and returns every finding with its sample index. */
function feed(detector: TrendDetector, series: string, values: number[], startIndex = 0) {
  const found: { index: number; finding: TrendFinding }[] = [];
  values.forEach((v, k) => {
    const index = startIndex + k;
    const finding = detector.add(series, index * STEP_MS, v);
    if (finding !== undefined) found.push({ index, finding });
  });
  return found;
}

/** `n` samples of a line from `base` changing by `change` (a fraction of base) per window, with ±5% noise. */
function ramp(n: number, base: number, change: number, seed: number, from = 0): number[] {
  const rand = mulberry32(seed);
  const perSample = (base * change) / (OPTIONS.windowSize - 1);
  return Array.from({ length: n }, (_, i) => (base + perSample * (from + i)) * noise5(rand));
}

describe("median", () => {
  it("takes the middle value, or the mean of the middle two", () => {
    expect(median([3, 1, 2])).toBe(2);
    expect(median([4, 1, 3, 2])).toBe(2.5);
    expect(median([])).toBeNaN();
  });
});

describe("theilSen", () => {
  it("recovers an exact line", () => {
    const points = [0, 1, 2, 3, 4].map((t) => ({ t, v: 3 * t - 2 }));
    expect(theilSen(points)).toEqual({ slope: 3, intercept: -2 });
  });

  it("ignores one huge outlier: the slope and intercept are the line's", () => {
    const points = Array.from({ length: 11 }, (_, t) => ({ t, v: t === 5 ? 1e6 : 2 * t + 1 }));
    expect(theilSen(points)).toEqual({ slope: 2, intercept: 1 });
  });

  it("skips pairs with equal times and refuses when no pair has distinct times", () => {
    expect(
      theilSen([
        { t: 0, v: 0 },
        { t: 0, v: 100 },
        { t: 10, v: 10 },
        { t: 20, v: 20 },
      ]).slope,
    ).toBeCloseTo(1, 12);
    expect(() => theilSen([{ t: 1, v: 1 }])).toThrow(RangeError);
    expect(() => theilSen([])).toThrow(RangeError);
    expect(() =>
      theilSen([
        { t: 1, v: 1 },
        { t: 1, v: 2 },
      ]),
    ).toThrow(RangeError);
  });
});

describe("erf", () => {
  it("matches tabulated values within Abramowitz-Stegun's 1.5e-7", () => {
    const table: [number, number][] = [
      [0, 0],
      [0.5, 0.5204998778],
      [1, 0.8427007929],
      [2, 0.995322265],
      [3, 0.9999779095],
    ];
    for (const [x, e] of table) {
      expect(Math.abs(erf(x) - e)).toBeLessThan(1.5e-7);
      expect(Math.abs(erf(-x) + e)).toBeLessThan(1.5e-7);
    }
  });
});

describe("mannKendall", () => {
  it("[1,2,3,4,5]: S = 10, var 50/3, z = 9/√var, p ≈ 0.0275, increasing", () => {
    const r = mannKendall([1, 2, 3, 4, 5]);
    expect(r.s).toBe(10);
    expect(r.varS).toBeCloseTo(50 / 3, 12);
    expect(r.z).toBeCloseTo(9 / Math.sqrt(50 / 3), 12);
    expect(r.p).toBeCloseTo(0.0275, 4);
    expect(r.trend).toBe("increasing");
  });

  it("is antisymmetric: a decreasing series gives -S, -z, the same p", () => {
    const r = mannKendall([5, 4, 3, 2, 1]);
    expect(r.s).toBe(-10);
    expect(r.z).toBeCloseTo(-9 / Math.sqrt(50 / 3), 12);
    expect(r.p).toBeCloseTo(0.0275, 4);
    expect(r.trend).toBe("decreasing");
  });

  it("counts ties as 0 in S and corrects the variance for them", () => {
    const r = mannKendall([1, 2, 2, 3]);
    expect(r.s).toBe(5);
    // (4·3·13 - 2·1·9) / 18: one group of two equal values.
    expect(r.varS).toBeCloseTo(138 / 18, 12);
    expect(r.z).toBeCloseTo(4 / Math.sqrt(138 / 18), 12);
  });

  it("gives no trend for a constant series (all ties: var 0) and for too little evidence", () => {
    expect(mannKendall([3, 3, 3, 3])).toEqual({ s: 0, varS: 0, z: 0, p: 1, trend: "none" });
    const short = mannKendall([1, 2, 3]);
    expect(short.s).toBe(3);
    expect(short.p).toBeGreaterThan(0.25);
    expect(short.trend).toBe("none");
    expect(mannKendall([]).trend).toBe("none");
  });

  it("honours alpha", () => {
    expect(mannKendall([1, 2, 3, 4, 5], 0.01).trend).toBe("none");
  });
});

describe("TrendDetector", () => {
  it("raises nothing on flat ±5% noise over many windows", () => {
    for (const seed of [1, 2, 3, 42, 1234]) {
      const rand = mulberry32(seed);
      const detector = new TrendDetector(OPTIONS);
      const values = Array.from({ length: 30 * OPTIONS.windowSize }, () => 100 * noise5(rand));
      expect(feed(detector, `flat-${seed}`, values)).toEqual([]);
    }
  });

  it("detects a 15% rise over the window under ±5% noise as increasing, as soon as the window is full", () => {
    const detector = new TrendDetector(OPTIONS);
    const found = feed(detector, "event_queue_depth", ramp(30, 1000, 0.15, 7));
    expect(found.map((f) => f.index)).toEqual([29]);
    const finding = found[0]?.finding;
    expect(finding).toMatchObject({
      series: "event_queue_depth",
      direction: "increasing",
      windowMs: 29 * STEP_MS,
      samples: 30,
    });
    expect(finding?.confidence).toBeGreaterThanOrEqual(0.95);
    // 150 over the window against a median near 1075; 150 / 145 s.
    expect(finding?.relativeChange).toBeGreaterThan(0.1);
    expect(finding?.relativeChange).toBeCloseTo(150 / 1075, 1);
    expect(finding?.slopePerSecond).toBeCloseTo(150 / 145, 0);
  });

  it("detects a 15% fall over the window as decreasing", () => {
    const detector = new TrendDetector(OPTIONS);
    const found = feed(detector, "memory_usage_percent", ramp(30, 80, -0.15, 11));
    expect(found).toHaveLength(1);
    const finding = found[0]?.finding;
    expect(finding?.direction).toBe("decreasing");
    expect(finding?.confidence).toBeGreaterThanOrEqual(0.95);
    expect(finding?.relativeChange).toBeLessThan(-0.1);
    expect(finding?.slopePerSecond).toBeLessThan(0);
  });

  it("detects the drift on every seed tried", () => {
    for (const seed of [1, 2, 3, 42, 1234]) {
      const up = feed(new TrendDetector(OPTIONS), "up", ramp(30, 100, 0.15, seed));
      const down = feed(new TrendDetector(OPTIONS), "down", ramp(30, 100, -0.15, seed));
      expect([seed, up.map((f) => f.finding.direction)]).toEqual([seed, ["increasing"]]);
      expect([seed, down.map((f) => f.finding.direction)]).toEqual([seed, ["decreasing"]]);
    }
  });

  it("judges nothing until the window is full", () => {
    const detector = new TrendDetector(OPTIONS);
    expect(feed(detector, "s", ramp(29, 100, 1, 5))).toEqual([]);
  });

  it("ignores a significant but small drift (below minRelativeSlope), and reports it with a lower bar", () => {
    const line = Array.from({ length: 30 }, (_, i) => 100 + (2 * i) / 29); // 2% over the window, no noise
    expect(mannKendall(line).p).toBeLessThan(1e-6);
    expect(feed(new TrendDetector(OPTIONS), "s", line)).toEqual([]);
    const lowBar = feed(new TrendDetector({ ...OPTIONS, minRelativeSlope: 0.01 }), "s", line);
    expect(lowBar.map((f) => f.finding.direction)).toEqual(["increasing"]);
  });

  it("reports a continuing drift once per window replaced, not on every sample", () => {
    const detector = new TrendDetector(OPTIONS);
    const found = feed(detector, "s", ramp(100, 100, 0.3, 9));
    expect(found.map((f) => f.index)).toEqual([29, 59, 89]);
  });

  it("keeps series apart: one series' quiet period does not silence another", () => {
    const detector = new TrendDetector(OPTIONS);
    const a = ramp(30, 100, 0.3, 1);
    const b = ramp(30, 100, 0.3, 2);
    const found: string[] = [];
    for (let i = 0; i < 30; i++) {
      if (detector.add("a", i * STEP_MS, a[i] ?? Number.NaN)) found.push(`a@${i}`);
      if (detector.add("b", i * STEP_MS, b[i] ?? Number.NaN)) found.push(`b@${i}`);
    }
    expect(found).toEqual(["a@29", "b@29"]);
  });

  it("reports a reversal at once, without waiting out the quiet period of the other direction", () => {
    const detector = new TrendDetector(OPTIONS);
    const up = feed(detector, "s", ramp(30, 100, 0.3, 3));
    expect(up.map((f) => [f.index, f.finding.direction])).toEqual([[29, "increasing"]]);
    // From 130 down by 60% of 100 per window.
    const rand = mulberry32(4);
    const down = Array.from({ length: 30 }, (_, i) => (130 - (60 * (i + 1)) / 29) * noise5(rand));
    const reversed = feed(detector, "s", down, 30);
    expect(reversed.length).toBeGreaterThan(0);
    expect(reversed[0]?.finding.direction).toBe("decreasing");
    expect(reversed[0]?.index).toBeLessThan(59);
  });

  it("ignores NaN, infinite and out-of-order samples: they neither count nor fill the window", () => {
    const detector = new TrendDetector(OPTIONS);
    const values = ramp(30, 100, 0.3, 8);
    const found: number[] = [];
    values.forEach((v, i) => {
      if (detector.add("s", i * STEP_MS, v)) found.push(i);
      if (i < 29) {
        expect(detector.add("s", i * STEP_MS + 1, Number.NaN)).toBeUndefined();
        expect(detector.add("s", i * STEP_MS + 2, Number.POSITIVE_INFINITY)).toBeUndefined();
        expect(detector.add("s", i * STEP_MS - 1, 1e9)).toBeUndefined();
      }
    });
    expect(found).toEqual([29]);
  });

  it("reports nothing when the window's median is 0 or its samples share one time", () => {
    const detector = new TrendDetector(OPTIONS);
    const mostlyZero = Array.from({ length: 30 }, (_, i) => (i < 20 ? 0 : i));
    expect(feed(detector, "zero", mostlyZero)).toEqual([]);
    for (let i = 0; i < 30; i++) expect(detector.add("instant", 1000, i)).toBeUndefined();
  });

  it("forgets a series", () => {
    const detector = new TrendDetector(OPTIONS);
    const values = ramp(30, 100, 0.3, 6);
    expect(feed(detector, "s", values.slice(0, 29))).toEqual([]);
    detector.forget("s");
    expect(detector.add("s", 29 * STEP_MS, values[29] ?? 0)).toBeUndefined();
  });

  it("refuses bad options", () => {
    expect(() => new TrendDetector({ ...OPTIONS, windowSize: 1 })).toThrow(RangeError);
    expect(() => new TrendDetector({ ...OPTIONS, windowSize: 10.5 })).toThrow(RangeError);
    expect(() => new TrendDetector({ ...OPTIONS, minConfidence: 1 })).toThrow(RangeError);
    expect(() => new TrendDetector({ ...OPTIONS, minRelativeSlope: -0.1 })).toThrow(RangeError);
  });
});
