/**
 * The actor lifecycle on a real stack with a small cluster limit (max_concurrent_agents 3):
 * idle actors passivate and come back for new work; a workflow whose only actor of a kind was
 * preempted completes once the higher-priority work is done; a guarantee survives a
 * higher-priority team's preemption.
 */

import type { CadreError, TeamInput } from "@cadre/protocol";
import { SupervisorClient } from "@cadre/runtime";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { fastConfig, recordEvents, startCluster, type TestCluster, until } from "../helpers/cluster.js";

const agentTeam = (name: string, replicas: number, priority: number, sleepMs: number): TeamInput => ({
  name,
  root: "worker",
  priority,
  kinds: { worker: { role: "agent", replicas, behaviour: { type: "script", sleepMs, output: { team: name } } } },
});

/** A lead and one worker: two actors, each the only one of its kind. */
const pairTeam = (name: string, sleepMs: number): TeamInput => ({
  name,
  root: "lead",
  kinds: {
    lead: {
      role: "lead",
      replicas: 1,
      behaviour: { type: "script", delegate: [{ kind: "worker" }], output: { done: true } },
    },
    worker: { role: "agent", replicas: 1, behaviour: { type: "script", sleepMs, output: { ok: true } } },
  },
});

describe("actor lifecycle", () => {
  let c: TestCluster;
  let sup: SupervisorClient;
  const noActors = () =>
    until("every actor passivated", async () => (await sup.call("sup.actor.list", {})).actors.length === 0);

  beforeAll(async () => {
    c = await startCluster({
      hosts: 2,
      config: {
        ...fastConfig,
        orchestration_limits: { max_concurrent_agents: 3, max_agents_per_orchestrator: 3 },
        lifecycle: { sweepMs: 200, passivateAfterMs: 1500 },
      },
    });
    sup = new SupervisorClient(c.nc, { sender: "lifecycle-test", timeoutMs: 10_000 });
  }, 60_000);
  afterAll(async () => {
    await c?.stop();
  });

  it("passivates an idle team's actors and places them again for its next workflow", async () => {
    const rec = recordEvents(c.nc);
    const team = agentTeam("idle-team", 2, 0, 0);
    expect((await c.wait(await c.submit(team))).status).toBe("completed");
    await noActors();
    // The records go before their events arrive here: wait for both announcements.
    const passivated = await until("both passivations announced", () => {
      const p = rec.events.filter((e) => e.event.type === "ACTOR_PASSIVATED");
      return p.length >= 2 ? p : undefined;
    });
    expect(passivated).toHaveLength(2);
    expect(Number(passivated[0]?.event.data.idleMs)).toBeGreaterThanOrEqual(1500);
    // The team is still known; its next workflow gets actors again.
    expect((await sup.call("sup.team.list", {})).teams.map((t) => t.name)).toContain("idle-team");
    expect((await c.wait(await c.submit(team))).status).toBe("completed");
    await until(
      "the four spawns announced",
      () => rec.events.filter((e) => e.event.type === "ACTOR_SPAWNED").length >= 4,
    );
    rec.stop();
    expect(rec.events.filter((e) => e.event.type === "ACTOR_SPAWNED")).toHaveLength(4);
  });

  it("a workflow whose only actor of a kind was preempted completes after the higher-priority work ends", async () => {
    await noActors();
    const rec = recordEvents(c.nc);
    const low = await c.submit(pairTeam("low-pair", 1500));
    await until("the low worker running", () =>
      rec.events.some(
        (e) => e.event.type === "TASK_STARTED" && e.event.scope === low && e.event.data.kind === "worker",
      ),
    );
    // Two more actors at priority 5 in a cluster of three: one of the pair goes.
    const high = await c.submit(agentTeam("high-pair", 2, 5, 1000));
    const preempted = await until("a preemption", () => rec.events.find((e) => e.event.type === "AGENT_PREEMPTED"));
    expect(preempted.event.data).toMatchObject({ priority: 0, byPriority: 5 });
    expect((await c.wait(high)).status).toBe("completed");
    const w = await c.wait(low, 30_000);
    rec.stop();
    expect(w.status, c.tail()).toBe("completed");
    expect(w.tasks).toMatchObject({ total: 2, completed: 2, duplicates: 0 });
    // The room came from the finished high-priority team's idle actors: passivated, either to make
    // room for the queued work or because they were idle long enough, whichever the sweep met first.
    const passivated = rec.events.filter((e) => e.event.type === "ACTOR_PASSIVATED");
    expect(passivated.length).toBeGreaterThan(0);
    expect(passivated.every((e) => e.event.data.teamId !== w.teamId)).toBe(true);
  });

  it("a guarantee survives a higher-priority team: its actors are not preempted, the newcomer is refused", async () => {
    await noActors();
    const rec = recordEvents(c.nc);
    const low = await c.submit(pairTeam("guarded-pair", 1500));
    const limited = await sup.call("sup.workflow.limit", { workflowId: low, guarantee: 2 });
    expect(limited.control.guarantee).toBe(2);
    let refused: CadreError | undefined;
    await c.submit(agentTeam("high-guard", 2, 5, 0)).catch((err: CadreError) => {
      refused = err;
    });
    expect(refused?.code).toBe("RESOURCE_EXHAUSTED");
    expect(refused?.message).toContain("reserved by guarantees");
    const w = await c.wait(low, 30_000);
    rec.stop();
    expect(w.status, c.tail()).toBe("completed");
    expect(rec.events.filter((e) => e.event.type === "AGENT_PREEMPTED")).toEqual([]);
  });
});
