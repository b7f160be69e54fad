/**
 * Reconciliation on a real nats-server: how each result is classified against its task record
 * (the table), and how the tasks of a lost host are reassigned with a new epoch.
 */

import {
  type CadreEvent,
  decodeAs,
  encode,
  parseConfig,
  resultMessageId,
  STREAMS,
  subjects,
  type TaskRecord,
  TaskRecordSchema,
  type TaskResult,
  taskMessageId,
  type WorkflowRecord,
  WorkflowRecordSchema,
} from "@cadre/protocol";
import { taskEnvelope } from "@cadre/protocol/testing";
import {
  connectNats,
  createLogger,
  ensureInfrastructure,
  ManualClock,
  type NatsConnection,
  StateStore,
} from "@cadre/runtime";
import { type NatsServer, startNatsServer } from "@cadre/runtime/testing";
import { type JetStreamClient, type JetStreamManager, jetstream, jetstreamManager } from "@nats-io/jetstream";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Reassigner } from "./reassign.js";
import { Registry } from "./registry.js";
import { type ApplyOutcome, ResultApplier } from "./results.js";

const config = parseConfig({ tasks: { reassignGraceMs: 1000 } });
const logger = createLogger("reconcile-test", "silent");

let server: NatsServer;
let nc: NatsConnection;
let js: JetStreamClient;
let jsm: JetStreamManager;
let tasks: StateStore<TaskRecord>;
let workflows: StateStore<WorkflowRecord>;
let registry: Registry;
let buckets: Awaited<ReturnType<typeof ensureInfrastructure>>;
let n = 0;

beforeAll(async () => {
  server = await startNatsServer();
  nc = await connectNats(server.url, "reconcile-test");
  buckets = await ensureInfrastructure(nc, config);
  js = jetstream(nc);
  jsm = await jetstreamManager(nc);
  tasks = new StateStore(buckets.tasks, TaskRecordSchema, "task");
  workflows = new StateStore(buckets.workflows, WorkflowRecordSchema, "workflow");
  registry = new Registry(buckets.registry, config, new ManualClock(0));
});
afterAll(async () => {
  await nc?.close();
  await server?.stop();
});

/** A fresh workflow `wN` whose task `wN-r-0` is queued at `epoch`. */
async function queuedTask(epoch = 1) {
  const workflowId = `w${++n}`;
  const task = taskEnvelope({ taskId: `${workflowId}-r-0`, workflowId, epoch });
  await workflows.create(workflowId, {
    workflowId,
    teamId: task.teamId,
    teamName: "t",
    rootTaskId: `${workflowId}-r`,
    status: "running",
    submittedAt: 0,
    finishedAt: null,
    tasks: { total: 2, completed: 0, failed: 0, retried: 0, duplicates: 0, conflicts: 0, cancelled: 0 },
  });
  await tasks.create(task.taskId, {
    task,
    status: "queued",
    createdAt: 0,
    finishedAt: null,
    applied: null,
    duplicates: [],
    conflicts: [],
    invalid: [],
  });
  return task;
}

function result(task: { taskId: string; workflowId: string }, epoch: number, attempt: number, hostId: string) {
  return {
    taskId: task.taskId,
    workflowId: task.workflowId,
    epoch,
    attempt,
    hostId,
    actorId: `a-${hostId}`,
    status: "completed",
    output: { by: hostId, epoch },
    startedAt: 1,
    finishedAt: 2,
  } satisfies TaskResult;
}

describe("classifying a result against its task record", () => {
  const events: CadreEvent[] = [];
  let applier: ResultApplier;
  beforeAll(() => {
    applier = new ResultApplier({
      nc,
      js,
      quarantine: async () => {},
      tasks,
      workflows,
      registry,
      config,
      logger,
      sender: "sup-test",
      emit: (e) => events.push(e),
    });
  });

  // record: the epoch the record is at and the results applied before; result: the one classified.
  const table: {
    case: string;
    recordEpoch: number;
    before: [epoch: number, attempt: number, host: string][];
    result: [epoch: number, attempt: number, host: string];
    outcome: ApplyOutcome;
    applied: string | null;
  }[] = [
    {
      case: "first result, current epoch",
      recordEpoch: 1,
      before: [],
      result: [1, 1, "h1"],
      outcome: "applied",
      applied: "1:1",
    },
    {
      case: "the applied result again",
      recordEpoch: 1,
      before: [[1, 1, "h1"]],
      result: [1, 1, "h1"],
      outcome: "reprocessed",
      applied: "1:1",
    },
    {
      case: "another attempt after one was applied",
      recordEpoch: 1,
      before: [[1, 1, "h1"]],
      result: [1, 2, "h2"],
      outcome: "duplicate",
      applied: "1:1",
    },
    {
      case: "old epoch, task still waiting for the new one",
      recordEpoch: 2,
      before: [],
      result: [1, 1, "h1"],
      outcome: "conflict",
      applied: null,
    },
    {
      case: "old epoch after the new one was applied",
      recordEpoch: 2,
      before: [[2, 1, "h2"]],
      result: [1, 1, "h1"],
      outcome: "conflict",
      applied: "2:1",
    },
    {
      case: "the same conflict twice",
      recordEpoch: 2,
      before: [[1, 1, "h1"]],
      result: [1, 1, "h1"],
      outcome: "conflict",
      applied: null,
    },
    {
      case: "newer epoch than the record (reassignment interrupted)",
      recordEpoch: 1,
      before: [],
      result: [2, 1, "h2"],
      outcome: "applied",
      applied: "2:1",
    },
  ];

  for (const row of table) {
    it(`${row.case}: ${row.outcome}`, async () => {
      const task = await queuedTask(row.recordEpoch);
      for (const [e, a, h] of row.before) await applier.apply(result(task, e, a, h));
      const [e, a, h] = row.result;
      expect(await applier.apply(result(task, e, a, h))).toBe(row.outcome);
      const rec = (await tasks.get(task.taskId))?.value;
      expect(rec?.applied ? `${rec.applied.epoch}:${rec.applied.attempt}` : null).toBe(row.applied);
      expect(rec?.status).toBe(row.applied ? "completed" : "queued");
      if (row.outcome === "conflict") {
        // Recorded once with its outcome, beside the applied one; counted once on the workflow.
        expect(rec?.conflicts.map((c) => [c.resultId, c.hostId, c.output])).toEqual([
          [resultMessageId(task.taskId, e, a), h, { by: h, epoch: e }],
        ]);
        expect((await workflows.get(task.workflowId))?.value.tasks.conflicts).toBe(1);
        const announced = events.filter((ev) => ev.type === "RESULT_CONFLICT" && ev.data.taskId === task.taskId);
        expect(announced).toHaveLength(1);
        expect(announced[0]?.data.currentEpoch).toBe(row.recordEpoch);
      }
      if (row.applied === "2:1") expect(rec?.task.epoch).toBe(2);
    });
  }

  it("announces a result once its record holds it, and again under the same id when its message comes back unfinished", async () => {
    // The workflow's count refused once after the task record was written (as while NATS elects leaders).
    class RefusesOnce extends StateStore<WorkflowRecord> {
      refuse = true;
      override modify(...args: Parameters<StateStore<WorkflowRecord>["modify"]>) {
        if (!this.refuse) return super.modify(...args);
        this.refuse = false;
        return Promise.reject(new Error("no responders: the stream elects a leader"));
      }
    }
    const announced: { type: string; taskId: unknown; id: string | undefined }[] = [];
    const flaky = new ResultApplier({
      nc,
      js,
      quarantine: async () => {},
      tasks,
      workflows: new RefusesOnce(buckets.workflows, WorkflowRecordSchema, "workflow"),
      registry,
      config,
      logger,
      sender: "sup-test",
      emit: (e, o) =>
        announced.push({ type: e.type, taskId: "taskId" in e.data ? e.data.taskId : undefined, id: o?.id }),
    });
    const task = await queuedTask();
    // Its root too, so that the recount finds the task by walking the tree.
    const root = taskEnvelope({ taskId: `${task.workflowId}-r`, workflowId: task.workflowId, parentTaskId: null });
    const queued = (await tasks.get(task.taskId))?.value as TaskRecord;
    await tasks.create(root.taskId, { ...queued, task: root });
    await expect(flaky.apply(result(task, 1, 1, "h1"))).rejects.toThrow(/no responders/);
    const id = `applied:${resultMessageId(task.taskId, 1, 1)}`;
    expect(announced).toEqual([{ type: "TASK_COMPLETED", taskId: task.taskId, id }]);
    // The message comes back (not acked): already applied, announced again under the same id, counted.
    expect(await flaky.apply(result(task, 1, 1, "h1"), { redelivered: true })).toBe("reprocessed");
    expect(announced).toEqual([
      { type: "TASK_COMPLETED", taskId: task.taskId, id },
      { type: "TASK_COMPLETED", taskId: task.taskId, id },
    ]);
    expect((await workflows.get(task.workflowId))?.value.tasks.completed).toBe(1);
    // A second copy of the result in the stream (a replayed outbox) is a new message: its first
    // copy was announced, so it is not announced again.
    expect(await flaky.apply(result(task, 1, 1, "h1"))).toBe("reprocessed");
    expect(announced).toHaveLength(2);
  });

  it("applies a valid response far larger than its kind's usual, and flags it for review", async () => {
    for (let i = 0; i < 30; i++) {
      const t = await queuedTask();
      await applier.apply({ ...result(t, 1, 1, "h1"), output: { text: "x".repeat(100 + i) } });
    }
    expect(events.filter((e) => e.type === "RESPONSE_ANOMALY")).toEqual([]);
    const big = await queuedTask();
    expect(await applier.apply({ ...result(big, 1, 1, "h9"), output: { text: "x".repeat(5000) } })).toBe("applied");
    const flagged = events.filter((e) => e.type === "RESPONSE_ANOMALY");
    expect(flagged.map((e) => [e.data.taskId, e.data.metric, e.data.hostId])).toEqual([[big.taskId, "bytes", "h9"]]);
    expect((await tasks.get(big.taskId))?.value.status).toBe("completed");
  });

  it("a result for a task that does not exist: orphan", async () => {
    expect(await applier.apply(result({ taskId: "nope-r-0", workflowId: "nope" }, 1, 1, "h1"))).toBe("orphan");
  });
});

describe("reassigning the tasks of a lost host", () => {
  const unreachable = new Set<string>();
  const frozen = new Set<string>();
  let active = true;

  function setup() {
    const clock = new ManualClock(1_000_000);
    const events: CadreEvent[] = [];
    const r = new Reassigner({
      js,
      jsm,
      tasks,
      config,
      clock,
      logger,
      sender: "sup-test",
      emit: (e) => events.push(e),
      active: () => active,
      unreachable: (h) => unreachable.has(h),
      frozen: (w) => frozen.has(w),
    });
    return { clock, events, r };
  }

  /** A queued task with its message on the tasks stream, as a host would hold it. */
  async function published(epoch = 1) {
    const task = await queuedTask(epoch);
    const ack = await js.publish(subjects.task(task.teamId, task.kind), encode("task", task, { sender: "t" }), {
      msgID: taskMessageId(task.idempotencyKey, epoch),
    });
    return { task, held: { taskId: task.taskId, epoch, seq: ack.seq } };
  }

  const beat = (hostId: string, incarnation: string, held?: { taskId: string; epoch: number; seq: number }[]) => ({
    hostId,
    incarnation,
    seq: 0,
    actors: 1,
    busy: held?.length ?? 0,
    load: 0,
    ...(held ? { held } : {}),
  });

  /** The stream's messages for the task, decoded: the epochs a host could still be given. */
  async function queuedEpochs(seqs: number[], subject: string): Promise<number[]> {
    const out: number[] = [];
    for (const seq of seqs) {
      const m = await jsm.streams.getMessage(STREAMS.tasks, { seq }).catch(() => null);
      if (m) out.push(decodeAs(m.data, "task").body.epoch);
    }
    const last = await jsm.streams.getMessage(STREAMS.tasks, { last_by_subj: subject }).catch(() => null);
    if (last && !seqs.includes(last.seq)) out.push(decodeAs(last.data, "task").body.epoch);
    return out;
  }

  it("after the grace period: a new epoch on the record and the stream, the old message gone, an event", async () => {
    const { clock, events, r } = setup();
    const { task, held } = await published();
    r.heard(beat("h1", "i1", [held]));
    unreachable.add("h1");
    r.lost("h1");
    clock.advance(999);
    await r.idle();
    expect((await tasks.get(task.taskId))?.value.task.epoch).toBe(1);

    clock.advance(1);
    await r.idle();
    expect((await tasks.get(task.taskId))?.value.task.epoch).toBe(2);
    expect(await queuedEpochs([held.seq], subjects.task(task.teamId, task.kind))).toEqual([2]);
    expect(events.map((e) => [e.type, e.data.taskId, e.data.fromHostId, e.data.epoch, e.data.reason])).toEqual([
      ["TASK_REASSIGNED", task.taskId, "h1", 2, "unreachable"],
    ]);
    unreachable.delete("h1");
  });

  it("also a task the host started after its last heartbeat's list (known from TASK_STARTED)", async () => {
    const { clock, events, r } = setup();
    const listed = await published();
    const late = await published();
    r.heard(beat("h7", "i1", [listed.held]));
    r.started("h7", late.held);
    r.started("h8", late.held); // a host never heard from: ignored
    unreachable.add("h7");
    r.lost("h7");
    clock.advance(1000);
    await r.idle();
    expect(events.map((e) => e.data.taskId).sort()).toEqual([listed.task.taskId, late.task.taskId].sort());
    unreachable.delete("h7");
  });

  it("not for a frozen workflow: the task keeps its epoch and its message", async () => {
    const { clock, events, r } = setup();
    const { task, held } = await published();
    frozen.add(task.workflowId);
    r.heard(beat("h3", "i1", [held]));
    unreachable.add("h3");
    r.lost("h3");
    clock.advance(1000);
    await r.idle();
    expect((await tasks.get(task.taskId))?.value.task.epoch).toBe(1);
    expect(await queuedEpochs([held.seq], subjects.task(task.teamId, task.kind))).toEqual([1]);
    expect(events).toEqual([]);
    unreachable.delete("h3");
    frozen.delete(task.workflowId);
  });

  it("not when the host is heard from within the grace period", async () => {
    const { clock, events, r } = setup();
    const { task, held } = await published();
    r.heard(beat("h2", "i1", [held]));
    unreachable.add("h2");
    r.lost("h2");
    clock.advance(500);
    unreachable.delete("h2");
    r.healed("h2");
    clock.advance(1000);
    await r.idle();
    expect((await tasks.get(task.taskId))?.value.task.epoch).toBe(1);
    expect(events).toEqual([]);
  });

  it("not a task that finished, was reassigned already, or that a live host has taken since", async () => {
    const { clock, events, r } = setup();
    const finished = await published();
    await tasks.modify(finished.task.taskId, (rec) => rec && { ...rec, status: "completed" });
    const moved = await published(3);
    const takenOver = await published();
    r.heard(beat("h3", "i1", [finished.held, { ...moved.held, epoch: 2 }, takenOver.held]));
    r.heard(beat("h4", "i1", [takenOver.held]));
    unreachable.add("h3");
    r.lost("h3");
    clock.advance(1000);
    await r.idle();
    expect(events).toEqual([]);
    expect((await tasks.get(takenOver.task.taskId))?.value.task.epoch).toBe(1);
    unreachable.delete("h3");
  });

  it("at once when the host comes back as a new process: the old one's tasks are gone with it", async () => {
    const { events, r } = setup();
    const { task, held } = await published();
    r.heard(beat("h5", "i1", [held]));
    // Restarted before the detector noticed: the new incarnation holds nothing yet.
    r.heard(beat("h5", "i2", []));
    await r.idle();
    expect((await tasks.get(task.taskId))?.value.task.epoch).toBe(2);
    expect(events.map((e) => e.data.reason)).toEqual(["restarted"]);
    // Later beats of the same incarnation without a list change nothing.
    r.heard(beat("h5", "i2"));
    await r.idle();
    expect(events).toHaveLength(1);
  });

  it("a standby follows heartbeats but reassigns nothing", async () => {
    const { clock, events, r } = setup();
    const { task, held } = await published();
    active = false;
    r.heard(beat("h6", "i1", [held]));
    unreachable.add("h6");
    r.lost("h6");
    clock.advance(1000);
    await r.idle();
    active = true;
    expect(events).toEqual([]);
    expect((await tasks.get(task.taskId))?.value.task.epoch).toBe(1);
  });
});
