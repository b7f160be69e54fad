import { describe, expect, it } from "vitest";
import { type MetricRule, ThresholdTracker } from "./thresholds.js";

const rule = (over: Partial<MetricRule> = {}): MetricRule => ({
  threshold: 100,
  clear: 90,
  action: "throttle",
  cooldownMs: 0,
  forMs: 0,
  ...over,
});

/** A tracker of the one metric "q" with `over` applied to the base rule. */
const trackerOf = (over: Partial<MetricRule> = {}) => new ThresholdTracker({ q: rule(over) });

/** Feeds `[time, value]` samples of "q" and returns each transition's `kind@at`. */
function run(tracker: ThresholdTracker, samples: [number, number | undefined][]): string[] {
  return samples.flatMap(([at, v]) => {
    const t = tracker.observe("q", v, at);
    return t === undefined ? [] : [`${t.kind}@${t.at}`];
  });
}

const phase = (tracker: ThresholdTracker, nowMs?: number) => tracker.state(nowMs)[0]?.state;

describe("ThresholdTracker", () => {
  it("crosses on the first sample above the threshold when forMs is 0, with the rule's details", () => {
    const tracker = trackerOf();
    expect(tracker.observe("q", 100, 0)).toBeUndefined(); // at the threshold is not above it
    expect(tracker.observe("q", 101, 1000)).toEqual({
      kind: "crossed",
      metric: "q",
      value: 101,
      threshold: 100,
      clear: 90,
      action: "throttle",
      at: 1000,
    });
    expect(phase(tracker)).toBe("crossed");
    expect(tracker.observe("q", 500, 2000)).toBeUndefined(); // already crossed: no repeat
  });

  it("stays pending until the value has been over for forMs, and restarts the clock after a dip", () => {
    const tracker = trackerOf({ forMs: 10_000 });
    expect(run(tracker, [[0, 120]])).toEqual([]);
    expect(tracker.state()[0]).toMatchObject({ state: "pending", since: 0, value: 120 });
    expect(run(tracker, [[5000, 130]])).toEqual([]);
    expect(run(tracker, [[9000, 95]])).toEqual([]); // a dip below the threshold resets the clock
    expect(phase(tracker)).toBe("ok");
    expect(run(tracker, [[12_000, 120]])).toEqual([]);
    expect(run(tracker, [[21_999, 120]])).toEqual([]);
    expect(phase(tracker)).toBe("pending");
    expect(run(tracker, [[22_000, 120]])).toEqual(["crossed@22000"]);
  });

  it("holds between clear and threshold (hysteresis) and clears at or below clear", () => {
    const tracker = trackerOf();
    expect(
      run(tracker, [
        [0, 150],
        [1, 99],
        [2, 91],
        [3, 100],
        [4, 90.5],
      ]),
    ).toEqual(["crossed@0"]);
    expect(tracker.state()[0]).toMatchObject({ state: "crossed", since: 0, value: 90.5 });
    const cleared = tracker.observe("q", 90, 5);
    expect(cleared).toMatchObject({ kind: "cleared", value: 90, threshold: 100, clear: 90, at: 5 });
  });

  it("suppresses a re-cross during the cooldown and allows it once the cooldown has passed", () => {
    const tracker = trackerOf({ cooldownMs: 60_000 });
    expect(
      run(tracker, [
        [0, 200],
        [1000, 10],
      ]),
    ).toEqual(["crossed@0", "cleared@1000"]);
    expect(tracker.state()[0]).toMatchObject({ state: "cooling", since: 1000 });
    expect(run(tracker, [[30_000, 200]])).toEqual([]);
    expect(run(tracker, [[60_999, 200]])).toEqual([]);
    expect(phase(tracker)).toBe("cooling");
    expect(run(tracker, [[61_000, 200]])).toEqual(["crossed@61000"]);
  });

  it("does not cross after the cooldown if the value has come back down", () => {
    const tracker = trackerOf({ cooldownMs: 10_000 });
    expect(
      run(tracker, [
        [0, 200],
        [1, 0],
        [5000, 200],
        [10_001, 50],
        [20_000, 99],
      ]),
    ).toEqual(["crossed@0", "cleared@1"]);
    expect(phase(tracker)).toBe("ok");
  });

  it("counts forMs during the cooldown: a value high throughout crosses as the cooldown ends", () => {
    const tracker = trackerOf({ cooldownMs: 10_000, forMs: 5000 });
    expect(
      run(tracker, [
        [0, 200],
        [5000, 200],
        [6000, 0],
        [7000, 200],
        [16_000, 200],
      ]),
    ).toEqual(["crossed@5000", "cleared@6000", "crossed@16000"]);
  });

  it("with cooldown 0 can cross again on the very next sample after a clear", () => {
    const tracker = trackerOf();
    expect(
      run(tracker, [
        [0, 101],
        [1, 0],
        [2, 101],
      ]),
    ).toEqual(["crossed@0", "cleared@1", "crossed@2"]);
  });

  it("ignores NaN, undefined and metrics without a rule", () => {
    const tracker = trackerOf();
    expect(run(tracker, [[0, 200]])).toEqual(["crossed@0"]);
    expect(run(tracker, [[1, Number.NaN]])).toEqual([]);
    expect(run(tracker, [[2, undefined]])).toEqual([]);
    expect(tracker.state()[0]).toMatchObject({ state: "crossed", value: 200 });
    expect(tracker.observe("unknown", 1e9, 3)).toBeUndefined();
    expect(tracker.state().map((s) => s.metric)).toEqual(["q"]);
  });

  it("reports every metric for the CLI table, before and after samples", () => {
    const tracker = new ThresholdTracker({
      event_queue_depth: rule({ threshold: 8000, clear: 7200, cooldownMs: 60_000 }),
      memory_usage_percent: rule({ threshold: 85, clear: 76.5, action: "cleanup" }),
    });
    expect(tracker.state()).toEqual([
      {
        metric: "event_queue_depth",
        value: undefined,
        threshold: 8000,
        clear: 7200,
        action: "throttle",
        state: "ok",
        since: undefined,
      },
      {
        metric: "memory_usage_percent",
        value: undefined,
        threshold: 85,
        clear: 76.5,
        action: "cleanup",
        state: "ok",
        since: undefined,
      },
    ]);
    tracker.observe("memory_usage_percent", 40, 500);
    tracker.observe("event_queue_depth", 9000, 1000);
    tracker.observe("event_queue_depth", 7000, 2000);
    expect(tracker.state().map((s) => [s.metric, s.value, s.state, s.since])).toEqual([
      ["event_queue_depth", 7000, "cooling", 2000],
      ["memory_usage_percent", 40, "ok", 500],
    ]);
    // Asked at a later time, the run-out cooldown shows as ok since its end.
    expect(tracker.state(62_000)[0]).toMatchObject({ state: "ok", since: 62_000 });
  });

  it("keeps metrics independent", () => {
    const tracker = new ThresholdTracker({ a: rule(), b: rule({ threshold: 10, clear: 5 }) });
    expect(tracker.observe("a", 50, 0)).toBeUndefined();
    expect(tracker.observe("b", 50, 0)?.metric).toBe("b");
    expect(tracker.state().map((s) => s.state)).toEqual(["ok", "crossed"]);
  });

  it("refuses a rule whose clear is above its threshold", () => {
    expect(() => new ThresholdTracker({ q: rule({ clear: 101 }) })).toThrow(/metric q: clear \(101\)/);
    expect(() => new ThresholdTracker({ q: rule({ forMs: -1 }) })).toThrow(RangeError);
  });
});
