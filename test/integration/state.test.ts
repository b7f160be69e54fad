/**
 * Workflow state end to end: agents write it in transactions, a frozen workflow's writes wait,
 * a writer process killed midway leaves all keys old or all new, and an operator rolls the state
 * back to a checkpoint and replays the log without a bad transaction.
 */

import { spawn } from "node:child_process";
import { fileURLToPath } from "node:url";
import { parseConfig, type TeamInput } from "@cadre/protocol";
import { ensureInfrastructure, StateValueSchema, TxStore } from "@cadre/runtime";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { fastConfig, recordEvents, startCluster, type TestCluster, until } from "../helpers/cluster.js";

const writer = fileURLToPath(new URL("../dist/helpers/txn-writer.js", import.meta.url));

const team: TeamInput = {
  name: "state",
  root: "lead",
  kinds: {
    lead: {
      role: "director",
      replicas: 1,
      behaviour: {
        type: "script",
        delegate: [{ kind: "worker", count: 2, input: { part: "p{{index}}" } }],
        output: { parts: "{{children}}" },
        state: { status: "integrated", parts: "{{output.parts}}" },
      },
    },
    worker: {
      role: "agent",
      replicas: 2,
      behaviour: {
        type: "script",
        // Long enough that the freeze (a CLI process starting up, on a loaded machine) lands first.
        sleepMs: 3000,
        output: { part: "{{input.part}}" },
        state: { "last-part": "{{output.part}}", "last-task": "{{task.id}}" },
      },
    },
  },
};

describe("workflow state", () => {
  let c: TestCluster;
  let store: TxStore<unknown>;
  const show = (id: string) => JSON.parse(c.cli("state", "show", id)) as Record<string, unknown>;

  beforeAll(async () => {
    // Backoff long enough that a frozen write's retries outlast the freeze in the test.
    c = await startCluster({
      hosts: 2,
      config: { ...fastConfig, tasks: { ...fastConfig.tasks, retryBackoffMs: 1000 } },
    });
    const buckets = await ensureInfrastructure(c.nc, parseConfig({}));
    store = new TxStore(buckets.state, StateValueSchema, { writer: "test" });
  }, 60_000);
  afterAll(async () => {
    await c?.stop();
  });

  it("agents write it in transactions; a frozen workflow's writes wait and nothing is lost", async () => {
    const rec = recordEvents(c.nc);
    const id = await c.submit(team);
    await until(
      "both workers started",
      () => rec.events.filter((e) => e.event.type === "TASK_STARTED" && e.event.data.kind === "worker").length === 2,
    );
    expect(c.cli("freeze", id)).toContain(`frozen ${id}`);
    // The workers finish and try to write: refused as retryable, so the attempt is tried again.
    const refused = await until("a worker's state write refused", () =>
      rec.events.find(
        (e) => e.event.type === "TASK_ATTEMPT_FAILED" && e.event.scope === id && e.event.data.code === "UNAVAILABLE",
      ),
    );
    expect(JSON.stringify(refused.event.data)).toContain("frozen");
    expect(show(id)).toEqual({});

    expect(c.cli("unfreeze", id)).toContain(`unfrozen ${id}`);
    const w = await c.wait(id, 30_000);
    rec.stop();
    expect(w.status).toBe("completed");
    const state = show(id);
    expect(state.status).toBe("integrated");
    expect(state.parts).toEqual([{ part: "p0" }, { part: "p1" }]);
    expect(["p0", "p1"]).toContain(state["last-part"]);
    // One transaction per writer: the last part and the last task are from the same worker.
    const workerOf = { p0: `${id}-r-0`, p1: `${id}-r-1` } as Record<string, string>;
    expect(String(state["last-task"])).toBe(workerOf[String(state["last-part"])]);
  }, 60_000);

  describe("a writer process killed midway (SIGKILL) leaves every key old or every key new", () => {
    const keys = ["wkill.a", "wkill.b", "wkill.c"];
    const killAt = async (point: string, afterKeys: number) => {
      const child = spawn(process.execPath, [writer, c.stack.natsUrl, point, String(afterKeys), "2", ...keys], {
        stdio: ["ignore", "pipe", "pipe"],
        env: { ...process.env, ...c.cliEnv() },
      });
      let out = "";
      child.stdout.on("data", (d) => {
        out += d;
      });
      child.stderr.on("data", (d) => {
        out += d;
      });
      const exited = new Promise((r) => child.on("exit", r));
      await until(`the writer stopped at ${point}`, () => out.includes("STOPPED") || (out.includes("Error") && out));
      expect(out).toContain("STOPPED");
      child.kill("SIGKILL");
      await exited;
    };
    const values = async () => [...(await store.read(keys)).values()];

    it("killed after preparing 2 of 3 keys: all old, and the next writer goes on after its deadline", async () => {
      await store.transact(keys, () => Object.fromEntries(keys.map((k) => [k, { n: 1 }])));
      await killAt("prepared", 2);
      expect(await values()).toEqual([{ n: 1 }, { n: 1 }, { n: 1 }]);
      // This writer waits for the dead one's deadline (500 ms), aborts it and commits.
      await store.transact(keys, (cur) =>
        Object.fromEntries(keys.map((k) => [k, { n: ((cur.get(k) as { n: number }).n ?? 0) + 10 }])),
      );
      expect(await values()).toEqual([{ n: 11 }, { n: 11 }, { n: 11 }]);
    });

    it("killed after its commit point: all new", async () => {
      await killAt("committed", 0);
      expect(await values()).toEqual([{ n: 2 }, { n: 2 }, { n: 2 }]);
    });
  });

  it("an operator rolls the state back to a checkpoint and replays the log without a bad transaction", async () => {
    // The state of a workflow that exists: the supervisor checkpoints and rolls back known workflows only.
    const wf = await c.submit({
      name: "ops",
      root: "a",
      kinds: { a: { role: "agent", replicas: 1, behaviour: { type: "script" } } },
    });
    expect((await c.wait(wf)).status).toBe("completed");
    const key = (n: string) => `${wf}.${n}`;
    await store.transact([key("plan"), key("budget")], () => ({ [key("plan")]: "v1", [key("budget")]: 100 }));
    const made = c.cli("state", "checkpoint", wf);
    expect(made).toMatch(/^checkpoint \d+: 2 key\(s\)$/m);
    const checkpoint = Number(/checkpoint (\d+)/.exec(made)?.[1]);
    await store.transact([key("plan")], () => ({ [key("plan")]: "v2" }));
    const bad = await store.transact([key("budget"), key("note")], () => ({
      [key("budget")]: -1,
      [key("note")]: "overspent",
    }));
    await store.transact([key("plan")], () => ({ [key("plan")]: "v3" }));
    expect(show(wf)).toEqual({ plan: "v3", budget: -1, note: "overspent" });

    const log = JSON.parse(c.cli("state", "log", wf, "--json")) as {
      checkpoints: number[];
      entries: { seq: number; txid: string }[];
    };
    expect(log.checkpoints).toEqual([checkpoint]);
    expect(log.entries.map((e) => e.txid)).toContain(bad.txid);
    expect(log.entries).toHaveLength(4);

    const rec = recordEvents(c.nc);
    // The CLI runs synchronously: the subscription must reach the server before it blocks us.
    await c.nc.flush();
    const out = c.cli("state", "rollback", wf, "--to", String(checkpoint), "--skip", bad.txid);
    expect(out).toContain("replayed 2");
    expect(out).toContain("skipped 1");
    expect(show(wf)).toEqual({ plan: "v3", budget: 100 });
    await until("the rollback announced", () => rec.events.find((e) => e.event.type === "STATE_ROLLED_BACK"));
    rec.stop();

    // A transaction id that is not in the log after the checkpoint is refused, naming it.
    let err = "";
    try {
      c.cli("state", "rollback", wf, "--to", String(checkpoint), "--skip", "nope");
    } catch (e) {
      err = String((e as { stderr?: string }).stderr);
    }
    expect(err).toContain('"nope" does not exist');
  });
});

describe("workflow state past max_state_size_mb", () => {
  let c: TestCluster;
  beforeAll(async () => {
    c = await startCluster({ hosts: 1, config: { ...fastConfig, orchestration_limits: { max_state_size_mb: 0.01 } } });
  }, 60_000);
  afterAll(async () => {
    await c?.stop();
  });

  it("fails the task that writes too much with STATE_LIMIT_EXCEEDED, naming the setting, without retrying it", async () => {
    const id = await c.submit({
      name: "state-limit",
      root: "hoarder",
      input: { blob: "x".repeat(20_000) },
      kinds: {
        hoarder: { role: "agent", replicas: 1, behaviour: { type: "script", state: { blob: "{{input.blob}}" } } },
      },
    });
    const w = await c.wait(id, 30_000);
    expect(w.status).toBe("failed");
    expect(w.error?.code).toBe("STATE_LIMIT_EXCEEDED");
    expect(w.error?.message).toContain("max_state_size_mb");
    expect(w.error?.message).toContain(`"${id}.blob"`);
    expect(w.tasks.retried).toBe(0);
  }, 60_000);
});
