/**
 * The llm behaviour: one Chat Completions call per task through the official `openai` client,
 * to any OpenAI-compatible endpoint (`llm.providers` of the configuration). The system message
 * and the user prompt (a template over the task) go in; the answer is the output: its JSON when
 * it parses, else `{ text }`. Where the provider supports it, the kind's output schema is sent as
 * `response_format: json_schema`; either way the supervisor checks the output against it, so a
 * model that breaks the schema is quarantined like any agent.
 *
 * Failures are typed for the task's retry: the client itself retries 429, 5xx and lost
 * connections (`maxRetries`, honouring Retry-After); what is left of those, and timeouts, fail
 * the attempt retryably (the task comes back after its backoff); a 4xx no retry can fix (a bad
 * key, an unknown model, a malformed request) fails it for good, saying what to fix. The API key
 * is read once from the host's environment or a file and redacted from everything logged.
 */

import { readFileSync } from "node:fs";
import {
  BehaviourFailedError,
  InvalidConfigError,
  type Kind,
  type LlmBehaviour,
  type SubtaskSpec,
  TimeoutError,
} from "@cadre/protocol";
import { redact, redactSecret } from "@cadre/runtime";
import OpenAI from "openai";
import { renderTemplate, templateScope } from "./template.js";
import type { Behaviour, BehaviourContext } from "./types.js";

/** A provider as the configuration declares it (`llm.providers.<name>`). */
export interface LlmProvider {
  baseURL: string;
  apiKeyEnv?: string | undefined;
  apiKeyFile?: string | undefined;
  jsonSchema: boolean;
  maxRetries: number;
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

/** Builds the llm behaviour of a kind, with its provider's client. */
export function createLlmBehaviour(
  spec: LlmBehaviour,
  kind: Kind,
  provider: { name: string; config: LlmProvider },
): Behaviour {
  const client = new OpenAI({
    baseURL: provider.config.baseURL,
    apiKey: apiKeyOf(provider.name, provider.config),
    maxRetries: provider.config.maxRetries,
    timeout: spec.timeoutMs,
  });
  const schema = Object.keys(kind.output).length > 0 && provider.config.jsonSchema ? kind.output : undefined;
  return {
    plan(): SubtaskSpec[] {
      return [];
    },
    run(ctx: BehaviourContext): Promise<unknown> {
      return ask(client, spec, schema, provider.name, ctx);
    },
  };
}

async function ask(
  client: OpenAI,
  spec: LlmBehaviour,
  schema: Record<string, unknown> | undefined,
  provider: string,
  ctx: BehaviourContext,
): Promise<unknown> {
  const { task, attempt, signal } = ctx;
  const rendered = renderTemplate(spec.prompt, templateScope(task, attempt));
  const prompt = typeof rendered === "string" ? rendered : JSON.stringify(rendered);
  const messages: OpenAI.Chat.ChatCompletionMessageParam[] = [
    ...(spec.system ? [{ role: "system" as const, content: spec.system }] : []),
    { role: "user", content: prompt },
  ];
  const base = { provider, model: spec.model, taskId: task.taskId, attempt };
  let completion: OpenAI.Chat.ChatCompletion;
  try {
    completion = await client.chat.completions.create(
      {
        model: spec.model,
        messages,
        max_tokens: spec.maxTokens,
        ...(spec.temperature !== undefined ? { temperature: spec.temperature } : {}),
        ...(schema
          ? { response_format: { type: "json_schema", json_schema: { name: task.kind.replace(/-/g, "_"), schema } } }
          : {}),
      },
      { signal },
    );
  } catch (err) {
    throw failure(err, base, spec.timeoutMs);
  }
  const content = completion.choices[0]?.message?.content ?? "";
  try {
    return JSON.parse(content);
  } catch {
    // Not JSON: the text is the output (a kind with an output schema then fails its check).
    return { text: content };
  }
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
