/**
 * Every service of a running stack registers as a NATS micro service: `$SRV.INFO` lists the
 * active supervisor with every supervisor operation as an endpoint (in the supervisors' queue
 * group), each agent-host with its host operations on its own subjects, and the monitor.
 */

import {
  endpointName,
  operationSubject,
  operationsOf,
  PARTITIONED_OPERATIONS,
  SUPERVISOR_QUEUE,
} from "@cadre/protocol";
import { discoverServices } from "@cadre/runtime";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startCluster, type TestCluster, until } from "../helpers/cluster.js";

describe("service discovery ($SRV)", () => {
  let c: TestCluster;
  beforeAll(async () => {
    c = await startCluster({ hosts: 2, monitor: true });
  }, 60_000);
  afterAll(async () => {
    await c?.stop();
  });

  it("lists the supervisor, both hosts and the monitor with their endpoints", async () => {
    const infos = await until("four services answering $SRV.INFO", async () => {
      const found = await discoverServices(c.nc);
      return found.length >= 4 && found;
    });
    const byName = (n: string) => infos.filter((i) => i.name === n);
    const [sup] = byName("cadre-supervisor");
    expect(sup?.metadata?.role).toBe("active");
    // All but the partitioned ones, which each partition's holder answers on plain subscriptions.
    expect(sup?.endpoints.map((e) => e.name).sort()).toEqual(
      operationsOf("supervisor")
        .filter((n) => !(PARTITIONED_OPERATIONS as string[]).includes(n))
        .map(endpointName)
        .sort(),
    );
    for (const e of sup?.endpoints ?? []) expect(e.queue_group).toBe(SUPERVISOR_QUEUE);

    const hosts = byName("cadre-agent-host");
    expect(hosts.map((h) => h.metadata?.hostId).sort()).toEqual(["host-1", "host-2"]);
    for (const h of hosts) {
      const hostId = String(h.metadata?.hostId);
      expect(h.endpoints.map((e) => e.subject).sort()).toEqual(
        operationsOf("agent-host")
          .map((n) => operationSubject(n, hostId))
          .sort(),
      );
    }
    expect(byName("cadre-monitor")).toHaveLength(1);
  });
});
