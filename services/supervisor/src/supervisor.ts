/**
 * The supervisor: accepts workflows, places actors on hosts, enforces the delegation policy
 * before a subtask is published, and applies results (see results.ts). Its state lives in
 * JetStream (streams and KV), so a restarted supervisor carries on where the last one stopped.
 */

import {
  type ActorSpec,
  type Body,
  type CadreEvent,
  ConcurrentModificationError,
  type Config,
  checkDelegation,
  childTaskId,
  teamId as computeTeamId,
  decodeAs,
  encode,
  HEADERS,
  HeldTaskSchema,
  LeaseRecordSchema,
  NotFoundError,
  newWorkflowId,
  RESULTS_CONSUMER,
  randomId,
  rootTaskId,
  STREAMS,
  subjects,
  type TaskEnvelope,
  type TaskRecord,
  TaskRecordSchema,
  type Team,
  taskConsumer,
  taskMessageId,
  toCadreError,
  UnavailableError,
  type WorkflowRecord,
  WorkflowRecordSchema,
} from "@cadre/protocol";
import {
  Breakers,
  call,
  type Clock,
  type CorruptionReport,
  closeBus,
  connectNats,
  type EventBus,
  ensureInfrastructure,
  eventBusFor,
  frozenKey,
  type LivenessEvent,
  type Logger,
  type NatsConnection,
  PULL_OPTIONS,
  OperationServer,
  StateStore,
  type Subscription,
  systemClock,
} from "@cadre/runtime";
import {
  AckPolicy,
  type ConsumerMessages,
  DeliverPolicy,
  type JetStreamClient,
  type JetStreamManager,
  type JsMsg,
  jetstream,
  jetstreamManager,
} from "@nats-io/jetstream";
import type { KV } from "@nats-io/kv";
import { z } from "zod";
import { LeaseKeeper } from "./lease.js";
import { placeReplicas } from "./placement.js";
import { Quarantine } from "./quarantine.js";
import { planSpawn } from "./quota.js";
import { Reassigner } from "./reassign.js";
import { Registry } from "./registry.js";
import { ResourceManager } from "./resources.js";
import { type ApplyOutcome, ResultApplier } from "./results.js";

const nanos = (ms: number): number => ms * 1_000_000;

/** Options of {@link Supervisor.start}. */
export interface SupervisorOptions {
  config: Config;
  logger: Logger;
  /** @default systemClock */
  clock?: Clock;
  /** @default "supervisor-<random>" */
  id?: string;
}

/** JetStream's advisory when a message was delivered max_deliver times without an ack. */
const MaxDeliveriesAdvisory = z.object({
  stream: z.string(),
  consumer: z.string(),
  stream_seq: z.number(),
  deliveries: z.number(),
});

/** What the supervisor reads from a host's TASK_STARTED event. */
const TaskStartedSchema = HeldTaskSchema.extend({ hostId: z.string() });

/** Ack wait of the results consumer (see consumeResults). */
const RESULTS_ACK_WAIT_MS = 5000;

/**
 * A running supervisor. Several may run: the one holding the lease (lease.ts) serves requests,
 * applies results and repairs placements; the others only follow heartbeats, so that one of
 * them can take over with a warm view of the hosts.
 */
export class Supervisor {
  readonly id: string;
  private readonly config: Config;
  private readonly logger: Logger;
  private readonly clock: Clock;
  private nc!: NatsConnection;
  private bus!: EventBus;
  /** Circuit breakers: spawn per host, state writes, event publishes. */
  private breakers!: Breakers;
  private js!: JetStreamClient;
  private jsm!: JetStreamManager;
  private workflows!: StateStore<WorkflowRecord>;
  private tasks!: StateStore<TaskRecord>;
  private registry!: Registry;
  private applier!: ResultApplier;
  private reassigner!: Reassigner;
  private quarantine!: Quarantine;
  private resources!: ResourceManager;
  private readonly subs: Subscription[] = [];
  /** What only the active supervisor runs; torn down when it stands by. */
  private activeSubs: Subscription[] = [];
  private lease!: LeaseKeeper;
  /** This supervisor's micro-service registration (see announce). */
  private server?: OperationServer;
  private results?: ConsumerMessages;
  private readonly placing = new Map<string, Promise<void>>();
  private readonly placed = new Set<string>();
  private readonly perWorkflow = new Map<string, Promise<void>>();
  /** Workflows in data protection mode (registry keys `frozen.<id>`, followed by a KV watch). */
  private readonly frozen = new Set<string>();
  private registryKv!: KV;
  private readonly reconciling = new Map<
    string,
    {
      applied: number;
      duplicate: number;
      conflict: number;
      invalid: number;
      orphan: number;
      hostId: string;
      deduplicated: number;
      since: number;
      timer: NodeJS.Timeout | undefined;
    }
  >();
  private repairTimer?: NodeJS.Timeout;
  private startedAt = 0;

  private constructor(opts: SupervisorOptions) {
    this.config = opts.config;
    this.logger = opts.logger;
    this.clock = opts.clock ?? systemClock;
    this.id = opts.id ?? `supervisor-${randomId(6)}`;
  }

  /** Connects, creates what is missing in JetStream and starts serving. */
  static async start(opts: SupervisorOptions): Promise<Supervisor> {
    const s = new Supervisor(opts);
    await s.init();
    return s;
  }

  private async init(): Promise<void> {
    this.startedAt = this.clock.now();
    this.nc = await connectNats(this.config.natsUrl, this.id, this.logger);
    this.breakers = new Breakers(this.config.breakers, {
      clock: this.clock,
      source: this.id,
      logger: this.logger,
      emit: (e) => this.emit(e),
    });
    this.bus = eventBusFor(this.nc, this.id, this.config, this.logger, this.clock, this.breakers.get("event_publish"));
    const buckets = await ensureInfrastructure(this.nc, this.config);
    this.registryKv = buckets.registry;
    await this.followFrozen();
    this.js = jetstream(this.nc);
    this.jsm = await jetstreamManager(this.nc);
    // A value whose checksum fails is restored from its history; the event says so.
    const corrupted = (bucket: string) => (r: CorruptionReport) => {
      this.logger.error(r, `damaged ${bucket} record ${r.restoredAs === null ? "not restored" : "restored"}`);
      this.emit({ type: "STATE_CORRUPTED", category: "state", scope: bucket, data: { ...r } });
    };
    const breaker = this.breakers.get("state_update");
    this.workflows = new StateStore(buckets.workflows, WorkflowRecordSchema, "workflow", {
      onCorruption: corrupted("workflows"),
      breaker,
    });
    this.tasks = new StateStore(buckets.tasks, TaskRecordSchema, "task", { onCorruption: corrupted("tasks"), breaker });
    this.registry = new Registry(buckets.registry, this.config, this.clock, (e) => this.onLiveness(e));
    // Checked twice per heartbeat interval (at least every 50 ms), by standbys too, so a new
    // active supervisor starts with a warm view of the hosts.
    this.registry.detector.start(Math.max(10, Math.min(50, this.config.heartbeat.intervalMs / 2)));
    this.resources = new ResourceManager({
      config: this.config,
      clock: this.clock,
      logger: this.logger,
      emit: (e) => this.emit(e),
      team: (teamId) => this.registry.team(teamId),
    });
    this.quarantine = new Quarantine({
      nc: this.nc,
      registry: this.registry,
      config: this.config,
      logger: this.logger,
      sender: this.id,
      emit: (e) => this.emit(e),
      spawnOn: (hostId, incarnation, actors, priority) => this.spawnOn(hostId, incarnation, actors, priority),
      replenish: async (teamId) => {
        const team = await this.registry.team(teamId);
        if (team) await this.ensurePlaced(teamId, team, true);
      },
    });
    this.applier = new ResultApplier({
      nc: this.nc,
      js: this.js,
      quarantine: (actorId, reason) => this.quarantine.quarantine(actorId, reason),
      tasks: this.tasks,
      workflows: this.workflows,
      registry: this.registry,
      config: this.config,
      logger: this.logger,
      sender: this.id,
      emit: (e) => this.emit(e),
    });
    this.reassigner = new Reassigner({
      js: this.js,
      jsm: this.jsm,
      tasks: this.tasks,
      config: this.config,
      clock: this.clock,
      logger: this.logger,
      sender: this.id,
      emit: (e) => this.emit(e),
      active: () => this.active,
      unreachable: (hostId) => this.registry.detector.state(hostId) === "unreachable",
      frozen: (workflowId) => this.frozen.has(workflowId),
    });

    this.subs.push(
      this.nc.subscribe(subjects.allHeartbeats(), {
        callback: (_err, m) => {
          try {
            const hb = decodeAs(m.data, "heartbeat").body;
            this.reassigner.heard(hb);
            if (this.registry.heartbeat(hb) && this.active) {
              this.emit({ type: "HOST_UP", category: "host", scope: hb.hostId, data: { incarnation: hb.incarnation } });
            }
          } catch (err) {
            this.logger.warn({ err }, "bad heartbeat ignored");
          }
        },
      }),
    );
    // Which tasks each host holds, the moment it starts one (see reassign.ts).
    this.subs.push(
      this.nc.subscribe(subjects.eventsOf("task"), {
        callback: (_err, m) => {
          try {
            const e = decodeAs(m.data, "event").body;
            if (e.type !== "TASK_STARTED") return;
            const started = TaskStartedSchema.parse(e.data);
            this.reassigner.started(started.hostId, started);
          } catch (err) {
            this.logger.warn({ err }, "bad task event ignored");
          }
        },
      }),
    );
    void this.followConnection();
    this.lease = new LeaseKeeper({
      store: new StateStore(buckets.registry, LeaseRecordSchema, "supervisor lease"),
      id: this.id,
      ttlMs: this.config.supervisor.leaseTtlMs,
      renewMs: this.config.supervisor.leaseRenewMs,
      clock: this.clock,
      logger: this.logger,
      onAcquire: (lease, previous) => this.activate(lease.term, previous?.holder),
      onLose: (reason) => this.deactivate(reason),
    });
    // A lone supervisor is active before it reports ready; a standby has looked once.
    await this.lease.start();
  }

  /** Becomes the acting supervisor: serves, applies results, repairs placements. */
  private async activate(term: number, previous: string | undefined): Promise<void> {
    const since = this.clock.now();
    await this.registry.load();
    const server = await this.announce("active");
    server.serve("sup.submit", (body) => this.submit(body));
    server.serve("sup.delegate", (body) => this.delegate(body));
    server.serve("sup.status", async ({ workflowId }) => {
      const w = await this.workflows.get(workflowId);
      if (!w) throw new NotFoundError("workflow", workflowId);
      return { workflow: w.value };
    });
    server.serve("sup.quarantine", async ({ op, actorId }) => ({ actors: await this.quarantine.command(op, actorId) }));
    server.serve("sup.acquire", async (req) => ({ resource: req.resource, waitedMs: await this.resources.acquire(req) }));
    server.serve("sup.release", async ({ taskId }) => ({ released: this.resources.release(taskId) }));
    server.serve("sup.freeze", (body) => this.freeze(body));
    server.serve("sup.waits", async () => this.resources.view());
    this.activeSubs = [
      // A host's account of its replay, to know when its reconciliation is complete.
      this.nc.subscribe(subjects.eventsOf("host"), {
        callback: (_err, m) => {
          try {
            const e = decodeAs(m.data, "event").body;
            if (e.type !== "OUTBOX_REPLAYED" || !Number(e.data.deduplicated)) return;
            // Only needed when JetStream swallowed some: the rest arrive with their header.
            this.reconciled(e.scope, String(e.data.batch), undefined, Number(e.data.deduplicated));
          } catch (err) {
            this.logger.warn({ err }, "bad host event ignored");
          }
        },
      }),
      this.nc.subscribe(`$JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES.${STREAMS.tasks}.*`, {
        callback: (_err, m) => void this.onMaxDeliveries(m.data),
      }),
    ];
    await this.consumeResults();
    this.resources.start();
    // Hosts lost before this supervisor took over: their tasks move too.
    for (const hostId of this.registry.unreachableHosts()) this.reassigner.lost(hostId);
    this.repairTimer = setInterval(() => this.repairSoon(), this.config.heartbeat.hostDeadAfterMs / 2);
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
    this.reassigner.stop();
    this.resources.stop();
    this.results?.stop();
    this.results = undefined;
    for (const s of this.activeSubs) s.unsubscribe();
    this.activeSubs = [];
    this.placed.clear();
    await this.announce("standby").catch((err) => this.logger.warn({ err }, "standby service not registered"));
    this.emit({ type: "SUPERVISOR_STANDBY", category: "supervisor", scope: this.id, data: { reason } });
  }

  /**
   * Registers this supervisor as a NATS micro service in its role: the active one with every
   * supervisor operation as an endpoint, a standby with none (so `$SRV.INFO` lists both, and
   * only the active one answers). The previous registration is withdrawn first.
   */
  private async announce(role: "active" | "standby"): Promise<OperationServer> {
    await this.server?.stop();
    this.server = await OperationServer.start(this.nc, {
      name: "cadre-supervisor",
      id: this.id,
      description: "places actors, enforces the delegation policy, applies results",
      logger: this.logger,
      metadata: { role },
    });
    return this.server;
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
    this.registry?.detector.stop();
    this.reassigner?.stop();
    this.resources?.stop();
    await this.lease?.stop();
    clearInterval(this.repairTimer);
    this.results?.stop();
    for (const s of [...this.subs, ...this.activeSubs]) s.unsubscribe();
    await this.server?.stop();
    await Promise.allSettled([...this.perWorkflow.values()]);
    if (this.bus) await closeBus(this.bus);
    this.breakers?.stop();
    await this.nc.drain();
  }

  private emit(event: CadreEvent): void {
    this.bus.emit(event);
  }

  // --- workflow submission -------------------------------------------------------------------

  private async submit(body: Body<"sup.submit">): Promise<Body<"sup.submit.ok">> {
    const team = body.team;
    const tid = computeTeamId(team);
    await this.registry.putTeam(tid, team);
    await this.ensurePlaced(tid, team);
    const workflowId = newWorkflowId();
    const taskId = rootTaskId(workflowId);
    const now = this.clock.now();
    const task: TaskEnvelope = {
      taskId,
      workflowId,
      teamId: tid,
      kind: team.root,
      parentTaskId: null,
      chain: [team.root],
      depth: 0,
      priority: body.priority,
      deadline: null,
      idempotencyKey: taskId,
      epoch: 1,
      input: body.input ?? team.input,
    };
    await this.workflows.create(workflowId, {
      workflowId,
      teamId: tid,
      teamName: team.name,
      rootTaskId: taskId,
      status: "running",
      submittedAt: now,
      finishedAt: null,
      tasks: { total: 1, completed: 0, failed: 0, retried: 0, duplicates: 0, conflicts: 0 },
    });
    await this.enqueue(task, now);
    this.emit({
      type: "WORKFLOW_SUBMITTED",
      category: "workflow",
      scope: workflowId,
      data: { team: team.name, teamId: tid, root: team.root },
    });
    this.logger.info({ workflowId, teamId: tid }, "workflow submitted");
    return { workflowId, rootTaskId: taskId, teamId: tid };
  }

  /**
   * Records a task and publishes it. Both steps are idempotent (create-if-absent, JetStream
   * de-duplication on the task id), so a delegation retried after a crash publishes once.
   * Returns false when the task already existed.
   */
  private async enqueue(task: TaskEnvelope, now: number): Promise<boolean> {
    let created = true;
    try {
      await this.tasks.create(task.taskId, {
        task,
        status: "queued",
        createdAt: now,
        finishedAt: null,
        applied: null,
        duplicates: [],
        conflicts: [],
        invalid: [],
      });
    } catch (err) {
      if (!(err instanceof ConcurrentModificationError)) throw err;
      created = false;
      const existing = await this.tasks.get(task.taskId);
      if (existing && existing.value.status !== "queued") return false;
    }
    await this.js.publish(
      subjects.task(task.teamId, task.kind),
      encode("task", task, { sender: this.id, cid: task.workflowId }),
      { msgID: taskMessageId(task.idempotencyKey, task.epoch) },
    );
    return created;
  }

  // --- data protection mode ----------------------------------------------------------------

  /** Keeps the set of frozen workflows in step with the registry (every supervisor, standbys too). */
  private async followFrozen(): Promise<void> {
    const watch = await this.registryKv.watch({ key: frozenKey(">") });
    void (async () => {
      for await (const e of watch) {
        const id = e.key.slice(frozenKey("").length);
        if (e.operation === "PUT") this.frozen.add(id);
        else this.frozen.delete(id);
      }
    })().catch((err) => this.logger.error({ err }, "frozen-workflow watch stopped"));
  }

  /**
   * Freezes a workflow's state (results are not applied, subtasks not created; both wait and
   * nothing is lost) or unfreezes it.
   */
  private async freeze({ workflowId, frozen }: Body<"sup.freeze">): Promise<Body<"sup.freeze.ok">> {
    if (!(await this.workflows.get(workflowId))) throw new NotFoundError("workflow", workflowId);
    if (frozen) {
      await this.registryKv.put(frozenKey(workflowId), JSON.stringify({ by: this.id, at: this.clock.now() }));
      this.frozen.add(workflowId);
    } else {
      await this.registryKv.delete(frozenKey(workflowId));
      this.frozen.delete(workflowId);
    }
    this.emit({
      type: frozen ? "WORKFLOW_FROZEN" : "WORKFLOW_UNFROZEN",
      category: "workflow",
      scope: workflowId,
      data: { workflowId },
    });
    return { workflowId, frozen };
  }

  // --- delegation ---------------------------------------------------------------------------

  private async delegate(body: Body<"sup.delegate">): Promise<Body<"sup.delegate.ok">> {
    const parent = body.parent;
    if (this.frozen.has(parent.workflowId)) {
      throw new UnavailableError(
        `workflow ${parent.workflowId} is frozen (data protection mode): its subtasks are created once it is unfrozen`,
        { workflowId: parent.workflowId },
      );
    }
    const team = await this.registry.team(parent.teamId);
    if (!team) throw new NotFoundError("team", parent.teamId);
    const now = this.clock.now();
    // Check every subtask before creating any: a refused delegation starts nothing.
    const children = body.subtasks.map((sub, i): TaskEnvelope => {
      if (!(sub.kind in team.kinds)) throw new NotFoundError(`kind of team ${team.name}`, sub.kind);
      let chain: string[];
      try {
        chain = checkDelegation(parent.chain, sub.kind, this.config.orchestration_limits.max_delegation_depth);
      } catch (err) {
        const e = toCadreError(err);
        this.emit({
          type: "DELEGATION_REFUSED",
          category: "delegation",
          scope: parent.workflowId,
          data: { code: e.code, parentTaskId: parent.taskId, ...e.data },
        });
        throw e;
      }
      const taskId = childTaskId(parent.taskId, i);
      return {
        taskId,
        workflowId: parent.workflowId,
        teamId: parent.teamId,
        kind: sub.kind,
        parentTaskId: parent.taskId,
        chain,
        depth: chain.length - 1,
        priority: sub.priority ?? parent.priority,
        deadline: parent.deadline,
        idempotencyKey: taskId,
        epoch: 1,
        input: sub.input,
      };
    });
    const created = await Promise.all(children.map((c) => this.enqueue(c, now)));
    // The director now waits for its new subtasks (wait-for graph, see resources.ts).
    this.resources.waitsOn(
      parent.taskId,
      children.filter((_, i) => created[i]).map((c) => c.taskId),
    );
    const added = created.filter(Boolean).length;
    if (added > 0) {
      await this.workflows.modify(parent.workflowId, (w) =>
        w ? { ...w, tasks: { ...w.tasks, total: w.tasks.total + added } } : undefined,
      );
    }
    return {
      taskIds: children.map((c) => c.taskId),
      existing: children.filter((_, i) => !created[i]).map((c) => c.taskId),
    };
  }

  // --- results ------------------------------------------------------------------------------

  private async consumeResults(): Promise<void> {
    const cfg = {
      durable_name: RESULTS_CONSUMER,
      ack_policy: AckPolicy.Explicit,
      deliver_policy: DeliverPolicy.All,
      // Applying a result takes milliseconds; what a dead supervisor had fetched but not acked
      // comes back to its successor after this (it was 30 s, which held a restarted
      // supervisor's workflows for 30 s in the chaos test). Applying twice is harmless.
      ack_wait: nanos(RESULTS_ACK_WAIT_MS),
      filter_subject: subjects.allResults(),
      max_ack_pending: 10_000,
    };
    try {
      await this.jsm.consumers.add(STREAMS.results, cfg);
    } catch (err) {
      // Created by an earlier version with other settings: bring it up to date.
      if (!(err as Error).message.includes("already exists")) throw err;
      await this.jsm.consumers.update(STREAMS.results, RESULTS_CONSUMER, { ack_wait: cfg.ack_wait });
    }
    const consumer = await this.js.consumers.get(STREAMS.results, RESULTS_CONSUMER);
    this.results = await consumer.consume({ max_messages: 256, ...PULL_OPTIONS });
    void (async () => {
      for await (const m of this.results as ConsumerMessages) this.onResult(m);
    })().catch((err) => this.logger.error({ err }, "results consumer stopped"));
  }

  /** Results of one workflow are applied in arrival order; workflows proceed in parallel. */
  private onResult(m: JsMsg): void {
    let result: Body<"result">;
    try {
      result = decodeAs(m.data, "result").body;
    } catch (err) {
      this.logger.error({ err, seq: m.seq }, "undecodable result dropped");
      m.term();
      return;
    }
    const wf = result.workflowId;
    if (this.frozen.has(wf)) {
      // Data protection mode: the result waits in the stream, applied once the workflow is unfrozen.
      m.nak(1000);
      return;
    }
    const prev = this.perWorkflow.get(wf) ?? Promise.resolve();
    const next = prev.then(async () => {
      try {
        const outcome = await this.applier.apply(result);
        // A finished task holds nothing and nobody waits for it any more.
        if (outcome === "applied") this.resources.release(result.taskId);
        this.logger.debug({ taskId: result.taskId, attempt: result.attempt, outcome }, "result");
        const replay = m.headers?.get(HEADERS.replay);
        if (result.offline) this.reconciled(result.hostId, replay || "unknown", outcome);
        m.ack();
      } catch (err) {
        this.logger.error({ err, taskId: result.taskId }, "result not applied; will retry");
        m.nak(1000);
      }
    });
    this.perWorkflow.set(wf, next);
    void next.then(() => {
      if (this.perWorkflow.get(wf) === next) this.perWorkflow.delete(wf);
    });
  }

  /**
   * Counts how each result a host replayed from its outbox was classified and reports the
   * counts (RECONCILIATION_REPORT) once the whole replay is classified: every replayed result
   * carries `<batch>:<count>` in a header, and the host's OUTBOX_REPLAYED says how many of them
   * JetStream had already (de-duplicated, so never delivered here: duplicates too). applied: the
   * task was still waiting for it; duplicate: it had finished already (another host redid it,
   * or the same result came twice); conflict: superseded by a newer epoch (the task was
   * reassigned while the host was cut off; see reassign.ts); invalid: it broke the kind's schema
   * (its actor quarantined, the task retried); orphan: no such task. Should the rest never come, a partial report goes out
   * after 30 s of quiet.
   */
  private reconciled(hostId: string, batch: string, outcome?: ApplyOutcome, deduplicated?: number): void {
    const count = Number(batch.split(":")[1]);
    const r = this.reconciling.get(batch) ?? {
      hostId,
      applied: 0,
      duplicate: 0,
      conflict: 0,
      invalid: 0,
      orphan: 0,
      deduplicated: 0,
      since: this.clock.now(),
      timer: undefined,
    };
    this.reconciling.set(batch, r);
    if (outcome === "applied") r.applied++;
    else if (outcome === "orphan") r.orphan++;
    else if (outcome === "conflict") r.conflict++;
    else if (outcome === "retried") r.invalid++;
    else if (outcome !== undefined) r.duplicate++;
    if (deduplicated !== undefined) r.deduplicated = deduplicated;
    const report = (complete: boolean) => {
      clearTimeout(r.timer);
      this.reconciling.delete(batch);
      const counts = {
        applied: r.applied,
        duplicate: r.duplicate + r.deduplicated,
        conflict: r.conflict,
        invalid: r.invalid,
        orphan: r.orphan,
      };
      this.emit({
        type: "RECONCILIATION_REPORT",
        category: "host",
        scope: hostId,
        data: {
          hostId,
          batch,
          ...counts,
          total: counts.applied + counts.duplicate + counts.conflict + counts.invalid + counts.orphan,
          replayed: Number.isFinite(count) ? count : null,
          complete,
          ms: this.clock.now() - r.since,
        },
      });
    };
    const classified = r.applied + r.duplicate + r.conflict + r.invalid + r.orphan + r.deduplicated;
    if (Number.isFinite(count) && classified >= count) {
      report(true);
      return;
    }
    clearTimeout(r.timer);
    r.timer = setTimeout(() => report(false), 30_000);
    r.timer.unref();
  }

  /** A task delivered max_deliver times without an ack fails for good, with the reason. */
  private async onMaxDeliveries(data: Uint8Array): Promise<void> {
    try {
      const adv = MaxDeliveriesAdvisory.parse(JSON.parse(new TextDecoder().decode(data)));
      const stored = await this.jsm.streams.getMessage(STREAMS.tasks, { seq: adv.stream_seq });
      if (!stored) return;
      const task = decodeAs(stored.data, "task").body;
      const now = this.clock.now();
      await this.applier.apply({
        taskId: task.taskId,
        workflowId: task.workflowId,
        epoch: task.epoch,
        attempt: adv.deliveries,
        hostId: this.id,
        actorId: this.id,
        status: "failed",
        error: new UnavailableError(
          `task ${task.taskId} was delivered ${adv.deliveries} times (tasks.maxDeliver) and no attempt finished; the hosts that took it stopped or stalled`,
          { deliveries: adv.deliveries },
        ).toWire(),
        startedAt: now,
        finishedAt: now,
      });
      await this.jsm.streams.deleteMessage(STREAMS.tasks, adv.stream_seq);
    } catch (err) {
      this.logger.error({ err }, "max-deliveries advisory not handled");
    }
  }

  // --- placement ----------------------------------------------------------------------------

  /**
   * Makes sure each kind of the team has its consumer and `replicas` live actors. One at a time
   * per team; once placed, a team is checked again only when the repair sweep finds lost actors.
   */
  private ensurePlaced(tid: string, team: Team, force = false): Promise<void> {
    if (!force && this.placed.has(tid)) return Promise.resolve();
    const prev = this.placing.get(tid) ?? Promise.resolve();
    const next = prev
      .catch(() => {})
      .then(() => this.place(tid, team))
      .then(() => {
        this.placed.add(tid);
      });
    this.placing.set(tid, next);
    return next;
  }

  private async place(tid: string, team: Team): Promise<void> {
    for (const kindName of Object.keys(team.kinds)) {
      await this.jsm.consumers.add(STREAMS.tasks, {
        durable_name: taskConsumer(tid, kindName),
        ack_policy: AckPolicy.Explicit,
        ack_wait: nanos(this.config.tasks.ackWaitMs),
        max_deliver: this.config.tasks.maxDeliver,
        filter_subject: subjects.task(tid, kindName),
      });
    }
    const alive = await this.registry.liveHosts();
    if (alive.length === 0) {
      throw new UnavailableError("no agent-host is alive; start one (cadre-agent-host) and submit again");
    }
    // A host whose spawn circuit is open is skipped while others can take its share.
    const reachable = alive.filter((h) => !this.breakers.isOpen("agent_spawn", h.hostId));
    const hosts = reachable.length > 0 ? reachable : alive;
    const byHost = new Map<string, ActorSpec[]>();
    const incarnations = new Map(hosts.map((h) => [h.hostId, h.incarnation]));
    const load = hosts.map((h) => ({ hostId: h.hostId, actors: h.actors, maxActors: h.maxActors }));
    for (const [kindName, kind] of Object.entries(team.kinds)) {
      // A quarantined actor is not a replica: its replacement is.
      const live = this.registry
        .actorsOf(tid, kindName)
        .filter((a) => a.status === "active" && this.registry.isActorLive(a));
      const need = kind.replicas - live.length;
      if (need <= 0) continue;
      const kindHosts = new Map<string, number>();
      for (const a of live) kindHosts.set(a.hostId, (kindHosts.get(a.hostId) ?? 0) + 1);
      const allowed = kind.hosts ? load.filter((h) => kind.hosts?.includes(h.hostId)) : load;
      const chosen = placeReplicas(allowed, kindHosts, need);
      if (chosen.length === 0 && live.length === 0) {
        throw new UnavailableError(
          `no live agent-host can take actors of kind "${kindName}"${kind.hosts ? ` (allowed hosts: ${kind.hosts.join(", ")})` : ""}; start one or free capacity`,
        );
      }
      for (const hostId of chosen) {
        const spec: ActorSpec = { actorId: `${kindName}-${randomId(8)}`, teamId: tid, kindName, kind };
        byHost.set(hostId, [...(byHost.get(hostId) ?? []), spec]);
        const h = load.find((x) => x.hostId === hostId);
        if (h) h.actors++;
      }
    }
    // Quotas: refused past the team's own limit; at the cluster's, lower-priority actors make room.
    const limits = this.config.orchestration_limits;
    const victims = planSpawn({
      teamId: tid,
      priority: team.priority,
      need: [...byHost.values()].reduce((n, a) => n + a.length, 0),
      actors: this.registry.allActors().filter((a) => a.status === "active" && this.registry.isActorLive(a)),
      maxPerTeam: limits.max_agents_per_orchestrator,
      maxGlobal: limits.max_concurrent_agents,
    });
    for (const v of victims) await this.quarantine.preempt(v.actorId, { teamId: tid, priority: team.priority });
    await Promise.all(
      [...byHost].map(([hostId, actors]) => this.spawnOn(hostId, incarnations.get(hostId), actors, team.priority)),
    );
  }

  /** Asks a host to start actors and records them (with what a replacement inherited). */
  private async spawnOn(
    hostId: string,
    incarnation: string | undefined,
    actors: ActorSpec[],
    priority: number,
  ): Promise<void> {
    // One breaker per host: a host whose control endpoint keeps failing is left out of placement
    // (see place) until a trial spawn succeeds, and the others are not held up by it.
    await this.breakers.get("agent_spawn", hostId).call(() =>
      call(this.nc, "host.spawn", { actors }, { sender: this.id, hostId, timeoutMs: this.config.requestTimeoutMs }),
    );
    const now = this.clock.now();
    for (const a of actors) {
      await this.registry.putActor({
        actorId: a.actorId,
        teamId: a.teamId,
        kindName: a.kindName,
        hostId,
        incarnation: incarnation ?? "",
        spawnedAt: now,
        priority,
        status: "active",
        ...(a.inherit ? { replaces: a.inherit.fromActorId } : {}),
      });
      this.emit({
        type: "ACTOR_SPAWNED",
        category: "actor",
        scope: a.actorId,
        data: {
          hostId,
          teamId: a.teamId,
          kind: a.kindName,
          ...(a.inherit ? { replaces: a.inherit.fromActorId, inheritedTasks: a.inherit.history.length } : {}),
        },
      });
    }
  }

  /**
   * Runs a repair sweep in the background. A sweep can fail while NATS itself is away (the
   * supervisor then sees every host go silent); it is logged and the next sweep tries again,
   * never an unhandled rejection that would end the process.
   */
  private repairSoon(): void {
    this.repairPlacements().catch((err) => this.logger.warn({ err }, "placement repair failed; will try again"));
  }

  /** Re-places actors that were on hosts that stopped sending heartbeats. */
  private async repairPlacements(): Promise<void> {
    // Right after a start, silence only means heartbeats have not arrived yet.
    if (this.clock.now() - this.startedAt < this.config.heartbeat.hostDeadAfterMs * 2) return;
    const dead = this.registry.deadActors();
    if (dead.length === 0) return;
    const teams = new Set(dead.map((a) => a.teamId));
    for (const a of dead) {
      await this.registry.removeActor(a.actorId);
      this.emit({
        type: "ACTOR_LOST",
        category: "actor",
        scope: a.actorId,
        data: { hostId: a.hostId, kind: a.kindName },
      });
    }
    for (const tid of teams) {
      const team = await this.registry.team(tid);
      if (!team) continue;
      try {
        await this.ensurePlaced(tid, team, true);
      } catch (err) {
        this.logger.warn({ err, teamId: tid }, "could not re-place actors yet");
      }
    }
  }
}
