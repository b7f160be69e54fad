/**
 * Every model call of a host's llm actors goes through here, in this order:
 *
 * 1. the journal: a turn an earlier attempt of the task completed is replayed (LLM_CALL_REPLAYED),
 *    neither paid nor counted against a budget again;
 * 2. the budgets: the call's worst case is reserved on the workflow's ledger and the kind's
 *    (runtime budgets.ts); refused, the call is not made (BUDGET_EXCEEDED);
 * 3. the provider's shared limits (limiter.ts): the call waits for its share;
 * 4. the call (provider.ts), streamed: the text so far is progress (LLM_PROGRESS, at most one a
 *    second per task, and the `onProgress` hooks);
 * 5. the ledgers settle to the real usage, and the answer is journaled before it is used.
 */

import { randomUUID } from "node:crypto";
import { type Kind, type LlmBehaviour, type ToolCall, type TypedEvent, type Usage, ZERO_USAGE } from "@cadre/protocol";
import { Budgets, type CadreMetrics, type CallJournal, type Logger } from "@cadre/runtime";
import type { BehaviourContext } from "../behaviours/types.js";
import { type ChatMessage, type ChatTool, type ModelProvider, promptBound } from "./provider.js";

/** The least time between two progress reports of one task. */
export const PROGRESS_INTERVAL_MS = 1000;

/** What a call is. */
export interface CallSpec {
  spec: LlmBehaviour;
  kind: Kind;
  messages: ChatMessage[];
  tools: ChatTool[];
  schema?: { name: string; schema: Record<string, unknown> } | undefined;
}

/** What the conversation goes on with: the answer, from the provider or the journal. */
export interface CallAnswer {
  content: string | null;
  toolCalls: ToolCall[];
}

/** The model calls of one host. */
export class LlmCalls {
  constructor(
    private readonly d: {
      providers: Map<string, ModelProvider>;
      journal: CallJournal;
      budgets: Budgets;
      hostId: string;
      /** Wall-clock ms (journal entries, reservations). */
      now: () => number;
      emit: (event: TypedEvent) => void;
      /** Runs the `onProgress` hooks (fire and forget). */
      progress: (payload: Record<string, unknown>) => void;
      logger: Logger;
      metrics?: CadreMetrics | undefined;
    },
  ) {}

  /** Whether the host's configuration declares the provider. */
  has(provider: string): boolean {
    return this.d.providers.has(provider);
  }

  /** Turn `turn` of a task's conversation. */
  async call(ctx: BehaviourContext, turn: number, c: CallSpec): Promise<CallAnswer> {
    const { task, attempt, signal } = ctx;
    const { spec } = c;
    const done = await this.d.journal.get(task.taskId, turn);
    if (done) {
      this.d.metrics?.llmCalls.inc({ model: done.model, outcome: "replayed" });
      this.d.emit({
        type: "LLM_CALL_REPLAYED",
        category: "llm",
        scope: task.workflowId,
        data: { taskId: task.taskId, turn, paidBy: done.hostId, attempt },
      });
      ctx.addUsage?.(done.usage);
      return done;
    }
    const provider = this.d.providers.get(spec.provider);
    if (!provider) throw new Error(`provider ${spec.provider} vanished`);
    const bound = promptBound(c.messages, c.tools);
    const worst = {
      tokens: bound + spec.maxTokens,
      costUsd: provider.cost(spec.model, bound, spec.maxTokens),
      requests: 1,
    };
    // Held for as long as the call may take, retries included; a host that dies mid-call lets go then.
    const holdMs = spec.timeoutMs * (provider.config.maxRetries + 1) + 10_000;
    const reservation = await this.d.budgets.reserve(
      { id: `${task.taskId}.${turn}.${randomUUID().slice(0, 8)}`, taskId: task.taskId, workflowId: task.workflowId },
      Budgets.scopes(task.workflowId, task.kind, c.kind.budget),
      worst,
      holdMs,
    );
    let used: Usage = ZERO_USAGE;
    let answer: Awaited<ReturnType<ModelProvider["complete"]>>;
    try {
      await provider.limiter?.take(worst.tokens, signal);
      answer = await provider.complete(
        {
          model: spec.model,
          messages: c.messages,
          tools: c.tools,
          maxTokens: spec.maxTokens,
          temperature: spec.temperature,
          schema: c.schema,
          timeoutMs: spec.timeoutMs,
          // A signal per call: the client adds an abort listener per request and keeps it, and a
          // long conversation on the attempt's one signal would pass Node's listener warning.
          signal: AbortSignal.any([signal]),
          onText: this.progressOf(task.workflowId, task.taskId, turn),
        },
        { taskId: task.taskId, attempt, turn },
      );
      used = {
        inputTokens: answer.inputTokens,
        outputTokens: answer.outputTokens,
        costUsd: provider.cost(spec.model, answer.inputTokens, answer.outputTokens),
        requests: 1,
      };
      const unused = worst.tokens - answer.inputTokens - answer.outputTokens;
      provider.limiter?.giveBack(unused).catch((err) => this.d.logger.debug({ err }, "limit not given back"));
    } finally {
      // A ledger that cannot be settled now lets go of the reservation when it expires.
      await this.d.budgets
        .settle(reservation, used)
        .catch((err) => this.d.logger.warn({ err, taskId: task.taskId }, "budget not settled; its hold expires"));
    }
    const entry = await this.d.journal.record(task.taskId, {
      turn,
      model: spec.model,
      content: answer.content,
      toolCalls: answer.toolCalls,
      usage: used,
      hostId: this.d.hostId,
      attempt,
      at: this.d.now(),
    });
    ctx.addUsage?.(entry.usage);
    return entry;
  }

  /** Reports a streamed answer's progress, at most once a {@link PROGRESS_INTERVAL_MS}. */
  private progressOf(workflowId: string, taskId: string, turn: number): (text: string) => void {
    let last = Number.NEGATIVE_INFINITY;
    return (text) => {
      const now = this.d.now();
      if (now - last < PROGRESS_INTERVAL_MS) return;
      last = now;
      const data = { taskId, turn, chars: text.length, tail: text.slice(-200), hostId: this.d.hostId };
      this.d.emit({ type: "LLM_PROGRESS", category: "llm", scope: workflowId, data });
      this.d.progress({ ...data, workflowId, text: text.slice(-4000) });
    };
  }
}
