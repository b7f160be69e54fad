/** How `cadre run` reports a finished workflow: a summary for people, one object for --json. */

import type { WorkflowRecord } from "@cadre/protocol";
import { waitsText } from "./format.js";

/** The --json result of a run. */
export function summaryJson(w: WorkflowRecord): Record<string, unknown> {
  return {
    workflowId: w.workflowId,
    team: w.teamName,
    teamId: w.teamId,
    status: w.status,
    ms: (w.finishedAt ?? Date.now()) - w.submittedAt,
    tasks: w.tasks,
    ...(w.usage ? { usage: w.usage } : {}),
    ...(w.budget ? { budget: w.budget } : {}),
    ...(w.after?.length ? { after: w.after, waitingFor: w.waitingFor ?? [] } : {}),
    ...(w.output !== undefined ? { output: w.output } : {}),
    ...(w.error ? { error: w.error } : {}),
  };
}

/** The human summary of a run. */
export function summaryText(w: WorkflowRecord): string {
  const secs = (((w.finishedAt ?? Date.now()) - w.submittedAt) / 1000).toFixed(2);
  const t = w.tasks;
  const waiting = w.status === "running" && (w.waitingFor?.length ?? 0) > 0;
  const lines = [
    `workflow ${w.workflowId} (${w.teamName}) ${waiting ? "waiting" : w.status} ${waiting ? "for" : "in"} ${secs} s`,
    `  tasks: ${t.completed} completed, ${t.failed} failed, ${t.retried} retried, ${t.duplicates} duplicate results ignored (${t.total} in all)`,
  ];
  // The workflows it waits for, or waited for (its after).
  if (w.after?.length) lines.push(`  ${waitsText(w.after, w.status === "running" ? w.waitingFor : [])}`);
  if (t.cancelled > 0) lines.push(`  cancelled: ${t.cancelled} task${t.cancelled === 1 ? "" : "s"} ended unfinished`);
  // Only when there were some: late results of reassigned tasks, recorded beside the applied ones.
  if (t.conflicts > 0) lines.push(`  conflicts: ${t.conflicts} results of superseded epochs recorded, not applied`);
  if (w.usage || w.budget) lines.push(`  model calls: ${usageText(w)}`);
  if (w.error) {
    lines.push(`  error: ${w.error.code}: ${w.error.message}`);
  }
  if (w.output !== undefined) lines.push(`  output: ${JSON.stringify(w.output)}`);
  return lines.join("\n");
}

/** `4 requests, 812 tokens in, 96 out, $0.0013 (budget: 6 requests)`. */
function usageText(w: WorkflowRecord): string {
  const u = w.usage ?? { requests: 0, inputTokens: 0, outputTokens: 0, costUsd: 0 };
  const b = w.budget;
  const limits = b
    ? [
        b.requests !== undefined ? `${b.requests} requests` : "",
        b.tokens !== undefined ? `${b.tokens} tokens` : "",
        b.costUsd !== undefined ? `$${b.costUsd}` : "",
      ].filter(Boolean)
    : [];
  return (
    `${u.requests} request${u.requests === 1 ? "" : "s"}, ${u.inputTokens} tokens in, ${u.outputTokens} out, $${u.costUsd.toFixed(4)}` +
    (limits.length > 0 ? ` (budget: ${limits.join(", ")})` : "")
  );
}
