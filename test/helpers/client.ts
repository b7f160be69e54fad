/**
 * What a test does with a running Cadre, whatever runs it (processes or containers): submit a
 * workflow, wait for it, read its task records and the persisted events, and record live events
 * with the time they arrived.
 */

import { submitWorkflow, waitForWorkflow } from "@cadre/cli";
import {
  BUCKETS,
  type CadreEvent,
  decodeAs,
  encode,
  parseTeam,
  subjects,
  type TaskRecord,
  TaskRecordSchema,
  type TeamInput,
  type WorkflowRecord,
} from "@cadre/protocol";
import { isTransient, listKeys, type NatsConnection, readEvents, retry } from "@cadre/runtime";
import { Kvm } from "@nats-io/kv";

/** Reads and drives one Cadre through its NATS connection. */
export interface CadreClient {
  readonly nc: NatsConnection;
  /** Submits the team's workflow (at `priority`, default 0) and returns its id. */
  submit(team: TeamInput, input?: Record<string, unknown>, priority?: number): Promise<string>;
  /** Waits for a workflow to finish. */
  wait(workflowId: string, timeoutMs?: number): Promise<WorkflowRecord>;
  /** Every task record of a workflow, sorted by task id. */
  taskRecords(workflowId: string): Promise<TaskRecord[]>;
  /** Every event persisted so far. */
  events(): Promise<CadreEvent[]>;
}

export function cadreClient(nc: NatsConnection): CadreClient {
  const kvm = new Kvm(nc);
  return {
    nc,
    submit: async (team, input, priority) =>
      (
        await submitWorkflow(nc, {
          team: parseTeam(team),
          ...(input ? { input } : {}),
          ...(priority !== undefined ? { priority } : {}),
          requestTimeoutMs: 10_000,
        })
      ).workflowId,
    wait: (workflowId, timeoutMs = 30_000) => waitForWorkflow(nc, workflowId, { timeoutMs }),
    taskRecords: (workflowId) =>
      settled(async () => {
        const kv = await kvm.open(BUCKETS.tasks);
        const out: TaskRecord[] = [];
        for (const key of await listKeys(kv)) {
          if (!key.startsWith(`${workflowId}-`)) continue;
          const e = await kv.get(key);
          if (e?.operation === "PUT") out.push(TaskRecordSchema.parse(e.json()));
        }
        return out.sort((a, b) => a.task.taskId.localeCompare(b.task.taskId));
      }),
    events: () => settled(() => readEvents(nc)),
  };
}

/** Reads again while the NATS cluster is settling (a node just died, a leader is being elected). */
function settled<T>(read: () => Promise<T>): Promise<T> {
  return retry(read, { isRetryable: isTransient, maxAttempts: 10, baseMs: 100, maxMs: 2000 });
}

/** A live event and when this process received it (ms since the epoch). */
export interface TimedEvent {
  at: number;
  event: CadreEvent;
  /** The process that emitted it (the message's sender). */
  sender: string;
}

/** Records every live event from now on, with its arrival time; `stop()` ends the recording. */
export function recordEvents(nc: NatsConnection): { events: TimedEvent[]; stop(): void } {
  const events: TimedEvent[] = [];
  const sub = nc.subscribe("cadre.v1.evt.>", {
    callback: (_err, m) => {
      try {
        const msg = decodeAs(m.data, "event");
        events.push({ at: Date.now(), event: msg.body, sender: msg.sender });
      } catch {
        // A test records Cadre's events; anything else on the subject is not its business.
      }
    },
  });
  return { events, stop: () => sub.unsubscribe() };
}

/** Resolves when `probe` returns a value other than undefined or false, polling every 20 ms. */
export async function until<T>(
  what: string,
  probe: () => Promise<T | undefined | false> | T | undefined | false,
  timeoutMs = 20_000,
): Promise<T> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const v = await probe();
    if (v !== undefined && v !== false) return v;
    if (Date.now() > end) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/**
 * Subscribes to live events now and resolves with the first that matches; subscribe before
 * causing the event. Rejects after `timeoutMs`.
 */
export function waitForEvent(
  nc: NatsConnection,
  match: (e: CadreEvent) => boolean,
  timeoutMs = 20_000,
): Promise<CadreEvent> {
  return new Promise((resolve, reject) => {
    const sub = nc.subscribe("cadre.v1.evt.>", {
      callback: (_err, m) => {
        const e = decodeAs(m.data, "event").body;
        if (!match(e)) return;
        clearTimeout(timer);
        sub.unsubscribe();
        resolve(e);
      },
    });
    const timer = setTimeout(() => {
      sub.unsubscribe();
      reject(new Error(`no matching event within ${timeoutMs} ms`));
    }, timeoutMs);
  });
}

/**
 * A "ghost" agent-host: registered and beating, so placement sees it alive and empty, but
 * nothing answers its operations. `stop()` ends the heartbeats; `seq()` counts those sent.
 */
export async function startGhostHost(
  nc: NatsConnection,
  opts: { hostId?: string; maxActors?: number } = {},
): Promise<{ seq(): number; stop(): void }> {
  const hostId = opts.hostId ?? "ghost";
  const registry = await new Kvm(nc).open(BUCKETS.registry);
  await registry.put(
    `host.${hostId}`,
    JSON.stringify({ hostId, incarnation: "g1", startedAt: Date.now(), maxActors: opts.maxActors ?? 100 }),
  );
  let seq = 0;
  const beat = () =>
    nc.publish(
      subjects.heartbeat(hostId),
      encode("heartbeat", { hostId, incarnation: "g1", seq: seq++, actors: 0, busy: 0, load: 0 }, { sender: hostId }),
    );
  const timer = setInterval(beat, 100);
  return { seq: () => seq, stop: () => clearInterval(timer) };
}
