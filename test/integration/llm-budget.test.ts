/**
 * Budgets and provider limits of llm agents, shared by every host, on a real stack against a
 * stand-in for a model provider (test/helpers/llm-standin.ts): a budget is reserved before each
 * call by compare-and-set in KV, so agents on two hosts calling at once never overspend it, and a
 * provider's requests-per-minute hold across hosts (one bucket in NATS).
 */

import { BUCKETS, type Ledger, LedgerSchema, llmKeys, type TeamInput } from "@cadre/protocol";
import { Kvm } from "@nats-io/kv";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { fastConfig, recordEvents, startCluster, type TestCluster, until } from "../helpers/cluster.js";
import { type LlmStandin, startLlmStandin } from "../helpers/llm-standin.js";

const KEY = "sk-standin-budget-0b0b0b0b0b0b";
/** The limited provider lets one request go every 500 ms (120 a minute, a burst of one). */
const GAP_MS = 500;

/** A scripted lead that fans out to `n` llm writers (of `provider`), with `budget` on the team. */
function fan(name: string, n: number, provider: string, budget?: TeamInput["budget"]): TeamInput {
  return {
    name,
    root: "lead",
    ...(budget ? { budget } : {}),
    kinds: {
      lead: {
        role: "lead",
        behaviour: { type: "script", delegate: [{ kind: "writer", count: n, input: { part: "{{index}}" } }] },
      },
      writer: {
        role: "agent",
        replicas: 10,
        behaviour: {
          type: "llm",
          provider,
          model: "standin-model",
          prompt: "Write part {{input.part}}.",
          maxTokens: 50,
        },
        output: { type: "object", required: ["paragraph"] },
      },
    },
  };
}

describe("budgets and provider limits across hosts", () => {
  let standin: LlmStandin;
  let c: TestCluster;

  beforeAll(async () => {
    standin = await startLlmStandin({ apiKey: KEY });
    const provider = { baseURL: standin.baseURL, apiKeyEnv: "CADRE_TEST_LLM_KEY" };
    c = await startCluster({
      hosts: 2,
      env: { CADRE_TEST_LLM_KEY: KEY },
      config: {
        ...fastConfig,
        // Ten writers and two leads in one team.
        orchestration_limits: { max_agents_per_orchestrator: 12 },
        llm: {
          providers: {
            standin: { ...provider, models: { "standin-model": { inputUsdPerMTok: 1, outputUsdPerMTok: 4 } } },
            limited: { ...provider, limits: { requestsPerMinute: 60_000 / GAP_MS, burst: GAP_MS / 60_000 } },
          },
        },
      },
    });
  }, 60_000);
  afterAll(async () => {
    await c?.stop();
    await standin?.stop();
  });

  const ledger = async (workflowId: string): Promise<Ledger | undefined> => {
    const kv = await new Kvm(c.nc).open(BUCKETS.llm);
    const e = await kv.get(llmKeys.ledger(workflowId));
    return e?.operation === "PUT" ? LedgerSchema.parse(e.json()) : undefined;
  };

  it("ten agents on two hosts share a budget of six calls: six are made, four fail BUDGET_EXCEEDED", async () => {
    // Slow answers: the ten calls overlap, so the reservations race.
    // biome-ignore lint/suspicious/noThenProperty: a step, not a function: no thenable
    standin.setFallback({ delayMs: 300, then: { answer: { paragraph: "Some text." } } });
    const rec = recordEvents(c.nc);
    const billed = { ...standin.billed };
    const workflowId = await c.submit(fan("budgeted", 10, "standin", { requests: 6 }));
    await c.wait(workflowId, 60_000);
    // The lead fails with its first failed writer; the others finish after it.
    const writers = await until("every writer to finish", async () => {
      const all = (await c.taskRecords(workflowId)).filter((r) => r.task.kind === "writer");
      return all.length === 10 && all.every((r) => r.status !== "queued") ? all : undefined;
    });
    expect(writers.filter((r) => r.status === "completed")).toHaveLength(6);
    const refused = writers.filter((r) => r.status === "failed");
    expect(refused.map((r) => r.error?.code)).toEqual(Array(4).fill("BUDGET_EXCEEDED"));
    expect(refused[0]?.error).toMatchObject({ retryable: false, data: { limit: 6, dimension: "requests" } });
    // Both hosts worked on the writers.
    const hosts = new Set(
      rec.events
        .filter((e) => e.event.type === "TASK_STARTED" && e.event.data.kind === "writer")
        .map((e) => e.event.data.hostId),
    );
    expect(hosts.size).toBe(2);

    // The stand-in billed six calls, and the ledger holds exactly what it billed.
    const calls = standin.billed.calls - billed.calls;
    const input = standin.billed.promptTokens - billed.promptTokens;
    const output = standin.billed.completionTokens - billed.completionTokens;
    expect(calls).toBe(6);
    const l = await ledger(workflowId);
    expect(l?.spent).toEqual({
      requests: 6,
      inputTokens: input,
      outputTokens: output,
      costUsd: Math.round(((input * 1 + output * 4) / 1e6) * 1e9) / 1e9,
    });
    expect(l?.held).toEqual({});
    // The workflow's usage and budget, as cadre status prints them.
    const status = c.cli("status", workflowId);
    expect(status).toContain(`model calls: 6 requests, ${input} tokens in, ${output} out`);
    expect(status).toContain("(budget: 6 requests)");
    const summary = JSON.parse(c.cli("status", workflowId, "--json")) as { usage: unknown; budget: unknown };
    expect(summary.budget).toEqual({ requests: 6 });
    expect(summary.usage).toMatchObject({ requests: 6, inputTokens: input, outputTokens: output });
    const marks = rec.events
      .filter((e) => e.event.type === "BUDGET_THRESHOLD_REACHED" && e.event.scope === workflowId)
      .map((e) => e.event.data.percent);
    expect(marks.sort((a, b) => Number(a) - Number(b))).toEqual([50, 80, 100]);
    expect(rec.events.filter((e) => e.event.type === "BUDGET_EXCEEDED" && e.event.scope === workflowId)).toHaveLength(
      4,
    );
    rec.stop();
    standin.setFallback({ answer: { paragraph: "Some text." } });
  }, 90_000);

  it("holds a provider's requests per minute across two hosts: one request every 500 ms", async () => {
    const rec = recordEvents(c.nc);
    const before = standin.requests.length;
    const workflowId = await c.submit(fan("limited", 6, "limited"));
    const w = await c.wait(workflowId, 60_000);
    expect(w.status, c.tail()).toBe("completed");
    const at = standin.requests
      .slice(before)
      .map((r) => r.at)
      .sort((a, b) => a - b);
    expect(at).toHaveLength(6);
    // The bucket holds one request and refills one every GAP_MS: request k goes at the earliest
    // k * GAP_MS after the first (a few ms of slack for the HTTP hop of the first).
    for (let k = 1; k < at.length; k++) {
      expect(Number(at[k]) - Number(at[0]), `request ${k}`).toBeGreaterThanOrEqual(k * GAP_MS - 25);
    }
    const hosts = new Set(
      rec.events
        .filter(
          (e) => e.event.type === "TASK_STARTED" && e.event.scope === workflowId && e.event.data.kind === "writer",
        )
        .map((e) => e.event.data.hostId),
    );
    expect(hosts.size).toBe(2);
    rec.stop();
  }, 60_000);

  it("never writes the API key in a log line", () => {
    for (const [service, lines] of c.logs) {
      for (const line of lines) expect(line.includes(KEY), `${service} logged the key`).toBe(false);
    }
  });
});
