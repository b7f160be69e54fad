/**
 * The delegation breaker on a host, live: the supervisor dies while a director holds a resource
 * and is about to delegate. Its requests find no responder; the host's circuit opens, lets one
 * trial through after 1 s, opens again for 2 s (each failed trial doubles the open time), and
 * every change is an event on the bus.
 */

import { decodeAs, subjects, type TeamInput } from "@cadre/protocol";
import { request } from "@cadre/runtime";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { recordEvents, startCluster, type TestCluster, until } from "../helpers/cluster.js";

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
      const w = await request(c.nc, subjects.supervisor("waits"), "sup.waits", {}, "sup.waits.ok", {
        sender: "test",
        timeoutMs: 2000,
      });
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
