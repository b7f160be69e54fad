/**
 * The agent-host: runs actors (XState machines) for the kinds the supervisor places on it,
 * pulls their tasks from JetStream, keeps a held task's ack wait extended while its actor
 * works, publishes results with a message id per attempt, and sends heartbeats.
 */

import os from "node:os";
import { join } from "node:path";
import {
  type ActorSpec,
  type CadreEvent,
  type Config,
  decodeAs,
  encode,
  fromWire,
  HEADERS,
  type HeldTask,
  NotFoundError,
  newIncarnation,
  ResourceExhaustedError,
  randomId,
  resultMessageId,
  STREAMS,
  type SubtaskSpec,
  subjects,
  type TaskEnvelope,
  type TaskRecord,
  TaskRecordSchema,
  TimeoutError,
  taskConsumer,
  UnavailableError,
  type WireErrorBody,
} from "@cadre/protocol";
import {
  Breakers,
  type Clock,
  closeBus,
  connectNats,
  type EventBus,
  ensureInfrastructure,
  eventBusFor,
  type HookEvent,
  HookRunner,
  headers,
  isTransient,
  type Logger,
  type NatsConnection,
  Outbox,
  OutboxFullError,
  call,
  OperationServer,
  retry,
  StateStore,
  StateValueSchema,
  type Subscription,
  sleep,
  systemClock,
  TxStore,
  workflowState,
} from "@cadre/runtime";
import { type JetStreamClient, type JsMsg, jetstream } from "@nats-io/jetstream";
import type { KV } from "@nats-io/kv";
import { type Actor, type AnyActorRef, createActor, fromPromise } from "xstate";
import { type Behaviour, type ChildOutcome, createBehaviour } from "./behaviours/index.js";
import { connectivityMachine } from "./connectivity.js";
import { agentMachine, directorMachine } from "./machines/index.js";
import { KindPuller, type PullerHost } from "./puller.js";

/** Options of {@link AgentHost.start}. */
export interface AgentHostOptions {
  config: Config;
  logger: Logger;
  /** @default "host-<random>" */
  hostId?: string;
  /** @default systemClock */
  clock?: Clock;
}

type Outcome = { status: "completed"; output: unknown } | { status: "failed"; error: WireErrorBody };

interface Held {
  msg: JsMsg;
  task: TaskEnvelope;
  attempt: number;
  startedAt: number;
  ticker: NodeJS.Timeout;
  childSub?: Subscription;
  childIds?: string[];
  seenChildren: Set<string>;
}

interface HostedActor {
  spec: ActorSpec;
  ref: AnyActorRef;
  behaviour: Behaviour;
  held?: Held;
  /** Quarantined by the supervisor: takes no tasks (its machine enters `quarantined` once idle). */
  quarantined?: boolean;
}

const key = (teamId: string, kind: string) => `${teamId}/${kind}`;
/** KV reads in flight at once when a director re-reads its children. */
const RECHECK_CONCURRENCY = 16;

/** A running agent-host. */
export class AgentHost implements PullerHost {
  readonly hostId: string;
  readonly incarnation = newIncarnation();
  private readonly config: Config;
  private readonly logger: Logger;
  private readonly clock: Clock;
  private nc!: NatsConnection;
  private bus!: EventBus;
  /** Circuit breakers: delegation requests, state writes, event publishes. */
  private breakers!: Breakers;
  private js!: JetStreamClient;
  private tasks!: StateStore<TaskRecord>;
  /** Workflow state behaviours share, and the registry that says which workflows are frozen. */
  private state!: TxStore<unknown>;
  private registry!: KV;
  private readonly actors = new Map<string, HostedActor>();
  private readonly pullers = new Map<string, KindPuller>();
  private outbox!: Outbox;
  /** Events made while cut off; replayed after the results (no reconciliation counts them). */
  private eventOutbox!: Outbox;
  private connectivity!: Actor<typeof connectivityMachine>;
  private readonly subs: Subscription[] = [];
  private server?: OperationServer;
  private heartbeatTimer?: NodeJS.Timeout;
  private hooks!: HookRunner;
  private seq = 0;
  /** The held-task list as last sent, to send it only when it changed (and every 10th beat). */
  private lastHeld = "";

  private constructor(opts: AgentHostOptions) {
    this.config = opts.config;
    this.logger = opts.logger;
    this.clock = opts.clock ?? systemClock;
    this.hostId = opts.hostId ?? `host-${randomId(6)}`;
  }

  /** Connects, registers the host and starts heartbeats and the control endpoint. */
  static async start(opts: AgentHostOptions): Promise<AgentHost> {
    const h = new AgentHost(opts);
    await h.init();
    return h;
  }

  private async init(): Promise<void> {
    const ob = this.config.host.outbox;
    this.outbox = await Outbox.open({ path: join(ob.dir, `${this.hostId}.log`), maxBytes: ob.maxBytes });
    this.eventOutbox = await Outbox.open({ path: join(ob.dir, `${this.hostId}.events.log`), maxBytes: ob.maxBytes });
    for (const o of [this.outbox, this.eventOutbox]) {
      if (o.openReport.tornBytes > 0) {
        this.logger.warn(o.openReport, "outbox: a torn last record was cut off (a crash mid-write)");
      }
    }
    // Hooks first: a bad definition fails the start, before anything is connected.
    this.hooks = new HookRunner({ clock: this.clock, logger: this.logger });
    for (const hook of this.config.host.hooks) this.hooks.register(hook);
    this.nc = await connectNats(this.config.natsUrl, this.hostId, this.logger);
    this.breakers = new Breakers(this.config.breakers, {
      clock: this.clock,
      source: this.hostId,
      logger: this.logger,
      emit: (e) => this.emit(e),
    });
    this.bus = eventBusFor(
      this.nc,
      this.hostId,
      this.config,
      this.logger,
      this.clock,
      this.breakers.get("event_publish"),
    );
    const buckets = await ensureInfrastructure(this.nc, this.config);
    this.js = jetstream(this.nc);
    this.tasks = new StateStore(buckets.tasks, TaskRecordSchema, "task", {
      breaker: this.breakers.get("state_update"),
    });
    this.registry = buckets.registry;
    // Deadlines of transactions are compared across processes: wall clock, not the test clock.
    this.state = new TxStore(
      buckets.state,
      StateValueSchema,
      {
        writer: this.hostId,
        txnTimeoutMs: this.config.storage.txnTimeoutMs,
        breaker: this.breakers.get("state_update"),
        onCorruption: (r) => {
          this.logger.error(r, `damaged state value ${r.restoredAs === null ? "not restored" : "restored"}`);
          this.emit({ type: "STATE_CORRUPTED", category: "state", scope: "state", data: { ...r } });
        },
      },
      "workflow state",
    );
    // Retried: on a fresh server, a bucket another process has just created can answer "no
    // responders" for a moment.
    const record = JSON.stringify({
      hostId: this.hostId,
      incarnation: this.incarnation,
      startedAt: this.clock.now(),
      maxActors: this.config.host.maxActors,
    });
    await retry(() => buckets.registry.put(`host.${this.hostId}`, record), {
      isRetryable: isTransient,
      maxAttempts: 10,
      baseMs: 50,
      maxMs: 1000,
      clock: this.clock,
    });
    this.server = await OperationServer.start(this.nc, {
      name: "cadre-agent-host",
      id: this.hostId,
      hostId: this.hostId,
      description: "runs actors and their tasks",
      logger: this.logger,
      metadata: { incarnation: this.incarnation },
    });
    this.server.serve("host.spawn", async ({ actors }) => ({ actorIds: await this.spawn(actors) }));
    this.server.serve("host.actor", async (body) => this.actorControl(body));
    // Heartbeats are a timer and a core publish: nothing on the work path can delay them
    // except a blocked event loop, which is exactly what they should reveal.
    this.heartbeat();
    this.heartbeatTimer = setInterval(() => this.heartbeat(), this.config.heartbeat.intervalMs);
    this.heartbeatTimer.unref();
    this.connectivity = createActor(
      connectivityMachine.provide({ actors: { replay: fromPromise(() => this.replayOutbox()) } }),
    );
    this.connectivity.subscribe((s) => this.logger.info({ connectivity: s.value }, `connectivity: ${String(s.value)}`));
    this.connectivity.start();
    void this.followConnection();
    if (this.outbox.size().records + this.eventOutbox.size().records > 0) {
      this.connectivity.send({ type: "RECONNECTED" });
    }
    this.logger.info({ hostId: this.hostId, incarnation: this.incarnation }, "agent-host registered");
  }

  /** Feeds the NATS client's status to the connectivity machine. */
  private async followConnection(): Promise<void> {
    for await (const s of this.nc.status()) {
      if (s.type === "disconnect" || s.type === "staleConnection") this.connectivity.send({ type: "DISCONNECTED" });
      else if (s.type === "reconnect") this.connectivity.send({ type: "RECONNECTED" });
    }
  }

  /** Sends what the outbox holds, in order, at the configured rate; then says how it went. */
  private async replayOutbox(): Promise<number> {
    const started = this.clock.now();
    const pending = this.outbox.size().records;
    let deduplicated = 0;
    // Every record of this replay says which replay it belongs to and how many it has, so the
    // supervisor knows when it has classified them all (the header travels with the result).
    const batch = `${randomId(8)}:${pending}`;
    const sent = await this.outbox.replay(
      async (r) => {
        const h = headers();
        h.set(HEADERS.replay, batch);
        const ack = await this.js.publish(r.subject, r.data, {
          msgID: r.key,
          headers: h,
          timeout: this.config.requestTimeoutMs,
        });
        // JetStream had it already (published before the ack was lost): it will not be delivered again.
        if (ack.duplicate) deduplicated++;
      },
      { ratePerSecond: this.config.host.outbox.replayRatePerSec, clock: this.clock },
    );
    if (pending > 0) {
      this.emit({
        type: "OUTBOX_REPLAYED",
        category: "host",
        scope: this.hostId,
        data: { hostId: this.hostId, batch, replayed: sent, deduplicated, ms: this.clock.now() - started },
      });
      this.logger.info({ replayed: sent, ms: this.clock.now() - started }, "outbox replayed");
    }
    const events = await this.eventOutbox.replay(
      (r) => this.js.publish(r.subject, r.data, { msgID: r.key, timeout: this.config.requestTimeoutMs }).then(() => {}),
      { ratePerSecond: this.config.host.outbox.replayRatePerSec, clock: this.clock },
    );
    if (events > 0) this.logger.info({ events }, "events kept while cut off sent");
    return sent;
  }

  /** Connected to NATS, or trying to reconnect (a closed connection does not come back). */
  healthy(): boolean {
    return !this.nc.isClosed();
  }

  /** Stops pulling, stops actors and closes the connection. Held tasks go back to the queue at once. */
  async stop(): Promise<void> {
    clearInterval(this.heartbeatTimer);
    await this.runHooks("onTerminate", { hostId: this.hostId }).catch((err) =>
      this.logger.warn({ err }, "terminate hooks failed"),
    );
    this.hooks?.stop();
    await Promise.all([...this.pullers.values()].map((p) => p.stop()));
    for (const a of this.actors.values()) {
      if (a.held) {
        a.held.msg.nak();
        this.release(a);
      }
      a.ref.stop();
    }
    for (const s of this.subs) s.unsubscribe();
    await this.server?.stop();
    this.connectivity?.stop();
    if (this.bus) await closeBus(this.bus);
    this.breakers?.stop();
    await this.nc.drain();
    await this.outbox?.close();
    await this.eventOutbox?.close();
  }

  private heartbeat(): void {
    const held: HeldTask[] = [];
    for (const a of this.actors.values()) {
      if (a.held) held.push({ taskId: a.held.task.taskId, epoch: a.held.task.epoch, seq: a.held.msg.seq });
    }
    const heldKey = held.map((t) => `${t.taskId}:${t.epoch}`).join(",");
    const sendHeld = heldKey !== this.lastHeld || this.seq % 10 === 0;
    this.lastHeld = heldKey;
    try {
      this.nc.publish(
        subjects.heartbeat(this.hostId),
        encode(
          "heartbeat",
          {
            hostId: this.hostId,
            incarnation: this.incarnation,
            seq: this.seq++,
            actors: this.actors.size,
            busy: held.length,
            load: (os.loadavg()[0] ?? 0) / Math.max(1, os.availableParallelism()),
            heapUsedMb: Math.round(process.memoryUsage().heapUsed / 104_857.6) / 10,
            eventQueue: this.bus.stats().queued,
            circuits: this.breakers.notClosed(),
            ...(sendHeld ? { held } : {}),
          },
          { sender: this.hostId },
        ),
      );
    } catch (err) {
      this.logger.debug({ err }, "heartbeat not sent");
    }
  }

  /**
   * Publishes an event; while the connection is down it goes to the event outbox instead (on
   * disk, so a host that dies cut off still delivers it when it starts again). A full outbox
   * drops the event, with a warning.
   */
  private emit(event: CadreEvent): void {
    if (this.connectivity?.getSnapshot().value !== "offline") {
      this.bus.emit(event);
      return;
    }
    const entry = {
      subject: subjects.event(event.category, event.scope),
      key: `${this.hostId}:${randomId(12)}`,
      data: encode("event", event, { sender: this.hostId }),
    };
    this.eventOutbox.append(entry).then(
      () => {
        this.logger.info(
          { event: event.type, outboxEvents: this.eventOutbox.size().records },
          "event kept in the outbox",
        );
        if (this.connectivity.getSnapshot().value === "online") this.connectivity.send({ type: "RECONNECTED" });
      },
      (err) => this.logger.warn({ err, event: event.type }, "event dropped: not published and not kept"),
    );
  }

  // --- actors -------------------------------------------------------------------------------

  private async spawn(specs: ActorSpec[]): Promise<string[]> {
    const fresh = specs.filter((s) => !this.actors.has(s.actorId));
    if (this.actors.size + fresh.length > this.config.host.maxActors) {
      throw new ResourceExhaustedError(`actors on host ${this.hostId}`, this.config.host.maxActors, this.actors.size);
    }
    for (const spec of fresh) {
      await this.runHooks("onSpawn", {
        hostId: this.hostId,
        actorId: spec.actorId,
        teamId: spec.teamId,
        kind: spec.kindName,
      });
      const hosted: HostedActor = {
        spec,
        behaviour: createBehaviour(spec.kind, { replacement: spec.inherit !== undefined }),
        ref: undefined as unknown as AnyActorRef,
      };
      hosted.ref = this.createRef(hosted);
      // The machine decides when the actor is free again: releasing earlier (say, when the
      // report call returns) would let a task reach a machine still in `reporting`, which
      // ignores it, and that task would then be held for ever.
      hosted.ref.subscribe((snapshot: { value: unknown }) => {
        if (snapshot.value !== "idle") return;
        if (hosted.held) this.release(hosted);
        if (hosted.quarantined) hosted.ref.send({ type: "QUARANTINE" });
      });
      hosted.ref.start();
      this.actors.set(spec.actorId, hosted);
      const k = key(spec.teamId, spec.kindName);
      if (!this.pullers.has(k)) {
        const consumer = await this.js.consumers.get(STREAMS.tasks, taskConsumer(spec.teamId, spec.kindName));
        const p = new KindPuller(this, spec.teamId, spec.kindName, consumer, this.logger);
        this.pullers.set(k, p);
        p.start();
      } else {
        this.pullers.get(k)?.wake();
      }
      this.logger.info(
        { actorId: spec.actorId, kind: spec.kindName, teamId: spec.teamId, inheritedFrom: spec.inherit?.fromActorId },
        "actor spawned",
      );
    }
    return specs.map((s) => s.actorId);
  }

  /** The actor's machine with this host's effects plugged in. */
  private createRef(h: HostedActor): AnyActorRef {
    const input = {
      actorId: h.spec.actorId,
      kindName: h.spec.kindName,
      attemptTimeoutMs: this.config.tasks.attemptTimeoutMs,
      ...(h.spec.inherit ? { inherited: h.spec.inherit } : {}),
    };
    const ctx = (task: TaskEnvelope, attempt: number, signal: AbortSignal) => ({
      task,
      attempt,
      clock: this.clock,
      signal,
      state: workflowState(this.state, this.registry, task.workflowId),
    });
    const report = fromPromise<void, { task: TaskEnvelope; attempt: number; outcome: Outcome }>(({ input }) =>
      this.report(h, input.task, input.attempt, input.outcome),
    );
    if (h.spec.kind.role === "agent") {
      const machine = agentMachine.provide({
        actors: {
          work: fromPromise<unknown, { task: TaskEnvelope; attempt: number }>(async ({ input, signal }) => {
            await this.beforeTask(h, input.task, input.attempt);
            await this.acquireAll(h, input.task, signal);
            return h.behaviour.run(ctx(input.task, input.attempt, signal), []);
          }),
          report,
        },
      });
      return createActor(machine, { input, clock: this.clock }) as unknown as AnyActorRef;
    }
    const machine = directorMachine.provide({
      actors: {
        plan: fromPromise<SubtaskSpec[], { task: TaskEnvelope; attempt: number }>(async ({ input, signal }) => {
          await this.beforeTask(h, input.task, input.attempt);
          await this.acquireAll(h, input.task, signal);
          return h.behaviour.plan(ctx(input.task, input.attempt, signal));
        }),
        delegate: fromPromise<string[], { task: TaskEnvelope; attempt: number; subtasks: SubtaskSpec[] }>(({ input }) =>
          this.delegate(h, input.task, input.subtasks),
        ),
        aggregate: fromPromise<unknown, { task: TaskEnvelope; attempt: number; children: ChildOutcome[] }>(
          ({ input, signal }) => h.behaviour.run(ctx(input.task, input.attempt, signal), input.children),
        ),
        report,
      },
    });
    return createActor(machine, { input, clock: this.clock }) as unknown as AnyActorRef;
  }

  /**
   * Runs the hooks of an event (none configured: nothing at all). A critical hook's failure
   * rejects with HOOK_FAILED and stops what it guards; the others' failures are logged and the
   * work goes on (each hook is isolated and bounded by its timeout, so none can stall it).
   */
  private async runHooks(event: HookEvent, payload: Record<string, unknown>): Promise<void> {
    if (this.config.host.hooks.length === 0) return;
    const report = await this.hooks.run(event, payload);
    if (report.failed + report.bypassed > 0) {
      const failed = report.outcomes.filter((o) => o.status !== "ok");
      this.logger.warn({ event, failed }, "non-critical hooks failed; the work goes on");
    }
  }

  private beforeTask(h: HostedActor, task: TaskEnvelope, attempt: number): Promise<void> {
    return this.runHooks("beforeTask", {
      hostId: this.hostId,
      actorId: h.spec.actorId,
      taskId: task.taskId,
      kind: task.kind,
      attempt,
      input: task.input,
    });
  }

  /**
   * Acquires the resources the kind lists, in order, from the supervisor (resources.ts): each
   * request is answered when granted, or refused (TIMEOUT, DEADLOCK_VICTIM: both retryable, so
   * the attempt fails and is redelivered after a backoff). Held until the attempt is reported.
   */
  private async acquireAll(h: HostedActor, task: TaskEnvelope, signal: AbortSignal): Promise<void> {
    const gap = h.spec.kind.behaviour.type === "script" ? h.spec.kind.behaviour.acquireGapMs : 0;
    for (const resource of h.spec.kind.acquire) {
      signal.throwIfAborted();
      await call(
        this.nc,
        "sup.acquire",
        { taskId: task.taskId, teamId: task.teamId, resource, priority: task.priority },
        // The supervisor answers TIMEOUT at the acquisition timeout; this is only the backstop.
        { sender: this.hostId, cid: task.workflowId, timeoutMs: this.config.resources.acquireTimeoutMs + 5000 },
      );
      if (gap > 0) await sleep(this.clock, gap, signal);
    }
  }

  /** Lets go of what an attempt held (best effort: the supervisor also releases on the result). */
  private releaseAll(h: HostedActor, task: TaskEnvelope): void {
    if (h.spec.kind.acquire.length === 0) return;
    call(this.nc, "sup.release", { taskId: task.taskId }, {
      sender: this.hostId,
      timeoutMs: this.config.requestTimeoutMs,
    }).catch((err) => this.logger.warn({ err, taskId: task.taskId }, "resources not released; the result will"));
  }

  /**
   * An operation on one actor, from the supervisor. Output is validated on the receiving side
   * (the supervisor), which quarantines an actor whose response breaks its kind's schema: the
   * actor takes no more tasks, and what it knew goes to its replacement.
   */
  private actorControl({ op, actorId }: { op: "quarantine" | "release" | "retire"; actorId: string }) {
    const a = this.actors.get(actorId);
    if (!a) throw new NotFoundError(`actor on host ${this.hostId}`, actorId);
    if (op === "quarantine") {
      a.quarantined = true;
      if (!a.held) a.ref.send({ type: "QUARANTINE" });
      const snapshot = a.ref.getPersistedSnapshot() as { context?: { history?: string[] } };
      this.logger.warn({ actorId }, "actor quarantined");
      return { actorId, context: { fromActorId: actorId, history: snapshot.context?.history ?? [], snapshot } };
    }
    if (op === "release") {
      a.quarantined = false;
      a.ref.send({ type: "RELEASE" });
      this.pullers.get(key(a.spec.teamId, a.spec.kindName))?.wake();
      return { actorId };
    }
    // Retired (or preempted): the task it held goes back to the queue, what it knew goes back
    // to the supervisor as a checkpoint.
    const snapshot = a.ref.getPersistedSnapshot() as { context?: { history?: string[] } };
    const requeued = a.held?.task.taskId;
    if (a.held) {
      a.held.msg.nak();
      this.release(a);
    }
    a.ref.stop();
    this.actors.delete(actorId);
    this.logger.info({ actorId, requeued }, "actor retired");
    return {
      actorId,
      context: { fromActorId: actorId, history: snapshot.context?.history ?? [], snapshot },
      ...(requeued ? { requeued } : {}),
    };
  }

  // --- tasks --------------------------------------------------------------------------------

  /** Number of actors of a kind free to take a task. */
  idleCount(teamId: string, kind: string): number {
    let n = 0;
    for (const a of this.actors.values()) if (this.takes(a, teamId, kind)) n++;
    return n;
  }

  /** Whether an actor is free to take a task of this kind. */
  private takes(a: HostedActor, teamId: string, kind: string): boolean {
    return !a.held && !a.quarantined && a.spec.teamId === teamId && a.spec.kindName === kind;
  }

  /** Hands a pulled task to an idle actor of its kind. */
  dispatch(teamId: string, kind: string, msg: JsMsg): void {
    let task: TaskEnvelope;
    try {
      task = decodeAs(msg.data, "task").body;
    } catch (err) {
      this.logger.error({ err, seq: msg.seq }, "undecodable task terminated");
      msg.term();
      return;
    }
    const actor = [...this.actors.values()].find((a) => this.takes(a, teamId, kind));
    if (!actor) {
      msg.nak();
      return;
    }
    const attempt = msg.info.deliveryCount;
    const ticker = setInterval(
      () => {
        msg.working();
        void this.recheckChildren(actor);
      },
      Math.max(50, Math.floor(this.config.tasks.ackWaitMs / 3)),
    );
    ticker.unref();
    actor.held = { msg, task, attempt, startedAt: this.clock.now(), ticker, seenChildren: new Set() };
    this.emit({
      type: "TASK_STARTED",
      category: "task",
      scope: task.workflowId,
      // epoch and seq: what the supervisor needs to reassign it should this host be lost before
      // its next heartbeat lists the task.
      data: {
        taskId: task.taskId,
        kind: task.kind,
        attempt,
        epoch: task.epoch,
        seq: msg.seq,
        hostId: this.hostId,
        actorId: actor.spec.actorId,
      },
    });
    if (task.deadline !== null && this.clock.now() > task.deadline) {
      void this.report(actor, task, attempt, {
        status: "failed",
        error: new TimeoutError(`task ${task.taskId} (deadline passed before it started)`, 0).toWire(),
      }).finally(() => this.release(actor));
      return;
    }
    actor.ref.send({ type: "TASK", task, attempt });
  }

  /** Asks the supervisor to delegate; child notices start flowing to the actor before the call. */
  private async delegate(h: HostedActor, task: TaskEnvelope, subtasks: SubtaskSpec[]): Promise<string[]> {
    const held = h.held;
    if (!held) throw new Error("delegate without a held task");
    await this.runHooks("onDelegation", { hostId: this.hostId, taskId: task.taskId, subtasks });
    held.childSub = this.nc.subscribe(subjects.child(task.taskId), {
      callback: (_err, m) => {
        try {
          this.sendChild(h, decodeAs(m.data, "child.done").body.record);
        } catch (err) {
          this.logger.warn({ err }, "bad child notice ignored");
        }
      },
    });
    // Through the delegation breaker: while the supervisor keeps failing, directors wait for
    // its trial instead of each sending requests into the void (retry waits for the trial).
    const delegation = this.breakers.get("delegation");
    const reply = await retry(
      () =>
        delegation.call(() =>
          call(
            this.nc,
            "sup.delegate",
            { parent: task, subtasks },
            { sender: this.hostId, cid: task.workflowId, timeoutMs: this.config.requestTimeoutMs },
          ),
        ),
      { maxAttempts: 8, baseMs: 100, maxMs: 2000, clock: this.clock },
    );
    held.childIds = reply.taskIds;
    // Children created by an earlier attempt may have finished before we subscribed.
    if (reply.existing.length > 0) await this.recheckChildren(h);
    return reply.taskIds;
  }

  /** Reads children that finished but whose notice this host missed (restart, reconnect). */
  private async recheckChildren(h: HostedActor): Promise<void> {
    const held = h.held;
    if (!held?.childIds) return;
    const missing = held.childIds.filter((id) => !held.seenChildren.has(id));
    // A few reads at a time: a director of 1,000 children must not fire 1,000 requests at once
    // at a server that has just come back.
    for (let i = 0; i < missing.length; i += RECHECK_CONCURRENCY) {
      await Promise.all(
        missing.slice(i, i + RECHECK_CONCURRENCY).map(async (id) => {
          try {
            const rec = await this.tasks.get(id);
            if (rec) this.sendChild(h, rec.value);
          } catch (err) {
            this.logger.debug({ err, taskId: id }, "child not read");
          }
        }),
      );
    }
  }

  private sendChild(h: HostedActor, rec: TaskRecord): void {
    const held = h.held;
    if (!held || rec.status === "queued" || rec.task.parentTaskId !== held.task.taskId) return;
    if (held.seenChildren.has(rec.task.taskId)) return;
    held.seenChildren.add(rec.task.taskId);
    const child: ChildOutcome = {
      taskId: rec.task.taskId,
      kind: rec.task.kind,
      // A cancelled child: its workflow is ending, and its director is being stopped too.
      status: rec.status === "completed" ? "completed" : "failed",
      ...(rec.output !== undefined ? { output: rec.output } : {}),
      ...(rec.error ? { error: rec.error } : {}),
    };
    h.ref.send({ type: "CHILD_DONE", child });
  }

  /**
   * Reports an attempt. A completed attempt publishes its result (message id per attempt) and
   * acks; a failed one is retried by redelivery with backoff while attempts remain and the
   * error is retryable; otherwise its failure is published as the task's result.
   */
  private async report(h: HostedActor, task: TaskEnvelope, attempt: number, outcome: Outcome): Promise<void> {
    const held = h.held;
    if (!held || held.task.taskId !== task.taskId) return;
    this.releaseAll(h, task);
    // After the fact: nothing left to guard, so even a critical hook's failure is only logged.
    this.runHooks(outcome.status === "completed" ? "afterTask" : "onTaskFailed", {
      hostId: this.hostId,
      actorId: h.spec.actorId,
      taskId: task.taskId,
      kind: task.kind,
      attempt,
      status: outcome.status,
    }).catch((err) => this.logger.warn({ err, taskId: task.taskId }, "after-task hooks failed"));
    try {
      if (outcome.status === "failed") {
        const retryable = fromWire(outcome.error).retryable;
        if (retryable && attempt < this.config.tasks.maxDeliver) {
          const delay = this.config.tasks.retryBackoffMs * 2 ** (attempt - 1);
          held.msg.nak(delay);
          this.emit({
            type: "TASK_ATTEMPT_FAILED",
            category: "task",
            scope: task.workflowId,
            data: {
              taskId: task.taskId,
              attempt,
              code: outcome.error.code,
              message: outcome.error.message.slice(0, 300),
              retryInMs: delay,
              hostId: this.hostId,
            },
          });
          return;
        }
      }
      const now = this.clock.now();
      const result = {
        taskId: task.taskId,
        workflowId: task.workflowId,
        epoch: task.epoch,
        attempt,
        hostId: this.hostId,
        actorId: h.spec.actorId,
        status: outcome.status,
        ...(outcome.status === "completed" ? { output: outcome.output } : { error: outcome.error }),
        startedAt: held.startedAt,
        finishedAt: now,
      };
      const msgID = resultMessageId(task.taskId, task.epoch, attempt);
      const subject = subjects.result(task.workflowId);
      let stored = false;
      if (this.connectivity.getSnapshot().value === "online") {
        try {
          await this.whileOnline(
            retry(
              () =>
                this.js.publish(subject, encode("result", result, { sender: this.hostId, cid: task.workflowId }), {
                  msgID,
                }),
              { maxAttempts: 3, baseMs: 50, maxMs: 500, isRetryable: () => true, clock: this.clock },
            ),
          );
          stored = true;
        } catch (err) {
          this.logger.warn({ err, taskId: task.taskId }, "result not published; keeping it in the outbox");
        }
      }
      if (!stored) {
        // Cut off (or about to be): the result waits on disk and goes out when NATS is back.
        const offline = encode("result", { ...result, offline: true }, { sender: this.hostId, cid: task.workflowId });
        await this.outbox.append({ subject, key: msgID, data: offline });
        // Appended while a replay was finishing (appends wait for it): the machine may be online
        // already, and nothing would send this record until the next reconnect. Replay again.
        if (this.connectivity.getSnapshot().value === "online") this.connectivity.send({ type: "RECONNECTED" });
        this.logger.info(
          { taskId: task.taskId, outboxRecords: this.outbox.size().records },
          "result kept in the outbox until NATS is back",
        );
      }
      // The result is stored (in JetStream or the outbox), so the ack need not be confirmed: a
      // lost or late ack only means a redelivery whose result is recorded as a duplicate.
      held.msg.ack();
    } catch (err) {
      // Not acked: JetStream redelivers the task after its ack wait.
      const full = err instanceof OutboxFullError;
      this.logger.error(
        { err, taskId: task.taskId },
        full
          ? "outbox full: result dropped; the task will be redelivered"
          : "attempt not reported; the task will be redelivered",
      );
    }
  }

  /**
   * Settles as `p` does, or rejects as soon as the connection is lost: a publish caught in a
   * partition can hang for its whole timeout, and the result belongs on disk meanwhile. Should
   * the abandoned publish land after all, JetStream de-duplicates the replay on its message id.
   */
  private whileOnline<T>(p: Promise<T>): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      const sub = this.connectivity.subscribe((s) => {
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

  private release(h: HostedActor): void {
    const held = h.held;
    if (!held) return;
    clearInterval(held.ticker);
    held.childSub?.unsubscribe();
    h.held = undefined;
    this.pullers.get(key(h.spec.teamId, h.spec.kindName))?.wake();
  }
}
