import { spawn } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { join } from "node:path";
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
function run(entry: string, args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [entry, ...args], { stdio: ["ignore", "pipe", "pipe"] });
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

describe("cadre run and the monitor against a running cluster", () => {
  let c: TestCluster;
  beforeAll(async () => {
    c = await startCluster({ monitor: true });
  });
  afterAll(async () => {
    await c?.stop();
  });

  it("cadre run --json prints one JSON object and exits 0 when the workflow completes; the monitor logs its event line", async () => {
    const team = file(
      "ok.yaml",
      "name: cli-ok\nroot: solo\nkinds:\n  solo: {role: agent, behaviour: {type: script, output: {ok: true}}}\n",
    );
    const r = await run(entries.cadre, ["run", team, "--json", "--nats-url", c.stack.natsUrl]);
    expect(r.code, r.stderr).toBe(0);
    const summary = JSON.parse(r.stdout.trim());
    expect(summary).toMatchObject({ status: "completed", output: { ok: true }, tasks: { total: 1, completed: 1 } });
    const line = `WORKFLOW_COMPLETED:workflow:${summary.workflowId}:`;
    await until("the monitor's event line", () => c.logs.get("monitor")?.some((l) => l.includes(line)));
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
    const r = await run(entries.cadre, ["run", team, "--nats-url", c.stack.natsUrl]);
    expect(r.code).toBe(1);
    expect(r.stdout).toContain("failed");
    expect(r.stdout).toContain("error: CIRCULAR_DELEGATION");
    expect(r.stdout).toContain("a > b > a");
  });
});
