import {
  type Amount,
  addUsage,
  BUCKETS,
  BudgetExceededError,
  type TypedEvent,
  type Usage,
  ZERO_USAGE,
} from "@cadre/protocol";
import type { KV } from "@nats-io/kv";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Budgets, type Reservation } from "./budgets.js";
import { startTwoHosts, type TwoHosts } from "./testing/two-hosts.js";

const usage = (u: Partial<Usage>): Usage => ({ ...ZERO_USAGE, ...u });
const amount = (a: Partial<Amount>): Amount => ({ tokens: 0, costUsd: 0, requests: 0, ...a });

/** The events a Budgets instance emitted, and its emit. */
const recorder = () => {
  const events: TypedEvent[] = [];
  return { events, emit: (e: TypedEvent) => void events.push(e) };
};
const ofType = (events: TypedEvent[], type: string) => events.filter((e) => e.type === type);

describe("Budgets: ledgers in a real JetStream KV bucket, changed by compare-and-set", () => {
  /** Two connections: two hosts charging the same ledgers. */
  let hosts: TwoHosts;
  const buckets = (): Promise<[KV, KV]> => hosts.bucket(BUCKETS.llm);
  const call = (id: string, workflowId: string) => ({ id, taskId: `task-${id}`, workflowId });

  beforeAll(async () => {
    hosts = await startTwoHosts("budgets-test");
  });
  afterAll(async () => {
    await hosts?.stop();
  });

  it("lets exactly the limit's worth of 20 concurrent reservations from two hosts through, and settles them into spent", async () => {
    const [kv1, kv2] = await buckets();
    const r1 = recorder();
    const r2 = recorder();
    const host1 = new Budgets(kv1, { now: Date.now, emit: r1.emit });
    const host2 = new Budgets(kv2, { now: Date.now, emit: r2.emit });
    const wf = "wf-race";
    await host1.open(wf, { requests: 6 });
    // Opening again keeps the ledger that is there.
    await host2.open(wf, { requests: 99 });
    expect((await host1.read(wf))?.limit).toEqual({ requests: 6 });

    const scopes = Budgets.scopes(wf, "coder", undefined);
    const calls = Array.from({ length: 20 }, (_, i) => call(`c${i}`, wf));
    const outcomes = await Promise.allSettled(
      calls.map((c, i) =>
        (i % 2 === 0 ? host1 : host2).reserve(c, scopes, amount({ tokens: 50, costUsd: 0.01, requests: 1 }), 60_000),
      ),
    );
    const granted = outcomes.flatMap((o) => (o.status === "fulfilled" ? [o.value] : []));
    const refused = outcomes.flatMap((o) => (o.status === "rejected" ? [o.reason] : []));
    expect(granted).toHaveLength(6);
    expect(refused).toHaveLength(14);
    for (const err of refused) {
      expect(err).toBeInstanceOf(BudgetExceededError);
      expect(err.code).toBe("BUDGET_EXCEEDED");
      expect(err.retryable).toBe(false);
      expect(err.details).toEqual({
        budget: `workflow ${wf}`,
        dimension: "requests",
        limit: 6,
        spent: 0,
        reserved: 6,
        requested: 1,
      });
    }
    const held = await host1.read(wf);
    expect(Object.keys(held?.held ?? {}).sort()).toEqual(granted.map((r) => r.id).sort());

    // Every refusal was announced with its task.
    const exceeded = [...ofType(r1.events, "BUDGET_EXCEEDED"), ...ofType(r2.events, "BUDGET_EXCEEDED")];
    const refusedIds = calls.map((c) => c.id).filter((id) => !granted.some((r) => r.id === id));
    expect(exceeded.map((e) => (e.data as { taskId: string }).taskId).sort()).toEqual(
      refusedIds.map((id) => `task-${id}`).sort(),
    );
    for (const e of exceeded) {
      expect(e.scope).toBe(wf);
      expect(e.data).toMatchObject({ budget: `workflow ${wf}`, dimension: "requests", limit: 6 });
    }

    // Settled concurrently from both hosts, with what each call really used.
    const used = granted.map((_, i) =>
      usage({ inputTokens: 10 + i, outputTokens: 3 * i, costUsd: 0.001 * (i + 1), requests: 1 }),
    );
    await Promise.all(granted.map((r, i) => (i % 2 === 0 ? host2 : host1).settle(r, used[i] ?? ZERO_USAGE)));
    const ledger = await host2.read(wf);
    const sum = used.reduce(addUsage, ZERO_USAGE);
    expect(ledger?.held).toEqual({});
    expect(ledger?.spent).toMatchObject({
      inputTokens: sum.inputTokens,
      outputTokens: sum.outputTokens,
      requests: 6,
    });
    expect(ledger?.spent.costUsd).toBeCloseTo(sum.costUsd, 9);
    // 3, 5 and 6 of 6 requests: each mark announced once, by whichever host crossed it.
    const marks = [...ofType(r1.events, "BUDGET_THRESHOLD_REACHED"), ...ofType(r2.events, "BUDGET_THRESHOLD_REACHED")];
    expect(marks.map((e) => (e.data as { percent: number }).percent).sort((a, b) => a - b)).toEqual([50, 80, 100]);

    // Spent in full: the next call is refused, spent (not held) this time.
    const err = await host1.reserve(call("late", wf), scopes, amount({ requests: 1 }), 60_000).catch((e) => e);
    expect(err).toBeInstanceOf(BudgetExceededError);
    expect(err.details).toMatchObject({ spent: 6, reserved: 0, requested: 1, limit: 6 });
  });

  it("stops counting a reservation once its until has passed, and drops it with the next change", async () => {
    const [kv] = await buckets();
    let now = 1_000;
    const r = recorder();
    const budgets = new Budgets(kv, { now: () => now, emit: r.emit });
    const wf = "wf-expiry";
    await budgets.open(wf, { requests: 2 });
    const scopes = Budgets.scopes(wf, "coder", undefined);
    const one = amount({ requests: 1 });

    await budgets.reserve(call("short", wf), scopes, one, 500);
    await budgets.reserve(call("long", wf), scopes, one, 10_000);
    expect((await budgets.read(wf))?.held).toEqual({
      short: { amount: one, until: 1_500 },
      long: { amount: one, until: 11_000 },
    });
    const full = await budgets.reserve(call("early", wf), scopes, one, 500).catch((e) => e);
    expect(full).toBeInstanceOf(BudgetExceededError);
    expect(full.details).toMatchObject({ reserved: 2 });

    // At its until, "short" no longer counts (its host died mid-call): a new call fits.
    now = 1_500;
    await budgets.reserve(call("after", wf), scopes, one, 500);
    const ledger = await budgets.read(wf);
    expect(Object.keys(ledger?.held ?? {}).sort()).toEqual(["after", "long"]);
    expect(ledger?.spent).toEqual(ZERO_USAGE);

    // Once "after" expires too, settling "long" drops it along with its own hold.
    now = 2_000;
    const long: Reservation = { id: "long", workflowId: wf, scopes };
    await budgets.settle(long, usage({ inputTokens: 7, requests: 1 }));
    const settled = await budgets.read(wf);
    expect(settled?.held).toEqual({});
    expect(settled?.spent).toEqual(usage({ inputTokens: 7, requests: 1 }));
  });

  it("refuses when a kind's limit would pass though the workflow has none, letting go of the workflow's hold", async () => {
    const [kv] = await buckets();
    const r = recorder();
    const budgets = new Budgets(kv, { now: Date.now, emit: r.emit });
    const wf = "wf-kind";
    const scopes = Budgets.scopes(wf, "coder", { tokens: 100 });
    expect(scopes.map((s) => s.label)).toEqual([`workflow ${wf}`, `kind coder of workflow ${wf}`]);

    const first = await budgets.reserve(call("first", wf), scopes, amount({ tokens: 60, requests: 1 }), 60_000);
    expect(Object.keys((await budgets.read(wf))?.held ?? {})).toEqual(["first"]);
    expect(Object.keys((await budgets.read(wf, "coder"))?.held ?? {})).toEqual(["first"]);
    await budgets.settle(first, usage({ inputTokens: 40, outputTokens: 20, requests: 1 }));

    const err = await budgets
      .reserve(call("second", wf), scopes, amount({ tokens: 60, requests: 1 }), 60_000)
      .catch((e) => e);
    expect(err).toBeInstanceOf(BudgetExceededError);
    expect(err.code).toBe("BUDGET_EXCEEDED");
    expect(err.retryable).toBe(false);
    expect(err.details).toEqual({
      budget: `kind coder of workflow ${wf}`,
      dimension: "tokens",
      limit: 100,
      spent: 60,
      reserved: 0,
      requested: 60,
    });
    const workflow = await budgets.read(wf);
    const kind = await budgets.read(wf, "coder");
    expect(workflow?.limit).toBeNull();
    expect(workflow?.held).toEqual({});
    expect(kind?.held).toEqual({});
    // The refused call used nothing.
    expect(workflow?.spent).toEqual(usage({ inputTokens: 40, outputTokens: 20, requests: 1 }));
    expect(kind?.spent).toEqual(usage({ inputTokens: 40, outputTokens: 20, requests: 1 }));
    expect(ofType(r.events, "BUDGET_EXCEEDED")).toEqual([
      {
        type: "BUDGET_EXCEEDED",
        category: "llm",
        scope: wf,
        data: { taskId: "task-second", ...err.details },
      },
    ]);

    // What is left still fits.
    await budgets.reserve(call("third", wf), scopes, amount({ tokens: 40, requests: 1 }), 60_000);
    expect(Object.keys((await budgets.read(wf, "coder"))?.held ?? {})).toEqual(["third"]);
  });

  it("announces 50, 80 and 100% once each as settling passes them", async () => {
    const [kv] = await buckets();
    const r = recorder();
    const budgets = new Budgets(kv, { now: Date.now, emit: r.emit });
    const wf = "wf-marks";
    await budgets.open(wf, { tokens: 100 });
    const scopes = Budgets.scopes(wf, "coder", undefined);
    let i = 0;
    /** One call that uses `tokens`; the percents announced by its settling. */
    const spend = async (tokens: number): Promise<number[]> => {
      const before = r.events.length;
      const res = await budgets.reserve(call(`m${++i}`, wf), scopes, amount({ tokens }), 60_000);
      await budgets.settle(res, usage({ inputTokens: tokens, requests: 1 }));
      return r.events.slice(before).map((e) => {
        expect(e.type).toBe("BUDGET_THRESHOLD_REACHED");
        return (e.data as { percent: number }).percent;
      });
    };
    expect(await spend(40)).toEqual([]);
    expect(await spend(10)).toEqual([50]);
    expect(r.events[0]).toEqual({
      type: "BUDGET_THRESHOLD_REACHED",
      category: "llm",
      scope: wf,
      data: { budget: `workflow ${wf}`, percent: 50, dimension: "tokens", limit: 100, spent: 50 },
    });
    expect(await spend(20)).toEqual([]);
    expect(await spend(10)).toEqual([80]);
    expect(await spend(10)).toEqual([]);
    expect(await spend(10)).toEqual([100]);
    // Past the limit (a call may use less than it reserved, never more than the limit allows
    // it to reserve: a zero-token reservation still fits at 100%): no second announcement.
    expect(await spend(0)).toEqual([]);
    // A failed call settles to nothing and announces nothing.
    const failed = await budgets.reserve(call("failed", wf), scopes, amount({}), 60_000);
    await budgets.settle(failed, ZERO_USAGE);
    expect(r.events.map((e) => (e.data as { percent: number }).percent)).toEqual([50, 80, 100]);
    expect((await budgets.read(wf))?.announced).toBe(100);

    // One call that passes several marks announces each of them, in order.
    const jump = "wf-jump";
    await budgets.open(jump, { tokens: 100 });
    const before = r.events.length;
    const big = await budgets.reserve(
      call("big", jump),
      Budgets.scopes(jump, "coder", undefined),
      amount({ tokens: 90 }),
      60_000,
    );
    await budgets.settle(big, usage({ inputTokens: 90, requests: 1 }));
    expect(r.events.slice(before).map((e) => (e.data as { percent: number }).percent)).toEqual([50, 80]);
  });

  it("never announces a mark for a ledger without a limit", async () => {
    const [kv] = await buckets();
    const r = recorder();
    const budgets = new Budgets(kv, { now: Date.now, emit: r.emit });
    const wf = "wf-unlimited";
    const scopes = Budgets.scopes(wf, "coder", undefined);
    for (let i = 0; i < 5; i++) {
      const res = await budgets.reserve(call(`u${i}`, wf), scopes, amount({ tokens: 1_000_000, requests: 1 }), 60_000);
      await budgets.settle(res, usage({ inputTokens: 1_000_000, costUsd: 50, requests: 1 }));
    }
    const ledger = await budgets.read(wf);
    expect(ledger?.limit).toBeNull();
    expect(ledger?.spent).toEqual(usage({ inputTokens: 5_000_000, costUsd: 250, requests: 5 }));
    expect(ledger?.held).toEqual({});
    expect(ledger?.announced).toBe(0);
    expect(r.events).toEqual([]);
  });
});
