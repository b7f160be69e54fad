/** How `cadre run` reports a finished workflow: a summary for people, one object for --json. */

import type { WorkflowRecord } from "@cadre/protocol";

/** The --json result of a run. */
export function summaryJson(w: WorkflowRecord): Record<string, unknown> {
  return {
    workflowId: w.workflowId,
    team: w.teamName,
    teamId: w.teamId,
    status: w.status,
    ms: (w.finishedAt ?? Date.now()) - w.submittedAt,
    tasks: w.tasks,
    ...(w.output !== undefined ? { output: w.output } : {}),
    ...(w.error ? { error: w.error } : {}),
  };
}

/** The human summary of a run. */
export function summaryText(w: WorkflowRecord): string {
  const secs = (((w.finishedAt ?? Date.now()) - w.submittedAt) / 1000).toFixed(2);
  const t = w.tasks;
  const lines = [
    `workflow ${w.workflowId} (${w.teamName}) ${w.status} in ${secs} s`,
    `  tasks: ${t.completed} completed, ${t.failed} failed, ${t.retried} retried, ${t.duplicates} duplicate results ignored (${t.total} in all)`,
  ];
  if (t.cancelled > 0) lines.push(`  cancelled: ${t.cancelled} task${t.cancelled === 1 ? "" : "s"} ended unfinished`);
  // Only when there were some: late results of reassigned tasks, recorded beside the applied ones.
  if (t.conflicts > 0) lines.push(`  conflicts: ${t.conflicts} results of superseded epochs recorded, not applied`);
  if (w.error) {
    lines.push(`  error: ${w.error.code}: ${w.error.message}`);
  }
  if (w.output !== undefined) lines.push(`  output: ${JSON.stringify(w.output)}`);
  return lines.join("\n");
}
