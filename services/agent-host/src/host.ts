/**
 * The agent-host: runs actors (XState machines) for the kinds the supervisor places on it,
 * pulls their tasks from JetStream, admits tasks of controlled workflows, and serves its
 * operations (spawn, actor control, task control, inspection). Its collaborators, one concern
 * each: {@link HostedActor} (an actor's machine and effects), {@link Dispatcher} (pulled tasks
 * to idle actors, admission included), TaskAttempt (one attempt: ticker, child notices,
 * report), {@link ResultSink} (publish-or-outbox and replay), {@link Heartbeat} and
 * {@link WorkflowControls} (the controls it follows, and `sup.task.admit`).
 */

import {
  type ActorSpec,
  type Body,
  type Config,
  NotFoundError,
  newIncarnation,
  PermissionDeniedError,
  ProtocolError,
  ResourceExhaustedError,
  randomId,
  STREAMS,
  TaskRecordSchema,
  type TypedEvent,
  taskConsumer,
  type WorkflowControl,
} from "@cadre/protocol";
import {
  Breakers,
  type CadreMetrics,
  type Clock,
  closeBus,
  connectNats,
  countEvent,
  createMetrics,
  type EventBus,
  eventBusFor,
  type HookEvent,
  HookRunner,
  isTransient,
  type Logger,
  type NatsConnection,
  natsAuthOf,
  OperationServer,
  openInfrastructure,
  Reporter,
  type ResultSigner,
  resultSigner,
  retry,
  StateStore,
  StateValueSchema,
  systemClock,
  TxStore,
  workflowState,
} from "@cadre/runtime";
import { type Consumer, type JetStreamClient, jetstream } from "@nats-io/jetstream";
import type { KV } from "@nats-io/kv";
import { HostedActor } from "./actor.js";
import { WorkflowControls } from "./admission.js";
import type { AttemptDeps } from "./attempt.js";
import type { LlmDeps } from "./behaviours/index.js";
import { HostCleanup } from "./cleanup.js";
import { Dispatcher } from "./dispatcher.js";
import { Heartbeat } from "./heartbeat.js";
import { createLlmDeps } from "./llm/index.js";
import { KindPuller } from "./puller.js";
import { ResultSink } from "./result-sink.js";

/** Options of {@link AgentHost.start}. */
export interface AgentHostOptions {
  config: Config;
  logger: Logger;
  /** @default "host-<random>" */
  hostId?: string;
  /** @default systemClock */
  clock?: Clock;
}

const key = (teamId: string, kind: string) => `${teamId}/${kind}`;

/** A running agent-host. */
export class AgentHost {
  readonly hostId: string;
  readonly incarnation = newIncarnation();
  /** This process's metrics, served on /metrics (runtime metrics.ts). */
  readonly metrics: CadreMetrics = createMetrics({ service: "cadre-agent-host" });
  private readonly config: Config;
  /** Signs results with this host's nkey when it has one (an authenticated deployment). */
  private readonly signer: ResultSigner | undefined;
  private readonly logger: Logger;
  private readonly clock: Clock;
  private nc!: NatsConnection;
  private bus!: EventBus;
  /** Circuit breakers: delegation requests, state writes, event publishes. */
  private breakers!: Breakers;
  private js!: JetStreamClient;
  /** Workflow state behaviours share, and the registry that says which workflows are frozen. */
  private state!: TxStore<unknown>;
  private registry!: KV;
  private readonly actors = new Map<string, HostedActor>();
  private readonly pullers = new Map<string, KindPuller>();
  private sink!: ResultSink;
  private controls?: WorkflowControls;
  private dispatcher!: Dispatcher;
  private server?: OperationServer;
  private heartbeat?: Heartbeat;
  /** Tells the monitor what this host's metrics say (runtime report.ts). */
  private reporter?: Reporter;
  private hooks!: HookRunner;
  /** What llm behaviours call models through (llm/index.ts). */
  private llm!: LlmDeps;

  private constructor(opts: AgentHostOptions) {
    this.config = opts.config;
    this.logger = opts.logger;
    this.clock = opts.clock ?? systemClock;
    this.hostId = opts.hostId ?? `host-${randomId(6)}`;
    this.signer = resultSigner(opts.config.natsCredentials);
  }

  /** Connects, registers the host and starts heartbeats and the control endpoint. */
  static async start(opts: AgentHostOptions): Promise<AgentHost> {
    const h = new AgentHost(opts);
    await h.init();
    return h;
  }

  private async init(): Promise<void> {
    const ob = this.config.host.outbox;
    this.sink = await ResultSink.open({
      hostId: this.hostId,
      dir: ob.dir,
      maxBytes: ob.maxBytes,
      replayRatePerSec: ob.replayRatePerSec,
      requestTimeoutMs: this.config.requestTimeoutMs,
      clock: this.clock,
      logger: this.logger,
      signer: this.signer,
      metrics: this.metrics,
    });
    // Hooks first: a bad definition fails the start, before anything is connected.
    this.hooks = new HookRunner({ clock: this.clock, logger: this.logger, metrics: this.metrics });
    for (const hook of this.config.host.hooks) this.hooks.register(hook);
    this.nc = await connectNats(this.config.natsUrl, this.hostId, this.logger, natsAuthOf(this.config));
    this.breakers = new Breakers(this.config.breakers, {
      clock: this.clock,
      source: this.hostId,
      logger: this.logger,
      emit: (e) => this.emit(e),
      metrics: this.metrics,
    });
    this.bus = eventBusFor(
      this.nc,
      this.hostId,
      this.config,
      this.logger,
      this.clock,
      this.breakers.get("event_publish"),
      { metrics: this.metrics },
    );
    // The supervisor creates Cadre's streams and buckets; a host only opens them.
    const buckets = await openInfrastructure(this.nc);
    this.js = jetstream(this.nc);
    // Results go out from now on; what a previous run left in the outbox is replayed now.
    this.sink.connect({ nc: this.nc, js: this.js, publishEvent: (e) => this.bus.emit(e) });
    const tasks = new StateStore(buckets.tasks, TaskRecordSchema, "task", {
      breaker: this.breakers.get("state_update"),
      metrics: this.metrics,
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
        metrics: this.metrics,
        onCorruption: (r) => {
          this.logger.error(r, `damaged state value ${r.restoredAs === null ? "not restored" : "restored"}`);
          this.emit({ type: "STATE_CORRUPTED", category: "state", scope: "state", data: { ...r } });
        },
      },
      "workflow state",
    );
    const attemptDeps: AttemptDeps = {
      nc: this.nc,
      hostId: this.hostId,
      clock: this.clock,
      logger: this.logger,
      ackWaitMs: this.config.tasks.ackWaitMs,
      requestTimeoutMs: this.config.requestTimeoutMs,
      acquireTimeoutMs: this.config.resources.acquireTimeoutMs + 5000,
      store: (result) => this.sink.store(result),
      emit: (e) => this.emit(e),
      readTask: async (id) => (await tasks.get(id))?.value,
      delegation: this.breakers.get("delegation"),
      runHooks: (event, payload) => this.runHooks(event, payload),
    };
    this.llm = createLlmDeps({
      config: this.config,
      llm: buckets.llm,
      registry: this.registry,
      hostId: this.hostId,
      clock: this.clock,
      logger: this.logger,
      breakers: this.breakers,
      metrics: this.metrics,
      emit: (e) => this.emit(e),
      progress: (payload) => {
        this.runHooks("onProgress", payload).catch((err) => this.logger.debug({ err }, "progress hooks failed"));
      },
    });
    // Before any task is pulled: a task of a workflow controlled now must not slip through.
    this.controls = await WorkflowControls.start({
      nc: this.nc,
      registry: this.registry,
      hostId: this.hostId,
      requestTimeoutMs: this.config.requestTimeoutMs,
      logger: this.logger,
    });
    this.dispatcher = new Dispatcher({
      actors: this.actors,
      controls: this.controls,
      attemptDeps,
      logger: this.logger,
      release: (a) => this.release(a),
    });
    // Retried: on a fresh server, a bucket another process has just created can answer "no
    // responders" for a moment.
    const record = JSON.stringify({
      hostId: this.hostId,
      // The supervisor verifies this host's signed results with it (only this host may write this key).
      ...(this.signer ? { publicKey: this.signer.publicKey } : {}),
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
    this.server.serve("host.task", async (body) => this.taskControl(body));
    this.server.serve("host.inspect", async ({ actorId }) => this.actor(actorId).inspect());
    const cleanup = new HostCleanup({
      hostId: this.hostId,
      clock: this.clock,
      logger: this.logger,
      emit: (e) => this.emit(e),
      clearPercent: this.config.monitor.metrics.memory_usage_percent.clear,
      releaseIdlePullers: () => this.releaseIdlePullers(),
    });
    this.server.serve("host.cleanup", async () => cleanup.run());
    this.server.serve("host.hooks.bypass", async ({ hook, forMs, failureRate }) => {
      const bypassed = this.hooks.bypass(hook, forMs);
      if (bypassed) {
        this.emit({
          type: "HOOK_BYPASSED",
          category: "monitor",
          scope: "hook_failure_rate",
          data: { hook, hostId: this.hostId, forMs, failureRate },
        });
      }
      return { bypassed };
    });
    this.heartbeat = new Heartbeat({
      nc: this.nc,
      hostId: this.hostId,
      incarnation: this.incarnation,
      intervalMs: this.config.heartbeat.intervalMs,
      clock: this.clock,
      logger: this.logger,
      status: () => {
        const held = [...this.actors.values()].flatMap((a) => (a.attempt ? [a.attempt.held()] : []));
        // The actor gauges follow the heartbeat: as fresh as what the supervisor sees.
        this.metrics.actorsActive.set(this.actors.size);
        this.metrics.actorsBusy.set(held.length);
        this.metrics.actorsQuarantined.set([...this.actors.values()].filter((a) => a.quarantined).length);
        return {
          actors: this.actors.size,
          held,
          eventQueue: this.bus.stats().queued,
          circuits: this.breakers.notClosed(),
        };
      },
    });
    this.heartbeat.start();
    this.reporter = new Reporter({
      nc: this.nc,
      metrics: this.metrics,
      service: "agent-host",
      id: this.hostId,
      incarnation: this.incarnation,
      intervalMs: this.config.monitor.intervalMs,
      clock: this.clock,
      logger: this.logger,
    }).start();
    this.logger.info({ hostId: this.hostId, incarnation: this.incarnation }, "agent-host registered");
  }

  /** The control this host follows for a workflow, if it has one (diagnostics and tests). */
  control(workflowId: string): WorkflowControl | undefined {
    return this.controls?.get(workflowId);
  }

  /** Connected to NATS, or trying to reconnect (a closed connection does not come back). */
  healthy(): boolean {
    return !this.nc.isClosed();
  }

  /** Stops pulling, stops actors and closes the connection. Held tasks go back to the queue at once. */
  async stop(): Promise<void> {
    this.heartbeat?.stop();
    this.reporter?.stop();
    await this.runHooks("onTerminate", { hostId: this.hostId }).catch((err) =>
      this.logger.warn({ err }, "terminate hooks failed"),
    );
    this.hooks?.stop();
    await Promise.all([...this.pullers.values()].map((p) => p.stop()));
    for (const a of this.actors.values()) {
      a.attempt?.settle("nak");
      this.release(a);
      a.ref.stop();
    }
    this.controls?.stop();
    await this.server?.stop();
    if (this.bus) await closeBus(this.bus);
    this.breakers?.stop();
    await this.nc.drain();
    await this.sink?.close();
  }

  /** Publishes an event (to the event outbox while the connection is down). */
  private emit(event: TypedEvent): void {
    countEvent(this.metrics, event);
    if (this.sink?.connected) this.sink.emit(event);
    else this.bus?.emit(event);
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

  // --- actors -------------------------------------------------------------------------------

  private actor(actorId: string): HostedActor {
    const a = this.actors.get(actorId);
    if (!a) throw new NotFoundError(`actor on host ${this.hostId}`, actorId);
    return a;
  }

  /**
   * Starts the actors of a spawn request, all or none: a request that cannot be carried out in
   * full leaves nothing behind. Checked before anything is created: room under `host.maxActors`,
   * and a task consumer for each (team, kind), which only the supervisor's placement creates (a
   * request for a team or kind it never placed is NOT_FOUND). Then each actor is built (its
   * onSpawn hooks run first); if one cannot be, those built are stopped. Only then are they all
   * added, at once.
   */
  /**
   * The host's own say on shell commands (`host.commands`): none when disabled, else only
   * those matching an allow-list pattern (none given: any). Checked before anything is built.
   */
  private checkCommand(spec: ActorSpec): void {
    const b = spec.kind.behaviour;
    if (b.type !== "command") return;
    const policy = this.config.host.commands;
    const allowed =
      policy.enabled && (policy.allow.length === 0 || policy.allow.some((p) => new RegExp(p).test(b.run)));
    if (!allowed) {
      throw new PermissionDeniedError(
        policy.enabled
          ? `host ${this.hostId} runs only commands matching host.commands.allow; kind "${spec.kindName}" asks for another`
          : `host ${this.hostId} runs no shell commands (host.commands.enabled is false); kind "${spec.kindName}" has a command behaviour`,
        { hostId: this.hostId, kind: spec.kindName, teamId: spec.teamId },
      );
    }
  }

  private async spawn(specs: ActorSpec[]): Promise<string[]> {
    const fresh = [...new Map(specs.filter((s) => !this.actors.has(s.actorId)).map((s) => [s.actorId, s])).values()];
    const room = () => {
      if (this.actors.size + fresh.length > this.config.host.maxActors) {
        throw new ResourceExhaustedError(`actors on host ${this.hostId}`, this.config.host.maxActors, this.actors.size);
      }
    };
    room();
    for (const spec of fresh) this.checkCommand(spec);
    const consumers = new Map<string, Consumer>();
    for (const spec of fresh) {
      const k = key(spec.teamId, spec.kindName);
      if (this.pullers.has(k) || consumers.has(k)) continue;
      consumers.set(k, await this.consumerOf(spec.teamId, spec.kindName));
    }
    const made: HostedActor[] = [];
    try {
      for (const spec of fresh) {
        await this.runHooks("onSpawn", {
          hostId: this.hostId,
          actorId: spec.actorId,
          teamId: spec.teamId,
          kind: spec.kindName,
        });
        made.push(
          new HostedActor(spec, {
            clock: this.clock,
            hostId: this.hostId,
            attemptTimeoutMs: this.config.tasks.attemptTimeoutMs,
            retry: { attempts: this.config.tasks.maxDeliver, backoffMs: this.config.tasks.retryBackoffMs },
            llm: this.llm,
            state: (workflowId) => workflowState(this.state, this.registry, workflowId),
            beforeTask: (payload) => this.runHooks("beforeTask", payload),
            onIdle: (a) => this.release(a),
          }),
        );
      }
      // Other requests may have added actors meanwhile (the hooks and lookups above wait).
      room();
    } catch (err) {
      for (const a of made) a.ref.stop();
      this.logger.warn({ err, actors: fresh.length }, "spawn refused; no actor of it was kept");
      throw err;
    }
    for (const actor of made) {
      const spec = actor.spec;
      // A concurrent request for the same id got there first: that one is the actor.
      if (this.actors.has(spec.actorId)) {
        actor.ref.stop();
        continue;
      }
      this.actors.set(spec.actorId, actor);
      const k = key(spec.teamId, spec.kindName);
      const puller = this.pullers.get(k);
      if (puller) puller.wake();
      else {
        const consumer = consumers.get(k) as Consumer;
        const p = new KindPuller(this.dispatcher, spec.teamId, spec.kindName, consumer, this.logger);
        this.pullers.set(k, p);
        p.start();
      }
      this.logger.info(
        { actorId: spec.actorId, kind: spec.kindName, teamId: spec.teamId, inheritedFrom: spec.inherit?.fromActorId },
        "actor spawned",
      );
    }
    return specs.map((s) => s.actorId);
  }

  /** The task consumer of a (team, kind): NOT_FOUND when the supervisor never placed the kind. */
  private async consumerOf(teamId: string, kind: string): Promise<Consumer> {
    try {
      return await this.js.consumers.get(STREAMS.tasks, taskConsumer(teamId, kind));
    } catch (err) {
      if ((err as Error).name !== "ConsumerNotFoundError") throw err;
      throw new NotFoundError(
        `task consumer (kind ${kind} of team ${teamId} was never placed)`,
        taskConsumer(teamId, kind),
      );
    }
  }

  /**
   * An operation on one actor, from the supervisor. Output is validated on the receiving side
   * (the supervisor), which quarantines an actor whose response breaks its kind's schema: the
   * actor takes no more tasks, and what it knew goes to its replacement.
   */
  private actorControl({ op, actorId, context: given }: Body<"host.actor">): Body<"host.actor.ok"> {
    const a = this.actor(actorId);
    if (op === "adopt") {
      // A transfer (the supervisor's sup.actor.transfer): a failed actor's context, taken on at runtime.
      if (!given) throw new ProtocolError(`adopt needs the context to adopt (actor ${actorId})`, { actorId });
      const history = a.adopt(given);
      this.logger.info({ actorId, from: given.fromActorId, tasks: given.history.length }, "actor adopted a context");
      return { actorId, history };
    }
    if (op === "quarantine") {
      a.quarantined = true;
      if (!a.attempt) a.ref.send({ type: "QUARANTINE" });
      this.logger.warn({ actorId }, "actor quarantined");
      return { actorId, context: a.knowledge() };
    }
    if (op === "release") {
      a.quarantined = false;
      a.ref.send({ type: "RELEASE" });
      this.pullers.get(key(a.spec.teamId, a.spec.kindName))?.wake();
      return { actorId };
    }
    // Retired (or preempted): the task it held goes back to the queue, what it knew goes back
    // to the supervisor as a checkpoint.
    const context = a.knowledge();
    const requeued = a.attempt?.task.taskId;
    a.attempt?.settle("nak");
    this.release(a);
    a.ref.stop();
    this.actors.delete(actorId);
    this.logger.info({ actorId, requeued }, "actor retired");
    return { actorId, context, ...(requeued ? { requeued } : {}) };
  }

  /**
   * Stops the attempt at a task one of this host's actors holds: `stop` (its workflow was
   * cancelled: the message is terminated, never redelivered) or `yield` (paused with `now`: the
   * message is acked and the supervisor re-publishes the task on resume). No result is
   * published and the actor is idle again. `held: false` when no actor here holds the task, or
   * its outcome is already being reported (that result goes out).
   */
  private taskControl({ op, taskId, reason }: Body<"host.task">): Body<"host.task.ok"> {
    const a = [...this.actors.values()].find((x) => x.attempt?.task.taskId === taskId);
    const attempt = a?.attempt;
    if (!a || !attempt) return { taskId, held: false };
    if (!attempt.abort(op, reason)) return { taskId, held: false };
    this.logger.info(
      { taskId, op, reason, actorId: a.actorId, epoch: attempt.task.epoch },
      `task attempt ${op === "stop" ? "stopped" : "yielded"}`,
    );
    // A machine at work goes back to idle, which releases the actor; one still waiting for
    // admission never got the task.
    a.stopWork();
    if (a.attempt === attempt) this.release(a);
    return { taskId, held: true, epoch: attempt.task.epoch };
  }

  /** The pullers of kinds no actor of this host runs now, stopped; their keys (the cleanup's). */
  private releaseIdlePullers(): string[] {
    const released: string[] = [];
    const running = new Set([...this.actors.values()].map((a) => key(a.spec.teamId, a.spec.kindName)));
    for (const [k, p] of this.pullers) {
      if (running.has(k)) continue;
      this.pullers.delete(k);
      // Not awaited: a pull in flight ends on its own; the reply must not wait for it.
      void p.stop();
      released.push(`puller ${k}`);
    }
    return released;
  }

  /** The actor is free again: forget its attempt and let its kind's puller pull more. */
  private release(a: HostedActor): void {
    if (!a.attempt) return;
    a.release();
    this.pullers.get(key(a.spec.teamId, a.spec.kindName))?.wake();
  }
}
