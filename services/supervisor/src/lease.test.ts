import { type LeaseRecord, LeaseRecordSchema } from "@cadre/protocol";
import { connectNats, createLogger, ManualClock, type NatsConnection, StateStore } from "@cadre/runtime";
import { type NatsServer, startNatsServer } from "@cadre/runtime/testing";
import { Kvm } from "@nats-io/kv";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { LEASE_KEY, LeaseKeeper } from "./lease.js";

const TTL = 1000;
const RENEW = 200;
const logger = createLogger("lease-test", "silent");

describe("the supervisor lease, on a real KV bucket and a driven clock", () => {
  let server: NatsServer;
  let nc: NatsConnection;
  let n = 0;

  beforeAll(async () => {
    server = await startNatsServer();
    nc = await connectNats(server.url, "lease-test");
  });
  afterAll(async () => {
    await nc?.close();
    await server?.stop();
  });

  /** Supervisors sharing one fresh bucket and one clock; each records what happened to it. */
  async function setup(ids: string[], conn = nc) {
    const kv = await new Kvm(conn).create(`lease_t${++n}`, { history: 1 });
    const clock = new ManualClock(1_000_000);
    const keepers = ids.map((id) => {
      const log: string[] = [];
      const k = new LeaseKeeper({
        store: new StateStore(kv, LeaseRecordSchema, "lease"),
        id,
        ttlMs: TTL,
        renewMs: RENEW,
        clock,
        logger,
        onAcquire: (l: LeaseRecord, prev) => {
          log.push(`acquire term ${l.term} from ${prev?.holder ?? "nobody"}`);
        },
        onLose: (reason) => {
          log.push(`lose: ${reason}`);
        },
      });
      return { k, log };
    });
    return {
      kv,
      clock,
      keepers,
      lease: async () => (await new StateStore(kv, LeaseRecordSchema).get(LEASE_KEY))?.value,
    };
  }

  it("goes to the first supervisor; the second stands by while it is renewed", async () => {
    const { clock, keepers, lease } = await setup(["sup-a", "sup-b"]);
    const [a, b] = keepers;
    await a?.k.tick();
    expect(a?.k.active).toBe(true);
    for (let t = 0; t < 10 * TTL; t += RENEW) {
      await a?.k.tick();
      await b?.k.tick();
      clock.advance(RENEW);
    }
    expect(b?.k.active).toBe(false);
    expect(await lease()).toMatchObject({ holder: "sup-a", term: 1 });
    expect(a?.log).toEqual(["acquire term 1 from nobody"]);
  });

  it("is taken over exactly when it has not been renewed for the TTL, and the old holder steps down", async () => {
    const { clock, keepers, lease } = await setup(["sup-a", "sup-b"]);
    const [a, b] = keepers;
    await a?.k.tick();
    await b?.k.tick(); // sees the lease at this revision
    clock.advance(TTL - 1);
    await b?.k.tick();
    expect(b?.k.active).toBe(false); // 1 ms short
    clock.advance(1);
    await b?.k.tick();
    expect(b?.k.active).toBe(true);
    expect(b?.log).toEqual(["acquire term 2 from sup-a"]);
    expect(await lease()).toMatchObject({ holder: "sup-b", term: 2 });

    // The old holder comes back (it was stalled): its renewal loses the compare-and-set.
    await a?.k.tick();
    expect(a?.k.active).toBe(false);
    expect(a?.log.at(-1)).toBe("lose: another supervisor took the lease");
    expect(await lease()).toMatchObject({ holder: "sup-b", term: 2 });
  });

  it("is released on a clean stop, so the standby takes it at once", async () => {
    const { keepers, lease } = await setup(["sup-a", "sup-b"]);
    const [a, b] = keepers;
    await a?.k.tick();
    await a?.k.stop();
    expect(await lease()).toBeUndefined();
    await b?.k.tick();
    expect(b?.k.active).toBe(true);
  });

  it("is taken back at once by a supervisor restarted with the same id", async () => {
    const { keepers, lease } = await setup(["sup-a", "sup-a"]);
    const [before, after] = keepers; // two incarnations of sup-a
    await before?.k.tick();
    await after?.k.tick();
    expect(after?.k.active).toBe(true);
    expect(await lease()).toMatchObject({ holder: "sup-a", term: 2 });
  });

  it("is retried when activation fails, never left held by a supervisor that does not act", async () => {
    const kv = await new Kvm(nc).create(`lease_t${++n}`, { history: 1 });
    const clock = new ManualClock(0);
    const log: string[] = [];
    let failures = 1;
    const k = new LeaseKeeper({
      store: new StateStore(kv, LeaseRecordSchema, "lease"),
      id: "sup-a",
      ttlMs: TTL,
      renewMs: RENEW,
      clock,
      logger,
      onAcquire: (l) => {
        log.push(`acquire term ${l.term}`);
        if (failures-- > 0) throw new Error("JetStream not ready");
      },
      onLose: (reason) => {
        log.push(`lose: ${reason}`);
      },
    });
    await k.tick();
    expect(k.active).toBe(false);
    await k.tick();
    expect(k.active).toBe(true);
    expect(log).toEqual(["acquire term 1", "lose: activation failed: JetStream not ready", "acquire term 2"]);
  });

  it("is given up by a holder that cannot renew it for the TTL (cut off from NATS)", async () => {
    const own = await connectNats(server.url, "lease-test-cut");
    const { clock, keepers } = await setup(["sup-a"], own);
    const [a] = keepers;
    await a?.k.tick();
    expect(a?.k.active).toBe(true);
    await own.close();
    clock.advance(TTL - 1);
    await a?.k.tick();
    expect(a?.k.active).toBe(true); // not yet: a standby cannot have taken over
    clock.advance(1);
    await a?.k.tick();
    expect(a?.k.active).toBe(false);
    expect(a?.log.at(-1)).toMatch(/^lose: lease not renewed for 1000 ms$/);
  });
});
