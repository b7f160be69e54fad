/**
 * Pairing the faults that events of their own end (or that are handled as they are announced):
 * corrupted state, breakers, thresholds, resource exhaustion, deadlocks, refused delegations and
 * supervision (the rules: faults.ts).
 */

import type { FaultState, Pairings, Step } from "./faults.js";
import { BREAKER_TARGETS, METRIC_CASES, matrixRow, type Target } from "./targets.js";

/**
 * Another supervisor took over from `previous`, whose loss is no event: a fault handled at once,
 * detected since the last event `previous` sent (it was alive then, so an upper bound).
 * `lapsed`: what the previous holder stopped doing, said when none of its events was read.
 */
function takeover(
  st: FaultState,
  step: Step,
  key: string,
  previous: string,
  lapsed: string | null,
  detail: Record<string, unknown>,
  how: string,
): void {
  const last = st.lastSent.get(previous);
  const f = st.newFault(
    step,
    key,
    null,
    last === undefined ? null : step.s.at - last,
    last === undefined
      ? `${lapsed === null ? `the lease of ${previous} lapsed` : `${previous} ${lapsed}`}: its loss is no event, and no event of it was read`
      : `since the last event ${previous} sent (an upper bound: its loss is no event)`,
    { previous, ...detail, previousLastEventAt: last ?? null },
  );
  st.handledAtOnce(f, step, how);
}

export const SIGNAL_PAIRINGS: Pairings = {
  // --- state -------------------------------------------------------------------------------------
  STATE_CORRUPTED: (st, step) => {
    const { e } = step;
    const key = `state:${e.scope}:${e.data.key}`;
    const f = st.openOrRepeat(key, step, () =>
      st.newFault(
        step,
        key,
        matrixRow("state-corruption"),
        null,
        "checked when read: the event does not say when the value went bad",
        { key: e.data.key, reason: e.data.reason },
      ),
    );
    if (e.data.restoredAs !== null && f.recoveredAt === null) {
      st.recover(f, step, `restored from revision ${e.data.restoredFrom} as ${e.data.restoredAs}`);
    }
  },
  // The runbook's alert for a workflow's damaged state (a host could not restore a value, or
  // corruption-assessment found it), ended by a complete data recovery or a rollback.
  DATA_INTEGRITY_ALERT: (st, step) => {
    const { e } = step;
    const key = `data:${e.scope}`;
    st.openOrRepeat(key, step, () =>
      st.newFault(
        step,
        key,
        matrixRow("state-corruption"),
        null,
        "found when read or assessed: the event does not say when the value went bad",
        { workflow: e.scope, keys: e.data.damaged_keys.join(","), by: e.data.detected_by },
      ),
    );
  },
  DATA_RECOVERY_COMPLETED: (st, step) => {
    const { e } = step;
    const f = st.open.get(`data:${e.scope}`);
    if (f && e.data.recovery_success === "complete") {
      st.recover(f, step, `restored from ${e.data.restored_from}, ${e.data.replayed} replayed, verified`);
    }
  },
  STATE_ROLLED_BACK: (st, step) => {
    const { e } = step;
    const alert = st.open.get(`data:${e.scope}`);
    if (alert) st.recover(alert, step, `rolled back to ${e.data.toSeq}, ${e.data.replayed.length} replayed`);
    for (const f of [...st.open.values()]) {
      if (f.type !== "STATE_CORRUPTED") continue;
      // A workflow's state keys are `<workflowId>.<key>` (cli state.ts rolls back that prefix).
      if (String(f.detail.key).startsWith(`${e.scope}.`)) {
        st.recover(f, step, `rolled back to ${e.data.toSeq}, ${e.data.replayed.length} replayed`);
      }
    }
  },

  // --- breakers, thresholds, resources -----------------------------------------------------------
  CIRCUIT_OPENED: (st, step) => {
    const { e } = step;
    const key = `breaker:${e.data.source}:${e.data.breaker}`;
    const name = e.data.breaker.split(":")[0] ?? e.data.breaker;
    const t = (BREAKER_TARGETS as Record<string, Target>)[name];
    st.openOrRepeat(key, step, () =>
      st.newFault(
        step,
        key,
        t ? { ...t, row: `breaker:${name}` } : null,
        null,
        `opened after ${e.data.failures} consecutive failures; the events do not say when the first was`,
        { breaker: e.data.breaker, source: e.data.source },
      ),
    );
  },
  CIRCUIT_CLOSED: (st, step) => {
    const { e } = step;
    const f = st.open.get(`breaker:${e.data.source}:${e.data.breaker}`);
    if (f) st.recover(f, step, "closed");
  },
  THRESHOLD_CROSSED: (st, step) => {
    const { e } = step;
    const key = `metric:${e.data.metric}`;
    const c = METRIC_CASES[e.data.metric];
    st.openOrRepeat(key, step, () =>
      st.newFault(
        step,
        key,
        c ? matrixRow(c) : null,
        null,
        "sampled every monitor interval: the event does not say when the metric began to rise",
        { metric: e.data.metric, value: e.data.value, threshold: e.data.threshold, action: e.data.action },
      ),
    );
  },
  THRESHOLD_CLEARED: (st, step) => {
    const { e } = step;
    const f = st.open.get(`metric:${e.data.metric}`);
    if (f) st.recover(f, step, `cleared (${e.data.value} at or under ${e.data.clear})`);
  },
  RESOURCE_EXHAUSTION: (st, step) => {
    const { e } = step;
    const key = `resource:${e.scope}`;
    st.openOrRepeat(key, step, () =>
      st.newFault(
        step,
        key,
        matrixRow("resource-exhaustion"),
        null,
        "found by an operator's emergency-analysis: the event does not say when the pool filled",
        { error_type: e.data.error_type, affected_workflows: e.data.affected_workflows },
      ),
    );
  },
  EMERGENCY_RESPONSE_COMPLETED: (st, step) => {
    const { e } = step;
    for (const f of [...st.open.values()]) {
      if (f.type === "RESOURCE_EXHAUSTION") {
        st.recover(f, step, `emergency reallocation freed ${e.data.agents_freed} agents`);
      }
    }
  },

  // --- detected and handled in one event ----------------------------------------------------------
  DEADLOCK_RESOLVED: (st, step) => {
    const { e, s } = step;
    const f = st.newFault(
      step,
      `deadlock:${s.seq}`,
      matrixRow("deadlocks"),
      e.data.waitedMs,
      "the victim's wait (an upper bound: the cycle closed at or after it began waiting)",
      { cycle: e.data.cycle, victim: e.data.victim },
    );
    st.handledAtOnce(f, step, `victim ${e.data.victim} refused, ${e.data.released.length} released`);
  },
  DELEGATION_REFUSED: (st, step) => {
    const { e, s } = step;
    const loop = e.data.code === "CIRCULAR_DELEGATION" || e.data.code === "DELEGATION_DEPTH_EXCEEDED";
    const f = st.newFault(
      step,
      `delegation:${s.seq}`,
      loop ? matrixRow("delegation-loops") : null,
      0,
      "checked before the target starts: the refusal is the detection",
      { code: e.data.code, parentTaskId: e.data.parentTaskId },
    );
    st.handledAtOnce(f, step, "refused before any work started");
  },

  // --- supervision -------------------------------------------------------------------------------
  SUPERVISOR_STANDBY: (st, step) => {
    st.openOrRepeat("supervision", step, () =>
      st.newFault(step, "supervision", null, null, "the event does not say when acting stopped being possible"),
    );
  },
  PARTITION_ACQUIRED: (st, step) => {
    const { e, s } = step;
    // Taken from a holder that lapsed (a given-up or never-held partition names none).
    if (e.data.previous === null || e.data.previous === e.scope) return;
    takeover(
      st,
      step,
      `partition:${s.seq}`,
      e.data.previous,
      "stopped renewing its membership",
      { partition: e.data.partition },
      `${e.scope} took partition ${e.data.partition} (term ${e.data.term})`,
    );
  },
  SUPERVISOR_ACTIVE: (st, step) => {
    const { e, s } = step;
    const f = st.open.get("supervision");
    if (f) {
      st.recover(f, step, `${e.scope} active (term ${e.data.term})`);
    } else if (e.data.previous !== null && e.data.previous !== e.scope) {
      takeover(
        st,
        step,
        `supervisor:${s.seq}`,
        e.data.previous,
        null,
        { activationMs: e.data.activationMs },
        `${e.scope} took over (term ${e.data.term})`,
      );
    } else if (e.data.previous === e.scope) {
      // A clean stop gives the lease up: holding it still, the last incarnation died.
      const restart = st.newFault(
        step,
        `supervisor:${s.seq}`,
        null,
        null,
        "its last incarnation died holding the lease; when is no event (the new one's events share its sender)",
        { previous: e.data.previous, activationMs: e.data.activationMs },
      );
      st.handledAtOnce(restart, step, `${e.scope} started again and took its lease back (term ${e.data.term})`);
    }
  },
};
