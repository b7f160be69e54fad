/**
 * Workflows that wait for workflows (a submit's `after`, `cadre run --after`), on a real stack
 * (nats-server, the supervisor, two agent-hosts and the monitor as processes): a waiting
 * workflow starts only once what it waits for completed; one waiting for a workflow that fails
 * or is cancelled fails, naming it; an unknown id is refused; `/coordination-hub
 * dependency-analysis` maps a chain of three; and a standby that takes the lease over releases
 * what waits. Held back by pausing the dependency (a control), never by timing.
 */

import { execFileSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { submitWorkflow } from "@cadre/cli";
import { DEPENDENCY_FAILED, type OpReply, parseTeam, type TeamInput } from "@cadre/protocol";
import { discoverServices, SupervisorClient } from "@cadre/runtime";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  fanTeam,
  fastConfig,
  recordEvents,
  startCluster,
  type TestCluster,
  until,
  waitForEvent,
} from "../helpers/cluster.js";

type Analysis = OpReply<"mon.coordination-hub.dependency-analysis">;
const cadre = createRequire(import.meta.url).resolve("@cadre/cli/main");

/** A team whose only task, an agent, fails at its first and only attempt. */
const failingTeam = (name: string): TeamInput => ({
  name,
  root: "solo",
  kinds: {
    solo: {
      role: "agent",
      replicas: 1,
      retry: { attempts: 1 },
      behaviour: { type: "script", failProbability: 1 },
    },
  },
});

describe("workflows that wait for other workflows", () => {
  let c: TestCluster;
  let sup: SupervisorClient;
  let dir: string;

  beforeAll(async () => {
    c = await startCluster({ hosts: 2, monitor: true, config: fastConfig });
    sup = new SupervisorClient(c.nc, { sender: "dependencies-test", timeoutMs: 10_000 });
    dir = mkdtempSync(join(tmpdir(), "cadre-deps-"));
  }, 60_000);
  afterAll(async () => {
    await c?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  const submit = async (team: TeamInput, after?: string[]) =>
    (await submitWorkflow(c.nc, { team: parseTeam(team), requestTimeoutMs: 10_000, ...(after ? { after } : {}) }))
      .workflowId;
  /**
   * A running workflow that cannot finish until resumed: paused at once with `now` (its one
   * worker, 2.5 s of work, gives its attempt back or never starts; its lead waits for it).
   */
  const held = async (name: string) => {
    const id = await submit(fanTeam(name, 1, 2500, 1));
    await sup.call("sup.workflow.pause", { workflowId: id, now: true });
    return id;
  };
  const status = async (id: string) => (await sup.call("sup.status", { workflowId: id })).workflow;
  /** `cadre ...` with its exit code and both outputs (a non-zero exit does not throw). */
  const run = (...args: string[]): { code: number; stdout: string; stderr: string } => {
    try {
      const stdout = execFileSync(process.execPath, [cadre, ...args], {
        env: { ...process.env, ...c.cliEnv() },
        encoding: "utf8",
        stdio: ["ignore", "pipe", "pipe"],
      });
      return { code: 0, stdout, stderr: "" };
    } catch (err) {
      const e = err as { status: number; stdout: string; stderr: string };
      return { code: e.status, stdout: e.stdout, stderr: e.stderr };
    }
  };
  const teamFile = (team: TeamInput): string => {
    const file = join(dir, `${team.name}.json`);
    writeFileSync(file, JSON.stringify(team));
    return file;
  };
  const analysis = (body: Record<string, unknown>): Analysis =>
    JSON.parse(c.cli("coordination-hub", "dependency-analysis", JSON.stringify(body), "--json")) as Analysis;

  it("B submitted after A waits, shown as waiting; starts once A completed, then completes", async () => {
    const rec = recordEvents(c.nc);
    const a = await held("deps-a");
    const b = await submit(fanTeam("deps-b", 2, 20), [a]);

    const waiting = await status(b);
    expect(waiting).toMatchObject({ status: "running", after: [a], waitingFor: [a] });
    expect(c.cli("status", b)).toContain(`waits for ${a}`);
    const listed = c.cli("workflow", "list", "--status", "running");
    expect(listed.split("\n").find((l) => l.startsWith(b))).toMatch(/\swaiting\s/);
    await until("WORKFLOW_WAITING", () =>
      rec.events.find((e) => e.event.type === "WORKFLOW_WAITING" && e.event.scope === b),
    );
    // Nothing of B runs while A has not completed.
    expect((await c.taskRecords(b)).map((t) => [t.task.taskId, t.status, t.applied])).toEqual([
      [`${b}-r`, "queued", null],
    ]);

    await sup.call("sup.workflow.resume", { workflowId: a });
    const wb = await c.wait(b);
    expect(wb.status, c.tail()).toBe("completed");
    expect(wb).toMatchObject({ after: [a], waitingFor: [] });
    const wa = await status(a);
    expect(wa.status).toBe("completed");

    // In the order received: A completed, then B released and its root started (the root is
    // published before the release is recorded, so either may come first).
    const at = (match: (t: string, scope: string, data: Record<string, unknown>) => boolean) =>
      rec.events.findIndex((e) => match(e.event.type, e.event.scope, e.event.data));
    const started = () => at((t, _s, d) => t === "TASK_STARTED" && d.taskId === `${b}-r`);
    await until("B's root TASK_STARTED", () => started() >= 0);
    rec.stop();
    const completedA = at((t, s) => t === "WORKFLOW_COMPLETED" && s === a);
    const releasedB = at((t, s) => t === "WORKFLOW_RELEASED" && s === b);
    expect(completedA).toBeGreaterThanOrEqual(0);
    expect(releasedB).toBeGreaterThan(completedA);
    expect(started()).toBeGreaterThan(completedA);
    expect(rec.events[releasedB]?.event.data.after).toEqual([a]);
    // And from the records: B's root attempt started after A finished.
    const rootB = (await c.taskRecords(b)).find((t) => t.task.taskId === `${b}-r`);
    expect(rootB?.applied?.startedAt).toBeGreaterThanOrEqual(wa.finishedAt ?? Number.POSITIVE_INFINITY);
  }, 60_000);

  it("a workflow after one that fails, or one that is cancelled, fails naming it (cadre run exits 1)", async () => {
    const f = await submit(failingTeam("deps-fails"));
    const out = run("run", teamFile(fanTeam("deps-c", 1, 10)), "--after", f, "--json", "--timeout", "30");
    expect(out.code, out.stderr).toBe(1);
    const summary = JSON.parse(out.stdout.trim().split("\n").at(-1) ?? "{}");
    expect(summary.status).toBe("failed");
    expect(summary.error).toMatchObject({ code: DEPENDENCY_FAILED, data: { dependency: f, outcome: "failed" } });
    expect(summary.error.message).toContain(`workflow ${f}`);
    expect((await status(f)).status).toBe("failed");

    const x = await held("deps-x");
    const d = await submit(fanTeam("deps-d", 1, 10), [x]);
    expect((await status(d)).waitingFor).toEqual([x]);
    const failed = waitForEvent(c.nc, (e) => e.type === "WORKFLOW_FAILED" && e.scope === d, 20_000);
    await sup.call("sup.workflow.cancel", { workflowId: x, reason: "test" });
    const e = await failed;
    expect(e.data.error).toMatchObject({ code: DEPENDENCY_FAILED, data: { dependency: x, outcome: "cancelled" } });
    const wd = await c.wait(d);
    expect(wd).toMatchObject({ status: "failed", waitingFor: [] });
    // Its root never ran: it ended cancelled, and the counts add up.
    expect((await c.taskRecords(d)).map((t) => [t.status, t.applied])).toEqual([["cancelled", null]]);
    expect(wd.tasks).toMatchObject({ total: 1, completed: 0, failed: 0, cancelled: 1 });
  }, 60_000);

  it("an unknown workflow in --after is NOT_FOUND naming it (exit 2), and nothing is submitted", async () => {
    const before = (await sup.call("sup.workflow.list", { limit: 1000 })).workflows.length;
    const out = run("run", teamFile(fanTeam("deps-unknown", 1, 10)), "--after", "wnosuchworkflow", "--json");
    expect(out.code, out.stdout).toBe(2);
    expect(out.stderr).toContain('workflow named in after "wnosuchworkflow" does not exist');
    await expect(
      sup.call("sup.submit", { team: parseTeam(fanTeam("deps-unknown", 1, 10)), after: ["wa", "wnosuchworkflow"] }),
    ).rejects.toMatchObject({ code: "NOT_FOUND", data: { id: "wa" } });
    expect((await sup.call("sup.workflow.list", { limit: 1000 })).workflows.length).toBe(before);
    // A list the supervisor would refuse is refused here already.
    const twice = run("run", teamFile(fanTeam("deps-twice", 1, 10)), "--after", "wa,wa");
    expect(twice.code).toBe(2);
    expect(twice.stderr).toContain("more than once");
  }, 30_000);

  it("dependency-analysis maps A, B after A, C after B: the order, the edges, the chain", async () => {
    const a = await held("deps-chain-a");
    const b = await submit(fanTeam("deps-chain-b", 1, 10), [a]);
    const cc = await submit(fanTeam("deps-chain-c", 1, 10), [b]);

    const r = analysis({
      scope: "affected_workflow_dependencies",
      focus: ["critical_path_analysis", "dependency_chain_mapping", "telepathy"],
    });
    const mine = (ids: string[]) => ids.filter((id) => [a, b, cc].includes(id));
    expect(mine(r.order)).toEqual([a, b, cc]);
    expect(r.scope).toBe("affected_workflow_dependencies");
    expect(r.ignored).toEqual([expect.stringContaining("telepathy")]);

    // From C: what it waits for, transitively.
    const n = analysis({ workflows: [cc] });
    expect(n.order).toEqual([a, b, cc]);
    expect(n.workflows.map((w) => [w.workflowId, w.status, w.after, w.waitingFor])).toEqual([
      [a, "paused", [], []],
      [b, "waiting", [a], [a]],
      [cc, "waiting", [b], [b]],
    ]);
    expect(n.edges).toEqual(
      expect.arrayContaining([
        { dependency: a, dependent: b, state: "awaited" },
        { dependency: b, dependent: cc, state: "awaited" },
      ]),
    );
    expect(n.edges).toHaveLength(2);
    expect(n.longestChain.workflows).toEqual([a, b, cc]);
    expect(n.blocked).toEqual([]);
    const wa = n.workflows[0];
    expect(wa?.progress.total).toBeGreaterThanOrEqual(1);
    expect(wa?.criticalPath.tasks[0]).toBe(`${a}-r`);
    expect(wa?.priority).toBe(0);
    // A waiting workflow's critical path is its root alone (nothing has run).
    expect(n.workflows[1]?.criticalPath).toEqual({ length: 1, tasks: [`${b}-r`], kinds: ["lead"] });

    // Released one after the other.
    await sup.call("sup.workflow.resume", { workflowId: a });
    expect((await c.wait(cc)).status, c.tail()).toBe("completed");
    const done = analysis({ workflows: [cc] });
    expect(done.order).toEqual([a, b, cc]);
    expect(done.workflows.map((w) => w.status)).toEqual(["completed", "completed", "completed"]);
    expect(done.edges.every((e) => e.state === "satisfied")).toBe(true);
    expect(done.longestChain.workflows).toEqual([]);
    expect(run("coordination-hub", "dependency-analysis", JSON.stringify({ workflows: ["wnothere"] })).code).toBe(2);
  }, 60_000);

  it("a standby that takes the lease over releases what waits once its dependency completes", async () => {
    await c.stack.startSupervisor("sup-standby");
    // A's one task takes 8 s, so it completes only after the takeover.
    const a = await submit(fanTeam("deps-fo-a", 1, 8000, 1));
    const b = await submit(fanTeam("deps-fo-b", 1, 10), [a]);
    expect((await status(b)).waitingFor).toEqual([a]);

    const activated = waitForEvent(c.nc, (e) => e.type === "SUPERVISOR_ACTIVE" && e.scope === "sup-standby", 30_000);
    await c.stack.processes.get("supervisor")?.kill("SIGKILL");
    await activated;
    await until("the standby registered as active", async () =>
      (await discoverServices(c.nc, "cadre-supervisor")).some(
        (s) => s.metadata?.id === "sup-standby" && s.metadata?.role === "active",
      ),
    );
    // The new active supervisor knows B waits (from the index, on taking over) and releases it
    // once it has applied A's result.
    expect((await status(a)).status).toBe("running");
    await waitForEvent(c.nc, (e) => e.type === "WORKFLOW_RELEASED" && e.scope === b, 30_000);
    const wb = await c.wait(b);
    expect(wb.status, c.tail()).toBe("completed");
    expect(wb.waitingFor).toEqual([]);
  }, 90_000);
});
