/**
 * What model-backed agents keep in the `cadre_llm` bucket, shared by every host:
 *
 * - `budget.<workflowId>` and `budget.<workflowId>.<kind>`: a budget's ledger (what it allows,
 *   what was spent, what calls in flight hold), changed only by compare-and-set;
 * - `rate.<provider>`: a provider's shared requests- and tokens-per-minute bucket;
 * - `journal.<taskId>.<turn>`: each completed model call of a task, so a task redelivered after
 *   its host died replays the calls instead of paying for them again.
 *
 * Every record expires with the session (the bucket's TTL).
 */

import { z } from "zod";

const Count = z.number().int().nonnegative();
const Usd = z.number().nonnegative();

/** What a workflow or a kind may spend on model calls; an absent dimension is not limited. */
export const BudgetSchema = z
  .object({
    /** Input plus output tokens. */
    tokens: Count.optional(),
    /** At the provider's prices per million tokens (`llm.providers.<name>.models`). */
    costUsd: Usd.optional(),
    /** Completed model calls. */
    requests: Count.optional(),
  })
  .strict();

/** What model calls used: on a task's result, its record, and the workflow's. */
export const UsageSchema = z.object({
  inputTokens: Count,
  outputTokens: Count,
  costUsd: Usd,
  /** Completed model calls (a replayed call is not counted again). */
  requests: Count,
});

export const ZERO_USAGE: Usage = { inputTokens: 0, outputTokens: 0, costUsd: 0, requests: 0 };

/** The sum of two usages. */
export function addUsage(a: Usage, b: Usage): Usage {
  return {
    inputTokens: a.inputTokens + b.inputTokens,
    outputTokens: a.outputTokens + b.outputTokens,
    // Cents of a cent add up in floating point: keep 1e-9 USD.
    costUsd: Math.round((a.costUsd + b.costUsd) * 1e9) / 1e9,
    requests: a.requests + b.requests,
  };
}

/** A call's share of a budget: what it may use (reserved) or used (settled). */
export const AmountSchema = z.object({ tokens: Count, costUsd: Usd, requests: Count });

/** One budget's ledger (`budget.<workflowId>[.<kind>]`). */
export const LedgerSchema = z.object({
  /** Null: not limited (the ledger only counts). */
  limit: BudgetSchema.nullable(),
  spent: UsageSchema,
  /** Calls in flight, by reservation id, each with the time after which it is dropped (a host died mid-call). */
  held: z.record(z.string(), z.object({ amount: AmountSchema, until: z.number().int() })),
  /** The highest share of the limit announced so far (0, 50, 80 or 100 percent). */
  announced: z.number().int().min(0).max(100),
});

/** A provider's shared limit bucket (`rate.<provider>`): what is left, as of `at`. */
export const RateBucketSchema = z.object({
  requests: z.number(),
  tokens: z.number(),
  /** Wall-clock ms of the last refill. */
  at: z.number().int(),
});

/** A tool call of the model, as the Chat Completions API returns it. */
export const ToolCallSchema = z.object({
  id: z.string().max(200),
  type: z.literal("function"),
  function: z.object({ name: z.string().max(200), arguments: z.string().max(1_000_000) }),
});

/** One completed model call of a task (`journal.<taskId>.<turn>`). */
export const JournalEntrySchema = z.object({
  turn: z.number().int().min(0),
  model: z.string(),
  /** The assistant's message: its text, or its tool calls. */
  content: z.string().nullable(),
  toolCalls: z.array(ToolCallSchema).max(128).default([]),
  usage: UsageSchema,
  /** The host and attempt that paid for it. */
  hostId: z.string(),
  attempt: z.number().int().min(1),
  at: z.number().int(),
});

export type Budget = z.infer<typeof BudgetSchema>;
export type Usage = z.infer<typeof UsageSchema>;
export type Amount = z.infer<typeof AmountSchema>;
export type Ledger = z.infer<typeof LedgerSchema>;
export type RateBucket = z.infer<typeof RateBucketSchema>;
export type ToolCall = z.infer<typeof ToolCallSchema>;
export type JournalEntry = z.infer<typeof JournalEntrySchema>;

/** Keys of the `cadre_llm` bucket. */
export const llmKeys = {
  ledger: (workflowId: string, kind?: string): string =>
    kind ? `budget.${workflowId}.${kind}` : `budget.${workflowId}`,
  rate: (provider: string): string => `rate.${provider}`,
  journal: (taskId: string, turn: number): string => `journal.${taskId}.${turn}`,
  /** Every turn of a task's journal (a KV key filter). */
  journalOf: (taskId: string): string => `journal.${taskId}.*`,
} as const;
