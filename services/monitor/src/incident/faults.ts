/**
 * Pairing each fault with what ended it: the state every event of the window is run through (the
 * open faults, who holds which task, which hosts are lost...), the steps the pairings share (open
 * or repeat a fault, recover it), and the handlers by event type (faults-work.ts for the work a
 * lost host or agent held, faults-signals.ts for the faults their own events end).
 *
 * ## Pairing: each fault and what ended it
 *
 * - HOST_UNREACHABLE h: the tasks h held when it was declared unreachable (its TASK_STARTEDs not
 *   yet finished, stopped or moved) plus any TASK_REASSIGNED from h after it; recovered when the
 *   last of them moved (TASK_REASSIGNED fromHostId h, started on another host, or finished),
 *   later moves extending it until h is heard again; or, first, HOST_HEALED / HOST_UP of h.
 *   Detection: the silence since h's last heartbeat, as the failure detector measured it.
 *   Beside the recovery (the work moved), the fault's `detail.redone` says when the work was
 *   done again: the last of the held tasks applied (TASK_COMPLETED or TASK_FAILED) on another
 *   host, after the detection and after the onset (h's last heartbeat); the tasks whose own
 *   result from h was applied are not counted, and while any held task is unapplied at --until
 *   its time is null. It is not judged: seed 000 gives a partition's recovery as "On heal".
 * - AGENT_QUARANTINED a: the task retried elsewhere (TASK_REASSIGNED naming a) or ended.
 * - STATE_CORRUPTED: restored in the same event (restoredAs), else the STATE_ROLLED_BACK of the
 *   workflow whose key it is. DATA_INTEGRITY_ALERT w (the runbook's) → a complete
 *   DATA_RECOVERY_COMPLETED of w, or STATE_ROLLED_BACK of w.
 * - CIRCUIT_OPENED b (per process) → CIRCUIT_CLOSED b; THRESHOLD_CROSSED m → THRESHOLD_CLEARED m;
 *   RESOURCE_EXHAUSTION → the next EMERGENCY_RESPONSE_COMPLETED; SUPERVISOR_STANDBY → the next
 *   SUPERVISOR_ACTIVE; a SUPERVISOR_ACTIVE taking over from another supervisor is a fault and its
 *   recovery at once (the old one's loss is not an event); its detection is measured from the
 *   last event the old one sent (it was alive then, so an upper bound). A SUPERVISOR_ACTIVE
 *   whose previous holder is itself is one too: a supervisor stopping cleanly gives its lease
 *   up, so it died holding it and was started again; unmeasured (its new incarnation's events,
 *   under the same sender, can come before this one). A PARTITION_ACQUIRED naming a previous
 *   holder (one that stopped renewing; a clean stop frees its partitions first) is a fault and its
 *   recovery at once, one per partition, measured the same way.
 * - DEADLOCK_RESOLVED and DELEGATION_REFUSED are detected and handled in one event.
 * The same fault announced again while open (a breaker re-opening after a failed trial) counts
 * as a repeat of the open row.
 *
 * Measured times: detection from the fault's onset to the event that announced it, only where an
 * event says when the fault began (a host's silence, a deadlock victim's wait; refusals and schema
 * checks happen as the bad request or response arrives, so 0); otherwise "unmeasured". Recovery
 * from the detection to the event that ended it. Each is judged against RECOVERY_MATRIX (targets.ts).
 */

import type { EventType, TypedEvent } from "@cadre/protocol";
import { describe } from "./describe.js";
import { SIGNAL_PAIRINGS } from "./faults-signals.js";
import { WORK_PAIRINGS } from "./faults-work.js";
import type { Fault, Redone, StampedEvent, TimelineEntry } from "./report.js";
import { judge, type Target } from "./targets.js";

/** A host declared unreachable: its fault, the tasks it held, and when each of them moved. */
export interface HostCase {
  fault: Fault;
  hostId: string;
  held: Set<string>;
  moved: Map<string, number>;
  /** Recovered by HOST_HEALED/HOST_UP: later moves do not extend it. */
  healed: boolean;
  /** Held tasks applied (completed or failed) on another host, and when: the work done again. */
  redone: Map<string, number>;
  /** Held tasks whose own result from this host was applied (its result got through). */
  finishedThere: Set<string>;
}

/** The event being paired: its place in the stream, and its timeline entry (none if routine). */
export interface Step<T extends EventType = EventType> {
  s: StampedEvent;
  e: TypedEvent<T>;
  entry: TimelineEntry | undefined;
}

/** What an event of type `T` does to the faults. */
export type Pairing<T extends EventType> = (st: FaultState, step: Step<T>) => void;

/** Handlers by event type; a type without one opens, repeats and ends nothing. */
export type Pairings = { readonly [T in EventType]?: Pairing<T> };

/** What the pairing keeps from one event to the next. */
export class FaultState {
  /** Every fault, in the order detected. */
  readonly faults: Fault[] = [];
  /** The open faults, by key. */
  readonly open = new Map<string, Fault>();
  /** The host each started task is on, until it finished, stopped or moved. */
  readonly holders = new Map<string, string>();
  /** The host fault each host's TASK_REASSIGNEDs and moves count towards (until it is heard again). */
  readonly hosts = new Map<string, HostCase>();
  /** Every host case, in the order opened. */
  readonly hostCases: HostCase[] = [];
  /** The host case each held task counts towards, until it moves. */
  readonly heldBy = new Map<string, HostCase>();
  /** When each host was suspected, until it is heard from. */
  readonly suspected = new Map<string, number>();
  /** The quarantine faults, by actor and by task. */
  readonly quarantined = new Map<string, Fault>();
  readonly quarantinedTask = new Map<string, Fault>();
  /** The retries naming an actor, by actor (a retry can be stored before the quarantine's event). */
  readonly reassignedActors = new Map<string, { seq: number; taskId: string }>();
  /** When each sender's latest event so far was stored (before the event being paired). */
  readonly lastSent = new Map<string, number>();

  /** A new row of the faults table, announced by this step's event. */
  newFault(
    { s }: Step,
    key: string,
    target: (Target & { row: string }) | null,
    detectMs: number | null,
    detectBasis: string,
    detail: Record<string, unknown> = {},
  ): Fault {
    const f: Fault = {
      id: `F${this.faults.length + 1}`,
      type: s.event.type,
      key,
      scope: s.event.scope,
      text: describe(s.event),
      target,
      startedAt: detectMs === null ? null : s.at - detectMs,
      detectedAt: s.at,
      detectMs,
      detectBasis,
      detect: "unmeasured",
      recoveredAt: null,
      recoverMs: null,
      recoveredBy: null,
      recover: "open",
      verdict: "open",
      repeats: 0,
      detail,
    };
    this.faults.push(f);
    return f;
  }

  /** Ends a fault with this step's event (again: a later end extends it). */
  recover(f: Fault, { s, entry }: Step, how: string): void {
    f.recoveredAt = s.at;
    f.recoverMs = s.at - f.detectedAt;
    f.recoveredBy = { seq: s.seq, type: s.event.type, how };
    this.open.delete(f.key);
    if (entry && !(entry.recovers ?? []).includes(f.id)) entry.recovers = [...(entry.recovers ?? []), f.id];
  }

  /** Opens a fault under `key`, or counts a repeat of the open one. */
  openOrRepeat(key: string, { entry }: Step, make: () => Fault): Fault {
    const existing = this.open.get(key);
    if (existing) {
      existing.repeats++;
      if (entry) entry.fault = existing.id;
      return existing;
    }
    const f = make();
    this.open.set(key, f);
    if (entry) entry.fault = f.id;
    return f;
  }

  /** A fault detected and handled in one event: never open, recovered by the event announcing it. */
  handledAtOnce(f: Fault, step: Step, how: string): void {
    if (step.entry) step.entry.fault = f.id;
    this.recover(f, step, how);
  }
}

const PAIRINGS: Pairings = { ...WORK_PAIRINGS, ...SIGNAL_PAIRINGS };

/** Runs one event through the handler of its type. */
export function pair(st: FaultState, step: Step): void {
  (PAIRINGS[step.e.type] as Pairing<EventType> | undefined)?.(st, step);
  if (step.s.sender !== undefined) st.lastSent.set(step.s.sender, step.s.at);
}

/** A lost host's work done again (`detail.redone`; the rule: this module's header). */
function redone(hc: HostCase): Redone {
  const f = hc.fault;
  const pending = [...hc.held].filter((t) => !hc.redone.has(t) && !hc.finishedThere.has(t)).sort();
  const at = pending.length === 0 && hc.redone.size > 0 ? Math.max(...hc.redone.values()) : null;
  return {
    at,
    afterDetectionMs: at === null ? null : at - f.detectedAt,
    afterOnsetMs: at === null || f.startedAt === null ? null : at - f.startedAt,
    tasks: [...hc.redone.keys()].sort(),
    finishedThere: [...hc.finishedThere].sort(),
    pending,
  };
}

/** After the last event: the hosts' moved tasks, and every fault's verdicts. */
export function closeFaults(st: FaultState): void {
  for (const hc of st.hostCases) {
    hc.fault.detail.moved = [...hc.moved.keys()].sort();
    hc.fault.detail.redone = redone(hc);
    if (hc.held.size === 0 && hc.fault.recoveredAt === null) {
      hc.fault.detail.note = "held no task known from the events read: open until the host is heard from again";
    }
  }
  for (const f of st.faults) judge(f);
}
