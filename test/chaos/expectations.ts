/**
 * What each kind of chaos scenario expects of its incident report (incident.ts): which faults
 * are the injected one, what else the scenario accounts for, and how the report's times are
 * compared with the suite's figures, each comparison with the clocks and events it rests on.
 */

import { type ChaosCheck, type Fault, redoneOf, type StampedEvent } from "@cadre/monitor/incident";
import type { TimedEvent } from "../helpers/client.js";
import type { StallSeen } from "./figures.js";
import { check, DELIVERY_MS, type Expectation, holds } from "./incident.js";

/**
 * A takeover's detection, the report's from the victim's last stored event, compared with the
 * suite's from the same event as the test received it live: the takeover's live arrival (the
 * kill + recoverMs) - `victimLastSeenAt`. Each side is one stored and one live copy of the same
 * two events, so they differ by the two deliveries. (A supervisor holding no partition of the
 * workflow sends no event for a while: how long before the kill its last one was is measured, not
 * assumed.)
 */
function detectionSinceLastEvent(
  f: Fault | undefined,
  injection: { at: number | null },
  recoverMs: number | null,
  victimLastSeenAt: number | undefined,
): ChaosCheck[] {
  if (injection.at === null) return [];
  if (victimLastSeenAt === undefined)
    return [holds("the victim's last event received by the test", false, "no event of the victim was recorded")];
  return [
    check(
      "detection time: the report's (since the victim's last event, an upper bound) vs the takeover's arrival - the victim's last event's",
      f?.detectMs ?? null,
      recoverMs === null ? null : injection.at + recoverMs - victimLastSeenAt,
      { min: -DELIVERY_MS, max: DELIVERY_MS },
      `the same two events: stored by the server vs received by the test (the victim's last, ${injection.at - victimLastSeenAt} ms before the kill)`,
    ),
  ];
}

/** When a task's first TASK_STARTED on `hostId` was stored, or undefined. */
const startedOn = (events: StampedEvent[], taskId: string, hostId: string): number | undefined =>
  events.find(
    (s) => s.event.type === "TASK_STARTED" && s.event.data.taskId === taskId && s.event.data.hostId === hostId,
  )?.at;

/**
 * A host killed, paused or cut off: one HOST_UNREACHABLE fault of it, its detection compared
 * with detectMs twice (the same event, and the two onsets), its work done again compared with
 * recoverMs when both count the same tasks (else each task that only one counts is explained).
 * `heal`: the partition's heal, to compare its reconciliation report with reconcileMs.
 */
export function hostFault(
  victim: string,
  held: ReadonlySet<string>,
  heartbeatMs: number,
  heal?: { at: number },
): Expectation {
  return {
    faults: (r) => r.faults.filter((f) => f.type === "HOST_UNREACHABLE" && f.scope === victim),
    count: 1,
    visibility: `The supervisor declared ${victim} unreachable (HOST_UNREACHABLE) when its heartbeats stopped.`,
    recoverDefinition: `from the injection until the last task ${victim} had started and another host finished was completed (tasks read from the task records afterwards, times from the live events).`,
    checks: ({ faults, events, injection, figures }) => {
      const f = faults[0];
      if (!f || injection.at === null) return [];
      const call = (injection.by ?? injection.at) - injection.at;
      const out = [
        check(
          "detected: HOST_UNREACHABLE's stream time - injection, vs detectMs",
          f.detectedAt - injection.at,
          figures.detectMs,
          { min: -DELIVERY_MS, max: DELIVERY_MS },
          "the same event and the same onset (the test's clock before the engine call): stored by the server vs received by the test",
        ),
        check(
          "detection time: the report's (silence since the last heartbeat) vs detectMs (since the injection)",
          f.detectMs,
          figures.detectMs,
          { min: -(call + DELIVERY_MS), max: heartbeatMs + DELIVERY_MS },
          `same end, different onsets: the last heartbeat the supervisor heard came at most one interval (${heartbeatMs} ms) before the fault took effect, which is within the engine call (${call} ms) after the suite's onset; plus delivery`,
        ),
      ];
      const r = redoneOf(f);
      const mineOnly = (r?.tasks ?? []).filter((t) => !held.has(t));
      const suiteOnly = [...held].filter((t) => !r?.tasks.includes(t));
      if (r && mineOnly.length === 0 && suiteOnly.length === 0) {
        out.push(
          check(
            "work done again: the last held task's TASK_COMPLETED stream time - injection, vs recoverMs",
            r.at === null ? null : r.at - injection.at,
            figures.recoverMs,
            { min: -DELIVERY_MS, max: DELIVERY_MS },
            `the same ${held.size} tasks, the same last event and onset: stored vs received`,
          ),
        );
      } else {
        // A task the host started just before the fault may be known to the supervisor only
        // after it (its TASK_STARTED stored late, sent once the host was back): the report
        // cannot count it as held, the suite (reading the task records afterwards) does.
        const why = suiteOnly.map((t) => {
          const at = startedOn(events, t, victim);
          return at !== undefined && at > f.detectedAt
            ? `${t}: started on ${victim}, stored ${at - f.detectedAt} ms after the detection`
            : undefined;
        });
        const whyMine = mineOnly.map((t) =>
          startedOn(events, t, victim) === undefined
            ? `${t}: reassigned from ${victim}, no TASK_STARTED of it there`
            : undefined,
        );
        const all = [...why, ...whyMine];
        out.push(
          holds(
            "work done again: the report and the suite count different tasks, each explained",
            all.every((w) => w !== undefined),
            `only the suite: ${suiteOnly.join(", ") || "none"}; only the report: ${mineOnly.join(", ") || "none"}; ${all.map((w) => w ?? "unexplained").join("; ")}`,
          ),
        );
      }
      out.push(
        holds(
          "the work moved (the report's recovery) before it was done again",
          f.recoveredAt !== null && (r?.at === null || r?.at === undefined || f.recoveredAt <= r.at),
          `recovered ${f.recoveredAt === null ? "never" : new Date(f.recoveredAt).toISOString()} by ${f.recoveredBy?.type ?? "-"}; done again ${r?.at ? new Date(r.at).toISOString() : "-"}`,
        ),
      );
      if (heal) {
        const rec = events.find((s) => s.event.type === "RECONCILIATION_REPORT" && s.event.scope === victim);
        out.push(
          check(
            "reconciled: RECONCILIATION_REPORT's stream time - heal, vs reconcileMs",
            rec ? rec.at - heal.at : null,
            figures.reconcileMs ?? null,
            { min: -DELIVERY_MS, max: DELIVERY_MS },
            "the same event and onset (the test's clock before the heal): stored vs received",
          ),
        );
      }
      return out;
    },
  };
}

/**
 * The lease holder of two supervisors killed: the other's SUPERVISOR_ACTIVE taking over
 * from it is the fault (its detection measured from the victim's last event), compared with
 * recoverMs, the suite's time from the kill to that same event.
 */
export function supervisorTakeover(victim: string, victimLastSeenAt: number | undefined): Expectation {
  return {
    faults: (r) =>
      r.faults.filter((f) => f.type === "SUPERVISOR_ACTIVE" && f.detail.previous === victim && f.scope !== victim),
    count: 1,
    unsent: SUPERVISOR_UNSENT,
    explains: (f) =>
      f.type === "PARTITION_ACQUIRED" && f.detail.previous === victim
        ? `partition ${String(f.detail.partition)} of the killed supervisor, taken over with its lease`
        : undefined,
    visibility: `The other supervisor's SUPERVISOR_ACTIVE naming ${victim} as the previous holder; the loss itself is no event.`,
    recoverDefinition:
      "from the kill until the other supervisor's SUPERVISOR_ACTIVE (live): detection and takeover are one step (the lease lapsing), so it has no detectMs.",
    checks: ({ faults, injection, figures }) => {
      const f = faults[0];
      if (!f || injection.at === null) return [];
      return [
        check(
          "taken over: SUPERVISOR_ACTIVE's stream time - injection, vs recoverMs",
          f.detectedAt - injection.at,
          figures.recoverMs,
          { min: -DELIVERY_MS, max: DELIVERY_MS },
          "the same event and onset: stored by the server vs received by the test",
        ),
        ...detectionSinceLastEvent(f, injection, figures.recoverMs, victimLastSeenAt),
      ];
    },
  };
}

/**
 * One of two supervisors sharing the partitions killed, the one applying the workflow's results
 * (`partitions`: the ones it held): the other's PARTITION_ACQUIRED naming it as the previous
 * holder, one per partition, is the fault, its detection measured from the victim's last event;
 * the one of the workflow's partition compared with recoverMs, the suite's time from the kill to
 * that same event. Holding the lease too, its SUPERVISOR_ACTIVE is explained.
 */
export function partitionTakeover(
  victim: string,
  partitions: number[],
  workflowPartition: number,
  victimLastSeenAt: number | undefined,
): Expectation {
  return {
    faults: (r) => r.faults.filter((f) => f.type === "PARTITION_ACQUIRED" && f.detail.previous === victim),
    count: partitions.length,
    unsent: SUPERVISOR_UNSENT,
    explains: (f) =>
      f.type === "SUPERVISOR_ACTIVE" && f.detail.previous === victim
        ? "the killed supervisor held the lease too: the survivor took it over with the partitions"
        : undefined,
    visibility: `The surviving supervisor's PARTITION_ACQUIRED of each partition ${victim} held (${partitions.join(", ")}), naming it as the previous holder; the loss itself is no event.`,
    recoverDefinition: `from the kill until the survivor's PARTITION_ACQUIRED of the workflow's partition ${workflowPartition} (live): detection and takeover are one step (the member record lapsing), so it has no detectMs.`,
    checks: ({ faults, injection, figures }) => {
      const f = faults.find((x) => x.detail.partition === workflowPartition);
      if (injection.at === null) return [];
      return [
        holds(
          "every partition the victim held taken over, each once",
          faults
            .map((x) => Number(x.detail.partition))
            .sort((a, b) => a - b)
            .join() === partitions.join(),
          `taken: ${faults.map((x) => x.detail.partition).join(", ") || "none"}; held: ${partitions.join(", ")}`,
        ),
        check(
          "taken over: the workflow partition's PARTITION_ACQUIRED stream time - injection, vs recoverMs",
          f ? f.detectedAt - injection.at : null,
          figures.recoverMs,
          { min: -DELIVERY_MS, max: DELIVERY_MS },
          "the same event and onset: stored by the server vs received by the test",
        ),
        ...detectionSinceLastEvent(f, injection, figures.recoverMs, victimLastSeenAt),
      ];
    },
  };
}

/**
 * The only supervisor killed and started again: its SUPERVISOR_ACTIVE naming itself as the
 * previous holder is the fault (a clean stop gives the lease up). Neither the report nor the
 * suite can time the detection (the operator's restart is it); the suite's recoverMs, from the
 * restart to the first result applied, is compared with the events after the restart.
 */
export function supervisorRestart(victim: string, restart: { at: number }): Expectation {
  return {
    faults: (r) =>
      r.faults.filter((f) => f.type === "SUPERVISOR_ACTIVE" && f.detail.previous === victim && f.scope === victim),
    count: 1,
    unsent: SUPERVISOR_UNSENT,
    visibility: `${victim}'s SUPERVISOR_ACTIVE after the restart, naming itself as the previous holder: it died holding the lease. Its death is no event, and without a standby nothing detects it: the operator's restart does.`,
    recoverDefinition: "from the restart until the first result applied after it (live).",
    checks: ({ faults, events, figures }) => {
      const f = faults[0];
      if (!f) return [];
      const first = events.find((s) => s.at >= restart.at && s.event.type === "TASK_COMPLETED");
      return [
        check(
          "detection: unmeasured in both",
          f.detectMs,
          figures.detectMs,
          null,
          "no event says when the supervisor died; the suite has no detection either",
        ),
        check(
          "first result applied after the restart: its stream time - restart, vs recoverMs",
          first ? first.at - restart.at : null,
          figures.recoverMs,
          { min: -DELIVERY_MS, max: DELIVERY_MS },
          "the same event and onset (the test's clock before the engine call that restarted it): stored vs received",
        ),
        check(
          "active again: SUPERVISOR_ACTIVE's stream time - restart, vs recoverMs",
          f.detectedAt - restart.at,
          figures.recoverMs,
          { min: -RESTART_STEPS_MS, max: RESTART_STEPS_MS },
          `two steps of one activation (supervisor.ts activate): the results stream is read from results.start(), just before SUPERVISOR_ACTIVE is emitted, and the results that waited while it was down are applied at once; ${RESTART_STEPS_MS} ms either way`,
        ),
      ];
    },
  };
}

/**
 * How many results a killed supervisor may have applied without their TASK_COMPLETED stored: it
 * writes the task's record, then emits the event, which waits in its publish queue for a few ms
 * (published in order, each acknowledged); at about 50 results a second that is a handful at
 * most (1 in the run of 2026-12-02). The kill loses them with the process; the records are the
 * truth, and the new supervisor sees those results as already applied.
 */
export const SUPERVISOR_UNSENT = 5;

/**
 * How far apart a restarted supervisor's SUPERVISOR_ACTIVE and its first result applied may be:
 * both come at the end of its activation, a few KV writes apart (98 ms in the run of
 * 2026-12-02); allowed either way.
 */
export const RESTART_STEPS_MS = 500;

/**
 * How far apart the pause after a NATS node's loss may end in the stream and in the live events.
 * The test's own connection may be moving off the killed node: bounded by a reconnect, well
 * under a second here (16 ms apart in the run of 2026-12-02), against recoveries of 2 to 27 s.
 * (A publish retried during the elections: {@link JS_PUBLISH_TIMEOUT_MS}.)
 */
export const NODE_STALL_MS = 1000;

/**
 * nats.js's JetStream publish timeout (the event bus keeps the default): an event whose first
 * publish reached the subscribers but not a stream leader is stored by the retry after it, so its
 * stored copy can trail the live one by this much (5,021 ms in a CI run of 2026-12-03).
 */
export const JS_PUBLISH_TIMEOUT_MS = 5000;

/** What a NATS node's loss can cause, as the report shows it (why, by fault type). */
const NODE_LOSS: Readonly<Record<string, string>> = {
  HOST_UNREACHABLE: "a host whose heartbeats stopped while its connection moved off the killed node",
  CIRCUIT_OPENED: "writes that failed while streams elected new leaders",
  SUPERVISOR_STANDBY: "a lease renewal that failed while the registry bucket elected a new leader",
  SUPERVISOR_ACTIVE: "the lease taken back once the registry bucket had a leader again",
};

/**
 * A NATS node killed: no Cadre event names a node, so no fault of the report is it. What is
 * visible: the pause in results applied. The suite times it live (recoverMs: the end of the
 * longest gap between TASK_COMPLETED received, `pause`); the report's stream must show the same
 * pause: the event that ended it stored at the same time, and nothing stored inside it. (Two
 * longest gaps found apart can pick different pauses of about the same length: a CI run found
 * 5.5 s live and 8.3 s stored, both right.) `live`: the events the observer received, whose
 * arrivals tell a retried publish's stored copy from a completion inside the pause.
 */
export function natsNode(
  victim: string,
  pause: StallSeen | null,
  live: readonly TimedEvent[],
  toleranceMs = NODE_STALL_MS,
): Expectation {
  // When each task's TASK_COMPLETED first arrived live at the observer.
  const liveAt = new Map<string, number>();
  for (const { at, event } of live) {
    const taskId = String(event.data.taskId);
    if (event.type === "TASK_COMPLETED" && !liveAt.has(taskId)) liveAt.set(taskId, at);
  }
  return {
    faults: () => [],
    count: 0,
    visibility: `No Cadre event names a NATS node: the loss of ${victim} shows as a pause in results applied while nats-server elected new leaders for the streams it led and clients moved to the other nodes.`,
    recoverDefinition:
      "from the kill until the end of the longest pause in tasks completed after it (live, seen from a NATS node that stays up).",
    explains: (f: Fault) => (NODE_LOSS[f.type] ? `a consequence of the node's loss: ${NODE_LOSS[f.type]}` : undefined),
    checks: ({ events, injection }) => {
      const from = injection.at;
      const completed = events.filter((e) => e.event.type === "TASK_COMPLETED");
      const ending =
        pause && events.find((e) => e.event.type === "TASK_COMPLETED" && e.event.data.taskId === pause.taskId);
      const within =
        from === null || pause === null
          ? []
          : completed.filter(
              (e) => e.at - from > pause.startMs + toleranceMs && e.at - from < pause.endMs - toleranceMs,
            );
      // A copy stored inside the pause of an event that arrived live before it began: its first
      // publish reached the observer, not a stream leader, and the retry stored it (a CI run of
      // 2026-12-04 had one in a 14.7 s pause).
      const retried = within.filter((e) => {
        const at = liveAt.get(String((e.event.data as { taskId?: unknown }).taskId));
        return (
          at !== undefined &&
          from !== null &&
          pause !== null &&
          at - from <= pause.startMs + toleranceMs &&
          e.at - at <= JS_PUBLISH_TIMEOUT_MS + toleranceMs
        );
      });
      const inside = from === null || pause === null ? null : within.length - retried.length;
      return [
        check(
          "the pause's end: the stream time of the TASK_COMPLETED that ended it live - injection, vs recoverMs",
          from === null || !ending ? null : ending.at - from,
          pause?.endMs ?? null,
          { min: -toleranceMs, max: JS_PUBLISH_TIMEOUT_MS + toleranceMs },
          `the same event stored and received on a surviving node: ${toleranceMs} ms either way, and stored up to one publish timeout (${JS_PUBLISH_TIMEOUT_MS} ms) later when its first publish found no stream leader`,
        ),
        {
          ...check(
            "the pause in the stream too: TASK_COMPLETED stored inside the live pause",
            inside,
            0,
            { min: 0, max: 0 },
            `none: the pause is the cluster's, not the observer's (${toleranceMs} ms off each end); not counted: ${retried.length} stored by a publish retried within ${JS_PUBLISH_TIMEOUT_MS} ms of arriving live before the pause`,
          ),
          unit: "events",
        },
      ];
    },
  };
}

/** The baseline: no fault injected, none in the report (but circuits the figures list). */
export const noFault: Expectation = {
  faults: () => [],
  count: 0,
  visibility: "No fault injected, and none reported.",
  recoverDefinition: "none: no fault.",
  checks: ({ figures }) => [
    check("detection and recovery: none in either", null, figures.detectMs, null, "no fault"),
    check("recovery: none in either", null, figures.recoverMs, null, "no fault"),
  ],
};
