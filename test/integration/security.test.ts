/**
 * An authenticated stack (identities and permissions from `initSecurity`): the attacks of the
 * security issue, tried with no credentials, as the viewer and as one host acting for another,
 * are refused and change nothing, while the operator and the services work as before.
 */

import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  encode,
  parseConfig,
  parseTeam,
  partitionOf,
  resultMessageId,
  subjects,
  type TeamInput,
} from "@cadre/protocol";
import { rejection } from "@cadre/protocol/testing";
import { connectNats, initSecurity, type NatsConnection, resultSigner, SupervisorClient } from "@cadre/runtime";
import { jetstream } from "@nats-io/jetstream";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { fastConfig, recordEvents, startCluster, type TestCluster, until } from "../helpers/cluster.js";

const team: TeamInput = {
  name: "secure-team",
  root: "lead",
  kinds: {
    lead: {
      role: "lead",
      replicas: 1,
      behaviour: { type: "script", delegate: [{ kind: "worker", count: 2 }], output: { ok: true } },
    },
    worker: { role: "agent", replicas: 1, behaviour: { type: "script", output: { done: true } } },
  },
};

/** Collects the permission violations the server reports to a connection. */
function violations(nc: NatsConnection): string[] {
  const seen: string[] = [];
  void (async () => {
    for await (const s of nc.status()) {
      if (s.type === "error" && (s.error as Error).name === "PermissionViolationError")
        seen.push((s.error as Error).message);
    }
  })();
  return seen;
}

describe("security on: identities and permissions per role", () => {
  let c: TestCluster;

  beforeAll(async () => {
    c = await startCluster({ hosts: 2, security: true });
  }, 60_000);
  afterAll(async () => {
    await c?.stop();
  });

  it("runs a workflow as the operator, every service on its own identity", async () => {
    const w = await c.wait(await c.submit(team));
    expect(w.status, c.tail()).toBe("completed");
    expect(w.tasks).toMatchObject({ total: 3, completed: 3, duplicates: 0 });
  });

  it("refuses a client without credentials, and one with a wrong key", async () => {
    const anonymous = await rejection(connectNats(c.stack.natsUrl, "anonymous"));
    expect(anonymous.code).toBe("PERMISSION_DENIED");
    expect(anonymous.message).toContain("refused this identity");
    // A well-formed key the server was never told about.
    const dir = mkdtempSync(join(tmpdir(), "cadre-stranger-"));
    const stranger = initSecurity(dir).credentials("operator");
    const wrong = await rejection(connectNats(c.stack.natsUrl, "stranger", undefined, { credentials: stranger }));
    expect(wrong.code).toBe("PERMISSION_DENIED");
    rmSync(dir, { recursive: true, force: true });
  });

  it("lets the viewer read and refuses its writes with a typed error, changing nothing", async () => {
    const id = await c.submit(team);
    await c.wait(id);
    const nc = await c.connectAs("viewer");
    try {
      const viewer = new SupervisorClient(nc, { sender: "viewer", timeoutMs: 5000 });
      expect((await viewer.call("sup.status", { workflowId: id })).workflow.status).toBe("completed");
      // Listing quarantined actors is a read; releasing or retiring one (sup.quarantine) is not.
      expect((await viewer.call("sup.quarantine.list", {})).actors).toEqual([]);
      for (const attempt of [
        () => viewer.call("sup.submit", { team: parseTeam(team), priority: 0 }),
        () => viewer.call("sup.workflow.cancel", { workflowId: id, reason: "forged" }),
        () => viewer.call("sup.freeze", { workflowId: id, frozen: true }),
        () => viewer.call("sup.quarantine", { op: "list" }),
      ]) {
        const e = await rejection(attempt());
        expect(e.code).toBe("PERMISSION_DENIED");
        expect(e.retryable).toBe(false);
      }
      expect((await c.wait(id)).status).toBe("completed");
    } finally {
      await nc.close();
    }
  });

  it("rejects results that do not prove they come from the host they name, and the genuine one still wins", async () => {
    const rec = recordEvents(c.nc);
    const slow: TeamInput = {
      name: "signed-team",
      root: "worker",
      kinds: {
        worker: {
          role: "agent",
          replicas: 1,
          hosts: ["host-1"],
          behaviour: { type: "script", sleepMs: 1500, output: { by: "genuine" } },
        },
      },
    };
    const id = await c.submit(slow);
    const started = await until("the worker started on host-1", () =>
      rec.events.find((e) => e.event.type === "TASK_STARTED" && e.event.scope === id),
    );
    const taskId = String(started.event.data.taskId);
    // host-2 may publish results (for its own tasks): it forges two for host-1's task, under the
    // predictable message id the genuine result would have had if unsigned.
    const nc = await c.connectAs("host-2");
    try {
      const js = jetstream(nc);
      const forged = {
        taskId,
        workflowId: id,
        epoch: 1,
        attempt: 1,
        hostId: "host-1",
        actorId: "forger",
        status: "completed" as const,
        output: { by: "forger" },
        startedAt: Date.now(),
        finishedAt: Date.now(),
      };
      const signer = resultSigner(c.stack.security?.credentials("host-2"));
      // Unsigned, under the id an unsigned genuine result would have; then signed with the wrong key.
      await js.publish(
        subjects.result(partitionOf(id, parseConfig(fastConfig).supervisor.partitions), id),
        encode("result", forged, { sender: "host-1" }),
        {
          msgID: resultMessageId(taskId, 1, 1),
        },
      );
      const signed = { ...forged, sig: signer?.sign(forged) };
      await js.publish(
        subjects.result(partitionOf(id, parseConfig(fastConfig).supervisor.partitions), id),
        encode("result", signed, { sender: "host-1" }),
        {
          msgID: `${resultMessageId(taskId, 1, 1)}:forged`,
        },
      );
      // Signed by host-2 as itself: authentic, but host-2 never held the task (no token).
      const own = { ...forged, hostId: "host-2" };
      await js.publish(
        subjects.result(partitionOf(id, parseConfig(fastConfig).supervisor.partitions), id),
        encode("result", { ...own, sig: signer?.sign(own) }, { sender: "host-2" }),
        {
          msgID: `${resultMessageId(taskId, 1, 1)}:own`,
        },
      );
    } finally {
      await nc.close();
    }
    const w = await c.wait(id);
    await until(
      "the three forgeries rejected",
      () => rec.events.filter((e) => e.event.type === "RESULT_REJECTED").length >= 3,
    );
    rec.stop();
    expect(w.status).toBe("completed");
    expect(w.output).toEqual({ by: "genuine" });
    const reasons = rec.events.filter((e) => e.event.type === "RESULT_REJECTED").map((e) => e.event.data.reason);
    expect(reasons.sort()).toEqual(["bad-signature", "not-holder", "unsigned"]);
    const [record] = await c.taskRecords(id);
    expect(record?.applied).toMatchObject({ hostId: "host-1" });
    expect(record?.applied?.actorId).not.toBe("forger");
  });

  it("keeps a host to its own subjects: no heartbeat for another host, no results stream administration", async () => {
    const nc = await c.connectAs("host-1");
    const seen = violations(nc);
    try {
      nc.publish("cadre.v1.hb.host-2", new Uint8Array([1]));
      nc.publish("$JS.API.STREAM.DELETE.CADRE_TASKS", new Uint8Array());
      nc.publish("cadre.v1.sup.workflow.pause", new Uint8Array());
      await until("three publish violations reported", () => seen.length >= 3, 10_000);
      expect(seen.join("\n")).toContain("cadre.v1.hb.host-2");
      expect(seen.join("\n")).toContain("$JS.API.STREAM.DELETE.CADRE_TASKS");
      // The stream is still there and work still runs.
      expect((await c.wait(await c.submit(team))).status).toBe("completed");
    } finally {
      await nc.close();
    }
  });
});

describe("security with mutual TLS", () => {
  let c: TestCluster;
  beforeAll(async () => {
    c = await startCluster({ hosts: 1, tls: true });
  }, 60_000);
  afterAll(async () => {
    await c?.stop();
  });

  it("runs a workflow over TLS, and refuses a client without a certificate, or with one from another CA", async () => {
    expect((await c.wait(await c.submit(team))).status, c.tail()).toBe("completed");
    const files = c.stack.security;
    const operator = files?.credentials("operator") ?? "";
    const tls = files?.tls?.("operator");
    // The right nkey, but no client certificate: the server ends the TLS handshake.
    const noCert = await rejection(
      connectNats(c.stack.natsUrl, "no-cert", undefined, { credentials: operator, tls: { caFile: tls?.caFile ?? "" } }),
    );
    expect(["UNAVAILABLE", "PERMISSION_DENIED"]).toContain(noCert.code);
    // A certificate signed by another CA.
    const dir = mkdtempSync(join(tmpdir(), "cadre-other-ca-"));
    const other = initSecurity(dir, { hosts: [], tls: true }).tls?.("operator");
    const wrongCa = await rejection(
      connectNats(c.stack.natsUrl, "wrong-ca", undefined, {
        credentials: operator,
        tls: { caFile: tls?.caFile ?? "", certFile: other?.certFile, keyFile: other?.keyFile },
      }),
    );
    expect(["UNAVAILABLE", "PERMISSION_DENIED"]).toContain(wrongCa.code);
    rmSync(dir, { recursive: true, force: true });
    // And nothing in clear text.
    const plain = await rejection(connectNats(c.stack.natsUrl, "plain", undefined, { credentials: operator }));
    expect(["UNAVAILABLE", "PERMISSION_DENIED"]).toContain(plain.code);
  });
});

describe("a host's say on shell commands", () => {
  let c: TestCluster;
  beforeAll(async () => {
    c = await startCluster({ hosts: 1, config: { ...fastConfig, host: { commands: { allow: ["^echo "] } } } });
  }, 60_000);
  afterAll(async () => {
    await c?.stop();
  });

  const commandTeam = (name: string, run: string): TeamInput => ({
    name,
    root: "runner",
    kinds: { runner: { role: "agent", replicas: 1, behaviour: { type: "command", run } } },
  });

  it("runs an allowed command and refuses any other at spawn, with the setting named", async () => {
    const ok = await c.wait(await c.submit(commandTeam("allowed-cmd", `echo '{"ok":true}'`)));
    expect(ok.status, c.tail()).toBe("completed");
    const refused = await rejection(c.submit(commandTeam("refused-cmd", "cat /etc/hostname")));
    expect(refused.code).toBe("PERMISSION_DENIED");
    expect(refused.message).toContain("host.commands.allow");
  });
});
