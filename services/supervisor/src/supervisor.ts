/**
 * The supervisor: its setup and the active/standby switch. The work is done by collaborators
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

import {
  type Config,
  LeaseRecordSchema,
  partitionOf,
  randomId,
  subjects,
  type TaskRecord,
  TaskRecordSchema,
  type TypedEvent,
  type WorkflowRecord,
  WorkflowRecordSchema,
} from "@cadre/protocol";
import {
  Breakers,
  Budgets,
  type CadreMetrics,
  CallJournal,
  type Clock,
  type CorruptionReport,
  call,
  closeBus,
  connectNats,
  countEvent,
  createMetrics,
  type EmitOptions,
  type EventBus,
  ensureInfrastructure,
  eventBusFor,
  type LivenessEvent,
  type Logger,
  type NatsConnection,
  natsAuthOf,
  OperationServer,
  PartitionServer,
  Reporter,
  StateStore,
  type Subscription,
  systemClock,
  type ThrottledLog,
  taskTokenKey,
  throttledLog,
} from "@cadre/runtime";
import { jetstream, jetstreamManager } from "@nats-io/jetstream";
import { WorkflowControls } from "./controls.js";
import { Coordination } from "./coordinate.js";
import { Dependencies } from "./dependencies.js";
import { Follower } from "./follow.js";
import { Inspector } from "./inspect.js";
import { Intake } from "./intake.js";
import { LeaseKeeper } from "./lease.js";
import { Lifecycle } from "./lifecycle.js";
import { PartitionKeeper } from "./partitions.js";
import { Placer } from "./placer.js";
import { Quarantine } from "./quarantine.js";
import { Reassigner } from "./reassign.js";
import { Registry } from "./registry.js";
import { ResourceManager } from "./resources.js";
import { ResultStream } from "./result-stream.js";
import { ResultApplier } from "./results.js";
import { type Handlers, operationHandlers, partitioned, serveOperations, shared } from "./routes.js";
import { StateOps } from "./state-ops.js";
import { ReconciliationTally } from "./tally.js";
import { AdmissionThrottle } from "./throttle.js";
import { ContextTransfer } from "./transfer.js";
import { workflowOf } from "./tree.js";

/** How many task records and how many workflow records the active supervisor keeps cached (runtime StateStore). */
export const RECORDS_CACHED = 10_000;

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
  private throttle!: AdmissionThrottle;
  private stateOps!: StateOps;
  private readonly config: Config;
  private readonly logger: Logger;
  private readonly clock: Clock;
  private nc!: NatsConnection;
  private bus!: EventBus;
  /** Circuit breakers: spawn per host, state writes, event publishes. */
  private breakers!: Breakers;
  private workflows!: StateStore<WorkflowRecord>;
  private tasks!: StateStore<TaskRecord>;
  private registry!: Registry;
  private reassigner!: Reassigner;
  private quarantine!: Quarantine;
  private transfer!: ContextTransfer;
  private resources!: ResourceManager;
  private placer!: Placer;
  private intake!: Intake;
  private controls!: WorkflowControls;
  private dependencies!: Dependencies;
  private lifecycle!: Lifecycle;
  private inspector!: Inspector;
  private results!: ResultStream;
  private tally!: ReconciliationTally;
  private readonly subs: Subscription[] = [];
  /** What only the active supervisor runs; torn down when it stands by. */
  private activeSubs: Subscription[] = [];
  private lease!: LeaseKeeper;
  private keeper!: PartitionKeeper;
  private coordination!: Coordination;
  /** This supervisor's micro-service registration (see announce). */
  private server?: OperationServer;
  /** What answers each operation (the lease holder's service, the partitions' server). */
  private handlers!: Handlers;
  /** Answers the partitioned operations of the partitions held. */
  private partitionServer!: PartitionServer;
  /** Registrations one at a time: an activation may follow a standby's at once. */
  private announcing: Promise<unknown> = Promise.resolve();
  private repairTimer?: NodeJS.Timeout;
  /** Forgets hosts that never registered, or died long ago (every supervisor, standbys too). */
  private pruneTimer?: NodeJS.Timeout;
  private startedAt = 0;
  /** Heartbeats and task starts, followed by every supervisor (follow.ts). */
  private follower!: Follower;
  /** Logs what bad input causes, at most so many lines a window (runtime logger.ts). */
  private readonly noisy: ThrottledLog;
  /** Derives task tokens (runtime authenticity.ts); undefined in an anonymous deployment. */
  private taskKey?: Buffer;

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
    this.taskKey = taskKey;
    const { metrics } = this;
    this.breakers = new Breakers(config.breakers, { clock, source: sender, logger, emit, metrics });
    this.bus = eventBusFor(nc, sender, config, logger, clock, this.breakers.get("event_publish"), { metrics });
    const buckets = await ensureInfrastructure(nc, config);
    const js = jetstream(nc);
    const jsm = await jetstreamManager(nc);
    // A value whose checksum fails is restored from its history; the event says so.
    const corrupted = (bucket: string) => (r: CorruptionReport) => {
      logger.error(r, `damaged ${bucket} record ${r.restoredAs === null ? "not restored" : "restored"}`);
      emit({ type: "STATE_CORRUPTED", category: "state", scope: bucket, data: { ...r } });
    };
    const breaker = this.breakers.get("state_update");
    // While one supervisor alone writes these records (it holds the lease and every partition)
    // it keeps the newest it read or wrote and reads them back without a round trip (see
    // updateCaching; a write by anyone else fails its next compare-and-set, which forgets the key).
    const workflows = new StateStore(buckets.workflows, WorkflowRecordSchema, "workflow", {
      onCorruption: corrupted("workflows"),
      breaker,
      metrics,
      cacheEntries: RECORDS_CACHED,
    });
    const tasks = new StateStore(buckets.tasks, TaskRecordSchema, "task", {
      onCorruption: corrupted("tasks"),
      breaker,
      metrics,
      cacheEntries: RECORDS_CACHED,
    });
    this.workflows = workflows;
    this.tasks = tasks;
    this.stateOps = new StateOps({
      kv: buckets.state,
      js,
      workflows,
      writer: sender,
      txnTimeoutMs: config.storage.txnTimeoutMs,
      emit,
    });
    const registry = new Registry(buckets.registry, config, clock, (e) => this.onLiveness(e));
    this.registry = registry;
    // Checked twice per heartbeat interval (at least every 50 ms), by standbys too, so a new
    // active supervisor starts with a warm view of the hosts.
    registry.detector.start(Math.max(10, Math.min(50, config.heartbeat.intervalMs / 2)));
    this.resources = new ResourceManager({ config, clock, logger, emit, team: (t) => registry.team(t) });
    this.reassigner = new Reassigner({
      js,
      jsm,
      tasks,
      config,
      clock,
      logger,
      sender,
      taskKey,
      emit,
      active: () => this.active,
      unreachable: (hostId) => registry.detector.state(hostId) === "unreachable",
      frozen: (workflowId) => this.controls.isFrozen(workflowId),
      reassigned: (taskId) => this.controls.finished(taskId),
    });
    this.controls = new WorkflowControls({
      kv: buckets.registry,
      tasks,
      workflows,
      js,
      config,
      clock,
      logger,
      sender,
      taskKey,
      emit,
      holdings: () => this.reassigner.holdings(),
      taskOnHost: (hostId, body) => call(nc, "host.task", body, { sender, hostId, timeoutMs: config.requestTimeoutMs }),
      role: async (teamId, kind) => (await registry.team(teamId))?.kinds[kind]?.role,
      release: (taskId) => this.resources.release(taskId),
    });
    await this.controls.follow();
    this.dependencies = new Dependencies({
      workflows,
      tasks,
      js,
      sender,
      taskKey,
      clock,
      logger,
      emit,
      ended: (workflowId) => this.controls.ended(workflowId),
    });
    await this.dependencies.follow();
    this.placer = new Placer({
      nc,
      jsm,
      config,
      clock,
      logger,
      sender,
      registry,
      breakers: this.breakers,
      quarantine: () => this.quarantine,
      emit,
      cordoned: (hostId) => this.lifecycle.isCordoned(hostId),
      guarantees: () => this.controls.guarantees(),
      reclaimIdle: (need, forTeam) => this.lifecycle.reclaimIdle(need, forTeam),
    });
    this.lifecycle = new Lifecycle({
      nc,
      jsm,
      kv: buckets.registry,
      config,
      clock,
      logger,
      sender,
      registry,
      placer: this.placer,
      emit,
      hostState: (hostId) => registry.detector.state(hostId),
    });
    await this.lifecycle.follow();
    this.quarantine = new Quarantine({
      nc,
      registry,
      config,
      logger,
      sender,
      emit,
      spawnOn: (hostId, incarnation, actors, priority) => this.placer.spawnOn(hostId, incarnation, actors, priority),
      replenish: async (teamId) => {
        const team = await registry.team(teamId);
        if (team) await this.placer.ensurePlaced(teamId, team, true);
      },
    });
    this.transfer = new ContextTransfer({
      nc,
      registry,
      config,
      logger,
      sender,
      emit,
      spawnOn: (hostId, incarnation, actors, priority) => this.placer.spawnOn(hostId, incarnation, actors, priority),
      cordoned: (hostId) => this.lifecycle.isCordoned(hostId),
    });
    this.tally = new ReconciliationTally({ clock, emit });
    this.coordination = new Coordination({
      nc,
      sender,
      clock,
      logger,
      requestTimeoutMs: config.requestTimeoutMs,
      active: () => this.active,
      resources: () => this.resources,
      controls: () => this.controls,
      tally: () => this.tally,
      dependencies: () => this.dependencies,
      quarantine: (actorId, reason) => this.quarantine.quarantine(actorId, reason),
      demand: async (teamId, kinds) => {
        const team = await registry.team(teamId);
        if (team) for (const kind of kinds) this.placer.demand(teamId, team, kind);
      },
      place: (teamId, team) => this.placer.ensurePlaced(teamId, team),
    });
    const applier = new ResultApplier({
      nc,
      js,
      quarantine: (actorId, reason) => this.coordination.quarantine(actorId, reason),
      tasks,
      workflows,
      registry,
      config,
      logger,
      sender,
      taskKey,
      metrics: this.metrics,
      now: () => clock.now(),
      emit,
      journal: new CallJournal(buckets.llm),
    });
    this.results = new ResultStream({
      nc,
      js,
      jsm,
      config,
      clock,
      logger,
      sender,
      apply: (r, opts) => applier.apply(r, opts),
      frozen: (wf) => this.controls.isFrozen(wf),
      taskKey,
      hostKey: async (hostId) => (await registry.hostRecord(hostId))?.publicKey,
      emit,
      applied: (result, outcome, replay) => this.coordination.applied(result, outcome, replay),
    });
    // Every supervisor follows the lease holder's throttle; the lease holder alone announces it.
    this.throttle = new AdmissionThrottle({
      clock,
      emit: (e) => {
        if (this.active) emit(e);
      },
      kv: buckets.registry,
      logger,
    });
    await this.throttle.follow();
    this.intake = new Intake({
      throttle: this.throttle,
      config,
      clock,
      logger,
      sender,
      taskKey,
      metrics: this.metrics,
      js,
      tasks,
      workflows,
      registry,
      place: (teamId, team) => this.coordination.submitted(teamId, team),
      held: () => this.results.held,
      controls: this.controls,
      delegated: (parent, teamId, created, kinds) => this.coordination.delegated(parent, teamId, created, kinds),
      budgets: new Budgets(buckets.llm, { now: () => Date.now(), emit }),
      dependencies: this.dependencies,
      emit,
    });
    this.inspector = new Inspector({
      nc,
      config,
      clock,
      sender,
      tasks,
      workflows,
      registry,
      control: (wf) => this.controls.get(wf),
      // Held and admitted: a task a host holds while it waits for admission is not running.
      holder: (taskId) => this.reassigner.holdings().find((h) => h.taskId === taskId && !h.admitting)?.hostId,
    });
    this.follower = new Follower({
      nc,
      clock,
      metrics: this.metrics,
      noisy: this.noisy,
      taskKey,
      reassigner: this.reassigner,
      controls: this.controls,
      lifecycle: this.lifecycle,
      registry,
      results: () => this.results,
      inspector: this.inspector,
      active: () => this.active,
      emit,
    });
    const { intake, controls, dependencies, lifecycle, inspector, quarantine, resources } = this;
    this.handlers = operationHandlers({
      intake,
      controls,
      dependencies,
      lifecycle,
      inspector,
      quarantine,
      resources,
      throttle: this.throttle,
      state: this.stateOps,
      transfer: this.transfer,
      metrics: this.metrics,
      taskKey: this.taskKey,
      coordination: this.coordination,
    });
    // A partition's delegations are answered by its holder, lease or not (see acquired).
    this.partitionServer = new PartitionServer(nc, { id: sender, logger });
    this.partitionServer.handle(partitioned(this.handlers));
    this.subs.push(...this.follower.start());
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
    this.tasks.forgetAll();
    this.workflows.forgetAll();
    await this.registry.load();
    await this.controls.seedRunning();
    const s = await this.announce("active");
    await this.seedWorkflowGauge();
    serveOperations(s, this.handlers);
    this.activeSubs = [
      // A host's account of its replay, to know when its reconciliation is complete.
      this.nc.subscribe(subjects.eventsOf("host"), {
        callback: (_err, m) => {
          const e = this.follower.readEvent(m.data, "OUTBOX_REPLAYED")?.event;
          if (e?.type !== "OUTBOX_REPLAYED") return;
          // Only needed when JetStream swallowed some: the rest arrive with their header.
          if (e.data.deduplicated > 0) this.tally.deduplicated(e.scope, e.data.batch, e.data.deduplicated);
        },
      }),
    ];
    this.results.watchMaxDeliveries();
    this.roleChanged();
    this.resources.start();
    this.lifecycle.start();
    // Hosts lost before this supervisor took over: their tasks move too.
    for (const hostId of this.registry.unreachableHosts()) this.reassigner.lost(hostId);
    // Waiting workflows whose dependencies ended under the last supervisor: released (or failed) now.
    this.dependencies
      .sweep()
      .then((n) => n > 0 && this.logger.info({ dependents: n }, "waiting workflows settled on taking over"))
      .catch((err) => this.logger.warn({ err }, "waiting workflows not settled on taking over; will try again"));
    this.repairTimer = setInterval(() => {
      this.repairSoon();
      this.dependencies.sweepIfOwed();
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
    this.tasks.forgetAll();
    this.workflows.forgetAll();
    this.reassigner.stop();
    this.resources.stop();
    this.lifecycle.stop();
    this.results.stopMaxDeliveries();
    this.roleChanged();
    for (const s of this.activeSubs) s.unsubscribe();
    this.activeSubs = [];
    this.placer.clear();
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
    await this.results.startPartition(partition);
    this.partitionServer.take(partition);
    this.roleChanged();
    const held = this.results.held;
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
    this.results.stopPartition(partition);
    this.partitionServer.give(partition);
    this.roleChanged();
    const held = this.results.held;
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
    if (!this.active && this.results.held.length > 0) this.partitionServer.share(shared(this.handlers));
    else this.partitionServer.unshare();
  }

  /**
   * Task and workflow records are cached only where this supervisor is their writer: those of
   * the workflows in the partitions it holds (their submits, delegations and results are its).
   * What the lease holder writes of another's partition (a reassignment, a cancel) the holder
   * finds out at its next compare-and-set, which fails, forgets the key and is retried on a
   * fresh read. Holding every partition, it caches all.
   */
  private updateCaching(): void {
    const held = new Set(this.results.held);
    const P = this.config.supervisor.partitions;
    const all = held.size === P;
    const mine = (workflowId: string) => held.has(partitionOf(workflowId, P));
    this.tasks.setCaching(all || ((taskId) => mine(workflowOf(taskId))));
    this.workflows.setCaching(all || mine);
  }

  /** The partitions whose results this supervisor applies. */
  get partitions(): number[] {
    return this.results.held;
  }

  /** Hosts the registry forgot (never registered, or dead long ago) are forgotten everywhere. */
  private async pruneHosts(): Promise<void> {
    try {
      const gone = await this.registry.prune();
      for (const hostId of gone) {
        this.reassigner.forget(hostId);
        this.follower.forget(hostId);
        this.lifecycle.forget(hostId);
      }
      if (gone.length > 0) this.logger.info({ hosts: gone.slice(0, 20), count: gone.length }, "silent hosts forgotten");
    } catch (err) {
      this.logger.warn({ err }, "forgetting silent hosts failed; will try again");
    }
  }

  /** Pauses host failure detection while this supervisor is itself cut off from NATS. */
  private async followConnection(): Promise<void> {
    for await (const s of this.nc.status()) {
      if (s.type === "disconnect" || s.type === "staleConnection") this.registry.observerDisconnected();
      else if (s.type === "reconnect") this.registry.observerReconnected();
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
      this.reassigner.lost(e.hostId);
    } else if (e.type === "healed") {
      this.reassigner.healed(e.hostId);
    }
  }

  /**
   * Runs a repair sweep in the background. A sweep can fail while NATS itself is away (the
   * supervisor then sees every host go silent); it is logged and the next sweep tries again,
   * never an unhandled rejection that would end the process.
   */
  private repairSoon(): void {
    this.placer
      .repair(this.startedAt)
      .catch((err) => this.logger.warn({ err }, "placement repair failed; will try again"));
  }

  /** Events this supervisor followed and skipped: not decodable, or not parsed by the events table. */
  get skippedEvents(): number {
    return this.follower.skipped;
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
    this.reporter?.stop();
    this.throttle?.stop();
    this.registry?.detector.stop();
    this.reassigner?.stop();
    this.resources?.stop();
    this.lifecycle?.close();
    this.controls?.stop();
    this.dependencies?.stop();
    // Given up first, so the others take its partitions at once.
    await this.keeper?.stop();
    await this.lease?.stop();
    clearInterval(this.repairTimer);
    clearInterval(this.pruneTimer);
    this.results?.stop();
    this.tally?.stop();
    for (const s of [...this.subs, ...this.activeSubs]) s.unsubscribe();
    await this.server?.stop();
    this.partitionServer?.stop();
    await this.results?.idle();
    if (this.bus) await closeBus(this.bus);
    this.breakers?.stop();
    await this.nc.drain();
  }

  /** `cadre_workflows{status="running"}` from the records (the newest 1,000 running), once active. */
  private async seedWorkflowGauge(): Promise<void> {
    this.metrics.workflows.reset();
    try {
      const { workflows } = await this.inspector.list({ status: "running", limit: 1000 });
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
