/**
 * The figures of a chaos scenario (scenarios.test.ts, whose header defines each): the team of
 * 200 tasks every scenario runs, and the readings of a finished workflow, its task records and
 * events that the figures are taken from.
 */

import type { TeamInput, WorkflowRecord } from "@cadre/protocol";
import { expect } from "vitest";
import { type TimedEvent, until } from "../helpers/client.js";
import type { ChaosCluster } from "./fixture.js";

export const TASKS = 200;

/** A director that hands 200 tasks to a pool of workers on every host. */
export const team: TeamInput = {
  name: "chaos-200",
  root: "lead",
  kinds: {
    lead: {
      role: "director",
      replicas: 2,
      behaviour: {
        type: "script",
        delegate: [{ kind: "worker", count: TASKS, input: { n: "{{index}}" } }],
        output: { summary: "200 tasks done" },
      },
    },
    worker: {
      role: "agent",
      replicas: 12,
      behaviour: { type: "script", sleepMs: [100, 300], output: { n: "{{input.n}}" } },
    },
  },
};

export interface Figures {
  scenario: string;
  tasks: number;
  completed: number;
  lost: number;
  appliedTwice: number;
  duplicates: number;
  conflicts: number;
  detectMs: number | null;
  recoverMs: number | null;
  reconcileMs?: number;
  workflowMs: number;
  /** Tasks completed in each second from the workflow's start (JSON only, not in the table). */
  completionsPerSecond?: number[];
  /** Partition: from the heal to the host's first heartbeat heard again (JSON only). */
  healedHeartbeatMs?: number;
  /** Partition: the reconciliation report's counts (JSON only). */
  reconciliation?: Record<string, unknown>;
  /** Circuits that opened during the run, as `breaker@source` (JSON only). */
  circuitsOpened: string[];
}

/** Waits for the workflow; if it does not finish, fails with every member's last log lines. */
export async function finish(c: ChaosCluster, workflowId: string, timeoutMs: number): Promise<WorkflowRecord> {
  try {
    return await c.client.wait(workflowId, timeoutMs);
  } catch (err) {
    throw new Error(`${(err as Error).message}\n${await c.tail(150)}`, { cause: err });
  }
}

/** Submission to completion, on the supervisor's clock. */
export const elapsed = (w: WorkflowRecord): number => (w.finishedAt ?? Number.NaN) - w.submittedAt;

/** Completions per second since `start`: shows where a fault slowed the workflow and for how long. */
export function perSecond(events: TimedEvent[], workflowId: string, start: number): number[] {
  const out: number[] = [];
  for (const { at, event } of events) {
    if (event.type !== "TASK_COMPLETED" || event.scope !== workflowId) continue;
    const s = Math.max(0, Math.floor((at - start) / 1000));
    while (out.length <= s) out.push(0);
    out[s] = (out[s] ?? 0) + 1;
  }
  return out;
}

/**
 * The promise-level figures of a finished workflow, from its task records and the persisted
 * events (not the live ones: a live subscription misses what is published while the test's own
 * connection is moving to another NATS node).
 */
export async function outcome(c: ChaosCluster, workflowId: string) {
  const records = await c.client.taskRecords(workflowId);
  const all = await c.client.events();
  const events = all.filter((e) => e.scope === workflowId);
  const circuitsOpened = all
    .filter((e) => e.type === "CIRCUIT_OPENED")
    .map((e) => `${String(e.data.breaker)}@${String(e.data.source)}`);
  const completedPerTask = new Map<string, number>();
  for (const event of events) {
    if (event.type === "TASK_COMPLETED" && event.scope === workflowId) {
      const id = String(event.data.taskId);
      completedPerTask.set(id, (completedPerTask.get(id) ?? 0) + 1);
    }
  }
  const completed = records.filter((r) => r.status === "completed").length;
  return {
    records,
    events,
    completed,
    lost: TASKS + 1 - completed,
    appliedTwice: [...completedPerTask.values()].filter((n) => n > 1).length,
    duplicates: records.reduce((n, r) => n + r.duplicates.length, 0),
    conflicts: records.reduce((n, r) => n + r.conflicts.length, 0),
    circuitsOpened,
  };
}

/** When the last live event `sender` sent arrived (a killed process's last word); undefined if none. */
export function lastSeen(events: TimedEvent[], sender: string): number | undefined {
  return events.findLast((e) => e.sender === sender)?.at;
}

/** Time of the first event matching, at or after `from`; null if none. */
export function firstAt(events: TimedEvent[], from: number, match: (e: TimedEvent["event"]) => boolean): number | null {
  const hit = events.find((e) => e.at >= from && match(e.event));
  return hit ? hit.at - from : null;
}

/** Starts the team's workflow and waits until `n` of its tasks have completed. */
export async function startAndWaitFor(c: ChaosCluster, events: TimedEvent[], n: number) {
  const started = Date.now();
  const id = await c.client.submit(team);
  await until(
    `${n} tasks completed`,
    () => events.filter((e) => e.event.type === "TASK_COMPLETED" && e.event.scope === id).length >= n,
    60_000,
  );
  return { id, started };
}

/**
 * Tasks the faulty host had started but another host finished: the work the fault disrupted.
 * Read after the fact from the task records and persisted events, because live events lag (a
 * result sent just before the fault is applied, and its event seen, just after it).
 */
export function takenOver(o: Awaited<ReturnType<typeof outcome>>, hostId: string): Set<string> {
  const startedThere = new Set(
    o.events.filter((e) => e.type === "TASK_STARTED" && e.data.hostId === hostId).map((e) => String(e.data.taskId)),
  );
  return new Set(
    o.records.filter((r) => startedThere.has(r.task.taskId) && r.applied?.hostId !== hostId).map((r) => r.task.taskId),
  );
}

/** When the last of `tasks` completed (ms after `from`), or null. */
export function lastCompletion(
  events: TimedEvent[],
  workflowId: string,
  tasks: Set<string>,
  from: number,
): number | null {
  let last: number | null = null;
  for (const { at, event } of events) {
    if (event.type === "TASK_COMPLETED" && event.scope === workflowId && tasks.has(String(event.data.taskId))) {
      last = Math.max(last ?? 0, at - from);
    }
  }
  return last;
}

/** A pause in tasks completed: from its start to its end (ms after the fault), and the task that ended it. */
export interface StallSeen {
  startMs: number;
  endMs: number;
  taskId: string;
}

/**
 * The longest gap between a workflow's tasks completed after `from`. A task's TASK_COMPLETED seen
 * again (a supervisor that took over re-announces a result whose message came back unacked,
 * under the same message id: stored once, but a live subscriber sees both) completes nothing:
 * only each task's first one counts.
 */
export function longestStall(events: TimedEvent[], workflowId: string, from: number): StallSeen | null {
  let prev = from;
  let best: StallSeen | null = null;
  const seen = new Set<string>();
  for (const { at, event } of events) {
    if (event.type !== "TASK_COMPLETED" || event.scope !== workflowId) continue;
    const taskId = String(event.data.taskId);
    if (seen.has(taskId)) continue;
    seen.add(taskId);
    if (at < from) continue;
    if (!best || at - prev > best.endMs - best.startMs) {
      best = { startMs: prev - from, endMs: at - from, taskId };
    }
    prev = at;
  }
  return best;
}

/**
 * Asserts Cadre's promises once late results have stopped arriving (a host that was cut off or
 * stalled sends what it finished when it is back, and each is recorded on the task, then
 * counted on the workflow): completed, nothing lost, nothing applied twice, and the workflow's
 * counts agreeing with its task records. Returns the figures.
 */
export async function expectPromisesKept(c: ChaosCluster, workflowId: string) {
  const { w, o } = await until(
    "the workflow's counts to agree with its task records",
    async () => {
      const w = await c.client.wait(workflowId);
      const o = await outcome(c, workflowId);
      const agree =
        w.tasks.duplicates === o.duplicates && w.tasks.conflicts === o.conflicts && w.tasks.completed === o.completed;
      return agree ? { w, o } : undefined;
    },
    30_000,
  );
  const logs = `${JSON.stringify(w.error ?? null)}\n${await c.tail()}`;
  expect(w.status, logs).toBe("completed");
  expect(o.lost, logs).toBe(0);
  expect(o.appliedTwice, logs).toBe(0);
  expect(w.tasks.completed).toBe(TASKS + 1);
  expect(w.tasks.duplicates).toBe(o.duplicates);
  return o;
}

/** The host that started the most recent task: it surely holds work, so the fault hits some. */
export function busyHost(events: TimedEvent[]): string {
  const lastStart = [...events].reverse().find((e) => e.event.type === "TASK_STARTED");
  return String(lastStart?.event.data.hostId);
}

/**
 * Detection and recovery after a fault on a host at `at`: until the supervisor declared it
 * unreachable, and until the last task it held was completed elsewhere.
 */
export function hostFaultFigures(
  events: TimedEvent[],
  workflowId: string,
  hostId: string,
  at: number,
  held: Set<string>,
): { detectMs: number | null; recoverMs: number | null } {
  return {
    detectMs: firstAt(events, at, (e) => e.type === "HOST_UNREACHABLE" && e.scope === hostId),
    recoverMs: lastCompletion(events, workflowId, held, at),
  };
}

/** The figures every scenario reports about Cadre's promises. */
export function promiseFigures(o: Awaited<ReturnType<typeof outcome>>) {
  return {
    tasks: TASKS + 1,
    completed: o.completed,
    lost: o.lost,
    appliedTwice: o.appliedTwice,
    duplicates: o.duplicates,
    conflicts: o.conflicts,
    circuitsOpened: o.circuitsOpened,
  };
}
