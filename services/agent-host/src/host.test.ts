/**
 * An agent-host in this process, on a real nats-server and a driven clock, with a stand-in
 * supervisor answering what the host asks (admission, delegation) over real NATS: the task
 * controls (stop, yield), inspection, admission of controlled workflows, a director failed by
 * a child, and per-kind retry settings.
 */

import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  type ActorSpec,
  type AdmitReplySchema,
  type CadreEvent,
  CircularDelegationError,
  decodeAs,
  encode,
  KindSchema,
  operationSubject,
  randomId,
  STREAMS,
  subjects,
  type TaskEnvelope,
  type TaskResult,
  type WorkflowControl,
} from "@cadre/protocol";
import { rejection, taskEnvelope } from "@cadre/protocol/testing";
import { call, controlKey, ManualClock, type OperationServer } from "@cadre/runtime";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import type { z } from "zod";
import { AgentHost } from "./host.js";
import {
  fakeSupervisor,
  type NatsFixture,
  natsFixture,
  pendingOf,
  publishTask,
  quietLogger,
  taskConsumerFor,
  until,
} from "./testing.js";

type Decision = z.infer<typeof AdmitReplySchema>["decision"];
type KindInput = z.input<typeof KindSchema>;

describe("an agent-host's task controls, inspection and admission", () => {
  let fx: NatsFixture;
  let dir: string;
  let host: AgentHost;
  let clock: ManualClock;
  let sup: OperationServer | undefined;
  const events: CadreEvent[] = [];
  /** What the stand-in supervisor answers to sup.task.admit, and what it was asked. */
  let decide: (taskId: string) => Decision = () => "run";
  const asked: string[] = [];
  let delegated: { parent: TaskEnvelope; childIds: string[] } | undefined;
  let n = 0;

  const startSupervisor = async () => {
    sup = await fakeSupervisor(fx.nc, {
      "sup.task.admit": async (body) => {
        asked.push(body.taskId);
        return { decision: decide(body.taskId) };
      },
      "sup.delegate": async ({ parent, subtasks }) => {
        const childIds = subtasks.map((_, i) => `${parent.taskId}-${i}`);
        delegated = { parent, childIds };
        return { taskIds: childIds, existing: [] };
      },
    });
  };

  beforeAll(async () => {
    fx = await natsFixture({ tasks: { ackWaitMs: 30_000, maxDeliver: 5, retryBackoffMs: 20 }, requestTimeoutMs: 500 });
    dir = mkdtempSync(join(tmpdir(), "cadre-host-test-"));
    clock = new ManualClock(Date.now());
    fx.nc.subscribe("cadre.v1.evt.>", {
      callback: (_err, m) => {
        events.push(decodeAs(m.data, "event").body);
      },
    });
    await startSupervisor();
    host = await AgentHost.start({
      config: { ...fx.config, host: { ...fx.config.host, outbox: { ...fx.config.host.outbox, dir } } },
      logger: quietLogger,
      hostId: "host-under-test",
      clock,
    });
  });
  afterEach(() => {
    decide = () => "run";
    delegated = undefined;
  });
  afterAll(async () => {
    await host?.stop();
    await sup?.stop();
    await fx?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  const opts = { sender: "test-supervisor", timeoutMs: 2000, hostId: "host-under-test" };

  /** A team of one kind with one actor on the host, and a task factory for it. */
  async function team(kind: KindInput, consumer: { maxDeliver?: number } = {}) {
    const teamId = `team-${++n}-${randomId(4)}`;
    const kindName = `k${n}`;
    await taskConsumerFor(fx, teamId, kindName, consumer);
    const spec: ActorSpec = { actorId: `a${n}`, teamId, kindName, kind: KindSchema.parse(kind) };
    await call(fx.nc, "host.spawn", { actors: [spec] }, opts);
    let t = 0;
    const task = (fields: Partial<TaskEnvelope> = {}) => {
      const workflowId = `w${n}x${++t}`;
      return taskEnvelope({
        workflowId,
        taskId: `${workflowId}-r`,
        teamId,
        kind: kindName,
        parentTaskId: null,
        chain: [kindName],
        depth: 0,
        ...fields,
      });
    };
    return { teamId, kindName, actorId: spec.actorId, task };
  }

  const started = (taskId: string) => events.filter((e) => e.type === "TASK_STARTED" && e.data.taskId === taskId);
  const inspect = (actorId: string) => call(fx.nc, "host.inspect", { actorId }, opts);
  const result = async (workflowId: string): Promise<TaskResult | undefined> => {
    const m = await fx.jsm.streams
      .getMessage(STREAMS.results, { last_by_subj: subjects.result(0, workflowId) })
      .catch(() => null);
    return m ? decodeAs(m.data, "result").body : undefined;
  };
  const settled = (t: { teamId: string; kindName: string }) =>
    until("the task's message settled", async () => {
      const p = await pendingOf(fx, t.teamId, t.kindName);
      return p.pending === 0 && p.unacked === 0;
    });
  const idle = (actorId: string) => until(`${actorId} idle`, async () => (await inspect(actorId)).held === null);
  const putControl = (c: Partial<WorkflowControl> & { workflowId: string }) =>
    fx.buckets.registry.put(
      controlKey(c.workflowId),
      JSON.stringify({
        teamId: "t",
        paused: false,
        cancelled: null,
        maxAgents: null,
        guarantee: 0,
        parked: [],
        updatedAt: 1,
        ...c,
      }),
    );
  const slowAgent: KindInput = { role: "agent", replicas: 1, behaviour: { type: "script", sleepMs: 60_000 } };
  const quickAgent: KindInput = { role: "agent", replicas: 1, behaviour: { type: "script", output: { ok: true } } };

  it("inspects an idle actor: its state, no held task, its history and how long it has been idle", async () => {
    const t = await team(quickAgent);
    clock.advance(1500);
    const live = await inspect(t.actorId);
    expect(live).toMatchObject({ actorId: t.actorId, state: "idle", quarantined: false, held: null, history: [] });
    expect(live.idleSinceMs).toBe(1500);
    expect(live.snapshot).toMatchObject({ value: "idle" });
    const err = await rejection(inspect("nobody"));
    expect(err.code).toBe("NOT_FOUND");
    expect(err.message).toContain("nobody");
  });

  it("stop: aborts the running attempt, terminates its message, publishes no result, and the actor takes the next task", async () => {
    const t = await team(slowAgent);
    const first = t.task();
    await publishTask(fx, first);
    await until("the first task started", () => started(first.taskId).length === 1);
    const busy = await inspect(t.actorId);
    expect(busy.held).toMatchObject({ taskId: first.taskId, epoch: 1, attempt: 1, chain: [t.kindName] });
    expect(busy.idleSinceMs).toBeNull();
    expect(busy.state).toBe("working");

    const reply = await call(fx.nc, "host.task", { op: "stop", taskId: first.taskId, reason: "cancelled" }, opts);
    expect(reply).toEqual({ taskId: first.taskId, held: true, epoch: 1 });
    await settled(t);
    await idle(t.actorId);
    // The work was aborted: its time passing publishes nothing.
    clock.advance(60_000);
    expect(await result(first.workflowId)).toBeUndefined();
    expect((await inspect(t.actorId)).history).toEqual([first.taskId]);

    const second = t.task();
    await publishTask(fx, second);
    await until("the next task started", () => started(second.taskId).length === 1);
    await call(fx.nc, "host.task", { op: "stop", taskId: second.taskId }, opts);
    await settled(t);
  });

  it("yield: aborts the attempt, acks its message and publishes no result; a task it does not hold is not held", async () => {
    const t = await team(slowAgent);
    const task = t.task({ epoch: 2 });
    await publishTask(fx, task);
    await until("the task started", () => started(task.taskId).length === 1);
    expect(await call(fx.nc, "host.task", { op: "yield", taskId: task.taskId }, opts)).toEqual({
      taskId: task.taskId,
      held: true,
      epoch: 2,
    });
    await settled(t);
    await idle(t.actorId);
    expect(await result(task.workflowId)).toBeUndefined();
    expect(await call(fx.nc, "host.task", { op: "yield", taskId: task.taskId }, opts)).toEqual({
      taskId: task.taskId,
      held: false,
    });
  });

  it("runs tasks of workflows without a control without asking the supervisor", async () => {
    const t = await team(quickAgent);
    const task = t.task();
    await publishTask(fx, task);
    await until("the result", async () => (await result(task.workflowId)) !== undefined);
    expect(await result(task.workflowId)).toMatchObject({ status: "completed", attempt: 1 });
    expect(asked).not.toContain(task.taskId);
  });

  it("admission: parked is acked and not started, cancelled is terminated, run starts it; the actor is idle after each", async () => {
    const t = await team(quickAgent);
    const parked = t.task();
    const cancelled = t.task();
    const admitted = t.task();
    for (const x of [parked, cancelled, admitted]) await putControl({ workflowId: x.workflowId, paused: true });
    await until("the host following the controls", () => host.control(admitted.workflowId)?.paused === true);
    decide = (id) => (id === parked.taskId ? "parked" : id === cancelled.taskId ? "cancelled" : "run");
    for (const x of [parked, cancelled]) {
      await publishTask(fx, x);
      await until(`${x.taskId} asked`, () => asked.includes(x.taskId));
      await settled(t);
      await idle(t.actorId);
      expect(started(x.taskId)).toEqual([]);
    }
    await publishTask(fx, admitted);
    await until("the admitted task's result", async () => (await result(admitted.workflowId)) !== undefined);
    expect(started(admitted.taskId)).toHaveLength(1);
    expect(await result(parked.workflowId)).toBeUndefined();
    expect(await result(cancelled.workflowId)).toBeUndefined();
  });

  it("admission: a cancelled workflow's task is terminated without asking", async () => {
    const t = await team(quickAgent);
    const task = t.task();
    await putControl({ workflowId: task.workflowId, cancelled: { reason: "operator", at: 1 } });
    await until("the host following the control", () => Boolean(host.control(task.workflowId)?.cancelled));
    await publishTask(fx, task);
    await settled(t);
    expect(asked).not.toContain(task.taskId);
    expect(started(task.taskId)).toEqual([]);
    await idle(t.actorId);
  });

  it("admission: when the supervisor does not answer, the task is given back with the kind's backoff and runs once admitted", async () => {
    const t = await team({ ...quickAgent, retry: { backoffMs: 300 } });
    const task = t.task();
    await putControl({ workflowId: task.workflowId, maxAgents: 1 });
    await until("the host following the control", () => host.control(task.workflowId) !== undefined);
    // A listener that never answers stands in for a supervisor that does not reply.
    await sup?.stop();
    const requests: string[] = [];
    const silent = fx.nc.subscribe(operationSubject("sup.task.admit"), {
      callback: (_err, m) => {
        requests.push(decodeAs(m.data, "sup.task.admit").body.taskId);
      },
    });
    try {
      await publishTask(fx, task);
      await until("the host asking", () => requests.includes(task.taskId));
    } finally {
      silent.unsubscribe();
      await startSupervisor();
    }
    // Its request times out (500 ms), the task comes back 300 ms later and is admitted.
    await until("the result", async () => (await result(task.workflowId)) !== undefined);
    expect(await result(task.workflowId)).toMatchObject({ status: "completed", attempt: 2 });
    expect(asked).toContain(task.taskId);
    await settled(t);
  });

  it("a director whose child failed with a non-retryable error fails at once with the child as the cause, not redelivered", async () => {
    const t = await team({ role: "director", replicas: 1, behaviour: { type: "script", delegate: [{ kind: "x" }] } });
    const task = t.task();
    await publishTask(fx, task);
    await until("the delegation", () => delegated?.parent.taskId === task.taskId);
    const childId = delegated?.childIds[0] ?? "";
    const refusal = new CircularDelegationError(["a", "b", "a"]).toWire();
    fx.nc.publish(
      subjects.child(task.taskId),
      encode(
        "child.done",
        {
          parentTaskId: task.taskId,
          record: {
            task: taskEnvelope({ taskId: childId, workflowId: task.workflowId, parentTaskId: task.taskId, kind: "x" }),
            status: "failed",
            createdAt: 0,
            finishedAt: 1,
            error: refusal,
            applied: null,
            duplicates: [],
          },
        },
        { sender: "test-supervisor" },
      ),
    );
    await until("the director's result", async () => (await result(task.workflowId)) !== undefined);
    const r = await result(task.workflowId);
    expect(r).toMatchObject({
      status: "failed",
      attempt: 1,
      error: {
        code: "CIRCULAR_DELEGATION",
        retryable: false,
        data: { chain: ["a", "b", "a"], cause: { taskId: childId, kind: "x" } },
      },
    });
    await settled(t);
  });

  it("retries a kind's failures as its retry settings say, not as the configuration does", async () => {
    const t = await team(
      {
        role: "agent",
        replicas: 1,
        behaviour: { type: "script", failProbability: 1 },
        retry: { attempts: 2, backoffMs: 5 },
      },
      { maxDeliver: 5 },
    );
    const task = t.task();
    await publishTask(fx, task);
    await until("the final failure", async () => (await result(task.workflowId)) !== undefined);
    expect(await result(task.workflowId)).toMatchObject({
      status: "failed",
      attempt: 2,
      error: { code: "BEHAVIOUR_FAILED" },
    });
    const retried = events.filter((e) => e.type === "TASK_ATTEMPT_FAILED" && e.data.taskId === task.taskId);
    expect(retried.map((e) => e.data.retryInMs)).toEqual([5]);
    await settled(t);
  });
});
