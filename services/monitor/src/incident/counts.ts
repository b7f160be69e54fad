/**
 * The counts of an incident report: what the events say of the work, tallied event by event
 * ({@link count}) and finished after the last one ({@link closeCounts}).
 *
 * ## Counts
 *
 * - lost: tasks of workflows that ended in the window (the last of WORKFLOW_COMPLETED, _FAILED,
 *   _CANCELLED) that their own counts show neither completed, failed nor cancelled
 *   (total - completed - failed - cancelled). Events alone cannot say more: a workflow still
 *   running at --until is listed as unfinished, not lost.
 * - applied twice: tasks with applied events (TASK_COMPLETED or TASK_FAILED) of two or more
 *   distinct results; 0 by design (promise 2), reported as the events show.
 * - reassigned: TASK_REASSIGNED events (and the distinct tasks, and why).
 * - conflicts: RESULT_CONFLICT events; duplicates: RESULT_DUPLICATE events (recorded, never
 *   applied). The ended workflows' own duplicate and conflict counts are given beside them.
 */

import type { EventType, TypedEvent } from "@cadre/protocol";
import type { Counts } from "./report.js";

/** What the counting keeps from one event to the next. */
export class CountState {
  readonly counts: Counts = {
    lost: 0,
    lostBy: [],
    appliedTwice: 0,
    appliedTwiceTasks: [],
    reassigned: 0,
    reassignedTasks: 0,
    reassignedBy: {},
    conflicts: 0,
    duplicates: 0,
    rejected: 0,
    attemptsFailed: 0,
    tasksCompleted: 0,
    tasksFailed: 0,
    workflows: { submitted: 0, completed: 0, failed: 0, cancelled: 0, unfinished: [] },
    workflowCounts: { total: 0, completed: 0, failed: 0, cancelled: 0, duplicates: 0, conflicts: 0 },
  };
  /** The distinct results applied, by task. */
  readonly applied = new Map<string, Set<string>>();
  /** The tasks reassigned. */
  readonly reassignedIds = new Set<string>();
  /** How each workflow ended (its last end event) and its own counts, by workflow. */
  readonly ended = new Map<string, { type: string; tasks: Record<string, number> }>();
  /** The workflows submitted. */
  readonly submitted = new Set<string>();
}

/** What an event of type `T` adds to the counts. */
type Counting<T extends EventType> = (st: CountState, e: TypedEvent<T>) => void;

const taskApplied: Counting<"TASK_COMPLETED" | "TASK_FAILED"> = (st, e) => {
  if (e.type === "TASK_COMPLETED") st.counts.tasksCompleted++;
  else st.counts.tasksFailed++;
  const ids = st.applied.get(e.data.taskId) ?? new Set<string>();
  ids.add(e.data.resultId);
  st.applied.set(e.data.taskId, ids);
};

const workflowEnded: Counting<"WORKFLOW_COMPLETED" | "WORKFLOW_FAILED" | "WORKFLOW_CANCELLED"> = (st, e) => {
  st.ended.set(e.scope, { type: e.type, tasks: e.data.tasks });
};

/** Handlers by event type; a type without one counts for nothing. */
const COUNTINGS: { readonly [T in EventType]?: Counting<T> } = {
  TASK_ATTEMPT_FAILED: ({ counts }) => {
    counts.attemptsFailed++;
  },
  TASK_COMPLETED: taskApplied,
  TASK_FAILED: taskApplied,
  TASK_REASSIGNED: (st, e) => {
    st.counts.reassigned++;
    st.reassignedIds.add(e.data.taskId);
    st.counts.reassignedBy[e.data.reason] = (st.counts.reassignedBy[e.data.reason] ?? 0) + 1;
  },
  RESULT_CONFLICT: ({ counts }) => {
    counts.conflicts++;
  },
  RESULT_DUPLICATE: ({ counts }) => {
    counts.duplicates++;
  },
  RESULT_REJECTED: ({ counts }) => {
    counts.rejected++;
  },
  WORKFLOW_SUBMITTED: (st, e) => {
    st.counts.workflows.submitted++;
    st.submitted.add(e.scope);
  },
  WORKFLOW_COMPLETED: workflowEnded,
  WORKFLOW_FAILED: workflowEnded,
  WORKFLOW_CANCELLED: workflowEnded,
};

/** Runs one event through the handler of its type. */
export function count(st: CountState, e: TypedEvent): void {
  (COUNTINGS[e.type] as Counting<EventType> | undefined)?.(st, e);
}

/** After the last event: the tasks applied twice, the distinct reassigned, the ended workflows' counts. */
export function closeCounts(st: CountState): Counts {
  const { counts } = st;
  for (const [taskId, ids] of st.applied) {
    if (ids.size > 1) counts.appliedTwiceTasks.push(taskId);
  }
  counts.appliedTwice = counts.appliedTwiceTasks.length;
  counts.appliedTwiceTasks.sort();
  counts.reassignedTasks = st.reassignedIds.size;
  for (const [workflowId, end] of st.ended) {
    const t = end.tasks;
    const n = (k: string) => t[k] ?? 0;
    const lost = Math.max(0, n("total") - n("completed") - n("failed") - n("cancelled"));
    if (lost > 0) counts.lostBy.push({ workflowId, lost });
    counts.lost += lost;
    if (end.type === "WORKFLOW_COMPLETED") counts.workflows.completed++;
    else if (end.type === "WORKFLOW_FAILED") counts.workflows.failed++;
    else counts.workflows.cancelled++;
    for (const k of ["total", "completed", "failed", "cancelled", "duplicates", "conflicts"] as const) {
      counts.workflowCounts[k] += n(k);
    }
  }
  counts.workflows.unfinished = [...st.submitted].filter((w) => !st.ended.has(w)).sort();
  return counts;
}
