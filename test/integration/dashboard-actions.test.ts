/**
 * The dashboard's operator actions on a real, authenticated stack (nats-server admitting only
 * the generated identities, a supervisor, two agent-hosts, the stack's monitor with actions off)
 * plus a second monitor started here with `monitor.dashboard.actions` on, the operator's
 * credentials and a token. The actions pause, resume and cancel real workflows and release a
 * quarantined actor; the monitor's own identity could not have cancelled, so the second
 * connection (the operator's) did.
 */

import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { ConfigInput } from "@cadre/protocol";
import { rejection } from "@cadre/protocol/testing";
import { type ServiceProcess, SupervisorClient, spawnService } from "@cadre/runtime";
import { chromium } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  fanTeam,
  fastConfig,
  quarantineTeam,
  recordEvents,
  startCluster,
  type TestCluster,
  until,
} from "../helpers/cluster.js";

const monitorEntry = createRequire(import.meta.url).resolve("@cadre/monitor/main");
const TOKEN = `dash-${Math.random().toString(36).slice(2)}-${Date.now()}`;

type Reply = {
  status: number;
  body: { ok?: true; op?: string; result?: unknown; error?: { code: string; message: string } };
};

/** A service's log line as JSON, or undefined for a line that is not. */
function jsonLine(line: string): Record<string, unknown> | undefined {
  try {
    return JSON.parse(line) as Record<string, unknown>;
  } catch {
    return undefined;
  }
}

/** POSTs to a monitor's action route. */
async function postAction(port: number, body: string, headers: Record<string, string> = {}): Promise<Reply> {
  const r = await fetch(`http://127.0.0.1:${port}/dashboard/api/action`, {
    method: "POST",
    headers: { "content-type": "application/json", authorization: `Bearer ${TOKEN}`, ...headers },
    body,
  });
  return { status: r.status, body: (await r.json()) as Reply["body"] };
}

describe("dashboard operator actions", () => {
  let c: TestCluster;
  let sup: SupervisorClient;
  const dir = mkdtempSync(join(tmpdir(), "cadre-dash-actions-"));
  const spawned: ServiceProcess[] = [];
  const lines = new Map<string, string[]>();
  let port: number;

  /** A monitor of this cluster as its own identity, with `monitor` as its settings and `env`. */
  const startMonitor = (name: string, monitor: ConfigInput["monitor"], env: NodeJS.ProcessEnv): ServiceProcess => {
    const file = join(dir, `${name}.json`);
    writeFileSync(file, JSON.stringify({ ...fastConfig, monitor }));
    const security = c.stack.security;
    if (!security) throw new Error("the cluster is not authenticated");
    const out: string[] = [];
    lines.set(name, out);
    const p = spawnService({
      name,
      entry: monitorEntry,
      args: [
        ...["--nats-url", c.stack.natsUrl, "--config", file, "--nats-creds", security.credentials("monitor")],
        ...["--health-port", "0", "--health-host", "127.0.0.1"],
      ],
      env,
      onLine: (line) => void out.push(line),
    });
    spawned.push(p);
    return p;
  };
  const post = (body: unknown, headers: Record<string, string> = {}) =>
    postAction(port, typeof body === "string" ? body : JSON.stringify(body), headers);

  beforeAll(async () => {
    c = await startCluster({ hosts: 2, security: true, monitor: true });
    sup = new SupervisorClient(c.nc, { sender: "dash-actions-test", timeoutMs: 10_000 });
    const operator = c.stack.security?.credentials("operator") ?? "";
    const m = startMonitor(
      "monitor-actions",
      { dashboard: { actions: { enabled: true, credentials: operator } } },
      { CADRE_DASHBOARD_TOKEN: TOKEN },
    );
    await m.ready;
    port = m.healthPort ?? 0;
  }, 90_000);
  afterAll(async () => {
    await Promise.all(spawned.map((p) => p.stop()));
    await c?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it("refuses actions on the default monitor, naming the setting that turns them on", async () => {
    const defaultPort = c.stack.processes.get("monitor")?.healthPort ?? 0;
    const r = await postAction(defaultPort, JSON.stringify({ op: "pause", workflowId: "w1" }));
    expect(r.status).toBe(403);
    expect(r.body.error?.code).toBe("PERMISSION_DENIED");
    expect(r.body.error?.message).toContain("monitor.dashboard.actions");
  });

  it("refuses a monitor start with actions on but no token and, with security on, no operator credentials", async () => {
    const p = startMonitor(
      "monitor-misconfigured",
      { dashboard: { actions: { enabled: true } } },
      {
        CADRE_DASHBOARD_TOKEN: "",
      },
    );
    await expect(p.ready).rejects.toThrow();
    expect(await p.exited).toBe(2);
    const said = lines.get("monitor-misconfigured")?.join("\n") ?? "";
    expect(said).toContain(
      "monitor.dashboard.actions.tokenEnv: the environment variable CADRE_DASHBOARD_TOKEN is empty",
    );
    expect(said).toContain("monitor.dashboard.actions.credentials: the monitor runs with natsCredentials");
  });

  it("checks the token, the content type, the size and the body before doing anything", async () => {
    const pause = { op: "pause", workflowId: "w-none" };
    const missing = await post(pause, { authorization: "" });
    expect(missing.status).toBe(401);
    expect(missing.body.error?.code).toBe("PERMISSION_DENIED");
    expect((await post(pause, { authorization: `Bearer ${TOKEN}-not` })).status).toBe(401);
    const form = await post("op=pause", { "content-type": "text/plain" });
    expect(form.status).toBe(415);
    expect(form.body.error?.message).toContain("application/json");
    const big = await post({ op: "cancel", workflowId: "w-none", reason: "x".repeat(5000) });
    expect(big.status).toBe(413);
    const bad = await post({ op: "explode", workflowId: "w-none" });
    expect(bad.status).toBe(400);
    expect(bad.body.error).toMatchObject({ code: "PROTOCOL_ERROR", message: expect.stringContaining("op: ") });
    const unknown = await post(pause);
    expect(unknown.status).toBe(404);
    expect(unknown.body.error).toMatchObject({ code: "NOT_FOUND", message: 'workflow "w-none" does not exist' });
    expect(lines.get("monitor-actions")?.join("\n")).not.toContain(TOKEN);
  });

  it("pauses a running workflow, which its control shows, and resumes it to completion", async () => {
    const id = await c.submit(fanTeam("act-pause", 4, 500));
    const paused = await post({ op: "pause", workflowId: id });
    expect(paused.status, JSON.stringify(paused.body)).toBe(200);
    expect(paused.body).toMatchObject({ ok: true, op: "pause", result: { control: { workflowId: id, paused: true } } });
    const status = await sup.call("sup.status", { workflowId: id });
    expect(status.workflow.status).toBe("running");
    expect(status.control?.paused).toBe(true);
    const resumed = await post({ op: "resume", workflowId: id });
    expect(resumed.status).toBe(200);
    expect(resumed.body.result).toMatchObject({ control: { paused: false } });
    const w = await c.wait(id);
    expect(w.status, c.tail()).toBe("completed");
    // A control on a finished workflow is refused by the supervisor, as a conflict.
    const late = await post({ op: "pause", workflowId: id });
    expect(late.status).toBe(409);
    expect(late.body.error?.message).toContain("only a running workflow can be paused");
    const froze = await post({ op: "freeze", workflowId: id });
    expect(froze.body).toEqual({ ok: true, op: "freeze", result: { workflowId: id, frozen: true } });
    expect((await post({ op: "unfreeze", workflowId: id })).body.result).toEqual({ workflowId: id, frozen: false });
    const log = lines.get("monitor-actions") ?? [];
    const logged = await until("the pause logged", () =>
      log.map(jsonLine).find((l) => l?.msg === "dashboard action: pause"),
    );
    expect(logged).toMatchObject({ level: 30, op: "pause", workflowId: id });
  });

  it("pauses and resumes from the page: the token field, the workflow's buttons, the result shown", async () => {
    // --no-sandbox: the test may run as root, where Chromium's sandbox refuses to start.
    const browser = await chromium.launch({
      executablePath: process.env.CADRE_CHROMIUM ?? "/usr/bin/chromium",
      headless: true,
      args: ["--no-sandbox"],
    });
    try {
      const page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
      const problems: string[] = [];
      page.on("pageerror", (e) => problems.push(e.message));
      await page.goto(`http://127.0.0.1:${port}/dashboard`);
      await page.waitForSelector("#operator:not([hidden])", { timeout: 15_000 });
      await page.getByLabel("Operator token").fill(TOKEN);
      const id = await c.submit(fanTeam("act-page", 4, 1500));
      await page.getByRole("button", { name: `show the delegation tree of ${id}` }).click();
      await page.waitForSelector("#workflow-actions:not([hidden])", { timeout: 10_000 });
      await page.click("#workflow-actions button[data-op='pause']");
      await page.waitForSelector("#action-result[data-result='ok']", { timeout: 10_000 });
      expect(await page.locator("#action-result").textContent()).toContain(`pause ${id}: done`);
      expect((await sup.call("sup.status", { workflowId: id })).control?.paused).toBe(true);
      await page.waitForSelector(`#workflow-list tr[data-workflow="${id}"] .status-paused`, { timeout: 10_000 });
      await page.click("#workflow-actions button[data-op='resume']");
      await page.waitForSelector(`#workflow-list tr[data-workflow="${id}"] .status-completed`, { timeout: 30_000 });
      expect((await c.wait(id)).status, c.tail()).toBe("completed");
      expect(problems).toEqual([]);
    } finally {
      await browser.close();
    }
  });

  it("cancels a workflow as the operator, which the monitor's own identity may not do", async () => {
    const id = await c.submit(fanTeam("act-cancel", 4, 3000));
    const asMonitor = await c.connectAs("monitor");
    try {
      const monitor = new SupervisorClient(asMonitor, { sender: "monitor", timeoutMs: 5000 });
      const denied = await rejection(monitor.call("sup.workflow.cancel", { workflowId: id, reason: "as the monitor" }));
      expect(denied.code).toBe("PERMISSION_DENIED");
      expect(denied.message).toContain("may not call sup.workflow.cancel");
    } finally {
      await asMonitor.close();
    }
    // Nothing changed: it still runs.
    expect((await sup.call("sup.status", { workflowId: id })).workflow.status).toBe("running");
    const r = await post({ op: "cancel", workflowId: id });
    expect(r.status, JSON.stringify(r.body)).toBe(200);
    expect(r.body.result).toMatchObject({ control: { cancelled: { reason: "cancelled from the dashboard" } } });
    const w = await c.wait(id);
    expect(w.status).toBe("cancelled");
  });

  it("releases a quarantined actor as the operator; a second release finds none", async () => {
    const rec = recordEvents(c.nc);
    const id = await c.submit(quarantineTeam("act-quarantine"));
    expect((await c.wait(id)).status, c.tail()).toBe("completed");
    const q = await until("the quarantine event", () => rec.events.find((e) => e.event.type === "AGENT_QUARANTINED"));
    rec.stop();
    const actorId = String(q.event.data.actorId);
    const r = await post({ op: "release", actorId });
    expect(r.status, JSON.stringify(r.body)).toBe(200);
    expect(r.body.op).toBe("release");
    expect((await sup.call("sup.quarantine.list", {})).actors.map((a) => a.actorId)).not.toContain(actorId);
    const again = await post({ op: "release", actorId });
    expect(again.status).toBe(404);
    expect(again.body.error?.code).toBe("NOT_FOUND");
  });
});
