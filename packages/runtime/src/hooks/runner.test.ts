import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { rejection } from "@cadre/protocol/testing";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import type { BreakerTransition } from "../breaker.js";
import { ManualClock } from "../clock.js";
import { type CadreMetrics, createMetrics } from "../metrics.js";
import { HookFailedError, HookRunner } from "./index.js";

const fixture = (name: string): string => fileURLToPath(new URL(`./fixtures/${name}.mjs`, import.meta.url));

/** Resolves once `check` holds; rejects after `deadlineMs`. Polls on timers, so it needs a free event loop. */
async function until(check: () => boolean, deadlineMs: number, what: string): Promise<void> {
  const end = Date.now() + deadlineMs;
  while (!check()) {
    if (Date.now() > end) throw new Error(`timed out after ${deadlineMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

function recordingLogger() {
  const warnings: { obj: Record<string, unknown>; msg: string }[] = [];
  return { warnings, warn: (obj: Record<string, unknown>, msg: string) => warnings.push({ obj, msg }) };
}

/** What the metrics hold for a hook: its runs by outcome, and its bypassed gauge. */
async function hookMetrics(m: CadreMetrics, hook: string) {
  const runs = (await m.hookRuns.get()).values.filter((v) => v.labels.hook === hook);
  const runsOf = (outcome: string) => runs.find((v) => v.labels.outcome === outcome)?.value ?? 0;
  return {
    ok: runsOf("ok"),
    failed: runsOf("failed"),
    timeout: runsOf("timeout"),
    bypassed: (await m.hookBypassed.get()).values.find((v) => v.labels.hook === hook)?.value,
  };
}

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), "cadre-hooks-"));
});
afterEach(() => {
  rmSync(dir, { recursive: true, force: true });
});

describe("HookRunner", () => {
  it("cascade failure isolation", async () => {
    const logger = recordingLogger();
    const runner = new HookRunner({ logger });
    const hangTimeoutMs = 600;
    runner.register({ name: "good", event: "beforeTask", module: fixture("good"), critical: false });
    runner.register({ name: "throws", event: "beforeTask", module: fixture("throws"), critical: false });
    runner.register({
      name: "hangs",
      event: "beforeTask",
      module: fixture("hangs"),
      critical: false,
      timeoutMs: hangTimeoutMs,
    });
    runner.register({
      name: "spins",
      event: "beforeTask",
      module: fixture("spins"),
      critical: false,
      timeoutMs: hangTimeoutMs,
    });
    const marker = join(dir, "spinning");

    const started = Date.now();
    let settled = false;
    const run = runner.run("beforeTask", { taskId: "t-1", marker }).finally(() => {
      settled = true;
    });

    // The endless loop has begun; the main thread's timers must still fire while it spins.
    await until(() => existsSync(marker), 5_000, "the spinning hook to start");
    const firedWhileSpinning = await new Promise<boolean>((resolve) => setTimeout(() => resolve(!settled), 10));
    expect(firedWhileSpinning).toBe(true);
    const immediateWhileSpinning = await new Promise<boolean>((resolve) => setImmediate(() => resolve(!settled)));
    expect(immediateWhileSpinning).toBe(true);

    const report = await run;
    const elapsed = Date.now() - started;
    // Hooks run side by side: one timeout's worth, not the sum of two, let alone the 5 s defaults.
    expect(elapsed).toBeLessThan(2 * hangTimeoutMs);
    expect(report.event).toBe("beforeTask");
    expect(report.outcomes.map((o) => [o.hook, o.status])).toEqual([
      ["good", "ok"],
      ["throws", "failed"],
      ["hangs", "timeout"],
      ["spins", "timeout"],
    ]);
    expect(report.outcomes[0]?.result).toEqual({ ok: true, taskId: "t-1" });
    expect(report.outcomes[1]?.error).toBe("Error: hook exploded");
    expect(report.outcomes[2]?.error).toBe(`did not finish within ${hangTimeoutMs} ms`);
    expect(report.failed).toBe(3);
    expect(report.bypassed).toBe(0);

    expect(runner.stats()).toEqual({
      good: { runs: 1, failures: 0, timeouts: 0, bypassed: 0, state: "closed" },
      throws: { runs: 1, failures: 1, timeouts: 0, bypassed: 0, state: "closed" },
      hangs: { runs: 1, failures: 1, timeouts: 1, bypassed: 0, state: "closed" },
      spins: { runs: 1, failures: 1, timeouts: 1, bypassed: 0, state: "closed" },
    });
    // Hooks finish in any order, so their warnings do too.
    expect(logger.warnings.map((w) => [w.obj.hook, w.obj.reason]).sort()).toEqual([
      ["hangs", "timeout"],
      ["spins", "timeout"],
      ["throws", "error"],
    ]);
    runner.stop();
  });

  it("rejects with HOOK_FAILED when a critical hook throws", async () => {
    const runner = new HookRunner();
    runner.register({ name: "good", event: "afterTask", module: fixture("good"), critical: false });
    runner.register({ name: "policy", event: "afterTask", module: fixture("throws"), critical: true });
    const err = await rejection(runner.run("afterTask", {}));
    expect(err).toBeInstanceOf(HookFailedError);
    expect(err.name).toBe("HookFailedError");
    expect(err.code).toBe("HOOK_FAILED");
    expect(HookFailedError.code).toBe("HOOK_FAILED");
    expect(err.retryable).toBe(false);
    expect(err.data).toEqual({ hook: "policy", event: "afterTask", reason: "error", message: "Error: hook exploded" });
    expect(err.message).toBe(
      'critical hook "policy" for afterTask failed: Error: hook exploded; fix the hook or mark it non-critical',
    );
    expect(runner.stats().good?.runs).toBe(1);
    runner.stop();
  });

  it("redacts secrets from what failed hooks say: HOOK_FAILED, outcomes and warnings", async () => {
    const logger = recordingLogger();
    const runner = new HookRunner({ logger });
    runner.register({ name: "module", event: "afterTask", module: fixture("leaks-secret"), critical: false });
    runner.register({
      name: "command",
      event: "afterTask",
      command: "echo 'vault login failed: password=hunter2' >&2; exit 1",
      critical: false,
    });
    runner.register({ name: "gate", event: "beforeTask", module: fixture("leaks-secret"), critical: true });

    const report = await runner.run("afterTask", {});
    const err = await rejection(runner.run("beforeTask", {}));
    expect(err).toBeInstanceOf(HookFailedError);
    const everything = JSON.stringify([report, err.message, err.data, logger.warnings]);
    expect(everything).not.toContain("hunter2");
    expect(everything).not.toContain("abc.def.ghi");
    expect(report.outcomes.map((o) => o.error)).toEqual([
      "Error: cannot reach vault with token=[REDACTED] (Authorization: Bearer [REDACTED])",
      "exited with code 1: vault login failed: password=[REDACTED]",
    ]);
    expect(err.data).toMatchObject({ hook: "gate", message: report.outcomes[0]?.error });
    expect(logger.warnings).toHaveLength(2);
    runner.stop();
  });

  it("rejects with HOOK_FAILED and reason timeout when a critical hook hangs", async () => {
    const runner = new HookRunner();
    runner.register({ name: "gate", event: "onSpawn", module: fixture("hangs"), critical: true, timeoutMs: 200 });
    const err = await rejection(runner.run("onSpawn", {}));
    expect(err.code).toBe("HOOK_FAILED");
    expect(err.retryable).toBe(true);
    expect(err.data).toEqual({
      hook: "gate",
      event: "onSpawn",
      reason: "timeout",
      message: "did not finish within 200 ms",
    });
    runner.stop();
  });

  it("runs only the hooks of the event and resolves an empty report when there are none", async () => {
    const runner = new HookRunner();
    runner.register({ name: "other", event: "afterTask", module: fixture("throws"), critical: true });
    await expect(runner.run("beforeTask", {})).resolves.toEqual({
      event: "beforeTask",
      outcomes: [],
      failed: 0,
      bypassed: 0,
    });
    expect(runner.stats().other?.runs).toBe(0);
    runner.stop();
  });

  it("bypasses a hook whose failure rate passes the threshold and retries it after bypassRetryMs", async () => {
    const clock = new ManualClock();
    const logger = recordingLogger();
    const transitions: BreakerTransition[] = [];
    const runner = new HookRunner({ clock, logger, onTransition: (t) => transitions.push(t) });
    runner.register({ name: "flaky", event: "beforeTask", module: fixture("flaky"), critical: false });
    const statusOf = async (fail: boolean) => (await runner.run("beforeTask", { fail })).outcomes[0]?.status;

    for (let i = 0; i < 9; i++) expect(await statusOf(false)).toBe("ok");
    // 1 failure in 10 runs is a rate of 0.1: not above the threshold.
    expect(await statusOf(true)).toBe("failed");
    expect(runner.stats().flaky?.state).toBe("closed");
    // 2 in 11 is.
    expect(await statusOf(true)).toBe("failed");
    expect(runner.stats().flaky).toEqual({ runs: 11, failures: 2, timeouts: 0, bypassed: 0, state: "open" });
    expect(logger.warnings).toContainEqual({
      obj: { hook: "flaky", from: "closed", retryInMs: 30_000 },
      msg: "hook fails too often; bypassing it until a trial run succeeds",
    });

    // Bypassed: not run at all, whatever the payload.
    const bypassedReport = await runner.run("beforeTask", { fail: false });
    expect(bypassedReport.outcomes[0]?.status).toBe("bypassed");
    expect(bypassedReport.bypassed).toBe(1);
    expect(runner.stats().flaky).toMatchObject({ runs: 11, bypassed: 1 });

    clock.advance(29_999);
    expect(await statusOf(false)).toBe("bypassed");
    clock.advance(1);
    expect(runner.stats().flaky?.state).toBe("halfOpen");

    // The trial fails: bypassed again for another full bypassRetryMs.
    expect(await statusOf(true)).toBe("failed");
    expect(runner.stats().flaky?.state).toBe("open");
    clock.advance(29_999);
    expect(await statusOf(false)).toBe("bypassed");
    clock.advance(1);

    // The trial succeeds: the hook is back with a clean record.
    expect(await statusOf(false)).toBe("ok");
    expect(runner.stats().flaky).toEqual({ runs: 13, failures: 3, timeouts: 0, bypassed: 3, state: "closed" });
    expect(await statusOf(true)).toBe("failed");
    expect(runner.stats().flaky?.state).toBe("closed");

    expect(transitions.map((t) => `${t.breaker} ${t.from}>${t.to}`)).toEqual([
      "hook:flaky closed>open",
      "hook:flaky open>halfOpen",
      "hook:flaky halfOpen>open",
      "hook:flaky open>halfOpen",
      "hook:flaky halfOpen>closed",
    ]);
    runner.stop();
  });

  it("records runs by outcome and the bypassed gauge into the metrics it is given", async () => {
    const clock = new ManualClock();
    const metrics = createMetrics({ service: "hooks-test", defaultMetrics: false });
    const runner = new HookRunner({ clock, metrics });
    runner.register({ name: "flaky", event: "beforeTask", module: fixture("flaky"), critical: false });
    expect(await hookMetrics(metrics, "flaky")).toEqual({ ok: 0, failed: 0, timeout: 0, bypassed: 0 });
    // Timeouts run on the runner's clock: a real one for the hanging hook.
    const timing = new HookRunner({ metrics });
    timing.register({ name: "slow", event: "afterTask", module: fixture("hangs"), critical: false, timeoutMs: 100 });
    await timing.run("afterTask", {});
    timing.stop();
    expect(await hookMetrics(metrics, "slow")).toEqual({ ok: 0, failed: 0, timeout: 1, bypassed: 0 });
    for (let i = 0; i < 9; i++) await runner.run("beforeTask", { fail: false });
    await runner.run("beforeTask", { fail: true });
    expect(await hookMetrics(metrics, "flaky")).toEqual({ ok: 9, failed: 1, timeout: 0, bypassed: 0 });
    // The second failure passes the rate: bypassed; a bypassed hook is not run, so no run is counted.
    await runner.run("beforeTask", { fail: true });
    await runner.run("beforeTask", { fail: false });
    expect(await hookMetrics(metrics, "flaky")).toEqual({ ok: 9, failed: 2, timeout: 0, bypassed: 1 });
    // Half-open still bypasses all but the trial; a successful trial restores it.
    clock.advance(30_000);
    expect(await hookMetrics(metrics, "flaky")).toMatchObject({ bypassed: 1 });
    await runner.run("beforeTask", { fail: false });
    expect(await hookMetrics(metrics, "flaky")).toEqual({ ok: 10, failed: 2, timeout: 0, bypassed: 0 });
    // Labelled by the hook's configured name, nothing else.
    const hooks = new Set((await metrics.hookRuns.get()).values.map((v) => v.labels.hook));
    expect([...hooks].sort()).toEqual(["flaky", "slow"]);
    runner.stop();
  });

  it("fails fast with reason bypassed when a bypassed hook is critical", async () => {
    const clock = new ManualClock();
    const runner = new HookRunner({ clock });
    runner.register({ name: "gate", event: "onDelegation", module: fixture("flaky"), critical: true });
    for (let i = 0; i < 10; i++) await runner.run("onDelegation", { fail: true }).catch(() => {});
    expect(runner.stats().gate).toMatchObject({ runs: 10, failures: 10, state: "open" });
    const err = await rejection(runner.run("onDelegation", { fail: false }));
    expect(err.code).toBe("HOOK_FAILED");
    expect(err.data).toMatchObject({ hook: "gate", event: "onDelegation", reason: "bypassed" });
    expect(err.retryable).toBe(true);
    expect(runner.stats().gate).toMatchObject({ runs: 10, bypassed: 1 });
    runner.stop();
  });

  it("refuses unusable hook definitions", () => {
    const runner = new HookRunner();
    runner.register({ name: "a", event: "beforeTask", command: "true", critical: false });
    expect(() => runner.register({ name: "a", event: "beforeTask", command: "true", critical: false })).toThrow(
      'hook "a" is already registered',
    );
    expect(() => runner.register({ name: "b", event: "beforeTask", critical: false })).toThrow(
      'hook "b": give exactly one of module and command',
    );
    expect(() => runner.register({ name: "c", event: "beforeTask", module: "./rel.mjs", critical: false })).toThrow(
      'hook "c": module must be an absolute path, got "./rel.mjs"',
    );
    expect(() =>
      runner.register({ name: "d", event: "nope" as "beforeTask", command: "true", critical: false }),
    ).toThrow('hook "d": unknown event "nope"');
    runner.stop();
  });
});
