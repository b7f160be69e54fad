/**
 * The registry's memory of hosts stays bounded: a host id heard in a heartbeat but never
 * registered is forgotten after the dead time, a registered host that stopped beating after
 * its retention; a live host, or one heard again, is kept. A real KV bucket, a driven clock.
 */

import { type Heartbeat, parseConfig } from "@cadre/protocol";
import { connectNats, ManualClock, type NatsConnection } from "@cadre/runtime";
import { type NatsServer, startNatsServer } from "@cadre/runtime/testing";
import { type KV, Kvm } from "@nats-io/kv";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { deadHostRetentionMs, Registry } from "./registry.js";

const config = parseConfig({ heartbeat: { intervalMs: 100, hostDeadAfterMs: 1000 } });
const DEAD = config.heartbeat.hostDeadAfterMs;

const beat = (hostId: string, incarnation = "i1"): Heartbeat => ({
  hostId,
  incarnation,
  seq: 0,
  actors: 0,
  busy: 0,
  load: 0,
});

describe("the registry forgets hosts it should not remember (real KV, driven clock)", () => {
  let server: NatsServer;
  let nc: NatsConnection;
  let n = 0;
  beforeAll(async () => {
    server = await startNatsServer();
    nc = await connectNats(server.url, "registry-test");
  });
  afterAll(async () => {
    await nc?.close();
    await server?.stop();
  });

  async function setup(): Promise<{ kv: KV; clock: ManualClock; registry: Registry; seen: () => string[] }> {
    const kv = await new Kvm(nc).create(`registry_t${++n}`, { history: 1 });
    const clock = new ManualClock(1_000_000);
    const registry = new Registry(kv, config, clock);
    const seen = () => registry.seenHosts().map((h) => h.hostId);
    return { kv, clock, registry, seen };
  }
  const register = (kv: KV, hostId: string, incarnation = "i1") =>
    kv.put(`host.${hostId}`, JSON.stringify({ hostId, incarnation, startedAt: 0, maxActors: 10 }));

  it("forgets a host id heard once and never registered, after the dead time, in the detector too", async () => {
    const { clock, registry, seen } = await setup();
    registry.heartbeat(beat("ghost-1"));
    expect(seen()).toEqual(["ghost-1"]);
    clock.advance(DEAD);
    expect(await registry.prune()).toEqual([]);
    expect(seen()).toEqual(["ghost-1"]);
    clock.advance(1);
    expect(await registry.prune()).toEqual(["ghost-1"]);
    expect(seen()).toEqual([]);
    expect(registry.detector.state("ghost-1")).toBeUndefined();
    expect(registry.unreachableHosts()).toEqual([]);
  });

  it("does not let a flood of made-up host ids accumulate", async () => {
    const { clock, registry, seen } = await setup();
    for (let i = 0; i < 500; i++) registry.heartbeat(beat(`flood-${i}`));
    clock.advance(DEAD + 1);
    expect((await registry.prune()).length).toBe(500);
    expect(seen()).toEqual([]);
  });

  it("forgets a host whose record is of another incarnation (not the process that beat)", async () => {
    const { kv, clock, registry, seen } = await setup();
    await register(kv, "h-old", "i-new");
    registry.heartbeat(beat("h-old", "i-old"));
    clock.advance(DEAD + 1);
    expect(await registry.prune()).toEqual(["h-old"]);
    expect(seen()).toEqual([]);
  });

  it("keeps a live host, and a registered dead one until its retention has passed", async () => {
    const { kv, clock, registry, seen } = await setup();
    await register(kv, "h-live");
    await register(kv, "h-dead");
    registry.heartbeat(beat("h-live"));
    registry.heartbeat(beat("h-dead"));
    clock.advance(DEAD + 1);
    registry.heartbeat(beat("h-live"));
    expect(await registry.prune()).toEqual([]);
    expect(seen().sort()).toEqual(["h-dead", "h-live"]);
    // Dead, and registered: remembered (host list shows it unreachable) for the retention.
    const retention = deadHostRetentionMs(config);
    clock.advance(retention - DEAD - 1);
    registry.heartbeat(beat("h-live"));
    expect(await registry.prune()).toEqual([]);
    clock.advance(1);
    registry.heartbeat(beat("h-live"));
    expect(await registry.prune()).toEqual(["h-dead"]);
    expect(seen()).toEqual(["h-live"]);
  });

  it("forgets nothing while the supervisor itself is cut off from NATS", async () => {
    const { clock, registry, seen } = await setup();
    registry.heartbeat(beat("ghost-2"));
    registry.observerDisconnected();
    clock.advance(DEAD * 5);
    expect(await registry.prune()).toEqual([]);
    registry.observerReconnected();
    // Back: silence counts from now.
    expect(await registry.prune()).toEqual([]);
    expect(seen()).toEqual(["ghost-2"]);
    clock.advance(DEAD + 1);
    expect(await registry.prune()).toEqual(["ghost-2"]);
  });
});
