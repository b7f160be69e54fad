/**
 * The operations table: every request/reply Cadre serves, in one place. Each entry names the
 * service that answers it, its request and reply schemas and the roles that may call it; the
 * subject, the queue group, the micro-service endpoint, the codec's message types and (later)
 * the NATS permissions are all derived from it, so a request and its reply cannot be mismatched
 * and no operation subject is written anywhere else.
 *
 * Subjects: a supervisor operation `sup.<path>` is `cadre.v1.sup.<path>`, answered by the
 * supervisors' queue group (the active one subscribes); an agent-host operation `host.<path>`
 * is `cadre.v1.host.<hostId>.<path>`, answered by that host.
 */

import { z } from "zod";
import { ProtocolError } from "./errors.js";
import {
  AcquireReplySchema,
  AcquireRequestSchema,
  ActorControlReplySchema,
  ActorControlRequestSchema,
  ActorRecordSchema,
  coreMessages,
  DelegateReplySchema,
  DelegateRequestSchema,
  FreezeReplySchema,
  FreezeRequestSchema,
  HoldingSchema,
  Id,
  Millis,
  QuarantineReasonSchema,
  QuarantineReplySchema,
  QuarantineRequestSchema,
  ReleaseReplySchema,
  ReleaseRequestSchema,
  SpawnReplySchema,
  SpawnRequestSchema,
  StatusRequestSchema,
  SubmitReplySchema,
  SubmitRequestSchema,
  TaskRecordSchema,
  WaitsReplySchema,
  WaitsRequestSchema,
  WorkflowRecordSchema,
} from "./messages.js";
import { MetricStateSchema } from "./monitoring.js";
import {
  AgentPoolReplySchema,
  AgentPoolRequestSchema,
  CheckpointValidationReplySchema,
  CheckpointValidationRequestSchema,
  CleanupNowReplySchema,
  CleanupNowRequestSchema,
  ReallocationReplySchema,
  ReallocationRequestSchema,
  ResumptionReplySchema,
  ResumptionRequestSchema,
  UtilizationReplySchema,
  UtilizationRequestSchema,
} from "./runbook.js";
import {
  CorruptionAssessmentReplySchema,
  CorruptionAssessmentRequestSchema,
  DataProtectionReplySchema,
  DataProtectionRequestSchema,
  DataRecoveryReplySchema,
  DataRecoveryRequestSchema,
  StateCheckpointReplySchema,
  StateCheckpointRequestSchema,
  StateRollbackReplySchema,
  StateRollbackRequestSchema,
} from "./runbook-data.js";
import {
  DependencyAnalysisReplySchema,
  DependencyAnalysisRequestSchema,
  DependencyRecoveryReplySchema,
  DependencyRecoveryRequestSchema,
} from "./runbook-dependencies.js";
import {
  BottleneckReplySchema,
  BottleneckRequestSchema,
  ComprehensiveReplySchema,
  ComprehensiveRequestSchema,
  PostEmergencyReplySchema,
  PostEmergencyRequestSchema,
} from "./runbook-performance.js";
import {
  ActorTransferReplySchema,
  ActorTransferRequestSchema,
  CascadeReplySchema,
  CascadeRequestSchema,
  TransferReplySchema,
  TransferRequestSchema,
} from "./runbook-recovery.js";
import { SUBJECT_PREFIX, token } from "./subjects.js";
import { NameSchema, TeamSchema } from "./team.js";

/** Who may call an operation. One NATS identity per service and host, two for people. */
export const ROLES = ["supervisor", "agent-host", "monitor", "operator", "viewer"] as const;
export type Role = (typeof ROLES)[number];

/** Changes operators make. */
const OPERATOR: readonly Role[] = ["operator"];
/** What people and the monitor may read. */
const READ: readonly Role[] = ["operator", "viewer", "monitor"];
/** Controls the monitor also takes, for the runbook commands an operator asks of it (runbook.ts). */
const RUNBOOK: readonly Role[] = ["operator", "monitor"];

// --- workflow controls ---------------------------------------------------------------------

/**
 * A workflow's controls, kept in the registry bucket (`control.<workflowId>`), so they survive a
 * supervisor failover and every host can follow them with a watch.
 */
export const WorkflowControlSchema = z.object({
  workflowId: Id,
  teamId: Id,
  /** Paused: its tasks are parked instead of started; running attempts finish (or yield with `now`). */
  paused: z.boolean().default(false),
  /**
   * Paused with `now`: every agent attempt found running gives its task back, also one whose
   * start the supervisor hears of only after the pause (see controls.ts `started`).
   */
  yielding: z.boolean().default(false),
  /** Cancelled: every unfinished task ends `cancelled`; terminal. */
  cancelled: z
    .object({ reason: z.string().max(1000), at: Millis })
    .nullable()
    .default(null),
  /** At most this many agent attempts of the workflow run at once; null for no cap. */
  maxAgents: z.number().int().positive().nullable().default(null),
  /** Actors of its team that placement and preemption leave alone (capacity reserved for it). */
  guarantee: z.number().int().nonnegative().default(0),
  /** Tasks a host gave back instead of starting (paused, over the cap); re-published at a new epoch. */
  parked: z
    .array(z.object({ taskId: Id, epoch: z.number().int().min(1) }))
    .max(10_000)
    .default([]),
  updatedAt: Millis,
});
export type WorkflowControl = z.infer<typeof WorkflowControlSchema>;

const WorkflowRef = z.object({ workflowId: Id });
const ControlReply = z.object({ control: WorkflowControlSchema });

export const WorkflowListRequestSchema = z.object({
  status: z.enum(["running", "paused", "completed", "failed", "cancelled"]).optional(),
  /** @default 100 */
  limit: z.number().int().min(1).max(1000).default(100),
});
export const WorkflowListReplySchema = z.object({
  workflows: z.array(WorkflowRecordSchema.extend({ control: WorkflowControlSchema.nullable() })),
});

export const PauseRequestSchema = z.object({
  workflowId: Id,
  /** Also stop the running attempts and give their tasks back (re-run on resume). @default false */
  now: z.boolean().default(false),
});
export const CancelRequestSchema = z.object({
  workflowId: Id,
  reason: z.string().max(1000).default("cancelled by an operator"),
});
export const CancelReplySchema = z.object({ control: WorkflowControlSchema, cancelled: z.array(Id) });
export const LimitRequestSchema = z.object({
  workflowId: Id,
  /** Cap on concurrent agent attempts; null removes it. Absent leaves it as it is. */
  agents: z.number().int().positive().nullable().optional(),
  /** Actors reserved for it; 0 removes it. Absent leaves it as it is. */
  guarantee: z.number().int().nonnegative().max(10_000).optional(),
});

/** A host asks before it hands a task of a controlled workflow to an actor. */
export const AdmitRequestSchema = z.object({
  taskId: Id,
  workflowId: Id,
  epoch: z.number().int().min(1),
  kind: NameSchema,
  holding: HoldingSchema.optional(),
});
export const AdmitReplySchema = z.object({
  /** run: start it; parked: ack it, the supervisor re-publishes it later; cancelled: drop it. */
  decision: z.enum(["run", "parked", "cancelled"]),
});

export const StatusReplySchema = z.object({
  workflow: WorkflowRecordSchema,
  control: WorkflowControlSchema.nullable().default(null),
});

// --- teams, actors, hosts -------------------------------------------------------------------

export const TeamSummarySchema = z.object({
  teamId: Id,
  name: NameSchema,
  priority: z.number().int(),
  kinds: z.array(NameSchema),
  actors: z.number().int().nonnegative(),
  /** Workflows of the team still running. */
  running: z.number().int().nonnegative(),
  /** When the team last had work queued or running (this supervisor's view). */
  lastActiveAt: Millis.nullable(),
});
export const TeamListReplySchema = z.object({ teams: z.array(TeamSummarySchema) });
export const TeamRetireRequestSchema = z.object({ teamId: Id, force: z.boolean().default(false) });
export const TeamRetireReplySchema = z.object({ teamId: Id, actors: z.array(Id) });

export const ActorListRequestSchema = z.object({ teamId: Id.optional(), hostId: Id.optional() });
export const ActorListReplySchema = z.object({ actors: z.array(ActorRecordSchema) });
export const ActorRetireRequestSchema = z.object({ actorId: Id });
export const ActorRetireReplySchema = z.object({ actorId: Id, requeued: Id.optional() });

export const HostSummarySchema = z.object({
  hostId: Id,
  incarnation: Id,
  state: z.enum(["alive", "suspect", "unreachable", "unknown"]),
  lastHeartbeatAt: Millis.nullable(),
  actors: z.number().int().nonnegative(),
  busy: z.number().int().nonnegative(),
  maxActors: z.number().int().positive(),
  load: z.number().nonnegative(),
  heapUsedMb: z.number().nonnegative().optional(),
  cordoned: z.boolean(),
  circuits: z.record(z.string(), z.string()).default({}),
});
export const HostListReplySchema = z.object({ hosts: z.array(HostSummarySchema) });
export const HostRefSchema = z.object({ hostId: Id });
export const CordonRequestSchema = z.object({ hostId: Id, cordoned: z.boolean() });
export const DrainReplySchema = z.object({
  hostId: Id,
  /** Actors started elsewhere in place of the host's. */
  moved: z.array(z.object({ from: Id, to: Id })),
  /** Tasks the host's actors held, given back to the queue. */
  requeued: z.array(Id),
});

// --- inspection ------------------------------------------------------------------------------

/** One task in a workflow's tree, with who holds it now. */
export const TaskNodeSchema = z.object({
  taskId: Id,
  parentTaskId: Id.nullable(),
  kind: NameSchema,
  status: z.enum(["queued", "running", "parked", "completed", "failed", "cancelled"]),
  epoch: z.number().int(),
  attempts: z.number().int().nonnegative(),
  holder: z.object({ hostId: Id, actorId: Id.nullable() }).nullable(),
  createdAt: Millis,
  startedAt: Millis.nullable(),
  finishedAt: Millis.nullable(),
  /** Milliseconds in each stage: queued before its first start, working, and in all. */
  stages: z.object({ queuedMs: Millis.nullable(), workingMs: Millis.nullable(), totalMs: Millis.nullable() }),
  error: z.object({ code: z.string(), message: z.string() }).optional(),
  /** Results of superseded epochs recorded beside the applied one (RESULT_CONFLICT). @default 0 */
  conflicts: z.number().int().nonnegative().default(0),
});
export const DebugWorkflowReplySchema = z.object({
  workflow: WorkflowRecordSchema,
  control: WorkflowControlSchema.nullable(),
  tasks: z.array(TaskNodeSchema),
});
export const DebugTaskRequestSchema = z.object({ taskId: Id });
export const DebugTaskReplySchema = z.object({
  record: TaskRecordSchema,
  holder: z.object({ hostId: Id, actorId: Id.nullable() }).nullable(),
  children: z.array(Id),
});
export const DebugActorRequestSchema = z.object({ actorId: Id });
/** What a host knows of one of its actors. */
export const ActorInspectReplySchema = z.object({
  actorId: Id,
  /** The XState machine's state value. */
  state: z.unknown(),
  quarantined: z.boolean(),
  held: z
    .object({
      taskId: Id,
      epoch: z.number().int(),
      attempt: z.number().int(),
      startedAt: Millis,
      chain: z.array(NameSchema),
    })
    .nullable(),
  /** Tasks it handled, latest first. */
  history: z.array(Id).max(50),
  /** Its persisted XState snapshot. */
  snapshot: z.unknown().optional(),
  idleSinceMs: Millis.nullable(),
  /** The failed actor whose context it took on (spawned as its replacement, or adopted since). */
  inherited: z
    .object({ fromActorId: Id, tasks: z.number().int().nonnegative(), snapshot: z.boolean() })
    .nullable()
    .optional(),
});
export const DebugActorReplySchema = z.object({
  record: ActorRecordSchema,
  /** From its host; null when the host did not answer. */
  live: ActorInspectReplySchema.nullable(),
});

// --- agent-host operations ------------------------------------------------------------------

/** The supervisor stops a running attempt (cancel) or has it give its task back (pause --now). */
export const TaskControlRequestSchema = z.object({
  op: z.enum(["stop", "yield"]),
  taskId: Id,
  reason: z.string().max(1000).default(""),
});
export const TaskControlReplySchema = z.object({
  taskId: Id,
  /** Whether an actor of this host held it. */
  held: z.boolean(),
  epoch: z.number().int().min(1).optional(),
});

// --- the table -------------------------------------------------------------------------------

/** One operation. */
export interface OperationDef<Q extends z.ZodType = z.ZodType, R extends z.ZodType = z.ZodType> {
  readonly service: "supervisor" | "agent-host" | "monitor";
  readonly request: Q;
  readonly reply: R;
  readonly roles: readonly Role[];
  readonly summary: string;
  /**
   * Answered by the holder of the workflow's partition (supervisor partitions.ts), not by the
   * lease holder: its subject carries the partition, `cadre.v1.sup.part.<p>.<op>`.
   */
  readonly partitioned?: true;
}

const sup = <Q extends z.ZodType, R extends z.ZodType>(
  request: Q,
  reply: R,
  roles: readonly Role[],
  summary: string,
): OperationDef<Q, R> & { service: "supervisor" } => ({ service: "supervisor", request, reply, roles, summary });
const host = <Q extends z.ZodType, R extends z.ZodType>(
  request: Q,
  reply: R,
  summary: string,
  roles: readonly Role[] = ["supervisor"],
): OperationDef<Q, R> & { service: "agent-host" } => ({
  service: "agent-host",
  request,
  reply,
  roles,
  summary,
});
const mon = <Q extends z.ZodType, R extends z.ZodType>(
  request: Q,
  reply: R,
  roles: readonly Role[],
  summary: string,
): OperationDef<Q, R> & { service: "monitor" } => ({ service: "monitor", request, reply, roles, summary });

/** The monitor's throttle (its `throttle` action), or an operator's: see Intake.submit. */
export const ThrottleRequestSchema = z.object({
  /** Workflows submitted with a priority below this are refused. */
  belowPriority: z.number().int(),
  /** For how long from now; 0 lifts the throttle. */
  forMs: z.number().int().min(0).max(86_400_000),
  reason: z.string().max(1000),
});
export const ThrottleReplySchema = z.object({ belowPriority: z.number().int(), untilMs: z.number().int().nullable() });

/** What a host released on the monitor's `cleanup` action. */
export const CleanupRequestSchema = z.object({ reason: z.string().max(1000).default("") });
export const CleanupReplySchema = z.object({
  heapBeforeBytes: z.number().int().nonnegative(),
  heapAfterBytes: z.number().int().nonnegative(),
  freedBytes: z.number().int().nonnegative(),
  /** Whether a full garbage collection ran (only where node runs with --expose-gc). */
  gc: z.boolean(),
  /** What was let go (caches, idle actors' snapshots...). */
  released: z.array(z.string().max(200)).max(20),
});

/** The monitor's `bypass` action: skip a hook on this host for a while. */
export const BypassRequestSchema = z.object({
  hook: NameSchema,
  forMs: z.number().int().min(1).max(86_400_000),
  /** The cluster-wide failure rate that made the monitor ask. */
  failureRate: z.number().min(0).max(1),
});
export const BypassReplySchema = z.object({ bypassed: z.boolean() });

/** Each kind's time per task stage (the supervisor's cadre_task_stage_seconds), for `cadre perf bottlenecks`. */
export const StageReplySchema = z.object({
  kinds: z.array(
    z.object({
      kind: NameSchema,
      stages: z.array(
        z.object({
          stage: z.enum(["queued", "working", "waiting", "applying"]),
          count: z.number().int().nonnegative(),
          sumSeconds: z.number().nonnegative(),
          /** Upper bounds of the histogram bucket holding the median and the 95th percentile. */
          p50Seconds: z.number().nullable(),
          p95Seconds: z.number().nullable(),
        }),
      ),
    }),
  ),
});
export const MonitorStatusReplySchema = z.object({
  metrics: z.array(MetricStateSchema),
  /** Services whose reports are current. */
  sources: z.array(z.object({ service: z.string().max(20), id: Id, at: z.number().int() })),
});

const Empty = z.object({});

/** The most hand-overs one sup.coordinate carries. */
export const MAX_HANDOVERS = 256;

/**
 * What the holder of a workflow's partition, having applied a result, tells the lease holder,
 * which keeps what is the whole cluster's in memory (supervisor.ts "Partitions"): `applied`
 * frees the task's cap slot and resources and counts a replayed result in its host's
 * reconciliation; `quarantine` takes out an actor whose response broke its kind's schema;
 * `delegated` records what a delegation means for waits and placement; `submitted`, what a
 * submit means for placement.
 */
export const HandoverSchema = z.discriminatedUnion("kind", [
  z.object({
    kind: z.literal("applied"),
    taskId: Id,
    workflowId: Id,
    outcome: z.enum(["applied", "duplicate", "conflict", "retried", "reprocessed", "orphan"]),
    root: z.boolean(),
    /** A result replayed from a host's outbox: the host and its `replay` header (`<batch>:<count>`). */
    replay: z.object({ hostId: Id, batch: z.string().min(1).max(200) }).optional(),
  }),
  z.object({ kind: z.literal("quarantine"), actorId: Id, reason: QuarantineReasonSchema }),
  /**
   * A delegation served by the partition's holder: its parent now waits for the subtasks it
   * created (the wait-for graph), and their kinds are placed if none of their actors runs.
   */
  z.object({
    kind: z.literal("delegated"),
    parentTaskId: Id,
    teamId: Id,
    created: z.array(Id).max(1000),
    kinds: z.array(NameSchema).min(1).max(1000),
  }),
  /**
   * A submit served by another supervisor (submits are answered by every one holding a
   * partition): with the team, its first there, placed in full as the lease holder's own submit
   * places it (a refusal is the submit's); without, its root kind placed if none of its actors runs.
   */
  z.object({ kind: z.literal("submitted"), teamId: Id, root: NameSchema, team: TeamSchema.optional() }),
]);
export type Handover = z.infer<typeof HandoverSchema>;
/** Hand-overs sent together: those that waited while the previous request was answered. */
export const CoordinateRequestSchema = z.object({ items: z.array(HandoverSchema).min(1).max(MAX_HANDOVERS) });
export type CoordinateRequest = z.infer<typeof CoordinateRequestSchema>;
export const CoordinateReplySchema = z.object({ done: z.literal(true) });

/**
 * Every operation, by name. The name is also the codec's request type; its reply type is the
 * name plus `.ok`.
 */
export const operations = {
  "sup.submit": sup(SubmitRequestSchema, SubmitReplySchema, ["operator"], "submit a team's workflow"),
  "sup.delegate": {
    ...sup(DelegateRequestSchema, DelegateReplySchema, ["agent-host"], "create a task's subtasks"),
    partitioned: true,
  },
  "sup.coordinate": sup(
    CoordinateRequestSchema,
    CoordinateReplySchema,
    ["supervisor"],
    "a partition holder's applied result or quarantine, for the lease holder",
  ),
  "sup.status": sup(StatusRequestSchema, StatusReplySchema, READ, "a workflow's record and controls"),
  "sup.quarantine": sup(
    QuarantineRequestSchema,
    QuarantineReplySchema,
    OPERATOR,
    "list, release or retire quarantined actors",
  ),
  "sup.quarantine.list": sup(Empty, QuarantineReplySchema, READ, "quarantined actors, with why (read-only)"),
  "sup.acquire": sup(AcquireRequestSchema, AcquireReplySchema, ["agent-host"], "acquire a named resource"),
  "sup.release": sup(ReleaseRequestSchema, ReleaseReplySchema, ["agent-host"], "release a task's resources"),
  "sup.waits": sup(WaitsRequestSchema, WaitsReplySchema, READ, "the wait-for graph"),
  "sup.freeze": sup(FreezeRequestSchema, FreezeReplySchema, RUNBOOK, "data protection mode on or off"),
  "sup.workflow.list": sup(WorkflowListRequestSchema, WorkflowListReplySchema, READ, "workflows, newest first"),
  "sup.workflow.pause": sup(PauseRequestSchema, ControlReply, RUNBOOK, "stop handing a workflow's tasks to actors"),
  "sup.workflow.resume": sup(WorkflowRef, ControlReply, RUNBOOK, "hand a paused workflow's tasks out again"),
  "sup.workflow.cancel": sup(CancelRequestSchema, CancelReplySchema, OPERATOR, "end every unfinished task cancelled"),
  "sup.workflow.limit": sup(
    LimitRequestSchema,
    ControlReply,
    RUNBOOK,
    "cap a workflow's agents or reserve actors for it",
  ),
  "sup.task.admit": sup(
    AdmitRequestSchema,
    AdmitReplySchema,
    ["agent-host"],
    "may this task of a controlled workflow start",
  ),
  "sup.team.list": sup(Empty, TeamListReplySchema, READ, "teams with their actors"),
  "sup.team.retire": sup(
    TeamRetireRequestSchema,
    TeamRetireReplySchema,
    OPERATOR,
    "stop a team's actors and forget it",
  ),
  "sup.actor.list": sup(ActorListRequestSchema, ActorListReplySchema, READ, "actors, by team or host"),
  "sup.actor.retire": sup(ActorRetireRequestSchema, ActorRetireReplySchema, OPERATOR, "stop one actor"),
  "sup.actor.transfer": sup(
    ActorTransferRequestSchema,
    ActorTransferReplySchema,
    RUNBOOK,
    "give a failed actor's context to a live actor of its kind, or a new one (CONTEXT_TRANSFERRED)",
  ),
  "sup.host.list": sup(Empty, HostListReplySchema, READ, "agent-hosts with liveness and load"),
  "sup.host.cordon": sup(
    CordonRequestSchema,
    HostSummarySchema,
    OPERATOR,
    "keep new actors off a host, or let them on",
  ),
  "sup.host.drain": sup(HostRefSchema, DrainReplySchema, OPERATOR, "cordon a host and move its actors and tasks"),
  "sup.debug.workflow": sup(WorkflowRef, DebugWorkflowReplySchema, READ, "a workflow's task tree"),
  "sup.debug.task": sup(DebugTaskRequestSchema, DebugTaskReplySchema, READ, "a task record with every result seen"),
  "sup.debug.actor": sup(DebugActorRequestSchema, DebugActorReplySchema, READ, "an actor's record and live state"),
  "sup.admission.throttle": sup(
    ThrottleRequestSchema,
    ThrottleReplySchema,
    ["monitor", "operator"],
    "refuse new workflows below a priority for a while",
  ),
  "sup.perf.stages": sup(
    Empty,
    StageReplySchema,
    READ,
    "each kind's time per task stage, since this supervisor started",
  ),
  "sup.state.checkpoint": sup(
    StateCheckpointRequestSchema,
    StateCheckpointReplySchema,
    RUNBOOK,
    "keep a workflow's state as of now, at a log position",
  ),
  "sup.state.rollback": sup(
    StateRollbackRequestSchema,
    StateRollbackReplySchema,
    RUNBOOK,
    "restore a workflow's checkpoint, replay the log after it (except the transactions named), verify (STATE_ROLLED_BACK)",
  ),
  "mon.status": mon(Empty, MonitorStatusReplySchema, READ, "the six cluster metrics with thresholds and state"),
  // Seed 003's data integrity scenario (runbook-data.ts).
  "mon.coordination-hub.emergency-data-protection": mon(
    DataProtectionRequestSchema,
    DataProtectionReplySchema,
    OPERATOR,
    "freeze a workflow's state, checkpoint it, validate its checkpoints, confirm the state log (DATA_PROTECTION_ACTIVATED)",
  ),
  "mon.workflow-recovery.corruption-assessment": mon(
    CorruptionAssessmentRequestSchema,
    CorruptionAssessmentReplySchema,
    READ,
    "a workflow's damaged state values, the checkpoint a recovery would restore, what it could rebuild (DATA_INTEGRITY_ALERT when damaged)",
  ),
  "mon.workflow-recovery.execute-data-recovery": mon(
    DataRecoveryRequestSchema,
    DataRecoveryReplySchema,
    OPERATOR,
    "restore the latest verified checkpoint, replay the log after it, verify every value, unfreeze (DATA_RECOVERY_COMPLETED)",
  ),
  // Seed 003's runbook (runbook.ts): the monitor measures, and acts through the supervisor.
  "mon.resource-manager.emergency-analysis": mon(
    UtilizationRequestSchema,
    UtilizationReplySchema,
    OPERATOR,
    "utilization per host and workflow, what is exhausted, the bottlenecks, what could yield (RESOURCE_EXHAUSTION)",
  ),
  "mon.resource-manager.analyze-utilization": mon(
    UtilizationRequestSchema,
    UtilizationReplySchema,
    READ,
    "utilization per host and workflow, the bottlenecks, what could yield (no event)",
  ),
  "mon.resource-manager.agent-pool-assessment": mon(
    AgentPoolRequestSchema,
    AgentPoolReplySchema,
    READ,
    "agents per kind (busy, available, quarantined) and where replacements could go",
  ),
  "mon.resource-manager.emergency-reallocation": mon(
    ReallocationRequestSchema,
    ReallocationReplySchema,
    OPERATOR,
    "pause low-priority workflows, cap others keeping their critical path, guarantee the high one",
  ),
  "mon.coordination-hub.emergency-cleanup": mon(
    CleanupNowRequestSchema,
    CleanupNowReplySchema,
    OPERATOR,
    "the monitor's cleanup on every live host now, with what each freed (CLEANUP_REPORTED per host)",
  ),
  "mon.coordination-hub.checkpoint-validation": mon(
    CheckpointValidationRequestSchema,
    CheckpointValidationReplySchema,
    READ,
    "a workflow's checkpoints: checksums, and whether the state log still holds what a rollback to each replays",
  ),
  "mon.coordination-hub.dependency-analysis": mon(
    DependencyAnalysisRequestSchema,
    DependencyAnalysisReplySchema,
    READ,
    "workflows waiting for workflows (after): each one's progress and critical path, the edges, the order dependencies first, the blocked ones, the longest chain",
  ),
  "mon.coordination-hub.execute-dependency-recovery": mon(
    DependencyRecoveryRequestSchema,
    DependencyRecoveryReplySchema,
    OPERATOR,
    "give failed agents' contexts to their replacements, then per chain hold the dependent until the primary completed (DEPENDENCY_RECOVERY_COMPLETED; give --timeout)",
  ),
  // Seed 003's agent pool failure (runbook-recovery.ts).
  "mon.workflow-recovery.analyze-cascade-failure": mon(
    CascadeRequestSchema,
    CascadeReplySchema,
    OPERATOR,
    "actors lost, quarantined or retired, the tasks they held and where those are now, the chains waiting on them, the critical paths, a recovery plan (RECOVERY_PLAN_GENERATED)",
  ),
  "mon.workflow-recovery.transfer-context": mon(
    TransferRequestSchema,
    TransferReplySchema,
    OPERATOR,
    "give each failed actor's history (and snapshot, when kept) to its replacement and read it back (CONTEXT_TRANSFERRED, RECOVERY_VALIDATION_COMPLETED)",
  ),
  "mon.workflow-recovery.gradual-resumption": mon(
    ResumptionRequestSchema,
    ResumptionReplySchema,
    OPERATOR,
    "resume workflows stage by stage, each after the cluster stayed healthy; a stage that breaks a threshold is paused again",
  ),
  // /performance-monitor (runbook-performance.ts).
  "mon.performance-monitor.comprehensive-analysis": mon(
    ComprehensiveRequestSchema,
    ComprehensiveReplySchema,
    READ,
    "the six metrics, the trends announced within time_horizon, heaps, stage bottlenecks, host load, and findings by rule",
  ),
  "mon.performance-monitor.emergency-assessment": mon(
    ComprehensiveRequestSchema,
    ComprehensiveReplySchema,
    READ,
    "comprehensive-analysis under the seed's other name (the same fields and reply)",
  ),
  "mon.performance-monitor.bottleneck-analysis": mon(
    BottleneckRequestSchema,
    BottleneckReplySchema,
    READ,
    "per kind the stage holding the largest share of its time, every stage's share, mean and p95, ranked; the busiest host",
  ),
  "mon.performance-monitor.post-emergency-monitoring": mon(
    PostEmergencyRequestSchema,
    PostEmergencyReplySchema,
    OPERATOR,
    "watch the metrics for a duration at a raised sensitivity, then report the regressions seen (POST_EMERGENCY_MONITORING_*; give --timeout beyond the duration)",
  ),
  "host.spawn": host(SpawnRequestSchema, SpawnReplySchema, "start actors"),
  "host.actor": host(ActorControlRequestSchema, ActorControlReplySchema, "quarantine, release or retire an actor"),
  "host.task": host(TaskControlRequestSchema, TaskControlReplySchema, "stop a running attempt or give its task back"),
  "host.inspect": host(DebugActorRequestSchema, ActorInspectReplySchema, "an actor's live state"),
  "host.cleanup": host(CleanupRequestSchema, CleanupReplySchema, "release what can be released and say what it freed", [
    "monitor",
    "operator",
  ]),
  "host.hooks.bypass": host(BypassRequestSchema, BypassReplySchema, "skip a hook on this host for a while", [
    "monitor",
    "operator",
  ]),
} as const satisfies Record<string, OperationDef>;

export type Operations = typeof operations;
export type OperationName = keyof Operations;
export type SupervisorOperationName = {
  [K in OperationName]: Operations[K]["service"] extends "supervisor" ? K : never;
}[OperationName];
export type HostOperationName = {
  [K in OperationName]: Operations[K]["service"] extends "agent-host" ? K : never;
}[OperationName];
export type MonitorOperationName = {
  [K in OperationName]: Operations[K]["service"] extends "monitor" ? K : never;
}[OperationName];
export type OpRequest<N extends OperationName> = z.infer<Operations[N]["request"]>;
export type OpRequestInput<N extends OperationName> = z.input<Operations[N]["request"]>;
export type OpReply<N extends OperationName> = z.infer<Operations[N]["reply"]>;
export type OpReplyInput<N extends OperationName> = z.input<Operations[N]["reply"]>;

/** Queue group shared by supervisors so each request is answered once. */
export const SUPERVISOR_QUEUE = "cadre-supervisor";

/** The part of an operation's name after its service prefix: `workflow.pause`. */
const pathOf = (name: OperationName): string => name.slice(name.indexOf(".") + 1);

/** The operations the holder of a workflow's partition answers (see {@link OperationDef.partitioned}). */
export const PARTITIONED_OPERATIONS = (Object.keys(operations) as OperationName[]).filter(
  (n) => (operations[n] as OperationDef).partitioned,
) as SupervisorOperationName[];

/**
 * The subject an operation is served on. A host operation needs the host id, a partitioned one
 * the partition (a non-negative integer); with `"*"` either is the wildcard form (for permissions).
 */
export function operationSubject(name: OperationName, address?: string | number): string {
  const def: OperationDef = operations[name];
  if (def.partitioned) {
    if (address === undefined)
      throw new TypeError(`operation ${name} is answered by a partition's holder: give the partition`);
    if (address !== "*" && !(Number.isInteger(address) && (address as number) >= 0)) {
      throw new ProtocolError(`partition "${String(address)}" is not a non-negative integer`, {
        what: "partition",
        value: String(address).slice(0, 64),
      });
    }
    return `${SUBJECT_PREFIX}.sup.part.${address}.${pathOf(name)}`;
  }
  if (def.service === "supervisor") return `${SUBJECT_PREFIX}.sup.${pathOf(name)}`;
  if (def.service === "monitor") return `${SUBJECT_PREFIX}.mon.${pathOf(name)}`;
  if (address === undefined) throw new TypeError(`operation ${name} is answered by one host: give its id`);
  return `${SUBJECT_PREFIX}.host.${address === "*" ? "*" : token("host id", String(address))}.${pathOf(name)}`;
}

/** The micro-service endpoint name of an operation (`$SRV.INFO` lists it): `workflow-pause`. */
export const endpointName = (name: OperationName): string => pathOf(name).replaceAll(".", "-");

/** The operations one service answers. */
export const operationsOf = (service: OperationDef["service"]): OperationName[] =>
  (Object.keys(operations) as OperationName[]).filter((n) => operations[n].service === service);

/** The operations a role may call. */
export const operationsFor = (role: Role): OperationName[] =>
  (Object.keys(operations) as OperationName[]).filter((n) => operations[n].roles.includes(role));

type OpMessages = { [K in OperationName]: Operations[K]["request"] } & {
  [K in OperationName as `${K}.ok`]: Operations[K]["reply"];
};

/** Every message type and its body's schema: the core messages and each operation's request and reply. */
export const messages = {
  ...coreMessages,
  ...(Object.fromEntries(
    (Object.keys(operations) as OperationName[]).flatMap((n) => [
      [n, operations[n].request],
      [`${n}.ok`, operations[n].reply],
    ]),
  ) as OpMessages),
} as typeof coreMessages & OpMessages;

export type MessageTable = typeof messages;
export type MessageType = keyof MessageTable;
/** The body of a message of type T, after parsing (defaults applied). */
export type Body<T extends MessageType> = z.infer<MessageTable[T]>;
/** The body of a message of type T, as a sender may write it (defaults optional). */
export type BodyInput<T extends MessageType> = z.input<MessageTable[T]>;

export { MetricStateSchema };
