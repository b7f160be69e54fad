import { CadreError, ProtocolError, parseConfig } from "@cadre/protocol";
import { rejection } from "@cadre/protocol/testing";
import { describe, expect, it, vi } from "vitest";
import { retry } from "./backoff.js";
import { type BreakerOptions, Breakers, type BreakerTransition, CircuitOpenError, createBreaker } from "./breaker.js";
import { ManualClock } from "./clock.js";
import { type CadreMetrics, createMetrics } from "./metrics.js";

/** A failure the breaker counts: no answer came (as `request` reports a NATS timeout). */
const flaky = (): CadreError =>
  new CadreError("UNAVAILABLE", "no answer within 5000 ms", {
    retryable: true,
    cause: Object.assign(new Error("timeout"), { name: "TimeoutError" }),
  });
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

/** `cadre_circuit_state` of one breaker; undefined when it has no series. */
const circuit = async (m: CadreMetrics, breaker: string) =>
  (await m.circuitState.get()).values.find((v) => v.labels.breaker === breaker)?.value;

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
    expect(transitions).toEqual([
      { breaker: "test", from: "closed", to: "open", at: clock.now(), failures: 3, openForMs: 1_000 },
    ]);
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
      retryable: true,
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

  it("keeps cadre_circuit_state current: 0 from creation, 2 open, 1 half-open, 0 closed again", async () => {
    const metrics = createMetrics({ service: "breaker-test", defaultMetrics: false });
    const { breaker, clock } = setup({ metrics });
    expect(await circuit(metrics, "test")).toBe(0);
    await failTimes(breaker, 3);
    expect(await circuit(metrics, "test")).toBe(2);
    clock.advance(1_000);
    expect(await circuit(metrics, "test")).toBe(1);
    await failTimes(breaker, 1); // the trial fails: open again
    expect(await circuit(metrics, "test")).toBe(2);
    clock.advance(1_000);
    await breaker.call(ok(1));
    expect(await circuit(metrics, "test")).toBe(0);
    breaker.stop();
  });

  it("opens again with a restarted timer when the halfOpen trial fails", async () => {
    const { breaker, clock, transitions } = setup();
    await failTimes(breaker, 3);
    clock.advance(1_000);
    clock.advance(500); // halfOpen for a while before the trial
    await failTimes(breaker, 1);
    expect(breaker.state).toBe("open");
    expect(transitions.at(-1)).toEqual({
      breaker: "test",
      from: "halfOpen",
      to: "open",
      at: clock.now(),
      failures: 4,
      openForMs: 1_000,
    });
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

  it("ships the seed's thresholds, and its timeouts as the longest open time", () => {
    const { breakers } = parseConfig({});
    expect(breakers).toEqual({
      agent_spawn: { threshold: 10, resetTimeoutMs: 60_000, firstResetMs: 1000 },
      state_update: { threshold: 5, resetTimeoutMs: 30_000, firstResetMs: 1000 },
      event_publish: { threshold: 100, resetTimeoutMs: 10_000, firstResetMs: 1000 },
      delegation: { threshold: 5, resetTimeoutMs: 120_000, firstResetMs: 1000 },
      llm_provider: { threshold: 5, resetTimeoutMs: 60_000, firstResetMs: 1000 },
    });
  });

  it("stays open longer after each failed trial, doubling from firstResetMs up to resetTimeoutMs", async () => {
    const { breaker, transitions, clock } = setup({ threshold: 1, firstResetMs: 1_000, resetTimeoutMs: 3_000 });
    await failTimes(breaker, 1);
    const openFor: number[] = [];
    for (let i = 0; i < 4; i++) {
      const opened = transitions.at(-1);
      expect(opened?.to).toBe("open");
      openFor.push(opened?.openForMs ?? -1);
      const refused = await rejection(breaker.call(ok(1)));
      expect(refused.data.retryInMs).toBe(opened?.openForMs);
      clock.advance((opened?.openForMs ?? 0) - 1);
      expect(breaker.state).toBe("open");
      clock.advance(1);
      expect(breaker.state).toBe("halfOpen");
      await breaker.call(fail).catch(() => {});
    }
    expect(openFor).toEqual([1_000, 2_000, 3_000, 3_000]);
    // A successful trial closes it and forgets the openings: the next one is short again.
    clock.advance(3_000);
    await breaker.call(ok(1));
    expect(breaker.state).toBe("closed");
    await failTimes(breaker, 1);
    expect(transitions.at(-1)?.openForMs).toBe(1_000);
  });

  it("does not count contention (a lost compare-and-set, a quota, a deadlock victim, another open circuit) or error replies", async () => {
    const { breaker } = setup({ threshold: 1 });
    for (const code of ["CONCURRENT_MODIFICATION", "RESOURCE_EXHAUSTED", "DEADLOCK_VICTIM", "CIRCUIT_OPEN"]) {
      await breaker.call(() => Promise.reject(new CadreError(code, "busy", { retryable: true }))).catch(() => {});
    }
    expect(breaker.state).toBe("closed");
    // An error *reply*, even a retryable one, came from a live dependency: not counted either.
    await breaker
      .call(() => Promise.reject(new CadreError("UNAVAILABLE", "workflow is frozen", { retryable: true })))
      .catch(() => {});
    expect(breaker.state).toBe("closed");
    // A NATS timeout (not a Cadre error at all) does count.
    const timeout = Object.assign(new Error("timeout"), { name: "TimeoutError" });
    await breaker.call(() => Promise.reject(timeout)).catch(() => {});
    expect(breaker.state).toBe("open");
  });
});

describe("retry with a breaker", () => {
  it("waits until an open circuit allows a trial instead of spending its attempts on refusals", async () => {
    const { breaker, clock } = setup({ threshold: 1, resetTimeoutMs: 5_000 });
    await failTimes(breaker, 1);
    let calls = 0;
    const done = retry(
      () =>
        breaker.call(async () => {
          calls++;
          return "ok";
        }),
      { clock, maxAttempts: 2, baseMs: 1, maxMs: 1 },
    );
    await new Promise((r) => setImmediate(r));
    clock.advance(4_999);
    await new Promise((r) => setImmediate(r));
    expect(calls).toBe(0);
    clock.advance(1);
    await expect(done).resolves.toBe("ok");
    expect(calls).toBe(1);
    expect(breaker.state).toBe("closed");
  });
});

describe("Breakers", () => {
  it("makes one breaker per name, or per (name, key), with the configured settings, and publishes changes as events", async () => {
    const clock = new ManualClock(0);
    const seen: string[] = [];
    const breakers = new Breakers(parseConfig({ breakers: { agent_spawn: { threshold: 2 } } }).breakers, {
      clock,
      source: "sup-1",
      emit: (e) => seen.push(`${e.type} ${e.scope} ${e.data.breaker} ${e.data.key} ${e.data.source}`),
    });
    expect(breakers.get("delegation")).toBe(breakers.get("delegation"));
    const a = breakers.get("agent_spawn", "host-a");
    expect(breakers.get("agent_spawn", "host-b")).not.toBe(a);
    await failTimes(a, 2);
    expect(breakers.isOpen("agent_spawn", "host-a")).toBe(true);
    expect(breakers.isOpen("agent_spawn", "host-b")).toBe(false);
    expect(breakers.isOpen("agent_spawn", "host-never-seen")).toBe(false);
    expect(breakers.notClosed()).toEqual({ "agent_spawn:host-a": "open" });
    clock.advance(1000);
    expect(seen).toEqual([
      "CIRCUIT_OPENED agent_spawn agent_spawn:host-a host-a sup-1",
      "CIRCUIT_HALF_OPEN agent_spawn agent_spawn:host-a host-a sup-1",
    ]);
    breakers.stop();
  });

  it("passes its metrics to every breaker it makes, each labelled with its id", async () => {
    const metrics = createMetrics({ service: "breaker-test", defaultMetrics: false });
    const breakers = new Breakers(parseConfig({ breakers: { agent_spawn: { threshold: 2 } } }).breakers, {
      clock: new ManualClock(0),
      source: "sup-1",
      metrics,
    });
    expect(await circuit(metrics, "agent_spawn:host-a")).toBeUndefined();
    await failTimes(breakers.get("agent_spawn", "host-a"), 2);
    breakers.get("delegation");
    expect(await circuit(metrics, "agent_spawn:host-a")).toBe(2);
    expect(await circuit(metrics, "delegation")).toBe(0);
    breakers.stop();
  });
});
