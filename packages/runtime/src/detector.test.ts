import { describe, expect, it } from "vitest";
import { ManualClock } from "./clock.js";
import { HostLiveness, type LivenessEvent, PhiAccrualDetector, phiOf } from "./detector.js";
import { mulberry32 } from "./random.js";

function tracker() {
  const clock = new ManualClock(0);
  const events: LivenessEvent[] = [];
  const live = new HostLiveness({ clock, onEvent: (e) => events.push(e) });
  return { clock, events, live };
}

describe("phi", () => {
  it("is about 0.3 at the (pause-raised) mean and grows with the silence", () => {
    expect(phiOf(300, 300, 50)).toBeCloseTo(0.301, 2);
    let prev = 0;
    for (let t = 0; t <= 2000; t += 10) {
      const p = phiOf(t, 300, 50);
      expect(p).toBeGreaterThanOrEqual(prev);
      prev = p;
    }
  });

  it("is 0 before the first heartbeat", () => {
    expect(new PhiAccrualDetector().phi(10_000)).toBe(0);
  });
});

describe("HostLiveness with heartbeats every 100 ms", () => {
  it("declares a host that stops unreachable within 1 s, suspected first, each event once", () => {
    const { clock, events, live } = tracker();
    for (let i = 0; i < 50; i++) {
      live.heartbeat("h1");
      clock.advance(100);
    }
    const lastBeat = clock.now() - 100;
    // Checked every 50 ms, as the supervisor does.
    for (let t = 0; t < 3000; t += 50) {
      clock.advance(50);
      live.check();
    }
    expect(events.map((e) => e.type)).toEqual(["suspected", "unreachable"]);
    const unreachable = events[1];
    expect(unreachable?.hostId).toBe("h1");
    expect(unreachable?.lastHeartbeatAt).toBe(lastBeat);
    expect((unreachable?.at ?? 0) - lastBeat).toBeLessThan(1000);
    expect(unreachable?.phi).toBeGreaterThanOrEqual(8);
    expect(unreachable?.silenceMs).toBe((unreachable?.at ?? 0) - lastBeat);
  });

  it("raises no suspicion over 10,000 heartbeats jittered by ±40 ms", () => {
    const { clock, events, live } = tracker();
    const random = mulberry32(42);
    for (let i = 0; i < 10_000; i++) {
      live.heartbeat("h1");
      const next = 100 + Math.round((random() * 2 - 1) * 40);
      // Check at every 10 ms step until the next beat: the worst moments are right before it.
      for (let t = 0; t < next; t += 10) {
        clock.advance(Math.min(10, next - t));
        live.check();
      }
    }
    expect(events).toEqual([]);
  });

  it("tolerates a single stall of 200 ms more than usual (a GC pause, a busy loop) without suspicion", () => {
    const { clock, events, live } = tracker();
    for (let i = 0; i < 100; i++) {
      live.heartbeat("h1");
      clock.advance(100);
    }
    clock.advance(200); // this beat comes 300 ms after the last: 200 ms more than usual
    live.check();
    live.heartbeat("h1");
    expect(events).toEqual([]);
  });

  it("reports healed, with the silence, when a suspected host is heard again", () => {
    const { clock, events, live } = tracker();
    for (let i = 0; i < 20; i++) {
      live.heartbeat("h1");
      clock.advance(100);
    }
    clock.advance(2000);
    live.check();
    expect(live.state("h1")).toBe("unreachable");
    live.heartbeat("h1");
    expect(events.map((e) => e.type)).toEqual(["suspected", "unreachable", "healed"]);
    expect(events[2]?.silenceMs).toBe(2100);
    expect(live.state("h1")).toBe("alive");
    live.check();
    expect(events).toHaveLength(3);
  });

  it("adapts: a host whose beats are irregular is suspected later than a regular one", () => {
    const regular = new PhiAccrualDetector();
    const irregular = new PhiAccrualDetector();
    const random = mulberry32(7);
    let t = 0;
    let u = 0;
    for (let i = 0; i < 100; i++) {
      regular.heartbeat(t);
      irregular.heartbeat(u);
      t += 100;
      u += 100 + Math.round(random() * 300); // 100-400 ms: a saturated CPU
    }
    expect(irregular.phi(u + 500)).toBeLessThan(regular.phi(t + 500));
  });

  it("judges nobody while the observer itself is cut off, and counts silence afresh after", () => {
    const { clock, events, live } = tracker();
    for (let i = 0; i < 20; i++) {
      live.heartbeat("h1");
      clock.advance(100);
    }
    live.pause();
    clock.advance(5000);
    live.check();
    expect(events).toEqual([]);
    live.resume();
    clock.advance(200);
    live.check();
    expect(events).toEqual([]);
    clock.advance(2000); // still silent after the observer is back: now it counts
    live.check();
    expect(events.map((e) => e.type)).toEqual(["suspected", "unreachable"]);
  });

  it("stops watching a host that left cleanly", () => {
    const { clock, events, live } = tracker();
    live.heartbeat("h1");
    live.forget("h1");
    clock.advance(10_000);
    live.check();
    expect(events).toEqual([]);
    expect(live.state("h1")).toBeUndefined();
  });
});

describe("the check loop", () => {
  it("does not suspect hosts for the observer's own stall: a late round is skipped until waiting heartbeats are read", () => {
    const { clock, events, live } = tracker();
    live.start(50);
    for (let i = 0; i < 50; i++) {
      live.heartbeat("h1");
      clock.advance(100);
    }
    // The observer's event loop is blocked for 2 s; the host's heartbeats wait in the socket.
    clock.stall(2000);
    // Judged now, the host would be unreachable...
    expect(live.phi("h1")).toBeGreaterThan(8);
    // ...but the overdue round is skipped, the waiting heartbeat is read, and the next round sees it alive.
    clock.advance(0);
    expect(events).toEqual([]);
    live.heartbeat("h1");
    clock.advance(50);
    expect(events).toEqual([]);
    expect(live.state("h1")).toBe("alive");
    // A host that really stopped is still declared unreachable by the rounds that follow (later
    // than usual: the stall's long interval is in its history now).
    clock.advance(5000);
    expect(events.map((e) => e.type)).toEqual(["suspected", "unreachable"]);
    live.stop();
  });
});
