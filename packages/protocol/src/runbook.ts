/**
 * Seed 003's runbook commands, as operations the monitor serves (`mon.<family>.<operation>`):
 * their requests take the seed's JSON shapes where they are concrete (snake_case, as the seed
 * writes them; a field the schema does not know is refused by name), and their replies say what
 * was measured and what was done. What each computes is in docs/architecture.md ("The runbook").
 */

import { z } from "zod";
import { Id, Millis } from "./messages.js";
import { NameSchema } from "./team.js";

const Percent = z.number().min(0);
const Count = z.number().int().nonnegative();
/** The seed's free-text fields (trigger, scope, focus...): taken, echoed, never interpreted. */
const Note = z.string().max(200);
const Notes = z.array(Note).max(20);

// --- resource-manager ------------------------------------------------------------------------

/** `/resource-manager emergency-analysis` and `analyze-utilization`: what to look at. */
export const UtilizationRequestSchema = z
  .object({
    trigger: Note.optional(),
    analysis_depth: z.enum(["summary", "comprehensive"]).default("comprehensive"),
    immediate_action_required: z.boolean().optional(),
    affected_systems: z
      .array(z.enum(["cpu", "memory", "agent_pool"]))
      .max(3)
      .optional(),
    scope: Note.optional(),
    focus: Notes.optional(),
  })
  .strict();

/** One host as the analysis measured it. */
export const HostUtilizationSchema = z.object({
  hostId: Id,
  state: z.string(),
  /** The 1-minute load average over the CPUs, in percent. */
  cpuPercent: Percent,
  /** Heap used over the heap limit, in percent (from the host's last report). */
  memoryPercent: Percent.nullable(),
  actors: Count,
  busy: Count,
  maxActors: Count,
});

/** One running workflow: its priority, what it holds, and what pausing it would free. */
export const WorkflowUtilizationSchema = z.object({
  workflowId: Id,
  team: NameSchema,
  priority: z.number().int(),
  paused: z.boolean(),
  /** Agent tasks running now (each holds an agent). */
  runningAgents: Count,
  /** Directors and leads running now. */
  runningCoordinators: Count,
  queued: Count,
  parked: Count,
  cap: Count.nullable(),
  guarantee: Count,
  /** What pausing it with `now` would give back at once: its running agent tasks. */
  yieldable: z.object({ agents: Count }),
});

export const UtilizationReplySchema = z.object({
  at: Millis,
  utilization: z.object({
    /**
     * Actors placed (each takes a slot of `max_concurrent_agents`) and busy, against the
     * capacity (`max_concurrent_agents`, or the live hosts' `maxActors` if fewer); percent: placed.
     */
    agents: z.object({ placed: Count, busy: Count, capacity: Count, percent: Percent }),
    /** The highest host's. */
    cpuPercent: Percent,
    memoryPercent: Percent.nullable(),
  }),
  /** The dimensions past their limit (agents placed 95%, memory the monitor's threshold, cpu 90%). */
  exhausted: z.array(z.enum(["agent_pool", "memory", "cpu"])),
  hosts: z.array(HostUtilizationSchema),
  workflows: z.array(WorkflowUtilizationSchema),
  /** Per kind, the stage holding the largest share of task time (sup.perf.stages). */
  bottlenecks: z.array(z.object({ kind: NameSchema, stage: z.string().nullable(), share: z.number(), tasks: Count })),
  /** Which workflows could yield how much, lowest priority first (never the highest's). */
  reallocation: z.array(z.object({ workflowId: Id, priority: z.number().int(), agents: Count })),
});

/** `/resource-manager agent-pool-assessment`. */
export const AgentPoolRequestSchema = z
  .object({ scope: Note.optional(), focus: Notes.optional() })
  .strict()
  .default({});
export const AgentPoolReplySchema = z.object({
  at: Millis,
  kinds: z.array(
    z.object({
      teamId: Id,
      kind: NameSchema,
      role: z.string(),
      actors: Count,
      busy: Count,
      available: Count,
      quarantined: Count,
    }),
  ),
  hosts: z.array(z.object({ hostId: Id, state: z.string(), free: Count, cordoned: z.boolean() })),
  /** Slots left under `max_concurrent_agents` and on live hosts: where replacements could go. */
  spare: z.object({ cluster: Count, hosts: Count }),
});

const ReallocationAction = z.discriminatedUnion("action", [
  z
    .object({
      action: z.literal("pause_low_priority_workflows"),
      /** @default every running workflow below the highest priority running */
      affected: z.array(Id).max(100).optional(),
      /** The seed's expectation; reported beside what was freed. */
      resource_recovery: z.record(z.string(), z.number()).optional(),
    })
    .strict(),
  z
    .object({
      action: z.literal("reduce_resource_allocation"),
      affected: z.array(Id).min(1).max(100),
      /** `agents`: how many fewer agents each may run at once; `memory_gb` is not metered per workflow. */
      reduction: z.object({ agents: Count.optional(), memory_gb: z.number().optional() }).strict(),
      /** Keep the agents of the tasks on the workflow's longest unfinished chain. @default true */
      maintain_critical_path: z.boolean().default(true),
    })
    .strict(),
  z
    .object({
      action: z.literal("optimize_high_priority_workflow"),
      affected: z.array(Id).min(1).max(100),
      optimization: Note.optional(),
      /** `agents` reserved for it (default: its running and queued agent tasks); cpu and memory are not metered. */
      resource_guarantee: z
        .object({ agents: Count.optional(), cpu: z.number().optional(), memory_gb: z.number().optional() })
        .strict()
        .default({}),
    })
    .strict(),
]);

/** `/resource-manager emergency-reallocation`. */
export const ReallocationRequestSchema = z
  .object({ strategy: Note.optional(), actions: z.array(ReallocationAction).min(1).max(20) })
  .strict();
export const ReallocationReplySchema = z.object({
  ms: Millis,
  actions: z.array(
    z.object({
      action: z.string(),
      workflows: z.array(
        z.object({
          workflowId: Id,
          done: z.string(),
          /** Agents given back or no longer taken: freed now (a pause) or as the cap is reached. */
          agents: Count,
          cap: Count.nullable().optional(),
          guarantee: Count.optional(),
          /** The tasks on the longest unfinished chain, whose agents the cap keeps. */
          criticalPath: z.array(Id).optional(),
        }),
      ),
      /** Requested fields Cadre cannot act on, with why. */
      ignored: z.array(z.string()),
    }),
  ),
  freed: z.object({ agents: Count }),
});

// --- workflow-recovery -----------------------------------------------------------------------

const ResumptionStage = z
  .object({
    stage: z.number().int().min(1),
    action: z.enum(["resume_paused_workflow", "restore_full_allocation"]),
    workflow: Id,
    /** `conservative`: half its team's agents of the busiest kind; a number: that many; absent: no cap. */
    resource_limit: z.union([z.literal("conservative"), z.number().int().positive()]).optional(),
    monitoring: Note.optional(),
    gradual_scaling: z.boolean().optional(),
    validation_checkpoints: z.boolean().optional(),
  })
  .strict();

/** `/workflow-recovery gradual-resumption`. */
export const ResumptionRequestSchema = z
  .object({
    resumption_strategy: Note.optional(),
    monitoring_level: Note.optional(),
    safety_checks: Note.optional(),
    /** How long the monitor must see every metric below its threshold before the next stage (ms). @default 10000 */
    healthy_for_ms: z.number().int().min(0).max(3_600_000).default(10_000),
    /** The longest a stage waits for health before the resumption stops there (ms). @default 300000 */
    stage_timeout_ms: z.number().int().min(1).max(3_600_000).default(300_000),
    stages: z.array(ResumptionStage).min(1).max(50),
  })
  .strict();
export const ResumptionReplySchema = z.object({
  ms: Millis,
  stages: z.array(
    z.object({
      stage: z.number().int(),
      workflowId: Id,
      action: z.string(),
      outcome: z.enum(["done", "paused-again", "not-healthy", "skipped"]),
      cap: Count.nullable(),
      /** From the stage's action to the cluster healthy for `healthy_for_ms`. */
      ms: Millis,
      /** A metric that crossed its threshold during the stage. */
      metric: z.string().optional(),
      reason: z.string().optional(),
    }),
  ),
  resumed: z.array(Id),
});

/** What `sup.perf.stages` answers, as far as {@link bottlenecks} reads it. */
export interface StageFigures {
  kinds: { kind: string; stages: { stage: string; count: number; sumSeconds: number }[] }[];
}

/** Per kind: the stage holding the largest share of the time, with every stage's share and mean. */
export function bottlenecks<S extends StageFigures["kinds"][number]["stages"][number]>(reply: {
  kinds: { kind: string; stages: S[] }[];
}) {
  return reply.kinds
    .map(({ kind, stages }) => {
      const total = stages.reduce((a, s) => a + s.sumSeconds, 0);
      const ranked = stages
        .map((s) => ({
          ...s,
          share: total > 0 ? s.sumSeconds / total : 0,
          meanSeconds: s.count > 0 ? s.sumSeconds / s.count : 0,
        }))
        .sort((a, b) => b.share - a.share);
      return {
        kind,
        bottleneck: ranked[0]?.stage ?? null,
        tasks: Math.max(0, ...stages.map((s) => s.count)),
        stages: ranked,
      };
    })
    .sort((a, b) => a.kind.localeCompare(b.kind));
}

// --- coordination-hub ------------------------------------------------------------------------

/** `/coordination-hub emergency-cleanup`: the monitor's cleanup action, on every live host, now. */
export const CleanupNowRequestSchema = z
  .object({
    scope: z.enum(["system_wide"]).default("system_wide"),
    actions: z
      .array(
        z.enum(["aggressive_garbage_collection", "temp_file_cleanup", "cache_purging", "idle_process_termination"]),
      )
      .max(4)
      .optional(),
    /** The seed's expectation (`{"memory": "20_percent"}`): reported beside what was freed. */
    resource_recovery_target: z.record(z.string(), z.string()).optional(),
  })
  .strict();
export const CleanupNowReplySchema = z.object({
  ms: Millis,
  hosts: z.array(
    z.object({
      hostId: Id,
      ok: z.boolean(),
      heapBeforeBytes: Count.optional(),
      heapAfterBytes: Count.optional(),
      freedBytes: Count.optional(),
      gc: z.boolean().optional(),
      released: z.array(z.string()).optional(),
      error: z.string().optional(),
    }),
  ),
  freed: z.object({
    bytes: Count,
    /** Freed over the hosts' heap before, in percent. */
    percent: Percent,
  }),
  /** The seed's target for memory, and whether what was freed met it. */
  target: z.object({ memoryPercent: Percent, met: z.boolean() }).nullable(),
  /** Requested actions Cadre has nothing for, with why. */
  ignored: z.array(z.string()),
});

/** `/coordination-hub checkpoint-validation`: a workflow's checkpoints, checked. */
export const CheckpointValidationRequestSchema = z
  .object({
    /** The workflow whose checkpoints to check (the seed names none: Cadre's checkpoints are per workflow). */
    workflow: Id,
    scope: Note.optional(),
    focus: Notes.optional(),
  })
  .strict();
export const CheckpointValidationReplySchema = z.object({
  workflowId: Id,
  /** The state log (CADRE_STATE_LOG): what rollback replays from. */
  log: z.object({ firstSeq: Count, lastSeq: Count, bucketLastSeq: Count, lagging: Count }),
  checkpoints: z.array(
    z.object({
      position: Count,
      at: Millis.nullable(),
      keys: Count,
      /** The stored value's CRC32 checks out and it has a checkpoint's shape. */
      checksum: z.enum(["ok", "damaged"]),
      /** The log still holds every entry after it, so a rollback to it can replay them. */
      replayable: z.boolean(),
      reason: z.string().optional(),
    }),
  ),
  valid: z.boolean(),
});

export type UtilizationReply = z.infer<typeof UtilizationReplySchema>;
export type ReallocationRequest = z.infer<typeof ReallocationRequestSchema>;
export type ReallocationReply = z.infer<typeof ReallocationReplySchema>;
export type ResumptionRequest = z.infer<typeof ResumptionRequestSchema>;
export type ResumptionReply = z.infer<typeof ResumptionReplySchema>;
export type CleanupNowRequest = z.infer<typeof CleanupNowRequestSchema>;
