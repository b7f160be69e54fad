import { describe, expect, it } from "vitest";
import { chooseVictim, WaitForGraph } from "./waitfor.js";

describe("wait-for graph", () => {
  it("reports the cycle an edge closes, in wait order from the edge's tail", () => {
    const g = new WaitForGraph();
    expect(g.addEdge("a", "b")).toBeNull();
    expect(g.addEdge("b", "c")).toBeNull();
    expect(g.addEdge("c", "a")).toEqual(["c", "a", "b"]);
  });

  it("finds no cycle in a diamond, and a self-wait is a cycle of one", () => {
    const g = new WaitForGraph();
    for (const [f, t] of [
      ["a", "b"],
      ["a", "c"],
      ["b", "d"],
      ["c", "d"],
    ] as const) {
      expect(g.addEdge(f, t)).toBeNull();
    }
    expect(g.findCycles()).toEqual([]);
    expect(g.addEdge("d", "d")).toEqual(["d"]);
    expect(g.addEdge("d", "d")).toEqual(["d"]);
  });

  it("forgets a task with its edges: the cycle through it is gone", () => {
    const g = new WaitForGraph();
    g.addEdge("a", "b");
    g.addEdge("b", "a");
    expect(g.findCycles()).toEqual([["a", "b"]]);
    g.removeNode("b");
    expect(g.findCycles()).toEqual([]);
    expect(g.edges()).toEqual([]);
  });

  it("sweeps one cycle per component that has one: disjoint cycles and a figure eight", () => {
    const g = new WaitForGraph();
    for (const [f, t] of [
      ["p", "q"],
      ["q", "r"],
      ["r", "p"],
      ["x", "y"],
      ["y", "x"],
      ["y", "z"],
      ["z", "y"],
      ["lone", "p"],
    ] as const) {
      g.addEdge(f, t);
    }
    const cycles = g.findCycles();
    expect(cycles).toEqual([
      ["p", "q", "r"],
      ["x", "y"],
    ]);
    expect(g.findCycles()).toEqual(cycles);
  });

  it("handles a 10,000-task chain closed into a cycle without overflowing the stack", () => {
    const g = new WaitForGraph();
    for (let i = 0; i < 9_999; i++) g.addEdge(`t${i}`, `t${i + 1}`);
    const cycle = g.addEdge("t9999", "t0");
    expect(cycle).toHaveLength(10_000);
    expect(g.findCycles()[0]).toHaveLength(10_000);
  });
});

describe("deadlock victim", () => {
  const info = {
    hi: { priority: 5, startedAt: 1 },
    lowOld: { priority: 0, startedAt: 1 },
    lowYoung: { priority: 0, startedAt: 9 },
    lowYoung2: { priority: 0, startedAt: 9 },
  };
  const of = (id: string) => info[id as keyof typeof info];

  it("is the lowest priority, then the youngest, then the largest id", () => {
    expect(chooseVictim(["hi", "lowOld"], of)).toBe("lowOld");
    expect(chooseVictim(["hi", "lowOld", "lowYoung"], of)).toBe("lowYoung");
    expect(chooseVictim(["lowYoung2", "lowYoung"], of)).toBe("lowYoung2");
  });

  it("is only ever a task that is waiting (unknown members are skipped); none if none is", () => {
    expect(chooseVictim(["director", "hi"], of)).toBe("hi");
    expect(chooseVictim(["director"], of)).toBeUndefined();
    expect(chooseVictim([], of)).toBeUndefined();
  });
});
