/** The counts (counts.ts). */

import { describe, expect, it } from "vitest";
import { applied, counts, reassigned, report, stream } from "./testing.js";

describe("counts", () => {
  it("lost, applied twice, reassigned, conflicts and duplicates as the events show", () => {
    const { list, add } = stream();
    add(0, "WORKFLOW_SUBMITTED", "w1", { team: "t", teamId: "t1", root: "w1-0" });
    add(1, "WORKFLOW_SUBMITTED", "w2", { team: "t", teamId: "t1", root: "w2-0" });
    add(2, "WORKFLOW_SUBMITTED", "w3", { team: "t", teamId: "t1", root: "w3-0" });
    add(10, "TASK_COMPLETED", "w1", applied("w1-1", "h1", "r1"));
    // The same result's event twice (a retried publish) is one application; two results are two.
    add(11, "TASK_COMPLETED", "w1", applied("w1-1", "h1", "r1"));
    add(12, "TASK_COMPLETED", "w1", applied("w1-2", "h1", "r2"));
    add(13, "TASK_COMPLETED", "w1", applied("w1-2", "h2", "r3"));
    add(14, "TASK_FAILED", "w1", { ...applied("w1-3", "h1"), code: "X" });
    add(20, "TASK_REASSIGNED", "w1", reassigned("w1-4", "h1"));
    add(21, "TASK_REASSIGNED", "w1", reassigned("w1-4", "h2"));
    add(22, "TASK_REASSIGNED", "w1", reassigned("w1-5", "h1", { reason: "invalid-response", actorId: "a" }));
    add(30, "RESULT_CONFLICT", "w1", {
      taskId: "w1-4",
      resultId: "x",
      epoch: 1,
      currentEpoch: 2,
      hostId: "h1",
      status: "completed",
      applied: null,
    });
    add(31, "RESULT_DUPLICATE", "w1", { taskId: "w1-1", resultId: "y", appliedResultId: "r1", hostId: "h2" });
    add(32, "TASK_ATTEMPT_FAILED", "w1", {
      taskId: "w1-6",
      attempt: 1,
      code: "E",
      message: "m",
      retryInMs: 100,
      hostId: "h1",
    });
    add(40, "WORKFLOW_COMPLETED", "w1", { tasks: counts(7, 6, { duplicates: 1, conflicts: 1 }), ms: 40 });
    add(41, "WORKFLOW_CANCELLED", "w2", { reason: "enough", cancelled: 2, tasks: counts(5, 2, { cancelled: 2 }) });
    const c = report(list).counts;
    expect(c).toMatchObject({
      lost: 2,
      lostBy: [
        { workflowId: "w1", lost: 1 },
        { workflowId: "w2", lost: 1 },
      ],
      appliedTwice: 1,
      appliedTwiceTasks: ["w1-2"],
      reassigned: 3,
      reassignedTasks: 2,
      reassignedBy: { "host-lost": 2, "invalid-response": 1 },
      conflicts: 1,
      duplicates: 1,
      attemptsFailed: 1,
      tasksCompleted: 4,
      tasksFailed: 1,
      workflows: { submitted: 3, completed: 1, failed: 0, cancelled: 1, unfinished: ["w3"] },
      workflowCounts: { total: 12, completed: 8, cancelled: 2, duplicates: 1, conflicts: 1 },
    });
  });
});
