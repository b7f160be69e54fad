/**
 * Seed 003's "Agent Pool Failure with Workflow Dependency Chain" scenario: `/workflow-recovery
 * analyze-cascade-failure` (what was lost, what it held, what waits for it, a recovery plan) and
 * `/workflow-recovery transfer-context` (a failed actor's history and snapshot given to its
 * replacement), with the supervisor's `sup.actor.transfer` that records and delivers a transfer.
 * Requests take the seed's snake_case fields, strict. What each computes is in
 * docs/architecture.md ("The runbook").
 */

import { z } from "zod";
import { Id, InheritedContextSchema, Millis } from "./messages.js";
import { NameSchema } from "./team.js";

const Count = z.number().int().nonnegative();
/** The most failed agents one transfer-context takes (the seed's example names three). */
export const MAX_TRANSFERS = 20;

// --- analyze-cascade-failure -----------------------------------------------------------------

/** `/workflow-recovery analyze-cascade-failure`: which failures to look at, and how far back. */
export const CascadeRequestSchema = z
  .object({
    /**
     * `agent_pool_cascade`: every actor lost with its host, quarantined or retired;
     * `host_loss`: only those lost with a host; `quarantine`: only quarantined ones.
     * @default "agent_pool_cascade"
     */
    failure_scope: z.enum(["agent_pool_cascade", "host_loss", "quarantine"]).default("agent_pool_cascade"),
    /** Per workflow the chains waiting on the lost tasks, its critical path and its dependents. @default true */
    dependency_analysis: z.boolean().default(true),
    /** `summary` leaves out each held task's whereabouts (only the workflows' impact). @default "comprehensive" */
    impact_assessment: z.enum(["summary", "comprehensive"]).default("comprehensive"),
    /**
     * The plan's resume order. `dependency_aware`: a workflow after those it waits for
     * (`after`), and one that others wait for with the highest priority among them; then by
     * priority, then by critical-path length. `priority`: by priority, then length.
     * @default "dependency_aware"
     */
    recovery_prioritization: z.enum(["dependency_aware", "priority"]).default("dependency_aware"),
    /** How far back to look for failures (ms). @default 600000 */
    since_ms: z.number().int().min(1000).max(86_400_000).default(600_000),
  })
  .strict()
  .prefault({});

/** Why an actor is counted as failed. */
export const FailureCauseSchema = z.enum(["host_lost", "host_restarted", "quarantined", "retired"]);

/** One failed actor, as the events stream and the registry know it. */
export const FailedAgentSchema = z.object({
  actorId: Id,
  /** Null when the events that named it are no longer in the stream. */
  teamId: Id.nullable(),
  kind: NameSchema.nullable(),
  hostId: Id.nullable(),
  cause: FailureCauseSchema,
  /** When it failed (the events stream's time of ACTOR_LOST, AGENT_QUARANTINED or *_RETIRED). */
  at: Millis,
  /** The task it held then (its last TASK_STARTED not yet ended), or null when it was idle. */
  taskId: Id.nullable(),
  /** The actor placed in its stead (see {@link inStead}), or null when none is. */
  replacement: Id.nullable(),
});

/** A host declared unreachable within the window, or one that is unreachable now. */
export const FailedHostSchema = z.object({
  hostId: Id,
  /** As the supervisor sees it now; `forgotten` once it dropped the host. */
  state: z.string(),
  unreachableAt: Millis.nullable(),
  healedAt: Millis.nullable(),
  actorsLost: Count,
});

/** A task a failed actor held, and where it is now. */
export const HeldTaskRowSchema = z.object({
  taskId: Id,
  kind: NameSchema,
  heldBy: Id,
  startedAt: Millis.nullable(),
  status: z.enum(["queued", "running", "parked", "completed", "failed", "cancelled", "unknown"]),
  /** Who holds it now (a running task). */
  holder: z.object({ hostId: Id, actorId: Id.nullable() }).nullable(),
  epoch: z.number().int(),
  /** The supervisor published it again at a new epoch (TASK_REASSIGNED). */
  reassigned: z.object({ epoch: z.number().int(), at: Millis, fromHostId: Id }).nullable(),
  /** It lies on one of its workflow's longest unfinished chains. */
  onCriticalPath: z.boolean(),
});

/** The tasks that cannot finish before a lost one does: its unfinished ancestors, and what runs under it. */
export const BlockedChainSchema = z.object({
  taskId: Id,
  /** Its unfinished ancestors, the root first: each waits for it. */
  waiting: z.array(Id),
  /** Its unfinished descendants: their outcomes go to it once it runs again. */
  under: z.array(Id),
});

export const AffectedWorkflowSchema = z.object({
  workflowId: Id,
  team: z.string(),
  status: z.string(),
  priority: z.number().int(),
  /**
   * `critical_path_blocked`: a held task, unfinished, lies on a longest unfinished chain;
   * `degraded`: held tasks unfinished, none on such a chain; `recovered`: every held task ended.
   */
  impact: z.enum(["critical_path_blocked", "degraded", "recovered"]),
  heldTasks: z.array(Id),
  /** With `impact_assessment: comprehensive`. */
  tasks: z.array(HeldTaskRowSchema).optional(),
  /** With `dependency_analysis`. */
  chains: z.array(BlockedChainSchema).optional(),
  criticalPath: z.array(Id).optional(),
  /** The workflows it waits for (its `after`). */
  after: z.array(Id).optional(),
  /** Running workflows that still wait for it (their `waitingFor` names it). */
  dependents: z.array(Id).optional(),
});

/** What the plan does for one kind that lost actors. */
export const ReplacementPlanSchema = z.object({
  teamId: Id,
  kind: NameSchema,
  lost: Count,
  /** Its live, active actors now, and the replicas its team asks for. */
  live: Count,
  replicas: Count,
  /** Actors placed in the stead of the lost ones ({@link inStead}). */
  placed: z.array(Id),
  /** Replicas missing now. */
  needed: Count,
  /** Live, uncordoned hosts with a free slot the kind may use. */
  hosts: z.array(Id),
  /**
   * `transfer_context`: replacements run; give them the lost actors' context (transfer-context).
   * `place`: replicas are missing and hosts have room (the supervisor's repair places them).
   * `free_capacity`: replicas are missing and no host has room (reallocate first).
   */
  action: z.enum(["transfer_context", "place", "free_capacity"]),
});

export const RecoveryPlanSchema = z.object({
  strategy: z.string(),
  replacements: z.array(ReplacementPlanSchema),
  /** The affected workflows still running, in the order to resume them. */
  order: z.array(
    z.object({
      workflowId: Id,
      priority: z.number().int(),
      criticalPathLength: Count,
      /** Their blocked chain's kinds' mean working time, added up (null: no kind measured yet). */
      estimatedMs: Millis.nullable(),
      waitsFor: z.array(Id),
    }),
  ),
  /** The longest of the workflows' estimates (they recover in parallel). */
  estimatedMs: Millis.nullable(),
  /** How the estimate was made. */
  basis: z.string(),
  /** Kinds on a blocked chain with no measured working time yet (counted as 0). */
  unmeasured: z.array(NameSchema),
});

export const CascadeReplySchema = z.object({
  at: Millis,
  /** The window's start (at - since_ms). */
  since: Millis,
  agents: z.array(FailedAgentSchema),
  hosts: z.array(FailedHostSchema),
  workflows: z.array(AffectedWorkflowSchema),
  /** Null when nothing failed in the window. */
  recovery: RecoveryPlanSchema.nullable(),
  /** The events read hit their cap: older tasks may be missing from `heldTasks`. */
  capped: z.boolean(),
});

// --- transfer-context ------------------------------------------------------------------------

/** `/workflow-recovery transfer-context`. */
export const TransferRequestSchema = z
  .object({
    failed_agents: z.array(Id).min(1).max(MAX_TRANSFERS),
    /** One per failed agent, in order: a live actor of the same team and kind. @default the actor placed in its stead */
    replacement_agents: z.array(Id).min(1).max(MAX_TRANSFERS).optional(),
    /** `history_only` leaves the snapshot out. @default "complete_state_and_history" */
    context_transfer: z.enum(["complete_state_and_history", "history_only"]).default("complete_state_and_history"),
    /**
     * After the transfer, read each replacement back from its host: `basic` checks it holds the
     * history; `comprehensive` also whom it inherited from and whether a snapshot came with it.
     * @default "comprehensive"
     */
    validation: z.enum(["none", "basic", "comprehensive"]).default("comprehensive"),
    /** `enabled`: the context given is kept as `checkpoint.<failed actor>`, so it can be given again. @default "disabled" */
    rollback_capability: z.enum(["enabled", "disabled"]).default("disabled"),
  })
  .strict()
  .superRefine((r, ctx) => {
    const fix = (path: string, message: string) => ctx.addIssue({ code: "custom", path: [path], message });
    if (new Set(r.failed_agents).size !== r.failed_agents.length) fix("failed_agents", "name each failed agent once");
    const to = r.replacement_agents;
    if (!to) return;
    if (to.length !== r.failed_agents.length) {
      fix(
        "replacement_agents",
        `give one replacement per failed agent (${r.failed_agents.length}), in the same order, or leave it out`,
      );
    }
    if (new Set(to).size !== to.length) fix("replacement_agents", "name each replacement once");
    const both = to.filter((id) => r.failed_agents.includes(id));
    if (both.length > 0)
      fix("replacement_agents", `${both.join(", ")} is also a failed agent: a replacement must be live`);
  });

export const TransferRowSchema = z.object({
  from: Id,
  /** Null when the transfer failed before a replacement was chosen. */
  to: Id.nullable(),
  hostId: Id.nullable(),
  /** No actor was in its stead: a new one was spawned with the context. */
  created: z.boolean(),
  /**
   * Where the context came from: `checkpoint` (kept at preemption or an earlier transfer),
   * `live` (its host still runs it, quarantined), `rebuilt` (its TASK_STARTED events).
   */
  source: z.enum(["checkpoint", "live", "rebuilt"]),
  /** Tasks in the history given. */
  history: Count,
  /** Where the snapshot came from; `none` for an actor lost with its host (nothing kept it). */
  snapshot: z.enum(["checkpoint", "live", "none"]),
  /** The context was kept as a checkpoint (rollback_capability). */
  kept: z.boolean(),
  /** Null when validation is `none` or the transfer failed. */
  validated: z.boolean().nullable(),
  reason: z.string().optional(),
  error: z.object({ code: z.string(), message: z.string() }).optional(),
});

export const TransferReplySchema = z.object({
  ms: Millis,
  agents: z.array(TransferRowSchema),
  /** Agents whose replacement was read back holding what was given, and their share in percent. */
  validated: Count,
  percent: z.number().min(0).max(100),
});

// --- the supervisor's side -------------------------------------------------------------------

/** `sup.actor.transfer`: give a failed actor's context to a live actor of its kind (or a new one). */
export const ActorTransferRequestSchema = z
  .object({
    fromActorId: Id,
    /** @default the actor placed in its stead ({@link inStead}), else a new one */
    toActorId: Id.optional(),
    /** The failed actor's team and kind (its record is gone once it was lost with its host). */
    teamId: Id,
    kind: NameSchema,
    /** When it failed: an actor placed in its stead was spawned after. @default 0 */
    lostAt: Millis.default(0),
    context: InheritedContextSchema,
    /** Keep the context as `checkpoint.<fromActorId>` in the registry bucket. @default false */
    keep: z.boolean().default(false),
  })
  .refine((r) => r.context.fromActorId === r.fromActorId, {
    path: ["context", "fromActorId"],
    message: "the context must be the failed actor's (context.fromActorId = fromActorId)",
  });
export const ActorTransferReplySchema = z.object({
  fromActorId: Id,
  toActorId: Id,
  hostId: Id,
  created: z.boolean(),
  /** The receiving actor's history after it adopted the context, latest first. */
  history: z.array(Id).max(50),
  kept: z.boolean(),
});

/** The part of an actor record {@link inStead} reads. */
export interface SteadCandidate {
  actorId: string;
  teamId: string;
  kindName: string;
  spawnedAt: number;
  status?: string | undefined;
  replaces?: string | undefined;
}

/**
 * How much earlier than a failure's event time an actor placed in its stead may say it was
 * spawned: its `spawnedAt` is the supervisor's clock, the failure's time the NATS server's.
 */
export const STEAD_CLOCK_SLACK_MS = 1000;

/**
 * Which actor stands in for each failed one. The rule: an actor whose record says it `replaces`
 * the failed one (a quarantine's replacement, an earlier transfer); else, failures taken in the
 * order they happened, the earliest-spawned active actor of the same team and kind, spawned at
 * or after the failure ({@link STEAD_CLOCK_SLACK_MS} allowed), replacing nobody and not taken by
 * an earlier failure: the one the supervisor's repair placed for it. The caller passes live
 * actors only.
 */
export function inStead(
  actors: readonly SteadCandidate[],
  failed: readonly { actorId: string; teamId: string | null; kind: string | null; at: number }[],
): Map<string, string> {
  const out = new Map<string, string>();
  const taken = new Set<string>();
  for (const f of failed) {
    const r = actors.find((a) => a.replaces === f.actorId);
    if (r) {
      out.set(f.actorId, r.actorId);
      taken.add(r.actorId);
    }
  }
  const free = actors
    .filter((a) => (a.status ?? "active") === "active" && !a.replaces)
    .sort((a, b) => a.spawnedAt - b.spawnedAt || a.actorId.localeCompare(b.actorId));
  for (const f of [...failed].sort((a, b) => a.at - b.at)) {
    if (out.has(f.actorId)) continue;
    const a = free.find(
      (x) =>
        !taken.has(x.actorId) &&
        x.actorId !== f.actorId &&
        x.teamId === f.teamId &&
        x.kindName === f.kind &&
        x.spawnedAt >= f.at - STEAD_CLOCK_SLACK_MS,
    );
    if (!a) continue;
    out.set(f.actorId, a.actorId);
    taken.add(a.actorId);
  }
  return out;
}

export type CascadeRequest = z.infer<typeof CascadeRequestSchema>;
export type CascadeReply = z.infer<typeof CascadeReplySchema>;
export type FailedAgent = z.infer<typeof FailedAgentSchema>;
export type TransferRequest = z.infer<typeof TransferRequestSchema>;
export type TransferReply = z.infer<typeof TransferReplySchema>;
export type ActorTransferRequest = z.infer<typeof ActorTransferRequestSchema>;
