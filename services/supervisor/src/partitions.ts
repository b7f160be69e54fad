/**
 * The partition keeper: any number of supervisors share P partitions, each held by one of them.
 * The table of holders is one registry record, changed only by compare-and-set; liveness is
 * each member's own record, rewritten every `renewMs`. As with the lease (lease.ts), no clocks
 * are compared between machines: a member is alive while its record's revision keeps moving on
 * the observer's clock, and lapsed once it has not moved for `ttlMs`.
 *
 * The rule every member applies on every tick, from the same table:
 * - a partition's owner is the first, by rendezvous hashing (protocol partitions.ts), of the
 *   candidates: the live members settled for `stableMs` (all live members while none is);
 * - a member gives up a partition it holds whose owner is another candidate;
 * - a member takes a partition that is free, or held by a lapsed member, when it is its owner;
 *   any live member takes one that has stayed free for `ttlMs` (its owner is not taking it);
 * - lapsed members are struck from the table, their partitions freed.
 * A join moves only the partitions the newcomer ranks first for, once it is settled (so a member
 * that comes and goes at once moves nothing); a leave or a death moves only the leaver's.
 *
 * A member acts for a partition (onAcquire) only after the table naming it has been written or
 * read, and stops (onRelease) as soon as the table it reads names another, or when it has not
 * renewed its own record for `ttlMs` (cut off: the others may be taking over).
 */

import {
  ConcurrentModificationError,
  InvalidConfigError,
  type MemberRecord,
  MemberRecordSchema,
  memberKey,
  PARTITIONS_KEY,
  type PartitionTable,
  PartitionTableSchema,
  rankFor,
} from "@cadre/protocol";
import { type Clock, type Logger, StateStore } from "@cadre/runtime";
import type { KV } from "@nats-io/kv";
import { Ticker } from "./ticker.js";

export interface PartitionKeeperOptions {
  /** The registry bucket. */
  kv: KV;
  id: string;
  partitions: number;
  ttlMs: number;
  renewMs: number;
  /** How long a newcomer must have been alive before partitions move to it. */
  stableMs: number;
  clock: Clock;
  logger: Logger;
  /** `previous`: the holder the table named before this member's write ("" when it was free). */
  onAcquire: (partition: number, term: number, previous: string) => void | Promise<void>;
  onRelease: (partition: number, reason: string) => void | Promise<void>;
}

/** What this member saw of another: the revision of its record, since when, and since when alive. */
interface Seen {
  revision: number;
  since: number;
  firstSeen: number;
}

export class PartitionKeeper {
  private readonly table: StateStore<PartitionTable>;
  private readonly members: StateStore<MemberRecord>;
  /** The partitions this member acts for, with their terms. */
  private readonly mine = new Map<number, number>();
  private readonly seen = new Map<string, Seen>();
  /** When each free partition was first seen free. */
  private readonly freeSince = new Map<number, number>();
  private startedAt: number | undefined;
  private lastRenewedAt: number | undefined;
  private readonly ticker: Ticker;

  constructor(private readonly o: PartitionKeeperOptions) {
    this.ticker = new Ticker(o.clock, o.renewMs, () => this.tick());
    this.table = new StateStore(o.kv, PartitionTableSchema, "partition table");
    this.members = new StateStore(o.kv, MemberRecordSchema, "supervisor member");
  }

  /** The partitions this member acts for, and their terms. */
  get held(): ReadonlyMap<number, number> {
    return this.mine;
  }

  /**
   * Ticks now and then every `renewMs` on the clock; resolves when the first tick is done.
   * Rejects with INVALID_CONFIG when the table has another number of partitions than this
   * member's configuration (every supervisor of a deployment must use the same).
   */
  async start(): Promise<void> {
    const cur = await this.table.get(PARTITIONS_KEY);
    if (cur && cur.value.owners.length !== this.o.partitions) {
      throw new InvalidConfigError("the configuration", [
        {
          path: "supervisor.partitions",
          message: `is ${this.o.partitions} but the running supervisors use ${cur.value.owners.length}: give every supervisor the same number`,
        },
      ]);
    }
    return this.ticker.start();
  }

  /** Stops ticking and leaves: gives up its partitions and its place, so the others take over at once. */
  async stop(): Promise<void> {
    await this.ticker.stop();
    await this.dropAll("stopping");
    try {
      for (let tries = 0; tries < 5; tries++) {
        const cur = await this.table.get(PARTITIONS_KEY);
        if (!cur?.value.members.includes(this.o.id)) break;
        const t = cur.value;
        const next: PartitionTable = {
          members: t.members.filter((m) => m !== this.o.id),
          owners: t.owners.map((h) => (h === this.o.id ? "" : h)),
          terms: t.terms,
        };
        try {
          await this.table.update(PARTITIONS_KEY, next, cur.revision);
          break;
        } catch (err) {
          if (!(err instanceof ConcurrentModificationError)) throw err;
        }
      }
      await this.o.kv.delete(memberKey(this.o.id));
    } catch (err) {
      this.o.logger.warn({ err }, "could not leave the partition table; the others take over after the TTL");
    }
  }

  /** One step: renew, read, decide, write, then act on what the table says. Exposed for tests. */
  async tick(): Promise<void> {
    const now = this.o.clock.now();
    try {
      await this.members.put(memberKey(this.o.id), { id: this.o.id, renewedAt: now });
      this.lastRenewedAt = now;
      this.startedAt ??= now;
    } catch (err) {
      this.o.logger.warn({ err }, "partition member renewal failed");
      if (this.lastRenewedAt === undefined || now - this.lastRenewedAt >= this.o.ttlMs) {
        await this.dropAll(
          `not renewed for ${this.lastRenewedAt === undefined ? "ever" : now - this.lastRenewedAt} ms`,
        );
      }
      return;
    }
    try {
      const cur = await this.table.get(PARTITIONS_KEY);
      let table = cur?.value ?? this.empty();
      const before = table.owners;
      // Struck from the table (the others took it for dead): it joins again as a newcomer.
      if (!table.members.includes(this.o.id)) this.startedAt = now;
      await this.observe(table.members, now);
      const next = this.decide(table, now);
      if (!cur) {
        await this.table.create(PARTITIONS_KEY, next);
        table = next;
      } else if (JSON.stringify(next) !== JSON.stringify(table)) {
        await this.table.update(PARTITIONS_KEY, next, cur.revision);
        table = next;
      }
      await this.follow(table, before);
    } catch (err) {
      // Another member wrote first: the next tick decides again from its table.
      if (!(err instanceof ConcurrentModificationError)) this.o.logger.warn({ err }, "partition step failed");
    }
  }

  private empty(): PartitionTable {
    return { members: [], owners: Array(this.o.partitions).fill(""), terms: Array(this.o.partitions).fill(0) };
  }

  /** Reads the other members' records, noting when each revision was first seen. */
  private async observe(members: readonly string[], now: number): Promise<void> {
    for (const m of members) {
      if (m === this.o.id) continue;
      const rec = await this.members.get(memberKey(m));
      const s = this.seen.get(m);
      if (!rec) {
        // Gone (left): lapsed at once.
        this.seen.set(m, { revision: -1, since: s?.since ?? now - this.o.ttlMs, firstSeen: s?.firstSeen ?? now });
      } else if (!s || s.revision !== rec.revision) {
        this.seen.set(m, { revision: rec.revision, since: now, firstSeen: s?.firstSeen ?? now });
      }
    }
    for (const m of this.seen.keys()) if (!members.includes(m)) this.seen.delete(m);
  }

  private alive(m: string, now: number): boolean {
    if (m === this.o.id) return true;
    const s = this.seen.get(m);
    return s !== undefined && s.revision !== -1 && now - s.since < this.o.ttlMs;
  }

  private settled(m: string, now: number): boolean {
    const first = m === this.o.id ? this.startedAt : this.seen.get(m)?.firstSeen;
    return first !== undefined && now - first >= this.o.stableMs && this.alive(m, now);
  }

  /** The table as this member would have it (see the rule in the header). */
  private decide(t: PartitionTable, now: number): PartitionTable {
    const me = this.o.id;
    const members = [...t.members.filter((m) => this.alive(m, now)), ...(t.members.includes(me) ? [] : [me])];
    const settled = members.filter((m) => this.settled(m, now));
    const candidates = settled.length > 0 ? settled : members;
    const owners = [...t.owners];
    const terms = [...t.terms];
    for (let p = 0; p < owners.length; p++) {
      const holder = owners[p] ?? "";
      const owner = rankFor(p, candidates)[0];
      if (holder !== "" && !members.includes(holder)) owners[p] = "";
      if (holder === me && owner !== me && owner !== undefined) owners[p] = "";
      // Its own, from before a restart: taken again under a new term (the old one is fenced).
      if (owners[p] === me && !this.mine.has(p)) terms[p] = (terms[p] ?? 0) + 1;
      if (owners[p] !== "") {
        this.freeSince.delete(p);
        continue;
      }
      const freeFor = now - (this.freeSince.get(p) ?? now);
      if (!this.freeSince.has(p)) this.freeSince.set(p, now);
      if (owner === me || freeFor >= this.o.ttlMs) {
        if (holder !== me) terms[p] = (terms[p] ?? 0) + 1;
        owners[p] = me;
        this.freeSince.delete(p);
      }
    }
    return { members, owners, terms };
  }

  /** Acts for what the table gives this member, and stops acting for what it does not. */
  private async follow(t: PartitionTable, before: readonly string[]): Promise<void> {
    for (const [p] of this.mine) {
      if (t.owners[p] !== this.o.id) {
        this.mine.delete(p);
        await this.o.onRelease(p, t.owners[p] ? `moved to ${t.owners[p]}` : "given up");
      }
    }
    for (let p = 0; p < t.owners.length; p++) {
      const term = t.terms[p] ?? 0;
      if (t.owners[p] === this.o.id && this.mine.get(p) !== term) {
        // Held once acting for it works: a failed start is tried again, under a new term.
        await this.o.onAcquire(p, term, before[p] ?? "");
        this.mine.set(p, term);
      }
    }
  }

  private async dropAll(reason: string): Promise<void> {
    for (const [p] of [...this.mine]) {
      this.mine.delete(p);
      await this.o.onRelease(p, reason);
    }
  }
}
