/**
 * What every supervisor follows, standbys too, so one that takes over starts with a warm view:
 * the hosts' heartbeats (liveness, what each holds, heartbeat gaps) and their TASK_STARTED
 * events. A heartbeat counts only on its host's own subject (only that host may publish there),
 * and a held entry or a TASK_STARTED only with its proof of holding (runtime authenticity.ts).
 * What does not decode or parse is skipped, counted and logged at a bounded rate.
 */

import {
  decodeAs,
  type EventType,
  type Heartbeat,
  isParseFailure,
  type Message,
  parseEvent,
  subjects,
  type TypedEvent,
} from "@cadre/protocol";
import type { CadreMetrics, Clock, NatsConnection, Subscription, ThrottledLog } from "@cadre/runtime";
import type { WorkflowControls } from "./controls.js";
import type { Inspector } from "./inspect.js";
import type { Lifecycle } from "./lifecycle.js";
import { provesHolding, type Reassigner } from "./reassign.js";
import type { Registry } from "./registry.js";
import type { ResultStream } from "./result-stream.js";

/** Each event type's name as bytes, for {@link Follower.readEvent}'s look before it decodes. */
const typeNames = new Map<EventType, Buffer>();
const typeBytes = (type: EventType): Buffer => {
  const known = typeNames.get(type);
  if (known) return known;
  const b = Buffer.from(type, "utf8");
  typeNames.set(type, b);
  return b;
};

/** Dependencies of the {@link Follower}. */
export interface FollowerDeps {
  nc: NatsConnection;
  clock: Clock;
  metrics: CadreMetrics;
  noisy: ThrottledLog;
  taskKey: Buffer | undefined;
  reassigner: Reassigner;
  /** Told of each attempt started: a workflow paused with `now` takes it back (controls.ts). */
  controls: WorkflowControls;
  lifecycle: Lifecycle;
  registry: Registry;
  results: () => ResultStream;
  inspector: Inspector;
  active: () => boolean;
  emit: (event: TypedEvent) => void;
}

/** Follows heartbeats and task starts; reads the events the active supervisor follows. */
export class Follower {
  /** Events followed and skipped: not decodable, or not parsed by the events table. */
  skipped = 0;
  /** When each host's last heartbeat arrived (cadre_heartbeat_gap_seconds). */
  private readonly lastBeat = new Map<string, number>();

  constructor(private readonly d: FollowerDeps) {}

  /** Subscribes; the subscriptions are the caller's to end. */
  start(): Subscription[] {
    const { nc } = this.d;
    return [
      nc.subscribe(subjects.allHeartbeats(), { callback: (_err, m) => this.heartbeat(m.subject, m.data) }),
      // Which tasks each host holds, the moment it starts one (see reassign.ts).
      nc.subscribe(subjects.eventsOf("task"), { callback: (_err, m) => this.started(m.data) }),
    ];
  }

  /** The registry forgot a host. */
  forget(hostId: string): void {
    this.lastBeat.delete(hostId);
  }

  /**
   * Decodes a followed event and, if its type is `type`, parses it by the events table. Another
   * type is undefined (not parsed); one that does not decode or parse is counted, logged with
   * the count so far, and skipped (undefined): never thrown. A frame whose bytes do not hold
   * `type`'s name cannot be of that type (msgpack stores a string as its UTF-8 bytes) and is
   * not decoded at all: every supervisor follows every task event for its TASK_STARTED ones,
   * and decoding the others (TASK_COMPLETED with its output) was most of that work.
   */
  readEvent(data: Uint8Array, type: EventType): { event: TypedEvent; ts: number } | undefined {
    if (Buffer.from(data.buffer, data.byteOffset, data.byteLength).indexOf(typeBytes(type)) < 0) return undefined;
    let msg: Message<"event">;
    try {
      msg = decodeAs(data, "event");
    } catch (err) {
      this.skipped++;
      this.d.noisy("warn", "undecodable event skipped", { err, skipped: this.skipped }, "undecodable event skipped");
      return undefined;
    }
    if (msg.body.type !== type) return undefined;
    const event = parseEvent(msg.body);
    if (isParseFailure(event)) {
      this.skipped++;
      this.d.noisy(
        "warn",
        "event skipped",
        { failure: event, skipped: this.skipped },
        `event skipped: ${event.message}`,
      );
      return undefined;
    }
    return { event, ts: msg.ts };
  }

  private heartbeat(subject: string, data: Uint8Array): void {
    const d = this.d;
    try {
      const hb = this.authenticHeld(decodeAs(data, "heartbeat").body);
      // Only the host itself may publish on its subject (its permissions): the subject names
      // the sender, whatever the body claims.
      if (subject !== subjects.heartbeat(hb.hostId)) {
        const msg = "heartbeat on another host's subject ignored";
        d.noisy("warn", msg, { subject, claimedHostId: hb.hostId }, msg);
        return;
      }
      const now = d.clock.now();
      const prev = this.lastBeat.get(hb.hostId);
      if (prev !== undefined) d.metrics.heartbeatGapSeconds.observe({ host: hb.hostId }, (now - prev) / 1000);
      this.lastBeat.set(hb.hostId, now);
      d.reassigner.heard(hb);
      d.lifecycle.heard(hb);
      const restarted = d.registry.heartbeat(hb);
      // A restarted host may come back with another key (rotated): read its record again.
      if (restarted) d.results().forgetHost(hb.hostId);
      if (restarted && d.active()) {
        d.emit({ type: "HOST_UP", category: "host", scope: hb.hostId, data: { incarnation: hb.incarnation } });
      }
    } catch (err) {
      d.noisy("warn", "bad heartbeat ignored", { err }, "bad heartbeat ignored");
    }
  }

  private started(data: Uint8Array): void {
    const r = this.readEvent(data, "TASK_STARTED");
    if (r?.event.type !== "TASK_STARTED") return;
    const s = r.event.data;
    if (!provesHolding(this.d.taskKey, s.hostId, s)) {
      const msg = "TASK_STARTED without proof of holding ignored";
      this.d.noisy("warn", msg, { taskId: s.taskId, claimedHostId: s.hostId }, msg);
      return;
    }
    this.d.reassigner.started(s.hostId, { taskId: s.taskId, epoch: s.epoch, seq: s.seq });
    if (this.d.active()) this.d.controls.started({ hostId: s.hostId, taskId: s.taskId, epoch: s.epoch });
    this.d.inspector.started(s.taskId, {
      hostId: s.hostId,
      actorId: s.actorId,
      attempt: s.attempt,
      epoch: s.epoch,
      at: r.ts,
    });
  }

  /** A heartbeat with only the held entries its host proves. */
  private authenticHeld(hb: Heartbeat): Heartbeat {
    if (!hb.held || !this.d.taskKey) return hb;
    const held = hb.held.filter((t) => provesHolding(this.d.taskKey, hb.hostId, t));
    if (held.length < hb.held.length) {
      const msg = "held entries without proof ignored";
      this.d.noisy("warn", msg, { hostId: hb.hostId, unproven: hb.held.length - held.length }, msg);
    }
    return { ...hb, held };
  }
}
