import { spawn } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type NatsServer, startNatsServer } from "@cadre/runtime/testing";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startCluster, type TestCluster, until } from "../helpers/cluster.js";

const require = createRequire(import.meta.url);
const entries = {
  cadre: require.resolve("@cadre/cli/main"),
  supervisor: require.resolve("@cadre/supervisor/main"),
  "agent-host": require.resolve("@cadre/agent-host/main"),
  monitor: require.resolve("@cadre/monitor/main"),
};

/** Runs a command to its end and returns its exit code and output. */
function run(
  entry: string,
  args: string[],
  extraEnv: Record<string, string> = {},
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    // No CADRE_NATS_URL from the environment: each test says where NATS is.
    const { CADRE_NATS_URL: _, CADRE_NATS_CREDS: __, ...rest } = process.env;
    const env = { ...rest, ...extraEnv };
    const child = spawn(process.execPath, [entry, ...args], { stdio: ["ignore", "pipe", "pipe"], env });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d) => (stdout += d));
    child.stderr.on("data", (d) => (stderr += d));
    child.on("exit", (code) => resolve({ code, stdout, stderr }));
  });
}

const dir = mkdtempSync(join(tmpdir(), "cadre-cli-"));
const file = (name: string, text: string) => {
  const path = join(dir, name);
  writeFileSync(path, text);
  return path;
};

afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe("the cadre command and the services' command lines", () => {
  it.each(Object.entries(entries))("%s answers --help with its usage and exit code 0", async (_name, entry) => {
    const r = await run(entry, ["--help"]);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain("Usage:");
    expect(r.stdout).toContain("--nats-url");
  });

  it("cadre run exits 2 and names each bad field of an invalid team file, before connecting anywhere", async () => {
    const bad = file(
      "bad.yaml",
      "name: Bad_Team\nroot: x\nkinds:\n  x: {role: agent, behaviour: {type: script, sleepMs: -1}}\n",
    );
    const r = await run(entries.cadre, ["run", bad, "--nats-url", "nats://127.0.0.1:1"]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain(`team file ${bad} is invalid`);
    expect(r.stderr).toContain("name: use 1-48 lower-case letters");
    expect(r.stderr).toContain("kinds.x.behaviour.sleepMs");
  });

  it("a service exits 2 and names the field when its configuration is invalid", async () => {
    const cfg = file("bad-config.yaml", "orchestration_limits:\n  max_delegation_depth: 0\n");
    const r = await run(entries.supervisor, ["--config", cfg]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain("orchestration_limits.max_delegation_depth");
  });

  it("a service exits 1 with the reason when NATS cannot be reached", async () => {
    const r = await run(entries.monitor, ["--nats-url", "nats://127.0.0.1:1"]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain("cannot reach NATS at nats://127.0.0.1:1");
  });
});

/** Every command of `cadre` that takes options or arguments (each one's --help is checked). */
const COMMANDS = [
  ["up"],
  ["run"],
  ["demo"],
  ["status"],
  ["workflow", "list"],
  ["workflow", "pause"],
  ["workflow", "resume"],
  ["workflow", "cancel"],
  ["workflow", "limit"],
  ["team", "list"],
  ["team", "retire"],
  ["actor", "list"],
  ["actor", "retire"],
  ["host", "list"],
  ["host", "cordon"],
  ["host", "uncordon"],
  ["host", "drain"],
  ["debug", "workflow"],
  ["debug", "actor"],
  ["debug", "task"],
  ["reconciliation"],
  ["quarantine"],
  ["freeze"],
  ["unfreeze"],
  ["waits"],
  ["state", "show"],
  ["state", "log"],
  ["state", "checkpoint"],
  ["state", "rollback"],
];

describe("cadre's usage errors, help and exit codes", () => {
  it("cadre --help lists the new command families and documents every exit code", async () => {
    const r = await run(entries.cadre, ["--help"]);
    expect(r.code).toBe(0);
    for (const family of ["workflow", "team", "actor", "host", "debug"])
      expect(r.stdout).toMatch(new RegExp(`\\n  ${family} `));
    expect(r.stdout).toContain("Exit codes:");
    for (const code of [
      "0  done",
      "1  the workflow failed or was cancelled",
      "2  bad input",
      "3  unreachable",
      "4  refused",
    ]) {
      expect(r.stdout).toContain(code);
    }
    for (const code of ["NOT_FOUND", "RESOURCE_EXHAUSTED", "CONCURRENT_MODIFICATION", "UNAVAILABLE", "max_payload"]) {
      expect(r.stdout).toContain(code);
    }
  });

  it.each(COMMANDS.map((c) => [c.join(" "), c]))(
    "cadre %s --help shows the global options and the exit codes",
    async (_name, command) => {
      const r = await run(entries.cadre, [...command, "--help"]);
      expect(r.code, r.stderr).toBe(0);
      expect(r.stdout).toContain(`Usage: cadre ${command.join(" ")}`);
      expect(r.stdout).toContain("Global Options:");
      expect(r.stdout).toContain("--nats-url <url>");
      expect(r.stdout).toContain("--config <file>");
      expect(r.stdout).toContain("Exit codes:");
    },
  );

  it("cadre run --help documents the --json lines and --detach", async () => {
    const r = await run(entries.cadre, ["run", "--help"]);
    expect(r.stdout).toContain('{"workflowId":"<id>","accepted":true}');
    expect(r.stdout).toContain("--detach");
  });

  it.each([
    ["an unknown command", ["nope"], "unknown command 'nope'"],
    ["an unknown subcommand", ["workflow", "nope"], "unknown command 'nope'"],
    ["an unknown flag", ["run", "x.yaml", "--bogus"], "unknown option '--bogus'"],
    ["an unknown flag of a subcommand", ["host", "list", "--nope"], "unknown option '--nope'"],
    ["a missing argument", ["workflow", "pause"], "missing required argument 'workflow-id'"],
    ["a bad choice", ["workflow", "list", "--status", "asleep"], "Allowed choices are running, paused"],
    ["a bad number", ["workflow", "list", "--limit", "0"], "expected a whole number from 1 to 1000"],
    ["a bad cap", ["workflow", "limit", "w1", "--agents", "-3"], 'or "none"'],
    ["a limit with nothing to change", ["workflow", "limit", "w1"], "give one or both"],
    ["an extra argument", ["status", "w1", "w2"], "too many arguments"],
  ])("%s exits 2 with a message saying what is wrong", async (_what, args, message) => {
    // Nothing listens on port 1: usage errors are reported before anything is reached.
    const r = await run(entries.cadre, [...args, "--nats-url", "nats://127.0.0.1:1"]);
    expect(r.code, r.stderr).toBe(2);
    expect(r.stderr).toContain(message);
    expect(r.stderr).toMatch(/^cadre: /);
  });

  it.each([
    ["status", "w1"],
    ["workflow", "list"],
    ["workflow", "pause", "w1"],
    ["team", "list"],
    ["host", "drain", "h1"],
    ["debug", "workflow", "w1"],
  ])("cadre %s ... exits 3 when no NATS server listens", async (...args) => {
    const r = await run(entries.cadre, [...args, "--nats-url", "nats://127.0.0.1:1"]);
    expect(r.code, r.stderr).toBe(3);
    expect(r.stderr).toContain("cannot reach NATS at nats://127.0.0.1:1");
  });

  it("cadre run exits 3 when no NATS server listens", async () => {
    const team = file(
      "unreached.yaml",
      "name: unreached\nroot: a\nkinds:\n  a: {role: agent, behaviour: {type: script}}\n",
    );
    const r = await run(entries.cadre, ["run", team, "--detach", "--nats-url", "nats://127.0.0.1:1"]);
    expect(r.code).toBe(3);
    expect(r.stderr).toContain("cannot reach NATS");
  });

  describe("with NATS up and no supervisor", () => {
    let nats: NatsServer;
    beforeAll(async () => {
      nats = await startNatsServer();
    });
    afterAll(async () => {
      await nats?.stop();
    });

    it.each([
      ["workflow", "list"],
      ["host", "cordon", "h1"],
      ["debug", "task", "t1"],
    ])("cadre %s ... exits 3: nothing answers", async (...args) => {
      const r = await run(entries.cadre, [...args, "--nats-url", nats.url]);
      expect(r.code, r.stderr).toBe(3);
      expect(r.stderr).toContain("nothing answers");
    });
  });
});

describe("cadre run and the monitor against a running cluster", () => {
  let c: TestCluster;
  // The operator's identity when the cluster is authenticated (CADRE_NATS_CREDS), else nothing.
  const creds = () => {
    const { CADRE_NATS_CREDS } = c.cliEnv();
    return CADRE_NATS_CREDS ? { CADRE_NATS_CREDS } : ({} as Record<string, string>);
  };
  beforeAll(async () => {
    c = await startCluster({ monitor: true });
  });
  afterAll(async () => {
    await c?.stop();
  });

  it("cadre run --json prints the accepted line, then the summary, and exits 0 when the workflow completes; the monitor logs its event line", async () => {
    const team = file(
      "ok.yaml",
      "name: cli-ok\nroot: solo\nkinds:\n  solo: {role: agent, behaviour: {type: script, output: {ok: true}}}\n",
    );
    const r = await run(entries.cadre, ["run", team, "--json", "--nats-url", c.stack.natsUrl], creds());
    expect(r.code, r.stderr).toBe(0);
    const lines = r.stdout.trim().split("\n");
    expect(lines).toHaveLength(2);
    const accepted = JSON.parse(lines[0] ?? "");
    const summary = JSON.parse(lines[1] ?? "");
    expect(accepted).toEqual({ workflowId: summary.workflowId, accepted: true });
    expect(summary).toMatchObject({ status: "completed", output: { ok: true }, tasks: { total: 1, completed: 1 } });
    const line = `WORKFLOW_COMPLETED:workflow:${summary.workflowId}:`;
    await until("the monitor's event line", () => c.logs.get("monitor")?.some((l) => l.includes(line)));
  });

  it("cadre run exits 2 naming max_payload when the team file is over the message size", async () => {
    const big = file(
      "big.yaml",
      `name: cli-big\nroot: solo\ninput: {blob: "${"x".repeat(2 * 1024 * 1024)}"}\nkinds:\n  solo: {role: agent, behaviour: {type: script}}\n`,
    );
    const r = await run(entries.cadre, ["run", big, "--nats-url", c.stack.natsUrl], creds());
    expect(r.code, r.stderr).toBe(2);
    expect(r.stderr).toContain("max_payload");
    expect(r.stderr).toMatch(/over the NATS server's max_payload of \d+ bytes/);
  });

  it("cadre run exits 4 when the supervisor refuses the workflow for a quota, naming the limit", async () => {
    const team = file(
      "too-many.yaml",
      "name: cli-too-many\nroot: solo\nkinds:\n  solo: {role: agent, replicas: 11, behaviour: {type: script}}\n",
    );
    const r = await run(entries.cadre, ["run", team, "--nats-url", c.stack.natsUrl], creds());
    expect(r.code, r.stderr).toBe(4);
    expect(r.stderr).toContain("max_agents_per_orchestrator");
  });

  it("cadre run exits 1 and prints the error when the workflow fails", async () => {
    const team = file(
      "cycle.yaml",
      [
        "name: cli-cycle",
        "root: a",
        "kinds:",
        "  a: {role: lead, behaviour: {type: script, delegate: [{kind: b}]}}",
        "  b: {role: lead, behaviour: {type: script, delegate: [{kind: a}]}}",
      ].join("\n"),
    );
    const r = await run(entries.cadre, ["run", team, "--nats-url", c.stack.natsUrl], creds());
    expect(r.code).toBe(1);
    expect(r.stdout).toContain("failed");
    expect(r.stdout).toContain("error: CIRCULAR_DELEGATION");
    expect(r.stdout).toContain("a > b > a");
  });
});
