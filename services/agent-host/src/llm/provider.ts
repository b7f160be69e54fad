/**
 * One model provider as a host sees it: the official `openai` client at the provider's
 * `baseURL`, behind a circuit breaker (per host and provider) and the provider's shared limits
 * (limiter.ts), with each call in a span named as OpenTelemetry's GenAI conventions say
 * (`chat {model}`, `gen_ai.*`) and counted in the `cadre_llm_*` metrics.
 *
 * Failures are typed for the task's retry: the client retries 429, 5xx and lost connections
 * itself (`maxRetries`, honouring Retry-After); what is left of those, timeouts, and an open
 * circuit fail the attempt retryably; a 4xx no retry can fix (a refused key, an unknown model,
 * a malformed request) fails it for good, saying what to fix. The API key is read once from
 * the host's environment or a file and redacted from everything logged.
 */

import { readFileSync } from "node:fs";
import { BehaviourFailedError, CadreError, InvalidConfigError, TimeoutError, type ToolCall } from "@cadre/protocol";
import {
  type Breaker,
  type CadreMetrics,
  endSpan,
  redact,
  redactSecret,
  SpanKind,
  startSpan,
  withContext,
} from "@cadre/runtime";
import OpenAI from "openai";
import type { SharedLimiter } from "./limiter.js";

/** A provider as the configuration declares it (`llm.providers.<name>`). */
export interface LlmProvider {
  baseURL: string;
  baseURLEnv?: string | undefined;
  apiKeyEnv?: string | undefined;
  apiKeyFile?: string | undefined;
  jsonSchema: boolean;
  maxRetries: number;
  stream?: boolean | undefined;
  models?: Record<string, { inputUsdPerMTok: number; outputUsdPerMTok: number }> | undefined;
  limits?: { requestsPerMinute?: number | undefined; tokensPerMinute?: number | undefined; burst: number } | undefined;
}

/** The API key of a provider, from its environment variable or file (redacted from now on). */
export function apiKeyOf(name: string, p: LlmProvider, env: NodeJS.ProcessEnv = process.env): string {
  let key: string | undefined;
  if (p.apiKeyEnv) key = env[p.apiKeyEnv];
  if (!key && p.apiKeyFile) {
    try {
      key = readFileSync(p.apiKeyFile, "utf8").split("\n")[0]?.trim();
    } catch (err) {
      throw new InvalidConfigError(`llm.providers.${name}`, [
        { path: "apiKeyFile", message: `cannot read ${p.apiKeyFile} (${(err as NodeJS.ErrnoException).code})` },
      ]);
    }
  }
  // Local servers (Ollama, llama.cpp) take any key; the client needs one.
  if (!key) return "none";
  redactSecret(key);
  return key;
}

export type ChatMessage = OpenAI.Chat.ChatCompletionMessageParam;
export type ChatTool = OpenAI.Chat.ChatCompletionTool;

/** One call. */
export interface ChatRequest {
  model: string;
  messages: ChatMessage[];
  tools?: ChatTool[] | undefined;
  maxTokens: number;
  temperature?: number | undefined;
  /** The output schema, sent as `response_format: json_schema` when the provider takes it. */
  schema?: { name: string; schema: Record<string, unknown> } | undefined;
  timeoutMs: number;
  signal: AbortSignal;
  /** The text so far, as a streamed answer arrives. */
  onText?: ((text: string) => void) | undefined;
}

/** A completed call. */
export interface ChatAnswer {
  content: string | null;
  toolCalls: ToolCall[];
  inputTokens: number;
  outputTokens: number;
  /** Whether the provider reported the usage (else it is estimated from the sizes, upwards). */
  reported: boolean;
}

/** What every provider of a host shares. */
export interface ProviderDeps {
  metrics?: CadreMetrics | undefined;
  breaker: Breaker;
  limiter?: SharedLimiter | undefined;
}

const bytes = (s: string): number => Buffer.byteLength(s, "utf8");

/**
 * An upper bound of a request's input tokens: its UTF-8 bytes (a byte-level BPE token is at
 * least one byte) plus a few per message for the chat format's framing.
 */
export function promptBound(messages: ChatMessage[], tools: ChatTool[] | undefined): number {
  return bytes(JSON.stringify(messages)) + 8 * messages.length + (tools ? bytes(JSON.stringify(tools)) : 0);
}

/** A provider, shared by every llm actor of a host. */
export class ModelProvider {
  private readonly client: OpenAI;
  /** The endpoint: `baseURLEnv`'s value when the host's environment sets it, else `baseURL`. */
  readonly baseURL: string;

  constructor(
    readonly name: string,
    readonly config: LlmProvider,
    private readonly d: ProviderDeps,
    env: NodeJS.ProcessEnv = process.env,
  ) {
    this.baseURL = (config.baseURLEnv && env[config.baseURLEnv]) || config.baseURL;
    this.client = new OpenAI({
      baseURL: this.baseURL,
      apiKey: apiKeyOf(name, config),
      maxRetries: config.maxRetries,
    });
  }

  /** USD of a call's tokens at the provider's prices for `model` (0 when it lists none). */
  cost(model: string, inputTokens: number, outputTokens: number): number {
    const p = this.config.models?.[model];
    if (!p) return 0;
    return Math.round(((inputTokens * p.inputUsdPerMTok + outputTokens * p.outputUsdPerMTok) / 1e6) * 1e9) / 1e9;
  }

  get limiter(): SharedLimiter | undefined {
    return this.d.limiter;
  }

  /** Makes one call (through the breaker), in a `chat {model}` span. */
  async complete(req: ChatRequest, base: Record<string, unknown>): Promise<ChatAnswer> {
    const url = new URL(this.baseURL);
    const { span, ctx } = startSpan(
      `chat ${req.model}`,
      {
        "gen_ai.operation.name": "chat",
        "gen_ai.system": "openai",
        "gen_ai.provider.name": this.name,
        "gen_ai.request.model": req.model,
        "gen_ai.request.max_tokens": req.maxTokens,
        ...(req.temperature !== undefined ? { "gen_ai.request.temperature": req.temperature } : {}),
        "server.address": url.hostname,
        "server.port": Number(url.port) || (url.protocol === "https:" ? 443 : 80),
      },
      { kind: SpanKind.CLIENT },
    );
    const began = performance.now();
    let outcome = "failed";
    let error: unknown;
    try {
      const answer = await withContext(ctx, () => this.d.breaker.call(() => this.request(req, base)));
      outcome = "ok";
      span.setAttributes({
        "gen_ai.usage.input_tokens": answer.inputTokens,
        "gen_ai.usage.output_tokens": answer.outputTokens,
        "gen_ai.response.finish_reasons": [answer.toolCalls.length > 0 ? "tool_calls" : "stop"],
      });
      const m = this.d.metrics;
      m?.llmTokens.inc({ direction: "input", model: req.model }, answer.inputTokens);
      m?.llmTokens.inc({ direction: "output", model: req.model }, answer.outputTokens);
      m?.llmCostUsd.inc({ model: req.model }, this.cost(req.model, answer.inputTokens, answer.outputTokens));
      return answer;
    } catch (err) {
      error = err;
      throw err;
    } finally {
      this.d.metrics?.llmCalls.inc({ model: req.model, outcome });
      this.d.metrics?.llmRequestSeconds.observe({ model: req.model, outcome }, (performance.now() - began) / 1000);
      endSpan(span, error);
    }
  }

  private async request(req: ChatRequest, base: Record<string, unknown>): Promise<ChatAnswer> {
    const body = {
      model: req.model,
      messages: req.messages,
      max_tokens: req.maxTokens,
      ...(req.temperature !== undefined ? { temperature: req.temperature } : {}),
      ...(req.tools && req.tools.length > 0 ? { tools: req.tools } : {}),
      ...(req.schema && this.config.jsonSchema
        ? { response_format: { type: "json_schema" as const, json_schema: req.schema } }
        : {}),
    };
    const options = { signal: req.signal, timeout: req.timeoutMs };
    try {
      if (this.config.stream === false) {
        const c = await this.client.chat.completions.create(body, options);
        const message = c.choices[0]?.message;
        const toolCalls = (message?.tool_calls ?? []).flatMap((t) =>
          t.type === "function" ? [{ id: t.id, type: "function" as const, function: t.function }] : [],
        );
        return this.answer(req, message?.content ?? null, toolCalls, c.usage);
      }
      const stream = await this.client.chat.completions.create(
        { ...body, stream: true, stream_options: { include_usage: true } },
        options,
      );
      let text = "";
      const calls: ToolCall[] = [];
      let usage: OpenAI.CompletionUsage | undefined;
      for await (const chunk of stream) {
        if (chunk.usage) usage = chunk.usage;
        const delta = chunk.choices[0]?.delta;
        if (!delta) continue;
        if (delta.content) {
          text += delta.content;
          req.onText?.(text);
        }
        for (const t of delta.tool_calls ?? []) {
          calls[t.index] ??= { id: "", type: "function", function: { name: "", arguments: "" } };
          const call = calls[t.index] as ToolCall;
          if (t.id) call.id = t.id;
          if (t.function?.name) call.function.name += t.function.name;
          if (t.function?.arguments) call.function.arguments += t.function.arguments;
        }
      }
      return this.answer(req, calls.length > 0 && text === "" ? null : text, calls.filter(Boolean), usage);
    } catch (err) {
      throw failure(err, { ...base, provider: this.name, model: req.model }, req.timeoutMs);
    }
  }

  private answer(
    req: ChatRequest,
    content: string | null,
    toolCalls: ToolCall[],
    usage: OpenAI.CompletionUsage | undefined | null,
  ): ChatAnswer {
    if (usage) {
      return {
        content,
        toolCalls,
        inputTokens: usage.prompt_tokens,
        outputTokens: usage.completion_tokens,
        reported: true,
      };
    }
    // No usage reported: count upwards (the bound of the prompt, the answer's bytes).
    return {
      content,
      toolCalls,
      inputTokens: promptBound(req.messages, req.tools),
      outputTokens: bytes(content ?? "") + bytes(JSON.stringify(toolCalls)),
      reported: false,
    };
  }
}

/** Which errors count against a provider's circuit: what passes with time (5xx, timeouts, lost connections). */
export function isProviderFailure(err: unknown): boolean {
  return err instanceof CadreError && err.retryable && err.code !== "CIRCUIT_OPEN";
}

/** The typed error of a failed call: retryable unless retrying cannot help. */
function failure(err: unknown, base: Record<string, unknown>, timeoutMs: number): Error {
  if (err instanceof OpenAI.APIConnectionTimeoutError) return new TimeoutError(`model call (${base.model})`, timeoutMs);
  if (err instanceof OpenAI.APIUserAbortError) return err;
  if (err instanceof OpenAI.APIError && err.status !== undefined) {
    const status = err.status;
    const said = redact(err.message).slice(0, 500);
    // 408, 409, 429 and 5xx pass with time (the client already retried them); other 4xx do not.
    const passes = status === 408 || status === 409 || status === 429 || status >= 500;
    const fix =
      status === 401 || status === 403
        ? `the provider refused the API key: check llm.providers.${base.provider}'s apiKeyEnv or apiKeyFile`
        : status === 404
          ? `the provider does not know model "${base.model}" (or the baseURL is wrong)`
          : passes
            ? "the provider is overloaded or failing; the task is tried again after its backoff"
            : "the provider refused the request";
    return new BehaviourFailedError(
      `model call failed with ${status}: ${said}; ${fix}`,
      { ...base, status },
      { retryable: passes },
    );
  }
  // Connection refused, DNS, a body that is not JSON: try again later.
  const said = redact(err instanceof Error ? err.message : String(err)).slice(0, 500);
  return new BehaviourFailedError(`model call failed: ${said}`, base);
}
