/** The dependency-analysis rules over a graph given by hand: edges, order, blocked, longest chain. */

import { describe, expect, it } from "vitest";
import { dependencyGraph, type GraphNode } from "./dependencies.js";

const node = (workflowId: string, fields: Partial<GraphNode> = {}): GraphNode => ({
  workflowId,
  status: "running",
  priority: 0,
  submittedAt: 0,
  after: [],
  critical: 1,
  ...fields,
});

describe("the dependency graph", () => {
  it("orders a chain dependencies first, whatever order it is given in, and finds it as the longest chain", () => {
    const g = dependencyGraph([
      node("c", { status: "waiting", after: ["b"], submittedAt: 3 }),
      node("a", { submittedAt: 1, critical: 3 }),
      node("b", { status: "waiting", after: ["a"], submittedAt: 2 }),
    ]);
    expect(g.order).toEqual(["a", "b", "c"]);
    expect(g.edges).toEqual([
      { dependency: "b", dependent: "c", state: "awaited" },
      { dependency: "a", dependent: "b", state: "awaited" },
    ]);
    expect(g.longestChain).toEqual({ workflows: ["a", "b", "c"], length: 3, criticalTasks: 5 });
    expect(g.blocked).toEqual([]);
  });

  it("of those free at one step, puts the higher priority first, then the earlier submitted, then by id", () => {
    const g = dependencyGraph([
      node("low", { priority: 1, submittedAt: 1 }),
      node("high", { priority: 9, submittedAt: 5 }),
      node("late", { priority: 5, submittedAt: 9 }),
      node("early", { priority: 5, submittedAt: 2 }),
      node("twin-b", { priority: 5, submittedAt: 2 }),
      // Free only after low, however high its priority.
      node("after-low", { priority: 99, status: "waiting", after: ["low"] }),
    ]);
    expect(g.order).toEqual(["high", "early", "twin-b", "late", "low", "after-low"]);
  });

  it("a completed dependency satisfies its edge and leaves the chain; a finished workflow has no chain", () => {
    const g = dependencyGraph([
      node("a", { status: "completed", critical: 0 }),
      node("b", { after: ["a"] }),
      node("c", { status: "waiting", after: ["b"] }),
    ]);
    expect(g.edges.find((e) => e.dependency === "a")?.state).toBe("satisfied");
    expect(g.longestChain.workflows).toEqual(["b", "c"]);
    expect(dependencyGraph([node("x", { status: "completed" })]).longestChain).toEqual({
      workflows: [],
      length: 0,
      criticalTasks: 0,
    });
  });

  it("of chains as long, takes the one with more critical-path tasks, else the first in order", () => {
    const g = dependencyGraph([
      node("a", { priority: 5, critical: 1 }),
      node("b", { priority: 1, critical: 4 }),
      node("a2", { status: "waiting", after: ["a"], critical: 1 }),
      node("b2", { status: "waiting", after: ["b"], critical: 1 }),
    ]);
    expect(g.longestChain).toEqual({ workflows: ["b", "b2"], length: 2, criticalTasks: 5 });
    const tie = dependencyGraph([
      node("a", { priority: 5 }),
      node("b", { priority: 1 }),
      node("a2", { status: "waiting", after: ["a"] }),
      node("b2", { status: "waiting", after: ["b"] }),
    ]);
    expect(tie.longestChain.workflows).toEqual(["a", "a2"]);
  });

  it("a workflow waiting on a failed, cancelled or missing one is blocked by the nearest, through the unfinished ones", () => {
    const g = dependencyGraph([
      node("f", { status: "failed" }),
      node("x", { status: "waiting", after: ["f"] }),
      node("y", { status: "waiting", after: ["x"] }),
      node("m", { status: "waiting", after: ["gone"] }),
      node("gone", { status: "missing", priority: null, submittedAt: null }),
      node("k", { status: "cancelled" }),
      node("z", { status: "waiting", after: ["ok", "k"] }),
      node("ok", { status: "completed" }),
    ]);
    expect(g.blocked).toEqual(
      expect.arrayContaining([
        { workflowId: "x", by: "f", byStatus: "failed", through: [] },
        { workflowId: "y", by: "f", byStatus: "failed", through: ["x"] },
        { workflowId: "m", by: "gone", byStatus: "missing", through: [] },
        { workflowId: "z", by: "k", byStatus: "cancelled", through: [] },
      ]),
    );
    expect(g.blocked).toHaveLength(4);
    expect(g.edges.filter((e) => e.state === "broken").map((e) => e.dependent)).toEqual(["x", "m", "z"]);
    // Blocked in order too: x before y.
    expect(g.blocked.map((b) => b.workflowId).indexOf("x")).toBeLessThan(
      g.blocked.map((b) => b.workflowId).indexOf("y"),
    );
  });

  it("names an after entry outside the graph as a broken edge, and survives a cycle (members last)", () => {
    const g = dependencyGraph([node("a", { after: ["nowhere"] })]);
    expect(g.edges).toEqual([{ dependency: "nowhere", dependent: "a", state: "broken" }]);
    const cyc = dependencyGraph([node("free"), node("p", { after: ["q"] }), node("q", { after: ["p"] })]);
    expect(cyc.order).toEqual(["free", "p", "q"]);
  });
});
