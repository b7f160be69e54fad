/** Reading Cadre's persisted events back from the events stream (operators' commands, tests). */

import { decodeAs, isParseFailure, type ParseFailure, parseEvent, STREAMS, type TypedEvent } from "@cadre/protocol";
import { DeliverPolicy, jetstream, jetstreamManager } from "@nats-io/jetstream";
import type { NatsConnection } from "@nats-io/nats-core";
import type { Logger } from "./logger.js";

/** An event as stored: parsed, with where and when the stream took it and who sent it. */
export interface StoredEvent {
  event: TypedEvent;
  /** The events stream's sequence. */
  seq: number;
  /** The stream's time (ms): one clock, the server's, for every service's events. */
  at: number;
  sender: string;
}

/** What {@link readEventLog} read. */
export interface EventLog {
  /** The events that decoded and parsed by the events table, oldest first. */
  events: StoredEvent[];
  /** Messages skipped: not a decodable event frame, an unknown type, or data that breaks its schema. */
  skipped: number;
  /** Why, for the first few skipped (at most 20). */
  failures: (ParseFailure | { reason: "undecodable"; message: string })[];
  /** `max` stopped the read before the end (or `untilMs`). */
  capped: boolean;
}

/** Which events {@link readEventLog} reads. */
export interface ReadEventsOptions {
  /** A subject filter (one: nats-server 2.9 takes a single filter subject). @default every event */
  filter?: string | undefined;
  /** From this stream time (ms). @default the stream's start */
  sinceMs?: number | undefined;
  /** Up to this stream time (ms). @default what was there when the read started */
  untilMs?: number | undefined;
  /** Messages read at most. @default all */
  max?: number | undefined;
}

const MAX_FAILURES = 20;

/**
 * The events stored on subjects matching `filter`, from `sinceMs` to `untilMs` (stream time),
 * oldest first, each parsed by the events table (protocol events.ts). What does not decode or
 * parse is skipped and counted, never thrown. Uses an ordered consumer (no state left on the
 * server), and stops once it has read what was there when it started, `max` messages, or the
 * first message past `untilMs` (stream time only grows along the stream).
 */
export async function readEventLog(nc: NatsConnection, opts: ReadEventsOptions | string = {}): Promise<EventLog> {
  const o: ReadEventsOptions = typeof opts === "string" ? { filter: opts } : opts;
  const log: EventLog = { events: [], skipped: 0, failures: [], capped: false };
  const jsm = await jetstreamManager(nc);
  const state = (await jsm.streams.info(STREAMS.events)).state;
  if (state.messages === 0) return log;
  if (o.sinceMs !== undefined && Date.parse(state.last_ts) < o.sinceMs) return log;
  // A single subject given as a string becomes filter_subject, which nats-server 2.9 knows
  // (an array would need filter_subjects, from 2.10).
  const consumer = await jetstream(nc).consumers.get(STREAMS.events, {
    ...(o.filter ? { filter_subjects: o.filter } : {}),
    ...(o.sinceMs !== undefined
      ? { deliver_policy: DeliverPolicy.StartTime, opt_start_time: new Date(Math.max(0, o.sinceMs)).toISOString() }
      : {}),
  });
  const pending = (await consumer.info()).num_pending;
  const toRead = Math.min(pending, o.max ?? Number.POSITIVE_INFINITY);
  let read = 0;
  let past = false;
  while (read < toRead && !past) {
    const msgs = await consumer.fetch({ max_messages: Math.min(1000, toRead - read), expires: 5000 });
    let got = 0;
    for await (const m of msgs) {
      got++;
      const at = Math.floor(m.info.timestampNanos / 1e6);
      if (o.untilMs !== undefined && at > o.untilMs) {
        past = true;
        msgs.stop();
        break;
      }
      let e: TypedEvent | ParseFailure;
      let sender: string;
      try {
        const env = decodeAs(m.data, "event");
        sender = env.sender;
        e = parseEvent(env.body);
      } catch (err) {
        log.skipped++;
        if (log.failures.length < MAX_FAILURES) log.failures.push({ reason: "undecodable", message: String(err) });
        continue;
      }
      if (isParseFailure(e)) {
        log.skipped++;
        if (log.failures.length < MAX_FAILURES) log.failures.push(e);
      } else {
        log.events.push({ event: e, seq: m.seq, at, sender });
      }
    }
    read += got;
    if (got === 0) break;
  }
  log.capped = !past && read >= toRead && pending > toRead;
  return log;
}

/**
 * The events of {@link readEventLog}, without the account of what was skipped; with a logger,
 * a warning gives the count when some were.
 */
export async function readEvents(nc: NatsConnection, filter?: string, logger?: Logger): Promise<TypedEvent[]> {
  const { events, skipped, failures } = await readEventLog(nc, { filter });
  if (skipped > 0) {
    logger?.warn(
      { skipped, failures: failures.slice(0, 5) },
      `${skipped} stored events skipped: not decoded or not parsed`,
    );
  }
  return events.map((e) => e.event);
}
