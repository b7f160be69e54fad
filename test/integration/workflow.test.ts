import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parse } from "yaml";
import { chainTeam, startCluster, type TestCluster } from "../helpers/cluster.js";

const example = parse(
  readFileSync(fileURLToPath(new URL("../../examples/software-team.yaml", import.meta.url)), "utf8"),
);

describe("workflows across real NATS, the supervisor and two agent-hosts", () => {
  let c: TestCluster;
  beforeAll(async () => {
    c = await startCluster();
  });
  afterAll(async () => {
    await c?.stop();
  });

  it("runs the software-team example to completion, applying each task's result once", async () => {
    const id = await c.submit(example);
    const w = await c.wait(id);
    expect(w.status, c.tail()).toBe("completed");
    // director, lead, backend, frontend, qa
    // The backend engineer's seeded first attempt fails (seed 7, failProbability 0.5) and is retried.
    expect(w.tasks).toMatchObject({ total: 5, completed: 5, failed: 0, retried: 1 });
    const records = await c.taskRecords(id);
    expect(records).toHaveLength(5);
    for (const r of records) {
      expect(r.status).toBe("completed");
      expect(r.applied).not.toBeNull();
    }
    const applied = (await c.events()).filter((e) => e.type === "TASK_COMPLETED" && e.scope === id);
    expect(applied).toHaveLength(5);
    expect(new Set(applied.map((e) => e.data.taskId)).size).toBe(5);
    const output = w.output as { summary: string; delivered: { parts: { component: string }[] }[] };
    expect(output.summary).toBe("Shipped: password reset by email");
    expect(output.delivered[0]?.parts.map((p) => p.component)).toEqual(["backend", "frontend", "qa"]);
  });

  it("lets actors work tasks back to back without losing one between tasks", async () => {
    const id = await c.submit({
      name: "back-to-back",
      root: "boss",
      kinds: {
        boss: {
          role: "director",
          replicas: 1,
          behaviour: { type: "script", delegate: [{ kind: "solo", count: 200 }] },
        },
        solo: { role: "agent", replicas: 8, behaviour: { type: "script", output: { n: "{{task.id}}" } } },
      },
    });
    const w = await c.wait(id);
    expect(w.status, c.tail()).toBe("completed");
    expect(w.tasks).toMatchObject({ total: 201, completed: 201, failed: 0 });
  });

  it("refuses a delegation that closes a cycle (a > b > c > a) before the target starts, and the workflow reports the chain", async () => {
    const lead = (next: string) => ({
      role: "lead" as const,
      replicas: 1,
      behaviour: { type: "script" as const, delegate: [{ kind: next }] },
    });
    const id = await c.submit({ name: "cycle", root: "a", kinds: { a: lead("b"), b: lead("c"), c: lead("a") } });
    const w = await c.wait(id);
    expect(w.status).toBe("failed");
    expect(w.error?.code).toBe("CIRCULAR_DELEGATION");
    expect(w.error?.data?.chain).toEqual(["a", "b", "c", "a"]);
    expect(w.error?.message).toContain("a > b > c > a");
    // a, b, c exist; the refused fourth task was never created, so nothing started it.
    const records = await c.taskRecords(id);
    expect(records.map((r) => r.task.kind)).toEqual(["a", "b", "c"]);
    const refused = (await c.events()).filter((e) => e.type === "DELEGATION_REFUSED" && e.scope === id);
    expect(refused).toHaveLength(1);
    expect(refused[0]?.data.chain).toEqual(["a", "b", "c", "a"]);
  });

  it("refuses delegation depth 6 under the default max_delegation_depth 5", async () => {
    const id = await c.submit(chainTeam("deep", 6));
    const w = await c.wait(id);
    expect(w.status).toBe("failed");
    expect(w.error?.code).toBe("DELEGATION_DEPTH_EXCEEDED");
    expect(w.error?.data).toMatchObject({ depth: 6, limit: 5 });
    expect(w.error?.message).toContain("delegation depth 6 exceeds max_delegation_depth 5");
    const depths = (await c.taskRecords(id)).map((r) => r.task.depth);
    expect(Math.max(...depths)).toBe(5);
  });

  it("allows a chain of exactly max_delegation_depth 5", async () => {
    const id = await c.submit(chainTeam("five", 5));
    const w = await c.wait(id);
    expect(w.status, c.tail()).toBe("completed");
    expect(w.tasks).toMatchObject({ total: 6, completed: 6 });
  });
});
