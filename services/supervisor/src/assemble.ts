/**
 * The supervisor's parts and how they are wired together: the records, the registry and the
 * collaborators of one concern each (supervisor.ts lists them), the operations they answer, and
 * the partition server that routes a partition's operations to its holder. What switches them
 * between acting and standing by is supervisor.ts; this builds them once, at start.
 */

import {
  type Config,
  type TaskRecord,
  TaskRecordSchema,
  type TypedEvent,
  type WorkflowRecord,
  WorkflowRecordSchema,
} from "@cadre/protocol";
import {
  type Breakers,
  Budgets,
  type CadreMetrics,
  CallJournal,
  type Clock,
  type CorruptionReport,
  call,
  type EmitOptions,
  ensureInfrastructure,
  type LivenessEvent,
  type Logger,
  type NatsConnection,
  PartitionServer,
  StateStore,
  type ThrottledLog,
} from "@cadre/runtime";
import { jetstream, jetstreamManager } from "@nats-io/jetstream";
import { WorkflowControls } from "./controls.js";
import { Coordination } from "./coordinate.js";
import { Dependencies } from "./dependencies.js";
import { Follower } from "./follow.js";
import { Inspector } from "./inspect.js";
import { Intake } from "./intake.js";
import { Lifecycle } from "./lifecycle.js";
import { Placer } from "./placer.js";
import { Quarantine } from "./quarantine.js";
import { Reassigner } from "./reassign.js";
import { Registry } from "./registry.js";
import { ResourceManager } from "./resources.js";
import { ResultStream } from "./result-stream.js";
import { ResultApplier } from "./results.js";
import { type Handlers, operationHandlers, partitioned } from "./routes.js";
import { StateOps } from "./state-ops.js";
import { ReconciliationTally } from "./tally.js";
import { AdmissionThrottle } from "./throttle.js";
import { ContextTransfer } from "./transfer.js";

/** How many task records and how many workflow records the active supervisor keeps cached (runtime StateStore). */
export const RECORDS_CACHED = 10_000;

/** What the parts are built from: the supervisor's connection, identity and outlets. */
export interface AssemblyDeps {
  nc: NatsConnection;
  config: Config;
  clock: Clock;
  logger: Logger;
  /** This supervisor's id, the sender of what it sends. */
  sender: string;
  metrics: CadreMetrics;
  noisy: ThrottledLog;
  breakers: Breakers;
  /** With an identity, every task carries a token and every result must prove holding it. */
  taskKey: Buffer | undefined;
  emit: (event: TypedEvent, opts?: EmitOptions) => void;
  /** Whether this supervisor holds the lease (asked when it matters, not at build time). */
  active: () => boolean;
  /** A host's liveness changed (the registry's failure detector). */
  onLiveness: (e: LivenessEvent) => void;
}

/** The supervisor's parts, wired; those that follow KV watches already follow them. */
export interface Parts {
  buckets: Awaited<ReturnType<typeof ensureInfrastructure>>;
  workflows: StateStore<WorkflowRecord>;
  tasks: StateStore<TaskRecord>;
  registry: Registry;
  resources: ResourceManager;
  reassigner: Reassigner;
  controls: WorkflowControls;
  dependencies: Dependencies;
  placer: Placer;
  lifecycle: Lifecycle;
  quarantine: Quarantine;
  tally: ReconciliationTally;
  coordination: Coordination;
  results: ResultStream;
  throttle: AdmissionThrottle;
  inspector: Inspector;
  follower: Follower;
  /** What answers each operation (the lease holder's service, the partitions' server). */
  handlers: Handlers;
  /** Answers the partitioned operations of the partitions held. */
  partitionServer: PartitionServer;
}

/** Creates what is missing in JetStream, then builds and wires every part. */
export async function assemble(d: AssemblyDeps): Promise<Parts> {
  const { nc, config, clock, logger, sender, metrics, noisy, breakers, taskKey, emit, active, onLiveness } = d;
  const buckets = await ensureInfrastructure(nc, config);
  const js = jetstream(nc);
  const jsm = await jetstreamManager(nc);
  // A value whose checksum fails is restored from its history; the event says so.
  const corrupted = (bucket: string) => (r: CorruptionReport) => {
    logger.error(r, `damaged ${bucket} record ${r.restoredAs === null ? "not restored" : "restored"}`);
    emit({ type: "STATE_CORRUPTED", category: "state", scope: bucket, data: { ...r } });
  };
  const breaker = breakers.get("state_update");
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
  const stateOps = new StateOps({
    kv: buckets.state,
    js,
    workflows,
    writer: sender,
    txnTimeoutMs: config.storage.txnTimeoutMs,
    emit,
  });
  const registry = new Registry(buckets.registry, config, clock, (e) => onLiveness(e));
  // Checked twice per heartbeat interval (at least every 50 ms), by standbys too, so a new
  // active supervisor starts with a warm view of the hosts.
  registry.detector.start(Math.max(10, Math.min(50, config.heartbeat.intervalMs / 2)));
  const resources: ResourceManager = new ResourceManager({
    config,
    clock,
    logger,
    emit,
    team: (t) => registry.team(t),
  });
  const reassigner: Reassigner = new Reassigner({
    js,
    jsm,
    tasks,
    config,
    clock,
    logger,
    sender,
    taskKey,
    emit,
    active: () => active(),
    unreachable: (hostId) => registry.detector.state(hostId) === "unreachable",
    frozen: (workflowId) => controls.isFrozen(workflowId),
    reassigned: (taskId) => controls.finished(taskId),
  });
  const controls: WorkflowControls = new WorkflowControls({
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
    holdings: () => reassigner.holdings(),
    taskOnHost: (hostId, body) => call(nc, "host.task", body, { sender, hostId, timeoutMs: config.requestTimeoutMs }),
    role: async (teamId, kind) => (await registry.team(teamId))?.kinds[kind]?.role,
    release: (taskId) => resources.release(taskId),
  });
  await controls.follow();
  const dependencies: Dependencies = new Dependencies({
    workflows,
    tasks,
    js,
    sender,
    taskKey,
    clock,
    logger,
    emit,
    ended: (workflowId) => controls.ended(workflowId),
  });
  await dependencies.follow();
  const placer: Placer = new Placer({
    nc,
    jsm,
    config,
    clock,
    logger,
    sender,
    registry,
    breakers,
    quarantine: () => quarantine,
    emit,
    cordoned: (hostId) => lifecycle.isCordoned(hostId),
    guarantees: () => controls.guarantees(),
    reclaimIdle: (need, forTeam) => lifecycle.reclaimIdle(need, forTeam),
  });
  const lifecycle: Lifecycle = new Lifecycle({
    nc,
    jsm,
    kv: buckets.registry,
    config,
    clock,
    logger,
    sender,
    registry,
    placer,
    emit,
    hostState: (hostId) => registry.detector.state(hostId),
  });
  await lifecycle.follow();
  const quarantine: Quarantine = new Quarantine({
    nc,
    registry,
    config,
    logger,
    sender,
    emit,
    spawnOn: (hostId, incarnation, actors, priority) => placer.spawnOn(hostId, incarnation, actors, priority),
    replenish: async (teamId) => {
      const team = await registry.team(teamId);
      if (team) await placer.ensurePlaced(teamId, team, true);
    },
  });
  const transfer: ContextTransfer = new ContextTransfer({
    nc,
    registry,
    config,
    logger,
    sender,
    emit,
    spawnOn: (hostId, incarnation, actors, priority) => placer.spawnOn(hostId, incarnation, actors, priority),
    cordoned: (hostId) => lifecycle.isCordoned(hostId),
  });
  const tally: ReconciliationTally = new ReconciliationTally({ clock, emit });
  const coordination: Coordination = new Coordination({
    nc,
    sender,
    clock,
    logger,
    requestTimeoutMs: config.requestTimeoutMs,
    active: () => active(),
    resources: () => resources,
    controls: () => controls,
    tally: () => tally,
    dependencies: () => dependencies,
    quarantine: (actorId, reason) => quarantine.quarantine(actorId, reason),
    demand: async (teamId, kinds) => {
      const team = await registry.team(teamId);
      if (team) for (const kind of kinds) placer.demand(teamId, team, kind);
    },
    place: (teamId, team) => placer.ensurePlaced(teamId, team),
  });
  const applier = new ResultApplier({
    nc,
    js,
    quarantine: (actorId, reason) => coordination.quarantine(actorId, reason),
    tasks,
    workflows,
    registry,
    config,
    logger,
    sender,
    taskKey,
    metrics,
    now: () => clock.now(),
    emit,
    journal: new CallJournal(buckets.llm),
  });
  const results: ResultStream = new ResultStream({
    nc,
    js,
    jsm,
    config,
    clock,
    logger,
    sender,
    apply: (r, opts) => applier.apply(r, opts),
    frozen: (wf) => controls.isFrozen(wf),
    taskKey,
    hostKey: async (hostId) => (await registry.hostRecord(hostId))?.publicKey,
    emit,
    applied: (result, outcome, replay) => coordination.applied(result, outcome, replay),
  });
  // Every supervisor follows the lease holder's throttle; the lease holder alone announces it.
  const throttle: AdmissionThrottle = new AdmissionThrottle({
    clock,
    emit: (e) => {
      if (active()) emit(e);
    },
    kv: buckets.registry,
    logger,
  });
  await throttle.follow();
  const intake: Intake = new Intake({
    throttle,
    config,
    clock,
    logger,
    sender,
    taskKey,
    metrics,
    js,
    tasks,
    workflows,
    registry,
    place: (teamId, team) => coordination.submitted(teamId, team),
    held: () => results.held,
    controls,
    delegated: (parent, teamId, created, kinds) => coordination.delegated(parent, teamId, created, kinds),
    budgets: new Budgets(buckets.llm, { now: () => Date.now(), emit }),
    dependencies,
    emit,
  });
  const inspector: Inspector = new Inspector({
    nc,
    config,
    clock,
    sender,
    tasks,
    workflows,
    registry,
    control: (wf) => controls.get(wf),
    // Held and admitted: a task a host holds while it waits for admission is not running.
    holder: (taskId) => reassigner.holdings().find((h) => h.taskId === taskId && !h.admitting)?.hostId,
  });
  const follower: Follower = new Follower({
    nc,
    clock,
    metrics,
    noisy,
    taskKey,
    reassigner,
    controls,
    lifecycle,
    registry,
    results: () => results,
    inspector,
    active: () => active(),
    emit,
  });
  const handlers = operationHandlers({
    intake,
    controls,
    dependencies,
    lifecycle,
    inspector,
    quarantine,
    resources,
    throttle,
    state: stateOps,
    transfer,
    metrics,
    taskKey,
    coordination,
  });
  // A partition's delegations are answered by its holder, lease or not (see acquired).
  const partitionServer = new PartitionServer(nc, { id: sender, logger });
  partitionServer.handle(partitioned(handlers));
  return {
    buckets,
    workflows,
    tasks,
    registry,
    resources,
    reassigner,
    controls,
    dependencies,
    placer,
    lifecycle,
    quarantine,
    tally,
    coordination,
    results,
    throttle,
    inspector,
    follower,
    handlers,
    partitionServer,
  };
}
