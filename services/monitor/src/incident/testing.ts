/**
 * What the incident tests share (not used by the command): a stream of events parsed by the
 * events table, the data of the events they use most, and the report of a stream.
 */

import { type EventData, type EventType, events, isParseFailure, parseEvent } from "@cadre/protocol";
import { buildReport, type Fault, type IncidentReport, type StampedEvent } from "./report.js";

export const T0 = Date.parse("2026-05-01T10:00:00.000Z");

/** A list of events in stream order, each parsed by the events table (so the data is what a reader gets). */
export function stream() {
  const list: StampedEvent[] = [];
  const add = <T extends EventType>(ms: number, type: T, scope: string, data: EventData<T>, sender?: string) => {
    const e = parseEvent({ type, category: events[type].category, scope, data });
    if (isParseFailure(e)) throw new Error(e.message);
    list.push({ seq: list.length + 1, at: T0 + ms, event: e, ...(sender ? { sender } : {}) });
    return list;
  };
  return { list, add };
}

export const started = (taskId: string, hostId: string, seq = 1) => ({
  taskId,
  epoch: 1,
  seq,
  kind: "worker",
  attempt: 1,
  hostId,
  actorId: `${hostId}-a`,
});
export const applied = (taskId: string, hostId: string, resultId = `${taskId}:1:1`) => ({
  taskId,
  kind: "worker",
  resultId,
  attempt: 1,
  hostId,
});
export const reassigned = (taskId: string, fromHostId: string, extra: { actorId?: string; reason?: string } = {}) => ({
  taskId,
  kind: "worker",
  fromHostId,
  epoch: 2,
  reason: extra.reason ?? "host-lost",
  ...(extra.actorId ? { actorId: extra.actorId } : {}),
});
export const silent = (silenceMs: number) => ({ lastHeartbeatAt: T0, silenceMs, phi: 9.1 });
export const counts = (total: number, completed: number, more: Partial<Record<string, number>> = {}) => ({
  total,
  completed,
  failed: 0,
  retried: 0,
  duplicates: 0,
  conflicts: 0,
  cancelled: 0,
  ...more,
});
export const breaker = (name: string, source: string, from: "closed" | "open" | "halfOpen", to: typeof from) => ({
  breaker: name,
  key: "",
  source,
  from,
  to,
  failures: 5,
});
export const threshold = (metric: string, value: number) => ({
  metric,
  value,
  threshold: 8000,
  clear: 6000,
  action: "scale",
});

export const report = (list: StampedEvent[], until = 3_600_000): IncidentReport =>
  buildReport(list, { sinceMs: T0, untilMs: T0 + until });
export const fault = (r: IncidentReport, type: string, key?: string): Fault => {
  const f = r.faults.find((x) => x.type === type && (key === undefined || x.key === key));
  if (!f) throw new Error(`no ${type} ${key ?? ""} fault in ${JSON.stringify(r.faults.map((x) => x.key))}`);
  return f;
};
