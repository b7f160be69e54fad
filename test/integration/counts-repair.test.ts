import { BUCKETS, WorkflowRecordSchema } from "@cadre/protocol";
import { Kvm } from "@nats-io/kv";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startCluster, type TestCluster, until, waitForEvent } from "../helpers/cluster.js";

describe("a workflow whose counts a crash left short", () => {
  let c: TestCluster;
  beforeAll(async () => {
    c = await startCluster({ hosts: 1 });
  });
  afterAll(async () => {
    await c?.stop();
  });

  it("finishes with counts recomputed from its task records", async () => {
    const team = {
      name: "counts",
      root: "boss",
      kinds: {
        boss: {
          role: "director" as const,
          behaviour: { type: "script" as const, delegate: [{ kind: "worker", count: 3 }] },
        },
        worker: { role: "agent" as const, replicas: 1, behaviour: { type: "script" as const, sleepMs: 300 } },
      },
    };
    const firstDone = waitForEvent(c.nc, (e) => e.type === "TASK_COMPLETED" && e.data.kind === "worker");
    const id = await c.submit(team);
    await firstDone;

    // What a supervisor killed between writing a task record and the workflow's counts leaves:
    // the task is completed in its record, but not counted.
    const kv = await new Kvm(c.nc).open(BUCKETS.workflows);
    // The completion is announced as soon as the task record holds it; the count follows.
    await until(
      "the first completion counted",
      async () => WorkflowRecordSchema.parse((await kv.get(id))?.json()).tasks.completed > 0,
      10_000,
    );
    for (;;) {
      const e = await kv.get(id);
      if (!e) throw new Error("no workflow record");
      const w = WorkflowRecordSchema.parse(e.json());
      expect(w.tasks.completed).toBeGreaterThan(0);
      const short = { ...w, tasks: { ...w.tasks, completed: w.tasks.completed - 1 } };
      try {
        await kv.update(id, JSON.stringify(short), e.revision);
        break;
      } catch {
        // The supervisor wrote in between; take the new version.
      }
    }

    const w = await c.wait(id);
    expect(w.status).toBe("completed");
    expect(w.tasks).toMatchObject({ total: 4, completed: 4, failed: 0 });
    // The log line comes through a pipe and can arrive after the record's update: wait for it.
    const repaired = () =>
      c.logs.get("supervisor")?.some((l) => l.includes("workflow counts repaired from task records"));
    await until("the supervisor's repair logged", repaired, 10_000).catch((err: Error) => {
      throw new Error(`${err.message}\n${c.tail(80)}`);
    });
  });
});
