/**
 * Supervisors that share the work, on a real stack (nats-server, supervisors and agent-hosts as
 * processes): three supervisors split the partitions as the rendezvous rule ranks them, each
 * partition with exactly one holder, in the table and in each supervisor's own account (its
 * PARTITION_ACQUIRED / PARTITION_RELEASED events); every workflow's results are applied, and its
 * delegations answered, by its partition's holder; submits are answered by every supervisor,
 * each in a partition it holds, under the lease holder's throttle, and a dependency's end
 * releases its dependents wherever they were submitted; one leaving, one joining and one killed
 * move only what the rule says.
 */

import {
  BUCKETS,
  childTaskId,
  decode,
  PARTITIONS_KEY,
  type PartitionTable,
  PartitionTableSchema,
  parseTeam,
  partitionOf,
  rankFor,
  rootTaskId,
  ThrottledError,
} from "@cadre/protocol";
import { call } from "@cadre/runtime";
import { type KV, Kvm } from "@nats-io/kv";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { fanTeam, fastConfig, recordEvents, startCluster, type TestCluster, until } from "../helpers/cluster.js";

const PARTITIONS = 16;
const config = { ...fastConfig, supervisor: { partitions: PARTITIONS, leaseTtlMs: 1500, leaseRenewMs: 250 } };

describe("supervisors sharing the partitions", () => {
  let c: TestCluster;
  let registry: KV;
  let rec: ReturnType<typeof recordEvents>;

  const table = async (): Promise<PartitionTable | undefined> => {
    const e = await registry.get(PARTITIONS_KEY);
    return e?.operation === "PUT" ? PartitionTableSchema.parse(e.json()) : undefined;
  };
  /** Who the rule makes owner of each partition, among these members. */
  const ranked = (members: string[]) => Array.from({ length: PARTITIONS }, (_, p) => rankFor(p, members)[0]);
  /** What each supervisor last said it holds (its latest partition event). */
  const saysItHolds = (): Map<string, number[]> => {
    const held = new Map<string, number[]>();
    for (const { event: e } of rec.events) {
      if (e.type === "PARTITION_ACQUIRED" || e.type === "PARTITION_RELEASED")
        held.set(e.scope, e.data.held as number[]);
    }
    return held;
  };
  /**
   * Waits until the table has exactly these members, every partition held by the one the rule
   * ranks first, and every member's own account agrees (no partition claimed by two).
   */
  const settledOn = (members: string[], timeoutMs = 20_000, killed: string[] = []) =>
    until(
      `the partitions settled on ${members.join(", ")}`,
      async () => {
        const t = await table();
        if (!t || [...t.members].sort().join() !== [...members].sort().join()) return false;
        const expected = ranked(members);
        if (t.owners.join() !== expected.join()) return false;
        const said = saysItHolds();
        for (const m of members) {
          const mine = expected.flatMap((o, p) => (o === m ? [p] : []));
          if ((said.get(m) ?? []).join() !== mine.join()) return false;
        }
        // Nobody else says it holds any (but a killed one, which said nothing more).
        for (const [m, held] of said) if (!members.includes(m) && !killed.includes(m) && held.length > 0) return false;
        return t;
      },
      timeoutMs,
    );
  /** Ids with these prefixes such that the rule gives every one of `members` and them a share. */
  const idsTakingShares = (members: string[], ...prefixes: string[]): string[] => {
    for (let i = 0; ; i++) {
      const ids = prefixes.map((prefix) => `${prefix}${i}`);
      const owners = ranked([...members, ...ids]);
      if ([...members, ...ids].every((m) => owners.includes(m))) return ids;
    }
  };

  beforeAll(async () => {
    // Without security: the test listens to the hosts' inboxes for who answered (the subjects'
    // permissions are every secure test's: each delegation is a partitioned call).
    c = await startCluster({ hosts: 2, config, security: false });
    registry = await new Kvm(c.nc).open(BUCKETS.registry);
    rec = recordEvents(c.nc);
  }, 60_000);
  afterAll(async () => {
    rec?.stop();
    await c?.stop();
  });

  it("has three supervisors hold every partition once each, as the rule ranks them", async () => {
    const t0 = await until("the first supervisor's table", async () => await table());
    expect(t0.members).toHaveLength(1);
    const first = t0.members[0] as string;
    expect(t0.owners).toEqual(Array(PARTITIONS).fill(first));
    const [b, cc] = idsTakingShares([first], "sup-b", "sup-c") as [string, string];
    await c.stack.startSupervisor(b);
    await c.stack.startSupervisor(cc);
    const t = await settledOn([first, b, cc]);
    for (const m of [first, b, cc]) expect(t.owners).toContain(m);
    // Every change of holder raised the partition's term.
    for (let p = 0; p < PARTITIONS; p++) {
      if (t.owners[p] !== first) expect(t.terms[p]).toBeGreaterThan(t0.terms[p] ?? 0);
    }
  }, 60_000);

  it("applies every workflow's results and answers its delegations at the holder of its partition, the lease holder or not", async () => {
    const t = (await table()) as PartitionTable;
    // Who answered each delegation: the reply's sender, seen on the hosts' inboxes (a test
    // without security may listen there), by workflow (the request's correlation id).
    const answeredBy = new Map<string, Set<string>>();
    const inboxes = c.nc.subscribe("_INBOX.>", {
      callback: (_err, m) => {
        try {
          const f = decode(m.data);
          if (f.type === "sup.delegate.ok") answeredBy.set(f.cid, (answeredBy.get(f.cid) ?? new Set()).add(f.sender));
        } catch {
          // Not a Cadre frame: another reply on an inbox.
        }
      },
    });
    const lease = await registry.get("supervisor.lease");
    const leaseHolder = String((lease?.json() as { holder?: string } | undefined)?.holder);
    const ids: string[] = [];
    // Until two workflows fell in partitions of supervisors that do not hold the lease.
    while (ids.filter((id) => t.owners[partitionOf(id, PARTITIONS)] !== leaseHolder).length < 2) {
      expect(ids.length).toBeLessThan(40);
      ids.push(await c.submit(fanTeam("shared-team", 3, 20)));
    }
    for (const id of ids) {
      const w = await c.wait(id, 30_000);
      expect(w.status).toBe("completed");
      expect(w.tasks).toMatchObject({ total: 4, completed: 4, failed: 0, duplicates: 0 });
      const completions = rec.events.filter((e) => e.event.type === "TASK_COMPLETED" && e.event.scope === id);
      expect(completions.length).toBe(4);
      const holder = t.owners[partitionOf(id, PARTITIONS)];
      expect(new Set(completions.map((e) => e.sender))).toEqual(new Set([holder]));
      expect(answeredBy.get(id)).toEqual(new Set([holder]));
    }
    inboxes.unsubscribe();
  }, 90_000);

  it("tells the lease holder of a delegation served elsewhere: its wait-for graph has the parent's edges", async () => {
    const t = (await table()) as PartitionTable;
    const lease = await registry.get("supervisor.lease");
    const leaseHolder = String((lease?.json() as { holder?: string } | undefined)?.holder);
    // Workers that take 2 s: the edges stand while they run.
    let id: string | undefined;
    const ids: string[] = [];
    while (id === undefined) {
      expect(ids.length).toBeLessThan(40);
      const next = await c.submit(fanTeam("waiting-team", 2, 2000));
      ids.push(next);
      if (t.owners[partitionOf(next, PARTITIONS)] !== leaseHolder) id = next;
    }
    const root = rootTaskId(id);
    const edges = [0, 1].map((i) => [root, childTaskId(root, i)]);
    const waits = () => call(c.nc, "sup.waits", {}, { sender: "t", timeoutMs: 2000 });
    await until("the lease holder's graph with the delegation's edges", async () => {
      const w = await waits();
      return edges.every(([a, b]) => w.edges.some(([x, y]) => x === a && y === b));
    });
    for (const x of ids) expect((await c.wait(x, 30_000)).status).toBe("completed");
    // The results, applied at the partition's holder, took them out again.
    expect((await waits()).edges.filter(([a]) => ids.some((x) => a.startsWith(x)))).toEqual([]);
  }, 60_000);

  /** Who answered each submit (by workflow id) and each refused one, seen on the callers' inboxes. */
  const submitAnswers = () => {
    const answered = new Map<string, string>();
    const refused: { sender: string; code: string }[] = [];
    const sub = c.nc.subscribe("_INBOX.>", {
      callback: (_err, m) => {
        try {
          const f = decode(m.data);
          if (f.type === "sup.submit.ok") answered.set((f.body as { workflowId: string }).workflowId, f.sender);
          if (f.type === "error")
            refused.push({ sender: f.sender, code: (f.body as { error: { code: string } }).error.code });
        } catch {
          // Not a Cadre frame: another reply on an inbox.
        }
      },
    });
    return { answered, refused, stop: () => sub.unsubscribe() };
  };
  const leaseHolderNow = async () => {
    const lease = await registry.get("supervisor.lease");
    return String((lease?.json() as { holder?: string } | undefined)?.holder);
  };
  const submit = (team: ReturnType<typeof fanTeam>, extra: { after?: string[]; priority?: number } = {}) =>
    call(c.nc, "sup.submit", { team: parseTeam(team), ...extra }, { sender: "t", timeoutMs: 10_000 });

  it("answers submits at every supervisor holding a partition, each workflow in a partition its answerer holds", async () => {
    const t = (await table()) as PartitionTable;
    const leaseHolder = await leaseHolderNow();
    const seen = submitAnswers();
    try {
      // A new team each time, until one's first submit was answered by a supervisor without the
      // lease: that one had the lease holder place the team (coordinate.ts `submitted`).
      const ids: string[] = [];
      let placedElsewhere: string | undefined;
      while (placedElsewhere === undefined) {
        expect(ids.length).toBeLessThan(40);
        const { workflowId } = await submit(fanTeam(`spread-team-${ids.length}`, 1, 10));
        ids.push(workflowId);
        const by = await until("the submit's answer seen", () => seen.answered.get(workflowId));
        if (by !== leaseHolder) placedElsewhere = workflowId;
      }
      // And more of one team, which every supervisor has seen placed by now or not.
      for (let i = 0; i < 12; i++) ids.push((await submit(fanTeam("spread-team-0", 1, 10))).workflowId);
      for (const id of ids) {
        expect((await c.wait(id, 30_000)).status).toBe("completed");
        expect(seen.answered.get(id)).toBe(t.owners[partitionOf(id, PARTITIONS)]);
      }
      expect(new Set(seen.answered.values()).size).toBeGreaterThan(1);
    } finally {
      seen.stop();
    }
  }, 90_000);

  it("refuses submits at every supervisor while the lease holder's admission throttle holds", async () => {
    const leaseHolder = await leaseHolderNow();
    const seen = submitAnswers();
    const throttle = (forMs: number) =>
      call(
        c.nc,
        "sup.admission.throttle",
        { belowPriority: 5, forMs, reason: "test" },
        { sender: "t", timeoutMs: 5000 },
      );
    try {
      await throttle(60_000);
      // The others follow the lease holder's setting within one watch delivery.
      await until("12 submits in a row refused", async () => {
        seen.refused.length = 0;
        for (let i = 0; i < 12; i++) {
          const e = await submit(fanTeam("throttled-team", 1, 10), { priority: 1 }).catch((x: unknown) => x);
          if (!(e instanceof ThrottledError)) return false;
        }
        return true;
      });
      const refusers = new Set(seen.refused.filter((r) => r.code === "THROTTLED").map((r) => r.sender));
      expect([...refusers].some((s) => s !== leaseHolder)).toBe(true);
      // Above the priority, admitted; once lifted, admitted everywhere.
      const high = await submit(fanTeam("throttled-team", 1, 10), { priority: 5 });
      await throttle(0);
      await until("12 submits in a row admitted", async () => {
        for (let i = 0; i < 12; i++) {
          const e = await submit(fanTeam("throttled-team", 1, 10), { priority: 1 }).catch((x: unknown) => x);
          if (e instanceof ThrottledError) return false;
        }
        return true;
      });
      expect((await c.wait(high.workflowId, 30_000)).status).toBe("completed");
    } finally {
      seen.stop();
      await throttle(0);
    }
  }, 90_000);

  it("releases a workflow waiting for one whose partition another supervisor holds", async () => {
    const t = (await table()) as PartitionTable;
    const seen = submitAnswers();
    try {
      // A slow dependency A, then dependents until one was answered by a supervisor other than
      // A's holder: A's end, applied there, must release it.
      const a = (await submit(fanTeam("dep-a-team", 1, 3000))).workflowId;
      const holderOfA = t.owners[partitionOf(a, PARTITIONS)];
      const dependents: string[] = [];
      while (!dependents.some((id) => seen.answered.get(id) !== holderOfA)) {
        expect(dependents.length).toBeLessThan(40);
        const { workflowId } = await submit(fanTeam("dep-b-team", 1, 10), { after: [a] });
        await until("the submit's answer seen", () => seen.answered.get(workflowId));
        dependents.push(workflowId);
      }
      expect((await c.wait(a, 30_000)).status).toBe("completed");
      for (const id of dependents) expect((await c.wait(id, 30_000)).status).toBe("completed");
    } finally {
      seen.stop();
    }
  }, 90_000);

  it("moves a leaving supervisor's partitions to the others at once, and a newcomer's share to it once settled", async () => {
    const before = (await table()) as PartitionTable;
    const [first, b, leaver] = before.members as [string, string, string];
    await c.stack.processes.get(leaver)?.stop();
    const left = await settledOn([first, b], 10_000);
    // Only the leaver's partitions moved.
    for (let p = 0; p < PARTITIONS; p++) if (before.owners[p] !== leaver) expect(left.owners[p]).toBe(before.owners[p]);

    const [d] = idsTakingShares([first, b], "sup-d") as [string];
    await c.stack.startSupervisor(d);
    const joined = await settledOn([first, b, d]);
    // Only what the newcomer now ranks first for moved, and it moved to the newcomer.
    for (let p = 0; p < PARTITIONS; p++) {
      if (joined.owners[p] !== d) expect(joined.owners[p]).toBe(left.owners[p]);
    }
    const id = await c.submit(fanTeam("after-join-team", 2, 20));
    expect((await c.wait(id, 30_000)).status).toBe("completed");
  }, 60_000);

  it("gives a killed supervisor's partitions to the others after the TTL", async () => {
    const before = (await table()) as PartitionTable;
    const victim = before.members.find((m) => m.startsWith("sup-d")) as string;
    const survivors = before.members.filter((m) => m !== victim);
    const killedAt = Date.now();
    await c.stack.processes.get(victim)?.kill("SIGKILL");
    await settledOn(survivors, 20_000, [victim]);
    // For the reader: about the TTL (leaseTtlMs 1,500 here) plus a tick.
    process.stdout.write(`partitions of a killed supervisor taken over in ${Date.now() - killedAt} ms\n`);
    const id = await c.submit(fanTeam("after-kill-team", 2, 20));
    expect((await c.wait(id, 30_000)).status).toBe("completed");
  }, 60_000);
});
