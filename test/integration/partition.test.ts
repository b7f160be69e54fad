/**
 * A host cut off by a TCP proxy while the rest of the cluster stays connected (a blackhole: its
 * socket stays open and nothing flows, as in a network partition): the supervisor
 * declares it unreachable, reassigns the tasks it held with a new epoch (the ack wait is 30 s,
 * so only reassignment can move them in time), the other host does them. The cut-off host
 * finishes its tasks; their publishes hang until its pings go unanswered, then the results go to
 * its outbox. When the proxy lets it back, its replayed results are classified as conflicts:
 * recorded, never applied.
 */

import { decodeAs, type HeldTask, type TeamInput } from "@cadre/protocol";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { fastConfig, recordEvents, startCluster, type TestCluster, until } from "../helpers/cluster.js";
import { startProxy, type TcpProxy } from "../helpers/proxy.js";

const WORKERS = 4;
const CUT_OFF = "host-p";

const team: TeamInput = {
  name: "partition",
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

describe("a host cut off by a proxy while it holds tasks, then let back", () => {
  let c: TestCluster;
  let proxy: TcpProxy;
  beforeAll(async () => {
    c = await startCluster({
      hosts: 1,
      config: { ...fastConfig, tasks: { ackWaitMs: 30_000, maxDeliver: 5, retryBackoffMs: 100, reassignGraceMs: 500 } },
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

  it("reassigns what it held with a new epoch, and records its late results as conflicts", async () => {
    let held: HeldTask[] = [];
    const beats = c.nc.subscribe(`cadre.v1.hb.${CUT_OFF}`, {
      callback: (_err, m) => {
        const hb = decodeAs(m.data, "heartbeat").body;
        if (hb.held) held = hb.held;
      },
    });
    const rec = recordEvents(c.nc);
    const id = await c.submit(team);
    const started = (hostId: string) =>
      rec.events.filter(
        (e) => e.event.type === "TASK_STARTED" && e.event.data.kind === "worker" && e.event.data.hostId === hostId,
      );
    await until(
      "every worker task started, and the proxied host's heartbeat listing the ones it holds",
      () =>
        started(CUT_OFF).length + started("host-1").length === WORKERS &&
        started(CUT_OFF).length > 0 &&
        held.length === started(CUT_OFF).length,
    );
    beats.unsubscribe();
    const heldIds = held.map((t) => t.taskId).sort();
    const cutAt = Date.now();
    proxy.blackhole();

    // The others finish the workflow: the cut-off host's tasks were reassigned to them.
    const w = await c.wait(id, 30_000);
    expect(w.status, c.tail()).toBe("completed");
    const reassigned = rec.events.filter((e) => e.event.type === "TASK_REASSIGNED").map((e) => e.event.data);
    expect(reassigned.map((d) => d.taskId).sort()).toEqual(heldIds);
    for (const d of reassigned) expect(d).toMatchObject({ fromHostId: CUT_OFF, epoch: 2, reason: "unreachable" });

    // Its results wait in its outbox once it has noticed the partition (unanswered pings).
    const inOutbox = () => (c.logs.get(CUT_OFF) ?? []).some((l) => l.includes(`"outboxRecords":${heldIds.length}`));
    await until("the cut-off host's results in its outbox", inOutbox, 30_000);
    // ...abandoned publishes, not failed ones: the host stopped waiting when the connection went.
    expect((c.logs.get(CUT_OFF) ?? []).filter((l) => l.includes("lost while publishing"))).toHaveLength(heldIds.length);

    // Let it back: it replays what it finished while cut off, and every one is a conflict.
    const healedAt = Date.now();
    proxy.heal();
    const report = await until(
      "the reconciliation report of the host let back",
      () => rec.events.find((e) => e.event.type === "RECONCILIATION_REPORT" && e.event.scope === CUT_OFF),
      30_000,
    ).catch((err: Error) => {
      throw new Error(`${err.message}\n${c.tail()}`);
    });
    rec.stop();
    expect(report.event.data).toMatchObject({
      hostId: CUT_OFF,
      complete: true,
      replayed: heldIds.length,
      conflict: heldIds.length,
      applied: 0,
      duplicate: 0,
      orphan: 0,
    });

    // Lost 0, applied twice 0; both outcomes of each reassigned task on its record.
    const records = await c.taskRecords(id);
    expect(records.filter((r) => r.status === "completed")).toHaveLength(WORKERS + 1);
    const completions = (await c.events()).filter((e) => e.type === "TASK_COMPLETED" && e.scope === id);
    expect(new Set(completions.map((e) => e.data.taskId)).size).toBe(completions.length);
    expect(completions).toHaveLength(WORKERS + 1);
    for (const r of records.filter((r) => heldIds.includes(r.task.taskId))) {
      expect(r.task.epoch).toBe(2);
      expect(r.applied).toMatchObject({ epoch: 2, hostId: "host-1" });
      expect(r.conflicts).toEqual([
        expect.objectContaining({ epoch: 1, hostId: CUT_OFF, status: "completed", output: { ok: true } }),
      ]);
    }
    const after = await c.wait(id);
    expect(after.tasks).toMatchObject({ completed: WORKERS + 1, duplicates: 0, conflicts: heldIds.length });

    const at = (type: string) =>
      rec.events.find((e) => e.event.type === type && e.event.scope === CUT_OFF)?.at ?? Number.NaN;
    const firstReassigned = rec.events.find((e) => e.event.type === "TASK_REASSIGNED")?.at ?? Number.NaN;
    process.stdout.write(
      `partition (proxy): ${heldIds.length} held; unreachable after ${at("HOST_UNREACHABLE") - cutAt} ms, ` +
        `reassigned after ${firstReassigned - cutAt} ms; report ${report.at - healedAt} ms after the heal: ` +
        `${JSON.stringify(report.event.data)}\n`,
    );
  }, 90_000);

  it("keeps the events it makes while cut off on disk: killed offline and started again, it sends them", async () => {
    // One attempt that fails (retryably) while the host is cut off: TASK_ATTEMPT_FAILED is made offline.
    const flaky: TeamInput = {
      name: "partition-events",
      root: "flaky",
      kinds: {
        flaky: {
          role: "agent",
          hosts: [CUT_OFF],
          behaviour: { type: "script", sleepMs: 1000, failProbability: 1 },
        },
      },
    };
    const rec = recordEvents(c.nc);
    const id = await c.submit(flaky);
    await until("the attempt started on the proxied host", () =>
      rec.events.some((e) => e.event.type === "TASK_STARTED" && e.event.scope === id),
    );
    rec.stop();
    proxy.cut();
    const kept = () => (c.logs.get(CUT_OFF) ?? []).some((l) => l.includes('"event":"TASK_ATTEMPT_FAILED"'));
    await until("the failed attempt's event kept in the outbox", kept, 10_000);

    // Killed while cut off: the NATS client's in-memory buffer dies with it, the outbox does not.
    await c.stack.processes.get(CUT_OFF)?.kill("SIGKILL");
    proxy.heal();
    await c.stack.startHost(CUT_OFF, { natsUrl: proxy.url });
    const failed = await until(
      "the offline event in the events stream",
      async () =>
        (await c.events()).find(
          (e) =>
            e.type === "TASK_ATTEMPT_FAILED" && e.scope === id && e.data.hostId === CUT_OFF && e.data.attempt === 1,
        ),
      20_000,
    );
    expect(failed.data).toMatchObject({ code: "BEHAVIOUR_FAILED", attempt: 1 });
  }, 60_000);
});
