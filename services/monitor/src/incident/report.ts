/**
 * Incident reports (`cadre incident report`): what went wrong between two times, how soon it was
 * seen, how soon it was over, and what operators did, from the events stream alone. Pure: the
 * command (commands/incident.ts) reads the stream and hands the events here with their stream
 * time (the JetStream timestamp: one clock, the server's, for every service's events).
 *
 * This module: the report's types and {@link buildReport}, which runs each event of the window
 * onto the timeline and the commands (classes.ts), through the pairing of faults (faults.ts) and
 * the counting (counts.ts), then gives the verdicts (targets.ts) and the counts.
 */

import type { TypedEvent } from "@cadre/protocol";
import { classOf, type EventClass, isCommand } from "./classes.js";
import { CountState, closeCounts, count } from "./counts.js";
import { describe } from "./describe.js";
import { closeFaults, FaultState, pair } from "./faults.js";
import { IMMEDIATE_MS, SEED_000, type Target } from "./targets.js";

/** An event as read from the stream, with its place and time there. */
export interface StampedEvent {
  /** The stream sequence: the order of the report. */
  seq: number;
  /** Stream time (JetStream's timestamp), epoch ms. */
  at: number;
  /** The envelope's sender (who emitted it), when known. */
  sender?: string;
  event: TypedEvent;
}

export type Verdict = "met" | "missed" | "open" | "unmeasured" | "no target";

export interface TimelineEntry {
  seq: number;
  at: number;
  class: Exclude<EventClass, "routine">;
  type: string;
  scope: string;
  text: string;
  /** The fault this event opened or repeated. */
  fault?: string;
  /** The faults this event ended. */
  recovers?: string[];
}

export interface Fault {
  /** `F1`, `F2`... in the order detected. */
  id: string;
  type: string;
  /** What it is about: `host:host-1`, `breaker:supervisor-1:state_update`, `metric:event_queue_depth`. */
  key: string;
  scope: string;
  text: string;
  target: (Target & { row: string }) | null;
  /** Onset, when an event says (detectedAt - detectMs). */
  startedAt: number | null;
  detectedAt: number;
  detectMs: number | null;
  detectBasis: string;
  detect: Verdict;
  recoveredAt: number | null;
  recoverMs: number | null;
  recoveredBy: { seq: number; type: string; how: string } | null;
  recover: Verdict;
  /** open if not recovered by --until; missed if either time missed; met if one was met; else no target. */
  verdict: "met" | "missed" | "open" | "no target";
  /** Announced again while open. */
  repeats: number;
  /** Per kind: a host's held and moved tasks, a state key... */
  detail: Record<string, unknown>;
}

/**
 * A host fault's work done again (its `detail.redone`; the rule: faults.ts): the last of the
 * tasks it held applied on another host, when every one of them has been applied.
 */
export interface Redone {
  /** Stream time of the last, or null while one is pending (or none was done elsewhere). */
  at: number | null;
  afterDetectionMs: number | null;
  /** From the onset (the host's last heartbeat). */
  afterOnsetMs: number | null;
  /** The held tasks applied on another host. */
  tasks: string[];
  /** The held tasks whose own result from the host was applied. */
  finishedThere: string[];
  /** The held tasks not applied by --until. */
  pending: string[];
}

export interface Counts {
  lost: number;
  /** Workflows that lost tasks, by their own counts. */
  lostBy: { workflowId: string; lost: number }[];
  appliedTwice: number;
  appliedTwiceTasks: string[];
  reassigned: number;
  reassignedTasks: number;
  reassignedBy: Record<string, number>;
  conflicts: number;
  duplicates: number;
  rejected: number;
  attemptsFailed: number;
  tasksCompleted: number;
  tasksFailed: number;
  workflows: { submitted: number; completed: number; failed: number; cancelled: number; unfinished: string[] };
  /** The ended workflows' own counts (WORKFLOW_COMPLETED, _FAILED, _CANCELLED data). */
  workflowCounts: {
    total: number;
    completed: number;
    failed: number;
    cancelled: number;
    duplicates: number;
    conflicts: number;
  };
}

export interface CommandEntry {
  seq: number;
  at: number;
  type: string;
  scope: string;
  text: string;
  sender?: string;
}

export interface IncidentReport {
  window: { since: string; until: string; sinceMs: number; untilMs: number };
  read: {
    events: number;
    skipped: number;
    cap: number;
    capped: boolean;
    firstAt: number | null;
    lastAt: number | null;
  };
  faults: Fault[];
  summary: { faults: number; met: number; missed: number; open: number; noTarget: number };
  counts: Counts;
  commands: CommandEntry[];
  timeline: TimelineEntry[];
  targets: { matrix: string; breakers: string; immediateMs: number };
}

export interface ReportOptions {
  sinceMs: number;
  untilMs: number;
  /** Messages read that did not decode or parse. @default 0 */
  skipped?: number;
  /** The most events read. @default 200000 */
  cap?: number;
  /** Whether the cap stopped the read before --until. @default false */
  capped?: boolean;
}

/** Default cap of events read. */
export const MAX_EVENTS = 200_000;

/** Puts an event on the timeline (unless routine) and on the commands (if one): its timeline entry. */
function enter(s: StampedEvent, timeline: TimelineEntry[], commands: CommandEntry[]): TimelineEntry | undefined {
  const e = s.event;
  const cls = classOf(e.type);
  let entry: TimelineEntry | undefined;
  if (cls !== "routine") {
    entry = { seq: s.seq, at: s.at, class: cls, type: e.type, scope: e.scope, text: describe(e) };
    timeline.push(entry);
  }
  if (isCommand(e.type)) {
    commands.push({
      seq: s.seq,
      at: s.at,
      type: e.type,
      scope: e.scope,
      text: describe(e),
      ...(s.sender ? { sender: s.sender } : {}),
    });
  }
  return entry;
}

/** Builds the report from events (any order: sorted by stream sequence) between the two times. */
export function buildReport(input: readonly StampedEvent[], opts: ReportOptions): IncidentReport {
  const events = input
    .filter((s) => s.at >= opts.sinceMs && s.at <= opts.untilMs)
    .slice()
    .sort((a, b) => a.seq - b.seq);
  const timeline: TimelineEntry[] = [];
  const commands: CommandEntry[] = [];
  const pairing = new FaultState();
  const counting = new CountState();
  for (const s of events) {
    const entry = enter(s, timeline, commands);
    pair(pairing, { s, e: s.event, entry });
    count(counting, s.event);
  }

  closeFaults(pairing);
  const { faults } = pairing;
  const counts = closeCounts(counting);
  const summary = { faults: faults.length, met: 0, missed: 0, open: 0, noTarget: 0 };
  for (const f of faults) {
    if (f.verdict === "no target") summary.noTarget++;
    else summary[f.verdict]++;
  }
  return {
    window: {
      since: new Date(opts.sinceMs).toISOString(),
      until: new Date(opts.untilMs).toISOString(),
      sinceMs: opts.sinceMs,
      untilMs: opts.untilMs,
    },
    read: {
      events: events.length,
      skipped: opts.skipped ?? 0,
      cap: opts.cap ?? MAX_EVENTS,
      capped: opts.capped ?? false,
      firstAt: events[0]?.at ?? null,
      lastAt: events.at(-1)?.at ?? null,
    },
    faults,
    summary,
    counts,
    commands,
    timeline,
    targets: { matrix: `${SEED_000}:251-262`, breakers: `${SEED_000}:214-218`, immediateMs: IMMEDIATE_MS },
  };
}
