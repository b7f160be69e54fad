/**
 * The forged actions of the security issue that the permission lists alone do not settle, each
 * tried on an authenticated stack: a permitted host acting on another host's task (delegate,
 * acquire, release, admit), and the viewer and a host writing what only the supervisor or the
 * operator may (the supervisor lease, state checkpoints, workflow state). Each is refused and
 * changes nothing; the workflow finishes with its genuine output.
 */

import { BUCKETS, type TeamInput } from "@cadre/protocol";
import { rejection } from "@cadre/protocol/testing";
import { call, heldProof, SupervisorClient, taskToken } from "@cadre/runtime";
import { Kvm } from "@nats-io/kv";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { recordEvents, startCluster, type TestCluster, until } from "../helpers/cluster.js";

const team: TeamInput = {
  name: "locked-team",
  root: "worker",
  resources: { lock: { capacity: 1 } },
  kinds: {
    worker: {
      role: "agent",
      replicas: 1,
      hosts: ["host-1"],
      acquire: ["lock"],
      behaviour: { type: "script", sleepMs: 2500, output: { by: "genuine" } },
    },
  },
};

describe("forged actions on an authenticated stack", () => {
  let c: TestCluster;

  beforeAll(async () => {
    c = await startCluster({ hosts: 2, security: true });
  }, 60_000);
  afterAll(async () => {
    await c?.stop();
  });

  it("refuses a host's requests about a task another host holds, and the holder finishes it", async () => {
    const rec = recordEvents(c.nc);
    const id = await c.submit(team);
    const started = await until("the worker started on host-1", () =>
      rec.events.find((e) => e.event.type === "TASK_STARTED" && e.event.scope === id),
    );
    rec.stop();
    const taskId = String(started.event.data.taskId);
    const [record] = await c.taskRecords(id);
    if (!record) throw new Error("no task record");
    const parent = record.task;
    const opts = { sender: "host-2", timeoutMs: 5000 };
    // A proof made with a guessed token: host-2 has the ids (it may read task records) but not the token.
    const guessed = {
      epoch: parent.epoch,
      hostId: "host-2",
      proof: heldProof(taskToken(Buffer.from("guess"), taskId, 1), taskId, 1, "host-2"),
    };
    const nc = await c.connectAs("host-2");
    try {
      for (const holding of [undefined, guessed]) {
        const h = holding ? { holding } : {};
        const attempts = [
          () =>
            call(
              nc,
              "sup.delegate",
              { parent, subtasks: [{ kind: "worker", input: {} }], ...h },
              { ...opts, partition: parent.partition ?? 0 },
            ),
          () => call(nc, "sup.acquire", { taskId, teamId: parent.teamId, resource: "lock", priority: 0, ...h }, opts),
          () => call(nc, "sup.release", { taskId, ...h }, opts),
          () =>
            call(nc, "sup.task.admit", { taskId, workflowId: id, epoch: parent.epoch, kind: parent.kind, ...h }, opts),
        ];
        for (const attempt of attempts) {
          const e = await rejection(attempt());
          expect(e.code).toBe("PERMISSION_DENIED");
          expect(e.message).toContain("does not prove its sender holds the task");
        }
      }
      // The lock is still the holder's: the forged release changed nothing.
      const waits = await new SupervisorClient(c.nc, { sender: "test", timeoutMs: 5000 }).call("sup.waits", {});
      expect(waits.holders.lock).toEqual([taskId]);
    } finally {
      await nc.close();
    }
    const w = await c.wait(id);
    expect(w.status).toBe("completed");
    expect(w.output).toEqual({ by: "genuine" });
    // No child was created under the forged delegation.
    expect(w.tasks.total).toBe(1);
    expect(await c.taskRecords(id)).toHaveLength(1);
  });

  it("refuses the viewer's and a host's writes to the supervisor lease, checkpoints and (viewer) state", async () => {
    const kvm = new Kvm(c.nc);
    const registry = await kvm.open(BUCKETS.registry);
    const leaseBefore = await registry.get("supervisor.lease");
    if (!leaseBefore) throw new Error("no lease");
    const attempts: [string, string, string][] = [
      ["viewer", BUCKETS.registry, "supervisor.lease"],
      ["host-1", BUCKETS.registry, "supervisor.lease"],
      ["viewer", BUCKETS.state, "wf-x._ckpt.1"],
      ["host-1", BUCKETS.state, "wf-x._ckpt.1"],
      ["viewer", BUCKETS.state, "wf-x.key"],
    ];
    for (const [who, bucket, key] of attempts) {
      const nc = await c.connectAs(who);
      try {
        const kv = await new Kvm(nc).open(bucket);
        // nats.js's own error (the server's permissions violation), not a Cadre one.
        const e = await kv.put(key, JSON.stringify({ holder: who, forged: true })).then(
          () => new Error(`${who} wrote ${bucket}/${key}`),
          (err: Error) => err,
        );
        expect(`${e.name}: ${e.message}`, `${who} writing ${bucket}/${key}`).toMatch(/permission/i);
      } finally {
        await nc.close();
      }
    }
    // The lease is the supervisor's still, and the supervisor still acts.
    const leaseAfter = await registry.get("supervisor.lease");
    expect(leaseAfter?.string()).not.toContain("forged");
    const state = await kvm.open(BUCKETS.state);
    expect(await state.get("wf-x._ckpt.1")).toBeNull();
    expect(await state.get("wf-x.key")).toBeNull();
    const plain: TeamInput = {
      name: "after-forgery",
      root: "worker",
      kinds: { worker: { role: "agent", replicas: 1, behaviour: { type: "script", output: { ok: true } } } },
    };
    expect((await c.wait(await c.submit(plain))).status).toBe("completed");
  });
});
