/**
 * Seed 003's second incident end to end on a real stack ("Agent Pool Failure with Workflow
 * Dependency Chain"): three agents lost with their host while two workflows run, one of which
 * (the dependent) must not move on before the other (the primary) is done. The cascade analysis
 * names the lost agents and the blocked chain; `cadre coordination-hub
 * execute-dependency-recovery` gives the lost agents' contexts to their replacements and holds
 * the dependent until the primary completed, then resumes it; nothing lost, nothing applied
 * twice.
 *
 * Placement is pinned by the kinds' `hosts`: the primary's four workers on host-2 and host-3
 * (two each), the dependent's two agents on host-1 and host-3, the leads on host-1. Killing
 * host-3 loses exactly three agents: two of the primary's workers and one of the dependent's.
 */

import type { OpReply, TeamInput } from "@cadre/protocol";
import { call } from "@cadre/runtime";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { recordEvents, runbookJson, startCluster, type TestCluster, until } from "../helpers/cluster.js";

type Cascade = OpReply<"mon.workflow-recovery.analyze-cascade-failure">;
type Recovery = OpReply<"mon.coordination-hub.execute-dependency-recovery">;

const VICTIM = "host-3";

/** A lead on host-1 fanning out `n` tasks of `sleepMs` to `replicas` workers on `hosts`. */
const pinned = (name: string, n: number, sleepMs: number, replicas: number, hosts: string[]): TeamInput => ({
  name,
  root: "lead",
  kinds: {
    lead: {
      role: "lead",
      replicas: 1,
      hosts: ["host-1"],
      behaviour: { type: "script", delegate: [{ kind: "worker", count: n, input: { i: "{{index}}" } }] },
    },
    worker: { role: "agent", replicas, hosts, behaviour: { type: "script", sleepMs, output: { ok: true } } },
  },
});

describe("the runbook: an agent pool failure across two dependent workflows", () => {
  let c: TestCluster;
  const sup = { sender: "test", timeoutMs: 10_000 };

  beforeAll(async () => {
    c = await startCluster({
      hosts: 3,
      monitor: true,
      // A long ack wait: the lost tasks move by reassignment (detection, then the grace), not redelivery.
      config: {
        tasks: { ackWaitMs: 30_000, maxDeliver: 5, retryBackoffMs: 100 },
        heartbeat: { intervalMs: 200, hostDeadAfterMs: 1000 },
      },
    });
  }, 60_000);
  afterAll(async () => {
    await c?.stop();
  });

  const json = <T>(...args: string[]): T => runbookJson(c, ["--timeout", "60"])<T>(...args);

  it("analyses the blocked chain, replaces the three agents with their context, and resumes in dependency order", async () => {
    const rec = recordEvents(c.nc);
    const primary = await c.submit(pinned("dep-primary", 16, 2500, 4, ["host-2", VICTIM]));
    const dependent = await c.submit(pinned("dep-dependent", 12, 1500, 2, ["host-1", VICTIM]));
    const teamOf = async (workflowId: string) => (await call(c.nc, "sup.status", { workflowId }, sup)).workflow.teamId;
    const teams = [await teamOf(primary), await teamOf(dependent)];
    const onVictim = await until("both teams placed, three agents on the victim", async () => {
      const lists = await Promise.all(teams.map((teamId) => call(c.nc, "sup.actor.list", { teamId }, sup)));
      const all = lists.flatMap((l) => l.actors);
      const there = all.filter((a) => a.hostId === VICTIM);
      return all.length === 8 && there.length === 3 ? there : undefined;
    });
    const lost = onVictim.map((a) => a.actorId).sort();
    // Each lost agent at work: every one holds a task when its host dies.
    await until("the victim's three agents each started a task", () =>
      lost.every((id) => rec.events.some((e) => e.event.type === "TASK_STARTED" && e.event.data.actorId === id)),
    );
    await c.stack.processes.get(VICTIM)?.kill("SIGKILL");

    // Detected: the supervisor re-places them (the replacements the contexts go to).
    await until(
      "three replacements placed",
      () =>
        rec.events.filter(
          (e) => e.event.type === "ACTOR_SPAWNED" && e.event.data.kind === "worker" && e.event.data.hostId !== VICTIM,
        ).length >= 6,
      20_000,
    );
    const failure = await until("AGENT_POOL_FAILURE", () =>
      rec.events.find((e) => e.event.type === "AGENT_POOL_FAILURE" && e.event.data.hostId === VICTIM),
    );
    expect([...(failure.event.data.failed_agents as string[])].sort()).toEqual(lost);
    expect([...(failure.event.data.affected_workflows as string[])].sort()).toEqual([primary, dependent].sort());

    // The analysis names the lost agents and, per workflow, the chain blocked by each held task.
    const a = json<Cascade>(
      "workflow-recovery",
      "analyze-cascade-failure",
      JSON.stringify({ failure_scope: "agent_pool_cascade", dependency_analysis: true }),
    );
    expect(a.agents.map((x) => x.actorId).sort()).toEqual(lost);
    expect(a.workflows.map((w) => w.workflowId).sort()).toEqual([primary, dependent].sort());
    for (const w of a.workflows) {
      expect(w.criticalPath?.[0]).toBe(`${w.workflowId}-r`);
      // Each task a lost agent held blocks its lead: the root waits for it.
      expect(w.chains?.length).toBe(w.heldTasks.length);
      for (const chain of w.chains ?? []) expect(chain.waiting).toEqual([`${w.workflowId}-r`]);
    }
    expect(a.workflows.flatMap((w) => w.heldTasks)).toHaveLength(3);

    // Recovery, as the seed types it.
    const r = json<Recovery>(
      "coordination-hub",
      "execute-dependency-recovery",
      JSON.stringify({
        recovery_strategy: "intelligent_redistribution",
        dependency_preservation: true,
        workflow_continuity: "maximum",
        recovery_actions: [
          {
            action: "immediate_agent_replacement",
            failed_agents: lost,
            replacement_pool: "emergency_agents",
            specialization_matching: true,
            context_transfer: "comprehensive",
          },
          {
            action: "dependency_chain_recovery",
            primary_workflow: primary,
            dependent_workflow: dependent,
            recovery_order: "dependency_priority",
            checkpoint_restoration: true,
          },
          { action: "enhanced_monitoring_activation", scope: "recovered_workflows", monitoring_level: "comprehensive" },
        ],
      }),
    );
    expect(r.actions.map((x) => [x.action, x.outcome])).toEqual([
      ["immediate_agent_replacement", "done"],
      ["dependency_chain_recovery", "done"],
      ["enhanced_monitoring_activation", "ignored"],
    ]);
    expect(r.replacements.map((x) => x.from).sort()).toEqual(lost);
    expect(r.replacements.every((x) => x.validated === true && x.to !== null && x.history >= 1)).toBe(true);
    expect(r.chains).toEqual([
      expect.objectContaining({
        primary,
        dependent,
        order: "held",
        primaryStatus: "completed",
        integrity: "maintained",
        restored: [
          { workflowId: primary, damaged: 0, outcome: "intact" },
          { workflowId: dependent, damaged: 0, outcome: "intact" },
        ],
      }),
    ]);
    expect(r.workflowsRecovered).toBe(2);
    expect(r.ignored.join(" ")).toContain("replacement_pool");

    const dep = await c.wait(dependent, 60_000);
    rec.stop();
    expect(dep.status, c.tail()).toBe("completed");
    // Nothing lost, nothing applied twice, in either.
    for (const [id, n] of [
      [primary, 17],
      [dependent, 13],
    ] as const) {
      const w = await c.wait(id, 1000);
      expect(w.tasks).toMatchObject({ total: n, completed: n, failed: 0 });
      const applied = rec.events.filter((e) => e.event.type === "TASK_COMPLETED" && e.event.scope === id);
      expect(new Set(applied.map((e) => e.event.data.taskId)).size).toBe(applied.length);
    }
    // In dependency order: from the dependent's pause to the primary's completion no task of it started.
    const at = (type: string, scope: string) =>
      rec.events.findIndex((e) => e.event.type === type && e.event.scope === scope);
    const paused = at("WORKFLOW_PAUSED", dependent);
    const primaryDone = at("WORKFLOW_COMPLETED", primary);
    const resumed = at("WORKFLOW_RESUMED", dependent);
    expect(paused).toBeGreaterThanOrEqual(0);
    expect(primaryDone).toBeGreaterThan(paused);
    expect(resumed).toBeGreaterThan(primaryDone);
    const startedWhileHeld = rec.events
      .slice(paused, primaryDone)
      .filter((e) => e.event.type === "TASK_STARTED" && String(e.event.data.taskId).startsWith(`${dependent}-`));
    expect(startedWhileHeld).toEqual([]);
    const done = rec.events.find((e) => e.event.type === "DEPENDENCY_RECOVERY_COMPLETED")?.event.data;
    expect(done).toMatchObject({
      workflows_recovered: 2,
      dependency_integrity: "maintained",
      context_transfer_percent: 100,
    });
  }, 120_000);
});
