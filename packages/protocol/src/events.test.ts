import { describe, expect, expectTypeOf, it } from "vitest";
import { ConfigSchema } from "./config.js";
import {
  CRITICAL_EVENTS,
  EVENT_TYPES,
  type EventData,
  type EventType,
  eventSchema,
  events,
  isParseFailure,
  type ParseFailure,
  parseEvent,
  type TypedEvent,
} from "./events.js";
import type { CadreEvent, TaskCounts } from "./messages.js";

/** The types that were critical before the table (config.ts's `events.critical` default then). */
const CRITICAL_BEFORE = [
  "TASK_STARTED",
  "TASK_COMPLETED",
  "TASK_FAILED",
  "TASK_REASSIGNED",
  "RESULT_CONFLICT",
  "WORKFLOW_SUBMITTED",
  "WORKFLOW_COMPLETED",
  "WORKFLOW_FAILED",
  "HOST_UNREACHABLE",
  "HOST_HEALED",
  "RECONCILIATION_REPORT",
  "OUTBOX_REPLAYED",
  "AGENT_QUARANTINED",
  "AGENT_PREEMPTED",
  "DEADLOCK_RESOLVED",
  "SUPERVISOR_ACTIVE",
  "SUPERVISOR_STANDBY",
  "PARTITION_ACQUIRED",
  "PARTITION_RELEASED",
  "STATE_CORRUPTED",
  "WORKFLOW_FROZEN",
  "WORKFLOW_UNFROZEN",
  "STATE_ROLLED_BACK",
  "CIRCUIT_OPENED",
  "CIRCUIT_CLOSED",
  // Added with the monitor's thresholds and actions.
  "THRESHOLD_CROSSED",
  "THRESHOLD_CLEARED",
  "SCALE_REQUESTED",
  "ADMISSION_THROTTLED",
  "ADMISSION_RESTORED",
  // Added with the llm behaviours: what budgets do is never dropped.
  "BUDGET_THRESHOLD_REACHED",
  "BUDGET_EXCEEDED",
  // And with the runbook's commands.
  "RESOURCE_EXHAUSTION",
  "EMERGENCY_RESPONSE_ACTIVATED",
  "EMERGENCY_RESPONSE_COMPLETED",
  "RECOVERY_STAGE_COMPLETED",
  "GRADUAL_RESUMPTION_COMPLETED",
  "POST_EMERGENCY_MONITORING_STARTED",
  "POST_EMERGENCY_MONITORING_COMPLETED",
  // And seed 003's data integrity incident.
  "DATA_INTEGRITY_ALERT",
  "DATA_PROTECTION_ACTIVATED",
  "DATA_RECOVERY_COMPLETED",
  "DEPENDENCY_RECOVERY_COMPLETED",
  // And seed 003's agent pool failure.
  "AGENT_POOL_FAILURE",
  "RECOVERY_PLAN_GENERATED",
  "CONTEXT_TRANSFERRED",
  "RECOVERY_VALIDATION_COMPLETED",
  // And seed 003's communication failure (the monitor's announcements).
  "COMMUNICATION_FAILURE",
  "NETWORK_RECOVERY_COMPLETED",
];

const threshold = { metric: "m", value: 7, threshold: 5, clear: 4.5 };
const trend = {
  series: "task_latency",
  direction: "increasing" as const,
  slopePerSecond: 0.002,
  relativeChange: 0.15,
  windowMs: 150_000,
  confidence: 0.99,
  samples: 30,
};
const tasks: TaskCounts = { total: 5, completed: 4, failed: 1, retried: 1, duplicates: 0, conflicts: 0, cancelled: 0 };
const liveness = { lastHeartbeatAt: 1_700_000_000_000, silenceMs: 850, phi: 8.42 };
const breaker = { breaker: "agent_spawn:h1", key: "h1", source: "supervisor-1", failures: 10 };
const stopped = { actorId: "backend-ab12", hostId: "h1", teamId: "t1", kind: "backend", requeued: null };

/**
 * One payload per type, as its emit site sends it. Typed by the table: a type added without a
 * sample (or a sample that no longer matches its schema) does not compile.
 */
const samples: { [T in EventType]: { scope: string; data: EventData<T> } } = {
  // Seed 003's agent pool failure (the monitor's announcement, the cascade analysis, transfers).
  AGENT_POOL_FAILURE: {
    scope: "agent_management",
    data: {
      failed_agents: ["worker-ab12", "lead-cd34"],
      affected_workflows: ["w1"],
      failure_type: "host_lost",
      impact: "critical_path_blocked",
      hostId: "h2",
      held_tasks: 2,
      critical_tasks: 1,
    },
  },
  RECOVERY_PLAN_GENERATED: {
    scope: "dependency_recovery",
    data: {
      strategy: "dependency_aware_redistribution",
      estimated_time_ms: 1_500_000,
      agents_lost: 3,
      agents_to_replace: 1,
      workflows: ["w1", "w2"],
      workflow_continuity: "maintained",
    },
  },
  CONTEXT_TRANSFERRED: {
    scope: "worker-ab12",
    data: {
      fromActorId: "worker-ab12",
      toActorId: "worker-ef56",
      hostId: "h1",
      teamId: "t1",
      kind: "worker",
      history: 4,
      snapshot: false,
      created: false,
      kept: true,
    },
  },
  RECOVERY_VALIDATION_COMPLETED: {
    scope: "success",
    data: { agents: 3, validated: 3, context_transfer_percent: 100, recovery_time_ms: 420 },
  },
  TASK_STARTED: {
    scope: "w1",
    data: { taskId: "w1-r", kind: "lead", attempt: 1, epoch: 1, seq: 17, hostId: "h1", actorId: "lead-1" },
  },
  TASK_ATTEMPT_FAILED: {
    scope: "w1",
    data: { taskId: "w1-r.0", attempt: 1, code: "BEHAVIOUR_FAILED", message: "exit 1", retryInMs: 500, hostId: "h1" },
  },
  TASK_ATTEMPT_STOPPED: {
    scope: "w1",
    data: {
      taskId: "w1-r.0",
      epoch: 2,
      attempt: 1,
      op: "yield",
      reason: "workflow paused",
      hostId: "h1",
      actorId: "a1",
    },
  },
  TASK_COMPLETED: {
    scope: "w1",
    data: { taskId: "w1-r", kind: "lead", resultId: "w1-r:1:1", attempt: 1, hostId: "h1" },
  },
  TASK_FAILED: {
    scope: "w1",
    data: { taskId: "w1-r", kind: "lead", resultId: "w1-r:1:2", attempt: 2, hostId: "h1", code: "TIMEOUT" },
  },
  TASK_REASSIGNED: {
    scope: "w1",
    data: { taskId: "w1-r.1", kind: "qa", fromHostId: "h2", actorId: "qa-1", epoch: 2, reason: "invalid-response" },
  },
  TASK_PARKED: { scope: "w1", data: { taskId: "w1-r.2", epoch: 1, paused: true } },
  TASK_UNPARKED: { scope: "w1", data: { taskId: "w1-r.2", epoch: 2 } },
  RESULT_REJECTED: {
    scope: "w1",
    data: { taskId: "w1-r-0", epoch: 1, attempt: 1, claimedHostId: "h1", sender: "h2", reason: "bad-signature" },
  },
  RESULT_DUPLICATE: {
    scope: "w1",
    data: { taskId: "w1-r.0", resultId: "w1-r.0:1:2", appliedResultId: "w1-r.0:1:1", hostId: "h2" },
  },
  RESULT_CONFLICT: {
    scope: "w1",
    data: {
      taskId: "w1-r.0",
      resultId: "w1-r.0:1:1",
      epoch: 1,
      currentEpoch: 2,
      hostId: "h2",
      status: "completed",
      applied: { resultId: "w1-r.0:2:1", status: "completed", hostId: "h1" },
    },
  },
  RESPONSE_ANOMALY: {
    scope: "w1",
    data: {
      taskId: "w1-r.0",
      kind: "backend",
      resultId: "w1-r.0:1:1",
      actorId: "backend-1",
      hostId: "h1",
      metric: "bytes",
      value: 90_000,
      mean: 120,
      sd: 10,
      z: 8987.9,
    },
  },
  WORKFLOW_SUBMITTED: { scope: "w1", data: { team: "software-team", teamId: "t1", root: "engineering-director" } },
  WORKFLOW_WAITING: { scope: "w2", data: { after: ["w1", "w0"], waitingFor: ["w1"] } },
  WORKFLOW_RELEASED: { scope: "w2", data: { after: ["w1", "w0"], waitedMs: 4200 } },
  WORKFLOW_COMPLETED: { scope: "w1", data: { tasks, ms: 1234 } },
  WORKFLOW_FAILED: {
    scope: "w1",
    data: { tasks, ms: 99, error: { code: "BEHAVIOUR_FAILED", message: "exit 1", data: { exitCode: 1 } } },
  },
  WORKFLOW_PAUSED: { scope: "w1", data: { now: true, yielded: 2 } },
  WORKFLOW_RESUMED: { scope: "w1", data: { released: 2 } },
  WORKFLOW_LIMITED: { scope: "w1", data: { maxAgents: 2, guarantee: 1, released: 0 } },
  WORKFLOW_CANCELLED: { scope: "w1", data: { reason: "cancelled by an operator", cancelled: 3, tasks } },
  WORKFLOW_FROZEN: { scope: "w1", data: { workflowId: "w1" } },
  WORKFLOW_UNFROZEN: { scope: "w1", data: { workflowId: "w1" } },
  DELEGATION_REFUSED: {
    scope: "w1",
    data: { code: "CIRCULAR_DELEGATION", parentTaskId: "w1-r.0", chain: ["a", "b", "a"] },
  },
  ACTOR_SPAWNED: {
    scope: "backend-2",
    data: { hostId: "h2", teamId: "t1", kind: "backend", replaces: "backend-1", inheritedTasks: 3 },
  },
  ACTOR_LOST: { scope: "backend-1", data: { hostId: "h1", kind: "backend" } },
  ACTOR_PASSIVATED: { scope: "backend-ab12", data: { ...stopped, idleMs: 300_000 } },
  ACTOR_RETIRED: { scope: "backend-ab12", data: { ...stopped, requeued: "w1-r.0", reason: "operator" } },
  AGENT_QUARANTINED: {
    scope: "qa-1",
    data: {
      actorId: "qa-1",
      hostId: "h1",
      teamId: "t1",
      kind: "qa",
      taskId: "w1-r.2",
      issues: [{ path: "passed", message: "Invalid input: expected boolean, received string" }],
      replacement: "qa-x9",
    },
  },
  AGENT_PREEMPTED: {
    scope: "backend-1",
    data: {
      actorId: "backend-1",
      hostId: "h1",
      teamId: "t1",
      kind: "backend",
      priority: 0,
      byTeam: "t2",
      byPriority: 10,
      requeued: null,
    },
  },
  AGENT_RELEASED: { scope: "qa-1", data: { actorId: "qa-1", hostId: "h1", kind: "qa" } },
  AGENT_RETIRED: { scope: "qa-1", data: { actorId: "qa-1", hostId: "h1", kind: "qa" } },
  TEAM_FORGOTTEN: { scope: "t1", data: { teamId: "t1", name: "software-team", actors: 0 } },
  TEAM_RETIRED: { scope: "t1", data: { teamId: "t1", name: null, actors: 4 } },
  HOST_UP: { scope: "h1", data: { incarnation: "i-abc" } },
  HOST_SUSPECTED: { scope: "h1", data: liveness },
  HOST_UNREACHABLE: { scope: "h1", data: liveness },
  HOST_HEALED: { scope: "h1", data: liveness },
  HOST_CORDONED: { scope: "h1", data: { hostId: "h1" } },
  HOST_UNCORDONED: { scope: "h1", data: { hostId: "h1" } },
  HOST_DRAINED: { scope: "h1", data: { hostId: "h1", moved: 3, requeued: 1 } },
  OUTBOX_REPLAYED: {
    scope: "h1",
    data: { hostId: "h1", batch: "k3j2h1g0:4", replayed: 4, deduplicated: 1, ms: 12 },
  },
  RECONCILIATION_REPORT: {
    scope: "h1",
    data: {
      hostId: "h1",
      batch: "k3j2h1g0:4",
      applied: 2,
      duplicate: 1,
      conflict: 1,
      invalid: 0,
      orphan: 0,
      total: 4,
      replayed: 4,
      complete: true,
      ms: 40,
    },
  },
  DEADLOCK_RESOLVED: {
    scope: "db",
    data: {
      cycle: ["w1-r.0", "w2-r.0"],
      victim: "w2-r.0",
      priority: 0,
      waitingFor: "db",
      released: ["cache"],
      waitedMs: 8,
    },
  },
  SUPERVISOR_ACTIVE: { scope: "supervisor-1", data: { term: 2, previous: "supervisor-0", activationMs: 35 } },
  SUPERVISOR_STANDBY: { scope: "supervisor-1", data: { reason: "lease lost" } },
  PARTITION_ACQUIRED: {
    scope: "supervisor-1",
    data: { partition: 2, term: 3, previous: "supervisor-2", held: [0, 2] },
  },
  PARTITION_RELEASED: { scope: "supervisor-1", data: { partition: 1, reason: "moved to supervisor-2", held: [0, 2] } },
  STATE_CORRUPTED: {
    scope: "tasks",
    data: { key: "w1-r", revision: 7, reason: "checksum mismatch", restoredFrom: 6, restoredAs: 8 },
  },
  STATE_ROLLED_BACK: {
    scope: "w1",
    data: { toSeq: 12, txid: "tx-1", keys: ["plan"], replayed: ["tx-2"], skipped: ["tx-3"], invalid: [] },
  },
  CIRCUIT_OPENED: { scope: "agent_spawn", data: { ...breaker, from: "closed", to: "open", openForMs: 1000 } },
  CIRCUIT_HALF_OPEN: { scope: "agent_spawn", data: { ...breaker, from: "open", to: "halfOpen" } },
  CIRCUIT_CLOSED: { scope: "agent_spawn", data: { ...breaker, failures: 0, from: "halfOpen", to: "closed" } },
  THRESHOLD_CROSSED: { scope: "state_conflicts_per_minute", data: { ...threshold, action: "alert" } },
  THRESHOLD_CLEARED: { scope: "state_conflicts_per_minute", data: { ...threshold, value: 3, action: "alert" } },
  THRESHOLD_WARNING: { scope: "delegation_depth_p99", data: { ...threshold, action: "warn" } },
  THRESHOLD_WARNING_CLEARED: { scope: "delegation_depth_p99", data: { ...threshold, value: 2, action: "warn" } },
  SCALE_REQUESTED: {
    scope: "event_queue_depth",
    data: {
      metric: "event_queue_depth",
      value: 9000,
      threshold: 8000,
      deficit: 1000,
      command: "add-host",
      exitCode: 0,
    },
  },
  CLEANUP_REPORTED: {
    scope: "memory_usage_percent",
    data: { hostId: "h1", heapBeforeBytes: 900, heapAfterBytes: 600, freedBytes: 300, gc: true, released: ["caches"] },
  },
  HOOK_BYPASSED: { scope: "hook_failure_rate", data: { hook: "audit", hostId: "h1", forMs: 60_000, failureRate: 0.5 } },
  ADMISSION_THROTTLED: { scope: "admission", data: { belowPriority: 5, untilMs: 1_700_000_060_000, reason: "x" } },
  ADMISSION_RESTORED: { scope: "admission", data: { reason: "active_agents_count cleared" } },
  BUDGET_THRESHOLD_REACHED: {
    scope: "w1",
    data: { budget: "workflow w1", percent: 80, dimension: "requests", limit: 10, spent: 8 },
  },
  BUDGET_EXCEEDED: {
    scope: "w1",
    data: {
      taskId: "w1-r-3",
      budget: "workflow w1",
      dimension: "requests",
      limit: 6,
      spent: 5,
      reserved: 1,
      requested: 1,
    },
  },
  LLM_CALL_REPLAYED: { scope: "w1", data: { taskId: "w1-r", turn: 1, paidBy: "h1", attempt: 2 } },
  LLM_PROGRESS: { scope: "w1", data: { taskId: "w1-r", turn: 0, chars: 120, tail: "...queues", hostId: "h1" } },
  RESOURCE_EXHAUSTION: {
    scope: "global",
    data: {
      error_type: "agent_pool",
      severity: "critical",
      affected_workflows: ["w1", "w2", "w3"],
      system_utilization: { cpu: 98.7, memory: 96.2, agents: "19/20" },
    },
  },
  EMERGENCY_RESPONSE_ACTIVATED: {
    scope: "resource_management",
    data: {
      response_level: "critical",
      strategy: "intelligent_triage",
      actions: ["pause_low_priority_workflows"],
      affected_workflows: 3,
    },
  },
  EMERGENCY_RESPONSE_COMPLETED: {
    scope: "resource_management",
    data: { recovery_time_ms: 120, agents_freed: 5, workflows_affected: 3 },
  },
  RECOVERY_STAGE_COMPLETED: {
    scope: "gradual_resumption",
    data: { stage: 1, workflowId: "w3", action: "resume_paused_workflow", outcome: "done", cap: 1, ms: 900 },
  },
  GRADUAL_RESUMPTION_COMPLETED: {
    scope: "gradual_resumption",
    data: { recovery_time_ms: 2000, stages: 2, workflows_recovered: 2, paused_again: 0 },
  },
  PERFORMANCE_DEGRADATION_DETECTED: { scope: "trend_analysis", data: trend },
  MEMORY_TREND: { scope: "trend_analysis", data: { ...trend, service: "host-1", bytesPerMinute: 1_000_000 } },
  POST_EMERGENCY_MONITORING_STARTED: {
    scope: "post_emergency_monitoring",
    data: {
      monitoring_duration_ms: 7_200_000,
      alert_sensitivity: "high",
      sensitivity_share: 0.5,
      metrics_watched: ["memory_usage_percent", "event_queue_depth"],
      metrics_focus: ["resource_stability", "performance_regression"],
    },
  },
  DATA_INTEGRITY_ALERT: {
    scope: "w1",
    data: {
      alert_type: "state_corruption",
      severity: "critical",
      affected_workflows: ["w1"],
      damaged_keys: ["ledger"],
      corruption_risk: "high",
      immediate_action_required: true,
      detected_by: "corruption-assessment",
    },
  },
  DATA_PROTECTION_ACTIVATED: {
    scope: "w1",
    data: {
      protection_level: "maximum",
      frozen: true,
      checkpoint: null,
      verified_checkpoint: 41,
      log_confirmed: true,
      ms: 38,
    },
  },
  DEPENDENCY_RECOVERY_COMPLETED: {
    scope: "dependency_recovery",
    data: {
      workflows_recovered: 2,
      dependency_integrity: "maintained",
      context_transfer_percent: 100,
      recovery_time_ms: 5200,
    },
  },
  DATA_RECOVERY_COMPLETED: {
    scope: "w1",
    data: {
      recovery_success: "complete",
      data_integrity: "verified",
      corrupted_segments: 1,
      restored_from: 41,
      replayed: 2,
      validation_passed_percent: 100,
      recovery_time_ms: 95,
      unfrozen: true,
    },
  },
  POST_EMERGENCY_MONITORING_COMPLETED: {
    scope: "post_emergency_monitoring",
    data: {
      monitoring_time_ms: 7_200_040,
      samples: 72_000,
      regressions: 1,
      regressed_metrics: ["memory_usage_percent"],
      system_health: "regressed",
    },
  },
  COMMUNICATION_FAILURE: {
    scope: "agent_coordination",
    data: {
      failure_type: "host_unreachable",
      host_id: "h2",
      affected_agents: ["worker-ab12", "worker-cd34"],
      affected_kinds: ["worker"],
      held_tasks: ["w1-r-0-1"],
      held_task_count: 1,
      held_share: 0.5,
      coordination_impact: "severe",
      auto_recovery: "tasks_reassigned",
      reassign_grace_ms: 1000,
      silence_ms: 850,
    },
  },
  NETWORK_RECOVERY_COMPLETED: {
    scope: "restoration",
    data: {
      host_id: "h2",
      recovery_time_ms: 12_000,
      outage_ms: 12_900,
      connectivity_restored: true,
      connectivity_restored_percent: 100,
      still_unreachable: [],
      tasks_reassigned: 1,
      actors_replaced: 2,
      reconciliation: {
        batches: 1,
        applied: 0,
        duplicate: 0,
        conflict: 1,
        invalid: 0,
        orphan: 0,
        total: 1,
        complete: true,
      },
    },
  },
};

/** A sample as it arrives: the generic envelope a decoder returns. */
function sample(type: EventType): CadreEvent {
  const s = samples[type];
  return { type, category: events[type].category, scope: s.scope, data: s.data };
}

function failed(r: TypedEvent | ParseFailure): ParseFailure {
  if (!isParseFailure(r)) throw new Error(`expected a parse failure, got ${JSON.stringify(r)}`);
  return r;
}

describe("the events table", () => {
  it("gives every type an UPPER_SNAKE name, a lower_snake category, a data schema and a summary", () => {
    expect(EVENT_TYPES.length).toBeGreaterThanOrEqual(45);
    for (const type of EVENT_TYPES) {
      const spec = events[type];
      expect(type).toMatch(/^[A-Z][A-Z0-9_]*$/);
      expect(spec.category).toMatch(/^[a-z][a-z0-9_]*$/);
      expect(typeof spec.data.safeParse).toBe("function");
      expect(spec.summary.length).toBeGreaterThan(10);
      expect(typeof spec.critical).toBe("boolean");
    }
  });

  it("has one sample per type here (a new type needs one)", () => {
    expect(Object.keys(samples).sort()).toEqual([...EVENT_TYPES].sort());
  });

  it("derives the critical types: the same set as before the table, and the configuration's default", () => {
    expect(new Set(CRITICAL_EVENTS)).toEqual(new Set(CRITICAL_BEFORE));
    expect(CRITICAL_EVENTS).toHaveLength(CRITICAL_BEFORE.length);
    expect(new Set(ConfigSchema.parse({}).events.critical)).toEqual(new Set(CRITICAL_BEFORE));
  });
});

describe("parseEvent", () => {
  it.each(EVENT_TYPES)("accepts %s as its emit site sends it", (type) => {
    const raw = sample(type);
    const r = parseEvent(raw);
    expect(isParseFailure(r)).toBe(false);
    expect(r).toEqual(raw);
    expect(eventSchema(type).safeParse(raw).success).toBe(true);
  });

  it("narrows on the type: the data is typed by its row", () => {
    const r = parseEvent(sample("TASK_STARTED"));
    if (isParseFailure(r) || r.type !== "TASK_STARTED") throw new Error("expected TASK_STARTED");
    expectTypeOf(r.data.seq).toEqualTypeOf<number>();
    expectTypeOf(r.category).toEqualTypeOf<"task">();
    expect(r.data.seq).toBe(17);
  });

  it("fills a field's default (older emitters) and strips fields the table does not know (newer ones)", () => {
    const { conflicts: _c, cancelled: _x, ...older } = tasks;
    const r = parseEvent({
      type: "WORKFLOW_COMPLETED",
      category: "workflow",
      scope: "w1",
      data: { tasks: older, ms: 5, addedLater: true },
    });
    expect(r).toEqual({ type: "WORKFLOW_COMPLETED", category: "workflow", scope: "w1", data: { tasks, ms: 5 } });
  });

  it("keeps what an open payload spreads in (DELEGATION_REFUSED carries the error's data)", () => {
    const r = parseEvent(sample("DELEGATION_REFUSED"));
    expect(isParseFailure(r) ? r : r.data).toMatchObject({ chain: ["a", "b", "a"] });
  });

  it("fails, without throwing, on an unknown type", () => {
    const f = failed(parseEvent({ type: "NEW_IN_V2", category: "task", scope: "w1", data: {} }));
    expect(f).toMatchObject({ ok: false, type: "NEW_IN_V2", reason: "unknown-type" });
    expect(f.issues).toEqual([{ path: "type", message: 'unknown event type "NEW_IN_V2"' }]);
    // Nor does a name that only an object's prototype has pass for a type.
    expect(failed(parseEvent({ type: "constructor", category: "x", scope: "s", data: {} })).reason).toBe(
      "unknown-type",
    );
  });

  it("fails on bad data, naming the field", () => {
    const good = samples.TASK_STARTED.data;
    const missing = failed(parseEvent({ ...sample("TASK_STARTED"), data: { ...good, seq: undefined } }));
    expect(missing.reason).toBe("invalid");
    expect(missing.issues.map((i) => i.path)).toEqual(["data.seq"]);
    expect(missing.message).toMatch(/^TASK_STARTED: data\.seq: /);

    const wrong = failed(parseEvent({ ...sample("TASK_STARTED"), data: { ...good, taskId: 42 } }));
    expect(wrong.issues).toEqual([{ path: "data.taskId", message: expect.stringMatching(/expected string/) }]);

    const nested = failed(
      parseEvent({
        ...sample("RESULT_CONFLICT"),
        data: { ...samples.RESULT_CONFLICT.data, applied: { resultId: "r", status: "lost", hostId: "h1" } },
      }),
    );
    expect(nested.issues.map((i) => i.path)).toEqual(["data.applied.status"]);
  });

  it("fails on a category that is not its type's", () => {
    const f = failed(parseEvent({ ...sample("HOST_UP"), category: "task" }));
    expect(f.issues.map((i) => i.path)).toEqual(["category"]);
  });

  it("never throws, whatever it is given", () => {
    const junk = [null, undefined, 42, "TASK_STARTED", {}, { type: "TASK_STARTED" }, { type: "TASK_STARTED", data: 5 }];
    for (const j of junk) expect(isParseFailure(parseEvent(j as unknown as CadreEvent))).toBe(true);
  });
});

describe("typed emitting (checked by the compiler)", () => {
  const emitted: TypedEvent[] = [];
  /** What an emit site calls (the event bus's emit takes a TypedEvent). */
  const emit = (e: TypedEvent): void => void emitted.push(e);

  it("accepts what the table says and rejects a wrong field, a missing one, a wrong category or type", () => {
    const paused = Math.random() < 2;
    emit({ type: "HOST_UP", category: "host", scope: "h1", data: { incarnation: "i1" } });
    emit({ type: paused ? "HOST_CORDONED" : "HOST_UNCORDONED", category: "host", scope: "h1", data: { hostId: "h1" } });
    // @ts-expect-error: a misspelled field (and so the required one missing)
    emit({ type: "HOST_UP", category: "host", scope: "h1", data: { incarnaton: "i1" } });
    // @ts-expect-error: a field the table does not know
    emit({ type: "HOST_UP", category: "host", scope: "h1", data: { incarnation: "i1", extra: 1 } });
    // @ts-expect-error: a field of the wrong type
    emit({ type: "TASK_PARKED", category: "task", scope: "w1", data: { taskId: "t", epoch: "1", paused: true } });
    // @ts-expect-error: the category of another type
    emit({ type: "HOST_UP", category: "task", scope: "h1", data: { incarnation: "i1" } });
    // @ts-expect-error: a type that is not in the table
    emit({ type: "HOST_EXPLODED", category: "host", scope: "h1", data: {} });
    expect(emitted).toHaveLength(7);
  });
});
