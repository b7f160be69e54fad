import { randomId, type WorkflowControl } from "@cadre/protocol";
import { rejection, taskEnvelope } from "@cadre/protocol/testing";
import { controlKey } from "@cadre/runtime";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { WorkflowControls } from "./admission.js";
import { fakeSupervisor, type NatsFixture, natsFixture, quietLogger, until } from "./testing.js";

describe("workflow controls and admission, on a real nats-server", () => {
  let fx: NatsFixture;
  beforeAll(async () => {
    fx = await natsFixture({ requestTimeoutMs: 500 });
  });
  afterAll(async () => {
    await fx?.stop();
  });

  const control = (workflowId: string, fields: Partial<WorkflowControl> = {}): WorkflowControl => ({
    workflowId,
    teamId: "team-1",
    paused: false,
    yielding: false,
    cancelled: null,
    maxAgents: null,
    guarantee: 0,
    parked: [],
    updatedAt: 1,
    ...fields,
  });
  const put = (c: WorkflowControl) => fx.buckets.registry.put(controlKey(c.workflowId), JSON.stringify(c));
  const start = () =>
    WorkflowControls.start({
      nc: fx.nc,
      registry: fx.buckets.registry,
      hostId: "h1",
      requestTimeoutMs: 500,
      logger: quietLogger,
    });
  const wf = () => `w${randomId(8)}`;

  it("admits a task of a workflow without a control with no request (nothing answers sup.task.admit here)", async () => {
    const controls = await start();
    try {
      expect(await controls.admit(taskEnvelope({ workflowId: wf() }))).toBe("run");
    } finally {
      controls.stop();
    }
  });

  it("knows the controls that existed before it started, and follows puts and deletes", async () => {
    const before = wf();
    await put(control(before, { paused: true }));
    const controls = await start();
    try {
      expect(controls.get(before)?.paused).toBe(true);
      const later = wf();
      await put(control(later, { maxAgents: 2 }));
      await until("the new control", () => controls.get(later)?.maxAgents === 2);
      await put(control(later, { maxAgents: 3 }));
      await until("the replaced control", () => controls.get(later)?.maxAgents === 3);
      await fx.buckets.registry.delete(controlKey(later));
      await until("the deleted control gone", () => controls.get(later) === undefined);
      await fx.buckets.registry.purge(controlKey(before));
      await until("the purged control gone", () => controls.get(before) === undefined);
    } finally {
      controls.stop();
    }
  });

  it("skips a control that does not parse, keeping the others", async () => {
    const controls = await start();
    try {
      const bad = wf();
      const good = wf();
      await fx.buckets.registry.put(controlKey(bad), "not json");
      await fx.buckets.registry.put(controlKey(`${bad}x`), JSON.stringify({ workflowId: `${bad}x`, paused: "yes" }));
      await fx.buckets.registry.put(controlKey(`${bad}y`), JSON.stringify(control(good)));
      await put(control(good));
      await until("the good control", () => controls.get(good) !== undefined);
      expect(controls.get(bad)).toBeUndefined();
      expect(controls.get(`${bad}x`)).toBeUndefined();
      // A control stored under another workflow's key is not believed.
      expect(controls.get(`${bad}y`)).toBeUndefined();
    } finally {
      controls.stop();
    }
  });

  it("drops a task of a cancelled workflow without asking, and asks the supervisor for the others", async () => {
    const cancelled = wf();
    const paused = wf();
    await put(control(cancelled, { cancelled: { reason: "operator", at: 1 } }));
    await put(control(paused, { paused: true }));
    const asked: unknown[] = [];
    const sup = await fakeSupervisor(fx.nc, {
      "sup.task.admit": async (body) => {
        asked.push(body);
        return { decision: "parked" };
      },
    });
    const controls = await start();
    try {
      expect(await controls.admit(taskEnvelope({ workflowId: cancelled }))).toBe("cancelled");
      const task = taskEnvelope({ workflowId: paused, taskId: `${paused}-r-0`, epoch: 3 });
      expect(await controls.admit(task)).toBe("parked");
      expect(asked).toEqual([{ taskId: task.taskId, workflowId: paused, epoch: 3, kind: task.kind }]);
    } finally {
      controls.stop();
      await sup.stop();
    }
  });

  it("rejects with UNAVAILABLE, retryable, when no supervisor answers", async () => {
    const id = wf();
    await put(control(id, { maxAgents: 1 }));
    const controls = await start();
    try {
      const err = await rejection(controls.admit(taskEnvelope({ workflowId: id })));
      expect(err.code).toBe("UNAVAILABLE");
      expect(err.retryable).toBe(true);
      expect(err.message).toContain("sup.task.admit");
    } finally {
      controls.stop();
    }
  });
});
