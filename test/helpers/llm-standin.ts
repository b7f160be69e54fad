/**
 * A stand-in LLM provider for tests: an HTTP server on 127.0.0.1 (a random port) that speaks
 * the OpenAI Chat Completions protocol the way the official `openai` npm client (v6) expects it.
 * No model provider is reachable from the test machines, so tests point a client's `baseURL` at
 * this stand-in and script what it answers, one step per `POST /v1/chat/completions`:
 *
 * - `{ answer }`: an assistant message (an object answer is JSON-stringified into the content);
 * - `{ toolCalls }`: an assistant message with `tool_calls` (ids `call_<n>`);
 * - `{ status }`: an error in OpenAI's error JSON shape, with `Retry-After` when asked;
 * - `{ delayMs, then }`: another step, answered late (to test timeouts);
 * - `{ malformed: true }`: a 200 whose body is not JSON.
 *
 * `stream: true` requests are answered as server-sent events (`chat.completion.chunk`s, a usage
 * chunk when `stream_options.include_usage` asks for one, then `[DONE]`). Every request is
 * recorded, and the usage of every successful completion is added up in `billed`.
 *
 * It prints nothing, and never the `authorization` header it records (see {@link RecordedRequest}).
 */

import { createServer, type IncomingMessage, type ServerResponse } from "node:http";

/** Token counts as OpenAI reports them. */
export interface StandinUsage {
  prompt_tokens: number;
  completion_tokens: number;
}

/** Answers with an assistant message; an object is JSON-stringified into `message.content`. */
export interface AnswerStep {
  answer: string | object;
  /** Default: about a quarter of the request messages' length, and of the content's (at least 1). */
  usage?: StandinUsage;
}

/** Answers with an assistant message calling tools (finish_reason "tool_calls"). */
export interface ToolCallsStep {
  toolCalls: { name: string; arguments: object }[];
  /** Default as for {@link AnswerStep}, the content being the calls' JSON. */
  usage?: StandinUsage;
}

/** Answers with an error status and OpenAI's error body `{ error: { message, type, param, code } }`. */
export interface ErrorStep {
  status: number;
  /** Default: a message, type and code fitting the status (e.g. "rate_limit_exceeded" for 429). */
  error?: { message: string; type?: string; code?: string | null };
  /** Sent as the `Retry-After` header, which the client honours before retrying. */
  retryAfterSeconds?: number;
}

/**
 * Answers `then` after `delayMs` ms, to make a client time out. (`then` is a step, not a
 * function, so the object is no thenable; biome's noThenProperty flags literals of it all the same.)
 */
export interface DelayStep {
  delayMs: number;
  then: StandinStep;
}

/** Answers 200 with a body that is not JSON (nor valid SSE data for a streamed request). */
export interface MalformedStep {
  malformed: true;
}

/** One scripted response of the stand-in. */
export type StandinStep = AnswerStep | ToolCallsStep | ErrorStep | DelayStep | MalformedStep;

/** A request the stand-in received, in arrival order. */
export interface RecordedRequest {
  /** Arrival time, `Date.now()` ms. */
  at: number;
  method: string;
  /** The path with its query string, e.g. `/v1/chat/completions`. */
  path: string;
  /**
   * The headers, lowercased. `authorization` is there for tests to check but not enumerable, so
   * that printing the request (a log, an assertion's diff, JSON.stringify) never shows it.
   */
  headers: Readonly<Record<string, string>> & { readonly authorization?: string };
  /** The parsed JSON body; undefined when there was none (or a string when it was not JSON). */
  body: unknown;
}

/** What the stand-in has billed: the usage of every successful (200) completion it returned. */
export interface StandinBill {
  promptTokens: number;
  completionTokens: number;
  calls: number;
}

/** A running stand-in LLM provider. */
export interface LlmStandin {
  /** `http://127.0.0.1:<port>/v1`: the `baseURL` for the `openai` client. */
  readonly baseURL: string;
  readonly port: number;
  /** Every request received, the ones refused included. */
  readonly requests: RecordedRequest[];
  /** The usage of every successful completion returned so far (a live view). */
  readonly billed: Readonly<StandinBill>;
  /** Queues steps, consumed in order, one per `POST /v1/chat/completions`. */
  script(...steps: StandinStep[]): void;
  /** The step used when the queue is empty; default `{ answer: { ok: true } }`. */
  setFallback(step: StandinStep): void;
  /** Scripted steps not consumed yet. */
  pending(): number;
  /** Closes every connection (delayed answers included) and the server. */
  stop(): Promise<void>;
}

/** The model listed by `GET /v1/models`, and answered for a request that names none. */
export const STANDIN_MODEL = "standin-model";

const DEFAULT_FALLBACK: StandinStep = { answer: { ok: true } };

/** A parsed chat completion request, as far as the stand-in reads it. */
interface ChatRequest {
  model?: string;
  messages?: unknown;
  stream?: boolean;
  stream_options?: { include_usage?: boolean };
}

/** A completion ready to send, whether as one JSON body or as chunks. */
interface Completion {
  id: string;
  created: number;
  model: string;
  content: string | null;
  toolCalls: { id: string; type: "function"; function: { name: string; arguments: string } }[] | undefined;
  finishReason: "stop" | "tool_calls";
  usage: StandinUsage;
}

/** Mutable state of one stand-in. */
interface State {
  apiKey: string | undefined;
  queue: StandinStep[];
  fallback: StandinStep;
  requests: RecordedRequest[];
  billed: StandinBill;
  completions: number;
  toolCalls: number;
  timers: Set<NodeJS.Timeout>;
}

/**
 * Starts a stand-in LLM provider on 127.0.0.1, on a random port. With `apiKey`, a request
 * without `Authorization: Bearer <apiKey>` is refused with OpenAI's 401 (consuming no step).
 */
export async function startLlmStandin(opts: { apiKey?: string } = {}): Promise<LlmStandin> {
  const state: State = {
    apiKey: opts.apiKey,
    queue: [],
    fallback: DEFAULT_FALLBACK,
    requests: [],
    billed: { promptTokens: 0, completionTokens: 0, calls: 0 },
    completions: 0,
    toolCalls: 0,
    timers: new Set(),
  };
  const server = createServer((req, res) => {
    void handle(state, req, res).catch((err: unknown) => {
      if (!res.headersSent) sendError(res, 500, { message: `stand-in failure: ${String(err)}`, type: "server_error" });
      else res.destroy();
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => resolve());
  });
  const address = server.address();
  if (address === null || typeof address === "string") throw new Error("LLM stand-in has no TCP address");
  return {
    baseURL: `http://127.0.0.1:${address.port}/v1`,
    port: address.port,
    requests: state.requests,
    billed: state.billed,
    script: (...steps) => {
      state.queue.push(...steps);
    },
    setFallback: (step) => {
      state.fallback = step;
    },
    pending: () => state.queue.length,
    stop: async () => {
      for (const timer of state.timers) clearTimeout(timer);
      state.timers.clear();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/** Records a request, then routes it. */
async function handle(state: State, req: IncomingMessage, res: ServerResponse): Promise<void> {
  const raw = await readBody(req);
  const recorded: RecordedRequest = {
    at: Date.now(),
    method: req.method ?? "GET",
    path: req.url ?? "/",
    headers: recordHeaders(req),
    body: parseBody(raw),
  };
  state.requests.push(recorded);
  if (!authorized(state, recorded)) {
    sendError(res, 401, {
      message: "Incorrect API key provided",
      type: "invalid_request_error",
      code: "invalid_api_key",
    });
    return;
  }
  const route = `${recorded.method} ${recorded.path.split("?")[0]}`;
  if (route === "GET /v1/models") {
    sendJson(res, 200, {
      object: "list",
      data: [{ id: STANDIN_MODEL, object: "model", created: 0, owned_by: "standin" }],
    });
  } else if (route === "POST /v1/chat/completions") {
    if (!isChatRequest(recorded.body)) {
      sendError(res, 400, { message: "The request body is not a JSON object", type: "invalid_request_error" });
      return;
    }
    const step = state.queue.shift() ?? state.fallback;
    respond(state, recorded.body, step, res);
  } else {
    sendError(res, 404, {
      message: `Unknown request URL: ${route}`,
      type: "invalid_request_error",
      code: "unknown_url",
    });
  }
}

function readBody(req: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on("data", (chunk: Buffer) => chunks.push(chunk));
    req.on("end", () => resolve(Buffer.concat(chunks).toString("utf8")));
    req.on("error", reject);
  });
}

function parseBody(raw: string): unknown {
  if (raw === "") return undefined;
  try {
    return JSON.parse(raw) as unknown;
  } catch {
    return raw;
  }
}

/** The headers, lowercased and joined, with `authorization` kept out of sight (not enumerable). */
function recordHeaders(req: IncomingMessage): RecordedRequest["headers"] {
  const headers: Record<string, string> = {};
  for (const [name, value] of Object.entries(req.headers)) {
    if (value === undefined) continue;
    const joined = Array.isArray(value) ? value.join(", ") : value;
    if (name === "authorization") {
      Object.defineProperty(headers, name, { value: joined, enumerable: false });
    } else {
      headers[name] = joined;
    }
  }
  return headers;
}

function authorized(state: State, request: RecordedRequest): boolean {
  return state.apiKey === undefined || request.headers.authorization === `Bearer ${state.apiKey}`;
}

function isChatRequest(body: unknown): body is ChatRequest {
  return typeof body === "object" && body !== null && !Array.isArray(body);
}

/** Answers one chat completion request with one step. */
function respond(state: State, request: ChatRequest, step: StandinStep, res: ServerResponse): void {
  if (clientGone(res)) return; // the client gave up (e.g. timed out) while a delayed step waited
  if ("delayMs" in step) {
    const timer = setTimeout(() => {
      state.timers.delete(timer);
      respond(state, request, step.then, res);
    }, step.delayMs);
    state.timers.add(timer);
  } else if ("status" in step) {
    sendError(res, step.status, step.error ?? defaultError(step.status), step.retryAfterSeconds);
  } else if ("malformed" in step) {
    sendMalformed(res, request.stream === true);
  } else {
    const completion = makeCompletion(state, request, step);
    bill(state, completion.usage);
    if (request.stream === true) sendStream(res, completion, request.stream_options?.include_usage === true);
    else sendJson(res, 200, completionBody(completion));
  }
}

function clientGone(res: ServerResponse): boolean {
  return res.destroyed || res.socket === null || res.socket.destroyed;
}

/** Builds the completion an answer or tool-calls step stands for. */
function makeCompletion(state: State, request: ChatRequest, step: AnswerStep | ToolCallsStep): Completion {
  state.completions += 1;
  const base = {
    id: `chatcmpl-${state.completions}`,
    created: Math.floor(Date.now() / 1000),
    model: typeof request.model === "string" ? request.model : STANDIN_MODEL,
  };
  const promptTokens = roughTokens(JSON.stringify(request.messages ?? []));
  if ("answer" in step) {
    const content = typeof step.answer === "string" ? step.answer : JSON.stringify(step.answer);
    const usage = step.usage ?? { prompt_tokens: promptTokens, completion_tokens: roughTokens(content) };
    return { ...base, content, toolCalls: undefined, finishReason: "stop", usage };
  }
  const toolCalls = step.toolCalls.map((call) => {
    state.toolCalls += 1;
    const fn = { name: call.name, arguments: JSON.stringify(call.arguments) };
    return { id: `call_${state.toolCalls}`, type: "function" as const, function: fn };
  });
  const usage = step.usage ?? {
    prompt_tokens: promptTokens,
    completion_tokens: roughTokens(JSON.stringify(toolCalls)),
  };
  return { ...base, content: null, toolCalls, finishReason: "tool_calls", usage };
}

/** About a quarter of a text's length, at least 1: the usual rough count of tokens. */
function roughTokens(text: string): number {
  return Math.max(1, Math.ceil(text.length / 4));
}

function bill(state: State, usage: StandinUsage): void {
  state.billed.promptTokens += usage.prompt_tokens;
  state.billed.completionTokens += usage.completion_tokens;
  state.billed.calls += 1;
}

function usageBody(usage: StandinUsage) {
  return { ...usage, total_tokens: usage.prompt_tokens + usage.completion_tokens };
}

/** The non-streamed `chat.completion` body. */
function completionBody(c: Completion) {
  const message = {
    role: "assistant",
    content: c.content,
    refusal: null,
    ...(c.toolCalls === undefined ? {} : { tool_calls: c.toolCalls }),
  };
  return {
    id: c.id,
    object: "chat.completion",
    created: c.created,
    model: c.model,
    choices: [{ index: 0, message, logprobs: null, finish_reason: c.finishReason }],
    usage: usageBody(c.usage),
  };
}

/** Sends a completion as server-sent `chat.completion.chunk`s, then `[DONE]`. */
function sendStream(res: ServerResponse, c: Completion, includeUsage: boolean): void {
  res.writeHead(200, { "content-type": "text/event-stream", "cache-control": "no-cache", connection: "keep-alive" });
  const chunk = (choices: unknown[], extra: object = {}) =>
    `data: ${JSON.stringify({ id: c.id, object: "chat.completion.chunk", created: c.created, model: c.model, choices, ...extra })}\n\n`;
  const delta = (d: object, finish: string | null = null) => chunk([{ index: 0, delta: d, finish_reason: finish }]);
  res.write(delta({ role: "assistant", content: "" }));
  if (c.toolCalls !== undefined) {
    res.write(delta({ tool_calls: c.toolCalls.map((call, index) => ({ index, ...call })) }));
  } else {
    for (const piece of splitContent(c.content ?? "")) res.write(delta({ content: piece }));
  }
  res.write(delta({}, c.finishReason));
  if (includeUsage) res.write(chunk([], { usage: usageBody(c.usage) }));
  res.end("data: [DONE]\n\n");
}

/** Splits a text into up to four pieces of about equal length, so a stream has several deltas. */
export function splitContent(text: string, pieces = 4): string[] {
  if (text === "") return [];
  const size = Math.ceil(text.length / Math.min(pieces, text.length));
  const out: string[] = [];
  for (let i = 0; i < text.length; i += size) out.push(text.slice(i, i + size));
  return out;
}

function sendMalformed(res: ServerResponse, stream: boolean): void {
  if (stream) {
    res.writeHead(200, { "content-type": "text/event-stream" });
    res.end('data: {"id": "chatcmpl-broken", "choices": [\n\n');
  } else {
    res.writeHead(200, { "content-type": "application/json" });
    res.end('{"id": "chatcmpl-broken", "choices": [');
  }
}

/** The message, type and code OpenAI sends for a status, when a step names none. */
function defaultError(status: number): NonNullable<ErrorStep["error"]> {
  if (status === 401)
    return { message: "Incorrect API key provided", type: "invalid_request_error", code: "invalid_api_key" };
  if (status === 429)
    return { message: "Rate limit reached (stand-in)", type: "requests", code: "rate_limit_exceeded" };
  if (status >= 500) return { message: "The server had an error (stand-in)", type: "server_error", code: null };
  return { message: `Stand-in error ${status}`, type: "invalid_request_error", code: null };
}

/** Sends OpenAI's error body, with `Retry-After` (seconds) when given. */
function sendError(res: ServerResponse, status: number, error: NonNullable<ErrorStep["error"]>, retryAfter?: number) {
  const headers: Record<string, string> = retryAfter === undefined ? {} : { "retry-after": String(retryAfter) };
  const body = {
    error: { message: error.message, type: error.type ?? "api_error", param: null, code: error.code ?? null },
  };
  sendJson(res, status, body, headers);
}

function sendJson(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { "content-type": "application/json", "content-length": Buffer.byteLength(text), ...headers });
  res.end(text);
}
