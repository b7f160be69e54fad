/**
 * The supervisor: its start and stop, the active/standby switch, and what follows from the
 * partitions it holds. assemble.ts builds and wires its parts; the work is done by collaborators
 * with one concern each:
 *
 *   intake.ts         submits and delegations (the delegation policy runs here)
 *   placer.ts         which host runs which actors; quotas and preemption (quota.ts)
 *   partitions.ts     which supervisor applies which partition's results (any number share them)
 *   result-stream.ts  consuming results; results.ts applies them; coordinate.ts hands what an
 *                     applied result means for the whole cluster to the lease holder
 *   controls.ts       freeze, pause/resume, cancel, cap and guarantee; admission of tasks
 *   dependencies.ts   workflows that wait for others (a submit's after): release and failure
 *   lifecycle.ts      passivation, demand placement, team retirement, cordon and drain
 *   inspect.ts        workflow lists, task trees, task and actor inspection
 *   reassign.ts       the tasks of lost hosts; tally.ts the reconciliation counts
 *   quarantine.ts, resources.ts, registry.ts, lease.ts
 *
 * Its state lives in JetStream (streams and KV), so a restarted supervisor carries on where the
 * last one stopped.
 */

import { type Config, LeaseRecordSchema, partitionOf, randomId, subjects, type TypedEvent } from "@cadre/protocol";
import {
  Breakers,
  type CadreMetrics,
  type Clock,
  closeBus,
  connectNats,
  countEvent,
  createMetrics,
  type EmitOptions,
  type EventBus,
  eventBusFor,
  type LivenessEvent,
  type Logger,
  type NatsConnection,
  natsAuthOf,
  OperationServer,
  Reporter,
  StateStore,
  type Subscription,
  systemClock,
  type ThrottledLog,
  taskTokenKey,
  throttledLog,
} from "@cadre/runtime";
import { assemble, type Parts } from "./assemble.js";
import { LeaseKeeper } from "./lease.js";
import { PartitionKeeper } from "./partitions.js";
import { serveOperations, shared } from "./routes.js";
import { workflowOf } from "./tree.js";

/** Options of {@link Supervisor.start}. */
export interface SupervisorOptions {
  config: Config;
  logger: Logger;
  /** @default systemClock */
  clock?: Clock;
  /** @default "supervisor-<random>" */
  id?: string;
}

/**
 * A running supervisor. Several may run. Each applies the results of the partitions it holds
 * (partitions.ts: every workflow hashes to one of `supervisor.partitions`, each held by one live
 * supervisor). The one holding the lease (lease.ts) also serves requests, places actors and
 * repairs placements; all follow heartbeats and the controls, so that any can take over the
 * lease with a warm view of the hosts.
 */
export class Supervisor {
  readonly id: string;
  /** This process's metrics, served on /metrics (runtime metrics.ts). */
  readonly metrics: CadreMetrics;
  private reporter?: Reporter;
  private readonly config: Config;
  private readonly logger: Logger;
  private readonly clock: Clock;
  private nc!: NatsConnection;
  private bus!: EventBus;
  /** Circuit breakers: spawn per host, state writes, event publishes. */
  private breakers!: Breakers;
  /** The records, the registry and the collaborators, wired (assemble.ts). */
  private p!: Parts;
  private readonly subs: Subscription[] = [];
  /** What only the active supervisor runs; torn down when it stands by. */
  private activeSubs: Subscription[] = [];
  private lease!: LeaseKeeper;
  private keeper!: PartitionKeeper;
  /** This supervisor's micro-service registration (see announce). */
  private server?: OperationServer;
  /** Registrations one at a time: an activation may follow a standby's at once. */
  private announcing: Promise<unknown> = Promise.resolve();
  private repairTimer?: NodeJS.Timeout;
  /** Forgets hosts that never registered, or died long ago (every supervisor, standbys too). */
  private pruneTimer?: NodeJS.Timeout;
  private startedAt = 0;
  /** Logs what bad input causes, at most so many lines a window (runtime logger.ts). */
  private readonly noisy: ThrottledLog;

  private constructor(opts: SupervisorOptions) {
    this.config = opts.config;
    this.logger = opts.logger;
    this.clock = opts.clock ?? systemClock;
    this.id = opts.id ?? `supervisor-${randomId(6)}`;
    this.noisy = throttledLog(opts.logger);
    this.metrics = createMetrics({ service: "cadre-supervisor" });
  }

  /** Connects, creates what is missing in JetStream and starts serving. */
  static async start(opts: SupervisorOptions): Promise<Supervisor> {
    const s = new Supervisor(opts);
    await s.init();
    return s;
  }

  private async init(): Promise<void> {
    this.startedAt = this.clock.now();
    const { config, clock, logger, id: sender } = this;
    const emit = (e: TypedEvent, opts?: EmitOptions) => this.emit(e, opts);
    this.nc = await connectNats(config.natsUrl, sender, logger, natsAuthOf(config));
    const nc = this.nc;
    // With an identity, every task carries a token and every result must prove holding it.
    const taskKey = taskTokenKey(config.natsCredentials);
    const { metrics } = this;
    this.breakers = new Breakers(config.breakers, { clock, source: sender, logger, emit, metrics });
    this.bus = eventBusFor(nc, sender, config, logger, clock, this.breakers.get("event_publish"), { metrics });
    this.p = await assemble({
      nc,
      config,
      clock,
      logger,
      sender,
      metrics,
      noisy: this.noisy,
      breakers: this.breakers,
      taskKey,
      emit,
      active: () => this.active,
      onLiveness: (e) => this.onLiveness(e),
    });
    const { buckets } = this.p;
    this.subs.push(...this.p.follower.start());
    this.reporter = new Reporter({
      nc: this.nc,
      metrics: this.metrics,
      service: "supervisor",
      id: this.id,
      incarnation: randomId(12),
      intervalMs: config.monitor.intervalMs,
      clock,
      logger,
    }).start();
    void this.followConnection();
    this.pruneTimer = setInterval(() => void this.pruneHosts(), config.heartbeat.hostDeadAfterMs);
    this.pruneTimer.unref();
    this.lease = new LeaseKeeper({
      store: new StateStore(buckets.registry, LeaseRecordSchema, "supervisor lease"),
      id: sender,
      ttlMs: config.supervisor.leaseTtlMs,
      renewMs: config.supervisor.leaseRenewMs,
      clock,
      logger,
      onAcquire: (lease, previous) => this.activate(lease.term, previous?.holder),
      onLose: (reason) => this.deactivate(reason),
    });
    this.keeper = new PartitionKeeper({
      kv: buckets.registry,
      id: sender,
      partitions: config.supervisor.partitions,
      ttlMs: config.supervisor.leaseTtlMs,
      renewMs: config.supervisor.leaseRenewMs,
      // A newcomer takes its share once it has lived a lease's TTL: one that comes and goes moves nothing.
      stableMs: config.supervisor.leaseTtlMs,
      clock,
      logger,
      onAcquire: (p, term, previous) => this.acquired(p, term, previous),
      onRelease: (p, reason) => this.released(p, reason),
    });
    this.roleChanged();
    // A lone supervisor is active before it reports ready; a standby has looked once.
    await this.lease.start();
    // A lone supervisor holds every partition before it reports ready; another joins the table.
    await this.keeper.start();
    // A standby is listed too, with no endpoints (see announce). Not active now means no
    // activation has registered yet: one that comes later is queued after this one.
    if (!this.active) {
      await this.announce("standby").catch((err) => this.logger.warn({ err }, "standby service not registered"));
    }
  }

  /** Becomes the acting supervisor: serves, applies results, repairs placements. */
  private async activate(term: number, previous: string | undefined): Promise<void> {
    const since = this.clock.now();
    // What it read as a standby, or in an earlier term, may have been written since by another.
    this.p.tasks.forgetAll();
    this.p.workflows.forgetAll();
    await this.p.registry.load();
    await this.p.controls.seedRunning();
    const s = await this.announce("active");
    await this.seedWorkflowGauge();
    serveOperations(s, this.p.handlers);
    this.activeSubs = [
      // A host's account of its replay, to know when its reconciliation is complete.
      this.nc.subscribe(subjects.eventsOf("host"), {
        callback: (_err, m) => {
          const e = this.p.follower.readEvent(m.data, "OUTBOX_REPLAYED")?.event;
          if (e?.type !== "OUTBOX_REPLAYED") return;
          // Only needed when JetStream swallowed some: the rest arrive with their header.
          if (e.data.deduplicated > 0) this.p.tally.deduplicated(e.scope, e.data.batch, e.data.deduplicated);
        },
      }),
    ];
    this.p.results.watchMaxDeliveries();
    this.roleChanged();
    this.p.resources.start();
    this.p.lifecycle.start();
    // Hosts lost before this supervisor took over: their tasks move too.
    for (const hostId of this.p.registry.unreachableHosts()) this.p.reassigner.lost(hostId);
    // Waiting workflows whose dependencies ended under the last supervisor: released (or failed) now.
    this.p.dependencies
      .sweep()
      .then((n) => n > 0 && this.logger.info({ dependents: n }, "waiting workflows settled on taking over"))
      .catch((err) => this.logger.warn({ err }, "waiting workflows not settled on taking over; will try again"));
    this.repairTimer = setInterval(() => {
      this.repairSoon();
      this.p.dependencies.sweepIfOwed();
    }, this.config.heartbeat.hostDeadAfterMs / 2);
    this.repairTimer.unref();
    this.emit({
      type: "SUPERVISOR_ACTIVE",
      category: "supervisor",
      scope: this.id,
      data: { term, previous: previous ?? null, activationMs: this.clock.now() - since },
    });
  }

  /** Stops acting (the lease went to another supervisor, or could not be renewed). */
  private async deactivate(reason: string): Promise<void> {
    clearInterval(this.repairTimer);
    this.p.tasks.forgetAll();
    this.p.workflows.forgetAll();
    this.p.reassigner.stop();
    this.p.resources.stop();
    this.p.lifecycle.stop();
    this.p.results.stopMaxDeliveries();
    this.roleChanged();
    for (const s of this.activeSubs) s.unsubscribe();
    this.activeSubs = [];
    this.p.placer.clear();
    await this.announce("standby").catch((err) => this.logger.warn({ err }, "standby service not registered"));
    this.emit({ type: "SUPERVISOR_STANDBY", category: "supervisor", scope: this.id, data: { reason } });
  }

  /**
   * Registers this supervisor as a NATS micro service in its role: the active one with every
   * supervisor operation as an endpoint, a standby with none (so `$SRV.INFO` lists both, and
   * only the active one answers). The previous registration is withdrawn first.
   */
  private announce(role: "active" | "standby"): Promise<OperationServer> {
    const next = this.announcing
      .catch(() => {})
      .then(async () => {
        await this.server?.stop();
        this.server = await OperationServer.start(this.nc, {
          name: "cadre-supervisor",
          id: this.id,
          description: "places actors, enforces the delegation policy, applies results",
          logger: this.logger,
          metadata: { role },
        });
        return this.server;
      });
    this.announcing = next;
    return next;
  }

  /** This supervisor now holds a partition: it applies the partition's results. */
  private async acquired(partition: number, term: number, previous: string): Promise<void> {
    await this.p.results.startPartition(partition);
    this.p.partitionServer.take(partition);
    this.roleChanged();
    const held = this.p.results.held;
    this.logger.info({ partition, term, previous, held }, "partition acquired");
    this.emit({
      type: "PARTITION_ACQUIRED",
      category: "supervisor",
      scope: this.id,
      data: { partition, term, previous: previous || null, held },
    });
  }

  /** Another supervisor holds the partition now, or this one is cut off. */
  private released(partition: number, reason: string): void {
    this.p.results.stopPartition(partition);
    this.p.partitionServer.give(partition);
    this.roleChanged();
    const held = this.p.results.held;
    this.logger.info({ partition, reason, held }, "partition released");
    this.emit({
      type: "PARTITION_RELEASED",
      category: "supervisor",
      scope: this.id,
      data: { partition, reason, held },
    });
  }

  /**
   * What follows from this supervisor's role and the partitions it holds, after either changed:
   * its records' caching, and whether it answers submits beside the lease holder's service
   * (routes.ts SHARED_OPERATIONS: every holder of a partition does).
   */
  private roleChanged(): void {
    this.updateCaching();
    if (!this.active && this.p.results.held.length > 0) this.p.partitionServer.share(shared(this.p.handlers));
    else this.p.partitionServer.unshare();
  }

  /**
   * Task and workflow records are cached only where this supervisor is their writer: those of
   * the workflows in the partitions it holds (their submits, delegations and results are its).
   * What the lease holder writes of another's partition (a reassignment, a cancel) the holder
   * finds out at its next compare-and-set, which fails, forgets the key and is retried on a
   * fresh read. Holding every partition, it caches all.
   */
  private updateCaching(): void {
    const held = new Set(this.p.results.held);
    const P = this.config.supervisor.partitions;
    const all = held.size === P;
    const mine = (workflowId: string) => held.has(partitionOf(workflowId, P));
    this.p.tasks.setCaching(all || ((taskId) => mine(workflowOf(taskId))));
    this.p.workflows.setCaching(all || mine);
  }

  /** The partitions whose results this supervisor applies. */
  get partitions(): number[] {
    return this.p.results.held;
  }

  /** Hosts the registry forgot (never registered, or dead long ago) are forgotten everywhere. */
  private async pruneHosts(): Promise<void> {
    try {
      const gone = await this.p.registry.prune();
      for (const hostId of gone) {
        this.p.reassigner.forget(hostId);
        this.p.follower.forget(hostId);
        this.p.lifecycle.forget(hostId);
      }
      if (gone.length > 0) this.logger.info({ hosts: gone.slice(0, 20), count: gone.length }, "silent hosts forgotten");
    } catch (err) {
      this.logger.warn({ err }, "forgetting silent hosts failed; will try again");
    }
  }

  /** Pauses host failure detection while this supervisor is itself cut off from NATS. */
  private async followConnection(): Promise<void> {
    for await (const s of this.nc.status()) {
      if (s.type === "disconnect" || s.type === "staleConnection") this.p.registry.observerDisconnected();
      else if (s.type === "reconnect") this.p.registry.observerReconnected();
    }
  }

  /** A host's liveness changed: an event with the evidence; an unreachable host's actors move. */
  private onLiveness(e: LivenessEvent): void {
    if (!this.active) return;
    const type =
      e.type === "suspected" ? "HOST_SUSPECTED" : e.type === "unreachable" ? "HOST_UNREACHABLE" : "HOST_HEALED";
    this.emit({
      type,
      category: "host",
      scope: e.hostId,
      data: { lastHeartbeatAt: e.lastHeartbeatAt, silenceMs: e.silenceMs, phi: Math.round(e.phi * 100) / 100 },
    });
    if (e.type === "unreachable") {
      this.repairSoon();
      this.p.reassigner.lost(e.hostId);
    } else if (e.type === "healed") {
      this.p.reassigner.healed(e.hostId);
    }
  }

  /**
   * Runs a repair sweep in the background. A sweep can fail while NATS itself is away (the
   * supervisor then sees every host go silent); it is logged and the next sweep tries again,
   * never an unhandled rejection that would end the process.
   */
  private repairSoon(): void {
    this.p.placer
      .repair(this.startedAt)
      .catch((err) => this.logger.warn({ err }, "placement repair failed; will try again"));
  }

  /** Events this supervisor followed and skipped: not decodable, or not parsed by the events table. */
  get skippedEvents(): number {
    return this.p.follower.skipped;
  }

  /** Whether this supervisor holds the lease and acts. */
  get active(): boolean {
    return this.lease?.active ?? false;
  }

  /** Connected to NATS, or trying to reconnect (a closed connection does not come back). */
  healthy(): boolean {
    return !this.nc.isClosed();
  }

  /** Stops serving and closes the connection. */
  async stop(): Promise<void> {
    const p = this.p;
    this.reporter?.stop();
    p.throttle.stop();
    p.registry.detector.stop();
    p.reassigner.stop();
    p.resources.stop();
    p.lifecycle.close();
    p.controls.stop();
    p.dependencies.stop();
    // Given up first, so the others take its partitions at once.
    await this.keeper.stop();
    await this.lease.stop();
    clearInterval(this.repairTimer);
    clearInterval(this.pruneTimer);
    p.results.stop();
    p.tally.stop();
    for (const s of [...this.subs, ...this.activeSubs]) s.unsubscribe();
    await this.server?.stop();
    p.partitionServer.stop();
    await p.results.idle();
    await closeBus(this.bus);
    this.breakers.stop();
    await this.nc.drain();
  }

  /** `cadre_workflows{status="running"}` from the records (the newest 1,000 running), once active. */
  private async seedWorkflowGauge(): Promise<void> {
    this.metrics.workflows.reset();
    try {
      const { workflows } = await this.p.inspector.list({ status: "running", limit: 1000 });
      this.metrics.workflows.set({ status: "running" }, workflows.length);
    } catch (err) {
      this.logger.warn({ err }, "running workflows not counted for metrics");
    }
  }

  private emit(event: TypedEvent, opts?: EmitOptions): void {
    countEvent(this.metrics, event);
    this.bus.emit(event, opts);
  }
}
