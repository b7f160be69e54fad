/**
 * Bounded inputs and state, on a real cluster: what a bad client sends is refused with a typed
 * error and leaves nothing behind.
 *
 * - An event with a 5,000-character scope is refused at decode: the supervisor, which used to
 *   echo a host event's scope into its own critical RECONCILIATION_REPORT (a subject past
 *   nats-server's control line, so the server closed its connection at every retry), skips it,
 *   stays connected and keeps serving.
 * - A submit refused by a quota (or for want of a host) leaves no durable consumer and no team
 *   record.
 * - A spawn the host cannot carry out in full (a team or kind the supervisor never placed, more
 *   actors than it takes) leaves its actor count as it was.
 * - A host id heard once and never registered is forgotten after the dead time.
 * - Garbage stored in the events stream does not break `cadre reconciliation`: it is skipped
 *   and counted.
 * - A bad natsUrl stops a service at once with exit 2, naming the field.
 */

import { spawnSync } from "node:child_process";
import { fileURLToPath } from "node:url";
import {
  BUCKETS,
  decodeAs,
  encode,
  operationSubject,
  parseTeam,
  STREAMS,
  subjects,
  type TeamInput,
  teamId,
} from "@cadre/protocol";
import { rejection, unsafeFrame } from "@cadre/protocol/testing";
import { call, readEventLog } from "@cadre/runtime";
import { jetstream, jetstreamManager } from "@nats-io/jetstream";
import { Kvm } from "@nats-io/kv";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { fastConfig, startCluster, startGhostHost, type TestCluster, until } from "../helpers/cluster.js";

const MAX_ACTORS = 20;
const caller = { sender: "bounds-test", timeoutMs: 5000 };

const team = (name: string, replicas: number, extra: Record<string, unknown> = {}): TeamInput => ({
  name,
  root: "worker",
  kinds: { worker: { role: "agent", replicas, behaviour: { type: "script", output: { team: name } }, ...extra } },
});

describe("bounded inputs and state", () => {
  let c: TestCluster;
  beforeAll(async () => {
    // Anonymous on purpose: the test's connection plays the bad client (raw events, a ghost
    // host's heartbeats, spawn requests), which an authenticated cluster would refuse outright.
    c = await startCluster({
      hosts: 2,
      security: false,
      config: {
        ...fastConfig,
        orchestration_limits: { max_agents_per_orchestrator: 2 },
        host: { maxActors: MAX_ACTORS },
        // A spawn on the ghost host below fails within this.
        requestTimeoutMs: 2000,
      },
    });
  }, 60_000);
  afterAll(async () => {
    await c?.stop();
  });

  const lines = (service: string, text: string) => (c.logs.get(service) ?? []).filter((l) => l.includes(text));

  /** The `actors` of the next heartbeat of a host sent after this call. */
  const actorsOf = (hostId: string) =>
    new Promise<number>((resolve) => {
      const sub = c.nc.subscribe(subjects.heartbeat(hostId), {
        callback: (_err, m) => {
          sub.unsubscribe();
          resolve(decodeAs(m.data, "heartbeat").body.actors);
        },
      });
    });

  it("refuses an event with a 5,000-character scope at decode; the supervisor stays connected and serving", async () => {
    const long = "s".repeat(5000);
    const skipped = () => lines("supervisor", "undecodable event skipped").length;
    const before = skipped();
    // A host's account of its replay: its scope was the host id the supervisor reported back.
    const replayed = unsafeFrame("event", {
      type: "OUTBOX_REPLAYED",
      category: "host",
      scope: long,
      data: { hostId: "host-x", batch: "b1:1", replayed: 1, deduplicated: 1, ms: 1 },
    });
    c.nc.publish(subjects.event("host", "intruder"), replayed);
    const started = unsafeFrame("event", {
      type: "TASK_STARTED",
      category: "task",
      scope: long,
      data: { taskId: "w1-r", epoch: 1, seq: 1, kind: "worker", attempt: 1, hostId: long, actorId: "a1" },
    });
    c.nc.publish(subjects.event("task", "intruder"), started);
    await until("both events skipped by the supervisor", () => skipped() >= before + 2, 10_000);

    // On an operation subject: a typed error in reply, small, whatever was sent.
    for (const frame of [replayed, unsafeFrame("sup.status", { workflowId: long })]) {
      const reply = await c.nc.request(operationSubject("sup.status"), frame, { timeout: 5000 });
      expect(reply.data.byteLength).toBeLessThan(4096);
      const err = await rejection(Promise.resolve().then(() => decodeAs(reply.data, "sup.status.ok")));
      expect(err.code).toBe("PROTOCOL_ERROR");
    }

    // Still serving: a workflow runs to the end and its status is answered.
    const wf = await c.submit(team("bounds-alive", 1));
    expect((await c.wait(wf)).status).toBe("completed");
    expect((await call(c.nc, "sup.status", { workflowId: wf }, caller)).workflow.status).toBe("completed");
    // And it was never cut off (nats-server closes a connection whose control line is too long).
    expect(lines("supervisor", '"nats":"disconnect"')).toEqual([]);
    expect(lines("supervisor", '"nats":"reconnect"')).toEqual([]);
  }, 60_000);

  it("a submit refused by a quota, or for want of a host, leaves no durable consumer and no team record", async () => {
    const jsm = await jetstreamManager(c.nc);
    const registry = await new Kvm(c.nc).open(BUCKETS.registry);
    /** The team's record, if one is stored (a removed one leaves only a delete marker). */
    const record = async (tid: string) => {
      const e = await registry.get(`team.${tid}`);
      return e?.operation === "PUT" ? e.json() : null;
    };
    const consumersOf = async (tid: string) => {
      const names: string[] = [];
      for await (const ci of jsm.consumers.list(STREAMS.tasks)) {
        if (ci.name.startsWith(`task_${tid}_`)) names.push(ci.name);
      }
      return names;
    };
    const refused = [
      // Past max_agents_per_orchestrator (2).
      { input: team("bounds-too-big", 3), code: "RESOURCE_EXHAUSTED" },
      // No host may take the kind.
      { input: team("bounds-nowhere", 1, { hosts: ["no-such-host"] }), code: "UNAVAILABLE" },
    ];
    for (const { input, code } of refused) {
      const tid = teamId(parseTeam(input));
      // Asked once (the CLI's submit would retry an UNAVAILABLE for a while).
      const err = await rejection(call(c.nc, "sup.submit", { team: parseTeam(input) }, caller));
      expect(err.code).toBe(code);
      expect(await consumersOf(tid)).toEqual([]);
      expect(await record(tid)).toBeNull();
      expect((await call(c.nc, "sup.team.list", {}, caller)).teams.map((t) => t.teamId)).not.toContain(tid);
    }
    // Placement possible, but the only host it may use never answers the spawn: the new team's
    // consumer and record, created just before, are removed again.
    const ghost = await startGhostHost(c.nc, { maxActors: 10 });
    try {
      await until("the supervisor sees the ghost", async () =>
        (await call(c.nc, "sup.host.list", {}, caller)).hosts.some((h) => h.hostId === "ghost" && h.state === "alive"),
      );
      const input = team("bounds-ghosted", 1, { hosts: ["ghost"] });
      const tid = teamId(parseTeam(input));
      const err = await rejection(
        call(c.nc, "sup.submit", { team: parseTeam(input) }, { ...caller, timeoutMs: 10_000 }),
      );
      expect(err.code).toBe("UNAVAILABLE");
      expect(await consumersOf(tid)).toEqual([]);
      expect(await record(tid)).toBeNull();
    } finally {
      ghost.stop();
    }

    // An accepted one has both.
    const ok = team("bounds-accepted", 1);
    const tid = teamId(parseTeam(ok));
    expect((await c.wait(await c.submit(ok))).status).toBe("completed");
    expect(await consumersOf(tid)).toEqual([`task_${tid}_worker`]);
    expect(await record(tid)).toMatchObject({ name: "bounds-accepted" });
  }, 60_000);

  it("a spawn the host cannot carry out in full leaves its actor count unchanged", async () => {
    // A team the supervisor placed (its consumer exists), to mix with one it never placed.
    const placedTeam = team("bounds-placed", 1);
    const placedId = teamId(parseTeam(placedTeam));
    expect((await c.wait(await c.submit(placedTeam))).status).toBe("completed");
    const kind = { role: "agent" as const, behaviour: { type: "script" as const } };
    const placed = (n: number) =>
      Array.from({ length: n }, (_, i) => ({
        actorId: `intruder-ok-${i}`,
        teamId: placedId,
        kindName: "worker",
        kind,
      }));
    const ghost = { actorId: "intruder-ghost", teamId: "no-such-team-0123456789", kindName: "ghost", kind };

    const before = await actorsOf("host-1");
    for (const [actors, code] of [
      // A team and kind the supervisor never placed: nothing to pull from.
      [[ghost], "NOT_FOUND"],
      // All or none: a good actor beside it is not started either.
      [[...placed(1), ghost], "NOT_FOUND"],
      // More than the host takes.
      [placed(MAX_ACTORS + 1), "RESOURCE_EXHAUSTED"],
    ] as const) {
      const err = await rejection(call(c.nc, "host.spawn", { actors: [...actors] }, { ...caller, hostId: "host-1" }));
      expect(err.code).toBe(code);
    }
    // A heartbeat sent after the refusals.
    expect(await actorsOf("host-1")).toBe(before);
    const listed = await call(
      c.nc,
      "host.inspect",
      { actorId: "intruder-ok-0" },
      { ...caller, hostId: "host-1" },
    ).catch((e) => e);
    expect(listed.code).toBe("NOT_FOUND");
  }, 60_000);

  it("forgets a host id heard once and never registered, after the dead time", async () => {
    const hostIds = async () => (await call(c.nc, "sup.host.list", {}, caller)).hosts.map((h) => h.hostId);
    c.nc.publish(
      subjects.heartbeat("ghost-host"),
      encode(
        "heartbeat",
        { hostId: "ghost-host", incarnation: "i-ghost", seq: 0, actors: 0, busy: 0, load: 0 },
        { sender: "ghost-host" },
      ),
    );
    await until("the supervisor heard the ghost", async () => (await hostIds()).includes("ghost-host"), 10_000);
    // fastConfig's dead time is 1 s; the supervisor looks every dead time.
    await until("the ghost forgotten", async () => !(await hostIds()).includes("ghost-host"), 10_000);
    expect(await hostIds()).toEqual(expect.arrayContaining(["host-1", "host-2"]));
  }, 30_000);

  it("garbage in the events stream does not break `cadre reconciliation`: it is skipped and counted", async () => {
    const js = jetstream(c.nc);
    // Not msgpack; an event whose data breaks its type's schema; an event with a scope too long.
    await js.publish(subjects.event("host", "garbage-host"), new Uint8Array([0xc1, 0xff, 0x00, 0x13]));
    await js.publish(
      subjects.event("host", "garbage-host"),
      encode(
        "event",
        { type: "RECONCILIATION_REPORT", category: "host", scope: "garbage-host", data: {} },
        { sender: "x" },
      ),
    );
    await js.publish(
      subjects.event("host", "garbage-host"),
      unsafeFrame("event", { type: "RECONCILIATION_REPORT", category: "host", scope: "g".repeat(5000), data: {} }),
    );
    // And one good report among them.
    const report = {
      hostId: "garbage-host",
      batch: "b9:2",
      applied: 2,
      duplicate: 0,
      conflict: 0,
      invalid: 0,
      orphan: 0,
      total: 2,
      replayed: 2,
      complete: true,
      ms: 5,
    };
    await js.publish(
      subjects.event("host", "garbage-host"),
      encode(
        "event",
        { type: "RECONCILIATION_REPORT", category: "host", scope: "garbage-host", data: report },
        {
          sender: "x",
        },
      ),
    );

    const printed = JSON.parse(c.cli("reconciliation", "--json")) as unknown[];
    expect(printed).toContainEqual(report);
    const { skipped } = await readEventLog(c.nc, subjects.eventsOf("host"));
    expect(skipped).toBeGreaterThanOrEqual(3);
    // The command says how many it skipped (on standard error, exit 0).
    const run = spawnSync(process.execPath, [cliMain, "reconciliation", "--host", "garbage-host"], {
      env: { ...process.env, CADRE_NATS_URL: c.stack.natsUrl },
      encoding: "utf8",
    });
    expect(run.status).toBe(0);
    expect(run.stderr).toContain("3 stored host events skipped");
    expect(run.stdout).toContain("RECONCILIATION_REPORT:host:garbage-host:");
  }, 60_000);

  it.each(["supervisor", "agent-host"])("%s: a bad natsUrl exits 2 naming the field", (service) => {
    const main = fileURLToPath(new URL(`../../services/${service}/dist/main.js`, import.meta.url));
    const run = spawnSync(process.execPath, [main, "--nats-url", "garbage"], { encoding: "utf8", timeout: 20_000 });
    expect(run.status).toBe(2);
    expect(run.stderr).toContain("natsUrl: expected nats://host:port");
  });
});

const cliMain = fileURLToPath(new URL("../../packages/cli/dist/main.js", import.meta.url));
