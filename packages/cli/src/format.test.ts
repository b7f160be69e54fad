import type { WorkflowControl } from "@cadre/protocol";
import { describe, expect, it } from "vitest";
import { controlText, duration, shortJson, shownStatus, table, tree, waitsText } from "./format.js";
import { summaryText } from "./summary.js";

const control = (c: Partial<WorkflowControl> = {}): WorkflowControl => ({
  workflowId: "w1",
  teamId: "t1",
  paused: false,
  yielding: false,
  cancelled: null,
  maxAgents: null,
  guarantee: 0,
  parked: [],
  updatedAt: 0,
  ...c,
});

describe("text output", () => {
  it("durations", () => {
    expect(duration(null)).toBe("-");
    expect(duration(850)).toBe("850 ms");
    expect(duration(1250)).toBe("1.25 s");
    expect(duration(90_000)).toBe("1.5 min");
  });

  it("a table pads each column to its widest cell", () => {
    expect(table(["A", "BB"], [["xxx", "y"]], "none")).toBe("A    BB\nxxx  y");
    expect(table(["A"], [], "nothing here")).toBe("nothing here");
  });

  it("a workflow's controls", () => {
    expect(controlText(null)).toBe("none");
    expect(controlText(control())).toBe("not paused, no agent cap, no actors reserved, 0 tasks parked");
    expect(
      controlText(control({ paused: true, maxAgents: 2, guarantee: 1, parked: [{ taskId: "t", epoch: 1 }] })),
    ).toBe("paused, at most 2 agents, 1 actor reserved, 1 task parked");
    expect(controlText(control({ cancelled: { reason: "enough", at: 0 } }))).toContain(
      "cancelled (enough) at 1970-01-01",
    );
    expect(shownStatus("running", control({ paused: true }))).toBe("paused");
    expect(shownStatus("completed", control({ paused: true }))).toBe("completed");
  });

  it("a workflow that waits for others (its after)", () => {
    expect(shownStatus("running", control({ paused: true }), ["wA"])).toBe("waiting");
    expect(shownStatus("running", null, [])).toBe("running");
    expect(shownStatus("failed", null, ["wA"])).toBe("failed");
    expect(waitsText(undefined, undefined)).toBe("");
    expect(waitsText(["wA", "wB"], ["wB"])).toBe("waits for wB (after wA, wB)");
    expect(waitsText(["wA"], ["wA"])).toBe("waits for wA");
    expect(waitsText(["wA"], [])).toBe("after wA");
    const w = {
      workflowId: "wC",
      teamId: "t1",
      teamName: "team",
      rootTaskId: "wC-r",
      status: "running" as const,
      submittedAt: Date.now(),
      finishedAt: null,
      tasks: { total: 1, completed: 0, failed: 0, retried: 0, duplicates: 0, conflicts: 0, cancelled: 0 },
      after: ["wA", "wB"],
      waitingFor: ["wB"],
    };
    const text = summaryText(w);
    expect(text).toMatch(/^workflow wC \(team\) waiting for /);
    expect(text).toContain("\n  waits for wB (after wA, wB)");
    expect(summaryText({ ...w, status: "completed", finishedAt: w.submittedAt + 10 })).toContain("\n  after wA, wB");
  });

  it("a tree indents each node under its parent; an orphan is a root", () => {
    const nodes = [
      { id: "r", parent: null },
      { id: "a", parent: "r" },
      { id: "a1", parent: "a" },
      { id: "b", parent: "r" },
      { id: "o", parent: "gone" },
    ];
    expect(tree(nodes, (n) => n.id)).toEqual(["r", "  a", "    a1", "  b", "o"]);
    // A cycle (never expected) still shows every node once.
    expect(
      tree(
        [
          { id: "x", parent: "y" },
          { id: "y", parent: "x" },
        ],
        (n) => n.id,
      ),
    ).toEqual(["x", "y"]);
  });

  it("long JSON is cut, saying how long it was", () => {
    expect(shortJson({ a: 1 })).toBe('{"a":1}');
    expect(shortJson("x".repeat(50), 10)).toMatch(/^"xxxxxxxxx\.\.\. \(52 characters; --json shows all\)$/);
  });
});
