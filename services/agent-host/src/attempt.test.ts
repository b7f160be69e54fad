import {
  BehaviourFailedError,
  type CadreEvent,
  CircularDelegationError,
  encode,
  type Kind,
  KindSchema,
  subjects,
  type TaskRecord,
  type TaskResult,
  type WireErrorBody,
} from "@cadre/protocol";
import { taskEnvelope } from "@cadre/protocol/testing";
import { createBreaker, ManualClock } from "@cadre/runtime";
import type { JsMsg } from "@nats-io/jetstream";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type AttemptDeps, type Outcome, TaskAttempt } from "./attempt.js";
import type { ChildOutcome } from "./behaviours/index.js";
import { childFailure } from "./machines/index.js";
import {
  fakeSupervisor,
  type NatsFixture,
  natsFixture,
  nextDelivery,
  pendingOf,
  publishTask,
  quietLogger,
  taskConsumerFor,
  until,
} from "./testing.js";

const agentKind: Kind = KindSchema.parse({ role: "agent", behaviour: { type: "script" } });
const directorKind: Kind = KindSchema.parse({ role: "director", behaviour: { type: "script" } });

describe("a task attempt, on a real nats-server and a driven clock", () => {
  let fx: NatsFixture;
  let n = 0;
  beforeAll(async () => {
    fx = await natsFixture();
  });
  afterAll(async () => {
    await fx?.stop();
  });

  /** A task on a fresh (team, kind) consumer, delivered once, and an attempt at it. */
  async function setup(opts: { kind?: Kind; attempts?: number; backoffMs?: number; children?: TaskRecord[] } = {}) {
    let read: (taskId: string) => TaskRecord | undefined = (id) => opts.children?.find((c) => c.task.taskId === id);
    const teamId = `team-${++n}`;
    const kind = `k${n}`;
    await taskConsumerFor(fx, teamId, kind);
    const task = taskEnvelope({
      taskId: `w${n}-r`,
      workflowId: `w${n}`,
      teamId,
      kind,
      parentTaskId: null,
      chain: [kind],
      depth: 0,
    });
    await publishTask(fx, task);
    const msg = (await nextDelivery(fx, teamId, kind)) as JsMsg;
    const clock = new ManualClock(1_000);
    const stored: TaskResult[] = [];
    const events: CadreEvent[] = [];
    const children: ChildOutcome[] = [];
    const reads: string[] = [];
    let workings = 0;
    // The real message, with its `working()` calls counted.
    const counted = new Proxy(msg, {
      get: (target, p) =>
        p === "working"
          ? () => {
              workings++;
              target.working();
            }
          : Reflect.get(target, p, target),
    });
    const deps: AttemptDeps = {
      nc: fx.nc,
      hostId: "h1",
      clock,
      logger: quietLogger,
      ackWaitMs: 3000,
      requestTimeoutMs: 2000,
      acquireTimeoutMs: 2000,
      store: async (r) => {
        stored.push(r);
        return "published";
      },
      emit: (e) => events.push(e),
      readTask: async (id) => {
        reads.push(id);
        return read(id);
      },
      delegation: createBreaker({ name: "delegation", threshold: 5, resetTimeoutMs: 1000, clock }),
      runHooks: async () => {},
    };
    const actor = {
      actorId: "a1",
      kind: opts.kind ?? agentKind,
      retry: { attempts: opts.attempts ?? 3, backoffMs: opts.backoffMs ?? 200 },
      onChild: (c: ChildOutcome) => children.push(c),
    };
    const attempt = new TaskAttempt(deps, actor, counted, task);
    return {
      teamId,
      kind,
      task,
      attempt,
      clock,
      stored,
      events,
      children,
      reads,
      workings: () => workings,
      readTask: (fn: typeof read) => {
        read = fn;
      },
    };
  }

  /** JetStream has the message settled for good: nothing pending, nothing unacknowledged. */
  const settledOnServer = (s: { teamId: string; kind: string }) =>
    until("the message settled on the server", async () => {
      const p = await pendingOf(fx, s.teamId, s.kind);
      return p.pending === 0 && p.unacked === 0;
    });

  const failed = (error: WireErrorBody): Outcome => ({ status: "failed", error });

  it("keeps the ack wait extended every third of it until it is closed", async () => {
    const s = await setup();
    s.clock.advance(999);
    expect(s.workings()).toBe(0);
    s.clock.advance(1);
    expect(s.workings()).toBe(1);
    s.clock.advance(2000);
    expect(s.workings()).toBe(3);
    s.attempt.close();
    expect(s.clock.pending).toBe(0);
    s.clock.advance(5000);
    expect(s.workings()).toBe(3);
    s.attempt.settle("term");
  });

  it("announces TASK_STARTED with its epoch and sequence, and lists itself for heartbeats", async () => {
    const s = await setup();
    expect(s.attempt.phase).toBe("admitting");
    expect(s.attempt.start()).toBe(true);
    expect(s.attempt.phase).toBe("running");
    expect(s.events[0]).toMatchObject({
      type: "TASK_STARTED",
      scope: s.task.workflowId,
      data: { taskId: s.task.taskId, attempt: 1, epoch: 1, hostId: "h1", actorId: "a1", seq: s.attempt.msg.seq },
    });
    expect(s.attempt.held()).toEqual({ taskId: s.task.taskId, epoch: 1, seq: s.attempt.msg.seq });
    s.attempt.settle("term");
  });

  it("stores a completed attempt's result and acks its message", async () => {
    const s = await setup();
    s.attempt.start();
    s.clock.advance(250);
    await s.attempt.report({ status: "completed", output: { ok: true } });
    expect(s.stored).toEqual([
      {
        taskId: s.task.taskId,
        workflowId: s.task.workflowId,
        epoch: 1,
        attempt: 1,
        hostId: "h1",
        actorId: "a1",
        status: "completed",
        output: { ok: true },
        startedAt: 1_000,
        finishedAt: 1_250,
      },
    ]);
    expect(s.attempt.phase).toBe("settled");
    await settledOnServer(s);
    expect(s.clock.pending).toBe(0);
  });

  it("gives a retryable failure back with the kind's backoff while attempts remain, and it is delivered again", async () => {
    const s = await setup({ backoffMs: 50 });
    s.attempt.start();
    await s.attempt.report(failed(new BehaviourFailedError("scripted failure").toWire()));
    expect(s.stored).toEqual([]);
    expect(s.events.at(-1)).toMatchObject({
      type: "TASK_ATTEMPT_FAILED",
      data: { taskId: s.task.taskId, attempt: 1, code: "BEHAVIOUR_FAILED", retryInMs: 50 },
    });
    const again = await nextDelivery(fx, s.teamId, s.kind);
    expect(again?.info.deliveryCount).toBe(2);
    again?.term();
  });

  it("stores a retryable failure as the final result on the kind's last attempt", async () => {
    const s = await setup({ attempts: 1 });
    s.attempt.start();
    await s.attempt.report(failed(new BehaviourFailedError("scripted failure").toWire()));
    expect(s.stored).toHaveLength(1);
    expect(s.stored[0]).toMatchObject({ status: "failed", attempt: 1, error: { code: "BEHAVIOUR_FAILED" } });
    await settledOnServer(s);
  });

  it("stores a failure whose error says it is not retryable at once, whatever its code", async () => {
    const s = await setup({ attempts: 5 });
    s.attempt.start();
    await s.attempt.report(failed({ ...new BehaviourFailedError("doomed").toWire(), retryable: false }));
    expect(s.stored).toHaveLength(1);
    expect(s.events.some((e) => e.type === "TASK_ATTEMPT_FAILED")).toBe(false);
    await settledOnServer(s);
  });

  it("reports a director failed by a non-retryable child at once, with the child as the cause", async () => {
    const s = await setup({ kind: directorKind, attempts: 5 });
    s.attempt.start();
    const refusal = new CircularDelegationError(["a", "b", "a"]).toWire();
    await s.attempt.report({
      status: "failed",
      error: childFailure({ taskId: `${s.task.taskId}-0`, kind: "b", status: "failed", error: refusal }),
    });
    expect(s.stored).toHaveLength(1);
    expect(s.stored[0]?.error).toMatchObject({
      code: "CIRCULAR_DELEGATION",
      retryable: false,
      data: { chain: ["a", "b", "a"], cause: { taskId: `${s.task.taskId}-0`, kind: "b", code: "CIRCULAR_DELEGATION" } },
    });
    await settledOnServer(s);
  });

  it("reports a director at once even when its child's error was retryable (the child's record is final)", async () => {
    const s = await setup({ kind: directorKind, attempts: 5, backoffMs: 20 });
    s.attempt.start();
    const flaky = new BehaviourFailedError("flaky").toWire();
    await s.attempt.report({
      status: "failed",
      error: childFailure({ taskId: `${s.task.taskId}-0`, kind: "b", status: "failed", error: flaky }),
    });
    expect(s.stored).toHaveLength(1);
    expect(s.stored[0]).toMatchObject({ status: "failed", error: { code: "BEHAVIOUR_FAILED", retryable: false } });
  });

  it("fails a task whose deadline passed with a TIMEOUT that is not retried", async () => {
    const s = await setup();
    expect(s.attempt.expired()).toMatchObject({ status: "failed", error: { code: "TIMEOUT", retryable: false } });
    await s.attempt.report(s.attempt.expired());
    expect(s.stored).toHaveLength(1);
  });

  it("stop: terminates the message (never redelivered), reports nothing, and a late report is ignored", async () => {
    const s = await setup();
    s.attempt.start();
    expect(s.attempt.abort("stop", "cancelled by an operator")).toBe(true);
    expect(s.attempt.phase).toBe("settled");
    expect(s.events.at(-1)).toMatchObject({
      type: "TASK_ATTEMPT_STOPPED",
      data: { taskId: s.task.taskId, op: "stop", reason: "cancelled by an operator" },
    });
    await s.attempt.report({ status: "completed", output: {} });
    expect(s.stored).toEqual([]);
    await settledOnServer(s);
    expect(s.clock.pending).toBe(0);
  });

  it("yield: acks the message (the supervisor re-publishes it) and reports nothing", async () => {
    const s = await setup();
    s.attempt.start();
    expect(s.attempt.abort("yield")).toBe(true);
    expect(await s.attempt.report({ status: "completed", output: {} })).toBeUndefined();
    expect(s.stored).toEqual([]);
    await settledOnServer(s);
  });

  it("cannot be stopped once its outcome is being reported", async () => {
    const s = await setup();
    s.attempt.start();
    const reporting = s.attempt.report({ status: "completed", output: 1 });
    expect(s.attempt.phase).toBe("reporting");
    expect(s.attempt.abort("stop")).toBe(false);
    await reporting;
    expect(s.stored).toHaveLength(1);
  });

  it("gives a task back after the retry backoff when it cannot be admitted", async () => {
    const s = await setup({ backoffMs: 30 });
    s.attempt.settle("retry");
    expect(s.attempt.phase).toBe("settled");
    const again = await nextDelivery(fx, s.teamId, s.kind);
    expect(again?.info.deliveryCount).toBe(2);
    again?.term();
  });

  it("delegates through the supervisor and hands each child's outcome to the actor once; missed ones are re-read", async () => {
    const s = await setup({ kind: directorKind, children: [] });
    const id = (i: number) => `${s.task.taskId}-${i}`;
    const record = (i: number, status: TaskRecord["status"]): TaskRecord => ({
      task: taskEnvelope({ taskId: id(i), workflowId: s.task.workflowId, parentTaskId: s.task.taskId }),
      status,
      createdAt: 0,
      finishedAt: status === "queued" ? null : 1,
      output: { i },
      applied: null,
      duplicates: [],
      conflicts: [],
      invalid: [],
    });
    const records = new Map<string, TaskRecord>([[id(1), record(1, "completed")]]);
    s.readTask((taskId) => records.get(taskId));
    const seen: unknown[] = [];
    const sup = await fakeSupervisor(fx.nc, {
      "sup.delegate": async (body) => {
        seen.push(body);
        return { taskIds: [id(0), id(1), id(2)], existing: [id(1)] };
      },
    });
    try {
      s.attempt.start();
      const ids = await s.attempt.delegate([
        { kind: "x", input: {} },
        { kind: "x", input: {} },
        { kind: "x", input: {} },
      ]);
      expect(ids).toEqual([id(0), id(1), id(2)]);
      expect(seen).toHaveLength(1);
      // A retried delegation: child 1 existed and had finished before the subscription.
      expect(s.children.map((c) => c.taskId)).toEqual([id(1)]);
      const notice = (rec: TaskRecord) =>
        fx.nc.publish(
          subjects.child(s.task.taskId),
          encode("child.done", { parentTaskId: s.task.taskId, record: rec }, { sender: "sup" }),
        );
      notice(record(0, "queued"));
      notice(record(0, "failed"));
      notice(record(0, "completed"));
      notice(record(1, "completed"));
      // One connection: the notices reach the subscription before the flush's answer.
      await fx.nc.flush();
      expect(s.children.map((c) => [c.taskId, c.status])).toEqual([
        [id(1), "completed"],
        [id(0), "failed"],
      ]);
      // Child 2's notice was missed; the ticker re-reads it (and only it).
      records.set(id(2), record(2, "completed"));
      s.reads.length = 0;
      s.clock.advance(1000);
      await until("child 2 re-read", () => s.children.length === 3);
      expect(s.reads).toEqual([id(2)]);
      s.attempt.settle("term");
      notice(record(2, "completed"));
      await fx.nc.flush();
      expect(s.children).toHaveLength(3);
    } finally {
      await sup.stop();
    }
  });
});
