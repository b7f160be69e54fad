/**
 * Counting from events: most of Cadre's counters (tasks started, finished, retried, reassigned;
 * duplicate, conflicting and rejected results; reconciliation classes) count
 * events, so they are counted where the event is emitted, by the one service that emits it.
 * Summed over the services' `/metrics`, each counts every occurrence once. The supervisor's
 * `cadre_workflows{status}` follows its workflow events too: `running` is seeded when it becomes
 * active (seedWorkflows) and moves with each submit and end; the ended statuses count the
 * workflows that ended while it was active.
 */

import type { TypedEvent } from "@cadre/protocol";
import type { CadreMetrics } from "./metrics.js";

/** The reconciliation classes of RECONCILIATION_REPORT, as `classification` labels. */
const CLASSES = ["applied", "duplicate", "conflict", "invalid", "orphan"] as const;

/** Counts one event this process emitted into its metrics (events with no counter: nothing). */
export function countEvent(m: CadreMetrics, e: TypedEvent): void {
  switch (e.type) {
    case "TASK_STARTED":
      m.tasksStarted.inc({ kind: e.data.kind });
      return;
    case "TASK_COMPLETED":
    case "TASK_FAILED":
      m.tasksCompleted.inc({ kind: e.data.kind, outcome: e.type === "TASK_COMPLETED" ? "completed" : "failed" });
      return;
    case "TASK_ATTEMPT_FAILED":
      m.tasksRetried.inc({ kind: e.data.kind ?? "unknown" });
      return;
    case "TASK_REASSIGNED":
      m.tasksReassigned.inc({ kind: e.data.kind });
      return;
    case "RESULT_DUPLICATE":
      m.resultsDuplicate.inc({ kind: e.data.kind ?? "unknown" });
      return;
    case "RESULT_CONFLICT":
      m.resultsConflict.inc({ kind: e.data.kind ?? "unknown" });
      return;
    case "RESULT_REJECTED":
      m.resultsRejected.inc({ reason: e.data.reason });
      return;
    case "RECONCILIATION_REPORT":
      // A partial report (the rest of the batch never came) is not followed by a complete one.
      for (const c of CLASSES) if (e.data[c] > 0) m.reconciliation.inc({ classification: c }, e.data[c]);
      return;
    case "WORKFLOW_SUBMITTED":
      m.workflows.inc({ status: "running" });
      return;
    case "WORKFLOW_COMPLETED":
    case "WORKFLOW_FAILED":
    case "WORKFLOW_CANCELLED":
      m.workflows.dec({ status: "running" });
      m.workflows.inc({ status: e.type.slice("WORKFLOW_".length).toLowerCase() });
      return;
    default:
      return;
  }
}
