/**
 * The events table: every event type Cadre emits, with its category (the subject token after
 * `evt.`), whether it is critical (never dropped by the bus: acknowledged by JetStream, retried,
 * throttled instead of shed), its data schema and a summary. Everything else is derived from it:
 *
 * - {@link TypedEvent}, the discriminated union (on `type`) of every event with its data, which
 *   the event bus's `emit` takes, so an emit site that sends a wrong or missing field does not
 *   compile;
 * - {@link CRITICAL_EVENTS}, the default of `events.critical` in the configuration;
 * - {@link parseEvent}, which readers use on a decoded envelope (`CadreEvent`, generic on the
 *   wire): an unknown type or data that breaks its schema is a {@link ParseFailure} the caller
 *   counts and skips, never a throw.
 *
 * Data schemas are plain objects: a field the table does not know is stripped when parsed (an
 * emitter newer than the reader still parses), but an emit site cannot send one (the compiler's
 * excess property check). Only payloads that are genuinely open (an error's own data spread into
 * the event) are loose objects.
 */

import { z } from "zod";
import { formatIssues } from "./errors.js";
import {
  type CadreEvent,
  EventSchema,
  HeldTaskSchema,
  MAX_REF_LENGTH,
  QuarantineReasonSchema,
  TaskCountsSchema,
  TaskRecordSchema,
  WireErrorSchema,
} from "./messages.js";

/** One entry of the table. */
export interface EventSpec {
  /** The subject token after `evt.` (lower_snake_case). */
  readonly category: string;
  /** Never dropped by the event bus (see event-bus.ts in runtime). */
  readonly critical: boolean;
  readonly data: z.ZodType<Record<string, unknown>>;
  readonly summary: string;
}

/**
 * An id, name or reference in an event's data (a task, host, actor or result id, a kind, a
 * batch, a key): at most 256 characters, checked at decode like the ids of every message.
 */
const ref = () => z.string().max(MAX_REF_LENGTH);
const int = () => z.number().int();
const count = () => z.number().int().nonnegative();
/** A duration or a clock reading in milliseconds (a driven test clock may be fractional). */
const ms = () => z.number();

// --- data schemas shared by several types ----------------------------------------------------

/** TASK_COMPLETED and TASK_FAILED: the result that was applied. */
const TaskAppliedData = z.object({
  taskId: ref(),
  kind: ref(),
  resultId: ref(),
  attempt: int(),
  hostId: ref(),
  /** The error's code (TASK_FAILED). */
  code: ref().optional(),
});

/** THRESHOLD_CROSSED and its kin: the metric, its value, the rule and its action. */
const ThresholdData = z.object({
  metric: ref(),
  value: z.number(),
  threshold: z.number(),
  clear: z.number(),
  action: ref(),
});

/** A significant trend (services/monitor trend.ts). */
const TrendData = z.object({
  series: ref(),
  direction: z.enum(["increasing", "decreasing"]),
  slopePerSecond: z.number(),
  /** Change over the window relative to its median. */
  relativeChange: z.number(),
  windowMs: ms(),
  /** 1 - p of the Mann-Kendall test. */
  confidence: z.number(),
  samples: int(),
});

/** WORKFLOW_COMPLETED and WORKFLOW_FAILED. */
const WorkflowEndedData = z.object({
  tasks: TaskCountsSchema,
  /** From submit to the root's result. */
  ms: ms(),
  error: WireErrorSchema.optional(),
});

const WorkflowIdData = z.object({ workflowId: ref() });
const HostIdData = z.object({ hostId: ref() });

/** HOST_SUSPECTED, HOST_UNREACHABLE, HOST_HEALED: the failure detector's evidence. */
const LivenessData = z.object({
  lastHeartbeatAt: ms(),
  silenceMs: ms(),
  phi: z.number(),
});

/** An actor the supervisor stopped and forgot (passivated or retired). */
const ActorStoppedData = z.object({
  actorId: ref(),
  hostId: ref(),
  teamId: ref(),
  kind: ref(),
  /** The task it held, given back to the queue. */
  requeued: ref().nullable(),
});

/** AGENT_RELEASED and AGENT_RETIRED: an operator's quarantine command. */
const QuarantineCommandData = z.object({ actorId: ref(), hostId: ref(), kind: ref() });

/** TEAM_FORGOTTEN and TEAM_RETIRED. */
const TeamGoneData = z.object({
  teamId: ref(),
  name: ref().nullable(),
  /** Actors stopped with it. */
  actors: count(),
});

const BreakerStateSchema = z.enum(["closed", "open", "halfOpen"]);

/** CIRCUIT_OPENED, CIRCUIT_HALF_OPEN, CIRCUIT_CLOSED (runtime breaker.ts). */
const BreakerData = z.object({
  /** `name` or `name:key`. */
  breaker: ref(),
  key: ref(),
  /** The process whose breaker it is. */
  source: ref(),
  from: BreakerStateSchema,
  to: BreakerStateSchema,
  failures: count(),
  /** On opening: how long before a trial call. */
  openForMs: ms().optional(),
});

// --- the table ---------------------------------------------------------------------------------

export const events = {
  // task: scope is the workflow id
  TASK_STARTED: {
    category: "task",
    critical: true,
    summary:
      "a host's actor started an attempt (agent-host); epoch and seq let the supervisor reassign it before the next heartbeat",
    data: HeldTaskSchema.extend({
      kind: ref(),
      attempt: z.number().int().min(1),
      hostId: ref(),
      actorId: ref(),
    }),
  },
  TASK_ATTEMPT_FAILED: {
    category: "task",
    critical: false,
    summary: "an attempt failed retryably; the task is redelivered after retryInMs (agent-host)",
    data: z.object({
      taskId: ref(),
      kind: ref().optional(),
      attempt: int(),
      code: ref(),
      message: z.string(),
      retryInMs: ms(),
      hostId: ref(),
    }),
  },
  TASK_ATTEMPT_STOPPED: {
    category: "task",
    critical: false,
    summary: "a running attempt was stopped (workflow cancelled) or yielded (paused now) from outside (agent-host)",
    data: z.object({
      taskId: ref(),
      epoch: int(),
      attempt: int(),
      op: z.enum(["stop", "yield"]),
      reason: z.string(),
      hostId: ref(),
      actorId: ref(),
    }),
  },
  TASK_COMPLETED: {
    category: "task",
    critical: true,
    summary: "a task's completed result was applied",
    data: TaskAppliedData,
  },
  TASK_FAILED: {
    category: "task",
    critical: true,
    summary: "a task's failed result was applied (code: the error's)",
    data: TaskAppliedData,
  },
  TASK_REASSIGNED: {
    category: "task",
    critical: true,
    summary: "a task was published again at a new epoch: its host was lost, or its response was invalid",
    data: z.object({
      taskId: ref(),
      kind: ref(),
      fromHostId: ref(),
      /** The actor whose response broke the kind's schema (reason invalid-response). */
      actorId: ref().optional(),
      /** The new epoch. */
      epoch: int(),
      reason: z.string(),
    }),
  },
  TASK_PARKED: {
    category: "task",
    critical: false,
    summary: "a task of a paused or capped workflow was parked instead of started",
    data: z.object({ taskId: ref(), epoch: int(), paused: z.boolean() }),
  },
  TASK_UNPARKED: {
    category: "task",
    critical: false,
    summary: "a parked task was published again (epoch: the new one)",
    data: z.object({ taskId: ref(), epoch: int() }),
  },
  RESULT_REJECTED: {
    category: "task",
    critical: false,
    summary:
      "a result that does not prove it came from the host it names, holding the task at that epoch: dropped, never applied",
    data: z.object({
      taskId: ref(),
      epoch: int(),
      attempt: int(),
      /** The host the result claims to be from. */
      claimedHostId: ref(),
      /** Who published it on NATS, as the message envelope says (not authenticated). */
      sender: ref(),
      reason: z.enum(["unsigned", "bad-signature", "unknown-host", "not-holder"]),
    }),
  },
  RESULT_DUPLICATE: {
    category: "task",
    critical: false,
    summary: "a result arrived for a finished task: recorded, not applied",
    data: z.object({
      taskId: ref(),
      kind: ref().optional(),
      resultId: ref(),
      appliedResultId: ref().nullable(),
      hostId: ref(),
    }),
  },
  RESULT_CONFLICT: {
    category: "task",
    critical: true,
    summary: "a result of a superseded epoch (the task was reassigned): recorded beside the current one, never applied",
    data: z.object({
      taskId: ref(),
      kind: ref().optional(),
      resultId: ref(),
      epoch: int(),
      currentEpoch: int(),
      hostId: ref(),
      status: z.enum(["completed", "failed"]),
      /** The current epoch's outcome, when it was in already. */
      applied: z.object({ resultId: ref(), status: TaskRecordSchema.shape.status, hostId: ref() }).nullable(),
    }),
  },
  RESPONSE_ANOMALY: {
    category: "task",
    critical: false,
    summary: "a valid response far from its kind's usual size or latency",
    data: z.object({
      taskId: ref(),
      kind: ref(),
      resultId: ref(),
      actorId: ref(),
      hostId: ref(),
      metric: z.enum(["bytes", "latencyMs"]),
      value: z.number(),
      mean: z.number(),
      sd: z.number(),
      z: z.number(),
    }),
  },

  // workflow: scope is the workflow id
  WORKFLOW_SUBMITTED: {
    category: "workflow",
    critical: true,
    summary: "a workflow was accepted and its root task published",
    data: z.object({ team: ref(), teamId: ref(), root: ref() }),
  },
  // Not critical, like the controls' events: the record (after, waitingFor) is the authority.
  WORKFLOW_WAITING: {
    category: "workflow",
    critical: false,
    summary: "a submitted workflow waits for others (its after) to complete before its root task is published",
    data: z.object({ after: z.array(ref()).max(20), waitingFor: z.array(ref()).max(20) }),
  },
  WORKFLOW_RELEASED: {
    category: "workflow",
    critical: false,
    summary: "every workflow a waiting one named in after completed: its root task was published",
    /** waitedMs: from the submit to the release. */
    data: z.object({ after: z.array(ref()).max(20), waitedMs: ms() }),
  },
  WORKFLOW_COMPLETED: {
    category: "workflow",
    critical: true,
    summary: "a workflow's root task completed",
    data: WorkflowEndedData,
  },
  WORKFLOW_FAILED: {
    category: "workflow",
    critical: true,
    summary: "a workflow's root task failed",
    data: WorkflowEndedData,
  },
  WORKFLOW_PAUSED: {
    category: "workflow",
    critical: false,
    summary: "an operator paused a workflow (now: running attempts were yielded)",
    data: z.object({ now: z.boolean(), yielded: count() }),
  },
  WORKFLOW_RESUMED: {
    category: "workflow",
    critical: false,
    summary: "an operator resumed a workflow; released: parked tasks published again",
    data: z.object({ released: count() }),
  },
  WORKFLOW_LIMITED: {
    category: "workflow",
    critical: false,
    summary: "an operator capped a workflow's agents or reserved actors for it",
    data: z.object({ maxAgents: int().nullable(), guarantee: count(), released: count() }),
  },
  WORKFLOW_CANCELLED: {
    category: "workflow",
    critical: false,
    summary: "an operator cancelled a workflow: its unfinished tasks ended cancelled",
    data: z.object({ reason: z.string(), cancelled: count(), tasks: TaskCountsSchema }),
  },
  WORKFLOW_FROZEN: {
    category: "workflow",
    critical: true,
    summary: "data protection mode: the workflow's state changes wait",
    data: WorkflowIdData,
  },
  WORKFLOW_UNFROZEN: {
    category: "workflow",
    critical: true,
    summary: "data protection mode ended for the workflow",
    data: WorkflowIdData,
  },

  // delegation: scope is the workflow id
  DELEGATION_REFUSED: {
    category: "delegation",
    critical: false,
    summary: "a delegation broke the policy (depth, cycle): nothing was created; the error's data is spread in",
    data: z.looseObject({ code: ref(), parentTaskId: ref() }),
  },

  // actor: scope is the actor id
  ACTOR_SPAWNED: {
    category: "actor",
    critical: false,
    summary: "an actor was started on a host (replaces: the quarantined actor it inherited from)",
    data: z.object({
      hostId: ref(),
      teamId: ref(),
      kind: ref(),
      replaces: ref().optional(),
      inheritedTasks: count().optional(),
    }),
  },
  ACTOR_LOST: {
    category: "actor",
    critical: false,
    summary: "an actor's host stopped sending heartbeats; it is placed again",
    /** teamId: absent from supervisors older than the cascade analysis. */
    data: z.object({ hostId: ref(), kind: ref(), teamId: ref().optional() }),
  },
  ACTOR_PASSIVATED: {
    category: "actor",
    critical: false,
    summary: "an idle actor was stopped (idleMs), or stopped to make room for queued work of forTeam",
    data: ActorStoppedData.extend({
      idleMs: ms().optional(),
      reason: z.string().optional(),
      forTeam: ref().optional(),
    }),
  },
  ACTOR_RETIRED: {
    category: "actor",
    critical: false,
    summary: "an actor was retired (by an operator, or with its team)",
    data: ActorStoppedData.extend({ reason: z.string() }),
  },
  AGENT_QUARANTINED: {
    category: "actor",
    critical: true,
    summary: "an actor whose response broke its kind's schema takes no tasks; replacement: the actor placed instead",
    data: z.object({
      actorId: ref(),
      hostId: ref(),
      teamId: ref(),
      kind: ref(),
      taskId: ref(),
      issues: QuarantineReasonSchema.shape.issues,
      replacement: ref().nullable(),
    }),
  },
  AGENT_PREEMPTED: {
    category: "actor",
    critical: true,
    summary: "an actor was stopped to make room for a higher-priority team",
    data: z.object({
      actorId: ref(),
      hostId: ref(),
      teamId: ref(),
      kind: ref(),
      priority: int(),
      byTeam: ref(),
      byPriority: int(),
      requeued: ref().nullable(),
    }),
  },
  AGENT_RELEASED: {
    category: "actor",
    critical: false,
    summary: "an operator released a quarantined actor",
    data: QuarantineCommandData,
  },
  AGENT_RETIRED: {
    category: "actor",
    critical: false,
    summary: "an operator retired a quarantined actor",
    data: QuarantineCommandData,
  },

  // team: scope is the team id
  TEAM_FORGOTTEN: {
    category: "team",
    critical: false,
    summary: "a team with no work or actors for session_timeout_hours was forgotten with its consumers",
    data: TeamGoneData,
  },
  TEAM_RETIRED: {
    category: "team",
    critical: false,
    summary: "an operator retired a team: its actors stopped, it was forgotten",
    data: TeamGoneData,
  },

  // host: scope is the host id
  HOST_UP: {
    category: "host",
    critical: false,
    summary: "a host's first heartbeat (or a new incarnation's)",
    data: z.object({ incarnation: ref() }),
  },
  HOST_SUSPECTED: {
    category: "host",
    critical: false,
    summary: "the failure detector suspects a host (phi over suspectPhi)",
    data: LivenessData,
  },
  HOST_UNREACHABLE: {
    category: "host",
    critical: true,
    summary: "a host is judged unreachable: its actors are placed elsewhere, its tasks reassigned after the grace",
    data: LivenessData,
  },
  HOST_HEALED: {
    category: "host",
    critical: true,
    summary: "an unreachable host is heard from again",
    data: LivenessData,
  },
  HOST_CORDONED: {
    category: "host",
    critical: false,
    summary: "no new actors on the host",
    data: HostIdData,
  },
  HOST_UNCORDONED: {
    category: "host",
    critical: false,
    summary: "the host takes new actors again",
    data: HostIdData,
  },
  HOST_DRAINED: {
    category: "host",
    critical: false,
    summary: "a host's actors were started elsewhere and its tasks requeued (counts)",
    data: z.object({ hostId: ref(), moved: count(), requeued: count() }),
  },
  OUTBOX_REPLAYED: {
    category: "host",
    critical: true,
    summary:
      "a host sent what its outbox held after being cut off; deduplicated: how many JetStream had already (agent-host)",
    data: z.object({
      hostId: ref(),
      /** `<id>:<count>`, the header every replayed result carries. */
      batch: ref(),
      replayed: count(),
      deduplicated: count(),
      ms: ms(),
    }),
  },
  RECONCILIATION_REPORT: {
    category: "host",
    critical: true,
    summary: "how the results a host replayed were classified (complete: all of the batch was)",
    data: z.object({
      hostId: ref(),
      batch: ref(),
      applied: count(),
      duplicate: count(),
      conflict: count(),
      invalid: count(),
      orphan: count(),
      total: count(),
      /** The batch's size, when its header said it. */
      replayed: count().nullable(),
      complete: z.boolean(),
      ms: ms(),
    }),
  },

  // resource: scope is the resource
  DEADLOCK_RESOLVED: {
    category: "resource",
    critical: true,
    summary: "a wait-for cycle was broken: the victim's wait refused and what it held released",
    data: z.object({
      cycle: z.array(ref()),
      victim: ref(),
      priority: int(),
      waitingFor: ref(),
      released: z.array(ref()),
      waitedMs: ms(),
    }),
  },

  // supervisor: scope is the supervisor id
  SUPERVISOR_ACTIVE: {
    category: "supervisor",
    critical: true,
    summary: "a supervisor took the lease and acts (previous: the holder before it)",
    data: z.object({ term: int(), previous: ref().nullable(), activationMs: ms() }),
  },
  SUPERVISOR_STANDBY: {
    category: "supervisor",
    critical: true,
    summary: "a supervisor stopped acting (it lost or could not renew the lease)",
    data: z.object({ reason: z.string() }),
  },
  PARTITION_ACQUIRED: {
    category: "supervisor",
    critical: true,
    summary:
      "a supervisor took a partition of the work: it applies that partition's results (previous: the lapsed holder it took it from, null when it was free)",
    data: z.object({ partition: int(), term: int(), previous: ref().nullable(), held: z.array(int()).max(4096) }),
  },
  PARTITION_RELEASED: {
    category: "supervisor",
    critical: true,
    summary: "a supervisor stopped applying a partition's results (moved to another, or cut off)",
    data: z.object({ partition: int(), reason: z.string(), held: z.array(int()).max(4096) }),
  },

  // state: scope is the bucket (supervisor), "state" (agent-host) or the workflow id (rollback)
  STATE_CORRUPTED: {
    category: "state",
    critical: true,
    summary: "a stored value failed its checksum or schema; restoredAs: the good revision written back, or null",
    data: z.object({
      key: ref(),
      revision: int(),
      reason: z.string(),
      restoredFrom: int().nullable(),
      restoredAs: int().nullable(),
    }),
  },
  STATE_ROLLED_BACK: {
    category: "state",
    critical: true,
    summary:
      "a workflow's state checkpoint was restored and the log after it replayed (cadre state rollback, sup.state.rollback)",
    data: z.object({
      toSeq: int(),
      txid: ref(),
      keys: z.array(ref()),
      replayed: z.array(ref()),
      skipped: z.array(ref()),
      invalid: z.array(int()),
    }),
  },

  // breaker: scope is the breaker's name
  CIRCUIT_OPENED: {
    category: "breaker",
    critical: true,
    summary: "a circuit breaker opened: calls fail fast until a trial",
    data: BreakerData,
  },
  CIRCUIT_HALF_OPEN: {
    category: "breaker",
    critical: false,
    summary: "a circuit breaker lets one trial call through",
    data: BreakerData,
  },
  CIRCUIT_CLOSED: {
    category: "breaker",
    critical: true,
    summary: "a circuit breaker closed again",
    data: BreakerData,
  },

  // monitor: scope is the cluster metric's name (monitoring.ts)
  THRESHOLD_CROSSED: {
    category: "monitor",
    critical: true,
    summary: "a cluster metric went over its threshold; its action (not warn) is taken (monitor)",
    data: ThresholdData,
  },
  THRESHOLD_CLEARED: {
    category: "monitor",
    critical: true,
    summary: "a cluster metric fell back to its clear level; its action is undone where it holds (monitor)",
    data: ThresholdData,
  },
  THRESHOLD_WARNING: {
    category: "monitor",
    critical: false,
    summary: "a cluster metric whose action is warn went over its threshold (monitor)",
    data: ThresholdData,
  },
  THRESHOLD_WARNING_CLEARED: {
    category: "monitor",
    critical: false,
    summary: "a cluster metric whose action is warn fell back to its clear level (monitor)",
    data: ThresholdData,
  },
  SCALE_REQUESTED: {
    category: "monitor",
    critical: true,
    summary: "the monitor asks for capacity: the deficit, and the scale command it ran (monitor)",
    data: z.object({
      metric: ref(),
      value: z.number(),
      threshold: z.number(),
      /** How far over the threshold the metric is. */
      deficit: z.number(),
      command: z.string().max(1000).nullable(),
      exitCode: int().nullable(),
    }),
  },
  CLEANUP_REPORTED: {
    category: "monitor",
    critical: false,
    summary: "a host released what it could on the monitor's cleanup, and what that freed (agent-host)",
    data: z.object({
      hostId: ref(),
      heapBeforeBytes: count(),
      heapAfterBytes: count(),
      freedBytes: count(),
      gc: z.boolean(),
      released: z.array(ref()).max(20),
    }),
  },
  HOOK_BYPASSED: {
    category: "monitor",
    critical: false,
    summary:
      "a hook was bypassed on a host for a while: its cluster-wide failure rate passed the threshold (agent-host)",
    data: z.object({ hook: ref(), hostId: ref(), forMs: ms(), failureRate: z.number() }),
  },
  ADMISSION_THROTTLED: {
    category: "supervisor",
    critical: true,
    summary: "the supervisor refuses new workflows below a priority until a time (the monitor's throttle)",
    data: z.object({ belowPriority: int(), untilMs: int(), reason: z.string().max(1000) }),
  },
  ADMISSION_RESTORED: {
    category: "supervisor",
    critical: true,
    summary: "the throttle was lifted (or ran out): workflows of every priority are admitted again",
    data: z.object({ reason: z.string().max(1000) }),
  },

  // llm: model calls of llm behaviours (agent-host); scope is the workflow
  BUDGET_THRESHOLD_REACHED: {
    category: "llm",
    critical: true,
    summary: "a budget's spending passed 50, 80 or 100% of its limit (announced once each, agent-host)",
    data: z.object({
      budget: ref(),
      percent: int(),
      /** The dimension nearest its limit. */
      dimension: ref(),
      limit: z.number(),
      spent: z.number(),
    }),
  },
  BUDGET_EXCEEDED: {
    category: "llm",
    critical: true,
    summary: "a model call was not made: its worst case would pass a budget (the task fails BUDGET_EXCEEDED)",
    data: z.object({
      taskId: ref(),
      budget: ref(),
      dimension: ref(),
      limit: z.number(),
      spent: z.number(),
      reserved: z.number(),
      requested: z.number(),
    }),
  },
  LLM_CALL_REPLAYED: {
    category: "llm",
    critical: false,
    summary: "a redelivered task took a model call's answer from the journal instead of calling again",
    data: z.object({ taskId: ref(), turn: count(), paidBy: ref(), attempt: int() }),
  },
  LLM_PROGRESS: {
    category: "llm",
    critical: false,
    summary: "a streamed model answer is arriving (at most one a second per task): its length so far and its tail",
    data: z.object({
      taskId: ref(),
      turn: count(),
      chars: count(),
      tail: z.string().max(200),
      hostId: ref(),
    }),
  },

  // The runbook's commands (seed 003; the monitor, runbook/): fields in the seed's snake_case
  RESOURCE_EXHAUSTION: {
    category: "system",
    critical: true,
    summary: "emergency-analysis found the agent pool, memory or CPU past its limit",
    data: z.object({
      error_type: ref(),
      severity: z.enum(["critical", "high"]),
      affected_workflows: z.array(ref()).max(1000),
      system_utilization: z.object({ cpu: z.number(), memory: z.number(), agents: ref() }),
    }),
  },
  EMERGENCY_RESPONSE_ACTIVATED: {
    category: "system",
    critical: true,
    summary: "emergency-reallocation began: its actions and how many workflows they name",
    data: z.object({
      response_level: ref(),
      strategy: ref(),
      actions: z.array(ref()).max(20),
      affected_workflows: count(),
    }),
  },
  EMERGENCY_RESPONSE_COMPLETED: {
    category: "system",
    critical: true,
    summary: "emergency-reallocation finished: its time, the agents it freed, the workflows it changed",
    data: z.object({ recovery_time_ms: ms(), agents_freed: count(), workflows_affected: count() }),
  },
  RECOVERY_STAGE_COMPLETED: {
    category: "workflow",
    critical: true,
    summary: "a stage of gradual-resumption ended: done, paused again (a metric crossed) or not healthy in time",
    data: z.object({
      stage: int(),
      workflowId: ref(),
      action: ref(),
      outcome: ref(),
      cap: count().nullable(),
      ms: ms(),
      metric: ref().optional(),
    }),
  },
  GRADUAL_RESUMPTION_COMPLETED: {
    category: "workflow",
    critical: true,
    summary: "gradual-resumption ended: its time, the workflows its stages recovered, those paused again",
    data: z.object({ recovery_time_ms: ms(), stages: count(), workflows_recovered: count(), paused_again: count() }),
  },

  // performance: scope is what was analysed (the seed's lines: trend_analysis)
  PERFORMANCE_DEGRADATION_DETECTED: {
    category: "performance",
    critical: false,
    summary:
      "task latency rose, or throughput fell, significantly over the window (monitor, Mann-Kendall and Theil-Sen)",
    data: TrendData,
  },
  MEMORY_TREND: {
    category: "performance",
    critical: false,
    summary: "a service's heap grew significantly over the window (monitor, Mann-Kendall and Theil-Sen)",
    data: TrendData.extend({ service: ref(), bytesPerMinute: z.number() }),
  },
  POST_EMERGENCY_MONITORING_STARTED: {
    category: "performance",
    critical: true,
    summary: "post-emergency-monitoring began: how long it watches, at which sensitivity, which metrics",
    data: z.object({
      monitoring_duration_ms: ms(),
      alert_sensitivity: z.enum(["high", "medium", "low"]),
      /** The share of each threshold a value must pass to count as a regression. */
      sensitivity_share: z.number(),
      metrics_watched: z.array(ref()).max(6),
      metrics_focus: z.array(ref()).max(20),
    }),
  },
  POST_EMERGENCY_MONITORING_COMPLETED: {
    category: "performance",
    critical: true,
    summary: "post-emergency-monitoring ended: its measured time, the samples it took, the metrics that regressed",
    data: z.object({
      monitoring_time_ms: ms(),
      samples: count(),
      regressions: count(),
      regressed_metrics: z.array(ref()).max(6),
      system_health: z.enum(["stable", "regressed"]),
    }),
  },

  // data integrity (seed 003): scope is the workflow
  DATA_INTEGRITY_ALERT: {
    category: "coordination",
    critical: true,
    summary:
      "a workflow's state holds values that fail their checksum (a host met one it could not restore, or corruption-assessment found them)",
    data: z.object({
      alert_type: z.enum(["state_corruption"]),
      severity: z.enum(["critical", "high"]),
      affected_workflows: z.array(ref()).max(100),
      damaged_keys: z.array(ref()).max(1000),
      /** high: no good revision is left in the bucket's history (only a recovery can rebuild it). */
      corruption_risk: z.enum(["high", "medium"]),
      immediate_action_required: z.boolean(),
      detected_by: ref(),
    }),
  },
  DATA_PROTECTION_ACTIVATED: {
    category: "coordination",
    critical: true,
    summary:
      "emergency-data-protection froze a workflow's state, checkpointed it, validated its checkpoints, confirmed the log",
    data: z.object({
      protection_level: ref(),
      frozen: z.boolean(),
      checkpoint: int().nullable(),
      verified_checkpoint: int().nullable(),
      log_confirmed: z.boolean(),
      ms: ms(),
    }),
  },
  DATA_RECOVERY_COMPLETED: {
    category: "coordination",
    critical: true,
    summary:
      "execute-data-recovery ended: restored from a checkpoint, replayed, every value verified (clears DATA_INTEGRITY_ALERT when complete)",
    data: z.object({
      recovery_success: z.enum(["complete", "failed"]),
      data_integrity: z.enum(["verified", "not_verified"]),
      corrupted_segments: count(),
      restored_from: int().nullable(),
      replayed: count(),
      validation_passed_percent: z.number(),
      recovery_time_ms: ms(),
      unfrozen: z.boolean(),
    }),
  },

  // network (seed 003's communication failure; the monitor, runbook/announce-network.ts): scope is
  // the seed's (agent_coordination, restoration), the host in the data
  COMMUNICATION_FAILURE: {
    category: "network",
    critical: true,
    summary:
      "a host was declared unreachable: the actors and tasks it had, the share of work in flight it held, what the supervisor does",
    data: z.object({
      failure_type: z.enum(["host_unreachable"]),
      host_id: ref(),
      /** The host's actors: still listed by the supervisor, lost with it (ACTOR_LOST), or running a task there. */
      affected_agents: z.array(ref()).max(1000),
      affected_kinds: z.array(ref()).max(1000),
      /** The tasks it held as the monitor last knew (TASK_STARTED not yet finished, stopped or moved). */
      held_tasks: z.array(ref()).max(1000),
      held_task_count: count(),
      /** held / (held + busy actors of the other live hosts, by their last heartbeats); 0 when nothing ran. */
      held_share: z.number().min(0).max(1),
      coordination_impact: z.enum(["none", "minor", "moderate", "severe"]),
      auto_recovery: z.enum(["tasks_reassigned", "actors_replaced", "none"]),
      reassign_grace_ms: ms(),
      /** The failure detector's silence when it declared the host unreachable. */
      silence_ms: ms(),
    }),
  },
  NETWORK_RECOVERY_COMPLETED: {
    category: "network",
    critical: true,
    summary:
      "an unreachable host was heard from again: the time it took, what moved meanwhile, how its replayed results were classified",
    data: z.object({
      host_id: ref(),
      /** From HOST_UNREACHABLE to HOST_HEALED, as the monitor received them. */
      recovery_time_ms: ms(),
      /** The silence the heal ended (the failure detector's measure, from the last heartbeat before the cut). */
      outage_ms: ms(),
      connectivity_restored: z.boolean(),
      /** Of the hosts unreachable while this one was (itself included), the share heard again, in percent. */
      connectivity_restored_percent: z.number().min(0).max(100),
      still_unreachable: z.array(ref()).max(1000),
      tasks_reassigned: count(),
      actors_replaced: count(),
      /** Its RECONCILIATION_REPORTs during the outage or soon after the heal, summed; null: nothing replayed. */
      reconciliation: z
        .object({
          batches: count(),
          applied: count(),
          duplicate: count(),
          conflict: count(),
          invalid: count(),
          orphan: count(),
          total: count(),
          complete: z.boolean(),
        })
        .nullable(),
    }),
  },

  // agent pool failure (seed 003): the monitor's announcement, the analysis' plan, the transfers
  AGENT_POOL_FAILURE: {
    category: "coordination",
    critical: true,
    summary:
      "the supervisor declared a host's actors lost (monitor): which, the workflows whose tasks they held, whether a critical path is blocked",
    data: z.object({
      failed_agents: z.array(ref()).max(1000),
      affected_workflows: z.array(ref()).max(1000),
      /** host_restarted: it came back as a new incarnation (its actors' state is gone all the same). */
      failure_type: z.enum(["host_lost", "host_restarted"]),
      /** critical_path_blocked: a held task lies on its workflow's longest unfinished chain. */
      impact: z.enum(["critical_path_blocked", "degraded"]),
      hostId: ref(),
      held_tasks: count(),
      critical_tasks: count(),
    }),
  },
  RECOVERY_PLAN_GENERATED: {
    category: "coordination",
    critical: true,
    summary:
      "analyze-cascade-failure's plan: the agents to replace, the workflows in resume order, the estimate (mean working time of the blocked chains' kinds)",
    data: z.object({
      strategy: ref(),
      /** Null when no kind on a blocked chain has a measured working time yet. */
      estimated_time_ms: ms().nullable(),
      agents_lost: count(),
      agents_to_replace: count(),
      workflows: z.array(ref()).max(1000),
      /** interrupted: an affected workflow failed or was cancelled. */
      workflow_continuity: z.enum(["maintained", "interrupted"]),
    }),
  },
  CONTEXT_TRANSFERRED: {
    category: "actor",
    critical: true,
    summary: "a failed actor's task history (and snapshot) was given to a live actor of its kind (sup.actor.transfer)",
    data: z.object({
      fromActorId: ref(),
      toActorId: ref(),
      hostId: ref(),
      teamId: ref(),
      kind: ref(),
      history: count(),
      snapshot: z.boolean(),
      /** No actor stood in for it: a new one was spawned with the context. */
      created: z.boolean(),
      /** The context was kept as a checkpoint (rollback). */
      kept: z.boolean(),
    }),
  },
  RECOVERY_VALIDATION_COMPLETED: {
    category: "coordination",
    critical: true,
    summary:
      "transfer-context read each replacement back: how many hold what was given (scope: success, or partial when some do not)",
    data: z.object({
      agents: count(),
      validated: count(),
      context_transfer_percent: z.number(),
      recovery_time_ms: ms(),
    }),
  },
  DEPENDENCY_RECOVERY_COMPLETED: {
    category: "coordination",
    critical: true,
    summary:
      "execute-dependency-recovery ended: the workflows its chains recovered in order, whether every dependent waited for its primary, the contexts transferred",
    data: z.object({
      workflows_recovered: count(),
      dependency_integrity: z.enum(["maintained", "broken"]),
      context_transfer_percent: z.number().nullable(),
      recovery_time_ms: ms(),
    }),
  },
} as const satisfies Record<string, EventSpec>;

type Table = typeof events;

/** Every event type. */
export type EventType = keyof Table;
/** The category events of type `T` are published under. */
export type EventCategory<T extends EventType = EventType> = Table[T]["category"];
/** The data of an event of type `T`, as parsed (and as emitted). */
export type EventData<T extends EventType> = z.output<Table[T]["data"]>;
/** The types that are critical by default. */
export type CriticalEventType = { [K in EventType]: Table[K]["critical"] extends true ? K : never }[EventType];

/**
 * An event whose data matches its type: the discriminated union (on `type`) of every row of the
 * table, or one row's event with `TypedEvent<"TASK_STARTED">`. What the event bus emits.
 */
export type TypedEvent<T extends EventType = EventType> = {
  [K in T]: { type: K; category: Table[K]["category"]; scope: string; data: EventData<K> };
}[T];

/** Every event type, in the table's order. */
export const EVENT_TYPES = Object.keys(events) as EventType[];

/** The critical types (the default of `events.critical`), in the table's order. */
export const CRITICAL_EVENTS: readonly CriticalEventType[] = EVENT_TYPES.filter(
  (t): t is CriticalEventType => events[t].critical,
);

/** Whether `type` is in the table. */
export function isEventType(type: string): type is EventType {
  return Object.hasOwn(events, type);
}

const schemas = new Map<EventType, z.ZodType<TypedEvent>>();

/**
 * The schema of a whole event of one type: its type and category (literals), a scope and its
 * data (the table's schema). Its output is `TypedEvent<T>`.
 */
export function eventSchema<T extends EventType>(type: T): z.ZodType<TypedEvent<T>> {
  let s = schemas.get(type);
  if (!s) {
    const spec: EventSpec = events[type];
    s = z.object({
      type: z.literal(type),
      category: z.literal(spec.category),
      scope: EventSchema.shape.scope,
      data: spec.data,
    }) as unknown as z.ZodType<TypedEvent>;
    schemas.set(type, s);
  }
  return s as z.ZodType<TypedEvent<T>>;
}

/** Why an event was not parsed: what readers count and skip. */
export interface ParseFailure {
  readonly ok: false;
  /** The event's type as received. */
  readonly type: string;
  /** unknown-type: not in the table (a newer emitter, or not an event at all); invalid: it breaks its schema. */
  readonly reason: "unknown-type" | "invalid";
  /** Each problem with the field's path in the event (`data.taskId`, `category`). */
  readonly issues: readonly { path: string; message: string }[];
  /** One line for a log: `TASK_STARTED: data.taskId: Invalid input: expected string, received undefined`. */
  readonly message: string;
}

/** Whether {@link parseEvent} failed. */
export function isParseFailure(r: TypedEvent | ParseFailure): r is ParseFailure {
  return (r as { ok?: unknown }).ok === false;
}

function failure(
  type: string,
  reason: ParseFailure["reason"],
  issues: { path: string; message: string }[],
): ParseFailure {
  return {
    ok: false,
    type,
    reason,
    issues,
    message: `${type || "(no type)"}: ${issues.map((i) => `${i.path || "(event)"}: ${i.message}`).join("; ")}`,
  };
}

/**
 * Parses a decoded event by its type's row: the typed event (its data as the schema outputs
 * it), or a failure naming the field for an unknown type, a wrong category or bad data. Never
 * throws.
 */
export function parseEvent(raw: CadreEvent): TypedEvent | ParseFailure {
  const type = typeof raw?.type === "string" ? raw.type : "";
  if (!isEventType(type)) {
    return failure(type, "unknown-type", [{ path: "type", message: `unknown event type "${type}"` }]);
  }
  const r = eventSchema(type).safeParse(raw);
  if (!r.success) return failure(type, "invalid", formatIssues(r.error.issues));
  return r.data;
}
