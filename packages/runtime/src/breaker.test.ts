import { CadreError, ProtocolError } from "@cadre/protocol";
import { rejection } from "@cadre/protocol/testing";
import { describe, expect, it, vi } from "vitest";
import {
  type BreakerOptions,
  type BreakerTransition,
  CircuitOpenError,
  createBreaker,
  DEFAULT_BREAKERS,
} from "./breaker.js";
import { ManualClock } from "./clock.js";

/** A failure the breaker counts: the dependency may recover. */
const flaky = (): CadreError => new CadreError("UNAVAILABLE", "dependency unavailable", { retryable: true });
const fail = (): Promise<never> => Promise.reject(flaky());
const ok =
  <T>(v: T) =>
  () =>
    Promise.resolve(v);

function setup(opts: Partial<BreakerOptions> = {}) {
  const clock = new ManualClock(1_000);
  const transitions: BreakerTransition[] = [];
  const breaker = createBreaker({
    name: "test",
    threshold: 3,
    resetTimeoutMs: 1_000,
    clock,
    onTransition: (t) => transitions.push(t),
    ...opts,
  });
  return { clock, transitions, breaker };
}

async function failTimes(breaker: { call: (fn: () => Promise<never>) => Promise<unknown> }, n: number) {
  for (let i = 0; i < n; i++) await breaker.call(fail).catch(() => {});
}

describe("createBreaker", () => {
  it("passes results and errors through while closed", async () => {
    const { breaker } = setup();
    await expect(breaker.call(ok(42))).resolves.toBe(42);
    const err = await rejection(breaker.call(fail));
    expect(err.code).toBe("UNAVAILABLE");
    expect(breaker.state).toBe("closed");
  });

  it("opens after `threshold` consecutive retryable failures", async () => {
    const { breaker, transitions, clock } = setup();
    await failTimes(breaker, 2);
    expect(breaker.state).toBe("closed");
    await failTimes(breaker, 1);
    expect(breaker.state).toBe("open");
    expect(transitions).toEqual([{ breaker: "test", from: "closed", to: "open", at: clock.now(), failures: 3 }]);
  });

  it("does not count non-retryable errors, which are the caller's fault", async () => {
    const { breaker } = setup();
    for (let i = 0; i < 10; i++) {
      const err = await rejection(breaker.call(() => Promise.reject(new ProtocolError("bad field"))));
      expect(err.code).toBe("PROTOCOL_ERROR");
    }
    await expect(breaker.call(() => Promise.reject(new Error("plain")))).rejects.toThrow("plain");
    expect(breaker.state).toBe("closed");
    // They do not reset the count either: two failures before plus one after still open it.
    await failTimes(breaker, 2);
    await breaker.call(() => Promise.reject(new ProtocolError("bad field"))).catch(() => {});
    await failTimes(breaker, 1);
    expect(breaker.state).toBe("open");
  });

  it("resets the failure count on a success", async () => {
    const { breaker } = setup();
    await failTimes(breaker, 2);
    await breaker.call(ok("fine"));
    await failTimes(breaker, 2);
    expect(breaker.state).toBe("closed");
    await failTimes(breaker, 1);
    expect(breaker.state).toBe("open");
  });

  it("rejects at once with CIRCUIT_OPEN without calling fn while open", async () => {
    const { breaker, clock } = setup();
    await failTimes(breaker, 3);
    clock.advance(400);
    const fn = vi.fn(ok(1));
    const err = await rejection(breaker.call(fn));
    expect(fn).not.toHaveBeenCalled();
    expect(err).toBeInstanceOf(CircuitOpenError);
    expect(err.name).toBe("CircuitOpenError");
    expect(err.code).toBe("CIRCUIT_OPEN");
    expect(CircuitOpenError.code).toBe("CIRCUIT_OPEN");
    expect(err.retryable).toBe(true);
    expect(err.data).toEqual({ breaker: "test", retryInMs: 600 });
    expect(err.message).toBe(
      'circuit "test" is open after repeated failures, so the call was not made; retry in 600 ms',
    );
    expect(err.toWire()).toEqual({
      code: "CIRCUIT_OPEN",
      message: err.message,
      data: { breaker: "test", retryInMs: 600 },
    });
  });

  it("moves to halfOpen after exactly resetTimeoutMs and not 1 ms before", async () => {
    const { breaker, clock, transitions } = setup();
    await failTimes(breaker, 3);
    const openedAt = clock.now();
    clock.advance(999);
    expect(breaker.state).toBe("open");
    clock.advance(1);
    expect(breaker.state).toBe("halfOpen");
    expect(transitions.at(-1)).toEqual({
      breaker: "test",
      from: "open",
      to: "halfOpen",
      at: openedAt + 1_000,
      failures: 3,
    });
  });

  it("closes when the halfOpen trial succeeds", async () => {
    const { breaker, clock, transitions } = setup();
    await failTimes(breaker, 3);
    clock.advance(1_000);
    await expect(breaker.call(ok("back"))).resolves.toBe("back");
    expect(breaker.state).toBe("closed");
    expect(transitions.map((t) => `${t.from}>${t.to}`)).toEqual(["closed>open", "open>halfOpen", "halfOpen>closed"]);
    expect(transitions.at(-1)).toMatchObject({ failures: 0, at: clock.now() });
    // A clean slate: it takes `threshold` new failures to open again.
    await failTimes(breaker, 2);
    expect(breaker.state).toBe("closed");
  });

  it("opens again with a restarted timer when the halfOpen trial fails", async () => {
    const { breaker, clock, transitions } = setup();
    await failTimes(breaker, 3);
    clock.advance(1_000);
    clock.advance(500); // halfOpen for a while before the trial
    await failTimes(breaker, 1);
    expect(breaker.state).toBe("open");
    expect(transitions.at(-1)).toEqual({ breaker: "test", from: "halfOpen", to: "open", at: clock.now(), failures: 4 });
    const err = await rejection(breaker.call(ok(1)));
    expect(err.data).toEqual({ breaker: "test", retryInMs: 1_000 });
    clock.advance(999);
    expect(breaker.state).toBe("open");
    clock.advance(1);
    expect(breaker.state).toBe("halfOpen");
  });

  it("lets exactly one trial call through in halfOpen", async () => {
    const { breaker, clock } = setup();
    await failTimes(breaker, 3);
    clock.advance(1_000);
    let release: (v: string) => void = () => {};
    const trial = breaker.call(() => new Promise<string>((r) => (release = r)));
    const second = vi.fn(ok("second"));
    const err = await rejection(breaker.call(second));
    expect(second).not.toHaveBeenCalled();
    expect(err.code).toBe("CIRCUIT_OPEN");
    expect(err.data).toEqual({ breaker: "test", retryInMs: 0 });
    expect(breaker.state).toBe("halfOpen");
    release("first");
    await expect(trial).resolves.toBe("first");
    expect(breaker.state).toBe("closed");
    await expect(breaker.call(second)).resolves.toBe("second");
  });

  it("frees the trial slot when the trial fails with a non-retryable error", async () => {
    const { breaker, clock } = setup();
    await failTimes(breaker, 3);
    clock.advance(1_000);
    await breaker.call(() => Promise.reject(new ProtocolError("bad"))).catch(() => {});
    expect(breaker.state).toBe("halfOpen");
    await expect(breaker.call(ok("next trial"))).resolves.toBe("next trial");
    expect(breaker.state).toBe("closed");
  });

  it("ignores late results of calls started before the circuit opened", async () => {
    const { breaker, clock } = setup();
    let release: (v: string) => void = () => {};
    const slow = breaker.call(() => new Promise<string>((r) => (release = r)));
    await failTimes(breaker, 3);
    clock.advance(1_000);
    release("late");
    await expect(slow).resolves.toBe("late");
    expect(breaker.state).toBe("halfOpen");
  });

  it("opens on the failure rate over a window when a rule is given", async () => {
    const { breaker } = setup({
      threshold: 100,
      isFailure: () => true,
      failureRate: { threshold: 0.1, window: 20, minSamples: 10 },
    });
    // 1 failure in 10 is a rate of 0.1: not above the threshold.
    for (let i = 0; i < 9; i++) await breaker.call(ok(i));
    await breaker.call(() => Promise.reject(new Error("x"))).catch(() => {});
    expect(breaker.state).toBe("closed");
    // 2 in 11 is above it.
    await breaker.call(() => Promise.reject(new Error("x"))).catch(() => {});
    expect(breaker.state).toBe("open");
  });

  it("does not open on the rate before minSamples calls", async () => {
    const { breaker } = setup({
      threshold: 100,
      isFailure: () => true,
      failureRate: { threshold: 0.1, window: 20, minSamples: 10 },
    });
    for (let i = 0; i < 9; i++) await breaker.call(() => Promise.reject(new Error("x"))).catch(() => {});
    expect(breaker.state).toBe("closed");
    await breaker.call(() => Promise.reject(new Error("x"))).catch(() => {});
    expect(breaker.state).toBe("open");
  });

  it("cancels its timer and refuses calls after stop", async () => {
    const { breaker, clock } = setup();
    await failTimes(breaker, 3);
    expect(clock.pending).toBe(1);
    breaker.stop();
    expect(clock.pending).toBe(0);
    await expect(breaker.call(ok(1))).rejects.toThrow('breaker "test" is stopped');
  });

  it("rejects nonsensical settings", () => {
    expect(() => createBreaker({ name: "x", threshold: 0, resetTimeoutMs: 1 })).toThrow(RangeError);
    expect(() => createBreaker({ name: "x", threshold: 1, resetTimeoutMs: -1 })).toThrow(RangeError);
  });

  it("ships the seed's thresholds and timeouts", () => {
    expect(DEFAULT_BREAKERS).toEqual({
      agent_spawn: { threshold: 10, resetTimeoutMs: 60_000 },
      state_update: { threshold: 5, resetTimeoutMs: 30_000 },
      event_publish: { threshold: 100, resetTimeoutMs: 10_000 },
      delegation: { threshold: 5, resetTimeoutMs: 120_000 },
    });
    expect(Object.isFrozen(DEFAULT_BREAKERS.state_update)).toBe(true);
  });
});
