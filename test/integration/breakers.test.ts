/**
 * Breakers, live. The delegation breaker on a host: the supervisor dies while a director holds
 * a resource and is about to delegate. Its requests find no responder; the host's circuit opens,
 * lets one trial through after 1 s, opens again for 2 s (each failed trial doubles the open time),
 * and every change is an event on the bus. The spawn breaker of the supervisor, one per host: a
 * host that beats but does not answer spawn requests is left out of placement once its circuit
 * opens, and the team is placed on the others.
 */

import { decodeAs, type TeamInput } from "@cadre/protocol";
import { call } from "@cadre/runtime";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { fastConfig, recordEvents, startCluster, startGhostHost, type TestCluster, until } from "../helpers/cluster.js";

const team: TeamInput = {
  name: "breakers",
  root: "boss",
  resources: { gate: { capacity: 1 } },
  kinds: {
    boss: {
      role: "director",
      replicas: 1,
      acquire: ["gate"],
      // Time to stop the supervisor between the grant and the delegation.
      behaviour: { type: "script", acquireGapMs: 2000, delegate: [{ kind: "worker" }], output: { done: true } },
    },
    worker: { role: "agent", replicas: 1, behaviour: { type: "script", output: { ok: true } } },
  },
};

describe("the delegation breaker of a host whose supervisor is gone", () => {
  let c: TestCluster;
  beforeAll(async () => {
    c = await startCluster({ hosts: 1 });
  }, 60_000);
  afterAll(async () => {
    await c?.stop();
  });

  it("opens after the configured failures, retries by one trial, and doubles its open time; each change an event", async () => {
    const rec = recordEvents(c.nc);
    await c.submit(team);
    await until("the director holding the gate", async () => {
      const w = await call(c.nc, "sup.waits", {}, { sender: "test", timeoutMs: 2000 });
      return (w.holders.gate ?? []).length > 0;
    });
    await c.stack.processes.get("supervisor")?.kill("SIGKILL");

    const circuit = (type: string, n = 1) =>
      rec.events.filter((e) => e.event.type === type && e.event.data.breaker === "delegation").slice(n - 1)[0];
    const opened = await until("the delegation circuit open", () => circuit("CIRCUIT_OPENED"));
    expect(opened.event.scope).toBe("delegation");
    expect(opened.event.data).toMatchObject({
      source: "host-1",
      from: "closed",
      to: "open",
      failures: 5,
      openForMs: 1000,
    });
    const trial = await until("a trial after the open time", () => circuit("CIRCUIT_HALF_OPEN"));
    expect(trial.at - opened.at).toBeGreaterThanOrEqual(900);
    // The trial finds no supervisor either: open again, for twice as long.
    const reopened = await until("open again", () => circuit("CIRCUIT_OPENED", 2));
    expect(reopened.event.data).toMatchObject({ from: "halfOpen", to: "open", openForMs: 2000 });
    rec.stop();
    // The host's heartbeats say so too.
    let circuits: Record<string, string> | undefined;
    const sub = c.nc.subscribe("cadre.v1.hb.host-1", {
      callback: (_err, m) => {
        circuits = decodeAs(m.data, "heartbeat").body.circuits;
      },
    });
    await until("a heartbeat with the open circuit", () => circuits?.delegation === "open");
    sub.unsubscribe();
  }, 60_000);
});

describe("the spawn breaker of a host that beats but never answers spawn requests", () => {
  let c: TestCluster;
  let ghost: { seq(): number; stop(): void } | undefined;
  beforeAll(async () => {
    // Anonymous on purpose: the test's connection plays a ghost host, which an authenticated
    // cluster would refuse (security.test.ts shows that).
    c = await startCluster({
      hosts: 1,
      security: false,
      config: { ...fastConfig, breakers: { agent_spawn: { threshold: 2 } } },
    });
  }, 60_000);
  afterAll(async () => {
    ghost?.stop();
    await c?.stop();
  });

  it("opens after the configured failures, and placement then uses the other hosts", async () => {
    // A "ghost" host: registered and beating, so placement sees it alive and empty, but nothing
    // answers on its control subject.
    const g = await startGhostHost(c.nc);
    ghost = g;
    const rec = recordEvents(c.nc);
    // Messages from one connection reach the supervisor in order: it has heard the ghost before
    // it reads the submit below.
    await until("a few ghost heartbeats", () => g.seq() >= 3);
    await c.nc.flush();

    // Two replicas go to two distinct hosts: one to the ghost, whose spawn fails. The submit is
    // retried (UNAVAILABLE) until the ghost's circuit is open and both land on host-1.
    const id = await c.submit({
      name: "ghosted",
      root: "worker",
      kinds: { worker: { role: "agent", replicas: 2, behaviour: { type: "script", output: { ok: true } } } },
    });
    const opened = await until("the ghost's spawn circuit open", () =>
      rec.events.find((e) => e.event.type === "CIRCUIT_OPENED" && e.event.data.breaker === "agent_spawn:ghost"),
    );
    expect(opened.event.data).toMatchObject({ key: "ghost", failures: 2, openForMs: 1000 });
    expect((await c.wait(id, 30_000)).status).toBe("completed");
    const spawned = rec.events.filter((e) => e.event.type === "ACTOR_SPAWNED").map((e) => e.event.data.hostId);
    expect(spawned).toEqual(["host-1", "host-1"]);
    rec.stop();
  }, 60_000);
});
