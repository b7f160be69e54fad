import {
  MemberRecordSchema,
  PARTITIONS_KEY,
  type PartitionTable,
  PartitionTableSchema,
  partitionOf,
  rankFor,
} from "@cadre/protocol";
import { connectNats, createLogger, ManualClock, type NatsConnection, StateStore } from "@cadre/runtime";
import { type NatsServer, startNatsServer } from "@cadre/runtime/testing";
import { type KV, Kvm } from "@nats-io/kv";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { PartitionKeeper } from "./partitions.js";

const P = 64;
const TTL = 1000;
const RENEW = 200;
const STABLE = 600;
const logger = createLogger("partitions-test", "silent");

describe("partitioned supervisors, on a real KV bucket and a driven clock", () => {
  let server: NatsServer;
  let nc: NatsConnection;
  let n = 0;

  beforeAll(async () => {
    server = await startNatsServer();
    nc = await connectNats(server.url, "partitions-test");
  });
  afterAll(async () => {
    await nc?.close();
    await server?.stop();
  });

  /** Members sharing one fresh bucket and one clock; `round()` ticks the running ones, then advances. */
  async function setup() {
    const bucket = `parts_t${++n}`;
    const kv = await new Kvm(nc).create(bucket, { history: 1 });
    const clock = new ManualClock(1_000_000);
    const running = new Map<string, PartitionKeeper>();
    const log: string[] = [];
    const join = (id: string, bucket: KV = kv) => {
      const k = new PartitionKeeper({
        kv: bucket,
        id,
        partitions: P,
        ttlMs: TTL,
        renewMs: RENEW,
        stableMs: STABLE,
        clock,
        logger,
        onAcquire: (p, term) => {
          log.push(`${id} +${p}@${term}`);
        },
        onRelease: (p, reason) => {
          log.push(`${id} -${p} ${reason}`);
        },
      });
      running.set(id, k);
      return k;
    };
    const round = async (times = 1) => {
      for (let i = 0; i < times; i++) {
        for (const k of running.values()) await k.tick();
        clock.advance(RENEW);
      }
    };
    const table = async (): Promise<PartitionTable> => {
      const e = await new StateStore(kv, PartitionTableSchema, "table").get(PARTITIONS_KEY);
      if (!e) throw new Error("no partition table");
      return e.value;
    };
    /** Every partition's holders, as the members themselves act. */
    const holders = () => {
      const of = Array.from({ length: P }, () => [] as string[]);
      for (const [id, k] of running) for (const p of k.held.keys()) of[p]?.push(id);
      return of;
    };
    return { bucket, kv, clock, running, log, join, round, table, holders };
  }

  /** The partitions rendezvous hashing gives `id` among `members`. */
  const shareOf = (id: string, members: string[]) =>
    Array.from({ length: P }, (_, p) => p).filter((p) => rankFor(p, members)[0] === id);

  /** Each partition held by exactly one member, as the table says, and by its owner among `members`. */
  async function expectBalanced(s: Awaited<ReturnType<typeof setup>>, members: string[]) {
    const of = s.holders();
    expect(of.every((h) => h.length === 1)).toBe(true);
    const t = await s.table();
    expect(t.owners).toEqual(of.map((h) => h[0]));
    expect(t.members.toSorted()).toEqual(members.toSorted());
    for (const id of members)
      expect([...(s.running.get(id)?.held.keys() ?? [])].sort((a, b) => a - b)).toEqual(shareOf(id, members));
  }

  it("hashes a workflow to one partition and ranks members the same way whatever their order", () => {
    expect(partitionOf("w1abc", P)).toBe(partitionOf("w1abc", P));
    const spread = new Set(Array.from({ length: 2000 }, (_, i) => partitionOf(`w${i.toString(36)}x`, P)));
    expect(spread.size).toBe(P);
    expect(rankFor(7, ["a", "b", "c"])).toEqual(rankFor(7, ["c", "a", "b"]));
    // Among three, each gets a share near a third.
    for (const id of ["sup-1", "sup-2", "sup-3"]) {
      expect(shareOf(id, ["sup-1", "sup-2", "sup-3"]).length).toBeGreaterThan(P / 6);
    }
  });

  it("three members: every partition has exactly one holder, the one rendezvous hashing names", async () => {
    const s = await setup();
    for (const id of ["sup-1", "sup-2", "sup-3"]) s.join(id);
    // The first ticking takes everything; the others get their shares once settled.
    const from = s.clock.now();
    await s.round(1);
    expect(s.holders().every((h) => h.length === 1)).toBe(true);
    let at: number | undefined;
    for (let i = 0; i < 20 && at === undefined; i++) {
      await s.round(1);
      if ((s.running.get("sup-3")?.held.size ?? 0) > 0) at = s.clock.now();
      expect(s.holders().every((h) => h.length <= 1)).toBe(true);
    }
    expect((at ?? 0) - from).toBeLessThanOrEqual(STABLE + 3 * RENEW);
    await s.round(1);
    await expectBalanced(s, ["sup-1", "sup-2", "sup-3"]);
    // Settled: nothing moves any more.
    const before = await s.table();
    const logged = s.log.length;
    await s.round(10);
    expect(await s.table()).toEqual(before);
    expect(s.log.slice(logged)).toEqual([]);
  });

  it("one leaves: its partitions go to the others on their next tick, and no other partition moves", async () => {
    const s = await setup();
    for (const id of ["sup-1", "sup-2", "sup-3"]) s.join(id);
    await s.round(10);
    const before = await s.table();
    await s.running.get("sup-2")?.stop();
    s.running.delete("sup-2");
    await s.round(1);
    await expectBalanced(s, ["sup-1", "sup-3"]);
    const after = await s.table();
    for (let p = 0; p < P; p++) {
      if (before.owners[p] !== "sup-2")
        expect([after.owners[p], after.terms[p]]).toEqual([before.owners[p], before.terms[p]]);
      else expect(after.terms[p]).toBe((before.terms[p] ?? 0) + 1);
    }
  });

  it("one dies: its partitions stay its own until the TTL has passed, then go to the others", async () => {
    const s = await setup();
    for (const id of ["sup-1", "sup-2", "sup-3"]) s.join(id);
    await s.round(10);
    const before = await s.table();
    const victims = shareOf("sup-2", ["sup-1", "sup-2", "sup-3"]);
    s.running.delete("sup-2"); // no more ticks, nothing given up: a kill -9
    const killedAt = s.clock.now();
    let takenAt: number | undefined;
    for (let i = 0; i < 20 && takenAt === undefined; i++) {
      await s.round(1);
      const t = await s.table();
      if (victims.every((p) => t.owners[p] !== "sup-2" && t.owners[p] !== "")) takenAt = s.clock.now();
      else if (s.clock.now() - killedAt < TTL)
        expect(t.owners.filter((h) => h === "sup-2")).toHaveLength(victims.length);
    }
    expect(takenAt).toBeDefined();
    // Not before the TTL on the survivors' clock, and within a tick or two after it.
    expect((takenAt ?? 0) - killedAt).toBeGreaterThanOrEqual(TTL);
    expect((takenAt ?? 0) - killedAt).toBeLessThanOrEqual(TTL + 3 * RENEW);
    await expectBalanced(s, ["sup-1", "sup-3"]);
    const after = await s.table();
    for (let p = 0; p < P; p++) if (before.owners[p] !== "sup-2") expect(after.owners[p]).toBe(before.owners[p]);
  });

  it("one joins: it takes only the partitions it ranks first for, once settled; one that comes and goes moves nothing", async () => {
    const s = await setup();
    for (const id of ["sup-1", "sup-3"]) s.join(id);
    await s.round(10);
    const two = await s.table();
    // A member that lives for less than the settling time.
    s.join("sup-9");
    await s.round(2);
    expect((await s.table()).owners).toEqual(two.owners);
    await s.running.get("sup-9")?.stop();
    s.running.delete("sup-9");
    await s.round(1);
    expect(await s.table()).toEqual(two);

    s.join("sup-4");
    const joinedAt = s.clock.now();
    let movedAt: number | undefined;
    for (let i = 0; i < 20 && movedAt === undefined; i++) {
      await s.round(1);
      const t = await s.table();
      if (t.owners.includes("sup-4")) movedAt = s.clock.now();
      else expect(t.owners).toEqual(two.owners);
    }
    expect((movedAt ?? 0) - joinedAt).toBeGreaterThanOrEqual(STABLE);
    await s.round(2);
    await expectBalanced(s, ["sup-1", "sup-3", "sup-4"]);
    const three = await s.table();
    for (let p = 0; p < P; p++) {
      const moved = three.owners[p] !== two.owners[p];
      expect(moved).toBe(shareOf("sup-4", ["sup-1", "sup-3", "sup-4"]).includes(p));
    }
  });

  it("a member cut off from NATS stops acting within its TTL; the others take its partitions after theirs", async () => {
    const s = await setup();
    const own = await connectNats(server.url, "partitions-cut-off");
    s.join("sup-1");
    s.join("sup-2", await new Kvm(own).open(s.bucket));
    await s.round(10);
    const cut = s.running.get("sup-2");
    expect(cut?.held.size).toBe(shareOf("sup-2", ["sup-1", "sup-2"]).length);
    await own.close();
    const cutAt = s.clock.now();
    let stoppedAt: number | undefined;
    for (let i = 0; i < 20 && stoppedAt === undefined; i++) {
      await s.round(1);
      if (cut?.held.size === 0) stoppedAt = s.clock.now();
    }
    // It stops on its own clock at the TTL, before the others can have taken over.
    expect((stoppedAt ?? 0) - cutAt).toBeLessThanOrEqual(TTL + RENEW);
    s.running.delete("sup-2");
    await s.round(3);
    expect((await s.table()).owners.every((h) => h === "sup-1")).toBe(true);
    expect(s.log.filter((l) => l.startsWith("sup-2 -")).every((l) => l.includes("not renewed"))).toBe(true);
  });

  it("a member restarted with its id takes its own partitions back under new terms", async () => {
    const s = await setup();
    for (const id of ["sup-1", "sup-2"]) s.join(id);
    await s.round(10);
    const before = await s.table();
    s.running.delete("sup-2");
    s.join("sup-2");
    await s.round(1);
    const after = await s.table();
    for (let p = 0; p < P; p++) {
      expect(after.owners[p]).toBe(before.owners[p]);
      expect(after.terms[p]).toBe((before.terms[p] ?? 0) + (before.owners[p] === "sup-2" ? 1 : 0));
    }
    expect(MemberRecordSchema.safeParse({ id: "sup-2", renewedAt: 1 }).success).toBe(true);
  });
});
