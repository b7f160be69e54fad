/**
 * The Inspector over real task and workflow records (nats-server, Cadre's buckets) and a driven
 * clock, with stand-ins for what the supervisor learns from the hosts: who holds each task now
 * (heartbeats) and when an attempt started (TASK_STARTED).
 */

import {
  parseConfig,
  type TaskEnvelope,
  type TaskRecord,
  TaskRecordSchema,
  type WorkflowControl,
  WorkflowControlSchema,
  type WorkflowRecord,
  WorkflowRecordSchema,
} from "@cadre/protocol";
import { rejection, taskEnvelope } from "@cadre/protocol/testing";
import {
  type Buckets,
  connectNats,
  ensureInfrastructure,
  ManualClock,
  type NatsConnection,
  StateStore,
} from "@cadre/runtime";
import { type NatsServer, startNatsServer } from "@cadre/runtime/testing";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Inspector } from "./inspect.js";
import { Registry } from "./registry.js";

const config = parseConfig({});
const START = 1_000_000;
const TEAM = "team-0123456789";

/** A server with Cadre's buckets, the stores over them, and an Inspector on a driven clock. */
function fixture() {
  const f = {} as {
    server: NatsServer;
    nc: NatsConnection;
    buckets: Buckets;
    tasks: StateStore<TaskRecord>;
    workflows: StateStore<WorkflowRecord>;
    clock: ManualClock;
    controls: Map<string, WorkflowControl>;
    holders: Map<string, string>;
    inspector: Inspector;
  };
  beforeAll(async () => {
    f.server = await startNatsServer();
    f.nc = await connectNats(f.server.url, "inspect-test");
    f.buckets = await ensureInfrastructure(f.nc, config);
    f.tasks = new StateStore(f.buckets.tasks, TaskRecordSchema, "task");
    f.workflows = new StateStore(f.buckets.workflows, WorkflowRecordSchema, "workflow");
    f.clock = new ManualClock(START);
    f.controls = new Map();
    f.holders = new Map();
    f.inspector = new Inspector({
      nc: f.nc,
      config,
      clock: f.clock,
      sender: "sup-test",
      tasks: f.tasks,
      workflows: f.workflows,
      registry: new Registry(f.buckets.registry, config, f.clock),
      control: (wf) => f.controls.get(wf),
      holder: (taskId) => f.holders.get(taskId),
    });
  });
  afterAll(async () => {
    await f.nc?.close();
    await f.server?.stop();
  });
  return f;
}

const counts = { total: 1, completed: 0, failed: 0, retried: 0, duplicates: 0, conflicts: 0, cancelled: 0 };

function workflowRecord(workflowId: string, fields: Partial<WorkflowRecord> = {}): WorkflowRecord {
  return {
    workflowId,
    teamId: TEAM,
    teamName: "team",
    rootTaskId: `${workflowId}-r`,
    status: "running",
    submittedAt: START,
    finishedAt: null,
    tasks: counts,
    ...fields,
  };
}

function task(workflowId: string, path: string, kind: string): TaskEnvelope {
  const taskId = `${workflowId}-${path}`;
  const parent = path.includes("-") ? `${workflowId}-${path.slice(0, path.lastIndexOf("-"))}` : null;
  return taskEnvelope({ taskId, workflowId, teamId: TEAM, kind, parentTaskId: parent, idempotencyKey: taskId });
}

function taskRecord(t: TaskEnvelope, fields: Partial<TaskRecord> = {}): TaskRecord {
  return {
    task: t,
    status: "queued",
    createdAt: START,
    finishedAt: null,
    applied: null,
    duplicates: [],
    conflicts: [],
    invalid: [],
    ...fields,
  };
}

type AppliedResult = NonNullable<TaskRecord["applied"]>;

const applied = (hostId: string, actorId: string, attempt: number, startedAt?: number): AppliedResult => ({
  resultId: `r-${actorId}-${attempt}`,
  epoch: 1,
  attempt,
  hostId,
  actorId,
  ...(startedAt !== undefined ? { startedAt } : {}),
});

describe("Inspector: a workflow's task tree", () => {
  const f = fixture();
  const wf = "wi1";
  const [root, r0, r1, r2, r3, r4, r00] = [
    task(wf, "r", "lead"),
    task(wf, "r-0", "sub-lead"),
    task(wf, "r-1", "worker"),
    task(wf, "r-2", "worker"),
    task(wf, "r-3", "worker"),
    task(wf, "r-4", "worker"),
    task(wf, "r-0-0", "worker"),
  ] as [TaskEnvelope, TaskEnvelope, TaskEnvelope, TaskEnvelope, TaskEnvelope, TaskEnvelope, TaskEnvelope];

  beforeAll(async () => {
    await f.workflows.create(wf, workflowRecord(wf));
    // Written children first: the tree's order comes from the ids, not from when records were made.
    await f.tasks.create(
      r00.taskId,
      taskRecord(r00, {
        status: "completed",
        createdAt: START + 300,
        finishedAt: START + 900,
        applied: applied("h1", "worker-a", 1),
      }),
    );
    await f.tasks.create(
      root.taskId,
      taskRecord(root, {
        status: "completed",
        finishedAt: START + 3000,
        output: { done: true },
        applied: applied("h1", "lead-a", 2, START + 100),
      }),
    );
    await f.tasks.create(r0.taskId, taskRecord(r0, { createdAt: START + 200 }));
    await f.tasks.create(r1.taskId, taskRecord(r1, { createdAt: START + 200 }));
    await f.tasks.create(r2.taskId, taskRecord(r2, { createdAt: START + 200 }));
    await f.tasks.create(r3.taskId, taskRecord(r3, { createdAt: START + 200 }));
    await f.tasks.create(
      r4.taskId,
      taskRecord(r4, {
        status: "cancelled",
        createdAt: START + 200,
        finishedAt: START + 2500,
        error: { code: "CANCELLED", message: "cancelled: test", data: { reason: "test" } },
      }),
    );
    f.controls.set(
      wf,
      WorkflowControlSchema.parse({
        workflowId: wf,
        teamId: TEAM,
        paused: true,
        parked: [{ taskId: r1.taskId, epoch: 1 }],
        updatedAt: START,
      }),
    );
    // The root's first attempt was heard of; the applied (second) one was not: the record is the authority.
    f.inspector.started(root.taskId, { hostId: "h1", actorId: "lead-a", attempt: 1, epoch: 1, at: START + 50 });
    // r-0: a first attempt on h1, then a second on h2, which holds it now.
    f.inspector.started(r0.taskId, { hostId: "h1", actorId: "sub-a", attempt: 1, epoch: 1, at: START + 1000 });
    f.inspector.started(r0.taskId, { hostId: "h2", actorId: "sub-b", attempt: 2, epoch: 1, at: START + 1500 });
    f.holders.set(r0.taskId, "h2");
    // r-3: held by h3 per its heartbeat; the only start heard of was on h1 (before it moved).
    f.inspector.started(r3.taskId, { hostId: "h1", actorId: "worker-x", attempt: 1, epoch: 1, at: START + 600 });
    f.holders.set(r3.taskId, "h3");
    // r-0-0's applied result predates startedAt on results: its start comes from TASK_STARTED.
    f.inspector.started(r00.taskId, { hostId: "h1", actorId: "worker-a", attempt: 1, epoch: 1, at: START + 400 });
  });

  it("lists every task breadth first with its status, holder, attempts and stage times on the clock", async () => {
    f.clock.advance(4000);
    const t = await f.inspector.debugWorkflow({ workflowId: wf });
    expect(t.workflow.workflowId).toBe(wf);
    expect(t.control?.paused).toBe(true);
    expect(t.tasks.map((x) => [x.taskId, x.parentTaskId, x.kind, x.status, x.holder, x.attempts])).toEqual([
      [root.taskId, null, "lead", "completed", { hostId: "h1", actorId: "lead-a" }, 2],
      [r0.taskId, root.taskId, "sub-lead", "running", { hostId: "h2", actorId: "sub-b" }, 2],
      [r1.taskId, root.taskId, "worker", "parked", null, 0],
      [r2.taskId, root.taskId, "worker", "queued", null, 0],
      [r3.taskId, root.taskId, "worker", "running", { hostId: "h3", actorId: null }, 1],
      [r4.taskId, root.taskId, "worker", "cancelled", null, 0],
      [r00.taskId, r0.taskId, "worker", "completed", { hostId: "h1", actorId: "worker-a" }, 1],
    ]);
    const byId = new Map(t.tasks.map((x) => [x.taskId, x]));
    expect(byId.get(root.taskId)).toMatchObject({
      epoch: 1,
      createdAt: START,
      startedAt: START + 100,
      finishedAt: START + 3000,
      stages: { queuedMs: 100, workingMs: 2900, totalMs: 3000 },
    });
    // Running: working until now, on the driven clock; no total yet.
    expect(byId.get(r0.taskId)).toMatchObject({
      startedAt: START + 1500,
      finishedAt: null,
      stages: { queuedMs: 1300, workingMs: 2500, totalMs: null },
    });
    expect(byId.get(r1.taskId)?.stages).toEqual({ queuedMs: null, workingMs: null, totalMs: null });
    expect(byId.get(r4.taskId)).toMatchObject({
      startedAt: null,
      stages: { queuedMs: null, workingMs: null, totalMs: 2300 },
      error: { code: "CANCELLED", message: "cancelled: test" },
    });
    expect(byId.get(r00.taskId)?.stages).toEqual({ queuedMs: 100, workingMs: 500, totalMs: 600 });

    f.clock.advance(1000);
    const later = await f.inspector.debugWorkflow({ workflowId: wf });
    expect(later.tasks.find((x) => x.taskId === r0.taskId)?.stages.workingMs).toBe(3500);
    expect(later.tasks.find((x) => x.taskId === root.taskId)?.stages.workingMs).toBe(2900);
  });

  it("a task given back (no holder any more) is queued again; one a host took before the parked list caught up runs", async () => {
    f.holders.delete(r3.taskId);
    // Re-published, taken and admitted while the control still lists it parked.
    f.holders.set(r1.taskId, "h2");
    const t = await f.inspector.debugWorkflow({ workflowId: wf });
    expect(t.tasks.find((x) => x.taskId === r3.taskId)).toMatchObject({ status: "queued", holder: null });
    expect(t.tasks.find((x) => x.taskId === r1.taskId)).toMatchObject({
      status: "running",
      holder: { hostId: "h2", actorId: null },
    });
    f.holders.set(r3.taskId, "h3");
    f.holders.delete(r1.taskId);
  });

  it("debugTask: the record, its holder and its children", async () => {
    const top = await f.inspector.debugTask({ taskId: root.taskId });
    expect(top.record.output).toEqual({ done: true });
    expect(top.holder).toEqual({ hostId: "h1", actorId: "lead-a" });
    expect(top.children).toEqual([r0.taskId, r1.taskId, r2.taskId, r3.taskId, r4.taskId]);
    const mid = await f.inspector.debugTask({ taskId: r0.taskId });
    expect(mid.holder).toEqual({ hostId: "h2", actorId: "sub-b" });
    expect(mid.children).toEqual([r00.taskId]);
    const leaf = await f.inspector.debugTask({ taskId: r2.taskId });
    expect(leaf).toMatchObject({ holder: null, children: [] });
    expect(leaf.record.status).toBe("queued");
    expect((await rejection(f.inspector.debugTask({ taskId: `${wf}-r-9` }))).code).toBe("NOT_FOUND");
    expect((await rejection(f.inspector.debugWorkflow({ workflowId: "wnope" }))).code).toBe("NOT_FOUND");
  });
});

describe("Inspector: workflow lists and status", () => {
  const f = fixture();
  const control = (workflowId: string, fields: Partial<WorkflowControl>) =>
    WorkflowControlSchema.parse({ workflowId, teamId: TEAM, updatedAt: START, ...fields });

  beforeAll(async () => {
    // Written out of order: the list sorts by submission, newest first.
    const rows: [string, number, WorkflowRecord["status"], string?][] = [
      ["wl-c", 3000, "completed"],
      ["wl-a", 1000, "running"],
      ["wl-e", 5000, "cancelled"],
      ["wl-b", 2000, "running"],
      ["wl-d", 4000, "running", "team-other-0123"],
    ];
    for (const [id, at, status, team] of rows) {
      await f.workflows.create(
        id,
        workflowRecord(id, { submittedAt: START + at, status, ...(team ? { teamId: team } : {}) }),
      );
    }
    f.controls.set("wl-b", control("wl-b", { paused: true }));
    f.controls.set("wl-d", control("wl-d", { maxAgents: 2 }));
    // A pause left on a finished workflow does not make it paused.
    f.controls.set("wl-c", control("wl-c", { paused: true }));
  });

  const ids = async (req: { status?: "running" | "paused" | "completed" | "failed" | "cancelled"; limit?: number }) =>
    (await f.inspector.list({ limit: 100, ...req })).workflows.map((w) => w.workflowId);

  it("lists newest first, with each workflow's control", async () => {
    const all = (await f.inspector.list({ limit: 100 })).workflows;
    expect(all.map((w) => w.workflowId)).toEqual(["wl-e", "wl-d", "wl-c", "wl-b", "wl-a"]);
    expect(all.map((w) => [w.workflowId, w.control?.paused ?? null])).toEqual([
      ["wl-e", null],
      ["wl-d", false],
      ["wl-c", true],
      ["wl-b", true],
      ["wl-a", null],
    ]);
    expect(await ids({ limit: 2 })).toEqual(["wl-e", "wl-d"]);
  });

  it("filters by status: paused is a running workflow under a pause; running includes it", async () => {
    expect(await ids({ status: "paused" })).toEqual(["wl-b"]);
    expect(await ids({ status: "running" })).toEqual(["wl-d", "wl-b", "wl-a"]);
    expect(await ids({ status: "completed" })).toEqual(["wl-c"]);
    expect(await ids({ status: "cancelled" })).toEqual(["wl-e"]);
    expect(await ids({ status: "failed" })).toEqual([]);
    expect((await f.inspector.runningByTeam()).get(TEAM)).toBe(2);
  });

  it("status: the record and its control", async () => {
    expect(await f.inspector.status({ workflowId: "wl-b" })).toMatchObject({
      workflow: { workflowId: "wl-b", status: "running" },
      control: { paused: true },
    });
    expect((await f.inspector.status({ workflowId: "wl-a" })).control).toBeNull();
    expect((await rejection(f.inspector.status({ workflowId: "wl-zz" }))).code).toBe("NOT_FOUND");
  });
});
