import { ConfigSchema, type TypedEvent } from "@cadre/protocol";
import { createLogger, ManualClock } from "@cadre/runtime";
import { describe, expect, it } from "vitest";
import { coordinationImpact, heldShare, NetworkAnnouncer } from "./announce-network.js";

type Emitted<T extends "COMMUNICATION_FAILURE" | "NETWORK_RECOVERY_COMPLETED"> = TypedEvent<T>["data"];

const liveness = { lastHeartbeatAt: 0, phi: 9 };
/** Lets the supervisor's (stubbed) answer arrive. */
const flush = () => new Promise((resolve) => setImmediate(resolve));

/** An announcer on a manual clock; host-2 is busy with `busyElsewhere` tasks, the supervisor lists `listed` on host-1. */
function setup(o: { listed?: { actorId: string; kindName: string }[]; busyElsewhere?: number } = {}) {
  const clock = new ManualClock();
  const emitted: TypedEvent[] = [];
  const announcer = new NetworkAnnouncer({
    config: ConfigSchema.parse({}),
    clock,
    logger: createLogger("announce-network-test", "silent"),
    emit: (e) => emitted.push(e),
    hosts: () => [
      { hostId: "host-1", busy: 2, silent: true },
      { hostId: "host-2", busy: o.busyElsewhere ?? 1, silent: false },
    ],
    actorsOn: async () => o.listed ?? [],
    collectMs: 500,
    settleMs: 5000,
    reportWaitMs: 35_000,
  });
  const feed = (e: TypedEvent) => announcer.onEvent(e);
  const started = (taskId: string, hostId: string, actorId: string) =>
    feed({
      type: "TASK_STARTED",
      category: "task",
      scope: "w1",
      data: { taskId, epoch: 1, seq: 1, kind: "worker", attempt: 1, hostId, actorId },
    });
  const of = <T extends "COMMUNICATION_FAILURE" | "NETWORK_RECOVERY_COMPLETED">(type: T) =>
    emitted.filter((e) => e.type === type).map((e) => e.data as Emitted<T>);
  return { clock, announcer, feed, started, of, emitted };
}

const unreachable = (hostId: string, silenceMs = 900): TypedEvent => ({
  type: "HOST_UNREACHABLE",
  category: "host",
  scope: hostId,
  data: { ...liveness, silenceMs },
});
const healed = (hostId: string, silenceMs: number): TypedEvent => ({
  type: "HOST_HEALED",
  category: "host",
  scope: hostId,
  data: { ...liveness, silenceMs },
});
const lost = (actorId: string, hostId: string): TypedEvent => ({
  type: "ACTOR_LOST",
  category: "actor",
  scope: actorId,
  data: { hostId, kind: "worker" },
});
const report = (hostId: string, batch: string, conflict: number): TypedEvent => ({
  type: "RECONCILIATION_REPORT",
  category: "host",
  scope: hostId,
  data: {
    hostId,
    batch,
    applied: 0,
    duplicate: 0,
    conflict,
    invalid: 0,
    orphan: 0,
    total: conflict,
    replayed: conflict,
    complete: true,
    ms: 12,
  },
});
const replayed = (hostId: string, batch: string, n: number): TypedEvent => ({
  type: "OUTBOX_REPLAYED",
  category: "host",
  scope: hostId,
  data: { hostId, batch, replayed: n, deduplicated: 0, ms: 5 },
});

describe("the rules", () => {
  it("coordination_impact: none, minor without tasks, moderate under half the work in flight, severe from half", () => {
    expect(coordinationImpact(0, 0, 0)).toBe("none");
    expect(coordinationImpact(3, 0, 0)).toBe("minor");
    expect(coordinationImpact(3, 1, 0.25)).toBe("moderate");
    expect(coordinationImpact(3, 2, 0.5)).toBe("severe");
    expect(heldShare(2, 2)).toBe(0.5);
    expect(heldShare(1, 2)).toBe(0.333);
    expect(heldShare(0, 0)).toBe(0);
  });
});

describe("COMMUNICATION_FAILURE", () => {
  it("names the host's actors (listed, lost, running) and the tasks it held, collectMs after the detection", async () => {
    const t = setup({ listed: [{ actorId: "lead-1", kindName: "lead" }], busyElsewhere: 1 });
    t.started("w1-r-0-0", "host-1", "worker-a");
    t.started("w1-r-0-1", "host-1", "worker-b");
    t.started("w1-r-0-2", "host-1", "worker-a");
    t.started("w1-r-0-3", "host-2", "worker-c");
    // One finished, one moved elsewhere before the cut: no longer held.
    t.feed({
      type: "TASK_COMPLETED",
      category: "task",
      scope: "w1",
      data: { taskId: "w1-r-0-0", kind: "worker", resultId: "r", attempt: 1, hostId: "host-1" },
    });
    t.feed(lost("worker-z", "host-1")); // the repair's ACTOR_LOST may arrive before the detection
    t.feed(unreachable("host-1", 950));
    t.feed(lost("worker-a", "host-1"));
    t.feed(lost("worker-other", "host-2"));
    // The reassignment after the grace does not change what it held when detected.
    t.feed({
      type: "TASK_REASSIGNED",
      category: "task",
      scope: "w1",
      data: { taskId: "w1-r-0-1", kind: "worker", fromHostId: "host-1", epoch: 2, reason: "unreachable" },
    });
    await flush();
    t.clock.advance(499);
    expect(t.of("COMMUNICATION_FAILURE")).toEqual([]);
    t.clock.advance(1);
    expect(t.of("COMMUNICATION_FAILURE")).toEqual([
      {
        failure_type: "host_unreachable",
        host_id: "host-1",
        affected_agents: ["lead-1", "worker-a", "worker-b", "worker-z"],
        affected_kinds: ["lead", "worker"],
        held_tasks: ["w1-r-0-1", "w1-r-0-2"],
        held_task_count: 2,
        held_share: 0.667,
        coordination_impact: "severe",
        auto_recovery: "tasks_reassigned",
        reassign_grace_ms: 1000,
        silence_ms: 950,
      },
    ]);
    expect(t.emitted[0]).toMatchObject({ category: "network", scope: "agent_coordination" });
  });

  it("an idle host: minor, its actors replaced, nothing held", async () => {
    const t = setup({ listed: [{ actorId: "worker-a", kindName: "worker" }] });
    t.feed(unreachable("host-1"));
    await flush();
    t.clock.advance(500);
    expect(t.of("COMMUNICATION_FAILURE")[0]).toMatchObject({
      affected_agents: ["worker-a"],
      held_tasks: [],
      held_share: 0,
      coordination_impact: "minor",
      auto_recovery: "actors_replaced",
    });
  });
});

describe("NETWORK_RECOVERY_COMPLETED", () => {
  it("after the heal, once the replayed batch is classified: the times, what moved, the reconciliation", async () => {
    const t = setup();
    t.started("w1-r-0-1", "host-1", "worker-b");
    t.feed(unreachable("host-1"));
    t.feed(lost("worker-b", "host-1"));
    await flush();
    t.clock.advance(600);
    t.feed({
      type: "TASK_REASSIGNED",
      category: "task",
      scope: "w1",
      data: { taskId: "w1-r-0-1", kind: "worker", fromHostId: "host-1", epoch: 2, reason: "unreachable" },
    });
    t.clock.advance(3400);
    t.feed(healed("host-1", 4900));
    // Healed, its replay announced: the recovery waits for the batch's report.
    t.feed(replayed("host-1", "b1:1", 1));
    t.clock.advance(100);
    expect(t.of("NETWORK_RECOVERY_COMPLETED")).toEqual([]);
    t.feed(report("host-1", "b1:1", 1));
    expect(t.of("NETWORK_RECOVERY_COMPLETED")).toEqual([
      {
        host_id: "host-1",
        recovery_time_ms: 4000,
        outage_ms: 4900,
        connectivity_restored: true,
        connectivity_restored_percent: 100,
        still_unreachable: [],
        tasks_reassigned: 1,
        actors_replaced: 1,
        reconciliation: {
          batches: 1,
          applied: 0,
          duplicate: 0,
          conflict: 1,
          invalid: 0,
          orphan: 0,
          total: 1,
          complete: true,
        },
      },
    ]);
    expect(t.emitted.at(-1)).toMatchObject({ category: "network", scope: "restoration" });
    expect(t.announcer.open).toEqual([]);
    expect(t.clock.pending).toBe(0);
  });

  it("a report before the heal counts; with nothing replayed it comes settleMs after the heal, reconciliation null", async () => {
    const t = setup();
    t.feed(unreachable("host-1"));
    t.feed(report("host-1", "b0:2", 2));
    t.feed(healed("host-1", 800));
    // The report came first (the host replayed before the supervisor heard its heartbeat).
    expect(t.of("COMMUNICATION_FAILURE")).toHaveLength(1);
    expect(t.of("NETWORK_RECOVERY_COMPLETED")[0]?.reconciliation).toMatchObject({ conflict: 2, complete: true });

    t.feed(unreachable("host-2"));
    t.clock.advance(500);
    t.feed(healed("host-2", 700));
    t.clock.advance(4999);
    expect(t.of("NETWORK_RECOVERY_COMPLETED")).toHaveLength(1);
    t.clock.advance(1);
    expect(t.of("NETWORK_RECOVERY_COMPLETED")[1]).toMatchObject({ host_id: "host-2", reconciliation: null });
  });

  it("two hosts cut off: the first heard again restores half, and names the other", async () => {
    const t = setup();
    t.feed(unreachable("host-1"));
    t.feed(unreachable("host-3"));
    t.clock.advance(500);
    t.feed(healed("host-1", 2000));
    t.clock.advance(5000);
    expect(t.of("NETWORK_RECOVERY_COMPLETED")[0]).toMatchObject({
      host_id: "host-1",
      connectivity_restored_percent: 50,
      still_unreachable: ["host-3"],
    });
  });

  it("a heal of a host it did not see declared unreachable is not announced", () => {
    const t = setup();
    t.feed(healed("host-1", 2000));
    t.clock.advance(60_000);
    expect(t.emitted).toEqual([]);
  });
});
