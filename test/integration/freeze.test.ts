/**
 * Data protection mode: `cadre freeze` stops every state change of one workflow while its
 * agents keep working; their results wait in the results stream. `cadre unfreeze` lets them be
 * applied, and the workflow completes with nothing lost.
 */

import { STREAMS, subjects, type TeamInput } from "@cadre/protocol";
import { jetstreamManager } from "@nats-io/jetstream";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { recordEvents, startCluster, type TestCluster, until } from "../helpers/cluster.js";

const team: TeamInput = {
  name: "freeze",
  root: "lead",
  kinds: {
    lead: { role: "director", replicas: 1, behaviour: { type: "script", delegate: [{ kind: "worker", count: 3 }] } },
    // Long enough that the freeze (a CLI process starting up, on a loaded machine) lands first.
    worker: { role: "agent", replicas: 3, behaviour: { type: "script", sleepMs: 3000, output: { ok: true } } },
  },
};

describe("a workflow frozen while its agents work", () => {
  let c: TestCluster;
  const cli = (...args: string[]) => c.cli(...args);
  beforeAll(async () => {
    c = await startCluster({ hosts: 2 });
  }, 60_000);
  afterAll(async () => {
    await c?.stop();
  });

  it("applies none of their results until unfrozen, then completes with nothing lost", async () => {
    const rec = recordEvents(c.nc);
    const id = await c.submit(team);
    await until(
      "the three workers started",
      () => rec.events.filter((e) => e.event.type === "TASK_STARTED" && e.event.data.kind === "worker").length === 3,
    );
    expect(cli("freeze", id)).toContain(`frozen ${id}`);

    // The workers finish: their results reach the results stream but are not applied.
    const jsm = await jetstreamManager(c.nc);
    const root = (await c.taskRecords(id)).find((r) => r.task.parentTaskId === null);
    const subject = subjects.result(root?.task.partition ?? 0, id);
    await until("the three results stored", async () => {
      const info = await jsm.streams.info(STREAMS.results, { subjects_filter: subject });
      return (info.state.subjects?.[subject] ?? 0) >= 3;
    });
    const during = await c.taskRecords(id);
    expect(during.filter((r) => r.task.kind === "worker").map((r) => r.status)).toEqual(["queued", "queued", "queued"]);
    expect(rec.events.filter((e) => e.event.type === "TASK_COMPLETED" && e.event.scope === id)).toEqual([]);

    expect(cli("unfreeze", id)).toContain(`unfrozen ${id}`);
    const w = await c.wait(id, 30_000);
    rec.stop();
    expect(w.status).toBe("completed");
    expect(w.tasks).toMatchObject({ total: 4, completed: 4, failed: 0, duplicates: 0 });
    const types = rec.events.filter((e) => e.event.scope === id).map((e) => e.event.type);
    expect(types).toContain("WORKFLOW_FROZEN");
    expect(types).toContain("WORKFLOW_UNFROZEN");
  }, 60_000);

  it("refuses to freeze a workflow that does not exist, naming it", () => {
    let out = "";
    try {
      cli("freeze", "wnope");
    } catch (err) {
      out = String((err as { stderr?: string }).stderr);
    }
    expect(out).toContain("wnope");
  });
});
