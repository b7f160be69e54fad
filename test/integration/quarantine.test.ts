/**
 * Quarantine on a real cluster: an agent whose responses break its kind's schema is taken out
 * of service, replaced (with its context) on the other host, and the task completes there;
 * one that keeps answering badly through every replacement fails the task with the issues.
 * Operators see and release quarantined actors with `cadre quarantine`.
 */

import type { ActorRecord, TeamInput } from "@cadre/protocol";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { recordEvents, startCluster, type TestCluster, until } from "../helpers/cluster.js";

const schema = { type: "object", required: ["code"], properties: { code: { type: "string" } } };

describe("an agent whose responses break its kind's schema", () => {
  let c: TestCluster;
  const cli = (...args: string[]) => c.cli(...args);
  beforeAll(async () => {
    c = await startCluster({ hosts: 2 });
  }, 60_000);
  afterAll(async () => {
    await c?.stop();
  });

  it("is quarantined and replaced with its context on the other host, where the task completes", async () => {
    const team: TeamInput = {
      name: "quarantine",
      root: "lead",
      kinds: {
        lead: {
          role: "director",
          replicas: 1,
          behaviour: { type: "script", delegate: [{ kind: "coder" }], output: { done: true } },
        },
        // Every answer of the original actor is a bare string; its replacement answers well.
        coder: {
          role: "agent",
          replicas: 1,
          behaviour: { type: "script", brokenUntilReplaced: true, output: { code: "ok" } },
          output: schema,
        },
      },
    };
    const rec = recordEvents(c.nc);
    const id = await c.submit(team);
    const w = await c.wait(id, 30_000);
    expect(w.status, c.tail()).toBe("completed");
    const quarantined = await until("the quarantine event", () =>
      rec.events.find((e) => e.event.type === "AGENT_QUARANTINED"),
    );
    rec.stop();

    const q = quarantined.event.data;
    expect(q).toMatchObject({ kind: "coder", taskId: `${id}-r-0` });
    expect(q.issues).toEqual([expect.objectContaining({ message: expect.any(String) })]);
    // The replacement runs on the other host and inherited the quarantined actor's task history.
    const spawned = rec.events.find((e) => e.event.type === "ACTOR_SPAWNED" && e.event.scope === q.replacement);
    expect(spawned?.event.data).toMatchObject({ replaces: q.actorId, inheritedTasks: 1, kind: "coder" });
    expect(spawned?.event.data.hostId, c.tail(60)).not.toBe(q.hostId);
    // The task was retried with a new epoch and completed by the replacement.
    const [task] = (await c.taskRecords(id)).filter((r) => r.task.kind === "coder");
    expect(task?.applied).toMatchObject({ actorId: q.replacement, epoch: 2 });
    expect(task?.output).toEqual({ code: "ok" });
    expect(task?.invalid.map((i) => i.actorId)).toEqual([q.actorId]);

    // Operators see it, with the reason, and can put it back to work.
    const listed = JSON.parse(cli("quarantine", "--json")) as ActorRecord[];
    expect(listed.map((a) => [a.actorId, a.status, a.replacedBy, a.quarantine?.taskId])).toEqual([
      [q.actorId, "quarantined", q.replacement, `${id}-r-0`],
    ]);
    expect(cli("quarantine")).toContain(String(q.actorId));
    expect(cli("quarantine", "release", String(q.actorId))).toContain(`released ${q.actorId}`);
    expect(JSON.parse(cli("quarantine", "--json"))).toEqual([]);
  }, 60_000);

  it("fails the task with INVALID_AGENT_RESPONSE and the issues once every attempt answered badly", async () => {
    const team: TeamInput = {
      name: "quarantine-liar",
      root: "liar",
      kinds: {
        // Replacements answer badly too: after quarantine.maxAttempts (3) the task fails.
        liar: {
          role: "agent",
          replicas: 1,
          behaviour: { type: "script", invalidProbability: 1, output: { code: "ok" } },
          output: schema,
        },
      },
    };
    const rec = recordEvents(c.nc);
    const id = await c.submit(team);
    const w = await c.wait(id, 30_000);
    rec.stop();
    expect(w.status).toBe("failed");
    expect(w.error?.code).toBe("INVALID_AGENT_RESPONSE");
    expect(w.error?.data?.issues).toEqual([expect.objectContaining({ message: expect.any(String) })]);
    const [task] = await c.taskRecords(id);
    expect(task?.invalid).toHaveLength(3);
    expect(new Set(task?.invalid.map((i) => i.actorId)).size).toBe(3);
    const quarantines = rec.events.filter((e) => e.event.type === "AGENT_QUARANTINED" && e.event.data.kind === "liar");
    expect(quarantines).toHaveLength(3);
    // An operator retires them: they leave the list.
    for (const q of quarantines) cli("quarantine", "retire", String(q.event.data.actorId));
    expect(JSON.parse(cli("quarantine", "--json"))).toEqual([]);
  }, 60_000);
});
