/**
 * The monitor's dashboard in a real browser: Debian's headless Chromium, driven by
 * playwright-core, against a real stack (nats-server, supervisor, two agent-hosts, monitor).
 * Screenshots of each view land in test/results/dashboard/.
 */

import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { type Browser, chromium, type Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { fanTeam, startCluster, type TestCluster, waitForEvent } from "../helpers/cluster.js";

const CHROMIUM = process.env.CADRE_CHROMIUM ?? "/usr/bin/chromium";
const SHOTS = join(import.meta.dirname, "..", "results", "dashboard");

describe("the dashboard, in headless Chromium on a real stack", () => {
  let c: TestCluster;
  let browser: Browser;
  let page: Page;
  let base: string;
  const problems: string[] = [];

  beforeAll(async () => {
    mkdirSync(SHOTS, { recursive: true });
    c = await startCluster({ hosts: 2, monitor: true });
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

  it("shows the cluster, a workflow's tree reaching all-completed, and a killed host unreachable", async () => {
    await page.goto(`${base}/dashboard`);
    await page.waitForSelector("#conn[data-state='live']", { timeout: 10_000 });
    await page.waitForSelector("#hosts tr[data-host='host-1'][data-state='alive']", { timeout: 10_000 });
    await page.waitForSelector("#hosts tr[data-host='host-2'][data-state='alive']", { timeout: 10_000 });
    await page.waitForSelector("#metrics tbody tr", { timeout: 15_000 });
    expect(await page.locator("#metrics tbody tr").count()).toBe(6);

    const id = await c.submit(fanTeam("dash-fan", 4, 300));
    const button = page.getByRole("button", { name: `show the delegation tree of ${id}` });
    await button.waitFor({ timeout: 10_000 });
    await button.click();
    // The lead and its four workers, every node completed (the tree refreshes with each snapshot).
    // Page functions are passed as source text: this test compiles without the DOM's types.
    await page.waitForFunction(
      `(() => {
        const nodes = [...document.querySelectorAll('ul.tree[data-workflow=${JSON.stringify(id)}] .node')];
        return nodes.length === 5 && nodes.every((n) => n.getAttribute("data-status") === "completed");
      })()`,
      undefined,
      { timeout: 30_000 },
    );
    const title = await page.locator(".node").first().getAttribute("title");
    expect(title).toMatch(/epoch \d+; holder /);
    await page.waitForSelector(`#workflow-list tr[data-workflow="${id}"] .status-completed`, { timeout: 5_000 });
    await page.waitForSelector("#event-list li[data-type='WORKFLOW_COMPLETED']", { timeout: 5_000 });
    await page.locator("#cluster").screenshot({ path: join(SHOTS, "cluster.png") });
    await page.locator("#workflows").screenshot({ path: join(SHOTS, "workflows.png") });
    await page.screenshot({ path: join(SHOTS, "desktop-1280x800.png"), fullPage: true });

    // The filter keeps only matching lines.
    await page.fill("#event-filter", "WORKFLOW_COMPLETED");
    await page.waitForFunction(
      `(() => {
        const items = [...document.querySelectorAll("#event-list li")];
        return items.length > 0 && items.every((li) => li.getAttribute("data-type") === "WORKFLOW_COMPLETED");
      })()`,
      undefined,
      { timeout: 5_000 },
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
