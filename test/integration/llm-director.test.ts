/**
 * llm directors on a real stack, against a stand-in for a model provider (test/helpers/llm-standin.ts):
 * the model's tool calls become delegations through the supervisor's policy, their outcomes go
 * back as tool messages, and the call journal makes a director whose host is killed mid-
 * conversation go on from the turns it completed, without calling the model for them again.
 */

import type { TeamInput } from "@cadre/protocol";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { fastConfig, recordEvents, startCluster, type TestCluster, until } from "../helpers/cluster.js";
import { type LlmStandin, type RecordedRequest, startLlmStandin } from "../helpers/llm-standin.js";

const KEY = "sk-standin-director-5a5a5a5a5a5a";

type Message = { role: string; content: string | null; tool_call_id?: string; tool_calls?: unknown[] };
type Body = { model: string; messages: Message[]; tools?: { function: { name: string; parameters: unknown } }[] };
const body = (r: RecordedRequest | undefined): Body => r?.body as Body;

const llm = (extra: Record<string, unknown>) => ({
  type: "llm" as const,
  provider: "standin",
  model: "standin-model",
  prompt: "{{input}}",
  maxTokens: 200,
  ...extra,
});

/** A planner that may delegate to writers, and (a cycle) to planners. */
const planning = (name: string): TeamInput => ({
  name,
  root: "planner",
  input: { topic: "queues" },
  kinds: {
    planner: {
      role: "director",
      behaviour: llm({ system: "You plan, delegate, then summarise.", delegates: ["writer", "planner"], maxTurns: 4 }),
      output: { type: "object", required: ["summary"] },
    },
    writer: {
      role: "agent",
      description: "Writes one paragraph on a topic.",
      input: { type: "object", required: ["topic"], properties: { topic: { type: "string" } } },
      behaviour: llm({ prompt: "Write about {{input.topic}}." }),
      output: { type: "object", required: ["paragraph"] },
    },
  },
});

describe("llm directors against a stand-in provider", () => {
  let standin: LlmStandin;
  let c: TestCluster;

  beforeAll(async () => {
    standin = await startLlmStandin({ apiKey: KEY });
    c = await startCluster({
      hosts: 2,
      env: { CADRE_TEST_LLM_KEY: KEY },
      config: {
        ...fastConfig,
        llm: { providers: { standin: { baseURL: standin.baseURL, apiKeyEnv: "CADRE_TEST_LLM_KEY" } } },
      },
    });
  }, 60_000);
  afterAll(async () => {
    await c?.stop();
    await standin?.stop();
  });

  it("delegates through tool calls; a cycle and a bad input come back to the model as typed errors", async () => {
    standin.script(
      {
        toolCalls: [
          { name: "writer", arguments: { topic: "ordering" } },
          { name: "writer", arguments: { subject: "no topic" } },
          { name: "planner", arguments: { topic: "recursion" } },
        ],
      },
      { answer: { paragraph: "Queues keep order per partition." } },
      { answer: { summary: "one paragraph written; the rest was refused" } },
    );
    const before = standin.requests.length;
    const w = await c.wait(await c.submit(planning("planning")));
    expect(w.status, c.tail()).toBe("completed");
    expect(w.output).toEqual({ summary: "one paragraph written; the rest was refused" });
    // The root and the one writer: the refused calls created nothing.
    expect(w.tasks).toMatchObject({ total: 2, completed: 2, failed: 0 });
    expect(w.usage?.requests).toBe(3);

    const [turn0, writer, turn1] = standin.requests.slice(before).map(body);
    // Each kind the planner delegates to is a tool, with the kind's description and input schema.
    expect(turn0?.tools?.map((t) => t.function.name)).toEqual(["writer", "planner"]);
    expect(turn0?.tools?.[0]?.function).toMatchObject({
      description: "Writes one paragraph on a topic.",
      parameters: { required: ["topic"] },
    });
    expect(writer?.messages.at(-1)?.content).toBe("Write about ordering.");
    // Turn 1 sees the assistant's calls and one tool message per call, in order.
    const tools = (turn1?.messages ?? []).filter((m) => m.role === "tool").map((m) => JSON.parse(m.content ?? ""));
    expect(tools).toHaveLength(3);
    expect(tools[0]).toEqual({ output: { paragraph: "Queues keep order per partition." } });
    expect(tools[1]).toMatchObject({ error: { code: "INVALID_INPUT" } });
    expect(tools[2]).toMatchObject({ error: { code: "CIRCULAR_DELEGATION" } });
    expect(turn1?.messages.find((m) => m.role === "assistant")?.tool_calls).toHaveLength(3);

    const records = await c.taskRecords(w.workflowId);
    expect(records.map((r) => r.task.kind)).toEqual(["planner", "writer"]);
    expect(records.find((r) => r.task.kind === "planner")?.usage?.requests).toBe(2);
  });

  it("fails a director that keeps calling tools past maxTurns, typed and not retried", async () => {
    const team = planning("looping");
    const planner = team.kinds.planner;
    if (planner?.behaviour.type !== "llm") throw new Error("the planner is an llm kind");
    planner.behaviour.maxTurns = 2;
    standin.script(
      { toolCalls: [{ name: "planner", arguments: {} }] },
      { toolCalls: [{ name: "planner", arguments: {} }] },
    );
    const before = standin.requests.length;
    const w = await c.wait(await c.submit(team));
    expect(w.status).toBe("failed");
    expect(w.error).toMatchObject({ code: "BEHAVIOUR_FAILED", retryable: false });
    expect(w.error?.message).toContain("maxTurns (2)");
    expect(standin.requests.length - before).toBe(2);
  });

  it("kill -9 of the director's host mid-conversation: the other host replays the journal and pays each turn once", async () => {
    const team: TeamInput = {
      name: "journaled",
      root: "lead",
      input: { topic: "failover" },
      kinds: {
        lead: {
          role: "director",
          behaviour: llm({ delegates: ["slow"], maxTurns: 5 }),
          output: { type: "object", required: ["summary"] },
        },
        slow: { role: "agent", behaviour: { type: "script", sleepMs: 2500, output: { done: "{{input.step}}" } } },
      },
    };
    standin.script(
      { toolCalls: [{ name: "slow", arguments: { step: 1 } }] },
      { toolCalls: [{ name: "slow", arguments: { step: 2 } }] },
      { answer: { summary: "both steps done" } },
    );
    const rec = recordEvents(c.nc);
    const before = standin.requests.length;
    const workflowId = await c.submit(team);
    const root = `${workflowId}-r`;
    // Turn 1's answer is journaled before its subtask is delegated: once that subtask has started,
    // two turns are paid for and the director waits.
    await until(
      "the second subtask to start",
      () => rec.events.find((e) => e.event.type === "TASK_STARTED" && e.event.data.taskId === `${root}-1`),
      20_000,
    );
    expect(standin.requests.length - before).toBe(2);
    const started = rec.events.filter((e) => e.event.type === "TASK_STARTED" && e.event.data.taskId === root);
    const victim = String(started.at(-1)?.event.data.hostId);
    await c.stack.processes.get(victim)?.kill("SIGKILL");

    const w = await c.wait(workflowId, 60_000);
    expect(w.status, c.tail()).toBe("completed");
    expect(w.output).toEqual({ summary: "both steps done" });
    // Three turns, each paid once: the two before the kill were replayed from the journal.
    expect(standin.requests.length - before).toBe(3);
    const replayed = rec.events
      .filter((e) => e.event.type === "LLM_CALL_REPLAYED" && e.event.data.taskId === root)
      .map((e) => e.event.data as { turn: number; paidBy: string });
    expect(replayed.map((r) => r.turn).sort()).toEqual([0, 1]);
    expect(new Set(replayed.map((r) => r.paidBy))).toEqual(new Set([victim]));
    // The task's usage counts every turn once, replayed or not.
    const lead = (await c.taskRecords(workflowId)).find((r) => r.task.taskId === root);
    expect(lead?.usage?.requests).toBe(3);
    expect(lead?.applied?.hostId).not.toBe(victim);
    rec.stop();
  }, 90_000);

  it("never writes the API key in a log line", () => {
    for (const [service, lines] of c.logs) {
      for (const line of lines) expect(line.includes(KEY), `${service} logged the key`).toBe(false);
    }
  });
});
