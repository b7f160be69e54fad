/**
 * Workflow controls survive a supervisor failover, on a real stack (nats-server, two
 * supervisors and two agent-hosts as processes): a workflow paused with its workers parked
 * stays paused, with the same parked tasks, once the active supervisor is SIGKILLed and the
 * standby takes over; resumed through the new active one, it completes with every task applied
 * once. Asserted from the records, the supervisors' own view and their events, never from timing.
 */

import type { OpReply } from "@cadre/protocol";
import { discoverServices, SupervisorClient } from "@cadre/runtime";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { fanTeam, fastConfig, startCluster, type TestCluster, until, waitForEvent } from "../helpers/cluster.js";

type Tree = OpReply<"sup.debug.workflow">;
const STANDBY = "sup-standby";

describe("workflow controls across a supervisor failover", () => {
  let c: TestCluster;
  let sup: SupervisorClient;
  const tree = (workflowId: string): Promise<Tree> => sup.call("sup.debug.workflow", { workflowId });
  const workers = (t: Tree) => t.tasks.filter((x) => x.kind === "worker");
  /** Each supervisor's id and role, from `$SRV.INFO`. */
  const roles = async () =>
    Object.fromEntries(
      (await discoverServices(c.nc, "cadre-supervisor")).map((s) => [s.metadata?.id, s.metadata?.role]),
    ) as Record<string, string>;

  beforeAll(async () => {
    c = await startCluster({ hosts: 2, config: fastConfig });
    await c.stack.startSupervisor(STANDBY);
    sup = new SupervisorClient(c.nc, { sender: "controls-failover-test", timeoutMs: 10_000 });
  }, 60_000);
  afterAll(async () => {
    await c?.stop();
  });

  it("a paused workflow stays paused with its parked tasks after the active supervisor dies; resumed, it completes once", async () => {
    const first = c.stack.processes.get("supervisor");
    expect(first).toBeDefined();
    const before = await until("both supervisors registered", async () => {
      const r = await roles();
      return Object.keys(r).length === 2 && r;
    });
    expect(before[STANDBY]).toBe("standby");
    expect(Object.values(before).sort()).toEqual(["active", "standby"]);

    const id = await c.submit(fanTeam("failover-team", 6, 800));
    // The lead has delegated (it is never parked), then the pause: the workers not started yet park.
    await until("the six workers created", async () => workers(await tree(id)).length === 6);
    await sup.call("sup.workflow.pause", { workflowId: id });
    const held = await until("every unfinished worker parked", async () => {
      const t = await tree(id);
      const w = workers(t);
      return w.every((x) => x.status === "completed" || x.status === "parked") && t;
    });
    const parked = workers(held)
      .filter((x) => x.status === "parked")
      .map((x) => x.taskId)
      .sort();
    expect(parked.length).toBeGreaterThan(0);
    expect(held.control?.parked.map((p) => p.taskId).sort()).toEqual(parked);

    // The active supervisor dies without a word; the standby takes the lease over.
    const activated = waitForEvent(c.nc, (e) => e.type === "SUPERVISOR_ACTIVE" && e.scope === STANDBY, 30_000);
    await first?.kill("SIGKILL");
    const event = await activated;
    expect(event.data.previous).not.toBe(STANDBY);
    expect(await until("the standby registered as active", async () => (await roles())[STANDBY] === "active")).toBe(
      true,
    );

    // The new active one enforces what its predecessor was told: still paused, the same tasks parked.
    const status = await sup.call("sup.status", { workflowId: id });
    expect(status.workflow.status).toBe("running");
    expect(status.control?.paused).toBe(true);
    expect(status.control?.parked.map((p) => p.taskId).sort()).toEqual(parked);
    const after = await tree(id);
    expect(
      workers(after)
        .filter((x) => x.status === "parked")
        .map((x) => x.taskId)
        .sort(),
    ).toEqual(parked);
    expect(workers(after).filter((x) => x.status === "running" || x.status === "queued")).toEqual([]);

    await sup.call("sup.workflow.resume", { workflowId: id });
    const w = await c.wait(id);
    expect(w.status, c.tail()).toBe("completed");
    expect(w.tasks).toMatchObject({ total: 7, completed: 7, failed: 0, duplicates: 0, conflicts: 0 });
    const records = await c.taskRecords(id);
    expect(records).toHaveLength(7);
    for (const r of records) {
      expect(r.status).toBe("completed");
      expect(r.duplicates).toEqual([]);
      // A parked task ran again at the next epoch, published by the new active supervisor.
      if (parked.includes(r.task.taskId)) {
        expect(r.task.epoch).toBe(2);
        expect(r.applied?.epoch).toBe(2);
      }
    }
    // One TASK_COMPLETED per task in the events stream: nothing was applied twice, before or
    // after the failover. (A live subscriber may see one twice: the new supervisor announces again
    // a result it finds applied, under the same message id, which the stream stores once.)
    const completed = async () => (await c.events()).filter((e) => e.type === "TASK_COMPLETED" && e.scope === id);
    const stored = await until("the seven TASK_COMPLETED events", async () => {
      const got = await completed();
      return got.length >= 7 && got;
    });
    const perTask = new Map<string, number>();
    for (const e of stored) {
      const t = String(e.data.taskId);
      perTask.set(t, (perTask.get(t) ?? 0) + 1);
    }
    expect([...perTask.values()]).toEqual(Array(7).fill(1));
  }, 90_000);
});
