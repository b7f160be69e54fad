/**
 * The message table: every message Cadre sends maps to a zod schema here, and every type is
 * inferred from its schema. Records kept in KV (workflows, tasks, hosts, actors) are here too,
 * because they are read by several services and parsed at that boundary like messages.
 */

import { z } from "zod";
import { BudgetSchema, UsageSchema } from "./llm.js";
import { MAX_TOKEN_LENGTH } from "./subjects.js";
import { KindSchema, NameSchema, TeamSchema } from "./team.js";

/**
 * Bounds checked at decode, so no input can make a service build a subject NATS refuses or a
 * record without end (see "Bounds" in subjects.ts): an id, which may become a subject token,
 * is 1-200 characters ({@link MAX_TOKEN_LENGTH}); a result id (`<taskId>:<epoch>:<attempt>`)
 * or another reference that is not a token at most {@link MAX_REF_LENGTH}; an error code at
 * most 64. Kind and team names are 1-48 (team.ts).
 */
export const Id = z
  .string()
  .regex(
    new RegExp(`^[A-Za-z0-9_-]{1,${MAX_TOKEN_LENGTH}}$`),
    `ids use 1-${MAX_TOKEN_LENGTH} letters, digits, '_' and '-'`,
  );
/** The longest result id, breaker name or other reference that is not a subject token. */
export const MAX_REF_LENGTH = 256;
const Ref = z.string().max(MAX_REF_LENGTH);
export const Json = z.record(z.string(), z.unknown());
export const Millis = z.number().int().nonnegative();
/** A holder's proof (base64url HMAC-SHA256, truncated to 32 characters). */
const Proof = z.string().regex(/^[A-Za-z0-9_-]{32}$/, "a holder proof is 32 base64url characters");

/** An error as it travels: `{ code, message, data }`. */
export const WireErrorSchema = z.object({
  code: z.string().min(1).max(64),
  message: z.string(),
  data: Json.optional(),
  /** The sender's judgement: whether asking again can succeed (kept for codes the receiver does not know). */
  retryable: z.boolean().optional(),
});

/**
 * One task, as it travels on the tasks stream. The chain lists the kinds from the workflow's
 * root to this task's kind (inclusive), so `depth === chain.length - 1`.
 */
/** A partition number (protocol partitions.ts; config supervisor.partitions). */
const Partition = z.number().int().min(0).max(4095);

export const TaskEnvelopeSchema = z.object({
  taskId: Id,
  workflowId: Id,
  teamId: Id,
  kind: NameSchema,
  parentTaskId: Id.nullable(),
  chain: z.array(NameSchema).min(1),
  depth: z.number().int().nonnegative(),
  /** Higher runs first when there is a choice. @default 0 */
  priority: z.number().int().default(0),
  /** Epoch milliseconds after which the task is failed rather than started; null for none. */
  deadline: Millis.nullable().default(null),
  /** Stable key the result is de-duplicated on. Equal to the task id for Cadre's own tasks. */
  idempotencyKey: z.string().min(1).max(MAX_TOKEN_LENGTH),
  /** Assignment epoch, raised when the supervisor reassigns the task. @default 1 */
  epoch: z.number().int().min(1).default(1),
  /**
   * The supervisors' partition of the workflow (protocol partitions.ts), stamped at submit and
   * copied to every subtask: the host sends the task's result under it. Absent: partition 0.
   */
  partition: Partition.optional(),
  input: Json,
});

/** The outcome of one attempt at a task. The first valid one per task is applied. */
export const TaskResultSchema = z.object({
  taskId: Id,
  workflowId: Id,
  epoch: z.number().int().min(1),
  /** JetStream delivery count of the attempt (1 for the first). */
  attempt: z.number().int().min(1),
  hostId: Id,
  actorId: Id,
  status: z.enum(["completed", "failed"]),
  output: z.unknown().optional(),
  error: WireErrorSchema.optional(),
  startedAt: Millis,
  finishedAt: Millis,
  /** The task envelope's partition: the result's subject (subjects.ts). Absent: partition 0. */
  partition: Partition.optional(),
  /** Sent from the host's outbox after it was cut off from NATS (counted in its reconciliation). */
  offline: z.boolean().optional(),
  /**
   * The host's Ed25519 signature (its nkey, base64url) over the result's canonical form (all
   * fields but `offline` and `sig`): proves which host decided it (runtime security.ts).
   */
  sig: z.string().max(200).optional(),
  /**
   * Proof that the host held the task at this epoch: an HMAC of the result's canonical form
   * keyed with the task token, which only the task's delivery carries (runtime security.ts).
   */
  proof: Proof.optional(),
  /** What the attempt's model calls used, replayed calls included (llm behaviours only). */
  usage: UsageSchema.optional(),
});

/**
 * A host's proof that it holds a task at an epoch (runtime authenticity.ts), on every request
 * it makes about the task (delegate, acquire, release, admit). Required where the deployment
 * is authenticated.
 */
export const HoldingSchema = z.object({ epoch: z.number().int().min(1), hostId: Id, proof: Proof });
export type Holding = z.infer<typeof HoldingSchema>;

/** What a delegating actor asks for: subtasks of given kinds. */
export const SubtaskSpecSchema = z.object({
  kind: NameSchema,
  input: Json.default({}),
  /** @default the delegating task's priority */
  priority: z.number().int().optional(),
});

/** The most workflows one workflow may wait for (a submit's `after`). */
export const MAX_AFTER = 20;
/** A submit's `after`: workflow ids, at most {@link MAX_AFTER}, no repeats. */
export const AfterSchema = z
  .array(Id)
  .max(MAX_AFTER, `a workflow waits for at most ${MAX_AFTER} others`)
  .refine((ids) => new Set(ids).size === ids.length, "after names a workflow more than once: name each once");

export const SubmitRequestSchema = z.object({
  team: TeamSchema,
  /** Overrides the team's root input. */
  input: Json.optional(),
  priority: z.number().int().default(0),
  /** What the workflow's model calls may spend, in place of the team's `budget`. */
  budget: BudgetSchema.optional(),
  /**
   * Workflows this one waits for: its root task is published once every one of them has
   * completed; one that fails or is cancelled fails this one (DEPENDENCY_FAILED naming it).
   * Each must exist when this is submitted. At most {@link MAX_AFTER}, each once.
   */
  after: AfterSchema.optional(),
});
export const SubmitReplySchema = z.object({ workflowId: Id, rootTaskId: Id, teamId: Id });

export const DelegateRequestSchema = z.object({
  parent: TaskEnvelopeSchema,
  subtasks: z.array(SubtaskSpecSchema).min(1).max(1000),
  /**
   * The first subtask's index among the parent's children (ids `<parent>-<offset + i>`): a
   * director that delegates more than once (a model's tool calls, turn after turn) numbers its
   * children on, and a replay numbers them the same. @default 0
   */
  offset: z.number().int().min(0).max(100_000).default(0),
  holding: HoldingSchema.optional(),
});
export const DelegateReplySchema = z.object({
  taskIds: z.array(Id),
  /** Children that existed before this request (a retried delegation): the caller reads their state. */
  existing: z.array(Id).default([]),
});

export const StatusRequestSchema = z.object({ workflowId: Id });

/** Counts kept on a workflow as its tasks finish. */
export const TaskCountsSchema = z.object({
  total: z.number().int().nonnegative(),
  completed: z.number().int().nonnegative(),
  failed: z.number().int().nonnegative(),
  /** Tasks whose applied result came from a second or later attempt. */
  retried: z.number().int().nonnegative(),
  /** Results that arrived for an already finished task and were recorded, not applied. */
  duplicates: z.number().int().nonnegative(),
  /** Results of a superseded epoch (the task had been reassigned): recorded, never applied. */
  conflicts: z.number().int().nonnegative().default(0),
  /** Tasks ended by a cancel, never run to the end. */
  cancelled: z.number().int().nonnegative().default(0),
});

export const WorkflowRecordSchema = z.object({
  workflowId: Id,
  teamId: Id,
  teamName: NameSchema,
  rootTaskId: Id,
  status: z.enum(["running", "completed", "failed", "cancelled"]),
  submittedAt: Millis,
  finishedAt: Millis.nullable(),
  tasks: TaskCountsSchema,
  output: z.unknown().optional(),
  error: WireErrorSchema.optional(),
  /** What the applied results' model calls used, added up. */
  usage: UsageSchema.optional(),
  /** What the workflow's model calls may spend (the submit's or the team's). */
  budget: BudgetSchema.optional(),
  /** The workflows it waits for (the submit's `after`); absent when none. */
  after: z.array(Id).max(MAX_AFTER).optional(),
  /**
   * Of `after`, those not completed yet: while any remain, the root task is recorded but not
   * published (the workflow is running, shown `waiting`). Emptied when it is released.
   */
  waitingFor: z.array(Id).max(MAX_AFTER).optional(),
});

/** The result that was applied to a task. */
export const AppliedResultSchema = z.object({
  resultId: Ref,
  epoch: z.number().int(),
  attempt: z.number().int(),
  /** When the applied attempt started (the host's clock). */
  startedAt: Millis.optional(),
  hostId: Id,
  actorId: Id,
});

/**
 * A result of a superseded epoch: the task had been reassigned from a host judged unreachable,
 * and that host finished it anyway. Kept beside the applied result, so both outcomes are on
 * record; never applied.
 */
export const ConflictSchema = z.object({
  resultId: Ref,
  epoch: z.number().int(),
  hostId: Id,
  status: z.enum(["completed", "failed"]),
  output: z.unknown().optional(),
  error: WireErrorSchema.optional(),
  finishedAt: Millis,
});

export const TaskRecordSchema = z.object({
  task: TaskEnvelopeSchema,
  status: z.enum(["queued", "completed", "failed", "cancelled"]),
  createdAt: Millis,
  finishedAt: Millis.nullable(),
  output: z.unknown().optional(),
  error: WireErrorSchema.optional(),
  applied: AppliedResultSchema.nullable(),
  /** Ids of results that arrived after one was applied: recorded, never applied. */
  duplicates: z.array(Ref).max(100),
  /** Results of superseded epochs (see ConflictSchema), the latest 20. */
  conflicts: z.array(ConflictSchema).max(20).default([]),
  /** Responses that broke the kind's schema: each quarantined its actor and the task was retried. */
  invalid: z
    .array(z.object({ resultId: Ref, actorId: Id, hostId: Id, issues: z.array(z.unknown()) }))
    .max(20)
    .default([]),
  /** What the applied result's model calls used. */
  usage: UsageSchema.optional(),
});

/** An actor to start on a host. */
/**
 * What a replacement inherits from the actor it replaces (a quarantined one): its identity, the
 * tasks it handled (latest first, at most 50) and its XState snapshot as persisted at quarantine.
 */
export const InheritedContextSchema = z.object({
  fromActorId: Id,
  history: z.array(Id).max(50),
  snapshot: z.unknown().optional(),
});

export const ActorSpecSchema = z.object({
  actorId: Id,
  teamId: Id,
  kindName: NameSchema,
  kind: KindSchema,
  /** Set when this actor replaces a quarantined one. */
  inherit: InheritedContextSchema.optional(),
});
export const SpawnRequestSchema = z.object({ actors: z.array(ActorSpecSchema).min(1) });
export const SpawnReplySchema = z.object({ actorIds: z.array(Id) });

/** A task an actor of a host holds: what the supervisor reassigns if the host is lost. */
export const HeldTaskSchema = z.object({
  taskId: Id,
  epoch: z.number().int().min(1),
  /** The task message's sequence in the tasks stream (deleted when the task is reassigned). */
  seq: z.number().int().positive(),
  /** Proof of holding (see TaskResultSchema.proof), over the task id, epoch and host id. */
  proof: Proof.optional(),
  /** Held, but waiting for the supervisor's admission (a controlled workflow): not running yet. */
  admitting: z.boolean().optional(),
});

const count = () => z.number().int().nonnegative();

/**
 * What each service tells the monitor every `monitor.intervalMs`, on
 * `cadre.v1.report.<service>.<id>`: read from its metrics (runtime report.ts). Counters are
 * cumulative since the process started (the monitor takes differences; a restart shows as a
 * counter going down and starts a new series); gauges are current.
 */
export const ServiceReportSchema = z.object({
  service: z.enum(["supervisor", "agent-host", "monitor"]),
  id: Id,
  /** A new id each start: counters restart from 0 with it. */
  incarnation: Id,
  at: Millis,
  heapUsedBytes: count(),
  heapLimitBytes: z.number().int().positive(),
  rssBytes: count(),
  eventQueueDepth: count(),
  stateConflicts: count(),
  actors: count(),
  busy: count(),
  /** Each hook's runs and failures (timeouts included), and whether it is bypassed now. */
  hooks: z.array(z.object({ hook: NameSchema, runs: count(), failures: count(), bypassed: z.boolean() })).max(100),
  /** Subtasks created at each depth 0..10 (the supervisor's cadre_delegation_depth buckets); the last, deeper. */
  delegationDepths: z.array(count()).max(12),
  /** Tasks whose result was applied (the supervisor), and the seconds they spent working. */
  tasksApplied: count(),
  workingSeconds: z.number().nonnegative(),
});

export const HeartbeatSchema = z.object({
  hostId: Id,
  /** Changes every time the host process starts. */
  incarnation: Id,
  seq: z.number().int().nonnegative(),
  actors: z.number().int().nonnegative(),
  busy: z.number().int().nonnegative(),
  /** 1-minute load average divided by the number of CPUs. */
  load: z.number().nonnegative(),
  /** The host process's V8 heap in use, in MiB (for the soak benchmark and operators). */
  heapUsedMb: z.number().nonnegative().optional(),
  /** Events the host's bus holds back (throttled or awaiting acknowledgement): its queue depth. */
  eventQueue: z.number().int().nonnegative().optional(),
  /** The host's circuit breakers that are not closed, by name: `open` or `halfOpen`. */
  circuits: z.record(Ref, z.enum(["open", "halfOpen"])).optional(),
  /**
   * The tasks the host's actors hold. Sent when it changed since the last beat and every 10th
   * beat (a beat can be lost); absent means unchanged.
   */
  held: z.array(HeldTaskSchema).max(10_000).optional(),
});

/**
 * The supervisor lease (key `supervisor.lease` in the registry bucket): which supervisor acts.
 * Renewed by compare-and-set; a standby takes it over when its revision stops changing.
 */
export const LeaseRecordSchema = z.object({
  holder: Id,
  /** Increases with every change of holder. */
  term: z.number().int().positive(),
  /** The holder's clock at its last renewal (for operators; expiry is judged by observers). */
  renewedAt: Millis,
});

export const HostRecordSchema = z.object({
  hostId: Id,
  /** The host's nkey public key (`U...`), to verify its signed results; absent in an anonymous deployment. */
  publicKey: z
    .string()
    .regex(/^U[A-Z2-7]{55}$/)
    .optional(),
  incarnation: Id,
  startedAt: Millis,
  maxActors: z.number().int().positive(),
});

/** Why an actor was quarantined: the response that broke its kind's schema. */
export const QuarantineReasonSchema = z.object({
  taskId: Id,
  resultId: Ref,
  issues: z.array(z.object({ path: z.string(), message: z.string() })),
  at: Millis,
});

export const ActorRecordSchema = z.object({
  actorId: Id,
  teamId: Id,
  kindName: NameSchema,
  hostId: Id,
  incarnation: Id,
  spawnedAt: Millis,
  /** Its team's priority (see TeamSchema.priority). @default 0 */
  priority: z.number().int().default(0),
  /** quarantined: takes no tasks until an operator releases it (or retires it). @default "active" */
  status: z.enum(["active", "quarantined"]).default("active"),
  quarantine: QuarantineReasonSchema.optional(),
  /** The quarantined actor this one replaced. */
  replaces: Id.optional(),
  /** The actor that replaced this one when it was quarantined. */
  replacedBy: Id.optional(),
});

/** An operation on one actor of a host. */
export const ActorControlRequestSchema = z.object({
  /** adopt: the actor takes on a failed actor's context (`context`), as a replacement inherits it. */
  op: z.enum(["quarantine", "release", "retire", "adopt"]),
  actorId: Id,
  /** What to adopt (op adopt only). */
  context: InheritedContextSchema.optional(),
});
export const ActorControlReplySchema = z.object({
  actorId: Id,
  /** At quarantine and retirement: what the actor knew (a replacement inherits it; a checkpoint keeps it). */
  context: InheritedContextSchema.optional(),
  /** At retirement: the task it held, given back to the queue. */
  requeued: Id.optional(),
  /** At adoption: its task history now, latest first. */
  history: z.array(Id).max(50).optional(),
});

/** A task's attempt asks for one resource; answered when granted (or refused: timeout, deadlock victim). */
export const AcquireRequestSchema = z.object({
  taskId: Id,
  teamId: Id,
  resource: NameSchema,
  priority: z.number().int(),
  holding: HoldingSchema.optional(),
});
export const AcquireReplySchema = z.object({ resource: NameSchema, waitedMs: Millis });
/** The attempt ended: everything the task holds or waits for is let go. */
export const ReleaseRequestSchema = z.object({ taskId: Id, holding: HoldingSchema.optional() });
export const ReleaseReplySchema = z.object({ released: z.array(NameSchema) });

/** The wait-for graph, for operators: who holds what, who waits for what, and the edges. */
export const WaitsRequestSchema = z.object({});
export const WaitsReplySchema = z.object({
  holders: z.record(z.string(), z.array(Id)),
  waiting: z.array(z.object({ taskId: Id, resource: NameSchema, sinceMs: Millis })),
  edges: z.array(z.tuple([Id, Id])),
});

/** Data protection mode: freezes (or unfreezes) every state change of one workflow. */
export const FreezeRequestSchema = z.object({ workflowId: Id, frozen: z.boolean() });
export const FreezeReplySchema = z.object({ workflowId: Id, frozen: z.boolean() });

/** Operators' quarantine commands: list, or release or retire one actor. */
export const QuarantineRequestSchema = z.object({
  op: z.enum(["list", "release", "retire"]),
  actorId: Id.optional(),
});
export const QuarantineReplySchema = z.object({ actors: z.array(ActorRecordSchema) });

export const ChildNoticeSchema = z.object({ parentTaskId: Id, record: TaskRecordSchema });

/** An event. Printable as one line: `TYPE:category:scope:{json}` (see event-line.ts). */
export const EventSchema = z.object({
  type: z.string().regex(/^[A-Z][A-Z0-9_]{0,63}$/, "event types are UPPER_SNAKE_CASE"),
  category: z.string().regex(/^[a-z][a-z0-9_]{0,31}$/, "event categories are lower_snake_case"),
  /** A subject token (the event's subject is `cadre.v1.evt.<category>.<scope>`): 1-200 characters. */
  scope: z
    .string()
    .regex(
      new RegExp(`^[A-Za-z0-9_-]{1,${MAX_TOKEN_LENGTH}}$`),
      `event scopes are subject tokens: 1-${MAX_TOKEN_LENGTH} letters, digits, '_' and '-'`,
    ),
  data: Json,
});

/** An error reply to any request. */
export const ErrorReplySchema = z.object({ error: WireErrorSchema });

/**
 * Messages that are not operations (see operations.ts for requests and replies): tasks,
 * results, events, heartbeats, child notices and the error reply.
 */
export const coreMessages = {
  task: TaskEnvelopeSchema,
  result: TaskResultSchema,
  event: EventSchema,
  heartbeat: HeartbeatSchema,
  report: ServiceReportSchema,
  "child.done": ChildNoticeSchema,
  error: ErrorReplySchema,
} as const;

export type WireErrorBody = z.infer<typeof WireErrorSchema>;
export type TaskEnvelope = z.infer<typeof TaskEnvelopeSchema>;
export type TaskResult = z.infer<typeof TaskResultSchema>;
export type SubtaskSpec = z.infer<typeof SubtaskSpecSchema>;
export type WorkflowRecord = z.infer<typeof WorkflowRecordSchema>;
export type TaskRecord = z.infer<typeof TaskRecordSchema>;
export type TaskCounts = z.infer<typeof TaskCountsSchema>;
export type ActorSpec = z.infer<typeof ActorSpecSchema>;
export type Heartbeat = z.infer<typeof HeartbeatSchema>;
export type ServiceReport = z.infer<typeof ServiceReportSchema>;
export type HeldTask = z.infer<typeof HeldTaskSchema>;
export type Conflict = z.infer<typeof ConflictSchema>;
export type HostRecord = z.infer<typeof HostRecordSchema>;
export type LeaseRecord = z.infer<typeof LeaseRecordSchema>;
export type ActorRecord = z.infer<typeof ActorRecordSchema>;
export type InheritedContext = z.infer<typeof InheritedContextSchema>;
export type QuarantineReason = z.infer<typeof QuarantineReasonSchema>;
export type CadreEvent = z.infer<typeof EventSchema>;
export type ChildNotice = z.infer<typeof ChildNoticeSchema>;
