/**
 * The stand-in LLM provider (test/helpers/llm-standin.ts), driven over real HTTP by the official
 * `openai` client, so that what later tests build on it is what that client actually does:
 * scripted answers, usage and its bill, retries on 429 (honouring Retry-After) and 500, no retry
 * on 401, streaming, tool calls, malformed bodies, timeouts and what the requests carried.
 */

import OpenAI from "openai";
import { afterEach, describe, expect, it } from "vitest";
import { type LlmStandin, STANDIN_MODEL, splitContent, startLlmStandin } from "../helpers/llm-standin.js";

const API_KEY = "sk-standin-test";
const MODEL = "gpt-standin";
const MESSAGES = [
  { role: "system" as const, content: "Answer in JSON." },
  { role: "user" as const, content: "Plan the release." },
];

const started: LlmStandin[] = [];

afterEach(async () => {
  await Promise.all(started.splice(0).map((s) => s.stop()));
});

/** A stand-in expecting {@link API_KEY}, stopped after the test. */
async function standin(): Promise<LlmStandin> {
  const s = await startLlmStandin({ apiKey: API_KEY });
  started.push(s);
  return s;
}

function client(s: LlmStandin, options: { apiKey?: string; maxRetries?: number; timeout?: number } = {}): OpenAI {
  return new OpenAI({ baseURL: s.baseURL, apiKey: API_KEY, maxRetries: 0, ...options });
}

describe("LLM stand-in, through the openai client", () => {
  it("returns a scripted JSON answer and bills its usage", async () => {
    const s = await standin();
    s.script({ answer: { plan: ["build", "ship"] }, usage: { prompt_tokens: 12, completion_tokens: 5 } });
    const completion = await client(s).chat.completions.create({ model: MODEL, messages: MESSAGES });
    expect(completion.object).toBe("chat.completion");
    expect(completion.model).toBe(MODEL);
    expect(completion.id).toMatch(/^chatcmpl-\d+$/);
    expect(completion.choices[0]?.finish_reason).toBe("stop");
    expect(JSON.parse(completion.choices[0]?.message.content ?? "")).toEqual({ plan: ["build", "ship"] });
    expect(completion.usage).toEqual({ prompt_tokens: 12, completion_tokens: 5, total_tokens: 17 });
    expect(s.billed).toEqual({ promptTokens: 12, completionTokens: 5, calls: 1 });
  });

  it("answers the fallback once the script is spent, with rough usage", async () => {
    const s = await standin();
    s.script({ answer: "first" });
    const c = client(s);
    const first = await c.chat.completions.create({ model: MODEL, messages: MESSAGES });
    const second = await c.chat.completions.create({ model: MODEL, messages: MESSAGES });
    expect(first.choices[0]?.message.content).toBe("first");
    expect(second.choices[0]?.message.content).toBe('{"ok":true}');
    const prompt = Math.ceil(JSON.stringify(MESSAGES).length / 4);
    expect(first.usage).toEqual({ prompt_tokens: prompt, completion_tokens: 2, total_tokens: prompt + 2 });
    expect(s.billed).toEqual({ promptTokens: 2 * prompt, completionTokens: 2 + 3, calls: 2 });
    s.setFallback({ answer: "changed" });
    const third = await c.chat.completions.create({ model: MODEL, messages: MESSAGES });
    expect(third.choices[0]?.message.content).toBe("changed");
  });

  it("has a 429 with Retry-After: 1 retried by the client after about a second", async () => {
    const s = await standin();
    s.script({ status: 429, retryAfterSeconds: 1 }, { answer: "after the wait" });
    const completion = await client(s, { maxRetries: 2 }).chat.completions.create({ model: MODEL, messages: MESSAGES });
    expect(completion.choices[0]?.message.content).toBe("after the wait");
    expect(s.requests).toHaveLength(2);
    const [first, second] = s.requests;
    expect((second?.at ?? 0) - (first?.at ?? 0)).toBeGreaterThanOrEqual(900);
    expect(second?.headers["x-stainless-retry-count"]).toBe("1");
    expect(s.billed.calls).toBe(1);
  });

  it("sends a 429 in OpenAI's error shape, which the client surfaces as RateLimitError", async () => {
    const s = await standin();
    s.script({ status: 429, retryAfterSeconds: 7 });
    const error = await client(s)
      .chat.completions.create({ model: MODEL, messages: MESSAGES })
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(OpenAI.RateLimitError);
    const rateLimit = error as InstanceType<typeof OpenAI.RateLimitError>;
    expect(rateLimit.status).toBe(429);
    expect(rateLimit.code).toBe("rate_limit_exceeded");
    expect(rateLimit.headers.get("retry-after")).toBe("7");
    expect(rateLimit.error).toEqual({
      message: "Rate limit reached (stand-in)",
      type: "requests",
      param: null,
      code: "rate_limit_exceeded",
    });
    expect(s.billed.calls).toBe(0);
  });

  it("has a 500 retried by the client", async () => {
    const s = await standin();
    s.script({ status: 500, error: { message: "boom", type: "server_error" } }, { answer: "recovered" });
    const completion = await client(s, { maxRetries: 1 }).chat.completions.create({ model: MODEL, messages: MESSAGES });
    expect(completion.choices[0]?.message.content).toBe("recovered");
    expect(s.requests).toHaveLength(2);
  });

  it("refuses a wrong key with 401, which the client throws at once without retrying", async () => {
    const s = await standin();
    s.script({ answer: "never sent" });
    const wrong = client(s, { apiKey: "sk-wrong", maxRetries: 2 });
    const error = await wrong.chat.completions.create({ model: MODEL, messages: MESSAGES }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(OpenAI.AuthenticationError);
    expect((error as InstanceType<typeof OpenAI.AuthenticationError>).status).toBe(401);
    expect((error as InstanceType<typeof OpenAI.AuthenticationError>).code).toBe("invalid_api_key");
    expect(s.requests).toHaveLength(1);
    expect(s.pending()).toBe(1); // the refused request consumed no step
    const [request] = s.requests;
    expect(request?.headers.authorization).toBe("Bearer sk-wrong");
    // Kept for checks like the one above, but out of whatever prints the request.
    expect(Object.keys(request?.headers ?? {})).not.toContain("authorization");
    expect(JSON.stringify(request)).not.toContain("sk-wrong");
  });

  it("streams an answer that reassembles to the content, with usage when asked", async () => {
    const s = await standin();
    const content = "The release goes out on Friday, after the soak test.";
    s.script({ answer: content, usage: { prompt_tokens: 20, completion_tokens: 11 } });
    const stream = await client(s).chat.completions.create({
      model: MODEL,
      messages: MESSAGES,
      stream: true,
      stream_options: { include_usage: true },
    });
    let text = "";
    let deltas = 0;
    let finish: string | null = null;
    let usage: OpenAI.CompletionUsage | undefined;
    for await (const chunk of stream) {
      expect(chunk.object).toBe("chat.completion.chunk");
      const choice = chunk.choices[0];
      if (choice?.delta.content) {
        text += choice.delta.content;
        deltas += 1;
      }
      if (choice?.finish_reason) finish = choice.finish_reason;
      if (chunk.usage) usage = chunk.usage;
    }
    expect(text).toBe(content);
    expect(deltas).toBe(splitContent(content).length);
    expect(deltas).toBeGreaterThan(1);
    expect(finish).toBe("stop");
    expect(usage).toEqual({ prompt_tokens: 20, completion_tokens: 11, total_tokens: 31 });
    expect(s.billed).toEqual({ promptTokens: 20, completionTokens: 11, calls: 1 });
  });

  it("streams no usage chunk unless asked", async () => {
    const s = await standin();
    s.script({ answer: "short" });
    const stream = await client(s).chat.completions.create({ model: MODEL, messages: MESSAGES, stream: true });
    const chunks = [];
    for await (const chunk of stream) chunks.push(chunk);
    expect(chunks.map((c) => c.choices[0]?.delta.content ?? "").join("")).toBe("short");
    expect(chunks.some((c) => c.usage)).toBe(false);
    expect(s.billed.calls).toBe(1);
  });

  it("returns tool calls with their names and JSON arguments", async () => {
    const s = await standin();
    s.script({
      toolCalls: [
        { name: "search", arguments: { query: "release notes" } },
        { name: "notify", arguments: { team: "ops", urgent: true } },
      ],
    });
    const tools: OpenAI.ChatCompletionTool[] = [
      { type: "function", function: { name: "search", parameters: { type: "object" } } },
      { type: "function", function: { name: "notify", parameters: { type: "object" } } },
    ];
    const completion = await client(s).chat.completions.create({ model: MODEL, messages: MESSAGES, tools });
    const choice = completion.choices[0];
    expect(choice?.finish_reason).toBe("tool_calls");
    const calls = (choice?.message.tool_calls ?? []).map((call) => {
      if (call.type !== "function") throw new Error(`unexpected tool call type ${call.type}`);
      return { id: call.id, name: call.function.name, args: JSON.parse(call.function.arguments) as unknown };
    });
    expect(calls).toEqual([
      { id: "call_1", name: "search", args: { query: "release notes" } },
      { id: "call_2", name: "notify", args: { team: "ops", urgent: true } },
    ]);
    expect(s.billed.calls).toBe(1);
  });

  it("streams tool calls in one delta with their indexes", async () => {
    const s = await standin();
    s.script({ toolCalls: [{ name: "search", arguments: { query: "x" } }] });
    const stream = await client(s).chat.completions.create({ model: MODEL, messages: MESSAGES, stream: true });
    const calls: OpenAI.ChatCompletionChunk.Choice.Delta.ToolCall[] = [];
    let finish: string | null = null;
    for await (const chunk of stream) {
      calls.push(...(chunk.choices[0]?.delta.tool_calls ?? []));
      finish = chunk.choices[0]?.finish_reason ?? finish;
    }
    expect(calls).toEqual([
      { index: 0, id: "call_1", type: "function", function: { name: "search", arguments: '{"query":"x"}' } },
    ]);
    expect(finish).toBe("tool_calls");
  });

  it("makes the client throw a SyntaxError on a body that is not JSON, without retrying or billing", async () => {
    const s = await standin();
    s.script({ malformed: true });
    await expect(
      client(s, { maxRetries: 2 }).chat.completions.create({ model: MODEL, messages: MESSAGES }),
    ).rejects.toThrow(SyntaxError);
    expect(s.requests).toHaveLength(1);
    expect(s.billed.calls).toBe(0);
  });

  it("makes the client throw on a stream whose data is not JSON", async () => {
    const s = await standin();
    s.script({ malformed: true });
    const stream = await client(s).chat.completions.create({ model: MODEL, messages: MESSAGES, stream: true });
    const drain = async () => {
      for await (const _ of stream) {
        // nothing to keep
      }
    };
    await expect(drain()).rejects.toThrow(SyntaxError);
  });

  it("answers a delayed step late enough for the client to time out", async () => {
    const s = await standin();
    s.script(
      // biome-ignore lint/suspicious/noThenProperty: a step, not a function: no thenable
      { delayMs: 5_000, then: { answer: "too late" } },
      // biome-ignore lint/suspicious/noThenProperty: a step, not a function: no thenable
      { delayMs: 50, then: { answer: "in time" } },
    );
    const c = client(s, { timeout: 300 });
    await expect(c.chat.completions.create({ model: MODEL, messages: MESSAGES })).rejects.toBeInstanceOf(
      OpenAI.APIConnectionTimeoutError,
    );
    const completion = await c.chat.completions.create({ model: MODEL, messages: MESSAGES });
    expect(completion.choices[0]?.message.content).toBe("in time");
    expect(s.billed.calls).toBe(1); // the answer nobody waited for is not billed
  });

  it("records the model, the messages and the response_format sent", async () => {
    const s = await standin();
    const responseFormat = {
      type: "json_schema" as const,
      json_schema: {
        name: "plan",
        strict: true,
        schema: { type: "object", properties: { steps: { type: "array", items: { type: "string" } } } },
      },
    };
    await client(s).chat.completions.create({ model: MODEL, messages: MESSAGES, response_format: responseFormat });
    const [request] = s.requests;
    expect(request?.method).toBe("POST");
    expect(request?.path).toBe("/v1/chat/completions");
    expect(request?.headers["content-type"]).toContain("application/json");
    expect(request?.body).toMatchObject({ model: MODEL, messages: MESSAGES, response_format: responseFormat });
  });

  it("lists the stand-in model", async () => {
    const s = await standin();
    const ids: string[] = [];
    for await (const model of client(s).models.list()) ids.push(model.id);
    expect(ids).toEqual([STANDIN_MODEL]);
  });
});
