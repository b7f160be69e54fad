/**
 * The monitor's dashboard in a real browser: Debian's headless Chromium, driven by
 * playwright-core, against a real stack (nats-server, supervisor, two agent-hosts, monitor).
 * Screenshots of each view land in test/results/dashboard/.
 */

import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { call } from "@cadre/runtime";
import { type Browser, chromium, type Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  deadlockTeam,
  fanTeam,
  quarantineTeam,
  recordEvents,
  startCluster,
  type TestCluster,
  until,
  waitForEvent,
} from "../helpers/cluster.js";

const CHROMIUM = process.env.CADRE_CHROMIUM ?? "/usr/bin/chromium";
const SHOTS = join(import.meta.dirname, "..", "results", "dashboard");

/** A lead that writes the workflow's shared state and delegates to four workers. */
const stateTeam = fanTeam("dash-fan", 4, 300, 2, { leadState: { plan: { parts: 4, by: "lead" } } });

describe("the dashboard, in headless Chromium on a real stack", () => {
  let c: TestCluster;
  let browser: Browser;
  let page: Page;
  let base: string;
  const problems: string[] = [];

  beforeAll(async () => {
    mkdirSync(SHOTS, { recursive: true });
    // The monitor samples every second, so its charts have points within the test.
    c = await startCluster({ hosts: 2, monitor: true, config: { monitor: { intervalMs: 1000 } } });
    const port = c.stack.processes.get("monitor")?.healthPort;
    expect(port, "the monitor's health port").toBeTypeOf("number");
    base = `http://127.0.0.1:${port}`;
    // --no-sandbox: the test may run as root, where Chromium's sandbox refuses to start.
    browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: ["--no-sandbox"] });
    page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
    page.on("console", (m) => {
      if (m.type() === "error") problems.push(`console: ${m.text()}`);
    });
    page.on("pageerror", (e) => problems.push(`page error: ${e.message}`));
  });
  afterAll(async () => {
    await browser?.close();
    await c?.stop();
  });

  /** Waits for a condition in the page (source text: this test compiles without the DOM's types). */
  const inPage = (what: string, fn: string, timeout = 15_000) =>
    page.waitForFunction(fn, undefined, { timeout }).catch((err: Error) => {
      throw new Error(`the page never showed ${what}: ${err.message}\n${c.tail(40)}`);
    });

  it("shows the cluster, and a workflow's tree reaching all-completed with its state and checkpoint", async () => {
    await page.goto(`${base}/dashboard`);
    await page.waitForSelector("#conn[data-state='live']", { timeout: 10_000 });
    await page.waitForSelector("#hosts tr[data-host='host-1'][data-state='alive']", { timeout: 10_000 });
    await page.waitForSelector("#hosts tr[data-host='host-2'][data-state='alive']", { timeout: 10_000 });
    await page.waitForSelector("#supervisors tr[data-role='active']", { timeout: 15_000 });
    await page.waitForSelector("#metrics tbody tr", { timeout: 15_000 });
    expect(await page.locator("#metrics tbody tr").count()).toBe(6);

    const id = await c.submit(stateTeam);
    const button = page.getByRole("button", { name: `show the delegation tree of ${id}` });
    await button.waitFor({ timeout: 10_000 });
    await button.click();
    // The lead and its four workers, every node completed (the tree refreshes with each snapshot).
    await inPage(
      "five completed nodes",
      `(() => {
        const nodes = [...document.querySelectorAll('ul.tree[data-workflow=${JSON.stringify(id)}] .node')];
        return nodes.length === 5 && nodes.every((n) => n.getAttribute("data-status") === "completed");
      })()`,
      30_000,
    );
    const titles = await page.locator(".node").allTextContents();
    expect(titles).toHaveLength(5);
    const title = await page.locator(".node[data-status='completed']").last().getAttribute("title");
    expect(title).toMatch(/epoch \d+; holder /);
    expect(title).toMatch(/chain lead > worker/);
    await page.waitForSelector(`#workflow-list tr[data-workflow="${id}"] .status-completed`, { timeout: 5_000 });
    await page.waitForSelector("#event-list li[data-type='WORKFLOW_COMPLETED']", { timeout: 5_000 });

    // The lead's shared state, and a checkpoint taken now, shown with the tree.
    const ckpt = await call(c.nc, "sup.state.checkpoint", { workflowId: id }, { sender: "test", timeoutMs: 5000 });
    await inPage("the state value plan", `document.querySelector("#state")?.textContent.includes("plan")`);
    await inPage(
      "the checkpoint",
      `document.querySelector("#checkpoints")?.textContent.includes(${JSON.stringify(String(ckpt.position))})`,
    );
    expect(await page.locator("#state").textContent()).toContain('"by":"lead"');
    await page.locator("#cluster").screenshot({ path: join(SHOTS, "cluster.png") });
    await page.locator("#workflows").screenshot({ path: join(SHOTS, "workflows.png") });
    await page.screenshot({ path: join(SHOTS, "desktop-1280x800.png"), fullPage: true });

    // The monitor's view: a chart per metric drawn from its samples, the stage times per kind.
    await inPage(
      "six charts with samples",
      `document.querySelectorAll("#metric-charts figure[data-metric] polyline").length === 6`,
    );
    await page.waitForSelector("#bottlenecks tr[data-kind='worker']", { timeout: 15_000 });
    await page.locator("#monitor").screenshot({ path: join(SHOTS, "monitor.png") });
    expect(problems).toEqual([]);
  });

  it("lists a quarantined agent with its issues, and marks its task reassigned", async () => {
    const rec = recordEvents(c.nc);
    const id = await c.submit(quarantineTeam("dash-quarantine"));
    expect((await c.wait(id, 30_000)).status, c.tail()).toBe("completed");
    const q = await until("the quarantine event", () => rec.events.find((e) => e.event.type === "AGENT_QUARANTINED"));
    rec.stop();
    const actorId = String(q.event.data.actorId);
    const row = page.locator(`#quarantined tr[data-actor="${actorId}"]`);
    await row.waitFor({ timeout: 10_000 });
    const text = (await row.textContent()) ?? "";
    expect(text).toContain("coder");
    expect(text).toContain(String((q.event.data.issues as { message: string }[])[0]?.message));
    await page.getByRole("button", { name: `show the delegation tree of ${id}` }).click();
    await page.waitForSelector(
      `ul.tree[data-workflow="${id}"] .node[data-status='completed'][data-reassigned='true']`,
      {
        timeout: 10_000,
      },
    );
    await page.locator("#agents").screenshot({ path: join(SHOTS, "agents-quarantine.png") });
    expect(problems).toEqual([]);
  });

  it("draws a resolved deadlock's cycle with its victim", async () => {
    const rec = recordEvents(c.nc);
    const id = await c.submit(deadlockTeam("dash-deadlock", 1000));
    const resolved = await until("the deadlock resolved", () =>
      rec.events.find((e) => e.event.type === "DEADLOCK_RESOLVED"),
    );
    rec.stop();
    const victim = String(resolved.event.data.victim);
    const cycle = resolved.event.data.cycle as string[];
    await page.waitForSelector(`#waits-graph [data-task="${victim}"][data-victim="true"][data-in-cycle="true"]`, {
      timeout: 10_000,
    });
    for (const t of cycle) {
      await page.waitForSelector(`#waits-graph [data-task="${t}"][data-in-cycle="true"]`, { timeout: 5_000 });
      expect(await page.locator("#deadlock-cycle").textContent()).toContain(t);
    }
    await page.locator("#agents").screenshot({ path: join(SHOTS, "agents-deadlock.png") });
    expect((await c.wait(id, 30_000)).status, c.tail()).toBe("completed");

    // The events view filters by type, and builds an incident report that counts the deadlock.
    await page.selectOption("#event-type", "DEADLOCK_RESOLVED");
    await inPage(
      "only DEADLOCK_RESOLVED lines",
      `(() => {
        const items = [...document.querySelectorAll("#event-list li")];
        return items.length > 0 && items.every((li) => li.getAttribute("data-type") === "DEADLOCK_RESOLVED");
      })()`,
    );
    await page.selectOption("#event-type", "");
    await page.getByRole("button", { name: "Build incident report" }).click();
    await inPage(
      "the incident report",
      `/DEADLOCK_RESOLVED/.test(document.querySelector("#incident-text")?.textContent ?? "")`,
    );
    await page.locator("#events").screenshot({ path: join(SHOTS, "events-incident.png") });
    expect(problems).toEqual([]);
  });

  it("marks a killed host unreachable within 2 s of the supervisor's event, and fits a phone", async () => {
    // The filter keeps only matching lines.
    await page.fill("#event-filter", "WORKFLOW_COMPLETED");
    await inPage(
      "only WORKFLOW_COMPLETED lines",
      `(() => {
        const items = [...document.querySelectorAll("#event-list li")];
        return items.length > 0 && items.every((li) => li.getAttribute("data-type") === "WORKFLOW_COMPLETED");
      })()`,
    );
    await page.fill("#event-filter", "");

    // Kill host-2: measured from the supervisor's HOST_UNREACHABLE reaching this process to the
    // page showing the host unreachable (both on this process's clock).
    const unreachable = waitForEvent(c.nc, (e) => e.type === "HOST_UNREACHABLE" && e.scope === "host-2", 30_000).then(
      () => Date.now(),
    );
    const marked = page
      .waitForSelector("#hosts tr[data-host='host-2'][data-state='unreachable']", { timeout: 30_000 })
      .then(() => Date.now());
    const killedAt = Date.now();
    c.stack.processes.get("host-2")?.kill("SIGKILL");
    const [eventAt, markedAt] = await Promise.all([unreachable, marked]);
    const lag = markedAt - eventAt;
    console.log(
      `dashboard: host-2 killed; HOST_UNREACHABLE after ${eventAt - killedAt} ms, marked on the page ${lag} ms after the event (${markedAt - killedAt} ms after the kill)`,
    );
    expect(lag, c.tail()).toBeLessThan(2000);
    await page.waitForSelector("#event-list li[data-type='HOST_UNREACHABLE']", { timeout: 5_000 });
    await page.locator("#cluster").screenshot({ path: join(SHOTS, "cluster-host-unreachable.png") });
    await page.locator("#events").screenshot({ path: join(SHOTS, "events.png") });

    // A phone's width: one column, nothing wider than the screen.
    await page.setViewportSize({ width: 390, height: 844 });
    const overflow = await page.evaluate<number>("document.documentElement.scrollWidth - window.innerWidth");
    expect(overflow).toBeLessThanOrEqual(0);
    await page.screenshot({ path: join(SHOTS, "phone-390.png"), fullPage: true });
    expect(problems).toEqual([]);
  });

  it("keeps /healthz and /metrics, refuses writes and bad ids, and bounds the streams", async () => {
    expect((await fetch(`${base}/healthz`)).status).toBe(200);
    expect((await fetch(`${base}/metrics`)).status).toBe(200);
    expect((await fetch(`${base}/nothing`)).status).toBe(404);
    expect((await fetch(`${base}/dashboard`, { method: "POST" })).status).toBe(405);
    const bad = await fetch(`${base}/dashboard/api/workflow/no%20spaces`);
    expect(bad.status).toBe(400);
    expect(((await bad.json()) as { error: { message: string } }).error.message).toMatch(/not a workflow id/);
    expect((await fetch(`${base}/dashboard/api/workflow/wf-missing`)).status).toBe(404);

    // The page holds one stream; 19 more fill the 20, the next is refused.
    const abort = new AbortController();
    try {
      const open = await Promise.all(
        Array.from({ length: 19 }, () => fetch(`${base}/dashboard/stream`, { signal: abort.signal })),
      );
      expect(open.map((r) => r.status)).toEqual(Array(19).fill(200));
      const refused = await fetch(`${base}/dashboard/stream`);
      expect(refused.status).toBe(503);
      expect(await refused.text()).toMatch(/at most 20 dashboards/);
    } finally {
      abort.abort();
    }
    expect(problems).toEqual([]);
  });
});
