/**
 * The results stream, as the supervisors consume it: one durable per partition, consumed by
 * the partition's holder (partitions.ts); results of one workflow are applied in arrival order
 * (results.ts), workflows in parallel; a frozen workflow's results wait in the stream. A task
 * JetStream delivered `max_deliver` times without an ack fails for good with the reason (the
 * advisory says which message): the lease holder watches for those.
 */

import {
  type Config,
  decodeAs,
  HEADERS,
  resultsConsumer,
  STREAMS,
  subjects,
  type TaskResult,
  type TypedEvent,
  UnavailableError,
} from "@cadre/protocol";
import {
  type Clock,
  extractContext,
  type Logger,
  type NatsConnection,
  PULL_OPTIONS,
  resultProof,
  SPAN_ATTR,
  SpanKind,
  type Subscription,
  sameProof,
  taskToken,
  verifyResult,
  withSpan,
} from "@cadre/runtime";
import {
  AckPolicy,
  type ConsumerMessages,
  DeliverPolicy,
  type JetStreamClient,
  type JetStreamManager,
  type JsMsg,
} from "@nats-io/jetstream";
import { z } from "zod";
import type { ApplyOutcome } from "./results.js";

const nanos = (ms: number): number => ms * 1_000_000;

type RejectReason = "unsigned" | "bad-signature" | "unknown-host" | "not-holder";

/** Ack wait of the results consumer: what a dead supervisor fetched comes back after this. */
const RESULTS_ACK_WAIT_MS = 5000;

/** JetStream's advisory when a message was delivered max_deliver times without an ack. */
const MaxDeliveriesAdvisory = z.object({
  stream: z.string(),
  consumer: z.string(),
  stream_seq: z.number(),
  deliveries: z.number(),
});

/** Dependencies of the {@link ResultStream}. */
export interface ResultStreamDeps {
  nc: NatsConnection;
  js: JetStreamClient;
  jsm: JetStreamManager;
  config: Config;
  clock: Clock;
  logger: Logger;
  sender: string;
  /** `redelivered`: JetStream delivered this message before (see ResultApplier.apply). */
  apply: (result: TaskResult, opts?: { redelivered?: boolean }) => Promise<ApplyOutcome>;
  frozen: (workflowId: string) => boolean;
  /**
   * Derives task tokens (runtime authenticity.ts). Given (an authenticated deployment: this
   * supervisor has an identity), a result must be signed by the host it names and prove that
   * host held the task at its epoch. Anonymous deployments take results as they come.
   */
  taskKey: Buffer | undefined;
  /** A host's public key, from the record only that host may write. */
  hostKey: (hostId: string) => Promise<string | undefined>;
  emit: (event: TypedEvent) => void;
  /** After a result was applied or classified; the message is acked once this resolves. */
  applied: (result: TaskResult, outcome: ApplyOutcome, replayBatch: string | undefined) => Promise<void>;
}

/** Consumes the results of the partitions this supervisor holds. */
export class ResultStream {
  /** Results rejected as not authentic since this supervisor started. */
  rejected = 0;
  /** Hosts' public keys as their records give them (see forgetHost). */
  private readonly hostKeys = new Map<string, string>();
  /** The consumers of the partitions held, by partition. */
  private readonly partitions = new Map<number, ConsumerMessages>();
  private advisories?: Subscription;
  private readonly perWorkflow = new Map<string, Promise<void>>();

  constructor(private readonly d: ResultStreamDeps) {}

  /** Starts applying a partition's results (this supervisor took it). */
  async startPartition(partition: number): Promise<void> {
    if (this.partitions.has(partition)) return;
    const name = resultsConsumer(partition);
    const cfg = {
      durable_name: name,
      ack_policy: AckPolicy.Explicit,
      deliver_policy: DeliverPolicy.All,
      // Applying a result takes milliseconds; what a dead supervisor had fetched but not acked
      // comes back to its successor after this (it was 30 s, which held a restarted
      // supervisor's workflows for 30 s in the chaos test). Applying twice is harmless.
      ack_wait: nanos(RESULTS_ACK_WAIT_MS),
      filter_subject: subjects.partitionResults(partition),
      max_ack_pending: 10_000,
    };
    try {
      await this.d.jsm.consumers.add(STREAMS.results, cfg);
    } catch (err) {
      // Created by an earlier version with other settings: bring it up to date.
      if (!(err as Error).message.includes("already exists")) throw err;
      await this.d.jsm.consumers.update(STREAMS.results, name, { ack_wait: cfg.ack_wait });
    }
    const consumer = await this.d.js.consumers.get(STREAMS.results, name);
    const messages = await consumer.consume({ max_messages: 256, ...PULL_OPTIONS });
    this.partitions.set(partition, messages);
    void (async () => {
      for await (const m of messages) this.onResult(m);
    })().catch((err) => this.d.logger.error({ err, partition }, "results consumer stopped"));
  }

  /** Stops applying a partition's results (another supervisor holds it now, or this one is cut off). */
  stopPartition(partition: number): void {
    this.partitions.get(partition)?.stop();
    this.partitions.delete(partition);
  }

  /** The partitions whose results this supervisor applies. */
  get held(): number[] {
    return [...this.partitions.keys()].sort((a, b) => a - b);
  }

  /** Watches for tasks delivered `max_deliver` times (the lease holder does). */
  watchMaxDeliveries(): void {
    this.advisories ??= this.d.nc.subscribe(`$JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES.${STREAMS.tasks}.*`, {
      callback: (_err, m) => void this.onMaxDeliveries(m.data),
    });
  }

  stopMaxDeliveries(): void {
    this.advisories?.unsubscribe();
    this.advisories = undefined;
  }

  /** Stops consuming every partition and the advisories. */
  stop(): void {
    for (const p of [...this.partitions.keys()]) this.stopPartition(p);
    this.stopMaxDeliveries();
  }

  /** Resolves when every result being applied is done. */
  async idle(): Promise<void> {
    await Promise.allSettled([...this.perWorkflow.values()]);
  }

  private onResult(m: JsMsg): void {
    let result: TaskResult;
    let sender: string;
    try {
      const msg = decodeAs(m.data, "result");
      result = msg.body;
      sender = msg.sender;
    } catch (err) {
      this.d.logger.error({ err, seq: m.seq }, "undecodable result dropped");
      m.term();
      return;
    }
    const wf = result.workflowId;
    if (this.d.frozen(wf)) {
      // Data protection mode: the result waits in the stream, applied once the workflow is unfrozen.
      m.nak(1000);
      return;
    }
    const prev = this.perWorkflow.get(wf) ?? Promise.resolve();
    const next = prev.then(async () => {
      try {
        const reason = await this.authenticate(result);
        if (reason) {
          this.reject(result, sender, reason);
          m.term();
          return;
        }
        // In the task's trace: the result carries its attempt's traceparent (runtime tracing.ts).
        const outcome = await withSpan(
          "cadre.result.apply",
          {
            [SPAN_ATTR.messagingSystem]: "nats",
            [SPAN_ATTR.destination]: m.subject,
            [SPAN_ATTR.operationType]: "process",
            [SPAN_ATTR.workflowId]: result.workflowId,
            [SPAN_ATTR.taskId]: result.taskId,
            [SPAN_ATTR.epoch]: result.epoch,
            [SPAN_ATTR.attempt]: result.attempt,
            [SPAN_ATTR.hostId]: result.hostId,
            "cadre.task.status": result.status,
          },
          async (span) => {
            const o = await this.d.apply(result, { redelivered: m.info.redelivered });
            span.setAttribute("cadre.result.outcome", o);
            return o;
          },
          { parent: extractContext(m.headers), kind: SpanKind.CONSUMER },
        );
        this.d.logger.debug({ taskId: result.taskId, attempt: result.attempt, outcome }, "result");
        const replay = result.offline ? m.headers?.get(HEADERS.replay) || "unknown" : undefined;
        await this.d.applied(result, outcome, replay);
        m.ack();
      } catch (err) {
        this.d.logger.error({ err, taskId: result.taskId }, "result not applied; will retry");
        m.nak(1000);
      }
    });
    this.perWorkflow.set(wf, next);
    void next.then(() => {
      if (this.perWorkflow.get(wf) === next) this.perWorkflow.delete(wf);
    });
  }

  /** A restarted host may come back with another key (rotated): its record is read again. */
  forgetHost(hostId: string): void {
    this.hostKeys.delete(hostId);
  }

  /**
   * Why a result does not prove it came from the host it names, holding the task at that
   * epoch, or null when it does.
   */
  private async authenticate(r: TaskResult): Promise<RejectReason | null> {
    const { taskKey } = this.d;
    if (!taskKey) return null;
    if (!r.sig) return "unsigned";
    let key = this.hostKeys.get(r.hostId);
    if (!key) {
      key = await this.d.hostKey(r.hostId);
      if (!key) return "unknown-host";
      this.hostKeys.set(r.hostId, key);
    }
    if (!verifyResult(r, key)) return "bad-signature";
    // Signed by the host it names; only a host a delivery of this epoch reached has the token.
    return sameProof(r.proof, resultProof(taskToken(taskKey, r.taskId, r.epoch), r)) ? null : "not-holder";
  }

  /** Counted, logged and announced; never applied. */
  private reject(r: TaskResult, sender: string, reason: RejectReason): void {
    this.rejected++;
    this.d.logger.warn({ taskId: r.taskId, claimedHostId: r.hostId, sender, reason }, "result rejected: not authentic");
    this.d.emit({
      type: "RESULT_REJECTED",
      category: "task",
      scope: r.workflowId,
      data: { taskId: r.taskId, epoch: r.epoch, attempt: r.attempt, claimedHostId: r.hostId, sender, reason },
    });
  }

  /** A task delivered max_deliver times without an ack fails for good, with the reason. */
  private async onMaxDeliveries(data: Uint8Array): Promise<void> {
    try {
      const adv = MaxDeliveriesAdvisory.parse(JSON.parse(new TextDecoder().decode(data)));
      const stored = await this.d.jsm.streams.getMessage(STREAMS.tasks, { seq: adv.stream_seq });
      if (!stored) return;
      const task = decodeAs(stored.data, "task").body;
      const now = this.d.clock.now();
      await this.d.apply({
        taskId: task.taskId,
        workflowId: task.workflowId,
        epoch: task.epoch,
        attempt: adv.deliveries,
        hostId: this.d.sender,
        actorId: this.d.sender,
        status: "failed",
        error: new UnavailableError(
          `task ${task.taskId} was delivered ${adv.deliveries} times (its kind's retry.attempts or tasks.maxDeliver) and no attempt finished; the hosts that took it stopped or stalled`,
          { deliveries: adv.deliveries },
        ).toWire(),
        startedAt: now,
        finishedAt: now,
      });
      await this.d.jsm.streams.deleteMessage(STREAMS.tasks, adv.stream_seq);
    } catch (err) {
      this.d.logger.error({ err }, "max-deliveries advisory not handled");
    }
  }
}
