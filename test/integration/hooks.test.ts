/**
 * Hooks on real agent-hosts. Non-critical hooks that throw, hang or spin for ever do not stop
 * the task path (each runs isolated and is cut at its timeout); a critical hook that throws
 * vetoes the task, which fails with HOOK_FAILED.
 */

import { join } from "node:path";
import type { TeamInput } from "@cadre/protocol";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { fastConfig, startCluster, type TestCluster, until } from "../helpers/cluster.js";

const fixture = (name: string) => join(import.meta.dirname, "../../packages/runtime/src/hooks/fixtures", `${name}.mjs`);

const team: TeamInput = {
  name: "hooked",
  root: "lead",
  kinds: {
    lead: { role: "director", replicas: 1, behaviour: { type: "script", delegate: [{ kind: "worker", count: 4 }] } },
    worker: { role: "agent", replicas: 2, behaviour: { type: "script", output: { ok: true } } },
  },
};

describe("hooks that throw, hang and spin, none of them critical", () => {
  let c: TestCluster;
  beforeAll(async () => {
    c = await startCluster({
      hosts: 2,
      config: {
        ...fastConfig,
        host: {
          hooks: [
            { name: "throws", event: "beforeTask", module: fixture("throws"), timeoutMs: 300 },
            { name: "hangs", event: "beforeTask", module: fixture("hangs"), timeoutMs: 300 },
            { name: "spins", event: "beforeTask", module: fixture("spins"), timeoutMs: 300 },
            { name: "fails-after", event: "afterTask", command: "exit 3", timeoutMs: 300 },
          ],
        },
      },
    });
  }, 60_000);
  afterAll(async () => {
    await c?.stop();
  });

  it("cascade failure isolation: the workflow completes and every failure is logged", async () => {
    const id = await c.submit(team);
    const w = await c.wait(id, 30_000);
    expect(w.status, c.tail()).toBe("completed");
    expect(w.tasks).toMatchObject({ total: 5, completed: 5, failed: 0 });
    // Each of the five tasks ran its beforeTask hooks; all three failures were reported each time.
    const warned = () =>
      [...c.logs.values()]
        .flat()
        .filter((l) => l.includes("non-critical hooks failed") && l.includes('"event":"beforeTask"'));
    await until("the hooks' failures logged", () => warned().length >= 5);
    const line = warned()[0] ?? "";
    for (const hook of ["throws", "hangs", "spins"]) expect(line).toContain(`"hook":"${hook}"`);
    expect(line).toContain('"status":"timeout"');
  }, 60_000);
});

describe("a critical beforeTask hook that throws", () => {
  let c: TestCluster;
  beforeAll(async () => {
    c = await startCluster({
      hosts: 1,
      config: {
        ...fastConfig,
        host: { hooks: [{ name: "veto", event: "beforeTask", module: fixture("throws"), critical: true }] },
      },
    });
  }, 60_000);
  afterAll(async () => {
    await c?.stop();
  });

  it("vetoes the task: it fails with HOOK_FAILED, not retried", async () => {
    const id = await c.submit({
      name: "vetoed",
      root: "worker",
      kinds: { worker: { role: "agent", replicas: 1, behaviour: { type: "script" } } },
    });
    const w = await c.wait(id, 30_000);
    expect(w.status).toBe("failed");
    expect(w.error).toMatchObject({
      code: "HOOK_FAILED",
      data: { hook: "veto", event: "beforeTask", reason: "error" },
    });
    const [task] = await c.taskRecords(id);
    expect(task?.applied?.attempt).toBe(1);
  }, 60_000);
});
