/**
 * DATA_INTEGRITY_ALERT from what hosts meet: a host that reads a workflow's state value whose
 * checksum fails, with no good revision left in the key's history to restore, announces
 * STATE_CORRUPTED with `restoredAs: null` (runtime state-store.ts); the agents of that workflow
 * cannot read or write that value until a recovery rebuilds it from a checkpoint and the state
 * log (`/workflow-recovery execute-data-recovery`). The monitor turns that into the seed's alert,
 * at most once per workflow per {@link ALERT_EVERY_MS} (every retry of a task reading the value
 * reports it again). Values a read restored by itself (`restoredAs` set) are no alert: nothing
 * is at risk any more; STATE_CORRUPTED records them.
 */

import type { TypedEvent } from "@cadre/protocol";
import type { Clock } from "@cadre/runtime";

/** One alert per workflow in this long, however often its damaged value is met. */
export const ALERT_EVERY_MS = 30_000;

/** A reaction to the events the monitor hears: STATE_CORRUPTED in, DATA_INTEGRITY_ALERT out. */
export function dataIntegrityAlerts(clock: Clock, emit: (e: TypedEvent) => void): (e: TypedEvent) => void {
  const last = new Map<string, number>();
  return (e) => {
    // Hosts read workflow state (scope "state"); the supervisor's scopes are its own buckets.
    if (e.type !== "STATE_CORRUPTED" || e.scope !== "state" || e.data.restoredAs !== null) return;
    const dot = e.data.key.indexOf(".");
    if (dot <= 0) return;
    const workflowId = e.data.key.slice(0, dot);
    const now = clock.now();
    const at = last.get(workflowId);
    if (at !== undefined && now - at < ALERT_EVERY_MS) return;
    last.set(workflowId, now);
    // Bounded: workflows alerted long ago are forgotten.
    for (const [w, t] of last) if (now - t >= ALERT_EVERY_MS) last.delete(w);
    emit(
      integrityAlert(workflowId, [e.data.key.slice(dot + 1)], { risk: "high", actionRequired: true, by: "host read" }),
    );
  };
}

/** The seed's DATA_INTEGRITY_ALERT for damaged values of a workflow's state (here and corruption-assessment). */
export function integrityAlert(
  workflowId: string,
  damagedKeys: string[],
  o: { risk: "high" | "medium"; actionRequired: boolean; by: string },
): TypedEvent<"DATA_INTEGRITY_ALERT"> {
  return {
    type: "DATA_INTEGRITY_ALERT",
    category: "coordination",
    scope: workflowId,
    data: {
      alert_type: "state_corruption",
      severity: "critical",
      affected_workflows: [workflowId],
      damaged_keys: damagedKeys,
      corruption_risk: o.risk,
      immediate_action_required: o.actionRequired,
      detected_by: o.by,
    },
  };
}
