import { type CadreEvent, parseConfig, parseTeam } from "@cadre/protocol";
import { createLogger, ManualClock } from "@cadre/runtime";
import { describe, expect, it } from "vitest";
import { ResourceManager } from "./resources.js";

const team = parseTeam({
  name: "t",
  root: "k",
  resources: { x: { capacity: 1 }, y: { capacity: 1 }, pool: { capacity: 2 } },
  kinds: { k: { role: "agent", behaviour: { type: "script" } } },
});

function manager() {
  const clock = new ManualClock(1000);
  const events: CadreEvent[] = [];
  const m = new ResourceManager({
    config: parseConfig({ resources: { acquireTimeoutMs: 5000 } }),
    clock,
    logger: createLogger("resources-test", "silent"),
    emit: (e) => events.push(e),
    team: async () => team,
  });
  const acquire = (taskId: string, resource: string, priority = 0) => {
    const p = m.acquire({ taskId, teamId: "t", resource, priority });
    const outcome: { granted?: number; error?: { code: string; data?: Record<string, unknown> } } = {};
    p.then(
      (ms) => {
        outcome.granted = ms;
      },
      (e) => {
        outcome.error = e;
      },
    );
    return outcome;
  };
  return { m, clock, events, acquire };
}

const settle = () => new Promise((r) => setImmediate(r));

describe("resources and deadlocks", () => {
  it("grants a pool up to its capacity, then queues in arrival order", async () => {
    const { m, acquire } = manager();
    const [a, b, c, d] = [acquire("a", "pool"), acquire("b", "pool"), acquire("c", "pool"), acquire("d", "pool")];
    await settle();
    expect([a.granted, b.granted, c.granted, d.granted]).toEqual([0, 0, undefined, undefined]);
    expect(m.view().waiting.map((w) => w.taskId)).toEqual(["c", "d"]);
    m.release("a");
    await settle();
    expect(c.granted).toBe(0);
    expect(m.view().holders).toEqual({ pool: ["b", "c"] });
  });

  it("breaks a two-task deadlock at once: the lower priority is refused and releases, the other proceeds", async () => {
    const { m, events, acquire } = manager();
    acquire("hi", "x", 5);
    acquire("lo", "y", 0);
    await settle();
    const hiWaits = acquire("hi", "y", 5);
    const loWaits = acquire("lo", "x", 0);
    await settle();
    expect(loWaits.error?.code).toBe("DEADLOCK_VICTIM");
    expect(hiWaits.granted).toBe(0);
    expect(m.view()).toEqual({ holders: { x: ["hi"], y: ["hi"] }, waiting: [], edges: [] });
    expect(events.map((e) => [e.type, e.data.victim, e.data.released])).toEqual([["DEADLOCK_RESOLVED", "lo", ["y"]]]);
    expect(events[0]?.data.cycle).toEqual(["lo", "hi"]);
  });

  it("on equal priority refuses the youngest waiter", async () => {
    const { clock, acquire } = manager();
    acquire("first", "x");
    acquire("second", "y");
    await settle();
    const firstWaits = acquire("first", "y");
    clock.advance(10);
    const secondWaits = acquire("second", "x");
    await settle();
    expect(secondWaits.error?.code).toBe("DEADLOCK_VICTIM");
    expect(firstWaits.granted).toBe(10);
  });

  it("counts a director waiting for its subtask: a cycle through delegation is broken too", async () => {
    const { m, acquire } = manager();
    acquire("director", "x", 3);
    await settle();
    m.waitsOn("director", ["child"]);
    const child = acquire("child", "x", 3);
    await settle();
    expect(child.error?.code).toBe("DEADLOCK_VICTIM");
  });

  it("gives up an acquisition after the timeout, and the waiter leaves the graph", async () => {
    const { m, clock, acquire } = manager();
    acquire("holder", "x");
    await settle();
    const waiter = acquire("waiter", "x");
    await settle();
    expect(m.view().edges).toEqual([["waiter", "holder"]]);
    clock.advance(4999);
    await settle();
    expect(waiter.error).toBeUndefined();
    clock.advance(1);
    await settle();
    expect(waiter.error?.code).toBe("TIMEOUT");
    expect(m.view()).toMatchObject({ waiting: [], edges: [] });
  });

  it("re-grants a resource its task holds already (an attempt redelivered), and refuses an undeclared one", async () => {
    const { acquire } = manager();
    acquire("a", "x");
    await settle();
    const again = acquire("a", "x");
    const unknown = acquire("a", "nope");
    await settle();
    expect(again.granted).toBe(0);
    expect(unknown.error?.code).toBe("NOT_FOUND");
  });
});
