/**
 * Seed 003's "Agent Pool Failure with Workflow Dependency Chain" on a real stack: an agent-host
 * killed while its worker holds a task; the monitor's AGENT_POOL_FAILURE; `cadre
 * workflow-recovery analyze-cascade-failure` (the lost agent, the task it held and where it went,
 * the chain waiting on it, the critical path, the plan); `cadre workflow-recovery
 * transfer-context` (the lost worker's history, rebuilt from the events stream, given to its
 * replacement and read back from the replacement's host); and the refusals.
 */

import { BUCKETS, type OpReply, parseTeam } from "@cadre/protocol";
import { call } from "@cadre/runtime";
import { Kvm } from "@nats-io/kv";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { fanTeam, recordEvents, runbookJson, startCluster, type TestCluster, until } from "../helpers/cluster.js";

type Cascade = OpReply<"mon.workflow-recovery.analyze-cascade-failure">;
type Transfer = OpReply<"mon.workflow-recovery.transfer-context">;

/** Each worker task takes this long: the lost one is still running again when it is analysed. */
const WORK_MS = 5000;

describe("the runbook: an agent pool failure, from detection to context transfer", () => {
  let c: TestCluster;

  beforeAll(async () => {
    c = await startCluster({
      hosts: 3,
      monitor: true,
      // The ack wait is long so the killed host's task moves by reassignment (detection, then
      // the 1 s grace), not by JetStream's redelivery.
      config: {
        tasks: { ackWaitMs: 30_000, maxDeliver: 5, retryBackoffMs: 100 },
        heartbeat: { intervalMs: 200, hostDeadAfterMs: 1000 },
      },
    });
  }, 60_000);
  afterAll(async () => {
    await c?.stop();
  });

  const json = <T>(...args: string[]): T => runbookJson(c, ["--timeout", "30"])<T>(...args);
  const refusal = (...args: string[]): { status: number; stderr: string } => {
    try {
      c.cli(...args);
    } catch (err) {
      return err as { status: number; stderr: string };
    }
    throw new Error(`cadre ${args.join(" ")} was not refused`);
  };
  const sup = { sender: "test", timeoutMs: 10_000 };

  it("announces the lost worker, analyses what it held and what waits, and gives its history to its replacement", async () => {
    const rec = recordEvents(c.nc);
    const workflowId = await c.submit(fanTeam("cascade", 12, WORK_MS, 3));
    const { workflow } = await call(c.nc, "sup.status", { workflowId }, sup);
    const teamId = workflow.teamId;
    const actorsNow = async () => (await call(c.nc, "sup.actor.list", { teamId }, sup)).actors;
    // The lead and three workers, a worker on each host (replicas go to distinct hosts first).
    const placed = await until("the team placed on three hosts", async () => {
      const a = await actorsNow();
      return a.length === 4 && new Set(a.map((x) => x.hostId)).size === 3 ? a : undefined;
    });
    const lead = placed.find((a) => a.kindName === "lead");
    const victimWorker = placed.find((a) => a.kindName === "worker" && a.hostId !== lead?.hostId);
    if (!lead || !victimWorker) throw new Error(`unexpected placement: ${JSON.stringify(placed)}`);
    const victim = victimWorker.hostId;
    // A workflow that waits for this one (after), its one agent kept off the victim: the
    // analysis names it as a dependent, and the plan resumes it after the one it waits for.
    const dependent = (
      await call(
        c.nc,
        "sup.submit",
        {
          team: parseTeam({
            name: "cascade-after",
            root: "report",
            kinds: {
              report: { role: "agent", replicas: 1, hosts: [lead.hostId], behaviour: { type: "script", output: {} } },
            },
          }),
          priority: 5,
          after: [workflowId],
        },
        sup,
      )
    ).workflowId;

    // Killed at its second task: its first is done (the workers' working time is measured), the
    // second is held.
    const startsOf = (actorId: string) =>
      rec.events.filter((e) => e.event.type === "TASK_STARTED" && e.event.data.actorId === actorId);
    const second = await until(
      "the victim's worker at its second task",
      () => startsOf(victimWorker.actorId)[1],
      30_000,
    );
    const heldTask = String(second.event.data.taskId);
    const firstTask = String(startsOf(victimWorker.actorId)[0]?.event.data.taskId);
    await c.stack.processes.get(victim)?.kill("SIGKILL");

    // Detection: the monitor's AGENT_POOL_FAILURE, with what the lost worker held.
    const failure = await until("AGENT_POOL_FAILURE for the killed host", () =>
      rec.events.find((e) => e.event.type === "AGENT_POOL_FAILURE" && e.event.data.hostId === victim),
    );
    expect(failure.event.scope).toBe("agent_management");
    expect(failure.event.data).toEqual({
      failed_agents: [victimWorker.actorId],
      affected_workflows: [workflowId],
      failure_type: "host_lost",
      // A worker of a fan-out: root > worker is a longest unfinished chain.
      impact: "critical_path_blocked",
      hostId: victim,
      held_tasks: 1,
      critical_tasks: 1,
    });

    // The supervisor's own recovery: a worker placed in its stead, the task reassigned.
    const replacement = await until("a worker placed in the lost one's stead", () =>
      rec.events.find(
        (e) =>
          e.event.type === "ACTOR_SPAWNED" &&
          e.event.data.kind === "worker" &&
          !placed.some((a) => a.actorId === e.event.scope),
      ),
    );
    const newWorker = replacement.event.scope;
    await until("the held task reassigned", () =>
      rec.events.find((e) => e.event.type === "TASK_REASSIGNED" && e.event.data.taskId === heldTask),
    );

    const a = json<Cascade>(
      "workflow-recovery",
      "analyze-cascade-failure",
      JSON.stringify({
        failure_scope: "agent_pool_cascade",
        dependency_analysis: true,
        impact_assessment: "comprehensive",
        recovery_prioritization: "dependency_aware",
      }),
    );
    expect(a.agents).toMatchObject([
      {
        actorId: victimWorker.actorId,
        teamId,
        kind: "worker",
        hostId: victim,
        cause: "host_lost",
        taskId: heldTask,
        replacement: newWorker,
      },
    ]);
    expect(a.hosts.find((h) => h.hostId === victim)).toMatchObject({ actorsLost: 1, healedAt: null });
    expect(a.hosts.find((h) => h.hostId === victim)?.unreachableAt).toBeGreaterThan(0);
    expect(a.workflows).toHaveLength(1);
    const w = a.workflows[0];
    expect(w).toMatchObject({
      workflowId,
      status: "running",
      impact: "critical_path_blocked",
      heldTasks: [heldTask],
      // Every worker waits under the root: the lost one blocks the root, nothing runs under it.
      chains: [{ taskId: heldTask, waiting: [`${workflowId}-r`], under: [] }],
      after: [],
      dependents: [dependent],
    });
    expect(w?.criticalPath?.[0]).toBe(`${workflowId}-r`);
    expect(w?.criticalPath).toHaveLength(2);
    // Where the held task went: a new epoch, from the dead host.
    expect(w?.tasks).toMatchObject([
      {
        taskId: heldTask,
        heldBy: victimWorker.actorId,
        onCriticalPath: true,
        reassigned: { epoch: 2, fromHostId: victim },
      },
    ]);
    expect(["queued", "running"]).toContain(w?.tasks?.[0]?.status);
    // The plan: the replacement runs, so its context is what is left to give.
    expect(a.recovery?.strategy).toBe("dependency_aware_redistribution");
    expect(a.recovery?.replacements).toMatchObject([
      {
        teamId,
        kind: "worker",
        lost: 1,
        live: 3,
        replicas: 3,
        placed: [newWorker],
        needed: 0,
        action: "transfer_context",
      },
    ]);
    // The one it waits for first, though the dependent's priority is higher (it takes it on).
    expect(a.recovery?.order.map((o) => [o.workflowId, o.waitsFor])).toEqual([
      [workflowId, []],
      [dependent, [workflowId]],
    ]);
    // The blocked chain is the root (a lead: not finished, so not measured) and a worker, whose
    // mean working time is at least the time a worker sleeps.
    expect(a.recovery?.unmeasured).toEqual(["lead"]);
    expect(a.recovery?.estimatedMs).toBeGreaterThanOrEqual(WORK_MS);
    const plan = await until("RECOVERY_PLAN_GENERATED", () =>
      rec.events.find((e) => e.event.type === "RECOVERY_PLAN_GENERATED"),
    );
    expect(plan.event.data).toEqual({
      strategy: "dependency_aware_redistribution",
      estimated_time_ms: a.recovery?.estimatedMs,
      agents_lost: 1,
      agents_to_replace: 0,
      workflows: [workflowId, dependent],
      workflow_continuity: "maintained",
    });

    // The lost worker's history goes to the worker placed in its stead, and is read back.
    const t = json<Transfer>(
      "workflow-recovery",
      "transfer-context",
      JSON.stringify({
        failed_agents: [victimWorker.actorId],
        context_transfer: "complete_state_and_history",
        validation: "comprehensive",
        rollback_capability: "enabled",
      }),
    );
    expect(t.agents).toMatchObject([
      {
        from: victimWorker.actorId,
        to: newWorker,
        created: false,
        // Nothing kept the lost worker's snapshot: its history is rebuilt from its TASK_STARTED.
        source: "rebuilt",
        snapshot: "none",
        history: 2,
        kept: true,
        validated: true,
      },
    ]);
    expect(t).toMatchObject({ validated: 1, percent: 100 });
    const inspected = await call(c.nc, "sup.debug.actor", { actorId: newWorker }, sup);
    const history = inspected.live?.history ?? [];
    expect(history.slice(history.indexOf(heldTask))).toEqual([heldTask, firstTask]);
    expect(inspected.live?.inherited).toEqual({ fromActorId: victimWorker.actorId, tasks: 2, snapshot: false });
    expect(inspected.record.replaces).toBe(victimWorker.actorId);
    const kv = await new Kvm(c.nc).open(BUCKETS.registry);
    const kept = JSON.parse((await kv.get(`checkpoint.${victimWorker.actorId}`))?.string() ?? "{}");
    expect(kept).toEqual({ fromActorId: victimWorker.actorId, history: [heldTask, firstTask] });
    const moved = await until("CONTEXT_TRANSFERRED", () =>
      rec.events.find((e) => e.event.type === "CONTEXT_TRANSFERRED" && e.event.scope === victimWorker.actorId),
    );
    expect(moved.event.data).toMatchObject({ toActorId: newWorker, history: 2, snapshot: false, created: false });
    const summary = await until("RECOVERY_VALIDATION_COMPLETED", () =>
      rec.events.find((e) => e.event.type === "RECOVERY_VALIDATION_COMPLETED"),
    );
    expect(summary.event).toMatchObject({
      scope: "success",
      data: { agents: 1, validated: 1, context_transfer_percent: 100 },
    });

    // Again, to a worker named: the context now comes from the checkpoint the first one kept.
    const other = (await actorsNow()).find(
      (x) => x.kindName === "worker" && x.actorId !== newWorker && x.hostId !== victim,
    );
    if (!other) throw new Error("no other live worker");
    const named = await call(
      c.nc,
      "mon.workflow-recovery.transfer-context",
      { failed_agents: [victimWorker.actorId], replacement_agents: [other.actorId], context_transfer: "history_only" },
      { sender: "test", timeoutMs: 30_000 },
    );
    expect(named.agents).toMatchObject([
      { to: other.actorId, source: "checkpoint", history: 2, snapshot: "none", kept: false, validated: true },
    ]);

    // Nothing was lost: the workflow completes with every task.
    const done = await c.wait(workflowId, 60_000);
    expect(done.status, c.tail()).toBe("completed");
    expect(done.tasks).toMatchObject({ total: 13, completed: 13, failed: 0 });
    expect((await c.wait(dependent, 30_000)).status).toBe("completed");
    rec.stop();

    // Refusals: an unknown field, an actor that never existed, a replacement of another kind.
    const bogus = refusal(
      "workflow-recovery",
      "transfer-context",
      JSON.stringify({ failed_agents: [victimWorker.actorId], bogus: 1 }),
    );
    expect(bogus.status).toBe(2);
    expect(String(bogus.stderr)).toContain("bogus");
    const never = refusal(
      "workflow-recovery",
      "transfer-context",
      JSON.stringify({ failed_agents: ["worker-neverwas"] }),
    );
    expect(never.status).toBe(2);
    expect(String(never.stderr)).toContain('"worker-neverwas" does not exist');
    await expect(
      call(c.nc, "mon.workflow-recovery.transfer-context", { failed_agents: ["worker-neverwas"] }, sup),
    ).rejects.toMatchObject({ code: "NOT_FOUND" });
    const kind = refusal(
      "workflow-recovery",
      "transfer-context",
      JSON.stringify({ failed_agents: [victimWorker.actorId], replacement_agents: [lead.actorId] }),
    );
    expect(kind.status).toBe(2);
    expect(String(kind.stderr)).toContain(`${lead.actorId} is of kind "lead"`);
    await expect(
      call(
        c.nc,
        "mon.workflow-recovery.transfer-context",
        { failed_agents: [victimWorker.actorId], replacement_agents: [lead.actorId] },
        sup,
      ),
    ).rejects.toMatchObject({ code: "PROTOCOL_ERROR" });
  }, 120_000);
});
