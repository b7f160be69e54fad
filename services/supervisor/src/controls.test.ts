/**
 * WorkflowControls on a real registry bucket (nats-server, Cadre's streams and buckets) and a
 * driven clock, with stand-ins for what the rest of the supervisor provides: the holdings the
 * hosts report, the host that is told to stop or yield an attempt, and the kinds' roles.
 */

import {
  decodeAs,
  parseConfig,
  STREAMS,
  subjects,
  type TaskEnvelope,
  type TaskRecord,
  TaskRecordSchema,
  type TypedEvent,
  taskMessageId,
  UnavailableError,
  type WorkflowControl,
  WorkflowControlSchema,
  type WorkflowRecord,
  WorkflowRecordSchema,
} from "@cadre/protocol";
import { rejection, taskEnvelope } from "@cadre/protocol/testing";
import {
  type Buckets,
  connectNats,
  controlKey,
  createLogger,
  ensureInfrastructure,
  ManualClock,
  type NatsConnection,
  StateStore,
} from "@cadre/runtime";
import { type NatsServer, startNatsServer } from "@cadre/runtime/testing";
import { type JetStreamClient, type JetStreamManager, jetstream, jetstreamManager } from "@nats-io/jetstream";
import type { KV, KvWatchEntry } from "@nats-io/kv";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { type Holding, WorkflowControls } from "./controls.js";

const config = parseConfig({});
const logger = createLogger("controls-test", "silent");
const START = 1_000_000;
/** Roles of the fixture's kinds: a lead root, agent workers, a director child. */
const ROLES: Record<string, string> = { lead: "lead", worker: "agent", boss: "director" };

let server: NatsServer;
let nc: NatsConnection;
let buckets: Buckets;
let js: JetStreamClient;
let jsm: JetStreamManager;
let tasks: StateStore<TaskRecord>;
let workflows: StateStore<WorkflowRecord>;
let n = 0;

beforeAll(async () => {
  server = await startNatsServer();
  nc = await connectNats(server.url, "controls-test");
  buckets = await ensureInfrastructure(nc, config);
  js = jetstream(nc);
  jsm = await jetstreamManager(nc);
  tasks = new StateStore(buckets.tasks, TaskRecordSchema, "task");
  workflows = new StateStore(buckets.workflows, WorkflowRecordSchema, "workflow");
});
afterAll(async () => {
  await nc?.close();
  await server?.stop();
});

/**
 * Resolves when `probe` returns something other than undefined or false; fails after the
 * deadline (20 s: CI runs these beside the image build, and a KV watch can lag seconds there).
 */
async function until<T>(what: string, probe: () => Promise<T | undefined | false> | T | undefined | false) {
  const end = Date.now() + 20_000;
  for (;;) {
    const v = await probe();
    if (v !== undefined && v !== false) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

/** A running workflow `wN` of its own team: a lead root `wN-r` and `workers` agent children, all queued. */
async function workflow(opts: { workers?: number; teamId?: string; status?: WorkflowRecord["status"] } = {}) {
  const workflowId = `wc${++n}`;
  const teamId = opts.teamId ?? `team-${n}`;
  const root = taskEnvelope({
    taskId: `${workflowId}-r`,
    workflowId,
    teamId,
    kind: "lead",
    parentTaskId: null,
    chain: ["lead"],
    depth: 0,
  });
  const children = Array.from({ length: opts.workers ?? 3 }, (_, i) =>
    taskEnvelope({
      taskId: `${workflowId}-r-${i}`,
      workflowId,
      teamId,
      kind: "worker",
      parentTaskId: root.taskId,
      chain: ["lead", "worker"],
    }),
  );
  await workflows.create(workflowId, {
    workflowId,
    teamId,
    teamName: "t",
    rootTaskId: root.taskId,
    status: opts.status ?? "running",
    submittedAt: START,
    finishedAt: null,
    tasks: {
      total: 1 + children.length,
      completed: 0,
      failed: 0,
      retried: 0,
      duplicates: 0,
      conflicts: 0,
      cancelled: 0,
    },
  });
  for (const t of [root, ...children]) await record(t);
  return { workflowId, teamId, root, children, ids: children.map((c) => c.taskId) };
}

/** A queued task record for an envelope. */
async function record(task: TaskEnvelope): Promise<void> {
  await tasks.create(task.taskId, {
    task,
    status: "queued",
    createdAt: START,
    finishedAt: null,
    applied: null,
    duplicates: [],
    conflicts: [],
    invalid: [],
  });
}

const taskRecord = async (taskId: string) => (await tasks.get(taskId))?.value;

/** The control record as stored in KV (what another supervisor or a host reads). */
async function stored(workflowId: string): Promise<WorkflowControl | undefined> {
  const e = await buckets.registry.get(controlKey(workflowId));
  return e?.operation === "PUT" ? WorkflowControlSchema.parse(e.json()) : undefined;
}

/** Every task message on the tasks stream for a team's kind, decoded, with its message id. */
async function published(teamId: string, kind: string): Promise<{ taskId: string; epoch: number; msgId: string }[]> {
  const subject = subjects.task(teamId, kind);
  const { state } = await jsm.streams.info(STREAMS.tasks);
  const out: { taskId: string; epoch: number; msgId: string }[] = [];
  for (let seq = state.first_seq; seq <= state.last_seq && state.messages > 0; seq++) {
    const m = await jsm.streams.getMessage(STREAMS.tasks, { seq }).catch(() => null);
    if (m?.subject !== subject) continue;
    const t = decodeAs(m.data, "task").body;
    out.push({ taskId: t.taskId, epoch: t.epoch, msgId: m.header.get("Nats-Msg-Id") });
  }
  return out;
}

interface HostCall {
  hostId: string;
  op: "stop" | "yield";
  taskId: string;
  reason: string;
}

/** A supervisor's controls with stand-in collaborators, and what they were told. */
function setup() {
  const clock = new ManualClock(START);
  const events: TypedEvent[] = [];
  const holdings: Holding[] = [];
  const calls: HostCall[] = [];
  const released: string[] = [];
  const made: WorkflowControls[] = [];
  const make = (opts: { kv?: KV; sender?: string } = {}) => {
    const c = new WorkflowControls({
      kv: opts.kv ?? buckets.registry,
      tasks,
      workflows,
      js,
      config,
      clock,
      logger,
      sender: opts.sender ?? "sup-a",
      emit: (e) => events.push(e),
      holdings: () => holdings,
      taskOnHost: async (hostId, body) => {
        calls.push({ hostId, op: body.op, taskId: body.taskId, reason: body.reason });
        if (hostId === "h-gone") throw new UnavailableError("nothing answers host.task");
        return { taskId: body.taskId, held: true, epoch: holdings.find((h) => h.taskId === body.taskId)?.epoch ?? 1 };
      },
      role: async (_teamId, kind) => ROLES[kind],
      release: (taskId) => released.push(taskId),
    });
    made.push(c);
    return c;
  };
  cleanups.push(() => {
    for (const c of made) c.stop();
  });
  return { clock, events, holdings, calls, released, make, controls: make() };
}

const cleanups: (() => void)[] = [];
afterEach(() => {
  for (const f of cleanups.splice(0)) f();
});

const admitOf = (t: TaskEnvelope) => ({ taskId: t.taskId, workflowId: t.workflowId, epoch: t.epoch, kind: t.kind });
const types = (events: TypedEvent[], workflowId: string) =>
  events.filter((e) => e.scope === workflowId).map((e) => e.type);

describe("WorkflowControls on a real registry bucket and a driven clock", () => {
  it("admits a task of a workflow without a control: run, and writes nothing", async () => {
    const { controls, events } = setup();
    const w = await workflow();
    expect(await controls.admit(admitOf(w.children[0] as TaskEnvelope))).toEqual({ decision: "run" });
    expect(await stored(w.workflowId)).toBeUndefined();
    expect(controls.get(w.workflowId)).toBeUndefined();
    expect(events).toEqual([]);
  });

  it("paused: every task handed to a host is parked, listed on the control record with its epoch", async () => {
    const { controls, events, clock } = setup();
    const w = await workflow();
    const [w0] = w.children as [TaskEnvelope];
    const paused = await controls.pause({ workflowId: w.workflowId, now: false });
    expect(paused.control).toMatchObject({ workflowId: w.workflowId, teamId: w.teamId, paused: true, parked: [] });
    expect((await stored(w.workflowId))?.updatedAt).toBe(START);

    clock.advance(500);
    expect(await controls.admit(admitOf(w0))).toEqual({ decision: "parked" });
    // A lead is parked too while paused (only the cap spares leads and directors).
    expect(await controls.admit(admitOf(w.root))).toEqual({ decision: "parked" });
    const c = await stored(w.workflowId);
    expect(c?.paused).toBe(true);
    expect(c?.parked).toEqual([
      { taskId: w0.taskId, epoch: 1 },
      { taskId: w.root.taskId, epoch: 1 },
    ]);
    expect(c?.updatedAt).toBe(START + 500);
    expect(controls.get(w.workflowId)).toEqual(c);
    // Parking changes no task record: the task waits at its epoch.
    expect((await taskRecord(w0.taskId))?.task.epoch).toBe(1);
    expect(types(events, w.workflowId)).toEqual(["WORKFLOW_PAUSED", "TASK_PARKED", "TASK_PARKED"]);
    expect(events.find((e) => e.type === "TASK_PARKED")?.data).toEqual({ taskId: w0.taskId, epoch: 1, paused: true });
  });

  it("pause --now asks the holders of agent attempts to yield and parks what they gave back", async () => {
    const { controls, holdings, calls } = setup();
    const w = await workflow();
    const other = await workflow();
    const [w0, w1] = w.children as [TaskEnvelope, TaskEnvelope];
    holdings.push(
      { hostId: "h1", taskId: w.root.taskId, epoch: 1 },
      { hostId: "h1", taskId: w0.taskId, epoch: 1 },
      { hostId: "h2", taskId: w1.taskId, epoch: 1 },
      { hostId: "h2", taskId: other.ids[0] as string, epoch: 1 },
    );
    const reply = await controls.pause({ workflowId: w.workflowId, now: true });
    // Agents only: the lead waiting for its children keeps waiting; the other workflow is left alone.
    expect(calls).toEqual([
      { hostId: "h1", op: "yield", taskId: w0.taskId, reason: "workflow paused" },
      { hostId: "h2", op: "yield", taskId: w1.taskId, reason: "workflow paused" },
    ]);
    expect(reply.control.parked).toEqual([
      { taskId: w0.taskId, epoch: 1 },
      { taskId: w1.taskId, epoch: 1 },
    ]);
    expect((await stored(w.workflowId))?.parked).toEqual(reply.control.parked);
  });

  it("pause --now also takes back an agent attempt whose start it hears of after pausing, until resumed", async () => {
    const { controls, calls, events } = setup();
    const w = await workflow({ workers: 3 });
    const [w0, w1, w2] = w.children as [TaskEnvelope, TaskEnvelope, TaskEnvelope];
    await controls.pause({ workflowId: w.workflowId, now: true });
    expect(calls).toEqual([]); // nothing was known to run
    // A host started two attempts before it heard of the pause; the lead's start is left alone.
    controls.started({ hostId: "h1", taskId: w0.taskId, epoch: 1 });
    controls.started({ hostId: "h1", taskId: w.root.taskId, epoch: 1 });
    controls.started({ hostId: "h2", taskId: w1.taskId, epoch: 1 });
    const parked = await until("both agent attempts parked", async () => {
      const c = await stored(w.workflowId);
      return c?.parked.length === 2 ? c.parked : undefined;
    });
    expect(parked).toEqual([
      { taskId: w0.taskId, epoch: 1 },
      { taskId: w1.taskId, epoch: 1 },
    ]);
    expect(calls.map((c) => [c.op, c.taskId])).toEqual([
      ["yield", w0.taskId],
      ["yield", w1.taskId],
    ]);
    expect(events.filter((e) => e.type === "TASK_PARKED").map((e) => e.data.taskId)).toEqual([w0.taskId, w1.taskId]);
    // Seen again (a retried TASK_STARTED): already parked, not asked twice.
    controls.started({ hostId: "h1", taskId: w0.taskId, epoch: 1 });
    // Resumed: a start is the resumed work's own, and runs.
    await controls.resume({ workflowId: w.workflowId });
    expect((await stored(w.workflowId))?.yielding).toBe(false);
    controls.started({ hostId: "h2", taskId: w2.taskId, epoch: 1 });
    // A plain pause lets attempts it did not know of finish.
    await controls.pause({ workflowId: w.workflowId, now: false });
    controls.started({ hostId: "h2", taskId: w2.taskId, epoch: 1 });
    await controls.resume({ workflowId: w.workflowId });
    expect(calls).toHaveLength(2);
  });

  it("a cap of 2 agents: the third agent task is parked; a lead and a director are never capped", async () => {
    const { controls, events } = setup();
    const w = await workflow({ workers: 3 });
    const boss = taskEnvelope({
      taskId: `${w.workflowId}-r-3`,
      workflowId: w.workflowId,
      teamId: w.teamId,
      kind: "boss",
      parentTaskId: w.root.taskId,
      chain: ["lead", "boss"],
    });
    await record(boss);
    const [w0, w1, w2] = w.children as [TaskEnvelope, TaskEnvelope, TaskEnvelope];
    const limited = await controls.limit({ workflowId: w.workflowId, agents: 2 });
    expect(limited.control).toMatchObject({ maxAgents: 2, paused: false, parked: [] });
    expect(events.find((e) => e.type === "WORKFLOW_LIMITED")?.data).toEqual({
      maxAgents: 2,
      guarantee: 0,
      released: 0,
    });

    expect(await controls.admit(admitOf(w0))).toEqual({ decision: "run" });
    expect(await controls.admit(admitOf(w1))).toEqual({ decision: "run" });
    expect(await controls.admit(admitOf(w2))).toEqual({ decision: "parked" });
    // A redelivery of a running one holds the slot it has; it is not a third.
    expect(await controls.admit(admitOf(w0))).toEqual({ decision: "run" });
    expect(await controls.admit(admitOf(w.root))).toEqual({ decision: "run" });
    expect(await controls.admit(admitOf(boss))).toEqual({ decision: "run" });
    expect((await stored(w.workflowId))?.parked).toEqual([{ taskId: w2.taskId, epoch: 1 }]);
    expect(events.filter((e) => e.type === "TASK_PARKED").map((e) => e.data)).toEqual([
      { taskId: w2.taskId, epoch: 1, paused: false },
    ]);
  });

  it("finished() frees a slot and publishes one parked task again at epoch + 1", async () => {
    const { controls, events } = setup();
    const w = await workflow({ workers: 4 });
    const [w0, w1, w2, w3] = w.children as [TaskEnvelope, TaskEnvelope, TaskEnvelope, TaskEnvelope];
    await controls.limit({ workflowId: w.workflowId, agents: 2 });
    for (const t of [w0, w1, w2, w3]) await controls.admit(admitOf(t));
    expect((await stored(w.workflowId))?.parked.map((p) => p.taskId)).toEqual([w2.taskId, w3.taskId]);

    // Not one of the running attempts: nothing frees (the admit after it runs after anything it queued).
    controls.finished(w3.taskId);
    controls.finished(`${w.workflowId}-r-9`);
    expect(await controls.admit(admitOf(w3))).toEqual({ decision: "parked" });
    expect(await published(w.teamId, "worker")).toEqual([]);

    controls.finished(w0.taskId);
    const c = await until("one parked task released", async () => {
      const s = await stored(w.workflowId);
      return s?.parked.length === 1 && s;
    });
    expect(c.parked).toEqual([{ taskId: w3.taskId, epoch: 1 }]);
    expect((await taskRecord(w2.taskId))?.task.epoch).toBe(2);
    expect((await taskRecord(w3.taskId))?.task.epoch).toBe(1);
    expect(await published(w.teamId, "worker")).toEqual([
      { taskId: w2.taskId, epoch: 2, msgId: taskMessageId(w2.taskId, 2) },
    ]);
    expect(events.filter((e) => e.type === "TASK_UNPARKED").map((e) => e.data)).toEqual([
      { taskId: w2.taskId, epoch: 2 },
    ]);
    // The released task takes the freed slot when a host is handed it; the cap is full again.
    expect(await controls.admit({ ...admitOf(w2), epoch: 2 })).toEqual({ decision: "run" });
    expect(await controls.admit(admitOf(w3))).toEqual({ decision: "parked" });
  });

  it("resume publishes every parked task again at the next epoch; a task finished meanwhile is dropped", async () => {
    const { controls, events } = setup();
    const w = await workflow({ workers: 3 });
    const [w0, w1, w2] = w.children as [TaskEnvelope, TaskEnvelope, TaskEnvelope];
    await controls.pause({ workflowId: w.workflowId, now: false });
    for (const t of [w.root, w0, w1, w2]) expect((await controls.admit(admitOf(t))).decision).toBe("parked");
    await tasks.modify(w2.taskId, (r) => r && { ...r, status: "completed", finishedAt: START });

    const reply = await controls.resume({ workflowId: w.workflowId });
    expect(reply.control).toMatchObject({ paused: false, parked: [] });
    expect(await stored(w.workflowId)).toMatchObject({ paused: false, parked: [] });
    for (const t of [w.root, w0, w1]) expect((await taskRecord(t.taskId))?.task.epoch).toBe(2);
    expect((await taskRecord(w2.taskId))?.task.epoch).toBe(1);
    expect(await published(w.teamId, "lead")).toEqual([
      { taskId: w.root.taskId, epoch: 2, msgId: taskMessageId(w.root.taskId, 2) },
    ]);
    expect(await published(w.teamId, "worker")).toEqual([
      { taskId: w0.taskId, epoch: 2, msgId: taskMessageId(w0.taskId, 2) },
      { taskId: w1.taskId, epoch: 2, msgId: taskMessageId(w1.taskId, 2) },
    ]);
    expect(events.filter((e) => e.type === "TASK_UNPARKED").map((e) => e.data.taskId)).toEqual([
      w.root.taskId,
      w0.taskId,
      w1.taskId,
    ]);
    expect(types(events, w.workflowId).at(-1)).toBe("WORKFLOW_RESUMED");
    // Not paused any more: a task handed now runs.
    expect(await controls.admit({ ...admitOf(w0), epoch: 2 })).toEqual({ decision: "run" });
  });

  it("cancel: every queued task cancelled with the reason, the holders told to stop, the workflow ended cancelled", async () => {
    const { controls, events, holdings, calls, released, clock } = setup();
    const w = await workflow({ workers: 3 });
    const other = await workflow();
    const [w0, w1, w2] = w.children as [TaskEnvelope, TaskEnvelope, TaskEnvelope];
    await tasks.modify(w0.taskId, (r) => r && { ...r, status: "completed", finishedAt: START, output: { ok: 1 } });
    holdings.push(
      { hostId: "h1", taskId: w.root.taskId, epoch: 1 },
      { hostId: "h-gone", taskId: w1.taskId, epoch: 1 },
      { hostId: "h1", taskId: other.ids[0] as string, epoch: 1 },
    );
    clock.advance(2000);
    const at = START + 2000;

    const reply = await controls.cancel({ workflowId: w.workflowId, reason: "budget cut" });
    expect(reply.cancelled).toEqual([w.root.taskId, w1.taskId, w2.taskId]);
    expect(reply.control).toMatchObject({ cancelled: { reason: "budget cut", at }, parked: [] });
    expect((await stored(w.workflowId))?.cancelled).toEqual({ reason: "budget cut", at });
    for (const id of reply.cancelled) {
      const r = await taskRecord(id);
      expect(r?.status).toBe("cancelled");
      expect(r?.finishedAt).toBe(at);
      expect(r?.error).toEqual({ code: "CANCELLED", message: "cancelled: budget cut", data: { reason: "budget cut" } });
    }
    // What had finished stays as it was.
    expect(await taskRecord(w0.taskId)).toMatchObject({ status: "completed", output: { ok: 1 } });
    // Every holder of its attempts is told to stop, one that does not answer included; no other workflow's.
    expect(calls).toEqual([
      { hostId: "h1", op: "stop", taskId: w.root.taskId, reason: "budget cut" },
      { hostId: "h-gone", op: "stop", taskId: w1.taskId, reason: "budget cut" },
    ]);
    expect(released).toEqual(reply.cancelled);
    const wf = (await workflows.get(w.workflowId))?.value;
    expect(wf).toMatchObject({ status: "cancelled", finishedAt: at, error: { code: "CANCELLED" } });
    expect(wf?.tasks.cancelled).toBe(3);
    expect(events.find((e) => e.type === "WORKFLOW_CANCELLED")?.data).toMatchObject({
      reason: "budget cut",
      cancelled: 3,
    });
    // From now on a host handed one of its tasks drops it.
    expect(await controls.admit(admitOf(w2))).toEqual({ decision: "cancelled" });
    // The other workflow was not touched.
    expect((await taskRecord(other.ids[0] as string))?.status).toBe("queued");
  });

  it("a workflow that is not running refuses every control with INVALID_CONFIG naming its status", async () => {
    const { controls } = setup();
    const done = await workflow({ status: "completed" });
    const e = await rejection(controls.pause({ workflowId: done.workflowId, now: false }));
    expect(e.code).toBe("INVALID_CONFIG");
    expect(e.message).toContain("it is completed; only a running workflow can be paused");
    const failed = await workflow({ status: "failed" });
    for (const op of [
      () => controls.resume({ workflowId: failed.workflowId }),
      () => controls.limit({ workflowId: failed.workflowId, agents: 1 }),
      () => controls.cancel({ workflowId: failed.workflowId, reason: "x" }),
    ]) {
      const err = await rejection(op());
      expect(err.code).toBe("INVALID_CONFIG");
      expect(err.message).toContain("it is failed");
    }
    expect(await stored(done.workflowId)).toBeUndefined();
    expect(await stored(failed.workflowId)).toBeUndefined();
    expect((await rejection(controls.pause({ workflowId: "wnope", now: false }))).code).toBe("NOT_FOUND");
  });

  it("ended() deletes the control of a finished workflow, but not a cancelled one's", async () => {
    const { controls, make } = setup();
    const standby = make({ sender: "sup-b" });
    await standby.follow();
    const w = await workflow();
    await controls.limit({ workflowId: w.workflowId, guarantee: 2 });
    expect(controls.guarantees().get(w.teamId)).toBe(2);
    await until("the standby has the control", () => standby.get(w.workflowId));
    controls.ended(w.workflowId);
    await until("the control deleted", async () => (await stored(w.workflowId)) === undefined);
    expect(controls.get(w.workflowId)).toBeUndefined();
    expect(controls.guarantees().has(w.teamId)).toBe(false);
    // A standby follows the deletion: its guarantee stops reserving actors there too.
    await until("the standby forgot the control", () => standby.get(w.workflowId) === undefined);
    expect(standby.guarantees().has(w.teamId)).toBe(false);

    const c = await workflow();
    await controls.cancel({ workflowId: c.workflowId, reason: "r" });
    controls.ended(c.workflowId);
    // An operation queued after ended() runs after anything it queued.
    expect(await controls.admit(admitOf(c.root))).toEqual({ decision: "cancelled" });
    expect((await stored(c.workflowId))?.cancelled?.reason).toBe("r");
    expect(controls.get(c.workflowId)?.cancelled?.reason).toBe("r");
  });

  it("guarantees() sums the guarantees of running workflows per team; a cancelled one reserves nothing", async () => {
    const { controls } = setup();
    const [a1, a2, a3] = [
      await workflow({ teamId: "team-ga" }),
      await workflow({ teamId: "team-ga" }),
      await workflow(),
    ];
    const b = await workflow({ teamId: "team-gb" });
    const capped = await workflow({ teamId: "team-gc" });
    await controls.limit({ workflowId: a1.workflowId, guarantee: 2 });
    await controls.limit({ workflowId: a2.workflowId, guarantee: 3 });
    await controls.limit({ workflowId: a3.workflowId, guarantee: 4 });
    await controls.limit({ workflowId: b.workflowId, guarantee: 1 });
    await controls.limit({ workflowId: capped.workflowId, agents: 3 });
    expect(Object.fromEntries(controls.guarantees())).toEqual({ "team-ga": 5, "team-gb": 1, [a3.teamId]: 4 });
    await controls.cancel({ workflowId: a3.workflowId, reason: "r" });
    expect(Object.fromEntries(controls.guarantees())).toEqual({ "team-ga": 5, "team-gb": 1 });
  });

  it("a standby following the same bucket sees the same controls and, once active, enforces them", async () => {
    const { controls: active, make, holdings } = setup();
    const standby = make({ sender: "sup-b" });
    await standby.follow();
    const w = await workflow({ workers: 4 });
    const [w0, w1, w2, w3] = w.children as [TaskEnvelope, TaskEnvelope, TaskEnvelope, TaskEnvelope];
    await active.limit({ workflowId: w.workflowId, agents: 2 });
    for (const t of [w0, w1, w2]) await active.admit(admitOf(t));
    await active.pause({ workflowId: w.workflowId, now: false });
    await active.freeze({ workflowId: w.workflowId, frozen: true });
    const expected = active.get(w.workflowId);
    expect(expected).toMatchObject({ paused: true, maxAgents: 2, parked: [{ taskId: w2.taskId, epoch: 1 }] });
    await until("the standby has the control", () => {
      const c = standby.get(w.workflowId);
      return c?.paused === true && c.parked.length === 1 && c;
    });
    expect(standby.get(w.workflowId)).toEqual(expected);
    await until("the standby knows it frozen", () => standby.isFrozen(w.workflowId));
    await active.freeze({ workflowId: w.workflowId, frozen: false });
    await until("the standby knows it unfrozen", () => !standby.isFrozen(w.workflowId));

    // Failover: the hosts' heartbeats say w0 and w1 still run; the new active one counts them.
    active.stop();
    holdings.push({ hostId: "h1", taskId: w0.taskId, epoch: 1 }, { hostId: "h2", taskId: w1.taskId, epoch: 1 });
    await standby.seedRunning();
    const resumed = await standby.resume({ workflowId: w.workflowId });
    // The cap is full: the parked task stays parked, and a new one is parked too.
    expect(resumed.control).toMatchObject({ paused: false, parked: [{ taskId: w2.taskId, epoch: 1 }] });
    expect(await standby.admit(admitOf(w3))).toEqual({ decision: "parked" });
    standby.finished(w0.taskId);
    await until(
      "the parked task released by the new active one",
      async () => (await taskRecord(w2.taskId))?.task.epoch === 2,
    );
    expect(await published(w.teamId, "worker")).toEqual([
      { taskId: w2.taskId, epoch: 2, msgId: taskMessageId(w2.taskId, 2) },
    ]);
    expect((await stored(w.workflowId))?.parked).toEqual([{ taskId: w3.taskId, epoch: 1 }]);
  });

  it("the watch never takes the map back to an older revision of a control", async () => {
    const { make } = setup();
    const w = await workflow();
    const gate = gatedWatch(buckets.registry, controlKey(w.workflowId));
    const controls = make({ kv: gate.kv });
    await controls.follow();
    const [w0, w1] = w.children as [TaskEnvelope, TaskEnvelope];
    // Three writes of this supervisor (revisions r1 < r2 < r3) while the watch holds their entries back.
    await controls.pause({ workflowId: w.workflowId, now: false });
    await controls.admit(admitOf(w0));
    await controls.admit(admitOf(w1));
    const latest = controls.get(w.workflowId);
    expect(latest?.parked).toHaveLength(2);
    for (let i = 1; i <= 3; i++) {
      await gate.release(i);
      expect(controls.get(w.workflowId)).toEqual(latest);
    }
    // A newer revision, written by another supervisor, is taken.
    const other = make({ sender: "sup-b" });
    await other.limit({ workflowId: w.workflowId, guarantee: 7 });
    await gate.release(4);
    expect(controls.get(w.workflowId)).toMatchObject({ guarantee: 7, paused: true, parked: latest?.parked });
  });
});

/**
 * The bucket, but the watch of `control.>` holds back the entries of one key until released one
 * by one, as a slow watch would deliver them after this supervisor's own later writes.
 */
function gatedWatch(kv: KV, key: string) {
  let allowed = 0;
  let handed = 0;
  let waiting = false;
  let wake: () => void = () => {};
  const hold = (w: Awaited<ReturnType<KV["watch"]>>) => {
    const it = w[Symbol.asyncIterator]();
    return {
      stop: (err?: Error) => w.stop(err),
      [Symbol.asyncIterator]: () => ({
        next: async (): Promise<IteratorResult<KvWatchEntry>> => {
          waiting = true;
          const r = await it.next();
          if (!r.done && r.value.key === key) {
            while (handed >= allowed) await new Promise<void>((resolve) => (wake = resolve));
            handed++;
          }
          waiting = false;
          return r;
        },
      }),
    };
  };
  const gated = new Proxy(kv, {
    get(target, prop) {
      if (prop === "watch") {
        return async (opts: Parameters<KV["watch"]>[0]) => {
          const w = await target.watch(opts);
          return opts?.key === "control.>" ? hold(w) : w;
        };
      }
      const v = Reflect.get(target, prop, target);
      return typeof v === "function" ? v.bind(target) : v;
    },
  });
  return {
    kv: gated,
    /** Lets the `n`th entry of the key through and waits until the watch loop has handled it. */
    release: async (nth: number) => {
      allowed = nth;
      wake();
      await until(`entry ${nth} handled`, () => handed === nth && waiting);
    },
  };
}
