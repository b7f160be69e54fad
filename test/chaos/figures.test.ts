import type { CadreEvent } from "@cadre/protocol";
import { describe, expect, it } from "vitest";
import type { TimedEvent } from "../helpers/client.js";
import { longestStall } from "./figures.js";

const completed = (at: number, taskId: string, scope = "w1"): TimedEvent => ({
  at,
  event: { type: "TASK_COMPLETED", scope, data: { taskId } } as unknown as CadreEvent,
  sender: "supervisor-1",
});

describe("longestStall", () => {
  it("takes the longest gap between tasks completed after the fault, and the task that ended it", () => {
    const events = [
      completed(50, "a"),
      completed(120, "b"),
      completed(130, "c"),
      completed(900, "d"),
      completed(950, "e"),
    ];
    expect(longestStall(events, "w1", 100)).toEqual({ startMs: 30, endMs: 800, taskId: "d" });
  });

  it("does not let a task's TASK_COMPLETED seen again end a pause: it completes nothing", () => {
    // c's result is announced at 130 and again at 700 by a supervisor that took over.
    const events = [completed(120, "b"), completed(130, "c"), completed(700, "c"), completed(900, "d")];
    expect(longestStall(events, "w1", 100)).toEqual({ startMs: 30, endMs: 800, taskId: "d" });
    // Announced before the fault and again after it: the copy is no completion either.
    expect(longestStall([completed(50, "a"), completed(400, "a"), completed(600, "b")], "w1", 100)).toEqual({
      startMs: 0,
      endMs: 500,
      taskId: "b",
    });
  });

  it("counts only the workflow's own tasks", () => {
    expect(longestStall([completed(200, "x", "w2")], "w1", 100)).toBeNull();
  });
});
