/**
 * The scale simulation at a small size: 50 hosts, 1,000 agents, two simulated minutes. Its
 * behaviour, not its timings: every killed host is declared unreachable within the detector's
 * bound (phi crossing plus one check) and before the dead time, no live host is ever suspected,
 * and every agent is placed, no host over its limit. Needs the built packages (`pnpm build`).
 */

import { describe, expect, it } from "vitest";
import { runScaleSimulation } from "./simulation.js";

describe("the scale simulation (real detector and placer, driven clock)", () => {
  it("detects every killed host within its bounds, suspects no live host, and places every agent", async () => {
    const r = await runScaleSimulation({
      hosts: 50,
      agents: 1000,
      minutes: 2,
      kills: 3,
      placementBudgetMs: 60_000,
    });
    const l = r.liveness;
    expect(l.killed).toHaveLength(3);
    for (const k of l.killed) {
      expect(k.unreachableAfterMs, `${k.hostId} never declared unreachable`).not.toBeNull();
      expect(k.suspectedAfterMs).not.toBeNull();
      expect(k.withinBounds, `${k.hostId}: silence ${k.silenceMs} ms, bound ${k.boundSilenceMs} ms`).toBe(true);
      expect(k.silenceMs).toBeLessThanOrEqual(r.config.hostDeadAfterMs);
    }
    expect(l.falseSuspicions).toBe(0);
    expect(l.falselySuspected).toEqual([]);
    // Ten beats a second from every host, less the killed ones' silence.
    expect(l.heartbeats).toBeGreaterThan(50 * 10 * 120 * 0.9);

    const p = r.placement;
    expect(p.finished).toBe(true);
    expect(p.agentsPlaced).toBe(1000);
    expect(p.perTeam.consumers).toBe(5);
    expect(p.spread.max).toBeLessThanOrEqual(r.config.hostMaxActors);
  }, 120_000);
});
