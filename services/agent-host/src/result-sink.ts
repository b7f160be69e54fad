/**
 * Where a host's results (and its events while cut off) go: straight to JetStream while the
 * connection is up, to the durable outbox while it is not, and replayed from the outbox, in
 * order and at a bounded rate, when it comes back. Owns the connectivity machine
 * (connectivity.ts), fed by the NATS client's status, whose `reconciling` state runs the replay.
 */

import { join } from "node:path";
import {
  encode,
  HEADERS,
  randomId,
  resultMessageId,
  subjects,
  type TaskResult,
  type TypedEvent,
  UnavailableError,
} from "@cadre/protocol";
import {
  type CadreMetrics,
  type Clock,
  headers,
  injectContext,
  type Logger,
  type NatsConnection,
  Outbox,
  type ResultSigner,
  retry,
  signedResultMessageId,
} from "@cadre/runtime";
import type { JetStreamClient } from "@nats-io/jetstream";
import { type Actor, createActor, fromPromise } from "xstate";
import { connectivityMachine } from "./connectivity.js";

/** Options of {@link ResultSink.open}. */
export interface ResultSinkOptions {
  hostId: string;
  /** The outboxes' directory: `<hostId>.log` (results) and `<hostId>.events.log` (events). */
  dir: string;
  maxBytes: number;
  replayRatePerSec: number;
  /** Timeout of each replayed publish. */
  requestTimeoutMs: number;
  clock: Clock;
  logger: Logger;
  /** @default true (tests may turn it off for speed) */
  fsync?: boolean;
  /** Signs each result with the host's nkey (an authenticated deployment); absent: unsigned. */
  signer?: ResultSigner | undefined;
  metrics?: CadreMetrics;
}

/** What the sink sends through once connected. */
export interface ResultSinkConnection {
  nc: NatsConnection;
  js: JetStreamClient;
  /** Publishes an event while the host is not cut off (the event bus). */
  publishEvent(event: TypedEvent): void;
}

/** How a result was stored. */
export type Stored = "published" | "outbox";

/** Publish-or-outbox for results, outbox for events while offline, and the replay. */
export class ResultSink {
  private conn?: ResultSinkConnection;
  private connectivity?: Actor<typeof connectivityMachine>;

  private constructor(
    private readonly o: ResultSinkOptions,
    private readonly outbox: Outbox,
    /** Events made while cut off; replayed after the results (no reconciliation counts them). */
    private readonly eventOutbox: Outbox,
  ) {}

  /** Opens both outboxes (a damaged one fails here, before anything is connected). */
  static async open(o: ResultSinkOptions): Promise<ResultSink> {
    const open = (name: string, metrics?: CadreMetrics) =>
      Outbox.open({
        path: join(o.dir, name),
        maxBytes: o.maxBytes,
        ...(o.fsync === false ? { fsync: false } : {}),
        ...(metrics ? { metrics } : {}),
      });
    // cadre_outbox_depth and _replayed count results, the outbox that matters for reconciliation.
    const sink = new ResultSink(o, await open(`${o.hostId}.log`, o.metrics), await open(`${o.hostId}.events.log`));
    for (const box of [sink.outbox, sink.eventOutbox]) {
      if (box.openReport.tornBytes > 0) {
        o.logger.warn(box.openReport, "outbox: a torn last record was cut off (a crash mid-write)");
      }
    }
    return sink;
  }

  /** Starts following the connection; what a previous run left in the outboxes is replayed now. */
  connect(conn: ResultSinkConnection): void {
    this.conn = conn;
    this.connectivity = createActor(
      connectivityMachine.provide({ actors: { replay: fromPromise(() => this.replay()) } }),
      { clock: this.o.clock },
    );
    this.connectivity.subscribe((s) =>
      this.o.logger.info({ connectivity: s.value }, `connectivity: ${String(s.value)}`),
    );
    this.connectivity.start();
    void this.follow(conn.nc);
    if (this.waiting() > 0) this.connectivity.send({ type: "RECONNECTED" });
  }

  /** Whether {@link connect} was called. */
  get connected(): boolean {
    return this.conn !== undefined;
  }

  /** The connectivity machine's state: `online`, `offline`, `reconciling` or `retrying`. */
  state(): string {
    return String(this.connectivity?.getSnapshot().value ?? "online");
  }

  /** Records (results and events) waiting in the outboxes. */
  waiting(): number {
    return this.outbox.size().records + this.eventOutbox.size().records;
  }

  /** Completed replays so far (the connectivity machine's count). */
  replays(): number {
    return this.connectivity?.getSnapshot().context.replays ?? 0;
  }

  /** The connection was lost (the client's own disconnect); fed from the client's status. */
  disconnected(): void {
    this.connectivity?.send({ type: "DISCONNECTED" });
  }

  /** The connection is back: replay what waits. */
  reconnected(): void {
    this.connectivity?.send({ type: "RECONNECTED" });
  }

  /**
   * Stores a result: published to JetStream (message id per attempt, three quick tries) while
   * online, else appended to the outbox (fsync'd) as an `offline` result, sent on reconnect.
   * Rejects only when neither worked (OUTBOX_FULL, say): the task must then be redelivered.
   */
  async store(unsigned: TaskResult): Promise<Stored> {
    const conn = this.need();
    const result = this.o.signer ? { ...unsigned, sig: this.o.signer.sign(unsigned) } : unsigned;
    const msgID = signedResultMessageId(resultMessageId(result.taskId, result.epoch, result.attempt), result);
    const subject = subjects.result(result.partition ?? 0, result.workflowId);
    const meta = { sender: this.o.hostId, cid: result.workflowId };
    if (this.state() === "online") {
      const traced = injectContext();
      try {
        await this.whileOnline(
          // The attempt's trace context (the caller runs this in its span; runtime tracing.ts) goes
          // with the result, so applying it is part of the task's trace. The outbox keeps data
          // only: a result replayed after a partition is applied in a trace of its own.
          retry(() => conn.js.publish(subject, encode("result", result, meta), { msgID, headers: traced }), {
            maxAttempts: 3,
            baseMs: 50,
            maxMs: 500,
            isRetryable: () => true,
            clock: this.o.clock,
          }),
        );
        return "published";
      } catch (err) {
        this.o.logger.warn({ err, taskId: result.taskId }, "result not published; keeping it in the outbox");
      }
    }
    // Cut off (or about to be): the result waits on disk and goes out when NATS is back.
    await this.outbox.append({ subject, key: msgID, data: encode("result", { ...result, offline: true }, meta) });
    // Appended while a replay was finishing (appends wait for it): the machine may be online
    // already, and nothing would send this record until the next reconnect. Replay again.
    if (this.state() === "online") this.reconnected();
    this.o.logger.info(
      { taskId: result.taskId, outboxRecords: this.outbox.size().records },
      "result kept in the outbox until NATS is back",
    );
    return "outbox";
  }

  /**
   * Publishes an event; while the connection is down it goes to the event outbox instead (on
   * disk, so a host that dies cut off still delivers it when it starts again). A full outbox
   * drops the event, with a warning.
   */
  emit(event: TypedEvent): void {
    if (this.state() !== "offline") {
      this.conn?.publishEvent(event);
      return;
    }
    const entry = {
      subject: subjects.event(event.category, event.scope),
      key: `${this.o.hostId}:${randomId(12)}`,
      data: encode("event", event, { sender: this.o.hostId }),
    };
    this.eventOutbox.append(entry).then(
      () => {
        this.o.logger.info(
          { event: event.type, outboxEvents: this.eventOutbox.size().records },
          "event kept in the outbox",
        );
        if (this.state() === "online") this.reconnected();
      },
      (err) => this.o.logger.warn({ err, event: event.type }, "event dropped: not published and not kept"),
    );
  }

  /** Stops following the connection and closes the outboxes (after what is being written). */
  async close(): Promise<void> {
    this.connectivity?.stop();
    await this.outbox.close();
    await this.eventOutbox.close();
  }

  private need(): ResultSinkConnection {
    if (!this.conn) throw new UnavailableError("the result sink is not connected yet");
    return this.conn;
  }

  /** Feeds the NATS client's status to the connectivity machine. */
  private async follow(nc: NatsConnection): Promise<void> {
    for await (const s of nc.status()) {
      if (s.type === "disconnect" || s.type === "staleConnection") this.disconnected();
      else if (s.type === "reconnect") this.reconnected();
    }
  }

  /** Sends what the outboxes hold, in order, at the configured rate; then says how it went. */
  private async replay(): Promise<number> {
    const { js } = this.need();
    const { clock, replayRatePerSec: ratePerSecond, requestTimeoutMs: timeout } = this.o;
    const started = clock.now();
    const pending = this.outbox.size().records;
    let deduplicated = 0;
    // Every record of this replay says which replay it belongs to and how many it has, so the
    // supervisor knows when it has classified them all (the header travels with the result).
    const batch = `${randomId(8)}:${pending}`;
    const sent = await this.outbox.replay(
      async (r) => {
        const h = headers();
        h.set(HEADERS.replay, batch);
        const ack = await js.publish(r.subject, r.data, { msgID: r.key, headers: h, timeout });
        // JetStream had it already (published before the ack was lost): it will not be delivered again.
        if (ack.duplicate) deduplicated++;
      },
      { ratePerSecond, clock },
    );
    if (pending > 0) {
      const ms = clock.now() - started;
      this.emit({
        type: "OUTBOX_REPLAYED",
        category: "host",
        scope: this.o.hostId,
        data: { hostId: this.o.hostId, batch, replayed: sent, deduplicated, ms },
      });
      this.o.logger.info({ replayed: sent, ms }, "outbox replayed");
    }
    const events = await this.eventOutbox.replay(
      (r) => js.publish(r.subject, r.data, { msgID: r.key, timeout }).then(() => {}),
      { ratePerSecond, clock },
    );
    if (events > 0) this.o.logger.info({ events }, "events kept while cut off sent");
    return sent;
  }

  /**
   * Settles as `p` does, or rejects as soon as the connection is lost: a publish caught in a
   * partition can hang for its whole timeout, and the result belongs on disk meanwhile. Should
   * the abandoned publish land after all, JetStream de-duplicates the replay on its message id.
   */
  private whileOnline<T>(p: Promise<T>): Promise<T> {
    const connectivity = this.connectivity;
    if (!connectivity) return p;
    return new Promise<T>((resolve, reject) => {
      const sub = connectivity.subscribe((s) => {
        if (s.value === "online") return;
        sub.unsubscribe();
        reject(new UnavailableError("the NATS connection was lost while publishing"));
      });
      p.then(
        (v) => {
          sub.unsubscribe();
          resolve(v);
        },
        (err) => {
          sub.unsubscribe();
          reject(err);
        },
      );
    });
  }
}
