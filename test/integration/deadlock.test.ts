/**
 * A deadlock on a real cluster: two directors take the same two exclusive resources in opposite
 * order. The supervisor finds the cycle when the second wait closes it, refuses the
 * lower-priority director (its attempt fails with DEADLOCK_VICTIM and is retried after a
 * backoff), and both complete. `cadre waits` shows the graph while the retried one waits.
 */

import { call } from "@cadre/runtime";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { deadlockTeam, recordEvents, startCluster, type TestCluster, until } from "../helpers/cluster.js";

const team = deadlockTeam("deadlock", 3000);

describe("two directors taking the same resources in opposite order", () => {
  let c: TestCluster;
  beforeAll(async () => {
    c = await startCluster({ hosts: 2 });
  }, 60_000);
  afterAll(async () => {
    await c?.stop();
  });

  it("deadlock, are resolved within 1 s by retrying the lower-priority one, and both complete", async () => {
    const rec = recordEvents(c.nc);
    const id = await c.submit(team);
    const [a, b] = [`${id}-r-0`, `${id}-r-1`];
    const resolved = await until("the deadlock resolved", () =>
      rec.events.find((e) => e.event.type === "DEADLOCK_RESOLVED"),
    );
    expect(resolved.event.data).toMatchObject({ victim: b, priority: 0, waitingFor: "pool-x", released: ["pool-y"] });
    expect([...(resolved.event.data.cycle as string[])].sort()).toEqual([a, b]);
    expect(Number(resolved.event.data.waitedMs)).toBeLessThan(1000);

    // Retried after a backoff, the victim waits for what the winner holds: the graph shows it.
    const waits = () => call(c.nc, "sup.waits", {}, { sender: "t", timeoutMs: 2000 });
    const shown = await until("the retried director waiting for the winner", async () => {
      const w = await waits();
      return w.waiting.some((x) => x.taskId === b) ? w : undefined;
    });
    expect(shown.holders).toMatchObject({ "pool-x": [a], "pool-y": [a] });
    expect(shown.edges).toContainEqual([b, a]);
    const text = c.cli("waits");
    expect(text).toContain(`pool-y: held by ${a}`);
    expect(text).toContain(`${b} waits for pool-y`);

    const w = await c.wait(id, 30_000);
    rec.stop();
    expect(w.status, c.tail()).toBe("completed");
    const records = await c.taskRecords(id);
    expect(records.find((r) => r.task.taskId === b)?.applied?.attempt).toBeGreaterThan(1);
    expect(records.find((r) => r.task.taskId === a)?.applied?.attempt).toBe(1);
    const failed = (await c.events()).filter((e) => e.type === "TASK_ATTEMPT_FAILED" && e.data.taskId === b);
    expect(failed.map((e) => e.data.code)).toEqual(["DEADLOCK_VICTIM"]);
    expect((await waits()).edges).toEqual([]);
  }, 60_000);
});
