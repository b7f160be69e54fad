/**
 * The operator commands of `cadre` against a real stack (nats-server, the supervisor and
 * agent-hosts as processes): run --detach and --json, status, workflow list and controls,
 * team/actor/host listings and changes, debug views. What a pause, cancel, limit or drain does
 * to the workflow is tested with the supervisor; here, that each command reaches its operation,
 * prints what the reply says and exits with the documented code.
 */

import { type ChildProcess, spawn } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startCluster, type TestCluster, until } from "../helpers/cluster.js";

const cadre = createRequire(import.meta.url).resolve("@cadre/cli/main");

interface Running {
  child: ChildProcess;
  /** Output so far. */
  out: { stdout: string; stderr: string };
  /** Resolves with the exit code. */
  exited: Promise<number | null>;
}

/** Starts `cadre` with these arguments against the cluster whose environment is `env`. */
function start(env: Record<string, string>, args: string[]): Running {
  const child = spawn(process.execPath, [cadre, ...args], {
    stdio: ["ignore", "pipe", "pipe"],
    env: { ...process.env, ...env },
  });
  const out = { stdout: "", stderr: "" };
  child.stdout?.on("data", (d) => (out.stdout += d));
  child.stderr?.on("data", (d) => (out.stderr += d));
  const exited = new Promise<number | null>((resolve) => child.on("exit", (code) => resolve(code)));
  return { child, out, exited };
}

const dir = mkdtempSync(join(tmpdir(), "cadre-cli-commands-"));
const file = (name: string, text: string) => {
  const path = join(dir, name);
  writeFileSync(path, text);
  return path;
};
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** A lead delegating to `agents` agents, each sleeping `sleepMs`. */
const leadTeam = (name: string, agents: number, sleepMs = 0) =>
  file(
    `${name}.yaml`,
    [
      `name: ${name}`,
      "root: lead",
      "kinds:",
      `  lead: {role: lead, replicas: 1, behaviour: {type: script, delegate: [{kind: worker, count: ${agents}}], output: {parts: "{{children}}"}}}`,
      `  worker: {role: agent, replicas: 2, behaviour: {type: script, sleepMs: ${sleepMs}, output: {done: true}}}`,
    ].join("\n"),
  );

/** A single agent whose task sleeps `sleepMs`. */
const soloTeam = (name: string, sleepMs: number) =>
  file(
    `${name}.yaml`,
    `name: ${name}\nroot: solo\nkinds:\n  solo: {role: agent, replicas: 1, behaviour: {type: script, sleepMs: ${sleepMs}, output: {ok: true}}}\n`,
  );

describe("cadre's operator commands against a running cluster", () => {
  let c: TestCluster;
  /** Runs `cadre` to its end: exit code and output. */
  const cli = async (...args: string[]) => {
    const r = start(c.cliEnv(), args);
    const code = await r.exited;
    return { code, ...r.out };
  };
  /** Runs `cadre` expecting exit 0; returns its standard output. */
  const ok = async (...args: string[]) => {
    const r = await cli(...args);
    expect(r.code, `cadre ${args.join(" ")}: ${r.stderr}\n${c.tail()}`).toBe(0);
    return r.stdout;
  };
  const json = async <T>(...args: string[]) => JSON.parse(await ok(...args, "--json")) as T;

  beforeAll(async () => {
    c = await startCluster({ hosts: 2 });
  });
  afterAll(async () => {
    await c?.stop();
  });

  /** A completed workflow of a lead and two agents (made by the first test that needs it). */
  let done: { workflowId: string; teamId: string } | undefined;
  const completed = async () => {
    if (!done) {
      const lines = (await ok("run", leadTeam("cli-tree", 2), "--json")).trim().split("\n");
      const summary = JSON.parse(lines.at(-1) ?? "");
      expect(summary.status).toBe("completed");
      done = { workflowId: summary.workflowId, teamId: summary.teamId };
    }
    return done;
  };

  it("run --detach prints the workflow id and exits 0 at once; status then shows it with its controls", async () => {
    const out = await ok("run", soloTeam("cli-detach", 300), "--detach");
    const id = out.trim();
    expect(id).toMatch(/^[A-Za-z0-9_-]+$/);
    const text = await ok("status", id);
    expect(text).toContain(`workflow ${id} (cli-detach)`);
    expect(text).toContain("controls: ");
    const w = await c.wait(id);
    expect(w.status).toBe("completed");
    const s = await json<{ workflowId: string; status: string; control: unknown }>("status", id);
    expect(s).toMatchObject({ workflowId: id, status: "completed" });
    expect(s).toHaveProperty("control");
  });

  it("run --json prints the accepted line before the workflow finishes, then the summary", async () => {
    const r = start(c.cliEnv(), ["run", soloTeam("cli-json", 5000), "--json"]);
    await until("the accepted line", () => r.out.stdout.includes("\n"), 20_000);
    const first = JSON.parse(r.out.stdout.split("\n")[0] ?? "");
    expect(first).toEqual({ workflowId: expect.any(String), accepted: true });
    // The workflow is still going when its id is printed.
    expect((await json<{ status: string }>("status", first.workflowId)).status).toBe("running");
    expect(await r.exited, r.out.stderr).toBe(0);
    const lines = r.out.stdout.trim().split("\n");
    expect(lines).toHaveLength(2);
    expect(JSON.parse(lines[1] ?? "")).toMatchObject({ workflowId: first.workflowId, status: "completed" });
  });

  it("workflow list lists the workflows, newest first, and filters by status", async () => {
    const { workflowId } = await completed();
    const all = await json<{ workflows: { workflowId: string; status: string; teamName: string }[] }>(
      "workflow",
      "list",
    );
    expect(all.workflows.map((w) => w.workflowId)).toContain(workflowId);
    expect(all.workflows.find((w) => w.workflowId === workflowId)).toMatchObject({ status: "completed" });
    const failed = await json<{ workflows: unknown[] }>("workflow", "list", "--status", "failed");
    expect(failed.workflows).toEqual([]);
    const one = await json<{ workflows: unknown[] }>("workflow", "list", "--limit", "1");
    expect(one.workflows).toHaveLength(1);
    const text = await ok("workflow", "list");
    expect(text).toMatch(/^WORKFLOW +TEAM +STATUS/);
    expect(text).toContain(workflowId);
  });

  it("team list, actor list and host list show the stack's teams, actors and hosts", async () => {
    const { teamId } = await completed();
    const { teams } = await json<{ teams: { teamId: string; name: string; kinds: string[] }[] }>("team", "list");
    expect(teams.find((t) => t.teamId === teamId)).toMatchObject({
      name: "cli-tree",
      kinds: expect.arrayContaining(["lead", "worker"]),
    });
    expect(await ok("team", "list")).toContain("cli-tree");

    const { actors } = await json<{ actors: { actorId: string; teamId: string; hostId: string; kindName: string }[] }>(
      "actor",
      "list",
      "--team",
      teamId,
    );
    expect(actors.map((a) => a.kindName).sort()).toEqual(["lead", "worker", "worker"]);
    expect(actors.every((a) => a.teamId === teamId && ["host-1", "host-2"].includes(a.hostId))).toBe(true);
    const onHost1 = await json<{ actors: { hostId: string }[] }>("actor", "list", "--host", "host-1");
    expect(onHost1.actors.every((a) => a.hostId === "host-1")).toBe(true);
    expect(await ok("actor", "list")).toContain(actors[0]?.actorId);

    const { hosts } = await json<{ hosts: { hostId: string; state: string; cordoned: boolean }[] }>("host", "list");
    expect(hosts.map((h) => h.hostId).sort()).toEqual(["host-1", "host-2"]);
    expect(hosts.every((h) => h.state === "alive" && !h.cordoned)).toBe(true);
    const text = await ok("host", "list");
    expect(text).toContain("host-1");
    expect(text).toContain("host-2");
  });

  it("debug workflow shows the task tree, every task completed with its holder", async () => {
    const { workflowId } = await completed();
    const r = await json<{
      workflow: { workflowId: string };
      tasks: { taskId: string; parentTaskId: string | null; kind: string; status: string; holder: unknown }[];
    }>("debug", "workflow", workflowId);
    expect(r.workflow.workflowId).toBe(workflowId);
    expect(r.tasks).toHaveLength(3);
    for (const t of r.tasks) {
      expect(t.status).toBe("completed");
      expect(t.holder).toMatchObject({ hostId: expect.stringMatching(/^host-[12]$/) });
    }
    const root = r.tasks.find((t) => t.parentTaskId === null);
    expect(root?.kind).toBe("lead");
    expect(r.tasks.filter((t) => t.parentTaskId === root?.taskId)).toHaveLength(2);

    // Text: the root at the left, its children indented under it.
    const lines = (await ok("debug", "workflow", workflowId)).split("\n");
    expect(lines.find((l) => l.startsWith(`${root?.taskId}  lead  completed`))).toBeDefined();
    expect(
      lines.filter((l) => /^ {2}\S+ {2}worker {2}completed {2}epoch \d+ {2}attempts \d+ {2}holder host-/.test(l)),
    ).toHaveLength(2);
  });

  it("debug task shows the applied result and the children; debug actor the actor that applied it", async () => {
    const { workflowId } = await completed();
    const tree = await json<{ tasks: { taskId: string; parentTaskId: string | null }[] }>(
      "debug",
      "workflow",
      workflowId,
    );
    const root = tree.tasks.find((t) => t.parentTaskId === null);
    const r = await json<{
      record: { status: string; applied: { hostId: string; actorId: string } | null; output: unknown };
      children: string[];
    }>("debug", "task", root?.taskId ?? "");
    expect(r.record.status).toBe("completed");
    expect(r.record.applied).toMatchObject({
      hostId: expect.stringMatching(/^host-[12]$/),
      actorId: expect.any(String),
    });
    expect(r.children.sort()).toEqual(
      tree.tasks
        .filter((t) => t !== root)
        .map((t) => t.taskId)
        .sort(),
    );
    const text = await ok("debug", "task", root?.taskId ?? "");
    expect(text).toContain(`applied: result `);
    expect(text).toContain(`from ${r.record.applied?.hostId}/${r.record.applied?.actorId}`);

    const actorId = r.record.applied?.actorId ?? "";
    const a = await json<{ record: { actorId: string; kindName: string }; live: { history: string[] } | null }>(
      "debug",
      "actor",
      actorId,
    );
    expect(a.record).toMatchObject({ actorId, kindName: "lead" });
    expect(a.live, "its host answers host.inspect").not.toBeNull();
    expect(a.live?.history).toContain(root?.taskId);
    expect(await ok("debug", "actor", actorId)).toContain(`actor ${actorId} (kind lead`);
  });

  it("what does not exist exits 2 and names it", async () => {
    for (const args of [
      ["status", "wnope"],
      ["workflow", "pause", "wnope"],
      ["debug", "workflow", "wnope"],
      ["debug", "task", "tnope"],
      ["debug", "actor", "anope"],
      ["actor", "retire", "anope"],
      ["host", "cordon", "hnope"],
    ]) {
      const r = await cli(...args);
      expect(r.code, `cadre ${args.join(" ")}: ${r.stderr}`).toBe(2);
      expect(r.stderr).toContain(args.at(-1));
    }
  });

  it("a control of a finished workflow exits 2 saying why", async () => {
    const { workflowId } = await completed();
    for (const args of [
      ["pause", workflowId],
      ["limit", workflowId, "--agents", "1"],
      ["cancel", workflowId],
    ]) {
      const r = await cli("workflow", ...args);
      expect(r.code, `cadre workflow ${args.join(" ")}: ${r.stderr}`).toBe(2);
      expect(r.stderr).toContain("it is completed");
    }
  });

  it("workflow pause, limit, resume and cancel print the control; the cancelled run exits 1", async () => {
    // Workers that sleep far longer than the commands take: the run ends by the cancel.
    const r = start(c.cliEnv(), ["run", leadTeam("cli-control", 2, 120_000), "--json"]);
    await until("the accepted line", () => r.out.stdout.includes("\n"), 20_000);
    const { workflowId } = JSON.parse(r.out.stdout.split("\n")[0] ?? "");

    expect(await ok("workflow", "pause", workflowId)).toContain(`workflow ${workflowId}: paused`);
    expect(await ok("status", workflowId)).toContain("controls: paused");
    const listed = await json<{ workflows: { workflowId: string }[] }>("workflow", "list", "--status", "paused");
    expect(listed.workflows.map((w) => w.workflowId)).toContain(workflowId);

    const limited = await ok("workflow", "limit", workflowId, "--agents", "2", "--guarantee", "1");
    expect(limited).toContain("at most 2 agents");
    expect(limited).toContain("1 actor reserved");
    expect(await ok("workflow", "limit", workflowId, "--agents", "none")).toContain("no agent cap");
    expect(await ok("workflow", "resume", workflowId)).toContain(`workflow ${workflowId}: not paused`);

    const cancelled = await ok("workflow", "cancel", workflowId, "--reason", "test is over");
    expect(cancelled).toContain("cancelled (test is over)");
    expect(cancelled).toMatch(/cancelled \d+ tasks?/);

    expect(await r.exited, r.out.stderr).toBe(1);
    const summary = JSON.parse(r.out.stdout.trim().split("\n").at(-1) ?? "");
    expect(summary).toMatchObject({ workflowId, status: "cancelled" });
    const status = await ok("status", workflowId);
    expect(status).toContain(`workflow ${workflowId} (cli-control) cancelled`);
    expect(status).toContain("cancelled (test is over)");
    expect(status).toMatch(/cancelled: \d+ tasks? ended unfinished/);
  });

  it("host cordon, uncordon and drain reach the supervisor and print the host", async () => {
    await c.stack.startHost("host-3");
    await until(
      "host-3 listed alive",
      async () => {
        const r = await cli("host", "list", "--json");
        const hosts = r.code === 0 ? (JSON.parse(r.stdout).hosts as { hostId: string; state: string }[]) : [];
        return hosts.some((h) => h.hostId === "host-3" && h.state === "alive");
      },
      20_000,
    );
    expect(await ok("host", "cordon", "host-3")).toContain("host host-3: alive, cordoned");
    const { hosts } = await json<{ hosts: { hostId: string; cordoned: boolean }[] }>("host", "list");
    expect(hosts.find((h) => h.hostId === "host-3")?.cordoned).toBe(true);
    expect(await ok("host", "uncordon", "host-3")).toContain("not cordoned");
    expect(await ok("host", "drain", "host-3")).toMatch(/^drained host host-3: moved \d+ actors?, requeued \d+ tasks?/);
  });

  it("actor retire and team retire stop what they name", async () => {
    const { teamId } = await completed();
    const { actors } = await json<{ actors: { actorId: string; kindName: string }[] }>(
      "actor",
      "list",
      "--team",
      teamId,
    );
    const worker = actors.find((a) => a.kindName === "worker");
    expect(await ok("actor", "retire", worker?.actorId ?? "")).toContain(`retired actor ${worker?.actorId}`);
    expect(await ok("team", "retire", teamId)).toContain(`retired team ${teamId}`);
    const { teams } = await json<{ teams: { teamId: string }[] }>("team", "list");
    expect(teams.map((t) => t.teamId)).not.toContain(teamId);
  });
});
