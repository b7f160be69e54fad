import { BUCKETS, type JournalEntry, llmKeys } from "@cadre/protocol";
import type { KV } from "@nats-io/kv";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { CallJournal } from "./call-journal.js";
import { startTwoHosts, type TwoHosts } from "./testing/two-hosts.js";

/** A completed call of `turn`, as attempt `attempt` of `hostId` made it. */
const entry = (turn: number, content: string, hostId = "host-a", attempt = 1): JournalEntry => ({
  turn,
  model: "gpt-test",
  content,
  toolCalls: [],
  usage: { inputTokens: 100 + turn, outputTokens: 20, costUsd: 0.0012, requests: 1 },
  hostId,
  attempt,
  at: 1_700_000_000_000 + turn,
});

describe("CallJournal over a real JetStream KV bucket", () => {
  /** Two connections: two attempts of a task on two hosts. */
  let hosts: TwoHosts;
  const buckets = (): Promise<[KV, KV]> => hosts.bucket(BUCKETS.llm);

  beforeAll(async () => {
    hosts = await startTwoHosts("call-journal-test");
  });
  afterAll(async () => {
    await hosts?.stop();
  });

  it("returns a recorded call by task and turn, and nothing for a turn no attempt completed", async () => {
    const [kv1, kv2] = await buckets();
    const journal = new CallJournal(kv1);
    const e0 = entry(0, "first answer");
    const e1: JournalEntry = {
      ...entry(1, ""),
      content: null,
      toolCalls: [{ id: "call-1", type: "function", function: { name: "read_file", arguments: '{"path":"a.ts"}' } }],
    };
    expect(await journal.record("t1", e0)).toEqual(e0);
    expect(await journal.record("t1", e1)).toEqual(e1);
    expect(await journal.get("t1", 0)).toEqual(e0);
    expect(await journal.get("t1", 1)).toEqual(e1);
    expect(await journal.get("t1", 2)).toBeUndefined();
    expect(await journal.get("t2", 0)).toBeUndefined();
    // An entry that breaks the schema is refused, not taken for a concurrent record.
    await expect(journal.record("t1", { ...entry(2, "bad"), attempt: 0 })).rejects.toMatchObject({
      code: "PROTOCOL_ERROR",
    });
    expect(await journal.get("t1", 2)).toBeUndefined();
    // Another host's attempt reads the same journal.
    expect(await new CallJournal(kv2).get("t1", 1)).toEqual(e1);
  });

  it("keeps the first record of a turn: a later one gets the first back", async () => {
    const [kv1, kv2] = await buckets();
    const first = new CallJournal(kv1);
    const second = new CallJournal(kv2);
    const original = entry(0, "the answer paid for first", "host-a", 1);
    await first.record("t1", original);
    const replay = await second.record("t1", entry(0, "a second answer", "host-b", 2));
    expect(replay).toEqual(original);
    expect(await second.get("t1", 0)).toEqual(original);
    expect(await first.get("t1", 0)).toEqual(original);
  });

  it("gives two attempts recording the same turn at once the same answer", async () => {
    const [kv1, kv2] = await buckets();
    const a = new CallJournal(kv1);
    const b = new CallJournal(kv2);
    for (let turn = 0; turn < 10; turn++) {
      const [ra, rb] = await Promise.all([
        a.record("t1", entry(turn, `a's answer ${turn}`, "host-a", 1)),
        b.record("t1", entry(turn, `b's answer ${turn}`, "host-b", 2)),
      ]);
      expect(rb).toEqual(ra);
      expect(await a.get("t1", turn)).toEqual(ra);
    }
    // Also where a forgotten turn was purged (its create goes at the purge's revision).
    expect(await a.forget("t1")).toBe(10);
    const [ra, rb] = await Promise.all([
      a.record("t1", entry(0, "a's retry", "host-a", 3)),
      b.record("t1", entry(0, "b's retry", "host-b", 4)),
    ]);
    expect(rb).toEqual(ra);
    expect(["a's retry", "b's retry"]).toContain(ra.content);
    expect(await b.get("t1", 0)).toEqual(ra);
  });

  it("forgets every turn of one task only, says how many, and records anew afterwards", async () => {
    const [kv1, kv2] = await buckets();
    const journal = new CallJournal(kv1);
    for (let turn = 0; turn < 3; turn++) await journal.record("t1", entry(turn, `t1 answer ${turn}`));
    // Other tasks, one whose id starts like it.
    await journal.record("t2", entry(0, "t2 answer 0"));
    await journal.record("t1x", entry(0, "t1x answer 0"));
    await journal.record("t1x", entry(1, "t1x answer 1"));

    expect(await new CallJournal(kv2).forget("t1")).toBe(3);
    for (let turn = 0; turn < 3; turn++) expect(await journal.get("t1", turn)).toBeUndefined();
    expect((await kv1.get(llmKeys.journal("t1", 0)))?.operation).toBe("PURGE");
    expect(await journal.get("t2", 0)).toEqual(entry(0, "t2 answer 0"));
    expect(await journal.get("t1x", 0)).toEqual(entry(0, "t1x answer 0"));
    expect(await journal.get("t1x", 1)).toEqual(entry(1, "t1x answer 1"));
    // Nothing left to forget.
    expect(await journal.forget("t1")).toBe(0);
    expect(await journal.forget("never-ran")).toBe(0);

    // The retry asks anew: its answers are recorded, not the forgotten ones returned.
    const anew = entry(0, "asked anew", "host-b", 2);
    expect(await journal.record("t1", anew)).toEqual(anew);
    expect(await journal.get("t1", 0)).toEqual(anew);
    expect(await journal.record("t1", entry(0, "a late duplicate"))).toEqual(anew);
    expect(await journal.get("t1", 1)).toBeUndefined();
    expect(await journal.forget("t1")).toBe(1);
    expect(await journal.get("t2", 0)).toEqual(entry(0, "t2 answer 0"));
  });
});
