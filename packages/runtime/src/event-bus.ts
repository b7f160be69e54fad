/**
 * The event bus of one process (seed edge case 6: event storms). Every event goes through:
 *
 * - a rate limit per (source, type), a token bucket (`ratePerSec`, `burst`); the source is the
 *   event's `category.scope` (a host, a workflow, an actor);
 * - shedding: a non-critical event over its rate is dropped and counted, and when the queue
 *   holds `maxQueue` events the oldest non-critical one makes room;
 * - critical types are never dropped: over its rate a source's critical events are delayed
 *   (throttled) instead, and they are published to JetStream with an acknowledgement and a
 *   message id per event, retried until acknowledged (a retry that the server had already
 *   stored is de-duplicated; a live subscriber can see it twice);
 * - a queue that sends in emission order whatever is due; its depth is in {@link stats};
 * - an event that cannot be published at all is dropped, counted (`unpublishable`) and logged,
 *   critical or not: one that breaks its schema (a scope over 200 characters, say), whose frame
 *   is over the server's `max_payload`, or whose publish fails for good (the server refuses it:
 *   too big for the stream, a bad subject). Retrying those can never succeed, and a subject
 *   past the server's control-line limit would make it close the connection at each try. A
 *   publish that fails for now (no answer, no responders, a reconnect) is retried as before.
 *
 * Every event subject is captured by the events stream either way: non-critical events are
 * core publishes (at most once), critical ones are acknowledged (at least once, stored once).
 */

import {
  type CadreEvent,
  type Config,
  encode,
  MAX_FRAME_BYTES,
  randomId,
  subjects,
  type TypedEvent,
} from "@cadre/protocol";
import { type JetStreamClient, jetstream } from "@nats-io/jetstream";
import { backoffDelay } from "./backoff.js";
import { type Breaker, CircuitOpenError } from "./breaker.js";
import { type Clock, systemClock } from "./clock.js";
import type { Logger } from "./logger.js";
import type { CadreMetrics } from "./metrics.js";
import type { NatsConnection } from "./nats.js";

/** Options of {@link EventBus}. */
export interface EventBusOptions {
  nc: NatsConnection;
  /** The envelope's sender, and the prefix of critical events' message ids. */
  sender: string;
  /** Events waiting at most (`max_event_queue_size`). */
  maxQueue: number;
  /** Sustained events per second per (source, type). */
  ratePerSec: number;
  /** Events a (source, type) may send at once above its rate. */
  burst: number;
  /** Types that are never dropped. */
  critical: ReadonlySet<string>;
  clock?: Clock;
  logger?: Logger;
  /** Critical events awaiting their acknowledgement at once. @default 64 */
  inFlight?: number;
  /**
   * The `event_publish` breaker: acknowledged publishes go through it. While it is open,
   * critical events wait in the queue (not a publish is tried) and non-critical ones are shed.
   */
  breaker?: Breaker;
  /**
   * The process's metrics: `cadre_events_published_total`, `cadre_events_dropped_total` (shed and
   * unpublishable alike) and `cadre_event_queue_depth`, each by {@link EventPriority}. Absent,
   * nothing is recorded.
   */
  metrics?: CadreMetrics;
}

/** The `priority` label of the bus's metrics: its two classes of event, critical types and the rest. */
export type EventPriority = "critical" | "normal";
const priorityOf = (critical: boolean): EventPriority => (critical ? "critical" : "normal");

/** What the bus has done so far. */
export interface EventBusStats {
  /** Waiting to be sent (the queue depth). */
  queued: number;
  /** Critical events sent, awaiting their acknowledgement. */
  inFlight: number;
  /** The deepest the queue has been. */
  maxQueued: number;
  published: number;
  /** Non-critical events shed, in all and per type. */
  dropped: number;
  droppedByType: Record<string, number>;
  /** Critical events delayed because their source was over its rate. */
  throttled: number;
  /**
   * Events that could not be published at all, critical or not: they break their schema, their
   * frame is over the server's max_payload, or the server refused them for good. Dropped.
   */
  unpublishable: number;
}

interface Pending {
  subject: string;
  data: Uint8Array;
  type: string;
  critical: boolean;
  /** Not sent before this time (a throttled critical event, or one being retried). */
  notBefore: number;
  id: string;
  attempt: number;
}

interface Bucket {
  tokens: number;
  at: number;
}

/** Options of one {@link EventBus.emit}. */
export interface EmitOptions {
  /**
   * A critical event's JetStream message id. The same fact emitted again (by a step retried
   * after a failure, or by a successor after a crash) is stored once within the stream's
   * duplicate window. @default one of its own for each emit
   */
  id?: string;
}

export class EventBus {
  private readonly clock: Clock;
  private readonly js: JetStreamClient;
  private readonly buckets = new Map<string, Bucket>();
  /** Due now, in emission order. */
  private ready: Pending[] = [];
  /** Throttled or being retried, by the time they are due. */
  private delayed: Pending[] = [];
  private sending = 0;
  private seq = 0;
  /**
   * Part of every message id, so a retried publish is stored once (JetStream's duplicate window)
   * while a process that restarts within that window, with the same sender and its sequence
   * from 0 again, is not taken for its predecessor's retries: its events were dropped as
   * duplicates before (the chaos suite's incident reports found it).
   */
  private readonly incarnation = randomId(8);
  private timer: unknown;
  private timerAt = Number.POSITIVE_INFINITY;
  private stopped = false;
  private readonly counts: EventBusStats = {
    queued: 0,
    inFlight: 0,
    maxQueued: 0,
    published: 0,
    dropped: 0,
    droppedByType: {},
    throttled: 0,
    unpublishable: 0,
  };

  constructor(private readonly o: EventBusOptions) {
    this.clock = o.clock ?? systemClock;
    this.js = jetstream(o.nc);
    // The depth gauge moves by increments, not `set`: two buses given the same metrics (one
    // process's) then add up to the process's depth instead of overwriting each other.
    // Adding 0 makes both series exist from the start, so a scrape sees 0 rather than nothing.
    o.metrics?.eventQueueDepth.inc({ priority: "critical" }, 0);
    o.metrics?.eventQueueDepth.inc({ priority: "normal" }, 0);
  }

  /**
   * Queues an event (never throws; a bad event is logged and dropped). Typed by the events
   * table (protocol events.ts): an event whose type is in the table must carry its category and
   * data, or the call does not compile.
   */
  emit(event: TypedEvent, opts?: EmitOptions): void;
  /**
   * An event known only as the wire envelope (`CadreEvent`, its type any string: one relayed
   * from elsewhere, a test's or benchmark's own type) is queued unchecked. A literal type goes
   * to the typed signature above; only a `string`-typed one comes here.
   */
  emit<T extends string>(
    event: CadreEvent & { type: T } & (string extends T ? unknown : never),
    opts?: EmitOptions,
  ): void;
  emit(event: CadreEvent, opts?: EmitOptions): void {
    if (this.stopped) return;
    const now = this.clock.now();
    const critical = this.o.critical.has(event.type);
    const bucket = this.refill(`${event.category}.${event.scope}|${event.type}`, now);
    let notBefore = now;
    if (bucket.tokens >= 1) {
      bucket.tokens -= 1;
    } else if (!critical) {
      this.drop(event.type);
      return;
    } else {
      // Throttled: the source's critical events wait for their tokens; the balance goes below
      // zero, so each one waits one interval more than the one before.
      bucket.tokens -= 1;
      notBefore = now + Math.ceil((-bucket.tokens * 1000) / this.o.ratePerSec);
      this.counts.throttled++;
    }
    let data: Uint8Array;
    let subject: string;
    try {
      data = encode("event", event, { sender: this.o.sender });
      subject = subjects.event(event.category, event.scope);
    } catch (err) {
      this.unpublishable(event.type, critical, "it breaks its schema", err);
      return;
    }
    const limit = this.o.nc.info?.max_payload ?? MAX_FRAME_BYTES;
    if (data.byteLength > limit) {
      this.unpublishable(event.type, critical, `its frame of ${data.byteLength} bytes is over max_payload (${limit})`);
      return;
    }
    // Load shedding: with maxQueue events held back (critical ones waiting for their turn or
    // an acknowledgement), new non-critical events are dropped.
    if (!critical && this.waiting() >= this.o.maxQueue) {
      this.drop(event.type);
      return;
    }
    this.enqueue({
      subject,
      data,
      type: event.type,
      critical,
      notBefore,
      id: opts?.id ?? `${this.o.sender}:${this.incarnation}:${this.seq++}`,
      attempt: 0,
    });
    this.counts.maxQueued = Math.max(this.counts.maxQueued, this.waiting());
    this.pump();
  }

  /** What the bus has done so far, with the current queue depth. */
  stats(): EventBusStats {
    return {
      ...this.counts,
      queued: this.waiting(),
      inFlight: this.sending,
      droppedByType: { ...this.counts.droppedByType },
    };
  }

  /** Resolves once nothing waits or is in flight (the caller moves a driven clock meanwhile). */
  async drained(): Promise<void> {
    while (this.waiting() + this.sending > 0) await new Promise((r) => setImmediate(r));
  }

  /** Stops sending; what is queued is given up (the caller drains first if it matters). */
  stop(): void {
    if (!this.stopped && this.o.metrics) {
      // Given up, so no longer waiting to be published: out of the process's queue depth.
      this.dequeued(this.ready);
      this.dequeued(this.delayed);
    }
    this.stopped = true;
    this.clock.clearTimeout(this.timer);
  }

  private refill(key: string, now: number): Bucket {
    let b = this.buckets.get(key);
    if (!b) {
      b = { tokens: this.o.burst, at: now };
      this.buckets.set(key, b);
      // Keys come and go with workflows: forget full buckets now and then, so the map stays small.
      if (this.buckets.size > 10_000) this.forgetFull(now);
      return b;
    }
    b.tokens = Math.min(this.o.burst, b.tokens + ((now - b.at) * this.o.ratePerSec) / 1000);
    b.at = now;
    return b;
  }

  private forgetFull(now: number): void {
    for (const [k, b] of this.buckets) {
      if (b.tokens + ((now - b.at) * this.o.ratePerSec) / 1000 >= this.o.burst) this.buckets.delete(k);
    }
  }

  /** An event that can never be published: dropped, counted and logged (never retried). */
  private unpublishable(type: string, critical: boolean, why: string, err?: unknown): void {
    this.counts.unpublishable++;
    this.o.metrics?.eventsDropped.inc({ priority: priorityOf(critical) });
    this.o.logger?.warn(
      { ...(err !== undefined ? { err } : {}), event: type, unpublishable: this.counts.unpublishable },
      `event ${type} dropped, it cannot be published: ${why}`,
    );
  }

  /** Sheds a non-critical event (critical ones are never shed). */
  private drop(type: string): void {
    this.counts.dropped++;
    this.o.metrics?.eventsDropped.inc({ priority: "normal" });
    this.counts.droppedByType[type] = (this.counts.droppedByType[type] ?? 0) + 1;
  }

  private waiting(): number {
    return this.ready.length + this.delayed.length;
  }

  /** Takes events that left the queue (sent, shed or given up) out of `cadre_event_queue_depth`. */
  private dequeued(gone: readonly Pending[]): void {
    const metrics = this.o.metrics;
    if (!metrics || gone.length === 0) return;
    let critical = 0;
    for (const p of gone) if (p.critical) critical++;
    if (critical > 0) metrics.eventQueueDepth.dec({ priority: "critical" }, critical);
    if (gone.length > critical) metrics.eventQueueDepth.dec({ priority: "normal" }, gone.length - critical);
  }

  private enqueue(p: Pending): void {
    // A stopped bus's queue is given up: an event put back after stop() (its publish failed
    // meanwhile) is not waiting for anything.
    if (!this.stopped) this.o.metrics?.eventQueueDepth.inc({ priority: priorityOf(p.critical) });
    if (p.notBefore <= this.clock.now()) {
      this.ready.push(p);
      return;
    }
    // Binary search for its place among the delayed, by due time (stable for equal times).
    let lo = 0;
    let hi = this.delayed.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if ((this.delayed[mid]?.notBefore ?? 0) <= p.notBefore) lo = mid + 1;
      else hi = mid;
    }
    this.delayed.splice(lo, 0, p);
  }

  /** Sends what is due, in order (critical ones up to `inFlight` at once); a timer for the rest. */
  private pump(): void {
    if (this.stopped) return;
    const now = this.clock.now();
    let due = 0;
    while (due < this.delayed.length && (this.delayed[due]?.notBefore ?? 0) <= now) due++;
    if (due > 0) this.ready.push(...this.delayed.splice(0, due));
    const limit = this.o.inFlight ?? 64;
    let sent = 0;
    for (; sent < this.ready.length; sent++) {
      const p = this.ready[sent] as Pending;
      if (!p.critical) {
        if (this.o.breaker?.state === "open") {
          this.drop(p.type);
          continue;
        }
        try {
          this.o.nc.publish(p.subject, p.data);
          this.counts.published++;
          this.o.metrics?.eventsPublished.inc({ priority: "normal" });
        } catch (err) {
          if (isPermanent(err)) this.unpublishable(p.type, false, "the client refused it", err);
          else this.o.logger?.debug({ err, event: p.type }, "event not published");
        }
        continue;
      }
      // Full: the rest waits for acknowledgements (each one pumps again).
      if (this.sending >= limit) break;
      this.sendCritical(p);
    }
    this.dequeued(this.ready.splice(0, sent));
    const next = this.delayed[0]?.notBefore;
    if (next !== undefined && next < this.timerAt) {
      this.clock.clearTimeout(this.timer);
      this.timerAt = next;
      this.timer = this.clock.setTimeout(() => {
        this.timerAt = Number.POSITIVE_INFINITY;
        this.pump();
      }, next - now);
    }
  }

  private sendCritical(p: Pending): void {
    this.sending++;
    const publish = () => this.js.publish(p.subject, p.data, { msgID: p.id });
    (this.o.breaker ? this.o.breaker.call(publish) : publish()).then(
      (ack) => {
        this.sending--;
        // A retry acknowledged as a duplicate: an earlier attempt was stored (or the server
        // believes so). Logged, because the chaos suite once found one critical event missing
        // from the stream after a NATS node's loss; this line says whether this was the path.
        if (p.attempt > 0 && ack.duplicate) {
          this.o.logger?.warn(
            { event: p.type, id: p.id, seq: ack.seq, attempt: p.attempt },
            "critical event retry acknowledged as a duplicate",
          );
        }
        this.counts.published++;
        this.o.metrics?.eventsPublished.inc({ priority: "critical" });
        this.pump();
      },
      (err) => {
        this.sending--;
        if (err instanceof CircuitOpenError) {
          // Not tried: it waits for the circuit's trial (or for the trial under way to decide).
          p.notBefore = this.clock.now() + Math.max(50, Number(err.data.retryInMs) || 0);
          this.enqueue(p);
          this.pump();
          return;
        }
        // Refused for good (too big for the stream, a bad subject): trying again cannot help.
        if (isPermanent(err)) {
          this.unpublishable(p.type, true, "the server refused it", err);
          this.pump();
          return;
        }
        // Never dropped for a passing failure: back in the queue, retried with a growing delay.
        p.attempt++;
        p.notBefore = this.clock.now() + backoffDelay(p.attempt, { baseMs: 100, maxMs: 5000 });
        this.enqueue(p);
        this.o.logger?.debug({ err, event: p.type, attempt: p.attempt }, "critical event not acknowledged; retrying");
        this.pump();
      },
    );
  }
}

/** Client-side refusals: the publish itself is wrong, not the moment. */
const PERMANENT = new Set(["InvalidArgumentError", "InvalidSubjectError", "InvalidNameError", "TypeError"]);

/**
 * Whether a publish failed for good: the client refused it (over max_payload, a bad subject),
 * or JetStream answered with a client error (4xx: the message is over the stream's
 * max_msg_size, say). Timeouts, no responders, a closed or reconnecting connection and 5xx
 * answers (JetStream electing a leader) are passing, and so is anything not recognised.
 */
export function isPermanent(err: unknown): boolean {
  if (err instanceof CircuitOpenError || !(err instanceof Error)) return false;
  if (PERMANENT.has(err.name)) return true;
  if (err.name === "JetStreamApiError") {
    const status = (err as { status?: unknown }).status;
    return typeof status === "number" && status >= 400 && status < 500;
  }
  return false;
}

/**
 * The bus a service uses, with its configuration's limits. `opts.metrics`: the process's metrics
 * to record into (see {@link EventBusOptions.metrics}).
 */
export function eventBusFor(
  nc: NatsConnection,
  sender: string,
  config: Config,
  logger?: Logger,
  clock?: Clock,
  breaker?: Breaker,
  opts: { metrics?: CadreMetrics } = {},
): EventBus {
  return new EventBus({
    ...(breaker ? { breaker } : {}),
    ...(opts.metrics ? { metrics: opts.metrics } : {}),
    nc,
    sender,
    maxQueue: config.orchestration_limits.max_event_queue_size,
    ratePerSec: config.events.ratePerSec,
    burst: config.events.burst,
    critical: new Set(config.events.critical),
    ...(logger ? { logger } : {}),
    ...(clock ? { clock } : {}),
  });
}

/** Waits up to `ms` for the bus to send what it holds, then stops it (a service shutting down). */
export async function closeBus(bus: EventBus, ms = 2000): Promise<void> {
  await Promise.race([bus.drained(), new Promise((r) => setTimeout(r, ms).unref())]);
  bus.stop();
}
