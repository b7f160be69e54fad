/**
 * Workflows that wait for other workflows (a submit's `after`, messages.ts) and seed 003's
 * `/coordination-hub dependency-analysis` over them: the error a workflow ends with when one it
 * waits for can never complete, and the analysis's request and reply. What the analysis
 * computes is in docs/architecture.md ("The runbook").
 */

import { z } from "zod";
import { Id, MAX_AFTER, Millis, type WireErrorBody } from "./messages.js";
import { NameSchema } from "./team.js";

const Count = z.number().int().nonnegative();
/** The seed's free-text fields (scope, focus): taken, echoed, never interpreted. */
const Note = z.string().max(200);

/**
 * The code a workflow fails with when one it waits for failed, was cancelled or no longer
 * exists: it can never start. Like CANCELLED, a workflow outcome, not an error a request throws.
 */
export const DEPENDENCY_FAILED = "DEPENDENCY_FAILED";

/** How a workflow a dependent waits for ended, as the dependent's error says. */
export type DependencyOutcome = "failed" | "cancelled" | "missing";

/** The error of a workflow that waited for `dependency`, which ended `outcome`: names it and what to do. */
export function dependencyFailed(dependency: string, outcome: DependencyOutcome): WireErrorBody {
  const how = outcome === "missing" ? "no longer exists" : `was ${outcome === "failed" ? "failed" : "cancelled"}`;
  return {
    code: DEPENDENCY_FAILED,
    message: `workflow ${dependency}, which this workflow waits for (after), ${how}, so this one can never start; submit it again after a workflow that completes`,
    data: { dependency, outcome },
    retryable: false,
  };
}

/** What the analysis's `focus` can name: both are always computed. */
export const DEPENDENCY_FOCUS = ["critical_path_analysis", "dependency_chain_mapping"] as const;

/** `/coordination-hub dependency-analysis`: which workflows to look at. */
export const DependencyAnalysisRequestSchema = z
  .object({
    /**
     * Start from these (any status; each must exist), with what they wait for, transitively,
     * and the running workflows that wait for them. @default every running workflow
     */
    workflows: z.array(Id).min(1).max(100).optional(),
    /** The seed's `affected_workflow_dependencies`: echoed. */
    scope: Note.optional(),
    /** The seed's `critical_path_analysis`, `dependency_chain_mapping`: both are always computed. */
    focus: z.array(Note).max(20).optional(),
  })
  .strict();

/** A workflow's status as the analysis sees it: `waiting` is running with dependencies still awaited. */
export const DependencyStatusSchema = z.enum([
  "waiting",
  "running",
  "paused",
  "completed",
  "failed",
  "cancelled",
  "missing",
]);

/** One workflow of the graph. */
export const DependencyNodeSchema = z.object({
  workflowId: Id,
  /** Null for a workflow named in an `after` whose record no longer exists. */
  team: NameSchema.nullable(),
  status: DependencyStatusSchema,
  /** Its root task's priority (null when missing). */
  priority: z.number().int().nullable(),
  submittedAt: Millis.nullable(),
  after: z.array(Id).max(MAX_AFTER),
  /** Of `after`, those not completed yet. */
  waitingFor: z.array(Id).max(MAX_AFTER),
  /** Tasks finished (completed, failed or cancelled) of those created so far. */
  progress: z.object({ done: Count, total: Count }),
  /**
   * The longest chain of unfinished tasks from its root (the resource manager's critical path):
   * their ids, root first, and their kinds. Empty for a finished workflow.
   */
  criticalPath: z.object({ length: Count, tasks: z.array(Id), kinds: z.array(NameSchema) }),
  /** A finished workflow's error (DEPENDENCY_FAILED names the one it waited for). */
  error: z.object({ code: z.string().max(64), message: z.string().max(1000) }).optional(),
});

export const DependencyAnalysisReplySchema = z.object({
  at: Millis,
  scope: Note.nullable(),
  workflows: z.array(DependencyNodeSchema),
  /** One per `after` entry: the dependent waits for the dependency; `state` is how that stands. */
  edges: z.array(
    z.object({
      dependency: Id,
      dependent: Id,
      /** satisfied: the dependency completed; awaited: it has not yet; broken: it failed, was cancelled or is missing. */
      state: z.enum(["satisfied", "awaited", "broken"]),
    }),
  ),
  /**
   * Every workflow of the graph, dependencies before their dependents (topological); of those
   * free at the same step, the higher priority first, then the earlier submitted, then by id:
   * the order to resume them in (a waiting workflow starts only after its dependencies anyway).
   */
  order: z.array(Id),
  /**
   * Unfinished workflows that wait, directly or through others, for one that failed, was
   * cancelled or is missing: `by` is the nearest such, `through` the unfinished ones between.
   */
  blocked: z.array(
    z.object({
      workflowId: Id,
      by: Id,
      byStatus: z.enum(["failed", "cancelled", "missing"]),
      through: z.array(Id),
    }),
  ),
  /**
   * The longest chain of unfinished workflows each waiting for the one before it (dependencies
   * first): what must still run one after another. Of chains as long, the one with more tasks on
   * its workflows' critical paths (`criticalTasks`), then the first in `order`.
   */
  longestChain: z.object({ workflows: z.array(Id), length: Count, criticalTasks: Count }),
  /** Requested `focus` entries Cadre has nothing for, with why. */
  ignored: z.array(z.string()),
});

export type DependencyAnalysisRequest = z.infer<typeof DependencyAnalysisRequestSchema>;
export type DependencyAnalysisReply = z.infer<typeof DependencyAnalysisReplySchema>;
export type DependencyNode = z.infer<typeof DependencyNodeSchema>;
export type DependencyStatus = z.infer<typeof DependencyStatusSchema>;

// --- /coordination-hub execute-dependency-recovery -------------------------------------------

const RecoveryAction = z.discriminatedUnion("action", [
  z
    .object({
      action: z.literal("immediate_agent_replacement"),
      /** The failed actors whose contexts go to their replacements (transfer-context). */
      failed_agents: z.array(Id).min(1).max(20),
      /** The seed's pool name: replacements are the actors placed in the failed ones' stead. */
      replacement_pool: Note.optional(),
      /** Always so: a replacement is of the failed actor's team and kind. */
      specialization_matching: z.boolean().optional(),
      context_transfer: z.enum(["comprehensive", "history_only"]).default("comprehensive"),
    })
    .strict(),
  z
    .object({
      action: z.literal("dependency_chain_recovery"),
      primary_workflow: Id,
      dependent_workflow: Id,
      recovery_order: z.enum(["dependency_priority"]).default("dependency_priority"),
      /** Assess both workflows' state; damaged state is recovered from its latest verified checkpoint. */
      checkpoint_restoration: z.boolean().default(false),
      /** The longest the dependent is held for the primary to complete (ms). @default 300000 */
      timeout_ms: z.number().int().min(1).max(3_600_000).default(300_000),
    })
    .strict(),
  z
    .object({
      action: z.literal("enhanced_monitoring_activation"),
      scope: Note.optional(),
      monitoring_level: Note.optional(),
      failure_prediction: Note.optional(),
    })
    .strict(),
]);

/** `/coordination-hub execute-dependency-recovery`: replace agents with their context, recover chains in order. */
export const DependencyRecoveryRequestSchema = z
  .object({
    recovery_strategy: Note.optional(),
    dependency_preservation: z.boolean().optional(),
    workflow_continuity: Note.optional(),
    recovery_actions: z.array(RecoveryAction).min(1).max(20),
  })
  .strict();

export const DependencyRecoveryReplySchema = z.object({
  ms: Millis,
  actions: z.array(
    z.object({
      action: z.string(),
      outcome: z.enum(["done", "partial", "failed", "ignored"]),
      detail: z.string().max(1000),
    }),
  ),
  /** Per immediate_agent_replacement: each failed agent, where its context went, whether it read back. */
  replacements: z.array(
    z.object({
      from: Id,
      to: Id.nullable(),
      history: Count,
      validated: z.boolean().nullable(),
      error: z.string().optional(),
    }),
  ),
  chains: z.array(
    z.object({
      primary: Id,
      dependent: Id,
      /** `declared`: the dependent's `after` names the primary (the supervisor holds it); `held`: this command paused it. */
      order: z.enum(["declared", "held"]),
      primaryStatus: z.string(),
      dependentStatus: z.string(),
      /** The dependent's new tasks started only after the primary completed. */
      integrity: z.enum(["maintained", "broken"]),
      /** How long the dependent was held for the primary. */
      heldMs: Millis,
      restored: z.array(z.object({ workflowId: Id, damaged: Count, outcome: z.string() })),
      reason: z.string().max(500).optional(),
    }),
  ),
  workflowsRecovered: Count,
  /** Requested fields Cadre cannot act on, with why. */
  ignored: z.array(z.string()),
});

export type DependencyRecoveryRequest = z.infer<typeof DependencyRecoveryRequestSchema>;
export type DependencyRecoveryReply = z.infer<typeof DependencyRecoveryReplySchema>;
