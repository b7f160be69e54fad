import { BehaviourFailedError, type TaskEnvelope } from "@cadre/protocol";
import { taskEnvelope } from "@cadre/protocol/testing";
import { ManualClock } from "@cadre/runtime";
import { describe, expect, it } from "vitest";
import { createActor, fromPromise, waitFor } from "xstate";
import { agentMachine } from "./agent.js";
import type { ActiveTask, ReportInput } from "./shared.js";

function task(taskId = "w1-r-0"): TaskEnvelope {
  return taskEnvelope({ taskId });
}

const input = { actorId: "a1", kindName: "backend-engineer", attemptTimeoutMs: 1000 };

/** An agent whose `work` is given and whose reports are collected. */
function start(work: (args: { input: ActiveTask; signal: AbortSignal }) => Promise<unknown>) {
  const clock = new ManualClock();
  const reports: ReportInput[] = [];
  const machine = agentMachine.provide({
    actors: {
      work: fromPromise<unknown, ActiveTask>(work),
      report: fromPromise<void, ReportInput>(async ({ input }) => {
        reports.push(input);
      }),
    },
  });
  const actor = createActor(machine, { clock, input });
  actor.start();
  return { actor, clock, reports };
}

describe("agent machine", () => {
  it("works on a task, reports the completed outcome and goes back to idle", async () => {
    const seen: string[] = [];
    const { actor, reports } = start(async ({ input }) => ({ done: input.task.taskId }));
    actor.subscribe((s) => seen.push(String(s.value)));
    expect(actor.getSnapshot().value).toBe("idle");

    actor.send({ type: "TASK", task: task(), attempt: 1 });
    await waitFor(actor, (s) => s.matches("idle") && s.context.completed === 1);

    expect(seen).toEqual(["working", "reporting", "idle"]);
    expect(reports).toHaveLength(1);
    expect(reports[0]?.attempt).toBe(1);
    expect(reports[0]?.task.taskId).toBe("w1-r-0");
    expect(reports[0]?.outcome).toEqual({ status: "completed", output: { done: "w1-r-0" } });
    const ctx = actor.getSnapshot().context;
    expect(ctx.current).toBeNull();
    expect(ctx.outcome).toBeNull();
    expect(ctx.failed).toBe(0);
  });

  it("reports a failed outcome carrying the error code when work throws", async () => {
    const { actor, reports } = start(async () => {
      throw new BehaviourFailedError("boom", { exitCode: 3 });
    });
    actor.send({ type: "TASK", task: task(), attempt: 2 });
    await waitFor(actor, (s) => s.matches("idle") && s.context.failed === 1);

    expect(reports[0]?.outcome).toEqual({
      status: "failed",
      error: { code: "BEHAVIOUR_FAILED", message: "boom", data: { exitCode: 3 }, retryable: true },
    });
    expect(actor.getSnapshot().context.completed).toBe(0);
  });

  it("turns anything thrown that is not a Cadre error into an INTERNAL failure", async () => {
    const { actor, reports } = start(async () => {
      throw new Error("plain");
    });
    actor.send({ type: "TASK", task: task(), attempt: 1 });
    await waitFor(actor, (s) => s.matches("idle") && s.context.failed === 1);
    expect(reports[0]?.outcome).toMatchObject({ status: "failed", error: { code: "INTERNAL", message: "plain" } });
  });

  it("reports TIMEOUT and aborts the work when the attempt runs out of time", async () => {
    let signal: AbortSignal | undefined;
    const { actor, clock, reports } = start(({ signal: s }) => {
      signal = s;
      return new Promise(() => {});
    });
    actor.send({ type: "TASK", task: task(), attempt: 1 });
    expect(actor.getSnapshot().value).toBe("working");

    clock.advance(999);
    expect(actor.getSnapshot().value).toBe("working");
    expect(signal?.aborted).toBe(false);

    clock.advance(1);
    expect(signal?.aborted).toBe(true);
    await waitFor(actor, (s) => s.matches("idle") && s.context.failed === 1);
    expect(reports[0]?.outcome).toMatchObject({
      status: "failed",
      error: { code: "TIMEOUT", data: { what: "task w1-r-0 attempt 1", timeoutMs: 1000 } },
    });
  });

  it("cancels the attempt timer when work finishes in time", async () => {
    const { actor, clock, reports } = start(async () => "ok");
    actor.send({ type: "TASK", task: task(), attempt: 1 });
    await waitFor(actor, (s) => s.matches("idle") && s.context.completed === 1);
    expect(clock.pending).toBe(0);
    clock.advance(5000);
    expect(reports).toHaveLength(1);
  });

  it("ignores a TASK that arrives while it is working", async () => {
    let finish: (v: unknown) => void = () => {};
    const { actor, reports } = start(({ input }) =>
      input.task.taskId === "first" ? new Promise((r) => (finish = r)) : Promise.resolve("second"),
    );
    actor.send({ type: "TASK", task: task("first"), attempt: 1 });
    actor.send({ type: "TASK", task: task("second"), attempt: 1 });
    expect(actor.getSnapshot().context.current?.task.taskId).toBe("first");

    finish("first done");
    await waitFor(actor, (s) => s.matches("idle") && s.context.completed === 1);
    expect(reports.map((r) => r.task.taskId)).toEqual(["first"]);
  });

  it("returns to idle and counts the attempt even when report fails", async () => {
    const clock = new ManualClock();
    const machine = agentMachine.provide({
      actors: {
        work: fromPromise<unknown, ActiveTask>(async () => "ok"),
        report: fromPromise<void, ReportInput>(async () => {
          throw new Error("nats down");
        }),
      },
    });
    const actor = createActor(machine, { clock, input }).start();
    actor.send({ type: "TASK", task: task(), attempt: 1 });
    const s = await waitFor(actor, (x) => x.matches("idle") && x.context.completed === 1);
    expect(s.context.current).toBeNull();
  });

  it("fails loudly when the host forgot to provide an effect", async () => {
    const actor = createActor(agentMachine, { clock: new ManualClock(), input }).start();
    actor.send({ type: "TASK", task: task(), attempt: 1 });
    // Both `work` and `report` are missing; the actor still ends up idle, counting a failure.
    const s = await waitFor(actor, (x) => x.matches("idle") && x.context.failed === 1);
    expect(s.context.completed).toBe(0);
  });
});
