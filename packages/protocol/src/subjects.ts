/**
 * Every NATS subject, stream and bucket name Cadre uses is built here and nowhere else.
 *
 * Grammar (all under {@link SUBJECT_PREFIX}, `cadre.v1`):
 *
 *   cadre.v1.task.<teamId>.<kind>      JetStream (CADRE_TASKS): task envelopes for one kind of a team
 *   cadre.v1.result.<workflowId>       JetStream (CADRE_RESULTS): results of task attempts
 *   cadre.v1.evt.<category>.<scope>    JetStream (CADRE_EVENTS, captured core publishes): events
 *   cadre.v1.hb.<hostId>               core: agent-host heartbeats
 *   cadre.v1.host.<hostId>.<op>        core request/reply: operations of one agent-host (operations.ts)
 *   cadre.v1.sup.<op>                  core request/reply: supervisor operations, queue group (operations.ts)
 *   cadre.v1.child.<parentTaskId>      core: a child of <parentTaskId> reached a terminal state
 *
 * A token is `[A-Za-z0-9_-]+`: no dots, wildcards or spaces, so an id can never widen a
 * subscription or address another subject.
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
} as const;

export const BUCKETS = {
  workflows: "cadre_workflows",
  tasks: "cadre_tasks",
  registry: "cadre_registry",
  /** Workflow state that agents share: keys `<workflowId>.<name>`, written in transactions. */
  state: "cadre_state",
} as const;

const TOKEN = /^[A-Za-z0-9_-]+$/;

/** Returns the token if it is a valid subject token, else throws a ProtocolError naming it. */
export function token(what: string, value: string): string {
  if (!TOKEN.test(value)) {
    throw new ProtocolError(`${what} "${value}" is not a valid subject token; use letters, digits, "_" and "-" only`, {
      what,
      value,
    });
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
  /** Results of one workflow. */
  result: (workflowId: string) => `${SUBJECT_PREFIX}.result.${token("workflow id", workflowId)}`,
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
  /** Notice to the holder of a parent task that one of its children finished. */
  child: (parentTaskId: string) => `${SUBJECT_PREFIX}.child.${token("task id", parentTaskId)}`,
} as const;

/** Durable consumer name for the tasks of one kind of one team. */
export const taskConsumer = (teamId: string, kind: string): string =>
  `task_${token("team id", teamId)}_${token("kind", kind)}`;

/** Durable consumer of the supervisor on the results stream. */
export const RESULTS_CONSUMER = "supervisor_results";
