/** Reading Cadre's persisted events back from the events stream (operators' commands, tests). */

import { type CadreEvent, decodeAs, STREAMS } from "@cadre/protocol";
import { jetstream, jetstreamManager } from "@nats-io/jetstream";
import type { NatsConnection } from "@nats-io/nats-core";

/**
 * Every event stored so far on subjects matching `filter` (default: all), oldest first. Uses an
 * ordered consumer (no state left on the server) and stops once it has read what was there
 * when it started.
 */
export async function readEvents(nc: NatsConnection, filter?: string): Promise<CadreEvent[]> {
  const jsm = await jetstreamManager(nc);
  const total = (await jsm.streams.info(STREAMS.events)).state.messages;
  if (total === 0) return [];
  // A single subject given as a string becomes filter_subject, which nats-server 2.9 knows
  // (an array would need filter_subjects, from 2.10).
  const consumer = await jetstream(nc).consumers.get(STREAMS.events, filter ? { filter_subjects: filter } : {});
  const pending = (await consumer.info()).num_pending;
  const out: CadreEvent[] = [];
  while (out.length < pending) {
    const msgs = await consumer.fetch({ max_messages: Math.min(1000, pending - out.length), expires: 5000 });
    let got = 0;
    for await (const m of msgs) {
      out.push(decodeAs(m.data, "event").body);
      got++;
    }
    if (got === 0) break;
  }
  return out;
}
