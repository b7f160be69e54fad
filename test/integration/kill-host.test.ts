import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startCluster, type TestCluster, waitForEvent } from "../helpers/cluster.js";

describe("an agent-host killed with SIGKILL while it holds a running task", () => {
  let c: TestCluster;
  beforeAll(async () => {
    c = await startCluster({ hosts: 2 });
  });
  afterAll(async () => {
    await c?.stop();
  });

  it("has its task redelivered to the other host; the workflow completes and no result is applied twice", async () => {
    const team = {
      name: "kill-host",
      root: "boss",
      kinds: {
        boss: {
          role: "director" as const,
          behaviour: { type: "script" as const, delegate: [{ kind: "worker", count: 3, input: { n: "{{index}}" } }] },
        },
        worker: {
          role: "agent" as const,
          behaviour: { type: "script" as const, sleepMs: 1500, output: { done: "{{input.n}}" } },
        },
      },
    };
    const started = waitForEvent(c.nc, (e) => e.type === "TASK_STARTED" && e.data.kind === "worker");
    const id = await c.submit(team);
    const victim = String((await started).data.hostId);
    const victimTask = String((await started).data.taskId);
    const survivor = victim === "host-1" ? "host-2" : "host-1";
    await c.stack.processes.get(victim)?.kill("SIGKILL");

    const w = await c.wait(id, 60_000);
    expect(w.status, c.tail()).toBe("completed");
    expect(w.tasks).toMatchObject({ total: 4, completed: 4, failed: 0 });

    const records = await c.taskRecords(id);
    const redelivered = records.find((r) => r.task.taskId === victimTask);
    expect(redelivered?.applied?.hostId).toBe(survivor);
    // Moved either by reassignment (a new epoch, after detection and the grace) or by JetStream's
    // redelivery (a later attempt, after the 1.5 s ack wait), whichever came first: not the first run.
    const { epoch = 1, attempt = 1 } = redelivered?.applied ?? {};
    expect(epoch + attempt).toBeGreaterThan(2);

    // Every task's result was applied exactly once: one TASK_COMPLETED each, and any extra
    // result that arrived was recorded as a duplicate instead.
    const completed = (await c.events()).filter((e) => e.type === "TASK_COMPLETED" && e.scope === id);
    expect(completed.map((e) => e.data.taskId).sort()).toEqual(records.map((r) => r.task.taskId).sort());
    const duplicates = records.reduce((n, r) => n + r.duplicates.length, 0);
    expect(w.tasks.duplicates).toBe(duplicates);
  });
});
