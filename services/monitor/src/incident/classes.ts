/**
 * The classes of events an incident report sorts the stream into, and which record commands.
 *
 * ## Classification (every type of the events table, protocol events.ts)
 *
 * - fault: an event that announces a fault and opens a row of the faults table:
 *   HOST_UNREACHABLE, AGENT_QUARANTINED, STATE_CORRUPTED, CIRCUIT_OPENED, THRESHOLD_CROSSED,
 *   RESOURCE_EXHAUSTION, DEADLOCK_RESOLVED, DELEGATION_REFUSED, SUPERVISOR_STANDBY,
 *   DATA_INTEGRITY_ALERT;
 * - detection: a sign of trouble that opens no row (a symptom, a warning, a trend, or the
 *   record of a late result): HOST_SUSPECTED, ACTOR_LOST, THRESHOLD_WARNING,
 *   PERFORMANCE_DEGRADATION_DETECTED, MEMORY_TREND, RESPONSE_ANOMALY, RESULT_REJECTED,
 *   RESULT_DUPLICATE, RESULT_CONFLICT, BUDGET_THRESHOLD_REACHED, BUDGET_EXCEEDED,
 *   POST_EMERGENCY_MONITORING_COMPLETED (the watch's regressions), and the monitor's announcements
 *   of faults another event already opens (COMMUNICATION_FAILURE for HOST_UNREACHABLE,
 *   AGENT_POOL_FAILURE for the actors lost with a host). No event ends a trend, so the
 *   two trend types are detections, never open faults;
 * - action: what Cadre did about it by itself: TASK_REASSIGNED, AGENT_PREEMPTED,
 *   CIRCUIT_HALF_OPEN, SCALE_REQUESTED, CLEANUP_REPORTED, HOOK_BYPASSED, ADMISSION_THROTTLED;
 * - recovery: HOST_HEALED, CIRCUIT_CLOSED, THRESHOLD_CLEARED, THRESHOLD_WARNING_CLEARED,
 *   ADMISSION_RESTORED, OUTBOX_REPLAYED, RECONCILIATION_REPORT, SUPERVISOR_ACTIVE, PARTITION_ACQUIRED,
 *   EMERGENCY_RESPONSE_COMPLETED, GRADUAL_RESUMPTION_COMPLETED, NETWORK_RECOVERY_COMPLETED,
 *   RECOVERY_VALIDATION_COMPLETED, DATA_RECOVERY_COMPLETED, DEPENDENCY_RECOVERY_COMPLETED;
 * - command: an operator's command: WORKFLOW_PAUSED, _RESUMED, _LIMITED, _CANCELLED, _FROZEN,
 *   _UNFROZEN, AGENT_RELEASED, AGENT_RETIRED, TEAM_RETIRED, HOST_CORDONED, HOST_UNCORDONED,
 *   HOST_DRAINED, STATE_ROLLED_BACK, EMERGENCY_RESPONSE_ACTIVATED, RECOVERY_STAGE_COMPLETED,
 *   POST_EMERGENCY_MONITORING_STARTED, RECOVERY_PLAN_GENERATED, CONTEXT_TRANSFERRED,
 *   DATA_PROTECTION_ACTIVATED;
 * - routine: the rest (tasks started and applied, workflows submitted, waiting, released and
 *   ended, actors spawned, passivated or retired with their team, hosts up, teams forgotten,
 *   partitions given up,
 *   model calls): not on the timeline, but counted.
 *
 * "Commands operators ran" lists the command events and the events the runbook commands
 * themselves emit (RESOURCE_EXHAUSTION of emergency-analysis, EMERGENCY_RESPONSE_COMPLETED,
 * GRADUAL_RESUMPTION_COMPLETED, POST_EMERGENCY_MONITORING_COMPLETED, RECOVERY_VALIDATION_COMPLETED,
 * DATA_RECOVERY_COMPLETED, DEPENDENCY_RECOVERY_COMPLETED). A type added to the table and not here is routine until it is
 * classified (a unit test says which are missing).
 */

import type { EventType } from "@cadre/protocol";

export type EventClass = "fault" | "detection" | "action" | "recovery" | "command" | "routine";

/**
 * Keyed by name rather than by {@link EventType}: a type renamed or not yet in the table does not
 * break the build; the unit tests check both ways (every type classified, every name a type).
 */
const CLASSES: Readonly<Record<string, Exclude<EventClass, "routine">>> = {
  HOST_UNREACHABLE: "fault",
  AGENT_QUARANTINED: "fault",
  STATE_CORRUPTED: "fault",
  CIRCUIT_OPENED: "fault",
  THRESHOLD_CROSSED: "fault",
  RESOURCE_EXHAUSTION: "fault",
  DEADLOCK_RESOLVED: "fault",
  DELEGATION_REFUSED: "fault",
  SUPERVISOR_STANDBY: "fault",
  DATA_INTEGRITY_ALERT: "fault",

  HOST_SUSPECTED: "detection",
  ACTOR_LOST: "detection",
  THRESHOLD_WARNING: "detection",
  PERFORMANCE_DEGRADATION_DETECTED: "detection",
  MEMORY_TREND: "detection",
  RESPONSE_ANOMALY: "detection",
  POST_EMERGENCY_MONITORING_COMPLETED: "detection",
  RESULT_REJECTED: "detection",
  RESULT_DUPLICATE: "detection",
  RESULT_CONFLICT: "detection",
  BUDGET_THRESHOLD_REACHED: "detection",
  BUDGET_EXCEEDED: "detection",
  COMMUNICATION_FAILURE: "detection",
  AGENT_POOL_FAILURE: "detection",

  TASK_REASSIGNED: "action",
  AGENT_PREEMPTED: "action",
  CIRCUIT_HALF_OPEN: "action",
  SCALE_REQUESTED: "action",
  CLEANUP_REPORTED: "action",
  HOOK_BYPASSED: "action",
  ADMISSION_THROTTLED: "action",

  HOST_HEALED: "recovery",
  CIRCUIT_CLOSED: "recovery",
  THRESHOLD_CLEARED: "recovery",
  THRESHOLD_WARNING_CLEARED: "recovery",
  ADMISSION_RESTORED: "recovery",
  OUTBOX_REPLAYED: "recovery",
  RECONCILIATION_REPORT: "recovery",
  SUPERVISOR_ACTIVE: "recovery",
  PARTITION_ACQUIRED: "recovery",
  EMERGENCY_RESPONSE_COMPLETED: "recovery",
  GRADUAL_RESUMPTION_COMPLETED: "recovery",
  NETWORK_RECOVERY_COMPLETED: "recovery",
  RECOVERY_VALIDATION_COMPLETED: "recovery",
  DATA_RECOVERY_COMPLETED: "recovery",
  DEPENDENCY_RECOVERY_COMPLETED: "recovery",

  WORKFLOW_PAUSED: "command",
  WORKFLOW_RESUMED: "command",
  WORKFLOW_LIMITED: "command",
  WORKFLOW_CANCELLED: "command",
  WORKFLOW_FROZEN: "command",
  WORKFLOW_UNFROZEN: "command",
  AGENT_RELEASED: "command",
  AGENT_RETIRED: "command",
  TEAM_RETIRED: "command",
  HOST_CORDONED: "command",
  HOST_UNCORDONED: "command",
  HOST_DRAINED: "command",
  STATE_ROLLED_BACK: "command",
  EMERGENCY_RESPONSE_ACTIVATED: "command",
  RECOVERY_STAGE_COMPLETED: "command",
  POST_EMERGENCY_MONITORING_STARTED: "command",
  RECOVERY_PLAN_GENERATED: "command",
  CONTEXT_TRANSFERRED: "command",
  DATA_PROTECTION_ACTIVATED: "command",
};

/** The routine types, named so that a type missing from both lists can be found (a unit test). */
export const ROUTINE: readonly string[] = [
  "TASK_STARTED",
  "TASK_ATTEMPT_FAILED",
  "TASK_ATTEMPT_STOPPED",
  "TASK_COMPLETED",
  "TASK_FAILED",
  "TASK_PARKED",
  "TASK_UNPARKED",
  "WORKFLOW_SUBMITTED",
  "WORKFLOW_WAITING",
  "WORKFLOW_RELEASED",
  "WORKFLOW_COMPLETED",
  "WORKFLOW_FAILED",
  "ACTOR_SPAWNED",
  "ACTOR_PASSIVATED",
  "ACTOR_RETIRED",
  "TEAM_FORGOTTEN",
  "HOST_UP",
  "PARTITION_RELEASED",
  "LLM_CALL_REPLAYED",
  "LLM_PROGRESS",
];

/** Emitted by the runbook's own commands, so listed with the operators' commands too. */
const RUNBOOK_EMITTED = new Set<string>([
  "RESOURCE_EXHAUSTION",
  "EMERGENCY_RESPONSE_COMPLETED",
  "GRADUAL_RESUMPTION_COMPLETED",
  "POST_EMERGENCY_MONITORING_COMPLETED",
  "RECOVERY_VALIDATION_COMPLETED",
  "DATA_RECOVERY_COMPLETED",
  "DEPENDENCY_RECOVERY_COMPLETED",
]);

/** The class of an event type (routine for one this module does not know). */
export const classOf = (type: string): EventClass =>
  (Object.hasOwn(CLASSES, type) ? CLASSES[type] : undefined) ?? "routine";

/** Whether an event of this type records a command an operator ran. */
export const isCommand = (type: string): boolean => classOf(type) === "command" || RUNBOOK_EMITTED.has(type);

/** The types classified by this module (for the completeness test). */
export const classifiedTypes = (): string[] => [...Object.keys(CLASSES), ...ROUTINE];
