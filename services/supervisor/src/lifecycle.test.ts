/**
 * The Lifecycle on a real nats-server (Cadre's streams and buckets, a kind's demand read from
 * its real consumer) and a driven clock, with the real Registry and Placer and a stand-in
 * agent-host answering `host.spawn` and `host.actor` as a micro service. Each test has its own
 * server, so the teams one sweep walks are only that test's.
 */

import {
  type ActorSpec,
  type Config,
  type ConfigInput,
  encode,
  HostRecordSchema,
  parseConfig,
  parseTeam,
  STREAMS,
  subjects,
  type Team,
  type TeamInput,
  type TypedEvent,
  taskConsumer,
  teamId,
} from "@cadre/protocol";
import { rejection, taskEnvelope } from "@cadre/protocol/testing";
import {
  Breakers,
  type Buckets,
  connectNats,
  createLogger,
  ensureInfrastructure,
  ManualClock,
  type NatsConnection,
  OperationServer,
  StateStore,
} from "@cadre/runtime";
import { startNatsServer } from "@cadre/runtime/testing";
import { type JetStreamClient, type JetStreamManager, jetstream, jetstreamManager } from "@nats-io/jetstream";
import { afterEach, describe, expect, it } from "vitest";
import { Lifecycle } from "./lifecycle.js";
import { Placer } from "./placer.js";
import { Registry } from "./registry.js";

const logger = createLogger("lifecycle-test", "silent");
const START = 1_000_000;
const IDLE = 10_000;
const HOUR = 3_600_000;

/** Resolves when `probe` returns something other than undefined or false; fails after the deadline. */
async function until<T>(what: string, probe: () => Promise<T | undefined | false> | T | undefined | false) {
  const end = Date.now() + 5000;
  for (;;) {
    const v = await probe();
    if (v !== undefined && v !== false) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

/** A stand-in agent-host: registered, answering spawn and actor operations, recording them. */
interface StandIn {
  hostId: string;
  incarnation: string;
  spawned: ActorSpec[];
  /** `op:actorId` of every host.actor request. */
  actorOps: string[];
}

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const f of cleanups.splice(0).reverse()) await f();
});

/** A fresh nats-server with Cadre's streams and buckets, a driven clock and stand-in hosts. */
async function env(hostIds: string[] = ["h1"]) {
  const server = await startNatsServer();
  const nc: NatsConnection = await connectNats(server.url, "lifecycle-test");
  cleanups.push(async () => {
    await nc.close();
    await server.stop();
  });
  const buckets: Buckets = await ensureInfrastructure(nc, parseConfig({}));
  const js: JetStreamClient = jetstream(nc);
  const jsm: JetStreamManager = await jetstreamManager(nc);
  const clock = new ManualClock(START);
  const hosts: StandIn[] = [];
  const hostRecords = new StateStore(buckets.registry, HostRecordSchema, "host record");
  for (const hostId of hostIds) {
    const h: StandIn = { hostId, incarnation: `i-${hostId}`, spawned: [], actorOps: [] };
    await hostRecords.put(`host.${hostId}`, { hostId, incarnation: h.incarnation, startedAt: 0, maxActors: 20 });
    const s = await OperationServer.start(nc, {
      name: "cadre-agent-host",
      id: hostId,
      hostId,
      description: "stand-in agent-host",
      logger,
    });
    s.serve("host.spawn", async ({ actors }) => {
      h.spawned.push(...actors);
      return { actorIds: actors.map((a) => a.actorId) };
    });
    s.serve("host.actor", async ({ op, actorId }) => {
      h.actorOps.push(`${op}:${actorId}`);
      return { actorId, context: { fromActorId: actorId, history: [`${actorId}-task`] } };
    });
    cleanups.push(() => s.stop());
    hosts.push(h);
  }

  /** One supervisor's lifecycle with its own registry and placer (several may share the server). */
  const supervisor = (overrides: ConfigInput = {}, sender = "sup-a") => {
    const config: Config = parseConfig({ lifecycle: { sweepMs: 1000, passivateAfterMs: IDLE }, ...overrides });
    const registry = new Registry(buckets.registry, config, clock);
    const events: TypedEvent[] = [];
    const emit = (e: TypedEvent) => events.push(e);
    // The placer and the lifecycle need each other (as in supervisor.ts).
    const placer: Placer = new Placer({
      nc,
      jsm,
      config,
      clock,
      logger,
      sender,
      registry,
      breakers: new Breakers(config.breakers, { source: sender, clock }),
      quarantine: () => {
        throw new Error("no preemption expected in these tests");
      },
      emit,
      cordoned: (hostId) => lifecycle.isCordoned(hostId),
      guarantees: () => new Map(),
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
    cleanups.push(async () => lifecycle.close());
    /** Every host's heartbeat, now on the clock: the hosts are live. */
    const beat = () => {
      for (const h of hosts) {
        const actors = registry.allActors().filter((a) => a.hostId === h.hostId).length;
        const hb = { hostId: h.hostId, incarnation: h.incarnation, seq: 0, actors, busy: 0, load: 0 };
        registry.heartbeat(hb);
        lifecycle.heard(hb);
      }
    };
    /** Moves the clock, the hosts beat, and one sweep runs. */
    const sweepAfter = async (ms: number) => {
      clock.advance(ms);
      beat();
      await lifecycle.sweep();
    };
    /** Registers a team and places it (what a submit does). */
    const submit = async (input: TeamInput): Promise<{ tid: string; team: Team }> => {
      const team = parseTeam(input);
      const tid = teamId(team);
      await registry.putTeam(tid, team);
      await placer.ensurePlaced(tid, team);
      return { tid, team };
    };
    const actorIds = (tid: string, kind: string) => registry.actorsOf(tid, kind).map((a) => a.actorId);
    beat();
    return { config, registry, lifecycle, placer, events, beat, sweepAfter, submit, actorIds };
  };

  let tasks = 0;
  /** Queues a task of a team's kind on the tasks stream: demand for it. */
  const queue = async (tid: string, kind: string) => {
    const task = taskEnvelope({ taskId: `wq${++tasks}-r`, workflowId: `wq${tasks}`, teamId: tid, kind });
    await js.publish(subjects.task(tid, kind), encode("task", task, { sender: "test" }), { msgID: task.taskId });
  };
  return { nc, js, jsm, buckets, clock, hosts, supervisor, queue };
}

/** A team of `kinds`, one actor each (the first kind is the root). */
function team(name: string, kinds: Record<string, "lead" | "agent">, priority = 0): TeamInput {
  return {
    name,
    root: Object.keys(kinds)[0] as string,
    priority,
    kinds: Object.fromEntries(
      Object.entries(kinds).map(([k, role]) => [k, { role, replicas: 1, behaviour: { type: "script" as const } }]),
    ),
  };
}

const passivated = (events: TypedEvent[]) => events.flatMap((e) => (e.type === "ACTOR_PASSIVATED" ? [e.data] : []));

describe("Lifecycle on a real nats-server and a driven clock", () => {
  it("passivates a kind after passivateAfterMs without demand: retired on its host, checkpoint kept, forgotten", async () => {
    const e = await env();
    const s = e.supervisor();
    const { tid, team: t } = await s.submit(team("idle", { lead: "lead", worker: "agent" }));
    const lead = s.actorIds(tid, "lead")[0] as string;
    const worker = s.actorIds(tid, "worker")[0] as string;
    expect(e.hosts[0]?.spawned.map((a) => a.actorId).sort()).toEqual([lead, worker].sort());

    await s.sweepAfter(0);
    await s.sweepAfter(IDLE - 1);
    expect(e.hosts[0]?.actorOps).toEqual([]);
    expect(s.registry.allActors()).toHaveLength(2);

    await s.sweepAfter(1);
    expect(e.hosts[0]?.actorOps.sort()).toEqual([`retire:${lead}`, `retire:${worker}`].sort());
    expect(s.registry.allActors()).toEqual([]);
    expect(await e.buckets.registry.get(`actor.${lead}`)).toMatchObject({ operation: "DEL" });
    expect((await e.buckets.registry.get(`checkpoint.${worker}`))?.json()).toEqual({
      fromActorId: worker,
      history: [`${worker}-task`],
    });
    expect(passivated(s.events).sort((a, b) => a.kind.localeCompare(b.kind))).toEqual([
      { actorId: lead, hostId: "h1", teamId: tid, kind: "lead", requeued: null, idleMs: IDLE },
      { actorId: worker, hostId: "h1", teamId: tid, kind: "worker", requeued: null, idleMs: IDLE },
    ]);
    // Forgotten by the placer too: the team's next submit places it in full again.
    await s.placer.ensurePlaced(tid, t);
    expect(s.registry.allActors()).toHaveLength(2);
  });

  it("no passivation while the kind has demand (queued, or delivered and not acked); idle counts from the last", async () => {
    const e = await env();
    const s = e.supervisor();
    const { tid } = await s.submit(team("busy", { lead: "lead", worker: "agent" }));
    const worker = s.actorIds(tid, "worker")[0] as string;
    await e.queue(tid, "worker");

    await s.sweepAfter(0);
    await s.sweepAfter(IDLE);
    await s.sweepAfter(IDLE);
    // The lead had nothing to do and went; the worker's task waits, so the worker stays.
    expect(passivated(s.events).map((p) => p.kind)).toEqual(["lead"]);
    expect(s.actorIds(tid, "worker")).toEqual([worker]);

    // Delivered to an actor and not acknowledged yet: still demand.
    const consumer = await e.js.consumers.get(STREAMS.tasks, taskConsumer(tid, "worker"));
    const m = await consumer.next({ expires: 5000 });
    expect(m).not.toBeNull();
    await s.sweepAfter(IDLE);
    expect(s.actorIds(tid, "worker")).toEqual([worker]);

    // Done: no demand from now; the idle time counts from the last sweep that saw some.
    await m?.ackAck();
    await s.sweepAfter(IDLE - 1);
    expect(s.actorIds(tid, "worker")).toEqual([worker]);
    await s.sweepAfter(1);
    expect(s.actorIds(tid, "worker")).toEqual([]);
    expect(passivated(s.events).map((p) => [p.kind, p.idleMs])).toEqual([
      ["lead", IDLE],
      ["worker", IDLE],
    ]);
  });

  it("places a kind that has demand and no live actor, and only that kind", async () => {
    const e = await env();
    const s = e.supervisor();
    const { tid } = await s.submit(team("again", { lead: "lead", worker: "agent" }));
    await s.sweepAfter(0);
    await s.sweepAfter(IDLE);
    expect(s.registry.allActors()).toEqual([]);
    const spawnedBefore = e.hosts[0]?.spawned.length ?? 0;

    await e.queue(tid, "worker");
    await s.sweepAfter(1000);
    const placed = e.hosts[0]?.spawned.slice(spawnedBefore) ?? [];
    expect(placed.map((a) => [a.teamId, a.kindName])).toEqual([[tid, "worker"]]);
    expect(s.registry.actorsOf(tid, "worker").map((a) => [a.actorId, a.hostId, a.status])).toEqual([
      [placed[0]?.actorId, "h1", "active"],
    ]);
    expect(s.actorIds(tid, "lead")).toEqual([]);
    expect(s.events.filter((x) => x.type === "ACTOR_SPAWNED").at(-1)?.scope).toBe(placed[0]?.actorId);
    // Live now: the next sweep places nothing more.
    await s.sweepAfter(1000);
    expect(e.hosts[0]?.spawned).toHaveLength(spawnedBefore + 1);
  });

  it("reclaimIdle passivates idle kinds only, longest idle first, never of the asking team", async () => {
    const e = await env();
    const s = e.supervisor();
    // B first, so its actor is first in the registry: only the ordering can put A's first.
    const b = await s.submit(team("team-b", { recent: "agent" }));
    const a = await s.submit(team("team-a", { idle: "agent", busy: "agent" }));
    await e.queue(a.tid, "busy");
    await s.sweepAfter(0);
    // B's kind had work a second later than A's idle kind last had any.
    await e.queue(b.tid, "recent");
    await s.sweepAfter(1000);
    await e.jsm.streams.purge(STREAMS.tasks, { filter: subjects.task(b.tid, "recent") });
    await s.sweepAfter(1000);
    const idle = s.actorIds(a.tid, "idle")[0];
    const recent = s.actorIds(b.tid, "recent")[0];

    expect(await s.lifecycle.reclaimIdle(1, "team-c-0123456789")).toBe(1);
    expect(e.hosts[0]?.actorOps).toEqual([`retire:${idle}`]);
    expect(passivated(s.events)).toEqual([
      {
        actorId: idle,
        hostId: "h1",
        teamId: a.tid,
        kind: "idle",
        requeued: null,
        reason: "room for queued work",
        forTeam: "team-c-0123456789",
      },
    ]);
    // B asks: its own idle actor is not given to it, and A's busy kind has work.
    expect(await s.lifecycle.reclaimIdle(5, b.tid)).toBe(0);
    expect(await s.lifecycle.reclaimIdle(5, a.tid)).toBe(1);
    expect(e.hosts[0]?.actorOps).toEqual([`retire:${idle}`, `retire:${recent}`]);
    expect(s.actorIds(a.tid, "busy")).toHaveLength(1);
  });

  it("at the cluster's limit, placing a team passivates another team's idle actor to make room", async () => {
    const e = await env();
    const s = e.supervisor({ orchestration_limits: { max_concurrent_agents: 3 } });
    const a = await s.submit(team("full-a", { idle: "agent", busy: "agent" }));
    const b = await s.submit(team("full-b", { work: "agent" }));
    await e.queue(a.tid, "busy");
    await e.queue(b.tid, "work");
    await s.sweepAfter(0);
    const idle = s.actorIds(a.tid, "idle")[0];

    const c = await s.submit(team("full-c", { more: "agent" }));
    expect(s.actorIds(c.tid, "more")).toHaveLength(1);
    expect(e.hosts[0]?.actorOps).toEqual([`retire:${idle}`]);
    expect(s.registry.allActors()).toHaveLength(3);
    expect(passivated(s.events).map((p) => [p.actorId, p.forTeam])).toEqual([[idle, c.tid]]);
  });

  it("forgets a team with no actors and no demand after session_timeout_hours, with its consumers", async () => {
    const e = await env();
    const s = e.supervisor({ orchestration_limits: { session_timeout_hours: 1 } });
    const f = await s.submit(team("forgotten", { solo: "agent" }));
    const k = await s.submit(team("kept", { solo: "agent" }));
    await e.queue(k.tid, "solo");
    await s.sweepAfter(0);
    await s.sweepAfter(IDLE);
    expect(s.actorIds(f.tid, "solo")).toEqual([]);

    await s.sweepAfter(HOUR - IDLE - 1);
    expect((await s.registry.teamIds()).sort()).toEqual([f.tid, k.tid].sort());
    expect(s.events.filter((x) => x.type === "TEAM_FORGOTTEN")).toEqual([]);

    await s.sweepAfter(1);
    expect(await s.registry.teamIds()).toEqual([k.tid]);
    expect(await s.registry.team(f.tid)).toBeUndefined();
    await expect(e.jsm.consumers.info(STREAMS.tasks, taskConsumer(f.tid, "solo"))).rejects.toThrow();
    expect(s.events.flatMap((x) => (x.type === "TEAM_FORGOTTEN" ? [x.data] : []))).toEqual([
      { teamId: f.tid, name: "forgotten", actors: 0 },
    ]);
    // The team with work keeps its actor and its consumer.
    expect(s.actorIds(k.tid, "solo")).toHaveLength(1);
    expect((await e.jsm.consumers.info(STREAMS.tasks, taskConsumer(k.tid, "solo"))).num_pending).toBe(1);
  });

  it("lists a host the detector suspects in the reply's own terms (it must encode as sup.host.list.ok)", async () => {
    const e = await env(["h1"]);
    const s = e.supervisor();
    for (let i = 0; i < 20; i++) await s.sweepAfter(100);
    // Silent until the detector suspects it (still short of unreachable).
    for (let i = 0; i < 1000 && s.registry.detector.state("h1") !== "suspected"; i++) {
      e.clock.advance(10);
      s.registry.detector.check();
    }
    expect(s.registry.detector.state("h1")).toBe("suspected");
    const reply = await s.lifecycle.hostList();
    expect(reply.hosts.map((h) => [h.hostId, h.state])).toEqual([["h1", "suspect"]]);
    expect(() => encode("sup.host.list.ok", reply, { sender: "sup-a" })).not.toThrow();
  });

  it("cordon and uncordon: a second supervisor's watch follows, and its placement avoids a cordoned host", async () => {
    const e = await env(["h1", "h2"]);
    const active = e.supervisor({}, "sup-a");
    const standby = e.supervisor({}, "sup-b");
    await active.lifecycle.follow();
    await standby.lifecycle.follow();
    expect((await rejection(active.lifecycle.cordon({ hostId: "h9", cordoned: true }))).code).toBe("NOT_FOUND");

    const reply = await active.lifecycle.cordon({ hostId: "h1", cordoned: true });
    expect(reply).toMatchObject({ hostId: "h1", cordoned: true, state: "alive" });
    expect(active.events.flatMap((x) => (x.type === "HOST_CORDONED" ? [x.scope] : []))).toEqual(["h1"]);
    await until("the standby knows h1 cordoned", () => standby.lifecycle.isCordoned("h1"));
    expect((await standby.lifecycle.hostList()).hosts.map((h) => [h.hostId, h.cordoned])).toEqual([
      ["h1", true],
      ["h2", false],
    ]);

    // Failover: the standby places a team of two replicas; none goes to the cordoned host.
    const wide = {
      name: "wide",
      root: "w",
      kinds: { w: { role: "agent" as const, replicas: 2, behaviour: { type: "script" as const } } },
    };
    const w = await standby.submit(wide);
    expect(standby.registry.actorsOf(w.tid, "w").map((a) => a.hostId)).toEqual(["h2", "h2"]);
    expect(e.hosts[0]?.spawned).toEqual([]);

    // The standby stepping down again (its sweeps stop) still follows the cordons.
    standby.lifecycle.stop();
    await active.lifecycle.cordon({ hostId: "h1", cordoned: false });
    await until("the standby knows h1 uncordoned", () => !standby.lifecycle.isCordoned("h1"));
    const w2 = await standby.submit({ ...wide, name: "wide-again" });
    expect(
      standby.registry
        .actorsOf(w2.tid, "w")
        .map((a) => a.hostId)
        .sort(),
    ).toEqual(["h1", "h2"]);
  });
});
