/** Reading Cadre's persisted events back from the events stream (operators' commands, tests). */

import { decodeAs, isParseFailure, type ParseFailure, parseEvent, STREAMS, type TypedEvent } from "@cadre/protocol";
import { jetstream, jetstreamManager } from "@nats-io/jetstream";
import type { NatsConnection } from "@nats-io/nats-core";
import type { Logger } from "./logger.js";

/** What {@link readEventLog} read. */
export interface EventLog {
  /** The events that decoded and parsed by the events table, oldest first. */
  events: TypedEvent[];
  /** Messages skipped: not a decodable event frame, an unknown type, or data that breaks its schema. */
  skipped: number;
  /** Why, for the first few skipped (at most 20). */
  failures: (ParseFailure | { reason: "undecodable"; message: string })[];
}

const MAX_FAILURES = 20;

/**
 * Every event stored so far on subjects matching `filter` (default: all), oldest first, each
 * parsed by the events table (protocol events.ts). What does not decode or parse is skipped
 * and counted, never thrown. Uses an ordered consumer (no state left on the server) and stops
 * once it has read what was there when it started.
 */
export async function readEventLog(nc: NatsConnection, filter?: string): Promise<EventLog> {
  const log: EventLog = { events: [], skipped: 0, failures: [] };
  const jsm = await jetstreamManager(nc);
  const total = (await jsm.streams.info(STREAMS.events)).state.messages;
  if (total === 0) return log;
  // A single subject given as a string becomes filter_subject, which nats-server 2.9 knows
  // (an array would need filter_subjects, from 2.10).
  const consumer = await jetstream(nc).consumers.get(STREAMS.events, filter ? { filter_subjects: filter } : {});
  const pending = (await consumer.info()).num_pending;
  let read = 0;
  while (read < pending) {
    const msgs = await consumer.fetch({ max_messages: Math.min(1000, pending - read), expires: 5000 });
    let got = 0;
    for await (const m of msgs) {
      got++;
      let e: TypedEvent | ParseFailure;
      try {
        e = parseEvent(decodeAs(m.data, "event").body);
      } catch (err) {
        log.skipped++;
        if (log.failures.length < MAX_FAILURES) log.failures.push({ reason: "undecodable", message: String(err) });
        continue;
      }
      if (isParseFailure(e)) {
        log.skipped++;
        if (log.failures.length < MAX_FAILURES) log.failures.push(e);
      } else {
        log.events.push(e);
      }
    }
    read += got;
    if (got === 0) break;
  }
  return log;
}

/**
 * The events of {@link readEventLog}, without the account of what was skipped; with a logger,
 * a warning gives the count when some were.
 */
export async function readEvents(nc: NatsConnection, filter?: string, logger?: Logger): Promise<TypedEvent[]> {
  const { events, skipped, failures } = await readEventLog(nc, filter);
  if (skipped > 0) {
    logger?.warn(
      { skipped, failures: failures.slice(0, 5) },
      `${skipped} stored events skipped: not decoded or not parsed`,
    );
  }
  return events;
}
