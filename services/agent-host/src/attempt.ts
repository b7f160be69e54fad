/**
 * One attempt at a task on this host, from the moment its message is handed to an actor until
 * the message is settled: it keeps the message's ack wait extended (the ticker), owns the
 * director's child-notice subscription and re-reads of children it may have missed, acquires
 * and releases the kind's resources, and reports the outcome: a completed or finally failed
 * attempt is stored through the result sink and acked; a retryable failure with attempts left
 * is given back with backoff. It can also be stopped (term) or yielded (ack) from outside.
 */

import {
  addUsage,
  HEADERS,
  type HeldTask,
  type Holding,
  type Kind,
  type SubtaskSpec,
  type TaskEnvelope,
  type TaskRecord,
  type TaskResult,
  TimeoutError,
  type TypedEvent,
  type Usage,
  type WireErrorBody,
  ZERO_USAGE,
} from "@cadre/protocol";
import {
  type Breaker,
  type Clock,
  type Context,
  call,
  endSpan,
  extractContext,
  type HookEvent,
  heldProof,
  type Logger,
  type NatsConnection,
  OutboxFullError,
  resultProof,
  retry,
  SPAN_ATTR,
  type Span,
  SpanKind,
  sleep,
  startSpan,
  withContext,
  withSpan,
} from "@cadre/runtime";
import type { JsMsg } from "@nats-io/jetstream";
import type { ChildOutcome } from "./behaviours/index.js";
import { ChildWatch } from "./children.js";
import { isRetryableError } from "./machines/index.js";
import type { Stored } from "./result-sink.js";

/** How an attempt ended. */
export type Outcome = { status: "completed"; output: unknown } | { status: "failed"; error: WireErrorBody };

/**
 * Where an attempt is: `admitting` (held, waiting for the supervisor's admission), `running`
 * (handed to its actor), `reporting` (its outcome is being reported), `settled` (its message
 * acked, nak'd or terminated, or left to redeliver).
 */
export type AttemptPhase = "admitting" | "running" | "reporting" | "settled";

/** How a kind's failed attempts are retried (the kind's `retry`, else the configuration's). */
export interface RetryPolicy {
  /** Deliveries of a task at most. */
  attempts: number;
  /** Delay before the second attempt, doubled for each one after. */
  backoffMs: number;
}

/** What every attempt of a host shares. */
export interface AttemptDeps {
  nc: NatsConnection;
  hostId: string;
  clock: Clock;
  logger: Logger;
  ackWaitMs: number;
  requestTimeoutMs: number;
  /** The backstop of a resource acquisition (the supervisor answers TIMEOUT before it). */
  acquireTimeoutMs: number;
  store(result: TaskResult): Promise<Stored>;
  emit(event: TypedEvent): void;
  /** Reads a child's record (a missed notice). */
  readTask(taskId: string): Promise<TaskRecord | undefined>;
  /** The host's delegation circuit breaker. */
  delegation: Breaker;
  runHooks(event: HookEvent, payload: Record<string, unknown>): Promise<void>;
}

/** The actor an attempt runs on. */
export interface AttemptActor {
  actorId: string;
  kind: Kind;
  retry: RetryPolicy;
  /** Hands a child's outcome to the actor's machine. */
  onChild(child: ChildOutcome): void;
}

/** One attempt at one task. */
export class TaskAttempt {
  readonly attempt: number;
  private started: number;
  private current: AttemptPhase = "admitting";
  private ticker: unknown;
  private readonly children: ChildWatch;
  private closed = false;
  /** What the attempt's model calls used, replayed ones included (llm behaviours). */
  private used: Usage = ZERO_USAGE;
  private readonly token: string | undefined;
  /**
   * The attempt's CONSUMER span (`cadre.task <kind>`), child of the span that published the task
   * message (its traceparent header), and the context it is active in: what the attempt calls
   * (resources, delegation, the result) runs in it, so the supervisor's spans of those requests
   * and the result's are its children. Ends when the attempt is settled (runtime tracing.ts).
   */
  private readonly span: Span;
  private readonly ctx: Context;
  /** What failed the attempt, for its span's status. */
  private spanError: unknown;

  constructor(
    private readonly d: AttemptDeps,
    private readonly actor: AttemptActor,
    readonly msg: JsMsg,
    readonly task: TaskEnvelope,
  ) {
    this.attempt = msg.info.deliveryCount;
    // Proves holding in the result, TASK_STARTED and heartbeats (runtime authenticity.ts).
    this.token = msg.headers?.get(HEADERS.taskToken) || undefined;
    this.started = d.clock.now();
    this.children = new ChildWatch({
      nc: d.nc,
      logger: d.logger,
      parentTaskId: task.taskId,
      readTask: d.readTask,
      onChild: (c) => actor.onChild(c),
    });
    const traced = startSpan(
      `cadre.task ${task.kind}`,
      {
        [SPAN_ATTR.messagingSystem]: "nats",
        [SPAN_ATTR.destination]: msg.subject,
        [SPAN_ATTR.operationType]: "process",
        [SPAN_ATTR.workflowId]: task.workflowId,
        [SPAN_ATTR.taskId]: task.taskId,
        [SPAN_ATTR.kind]: task.kind,
        [SPAN_ATTR.epoch]: task.epoch,
        [SPAN_ATTR.attempt]: this.attempt,
        [SPAN_ATTR.hostId]: d.hostId,
        [SPAN_ATTR.actorId]: actor.actorId,
      },
      { parent: extractContext(msg.headers), kind: SpanKind.CONSUMER },
    );
    this.span = traced.span;
    this.ctx = traced.ctx;
    this.tick();
  }

  /** Runs `fn` in the attempt's trace context. */
  inTrace<T>(fn: () => T): T {
    return withContext(this.ctx, fn);
  }

  /** Runs a step of the kind's behaviour (`plan`, `run`, `aggregate`) in a span under the attempt's. */
  inBehaviour<T>(step: string, fn: () => T | Promise<T>): Promise<T> {
    const { behaviour } = this.actor.kind;
    return this.inTrace(() =>
      withSpan(
        `cadre.behaviour ${behaviour.type}`,
        {
          "cadre.behaviour.type": behaviour.type,
          "cadre.behaviour.step": step,
          [SPAN_ATTR.taskId]: this.task.taskId,
          [SPAN_ATTR.actorId]: this.actor.actorId,
        },
        async () => fn(),
      ),
    );
  }

  /** When it was handed to its actor (when it was dispatched, while admission is pending). */
  get startedAt(): number {
    return this.started;
  }

  get phase(): AttemptPhase {
    return this.current;
  }

  /** The attempt as heartbeats list it. */
  held(): HeldTask {
    const { taskId, epoch } = this.task;
    const proof = this.token && heldProof(this.token, taskId, epoch, this.d.hostId);
    return {
      taskId,
      epoch,
      seq: this.msg.seq,
      ...(proof ? { proof } : {}),
      ...(this.current === "admitting" ? { admitting: true } : {}),
    };
  }

  /** This host's proof of holding the task, for the requests it makes about it (none when anonymous). */
  holding(): { holding?: Holding } {
    const { proof } = this.held();
    return proof ? { holding: { epoch: this.task.epoch, hostId: this.d.hostId, proof } } : {};
  }

  /** Admitted: announces TASK_STARTED. False when the task's deadline has passed (then report TIMEOUT). */
  start(): boolean {
    this.current = "running";
    this.started = this.d.clock.now();
    const { task } = this;
    this.d.emit({
      type: "TASK_STARTED",
      category: "task",
      scope: task.workflowId,
      // epoch and seq: what the supervisor needs to reassign it should this host be lost before
      // its next heartbeat lists the task.
      data: {
        ...this.held(),
        kind: task.kind,
        attempt: this.attempt,
        hostId: this.d.hostId,
        actorId: this.actor.actorId,
      },
    });
    return task.deadline === null || this.d.clock.now() <= task.deadline;
  }

  /** The outcome of a task whose deadline passed before it started. */
  expired(): Outcome {
    const error = new TimeoutError(`task ${this.task.taskId} (deadline passed before it started)`, 0).toWire();
    return { status: "failed", error: { ...error, retryable: false } };
  }

  /**
   * Acquires the resources the kind lists, in order, from the supervisor (resources.ts): each
   * request is answered when granted, or refused (TIMEOUT, DEADLOCK_VICTIM: both retryable, so
   * the attempt fails and is redelivered after a backoff). Held until the attempt is reported.
   */
  acquire(signal: AbortSignal): Promise<void> {
    return this.inTrace(() => this.acquireAll(signal));
  }

  private async acquireAll(signal: AbortSignal): Promise<void> {
    const { kind } = this.actor;
    const gap = kind.behaviour.type === "script" ? kind.behaviour.acquireGapMs : 0;
    const { task } = this;
    for (const resource of kind.acquire) {
      signal.throwIfAborted();
      await call(
        this.d.nc,
        "sup.acquire",
        { taskId: task.taskId, teamId: task.teamId, resource, priority: task.priority, ...this.holding() },
        { sender: this.d.hostId, cid: task.workflowId, timeoutMs: this.d.acquireTimeoutMs },
      );
      // Granted after the attempt was stopped: its release has gone already, so let go again.
      if (signal.aborted) this.releaseResources();
      if (gap > 0) await sleep(this.d.clock, gap, signal);
    }
    signal.throwIfAborted();
  }

  /** Asks the supervisor to delegate; child notices start flowing to the actor before the call. */
  delegate(subtasks: SubtaskSpec[], offset = 0): Promise<string[]> {
    return this.inTrace(() => this.delegateIn(subtasks, offset));
  }

  /**
   * Delegates one subtask, as child number `index` of the task, and waits for its outcome (an
   * llm director's tool call). Rejects with the supervisor's refusal (CIRCULAR_DELEGATION...).
   */
  async delegateOne(subtask: SubtaskSpec, index: number, signal: AbortSignal): Promise<ChildOutcome> {
    const [taskId] = await this.delegate([subtask], index);
    if (!taskId) throw new Error("the supervisor created no subtask");
    return this.children.outcome(taskId, signal);
  }

  /** Adds what a model call used to the attempt's usage (reported with its result). */
  addUsage(u: Usage): void {
    this.used = addUsage(this.used, u);
  }

  private async delegateIn(subtasks: SubtaskSpec[], offset: number): Promise<string[]> {
    const { task } = this;
    await this.d.runHooks("onDelegation", { hostId: this.d.hostId, taskId: task.taskId, subtasks });
    this.children.listen();
    // Through the delegation breaker: while the supervisor keeps failing, directors wait for
    // its trial instead of each sending requests into the void (retry waits for the trial).
    const reply = await retry(
      () =>
        this.d.delegation.call(() =>
          call(
            this.d.nc,
            "sup.delegate",
            { parent: task, subtasks, offset, ...this.holding() },
            {
              sender: this.d.hostId,
              cid: task.workflowId,
              timeoutMs: this.d.requestTimeoutMs,
              // Answered by the holder of the workflow's partition (absent: a task from before partitions, 0).
              partition: task.partition ?? 0,
            },
          ),
        ),
      { maxAttempts: 8, baseMs: 100, maxMs: 2000, clock: this.d.clock },
    );
    this.children.add(reply.taskIds);
    // Children created by an earlier attempt may have finished before we subscribed.
    if (reply.existing.length > 0) await this.recheckChildren();
    return reply.taskIds;
  }

  /** Reads children that finished but whose notice this host missed (restart, reconnect). */
  async recheckChildren(): Promise<void> {
    if (!this.closed) await this.children.recheck();
  }

  /**
   * Reports the attempt. A completed attempt stores its result (message id per attempt) and
   * acks; a failed one is retried by redelivery with backoff while attempts remain and its
   * error is retryable; otherwise its failure is stored as the task's result and acked, so it
   * is never redelivered. Does nothing once the attempt was stopped or yielded.
   */
  report(outcome: Outcome): Promise<void> {
    return this.inTrace(() => this.reportIn(outcome));
  }

  private async reportIn(outcome: Outcome): Promise<void> {
    if (this.current === "reporting" || this.current === "settled") return;
    this.current = "reporting";
    const { task, attempt } = this;
    this.span.setAttribute("cadre.task.outcome", outcome.status);
    if (outcome.status === "failed") {
      this.span.setAttribute("cadre.error.code", outcome.error.code);
      this.spanError = outcome.error;
    }
    this.releaseResources();
    // After the fact: nothing left to guard, so even a critical hook's failure is only logged.
    this.d
      .runHooks(outcome.status === "completed" ? "afterTask" : "onTaskFailed", {
        hostId: this.d.hostId,
        actorId: this.actor.actorId,
        taskId: task.taskId,
        kind: task.kind,
        attempt,
        status: outcome.status,
      })
      .catch((err) => this.d.logger.warn({ err, taskId: task.taskId }, "after-task hooks failed"));
    try {
      if (outcome.status === "failed" && isRetryableError(outcome.error) && attempt < this.actor.retry.attempts) {
        const delay = this.retryDelay();
        this.msg.nak(delay);
        this.span.setAttribute("cadre.task.retry_in_ms", delay);
        this.d.emit({
          type: "TASK_ATTEMPT_FAILED",
          category: "task",
          scope: task.workflowId,
          data: {
            taskId: task.taskId,
            kind: task.kind,
            attempt,
            code: outcome.error.code,
            message: outcome.error.message.slice(0, 300),
            retryInMs: delay,
            hostId: this.d.hostId,
          },
        });
        return;
      }
      const result: TaskResult = {
        taskId: task.taskId,
        workflowId: task.workflowId,
        epoch: task.epoch,
        ...(task.partition === undefined ? {} : { partition: task.partition }),
        attempt,
        hostId: this.d.hostId,
        actorId: this.actor.actorId,
        status: outcome.status,
        ...(outcome.status === "completed" ? { output: outcome.output } : { error: outcome.error }),
        ...(this.used.requests > 0 ? { usage: this.used } : {}),
        startedAt: this.startedAt,
        finishedAt: this.d.clock.now(),
      };
      await this.d.store(this.token ? { ...result, proof: resultProof(this.token, result) } : result);
      // The result is stored (in JetStream or the outbox), so the ack need not be confirmed: a
      // lost or late ack only means a redelivery whose result is recorded as a duplicate.
      this.msg.ack();
    } catch (err) {
      // Not acked: JetStream redelivers the task after its ack wait.
      this.spanError = err;
      this.d.logger.error(
        { err, taskId: task.taskId },
        err instanceof OutboxFullError
          ? "outbox full: result dropped; the task will be redelivered"
          : "attempt not reported; the task will be redelivered",
      );
    } finally {
      this.current = "settled";
      this.close();
    }
  }

  /**
   * Stops the attempt from outside: `stop` (its workflow was cancelled) terminates the message
   * so it is never redelivered; `yield` (paused with `now`) acks it, and the supervisor
   * re-publishes the task at a new epoch on resume. Nothing is reported either way. False when
   * the attempt's outcome is already being reported (that report goes on).
   */
  abort(op: "stop" | "yield", reason = ""): boolean {
    if (this.current === "reporting" || this.current === "settled") return false;
    this.current = "settled";
    this.span.setAttribute("cadre.task.stopped", op);
    // No reason on the TERM: nats-server 2.9 does not read one and ignores the whole ack.
    if (op === "stop") this.msg.term();
    else this.msg.ack();
    this.releaseResources();
    this.close();
    const { task } = this;
    this.d.emit({
      type: "TASK_ATTEMPT_STOPPED",
      category: "task",
      scope: task.workflowId,
      data: {
        taskId: task.taskId,
        epoch: task.epoch,
        attempt: this.attempt,
        op,
        reason: reason.slice(0, 300),
        hostId: this.d.hostId,
        actorId: this.actor.actorId,
      },
    });
    return true;
  }

  /**
   * Settles the message without running or reporting anything: `ack` (parked by admission),
   * `term` (cancelled), `nak` (given back at once: the host stops, the actor is retired) or
   * `retry` (given back after the retry backoff: admission could not be asked).
   */
  settle(how: "ack" | "term" | "nak" | "retry"): void {
    if (this.current === "settled") return;
    if (this.current === "reporting") {
      // The report settles it; only let go of the timers.
      this.close();
      return;
    }
    this.current = "settled";
    this.span.setAttribute("cadre.task.settled", how);
    if (how === "ack") this.msg.ack();
    else if (how === "term") this.msg.term();
    else if (how === "nak") this.msg.nak();
    else this.msg.nak(this.retryDelay());
    this.releaseResources();
    this.close();
  }

  /** Stops the ticker and the child subscription, and ends the attempt's span. Idempotent. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.d.clock.clearTimeout(this.ticker);
    this.children.close();
    endSpan(this.span, this.spanError);
  }

  /** The redelivery delay after this attempt: the backoff doubled per attempt before it. */
  retryDelay(): number {
    return this.actor.retry.backoffMs * 2 ** (this.attempt - 1);
  }

  /** Every third of the ack wait: tell JetStream the task is being worked on; re-read children. */
  private tick(): void {
    this.ticker = this.d.clock.setTimeout(
      () => {
        if (this.closed) return;
        this.msg.working();
        void this.recheckChildren();
        this.tick();
      },
      Math.max(50, Math.floor(this.d.ackWaitMs / 3)),
    );
  }

  /** Lets go of what the attempt acquired (best effort: the supervisor also releases on the result). */
  private releaseResources(): void {
    if (this.actor.kind.acquire.length === 0) return;
    const { taskId, workflowId } = this.task;
    this.inTrace(() =>
      call(
        this.d.nc,
        "sup.release",
        { taskId, ...this.holding() },
        { sender: this.d.hostId, cid: workflowId, timeoutMs: this.d.requestTimeoutMs },
      ),
    ).catch((err) => this.d.logger.warn({ err, taskId }, "resources not released; the result will"));
  }
}
