/** ADOPT: a running actor takes on a failed actor's context (a transfer), in any state. */

import type { TaskEnvelope } from "@cadre/protocol";
import { taskEnvelope } from "@cadre/protocol/testing";
import { ManualClock } from "@cadre/runtime";
import { describe, expect, it } from "vitest";
import { createActor, fromPromise } from "xstate";
import { agentMachine, directorMachine } from "./index.js";
import { adopted } from "./shared.js";

const task = (taskId: string): TaskEnvelope =>
  taskEnvelope({ taskId, kind: "k", parentTaskId: null, chain: ["k"], depth: 0, input: {} });
const input = { actorId: "a2", kindName: "k", attemptTimeoutMs: 1000 };

describe("adopting a failed actor's context", () => {
  it("keeps the adopted history whole after the actor's own tasks, each task once, at most 50", () => {
    const own = { history: ["w1-r-9", "w1-r-3"], inheritedFrom: null };
    expect(adopted(own, { fromActorId: "a1", history: ["w1-r-3", "w1-r-2", "w1-r-1"] })).toEqual({
      history: ["w1-r-9", "w1-r-3", "w1-r-2", "w1-r-1"],
      inheritedFrom: "a1",
    });
    const busy = { history: Array.from({ length: 50 }, (_, i) => `w2-r-${i}`), inheritedFrom: null };
    const theirs = Array.from({ length: 30 }, (_, i) => `w1-r-${i}`);
    const after = adopted(busy, { fromActorId: "a1", history: theirs });
    expect(after.history).toHaveLength(50);
    expect(after.history.slice(20)).toEqual(theirs);
    expect(after.history[0]).toBe("w2-r-0");
  });

  it("is taken by an agent at work without disturbing the task in flight", () => {
    const actor = createActor(
      agentMachine.provide({
        actors: { work: fromPromise(() => new Promise(() => {})), report: fromPromise(async () => {}) },
      }),
      { input, clock: new ManualClock() },
    ).start();
    actor.send({ type: "TASK", task: task("w1-r-7"), attempt: 1 });
    actor.send({ type: "ADOPT", context: { fromActorId: "a1", history: ["w1-r-1", "w1-r-0"] } });
    const s = actor.getSnapshot();
    expect(s.value).toBe("working");
    expect(s.context.current?.task.taskId).toBe("w1-r-7");
    expect(s.context.history).toEqual(["w1-r-7", "w1-r-1", "w1-r-0"]);
    expect(s.context.inheritedFrom).toBe("a1");
  });

  it("is taken by an idle director, and a quarantined one", () => {
    const actor = createActor(directorMachine, { input, clock: new ManualClock() }).start();
    actor.send({ type: "QUARANTINE" });
    actor.send({ type: "ADOPT", context: { fromActorId: "a1", history: ["w1-r"] } });
    expect(actor.getSnapshot().value).toBe("quarantined");
    expect(actor.getSnapshot().context).toMatchObject({ history: ["w1-r"], inheritedFrom: "a1" });
  });
});
