/**
 * Waiting workflows on real buckets and the real tasks stream (nats-server, Cadre's streams and
 * buckets): the settle rule alone, then what a new active supervisor's sweep does with what its
 * predecessor left (a dependency completed but its dependent not released; a dependency
 * cancelled), and that doing it again changes nothing.
 */

import {
  DEPENDENCY_FAILED,
  decodeAs,
  parseConfig,
  STREAMS,
  subjects,
  type TaskRecord,
  TaskRecordSchema,
  type TypedEvent,
  type WorkflowRecord,
  WorkflowRecordSchema,
} from "@cadre/protocol";
import { taskEnvelope } from "@cadre/protocol/testing";
import {
  connectNats,
  createLogger,
  ensureInfrastructure,
  listKeys,
  ManualClock,
  type NatsConnection,
  StateStore,
} from "@cadre/runtime";
import { type NatsServer, startNatsServer } from "@cadre/runtime/testing";
import { type JetStreamClient, type JetStreamManager, jetstream, jetstreamManager } from "@nats-io/jetstream";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { afterKey, Dependencies, decide } from "./dependencies.js";

const config = parseConfig({});
const logger = createLogger("dependencies-test", "silent");
const START = 1_000_000;

let server: NatsServer;
let nc: NatsConnection;
let js: JetStreamClient;
let jsm: JetStreamManager;
let tasks: StateStore<TaskRecord>;
let workflows: StateStore<WorkflowRecord>;
let n = 0;

beforeAll(async () => {
  server = await startNatsServer();
  nc = await connectNats(server.url, "dependencies-test");
  const buckets = await ensureInfrastructure(nc, config);
  js = jetstream(nc);
  jsm = await jetstreamManager(nc);
  tasks = new StateStore(buckets.tasks, TaskRecordSchema, "task");
  workflows = new StateStore(buckets.workflows, WorkflowRecordSchema, "workflow");
});
afterAll(async () => {
  await nc?.close();
  await server?.stop();
});

/** A workflow `wdN` with its root task record (queued, never published), waiting for `after` if given. */
async function workflow(opts: { status?: WorkflowRecord["status"]; after?: string[] } = {}): Promise<WorkflowRecord> {
  const workflowId = `wd${++n}`;
  const root = taskEnvelope({
    taskId: `${workflowId}-r`,
    workflowId,
    teamId: `team-d${n}`,
    kind: "lead",
    parentTaskId: null,
    chain: ["lead"],
    depth: 0,
  });
  const w: WorkflowRecord = {
    workflowId,
    teamId: root.teamId,
    teamName: "t",
    rootTaskId: root.taskId,
    status: opts.status ?? "running",
    submittedAt: START,
    finishedAt: opts.status && opts.status !== "running" ? START + 10 : null,
    tasks: { total: 1, completed: 0, failed: 0, retried: 0, duplicates: 0, conflicts: 0, cancelled: 0 },
    ...(opts.after ? { after: opts.after, waitingFor: opts.after } : {}),
  };
  await workflows.create(workflowId, w);
  await tasks.create(root.taskId, {
    task: root,
    status: "queued",
    createdAt: START,
    finishedAt: null,
    applied: null,
    duplicates: [],
    conflicts: [],
    invalid: [],
  });
  // The index keys a submit writes for each dependency it waits for.
  for (const dep of opts.after ?? []) await workflows.kv.put(afterKey(dep, workflowId), "{}");
  return w;
}

/** The root task messages of a workflow on the tasks stream. */
async function published(w: WorkflowRecord): Promise<string[]> {
  const subject = subjects.task(w.teamId, "lead");
  const { state } = await jsm.streams.info(STREAMS.tasks);
  const out: string[] = [];
  for (let seq = state.first_seq; seq <= state.last_seq && state.messages > 0; seq++) {
    const m = await jsm.streams.getMessage(STREAMS.tasks, { seq }).catch(() => null);
    if (m?.subject === subject) out.push(decodeAs(m.data, "task").body.taskId);
  }
  return out;
}

const read = async (id: string) => (await workflows.get(id))?.value;

/** Resolves when `probe` returns something other than undefined or false; fails after 10 s. */
async function until<T>(what: string, probe: () => Promise<T | undefined | false>): Promise<T> {
  const end = Date.now() + 10_000;
  for (;;) {
    const v = await probe();
    if (v !== undefined && v !== false) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

/** A Dependencies as a newly active supervisor has it: nothing known but the buckets. */
function fresh() {
  const events: TypedEvent[] = [];
  const ended: string[] = [];
  const deps = new Dependencies({
    workflows,
    tasks,
    js,
    sender: "sup-test",
    clock: new ManualClock(START + 5000),
    logger,
    emit: (e) => events.push(e),
    ended: (id) => ended.push(id),
  });
  return { deps, events, ended };
}

describe("the settle rule", () => {
  const statuses: Record<string, WorkflowRecord["status"]> = { a: "completed", b: "running", c: "failed" };
  const of = (id: string) => statuses[id];

  it("releases when every dependency completed", () => {
    expect(decide(["a"], of)).toEqual({ kind: "release" });
  });
  it("waits for the unfinished ones only", () => {
    expect(decide(["a", "b"], of)).toEqual({ kind: "wait", remaining: ["b"] });
  });
  it("fails on the first failed, cancelled or missing one, even with others still running", () => {
    expect(decide(["b", "c", "a"], of)).toEqual({ kind: "fail", dependency: "c", outcome: "failed" });
    expect(decide(["b", "gone"], of)).toEqual({ kind: "fail", dependency: "gone", outcome: "missing" });
    expect(decide(["x"], () => "cancelled")).toEqual({ kind: "fail", dependency: "x", outcome: "cancelled" });
  });
});

describe("release on takeover (sweep)", () => {
  it("publishes the root of a workflow whose dependencies completed under the last supervisor, once", async () => {
    const a = await workflow({ status: "completed" });
    const x = await workflow({ status: "completed" });
    const b = await workflow({ after: [a.workflowId, x.workflowId] });
    expect(await published(b)).toEqual([]);

    const { deps, events } = fresh();
    expect(await deps.sweep()).toBeGreaterThanOrEqual(1);
    const after = await read(b.workflowId);
    expect(after).toMatchObject({ status: "running", waitingFor: [], after: [a.workflowId, x.workflowId] });
    expect(await published(b)).toEqual([b.rootTaskId]);
    expect(events.filter((e) => e.scope === b.workflowId)).toEqual([
      {
        type: "WORKFLOW_RELEASED",
        category: "workflow",
        scope: b.workflowId,
        data: { after: [a.workflowId, x.workflowId], waitedMs: 5000 },
      },
    ]);
    expect(await listKeys(workflows.kv, `after.*.${b.workflowId}`)).toEqual([]);

    // Again (a third supervisor, or the same sweep repeated): nothing more happens.
    const again = fresh();
    await again.deps.sweep();
    expect(again.events.filter((e) => e.scope === b.workflowId)).toEqual([]);
    expect(await published(b)).toEqual([b.rootTaskId]);
  });

  it("publishes again a root whose release was cut short between the publish and the record (de-duplicated)", async () => {
    const a = await workflow({ status: "completed" });
    const b = await workflow({ after: [a.workflowId] });
    // The last supervisor published the root, then died before emptying waitingFor.
    await fresh().deps.sweep();
    await workflows.modify(b.workflowId, (w) => (w ? { ...w, waitingFor: [a.workflowId] } : undefined));
    await workflows.kv.put(afterKey(a.workflowId, b.workflowId), "{}");

    const { deps, events } = fresh();
    await deps.sweep();
    expect((await read(b.workflowId))?.waitingFor).toEqual([]);
    expect(events.map((e) => e.type)).toContain("WORKFLOW_RELEASED");
    // JetStream de-duplicated the second publish on the task id: one message.
    expect(await published(b)).toEqual([b.rootTaskId]);
  });

  it("fails the dependents of a cancelled workflow, naming it, and theirs in turn", async () => {
    const a = await workflow({ status: "cancelled" });
    const b = await workflow({ after: [a.workflowId] });
    const c = await workflow({ after: [b.workflowId] });
    const { deps, events, ended } = fresh();
    await deps.sweep();

    const fb = await read(b.workflowId);
    expect(fb).toMatchObject({ status: "failed", waitingFor: [], finishedAt: START + 5000 });
    expect(fb?.error).toMatchObject({
      code: DEPENDENCY_FAILED,
      data: { dependency: a.workflowId, outcome: "cancelled" },
    });
    expect(fb?.error?.message).toContain(`workflow ${a.workflowId}`);
    expect(fb?.tasks).toMatchObject({ total: 1, cancelled: 1 });
    expect((await tasks.get(b.rootTaskId))?.value.status).toBe("cancelled");
    // C waited for B, which can now never complete.
    const fc = await until("C failed", async () => {
      const w = await read(c.workflowId);
      return w?.status !== "running" && w;
    });
    expect(fc.status).toBe("failed");
    expect(fc.error).toMatchObject({ code: DEPENDENCY_FAILED, data: { dependency: b.workflowId, outcome: "failed" } });
    expect(await published(b)).toEqual([]);
    expect(await published(c)).toEqual([]);
    expect(ended).toEqual(expect.arrayContaining([b.workflowId, c.workflowId]));
    const failed = events.filter((e) => e.type === "WORKFLOW_FAILED").map((e) => e.scope);
    expect(failed).toEqual(expect.arrayContaining([b.workflowId, c.workflowId]));
    expect(failed).toHaveLength(2);
  });

  it("leaves a workflow waiting for a running one, shrinking waitingFor to what is left; releases it when that one ends", async () => {
    const a = await workflow({ status: "completed" });
    const r = await workflow();
    const b = await workflow({ after: [a.workflowId, r.workflowId] });
    const { deps, events } = fresh();
    await deps.sweep();
    expect((await read(b.workflowId))?.waitingFor).toEqual([r.workflowId]);
    expect(await published(b)).toEqual([]);
    expect(events.filter((e) => e.scope === b.workflowId)).toEqual([]);
    expect(await listKeys(workflows.kv, `after.*.${b.workflowId}`)).toEqual([afterKey(r.workflowId, b.workflowId)]);

    // The running one completes: its end settles the dependents the sweep found.
    await workflows.modify(r.workflowId, (w) =>
      w ? { ...w, status: "completed", finishedAt: START + 20 } : undefined,
    );
    deps.finished(r.workflowId);
    await until("B released", async () => (await read(b.workflowId))?.waitingFor?.length === 0);
    expect(await published(b)).toEqual([b.rootTaskId]);
  });

  it("leaves alone the index key of a submit that has not written its record yet", async () => {
    const a = await workflow({ status: "completed" });
    const key = afterKey(a.workflowId, "wnotyet");
    await workflows.kv.put(key, "{}");
    const { deps, events } = fresh();
    await deps.sweep();
    expect(await listKeys(workflows.kv, "after.*.wnotyet")).toEqual([key]);
    expect(events.filter((e) => e.scope === "wnotyet")).toEqual([]);
    await workflows.kv.delete(key);
  });
});
