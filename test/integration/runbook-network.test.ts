/**
 * Seed 003's communication failure on a real stack with the monitor: a host cut off mid-workflow
 * by a TCP proxy (a blackhole, as in partition.test.ts). The monitor announces
 * COMMUNICATION_FAILURE naming the host's actors and the tasks it held; the supervisor reassigns
 * them and the workflow completes on the other host, nothing lost or applied twice; when the
 * proxy lets the host back, its late results are reconciled as conflicts and the monitor
 * announces NETWORK_RECOVERY_COMPLETED with the recovery time and those counts; the incident
 * report after the heal has the host's fault detected and recovered.
 */

import {
  type CadreEvent,
  decodeAs,
  type EventData,
  type EventType,
  type HeldTask,
  isParseFailure,
  type OpReply,
  parseEvent,
  type TeamInput,
} from "@cadre/protocol";
import { call } from "@cadre/runtime";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { fastConfig, recordEvents, startCluster, type TestCluster, until } from "../helpers/cluster.js";
import { startProxy, type TcpProxy } from "../helpers/proxy.js";

const WORKERS = 4;
const CUT_OFF = "host-p";
const GRACE_MS = 500;

const team: TeamInput = {
  name: "network-failure",
  root: "lead",
  kinds: {
    lead: {
      role: "director",
      replicas: 1,
      hosts: ["host-1"],
      behaviour: { type: "script", delegate: [{ kind: "worker", count: WORKERS }], output: { done: true } },
    },
    // Long enough to be still running when the host is cut off, so it finishes them offline.
    worker: { role: "agent", replicas: WORKERS, behaviour: { type: "script", sleepMs: 2000, output: { ok: true } } },
  },
};

/** The event's data, typed by its row, when it is of `type` (and of the cut-off host), else undefined. */
function dataOf<T extends EventType>(raw: CadreEvent, type: T): EventData<T> | undefined {
  const e = parseEvent(raw);
  return isParseFailure(e) || e.type !== type ? undefined : (e.data as EventData<T>);
}

interface IncidentFault {
  type: string;
  key: string;
  detectMs: number | null;
  recoveredAt: number | null;
  recoveredBy: { type: string; how: string } | null;
  detail: Record<string, unknown>;
}

describe("a host cut off mid-workflow: COMMUNICATION_FAILURE, the work done elsewhere, NETWORK_RECOVERY_COMPLETED", () => {
  let c: TestCluster;
  let proxy: TcpProxy;
  const sinceMs = Date.now();
  beforeAll(async () => {
    c = await startCluster({
      hosts: 1,
      monitor: true,
      config: {
        ...fastConfig,
        // The ack wait is long, so only reassignment can move the cut-off host's tasks in time.
        tasks: { ackWaitMs: 30_000, maxDeliver: 5, retryBackoffMs: 100, reassignGraceMs: GRACE_MS },
      },
    });
    proxy = await startProxy(Number(new URL(c.stack.natsUrl.replace(/^nats:/, "http:")).port));
    const rec = recordEvents(c.nc);
    await c.stack.startHost(CUT_OFF, { natsUrl: proxy.url });
    await until("the supervisor to hear the proxied host", () =>
      rec.events.some((e) => e.event.type === "HOST_UP" && e.event.scope === CUT_OFF),
    );
    rec.stop();
  }, 60_000);
  afterAll(async () => {
    await c?.stop();
    await proxy?.close();
  });

  it("announces the failure with the host's actors and held tasks, completes elsewhere, and the recovery after the heal", async () => {
    let held: HeldTask[] = [];
    let busyOnHost1 = -1;
    const beats = c.nc.subscribe("cadre.v1.hb.*", {
      callback: (_err, m) => {
        const hb = decodeAs(m.data, "heartbeat").body;
        if (hb.hostId === CUT_OFF && hb.held) held = hb.held;
        if (hb.hostId === "host-1") busyOnHost1 = hb.busy;
      },
    });
    const rec = recordEvents(c.nc);
    const id = await c.submit(team);
    const started = (hostId: string) =>
      rec.events.filter(
        (e) => e.event.type === "TASK_STARTED" && e.event.data.kind === "worker" && e.event.data.hostId === hostId,
      );
    // Every worker task running, the cut-off host's heartbeat listing what it holds and host-1's
    // counting its busy actors (the lead and its workers): what the monitor's share is made of.
    await until(
      "every worker task started, the heartbeats saying who holds and who is busy",
      () =>
        started(CUT_OFF).length + started("host-1").length === WORKERS &&
        started(CUT_OFF).length > 0 &&
        held.length === started(CUT_OFF).length &&
        busyOnHost1 === 1 + started("host-1").length,
    );
    beats.unsubscribe();
    const heldIds = held.map((t) => t.taskId).sort();
    const { actors } = (await call(
      c.nc,
      "sup.actor.list",
      { hostId: CUT_OFF },
      { sender: "test", timeoutMs: 5000 },
    )) as OpReply<"sup.actor.list">;
    const actorsThere = actors.map((a) => a.actorId).sort();
    expect(actorsThere.length).toBeGreaterThan(0);
    proxy.blackhole();

    // The failure, named: the host's actors, the tasks it held, the share of the work in flight.
    const failure = await until(
      "COMMUNICATION_FAILURE of the cut-off host",
      () => rec.events.find((e) => dataOf(e.event, "COMMUNICATION_FAILURE")?.host_id === CUT_OFF),
      20_000,
    ).catch((err: Error) => {
      throw new Error(`${err.message}\n${c.tail()}`);
    });
    const share = Math.round((heldIds.length / (heldIds.length + busyOnHost1)) * 1000) / 1000;
    expect(failure.event).toMatchObject({ category: "network", scope: "agent_coordination" });
    expect(failure.event.data).toEqual({
      failure_type: "host_unreachable",
      host_id: CUT_OFF,
      affected_agents: actorsThere,
      affected_kinds: ["worker"],
      held_tasks: heldIds,
      held_task_count: heldIds.length,
      held_share: share,
      coordination_impact: share >= 0.5 ? "severe" : "moderate",
      auto_recovery: "tasks_reassigned",
      reassign_grace_ms: GRACE_MS,
      silence_ms: expect.any(Number),
    });
    const unreachable = rec.events.find((e) => e.event.type === "HOST_UNREACHABLE" && e.event.scope === CUT_OFF);
    if (!unreachable) throw new Error("no HOST_UNREACHABLE of the cut-off host");
    expect(dataOf(failure.event, "COMMUNICATION_FAILURE")?.silence_ms).toBe(
      dataOf(unreachable.event, "HOST_UNREACHABLE")?.silenceMs,
    );
    // The seed's event line, as the monitor logs it (once the event came back to it over NATS:
    // the test's own subscription may hear it first).
    await until("the monitor's COMMUNICATION_FAILURE line", () =>
      (c.logs.get("monitor") ?? []).some((l) => l.includes('"COMMUNICATION_FAILURE:network:agent_coordination:{')),
    );

    // Work continues elsewhere: the held tasks reassigned to host-1, the workflow completed there.
    const w = await c.wait(id, 30_000);
    expect(w.status, c.tail()).toBe("completed");
    const reassigned = rec.events.filter((e) => e.event.type === "TASK_REASSIGNED").map((e) => e.event.data);
    expect(reassigned.map((d) => d.taskId).sort()).toEqual(heldIds);
    for (const d of reassigned) expect(d).toMatchObject({ fromHostId: CUT_OFF, epoch: 2, reason: "unreachable" });
    // Its results wait in its outbox once it noticed the partition; then let it back.
    const inOutbox = () => (c.logs.get(CUT_OFF) ?? []).some((l) => l.includes(`"outboxRecords":${heldIds.length}`));
    await until("the cut-off host's results in its outbox", inOutbox, 30_000);
    proxy.heal();

    const recovery = await until(
      "NETWORK_RECOVERY_COMPLETED of the host let back",
      () => rec.events.find((e) => dataOf(e.event, "NETWORK_RECOVERY_COMPLETED")?.host_id === CUT_OFF),
      40_000,
    ).catch((err: Error) => {
      throw new Error(`${err.message}\n${c.tail()}`);
    });
    rec.stop();
    const report = rec.events.find((e) => e.event.type === "RECONCILIATION_REPORT" && e.event.scope === CUT_OFF);
    const healed = rec.events.find((e) => e.event.type === "HOST_HEALED" && e.event.scope === CUT_OFF);
    expect(report?.event.data).toMatchObject({ conflict: heldIds.length, applied: 0, complete: true });
    const data = dataOf(recovery.event, "NETWORK_RECOVERY_COMPLETED");
    if (!healed || !data) throw new Error("no HOST_HEALED of the cut-off host");
    expect(recovery.event).toMatchObject({ category: "network", scope: "restoration" });
    expect(data).toMatchObject({
      host_id: CUT_OFF,
      connectivity_restored: true,
      connectivity_restored_percent: 100,
      still_unreachable: [],
      tasks_reassigned: heldIds.length,
      actors_replaced: actorsThere.length,
      reconciliation: {
        batches: 1,
        applied: 0,
        duplicate: 0,
        conflict: heldIds.length,
        invalid: 0,
        orphan: 0,
        total: heldIds.length,
        complete: true,
      },
    });
    // From unreachable to healed, as the monitor received them: within 250 ms of what this process saw.
    expect(Math.abs(data.recovery_time_ms - (healed.at - unreachable.at))).toBeLessThan(250);
    expect(data.outage_ms).toBe(dataOf(healed.event, "HOST_HEALED")?.silenceMs);
    expect(data.outage_ms).toBeGreaterThan(data.recovery_time_ms);

    // Nothing lost, nothing applied twice: one completion per task, the late ones conflicts.
    const records = await c.taskRecords(id);
    expect(records.filter((r) => r.status === "completed")).toHaveLength(WORKERS + 1);
    const completions = (await c.events()).filter((e) => e.type === "TASK_COMPLETED" && e.scope === id);
    expect(completions).toHaveLength(WORKERS + 1);
    expect(new Set(completions.map((e) => e.data.taskId)).size).toBe(WORKERS + 1);
    for (const r of records.filter((r) => heldIds.includes(r.task.taskId))) {
      expect(r.applied).toMatchObject({ epoch: 2, hostId: "host-1" });
      expect(r.conflicts).toEqual([expect.objectContaining({ epoch: 1, hostId: CUT_OFF })]);
    }
    expect((await c.wait(id)).tasks).toMatchObject({
      completed: WORKERS + 1,
      duplicates: 0,
      conflicts: heldIds.length,
    });

    // The incident report after the heal: the host's fault, detected and recovered.
    const incident = JSON.parse(c.cli("incident", "report", "--since", new Date(sinceMs).toISOString(), "--json")) as {
      faults: IncidentFault[];
      counts: { lost: number; appliedTwice: number };
    };
    const fault = incident.faults.find((f) => f.type === "HOST_UNREACHABLE" && f.key === `host:${CUT_OFF}`);
    expect(fault, JSON.stringify(incident.faults)).toBeDefined();
    expect(fault?.detectMs).toBeGreaterThan(0);
    expect(fault?.recoveredAt).not.toBeNull();
    expect(fault?.detail.held).toEqual(heldIds);
    expect(incident.counts).toMatchObject({ lost: 0, appliedTwice: 0 });

    process.stdout.write(
      `network failure: ${heldIds.length} held of ${actorsThere.length} actors, share ${share}; ` +
        `announced ${failure.at - unreachable.at} ms after HOST_UNREACHABLE; recovery ${data.recovery_time_ms} ms ` +
        `(outage ${data.outage_ms} ms), announced ${recovery.at - healed.at} ms after the heal\n`,
    );
  }, 120_000);
});
