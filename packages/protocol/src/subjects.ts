/**
 * Every NATS subject, stream and bucket name Cadre uses is built here and nowhere else.
 *
 * Grammar (all under {@link SUBJECT_PREFIX}, `cadre.v1`):
 *
 *   cadre.v1.task.<teamId>.<kind>      JetStream (CADRE_TASKS): task envelopes for one kind of a team
 *   cadre.v1.result.<p>.<workflowId>   JetStream (CADRE_RESULTS): results of task attempts, by partition
 *   cadre.v1.evt.<category>.<scope>    JetStream (CADRE_EVENTS, captured core publishes): events
 *   cadre.v1.hb.<hostId>               core: agent-host heartbeats
 *   cadre.v1.host.<hostId>.<op>        core request/reply: operations of one agent-host (operations.ts)
 *   cadre.v1.sup.<op>                  core request/reply: supervisor operations, queue group (operations.ts)
 *   cadre.v1.sup.part.<p>.<op>         core request/reply: partitioned ones, answered by partition p's holder
 *   cadre.v1.child.<parentTaskId>      core: a child of <parentTaskId> reached a terminal state
 *
 * A token is `[A-Za-z0-9_-]+`: no dots, wildcards or spaces, so an id can never widen a
 * subscription or address another subject.
 *
 * Bounds. nats-server closes a connection that sends a control line (`PUB <subject> <reply>
 * <size>`) longer than its `max_control_line`, 4096 bytes by default, and the client reconnects
 * and sends it again: a subject too long is not refused, it takes the sender down. So a token
 * is at most {@link MAX_TOKEN_LENGTH} (200) characters, and every id in a message is checked
 * against that bound when it is decoded (messages.ts `Id`, `EventSchema.scope`). A subject holds
 * at most two such tokens: the longest Cadre builds is the task subject, `cadre.v1.task.` +
 * team id + `.` + kind, under 270 bytes; a JetStream delivery's control line (that subject, and
 * an ack reply naming the durable `task_<teamId>_<kind>`) stays under 700 bytes. A durable's name
 * is also a directory of the file store, at most 255 bytes: `task_` + 200 + `_` + 48 is 254.
 */

import { ProtocolError } from "./errors.js";

/** Root of every subject. The version is the protocol version's major. */
export const SUBJECT_PREFIX = "cadre.v1";

/** JetStream streams. */
export const STREAMS = {
  tasks: "CADRE_TASKS",
  results: "CADRE_RESULTS",
  events: "CADRE_EVENTS",
  /** A mirror of the workflow-state bucket's stream: every committed write, for rollback and replay. */
  stateLog: "CADRE_STATE_LOG",
} as const;

/** JetStream KV buckets. */
/**
 * Message headers Cadre sets. `replay`: on a result sent from a host's outbox,
 * `<batchId>:<count>`, so the supervisor knows when it has classified the whole replay.
 */
export const HEADERS = {
  replay: "Cadre-Replay",
  /**
   * On a task message: the token of this task at this epoch, which proves holding (runtime
   * security.ts). Only the delivery carries it; the task record does not.
   */
  taskToken: "Cadre-Task-Token",
} as const;

export const BUCKETS = {
  workflows: "cadre_workflows",
  tasks: "cadre_tasks",
  registry: "cadre_registry",
  /** Workflow state that agents share: keys `<workflowId>.<name>`, written in transactions. */
  state: "cadre_state",
  /** Model calls: budgets' ledgers, providers' shared limits, the call journal (llm.ts). */
  llm: "cadre_llm",
} as const;

/** The longest subject token (an id, a name, a scope): see "Bounds" above. */
export const MAX_TOKEN_LENGTH = 200;

const TOKEN = new RegExp(`^[A-Za-z0-9_-]{1,${MAX_TOKEN_LENGTH}}$`);

/** Returns the token if it is a valid subject token, else throws a ProtocolError naming it. */
export function token(what: string, value: string): string {
  if (!TOKEN.test(value)) {
    // The value is echoed only in part: an error reply must stay small (see operations.ts in runtime).
    const shown = value.length > 64 ? `${value.slice(0, 64)}... (${value.length} characters)` : value;
    throw new ProtocolError(
      `${what} "${shown}" is not a valid subject token; use letters, digits, "_" and "-" only, at most ${MAX_TOKEN_LENGTH} characters`,
      { what, value: shown },
    );
  }
  return value;
}

/** Whether a string is a valid subject token. */
export const isToken = (value: string): boolean => TOKEN.test(value);

/** Subject builders. */
export const subjects = {
  /** Tasks for one kind of one team. */
  task: (teamId: string, kind: string) => `${SUBJECT_PREFIX}.task.${token("team id", teamId)}.${token("kind", kind)}`,
  /** Filter for every task subject. */
  allTasks: () => `${SUBJECT_PREFIX}.task.>`,
  /** Results of one workflow, under its partition (the task envelope's; partitions.ts). */
  result: (partition: number, workflowId: string) =>
    `${SUBJECT_PREFIX}.result.${partitionToken(partition)}.${token("workflow id", workflowId)}`,
  /** Filter for the results of one partition. */
  partitionResults: (partition: number) => `${SUBJECT_PREFIX}.result.${partitionToken(partition)}.*`,
  /** Filter for every result subject. */
  allResults: () => `${SUBJECT_PREFIX}.result.>`,
  /** An event. */
  event: (category: string, scope: string) =>
    `${SUBJECT_PREFIX}.evt.${token("event category", category)}.${token("event scope", scope)}`,
  /** Filter for every event subject. */
  allEvents: () => `${SUBJECT_PREFIX}.evt.>`,
  /** Filter for the events of one category (every scope). */
  eventsOf: (category: string) => `${SUBJECT_PREFIX}.evt.${token("event category", category)}.*`,
  /** Heartbeats of one host. */
  heartbeat: (hostId: string) => `${SUBJECT_PREFIX}.hb.${token("host id", hostId)}`,
  /** Filter for every heartbeat. */
  allHeartbeats: () => `${SUBJECT_PREFIX}.hb.*`,
  /** A service's periodic report to the monitor (messages.ts ServiceReportSchema). */
  report: (service: string, id: string) =>
    `${SUBJECT_PREFIX}.report.${token("service", service)}.${token("service id", id)}`,
  /** Filter for every report. */
  allReports: () => `${SUBJECT_PREFIX}.report.>`,
  /** Notice to the holder of a parent task that one of its children finished. */
  child: (parentTaskId: string) => `${SUBJECT_PREFIX}.child.${token("task id", parentTaskId)}`,
} as const;

/** Durable consumer name for the tasks of one kind of one team. */
export const taskConsumer = (teamId: string, kind: string): string =>
  `task_${token("team id", teamId)}_${token("kind", kind)}`;

/** Durable consumer of a partition's results, consumed by the partition's holder. */
export const resultsConsumer = (partition: number): string => `results_p${partitionToken(partition)}`;

function partitionToken(partition: number): string {
  if (!Number.isInteger(partition) || partition < 0 || partition > 4095) {
    throw new ProtocolError(`a partition is an integer from 0 to 4095, got ${partition}`);
  }
  return String(partition);
}
