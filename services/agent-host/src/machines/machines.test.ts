import { BehaviourFailedError, CircularDelegationError, type SubtaskSpec, type TaskEnvelope } from "@cadre/protocol";
import { taskEnvelope } from "@cadre/protocol/testing";
import { ManualClock } from "@cadre/runtime";
import { describe, expect, it } from "vitest";
import { createActor, fromPromise, waitFor } from "xstate";
import type { ChildOutcome } from "../behaviours/types.js";
import {
  type ActiveTask,
  type AgentOutcome,
  type AggregateInput,
  agentMachine,
  childFailure,
  directorMachine,
  type ReportInput,
} from "./index.js";

const task = (taskId = "w1-r"): TaskEnvelope =>
  taskEnvelope({ taskId, kind: "k", parentTaskId: null, chain: ["k"], depth: 0, input: {} });

const input = { actorId: "a1", kindName: "k", attemptTimeoutMs: 1000 };

/** A promise the test settles by hand. */
function deferred<T>() {
  let resolve!: (v: T) => void;
  let reject!: (e: unknown) => void;
  const promise = new Promise<T>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}

/** Records every report and lets the test see them. */
function reports() {
  const seen: ReportInput[] = [];
  return { seen, actor: fromPromise<void, ReportInput>(async ({ input }) => void seen.push(input)) };
}

describe("agent machine", () => {
  it("goes idle → working → reporting → idle and reports the output", async () => {
    const work = deferred<unknown>();
    const r = reports();
    const clock = new ManualClock();
    const actor = createActor(
      agentMachine.provide({ actors: { work: fromPromise(() => work.promise), report: r.actor } }),
      { input, clock },
    ).start();
    actor.send({ type: "TASK", task: task(), attempt: 1 });
    expect(actor.getSnapshot().value).toBe("working");
    work.resolve({ ok: true });
    await waitFor(actor, (s) => s.matches("idle") && s.context.completed === 1);
    expect(r.seen).toEqual([{ task: task(), attempt: 1, outcome: { status: "completed", output: { ok: true } } }]);
    expect(actor.getSnapshot().context.current).toBeNull();
  });

  it("reports a failed outcome carrying the error's code when the work throws", async () => {
    const r = reports();
    const actor = createActor(
      agentMachine.provide({
        actors: {
          work: fromPromise<unknown, ActiveTask>(async () => {
            throw new BehaviourFailedError("scripted failure");
          }),
          report: r.actor,
        },
      }),
      { input, clock: new ManualClock() },
    ).start();
    actor.send({ type: "TASK", task: task(), attempt: 2 });
    await waitFor(actor, (s) => s.matches("idle") && s.context.failed === 1);
    const outcome = r.seen[0]?.outcome as Extract<AgentOutcome, { status: "failed" }>;
    expect(outcome.status).toBe("failed");
    expect(outcome.error).toMatchObject({ code: "BEHAVIOUR_FAILED", message: "scripted failure" });
  });

  it("fails with TIMEOUT when the clock passes the attempt's time limit, and aborts the work", async () => {
    const r = reports();
    const clock = new ManualClock();
    let signal: AbortSignal | undefined;
    const actor = createActor(
      agentMachine.provide({
        actors: {
          work: fromPromise(({ signal: s }) => {
            signal = s;
            return new Promise(() => {});
          }),
          report: r.actor,
        },
      }),
      { input, clock },
    ).start();
    actor.send({ type: "TASK", task: task(), attempt: 1 });
    clock.advance(999);
    expect(actor.getSnapshot().value).toBe("working");
    clock.advance(1);
    await waitFor(actor, (s) => s.matches("idle"));
    expect(signal?.aborted).toBe(true);
    expect(r.seen[0]?.outcome).toMatchObject({ status: "failed", error: { code: "TIMEOUT" } });
    const outcome = r.seen[0]?.outcome as Extract<AgentOutcome, { status: "failed" }>;
    expect(outcome.error.message).toContain("1000 ms");
  });

  it("goes back to idle on STOP while working: the work's signal is aborted, nothing is reported, and it takes the next task", async () => {
    const r = reports();
    let signal: AbortSignal | undefined;
    const actor = createActor(
      agentMachine.provide({
        actors: {
          work: fromPromise<unknown, ActiveTask>(({ signal: s }) => {
            signal = s;
            return new Promise(() => {});
          }),
          report: r.actor,
        },
      }),
      { input, clock: new ManualClock() },
    ).start();
    actor.send({ type: "TASK", task: task("w1-r"), attempt: 1 });
    actor.send({ type: "STOP" });
    expect(signal?.aborted).toBe(true);
    expect(actor.getSnapshot().value).toBe("idle");
    expect(actor.getSnapshot().context).toMatchObject({ stopped: 1, completed: 0, failed: 0, current: null });
    expect(r.seen).toHaveLength(0);
    actor.send({ type: "TASK", task: task("w1-r-1"), attempt: 1 });
    expect(actor.getSnapshot().value).toBe("working");
    expect(actor.getSnapshot().context.history).toEqual(["w1-r-1", "w1-r"]);
  });

  it("ignores STOP once the outcome is known: the report goes on", async () => {
    const gate = deferred<void>();
    const seen: ReportInput[] = [];
    const actor = createActor(
      agentMachine.provide({
        actors: {
          work: fromPromise<unknown, ActiveTask>(async () => "done"),
          report: fromPromise<void, ReportInput>(async ({ input }) => {
            seen.push(input);
            await gate.promise;
          }),
        },
      }),
      { input, clock: new ManualClock() },
    ).start();
    actor.send({ type: "TASK", task: task(), attempt: 1 });
    await waitFor(actor, (s) => s.matches("reporting"));
    actor.send({ type: "STOP" });
    expect(actor.getSnapshot().value).toBe("reporting");
    gate.resolve();
    await waitFor(actor, (s) => s.matches("idle") && s.context.completed === 1);
    expect(actor.getSnapshot().context.stopped).toBe(0);
    expect(seen).toHaveLength(1);
  });

  it("ignores a second task while it works on one", async () => {
    const work = deferred<unknown>();
    const r = reports();
    const actor = createActor(
      agentMachine.provide({ actors: { work: fromPromise(() => work.promise), report: r.actor } }),
      { input, clock: new ManualClock() },
    ).start();
    actor.send({ type: "TASK", task: task("w1-r"), attempt: 1 });
    actor.send({ type: "TASK", task: task("w1-r-9"), attempt: 1 });
    expect(actor.getSnapshot().context.current?.task.taskId).toBe("w1-r");
    work.resolve("done");
    await waitFor(actor, (s) => s.matches("idle"));
    expect(r.seen.map((x) => x.task.taskId)).toEqual(["w1-r"]);
  });
});

const child = (taskId: string, status: "completed" | "failed", extra: Partial<ChildOutcome> = {}): ChildOutcome => ({
  taskId,
  kind: "k",
  status,
  ...extra,
});

function director(opts: { plan?: SubtaskSpec[]; delegate?: () => Promise<string[]>; clock?: ManualClock }) {
  const r = reports();
  const aggregated: ChildOutcome[][] = [];
  let delegated = 0;
  const actor = createActor(
    directorMachine.provide({
      actors: {
        plan: fromPromise(
          async () =>
            opts.plan ?? [
              { kind: "x", input: {} },
              { kind: "y", input: {} },
            ],
        ),
        delegate: fromPromise(async () => {
          delegated++;
          return opts.delegate ? opts.delegate() : ["w1-r-0", "w1-r-1"];
        }),
        aggregate: fromPromise<unknown, AggregateInput>(async ({ input }) => {
          aggregated.push(input.children);
          return { parts: input.children.map((c) => c.output) };
        }),
        report: r.actor,
      },
    }),
    { input, clock: opts.clock ?? new ManualClock() },
  ).start();
  return { actor, reports: r.seen, aggregated, delegated: () => delegated };
}

describe("director machine", () => {
  it("plans, delegates, waits for both children, aggregates them in plan order and reports", async () => {
    const d = director({});
    d.actor.send({ type: "TASK", task: task(), attempt: 1 });
    await waitFor(d.actor, (s) => s.matches({ busy: "waiting" }));
    d.actor.send({ type: "CHILD_DONE", child: child("w1-r-1", "completed", { output: "second" }) });
    expect(d.actor.getSnapshot().matches({ busy: "waiting" })).toBe(true);
    d.actor.send({ type: "CHILD_DONE", child: child("w1-r-0", "completed", { output: "first" }) });
    await waitFor(d.actor, (s) => s.matches("idle") && s.context.completed === 1);
    expect(d.aggregated[0]?.map((c) => c.taskId)).toEqual(["w1-r-0", "w1-r-1"]);
    expect(d.reports[0]?.outcome).toEqual({ status: "completed", output: { parts: ["first", "second"] } });
  });

  it("keeps a child notice that arrives before the delegate call returns", async () => {
    const gate = deferred<string[]>();
    const d = director({ delegate: () => gate.promise });
    d.actor.send({ type: "TASK", task: task(), attempt: 1 });
    await waitFor(d.actor, (s) => s.matches({ busy: "delegating" }));
    d.actor.send({ type: "CHILD_DONE", child: child("w1-r-0", "completed", { output: 0 }) });
    gate.resolve(["w1-r-0", "w1-r-1"]);
    await waitFor(d.actor, (s) => s.matches({ busy: "waiting" }));
    expect(Object.keys(d.actor.getSnapshot().context.children)).toEqual(["w1-r-0"]);
    d.actor.send({ type: "CHILD_DONE", child: child("w1-r-1", "completed", { output: 1 }) });
    await waitFor(d.actor, (s) => s.matches("idle"));
    expect(d.reports[0]?.outcome.status).toBe("completed");
  });

  it("fails with a failed child's code, message and data, naming the child as the cause, not retryable", async () => {
    const d = director({});
    d.actor.send({ type: "TASK", task: task(), attempt: 1 });
    await waitFor(d.actor, (s) => s.matches({ busy: "waiting" }));
    const refusal = new CircularDelegationError(["a", "b", "a"]).toWire();
    d.actor.send({ type: "CHILD_DONE", child: child("w1-r-0", "failed", { error: refusal }) });
    await waitFor(d.actor, (s) => s.matches("idle") && s.context.failed === 1);
    expect(d.reports[0]?.outcome).toEqual({
      status: "failed",
      error: {
        code: "CIRCULAR_DELEGATION",
        message: refusal.message,
        data: {
          chain: ["a", "b", "a"],
          cause: {
            taskId: "w1-r-0",
            kind: "k",
            code: "CIRCULAR_DELEGATION",
            message: refusal.message,
            retryable: false,
          },
        },
        retryable: false,
      },
    });
    expect(d.aggregated).toHaveLength(0);
  });

  it("is never retryable itself (the child's record is final), and keeps the child's own judgement in the cause", () => {
    const failed = new BehaviourFailedError("scripted failure").toWire();
    expect(childFailure(child("w1-r-0", "failed", { error: { ...failed, retryable: undefined } }))).toMatchObject({
      retryable: false,
      data: { cause: { retryable: true } },
    });
    expect(
      childFailure(child("w1-r-0", "failed", { error: { ...failed, retryable: false } })).data?.cause,
    ).toMatchObject({
      retryable: false,
    });
    const unknown = { code: "SOMETHING_NEW", message: "from a newer host", retryable: true };
    expect(childFailure(child("w1-r-0", "failed", { error: unknown }))).toMatchObject({
      code: "SOMETHING_NEW",
      retryable: false,
      data: { cause: { taskId: "w1-r-0", retryable: true } },
    });
    // A child failed without an error (a cancelled one): an internal error, not retryable.
    expect(childFailure(child("w1-r-0", "failed"))).toMatchObject({ code: "INTERNAL", retryable: false });
  });

  it("goes back to idle on STOP while waiting for its children, reporting nothing and ignoring their late notices", async () => {
    const d = director({});
    d.actor.send({ type: "TASK", task: task(), attempt: 1 });
    await waitFor(d.actor, (s) => s.matches({ busy: "waiting" }));
    d.actor.send({ type: "STOP" });
    expect(d.actor.getSnapshot().value).toBe("idle");
    expect(d.actor.getSnapshot().context).toMatchObject({ stopped: 1, current: null, childIds: [], children: {} });
    d.actor.send({ type: "CHILD_DONE", child: child("w1-r-0", "completed", { output: "late" }) });
    expect(d.actor.getSnapshot().value).toBe("idle");
    expect(d.reports).toHaveLength(0);
    expect(d.aggregated).toHaveLength(0);
  });

  it("aborts the plan's signal on STOP while planning", async () => {
    let signal: AbortSignal | undefined;
    const r = reports();
    const actor = createActor(
      directorMachine.provide({
        actors: {
          plan: fromPromise<SubtaskSpec[], ActiveTask>(({ signal: s }) => {
            signal = s;
            return new Promise(() => {});
          }),
          report: r.actor,
        },
      }),
      { input, clock: new ManualClock() },
    ).start();
    actor.send({ type: "TASK", task: task(), attempt: 1 });
    expect(signal?.aborted).toBe(false);
    actor.send({ type: "STOP" });
    expect(signal?.aborted).toBe(true);
    expect(actor.getSnapshot().value).toBe("idle");
    expect(r.seen).toHaveLength(0);
  });

  it("fails with the refusal when the supervisor refuses the delegation", async () => {
    const d = director({
      delegate: async () => {
        throw new CircularDelegationError(["a", "b", "a"]);
      },
    });
    d.actor.send({ type: "TASK", task: task(), attempt: 1 });
    await waitFor(d.actor, (s) => s.matches("idle") && s.context.failed === 1);
    expect(d.reports[0]?.outcome).toMatchObject({
      status: "failed",
      error: { code: "CIRCULAR_DELEGATION", data: { chain: ["a", "b", "a"] } },
    });
  });

  it("goes straight to aggregating when the plan has no subtasks", async () => {
    const d = director({ plan: [] });
    d.actor.send({ type: "TASK", task: task(), attempt: 1 });
    await waitFor(d.actor, (s) => s.matches("idle") && s.context.completed === 1);
    expect(d.delegated()).toBe(0);
    expect(d.aggregated).toEqual([[]]);
  });

  it("counts a repeated child notice once and ignores notices for other tasks", async () => {
    const d = director({});
    d.actor.send({ type: "TASK", task: task(), attempt: 1 });
    await waitFor(d.actor, (s) => s.matches({ busy: "waiting" }));
    d.actor.send({ type: "CHILD_DONE", child: child("w1-r-0", "completed", { output: "first" }) });
    d.actor.send({ type: "CHILD_DONE", child: child("w1-r-0", "completed", { output: "again" }) });
    d.actor.send({ type: "CHILD_DONE", child: child("w9-r-0", "completed", { output: "stranger" }) });
    expect(Object.keys(d.actor.getSnapshot().context.children)).toEqual(["w1-r-0"]);
    expect(d.actor.getSnapshot().context.children["w1-r-0"]?.output).toBe("first");
    expect(d.actor.getSnapshot().matches({ busy: "waiting" })).toBe(true);
  });

  it("fails with TIMEOUT when its children do not finish within the attempt's time limit", async () => {
    const clock = new ManualClock();
    const d = director({ clock });
    d.actor.send({ type: "TASK", task: task(), attempt: 1 });
    await waitFor(d.actor, (s) => s.matches({ busy: "waiting" }));
    clock.advance(1000);
    await waitFor(d.actor, (s) => s.matches("idle"));
    expect(d.reports[0]?.outcome).toMatchObject({ status: "failed", error: { code: "TIMEOUT" } });
  });
});

describe("quarantine (both machines)", () => {
  const machines = {
    agent: () =>
      agentMachine.provide({
        actors: { work: fromPromise<unknown, ActiveTask>(async () => ({ ok: true })), report: reports().actor },
      }),
    director: () =>
      directorMachine.provide({
        actors: {
          plan: fromPromise<SubtaskSpec[], ActiveTask>(async () => []),
          delegate: fromPromise<string[], ActiveTask & { subtasks: SubtaskSpec[] }>(async () => []),
          aggregate: fromPromise<unknown, AggregateInput>(async () => ({ ok: true })),
          report: reports().actor,
        },
      }),
  };

  for (const [name, make] of Object.entries(machines)) {
    it(`${name}: idle → quarantined takes no task until released, then works again`, async () => {
      const actor = createActor(make(), { clock: new ManualClock(), input });
      actor.start();
      actor.send({ type: "QUARANTINE" });
      expect(actor.getSnapshot().value).toBe("quarantined");
      actor.send({ type: "TASK", task: task("w1-r"), attempt: 1 });
      expect(actor.getSnapshot().value).toBe("quarantined");
      expect(actor.getSnapshot().context.history).toEqual([]);

      actor.send({ type: "RELEASE" });
      expect(actor.getSnapshot().value).toBe("idle");
      actor.send({ type: "TASK", task: task("w1-r"), attempt: 1 });
      await waitFor(actor, (s) => s.matches("idle") && s.context.completed === 1);
      expect(actor.getSnapshot().context.history).toEqual(["w1-r"]);
    });

    it(`${name}: a replacement starts with what it inherited and adds to it`, async () => {
      const inherited = { fromActorId: "a0", history: ["w0-r", "w0-r-1"] };
      const actor = createActor(make(), { clock: new ManualClock(), input: { ...input, inherited } });
      actor.start();
      expect(actor.getSnapshot().context).toMatchObject({ inheritedFrom: "a0", history: ["w0-r", "w0-r-1"] });
      actor.send({ type: "TASK", task: task("w1-r"), attempt: 1 });
      await waitFor(actor, (s) => s.matches("idle") && s.context.completed === 1);
      expect(actor.getSnapshot().context.history).toEqual(["w1-r", "w0-r", "w0-r-1"]);
    });
  }

  it("agent: QUARANTINE while working is not taken (the host sends it once the actor is idle)", async () => {
    const work = deferred<unknown>();
    const actor = createActor(
      agentMachine.provide({
        actors: { work: fromPromise<unknown, ActiveTask>(() => work.promise), report: reports().actor },
      }),
      { clock: new ManualClock(), input },
    );
    actor.start();
    actor.send({ type: "TASK", task: task(), attempt: 1 });
    actor.send({ type: "QUARANTINE" });
    expect(actor.getSnapshot().value).toBe("working");
    work.resolve({ ok: true });
    await waitFor(actor, (s) => s.matches("idle"));
  });
});
