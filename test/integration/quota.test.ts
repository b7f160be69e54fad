/**
 * Quotas on a real cluster (max_agents_per_orchestrator 2, max_concurrent_agents 3): a team
 * past its own limit and a team that finds the cluster full are refused with the limit and the
 * count; a higher-priority team preempts the youngest lowest-priority actor, whose task goes
 * back to the queue and still completes.
 */

import { BUCKETS, type CadreError, type TeamInput } from "@cadre/protocol";
import { Kvm } from "@nats-io/kv";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { fastConfig, recordEvents, startCluster, type TestCluster, until } from "../helpers/cluster.js";

const team = (name: string, replicas: number, priority = 0, sleepMs = 0): TeamInput => ({
  name,
  root: "worker",
  priority,
  kinds: { worker: { role: "agent", replicas, behaviour: { type: "script", sleepMs, output: { team: name } } } },
});

async function refusal(p: Promise<unknown>): Promise<CadreError> {
  try {
    await p;
  } catch (err) {
    return err as CadreError;
  }
  throw new Error("expected the submission to be refused");
}

describe("quotas and priority preemption", () => {
  let c: TestCluster;
  beforeAll(async () => {
    c = await startCluster({
      hosts: 2,
      config: { ...fastConfig, orchestration_limits: { max_agents_per_orchestrator: 2, max_concurrent_agents: 3 } },
    });
  }, 60_000);
  afterAll(async () => {
    await c?.stop();
  });

  it("resource exhaustion handling: spawn until the limit, graceful rejection", async () => {
    const rec = recordEvents(c.nc);
    // A team asking for more actors than one orchestrator may have: refused, nothing spawned.
    const tooBig = await refusal(c.submit(team("too-big", 3)));
    expect(tooBig.code).toBe("RESOURCE_EXHAUSTED");
    expect(tooBig.data).toMatchObject({ limit: 2, count: 0 });
    expect(tooBig.message).toContain("max_agents_per_orchestrator");

    // Two low-priority workflows on two of the cluster's three actor slots.
    const lowA = [await c.submit(team("low-a", 2, 0, 3000)), await c.submit(team("low-a", 2, 0, 3000))];
    await until("both low-priority tasks started", () =>
      lowA.every((id) => rec.events.some((e) => e.event.type === "TASK_STARTED" && e.event.scope === id)),
    );
    // Another team of the same priority finds the cluster full: refused, nothing preempted.
    const full = await refusal(c.submit(team("low-b", 2)));
    expect(full.code).toBe("RESOURCE_EXHAUSTED");
    expect(full.data).toMatchObject({ limit: 3, count: 2 });
    expect(full.message).toContain("max_concurrent_agents");
    expect(rec.events.filter((e) => e.event.type === "AGENT_PREEMPTED")).toEqual([]);
    expect(rec.events.filter((e) => e.event.type === "ACTOR_SPAWNED")).toHaveLength(2);

    // A higher-priority team preempts one low-priority actor; its task goes back to the queue.
    const urgent = await c.submit(team("urgent", 2, 5));
    expect((await c.wait(urgent, 30_000)).status).toBe("completed");
    const preempted = await until("the preemption event", () =>
      rec.events.find((e) => e.event.type === "AGENT_PREEMPTED"),
    );
    expect(preempted.event.data).toMatchObject({ priority: 0, byPriority: 5 });
    const requeued = String(preempted.event.data.requeued);
    expect(lowA.map((id) => `${id}-r`)).toContain(requeued);

    // The low-priority work still completes, the requeued task on the surviving actor.
    for (const id of lowA) expect((await c.wait(id, 30_000)).status).toBe("completed");
    rec.stop();
    const [redone] = await c.taskRecords(requeued.slice(0, -2));
    expect(redone?.applied?.actorId).not.toBe(preempted.event.data.actorId);
    // What the preempted actor knew is kept as a checkpoint.
    const kv = await new Kvm(c.nc).open(BUCKETS.registry);
    const checkpoint = (await kv.get(`checkpoint.${preempted.event.data.actorId}`))?.json<{ history: string[] }>();
    expect(checkpoint?.history).toContain(requeued);
  }, 90_000);
});
