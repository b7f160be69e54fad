/**
 * The event line: one event per line as `TYPE:category:scope:{json}`, e.g.
 * `DELEGATION_REFUSED:delegation:w1a2b3:{"code":"CIRCULAR_DELEGATION","chain":["a","b","a"]}`.
 * TYPE, category and scope hold no colon, so the first three colons split the line and the
 * rest is the JSON data, whatever it contains.
 */

import { formatIssues, ProtocolError } from "./errors.js";
import { type CadreEvent, EventSchema } from "./messages.js";

/** Formats an event as one line. */
export function formatEventLine(event: CadreEvent): string {
  const r = EventSchema.safeParse(event);
  if (!r.success) {
    throw new ProtocolError(`cannot format event: ${issuesText(r.error.issues)}`, {
      issues: formatIssues(r.error.issues),
    });
  }
  const e = r.data;
  return `${e.type}:${e.category}:${e.scope}:${JSON.stringify(e.data)}`;
}

/** Parses an event line; throws a ProtocolError saying which part is wrong. */
export function parseEventLine(line: string): CadreEvent {
  const parts: string[] = [];
  let rest = line.trim();
  for (let i = 0; i < 3; i++) {
    const at = rest.indexOf(":");
    if (at < 0) {
      throw new ProtocolError("event line must be TYPE:category:scope:{json}", { line });
    }
    parts.push(rest.slice(0, at));
    rest = rest.slice(at + 1);
  }
  let data: unknown;
  try {
    data = JSON.parse(rest);
  } catch {
    throw new ProtocolError("event line data is not JSON", { line });
  }
  const r = EventSchema.safeParse({ type: parts[0], category: parts[1], scope: parts[2], data });
  if (!r.success) {
    throw new ProtocolError(`event line is invalid: ${issuesText(r.error.issues)}`, { line });
  }
  return r.data;
}

function issuesText(issues: Parameters<typeof formatIssues>[0]): string {
  return formatIssues(issues)
    .map((i) => `${i.path}: ${i.message}`)
    .join("; ");
}
