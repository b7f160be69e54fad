/**
 * Chaos scenarios against real containers (see fixture.ts). Each runs a workflow of 200 tasks,
 * breaks one member in the middle of it, and asserts Cadre's promises: no task lost, no result
 * applied twice, the workflow completes. Each writes its figures to test/results/chaos/<name>.json
 * and the suite prints one table at the end.
 *
 * Figures:
 *   lost          tasks of the plan (1 director task + 200) not completed at the end
 *   appliedTwice  tasks with more than one TASK_COMPLETED event (a result applied twice)
 *   duplicates    results that arrived for an already-finished task and were recorded, not applied
 *   conflicts     results of a superseded epoch (the task had been reassigned from a lost host):
 *                 recorded beside the applied one, never applied
 *   detectMs      from the fault to the supervisor declaring the host unreachable (host scenarios)
 *   recoverMs     from the fault to the moment the work it disrupted was done again
 *   reconcileMs   partition: from the heal to the supervisor's reconciliation report for the host
 *
 * After its assertions each scenario builds its incident report from its own events stream and
 * checks it against these figures (incident.ts, expectations.ts); the suite writes the matrix of
 * this run (test/results/chaos/matrix.md, as test/chaos/matrix.mjs renders it from the files).
 */

import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { type ChaosIncident, chaosMatrix } from "@cadre/monitor/incident";
import {
  BUCKETS,
  type CadreError,
  LeaseRecordSchema,
  PARTITIONS_KEY,
  type PartitionTable,
  PartitionTableSchema,
  partitionOf,
} from "@cadre/protocol";
import { connectNats } from "@cadre/runtime";
import { Kvm } from "@nats-io/kv";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { recordEvents, type TimedEvent, until } from "../helpers/client.js";
import {
  hostFault,
  natsNode,
  noFault,
  partitionTakeover,
  supervisorRestart,
  supervisorTakeover,
} from "./expectations.js";
import {
  busyHost,
  elapsed,
  expectPromisesKept,
  type Figures,
  finish,
  firstAt,
  hostFaultFigures,
  lastSeen,
  longestStall,
  outcome,
  perSecond,
  promiseFigures,
  startAndWaitFor,
  TASKS,
  takenOver,
  team,
} from "./figures.js";
import {
  buildImages,
  ChaosCluster,
  type ChaosClusterOptions,
  chaosConfig,
  removeLeftovers,
  requireEngine,
} from "./fixture.js";
import { type Expectation, expectIncident, type Injection, reportIncident } from "./incident.js";

const RESULTS_DIR = join(import.meta.dirname, "..", "results", "chaos");

const table: Figures[] = [];
const incidents: ChaosIncident[] = [];
const HEARTBEAT_MS = chaosConfig.heartbeat?.intervalMs ?? 200;

/** Keeps a scenario's figures for the table and writes them to test/results/chaos/<scenario>.json. */
function record(f: Figures): Figures {
  table.push(f);
  mkdirSync(RESULTS_DIR, { recursive: true });
  writeFileSync(join(RESULTS_DIR, `${f.scenario}.json`), `${JSON.stringify(f, null, 2)}\n`);
  return f;
}

/**
 * The scenario's incident report, from `since` to now, written beside its figures and checked
 * against them (their duplicates and conflicts read again from workflow `id`'s task records).
 */
async function incident(
  c: ChaosCluster,
  id: string,
  since: number,
  injection: Injection,
  f: Figures,
  expected: Expectation,
) {
  const written = await reportIncident(c, since, injection, f, expected, RESULTS_DIR, () => outcome(c, id));
  // In the matrix whether it agrees or not: the matrix says which checks did not.
  incidents.push(written.incident);
  expectIncident(written);
}

/** Runs `inject` and returns the fault's injection: the test's clock before and after the engine call. */
async function inject(fault: string, act: () => Promise<void>): Promise<Injection> {
  const at = Date.now();
  await act();
  return { fault, at, by: Date.now() };
}

/** One scenario: its own cluster, started before and removed after, and one test. */
function scenario(title: string, opts: ChaosClusterOptions, name: string, body: (c: ChaosCluster) => Promise<void>) {
  describe(title, () => {
    let c: ChaosCluster;
    beforeAll(async () => {
      c = await ChaosCluster.start(opts);
    }, 120_000);
    afterAll(async () => {
      await c?.stop();
    }, 60_000);
    it(name, () => body(c), 180_000);
  });
}

beforeAll(async () => {
  await requireEngine();
  await removeLeftovers();
  buildImages();
}, 300_000);

afterAll(() => {
  if (incidents.length > 0) writeFileSync(join(RESULTS_DIR, "matrix.md"), chaosMatrix(incidents));
  if (table.length === 0) return;
  const cols: (keyof Figures)[] = [
    "scenario",
    "tasks",
    "completed",
    "lost",
    "appliedTwice",
    "duplicates",
    "conflicts",
    "detectMs",
    "recoverMs",
    "reconcileMs",
    "workflowMs",
  ];
  const rows = [cols.map(String), ...table.map((f) => cols.map((k) => String(f[k] ?? "-")))];
  const widths = cols.map((_, i) => Math.max(...rows.map((r) => (r[i] ?? "").length)));
  const line = (r: string[]) => `| ${r.map((v, i) => v.padEnd(widths[i] ?? 0)).join(" | ")} |`;
  const out = [line(rows[0] ?? []), `|${widths.map((w) => "-".repeat(w + 2)).join("|")}|`, ...rows.slice(1).map(line)];
  process.stdout.write(`\nchaos scenarios (figures in test/results/chaos/):\n${out.join("\n")}\n\n`);
});

scenario(
  "chaos baseline: the same workflow with no fault, every connection over mutual TLS",
  { natsNodes: 1, hosts: 3, tls: true },
  "completes every task once (the yardstick for the scenarios' times), and refuses a client without a certificate",
  async (c) => {
    const since = Date.now();
    // The operator's nkey, but no client certificate: the server ends the TLS handshake.
    const nats = c.member("nats-1");
    const noCert = await connectNats(`nats://${nats.getHost()}:${nats.getMappedPort(4222)}`, "no-cert", undefined, {
      credentials: c.security.credentials("operator"),
      tls: { caFile: c.security.tls?.("operator").caFile ?? "" },
    }).then(
      (nc) => nc.close().then(() => "connected"),
      (err: CadreError) => err.code,
    );
    expect(["UNAVAILABLE", "PERMISSION_DENIED"]).toContain(noCert);
    const rec = recordEvents(c.client.nc);
    const started = Date.now();
    const id = await c.client.submit(team);
    const w = await finish(c, id, 120_000);
    rec.stop();
    const o = await expectPromisesKept(c, id);
    expect(o.duplicates).toBe(0);
    expect(o.conflicts).toBe(0);
    const f = record({
      scenario: "baseline-no-fault",
      ...promiseFigures(o),
      detectMs: null,
      recoverMs: null,
      workflowMs: elapsed(w),
      completionsPerSecond: perSecond(rec.events, id, started),
    });
    await incident(c, id, since, { fault: "none", at: null, by: null }, f, noFault);
  },
);

scenario(
  "chaos: kill -9 an agent-host in the middle of a 200-task workflow",
  { natsNodes: 1, hosts: 3 },
  "loses no task, applies no result twice, and completes",
  async (c) => {
    const since = Date.now();
    const rec = recordEvents(c.client.nc);
    const { id, started } = await startAndWaitFor(c, rec.events, 40);
    // The victim: the host that started the most recent task, so it surely holds work.
    const victim = busyHost(rec.events);
    const injection = await inject(`SIGKILL agent-host ${victim}`, () => c.kill(victim));
    const killedAt = injection.at ?? 0;

    const w = await finish(c, id, 120_000);
    rec.stop();
    const o = await expectPromisesKept(c, id);
    // The kill hit work in progress, and the others did it.
    const held = takenOver(o, victim);
    expect(held.size).toBeGreaterThan(0);

    const f = record({
      scenario: "kill-agent-host",
      ...promiseFigures(o),
      ...hostFaultFigures(rec.events, id, victim, killedAt, held),
      workflowMs: elapsed(w),
      completionsPerSecond: perSecond(rec.events, id, started),
    });
    await incident(c, id, since, injection, f, hostFault(victim, held, HEARTBEAT_MS));
  },
);

scenario(
  "chaos: kill one NATS node of three during a 200-task workflow",
  { natsNodes: 3, hosts: 3 },
  "loses no task, applies no result twice, and completes",
  async (c) => {
    const since = Date.now();
    const rec = recordEvents(c.client.nc);
    const { id, started } = await startAndWaitFor(c, rec.events, 40);
    // The victim: the leader of the task stream, the node whose loss hurts most.
    const { jetstreamManager } = await import("@nats-io/jetstream");
    const info = await (await jetstreamManager(c.client.nc)).streams.info("CADRE_TASKS");
    const victim = info.cluster?.leader ?? "nats-1";
    // The pause is watched from a node that stays up: the test's own connection may be on the
    // victim, and while it moves it misses events (a CI run saw it back 14 s after the results).
    const survivor = c.natsNames().find((n) => n !== victim) ?? "nats-1";
    const observer = await c.connectAsOperator("cadre-chaos-observer", [survivor]);
    const watch = recordEvents(observer);
    await observer.flush();
    const injection = await inject(`SIGKILL NATS node ${victim} (the task stream's leader)`, () => c.kill(victim));
    const killedAt = injection.at ?? 0;
    const completedBefore = rec.events.filter((e) => e.event.type === "TASK_COMPLETED" && e.at <= killedAt).length;

    const w = await finish(c, id, 120_000);
    rec.stop();
    watch.stop();
    await observer.close();
    const o = await expectPromisesKept(c, id);
    const pause = longestStall(watch.events, id, killedAt);

    const f = record({
      scenario: "kill-nats-node",
      ...promiseFigures(o),
      // No Cadre event names a NATS node. Recovery: the end of the longest pause in completed
      // tasks after the kill (streams electing new leaders, clients moving to other nodes).
      detectMs: null,
      recoverMs: pause?.endMs ?? null,
      workflowMs: elapsed(w),
      completionsPerSecond: perSecond(rec.events, id, started),
    });
    expect(completedBefore).toBeLessThan(TASKS + 1);
    await incident(c, id, since, injection, f, natsNode(victim, pause, watch.events));
  },
);

scenario(
  "chaos: pause an agent-host for 15 s while it holds tasks, then resume",
  { natsNodes: 1, hosts: 3 },
  "applies nothing twice and records what the stalled host finishes late, never applying it",
  async (c) => {
    const since = Date.now();
    const rec = recordEvents(c.client.nc);
    const { id, started } = await startAndWaitFor(c, rec.events, 40);
    const victim = busyHost(rec.events);
    const injection = await inject(`pause agent-host ${victim} 15 s (cgroup freezer), then resume`, () =>
      c.pause(victim),
    );
    const pausedAt = injection.at ?? 0;
    // Frozen, it sends no heartbeats: its tasks are reassigned and the others finish the workflow.
    const w = await finish(c, id, 60_000);
    const pauseLeft = pausedAt + 15_000 - Date.now();
    if (pauseLeft > 0) await new Promise((r) => setTimeout(r, pauseLeft)); // the fault itself lasts 15 s
    await c.resume(victim);

    const held = takenOver(await outcome(c, id), victim);
    expect(held.size).toBeGreaterThan(0);
    // Thawed, it finishes what it held and reports. Each such result is recorded, not applied: a
    // conflict when the task had been reassigned (a new epoch), a duplicate when JetStream had
    // redelivered it (one the host took in the last beat before the pause, not yet listed).
    const late = (e: TimedEvent["event"]) =>
      (e.type === "RESULT_CONFLICT" || e.type === "RESULT_DUPLICATE") && e.data.hostId === victim;
    await until(
      "the stalled host's late results recorded",
      () => [...held].every((t) => rec.events.some((e) => late(e.event) && e.event.data.taskId === t)),
      60_000,
    );
    rec.stop();
    const o = await expectPromisesKept(c, id);
    expect(w.status).toBe("completed");
    expect(o.duplicates + o.conflicts).toBeGreaterThanOrEqual(held.size);

    const f = record({
      scenario: "pause-agent-host-15s",
      ...promiseFigures(o),
      ...hostFaultFigures(rec.events, id, victim, pausedAt, held),
      workflowMs: elapsed(w),
      completionsPerSecond: perSecond(rec.events, id, started),
    });
    await incident(c, id, since, injection, f, hostFault(victim, held, HEARTBEAT_MS));
  },
);

scenario(
  "chaos: kill the supervisor during a workflow, then start it again",
  { natsNodes: 1, hosts: 3 },
  "resumes the workflow when the supervisor is back, with nothing lost",
  async (c) => {
    const since = Date.now();
    const rec = recordEvents(c.client.nc);
    const { id, started } = await startAndWaitFor(c, rec.events, 40);
    const injection = await inject("SIGKILL supervisor-1 (no standby), started again once hosts worked on", () =>
      c.kill("supervisor-1"),
    );
    const killedAt = injection.at ?? 0;
    // Hosts keep working while it is down; their results wait in the results stream.
    await until(
      "hosts working on while the supervisor is down",
      () => rec.events.some((e) => e.at > killedAt && e.event.type === "TASK_STARTED"),
      30_000,
    );
    const restartedAt = Date.now();
    await c.restart("supervisor-1");

    const w = await finish(c, id, 120_000);
    rec.stop();
    const o = await expectPromisesKept(c, id);

    const f = record({
      scenario: "kill-supervisor-restart",
      ...promiseFigures(o),
      // No standby here (kill-active-supervisor has one): the fault is noticed by the operator
      // who restarts it; recovery counts from the restart to the first result applied.
      detectMs: null,
      recoverMs: firstAt(rec.events, restartedAt, (e) => e.type === "TASK_COMPLETED"),
      workflowMs: elapsed(w),
      completionsPerSecond: perSecond(rec.events, id, started),
    });
    await incident(c, id, since, injection, f, supervisorRestart("supervisor-1", { at: restartedAt }));
  },
);

scenario(
  "chaos: cut an agent-host off the network for 10 s mid-workflow, then heal",
  { natsNodes: 1, hosts: 3 },
  "loses nothing, applies nothing twice, and the host comes back",
  async (c) => {
    const since = Date.now();
    const rec = recordEvents(c.client.nc);
    const { id, started } = await startAndWaitFor(c, rec.events, 40);
    const victim = busyHost(rec.events);
    const injection = await inject(`cut agent-host ${victim} off the network 10 s, then heal`, () =>
      c.partition(victim),
    );
    const cutAt = injection.at ?? 0;
    // Cut off, its heartbeats stop: the supervisor gives its actors up and the others take over.
    const w = await finish(c, id, 60_000);
    const cutLeft = cutAt + 10_000 - Date.now();
    if (cutLeft > 0) await new Promise((r) => setTimeout(r, cutLeft)); // the fault itself lasts 10 s

    const beat = new Promise<number>((resolve) => {
      const sub = c.client.nc.subscribe(`cadre.v1.hb.${victim}`, {
        callback: () => {
          sub.unsubscribe();
          resolve(Date.now());
        },
      });
    });
    const healedAt = Date.now();
    await c.heal(victim);
    const back = await Promise.race([
      beat,
      new Promise<never>((_, reject) =>
        setTimeout(
          () =>
            void c
              .tail(200)
              .then((logs) => reject(new Error(`no heartbeat from ${victim} 30 s after the heal\n${logs}`))),
          30_000,
        ),
      ),
    ]);
    // What it finished while cut off waits in its outbox; replayed, every result is classified.
    const report = await until(
      "the cut-off host's reconciliation report",
      () => rec.events.find((e) => e.event.type === "RECONCILIATION_REPORT" && e.event.scope === victim),
      60_000,
    ).catch(async (err: Error) => {
      throw new Error(`${err.message}\n${await c.tail(200)}`);
    });
    rec.stop();
    const o = await expectPromisesKept(c, id);
    expect(w.status).toBe("completed");
    const r = report.event.data;
    expect(r).toMatchObject({ complete: true, orphan: 0 });
    // Nothing it replayed was applied twice: what the others had redone is a conflict or a duplicate.
    expect(Number(r.applied) + Number(r.duplicate) + Number(r.conflict)).toBe(r.replayed);

    const held = takenOver(o, victim);
    const f = record({
      scenario: "partition-agent-host-10s",
      ...promiseFigures(o),
      ...hostFaultFigures(rec.events, id, victim, cutAt, held),
      reconcileMs: report.at - healedAt,
      workflowMs: elapsed(w),
      completionsPerSecond: perSecond(rec.events, id, started),
      healedHeartbeatMs: back - healedAt,
      reconciliation: r,
    });
    await incident(c, id, since, injection, f, hostFault(victim, held, HEARTBEAT_MS, { at: healedAt }));
  },
);

scenario(
  "chaos: kill the supervisor holding the lease while another runs",
  { natsNodes: 1, hosts: 3, supervisors: 2 },
  "has the other take the lease and its partitions over (default lease settings) with nothing lost",
  async (c) => {
    const since = Date.now();
    const registry = await new Kvm(c.client.nc).open(BUCKETS.registry);
    const holder = async () => {
      const e = await registry.get("supervisor.lease");
      return e?.operation === "PUT" ? LeaseRecordSchema.parse(e.json()) : undefined;
    };
    const rec = recordEvents(c.client.nc);
    const { id, started } = await startAndWaitFor(c, rec.events, 40);
    const before = await holder();
    expect(before).toBeDefined();
    const victim = String(before?.holder);
    const injection = await inject(`SIGKILL the lease holder ${victim}, another supervisor running`, () =>
      c.kill(victim),
    );
    const killedAt = injection.at ?? 0;

    const w = await finish(c, id, 120_000);
    rec.stop();
    const o = await expectPromisesKept(c, id);
    const after = await holder();
    expect(after?.holder).not.toBe(victim);
    expect(after?.term).toBe((before?.term ?? 0) + 1);

    const f = record({
      scenario: "kill-active-supervisor",
      ...promiseFigures(o),
      // Detection and takeover are one step: the standby acts when the lease lapses.
      detectMs: null,
      recoverMs: firstAt(rec.events, killedAt, (e) => e.type === "SUPERVISOR_ACTIVE" && e.scope === after?.holder),
      workflowMs: elapsed(w),
      completionsPerSecond: perSecond(rec.events, id, started),
    });
    await incident(c, id, since, injection, f, supervisorTakeover(victim, lastSeen(rec.events, victim)));
  },
);

scenario(
  "chaos: kill the supervisor applying a workflow's results while another shares the partitions",
  { natsNodes: 1, hosts: 3, supervisors: 2 },
  "has the other take its partitions over (default lease settings) with nothing lost",
  async (c) => {
    const since = Date.now();
    const registry = await new Kvm(c.client.nc).open(BUCKETS.registry);
    const table = async (): Promise<PartitionTable | undefined> => {
      const e = await registry.get(PARTITIONS_KEY);
      return e?.operation === "PUT" ? PartitionTableSchema.parse(e.json()) : undefined;
    };
    // Both supervisors hold partitions (the newcomer takes its share once it has lived a lease TTL).
    const shared = await until(
      "both supervisors holding partitions",
      async () => {
        const t = await table();
        return t?.members.length === 2 && t.members.every((m) => t.owners.includes(m)) && t;
      },
      60_000,
    );
    const rec = recordEvents(c.client.nc);
    const { id, started } = await startAndWaitFor(c, rec.events, 40);
    const p = partitionOf(id, shared.owners.length);
    const before = (await table()) as PartitionTable;
    const victim = String(before.owners[p]);
    const survivor = before.members.find((m) => m !== victim) as string;
    const held = before.owners.flatMap((o, i) => (o === victim ? [i] : []));
    const lease = await registry.get("supervisor.lease");
    const heldLease = lease?.operation === "PUT" && LeaseRecordSchema.parse(lease.json()).holder === victim;
    const injection = await inject(
      `SIGKILL ${victim}, the supervisor applying the workflow's results (partition ${p}${heldLease ? ", and the lease" : ""})`,
      () => c.kill(victim),
    );
    const killedAt = injection.at ?? 0;

    const w = await finish(c, id, 120_000);
    rec.stop();
    const o = await expectPromisesKept(c, id);
    // Every partition now with the survivor, the victim's under a new term (its old one fenced).
    const after = (await table()) as PartitionTable;
    expect(after.members).toEqual([survivor]);
    expect(after.owners).toEqual(before.owners.map(() => survivor));
    for (const i of held) expect(after.terms[i]).toBeGreaterThan(before.terms[i] ?? 0);

    const f = record({
      scenario: "kill-partition-holder",
      ...promiseFigures(o),
      // Detection and takeover are one step: the survivor acts when the victim's membership lapses.
      detectMs: null,
      recoverMs: firstAt(
        rec.events,
        killedAt,
        (e) => e.type === "PARTITION_ACQUIRED" && e.scope === survivor && e.data.partition === p,
      ),
      workflowMs: elapsed(w),
      completionsPerSecond: perSecond(rec.events, id, started),
    });
    await incident(c, id, since, injection, f, partitionTakeover(victim, held, p, lastSeen(rec.events, victim)));
  },
);
