/** The agent pool failure's rules (cascade-rules.ts), on events and trees written out by hand. */

import type { OpReply, TypedEvent } from "@cadre/protocol";
import type { StoredEvent } from "@cadre/runtime";
import { describe, expect, it } from "vitest";
import {
  causeOfLoss,
  chainOf,
  estimate,
  failuresIn,
  heldAtLoss,
  onLongestChain,
  rebuildHistory,
  resumeOrder,
} from "./cascade-rules.js";

type Node = OpReply<"sup.debug.workflow">["tasks"][number];

let seq = 0;
const stored = (at: number, event: TypedEvent): StoredEvent => ({ event, at, seq: ++seq, sender: "test" });
const started = (at: number, taskId: string, actorId: string, attempt = 1): StoredEvent =>
  stored(at, {
    type: "TASK_STARTED",
    category: "task",
    scope: taskId.split("-")[0] ?? "",
    data: { taskId, epoch: 1, seq: 1, kind: "worker", attempt, hostId: "h1", actorId },
  });
const completed = (at: number, taskId: string): StoredEvent =>
  stored(at, {
    type: "TASK_COMPLETED",
    category: "task",
    scope: taskId.split("-")[0] ?? "",
    data: { taskId, kind: "worker", resultId: `${taskId}:1:1`, attempt: 1, hostId: "h1" },
  });

const node = (taskId: string, parentTaskId: string | null, status: Node["status"], kind = "worker"): Node => ({
  taskId,
  parentTaskId,
  kind,
  status,
  epoch: 1,
  attempts: 1,
  holder: null,
  createdAt: 0,
  startedAt: null,
  finishedAt: null,
  stages: { queuedMs: null, workingMs: null, totalMs: null },
  conflicts: 0,
});

describe("what a failed actor held", () => {
  it("is its last start not ended before the loss", () => {
    const events = [
      started(100, "w1-r-0", "worker-a"),
      completed(200, "w1-r-0"),
      started(300, "w1-r-1", "worker-a"),
      started(310, "w1-r-2", "worker-b"),
      // After the loss: the reassigned run elsewhere does not change what it held.
      completed(900, "w1-r-1"),
    ];
    expect(heldAtLoss(events, "worker-a", 500)).toEqual({
      taskId: "w1-r-1",
      workflowId: "w1",
      kind: "worker",
      startedAt: 300,
      epoch: 1,
    });
  });

  it("is nothing when its last attempt had ended (completed, or failed on its host)", () => {
    expect(heldAtLoss([started(100, "w1-r-0", "worker-a"), completed(200, "w1-r-0")], "worker-a", 500)).toBeNull();
    const failed = stored(150, {
      type: "TASK_ATTEMPT_FAILED",
      category: "task",
      scope: "w1",
      data: { taskId: "w1-r-0", attempt: 1, code: "TIMEOUT", message: "slow", retryInMs: 100, hostId: "h1" },
    });
    expect(heldAtLoss([started(100, "w1-r-0", "worker-a"), failed], "worker-a", 500)).toBeNull();
    expect(heldAtLoss([started(100, "w1-r-0", "worker-b")], "worker-a", 500)).toBeNull();
  });
});

describe("a history rebuilt from the events stream", () => {
  it("lists the actor's tasks latest first, each once, at most 50", () => {
    const events = [
      started(1, "w1-r-0", "worker-a"),
      started(2, "w1-r-1", "worker-b"),
      started(3, "w1-r-2", "worker-a"),
      started(4, "w1-r-0", "worker-a", 2),
    ];
    expect(rebuildHistory(events, "worker-a")).toEqual(["w1-r-0", "w1-r-2"]);
    const many = Array.from({ length: 70 }, (_, i) => started(i, `w1-r-${i}`, "worker-a"));
    const h = rebuildHistory(many, "worker-a");
    expect(h).toHaveLength(50);
    expect(h[0]).toBe("w1-r-69");
  });
});

describe("the failed actors of a window", () => {
  const spawned = (at: number, actorId: string, hostId = "h2") =>
    stored(at, {
      type: "ACTOR_SPAWNED",
      category: "actor",
      scope: actorId,
      data: { hostId, teamId: "t1", kind: "worker" },
    });
  const lost = (at: number, actorId: string, teamId?: string) =>
    stored(at, {
      type: "ACTOR_LOST",
      category: "actor",
      scope: actorId,
      data: { hostId: "h2", kind: "worker", ...(teamId ? { teamId } : {}) },
    });

  it("names those lost with their host, with the team from the spawn when the loss does not say", () => {
    const f = failuresIn([spawned(10, "worker-a"), lost(5000, "worker-a")], 1000);
    expect(f).toEqual([
      { actorId: "worker-a", teamId: "t1", kind: "worker", hostId: "h2", cause: "host_lost", at: 5000 },
    ]);
  });

  it("says host_restarted when the host came back as a new incarnation after the actor was spawned", () => {
    const up = stored(4000, { type: "HOST_UP", category: "host", scope: "h2", data: { incarnation: "i2" } });
    const f = failuresIn([spawned(10, "worker-a"), up, lost(4500, "worker-a", "t1")], 1000);
    expect(f[0]?.cause).toBe("host_restarted");
    expect(causeOfLoss([5], 10, 4500, 1000)).toBe("host_lost");
    // Without a known spawn, a restart within two host-dead times before the loss counts.
    expect(causeOfLoss([3000], undefined, 4500, 1000)).toBe("host_restarted");
  });

  it("counts a quarantine with the task it answered badly, and forgets it once released", () => {
    const q = stored(100, {
      type: "AGENT_QUARANTINED",
      category: "actor",
      scope: "worker-q",
      data: {
        actorId: "worker-q",
        hostId: "h1",
        teamId: "t1",
        kind: "worker",
        taskId: "w1-r-3",
        issues: [],
        replacement: "worker-r",
      },
    });
    expect(failuresIn([q], 1000)).toMatchObject([{ actorId: "worker-q", cause: "quarantined", named: "w1-r-3" }]);
    const released = stored(200, {
      type: "AGENT_RELEASED",
      category: "actor",
      scope: "worker-q",
      data: { actorId: "worker-q", hostId: "h1", kind: "worker" },
    });
    expect(failuresIn([q, released], 1000)).toEqual([]);
  });
});

describe("the chains waiting on a task", () => {
  // root > a (lead) > a-0, a-1 ; root > b (done)
  const tree = [
    node("w1-r", null, "running", "director"),
    node("w1-r-0", "w1-r", "running", "lead"),
    node("w1-r-0-0", "w1-r-0", "queued"),
    node("w1-r-0-1", "w1-r-0", "completed"),
    node("w1-r-1", "w1-r", "completed"),
    node("w1-r-2", "w1-r", "running"),
  ];

  it("are its unfinished ancestors, root first, and its unfinished descendants", () => {
    expect(chainOf(tree, "w1-r-0")).toEqual({ waiting: ["w1-r"], under: ["w1-r-0-0"] });
    expect(chainOf(tree, "w1-r-0-0")).toEqual({ waiting: ["w1-r", "w1-r-0"], under: [] });
  });

  it("find whether a task lies on a longest unfinished chain", () => {
    expect(onLongestChain(tree, "w1-r-0-0")).toBe(true);
    expect(onLongestChain(tree, "w1-r-0")).toBe(true);
    // A chain of two (root > w1-r-2) is shorter than the critical path's three.
    expect(onLongestChain(tree, "w1-r-2")).toBe(false);
    expect(onLongestChain(tree, "w1-r-1")).toBe(false);
  });
});

describe("the recovery plan", () => {
  it("estimates a chain as its kinds' mean working times added up; null when none is measured", () => {
    const mean = new Map([
      ["lead", 6000],
      ["worker", 1500],
    ]);
    expect(estimate(["lead", "worker"], mean)).toEqual({ ms: 7500, unmeasured: [] });
    expect(estimate(["lead", "reviewer"], mean)).toEqual({ ms: 6000, unmeasured: ["reviewer"] });
    expect(estimate(["reviewer"], mean)).toEqual({ ms: null, unmeasured: ["reviewer"] });
  });

  it("resumes by priority then critical path; dependency-aware puts what an urgent workflow waits for first", () => {
    const rows = [
      { workflowId: "wa", priority: 1, criticalPathLength: 2, waitsFor: [] },
      { workflowId: "wb", priority: 9, criticalPathLength: 1, waitsFor: ["wa"] },
      { workflowId: "wc", priority: 1, criticalPathLength: 5, waitsFor: [] },
    ];
    expect(resumeOrder(rows, "priority").map((r) => r.workflowId)).toEqual(["wb", "wc", "wa"]);
    // wa takes wb's priority (9): wb waits for it.
    expect(resumeOrder(rows, "dependency_aware").map((r) => r.workflowId)).toEqual(["wa", "wb", "wc"]);
  });
});
