/**
 * Pairing the faults of the work a host or an agent held (HOST_UNREACHABLE, AGENT_QUARANTINED)
 * with the moves of that work: which host holds each task, and when the last task of a lost host
 * moved or a quarantined agent's task was retried or ended (the rules: faults.ts).
 */

import type { FaultState, HostCase, Pairing, Pairings, Step } from "./faults.js";
import { matrixRow } from "./targets.js";

/** A task held by a lost host has moved: the host is recovered once the last of them has. */
function moveHeld(st: FaultState, taskId: string, step: Step, how: string): void {
  const hc = st.heldBy.get(taskId);
  if (!hc) return;
  st.heldBy.delete(taskId);
  if (!hc.moved.has(taskId)) hc.moved.set(taskId, step.s.at);
  settleHost(st, hc, step, how);
}

function settleHost(st: FaultState, hc: HostCase, step: Step, how: string): void {
  if (hc.healed || hc.held.size === 0 || hc.moved.size < hc.held.size) return;
  // Every task it held has moved: recovered now (a later move of the same fault extends it).
  st.recover(hc.fault, step, how);
}

/** An attempt over: the task is no longer held by the host it ran on. */
const attemptOver: Pairing<"TASK_ATTEMPT_FAILED" | "TASK_ATTEMPT_STOPPED"> = (st, { e }) => {
  if (st.holders.get(e.data.taskId) === e.data.hostId) st.holders.delete(e.data.taskId);
};

/** A task applied (completed or failed): held by no one, moved off a lost host, its quarantine over. */
const taskApplied: Pairing<"TASK_COMPLETED" | "TASK_FAILED"> = (st, step) => {
  const { e } = step;
  st.holders.delete(e.data.taskId);
  // Each lost host that held it: done again elsewhere, or its own result got through. Kept
  // after the host is heard from again: that ends the fault, not the work.
  for (const hc of st.hostCases) {
    if (!hc.held.has(e.data.taskId) || hc.redone.has(e.data.taskId) || hc.finishedThere.has(e.data.taskId)) continue;
    if (e.data.hostId === hc.hostId) hc.finishedThere.add(e.data.taskId);
    else hc.redone.set(e.data.taskId, step.s.at);
  }
  moveHeld(st, e.data.taskId, step, `finished on ${e.data.hostId}`);
  const q = st.quarantinedTask.get(e.data.taskId);
  if (q && q.recoveredAt === null) {
    st.recover(q, step, `the task ended (${e.type === "TASK_COMPLETED" ? "completed" : "failed"})`);
  }
  st.quarantinedTask.delete(e.data.taskId);
};

/** A host heard from again (or started anew): its fault recovered, and later moves no longer count. */
const hostHeard: Pairing<"HOST_HEALED" | "HOST_UP"> = (st, step) => {
  const { e } = step;
  st.suspected.delete(e.scope);
  const hc = st.hosts.get(e.scope);
  if (!hc) return;
  if (hc.fault.recoveredAt === null) {
    st.recover(hc.fault, step, e.type === "HOST_HEALED" ? "heard from again" : "a new incarnation started");
  }
  hc.healed = true;
  for (const t of hc.held) if (st.heldBy.get(t) === hc) st.heldBy.delete(t);
  st.hosts.delete(e.scope);
  st.open.delete(hc.fault.key);
};

export const WORK_PAIRINGS: Pairings = {
  TASK_STARTED: (st, step) => {
    const { e } = step;
    const hc = st.heldBy.get(e.data.taskId);
    if (hc && hc.hostId !== e.data.hostId) moveHeld(st, e.data.taskId, step, `started again on ${e.data.hostId}`);
    st.holders.set(e.data.taskId, e.data.hostId);
  },
  TASK_ATTEMPT_FAILED: attemptOver,
  TASK_ATTEMPT_STOPPED: attemptOver,
  TASK_COMPLETED: taskApplied,
  TASK_FAILED: taskApplied,
  TASK_REASSIGNED: (st, step) => {
    const { e, s } = step;
    if (st.holders.get(e.data.taskId) === e.data.fromHostId) st.holders.delete(e.data.taskId);
    const hc = st.hosts.get(e.data.fromHostId);
    if (hc) {
      hc.held.add(e.data.taskId);
      (hc.fault.detail.reassigned as string[]).push(e.data.taskId);
      st.heldBy.set(e.data.taskId, hc);
      // Recovered already by the first of a sweep: the last one of it is when the work moved.
      moveHeld(st, e.data.taskId, step, "its tasks reassigned");
    }
    if (e.data.actorId !== undefined) {
      const q = st.quarantined.get(e.data.actorId);
      if (q && q.recoveredAt === null) st.recover(q, step, `task ${e.data.taskId} retried elsewhere`);
      else st.reassignedActors.set(e.data.actorId, { seq: s.seq, taskId: e.data.taskId });
    }
  },

  HOST_SUSPECTED: (st, { e, s }) => {
    st.suspected.set(e.scope, s.at);
  },
  HOST_UNREACHABLE: (st, step) => {
    const { e } = step;
    const key = `host:${e.scope}`;
    st.openOrRepeat(key, step, () => {
      const held = new Set([...st.holders].filter(([, h]) => h === e.scope).map(([t]) => t));
      const f = st.newFault(
        step,
        key,
        matrixRow("network-partition"),
        e.data.silenceMs,
        "silence since the host's last heartbeat (the failure detector's measure)",
        { hostId: e.scope, suspectedAt: st.suspected.get(e.scope) ?? null, held: [...held].sort(), reassigned: [] },
      );
      const hc: HostCase = {
        fault: f,
        hostId: e.scope,
        held,
        moved: new Map(),
        healed: false,
        redone: new Map(),
        finishedThere: new Set(),
      };
      st.hosts.set(e.scope, hc);
      st.hostCases.push(hc);
      for (const t of held) st.heldBy.set(t, hc);
      return f;
    });
  },
  HOST_HEALED: hostHeard,
  HOST_UP: hostHeard,

  AGENT_QUARANTINED: (st, step) => {
    const { e } = step;
    const key = `actor:${e.data.actorId}`;
    const f = st.openOrRepeat(key, step, () =>
      st.newFault(step, key, matrixRow("byzantine-agents"), 0, "on receipt: every response is checked as it arrives", {
        actorId: e.data.actorId,
        taskId: e.data.taskId,
        replacement: e.data.replacement,
      }),
    );
    if (f.recoveredAt !== null || f.repeats > 0) return;
    st.quarantined.set(e.data.actorId, f);
    st.quarantinedTask.set(e.data.taskId, f);
    // The retry can be stored before the quarantine's event.
    const r = st.reassignedActors.get(e.data.actorId);
    if (r?.taskId === e.data.taskId) st.recover(f, step, `task ${r.taskId} retried elsewhere`);
  },
};
