/**
 * llm agents on a real stack, against a stand-in for a model provider (test/helpers/llm-standin.ts:
 * the OpenAI Chat Completions protocol over real HTTP, scripted per test; no provider is
 * reachable from these machines). The hosts read the API key from their environment; it is sent
 * to the provider and appears in no log line. Calls stream (progress to events and hooks), go
 * through a breaker per provider, and are spans and metrics named as OpenTelemetry's GenAI
 * conventions say.
 */

import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { TeamInput } from "@cadre/protocol";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parse } from "yaml";
import { fastConfig, recordEvents, startCluster, type TestCluster, until } from "../helpers/cluster.js";
import { type LlmStandin, startLlmStandin } from "../helpers/llm-standin.js";
import { OTLP_KIND, type OtlpReceiver, startOtlpReceiver } from "../helpers/otlp.js";

const KEY = "sk-standin-0123456789abcdef";
const examples = join(import.meta.dirname, "..", "..", "examples");
const exampleConfig = parse(readFileSync(join(examples, "llm-config.yaml"), "utf8"));
const WRONG_KEY = "sk-wrong-9876543210fedcba";

const team = (name: string, provider = "standin"): TeamInput => ({
  name,
  root: "writer",
  input: { topic: "queues" },
  kinds: {
    writer: {
      role: "agent",
      replicas: 2,
      behaviour: {
        type: "llm",
        provider,
        model: "standin-model",
        system: "You write one-line summaries.",
        prompt: "Summarise {{input.topic}} for task {{task.id}}.",
        maxTokens: 64,
      },
      output: { type: "object", required: ["summary"], properties: { summary: { type: "string" } } },
    },
  },
});

describe("llm agents against a stand-in provider", () => {
  let llm: LlmStandin;
  let c: TestCluster;
  let otlp: OtlpReceiver;
  const dir = mkdtempSync(join(tmpdir(), "cadre-llm-"));
  /** Where the onProgress hook appends what it is given. */
  const progressFile = join(dir, "progress.jsonl");

  beforeAll(async () => {
    llm = await startLlmStandin({ apiKey: KEY });
    otlp = await startOtlpReceiver();
    c = await startCluster({
      hosts: 2,
      env: {
        OTEL_EXPORTER_OTLP_ENDPOINT: otlp.url,
        CADRE_TEST_LLM_KEY: KEY,
        CADRE_TEST_LLM_WRONG_KEY: WRONG_KEY,
        CADRE_LLM_BASE_URL: llm.baseURL,
        CADRE_LLM_API_KEY: KEY,
      },
      config: {
        ...fastConfig,
        // One failed call opens a host's circuit to the provider (for 1 s).
        breakers: { llm_provider: { threshold: 1, resetTimeoutMs: 1000 } },
        host: {
          hooks: [
            { name: "progress", event: "onProgress", command: `cat >> ${progressFile}; echo >> ${progressFile}` },
          ],
        },
        llm: {
          providers: {
            standin: { baseURL: llm.baseURL, apiKeyEnv: "CADRE_TEST_LLM_KEY" },
            flaky: { baseURL: llm.baseURL, apiKeyEnv: "CADRE_TEST_LLM_KEY", maxRetries: 0 },
            "wrong-key": { baseURL: llm.baseURL, apiKeyEnv: "CADRE_TEST_LLM_WRONG_KEY" },
            // The provider examples/llm-team.yaml names, as examples/llm-config.yaml declares it:
            // reached through the two environment variables it reads.
            local: exampleConfig.llm.providers.local,
          },
        },
      },
    });
  }, 60_000);
  afterAll(async () => {
    await c?.stop();
    await llm?.stop();
    await otlp?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it("answers a task through the model: prompt rendered, output schema sent, answer validated", async () => {
    llm.script({ answer: { summary: "Queues decouple producers from consumers." } });
    const before = llm.requests.length;
    const w = await c.wait(await c.submit(team("summary")));
    expect(w.status, c.tail()).toBe("completed");
    expect(w.output).toEqual({ summary: "Queues decouple producers from consumers." });
    const [req] = llm.requests.slice(before);
    expect(req?.path).toBe("/v1/chat/completions");
    const body = req?.body as { model: string; max_tokens: number; messages: { role: string; content: string }[] };
    expect(body.model).toBe("standin-model");
    expect(body.max_tokens).toBe(64);
    expect(body.messages[0]).toEqual({ role: "system", content: "You write one-line summaries." });
    expect(body.messages[1]?.content).toMatch(/^Summarise queues for task \S+\.$/);
    expect(req?.body).toMatchObject({
      response_format: { type: "json_schema", json_schema: { schema: { required: ["summary"] } } },
    });
    expect(req?.headers.authorization).toBe(`Bearer ${KEY}`);
  });

  it("quarantines an agent whose model breaks the output schema; the task is retried and completes", async () => {
    const rec = recordEvents(c.nc);
    llm.script({ answer: "not JSON at all" }, { answer: { summary: "second try" } });
    const w = await c.wait(await c.submit(team("liar")));
    expect(w.status, c.tail()).toBe("completed");
    expect(w.output).toEqual({ summary: "second try" });
    await until("the quarantine", () => rec.events.find((e) => e.event.type === "AGENT_QUARANTINED"));
    rec.stop();
  });

  it("retries a 429 after its Retry-After, and fails at once, typed and not retried, on a refused key", async () => {
    const before = llm.requests.length;
    llm.script(
      { status: 429, error: { message: "slow down" }, retryAfterSeconds: 1 },
      { answer: { summary: "later" } },
    );
    const w = await c.wait(await c.submit(team("patient")));
    expect(w.status, c.tail()).toBe("completed");
    const [first, second] = llm.requests.slice(before);
    expect(Number(second?.at) - Number(first?.at)).toBeGreaterThanOrEqual(900);

    const sent = llm.requests.length;
    const refused = await c.wait(await c.submit(team("refused", "wrong-key")));
    expect(refused.status).toBe("failed");
    expect(refused.error).toMatchObject({ code: "BEHAVIOUR_FAILED", retryable: false });
    expect(refused.error?.message).toContain("401");
    expect(refused.error?.message).toContain("apiKeyEnv");
    // One request: a 401 is retried neither by the client nor by the task.
    expect(llm.requests.length - sent).toBe(1);
  });

  it("runs examples/llm-team.yaml from its two environment variables: an llm editor delegates to two llm agents", async () => {
    const example = parse(readFileSync(join(examples, "llm-team.yaml"), "utf8"));
    const topic = example.input.topic;
    llm.script({
      toolCalls: [
        { name: "writer", arguments: { topic } },
        { name: "reviewer", arguments: { topic } },
      ],
    });
    // What the writer, the reviewer and then the editor answer: one object that fits all three.
    llm.setFallback({ answer: { paragraph: "Queues keep the work.", risks: ["lag", "cost"], summary: "Kept." } });
    const before = llm.requests.length;
    const w = await c.wait(await c.submit(example as TeamInput));
    llm.setFallback({ answer: { ok: true } });
    expect(w.status, c.tail()).toBe("completed");
    expect(w.tasks).toMatchObject({ total: 3, completed: 3 });
    expect(w.budget).toEqual({ requests: 20, tokens: 60_000 });
    expect(w.usage?.requests).toBe(4);
    const sent = llm.requests.slice(before);
    expect(sent.map((r) => (r.body as { model: string }).model)).toEqual(Array(4).fill("llama3.2"));
    expect(sent.every((r) => r.headers.authorization === `Bearer ${KEY}`)).toBe(true);
  });

  it("streams the answer: its progress reaches the events and the onProgress hooks", async () => {
    const rec = recordEvents(c.nc);
    llm.script({ answer: { summary: "Streamed, chunk by chunk, to the end." } });
    const workflowId = await c.submit(team("streamed"));
    const w = await c.wait(workflowId);
    expect(w.status, c.tail()).toBe("completed");
    const root = `${workflowId}-r`;
    const progress = await until("an LLM_PROGRESS event", () =>
      rec.events.find((e) => e.event.type === "LLM_PROGRESS" && e.event.data.taskId === root),
    );
    expect(progress.event.data).toMatchObject({ turn: 0 });
    expect(Number(progress.event.data.chars)).toBeGreaterThan(0);
    const hooked = await until("the hook's payload", () => {
      let text = "";
      try {
        text = readFileSync(progressFile, "utf8");
      } catch {
        return undefined;
      }
      // Two hosts append: a line another host's write cut in two is skipped.
      const lines = text.split("\n").flatMap((l) => {
        try {
          return [JSON.parse(l) as { taskId: string; text: string; workflowId: string }];
        } catch {
          return [];
        }
      });
      return lines.find((p) => p.taskId === root);
    });
    expect(hooked.workflowId).toBe(workflowId);
    // The text so far: a beginning of the answer the stand-in streamed.
    expect(hooked.text.length).toBeGreaterThan(0);
    expect(JSON.stringify({ summary: "Streamed, chunk by chunk, to the end." }).startsWith(hooked.text)).toBe(true);
    rec.stop();
  });

  it("opens the host's circuit to a failing provider; the retry after it closes completes, and no call is made while it is open", async () => {
    const rec = recordEvents(c.nc);
    llm.script({ status: 500, error: { message: "the model server fell over" } }, { answer: { summary: "back" } });
    const before = llm.requests.length;
    const w = await c.wait(await c.submit(team("flaky", "flaky")));
    expect(w.status, c.tail()).toBe("completed");
    const opened = rec.events.find(
      (e) => e.event.type === "CIRCUIT_OPENED" && e.event.data.breaker === "llm_provider:flaky",
    );
    expect(opened, "CIRCUIT_OPENED for llm_provider:flaky").toBeDefined();
    // The failed call and the one that answered: attempts that met the open circuit sent nothing.
    expect(llm.requests.length - before).toBe(2);
    rec.stop();
  });

  it("exports each call as a GenAI span and counts its tokens in cadre_llm_tokens_total", async () => {
    llm.script({ answer: { summary: "Counted." }, usage: { prompt_tokens: 21, completion_tokens: 5 } });
    const workflowId = await c.submit(team("observed"));
    const w = await c.wait(workflowId);
    expect(w.status, c.tail()).toBe("completed");
    const span = await until("the chat span", () =>
      otlp.spans.find((s) => s.name === "chat standin-model" && s.attributes["gen_ai.usage.input_tokens"] === 21),
    );
    expect(span.kind).toBe(OTLP_KIND.client);
    expect(span.attributes).toMatchObject({
      "gen_ai.operation.name": "chat",
      "gen_ai.request.model": "standin-model",
      "gen_ai.request.max_tokens": 64,
      "gen_ai.usage.output_tokens": 5,
      "server.address": "127.0.0.1",
    });
    // Under the task's behaviour span, in the workflow's trace (exported in batches: the parent
    // ends after the call, so it may come in the next one).
    const parent = await until("the chat span's parent", () => otlp.spans.find((s) => s.spanId === span.parentSpanId));
    expect(parent.name).toBe("cadre.behaviour llm");
    expect(parent.traceId).toBe(span.traceId);
    const applied = (await c.taskRecords(workflowId))[0]?.applied?.hostId ?? "";
    const port = c.stack.processes.get(applied)?.healthPort;
    const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
    const tokens = (direction: string) =>
      Number(
        text.match(
          new RegExp(`^cadre_llm_tokens_total\\{direction="${direction}",model="standin-model"\\} (\\d+)`, "m"),
        )?.[1],
      );
    expect(tokens("input")).toBeGreaterThanOrEqual(21);
    expect(tokens("output")).toBeGreaterThanOrEqual(5);
    expect(text).toMatch(/^cadre_llm_calls_total\{model="standin-model",outcome="ok"\} \d+/m);
    expect(text).toMatch(/^cadre_llm_request_seconds_count\{model="standin-model",outcome="ok"\} \d+/m);
  });

  it("never writes the API key in a log line", () => {
    for (const [service, lines] of c.logs) {
      for (const line of lines) {
        expect(line.includes(KEY), `${service} logged the key`).toBe(false);
        expect(line.includes(WRONG_KEY), `${service} logged the wrong key`).toBe(false);
      }
    }
  });
});
