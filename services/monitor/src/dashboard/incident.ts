/**
 * The dashboard's incident report (`/dashboard/api/incident?since=15m&until=now&max=1000`): what
 * `cadre incident report --since 15m` prints, and the report itself, built here from the events
 * stream (runtime's readEventLog, events placed by their JetStream time) with the incident
 * library (../incident/), so the page needs neither the CLI nor a NATS connection of its own.
 */

import { toCadreError } from "@cadre/protocol";
import { type EventLog, type NatsConnection, readEventLog } from "@cadre/runtime";
import { buildReport, MAX_EVENTS, parseTime, reportText } from "../incident/index.js";

/** A 400 reply saying what to fix in the query. */
const bad = (message: string) => ({ status: 400, body: { error: { code: "PROTOCOL_ERROR", message } } });

/** A time parameter: its value, or the message of a 400 saying what is accepted. */
function timeParam(name: string, raw: string | null, now: number): number | string {
  if (raw === null || raw.trim() === "") {
    return `${name}: required: an ISO 8601 time (2026-05-01T10:00:00Z) or a duration ago such as 15m (?${name}=15m)`;
  }
  try {
    return parseTime(raw, now);
  } catch (err) {
    return `${name}: ${(err as Error).message}`;
  }
}

/**
 * The report for a query's `since` (required), `until` (default `now`) and `max` (events read at
 * most, 1 to {@link MAX_EVENTS}, the default): 200 `{text, report}`, 400 for a bad query, 503
 * when the events stream cannot be read.
 */
export async function incidentFromQuery(
  nc: NatsConnection,
  query: URLSearchParams,
  now: number,
): Promise<{ status: number; body: unknown }> {
  const sinceMs = timeParam("since", query.get("since"), now);
  if (typeof sinceMs === "string") return bad(sinceMs);
  const rawUntil = query.get("until")?.trim();
  const untilMs = rawUntil ? timeParam("until", rawUntil, now) : now;
  if (typeof untilMs === "string") return bad(untilMs);
  if (untilMs < sinceMs) {
    const at = (ms: number) => new Date(ms).toISOString();
    return bad(
      `until (${at(untilMs)}) is before since (${at(sinceMs)}); give an until after since, or leave it out for now`,
    );
  }
  const rawMax = query.get("max");
  const cap = rawMax === null ? MAX_EVENTS : Number(rawMax);
  if (!Number.isInteger(cap) || cap < 1 || cap > MAX_EVENTS) {
    return bad(`max: expected a whole number of events from 1 to ${MAX_EVENTS}, got "${rawMax}"`);
  }
  let log: EventLog;
  try {
    log = await readEventLog(nc, { sinceMs, untilMs, max: cap });
  } catch (err) {
    const message = `could not read the events stream: ${toCadreError(err).message}`;
    return { status: 503, body: { error: { code: "UNAVAILABLE", message } } };
  }
  const report = buildReport(log.events, { sinceMs, untilMs, skipped: log.skipped, cap, capped: log.capped });
  return { status: 200, body: { text: reportText(report), report } };
}
