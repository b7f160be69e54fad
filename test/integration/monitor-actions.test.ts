/**
 * The monitor's thresholds and actions on real stacks: each metric is driven over a low
 * threshold by real work (contended state writes, a deep chain, placed actors, a slow event
 * rate, a hook that always fails), its action happens and its event is published, and where the
 * activity can stop, the metric clears and says so. The monitor samples every 200 ms over a
 * 1.5 s window; cooldowns are off so each test sees its crossing and clearing.
 */

import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { CadreError, CadreEvent, ConfigInput, TeamInput } from "@cadre/protocol";
import { call, readEvents, SupervisorClient } from "@cadre/runtime";
import { afterAll, describe, expect, it } from "vitest";
import {
  chainTeam,
  fanTeam,
  fastConfig,
  recordEvents,
  startCluster,
  type TestCluster,
  type TimedEvent,
  until,
} from "../helpers/cluster.js";

type Metrics = NonNullable<NonNullable<ConfigInput["monitor"]>["metrics"]>;

/** A stack whose monitor watches closely, with these rules (the others keep the seed's). */
async function stackWith(metrics: Metrics, extra: ConfigInput = {}): Promise<TestCluster> {
  return startCluster({
    hosts: 2,
    monitor: true,
    config: {
      ...fastConfig,
      ...extra,
      monitor: { intervalMs: 200, windowMs: 1500, ...extra.monitor, metrics },
    },
  });
}

/** The first recorded event that matches, once there is one. */
const seen = (rec: { events: TimedEvent[] }, match: (e: CadreEvent) => boolean, timeoutMs: number) =>
  until(`an event (${match.toString().slice(0, 80)})`, () => rec.events.find((e) => match(e.event))?.event, timeoutMs);

const rule = (threshold: number, action: string, clear = 0) => ({ threshold, clear, action, cooldownMs: 0 }) as never;

describe("monitor thresholds and actions", () => {
  const clusters: TestCluster[] = [];
  const dirs: string[] = [];
  afterAll(async () => {
    await Promise.all(clusters.map((c) => c.stop()));
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
  });
  const track = (c: TestCluster) => {
    clusters.push(c);
    return c;
  };

  it("alert: contended state writes raise state_conflicts_per_minute, a critical event, cleared when they stop", async () => {
    const c = track(await stackWith({ state_conflicts_per_minute: rule(1, "alert") }));
    const rec = recordEvents(c.nc);
    const contended: TeamInput = {
      ...fanTeam("contended", 40, 1, 8),
      kinds: {
        ...fanTeam("contended", 40, 1, 8).kinds,
        worker: {
          role: "agent",
          replicas: 8,
          behaviour: { type: "script", output: { ok: true }, state: { tally: "{{task.id}}" } },
        },
      },
    };
    expect((await c.wait(await c.submit(contended))).status).toBe("completed");
    const crossed = await seen(rec, (e) => e.type === "THRESHOLD_CROSSED", 10_000);
    expect(crossed.data).toMatchObject({ metric: "state_conflicts_per_minute", action: "alert", threshold: 1 });
    expect(Number(crossed.data.value)).toBeGreaterThan(1);
    const cleared = await seen(rec, (e) => e.type === "THRESHOLD_CLEARED", 10_000);
    expect(cleared.data).toMatchObject({ metric: "state_conflicts_per_minute", value: 0 });
    rec.stop();
  });

  it("warn: a deep chain raises delegation_depth_p99, a non-critical warning, cleared after the window; cadre monitor shows it", async () => {
    const c = track(await stackWith({ delegation_depth_p99: rule(1, "warn") }));
    const rec = recordEvents(c.nc);
    expect((await c.wait(await c.submit(chainTeam("deep", 3)))).status).toBe("completed");
    const warned = await seen(rec, (e) => e.type === "THRESHOLD_WARNING", 10_000);
    // Crossed at the first interval that saw a subtask deeper than 1 (the chain goes 1, 2, 3).
    expect(warned.data).toMatchObject({ metric: "delegation_depth_p99", action: "warn", threshold: 1 });
    expect([2, 3]).toContain(warned.data.value);
    const status = await call(c.nc, "mon.status", {}, { sender: "test", timeoutMs: 5000 });
    expect(status.metrics.map((m) => m.metric)).toHaveLength(6);
    const cleared = await seen(rec, (e) => e.type === "THRESHOLD_WARNING_CLEARED", 10_000);
    expect(cleared.data).toMatchObject({ metric: "delegation_depth_p99", value: 0 });
    expect(rec.events.some((e) => e.event.type === "THRESHOLD_CROSSED")).toBe(false);
    rec.stop();
  });

  it("throttle: placed actors raise active_agents_count; low-priority workflows are refused until it clears", async () => {
    const c = track(await stackWith({ active_agents_count: rule(1, "throttle") }));
    const rec = recordEvents(c.nc);
    const sup = new SupervisorClient(c.nc, { sender: "test", timeoutMs: 5000 });
    const first = await c.submit(fanTeam("busy", 2, 50), undefined, 10);
    await c.wait(first);
    const throttled = await seen(rec, (e) => e.type === "ADMISSION_THROTTLED", 10_000);
    expect(throttled.data).toMatchObject({ belowPriority: 5 });
    // Below the priority: refused, retryable, saying until when; at or above it: admitted.
    let refused: CadreError | undefined;
    await c.submit(fanTeam("low", 1, 1), undefined, 0).catch((e: CadreError) => {
      refused = e;
    });
    expect(refused?.code).toBe("THROTTLED");
    expect(refused?.retryable).toBe(true);
    expect(refused?.message).toContain("priority of at least 5");
    expect((await c.wait(await c.submit(fanTeam("high", 1, 1), undefined, 10))).status).toBe("completed");
    // Retire every team: no actors, the metric clears, the throttle is lifted.
    for (const t of (await sup.call("sup.team.list", {})).teams)
      await sup.call("sup.team.retire", { teamId: t.teamId, force: true });
    await seen(rec, (e) => e.type === "THRESHOLD_CLEARED" && e.scope === "active_agents_count", 15_000);
    await seen(rec, (e) => e.type === "ADMISSION_RESTORED", 10_000);
    expect((await c.wait(await c.submit(fanTeam("low-again", 1, 1), undefined, 0))).status).toBe("completed");
    rec.stop();
  });

  it("scale: a slow event rate fills event_queue_depth; the scale command runs with the deficit, and it clears", async () => {
    const dir = mkdtempSync(join(tmpdir(), "cadre-scale-"));
    dirs.push(dir);
    const out = join(dir, "scaled");
    const c = track(
      await stackWith(
        { event_queue_depth: rule(2, "scale") },
        {
          events: { ratePerSec: 4, burst: 1 },
          monitor: { scale: { command: `echo "$CADRE_SCALE_DEFICIT" >> ${out}` } },
        },
      ),
    );
    const rec = recordEvents(c.nc);
    expect((await c.wait(await c.submit(fanTeam("chatty", 16, 1, 4)))).status).toBe("completed");
    // From the stored events, not only those seen live: the stack's own start (its partitions'
    // events among them) can fill the queue before this test listens, and with a steady backlog
    // the metric does not clear between that crossing and the workflow's.
    const scaled = await until(
      "SCALE_REQUESTED stored",
      async () => (await readEvents(c.nc)).find((e) => e.type === "SCALE_REQUESTED"),
      20_000,
    );
    expect(scaled.data).toMatchObject({ metric: "event_queue_depth", threshold: 2, exitCode: 0 });
    expect(Number(scaled.data.deficit)).toBeGreaterThan(0);
    // The command ran with that deficit (the first crossing's; a later one adds a line).
    expect(readFileSync(out, "utf8").trim().split("\n").map(Number)).toContain(scaled.data.deficit);
    await seen(rec, (e) => e.type === "THRESHOLD_CLEARED" && e.scope === "event_queue_depth", 30_000);
    rec.stop();
  });

  it("cleanup: memory over a (tiny) threshold makes every host release what it can and report it", async () => {
    const c = track(
      await stackWith({ memory_usage_percent: { threshold: 0.001, action: "cleanup", cooldownMs: 60_000 } as never }),
    );
    // It crosses at the monitor's first tick, maybe before this test listens: read the events stream.
    const reports = await until("the crossing, and both hosts' cleanup reports, in the events stream", async () => {
      const events = await c.events();
      const crossed = events.some((e) => e.type === "THRESHOLD_CROSSED" && e.scope === "memory_usage_percent");
      const r = events.filter((e) => e.type === "CLEANUP_REPORTED");
      return crossed && r.length >= 2 ? r : undefined;
    });
    expect(new Set(reports.map((r) => r.data.hostId))).toEqual(new Set(["host-1", "host-2"]));
    for (const r of reports) {
      expect(r.data.gc).toBe(true);
      expect(Number(r.data.heapBeforeBytes)).toBeGreaterThan(0);
    }
  });

  it("bypass: a hook that always fails raises hook_failure_rate; every host bypasses it, and the rate clears", async () => {
    const c = track(
      await stackWith(
        { hook_failure_rate: rule(0.5, "bypass") },
        { host: { hooks: [{ name: "flaky-audit", event: "beforeTask", command: "exit 3", critical: false }] } },
      ),
    );
    const rec = recordEvents(c.nc);
    expect((await c.wait(await c.submit(fanTeam("hooked", 6, 1)))).status).toBe("completed");
    const crossed = await seen(rec, (e) => e.type === "THRESHOLD_CROSSED" && e.scope === "hook_failure_rate", 10_000);
    expect(Number(crossed.data.value)).toBe(1);
    const bypassed = await until("both hosts bypass the hook", () => {
      const b = rec.events.filter((e) => e.event.type === "HOOK_BYPASSED");
      return b.length >= 2 ? b : undefined;
    });
    expect(new Set(bypassed.map((b) => b.event.data.hostId))).toEqual(new Set(["host-1", "host-2"]));
    expect(bypassed[0]?.event.data).toMatchObject({ hook: "flaky-audit", failureRate: 1 });
    // Bypassed, the hook does not run: tasks still complete, its run count stands still, the rate falls to 0.
    const runs = async () => {
      let n = 0;
      for (const h of ["host-1", "host-2"]) {
        const text = await (await fetch(`http://127.0.0.1:${c.stack.processes.get(h)?.healthPort}/metrics`)).text();
        for (const m of text.matchAll(/^cadre_hook_runs_total\{[^}]*hook="flaky-audit"[^}]*\} (\d+)$/gm))
          n += Number(m[1]);
      }
      return n;
    };
    const before = await runs();
    // Some tasks ran the hook before the bypass (it may come while the first workflow runs).
    expect(before).toBeGreaterThan(0);
    expect((await c.wait(await c.submit(fanTeam("hooked-again", 6, 1)))).status).toBe("completed");
    expect(await runs()).toBe(before);
    await seen(rec, (e) => e.type === "THRESHOLD_CLEARED" && e.scope === "hook_failure_rate", 10_000);
    rec.stop();
  });
});
