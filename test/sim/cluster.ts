/**
 * One simulated cluster: N hosts beating with the agent-host's own `Heartbeat` class on jittery
 * clocks, and one supervisor's followed side built as supervisor.ts builds it (the `Registry`
 * with its phi-accrual `HostLiveness` checked every min(50, interval/2) ms, the `Follower` that
 * decodes and checks each heartbeat, the `Reassigner` and `Lifecycle` it feeds, the prune every
 * dead time), all on one driven clock. No NATS: fakes.ts stands in for it.
 *
 * Not driven: what the supervisor does once a host is unreachable (re-placing its actors,
 * reassigning its tasks): that needs JetStream. The events are recorded instead.
 */

import {
  type Config,
  type HeldTask,
  HostRecordSchema,
  newIncarnation,
  subjects,
  type TypedEvent,
} from "@cadre/protocol";
import {
  createLogger,
  createMetrics,
  heldProof,
  type LivenessEvent,
  type Logger,
  ManualClock,
  mulberry32,
  StateStore,
  taskToken,
  throttledLog,
} from "@cadre/runtime";
import type { FollowerDeps } from "../../services/supervisor/src/follow.js";
import type { LifecycleDeps } from "../../services/supervisor/src/lifecycle.js";
import type { ReassignerDeps } from "../../services/supervisor/src/reassign.js";
import type { Registry } from "../../services/supervisor/src/registry.js";
import { FakeNats, MemoryKv, Scheduler } from "./fakes.js";
import type { Internals } from "./internals.js";

/** Epoch milliseconds the simulated time starts at (record fields are epoch milliseconds). */
export const SIM_START = 1_767_225_600_000;

/** One simulated agent-host. */
export interface SimHost {
  hostId: string;
  incarnation: string;
  /** Actors it runs (the heartbeat's `actors`). */
  actors: number;
  maxActors: number;
  /** Tasks its actors hold (the heartbeat's `held`). */
  held: HeldTask[];
  alive: boolean;
  stop: () => void;
}

/** Options of {@link SimCluster}. */
export interface ClusterOptions {
  config: Config;
  hosts: number;
  maxActors: number;
  seed: number;
  /** A host timer runs up to this much late (uniform), so intervals vary by as much. */
  jitterMs: number;
  /** Called before each beat, to change what the host holds. */
  beforeBeat?: (host: SimHost) => void;
  onLiveness?: (e: LivenessEvent) => void;
  /** Answers `host.spawn` requests (the placement phase). */
  responder?: (subject: string, data: Uint8Array) => Uint8Array;
}

/** A dependency the simulated paths never touch: any use of it throws, naming it. */
export const unavailable = <T>(what: string): T =>
  new Proxy(
    {},
    {
      get: () => {
        throw new Error(`the simulation has no ${what}`);
      },
    },
  ) as T;

/** The cluster; time moves only by {@link SimCluster.run}. */
export class SimCluster {
  readonly clock = new ManualClock(SIM_START);
  readonly scheduler = new Scheduler(this.clock);
  readonly rng: () => number;
  readonly registryKv = new MemoryKv("cadre_registry");
  readonly registry: Registry;
  readonly nats: FakeNats;
  readonly hosts: SimHost[] = [];
  readonly taskKey = Buffer.alloc(32, 7);
  readonly checkIntervalMs: number;
  /** Events the supervisor's parts emitted, by type (not kept: 10^6 ACTOR_SPAWNED would be a heap of their own). */
  readonly events = new Map<string, number>();
  /** Heartbeats the supervisor handled, their bytes, and the time it spent on them. */
  readonly beats = { count: 0, bytes: 0, minBytes: Number.POSITIVE_INFINITY, maxBytes: 0, ms: 0 };
  /** Time the detector's checks took (each judges every host), and the hosts' beats (encoding included). */
  readonly timers = { checkMs: 0, checks: 0, hostMs: 0, hostBeats: 0 };
  forgotten = 0;
  readonly logger: Logger = createLogger("cadre-sim", "silent");
  /** What the supervisor's parts publish as events: counted. */
  readonly emit = (e: TypedEvent): void => void this.events.set(e.type, (this.events.get(e.type) ?? 0) + 1);
  private taskSeq = 0;

  readonly config: Config;

  constructor(
    private readonly x: Internals,
    private readonly o: ClusterOptions,
  ) {
    const { config } = o;
    this.config = config;
    this.rng = mulberry32(o.seed);
    const prefix = subjects.heartbeat("x").slice(0, -1);
    this.nats = new FakeNats({
      scheduler: this.scheduler,
      // Loopback-like: a fraction of a millisecond, now and then a few.
      delayMs: () => 0.2 + (this.rng() < 0.01 ? 5 * this.rng() : 0.5 * this.rng()),
      ...(o.responder ? { responder: o.responder } : {}),
      onDeliver: (subject, data, deliver) => {
        if (!subject.startsWith(prefix)) return deliver();
        const t = performance.now();
        deliver();
        const b = this.beats;
        b.ms += performance.now() - t;
        b.count++;
        b.bytes += data.byteLength;
        b.minBytes = Math.min(b.minBytes, data.byteLength);
        b.maxBytes = Math.max(b.maxBytes, data.byteLength);
      },
    });
    const { logger, emit } = this;
    const clock = this.clock;
    const registry = new x.Registry(this.registryKv.asKv(), config, clock, (e) => o.onLiveness?.(e));
    this.registry = registry;
    this.checkIntervalMs = Math.max(10, Math.min(50, config.heartbeat.intervalMs / 2));
    // Timed where the check loop calls it (an own property shadows the method; the code is the same).
    const detector = registry.detector;
    const check = detector.check.bind(detector);
    detector.check = (at?: number) => {
      const t = performance.now();
      check(at);
      this.timers.checkMs += performance.now() - t;
      this.timers.checks++;
    };
    detector.start(this.checkIntervalMs);
    const reassigner = new x.Reassigner({
      js: unavailable<ReassignerDeps["js"]>("JetStream"),
      jsm: unavailable<ReassignerDeps["jsm"]>("JetStream manager"),
      tasks: unavailable<ReassignerDeps["tasks"]>("task records"),
      config,
      clock,
      logger,
      sender: "supervisor-sim",
      taskKey: this.taskKey,
      emit,
      active: () => true,
      unreachable: (h) => registry.detector.state(h) === "unreachable",
      frozen: () => false,
    });
    // Its heartbeat path keeps the last beat per host and needs none of its dependencies.
    const lifecycle = new x.Lifecycle(unavailable<LifecycleDeps>("lifecycle dependencies"));
    const follower = new x.Follower({
      nc: this.nats as unknown as FollowerDeps["nc"],
      clock,
      metrics: createMetrics({ service: "cadre-supervisor", defaultMetrics: false }),
      noisy: throttledLog(logger),
      taskKey: this.taskKey,
      reassigner,
      controls: unavailable<FollowerDeps["controls"]>("workflow controls"),
      lifecycle,
      registry,
      // Told only that a restarted host may have a new key.
      results: () => ({ forgetHost: () => {} }) as unknown as ReturnType<FollowerDeps["results"]>,
      inspector: unavailable<FollowerDeps["inspector"]>("inspector"),
      active: () => true,
      emit,
    });
    follower.start();
    // The supervisor prunes every dead time (supervisor.ts pruneHosts).
    const prune = () => {
      void registry.prune().then((gone) => {
        for (const h of gone) {
          reassigner.forget(h);
          follower.forget(h);
          lifecycle.forget(h);
        }
        this.forgotten += gone.length;
      });
      clock.setTimeout(prune, config.heartbeat.hostDeadAfterMs);
    };
    clock.setTimeout(prune, config.heartbeat.hostDeadAfterMs);
  }

  /** Registers the hosts (their `host.<id>` records) and starts their heartbeats, spread over one interval. */
  async start(actorsPerHost = 0): Promise<void> {
    const { config, hosts, maxActors } = this.o;
    const store = new StateStore(this.registryKv.asKv(), HostRecordSchema, "host record");
    const width = String(hosts).length;
    for (let i = 0; i < hosts; i++) {
      const host: SimHost = {
        hostId: `host-${String(i).padStart(width, "0")}`,
        incarnation: newIncarnation(),
        actors: actorsPerHost,
        maxActors,
        held: [],
        alive: true,
        stop: () => {},
      };
      await store.put(`host.${host.hostId}`, {
        hostId: host.hostId,
        // An nkey public key's shape (authenticated deployments register one).
        publicKey: `U${"A".repeat(55)}`,
        incarnation: host.incarnation,
        startedAt: this.clock.now(),
        maxActors,
      });
      const hb = new this.x.HostHeartbeat({
        nc: this.nats as never,
        hostId: host.hostId,
        incarnation: host.incarnation,
        intervalMs: config.heartbeat.intervalMs,
        clock: this.hostClock(),
        logger: this.logger,
        status: () => {
          this.o.beforeBeat?.(host);
          return { actors: host.actors, held: host.held, eventQueue: 0, circuits: {} };
        },
      });
      host.stop = () => hb.stop();
      this.hosts.push(host);
      this.scheduler.at(this.clock.now() + this.rng() * config.heartbeat.intervalMs, () => hb.start());
    }
  }

  /** A held task as a host lists it: its id, epoch, stream sequence and proof of holding. */
  heldTask(hostId: string): HeldTask {
    const seq = ++this.taskSeq;
    const taskId = `w${seq.toString(36).padStart(12, "0")}-r-0`;
    return { taskId, epoch: 1, seq, proof: heldProof(taskToken(this.taskKey, taskId, 1), taskId, 1, hostId) };
  }

  /** Kills a host: its heartbeats stop (beats already in flight still arrive). */
  kill(host: SimHost): void {
    host.alive = false;
    host.stop();
  }

  /** Moves simulated time forward by `ms`, letting the supervisor's pending promises settle now and then. */
  async run(ms: number, stepMs = 1000): Promise<void> {
    const end = this.clock.now() + ms;
    while (this.clock.now() < end) {
      this.scheduler.runUntil(Math.min(end, this.clock.now() + stepMs));
      await new Promise<void>((r) => setImmediate(r));
    }
  }

  private hostClock() {
    const inner = this.scheduler.hostClock(() => this.rng() * this.o.jitterMs);
    return {
      now: inner.now,
      clearTimeout: inner.clearTimeout,
      setTimeout: (fn: () => void, ms: number) =>
        inner.setTimeout(() => {
          const t = performance.now();
          fn();
          this.timers.hostMs += performance.now() - t;
          this.timers.hostBeats++;
        }, ms),
    };
  }
}
