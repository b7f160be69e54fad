/**
 * `pnpm bench`, seventh part: what Cadre adds around one model call, against a bare `openai`
 * client calling the same stand-in provider (an OpenAI-compatible HTTP server in this process
 * that answers at once, streamed, usage included) in the same run. Three cases, LLM_N sequential
 * calls each (default 300) after a warm-up of 30:
 *
 * 1. bare: `chat.completions.create({ stream: true })` on a client of its own, the stream consumed;
 * 2. Cadre: `LlmCalls.call` as an agent-host makes it, each call a new task: the journal read,
 *    the worst case reserved on the workflow's ledger (compare-and-set in the `cadre_llm`
 *    bucket), the call through the provider's breaker (streamed), the ledger settled and the
 *    answer journaled;
 * 3. replay: the same tasks again (a redelivery), each answered from the journal, no HTTP.
 */

import { type CallSpec, isProviderFailure, LlmCalls, ModelProvider } from "@cadre/agent-host/llm";
import {
  BUCKETS,
  childTaskId,
  KindSchema,
  type LlmBehaviour,
  newWorkflowId,
  parseConfig,
  rootTaskId,
  TaskEnvelopeSchema,
  type TypedEvent,
} from "@cadre/protocol";
import {
  Breakers,
  Budgets,
  CallJournal,
  connectNats,
  createLogger,
  createMetrics,
  systemClock,
  type WorkflowState,
} from "@cadre/runtime";
import { startNatsServer } from "@cadre/runtime/testing";
import { Kvm } from "@nats-io/kv";
import OpenAI from "openai";
import { STANDIN_MODEL, startLlmStandin } from "../helpers/llm-standin.js";
import { printTable, quantile } from "./stats.js";

const N = Number(process.env.LLM_N ?? 300);
const WARM_UP = 30;
const log = (s: string) => process.stderr.write(`${s}\n`);

// From test/dist/bench/llm.js, where this file runs once built.

const server = await startNatsServer();
const standin = await startLlmStandin();
try {
  standin.setFallback({ answer: { ok: true } });
  const nc = await connectNats(server.url, "bench-llm");
  const llm = await new Kvm(nc).create(BUCKETS.llm, { history: 1, storage: "file" });

  // --- what both cases send ------------------------------------------------------------------
  const maxTokens = 64;
  const messages: CallSpec["messages"] = [
    { role: "system", content: "You answer in JSON." },
    { role: "user", content: 'Say whether the build is green, as {"ok": boolean}.' },
  ];

  // --- bare client ---------------------------------------------------------------------------
  const bare = new OpenAI({ baseURL: standin.baseURL, apiKey: "none", maxRetries: 0 });
  const bareCall = async () => {
    const stream = await bare.chat.completions.create({
      model: STANDIN_MODEL,
      messages,
      max_tokens: maxTokens,
      stream: true,
      stream_options: { include_usage: true },
    });
    let text = "";
    for await (const chunk of stream) text += chunk.choices[0]?.delta?.content ?? "";
    return text;
  };

  // --- Cadre, wired as services/agent-host/src/llm/index.ts does (metrics on) -----------------
  const config = parseConfig({
    llm: {
      providers: {
        standin: {
          baseURL: standin.baseURL,
          maxRetries: 0,
          models: { [STANDIN_MODEL]: { inputUsdPerMTok: 1, outputUsdPerMTok: 2 } },
        },
      },
    },
  });
  const metrics = createMetrics({ service: "bench-llm", defaultMetrics: false, enabled: true });
  const logger = createLogger("bench-llm", "warn");
  const emitted = new Map<string, number>();
  const emit = (e: TypedEvent) => emitted.set(e.type, (emitted.get(e.type) ?? 0) + 1);
  const breakers = new Breakers(config.breakers, { source: "bench", logger, metrics });
  const providerConfig = config.llm.providers.standin;
  if (!providerConfig) throw new Error("no provider");
  const provider = new ModelProvider("standin", providerConfig, {
    metrics,
    breaker: breakers.get("llm_provider", "standin", isProviderFailure),
  });
  const now = () => Date.now();
  const budgets = new Budgets(llm, { now, emit });
  const calls = new LlmCalls({
    providers: new Map([["standin", provider]]),
    journal: new CallJournal(llm),
    budgets,
    hostId: "bench",
    now,
    emit,
    progress: () => {},
    logger,
    metrics,
  });
  const kind = KindSchema.parse({
    role: "agent",
    behaviour: { type: "llm", provider: "standin", model: STANDIN_MODEL, prompt: "{{input}}", maxTokens },
  });
  const spec: CallSpec = { spec: kind.behaviour as LlmBehaviour, kind, messages, tools: [] };
  const workflowId = newWorkflowId();
  await budgets.open(workflowId, { tokens: 1_000_000_000_000, costUsd: 1_000_000, requests: 1_000_000_000 });
  const root = rootTaskId(workflowId);
  // LlmCalls.call reads no workflow state.
  const state = {} as WorkflowState;
  let usageAdded = 0;
  const addUsage = () => {
    usageAdded++;
  };
  /** Call `i` of the run: task `i` of the workflow, its turn 0 (attempt 2 is a redelivery, replayed). */
  const cadreCall = (i: number, attempt: number) => {
    const task = TaskEnvelopeSchema.parse({
      taskId: childTaskId(root, i),
      workflowId,
      teamId: "bench",
      kind: "writer",
      parentTaskId: root,
      chain: ["director", "writer"],
      depth: 1,
      idempotencyKey: childTaskId(root, i),
      input: {},
    });
    // A signal per call, as a host gives one per attempt: the openai client never removes the
    // abort listener it adds to the caller's signal, so one shared signal would collect them.
    const signal = new AbortController().signal;
    return calls.call({ task, attempt, clock: systemClock, signal, state, addUsage }, 0, spec);
  };

  /** The latency (ms) of each of `n` sequential calls of `op`, and calls per second. */
  async function measure(name: string, op: (i: number) => Promise<unknown>, n: number, from = 0) {
    const lat: number[] = [];
    const start = performance.now();
    for (let i = 0; i < n; i++) {
      const t = performance.now();
      await op(from + i);
      lat.push(performance.now() - t);
      if (i > 0 && i % 100 === 0) log(`${name}: ${i}/${n}`);
    }
    const rate = n / ((performance.now() - start) / 1000);
    log(`${name}: p50 ${quantile(lat, 0.5).toFixed(3)} ms, ${Math.round(rate)} calls/s`);
    return { lat, rate };
  }

  // Warm-up tasks are numbered after the measured ones, so the replay replays the measured ones.
  await measure("warm-up bare", bareCall, WARM_UP);
  await measure("warm-up cadre", (i) => cadreCall(i, 1), WARM_UP, N);
  await measure("warm-up replay", (i) => cadreCall(i, 2), WARM_UP, N);
  const beforeBare = standin.requests.length;
  const b = await measure("bare openai client", bareCall, N);
  const beforeCadre = standin.requests.length;
  const c = await measure("cadre LlmCalls.call", (i) => cadreCall(i, 1), N);
  const beforeReplay = standin.requests.length;
  const r = await measure("cadre replay from the journal", (i) => cadreCall(i, 2), N);
  const requests = {
    bare: beforeCadre - beforeBare,
    cadre: beforeReplay - beforeCadre,
    replay: standin.requests.length - beforeReplay,
  };
  if (requests.bare !== N || requests.cadre !== N || requests.replay !== 0) {
    throw new Error(`unexpected provider requests: ${JSON.stringify(requests)}`);
  }
  const ledger = await budgets.read(workflowId);
  if (ledger?.spent.requests !== N + WARM_UP || Object.keys(ledger.held).length !== 0) {
    throw new Error(`unexpected ledger: ${JSON.stringify(ledger)}`);
  }
  if (usageAdded !== 2 * (N + WARM_UP)) throw new Error(`addUsage called ${usageAdded} times`);
  await nc.close();

  const f = (n: number, d = 3) => n.toFixed(d);
  const p50 = (x: { lat: number[] }) => quantile(x.lat, 0.5);
  const p99 = (x: { lat: number[] }) => quantile(x.lat, 0.99);
  printTable([
    ["measure", "bare openai client", "Cadre LlmCalls.call", "Cadre replay (journal)", "Cadre / bare", "replay / bare"],
    [
      "sequential p50 (ms)",
      f(p50(b)),
      f(p50(c)),
      f(p50(r)),
      `${f(p50(c) / p50(b), 2)}x (+${f(p50(c) - p50(b))} ms)`,
      `${f(p50(r) / p50(b), 2)}x`,
    ],
    [
      "sequential p99 (ms)",
      f(p99(b)),
      f(p99(c)),
      f(p99(r)),
      `${f(p99(c) / p99(b), 2)}x (+${f(p99(c) - p99(b))} ms)`,
      `${f(p99(r) / p99(b), 2)}x`,
    ],
    ["calls/s", f(b.rate, 0), f(c.rate, 0), f(r.rate, 0), `${f(c.rate / b.rate, 2)}x`, `${f(r.rate / b.rate, 2)}x`],
  ]);
  const events = [...emitted].map(([type, count]) => `${type} ${count}`).join(", ");
  process.stdout.write(
    `\n${N} sequential calls per case after ${WARM_UP} of warm-up, one process, against a stand-in ` +
      `provider on 127.0.0.1 answering at once (streamed, usage included) and one nats-server. ` +
      `Cadre: each call a new task (journal read, reserve and settle on the workflow's ledger by ` +
      `compare-and-set, the call through the llm_provider breaker, the answer journaled), metrics on, ` +
      `tracing off, events counted in memory (${events}); ledger spent ${ledger.spent.requests} requests, ` +
      `${ledger.spent.inputTokens + ledger.spent.outputTokens} tokens, $${ledger.spent.costUsd}. ` +
      `Replay: the same tasks redelivered, answered from the journal with no request to the provider.\n`,
  );
} finally {
  await standin.stop();
  await server.stop();
}
